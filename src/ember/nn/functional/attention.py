"""Attention: ``F.scaled_dot_product_attention`` and ``F.multi_head_attention_forward``.

Both follow PyTorch's semantics, including its two opposite bool-mask conventions:
``scaled_dot_product_attention`` takes ``True`` = *attend*, while ``multi_head_attention_forward``
(and ``nn.MultiheadAttention`` / the Transformer layers) take ``True`` = *masked out*. Float
masks are added to the scores in both. The scores and softmax are one fused primitive
(``ember.ops.attention``).
"""
from __future__ import annotations

import math

import numpy as np

from ...ops.attention import attention_probs
from ...ops.creation import wrap_constant
from ...ops.dropout import dropout
from ...ops.linalg import matmul
from ...ops.linear import linear
from ...ops.shape import cat
from ...tensor import Tensor

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


def _shape(t) -> tuple:
    return tuple(t.shape)


def _additive_mask(op: str, name: str, mask: Tensor, dtype, attend_if_true: bool) -> Tensor:
    """A bool or float mask as an additive float mask (0 where attended, -inf where masked)."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(mask).__name__}")
    a = mask._data
    if a.dtype == np.bool_:
        # with ember ops, so a traced graph (jit, ONNX export) computes it from the mask
        blocked = mask.logical_not() if attend_if_true else mask
        zero = wrap_constant(np.zeros(a.shape, dtype), mask._dev)
        return zero.masked_fill(blocked, float("-inf"))
    if a.dtype.kind != "f":
        raise TypeError(f"{op}: only bool and floating-point {name} are supported, got dtype "
                        f"{mask.dtype} (shape {_shape(mask)})")
    return mask


def _check_qkv(op: str, query, key, value) -> None:
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    dts = {query._data.dtype, key._data.dtype, value._data.dtype}
    if len(dts) != 1:
        raise TypeError(f"{op}: expected query, key and value to have the same dtype, got "
                        f"{query.dtype}, {key.dtype} and {value.dtype}")
    if query._data.dtype.kind != "f":
        raise TypeError(f"{op}: expected floating-point query/key/value, got {query.dtype}")


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """``softmax(query @ key^T * scale + mask) @ value`` over the last two dims.

    query ``(..., L, E)``, key ``(..., S, E)``, value ``(..., S, Ev)`` -> ``(..., L, Ev)``;
    batch dims broadcast. ``attn_mask`` broadcasts to ``(..., L, S)``: bool (``True`` =
    attend) or float (added to the scores). ``is_causal`` masks keys after each query
    (top-left aligned); given together with ``attn_mask`` both apply. Rows with every key
    masked give zeros (PyTorch's behaviour). ``scale`` defaults to ``1/sqrt(E)``;
    ``enable_gqa`` lets key/value have fewer heads (dim -3) than query (grouped-query
    attention). ``dropout_p`` drops attention weights whenever it is positive (pass
    ``dropout_p=p if training else 0.0``, as with PyTorch).
    """
    op = "scaled_dot_product_attention"
    _check_qkv(op, query, key, value)
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError(f"{op}: query, key and value need at least 2 dims (..., seq, "
                           f"features), got shapes {_shape(query)}, {_shape(key)}, "
                           f"{_shape(value)}")
    E, S = query.shape[-1], key.shape[-2]
    if key.shape[-1] != E:
        raise RuntimeError(f"{op}: query and key must have the same feature size, got query "
                           f"{_shape(query)} and key {_shape(key)}")
    if value.shape[-2] != S:
        raise RuntimeError(f"{op}: key and value must have the same sequence length, got key "
                           f"{_shape(key)} and value {_shape(value)}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1], got {dropout_p}")
    if enable_gqa and query.ndim >= 3 and key.ndim >= 3:
        hq, hk, hv = query.shape[-3], key.shape[-3], value.shape[-3]
        if hk != hv or hq % hk:
            raise RuntimeError(f"{op}: with enable_gqa the number of heads in key and value "
                               f"(dim -3: {hk}, {hv}) must be equal and divide the number of "
                               f"heads in query ({hq})")
        if hk != hq:
            key = key.repeat_interleave(hq // hk, -3)
            value = value.repeat_interleave(hq // hk, -3)
    try:
        batch = np.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except ValueError:
        raise RuntimeError(f"{op}: the batch dims of query {_shape(query)}, key {_shape(key)} "
                           f"and value {_shape(value)} do not broadcast") from None
    mask = None
    if attn_mask is not None:
        mask = _additive_mask(op, "attn_mask", attn_mask, query._data.dtype, True)
        if mask._data.dtype != query._data.dtype:
            raise TypeError(f"{op}: expected attn_mask dtype to be bool or to match the query "
                            f"dtype {query.dtype}, got {attn_mask.dtype}")
        try:
            np.broadcast_shapes(_shape(mask), batch + (query.shape[-2], S))
        except ValueError:
            raise RuntimeError(f"{op}: attn_mask of shape {_shape(attn_mask)} does not "
                               f"broadcast to the scores' shape "
                               f"{batch + (query.shape[-2], S)}") from None
    s = 1.0 / math.sqrt(E) if scale is None else scale
    p = attention_probs(query, key, mask, scale=s, causal=is_causal, safe=True)
    if dropout_p > 0.0:
        p = dropout(p, dropout_p, True)
    return matmul(p, value)


# ----- multi-head attention -------------------------------------------------------------------


def _to_heads(x: Tensor, num_heads: int, batch_first: bool) -> Tensor:
    """``(N, L, E)`` (batch_first) or ``(L, N, E)`` -> ``(N, H, L, E/H)`` as a view."""
    a, b, e = x.shape
    x = x.reshape(a, b, num_heads, e // num_heads)
    return x.permute(0, 2, 1, 3) if batch_first else x.permute(1, 2, 0, 3)


def _mha(query, key, value, num_heads, in_proj_weight, in_proj_bias, bias_k, bias_v,
         add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, training, key_padding_mask,
         need_weights, attn_mask, q_proj_weight, k_proj_weight, v_proj_weight,
         average_attn_weights, is_causal, batch_first, op, static_k=None, static_v=None):
    """Multi-head attention on 3-d inputs laid out ``(N, L, E)`` or ``(L, N, E)``.

    Masks arrive canonical (additive float, or None). Returns outputs in the input layout.
    """
    bdim, sdim = (0, 1) if batch_first else (1, 0)
    bsz, tgt_len, E = query.shape[bdim], query.shape[sdim], query.shape[2]
    src_len = key.shape[sdim]
    head_dim = E // num_heads
    # in-projection: one Linear each for q, k and v from slices of the packed weight (same
    # values as PyTorch's packed projection; the backward avoids scattering into a 3E output)
    if q_proj_weight is None:
        w_q, w_k, w_v = in_proj_weight[:E], in_proj_weight[E:2 * E], in_proj_weight[2 * E:]
    else:
        w_q, w_k, w_v = q_proj_weight, k_proj_weight, v_proj_weight
    b_q = b_k = b_v = None
    if in_proj_bias is not None:
        b_q, b_k, b_v = in_proj_bias[:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
    q = linear(query, w_q, b_q)
    k = linear(key, w_k, b_k)
    v = linear(value, w_v, b_v)

    if attn_mask is not None:
        if attn_mask.ndim == 2:
            if _shape(attn_mask) != (tgt_len, src_len):
                raise RuntimeError(f"{op}: the shape of the 2D attn_mask is "
                                   f"{_shape(attn_mask)}, but should be {(tgt_len, src_len)}")
        elif attn_mask.ndim == 3:
            want = (bsz * num_heads, tgt_len, src_len)
            if _shape(attn_mask) != want:
                raise RuntimeError(f"{op}: the shape of the 3D attn_mask is "
                                   f"{_shape(attn_mask)}, but should be {want}")
            attn_mask = attn_mask.reshape(bsz, num_heads, tgt_len, src_len)
        else:
            raise RuntimeError(f"{op}: attn_mask's dimension {attn_mask.ndim} is not supported "
                               f"(expected 2-d (L, S) or 3-d (N*num_heads, L, S))")
    if key_padding_mask is not None:
        if _shape(key_padding_mask) != (bsz, src_len):
            raise RuntimeError(f"{op}: expected key_padding_mask of shape {(bsz, src_len)} "
                               f"(batch, source length), got {_shape(key_padding_mask)}")
        key_padding_mask = key_padding_mask.reshape(bsz, 1, 1, src_len)

    if bias_k is not None or bias_v is not None:
        if bias_k is None or bias_v is None:
            raise RuntimeError(f"{op}: bias_k and bias_v must be given together")
        shape = (bsz, 1, E) if batch_first else (1, bsz, E)
        k = cat([k, bias_k.reshape(1, 1, E).expand(shape)], sdim)
        v = cat([v, bias_v.reshape(1, 1, E).expand(shape)], sdim)
        attn_mask = _pad_last(attn_mask)
        key_padding_mask = _pad_last(key_padding_mask)
    q, k, v = (_to_heads(t, num_heads, batch_first) for t in (q, k, v))
    # static_k / static_v (N*num_heads, S, head_dim) replace the projected keys / values
    for name, static in (("static_k", static_k), ("static_v", static_v)):
        if static is None:
            continue
        want = (bsz * num_heads, k.shape[2], head_dim)
        if _shape(static) != want:
            raise RuntimeError(f"{op}: expected {name} of shape {want} (batch*num_heads, "
                               f"source length, head_dim), got {_shape(static)}")
        if name == "static_k":
            k = static.reshape(bsz, num_heads, -1, head_dim)
        else:
            v = static.reshape(bsz, num_heads, -1, head_dim)
    if add_zero_attn:
        zeros = wrap_constant(np.zeros((bsz, num_heads, 1, head_dim), k._data.dtype), k._dev)
        k = cat([k, zeros], 2)
        v = cat([v, zeros], 2)
        attn_mask = _pad_last(attn_mask)
        key_padding_mask = _pad_last(key_padding_mask)
    if key_padding_mask is not None:
        attn_mask = key_padding_mask if attn_mask is None else attn_mask + key_padding_mask

    if not training:
        dropout_p = 0.0
    causal = is_causal and attn_mask is None
    # need_weights: PyTorch's plain softmax (fully masked rows give NaN weights); otherwise
    # its scaled_dot_product_attention (fully masked rows give zeros)
    p = attention_probs(q, k, attn_mask, scale=1.0 / math.sqrt(head_dim), causal=causal,
                        safe=not need_weights)
    if dropout_p > 0.0:
        p = dropout(p, dropout_p, True)
    out = matmul(p, v)  # (N, H, L, D)
    out = out.permute(0, 2, 1, 3) if batch_first else out.permute(2, 0, 1, 3)
    out = linear(out.reshape(out.shape[0], out.shape[1], E), out_proj_weight, out_proj_bias)
    if not need_weights:
        return out, None
    if average_attn_weights:
        p = p.mean(1)
    return out, p


def _pad_last(mask):
    """Append one attended (0) column to an additive mask (for bias_k / add_zero_attn)."""
    if mask is None:
        return None
    z = wrap_constant(np.zeros(_shape(mask)[:-1] + (1,), mask._data.dtype), mask._dev)
    return cat([mask, z], -1)


def _canonical_masks(op, query, key_padding_mask, attn_mask, is_causal, need_weights):
    """Masks as additive floats of the query's dtype (bool ``True`` = masked out)."""
    dt = query._data.dtype
    if key_padding_mask is not None:
        key_padding_mask = _additive_mask(op, "key_padding_mask", key_padding_mask, dt, False)
    if is_causal and attn_mask is None:
        raise RuntimeError(f"{op}: need attn_mask if specifying the is_causal hint; you may "
                           f"use Transformer.generate_square_subsequent_mask to create it")
    if is_causal and key_padding_mask is None and not need_weights:
        # the hint replaces the mask (PyTorch's rule: the caller vouches it is causal)
        return key_padding_mask, None, True
    if attn_mask is not None:
        attn_mask = _additive_mask(op, "attn_mask", attn_mask, dt, False)
    # float masks of another precision are cast, so they never change the output's dtype
    if key_padding_mask is not None and key_padding_mask._data.dtype != dt:
        key_padding_mask = key_padding_mask.to(query.dtype)
    if attn_mask is not None and attn_mask._data.dtype != dt:
        attn_mask = attn_mask.to(query.dtype)
    return key_padding_mask, attn_mask, False


def _mha_entry(op, query, key, value, embed_dim, key_padding_mask, attn_mask, batch_first,
               kdim=None, vdim=None):
    """Shape checks shared by the functional and the module; returns (batched, q, k, v,
    key_padding_mask)."""
    _check_qkv(op, query, key, value)
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise RuntimeError(f"{op}: for batched (3-d) query {_shape(query)}, expected key "
                               f"and value to be 3-d, got {_shape(key)} and {_shape(value)}")
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise RuntimeError(f"{op}: for batched (3-d) query, expected key_padding_mask to "
                               f"be None or 2-d, got shape {_shape(key_padding_mask)}")
        batched = True
    elif query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise RuntimeError(f"{op}: for unbatched (2-d) query {_shape(query)}, expected "
                               f"key and value to be 2-d, got {_shape(key)} and "
                               f"{_shape(value)}")
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise RuntimeError(f"{op}: for unbatched (2-d) query, expected key_padding_mask "
                               f"to be None or 1-d, got shape {_shape(key_padding_mask)}")
        batched = False
        b = 0 if batch_first else 1
        query, key, value = query.unsqueeze(b), key.unsqueeze(b), value.unsqueeze(b)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    else:
        raise RuntimeError(f"{op}: query should be unbatched 2-d or batched 3-d, got a "
                           f"{query.ndim}-d query of shape {_shape(query)}")
    if attn_mask is not None and attn_mask.ndim not in (2, 3):
        raise RuntimeError(f"{op}: expected attn_mask to be None, 2-d or 3-d, got shape "
                           f"{_shape(attn_mask)}")
    if query.shape[2] != embed_dim:
        raise RuntimeError(f"{op}: expected query with embed_dim {embed_dim} features, got "
                           f"shape {_shape(query)}")
    kd = embed_dim if kdim is None else kdim
    vd = embed_dim if vdim is None else vdim
    if key.shape[2] != kd or value.shape[2] != vd:
        raise RuntimeError(f"{op}: expected key with {kd} and value with {vd} features, got "
                           f"key {_shape(key)} and value {_shape(value)}")
    bdim = 0 if batch_first else 1
    if key.shape[bdim] != query.shape[bdim] or value.shape[bdim] != query.shape[bdim]:
        raise RuntimeError(f"{op}: query, key and value must have the same batch size, got "
                           f"{_shape(query)}, {_shape(key)} and {_shape(value)} "
                           f"(batch_first={batch_first})")
    if key.shape[1 - bdim] != value.shape[1 - bdim]:
        raise RuntimeError(f"{op}: key and value must have the same sequence length, got "
                           f"{_shape(key)} and {_shape(value)}")
    return batched, query, key, value, key_padding_mask


def multi_head_attention_forward(query: Tensor, key: Tensor, value: Tensor,
                                 embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight: Tensor | None, in_proj_bias: Tensor | None,
                                 bias_k: Tensor | None, bias_v: Tensor | None,
                                 add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight: Tensor, out_proj_bias: Tensor | None,
                                 training: bool = True,
                                 key_padding_mask: Tensor | None = None,
                                 need_weights: bool = True, attn_mask: Tensor | None = None,
                                 use_separate_proj_weight: bool = False,
                                 q_proj_weight: Tensor | None = None,
                                 k_proj_weight: Tensor | None = None,
                                 v_proj_weight: Tensor | None = None,
                                 static_k: Tensor | None = None,
                                 static_v: Tensor | None = None,
                                 average_attn_weights: bool = True, is_causal: bool = False,
                                 *, batch_first: bool = False):
    """PyTorch's ``F.multi_head_attention_forward``: inputs ``(L, N, E)`` (or unbatched
    ``(L, E)``); returns ``(attn_output, attn_weights or None)``.

    ``key_padding_mask`` ``(N, S)`` and ``attn_mask`` ``(L, S)`` or ``(N*num_heads, L, S)``
    are bool (``True`` = masked out) or float (added). Weights are ``(N, L, S)`` averaged
    over heads, or ``(N, num_heads, L, S)`` with ``average_attn_weights=False``.
    ``batch_first`` (ember's extension, keyword only) takes ``(N, L, E)`` inputs.
    """
    op = "multi_head_attention_forward"
    if embed_dim_to_check % num_heads:
        raise RuntimeError(f"{op}: embed_dim {embed_dim_to_check} not divisible by num_heads "
                           f"{num_heads}")
    if use_separate_proj_weight:
        if q_proj_weight is None or k_proj_weight is None or v_proj_weight is None:
            raise RuntimeError(f"{op}: use_separate_proj_weight=True needs q_proj_weight, "
                               f"k_proj_weight and v_proj_weight")
        kdim, vdim = k_proj_weight.shape[1], v_proj_weight.shape[1]
    else:
        if in_proj_weight is None:
            raise RuntimeError(f"{op}: use_separate_proj_weight is False but in_proj_weight "
                               f"is None")
        if _shape(in_proj_weight) != (3 * embed_dim_to_check, embed_dim_to_check):
            raise RuntimeError(f"{op}: expected in_proj_weight of shape "
                               f"{(3 * embed_dim_to_check, embed_dim_to_check)}, got "
                               f"{_shape(in_proj_weight)}")
        kdim = vdim = None
        q_proj_weight = k_proj_weight = v_proj_weight = None
    batched, query, key, value, key_padding_mask = _mha_entry(
        op, query, key, value, embed_dim_to_check, key_padding_mask, attn_mask, batch_first,
        kdim, vdim)
    key_padding_mask, attn_mask, causal = _canonical_masks(
        op, query, key_padding_mask, attn_mask, is_causal, need_weights)
    out, w = _mha(query, key, value, num_heads, in_proj_weight, in_proj_bias, bias_k, bias_v,
                  add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, training,
                  key_padding_mask, need_weights, attn_mask, q_proj_weight, k_proj_weight,
                  v_proj_weight, average_attn_weights, causal, batch_first, op, static_k,
                  static_v)
    if not batched:
        out = out.squeeze(0 if batch_first else 1)
        if w is not None:
            w = w.squeeze(0)
    return out, w
