"""Recurrent layers: RNN, LSTM, GRU (whole sequences) and RNNCell, LSTMCell, GRUCell (one step).

Parameter names, shapes, gate orders and initialisation are PyTorch's, so state_dicts move
between the two frameworks unchanged. Each layer and direction runs as one primitive op from
``ember.ops.rnn`` (the whole sequence, with backpropagation through time in one backward op).
"""
from __future__ import annotations

import math
import numbers
import warnings

from ... import ops
from ...ops import rnn as _rnn
from ...ops.dropout import dropout as _dropout
from ...ops.shape import cat, stack
from ...tensor import Tensor
from .. import init
from ..parameter import Parameter
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _shape(t) -> tuple:
    return tuple(t.shape)


class RNNBase(Module):
    """Shared machinery of RNN, LSTM and GRU: parameters ``weight_ih_l{k}{_reverse}``,
    ``weight_hh_l{k}{_reverse}``, ``bias_ih_l{k}{_reverse}``, ``bias_hh_l{k}{_reverse}`` (and
    ``weight_hr_l{k}{_reverse}`` for a projected LSTM), each ``U(-1/sqrt(H), 1/sqrt(H))``."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
        super().__init__()
        name = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(mode, mode)
        if mode not in _GATES:
            raise ValueError(f"RNNBase: unrecognized RNN mode {mode!r}; expected one of "
                             f"{sorted(_GATES)}")
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or \
                not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout should be a number in range [0, 1] representing "
                             f"the probability of an element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"dropout option adds dropout after all but last recurrent layer, so "
                          f"non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        for arg, v in (("bias", bias), ("batch_first", batch_first),
                       ("bidirectional", bidirectional)):
            if not isinstance(v, bool):
                raise TypeError(f"{name}: {arg} should be of type bool, got: {type(v).__name__}")
        for arg, v in (("input_size", input_size), ("hidden_size", hidden_size),
                       ("num_layers", num_layers), ("proj_size", proj_size)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name}: {arg} should be of type int, got: {type(v).__name__}")
        if input_size <= 0:
            raise ValueError(f"{name}: input_size must be greater than zero, got {input_size}")
        if hidden_size <= 0:
            raise ValueError(f"{name}: hidden_size must be greater than zero, got {hidden_size}")
        if num_layers <= 0:
            raise ValueError(f"{name}: num_layers must be greater than zero, got {num_layers}")
        if proj_size < 0:
            raise ValueError(f"{name}: proj_size should be a positive integer or zero to "
                             f"disable projections, got {proj_size}")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size has to be smaller than hidden_size, got "
                             f"proj_size={proj_size} and hidden_size={hidden_size}")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        dirs = 2 if bidirectional else 1
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        empty = lambda *shape: Parameter(ops.creation.empty(*shape, dtype=dtype, device=device))
        for layer in range(num_layers):
            for direction in range(dirs):
                in_size = input_size if layer == 0 else real_hidden * dirs
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                params = {f"weight_ih{sfx}": empty(gate_size, in_size),
                          f"weight_hh{sfx}": empty(gate_size, real_hidden)}
                if bias:
                    params[f"bias_ih{sfx}"] = empty(gate_size)
                    params[f"bias_hh{sfx}"] = empty(gate_size)
                if proj_size > 0:
                    params[f"weight_hr{sfx}"] = empty(proj_size, hidden_size)
                for n, p in params.items():
                    setattr(self, n, p)
                self._flat_weights_names.extend(params)
                self._all_weights.append(list(params))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list:
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """A no-op kept for PyTorch scripts (cuDNN's contiguous weight buffer has no analogue)."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ----- forward ------------------------------------------------------------------------------
    def _name(self) -> str:
        return type(self).__name__

    def _check_input(self, input) -> bool:
        """Validate rank and feature size; return whether the input is batched."""
        if not isinstance(input, Tensor):
            raise TypeError(f"{self._name()}: expected a Tensor input, got "
                            f"{type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ValueError(f"{self._name()}: Expected input to be 2D or 3D, got {input.ndim}D "
                             f"instead (input shape {_shape(input)})")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{self._name()}: input.size(-1) must be equal to input_size. "
                               f"Expected {self.input_size}, got {input.shape[-1]} (input shape "
                               f"{_shape(input)})")
        if not input.is_floating_point() or input.dtype != self.weight_hh_l0.dtype:
            raise ValueError(f"{self._name()}: input dtype ({input.dtype}) does not match weight "
                             f"dtype ({self.weight_hh_l0.dtype}); convert the input with "
                             f".to({self.weight_hh_l0.dtype}) or the model with "
                             f".to({input.dtype})")
        return input.ndim == 3

    def _check_state(self, t, what: str, expected: tuple, batched: bool):
        if not isinstance(t, Tensor):
            raise TypeError(f"{self._name()}: {what} must be a Tensor, got {type(t).__name__}")
        want = expected if batched else (expected[0], expected[2])
        if t.ndim != len(want):
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise RuntimeError(f"{self._name()}: for {kind} input, {what} should also be "
                               f"{len(want)}-D but got a {t.ndim}-D tensor of shape "
                               f"{_shape(t)}")
        if _shape(t) != want:
            raise RuntimeError(f"{self._name()}: Expected {what} size {want}, got {_shape(t)} "
                               f"(num_layers * num_directions, batch, hidden)")
        if t.dtype != self.weight_hh_l0.dtype:
            raise ValueError(f"{self._name()}: {what} dtype ({t.dtype}) does not match weight "
                             f"dtype ({self.weight_hh_l0.dtype})")
        return t if batched else t.unsqueeze(1)

    def _states(self, hx, batch: int, batched: bool):
        """(h0 list, c0 list) per layer and direction; None entries mean zeros."""
        n = self.num_layers * (2 if self.bidirectional else 1)
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        lstm = self.mode == "LSTM"
        if hx is None:
            return [None] * n, [None] * n
        if lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{self._name()}: hx must be a tuple (h_0, c_0), got "
                                f"{type(hx).__name__}")
            h = self._check_state(hx[0], "hidden[0] (h_0)", (n, batch, real_hidden), batched)
            c = self._check_state(hx[1], "hidden[1] (c_0)", (n, batch, self.hidden_size),
                                  batched)
            return list(h.unbind(0)), list(c.unbind(0))
        if isinstance(hx, (tuple, list)):
            raise TypeError(f"{self._name()}: hx must be a Tensor (h_0), got a "
                            f"{type(hx).__name__}")
        h = self._check_state(hx, "hidden (h_0)", (n, batch, real_hidden), batched)
        return list(h.unbind(0)), [None] * n

    def forward(self, input, hx=None):
        batched = self._check_input(input)
        bf = self.batch_first
        if not batched:
            input = input.unsqueeze(0 if bf else 1)
        batch = input.shape[0 if bf else 1]
        h0s, c0s = self._states(hx, batch, batched)
        dirs = 2 if self.bidirectional else 1
        lstm = self.mode == "LSTM"
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        w = self._flat_weights
        per = len(self._all_weights[0])
        hs, cs = [], []
        x = input
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                k = layer * dirs + d
                p = w[k * per:(k + 1) * per]
                w_ih, w_hh = p[0], p[1]
                b_ih, b_hh = (p[2], p[3]) if self.bias else (None, None)
                h0 = h0s[k] if h0s[k] is not None else _zeros(w_hh, batch, real_hidden)
                if lstm:
                    c0 = c0s[k] if c0s[k] is not None else _zeros(w_hh, batch, self.hidden_size)
                    out, h, c = _rnn.lstm_layer(x, h0, c0, w_ih, w_hh, b_ih, b_hh,
                                                p[-1] if self.proj_size else None,
                                                reverse=d == 1, batch_first=bf)
                    cs.append(c)
                elif self.mode == "GRU":
                    out, h = _rnn.gru_layer(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=d == 1,
                                            batch_first=bf)
                else:
                    out, h = _rnn.rnn_layer(x, h0, w_ih, w_hh, b_ih, b_hh,
                                            nonlinearity="relu" if self.mode == "RNN_RELU"
                                            else "tanh", reverse=d == 1, batch_first=bf)
                outs.append(out)
                hs.append(h)
            x = outs[0] if dirs == 1 else cat(outs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = _dropout(x, self.dropout, True)
        h_n = _stack(hs)
        if not batched:
            x = x.squeeze(0 if bf else 1)
            h_n = h_n.squeeze(1)
        if not lstm:
            return x, h_n
        c_n = _stack(cs)
        return x, (h_n, c_n if batched else c_n.squeeze(1))


def _zeros(like: Tensor, *shape) -> Tensor:
    from ...ops.creation import wrap_constant
    return wrap_constant(like._dev.xp.zeros(shape, like._data.dtype), like._dev)


def _stack(ts: list) -> Tensor:
    return ts[0].unsqueeze(0) if len(ts) == 1 else stack(ts, 0)


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or relu).

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False)``; returns ``(output, h_n)``.
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:  # PyTorch's positional order puts nonlinearity fourth
            self_nl, args = args[3], args[:3] + args[4:]
        else:
            self_nl = kwargs.pop("nonlinearity", "tanh")
        if self_nl not in ("tanh", "relu"):
            raise ValueError(f"RNN: Unknown nonlinearity '{self_nl}'. Select from 'tanh' or "
                             f"'relu'.")
        super().__init__("RNN_TANH" if self_nl == "tanh" else "RNN_RELU", *args, **kwargs)
        self.nonlinearity = self_nl


