"""``keras.losses``: Keras 3's losses on ember Tensors (differentiable, so ``fit`` trains on them).

Functions return one loss per sample (``mean_squared_error(y_true, y_pred)`` has shape
``(batch,)``); the classes reduce them: ``Loss(...)(y_true, y_pred, sample_weight)`` weights
each sample's loss and, with Keras's default reduction "sum_over_batch_size", divides the sum
by the number of losses (not by the sum of the weights). Probabilities are clipped to
``[1e-7, 1 - 1e-7]`` before the logarithm, as Keras does, unless ``from_logits=True``.

    loss = keras.losses.get("sparse_categorical_crossentropy")
    keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(y_true, y_pred)
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from .. import _state
from .. import dtypes as _dt
from ..nn import functional as F
from ..ops.activation import log_softmax
from ..ops.comparison import clamp, where
from ..ops.unary import log
from ..tensor import Tensor

__all__ = ["Loss", "LossFunctionWrapper", "MeanSquaredError", "MeanAbsoluteError",
           "Huber", "BinaryCrossentropy", "CategoricalCrossentropy",
           "SparseCategoricalCrossentropy", "mean_squared_error", "mean_absolute_error",
           "huber", "binary_crossentropy", "categorical_crossentropy",
           "sparse_categorical_crossentropy", "mse", "mae", "MSE", "MAE", "get", "serialize",
           "deserialize"]

EPSILON = 1e-7  # Keras's backend.epsilon()
_REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")


def _tensor(x, dtype=None) -> Tensor:
    """A Tensor from a Tensor, array or nested list; floats become ``dtype`` (float32)."""
    if isinstance(x, Tensor):
        return x if dtype is None or x.dtype == dtype or not x.is_floating_point() \
            else x.to(dtype)
    a = np.asarray(x)
    if a.dtype.kind == "f" or (dtype is not None and a.dtype.kind in "biu" and
                               dtype is not _dt.int64):
        a = a.astype((dtype or _dt.float32).np, copy=False)
    return Tensor._wrap(np.require(a, requirements="C"))


def _float_pair(y_true, y_pred) -> tuple:
    y_pred = _tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(_dt.float32)
    return _tensor(y_true, y_pred.dtype).to(y_pred.dtype), y_pred


def _same_rank(x1: Tensor, x2: Tensor, expand_rank_1: bool = True) -> tuple:
    """Keras's ``squeeze_or_expand_to_same_rank``: fix a rank difference of one trailing 1."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2.unsqueeze(-1)
        else:
            x1 = x1.squeeze(-1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1.unsqueeze(-1)
        else:
            x2 = x2.squeeze(-1)
    return x1, x2


def _check_same(fn: str, y_true: Tensor, y_pred: Tensor) -> None:
    if tuple(y_true.shape) != tuple(y_pred.shape):
        try:
            np.broadcast_shapes(tuple(y_true.shape), tuple(y_pred.shape))
        except ValueError:
            raise ValueError(f"{fn}: y_true of shape {tuple(y_true.shape)} and y_pred of shape "
                             f"{tuple(y_pred.shape)} are incompatible (expected the same "
                             f"shape)") from None


# ----- per-sample loss functions -----------------------------------------------------------------

def mean_squared_error(y_true, y_pred) -> Tensor:
    """``mean(square(y_true - y_pred), axis=-1)``."""
    y_true, y_pred = _same_rank(*_float_pair(y_true, y_pred))
    _check_same("mean_squared_error", y_true, y_pred)
    return ((y_true - y_pred) ** 2).mean(-1)


def mean_absolute_error(y_true, y_pred) -> Tensor:
    """``mean(abs(y_true - y_pred), axis=-1)``."""
    y_true, y_pred = _same_rank(*_float_pair(y_true, y_pred))
    _check_same("mean_absolute_error", y_true, y_pred)
    return (y_true - y_pred).abs().mean(-1)


def huber(y_true, y_pred, delta: float = 1.0) -> Tensor:
    """``mean(0.5 e**2 if |e| <= delta else delta |e| - 0.5 delta**2, axis=-1)``."""
    y_true, y_pred = _same_rank(*_float_pair(y_true, y_pred))
    _check_same("huber", y_true, y_pred)
    err = y_pred - y_true
    a = err.abs()
    return where(a <= delta, 0.5 * err * err, delta * a - 0.5 * delta * delta).mean(-1)


def _axis_last(t: Tensor, axis: int) -> Tensor:
    axis = axis % t.ndim
    return t if axis == t.ndim - 1 else t.movedim(axis, -1)


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> Tensor:
    """``-sum(y_true * log(p), axis)`` for one-hot (or soft) targets; ``p`` is
    ``softmax(y_pred)`` with ``from_logits``, else ``y_pred`` normalised to sum 1 and clipped
    to ``[eps, 1-eps]``. ``label_smoothing`` mixes targets with the uniform distribution."""
    y_true, y_pred = _float_pair(y_true, y_pred)
    if tuple(y_true.shape) != tuple(y_pred.shape):
        raise ValueError(f"categorical_crossentropy: y_true of shape {tuple(y_true.shape)} and "
                         f"y_pred of shape {tuple(y_pred.shape)} must have the same shape "
                         f"(one-hot targets); use sparse_categorical_crossentropy for "
                         f"integer class targets")
    if y_pred.ndim < 1:
        raise ValueError("categorical_crossentropy: y_pred must be at least 1-D")
    if label_smoothing:
        k = y_true.shape[axis]
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / k
    if from_logits:
        logp = log_softmax(y_pred, dim=axis)
    else:
        p = y_pred / y_pred.sum(axis, keepdim=True)
        logp = log(clamp(p, EPSILON, 1.0 - EPSILON))
    return -(y_true * logp).sum(axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False,
                                    ignore_class: int | None = None, axis: int = -1) -> Tensor:
    """Categorical cross-entropy with integer class targets (``y_true`` without the class
    axis, or with it of size 1). ``ignore_class`` gives those targets a loss of 0."""
    y_pred = _tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(_dt.float32)
    t = y_true if isinstance(y_true, Tensor) else _tensor(np.asarray(y_true))
    if t.ndim == y_pred.ndim and t.shape[axis] == 1:
        t = t.squeeze(axis)
    expect = tuple(s for i, s in enumerate(y_pred.shape) if i != axis % y_pred.ndim)
    if tuple(t.shape) != expect:
        raise ValueError(f"sparse_categorical_crossentropy: y_true of shape "
                         f"{tuple(np.shape(y_true))} must be y_pred's shape "
                         f"{tuple(y_pred.shape)} without the class axis {axis}: {expect}")
    t = t.long() if t.is_floating_point() or t.dtype != _dt.int64 else t
    logits = _axis_last(y_pred, axis)
    valid = None
    if ignore_class is not None:
        valid = t != ignore_class
        t = where(valid, t, 0)
    if from_logits:
        logp = log_softmax(logits, dim=-1)
    else:
        p = logits / logits.sum(-1, keepdim=True)
        logp = log(clamp(p, EPSILON, 1.0 - EPSILON))
    n = logits.shape[-1]
    tn = t._data if _state.tracer is None else None  # a compiled step can't read values
    if tn is not None and tn.size and (tn.min() < 0 or tn.max() >= n):
        raise ValueError(f"sparse_categorical_crossentropy: targets must be class indices in "
                         f"[0, {n}), got values from {tn.min()} to {tn.max()}")
    out = -logp.gather(-1, t.unsqueeze(-1)).squeeze(-1)
    if valid is not None:
        out = where(valid, out, 0.0)
    return out


def binary_crossentropy(y_true, y_pred, from_logits: bool = False,
                        label_smoothing: float = 0.0, axis: int = -1) -> Tensor:
    """``mean(-(y log p + (1-y) log(1-p)), axis)``, ``p`` clipped to ``[eps, 1-eps]`` (or
    ``sigmoid(y_pred)`` with ``from_logits``); ``label_smoothing`` pulls targets towards
    0.5."""
    y_true, y_pred = _float_pair(y_true, y_pred)
    if tuple(y_true.shape) != tuple(y_pred.shape):
        raise ValueError(f"binary_crossentropy: y_true of shape {tuple(y_true.shape)} and "
                         f"y_pred of shape {tuple(y_pred.shape)} must have the same shape")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        per = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    else:
        p = clamp(y_pred, EPSILON, 1.0 - EPSILON)
        per = -(y_true * log(p) + (1.0 - y_true) * log(1.0 - p))
    return per.mean(axis)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error


# ----- Loss classes ------------------------------------------------------------------------------

def _snake(name: str) -> str:
    from ..train.metrics import _snake as snake
    return snake(name)


class Loss:
    """Base class: ``call(y_true, y_pred)`` gives per-sample losses, ``__call__`` weights and
    reduces them ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight" or
    None/"none")."""

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size",
                 dtype: Any = None) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(f"Invalid value for argument `reduction`. Expected one of "
                             f"{set(_REDUCTIONS)}. Received: reduction={reduction}")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction
        self.dtype = dtype or "float32"

    def call(self, y_true, y_pred) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement call()")

    def __call__(self, y_true, y_pred, sample_weight=None) -> Tensor:
        losses = self.call(y_true, y_pred)
        return reduce_weighted_values(losses, sample_weight, self.reduction,
                                      mask=self._mask(y_true, y_pred))

    def _mask(self, y_true, y_pred):
        return None

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> "Loss":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


