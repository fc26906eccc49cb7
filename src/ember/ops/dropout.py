"""Dropout as primitives: ``dropout_mask`` draws the keep-mask from ember's generator inside
its kernel (a *random* op: the jit replays it with fresh numbers each call, and passes never
fold or merge it), and ``dropout`` applies a given mask (its own backward, so the gradient
uses the same mask and double backward works)."""
from __future__ import annotations

from ..tensor import Tensor
from .random import _gen
from .registry import apply, register


@register("dropout", saves=(1,))
def _dropout(xp, x, mask, scale):
    return x * mask * x.dtype.type(scale)


@_dropout.def_backward
def _(node, g):
    return (apply(_dropout, (g, node.inputs[1]), node.attrs), None)


@register("dropout_mask")
def _dropout_mask(xp, x, p, shape, generator=None):
    return (_gen(generator).random(shape) >= p).astype(x.dtype)


_dropout_mask.random = True  # never constant-folded, merged or removed as dead by ember.jit


def _masked(op, input, p, training, mask_shape, generator=None):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    attrs = {"p": p, "shape": tuple(mask_shape)}
    if generator is not None:
        attrs["generator"] = generator
    mask = apply(_dropout_mask, (input,), attrs)
    return apply(_dropout, (input, mask), {"scale": 1.0 / (1.0 - p)})


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``."""
    out = _masked("dropout", input, p, training, input.shape, generator)
    return input.copy_(out) if inplace and out is not input and not input.requires_grad \
        else out


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels: input ``(N, C, H, W)`` or ``(C, H, W)``."""
    if input.ndim not in (3, 4):
        raise RuntimeError(f"dropout2d: expected a 3-d or 4-d input, got shape "
                           f"{tuple(input.shape)}")
    shape = input.shape[:-2] + (1, 1)
    return _masked("dropout2d", input, p, training, shape)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    if input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: expected a 2-d or 3-d input, got shape "
                           f"{tuple(input.shape)}")
    return _masked("dropout1d", input, p, training, input.shape[:-1] + (1,))


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False) -> Tensor:
    """SELU-preserving dropout (Klambauer et al.): dropped units go to the SELU saturation."""
    if not training or p == 0:
        return input
    alpha_p = -1.7580993408473766
    keep = Tensor._wrap((_gen(None).random(input.shape) >= p).astype(input._data.dtype),
                        input._dev)
    a = (1 - p + alpha_p ** 2 * p * (1 - p)) ** -0.5
    b = -a * alpha_p * p
    return (input * keep + alpha_p * (1 - keep)) * a + b
