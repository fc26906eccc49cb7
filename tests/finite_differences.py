"""The independent gradient reference shared by the tests: central finite differences."""
import numpy as np


def numeric_grads(f, *arrays, eps=1e-6):
    """Central finite differences of the scalar NumPy function ``f`` at each of ``arrays``."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + eps
            hi = f(*arrays)
            a[i] = old - eps
            lo = f(*arrays)
            a[i] = old
            g[i] = (hi - lo) / (2 * eps)
        grads.append(g)
    return grads
