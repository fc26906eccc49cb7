"""Comparisons, logical ops and selection: Equal, Less, LessOrEqual, Greater, GreaterOrEqual,
And, Or, Xor, Not, Where, IsNaN, IsInf."""
from __future__ import annotations

from ...ops import comparison as C
from . import rule

for _name, _fn in {"Equal": C.eq, "Less": C.lt, "LessOrEqual": C.le, "Greater": C.gt,
                   "GreaterOrEqual": C.ge}.items():
    rule(_name)(lambda ctx, node, ins, _fn=_fn: _fn(ins[0], ins[1]))


def _logical(fn):
    def run(ctx, node, ins):
        for t in ins:
            if t._data.dtype.kind != "b":
                raise ctx.error(f"expected bool inputs, got {t.dtype}", TypeError)
        return fn(*ins)
    return run


rule("And")(_logical(C.logical_and))
rule("Or")(_logical(C.logical_or))
rule("Xor")(_logical(C.logical_xor))
rule("Not")(_logical(C.logical_not))


@rule("Where")
def _where(ctx, node, ins):
    cond, x, y = ins
    if cond._data.dtype.kind != "b":
        raise ctx.error(f"condition must be bool, got {cond.dtype}", TypeError)
    if x._data.dtype != y._data.dtype:
        raise ctx.error(f"X and Y must have one dtype, got {x.dtype} and {y.dtype}", TypeError)
    return C.where(cond, x, y)


@rule("IsNaN")
def _isnan(ctx, node, ins):
    return C.isnan(ins[0])


@rule("IsInf")
def _isinf(ctx, node, ins):
    x = ins[0]
    neg, pos = node.attr("detect_negative", 1), node.attr("detect_positive", 1)
    if neg and pos:
        return C.isinf(x)
    if pos:
        return C.isposinf(x)
    if neg:
        return C.isneginf(x)
    return C.logical_and(C.isinf(x), C.isnan(x))  # all False, with x's shape
