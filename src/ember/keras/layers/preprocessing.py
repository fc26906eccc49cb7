"""Preprocessing layers: ``Rescaling(scale, offset)`` and ``Normalization`` (feature-wise
standardisation with statistics given or learnt by ``adapt(data)``)."""
from __future__ import annotations

import math

import numpy as np

from ...tensor import Tensor
from .layer import Layer

__all__ = ["Rescaling", "Normalization"]


def _eps() -> float:
    try:
        from ..backend import epsilon
    except ImportError:
        return 1e-7
    return epsilon()


class Rescaling(Layer):
    """``inputs * scale + offset`` (e.g. ``Rescaling(1/255)`` for pixel values)."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = scale, offset

    def call(self, inputs: Tensor) -> Tensor:
        dt = inputs.dtype if inputs.is_floating_point() else None
        x = inputs if dt is not None else inputs.to(self._np_dtype())
        np_dt = x._data.dtype
        scale = np.asarray(self.scale, np_dt)
        offset = np.asarray(self.offset, np_dt)
        if scale.ndim == 0 and offset.ndim == 0:
            return x * float(scale) + float(offset)
        return x * Tensor._wrap(scale) + Tensor._wrap(offset)

    def _np_dtype(self):
        from ... import dtypes
        return dtypes.as_dtype(self.dtype)

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        def plain(v):
            return np.asarray(v).tolist() if isinstance(v, (np.ndarray, list, tuple)) \
                else float(v)
        return {**super().get_config(), "scale": plain(self.scale),
                "offset": plain(self.offset)}


def _first(batch):
    """Keras's ``_extract_batch``: the inputs of an ``(x, y)`` batch."""
    while isinstance(batch, (tuple, list)) and batch and not np.isscalar(batch[0]):
        batch = batch[0]
    return batch


def _as_array(x) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().numpy()
    return np.asarray(x)


