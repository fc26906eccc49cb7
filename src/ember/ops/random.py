"""Random numbers: Generator, manual_seed, rand/randn/randint/randperm/normal/bernoulli/
multinomial. One seed gives the same numbers on every run."""
from __future__ import annotations

import json

import numpy as np

from .. import dtypes as _dt
from ..tensor import Tensor
from .creation import _finish, _shape


class Generator:
    """A random-number generator (PCG64) with PyTorch's seeding interface."""

    def __init__(self, device="cpu"):
        self.device = device
        self._seed = 67280421310721  # PyTorch's default seed
        self._rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> "Generator":
        seed = int(seed)
        if seed < 0:
            seed += 1 << 64  # PyTorch accepts negative seeds by wrapping them
        self._seed = seed
        self._rng = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy % (1 << 63))
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Tensor:
        """The state as a uint8 tensor (JSON bytes), like PyTorch's ByteTensor state."""
        state = {"seed": self._seed, "bit_generator": self._rng.bit_generator.state}
        raw = json.dumps(state).encode()
        return Tensor._wrap(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, state) -> "Generator":
        raw = bytes(np.asarray(state._data if isinstance(state, Tensor) else state,
                               dtype=np.uint8))
        try:
            d = json.loads(raw.decode())
            bg = np.random.PCG64()
            bg.state = d["bit_generator"]
        except (ValueError, KeyError, TypeError) as e:
            raise RuntimeError(f"Generator.set_state: not a state from get_state(): {e}") \
                from None
        self._seed = d["seed"]
        self._rng = np.random.Generator(bg)
        return self


default_generator = Generator()


def _gen(generator):
    return (generator or default_generator)._rng


def manual_seed(seed: int) -> Generator:
    """Seed the default generator: afterwards every random op repeats its numbers."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    default_generator.set_state(new_state)


def _float_dtype(op, dtype):
    d = _dt.as_dtype(dtype) if dtype is not None else _dt.get_default_dtype()
    if not d.is_floating_point:
        raise TypeError(f"{op}: expected a floating point dtype, got {d}")
    return d


def _sample(rng_fn, d):
    # NumPy draws float32 and float64 natively; other floats are drawn in float32 and cast
    npd = d.np if d.np in (np.float32, np.float64) else np.float32
    return rng_fn(npd).astype(d.np, copy=False)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform on [0, 1)."""
    shape = _shape("rand", size)
    d = _float_dtype("rand", dtype)
    arr = _sample(lambda t: _gen(generator).random(shape, dtype=t), d)
    return _finish(arr, None, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal."""
    shape = _shape("randn", size)
    d = _float_dtype("randn", dtype)
    arr = _sample(lambda t: _gen(generator).standard_normal(shape, dtype=t), d)
    return _finish(arr, None, device, requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """Integers uniform on [low, high); ``randint(high, size)`` starts at 0."""
    if size is None:
        low, high, size = 0, low, high
    if high is None or size is None:
        raise TypeError("randint: expected (high, size) or (low, high, size)")
    if high <= low:
        raise RuntimeError(f"randint: expects 'from' ({low}) to be less than 'to' ({high})")
    shape = _shape("randint", (size,) if isinstance(size, int) else tuple(size))
    arr = _gen(generator).integers(low, high, shape, dtype=np.int64)
    return _finish(arr, dtype or _dt.int64, device, requires_grad)


def randperm(n: int, *, generator=None, dtype=None, device=None, requires_grad=False):
    if n < 0:
        raise RuntimeError(f"randperm: n must be non-negative, got {n}")
    arr = _gen(generator).permutation(n).astype(np.int64)
    return _finish(arr, dtype or _dt.int64, device, requires_grad)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad=False) -> Tensor:
    """Normal samples; ``mean``/``std`` may be tensors (broadcast) or numbers with ``size``."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        m = mean._data if isinstance(mean, Tensor) else mean
        s = std._data if isinstance(std, Tensor) else std
        if np.any(np.asarray(s) < 0):
            raise RuntimeError("normal: std must be >= 0")
        shape = np.broadcast_shapes(np.shape(m), np.shape(s))
        z = _gen(generator).standard_normal(shape, dtype=np.float64)
        return _finish(np.asarray(m + s * z), ref.dtype, device or ref.device, requires_grad)
    if std < 0:
        raise RuntimeError(f"normal: std must be >= 0, got {std}")
    shape = _shape("normal", (size,) if isinstance(size, int) else tuple(size or ()))
    d = _float_dtype("normal", dtype)
    arr = _sample(lambda t: _gen(generator).standard_normal(shape, dtype=t), d) * d.np.type(std) \
        + d.np.type(mean)
    return _finish(arr.astype(d.np, copy=False), None, device, requires_grad)


def rand_like(input, *, dtype=None, generator=None, requires_grad=False):
    return rand(input.shape, generator=generator, dtype=dtype or input.dtype,
                device=input.device, requires_grad=requires_grad)


def randn_like(input, *, dtype=None, generator=None, requires_grad=False):
    return randn(input.shape, generator=generator, dtype=dtype or input.dtype,
                 device=input.device, requires_grad=requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, generator=None):
    if high is None:
        low, high = 0, low
    return randint(low, high, input.shape, generator=generator, dtype=dtype or input.dtype,
                   device=input.device)


def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:
    """1 with probability ``input`` (or ``p``) else 0, in ``input``'s dtype."""
    probs = input._data if p is None else np.full(input.shape, p)
    if np.any((probs < 0) | (probs > 1)):
        raise RuntimeError("bernoulli: probabilities must be in [0, 1]")
    draw = _gen(generator).random(input.shape) < probs
    return Tensor._wrap(draw.astype(input._data.dtype), input._dev)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator=None) -> Tensor:
    """Sample category indices from (unnormalised) row weights."""
    if input.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape "
                           f"{tuple(input.shape)}")
    w = np.asarray(input._data, dtype=np.float64)
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise RuntimeError("multinomial: probability tensor contains either inf, nan or "
                           "element < 0")
    rows = w.reshape(-1, w.shape[-1])
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError(f"multinomial: cannot sample n_sample ({num_samples}) > "
                           f"prob_dist.size(-1) ({rows.shape[1]}) samples without replacement")
    rng = _gen(generator)
    out = np.empty((rows.shape[0], num_samples), np.int64)
    for i, r in enumerate(rows):
        s = r.sum()
        if s <= 0:
            raise RuntimeError("multinomial: invalid multinomial distribution (sum of "
                               "probabilities <= 0)")
        if not replacement and np.count_nonzero(r) < num_samples:
            raise RuntimeError(f"multinomial: invalid multinomial distribution (with "
                               f"replacement=False, not enough categories with non-zero "
                               f"probability ({np.count_nonzero(r)}) to draw {num_samples} "
                               f"samples)")
        out[i] = rng.choice(r.shape[0], num_samples, replace=replacement, p=r / s)
    return Tensor._wrap(out.reshape(input.shape[:-1] + (num_samples,)), input._dev)


