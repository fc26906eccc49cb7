"""``Embedding``: integer indices to dense vectors, with Keras's ``mask_zero`` (index 0 is
padding: the layer emits a mask that RNNs and GlobalAveragePooling1D honour)."""
from __future__ import annotations

import numpy as np

from ...ops.embedding import embedding as _embedding
from ...tensor import Tensor
from .. import initializers as _initializers
from .. import regularizers as _regularizers
from .layer import Layer, _get_constraint, _ser_constraint, _ser_init, _ser_reg

__all__ = ["Embedding"]


class Embedding(Layer):
    """Looks up rows of ``embeddings`` ``(input_dim, output_dim)``; initialised U(-0.05, 0.05)."""

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None,
                 mask_zero: bool = False, weights=None, **kwargs):
        kwargs.pop("input_length", None)  # Keras 2's argument; shapes are lazy now
        super().__init__(**kwargs)
        for arg, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"Embedding: `{arg}` must be a positive integer, got "
                                 f"{arg}={v!r}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = _initializers.get(embeddings_initializer)
        self.embeddings_regularizer = _regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = _get_constraint(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        if weights is not None:
            self.build()
            self.set_weights(weights if isinstance(weights, (list, tuple)) else [weights])

    def build(self, input_shape=None) -> None:
        if self.built:
            return
        self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                          name="embeddings",
                                          initializer=self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint)
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        if not isinstance(inputs, Tensor):
            raise TypeError(f"Embedding \"{self.name}\": expected an integer tensor, got "
                            f"{type(inputs).__name__}")
        idx = inputs
        if idx._data.dtype.kind not in "iu":
            # Keras casts float indices (e.g. data loaded as float32) to int
            idx = Tensor._wrap(idx._data.astype(np.int64), idx._dev)
        data = idx._data
        if data.size and (data.min() < 0 or data.max() >= self.input_dim):
            bad = int(data.max() if data.max() >= self.input_dim else data.min())
            raise IndexError(f"Embedding \"{self.name}\": index {bad} is out of range for "
                             f"input_dim={self.input_dim} (input shape {tuple(inputs.shape)})")
        return _embedding(idx, self.embeddings)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return inputs != 0

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self) -> dict:
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": _ser_init(self.embeddings_initializer),
                "embeddings_regularizer": _ser_reg(self.embeddings_regularizer),
                "activity_regularizer": _ser_reg(self.activity_regularizer),
                "embeddings_constraint": _ser_constraint(self.embeddings_constraint),
                "mask_zero": self.mask_zero}
