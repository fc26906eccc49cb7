"""The affine map ``y = x @ W.T + b`` as one fused primitive (``F.linear``).

One op instead of transpose + matmul + add: fewer dispatches forward and backward, and the
bias gradient is one reduction.
"""
from __future__ import annotations

from ..tensor import Tensor
from .registry import apply, register


@register("linear")
def _linear(xp, x, w, b=None):
    out = xp.matmul(x, w.T)
    if b is not None:
        out += b
    return out


@_linear.def_backward
def _(node, g):
    x, w = node.inputs[0], node.inputs[1]
    has_b = len(node.inputs) == 3
    gx = gw = gb = None
    if x.requires_grad:
        gx = g @ w
    if w.requires_grad:
        g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        gw = g2.mT @ x2
    if has_b and node.inputs[2].requires_grad:
        gb = g.sum(tuple(range(g.ndim - 1))) if g.ndim > 1 else g
    return (gx, gw, gb) if has_b else (gx, gw)


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` for input ``(*, in_features)`` and weight ``(out, in)``."""
    if input.ndim == 0 or weight.ndim not in (1, 2):
        raise RuntimeError(f"linear: expected input (*, in_features) and a 2-d weight, got "
                           f"{tuple(input.shape)} and {tuple(weight.shape)}")
    if weight.ndim == 1 or input.ndim == 1:
        out = input @ weight.t()  # rare shapes: the general matmul rules
        return out + bias if bias is not None else out
    if input.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input has {input.shape[-1]} features (shape "
                         f"{tuple(input.shape)}) but weight expects {weight.shape[-1]} "
                         f"(weight shape {tuple(weight.shape)})")
    if bias is not None and tuple(bias.shape) not in ((weight.shape[0],), ()):
        raise ValueError(f"linear: bias shape {tuple(bias.shape)} does not match "
                         f"out_features {weight.shape[0]}")
    dt = weight._data.dtype
    if input._data.dtype != dt:
        raise TypeError(f"linear: input dtype {input.dtype} and weight dtype {weight.dtype} "
                        f"differ; convert the input with .to({weight.dtype})")
    if bias is None:
        return apply(_linear, (input, weight))
    if bias.ndim == 0:
        bias = bias.reshape(1).expand(weight.shape[0])
    return apply(_linear, (input, weight, bias))


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None):
    """``y_k = x1 @ W_k @ x2 + b_k`` with weight ``(out, in1, in2)``."""
    from .linalg import einsum
    out = einsum("...i,kij,...j->...k", input1, weight, input2)
    return out + bias if bias is not None else out
