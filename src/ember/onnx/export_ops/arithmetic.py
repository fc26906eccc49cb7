"""ONNX rules for ``ember.ops.arithmetic``: cast, add/sub/mul/div, the rounding divisions and
remainders, pow, max/min, atan2, neg."""
from __future__ import annotations

import math

from .._builder import onnx_rule, onnx_type, same_op

for _name, _type in (("sub", "Sub"), ("div", "Div"), ("pow", "Pow"), ("maximum", "Max"),
                     ("minimum", "Min"), ("neg", "Neg")):
    onnx_rule(_name)(same_op(_type))


@onnx_rule("add", "mul")
def _add_mul(b, node):
    if node.outputs[0].dtype.kind == "b":  # NumPy's bool + and * are or / and
        return b.op("Or" if node.op.name == "add" else "And", [b.x(0), b.x(1)])
    return b.op("Add" if node.op.name == "add" else "Mul", [b.x(0), b.x(1)])


@onnx_rule("cast")
def _cast(b, node):
    return b.op("Cast", [b.x(0)], to=onnx_type(node.attrs["dtype"]))


def _is_int(v) -> bool:
    return v.dtype.kind in "biu"


@onnx_rule("floor_divide")
def _floor_divide(b, node):
    a, c = b.x(0), b.x(1)
    if not _is_int(node.inputs[0]):
        return b.op("Floor", [b.op("Div", [a, c])])
    # ONNX's integer Div truncates; Python's // floors: one less where the signs differ and
    # the division is inexact
    q = b.op("Div", [a, c])
    inexact = b.op("Not", [b.op("Equal", [b.op("Mul", [q, c]), a])])
    zero = b.scalar(0, node.inputs[0].dtype)
    signs = b.op("Xor", [b.op("Less", [a, zero]), b.op("Less", [c, zero])])
    fix = b.cast(b.op("And", [inexact, signs]), node.outputs[0].dtype)
    return b.op("Sub", [q, fix])


@onnx_rule("trunc_divide")
def _trunc_divide(b, node):
    q = b.op("Div", [b.x(0), b.x(1)])
    if _is_int(node.inputs[0]):
        return q  # ONNX's integer Div truncates toward zero
    return _trunc(b, q)


def _trunc(b, x):
    """``trunc(x) = sign(x) * floor(|x|)`` (ONNX has no Trunc)."""
    return b.op("Mul", [b.op("Sign", [x]), b.op("Floor", [b.op("Abs", [x])])])


@onnx_rule("fmod")
def _fmod(b, node):
    return b.op("Mod", [b.x(0), b.x(1)], fmod=1)


@onnx_rule("remainder")
def _remainder(b, node):
    if _is_int(node.inputs[0]):
        return b.op("Mod", [b.x(0), b.x(1)], fmod=0)  # the divisor's sign, as Python's %
    # floats need fmod=1 in ONNX: move a remainder whose sign differs from the divisor's
    a, c = b.x(0), b.x(1)
    r = b.op("Mod", [a, c], fmod=1)
    zero = b.scalar(0, node.inputs[0].dtype)
    differ = b.op("And", [b.op("Not", [b.op("Equal", [r, zero])]),
                          b.op("Xor", [b.op("Less", [r, zero]), b.op("Less", [c, zero])])])
    return b.op("Where", [differ, b.op("Add", [r, c]), r])


def _nan_skipping(b, node, op_type):
    # fmax/fmin: NaN only where both are NaN
    a, c = b.x(0), b.x(1)
    if _is_int(node.inputs[0]):
        return b.op(op_type, [a, c])
    m = b.op(op_type, [a, c])
    m = b.op("Where", [b.op("IsNaN", [a]), c, m])
    return b.op("Where", [b.op("IsNaN", [c]), a, m])


onnx_rule("fmax")(lambda b, node: _nan_skipping(b, node, "Max"))
onnx_rule("fmin")(lambda b, node: _nan_skipping(b, node, "Min"))


@onnx_rule("atan2")
def _atan2(b, node):
    y, x = b.x(0), b.x(1)
    dt = node.outputs[0].dtype
    zero = b.scalar(0, dt)
    base = b.op("Atan", [b.op("Div", [y, x])])
    # the quadrant: +-pi to the left of the y axis, +-pi/2 on it
    pi = b.op("Where", [b.op("Less", [y, zero]), b.scalar(-math.pi, dt), b.scalar(math.pi, dt)])
    left = b.op("Add", [base, pi])
    on_axis = b.op("Where", [b.op("Greater", [y, zero]), b.scalar(math.pi / 2, dt),
                             b.op("Where", [b.op("Less", [y, zero]),
                                            b.scalar(-math.pi / 2, dt), zero])])
    out = b.op("Where", [b.op("Less", [x, zero]), left, base])
    return b.op("Where", [b.op("Equal", [x, zero]), on_axis, out])

