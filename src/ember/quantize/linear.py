"""Int8 affine layers: :class:`DynamicQuantizedLinear` (post-training dynamic) and
:class:`QuantizedLinear` (static, calibrated), PyTorch's ``torch.ao.nn.quantized[.dynamic]
.Linear``.

Both hold the weight as int8 ``(out_features, in_features)`` with one float32 scale per output
feature (``weight ~ weight * weight_scale[:, None]``) in buffers, so ``state_dict`` and
``ember.save`` store int8 data. They take and return float32 tensors.
"""
from __future__ import annotations

import numpy as np

from ..nn.modules.module import Module
from ..ops import quantized as Q
from ..tensor import Tensor
from .observers import quantize_weight

__all__ = ["DynamicQuantizedLinear", "QuantizedLinear"]


def _t(a: np.ndarray) -> Tensor:
    return Tensor._wrap(np.array(a, order="C"))  # a copy (ascontiguousarray makes 0-d 1-d)


def _weight_of(mod, op: str) -> tuple[np.ndarray, np.ndarray | None]:
    """float32 (weight (out, in), bias) of an ``nn.Linear``."""
    w = mod.weight.detach().numpy()
    if w.ndim != 2:
        raise ValueError(f"{op}: expected a 2-d Linear weight, got shape {w.shape}")
    b = mod.bias.detach().numpy() if getattr(mod, "bias", None) is not None else None
    return w.astype(np.float32), None if b is None else b.astype(np.float32)


class DynamicQuantizedLinear(Module):
    """``y = x @ W.T + b`` with an int8 per-channel weight; each input batch is quantised to
    uint8 per tensor at run time (ONNX DynamicQuantizeLinear + MatMulInteger)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", _t(np.zeros((out_features, in_features), np.int8)))
        self.register_buffer("weight_scale", _t(np.ones(out_features, np.float32)))
        self.register_buffer("bias", _t(np.zeros(out_features, np.float32)) if bias else None)

    @classmethod
    def from_float(cls, mod) -> "DynamicQuantizedLinear":
        """Quantise a float ``nn.Linear``."""
        w, b = _weight_of(mod, cls.__name__)
        q = cls(w.shape[1], w.shape[0], b is not None)
        qw, scale = quantize_weight(w, axis=0)
        q.weight, q.weight_scale = _t(qw), _t(scale)
        if b is not None:
            q.bias = _t(b)
        return q

    def forward(self, input: Tensor) -> Tensor:
        return Q.dynamic_quantized_linear(input, self.weight, self.weight_scale, self.bias)

    def dequantized_weight(self) -> Tensor:
        """The float32 weight this layer computes with (``weight * weight_scale``)."""
        return Q.dequantize_linear(self.weight, self.weight_scale, axis=0)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"dtype=int8, qscheme=per_channel_symmetric")


class QuantizedLinear(Module):
    """Static int8 Linear: input and output on calibrated uint8 grids, int8 per-channel
    weight, int32 bias; ``relu=True`` is a fused Linear + ReLU (the output range then starts
    at 0, a bit more precision)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 relu: bool = False):
        super().__init__()
        self.in_features, self.out_features, self.relu = in_features, out_features, relu
        self.register_buffer("weight", _t(np.zeros((out_features, in_features), np.int8)))
        self.register_buffer("weight_scale", _t(np.ones(out_features, np.float32)))
        self.register_buffer("bias", _t(np.zeros(out_features, np.int32)) if bias else None)
        for side in ("input", "output"):
            self.register_buffer(f"{side}_scale", _t(np.ones((), np.float32)))
            self.register_buffer(f"{side}_zero_point", _t(np.zeros((), np.uint8)))

    @classmethod
    def from_float(cls, mod, input_qparams: tuple, output_qparams: tuple,
                   relu: bool = False) -> "QuantizedLinear":
        """Quantise a float ``nn.Linear`` given calibrated ``(scale, zero_point)`` pairs of
        its input and output (the output's measured after the fused ReLU when ``relu``)."""
        w, b = _weight_of(mod, cls.__name__)
        q = cls(w.shape[1], w.shape[0], b is not None, relu)
        _set_static(q, w, b, input_qparams, output_qparams, axis=0)
        return q

    def forward(self, input: Tensor) -> Tensor:
        return Q.quantized_linear(input, self.weight, self.weight_scale, self.input_scale,
                                  self.input_zero_point, self.output_scale,
                                  self.output_zero_point, self.bias, self.relu)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"input_scale={float(self.input_scale.item()):.4g}, "
                f"output_scale={float(self.output_scale.item()):.4g}"
                + (", relu=True" if self.relu else ""))


def _set_static(q, w, b, input_qparams, output_qparams, axis):
    """Fill a static module's buffers: int8 weight, int32 bias on the accumulator's scale
    ``input_scale * weight_scale`` (saturated to int32), activation qparams."""
    qw, wscale = quantize_weight(w, axis=axis)
    q.weight, q.weight_scale = _t(qw), _t(wscale)
    xs, xz = (np.asarray(_values(v)) for v in input_qparams)
    ys, yz = (np.asarray(_values(v)) for v in output_qparams)
    q.input_scale, q.input_zero_point = _t(xs.astype(np.float32)), _t(xz.astype(np.uint8))
    q.output_scale, q.output_zero_point = _t(ys.astype(np.float32)), _t(yz.astype(np.uint8))
    if b is not None:
        acc_scale = xs.astype(np.float32) * wscale
        bq = np.clip(np.rint(b / acc_scale), -2 ** 31, 2 ** 31 - 1).astype(np.int32)
        q.bias = _t(bq)


def _values(v):
    return v.numpy() if isinstance(v, Tensor) else v
