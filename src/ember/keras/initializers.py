"""``keras.initializers``: weight initialisers with Keras 3's names, defaults and fan rules.

Each initializer is called as ``init(shape, dtype=None)`` and returns an ember Tensor. Unseeded
initializers draw from ember's default generator (so ``ember.manual_seed`` repeats them); a
``seed`` makes an initializer return the same values on every call, as in Keras.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes as _dt
from ..tensor import Tensor

__all__ = ["Initializer", "Constant", "Zeros", "Ones", "Identity", "RandomNormal",
           "RandomUniform", "TruncatedNormal", "VarianceScaling", "GlorotUniform",
           "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform", "Orthogonal",
           "compute_fans", "get", "serialize", "deserialize"]


def compute_fans(shape, input_axes=None, output_axes=None) -> tuple[int, int]:
    """Keras's ``(fan_in, fan_out)``: conv kernels ``(..., in, out)`` count the receptive field."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return (int(math.prod(shape[a] for a in input_axes)),
                int(math.prod(shape[a] for a in output_axes)))
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    receptive = math.prod(shape[:-2])
    return int(shape[-2] * receptive), int(shape[-1] * receptive)


def _np_dtype(dtype) -> np.dtype:
    if dtype is None:
        return np.dtype(np.float32)
    return _dt.as_dtype(dtype).np


def _wrap(values: np.ndarray, dtype) -> Tensor:
    return Tensor._wrap(np.array(values, dtype=_np_dtype(dtype), order="C"))  # own copy


class Initializer:
    """Base class: subclasses implement ``__call__(shape, dtype=None)`` and ``get_config``."""

    def __call__(self, shape, dtype=None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(shape, dtype)")

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "Initializer":
        return cls(**config)

    def clone(self) -> "Initializer":
        return type(self).from_config(self.get_config())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _Random(Initializer):
    """An initializer with a ``seed``: a fixed seed gives the same draw on every call."""

    def __init__(self, seed=None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(f"{type(self).__name__}: seed must be an int or None, got "
                             f"{seed!r}")
        self.seed = None if seed is None else int(seed)

    def _rng(self) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng(self.seed)
        from ..ops.random import _gen
        return _gen(None)

    def get_config(self) -> dict:
        return {"seed": self.seed}


def _truncated(rng: np.random.Generator, mean: float, stddev: float, shape) -> np.ndarray:
    """Normal samples redrawn until they lie within two standard deviations (Keras's rule)."""
    out = rng.normal(0.0, 1.0, shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
        bad = np.abs(out) > 2.0
    return mean + stddev * out


class Constant(Initializer):
    """Every entry equals ``value``."""

    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None) -> Tensor:
        return _wrap(np.broadcast_to(np.asarray(self.value), tuple(shape)), dtype)

    def get_config(self) -> dict:
        v = self.value
        return {"value": v.tolist() if isinstance(v, np.ndarray) else v}


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype=None) -> Tensor:
        return _wrap(np.zeros(tuple(shape)), dtype)


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype=None) -> Tensor:
        return _wrap(np.ones(tuple(shape)), dtype)


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only)."""

    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None) -> Tensor:
        if len(shape) != 2:
            raise ValueError(f"Identity initializer: can only be used for 2D matrices, got "
                             f"shape={tuple(shape)} of rank {len(shape)}")
        return _wrap(self.gain * np.eye(*shape), dtype)

    def get_config(self) -> dict:
        return {"gain": self.gain}


class RandomNormal(_Random):
    """Normal draws with ``mean`` 0 and ``stddev`` 0.05 by default."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None) -> Tensor:
        return _wrap(self._rng().normal(self.mean, self.stddev, tuple(shape)), dtype)

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class RandomUniform(_Random):
    """Uniform draws in ``[minval, maxval)``, -0.05..0.05 by default."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype=None) -> Tensor:
        return _wrap(self._rng().uniform(self.minval, self.maxval, tuple(shape)), dtype)

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, **super().get_config()}


class TruncatedNormal(_Random):
    """Normal draws cut at two standard deviations (``stddev`` 0.05 by default)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype=None) -> Tensor:
        return _wrap(_truncated(self._rng(), self.mean, self.stddev, tuple(shape)), dtype)

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, **super().get_config()}