class LSTM(RNNBase):
    """Long short-term memory (gates i, f, g, o as PyTorch).

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0)``; ``forward(input, (h_0, c_0))`` returns
    ``(output, (h_n, c_n))``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """Gated recurrent unit (gates r, z, n; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``).

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False)``; returns ``(output, h_n)``.
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


# ----- cells ----------------------------------------------------------------------------------


class RNNCellBase(Module):
    """One time step: ``weight_ih`` ``(gates*H, I)``, ``weight_hh`` ``(gates*H, H)``, biases."""

    _kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        for arg, v in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        empty = lambda *shape: Parameter(ops.creation.empty(*shape, dtype=dtype, device=device))
        self.weight_ih = empty(num_chunks * hidden_size, input_size)
        self.weight_hh = empty(num_chunks * hidden_size, hidden_size)
        if bias:
            self.bias_ih = empty(num_chunks * hidden_size)
            self.bias_hh = empty(num_chunks * hidden_size)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nl = getattr(self, "nonlinearity", "tanh")
        if nl != "tanh":
            s += f", nonlinearity={nl}"
        return s

    def _check_input(self, input) -> bool:
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: expected a Tensor input, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead "
                             f"(input shape {_shape(input)})")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{name}: input has inconsistent input_size: got "
                               f"{input.shape[-1]} expected {self.input_size} (input shape "
                               f"{_shape(input)})")
        if input.dtype != self.weight_hh.dtype:
            raise ValueError(f"{name}: input dtype ({input.dtype}) does not match weight dtype "
                             f"({self.weight_hh.dtype})")
        return input.ndim == 2

    def _state(self, h, what: str, batch: int, batched: bool):
        name = type(self).__name__
        if h is None:
            return _zeros(self.weight_hh, batch, self.hidden_size)
        if not isinstance(h, Tensor):
            raise TypeError(f"{name}: {what} must be a Tensor, got {type(h).__name__}")
        want = (batch, self.hidden_size) if batched else (self.hidden_size,)
        if _shape(h) != want:
            raise RuntimeError(f"{name}: Expected {what} of shape {want} for input batch size "
                               f"{batch if batched else 'unbatched'}, got {_shape(h)}")
        if h.dtype != self.weight_hh.dtype:
            raise ValueError(f"{name}: {what} dtype ({h.dtype}) does not match weight dtype "
                             f"({self.weight_hh.dtype})")
        return h if batched else h.unsqueeze(0)


