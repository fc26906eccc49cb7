"""``MultiHeadAttention`` with Keras 3's weights: per-head projections ``query``/``key``/``value``
with kernels ``(dim, num_heads, key_dim)`` and biases ``(num_heads, key_dim)``, and an output
projection ``attention_output`` with kernel ``(num_heads, value_dim, out_dim)``.

Scores are ``softmax(q k^T / sqrt(key_dim))`` over the keys; masked positions get Keras's large
negative logit (-1e9), so a fully masked row attends uniformly as in Keras.
"""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes as _dt
from ... import ops
from ...ops.dropout import _masked
from ...ops.random import Generator
from ...tensor import Tensor
from .. import initializers as _initializers
from .. import regularizers as _regularizers
from .layer import Layer, _get_constraint, _get_mask, _ser_constraint, _ser_init, _ser_reg

__all__ = ["MultiHeadAttention"]


class _Projection(Layer):
    """Keras's EinsumDense as MultiHeadAttention uses it: contracts the last ``n_in`` input axes
    with the kernel's first ``n_in`` axes (kernel ``(*in, *out)``, bias ``out``)."""

    def __init__(self, in_dims: tuple, out_dims: tuple, use_bias: bool, kernel_initializer,
                 bias_initializer, kernel_regularizer, bias_regularizer, kernel_constraint,
                 bias_constraint, **kwargs):
        super().__init__(**kwargs)
        self.in_dims, self.out_dims = tuple(in_dims), tuple(out_dims)
        self.kernel = self.add_weight(shape=self.in_dims + self.out_dims, name="kernel",
                                      initializer=kernel_initializer,
                                      regularizer=kernel_regularizer,
                                      constraint=kernel_constraint)
        if use_bias:
            self.bias = self.add_weight(shape=self.out_dims, name="bias",
                                        initializer=bias_initializer,
                                        regularizer=bias_regularizer,
                                        constraint=bias_constraint)
        else:
            self.bias = None
        self.built = True

    def call(self, x: Tensor) -> Tensor:
        n_in = len(self.in_dims)
        lead = tuple(x.shape[:x.ndim - n_in])
        k_in, k_out = math.prod(self.in_dims), math.prod(self.out_dims)
        y = x.reshape(-1, k_in) @ self.kernel.reshape(k_in, k_out)
        y = y.reshape(lead + self.out_dims)
        return y + self.bias if self.bias is not None else y

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape[:len(input_shape) - len(self.in_dims)]) + self.out_dims

    def get_config(self) -> dict:
        raise NotImplementedError("_Projection is built by MultiHeadAttention and is not "
                                  "serialized on its own")


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al.) with Keras's arguments, weights and masking.

    ``call(query, value, key=None, attention_mask=None, return_attention_scores=False,
    use_causal_mask=False)``: ``attention_mask`` is boolean ``(B, T, S)`` (True attends); the
    Keras masks of ``query``/``value`` (from ``Embedding(mask_zero=True)``) are honoured.
    """

    _float_inputs = True

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None,
                 dropout: float = 0.0, use_bias: bool = True, output_shape=None,
                 attention_axes=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 seed=None, **kwargs):
        for k in ("flash_attention", "sliding_window", "use_gate"):
            if kwargs.get(k) in (None, False):
                kwargs.pop(k, None)  # Keras 3 options at their defaults: nothing to do
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        for arg, v in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"MultiHeadAttention: `{arg}` must be a positive integer, got "
                                 f"{arg}={v!r}")
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"MultiHeadAttention: `dropout` must be in [0, 1], got {dropout}")
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        if output_shape is not None:
            output_shape = (int(output_shape),) if isinstance(output_shape, (int, np.integer)) \
                else tuple(int(d) for d in output_shape)
        self._output_shape = output_shape
        if attention_axes is not None:
            raise ValueError("MultiHeadAttention: custom `attention_axes` are not supported by "
                             "ember.keras; the default attends over every axis between the "
                             "batch and the feature axis")
        self.attention_axes = None
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)
        self.kernel_constraint = _get_constraint(kernel_constraint)
        self.bias_constraint = _get_constraint(bias_constraint)
        self.seed = seed
        self._generator = None if seed is None else Generator().manual_seed(seed)
        self.supports_masking = True

    def _projection(self, name: str, in_dims, out_dims) -> _Projection:
        return _Projection(in_dims, out_dims, self.use_bias, self.kernel_initializer,
                           self.bias_initializer, self.kernel_regularizer, self.bias_regularizer,
                           self.kernel_constraint, self.bias_constraint, name=name,
                           dtype=self.dtype)

    def build(self, query_shape, value_shape, key_shape=None) -> None:
        key_shape = value_shape if key_shape is None else key_shape
        for what, s in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if s is None or len(s) < 3 or s[-1] is None:
                raise ValueError(f"MultiHeadAttention \"{self.name}\": {what} must have shape "
                                 f"(batch, ..., features) with known features, got {s}")
        if tuple(value_shape[1:-1]) != tuple(key_shape[1:-1]):
            raise ValueError(f"MultiHeadAttention \"{self.name}\": all dimensions of `value` "
                             f"and `key`, except the last one, must be equal, got value_shape="
                             f"{tuple(value_shape)} and key_shape={tuple(key_shape)}")
        h = self.num_heads
        self.query_dense = self._projection("query", (query_shape[-1],), (h, self.key_dim))
        self.key_dense = self._projection("key", (key_shape[-1],), (h, self.key_dim))
        self.value_dense = self._projection("value", (value_shape[-1],), (h, self.value_dim))
        out = self._output_shape or (query_shape[-1],)
        self.output_dense = self._projection("attention_output", (h, self.value_dim), out)
        self.built = True

    def call(self, query: Tensor, value: Tensor, key: Tensor | None = None, query_mask=None,
             value_mask=None, key_mask=None, attention_mask=None,
             return_attention_scores: bool = False, training=None,
             use_causal_mask: bool = False):
        key = value if key is None else key
        value = self._convert(value)
        key = self._convert(key)
        qd, kd, vd = (self.query_dense.kernel.shape[0], self.key_dense.kernel.shape[0],
                      self.value_dense.kernel.shape[0])
        for what, t, d in (("query", query, qd), ("value", value, vd), ("key", key, kd)):
            if not isinstance(t, Tensor) or t.ndim < 3 or t.shape[-1] != d:
                raise ValueError(f"MultiHeadAttention \"{self.name}\": expected {what} of shape "
                                 f"(batch, ..., {d}), got "
                                 f"{tuple(t.shape) if isinstance(t, Tensor) else t!r}")
        if tuple(key.shape[:-1]) != tuple(value.shape[:-1]):
            raise ValueError(f"MultiHeadAttention \"{self.name}\": key {tuple(key.shape)} and "
                             f"value {tuple(value.shape)} must agree on all but the last axis")
        query_mask = _get_mask(query) if query_mask is None else query_mask
        value_mask = _get_mask(value) if value_mask is None else value_mask
        key_mask = _get_mask(key) if key_mask is None and key is not value else key_mask
        B = query.shape[0]
        q_inner = tuple(query.shape[1:-1])
        kv_inner = tuple(value.shape[1:-1])
        Tq, Tk = math.prod(q_inner), math.prod(kv_inner)
        # attention over every inner axis: flatten them (Keras's default attention_axes)
        q = self.query_dense(query).reshape(B, Tq, self.num_heads, self.key_dim)
        k = self.key_dense(key).reshape(B, Tk, self.num_heads, self.key_dim)
        v = self.value_dense(value).reshape(B, Tk, self.num_heads, self.value_dim)
        q = q.permute(0, 2, 1, 3) * (1.0 / math.sqrt(float(self.key_dim)))
        k = k.permute(0, 2, 3, 1)
        v = v.permute(0, 2, 1, 3)
        scores = q @ k  # (B, heads, Tq, Tk)
        mask = self._attention_mask(B, Tq, Tk, query_mask, value_mask, key_mask,
                                    attention_mask, use_causal_mask)
        if mask is not None:
            big = -3e4 if scores.dtype.name == "float16" else -1e9
            scores = scores + (1.0 - mask.unsqueeze(1).to(scores.dtype)) * big
        probs = ops.activation.softmax(scores, -1)
        dropped = _masked("MultiHeadAttention", probs, self.dropout, bool(training),
                          probs.shape, self._generator) if self.dropout > 0 else probs
        ctx = (dropped @ v).permute(0, 2, 1, 3)  # (B, Tq, heads, value_dim)
        ctx = ctx.reshape((B,) + q_inner + (self.num_heads, self.value_dim))
        out = self.output_dense(ctx)
        if return_attention_scores:
            return out, probs.reshape((B, self.num_heads) + q_inner + kv_inner)
        return out

    def _attention_mask(self, B, Tq, Tk, query_mask, value_mask, key_mask, attention_mask,
                        use_causal_mask):
        def as_bool(m, shape):
            m = m if isinstance(m, Tensor) else Tensor._wrap(np.asarray(m))
            m = m.to(_dt.bool_) if m.dtype.name != "bool" else m
            return m.reshape(shape)
        auto = None

        def both(a, b):
            return b if a is None else ops.comparison.logical_and(a, b)
        if query_mask is not None:
            auto = as_bool(query_mask, (B, Tq, 1))
        if value_mask is not None:
            auto = both(auto, as_bool(value_mask, (B, 1, Tk)))
        if key_mask is not None:
            auto = both(auto, as_bool(key_mask, (B, 1, Tk)))
        if use_causal_mask:
            causal = Tensor._wrap(np.tril(np.ones((Tq, Tk), bool)).reshape(1, Tq, Tk))
            auto = both(auto, causal)
        if attention_mask is not None:
            am = attention_mask if isinstance(attention_mask, Tensor) else \
                Tensor._wrap(np.asarray(attention_mask))
            if am.ndim < 2:
                raise ValueError(f"MultiHeadAttention \"{self.name}\": attention_mask must be "
                                 f"(B, T, S), got shape {tuple(am.shape)}")
            am = as_bool(am, (-1, Tq, Tk))
            auto = am if auto is None else ops.comparison.logical_and(am, auto)
        return auto

    def compute_output_shape(self, query_shape, value_shape, key_shape=None) -> tuple:
        key_shape = value_shape if key_shape is None else key_shape
        if tuple(value_shape[1:-1]) != tuple(key_shape[1:-1]):
            raise ValueError(f"MultiHeadAttention \"{self.name}\": all dimensions of `value` "
                             f"and `key`, except the last one, must be equal, got value_shape="
                             f"{tuple(value_shape)} and key_shape={tuple(key_shape)}")
        if self._output_shape:
            return tuple(query_shape[:-1]) + self._output_shape
        return tuple(query_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_shape": None if self._output_shape is None else list(self._output_shape),
                "attention_axes": None,
                "kernel_initializer": _ser_init(self.kernel_initializer),
                "bias_initializer": _ser_init(self.bias_initializer),
                "kernel_regularizer": _ser_reg(self.kernel_regularizer),
                "bias_regularizer": _ser_reg(self.bias_regularizer),
                "activity_regularizer": _ser_reg(self.activity_regularizer),
                "kernel_constraint": _ser_constraint(self.kernel_constraint),
                "bias_constraint": _ser_constraint(self.bias_constraint),
                "seed": self.seed}
