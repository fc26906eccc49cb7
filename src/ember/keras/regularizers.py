"""``keras.regularizers``: weight and activity penalties with Keras 3's formulas and defaults.

A regularizer is called on a Tensor and returns a scalar ember Tensor (differentiable), which
layers collect in ``layer.losses`` for the trainer to add to the loss.
"""
from __future__ import annotations

import math

from .. import ops
from ..tensor import Tensor

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "l1", "l2", "l1_l2",
           "get", "serialize", "deserialize"]


def _factor(value, name: str) -> float:
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or math.isinf(value)
            or math.isnan(value) or value < 0):
        raise ValueError(f"keras.regularizers: invalid value for argument {name}: expected a "
                         f"non-negative float, got {name}={value!r}")
    return float(value)


class Regularizer:
    """Base class: ``__call__(x)`` returns the scalar penalty; ``get_config`` its arguments."""

    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(x)")

    def get_config(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_config()")

    @classmethod
    def from_config(cls, config: dict) -> "Regularizer":
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x ** 2)``; both factors default to 0."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _factor(0.0 if l1 is None else l1, "l1")
        self.l2 = _factor(0.0 if l2 is None else l2, "l2")

    def __call__(self, x: Tensor) -> Tensor:
        total = ops.creation.zeros((), dtype=x.dtype)
        if self.l1:
            total = total + self.l1 * x.abs().sum()
        if self.l2:
            total = total + self.l2 * (x * x).sum()
        return total

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|x|)`` with ``l1`` 0.01 by default."""

    def __init__(self, l1: float = 0.01):
        self.l1 = _factor(0.01 if l1 is None else l1, "l1")

    def __call__(self, x: Tensor) -> Tensor:
        return self.l1 * x.abs().sum()

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(x ** 2)`` with ``l2`` 0.01 by default (no factor 1/2, as in Keras)."""

    def __init__(self, l2: float = 0.01):
        self.l2 = _factor(0.01 if l2 is None else l2, "l2")

    def __call__(self, x: Tensor) -> Tensor:
        return self.l2 * (x * x).sum()

    def get_config(self) -> dict:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """``factor/2 * mean |<r_i, r_j>|`` over pairs of L2-normalised rows (or columns) i != j."""

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        self.factor = _factor(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError(f"OrthogonalRegularizer: mode must be 'rows' or 'columns', got "
                             f"{mode!r}")
        self.mode = mode

    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer: inputs must have rank 2, got shape "
                             f"{tuple(x.shape)}")
        if self.mode == "columns":
            x = x.t()
        # Keras's normalize: x / sqrt(max(sum(x^2), 1e-12))
        norm = ((x * x).sum(dim=1, keepdim=True).clamp_min(1e-12)).sqrt()
        x = x / norm
        size = x.shape[0]
        product = x @ x.t()
        off_diagonal = product * (1.0 - ops.creation.eye(size, dtype=x.dtype))
        pairs = size * (size - 1.0) / 2.0
        return self.factor * 0.5 * off_diagonal.abs().sum() / pairs

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}


l1, l2 = L1, L2


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """``L1L2`` with both factors 0.01 by default (the string ``"l1_l2"`` means this)."""
    return L1L2(l1=l1, l2=l2)


_CLASSES = {c.__name__: c for c in (L1, L2, L1L2, OrthogonalRegularizer)}
_NAMES = {"l1": L1, "l2": L2, "l1l2": L1L2, "l1_l2": l1_l2,
          "orthogonal_regularizer": OrthogonalRegularizer}


def serialize(regularizer) -> dict | None:
    """Keras's config dict (``module``, ``class_name``, ``config``) for a regularizer."""
    if regularizer is None:
        return None
    if not isinstance(regularizer, Regularizer):
        raise ValueError(f"keras.regularizers.serialize: cannot serialize {regularizer!r}; use "
                         f"a Regularizer subclass with get_config()")
    return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
            "config": regularizer.get_config(), "registered_name": None}


def deserialize(config) -> Regularizer:
    """Rebuild a regularizer from :func:`serialize`'s output or a name."""
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"keras.regularizers.deserialize: expected a dict with 'class_name' "
                         f"or a name, got {config!r}")
    cls = _CLASSES.get(config["class_name"]) or _NAMES.get(config["class_name"])
    if cls is None:
        raise ValueError(f"keras.regularizers: unknown regularizer {config['class_name']!r}; "
                         f"known: {sorted(_CLASSES)}")
    return cls(**dict(config.get("config") or {}))


def get(identifier):
    """A regularizer from a name (``"l1"``, ``"l2"``, ``"l1_l2"``...), config, class or callable."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        obj = _CLASSES.get(identifier) or _NAMES.get(identifier)
        if obj is None:
            raise ValueError(f"keras.regularizers.get: could not interpret regularizer "
                             f"identifier {identifier!r}; known: "
                             f"{sorted(_CLASSES) + sorted(_NAMES)}")
        return obj()
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"keras.regularizers.get: could not interpret regularizer identifier "
                     f"{identifier!r}")
