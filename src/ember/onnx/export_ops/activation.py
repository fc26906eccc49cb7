"""ONNX rules for ``ember.ops.activation``: relu, sigmoid, gelu, silu, softplus, softmax,
log_softmax."""
from __future__ import annotations

import math

from .._builder import onnx_rule, same_op

onnx_rule("relu")(same_op("Relu"))
onnx_rule("sigmoid")(same_op("Sigmoid"))


@onnx_rule("gelu")
def _gelu(b, node):
    x = b.x(0)
    approx = node.attrs.get("approximate", "none")
    if b.opset >= 20:
        return b.op("Gelu", [x], approximate=approx)
    dt = node.outputs[0].dtype
    half = b.scalar(0.5, dt)
    if approx == "tanh":
        cube = b.op("Mul", [b.op("Mul", [x, x]), x])
        inner = b.op("Add", [x, b.op("Mul", [cube, b.scalar(0.044715, dt)])])
        t = b.op("Tanh", [b.op("Mul", [inner, b.scalar(math.sqrt(2 / math.pi), dt)])])
    else:
        t = b.op("Erf", [b.op("Mul", [x, b.scalar(1 / math.sqrt(2), dt)])])
    one_plus = b.op("Add", [t, b.scalar(1, dt)])
    return b.op("Mul", [b.op("Mul", [x, half]), one_plus])


@onnx_rule("silu")
def _silu(b, node):
    x = b.x(0)
    return b.op("Mul", [x, b.op("Sigmoid", [x])])


@onnx_rule("softplus")
def _softplus(b, node):
    x = b.x(0)
    a = node.attrs or {}
    beta, threshold = a.get("beta", 1.0), a.get("threshold", 20.0)
    dt = node.outputs[0].dtype
    bx = b.op("Mul", [x, b.scalar(beta, dt)]) if beta != 1.0 else x
    soft = b.op("Softplus", [bx])
    if beta != 1.0:
        soft = b.op("Div", [soft, b.scalar(beta, dt)])
    # above the threshold PyTorch returns x itself (linear regime)
    return b.op("Where", [b.op("Greater", [bx, b.scalar(threshold, dt)]), x, soft])


onnx_rule("softmax")(lambda b, node: b.op("Softmax", [b.x(0)], axis=node.attrs["dim"]))
onnx_rule("log_softmax")(lambda b, node: b.op("LogSoftmax", [b.x(0)],
                                              axis=node.attrs["dim"]))