class Normalization(Layer):
    """``(x - mean) / max(sqrt(variance), epsilon)`` per feature on ``axis`` (-1).

    Give ``mean`` and ``variance`` or learn them with :meth:`adapt`; ``invert`` maps
    standardised values back. Adapted statistics are the non-trainable weights ``mean`` and
    ``variance`` (plus Keras's unused ``count``), in the state dict.
    """

    supports_masking = True

    def __init__(self, axis=-1, mean=None, variance=None, invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, int):
            axis = (axis,)
        self.axis = tuple(int(a) for a in axis)
        self.input_mean, self.input_variance = mean, variance
        self.invert = bool(invert)
        if (mean is None) != (variance is None):
            raise ValueError(f"Normalization: when setting values directly, both `mean` and "
                             f"`variance` must be set, got mean={mean} and variance={variance}")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError(f"Normalization: `mean` and `variance` must have the same "
                                 f"shape, got {np.shape(mean)} and {np.shape(variance)}")
            if np.ndim(mean) > len(self.axis):
                raise ValueError(f"Normalization: the rank of `mean` must be at most the "
                                 f"number of axes ({len(self.axis)}), got mean shape "
                                 f"{np.shape(mean)} for axis {self.axis}")
        self._const = None

    def build(self, input_shape) -> None:
        ndim = len(input_shape)
        if any(not -ndim <= a < ndim for a in self.axis):
            raise ValueError(f"Normalization \"{self.name}\": all `axis` values must be in "
                             f"[-{ndim}, {ndim}), got axis={self.axis} for inputs of rank "
                             f"{ndim}")
        keep = tuple(sorted(a % ndim for a in self.axis))
        for d in keep:
            if input_shape[d] is None:
                raise ValueError(f"Normalization \"{self.name}\": the kept axis {d} of "
                                 f"input shape {tuple(input_shape)} must be known")
        self._keep_axis = keep
        self._reduce_axis = tuple(d for d in range(ndim) if d not in keep)
        self._broadcast_shape = tuple(input_shape[d] if d in keep else 1 for d in range(ndim))
        self._input_shape_built = tuple(input_shape)
        shape = tuple(input_shape[d] for d in keep)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(name="mean", shape=shape, initializer="zeros",
                                              trainable=False)
            self.adapt_variance = self.add_weight(name="variance", shape=shape,
                                                  initializer="ones", trainable=False)
            self.count = self.add_weight(name="count", shape=(), dtype="int64",
                                         initializer="zeros", trainable=False)
        else:
            mean = np.asarray(self.input_mean, np.float64)
            var = np.asarray(self.input_variance, np.float64)
            # align the given statistics with the kept axes from the right
            expanded = [1] * ndim
            for i in range(1, mean.ndim + 1):
                expanded[keep[-i]] = mean.shape[-i]
            mean = np.broadcast_to(mean.reshape(expanded), self._broadcast_shape)
            var = np.broadcast_to(var.reshape(expanded), self._broadcast_shape)
            self._const = (mean, var)
        self.built = True

    def _stats(self, dtype) -> tuple:
        if self._const is not None:
            mean, var = self._const
            return (Tensor._wrap(np.require(mean, dtype, "C")),
                    Tensor._wrap(np.require(var, dtype, "C")))
        from ... import dtypes
        dt = dtypes.from_numpy_dtype(np.dtype(dtype))
        return (self.adapt_mean.reshape(self._broadcast_shape).to(dt),
                self.adapt_variance.reshape(self._broadcast_shape).to(dt))

    def call(self, inputs: Tensor) -> Tensor:
        if inputs.ndim != len(self._broadcast_shape) or any(
                inputs.shape[d] != self._broadcast_shape[d] for d in self._keep_axis):
            raise self._input_error(inputs, f"a shape compatible with "
                                            f"{self._input_shape_built} on axes "
                                            f"{self._keep_axis}")
        x = inputs if inputs.is_floating_point() else inputs.to(_float_dtype(self.dtype))
        mean, var = self._stats(x._data.dtype)
        denom = var.sqrt().clamp_min(_eps())
        if self.invert:
            return mean + x * denom
        return (x - mean) / denom

    def adapt(self, data) -> None:
        """Learn ``mean`` and ``variance`` over the reduced axes from an array, a Tensor or an
        iterable of batches (``(x, y)`` batches use ``x``), combining batches exactly."""
        if self.input_mean is not None:
            raise ValueError(f"Normalization \"{self.name}\": adapt() cannot be used when "
                             f"`mean` and `variance` were given to the constructor")
        if isinstance(data, (np.ndarray, Tensor)) or (
                isinstance(data, (list, tuple)) and data and np.isscalar(_first_leaf(data))):
            batches = [_as_array(data)]
        elif hasattr(data, "__iter__"):
            batches = (_as_array(_first(b)) for b in data)
        else:
            raise TypeError(f"Normalization.adapt: unsupported data type "
                            f"{type(data).__name__}; expected an array, a Tensor or an "
                            f"iterable of batches")
        total_mean = total_var = None
        total = 0
        for batch in batches:
            batch = np.asarray(batch, np.float64)
            if not self.built:
                self._maybe_build(tuple(batch.shape))
            if batch.ndim != len(self._broadcast_shape) or any(
                    batch.shape[d] != self._broadcast_shape[d] for d in self._keep_axis):
                raise ValueError(f"Normalization \"{self.name}\": the layer was built with "
                                 f"input_shape={self._input_shape_built}, but adapt() got "
                                 f"data with an incompatible shape {batch.shape}")
            bm = batch.mean(axis=self._reduce_axis)
            bv = batch.var(axis=self._reduce_axis)
            count = math.prod(batch.shape[d] for d in self._reduce_axis)
            if total_mean is None:
                total_mean, total_var, total = bm, bv, count
                continue
            # pooled variance: within-batch plus between-batch sums of squares
            total += count
            w = count / total
            new_mean = total_mean * (1 - w) + bm * w
            total_var = (total_var + (total_mean - new_mean) ** 2) * (1 - w) + \
                (bv + (bm - new_mean) ** 2) * w
            total_mean = new_mean
        if total_mean is None:
            raise ValueError(f"Normalization \"{self.name}\": adapt() received no data")
        self.adapt_mean.assign(np.asarray(total_mean).reshape(self.adapt_mean.shape))
        self.adapt_variance.assign(np.asarray(total_var).reshape(self.adapt_variance.shape))
        # `count` stays 0 as in Keras 3, which keeps it only to load old saved models

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        def plain(v):
            return None if v is None else np.asarray(v).tolist()
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": plain(self.input_mean), "variance": plain(self.input_variance)}


def _first_leaf(x):
    while isinstance(x, (list, tuple)) and x:
        x = x[0]
    return x


def _float_dtype(name: str):
    from ... import dtypes
    return dtypes.as_dtype(name)