def reduce_weighted_values(values: Tensor, sample_weight=None,
                           reduction: str | None = "sum_over_batch_size", mask=None) -> Tensor:
    """Keras's ``reduce_weighted_values``: weight the per-sample losses, then reduce."""
    if mask is not None:
        # masked entries get weight 0 and the others total/valid, so "sum_over_batch_size"
        # averages over the valid entries only (Keras's apply_mask)
        total = float(np.prod(mask.shape))
        valid = mask.to(values.dtype).sum().clamp(min=1.0)
        mw = where(mask, total / valid, 0.0) if reduction in ("mean", "sum_over_batch_size") \
            else mask.to(values.dtype)
        sample_weight = mw if sample_weight is None else _tensor(sample_weight, values.dtype) * mw
    if sample_weight is not None:
        sw = _tensor(sample_weight, values.dtype)
        if not sw.is_floating_point():
            sw = sw.to(values.dtype)
        values, sw = _same_rank(values, sw)
        while sw.ndim < values.ndim:
            sw = sw.unsqueeze(-1)
        try:
            np.broadcast_shapes(tuple(sw.shape), tuple(values.shape))
        except ValueError:
            raise ValueError(f"loss: sample_weight of shape {tuple(sw.shape)} does not match "
                             f"the per-sample losses of shape {tuple(values.shape)}") from None
        values = values * sw
    else:
        sw = None
    if reduction in (None, "none") or values.ndim == 0 or tuple(values.shape) == (0,):
        return values
    total = values.sum()
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sw is not None:
        denom = sw.expand_as(values).sum() if tuple(sw.shape) != tuple(values.shape) \
            else sw.sum()
        return where(denom == 0, 0.0, total / where(denom == 0, 1.0, denom))
    n = values.numel()
    return total / n if n else total * 0