# ----- in-place fills used by nn.init -------------------------------------------------------


def _check_float_fill(op, self):
    if not self.is_floating_point():
        raise RuntimeError(f"{op}: expected a floating point tensor to fill, got {self.dtype} "
                           f"(shape {tuple(self.shape)}); use random_ for integers")


def uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    from .inplace import inplace
    _check_float_fill("uniform_", self)
    vals = _gen(generator).uniform(a, b, self.shape)
    return inplace(self, lambda s: Tensor._wrap(vals.astype(s._data.dtype), s._dev),
                   op="uniform_")


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    from .inplace import inplace
    _check_float_fill("normal_", self)
    vals = _gen(generator).normal(mean, std, self.shape)
    return inplace(self, lambda s: Tensor._wrap(vals.astype(s._data.dtype), s._dev),
                   op="normal_")


def bernoulli_(self: Tensor, p=0.5, *, generator=None) -> Tensor:
    from .inplace import inplace
    probs = p._data if isinstance(p, Tensor) else p
    vals = _gen(generator).random(self.shape) < probs
    return inplace(self, lambda s: Tensor._wrap(vals.astype(s._data.dtype), s._dev),
                   op="bernoulli_")


def random_(self: Tensor, from_=0, to=None, *, generator=None) -> Tensor:
    from .inplace import inplace
    if to is None:
        to = 2 ** (self._data.dtype.itemsize * 8 - 1) if self._data.dtype.kind != "f" else \
            2 ** 24
    vals = _gen(generator).integers(from_, to, self.shape)
    return inplace(self, lambda s: Tensor._wrap(vals.astype(s._data.dtype), s._dev),
                   op="random_")


def exponential_(self: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    from .inplace import inplace
    _check_float_fill("exponential_", self)
    vals = _gen(generator).exponential(1.0 / lambd, self.shape)
    return inplace(self, lambda s: Tensor._wrap(vals.astype(s._data.dtype), s._dev),
                   op="exponential_")
