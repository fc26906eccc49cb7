"""Recurrent layers with Keras 3's weights and semantics: SimpleRNN, LSTM, GRU (and their cells),
the generic ``RNN(cell)`` and ``Bidirectional``.

Weights keep Keras's layout on the cell (``layer.cell.kernel`` ``(input, gates*units)``,
``recurrent_kernel`` ``(units, gates*units)``, ``bias``); Keras's LSTM gate order i, f, c, o is
PyTorch's i, f, g, o, and Keras's GRU with ``reset_after=True`` is PyTorch's GRU with the z and
r blocks swapped. So whenever the math matches ember's fused whole-sequence primitives
(``ops.rnn``: default activations, no mask, no recurrent dropout) they run the sequence; other
cases step the cell in Python with Keras's masking rules (a masked step keeps the previous
state and repeats the previous output, or zeros with ``zero_output_for_mask``).
"""
from __future__ import annotations

import numpy as np

from ... import ops
from ...ops import rnn as _rnn
from ...ops.comparison import where
from ...ops.dropout import _masked
from ...ops.random import Generator
from ...ops.shape import cat, flip, stack
from ...tensor import Tensor
from .. import activations as _activations
from .. import initializers as _initializers
from .. import regularizers as _regularizers
from .layer import Layer, _get_constraint, _ser_constraint, _ser_init, _ser_reg

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell", "RNN", "SimpleRNN", "LSTM", "GRU",
           "Bidirectional"]