class LossFunctionWrapper(Loss):
    """A per-sample loss function made a :class:`Loss`: ``fn(y_true, y_pred, **kwargs)``."""

    def __init__(self, fn: Callable, reduction: str | None = "sum_over_batch_size",
                 name: str | None = None, dtype: Any = None, **kwargs) -> None:
        super().__init__(name=name or getattr(fn, "__name__", None), reduction=reduction,
                         dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred) -> Tensor:
        if not isinstance(y_true, (list, tuple, dict)) and \
                not isinstance(y_pred, (list, tuple, dict)):
            yp = _tensor(y_pred)
            yt = y_true if isinstance(y_true, Tensor) else _tensor(y_true)
            y_true, y_pred = _same_rank(yt, yp)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), **self._fn_kwargs}


class MeanSquaredError(LossFunctionWrapper):
    """Mean of squared errors."""

    def __init__(self, reduction="sum_over_batch_size", name: str = "mean_squared_error",
                 dtype: Any = None) -> None:
        super().__init__(mean_squared_error, reduction=reduction, name=name, dtype=dtype)


class MeanAbsoluteError(LossFunctionWrapper):
    """Mean of absolute errors."""

    def __init__(self, reduction="sum_over_batch_size", name: str = "mean_absolute_error",
                 dtype: Any = None) -> None:
        super().__init__(mean_absolute_error, reduction=reduction, name=name, dtype=dtype)


