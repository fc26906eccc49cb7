"""Gradient clipping (PyTorch's formulas: the total norm over all gradients together)."""
from __future__ import annotations

import math

import numpy as np

from ...tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale all gradients in place so their joint ``norm_type`` norm is at most ``max_norm``;
    return the norm before clipping."""
    grads = _grads(parameters)
    if not grads:
        return Tensor._wrap(np.asarray(0.0, np.float32))
    norm_type = float(norm_type)
    arrays = [g._data.astype(np.float64, copy=False) for g in grads]
    if math.isinf(norm_type):
        total = max(float(np.abs(a).max()) if a.size else 0.0 for a in arrays)
    else:
        total = sum(float((np.abs(a) ** norm_type).sum()) for a in arrays) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} for "
                           f"gradients is non-finite, so it cannot be clipped")
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g._data *= g._data.dtype.type(coef)
            g._version[0] += 1
    return Tensor._wrap(np.asarray(total, dtype=grads[0]._data.dtype))


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    for g in _grads(parameters):
        np.clip(g._data, -clip_value, clip_value, out=g._data)
        g._version[0] += 1
