"""Turning operands into Tensors of one dtype (PyTorch promotion) and gradient un-broadcasting."""
from __future__ import annotations

import numpy as np

from .. import _state
from .. import dtypes as _dt
from ..errors import describe
from ..tensor import Tensor

_wrap = Tensor._wrap
_SCALARS = (int, float, bool, np.generic)


def const(value, np_dtype, dev) -> Tensor:
    """A constant (non-differentiable) tensor for a Python scalar operand."""
    try:
        t = _wrap(np.asarray(value, dtype=np_dtype), dev)
    except OverflowError:  # uint8 + 300, int32 + 2**40: wrap around as PyTorch does
        t = _wrap(_dt.cast_array(value, np_dtype), dev)
    if _state.tracer is not None:
        _state.tracer.constant(t)
    return t


def operands(op: str, a, b, *, to_float: bool = False):
    """Return ``a, b`` as Tensors of their PyTorch result dtype (optionally floating)."""
    ta = isinstance(a, Tensor)
    tb = isinstance(b, Tensor)
    if ta and tb:
        if a._data.dtype is b._data.dtype or a._data.dtype == b._data.dtype:
            rt = a._data.dtype
            if to_float and rt.kind in "biu":
                f = _dt.get_default_dtype().np
                return _cast(a, f), _cast(b, f)
            return a, b
        if a._dev is not b._dev:
            raise RuntimeError(f"{op}: expected all tensors to be on the same device, found "
                               f"{a.device} and {b.device}")
        rt = _dt.result_type(a, b).np
        if to_float and rt.kind in "biu":
            rt = _dt.get_default_dtype().np
        return _cast(a, rt), _cast(b, rt)
    if ta:
        if not isinstance(b, _SCALARS):
            b = _coerce(op, b, a)
            return operands(op, a, b, to_float=to_float)
        rt = _result_with_scalar(a, b)
        if to_float and rt.kind in "biu":
            rt = _dt.get_default_dtype().np
        return _cast(a, rt), const(b, rt, a._dev)
    if tb:
        if not isinstance(a, _SCALARS):
            a = _coerce(op, a, b)
            return operands(op, a, b, to_float=to_float)
        rt = _result_with_scalar(b, a)
        if to_float and rt.kind in "biu":
            rt = _dt.get_default_dtype().np
        return const(a, rt, b._dev), _cast(b, rt)
    raise TypeError(f"{op}: expected at least one Tensor operand, got {type(a).__name__} and "
                    f"{type(b).__name__}")


def _result_with_scalar(t: Tensor, s):
    kind = t._data.dtype.kind
    if isinstance(s, bool):
        return t._data.dtype
    if isinstance(s, int) and not isinstance(s, np.generic):
        return t._data.dtype if kind != "b" else np.dtype(np.int64)
    if isinstance(s, float):
        return t._data.dtype if kind == "f" or t._data.dtype == _dt._BF16 else \
            _dt.get_default_dtype().np
    return _dt.result_type(t, s).np


def _coerce(op, x, like: Tensor) -> Tensor:
    if isinstance(x, (list, tuple, np.ndarray)):
        from .creation import tensor
        return tensor(x, device=like.device)
    raise TypeError(f"{op}: unsupported operand type {type(x).__name__} (with a tensor of "
                    f"{describe(like)})")


def _cast(t: Tensor, np_dtype) -> Tensor:
    if t._data.dtype == np_dtype:
        return t
    from .arithmetic import cast
    return cast(t, _dt.from_numpy_dtype(np_dtype))


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Sum a broadcast gradient back down to an operand's ``shape`` (differentiably)."""
    gshape = g._data.shape
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    dims = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape)
                                      if n == 1 and gshape[i + lead] != 1)
    from .reduction import sum as _sum
    r = _sum(g, dims, keepdim=True) if dims else g
    return r.reshape(shape) if r._data.shape != shape else r


def broadcast_error(op: str, *tensors) -> None:
    """Raise PyTorch's broadcast error when the shapes of ``tensors`` do not broadcast."""
    shapes = [tuple(t.shape) if hasattr(t, "shape") else () for t in tensors]
    n = max(len(s) for s in shapes)
    for i in range(1, n + 1):
        sizes = {s[-i] for s in shapes if len(s) >= i} - {1}
        if len(sizes) > 1:
            shown = " and ".join(str(s) for s in shapes)
            raise ValueError(f"{op}: shapes {shown} cannot be broadcast together (the sizes "
                             f"{' vs '.join(str(s[-i]) for s in shapes if len(s) >= i)} at "
                             f"dimension {n - i} of the aligned shapes differ and none is 1)")
