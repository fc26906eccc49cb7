"""``keras.activations``: Keras 3's activation functions (names, defaults and formulas) on ember.

Each takes a Tensor (or array) and returns a Tensor; layers accept them by name through
:func:`get` (``activation="relu"``); ``None`` and ``"linear"`` are the identity.
"""
from __future__ import annotations

import numpy as np

from ..nn import functional as F
from ..ops import activation as _act
from ..ops.comparison import clamp, where
from ..tensor import Tensor

__all__ = ["relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "sigmoid", "tanh",
           "softmax", "log_softmax", "softplus", "softsign", "swish", "silu", "hard_sigmoid",
           "hard_silu", "hard_swish", "hard_tanh", "exponential", "linear", "mish",
           "log_sigmoid", "glu", "tanh_shrink", "hard_shrink", "soft_shrink", "squareplus",
           "sparse_plus", "threshold", "get", "serialize", "deserialize"]


def _t(x) -> Tensor:
    if isinstance(x, Tensor):
        return x
    a = np.asarray(x)
    if a.dtype.kind != "f":
        a = a.astype(np.float32)
    return Tensor._wrap(np.require(a, None, "C"))


def relu(x, negative_slope: float = 0.0, max_value: float | None = None,
         threshold: float = 0.0) -> Tensor:
    """``max(x, 0)``; with ``threshold`` values below it are damped, ``max_value`` clips,
    ``negative_slope`` leaks below the threshold (Keras's ReLU formula)."""
    x = _t(x)
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return _act.relu(x)
    neg = F.relu(threshold - x) if negative_slope != 0.0 else None
    y = where(x > threshold, x, x * 0) if threshold != 0.0 else _act.relu(x)
    if max_value is not None:
        y = clamp(y, 0.0, float(max_value))
    if neg is not None:
        y = y - negative_slope * neg
    return y


def relu6(x) -> Tensor:
    """``min(max(x, 0), 6)``."""
    return clamp(_t(x), 0.0, 6.0)


def leaky_relu(x, negative_slope: float = 0.2) -> Tensor:
    """``x`` for positive x, ``negative_slope * x`` otherwise (Keras's default slope 0.2)."""
    return F.leaky_relu(_t(x), negative_slope)


def elu(x, alpha: float = 1.0) -> Tensor:
    """``x`` for positive x, ``alpha * (exp(x) - 1)`` otherwise."""
    return F.elu(_t(x), alpha)


def selu(x) -> Tensor:
    """Scaled ELU with the self-normalising constants (alpha 1.67326..., scale 1.05070...)."""
    return F.selu(_t(x))


def celu(x, alpha: float = 1.0) -> Tensor:
    """``x`` for positive x, ``alpha * (exp(x / alpha) - 1)`` otherwise."""
    return F.celu(_t(x), alpha)


def gelu(x, approximate: bool = False) -> Tensor:
    """Gaussian error linear unit: exact erf form unless ``approximate`` (tanh form)."""
    return _act.gelu(_t(x), "tanh" if approximate else "none")


def sigmoid(x) -> Tensor:
    """``1 / (1 + exp(-x))``."""
    return _act.sigmoid(_t(x))


def tanh(x) -> Tensor:
    """Hyperbolic tangent."""
    return _t(x).tanh()


def softmax(x, axis: int = -1) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis``."""
    return _act.softmax(_t(x), axis)


def log_softmax(x, axis: int = -1) -> Tensor:
    """``x - logsumexp(x)`` along ``axis``."""
    return _act.log_softmax(_t(x), axis)


def softplus(x) -> Tensor:
    """``log(1 + exp(x))``."""
    return _act.softplus(_t(x))


def softsign(x) -> Tensor:
    """``x / (1 + |x|)``."""
    return F.softsign(_t(x))


def silu(x) -> Tensor:
    """``x * sigmoid(x)`` (also called swish)."""
    return _act.silu(_t(x))


swish = silu


def hard_sigmoid(x) -> Tensor:
    """Keras 3's piecewise-linear sigmoid ``relu6(x + 3) / 6``: 0 below -3, 1 above 3."""
    return clamp(_t(x) / 6.0 + 0.5, 0.0, 1.0)


def hard_silu(x) -> Tensor:
    """``x * hard_sigmoid(x)``."""
    x = _t(x)
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def hard_tanh(x) -> Tensor:
    """``clip(x, -1, 1)``."""
    return clamp(_t(x), -1.0, 1.0)


def exponential(x) -> Tensor:
    """``exp(x)``."""
    return _t(x).exp()


def linear(x) -> Tensor:
    """The identity (what ``activation=None`` means)."""
    return _t(x)


def mish(x) -> Tensor:
    """``x * tanh(softplus(x))``."""
    return F.mish(_t(x))


def log_sigmoid(x) -> Tensor:
    """``log(sigmoid(x))``, computed as ``-softplus(-x)`` to stay finite."""
    return F.logsigmoid(_t(x))


def glu(x, axis: int = -1) -> Tensor:
    """Gated linear unit: halves ``a, b`` of ``axis``, ``a * sigmoid(b)``."""
    return F.glu(_t(x), axis)


def tanh_shrink(x) -> Tensor:
    """``x - tanh(x)``."""
    return F.tanhshrink(_t(x))


def hard_shrink(x, threshold: float = 0.5) -> Tensor:
    """``x`` where ``|x| > threshold``, else 0."""
    return F.hardshrink(_t(x), threshold)


def soft_shrink(x, threshold: float = 0.5) -> Tensor:
    """``x - threshold`` above, ``x + threshold`` below ``-threshold``, else 0."""
    return F.softshrink(_t(x), threshold)


def squareplus(x, b: float = 4) -> Tensor:
    """``(x + sqrt(x^2 + b)) / 2``."""
    x = _t(x)
    return (x + (x * x + b).sqrt()) / 2


def sparse_plus(x) -> Tensor:
    """0 below -1, ``(x + 1)^2 / 4`` in [-1, 1], ``x`` above 1."""
    x = _t(x)
    return where(x <= -1.0, x * 0, where(x >= 1.0, x, (x + 1) * (x + 1) / 4))


def threshold(x, threshold: float, default_value: float) -> Tensor:
    """``x`` where ``x > threshold``, else ``default_value``."""
    return F.threshold(_t(x), threshold, default_value)


_BY_NAME = {name: globals()[name] for name in __all__[:-3]}


def serialize(activation) -> str | dict:
    """The name of a built-in activation (what layer configs store)."""
    if activation is None:
        return "linear"
    for name, fn in _BY_NAME.items():
        if fn is activation and name not in ("swish", "hard_swish"):
            return name
    if hasattr(activation, "get_config"):
        return {"module": type(activation).__module__, "class_name": type(activation).__name__,
                "config": activation.get_config(), "registered_name": None}
    raise ValueError(f"keras.activations.serialize: unknown activation function "
                     f"{activation!r} cannot be serialized; use a built-in name")


def deserialize(config) -> object:
    """The activation function for a name (or ``{"config": name}``)."""
    if isinstance(config, dict):
        config = config.get("config", config.get("class_name"))
    return get(config)


def get(identifier):
    """An activation function from a name, ``None`` (linear) or a callable."""
    if identifier is None:
        return linear
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        fn = _BY_NAME.get(identifier)
        if fn is None:
            raise ValueError(f"keras.activations.get: could not interpret activation function "
                             f"identifier {identifier!r}; known: {sorted(_BY_NAME)}")
        return fn
    if callable(identifier):
        return identifier
    raise ValueError(f"keras.activations.get: could not interpret activation function "
                     f"identifier {identifier!r}")