def _tensor(x, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    a = np.asarray(x)
    if like is not None:
        a = a.astype(like._data.dtype)
    return Tensor._wrap(np.require(a, None, "C"))


# ----- cells ----------------------------------------------------------------------------------


class _Cell(Layer):
    """What the three cells share: arguments, dropout masks and the kernel/recurrent weights."""

    _float_inputs = True

    _gates = 1

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"{type(self).__name__}: received an invalid value for argument "
                             f"`units`, expected a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = _activations.get(activation)
        self.recurrent_activation = _activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.recurrent_initializer = _initializers.get(recurrent_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = _regularizers.get(recurrent_regularizer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)
        self.kernel_constraint = _get_constraint(kernel_constraint)
        self.recurrent_constraint = _get_constraint(recurrent_constraint)
        self.bias_constraint = _get_constraint(bias_constraint)
        for arg, v in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"{type(self).__name__}: `{arg}` must be in [0, 1], got {v}")
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed
        self._generator = None if seed is None else Generator().manual_seed(seed)
        self._masks = {}  # dropout masks, fixed for the whole sequence (Keras's rule)

    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    def _build_kernels(self, input_dim: int, bias_shape: tuple, bias_init=None) -> None:
        g = self._gates * self.units
        self.kernel = self.add_weight(shape=(input_dim, g), name="kernel",
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(shape=(self.units, g), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        if self.use_bias:
            self.bias = self.add_weight(shape=bias_shape, name="bias",
                                        initializer=bias_init or self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        else:
            self.bias = None

    def build(self, input_shape) -> None:
        if input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} \"{self.name}\": the feature dimension of "
                             f"the input must be known, got {tuple(input_shape)}")
        self._build_kernels(int(input_shape[-1]), (self._gates * self.units,))
        self.built = True

    def _mask(self, key: str, like: Tensor, rate: float) -> Tensor:
        m = self._masks.get(key)
        if m is None or tuple(m.shape) != tuple(like.shape):
            ones = ops.creation.ones(like.shape, dtype=like.dtype)
            m = self._masks[key] = _masked(type(self).__name__, ones, rate, True, like.shape,
                                           self._generator)
        return m

    def _reset_masks(self) -> None:
        self._masks = {}

    def _drop_inputs(self, x: Tensor, training) -> Tensor:
        if training and 0.0 < self.dropout < 1.0:
            return x * self._mask("input", x, self.dropout)
        return x

    def _drop_state(self, h: Tensor, training) -> Tensor:
        if training and 0.0 < self.recurrent_dropout < 1.0:
            return h * self._mask("recurrent", h, self.recurrent_dropout)
        return h

    def get_initial_state(self, batch_size: int) -> list:
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        return [ops.creation.zeros((batch_size, s), dtype=self.kernel.dtype) for s in sizes]

    def _check_step(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[-1] != self.kernel.shape[0]:
            raise self._input_error(x, f"(batch, {self.kernel.shape[0]})")

    def compute_output_shape(self, input_shape, states_shape=None):
        return (input_shape[0], self.units)

    def _cell_config(self) -> dict:
        return {"units": self.units,
                "activation": _activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": _ser_init(self.kernel_initializer),
                "recurrent_initializer": _ser_init(self.recurrent_initializer),
                "bias_initializer": _ser_init(self.bias_initializer),
                "kernel_regularizer": _ser_reg(self.kernel_regularizer),
                "recurrent_regularizer": _ser_reg(self.recurrent_regularizer),
                "bias_regularizer": _ser_reg(self.bias_regularizer),
                "kernel_constraint": _ser_constraint(self.kernel_constraint),
                "recurrent_constraint": _ser_constraint(self.recurrent_constraint),
                "bias_constraint": _ser_constraint(self.bias_constraint),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed}

    def get_config(self) -> dict:
        return {**super().get_config(), **self._cell_config()}

    def _fusable(self, training) -> bool:
        return self.activation is _activations.tanh and (
            self.recurrent_activation is _activations.sigmoid or self._gates == 1) and not (
            training and 0.0 < self.recurrent_dropout)


class SimpleRNNCell(_Cell):
    """One step of ``h = activation(x @ kernel + h @ recurrent_kernel + bias)``."""

    _gates = 1

    def __init__(self, units: int, activation="tanh", use_bias: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed=None, **kwargs):
        super().__init__(units, activation, "sigmoid", use_bias, kernel_initializer,
                         recurrent_initializer, bias_initializer, kernel_regularizer,
                         recurrent_regularizer, bias_regularizer, kernel_constraint,
                         recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed,
                         **kwargs)

    def call(self, sequence: Tensor, states, training=False):
        self._check_step(sequence)
        listed = isinstance(states, (list, tuple))
        h = states[0] if listed else states
        x = self._drop_inputs(sequence, training)
        h = self._drop_state(h, training)
        y = x @ self.kernel
        if self.bias is not None:
            y = y + self.bias
        out = self.activation(y + h @ self.recurrent_kernel)
        return out, ([out] if listed else out)

    def _fusable(self, training) -> bool:
        return (self.activation is _activations.tanh or self.activation is _activations.relu) \
            and not (training and 0.0 < self.recurrent_dropout)

    def _fused(self, x: Tensor, states: list):
        nl = "tanh" if self.activation is _activations.tanh else "relu"
        out, h = _rnn.rnn_layer(x, states[0], self.kernel.t(), self.recurrent_kernel.t(),
                                self.bias, None, nonlinearity=nl, batch_first=True)
        return out, [h]

    def get_config(self) -> dict:
        return {**Layer.get_config(self), **self._cell_config()}


class LSTMCell(_Cell):
    """One LSTM step with Keras's gates i, f, c, o; ``unit_forget_bias`` starts f's bias at 1."""

    _gates = 4

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias: bool = True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed=None, **kwargs):
        kwargs.pop("implementation", None)  # Keras 2's kernel choice: same math
        super().__init__(units, activation, recurrent_activation, use_bias, kernel_initializer,
                         recurrent_initializer, bias_initializer, kernel_regularizer,
                         recurrent_regularizer, bias_regularizer, kernel_constraint,
                         recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed,
                         **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def build(self, input_shape) -> None:
        if input_shape[-1] is None:
            raise ValueError(f"LSTMCell \"{self.name}\": the feature dimension of the input "
                             f"must be known, got {tuple(input_shape)}")
        init = None
        if self.unit_forget_bias:
            u, base = self.units, self.bias_initializer

            def init(shape, dtype=None):
                b = base((u,), dtype).numpy()
                rest = base((2 * u,), dtype).numpy()
                return Tensor._wrap(np.concatenate([b, np.ones(u, b.dtype), rest]))
        self._build_kernels(int(input_shape[-1]), (4 * self.units,), init)
        self.built = True

    def call(self, sequence: Tensor, states, training=False):
        self._check_step(sequence)
        h, c = states[0], states[1]
        x = self._drop_inputs(sequence, training)
        h = self._drop_state(h, training)
        z = x @ self.kernel + h @ self.recurrent_kernel
        if self.bias is not None:
            z = z + self.bias
        zi, zf, zc, zo = z.chunk(4, -1)
        i = self.recurrent_activation(zi)
        f = self.recurrent_activation(zf)
        c = f * c + i * self.activation(zc)
        o = self.recurrent_activation(zo)
        h = o * self.activation(c)
        return h, [h, c]

    def _fused(self, x: Tensor, states: list):
        out, h, c = _rnn.lstm_layer(x, states[0], states[1], self.kernel.t(),
                                    self.recurrent_kernel.t(), self.bias, None,
                                    batch_first=True)
        return out, [h, c]

    def get_config(self) -> dict:
        return {**super().get_config(),
                "recurrent_activation": _activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}


class GRUCell(_Cell):
    """One GRU step with Keras's gates z, r, h; ``reset_after=True`` (the default) applies the
    reset gate after the recurrent matmul and keeps separate input/recurrent biases ``(2, 3u)``."""

    _gates = 3

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, reset_after: bool = True,
                 seed=None, **kwargs):
        kwargs.pop("implementation", None)
        super().__init__(units, activation, recurrent_activation, use_bias, kernel_initializer,
                         recurrent_initializer, bias_initializer, kernel_regularizer,
                         recurrent_regularizer, bias_regularizer, kernel_constraint,
                         recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed,
                         **kwargs)
        self.reset_after = bool(reset_after)

    def build(self, input_shape) -> None:
        if input_shape[-1] is None:
            raise ValueError(f"GRUCell \"{self.name}\": the feature dimension of the input "
                             f"must be known, got {tuple(input_shape)}")
        g = 3 * self.units
        self._build_kernels(int(input_shape[-1]), (2, g) if self.reset_after else (g,))
        self.built = True

    def call(self, sequence: Tensor, states, training=False):
        self._check_step(sequence)
        listed = isinstance(states, (list, tuple))
        h_prev = states[0] if listed else states
        x = self._drop_inputs(sequence, training)
        h = self._drop_state(h_prev, training)
        u = self.units
        if self.bias is None:
            b_in = b_rec = None
        elif self.reset_after:
            b_in, b_rec = self.bias[0], self.bias[1]
        else:
            b_in, b_rec = self.bias, None
        xm = x @ self.kernel
        if b_in is not None:
            xm = xm + b_in
        xz, xr, xh = xm.chunk(3, -1)
        if self.reset_after:
            inner = h @ self.recurrent_kernel
            if b_rec is not None:
                inner = inner + b_rec
            rz, rr, rh = inner.chunk(3, -1)
            z = self.recurrent_activation(xz + rz)
            r = self.recurrent_activation(xr + rr)
            hh = self.activation(xh + r * rh)
        else:
            rk = self.recurrent_kernel
            z = self.recurrent_activation(xz + h @ rk[:, :u])
            r = self.recurrent_activation(xr + h @ rk[:, u:2 * u])
            hh = self.activation(xh + (r * h) @ rk[:, 2 * u:])
        out = z * h_prev + (1 - z) * hh
        return out, ([out] if listed else out)

    def _fusable(self, training) -> bool:
        return self.reset_after and super()._fusable(training)

    def _fused(self, x: Tensor, states: list):
        u = self.units
        # Keras's blocks z, r, h -> PyTorch's r, z, n
        perm = Tensor._wrap(np.concatenate([np.arange(u, 2 * u), np.arange(u),
                                            np.arange(2 * u, 3 * u)]))
        w_ih = self.kernel.index_select(1, perm).t()
        w_hh = self.recurrent_kernel.index_select(1, perm).t()
        b_ih = b_hh = None
        if self.bias is not None:
            b = self.bias.index_select(1, perm)
            b_ih, b_hh = b[0], b[1]
        out, h = _rnn.gru_layer(x, states[0], w_ih, w_hh, b_ih, b_hh, batch_first=True)
        return out, [h]

    def get_config(self) -> dict:
        return {**super().get_config(),
                "recurrent_activation": _activations.serialize(self.recurrent_activation),
                "reset_after": self.reset_after}


_CELLS = {c.__name__: c for c in (SimpleRNNCell, LSTMCell, GRUCell)}


# ----- the sequence layers --------------------------------------------------------------------


class RNN(Layer):
    """Runs ``cell`` over the time axis of ``(batch, timesteps, features)`` inputs.

    ``return_sequences`` gives every step's output, ``return_state`` adds the final states,
    ``go_backwards`` processes the sequence reversed (and returns the outputs in that order).
    """

    _float_inputs = True

    def __init__(self, cell, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, **kwargs):
        if isinstance(cell, dict):
            cls = _CELLS.get(cell.get("class_name"))
            if cls is None:
                raise ValueError(f"RNN: unknown cell class {cell.get('class_name')!r}; known: "
                                 f"{sorted(_CELLS)}")
            cell = cls.from_config(dict(cell.get("config") or {}))
        if isinstance(cell, (list, tuple)):
            raise ValueError("RNN: stacked cells are not supported; stack RNN layers instead")
        if not isinstance(cell, Layer) or not hasattr(cell, "state_size"):
            raise ValueError(f"RNN: `cell` should be a Keras RNN cell (a Layer with "
                             f"`state_size` and `call(inputs, states)`), got {cell!r}")
        if stateful:
            raise ValueError(f"{type(self).__name__}: stateful=True is not supported by "
                             f"ember.keras; carry states with initial_state/return_state")
        kwargs.setdefault("dtype", cell.dtype)  # the wrapper computes in the cell's dtype
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = False
        self.unroll = bool(unroll)  # Keras's graph-building option; the math is the same
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True

    def build(self, sequences_shape, initial_state_shape=None) -> None:
        if sequences_shape is None or len(sequences_shape) != 3:
            raise ValueError(f"{type(self).__name__} \"{self.name}\": expected input of shape "
                             f"(batch, timesteps, features), got {sequences_shape}")
        self.cell._maybe_build((sequences_shape[0], sequences_shape[2]))
        self.built = True

    def _n_states(self) -> int:
        s = self.cell.state_size
        return len(s) if isinstance(s, list) else 1

    def call(self, sequences: Tensor, initial_state=None, mask=None, training=False):
        cell = self.cell
        if not isinstance(sequences, Tensor) or sequences.ndim != 3 \
                or sequences.shape[-1] != cell.kernel.shape[0]:
            raise self._input_error(sequences, f"ndim=3 (batch, timesteps, "
                                                f"{cell.kernel.shape[0]})")
        if sequences.shape[1] == 0:
            raise self._input_error(sequences, "at least one timestep")
        B = sequences.shape[0]
        if initial_state is None:
            states = cell.get_initial_state(B)
        else:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) \
                else [initial_state]
            states = [_tensor(s, sequences) for s in states]
            sizes = cell.state_size if isinstance(cell.state_size, list) else [cell.state_size]
            if len(states) != len(sizes) or any(tuple(s.shape) != (B, n)
                                                for s, n in zip(states, sizes)):
                raise ValueError(f"{type(self).__name__} \"{self.name}\": initial_state must "
                                 f"be {len(sizes)} tensor(s) of shapes "
                                 f"{[(B, n) for n in sizes]}, got "
                                 f"{[tuple(s.shape) for s in states]}")
        x = flip(sequences, (1,)) if self.go_backwards else sequences
        if mask is not None:
            mask = _tensor(mask)
            if self.go_backwards:
                mask = flip(mask, (1,))
        cell._reset_masks()
        try:
            if mask is None and hasattr(cell, "_fused") and cell._fusable(training):
                outputs, states = cell._fused(cell._drop_inputs(x, training), states)
                last = outputs[:, -1]
            else:
                outputs, last, states = self._loop(x, states, mask, training)
        finally:
            cell._reset_masks()
        out = outputs if self.return_sequences else last
        if self.return_state:
            return [out] + list(states)
        return out

    def _loop(self, x: Tensor, states: list, mask, training):
        """Keras's step loop: masked steps keep the state and repeat the previous output."""
        outs = []
        prev = None
        T = x.shape[1]
        for t in range(T):
            out, new = self.cell(x[:, t], states, training=training)
            new = list(new) if isinstance(new, (list, tuple)) else [new]
            if mask is not None:
                m = mask[:, t].unsqueeze(-1)
                if prev is None:
                    prev = out * 0
                out = where(m, out, prev)
                new = [where(m, s_new, s_old) for s_new, s_old in zip(new, states)]
            outs.append(out)
            prev = out
            states = new
        outputs = stack(outs, 1)
        last = outs[-1]
        if mask is not None and self.zero_output_for_mask:
            m = mask.unsqueeze(-1)
            outputs = where(m, outputs, outputs * 0)
            last = where(m[:, -1], last, last * 0)
        return outputs, last, states

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out = mask if self.return_sequences else None
        if self.return_state:
            return [out] + [None] * self._n_states()
        return out

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        b, t = sequences_shape[0], sequences_shape[1]
        u = self.cell.output_size
        out = (b, t, u) if self.return_sequences else (b, u)
        if self.return_state:
            sizes = self.cell.state_size if isinstance(self.cell.state_size, list) else \
                [self.cell.state_size]
            return [out] + [(b, n) for n in sizes]
        return out

    def _rnn_config(self) -> dict:
        return {"return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful,
                "unroll": self.unroll, "zero_output_for_mask": self.zero_output_for_mask}

    def get_config(self) -> dict:
        cell = {"module": "keras.layers", "class_name": type(self.cell).__name__,
                "config": self.cell.get_config(), "registered_name": None}
        return {**super().get_config(), **self._rnn_config(), "cell": cell}


_CELL_ARGS = ("units", "activation", "recurrent_activation", "use_bias", "kernel_initializer",
              "recurrent_initializer", "bias_initializer", "unit_forget_bias",
              "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
              "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
              "recurrent_dropout", "reset_after", "seed", "implementation")
_RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
             "zero_output_for_mask")


