"""Dynamically quantised recurrent layers: :class:`DynamicQuantizedLSTM` and
:class:`DynamicQuantizedGRU` (PyTorch's ``torch.ao.nn.quantized.dynamic.LSTM/GRU``).

Every weight matrix is stored as int8 with one float32 scale per row (per gate unit); biases
stay float32. At each call the weights are dequantised (``q * scale``, one DequantizeLinear
each) and the float recurrence runs — the recurrent math is float, only storage is int8. This
is what ONNX can express portably (there is no int8 LSTM/GRU in the standard opset), so the
exported graph is DequantizeLinear -> LSTM/GRU and computes exactly what ember computes.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..nn.modules.module import Module
from ..ops import quantized as Q
from ..tensor import Tensor
from .linear import _t
from .observers import quantize_weight

__all__ = ["DynamicQuantizedLSTM", "DynamicQuantizedGRU"]


class _DynamicRNN(Module):
    _float_cls = None

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, **kwargs):
        super().__init__()
        # a float layer of the same configuration runs the recurrence; it is not a submodule
        # (its parameters are not ours): at each call its weights are bound to the dequantised
        # int8 buffers below and unbound afterwards
        shell = self._float_cls(input_size, hidden_size, num_layers, bias=bias,
                                batch_first=batch_first, bidirectional=bidirectional, **kwargs)
        shell.dropout = float(dropout)
        self.__dict__["_shell"] = shell
        for name in shell._flat_weights_names:
            p = shell._parameters[name]
            if name.startswith("weight"):
                self.register_buffer(name, _t(np.zeros(tuple(p.shape), np.int8)))
                self.register_buffer(name + "_scale", _t(np.ones(p.shape[0], np.float32)))
            else:
                self.register_buffer(name, _t(np.zeros(tuple(p.shape), np.float32)))
            shell._parameters[name] = None
        for attr in ("mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first",
                     "bidirectional", "proj_size"):
            setattr(self, attr, getattr(shell, attr))
        self.dropout = float(dropout)

    @classmethod
    def from_float(cls, mod):
        """Quantise a float ``nn.LSTM`` / ``nn.GRU`` (every weight int8 per row)."""
        if not isinstance(mod, cls._float_cls):
            raise TypeError(f"{cls.__name__}.from_float: expected an "
                            f"nn.{cls._float_cls.__name__}, got {type(mod).__name__}")
        kwargs = {"proj_size": mod.proj_size} if mod.proj_size else {}
        q = cls(mod.input_size, mod.hidden_size, mod.num_layers, bias=mod.bias,
                batch_first=mod.batch_first, dropout=mod.dropout,
                bidirectional=mod.bidirectional, **kwargs)
        for name in mod._flat_weights_names:
            a = getattr(mod, name).detach().numpy().astype(np.float32)
            if name.startswith("weight"):
                qw, scale = quantize_weight(a, axis=0)
                setattr(q, name, _t(qw))
                setattr(q, name + "_scale", _t(scale))
            else:
                setattr(q, name, _t(a))
        return q

    def forward(self, input: Tensor, hx=None):
        shell = self._shell
        params = shell._parameters
        shell.__dict__["training"] = self.training
        try:
            for name in shell._flat_weights_names:
                if name.startswith("weight"):
                    params[name] = Q.dequantize_linear(getattr(self, name),
                                                       getattr(self, name + "_scale"), axis=0)
                else:
                    params[name] = getattr(self, name)
            return shell.forward(input, hx)
        finally:
            for name in shell._flat_weights_names:
                params[name] = None

    def extra_repr(self) -> str:
        return self._shell.extra_repr() + ", dtype=int8"


class DynamicQuantizedLSTM(_DynamicRNN):
    """``nn.LSTM`` with int8 weights (per-row scales); returns ``(output, (h_n, c_n))``."""
    _float_cls = nn.LSTM


class DynamicQuantizedGRU(_DynamicRNN):
    """``nn.GRU`` with int8 weights (per-row scales); returns ``(output, h_n)``."""
    _float_cls = nn.GRU
