"""Elementwise arithmetic and math: Add/Sub/Mul/Div/Pow/Mod, the variadic Sum/Mean/Max/Min,
unary functions, Clip, CumSum/CumProd, bit shifts and bitwise ops.

ONNX ops keep their input's dtype (``T -> T``) where PyTorch promotes (an int32 sum, an integer
power of a float...), so results are cast back to the ONNX type where the two differ.
"""
from __future__ import annotations

from ... import dtypes as D
from ... import ops
from ...ops import arithmetic as A
from ...ops import comparison as C
from ...ops import reduction as R
from ...ops import shape as S
from ...ops import unary as U
from . import rule


def same_dtype(out, like):
    """``out`` cast to ``like``'s dtype (ONNX's ``T -> T`` where ember promoted)."""
    return out if out._data.dtype == like._data.dtype else A.cast(out, like.dtype)


def _binary(fn):
    return lambda ctx, node, ins: fn(ins[0], ins[1])


rule("Add")(_binary(A.add))
rule("Sub")(_binary(A.sub))
rule("Mul")(_binary(A.mul))


@rule("Div")
def _div(ctx, node, ins):
    a, b = ins
    if a._data.dtype.kind in "iub":
        # C-style integer division truncates toward zero
        return same_dtype(A.div(a, b, rounding_mode="trunc"), a)
    return A.div(a, b)


@rule("Pow")
def _pow(ctx, node, ins):
    x, y = ins
    if x._data.dtype.kind == "f" and y._data.dtype.kind == "f" and x._data.dtype != y._data.dtype:
        y = A.cast(y, x.dtype)
    if x._data.dtype.kind in "iu" and y._data.dtype.kind == "f":
        # an integer base with a float exponent: compute in float64, truncate to the base type
        return A.cast(A.pow(A.cast(x, D.float64), A.cast(y, D.float64)), x.dtype)
    return same_dtype(A.pow(x, y), x)


@rule("Mod")
def _mod(ctx, node, ins):
    a, b = ins
    # fmod=0: the result takes the divisor's sign (Python's %), fmod=1: the dividend's (C)
    fn = A.fmod if node.attr("fmod", 0) else A.remainder
    return same_dtype(fn(a, b), a)


def _fold(fn):
    def run(ctx, node, ins):
        out = ins[0]
        for t in ins[1:]:
            out = fn(out, t)
        if len(ins) == 1:
            out = S.clone(out)
        return same_dtype(out, ins[0])
    return run


rule("Sum")(_fold(A.add))
rule("Max")(_fold(A.maximum))
rule("Min")(_fold(A.minimum))


@rule("Mean")
def _mean(ctx, node, ins):
    out = ins[0]
    for t in ins[1:]:
        out = A.add(out, t)
    return same_dtype(A.div(out, float(len(ins))), ins[0])


def _unary(fn, *, float_only: bool = False):
    def run(ctx, node, ins):
        x = ins[0]
        if float_only and not x.is_floating_point():
            raise ctx.error(f"expected a floating-point input, got {x.dtype}", TypeError)
        return same_dtype(fn(x), x)
    return run


for _name, _fn in {"Abs": U.abs, "Neg": A.neg, "Sign": U.sign}.items():
    rule(_name)(_unary(_fn))
for _name, _fn in {"Exp": U.exp, "Log": U.log, "Sqrt": U.sqrt, "Reciprocal": U.reciprocal,
                   "Floor": U.floor, "Ceil": U.ceil, "Round": U.round, "Sin": U.sin,
                   "Cos": U.cos, "Tan": U.tan, "Asin": U.asin, "Acos": U.acos, "Atan": U.atan,
                   "Sinh": U.sinh, "Cosh": U.cosh, "Asinh": U.asinh, "Acosh": U.acosh,
                   "Atanh": U.atanh, "Erf": U.erf}.items():
    rule(_name)(_unary(_fn, float_only=True))


@rule("Clip")
def _clip(ctx, node, ins):
    x = ins[0]
    lo = ins[1] if len(ins) > 1 else None
    hi = ins[2] if len(ins) > 2 else None
    out = x
    # min then max, as np.clip: where min > max every element becomes max
    if lo is not None:
        out = A.maximum(out, same_dtype(lo, x))
    if hi is not None:
        out = A.minimum(out, same_dtype(hi, x))
    return out if out is not x else S.clone(x)


def _cumulative(fn):
    def run(ctx, node, ins):
        x, axis = ins
        d = ctx.axis(int(ctx.scalar(axis)), x.ndim)
        if node.attr("reverse", 0):
            x = S.flip(x, d)
        out = fn(x, d)
        if node.attr("exclusive", 0):
            # shift by one along the axis, the identity element entering first
            ident = 0 if fn is R.cumsum else 1
            first = ops.creation.full_like(S.narrow(x, d, 0, 1), ident)
            out = S.cat([first, S.narrow(out, d, 0, x.shape[d] - 1)], d)
        if node.attr("reverse", 0):
            out = S.flip(out, d)
        return same_dtype(out, ins[0])
    return run


rule("CumSum")(_cumulative(R.cumsum))
rule("CumProd")(_cumulative(R.cumprod))


@rule("BitShift")
def _bitshift(ctx, node, ins):
    x, y = ins
    if x._data.dtype.kind not in "iu":
        raise ctx.error(f"expected integer inputs, got {x.dtype}", TypeError)
    bits = x._data.dtype.itemsize * 8
    wide = A.cast(y, D.int64)
    ok = C.logical_and(C.ge(wide, 0), C.lt(wide, bits))
    shift = C.where(ok, wide, ctx.const(0, like=wide))
    # two factors of at most 2**32 each: 2**63 itself overflows int64
    lo = A.floor_divide(shift, 2)
    hi = A.sub(shift, lo)
    f_lo = A.pow(ctx.const(2, like=wide), lo)
    f_hi = A.pow(ctx.const(2, like=wide), hi)
    if node.attr("direction") == "LEFT":
        # wrapping multiplication in x's own type is a left shift in two's complement
        out = A.mul(A.mul(x, A.cast(f_lo, x.dtype)), A.cast(f_hi, x.dtype))
        spill = ctx.const(0, like=x)
    else:
        # floor division is an arithmetic right shift
        out = A.floor_divide(A.floor_divide(A.cast(x, D.int64), f_lo), f_hi)
        out = A.cast(out, x.dtype)
        spill = C.where(C.lt(x, 0), ctx.const(-1, like=x), ctx.const(0, like=x)) \
            if x._data.dtype.kind == "i" else ctx.const(0, like=x)
    return C.where(ok, out, spill)


rule("BitwiseAnd")(_binary(C.bitwise_and))
rule("BitwiseOr")(_binary(C.bitwise_or))
rule("BitwiseXor")(_binary(C.bitwise_xor))
rule("BitwiseNot")(_unary(C.bitwise_not))