class _CellLayer(RNN):
    """SimpleRNN/LSTM/GRU: an RNN whose cell is made from the layer's own arguments."""

    _cell_class: type = SimpleRNNCell

    def __init__(self, units: int, **kwargs):
        cell_kw = {k: kwargs.pop(k) for k in _CELL_ARGS if k in kwargs}
        kwargs.pop("use_cudnn", None)  # a kernel choice in Keras; ember has one kernel
        rnn_kw = {k: kwargs.pop(k) for k in _RNN_ARGS if k in kwargs}
        dtype = kwargs.get("dtype")
        trainable = kwargs.get("trainable", True)
        cell = self._cell_class(units, dtype=dtype, trainable=trainable,
                                name=f"{type(self).__name__.lower()}_cell"
                                if type(self).__name__ != "SimpleRNN" else "simple_rnn_cell",
                                **cell_kw)
        super().__init__(cell, **rnn_kw, **kwargs)

    def __getattr__(self, name: str):
        # Keras exposes the cell's hyper-parameters on the layer (layer.units, layer.dropout)
        if name in _CELL_ARGS:
            cell = self.__dict__.get("_modules", {}).get("cell")
            if cell is not None and name in cell.__dict__:
                return cell.__dict__[name]
        return super().__getattr__(name)

    def get_config(self) -> dict:
        config = {**Layer.get_config(self), **self._rnn_config(), **self.cell._cell_config()}
        if hasattr(self.cell, "recurrent_activation") and self._cell_class is not SimpleRNNCell:
            config["recurrent_activation"] = _activations.serialize(
                self.cell.recurrent_activation)
        if self._cell_class is LSTMCell:
            config["unit_forget_bias"] = self.cell.unit_forget_bias
        if self._cell_class is GRUCell:
            config["reset_after"] = self.cell.reset_after
        config["activity_regularizer"] = _ser_reg(self.activity_regularizer)
        if self._cell_class is SimpleRNNCell:
            config.pop("seed")  # Keras's SimpleRNN keeps its seed on the cell only
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config.pop("cell", None)
        return cls(**config)


