"""Comparisons, logical and bitwise ops, predicates, ``where`` and ``clamp``."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .promotion import broadcast_error, operands, sum_to
from .registry import apply, register


def _nondiff_binary(name, forward):
    o = register(name)(forward)

    def fn(input, other):
        a, b = operands(name, input, other)
        try:
            return apply(o, (a, b))
        except ValueError:
            broadcast_error(name, a, b)
            raise
    fn.__name__ = fn.__qualname__ = name
    return fn


eq = _nondiff_binary("eq", lambda xp, a, b: a == b)
ne = _nondiff_binary("ne", lambda xp, a, b: a != b)
lt = _nondiff_binary("lt", lambda xp, a, b: a < b)
le = _nondiff_binary("le", lambda xp, a, b: a <= b)
gt = _nondiff_binary("gt", lambda xp, a, b: a > b)
ge = _nondiff_binary("ge", lambda xp, a, b: a >= b)
less, less_equal, greater, greater_equal, not_equal = lt, le, gt, ge, ne
logical_and = _nondiff_binary("logical_and", lambda xp, a, b: xp.logical_and(a, b))
logical_or = _nondiff_binary("logical_or", lambda xp, a, b: xp.logical_or(a, b))
logical_xor = _nondiff_binary("logical_xor", lambda xp, a, b: xp.logical_xor(a, b))


def _bitwise(name, fn):
    def forward(xp, a, b):
        if a.dtype.kind == "f":
            raise TypeError(f"{name}: bitwise ops need integer or bool tensors, got {a.dtype}")
        return fn(xp, a, b)
    return _nondiff_binary(name, forward)


bitwise_and = _bitwise("bitwise_and", lambda xp, a, b: a & b)
bitwise_or = _bitwise("bitwise_or", lambda xp, a, b: a | b)
bitwise_xor = _bitwise("bitwise_xor", lambda xp, a, b: a ^ b)


def _nondiff_unary(name, forward):
    o = register(name)(forward)

    def fn(input):
        return apply(o, (input,))
    fn.__name__ = fn.__qualname__ = name
    return fn


logical_not = _nondiff_unary("logical_not", lambda xp, x: xp.logical_not(x))
isnan = _nondiff_unary("isnan", lambda xp, x: xp.isnan(x))
isinf = _nondiff_unary("isinf", lambda xp, x: xp.isinf(x))
isfinite = _nondiff_unary("isfinite", lambda xp, x: xp.isfinite(x))
isposinf = _nondiff_unary("isposinf", lambda xp, x: xp.isposinf(x))
isneginf = _nondiff_unary("isneginf", lambda xp, x: xp.isneginf(x))
signbit = _nondiff_unary("signbit", lambda xp, x: xp.signbit(x))


def _bitwise_not_fwd(xp, x):
    if x.dtype.kind == "f":
        raise TypeError(f"bitwise_not: needs an integer or bool tensor, got {x.dtype}")
    return ~x


bitwise_not = _nondiff_unary("bitwise_not", _bitwise_not_fwd)


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and values."""
    return input.shape == other.shape and bool(np.array_equal(input._data, other._data))


def allclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    return bool(np.allclose(input._data, other._data, rtol=rtol, atol=atol, equal_nan=equal_nan))


_isin = register("isin")(lambda xp, x, test, invert=False: xp.isin(x, test, invert=invert))


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False):
    """Whether each element of ``elements`` occurs in ``test_elements`` (either may be a
    number)."""
    a, b = operands("isin", elements, test_elements)
    return apply(_isin, (a, b), {"invert": invert} if invert else None)


_isclose = register("isclose")(
    lambda xp, a, b, rtol=1e-5, atol=1e-8, equal_nan=False:
    xp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def isclose(input, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> Tensor:
    a, b = operands("isclose", input, other)
    return apply(_isclose, (a, b), {"rtol": rtol, "atol": atol, "equal_nan": equal_nan})


# ----- where --------------------------------------------------------------------------------


@register("where", saves=(0,))
def _where(xp, cond, a, b):
    return xp.where(cond, a, b)


@_where.def_backward
def _(node, g):
    cond, a, b = node.inputs
    zero = g * 0
    return (None,
            sum_to(where(cond, g, zero), a._data.shape) if a.requires_grad else None,
            sum_to(where(cond, zero, g), b._data.shape) if b.requires_grad else None)


def where(condition, input=None, other=None):
    """``where(cond, a, b)`` picks from ``a`` where ``cond`` else ``b``; ``where(cond)`` gives
    the indices of the true elements (as ``nonzero(as_tuple=True)``)."""
    if input is None and other is None:
        from .indexing import nonzero
        return nonzero(condition, as_tuple=True)
    if not isinstance(condition, Tensor):
        raise TypeError(f"where: condition must be a bool Tensor, got "
                        f"{type(condition).__name__}")
    if condition._data.dtype != np.bool_:
        raise TypeError(f"where: expected condition to be a bool tensor, got "
                        f"{condition.dtype}")
    a, b = operands("where", input, other)
    try:
        return apply(_where, (condition, a, b))
    except ValueError:
        broadcast_error("where", condition, a, b)
        raise


# ----- clamp --------------------------------------------------------------------------------


@register("clamp")
def _clamp(xp, x, min=None, max=None):
    return xp.clip(x, min, max).astype(x.dtype, copy=False)


@_clamp.def_backward
def _(node, g):
    x = node.inputs[0]
    lo, hi = node.attrs.get("min"), node.attrs.get("max")
    keep = None
    if lo is not None:
        keep = x >= lo
    if hi is not None:
        keep = (x <= hi) if keep is None else keep & (x <= hi)
    return (g * keep.type(g.dtype),)


def clamp(input: Tensor, min=None, max=None) -> Tensor:
    """Clamp to ``[min, max]``; either bound may be a number, a Tensor or None."""
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        from .arithmetic import maximum, minimum
        out = input
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    x = input
    if x._data.dtype.kind in "biu" and (isinstance(min, float) or isinstance(max, float)):
        from .unary import _float_input
        x = _float_input(x)
    return apply(_clamp, (x,), {"min": min, "max": max})


clip = clamp


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)