class Huber(LossFunctionWrapper):
    """Huber loss: quadratic for errors up to ``delta``, linear beyond."""

    def __init__(self, delta: float = 1.0, reduction="sum_over_batch_size",
                 name: str = "huber_loss", dtype: Any = None) -> None:
        super().__init__(huber, reduction=reduction, name=name, dtype=dtype, delta=delta)


class BinaryCrossentropy(LossFunctionWrapper):
    """Binary cross-entropy for 0/1 targets (probabilities, or logits with
    ``from_logits=True``)."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction="sum_over_batch_size", name: str = "binary_crossentropy",
                 dtype: Any = None) -> None:
        super().__init__(binary_crossentropy, reduction=reduction, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis


class CategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy for one-hot (or soft) targets."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction="sum_over_batch_size", name: str = "categorical_crossentropy",
                 dtype: Any = None) -> None:
        super().__init__(categorical_crossentropy, reduction=reduction, name=name, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy for integer class targets; ``ignore_class`` targets are left out of the
    mean."""

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction="sum_over_batch_size", axis: int = -1,
                 name: str = "sparse_categorical_crossentropy", dtype: Any = None) -> None:
        super().__init__(sparse_categorical_crossentropy, reduction=reduction, name=name,
                         dtype=dtype, from_logits=from_logits, ignore_class=ignore_class,
                         axis=axis)
        self.from_logits, self.ignore_class, self.axis = from_logits, ignore_class, axis

    def call(self, y_true, y_pred) -> Tensor:
        # no rank fixing here: (N,) targets next to (N, 1) scores are a shape error
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def _mask(self, y_true, y_pred):
        if self.ignore_class is None:
            return None
        t = y_true if isinstance(y_true, Tensor) else _tensor(np.asarray(y_true))
        yp = _tensor(y_pred)
        if t.ndim == yp.ndim and t.shape[self.axis] == 1:
            t = t.squeeze(self.axis)
        return t != self.ignore_class


# ----- lookup ------------------------------------------------------------------------------------

_CLASSES = [Loss, LossFunctionWrapper, MeanSquaredError, MeanAbsoluteError, Huber,
            BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy]
_FUNCTIONS = [mean_squared_error, mean_absolute_error, huber, binary_crossentropy,
              categorical_crossentropy, sparse_categorical_crossentropy]
_BY_NAME: dict[str, Any] = {c.__name__: c for c in _CLASSES + _FUNCTIONS}
_BY_NAME.update({"mse": mean_squared_error, "MSE": mean_squared_error,
                 "mae": mean_absolute_error, "MAE": mean_absolute_error,
                 "bce": binary_crossentropy, "BCE": binary_crossentropy})


def serialize(loss) -> dict | str:
    """A JSON-able description of a loss: ``{"class_name", "config"}`` or a function name."""
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    name = getattr(loss, "__name__", None)
    if name in _BY_NAME:
        return name
    raise ValueError(f"keras.losses.serialize: cannot serialize {loss!r} (a custom function; "
                     f"pass custom_objects when loading)")


def deserialize(config, custom_objects: dict | None = None):
    """The loss a :func:`serialize` result describes."""
    table = {**_BY_NAME, **(custom_objects or {})}
    if isinstance(config, str):
        return get(config) if config in table else _unknown(config)
    name = config.get("class_name")
    cls = table.get(name)
    if cls is None:
        _unknown(name)
    return cls.from_config(dict(config.get("config") or {}))


def _unknown(identifier):
    raise ValueError(f"Could not interpret loss identifier: {identifier!r} (known names: "
                     f"{', '.join(sorted(k for k in _BY_NAME if k[0].islower()))})")


def get(identifier):
    """A loss from a name ("mse", "categorical_crossentropy", "Huber"...), a config dict, a
    Loss class or instance, or a function. Names of functions give the function (per-sample
    losses), names of classes an instance, as in Keras."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = _BY_NAME.get(identifier)
        if obj is None:
            _unknown(identifier)
    else:
        obj = identifier
    if inspect.isclass(obj):
        obj = obj()
    if not callable(obj):
        _unknown(identifier)
    return obj
