"""ONNX rules for ``ember.ops.unary``: exp/log families, roots, trigonometry, rounding, sign,
logit, nan_to_num."""
from __future__ import annotations

import math

import numpy as np

from .._builder import onnx_rule, same_op
from .arithmetic import _trunc

for _name, _type in (("exp", "Exp"), ("log", "Log"), ("sqrt", "Sqrt"), ("sin", "Sin"),
                     ("cos", "Cos"), ("tan", "Tan"), ("asin", "Asin"), ("acos", "Acos"),
                     ("atan", "Atan"), ("sinh", "Sinh"), ("cosh", "Cosh"), ("tanh", "Tanh"),
                     ("asinh", "Asinh"), ("acosh", "Acosh"), ("atanh", "Atanh"),
                     ("reciprocal", "Reciprocal"), ("erf", "Erf"), ("abs", "Abs"),
                     ("sign", "Sign")):
    onnx_rule(_name)(same_op(_type))


def _dt(node):
    return node.outputs[0].dtype


@onnx_rule("exp2")
def _exp2(b, node):
    return b.op("Pow", [b.scalar(2, _dt(node)), b.x(0)])


@onnx_rule("expm1")
def _expm1(b, node):
    return b.op("Sub", [b.op("Exp", [b.x(0)]), b.scalar(1, _dt(node))])


@onnx_rule("log2", "log10")
def _log_base(b, node):
    base = 2.0 if node.op.name == "log2" else 10.0
    return b.op("Div", [b.op("Log", [b.x(0)]), b.scalar(math.log(base), _dt(node))])


@onnx_rule("log1p")
def _log1p(b, node):
    return b.op("Log", [b.op("Add", [b.x(0), b.scalar(1, _dt(node))])])


@onnx_rule("rsqrt")
def _rsqrt(b, node):
    return b.op("Reciprocal", [b.op("Sqrt", [b.x(0)])])


@onnx_rule("erfc")
def _erfc(b, node):
    return b.op("Sub", [b.scalar(1, _dt(node)), b.op("Erf", [b.x(0)])])


@onnx_rule("square")
def _square(b, node):
    x = b.x(0)
    return b.op("Mul", [x, x])


def _rounding(op_type):
    def rule(b, node):
        if node.inputs[0].dtype.kind != "f":
            return b.op("Identity", [b.x(0)])  # integers are already whole
        return b.op(op_type, [b.x(0)]) if op_type != "Trunc" else _trunc(b, b.x(0))
    return rule


onnx_rule("floor")(_rounding("Floor"))
onnx_rule("ceil")(_rounding("Ceil"))
onnx_rule("trunc")(_rounding("Trunc"))


@onnx_rule("frac")
def _frac(b, node):
    return b.op("Sub", [b.x(0), _trunc(b, b.x(0))])


@onnx_rule("round")
def _round(b, node):
    x = b.x(0)
    if node.inputs[0].dtype.kind != "f":
        return b.op("Identity", [x])
    d = node.attrs.get("decimals", 0)
    if not d:
        return b.op("Round", [x])  # half to even, as NumPy
    # NumPy's rule: round(x * 10^d) / 10^d
    s = b.scalar(10.0 ** d, _dt(node))
    return b.op("Div", [b.op("Round", [b.op("Mul", [x, s])]), s])


@onnx_rule("logit")
def _logit(b, node):
    x = b.x(0)
    dt = _dt(node)
    eps = node.attrs.get("eps")
    if eps is not None:
        x = b.op("Clip", [x, b.scalar(eps, dt), b.scalar(1 - eps, dt)])
    return b.op("Log", [b.op("Div", [x, b.op("Sub", [b.scalar(1, dt), x])])])


@onnx_rule("nan_to_num")
def _nan_to_num(b, node):
    x = b.x(0)
    dt = _dt(node)
    if dt.kind != "f":
        return b.op("Identity", [x])
    a = node.attrs
    big = np.finfo(dt).max
    pos = big if a.get("posinf") is None else a["posinf"]
    neg = -big if a.get("neginf") is None else a["neginf"]
    out = b.op("Where", [b.op("IsNaN", [x]), b.scalar(a.get("nan", 0.0), dt), x])
    out = b.op("Where", [b.op("IsInf", [x], detect_negative=0), b.scalar(pos, dt), out])
    return b.op("Where", [b.op("IsInf", [x], detect_positive=0), b.scalar(neg, dt), out])
