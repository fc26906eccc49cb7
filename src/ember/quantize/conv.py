"""Int8 convolutions: dynamic (:class:`DynamicQuantizedConv1d`, :class:`DynamicQuantizedConv2d`)
and static (:class:`QuantizedConv1d`, :class:`QuantizedConv2d`), from ``nn.Conv1d/2d``.

The weight ``(out, in/groups, *kernel)`` is int8 with one float32 scale per output channel;
the input is quantised to uint8 per tensor (per batch at run time, or with calibrated
parameters). Only zero padding quantises exactly (0 is on every uint8 grid used here), so a
convolution with another ``padding_mode`` is refused.
"""
from __future__ import annotations

import numpy as np

from ..nn.modules.module import Module
from ..ops import quantized as Q
from ..tensor import Tensor
from .linear import _set_static, _t
from .observers import quantize_weight

__all__ = ["DynamicQuantizedConv1d", "DynamicQuantizedConv2d", "QuantizedConv1d",
           "QuantizedConv2d"]


def _conv_config(mod, cls_name: str, nd: int) -> dict:
    if getattr(mod, "transposed", False):
        raise TypeError(f"{cls_name}: transposed convolutions are not quantised (got "
                        f"{type(mod).__name__})")
    w = mod.weight
    if w.ndim != nd + 2:
        raise ValueError(f"{cls_name}: expected a {nd}-d convolution (weight of rank {nd + 2}), "
                         f"got {type(mod).__name__} with weight {tuple(w.shape)}")
    if getattr(mod, "padding_mode", "zeros") != "zeros":
        raise ValueError(f"{cls_name}: only padding_mode='zeros' can be quantised, got "
                         f"{type(mod).__name__} with padding_mode={mod.padding_mode!r}")
    return {"in_channels": mod.in_channels, "out_channels": mod.out_channels,
            "kernel_size": tuple(mod.kernel_size), "stride": tuple(mod.stride),
            "padding": mod.padding if isinstance(mod.padding, str) else tuple(mod.padding),
            "dilation": tuple(mod.dilation), "groups": mod.groups,
            "bias": mod.bias is not None}


class _QConvBase(Module):
    _nd = 2
    _bias_dtype = np.float32

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True):
        super().__init__()
        nd = self._nd
        tup = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride, self.dilation = (tup(kernel_size), tup(stride),
                                                        tup(dilation))
        self.padding = padding if isinstance(padding, str) else tup(padding)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.register_buffer("weight", _t(np.zeros(shape, np.int8)))
        self.register_buffer("weight_scale", _t(np.ones(out_channels, np.float32)))
        self.register_buffer("bias", _t(np.zeros(out_channels, self._bias_dtype))
                             if bias else None)

    def _conv_args(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "groups": self.groups}

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s + ", dtype=int8"


class _DynamicConv(_QConvBase):
    @classmethod
    def from_float(cls, mod):
        """Quantise a float ``nn.Conv{1,2}d``."""
        cfg = _conv_config(mod, cls.__name__, cls._nd)
        q = cls(**cfg)
        qw, scale = quantize_weight(mod.weight.detach().numpy().astype(np.float32), axis=0)
        q.weight, q.weight_scale = _t(qw), _t(scale)
        if mod.bias is not None:
            q.bias = _t(mod.bias.detach().numpy().astype(np.float32))
        return q

    def forward(self, input: Tensor) -> Tensor:
        return Q.dynamic_quantized_conv(input, self.weight, self.weight_scale, self.bias,
                                        **self._conv_args())


class DynamicQuantizedConv1d(_DynamicConv):
    """``nn.Conv1d`` with an int8 weight and the input quantised per batch at run time."""
    _nd = 1


class DynamicQuantizedConv2d(_DynamicConv):
    """``nn.Conv2d`` with an int8 weight and the input quantised per batch at run time."""
    _nd = 2


class _StaticConv(_QConvBase):
    _bias_dtype = np.int32

    def __init__(self, *args, relu: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.relu = relu
        for side in ("input", "output"):
            self.register_buffer(f"{side}_scale", _t(np.ones((), np.float32)))
            self.register_buffer(f"{side}_zero_point", _t(np.zeros((), np.uint8)))

    @classmethod
    def from_float(cls, mod, input_qparams: tuple, output_qparams: tuple, relu: bool = False):
        """Quantise a float ``nn.Conv{1,2}d`` given calibrated ``(scale, zero_point)`` pairs
        of its input and output (the output's after the fused ReLU when ``relu``)."""
        cfg = _conv_config(mod, cls.__name__, cls._nd)
        q = cls(**cfg, relu=relu)
        b = mod.bias.detach().numpy().astype(np.float32) if mod.bias is not None else None
        _set_static(q, mod.weight.detach().numpy().astype(np.float32), b, input_qparams,
                    output_qparams, axis=0)
        return q

    def forward(self, input: Tensor) -> Tensor:
        return Q.quantized_conv(input, self.weight, self.weight_scale, self.input_scale,
                                self.input_zero_point, self.output_scale,
                                self.output_zero_point, self.bias, relu=self.relu,
                                **self._conv_args())

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", input_scale={float(self.input_scale.item()):.4g}, "
                                       f"output_scale={float(self.output_scale.item()):.4g}"
                                       + (", relu=True" if self.relu else ""))


class QuantizedConv1d(_StaticConv):
    """Static int8 ``nn.Conv1d`` (calibrated uint8 input/output grids, int32 bias)."""
    _nd = 1


class QuantizedConv2d(_StaticConv):
    """Static int8 ``nn.Conv2d`` (calibrated uint8 input/output grids, int32 bias)."""
    _nd = 2
