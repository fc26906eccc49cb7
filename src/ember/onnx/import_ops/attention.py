"""Attention. Exported transformer blocks arrive as MatMul/Softmax chains, which the other
families already run; this file adds the fused ``Attention`` op of opset 23+: 3-d or 4-d
Q/K/V, grouped-query heads, a boolean or additive mask (padded to the key length), causal
and sliding-window masks aligned bottom-right to the KV cache, past key/value caches,
``nonpad_kv_seqlen``, softcap, ``softmax_precision`` and the four ``qk_matmul_output_mode``s.
"""
from __future__ import annotations

import math

import numpy as np

from ... import ops
from ...ops import arithmetic as A
from ...ops import comparison as C
from ...ops import indexing as I
from ...ops import reduction as R
from ...ops import shape as S
from ...ops import unary as U
from . import rule
from .linalg import matmul
from .math import same_dtype
from .tensor import ember_dtype


def _heads(x, n):
    """(B, S, n*d) -> (B, n, S, d)."""
    b, s, hidden = x.shape
    return S.permute(S.reshape(x, (b, s, n, hidden // n)), (0, 2, 1, 3))


def _attention_check(node, opset):
    mode = node.attr("qk_matmul_output_mode", 0)
    if mode not in (0, 1, 2, 3):
        return f"qk_matmul_output_mode={mode}"
    return None


@rule("Attention", check=_attention_check)
def _attention(ctx, node, ins):
    q, k, v = ins[0], ins[1], ins[2]
    ins = list(ins) + [None] * (7 - len(ins))
    mask, past_k, past_v, nonpad = ins[3], ins[4], ins[5], ins[6]
    if (past_k is None) != (past_v is None):
        raise ctx.error("past_key and past_value must be given together")
    rank3 = q.ndim == 3
    if rank3:
        qh, kvh = node.attr("q_num_heads"), node.attr("kv_num_heads")
        if not qh or not kvh:
            raise ctx.error("3-d inputs need the q_num_heads and kv_num_heads attributes")
        q, k, v = _heads(q, qh), _heads(k, kvh), _heads(v, kvh)
    elif q.ndim != 4:
        raise ctx.error(f"expected 3-d or 4-d Q, K, V, got shapes {tuple(q.shape)}, "
                        f"{tuple(k.shape)}, {tuple(v.shape)}")
    dt = q._data.dtype
    scale = node.attr("scale")
    if scale is None:
        scale = 1 / math.sqrt(q.shape[3])
    # Q and K are each scaled by sqrt(scale), in Q's type, as the ONNX function body does
    root = float(dt.type(math.sqrt(scale)))
    present_k = k if past_k is None else S.cat([past_k, k], 2)
    present_v = v if past_v is None else S.cat([past_v, v], 2)
    k, v = present_k, present_v
    sq, skv = q.shape[2], k.shape[2]
    bias = ctx.const(np.zeros((sq, skv), dt))
    neg_inf = ctx.const(np.array(-np.inf, dt))
    zero = ctx.const(np.array(0, dt))
    if mask is not None:
        pad = skv - mask.shape[-1]
        if pad > 0:
            mask = S.pad(mask, [0, pad], value=False if mask._data.dtype == np.bool_ else -np.inf)
        if mask._data.dtype == np.bool_:
            mask = C.where(mask, zero, neg_inf)
        else:
            mask = same_dtype(mask, q)
    offset = None
    if past_k is None and nonpad is not None:
        offset = np.asarray(ctx.array(nonpad)).reshape(-1) - sq    # per batch
    elif past_k is not None:
        offset = past_k.shape[2]
    else:
        offset = 0
    if node.attr("is_causal", 0):
        base = bias if mask is None else A.add(bias, mask)
        bias = A.add(base, ctx.const(_band(sq, skv, offset, -1, 0, dt)))
    elif mask is not None:
        bias = A.add(bias, mask)
    left, right = node.attr("left_window_size", -1), node.attr("right_window_size", -1)
    if left >= 0 or right >= 0:
        bias = A.add(bias, ctx.const(_band(sq, skv, offset, left, right, dt)))
    if nonpad is not None:
        lens = np.asarray(ctx.array(nonpad)).reshape(-1)
        keep = np.arange(skv)[None, :] < lens[:, None]
        bias = A.add(bias, ctx.const(np.where(keep, 0, -np.inf).astype(dt)
                                     .reshape(len(lens), 1, 1, skv)))
    nq, nk = q.shape[1], k.shape[1]
    if nq != nk:
        if nq % nk:
            raise ctx.error(f"{nq} query heads are not a multiple of {nk} key/value heads")
        k = S.repeat_interleave(k, nq // nk, 1)
        v = S.repeat_interleave(v, nq // nk, 1)
    scores = matmul(A.mul(q, root), S.transpose(A.mul(k, root), 2, 3))
    softcap = node.attr("softcap", 0.0)
    if softcap and softcap > 0:
        scores = A.mul(U.tanh(A.div(scores, softcap)), softcap)
    qk_out = scores
    with_bias = A.add(scores, bias)
    mode = node.attr("qk_matmul_output_mode", 0)
    if mode == 2:
        qk_out = with_bias
    sm_in = with_bias
    if node.attr("softmax_precision") is not None:
        sm_in = A.cast(sm_in, ember_dtype(node.attr("softmax_precision")))
    probs = _safe_softmax(sm_in)
    # rows whose bias masks every key attend to nothing: zero probabilities, zero output
    dead = C.isneginf(R.amax(bias, -1, keepdim=True)) if skv else None
    if dead is not None:
        probs = C.where(dead, ops.creation.zeros_like(probs), probs)
    if mode == 3:
        qk_out = probs
    probs = same_dtype(probs, q)
    y = matmul(probs, v)
    if rank3:
        y = S.reshape(S.permute(y, (0, 2, 1, 3)), (y.shape[0], y.shape[2], -1))
    return [y, present_k, present_v, same_dtype(qk_out, q)]


def _safe_softmax(x):
    """Softmax along the last dim that gives zeros (not NaN) for an all -inf row."""
    top = R.amax(x, -1, keepdim=True)
    finite = C.where(C.isneginf(top), ops.creation.zeros_like(top), top)
    e = U.exp(A.sub(x, finite))
    s = R.sum(e, -1, keepdim=True)
    return A.div(e, C.where(C.eq(s, 0), ops.creation.ones_like(s), s))


def _band(sq: int, skv: int, offset, left: int, right: int, dt) -> np.ndarray:
    """Additive mask of a window around each query's absolute position ``offset + i``:
    keys ``j`` with ``p - left <= j <= p + right`` (-1: unbounded; causal is right=0)."""
    i = np.arange(sq).reshape(sq, 1)
    j = np.arange(skv).reshape(1, skv)
    per_batch = np.ndim(offset) > 0
    off = np.reshape(offset, (-1, 1, 1)) if per_batch else int(offset)
    diff = (i + off) - j
    allowed = np.ones(diff.shape, bool)
    if left >= 0:
        allowed &= diff <= left
    if right >= 0:
        allowed &= -diff <= right
    m = np.where(allowed, 0, -np.inf).astype(dt)
    return m.reshape(m.shape[0], 1, sq, skv) if per_batch else m


@rule("RotaryEmbedding")
def _rotary_embedding(ctx, node, ins):
    x, cos, sin = ins[0], ins[1], ins[2]
    pos = ins[3] if len(ins) > 3 else None
    shape = tuple(x.shape)
    if x.ndim == 4:  # (B, heads, S, d) -> (B, S, heads, d)
        x = S.permute(x, (0, 2, 1, 3))
    elif x.ndim == 3:
        heads = node.attr("num_heads")
        if not heads:
            raise ctx.error("3-d input needs the num_heads attribute")
        x = S.reshape(x, (shape[0], shape[1], heads, shape[2] // heads))
    else:
        raise ctx.error(f"expected a 3-d or 4-d input, got shape {shape}")
    dim = node.attr("rotary_embedding_dim", 0) or x.shape[3]
    half = dim // 2
    if pos is not None:
        from .shape import _gather_rows
        cos, sin = _gather_rows(ctx, cos, 0, pos), _gather_rows(ctx, sin, 0, pos)
    if cos.shape[-1] != half or sin.shape[-1] != half:
        raise ctx.error(f"cos/sin caches {tuple(cos.shape)}, {tuple(sin.shape)} must end in "
                        f"rotary_embedding_dim/2 = {half}")
    cos, sin = S.unsqueeze(cos, 2), S.unsqueeze(sin, 2)
    rot, rest = S.narrow(x, 3, 0, dim), S.narrow(x, 3, dim, x.shape[3] - dim)
    interleaved = node.attr("interleaved", 0)
    if interleaved:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
    else:
        x1, x2 = S.narrow(rot, 3, 0, half), S.narrow(rot, 3, half, half)
    real = A.sub(A.mul(cos, x1), A.mul(sin, x2))
    imag = A.add(A.mul(sin, x1), A.mul(cos, x2))
    if interleaved:
        rot = S.reshape(S.stack([real, imag], -1), tuple(rot.shape))
    else:
        rot = S.cat([real, imag], 3)
    out = S.cat([rot, rest], 3)
    if len(shape) == 3:
        return S.reshape(out, shape)
    return S.permute(out, (0, 2, 1, 3))


@rule("TensorScatter", check=lambda node, opset: None if node.attr("mode", "linear") in (
    "linear", "circular") else f"mode={node.attr('mode')!r}")
def _tensor_scatter(ctx, node, ins):
    """Write ``update`` into a KV cache at each batch's write position (opset 24)."""
    cache, update = ins[0], ins[1]
    where = ins[2] if len(ins) > 2 else None
    axis = ctx.axis(node.attr("axis", -2), cache.ndim)
    if axis == 0:
        raise ctx.error("axis must not be the batch axis 0")
    b, new, size = cache.shape[0], update.shape[axis], cache.shape[axis]
    start = np.zeros(b, np.int64) if where is None else \
        np.asarray(ctx.array(where)).reshape(-1).astype(np.int64)
    pos = start[:, None] + np.arange(new)[None, :]                    # (B, new)
    if node.attr("mode", "linear") == "circular":
        pos = pos % size
    elif pos.size and pos.max() >= size:
        raise ctx.error(f"writing {new} steps at positions {start.tolist()} overruns the "
                        f"cache length {size}")
    shape = [1] * cache.ndim
    shape[0], shape[axis] = b, new
    index = np.broadcast_to(pos.reshape(shape), tuple(update.shape)).copy()
    return I.scatter(cache, axis, ctx.const(index), update)
