"""Activation functions that are primitives (fused forward and backward): relu, sigmoid, gelu,
silu, softplus, softmax, log_softmax. Composite activations live in ``ember.nn.functional``."""
from __future__ import annotations

import math

from ..errors import check_dim
from ..tensor import Tensor
from .registry import apply, register
from .unary import _float_input


@register("relu", saves=(), saves_output=True)
def _relu(xp, x):
    return xp.maximum(x, 0).astype(x.dtype, copy=False)


@_relu.def_backward
def _(node, g):
    return (threshold_backward(g, node.output().detach(), 0.0),)


# relu's backward as one fused op (PyTorch's threshold_backward): g where y > threshold
@register("threshold_backward", saves=(1,))
def _threshold_backward(xp, g, y, threshold=0.0):
    # g * mask is ~15x faster than where() on patternless masks (no branch mispredictions);
    # where() only when g has inf/NaN, which a 0-multiply would spread to inactive units
    out = g * (y > threshold)
    if not xp.isfinite(g).all():
        out = xp.where(y > threshold, g, 0)
    return out.astype(g.dtype, copy=False)


@_threshold_backward.def_backward
def _(node, gg):
    return (threshold_backward(gg, node.inputs[1], node.attrs["threshold"]), None)


def threshold_backward(grad_output: Tensor, output: Tensor, threshold: float) -> Tensor:
    return apply(_threshold_backward, (grad_output, output), {"threshold": threshold})


def relu(input: Tensor) -> Tensor:
    return apply(_relu, (input,))


@register("sigmoid", saves=(), saves_output=True)
def _sigmoid(xp, x):
    # exp of -|x| never overflows, and e/(1+e) keeps the far negative tail (tanh would round
    # it to exactly 0)
    e = xp.exp(-xp.abs(x))
    r = 1 / (1 + e)
    return xp.where(x >= 0, r, e * r).astype(x.dtype, copy=False)


@_sigmoid.def_backward
def _(node, g):
    return (sigmoid_backward(g, node.output()),)


@register("sigmoid_backward")
def _sigmoid_backward(xp, g, y):
    return g * y * (1 - y)


@_sigmoid_backward.def_backward
def _(node, gg):
    g, y = node.inputs
    return (sigmoid_backward(gg, y) if g.requires_grad else None,
            gg * g * (1 - 2 * y) if y.requires_grad else None)


def sigmoid_backward(grad_output: Tensor, output: Tensor) -> Tensor:
    return apply(_sigmoid_backward, (grad_output, output))


def sigmoid(input: Tensor) -> Tensor:
    return apply(_sigmoid, (_float_input(input),))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)


# GELU's kernels work in place on one or two scratch arrays: a transformer's activations are
# megabytes, and each avoided temporary is a pass over memory (~40% faster than the
# textbook expressions). Python-float constants keep the input's dtype.
_GELU_A = 0.044715


def _gelu_tanh_inner(xp, x, x2):
    """tanh(c (x + a x^3)) computed in a new array, from x and x2 = x * x."""
    t = x2 * (_GELU_A * _SQRT_2_OVER_PI)
    t += _SQRT_2_OVER_PI
    t *= x
    return xp.tanh(t, out=t)


@register("gelu")
def _gelu(xp, x, approximate="none"):
    if x.ndim == 0:  # arithmetic on 0-d arrays gives scalars, which can't be written into
        return _gelu.forward(xp, x.reshape(1), approximate).reshape(())
    if approximate == "tanh":
        t = _gelu_tanh_inner(xp, x, x * x)
    else:
        from .unary import _erf_forward
        t = _erf_forward(xp, x * _INV_SQRT_2)
    t += 1
    t *= x
    t *= 0.5
    return t.astype(x.dtype, copy=False)  # (bfloat16 times a Python float is float32)


@_gelu.def_backward
def _(node, g):
    return (apply(_gelu_backward, (g, node.inputs[0]), node.attrs),)


# GELU's backward as one fused op (PyTorch's gelu_backward): one NumPy expression instead of
# a dozen ember ops over the activation; its own rule gives the second derivative.
@register("gelu_backward")
def _gelu_backward(xp, g, x, approximate="none"):
    if x.ndim == 0:
        return _gelu_backward.forward(xp, g.reshape(1), x.reshape(1), approximate).reshape(())
    x2 = x * x
    if approximate == "tanh":
        # g * (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)), t = tanh(c (x + a x^3))
        t = _gelu_tanh_inner(xp, x, x2)
        d = x2
        d *= 3 * _GELU_A * _SQRT_2_OVER_PI
        d += _SQRT_2_OVER_PI
        out = t * t
        xp.subtract(1, out, out=out)
        out *= d
        out *= x
        out += t
        out += 1
        out *= 0.5
    else:
        # g * (cdf + x pdf), cdf = (1 + erf(x / sqrt 2)) / 2, pdf = exp(-x^2 / 2) / sqrt(2 pi)
        from .unary import _erf_forward
        out = _erf_forward(xp, x * _INV_SQRT_2)
        out += 1
        out *= 0.5
        pdf = x2
        pdf *= -0.5
        xp.exp(pdf, out=pdf)
        pdf *= x * (1 / math.sqrt(2 * math.pi))
        out += pdf
    out *= g
    return out.astype(x.dtype, copy=False)