class RNNCell(RNNCellBase):
    """``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu) for one step."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: Unknown nonlinearity: {nonlinearity}; select from "
                             f"'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        batched = self._check_input(input)
        x = input.unsqueeze(0) if batched else input.reshape(1, 1, -1)
        h0 = self._state(hx, "hx", x.shape[1], batched)
        _, h = _rnn.rnn_layer(x, h0, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                              nonlinearity=self.nonlinearity)
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step: ``forward(input, (h, c))`` returns ``(h', c')``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        batched = self._check_input(input)
        x = input.unsqueeze(0) if batched else input.reshape(1, 1, -1)
        if hx is None:
            hx = (None, None)
        elif not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c), got {type(hx).__name__}")
        h0 = self._state(hx[0], "hx[0] (h)", x.shape[1], batched)
        c0 = self._state(hx[1], "hx[1] (c)", x.shape[1], batched)
        _, h, c = _rnn.lstm_layer(x, h0, c0, self.weight_ih, self.weight_hh, self.bias_ih,
                                  self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step: returns ``h'``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        batched = self._check_input(input)
        x = input.unsqueeze(0) if batched else input.reshape(1, 1, -1)
        h0 = self._state(hx, "hx", x.shape[1], batched)
        _, h = _rnn.gru_layer(x, h0, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h if batched else h.squeeze(0)