class SimpleRNN(_CellLayer):
    """Fully-connected RNN, ``h_t = tanh(x_t W + h_{t-1} U + b)``."""

    _cell_class = SimpleRNNCell


class LSTM(_CellLayer):
    """Long short-term memory (Hochreiter & Schmidhuber) with Keras's weights and defaults."""

    _cell_class = LSTMCell


class GRU(_CellLayer):
    """Gated recurrent unit (Cho et al.); ``reset_after=True`` (Keras 3's default)."""

    _cell_class = GRUCell


_SEQUENCE_LAYERS = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU, "RNN": RNN}


def _clone(layer: Layer, **changes) -> Layer:
    config = {**layer.get_config(), **changes}
    return type(layer).from_config(config)


class Bidirectional(Layer):
    """Runs a recurrent ``layer`` forwards and a copy backwards and merges the two outputs.

    ``merge_mode``: "concat" (default), "sum", "mul", "ave" or None (a list of both). The
    forward layer is re-created from ``layer``'s config (named ``forward_<name>``) and the
    backward one too with ``go_backwards`` flipped, unless ``backward_layer`` is given.
    """

    _float_inputs = True

    def __init__(self, layer, merge_mode: str | None = "concat", weights=None,
                 backward_layer=None, **kwargs):
        if isinstance(layer, dict):
            layer = _deserialize_rnn(layer)
        if isinstance(backward_layer, dict):
            backward_layer = _deserialize_rnn(backward_layer)
        if not isinstance(layer, RNN):
            raise ValueError(f"Bidirectional: please initialize `Bidirectional` layer with a "
                             f"RNN layer instance, got {layer!r}")
        if backward_layer is not None and not isinstance(backward_layer, RNN):
            raise ValueError(f"Bidirectional: `backward_layer` needs to be a RNN layer "
                             f"instance, got {backward_layer!r}")
        if merge_mode not in ("sum", "mul", "ave", "concat", None):
            raise ValueError(f"Bidirectional: invalid merge mode {merge_mode!r}; merge mode "
                             f"should be one of {{'sum', 'mul', 'ave', 'concat', None}}")
        kwargs.setdefault("dtype", layer.dtype)
        super().__init__(**kwargs)
        fname = "forward_" + layer.name.removeprefix("forward_")
        self.forward_layer = _clone(layer, name=fname)
        if backward_layer is None:
            bname = "backward_" + layer.name.removeprefix("backward_")
            self.backward_layer = _clone(layer, name=bname, go_backwards=not layer.go_backwards)
        else:
            self.backward_layer = backward_layer
        for side in (self.forward_layer, self.backward_layer):
            # Keras zeroes masked outputs of both directions when returning sequences
            side.zero_output_for_mask = side.return_sequences
        f, b = self.forward_layer, self.backward_layer
        if f.return_sequences != b.return_sequences or f.return_state != b.return_state:
            raise ValueError(f"Bidirectional: forward layer and backward layer should have the "
                             f"same `return_sequences` and `return_state`, got forward "
                             f"{f.return_sequences}/{f.return_state} and backward "
                             f"{b.return_sequences}/{b.return_state}")
        if f.go_backwards == b.go_backwards:
            raise ValueError("Bidirectional: forward layer and backward layer must have "
                             "different `go_backwards` values")
        self.merge_mode = merge_mode
        self.return_sequences = f.return_sequences
        self.return_state = f.return_state
        self.supports_masking = True
        self._initial_weights = weights

    def build(self, sequences_shape, initial_state_shape=None) -> None:
        self.forward_layer._maybe_build(tuple(sequences_shape))
        self.backward_layer._maybe_build(tuple(sequences_shape))
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def call(self, sequences: Tensor, initial_state=None, mask=None, training=None):
        fwd_state = bwd_state = None
        if initial_state is not None:
            initial_state = list(initial_state)
            half = len(initial_state) // 2
            fwd_state, bwd_state = initial_state[:half], initial_state[half:]
        y = self.forward_layer(sequences, initial_state=fwd_state, mask=mask, training=training)
        y_rev = self.backward_layer(sequences, initial_state=bwd_state, mask=mask,
                                    training=training)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = flip(y_rev, (1,))
        mode = self.merge_mode
        if mode == "concat":
            output = cat([y, y_rev], -1)
        elif mode == "sum":
            output = y + y_rev
        elif mode == "ave":
            output = (y + y_rev) / 2
        elif mode == "mul":
            output = y * y_rev
        else:
            output = [y, y_rev]
        if self.return_state:
            return (output if mode is None else [output]) + states
        return output

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        shape = self.forward_layer.compute_output_shape(sequences_shape)
        states = []
        if self.return_state:
            states = list(shape[1:]) * 2
            shape = shape[0]
        if self.merge_mode == "concat":
            out = tuple(shape[:-1]) + (None if shape[-1] is None else 2 * shape[-1],)
        elif self.merge_mode is None:
            out = [tuple(shape), tuple(shape)]
        else:
            out = tuple(shape)
        if self.return_state:
            return (out if self.merge_mode is None else [out]) + states
        return out

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out = mask if self.return_sequences else None
        if self.return_state:
            n = self.forward_layer._n_states() * 2
            return [out] * (2 if self.merge_mode is None else 1) + [None] * n
        if self.merge_mode is None:
            return [out, out]
        return out

    def get_config(self) -> dict:
        def ser(layer):
            return {"module": "keras.layers", "class_name": type(layer).__name__,
                    "config": layer.get_config(), "registered_name": None}
        return {**super().get_config(), "merge_mode": self.merge_mode,
                "layer": ser(self.forward_layer), "backward_layer": ser(self.backward_layer)}


def _deserialize_rnn(config: dict) -> RNN:
    cls = _SEQUENCE_LAYERS.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"Bidirectional: unknown recurrent layer class "
                         f"{config.get('class_name')!r}; known: {sorted(_SEQUENCE_LAYERS)}")
    return cls.from_config(dict(config.get("config") or {}))
