"""ONNX rules for ``ember.ops.comparison``: comparisons, logical and bitwise ops, predicates,
isin, isclose, where, clamp."""
from __future__ import annotations

import numpy as np

from .._builder import onnx_rule, same_op

for _name, _type in (("eq", "Equal"), ("lt", "Less"), ("le", "LessOrEqual"),
                     ("gt", "Greater"), ("ge", "GreaterOrEqual"), ("where", "Where")):
    onnx_rule(_name)(same_op(_type))


@onnx_rule("ne")
def _ne(b, node):
    return b.op("Not", [b.op("Equal", [b.x(0), b.x(1)])])


def _as_bool(b, node, i):
    """Input ``i`` as bool (NumPy's logical ops take any dtype: nonzero is true)."""
    x = b.x(i)
    if node.inputs[i].dtype.kind == "b":
        return x
    return b.op("Not", [b.op("Equal", [x, b.scalar(0, node.inputs[i].dtype)])])


for _name, _type in (("logical_and", "And"), ("logical_or", "Or"), ("logical_xor", "Xor")):
    onnx_rule(_name)(lambda b, node, t=_type: b.op(t, [_as_bool(b, node, 0),
                                                       _as_bool(b, node, 1)]))
onnx_rule("logical_not")(lambda b, node: b.op("Not", [_as_bool(b, node, 0)]))


def _bitwise(logical, bitwise):
    def rule(b, node):
        ins = [b.name(v) for v in node.inputs]
        if node.inputs[0].dtype.kind == "b":
            return b.op(logical, ins)
        if b.opset < 18:
            b.unsupported(f"{bitwise} on integers needs opset_version >= 18 (got "
                          f"{b.opset})")
        return b.op(bitwise, ins)
    return rule


onnx_rule("bitwise_and")(_bitwise("And", "BitwiseAnd"))
onnx_rule("bitwise_or")(_bitwise("Or", "BitwiseOr"))
onnx_rule("bitwise_xor")(_bitwise("Xor", "BitwiseXor"))
onnx_rule("bitwise_not")(_bitwise("Not", "BitwiseNot"))


def _float_predicate(fn, for_ints: bool):
    """``fn(b, x)`` on floats; a constant ``for_ints`` of the input's shape otherwise."""
    def rule(b, node):
        x = b.x(0)
        if node.inputs[0].dtype.kind == "f":
            return fn(b, x)
        same = b.op("Equal", [x, x])  # all true, in x's shape
        return same if for_ints else b.op("Not", [same])
    return rule


onnx_rule("isnan")(_float_predicate(lambda b, x: b.op("IsNaN", [x]), False))
onnx_rule("isinf")(_float_predicate(lambda b, x: b.op("IsInf", [x]), False))
onnx_rule("isposinf")(_float_predicate(lambda b, x: b.op("IsInf", [x], detect_negative=0),
                                       False))
onnx_rule("isneginf")(_float_predicate(lambda b, x: b.op("IsInf", [x], detect_positive=0),
                                       False))
onnx_rule("isfinite")(_float_predicate(
    lambda b, x: b.op("Not", [b.op("Or", [b.op("IsNaN", [x]), b.op("IsInf", [x])])]), True))


@onnx_rule("signbit")
def _signbit(b, node):
    x = b.x(0)
    dt = node.inputs[0].dtype
    if dt.kind == "b" or dt.kind == "u":
        return b.op("Not", [b.op("Equal", [x, x])])
    zero = b.scalar(0, dt)
    neg = b.op("Less", [x, zero])
    if dt.kind != "f":
        return neg
    # -0.0 has its sign bit set: 1 / -0.0 = -inf
    return b.op("Or", [neg, b.op("Less", [b.op("Reciprocal", [x]), zero])])


@onnx_rule("isin")
def _isin(b, node):
    x, test = b.x(0), b.x(1)
    # every element against every test value: (..., 1) == (K,), any over the last axis
    eq = b.op("Equal", [b.unsqueeze(x, [-1]), b.op("Reshape", [test, b.ints([-1])])])
    hit = b.cast(b.reduce("ReduceMax", b.cast(eq, np.int32), [-1], False), np.bool_)
    return b.op("Not", [hit]) if node.attrs.get("invert") else hit


@onnx_rule("isclose")
def _isclose(b, node):
    a, c = b.x(0), b.x(1)
    at = node.attrs
    dt = node.inputs[0].dtype
    equal = b.op("Equal", [a, c])
    if dt.kind != "f":
        return b.op("Or", [equal, _int_close(b, a, c, at)])
    tol = b.op("Add", [b.scalar(at.get("atol", 1e-8), dt),
                       b.op("Mul", [b.scalar(at.get("rtol", 1e-5), dt), b.op("Abs", [c])])])
    close = b.op("LessOrEqual", [b.op("Abs", [b.op("Sub", [a, c])]), tol])
    out = b.op("Or", [equal, close])  # infinities compare equal only to themselves
    if at.get("equal_nan"):
        out = b.op("Or", [out, b.op("And", [b.op("IsNaN", [a]), b.op("IsNaN", [c])])])
    return out


def _int_close(b, a, c, at):
    a64, c64 = b.cast(a, np.float64), b.cast(c, np.float64)
    tol = b.op("Add", [b.scalar(at.get("atol", 1e-8), np.float64),
                       b.op("Mul", [b.scalar(at.get("rtol", 1e-5), np.float64),
                                    b.op("Abs", [c64])])])
    return b.op("LessOrEqual", [b.op("Abs", [b.op("Sub", [a64, c64])]), tol])


@onnx_rule("clamp")
def _clamp(b, node):
    dt = node.outputs[0].dtype
    lo, hi = node.attrs.get("min"), node.attrs.get("max")
    x = b.x(0)
    if dt.kind == "b":
        x = b.cast(x, np.int32)
    cdt = np.int32 if dt.kind == "b" else dt
    out = b.op("Clip", [x, "" if lo is None else b.scalar(lo, cdt),
                        "" if hi is None else b.scalar(hi, cdt)])
    return b.cast(out, np.bool_) if dt.kind == "b" else out
