"""Activation functions composed from ember ops (relu, sigmoid, gelu, silu, softplus, softmax
and log_softmax are fused primitives in ``ember.ops.activation``)."""
from __future__ import annotations

from ... import ops
from ...ops.activation import relu as _relu
from ...ops.activation import sigmoid, softmax, softplus
from ...ops.activation import silu as _silu
from ...ops.comparison import clamp, where
from ...tensor import Tensor

__all__ = ["relu", "silu", "gumbel_softmax", "relu6", "leaky_relu", "elu", "selu", "celu",
           "mish", "hardtanh", "hardswish", "hardsigmoid", "softsign", "tanhshrink",
           "logsigmoid", "glu", "softmin", "prelu",
           "threshold", "normalize", "relu_", "leaky_relu_", "elu_", "hardtanh_", "rrelu",
           "softshrink", "hardshrink", "cosine_similarity", "pairwise_distance"]


def _inplace(x: Tensor, out: Tensor) -> Tensor:
    return x.copy_(out) if not x.requires_grad else out


def relu(input, inplace: bool = False):
    return relu_(input) if inplace else _relu(input)


def relu_(input):
    return _inplace(input, _relu(input.detach() if not input.requires_grad else input))


def silu(input, inplace: bool = False):
    return _inplace(input, _silu(input)) if inplace else _silu(input)


def gumbel_softmax(logits, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1):
    """Samples from the Gumbel-softmax distribution: ``softmax((logits + g) / tau)`` with
    Gumbel noise ``g``; ``hard`` returns one-hot samples whose gradient is the soft one's
    (straight-through)."""
    gumbels = -logits.new_empty(logits.shape).exponential_().log()
    y_soft = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.argmax(dim, keepdim=True)
    y_hard = logits.new_zeros(logits.shape).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def relu6(input, inplace: bool = False):
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):
    return where(input > 0, input, input * negative_slope)


def leaky_relu_(input, negative_slope=0.01):
    return input.copy_(leaky_relu(input, negative_slope))


def elu(input, alpha: float = 1.0, inplace: bool = False):
    # expm1 of min(x, 0) keeps the unused branch finite for large x
    return where(input > 0, input, alpha * clamp(input, max=0.0).expm1())


def elu_(input, alpha=1.0):
    return input.copy_(elu(input, alpha))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace: bool = False):
    return _SELU_SCALE * elu(input, _SELU_ALPHA)


def celu(input, alpha: float = 1.0, inplace: bool = False):
    return where(input > 0, input, alpha * (clamp(input, max=0.0) / alpha).expm1())


def mish(input, inplace: bool = False):
    return input * softplus(input).tanh()


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
    return clamp(input, min_val, max_val)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    return input.copy_(hardtanh(input, min_val, max_val))


def hardsigmoid(input, inplace: bool = False):
    return clamp(input / 6 + 0.5, 0.0, 1.0)


def hardswish(input, inplace: bool = False):
    return input * hardsigmoid(input)


def softsign(input):
    return input / (1 + input.abs())


def tanhshrink(input):
    return input - input.tanh()


def softshrink(input, lambd: float = 0.5):
    return where(input > lambd, input - lambd, where(input < -lambd, input + lambd,
                                                     input * 0))


def hardshrink(input, lambd: float = 0.5):
    return where(input.abs() > lambd, input, input * 0)


def logsigmoid(input):
    # log(sigmoid(x)) = -softplus(-x), finite for large |x|
    return -softplus(-input)


def glu(input, dim: int = -1):
    a, b = input.chunk(2, dim)
    return a * sigmoid(b)


def softmin(input, dim=None, dtype=None):
    return softmax(-input, dim, dtype)


def prelu(input, weight):
    """``max(0,x) + weight * min(0,x)``; ``weight`` broadcasts over the channel dim 1."""
    w = weight
    if input.ndim >= 2 and weight.numel() > 1:
        w = weight.reshape((1, -1) + (1,) * (input.ndim - 2))
    return where(input > 0, input, input * w)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    if training:
        from ...ops.random import rand_like
        slope = rand_like(input) * (upper - lower) + lower
        return where(input >= 0, input, input * slope)
    return leaky_relu(input, (lower + upper) / 2)


def threshold(input, threshold: float, value: float, inplace: bool = False):
    return where(input > threshold, input, input * 0 + value)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12):
    """``x / max(||x||_p, eps)`` along ``dim``."""
    n = ops.reduction.norm(input, p, dim, keepdim=True)
    return input / clamp(n, min=eps)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    n1 = ops.reduction.norm(x1, 2, dim)
    n2 = ops.reduction.norm(x2, 2, dim)
    return (x1 * x2).sum(dim) / clamp(n1 * n2, min=eps)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    return ops.reduction.norm(x1 - x2 + eps, p, -1, keepdim)
