"""The CPU backend: NumPy arrays."""
from __future__ import annotations

import math

import numpy as np

from .base import Backend, register

try:  # SciPy's erf is exact and vectorised; fall back to math.erf element by element.
    from scipy.special import erf as _scipy_erf
except ImportError:  # pragma: no cover - depends on the environment
    _scipy_erf = None

_erf_scalar = np.frompyfunc(math.erf, 1, 1)


class NumpyBackend(Backend):
    name = "numpy"
    xp = np

    def to_numpy(self, a):
        return a

    def from_numpy(self, a):
        return a

    def erf(self, a):
        if _scipy_erf is not None:
            return _scipy_erf(a).astype(a.dtype, copy=False)
        return _erf_scalar(a).astype(a.dtype)

    def scatter_add(self, target, index, src, axis):
        idx = list(np.indices(index.shape, sparse=True))
        idx[axis] = index
        np.add.at(target, tuple(idx), src)


register("cpu", NumpyBackend())
