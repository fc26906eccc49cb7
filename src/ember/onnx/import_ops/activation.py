"""Activations and the softmax family: Relu, LeakyRelu, PRelu, Elu, Selu, Celu, Gelu, Sigmoid,
HardSigmoid, HardSwish, Softplus, Softsign, Mish, Swish, ThresholdedRelu, Shrink, Tanh,
Softmax, LogSoftmax, Hardmax (opset 13 semantics: one axis, default -1)."""
from __future__ import annotations

from ... import ops
from ...ops import activation as Act
from ...ops import arithmetic as A
from ...ops import comparison as C
from ...ops import unary as U
from ...ops.embedding import one_hot
from ...ops.reduction import argmax
from . import rule
from .math import same_dtype


def _float(ctx, x):
    if not x.is_floating_point():
        raise ctx.error(f"expected a floating-point input, got {x.dtype}", TypeError)
    return x


def _zero(x):
    return ops.creation.zeros_like(x)


@rule("Relu")
def _relu(ctx, node, ins):
    x = ins[0]
    if x.is_floating_point():
        return Act.relu(x)
    return A.maximum(x, _zero(x))


@rule("LeakyRelu")
def _leaky_relu(ctx, node, ins):
    x = _float(ctx, ins[0])
    return C.where(C.gt(x, 0), x, A.mul(x, node.attr("alpha", 0.01)))


@rule("PRelu")
def _prelu(ctx, node, ins):
    x, slope = ins
    # the slope broadcasts unidirectionally (numpy rules), unlike PyTorch's channel dim 1
    return C.where(C.gt(x, 0), x, same_dtype(A.mul(x, slope), x))


def _elu(x, alpha):
    return C.where(C.gt(x, 0), x, A.mul(U.expm1(C.clamp(x, max=0.0)), alpha))


@rule("Elu")
def _elu_rule(ctx, node, ins):
    return _elu(_float(ctx, ins[0]), node.attr("alpha", 1.0))


@rule("Selu")
def _selu(ctx, node, ins):
    x = _float(ctx, ins[0])
    alpha = node.attr("alpha", 1.67326319217681884765625)
    gamma = node.attr("gamma", 1.05070102214813232421875)
    return A.mul(_elu(x, alpha), gamma)


@rule("Celu")
def _celu(ctx, node, ins):
    x = _float(ctx, ins[0])
    alpha = node.attr("alpha", 1.0)
    return C.where(C.gt(x, 0), x, A.mul(U.expm1(A.div(C.clamp(x, max=0.0), alpha)), alpha))


@rule("Gelu", check=lambda node, opset: None if node.attr("approximate", "none") in (
    "none", "tanh") else f"approximate={node.attr('approximate')!r} (expected 'none'/'tanh')")
def _gelu(ctx, node, ins):
    return Act.gelu(_float(ctx, ins[0]), approximate=node.attr("approximate", "none"))


@rule("Sigmoid")
def _sigmoid(ctx, node, ins):
    return Act.sigmoid(_float(ctx, ins[0]))


@rule("Tanh")
def _tanh(ctx, node, ins):
    return U.tanh(_float(ctx, ins[0]))


@rule("HardSigmoid")
def _hard_sigmoid(ctx, node, ins):
    x = _float(ctx, ins[0])
    y = A.add(A.mul(x, node.attr("alpha", 0.2)), node.attr("beta", 0.5))
    return C.clamp(y, 0.0, 1.0)


@rule("HardSwish")
def _hard_swish(ctx, node, ins):
    x = _float(ctx, ins[0])
    return A.mul(x, C.clamp(A.add(A.div(x, 6.0), 0.5), 0.0, 1.0))


def _softplus(x):
    # log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): finite for large |x|
    return A.add(C.clamp(x, min=0.0), U.log1p(U.exp(A.neg(U.abs(x)))))


@rule("Softplus")
def _softplus_rule(ctx, node, ins):
    return _softplus(_float(ctx, ins[0]))


@rule("Softsign")
def _softsign(ctx, node, ins):
    x = _float(ctx, ins[0])
    return A.div(x, A.add(U.abs(x), 1.0))


@rule("Mish")
def _mish(ctx, node, ins):
    x = _float(ctx, ins[0])
    return A.mul(x, U.tanh(_softplus(x)))


@rule("Swish")
def _swish(ctx, node, ins):
    x = _float(ctx, ins[0])
    alpha = node.attr("alpha", 1.0)
    return A.mul(x, Act.sigmoid(A.mul(x, alpha) if alpha != 1.0 else x))


@rule("ThresholdedRelu")
def _thresholded_relu(ctx, node, ins):
    x = _float(ctx, ins[0])
    return C.where(C.gt(x, node.attr("alpha", 1.0)), x, _zero(x))


@rule("Shrink")
def _shrink(ctx, node, ins):
    x = ins[0]
    lambd, bias = node.attr("lambd", 0.5), node.attr("bias", 0.0)
    lo = same_dtype(A.add(A.cast(x, _wide(x)), bias), x)
    hi = same_dtype(A.sub(A.cast(x, _wide(x)), bias), x)
    return C.where(C.lt(x, -lambd), lo, C.where(C.gt(x, lambd), hi, _zero(x)))


def _wide(x):
    from ... import dtypes
    return x.dtype if x.is_floating_point() else dtypes.float64


@rule("Softmax")
def _softmax(ctx, node, ins):
    x = _float(ctx, ins[0])
    return Act.softmax(x, ctx.axis(node.attr("axis", -1), x.ndim))


@rule("LogSoftmax")
def _log_softmax(ctx, node, ins):
    x = _float(ctx, ins[0])
    return Act.log_softmax(x, ctx.axis(node.attr("axis", -1), x.ndim))


@rule("Hardmax")
def _hardmax(ctx, node, ins):
    x = ins[0]
    d = ctx.axis(node.attr("axis", -1), x.ndim)
    idx = argmax(x, d)  # the first maximum, as ONNX
    hot = one_hot(idx, x.shape[d])
    if d != x.ndim - 1:
        hot = ops.shape.movedim(hot, -1, d)
    return A.cast(hot, x.dtype)


@rule("SwiGLU")
def _swiglu(ctx, node, ins):
    a, b = ins
    if tuple(a.shape) != tuple(b.shape):
        raise ctx.error(f"A {tuple(a.shape)} and B {tuple(b.shape)} must have one shape")
    alpha = node.attr("alpha", 1.0)
    gate = Act.sigmoid(A.mul(a, alpha) if alpha != 1.0 else a)
    return A.mul(A.mul(a, gate), b)