class VarianceScaling(_Random):
    """Scale / fan variance, drawn from a (truncated) normal or uniform distribution.

    ``mode`` picks the fan (``fan_in``, ``fan_out`` or ``fan_avg``); ``distribution`` is
    ``truncated_normal`` (std corrected for the truncation), ``untruncated_normal`` or
    ``uniform`` (limit ``sqrt(3 * scale / fan)``).
    """

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed=None, input_axes=None,
                 output_axes=None):
        super().__init__(seed)
        if scale <= 0.0:
            raise ValueError(f"VarianceScaling: scale must be positive, got {scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be one of fan_in, fan_out, fan_avg, "
                             f"got {mode!r}")
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
            raise ValueError(f"VarianceScaling: distribution must be one of uniform, "
                             f"truncated_normal, untruncated_normal, got {distribution!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.input_axes, self.output_axes = input_axes, output_axes

    def __call__(self, shape, dtype=None) -> Tensor:
        shape = tuple(shape)
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}
        scale = self.scale / max(1.0, fan[self.mode])
        rng = self._rng()
        if self.distribution == "truncated_normal":
            # 0.8796... is the std of a unit normal truncated to [-2, 2]
            values = _truncated(rng, 0.0, math.sqrt(scale) / 0.87962566103423978, shape)
        elif self.distribution == "untruncated_normal":
            values = rng.normal(0.0, math.sqrt(scale), shape)
        else:
            limit = math.sqrt(3.0 * scale)
            values = rng.uniform(-limit, limit, shape)
        return _wrap(values, dtype)

    def get_config(self) -> dict:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class _FixedScaling(VarianceScaling):
    _args: tuple = ()

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        scale, mode, dist = self._args
        super().__init__(scale, mode, dist, seed, input_axes, output_axes)

    def get_config(self) -> dict:
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class GlorotUniform(_FixedScaling):
    """Uniform in ``±sqrt(6 / (fan_in + fan_out))`` (Xavier); Keras's default kernel init."""
    _args = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedScaling):
    """Truncated normal with std ``sqrt(2 / (fan_in + fan_out))``."""
    _args = (1.0, "fan_avg", "truncated_normal")


class HeNormal(_FixedScaling):
    """Truncated normal with std ``sqrt(2 / fan_in)``."""
    _args = (2.0, "fan_in", "truncated_normal")


class HeUniform(_FixedScaling):
    """Uniform in ``±sqrt(6 / fan_in)``."""
    _args = (2.0, "fan_in", "uniform")


class LecunNormal(_FixedScaling):
    """Truncated normal with std ``sqrt(1 / fan_in)``."""
    _args = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedScaling):
    """Uniform in ``±sqrt(3 / fan_in)``."""
    _args = (1.0, "fan_in", "uniform")


class Orthogonal(_Random):
    """A (semi-)orthogonal matrix from the QR decomposition of a normal draw, times ``gain``.

    Shapes of rank > 2 are flattened to ``(prod(shape[:-1]), shape[-1])``.
    """

    def __init__(self, gain: float = 1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype=None) -> Tensor:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal initializer: the tensor to initialize must be at "
                             f"least two-dimensional, got shape={shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng().normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))  # a unique decomposition: positive diagonal of r
        if rows < cols:
            q = q.T
        return _wrap(self.gain * q.reshape(shape), dtype)

    def get_config(self) -> dict:
        return {"gain": self.gain, "seed": self.seed}


_CLASSES = {c.__name__: c for c in (
    Constant, Zeros, Ones, Identity, RandomNormal, RandomUniform, TruncatedNormal,
    VarianceScaling, GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal,
    LecunUniform, Orthogonal)}
_ALIASES = {"constant": Constant, "zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones,
            "identity": Identity, "random_normal": RandomNormal, "normal": RandomNormal,
            "random_uniform": RandomUniform, "uniform": RandomUniform,
            "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
            "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
            "he_normal": HeNormal, "he_uniform": HeUniform, "lecun_normal": LecunNormal,
            "lecun_uniform": LecunUniform, "orthogonal": Orthogonal,
            "IdentityInitializer": Identity, "OrthogonalInitializer": Orthogonal}

# lower-case function-style aliases, as ``keras.initializers.glorot_uniform`` exists
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_normal, he_uniform, lecun_normal, lecun_uniform = HeNormal, HeUniform, LecunNormal, LecunUniform
zeros, ones, constant, identity, orthogonal = Zeros, Ones, Constant, Identity, Orthogonal
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling = VarianceScaling


def serialize(initializer) -> dict | str | None:
    """Keras's config dict (``module``, ``class_name``, ``config``) for a built-in initializer."""
    if initializer is None:
        return None
    if isinstance(initializer, Initializer):
        return {"module": "keras.initializers", "class_name": type(initializer).__name__,
                "config": initializer.get_config(), "registered_name": None}
    name = getattr(initializer, "__name__", None)
    if name is None:
        raise ValueError(f"keras.initializers.serialize: cannot serialize {initializer!r}; "
                         f"use an Initializer subclass with get_config()")
    return name


def deserialize(config) -> Initializer:
    """Rebuild an initializer from :func:`serialize`'s output or a name."""
    if isinstance(config, str):
        config = {"class_name": config, "config": {}}
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"keras.initializers.deserialize: expected a dict with 'class_name' "
                         f"or a name, got {config!r}")
    name = config["class_name"]
    cls = _CLASSES.get(name) or _ALIASES.get(name)
    if cls is None:
        raise ValueError(f"keras.initializers: unknown initializer {name!r}; known: "
                         f"{sorted(_ALIASES)}")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """An initializer from a name, a config dict, a class, an instance, a callable or an array."""
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if isinstance(identifier, type):
        return identifier()
    if isinstance(identifier, (np.ndarray, np.generic, Tensor)):
        value = identifier.numpy() if isinstance(identifier, Tensor) else np.asarray(identifier)

        def initialize_fn(shape, dtype=None):
            if tuple(shape) != value.shape:
                raise ValueError(f"keras.initializers: the array initializer has shape "
                                 f"{value.shape} but the weight has shape {tuple(shape)}")
            return _wrap(value, dtype)
        return initialize_fn
    if callable(identifier):
        return identifier
    raise ValueError(f"keras.initializers.get: could not interpret initializer identifier "
                     f"{identifier!r}")