@_gelu_backward.def_backward
def _(node, gg):
    g, x = node.inputs
    gg_g = apply(_gelu_backward, (gg, x), node.attrs) if g.requires_grad else None
    gg_x = None
    if x.requires_grad:
        if (node.attrs or {}).get("approximate") == "tanh":
            # f'' = (1 - t^2) (u' + x/2 (u'' - 2 t u'^2)) with u = c (x + a x^3)
            a, c = 0.044715, _SQRT_2_OVER_PI
            t = (c * (x + a * x * x * x)).tanh()
            du = c * (1 + 3 * a * x * x)
            ddu = 6 * a * c * x
            second = (1 - t * t) * (du + 0.5 * x * (ddu - 2 * t * du * du))
        else:
            # f'' = phi(x) (2 - x^2)
            second = (-0.5 * x * x).exp() * (1 / math.sqrt(2 * math.pi)) * (2 - x * x)
        gg_x = gg * g * second
    return gg_g, gg_x


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """GELU; ``approximate='tanh'`` uses the tanh formula (GPT-2's)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return apply(_gelu, (input,), {"approximate": approximate} if approximate != "none"
                 else None)


@register("silu")
def _silu(xp, x):
    return (x * (0.5 * (1 + xp.tanh(0.5 * x)))).astype(x.dtype, copy=False)


@_silu.def_backward
def _(node, g):
    x = node.inputs[0]
    s = x.sigmoid()
    return (g * s * (1 + x * (1 - s)),)


def silu(input: Tensor) -> Tensor:
    return apply(_silu, (input,))


@register("softplus")
def _softplus(xp, x, beta=1.0, threshold=20.0):
    bx = beta * x
    # log1p(exp(-|bx|)) + max(bx, 0) is log(1 + exp(bx)) without overflow
    soft = (xp.log1p(xp.exp(-xp.abs(bx))) + xp.maximum(bx, 0)) / beta
    return xp.where(bx > threshold, x, soft).astype(x.dtype, copy=False)


@_softplus.def_backward
def _(node, g):
    x = node.inputs[0]
    a = node.attrs or {}
    beta, threshold = a.get("beta", 1.0), a.get("threshold", 20.0)
    from .comparison import where
    return (where(x * beta > threshold, g, g * (x * beta).sigmoid()),)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    attrs = None if (beta, threshold) == (1.0, 20.0) else {"beta": beta, "threshold": threshold}
    return apply(_softplus, (input,), attrs)


# ----- softmax family -----------------------------------------------------------------------


@register("softmax", saves=(), saves_output=True)
def _softmax(xp, x, dim):
    if x.size == 0:  # nothing to normalise, and max has no identity
        return x.copy()
    e = xp.exp(x - xp.maximum.reduce(x, axis=dim, keepdims=True))
    e /= xp.add.reduce(e, axis=dim, keepdims=True)
    return e


@_softmax.def_backward
def _(node, g):
    return (apply(_softmax_backward, (g, node.output()), node.attrs),)


# softmax's and log_softmax's backward as fused ops (one pass each, as in PyTorch); their
# own rules, written with ember ops, give the second derivatives.
@register("softmax_backward")
def _softmax_backward(xp, g, y, dim):
    gy = g * y
    return gy - y * gy.sum(axis=dim, keepdims=True)


@_softmax_backward.def_backward
def _(node, gg):
    g, y = node.inputs
    dim = node.attrs["dim"]
    s = (gg * y).sum(dim, keepdim=True)
    gy = (g * y).sum(dim, keepdim=True)
    return (y * (gg - s) if g.requires_grad else None,
            gg * g - gg * gy - g * s if y.requires_grad else None)


@register("log_softmax", saves=(), saves_output=True)
def _log_softmax(xp, x, dim):
    if x.size == 0:  # nothing to normalise, and max has no identity
        return x.copy()
    shifted = x - xp.maximum.reduce(x, axis=dim, keepdims=True)
    shifted -= xp.log(xp.add.reduce(xp.exp(shifted), axis=dim, keepdims=True))
    return shifted


@_log_softmax.def_backward
def _(node, g):
    return (apply(_log_softmax_backward, (g, node.output()), node.attrs),)


@register("log_softmax_backward")
def _log_softmax_backward(xp, g, y, dim):
    return g - xp.exp(y) * g.sum(axis=dim, keepdims=True)


@_log_softmax_backward.def_backward
def _(node, gg):
    g, y = node.inputs
    dim = node.attrs["dim"]
    p = y.exp()
    return (gg - (gg * p).sum(dim, keepdim=True) if g.requires_grad else None,
            -gg * p * g.sum(dim, keepdim=True) if y.requires_grad else None)


def _softmax_args(op, input, dim, dtype):
    if dim is None:
        # PyTorch's legacy implicit choice: dim 0 for 0-, 1- and 3-d inputs, else 1
        dim = 0 if input.ndim in (0, 1, 3) else 1
    dim = check_dim(op, dim, input.ndim)
    if dtype is not None:
        input = input.to(dtype)
    return _float_input(input), dim


def softmax(input: Tensor, dim=None, dtype=None) -> Tensor:
    """Softmax along ``dim``; stable for huge logits (the max is subtracted first)."""
    x, dim = _softmax_args("softmax", input, dim, dtype)
    if x.ndim == 0:
        return apply(_softmax, (x.reshape(1),), {"dim": 0}).reshape(())
    return apply(_softmax, (x,), {"dim": dim})


def log_softmax(input: Tensor, dim=None, dtype=None) -> Tensor:
    x, dim = _softmax_args("log_softmax", input, dim, dtype)
    if x.ndim == 0:
        return apply(_log_softmax, (x.reshape(1),), {"dim": 0}).reshape(())
    return apply(_log_softmax, (x,), {"dim": dim})
