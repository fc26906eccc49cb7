"""Attention probabilities ``softmax(q @ k^T * scale + mask)`` as one fused primitive.

Composed from primitives, the attention scores take a scale, a mask add, a causal mask and a
softmax: four passes over the ``(..., L, S)`` scores and four graph nodes. The fused op does
them in one kernel (the scale is folded into ``q``, which is ``S/E`` times smaller than the
scores) and its backward is one fused pass (softmax backward times the scale) plus two matmuls.
Measured for causal attention at batch 16, 4 heads, context 128, head size 64 (float32, one
thread), forward + backward of ``scaled_dot_product_attention`` takes 11.6 ms fused against
16.3 ms composed from matmul, add, softmax.

``safe=True`` gives rows whose every score is ``-inf`` (fully masked) zero probabilities and
zero gradients, as PyTorch's ``scaled_dot_product_attention`` does; ``safe=False`` gives them
NaN, as PyTorch's ``multi_head_attention_forward`` does when it returns the weights.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .linalg import matmul
from .promotion import sum_to
from .registry import apply, register

_causal_cache: dict = {}


def _causal_bias(L: int, S: int, dtype) -> np.ndarray:
    """``(L, S)`` additive mask, ``-inf`` above the diagonal (top-left aligned like PyTorch)."""
    key = (L, S, np.dtype(dtype).str)
    b = _causal_cache.get(key)
    if b is None:
        b = np.triu(np.full((L, S), -np.inf, dtype), 1)
        b.setflags(write=False)
        if len(_causal_cache) > 64:
            _causal_cache.clear()
        _causal_cache[key] = b
    return b


@register("attention_probs", saves=(0, 1), saves_output=True)
def _attention_probs(xp, q, k, mask=None, *, scale, causal=False, safe=True):
    s = xp.matmul(q * q.dtype.type(scale), xp.swapaxes(k, -1, -2))
    if mask is not None:
        if mask.shape == s.shape:
            s += mask
        else:
            s = s + mask  # the mask may broadcast the batch dimensions
    if causal:
        s += xp.asarray(_causal_bias(s.shape[-2], s.shape[-1], s.dtype))
    if s.size == 0:
        return s
    m = xp.maximum.reduce(s, axis=-1, keepdims=True)
    masked = mask is not None or causal
    if masked and safe:
        m[xp.isneginf(m)] = 0  # a fully masked row: exp(-inf - 0) = 0 everywhere, no NaN
    with np.errstate(invalid="ignore"):  # safe=False: -inf - -inf is PyTorch's NaN
        s -= m
    xp.exp(s, out=s)
    z = xp.add.reduce(s, axis=-1, keepdims=True)
    if masked and safe:
        z[z == 0] = 1
    s /= z
    return s


@_attention_probs.def_backward
def _(node, g):
    q, k = node.inputs[0], node.inputs[1]
    scale = node.attrs["scale"]
    p = node.output()
    ds = apply(_scores_grad, (g, p), {"scale": scale})  # d loss / d (q @ k^T * scale)
    gq = sum_to(matmul(ds, k), q.shape) if q.requires_grad else None
    gk = sum_to(matmul(ds.mT, q), k.shape) if k.requires_grad else None
    if len(node.inputs) == 3:
        mask = node.inputs[2]
        gm = None
        if mask.requires_grad:  # d loss / d scores, without the scale
            gm = sum_to(apply(_scores_grad, (g, p), {"scale": 1.0}), mask.shape)
        return gq, gk, gm
    return gq, gk


# The softmax backward times the scale, in one pass: scale * p * (g - sum(g * p, -1)).
@register("attention_scores_grad")
def _scores_grad(xp, g, p, scale):
    r = xp.einsum("...j,...j->...", g, p)[..., None]
    out = g - r
    out *= p
    if scale != 1.0:
        out *= out.dtype.type(scale)
    return out


@_scores_grad.def_backward
def _(node, gg):
    g, p = node.inputs
    scale = node.attrs["scale"]
    gg = gg * scale
    s = (gg * p).sum(-1, keepdim=True)
    gp = (g * p).sum(-1, keepdim=True)
    return (apply(_scores_grad, (gg, p), {"scale": 1.0}) if g.requires_grad else None,
            gg * g - gg * gp - g * s if p.requires_grad else None)


def attention_probs(query: Tensor, key: Tensor, mask: Tensor | None = None, *, scale: float,
                    causal: bool = False, safe: bool = True) -> Tensor:
    """``softmax(query @ key^T * scale + mask [+ causal mask], dim=-1)``.

    ``mask`` is additive (float, broadcastable to ``(..., L, S)``); ``causal`` masks the keys
    after each query position (top-left aligned, like ``torch.tril(ones(L, S))``).
    """
    attrs = {"scale": float(scale), "causal": bool(causal), "safe": bool(safe)}
    if mask is None:
        return apply(_attention_probs, (query, key), attrs)
    return apply(_attention_probs, (query, key, mask), attrs)
