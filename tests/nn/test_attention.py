"""Attention: ``F.scaled_dot_product_attention``, ``F.multi_head_attention_forward`` and
``nn.MultiheadAttention``.

Values are checked against NumPy references written from the definitions
(``softmax(Q K^T / sqrt(d) + mask) V``, one head at a time for multi-head attention);
gradients against central finite differences of those references in float64. Optional tests
load PyTorch's weights into ember's module and compare outputs.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F
from finite_differences import numeric_grads  # noqa: E402

RNG = np.random.default_rng(7)


def randn(*shape):
    return RNG.standard_normal(shape)


def t(a, grad=False):
    return ember.tensor(np.asarray(a), requires_grad=grad)


def leaf(a):
    return ember.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# ----- NumPy references ---------------------------------------------------------------------


def ref_softmax(s, safe):
    """Row softmax; ``safe`` gives all -inf rows zeros (PyTorch's SDPA), else NaN."""
    out = np.empty_like(s)
    for idx in np.ndindex(s.shape[:-1]):
        row = s[idx]
        if safe and np.all(np.isneginf(row)):
            out[idx] = 0.0
            continue
        e = np.exp(row - row.max())
        out[idx] = e / e.sum()
    return out


def ref_sdpa(q, k, v, mask=None, causal=False, scale=None):
    """softmax(q k^T * scale + mask) v with bool masks True = attend."""
    L, S = q.shape[-2], k.shape[-2]
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if causal:
        s = np.where(np.tril(np.ones((L, S), bool)), s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    return ref_softmax(s, safe=True) @ v


def ref_mha(query, key, value, H, w_in, b_in, w_out, b_out, kpm=None, attn_mask=None,
            bias_k=None, bias_v=None, add_zero_attn=False, need_weights=True, average=True,
            wq=None, wk=None, wv=None):
    """Multi-head attention for seq-first (L, N, E) inputs, one batch item and head at a time.

    Bool masks: True = masked out. attn_mask is (L, S) or (N*H, L, S).
    """
    L, N, E = query.shape
    D = E // H
    if wq is None:
        wq, wk, wv = w_in[:E], w_in[E:2 * E], w_in[2 * E:]
    bq = bk = bv = np.zeros(E)
    if b_in is not None:
        bq, bk, bv = b_in[:E], b_in[E:2 * E], b_in[2 * E:]
    out = np.zeros((L, N, E))
    weights = []
    for n in range(N):
        q = query[:, n] @ wq.T + bq
        k = key[:, n] @ wk.T + bk
        v = value[:, n] @ wv.T + bv
        extra = []
        if bias_k is not None:
            k = np.vstack([k, bias_k.reshape(1, E)])
            v = np.vstack([v, bias_v.reshape(1, E)])
            extra.append(0.0)
        heads, w_n = [], []
        for h in range(H):
            sl = slice(h * D, (h + 1) * D)
            qh, kh, vh = q[:, sl], k[:, sl], v[:, sl]
            if add_zero_attn:
                kh = np.vstack([kh, np.zeros((1, D))])
                vh = np.vstack([vh, np.zeros((1, D))])
            S0 = key.shape[0]
            bias = np.zeros((L, kh.shape[0]))
            if attn_mask is not None:
                m = attn_mask if attn_mask.ndim == 2 else attn_mask[n * H + h]
                bias[:, :S0] += np.where(m, -np.inf, 0.0) if m.dtype == bool else m
            if kpm is not None:
                m = kpm[n]
                bias[:, :S0] += np.where(m, -np.inf, 0.0) if m.dtype == bool else m
            s = qh @ kh.T / np.sqrt(D) + bias
            p = ref_softmax(s, safe=not need_weights)
            heads.append(p @ vh)
            w_n.append(p)
        out[:, n] = np.hstack(heads) @ w_out.T + (0 if b_out is None else b_out)
        weights.append(np.stack(w_n))
    w = np.stack(weights)  # (N, H, L, S)
    return out, (w.mean(1) if average else w)


# ----- scaled_dot_product_attention: values ---------------------------------------------------

# (name, q shape, k shape, v shape, mask maker, causal, scale)
SDPA_CASES = [
    ("plain-4d", (2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), None, False, None),
    ("plain-3d", (2, 4, 5), (2, 6, 5), (2, 6, 3), None, False, None),
    ("plain-2d", (4, 5), (6, 5), (6, 3), None, False, None),
    ("broadcast-batch", (2, 3, 4, 5), (1, 3, 6, 5), (1, 3, 6, 5), None, False, None),
    ("scale", (1, 2, 4, 5), (1, 2, 6, 5), (1, 2, 6, 5), None, False, 0.3),
    ("causal-square", (2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4), None, True, None),
    ("causal-short-q", (1, 2, 3, 4), (1, 2, 6, 4), (1, 2, 6, 4), None, True, None),
    ("causal-long-q", (1, 2, 6, 4), (1, 2, 3, 4), (1, 2, 3, 4), None, True, None),
    ("bool-2d", (2, 2, 4, 3), (2, 2, 5, 3), (2, 2, 5, 3),
     lambda: RNG.random((4, 5)) < 0.7, False, None),
    ("bool-per-batch", (2, 2, 4, 3), (2, 2, 5, 3), (2, 2, 5, 3),
     lambda: RNG.random((2, 1, 1, 5)) < 0.7, False, None),
    ("float-2d", (2, 2, 4, 3), (2, 2, 5, 3), (2, 2, 5, 3), lambda: randn(4, 5), False, None),
    ("float-4d", (2, 2, 4, 3), (2, 2, 5, 3), (2, 2, 5, 3),
     lambda: randn(2, 2, 4, 5), False, None),
    ("float-inf-entries", (1, 2, 4, 3), (1, 2, 5, 3), (1, 2, 5, 3),
     lambda: np.where(RNG.random((4, 5)) < 0.3, -np.inf, randn(4, 5)), False, None),
    ("causal-and-mask", (1, 2, 4, 3), (1, 2, 4, 3), (1, 2, 4, 3),
     lambda: randn(4, 4), True, None),
]


@pytest.mark.parametrize("case", SDPA_CASES, ids=[c[0] for c in SDPA_CASES])
def test_sdpa_matches_numpy_reference(case):
    _, qs, ks, vs, mk, causal, scale = case
    q, k, v = randn(*qs), randn(*ks), randn(*vs)
    mask = mk() if mk else None
    out = F.scaled_dot_product_attention(t(q), t(k), t(v), None if mask is None else t(mask),
                                         is_causal=causal, scale=scale)
    np.testing.assert_allclose(out.numpy(), ref_sdpa(q, k, v, mask, causal, scale),
                               rtol=1e-10, atol=1e-12)


def test_sdpa_float32_stays_float32():
    q = randn(2, 2, 4, 8).astype(np.float32)
    out = F.scaled_dot_product_attention(t(q), t(q), t(q), is_causal=True)
    assert out.dtype == ember.float32
    np.testing.assert_allclose(out.numpy(), ref_sdpa(q.astype(np.float64), q, q, None, True),
                               rtol=1e-5, atol=1e-6)


def test_sdpa_fully_masked_row_gives_zero_output_and_zero_grad():
    q, k, v = randn(1, 2, 3, 4), randn(1, 2, 5, 4), randn(1, 2, 5, 4)
    mask = np.ones((3, 5), bool)
    mask[1] = False
    ql = leaf(q)
    out = F.scaled_dot_product_attention(ql, t(k), t(v), attn_mask=t(mask))
    o = out.detach().numpy()
    assert np.all(o[:, :, 1] == 0) and np.isfinite(o).all()
    out.sum().backward()
    assert np.all(ql.grad.numpy()[:, :, 1] == 0) and np.isfinite(ql.grad.numpy()).all()
    np.testing.assert_allclose(out.detach().numpy(), ref_sdpa(q, k, v, mask), atol=1e-12)


def test_sdpa_huge_scores_stay_finite():
    q = randn(1, 1, 3, 4) * 1e4
    k = randn(1, 1, 5, 4) * 1e4
    out = F.scaled_dot_product_attention(t(q), t(k), t(randn(1, 1, 5, 4)))
    assert np.isfinite(out.numpy()).all()


def test_sdpa_grouped_query_attention():
    q, k, v = randn(2, 4, 3, 5), randn(2, 2, 6, 5), randn(2, 2, 6, 5)
    out = F.scaled_dot_product_attention(t(q), t(k), t(v), enable_gqa=True)
    ref = ref_sdpa(q, np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-12)


def test_sdpa_dropout_scales_kept_weights():
    # with value = identity the output is the (dropped) attention matrix itself
    q, k = randn(2, 2, 4, 6), randn(2, 2, 6, 6)
    v = np.broadcast_to(np.eye(6), (2, 2, 6, 6)).copy()
    p = 0.4
    out = F.scaled_dot_product_attention(t(q), t(k), t(v), dropout_p=p).numpy()
    kept = ref_sdpa(q, k, v) / (1 - p)
    dropped = out == 0
    assert 0 < dropped.mean() < 1
    np.testing.assert_allclose(out[~dropped], kept[~dropped], rtol=1e-10)


# ----- scaled_dot_product_attention: gradients ------------------------------------------------

SDPA_GRAD_CASES = [
    ("plain", (1, 2, 3, 2), (1, 2, 4, 2), None, False),
    ("causal", (1, 2, 3, 2), (1, 2, 3, 2), None, True),
    ("broadcast-k", (2, 2, 3, 2), (1, 2, 4, 2), None, False),
    ("bool-mask", (1, 2, 3, 2), (1, 2, 4, 2), np.array([[1, 1, 0, 1], [0, 1, 1, 1],
                                                        [1, 0, 0, 1]], bool), False),
]


@pytest.mark.parametrize("case", SDPA_GRAD_CASES, ids=[c[0] for c in SDPA_GRAD_CASES])
def test_sdpa_gradients_match_finite_differences(case):
    _, qs, ks, mask, causal = case
    q, k, v = randn(*qs), randn(*ks), randn(*ks[:-1], 3)
    R = randn(*np.broadcast_shapes(qs[:-1], ks[:-2] + (1,)), 3)
    args = [leaf(a) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*args, attn_mask=None if mask is None else t(mask),
                                         is_causal=causal)
    (out * t(R)).sum().backward()
    num = numeric_grads(lambda a, b, c: (ref_sdpa(a, b, c, mask, causal) * R).sum(), q, k, v)
    for a, g in zip(args, num):
        np.testing.assert_allclose(a.grad.numpy(), g, rtol=1e-6, atol=1e-8)


def test_sdpa_float_mask_gradient():
    q, k, v, m = randn(1, 2, 3, 2), randn(1, 2, 4, 2), randn(1, 2, 4, 2), randn(3, 4)
    R = randn(1, 2, 3, 2)
    ml = leaf(m)
    (F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=ml) * t(R)).sum().backward()
    (num,) = numeric_grads(lambda mm: (ref_sdpa(q, k, v, mm) * R).sum(), m)
    np.testing.assert_allclose(ml.grad.numpy(), num, rtol=1e-6, atol=1e-8)


def test_sdpa_second_derivative():
    q, k, v = randn(1, 1, 2, 2), randn(1, 1, 3, 2), randn(1, 1, 3, 2)
    ql = leaf(q)
    out = F.scaled_dot_product_attention(ql, t(k), t(v), is_causal=False)
    (g,) = ember.autograd.grad((out * out).sum(), ql, create_graph=True)
    g.sum().backward()

    def first(a):  # d/dq of sum(out^2), by finite differences of the reference
        return numeric_grads(lambda x: (ref_sdpa(x, k, v) ** 2).sum(), a, eps=1e-5)[0].sum()
    (num,) = numeric_grads(first, q, eps=1e-4)
    np.testing.assert_allclose(ql.grad.numpy(), num, rtol=1e-4, atol=1e-6)


# ----- scaled_dot_product_attention: errors ---------------------------------------------------


@pytest.mark.parametrize("kwargs, shapes, match", [
    ({}, ((1, 3, 4), (1, 5, 3), (1, 5, 4)), "same feature size"),
    ({}, ((1, 3, 4), (1, 5, 4), (1, 6, 4)), "same sequence length"),
    ({}, ((2, 3, 4), (3, 5, 4), (3, 5, 4)), "do not broadcast"),
    ({}, ((4,), (5, 4), (5, 4)), "at least 2 dims"),
    ({"attn_mask": ember.zeros(4, 5)}, ((1, 3, 4), (1, 5, 4), (1, 5, 4)), "broadcast"),
    ({"attn_mask": ember.zeros(3, 5, dtype=ember.int64)}, ((1, 3, 4), (1, 5, 4), (1, 5, 4)),
     "bool and floating"),
    ({"enable_gqa": True}, ((1, 3, 2, 4), (1, 2, 5, 4), (1, 2, 5, 4)), "divide"),
])
def test_sdpa_errors_name_the_op_and_shapes(kwargs, shapes, match):
    q, k, v = (ember.zeros(*s) for s in shapes)
    with pytest.raises((RuntimeError, TypeError, ValueError), match=match) as e:
        F.scaled_dot_product_attention(q, k, v, **kwargs)
    assert "scaled_dot_product_attention" in str(e.value)


def test_sdpa_dtype_mismatch_is_an_error():
    q = ember.zeros(1, 3, 4)
    with pytest.raises(TypeError, match="same dtype"):
        F.scaled_dot_product_attention(q, q, q.double())


# ----- MultiheadAttention ---------------------------------------------------------------------


def mha_params(m):
    """The module's weights as float64 NumPy arrays, keyed like the reference's arguments."""
    g = {k: v.numpy().astype(np.float64) for k, v in m.state_dict().items()}
    return dict(w_in=g.get("in_proj_weight"), b_in=g.get("in_proj_bias"),
                w_out=g["out_proj.weight"], b_out=g.get("out_proj.bias"),
                bias_k=g.get("bias_k"), bias_v=g.get("bias_v"), wq=g.get("q_proj_weight"),
                wk=g.get("k_proj_weight"), wv=g.get("v_proj_weight"))


def make_mha(E=8, H=2, **kw):
    m = nn.MultiheadAttention(E, H, **kw).double()
    # non-zero biases so that a wrong bias slice cannot hide
    with ember.no_grad():
        for name, p in m.named_parameters():
            if "bias" in name:
                p.copy_(t(randn(*p.shape)))
    return m


L, S, N, E, H = 4, 5, 3, 8, 2


def _bool(*shape, p=0.3):
    m = RNG.random(shape) < p
    m[..., 0] = False  # keep at least one key per row
    return m


# (name, module kwargs, forward kwargs maker as NumPy arrays, self-attention?)
MHA_CASES = [
    ("self", {}, lambda: {}, True),
    ("cross", {}, lambda: {}, False),
    ("kpm-bool", {}, lambda: {"key_padding_mask": _bool(N, S)}, False),
    ("kpm-float", {}, lambda: {"key_padding_mask": randn(N, S)}, False),
    ("mask2d-bool", {}, lambda: {"attn_mask": _bool(L, S)}, False),
    ("mask2d-float", {}, lambda: {"attn_mask": randn(L, S)}, False),
    ("mask3d-bool", {}, lambda: {"attn_mask": _bool(N * H, L, S)}, False),
    ("mask3d-float", {}, lambda: {"attn_mask": randn(N * H, L, S)}, False),
    ("both-masks", {}, lambda: {"attn_mask": randn(L, S), "key_padding_mask": _bool(N, S)},
     False),
    ("no-bias", {"bias": False}, lambda: {}, False),
    ("bias-kv", {"add_bias_kv": True}, lambda: {"key_padding_mask": _bool(N, S)}, False),
    ("zero-attn", {"add_zero_attn": True}, lambda: {"attn_mask": randn(L, S)}, False),
    ("kdim-vdim", {"kdim": 3, "vdim": 6}, lambda: {"key_padding_mask": _bool(N, S)}, False),
    ("four-heads", {"num_heads": 4}, lambda: {"attn_mask": _bool(N * 4, L, S)}, False),
]


def _inputs(mod_kw, self_attn):
    kd, vd = mod_kw.get("kdim", E), mod_kw.get("vdim", E)
    query = randn(L, N, E)
    if self_attn:
        return query, query, query
    return query, randn(S, N, kd), randn(S, N, vd)


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize("need_weights, average", [(True, True), (True, False), (False, True)],
                         ids=["avg-weights", "head-weights", "no-weights"])
@pytest.mark.parametrize("case", MHA_CASES, ids=[c[0] for c in MHA_CASES])
def test_multihead_attention_matches_numpy_reference(case, need_weights, average, batch_first):
    _, mod_kw, fwd, self_attn = case
    mod_kw = dict(mod_kw)
    heads = mod_kw.pop("num_heads", H)
    m = make_mha(E, heads, batch_first=batch_first, **mod_kw)
    query, key, value = _inputs(mod_kw, self_attn)
    kw = fwd()
    ref_out, ref_w = ref_mha(query, key, value, heads, **mha_params(m), need_weights=need_weights,
                             average=average, add_zero_attn=mod_kw.get("add_zero_attn", False),
                             kpm=kw.get("key_padding_mask"), attn_mask=kw.get("attn_mask"))
    if batch_first:
        query, key, value = (np.swapaxes(a, 0, 1) for a in (query, key, value))
        ref_out = np.swapaxes(ref_out, 0, 1)
    qt = t(query)
    kt, vt = (qt, qt) if self_attn else (t(key), t(value))
    out, w = m(qt, kt, vt, need_weights=need_weights, average_attn_weights=average,
               **{k: t(v) for k, v in kw.items()})
    np.testing.assert_allclose(out.detach().numpy(), ref_out, rtol=1e-10, atol=1e-12)
    if need_weights:
        np.testing.assert_allclose(w.detach().numpy(), ref_w, rtol=1e-10, atol=1e-12)
    else:
        assert w is None


def test_multihead_attention_unbatched_input():
    m = make_mha()
    q, k, v = randn(L, E), randn(S, E), randn(S, E)
    kpm = _bool(S)
    out, w = m(t(q), t(k), t(v), key_padding_mask=t(kpm))
    ref_out, ref_w = ref_mha(q[:, None], k[:, None], v[:, None], H, **mha_params(m),
                             kpm=kpm[None])
    assert tuple(out.shape) == (L, E) and tuple(w.shape) == (L, S)
    np.testing.assert_allclose(out.detach().numpy(), ref_out[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.detach().numpy(), ref_w[0], rtol=1e-10, atol=1e-12)


def test_multihead_attention_is_causal_hint_uses_the_causal_mask():
    m = make_mha(batch_first=True)
    x = randn(N, L, E)
    causal = np.triu(np.ones((L, L), bool), 1)
    out, _ = m(t(x), t(x), t(x), attn_mask=t(causal), is_causal=True, need_weights=False)
    xs = np.swapaxes(x, 0, 1)
    ref, _ = ref_mha(xs, xs, xs, H, **mha_params(m), attn_mask=causal, need_weights=False)
    np.testing.assert_allclose(out.detach().numpy(), np.swapaxes(ref, 0, 1), rtol=1e-10,
                               atol=1e-12)
    with pytest.raises(RuntimeError, match="is_causal"):
        m(t(x), t(x), t(x), is_causal=True)


def test_multihead_attention_fully_padded_row_like_pytorch():
    # PyTorch: NaN when the weights are returned (plain softmax), zeros otherwise (SDPA)
    m = make_mha()
    x = randn(L, N, E)
    kpm = np.zeros((N, L), bool)
    kpm[1] = True
    out, _ = m(t(x), t(x), t(x), key_padding_mask=t(kpm))
    assert np.isnan(out.detach().numpy()[:, 1]).all()
    assert np.isfinite(out.detach().numpy()[:, [0, 2]]).all()
    out, _ = m(t(x), t(x), t(x), key_padding_mask=t(kpm), need_weights=False)
    bias = m.out_proj.bias.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy()[:, 1], np.broadcast_to(bias, (L, E)))


def test_multihead_attention_gradients_match_finite_differences():
    E2, H2, L2, S2, N2 = 4, 2, 3, 2, 2
    m = make_mha(E2, H2, add_bias_kv=True)
    query, key, value = randn(L2, N2, E2), randn(S2, N2, E2), randn(S2, N2, E2)
    mask = randn(L2, S2)
    kpm = np.array([[False, True], [False, False]])
    R = randn(L2, N2, E2)
    P = mha_params(m)
    names = ["query", "key", "value", "w_in", "b_in", "w_out", "b_out", "bias_k", "bias_v"]
    arrays = [query, key, value] + [P[n] for n in names[3:]]

    def f(*a):
        kw = dict(zip(names, a))
        out, w = ref_mha(kw.pop("query"), kw.pop("key"), kw.pop("value"), H2, **kw,
                         attn_mask=mask, kpm=kpm)
        return (out * R).sum() + (w * R[:, :, :S2 + 1].transpose(1, 0, 2)).sum()

    num = numeric_grads(f, *arrays)
    xs = [leaf(a) for a in (query, key, value)]
    out, w = m(*xs, attn_mask=t(mask), key_padding_mask=t(kpm))
    ((out * t(R)).sum() + (w * t(R[:, :, :S2 + 1].transpose(1, 0, 2))).sum()).backward()
    got = [x.grad for x in xs] + [m.in_proj_weight.grad, m.in_proj_bias.grad,
                                  m.out_proj.weight.grad, m.out_proj.bias.grad, m.bias_k.grad,
                                  m.bias_v.grad]
    for name, g, n in zip(names, got, num):
        np.testing.assert_allclose(g.numpy(), n, rtol=1e-6, atol=1e-8, err_msg=name)


def test_multihead_attention_separate_weights_gradients():
    m = make_mha(4, 2, kdim=3, vdim=2)
    query, key, value = randn(2, 2, 4), randn(3, 2, 3), randn(3, 2, 2)
    R = randn(2, 2, 4)
    P = mha_params(m)

    def f(wq, wk, wv):
        return (ref_mha(query, key, value, 2, P["w_in"], P["b_in"], P["w_out"], P["b_out"],
                        wq=wq, wk=wk, wv=wv)[0] * R).sum()

    num = numeric_grads(f, P["wq"], P["wk"], P["wv"])
    (m(t(query), t(key), t(value))[0] * t(R)).sum().backward()
    for p, n in zip((m.q_proj_weight, m.k_proj_weight, m.v_proj_weight), num):
        np.testing.assert_allclose(p.grad.numpy(), n, rtol=1e-6, atol=1e-8)


def test_multihead_attention_float64_mask_keeps_float32_output():
    m = nn.MultiheadAttention(E, H)
    x = t(randn(L, N, E).astype(np.float32))
    out, w = m(x, x, x, attn_mask=t(randn(L, L)), key_padding_mask=t(randn(N, L)))
    assert out.dtype == ember.float32 and w.dtype == ember.float32


def test_multihead_attention_dropout_only_in_training():
    m = make_mha(dropout=0.5)
    x = t(randn(L, N, E))
    m.eval()
    a, wa = m(x, x, x)
    b, wb = m(x, x, x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    m.train()
    _, w = m(x, x, x, average_attn_weights=False)
    w = w.detach().numpy()
    assert (w == 0).mean() > 0.2  # weights returned after dropout, as PyTorch does


def test_functional_multi_head_attention_forward_matches_reference():
    m = make_mha()
    P = mha_params(m)
    q, k, v = randn(L, N, E), randn(S, N, E), randn(S, N, E)
    kpm = _bool(N, S)
    out, w = F.multi_head_attention_forward(
        t(q), t(k), t(v), E, H, m.in_proj_weight, m.in_proj_bias, None, None, False, 0.0,
        m.out_proj.weight, m.out_proj.bias, training=False, key_padding_mask=t(kpm))
    ref_out, ref_w = ref_mha(q, k, v, H, **P, kpm=kpm)
    np.testing.assert_allclose(out.detach().numpy(), ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.detach().numpy(), ref_w, rtol=1e-10, atol=1e-12)


# ----- parameters, init, copies ---------------------------------------------------------------


@pytest.mark.parametrize("kw, expected", [
    ({}, [("in_proj_weight", (24, 8)), ("in_proj_bias", (24,)), ("out_proj.weight", (8, 8)),
          ("out_proj.bias", (8,))]),
    ({"bias": False}, [("in_proj_weight", (24, 8)), ("out_proj.weight", (8, 8))]),
    ({"add_bias_kv": True}, [("in_proj_weight", (24, 8)), ("in_proj_bias", (24,)),
                             ("bias_k", (1, 1, 8)), ("bias_v", (1, 1, 8)),
                             ("out_proj.weight", (8, 8)), ("out_proj.bias", (8,))]),
    ({"kdim": 3, "vdim": 5}, [("q_proj_weight", (8, 8)), ("k_proj_weight", (8, 3)),
                              ("v_proj_weight", (8, 5)), ("in_proj_bias", (24,)),
                              ("out_proj.weight", (8, 8)), ("out_proj.bias", (8,))]),
])
def test_multihead_attention_state_dict_layout(kw, expected):
    m = nn.MultiheadAttention(8, 2, **kw)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == expected


def test_multihead_attention_initialisation():
    m = nn.MultiheadAttention(64, 4)
    w = m.in_proj_weight.detach().numpy()
    bound = np.sqrt(6.0 / (64 + 192))  # xavier-uniform on (3E, E)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.all(m.in_proj_bias.detach().numpy() == 0)
    assert np.all(m.out_proj.bias.detach().numpy() == 0)
    wo = m.out_proj.weight.detach().numpy()  # Linear's default: U(-1/sqrt(E), 1/sqrt(E))
    assert np.abs(wo).max() <= 1 / 8 and np.abs(wo).max() > 0.9 / 8
    assert m.head_dim == 16 and m._qkv_same_embed_dim


def test_multihead_attention_deepcopy_is_independent():
    m = nn.MultiheadAttention(8, 2)
    c = copy.deepcopy(m)
    assert c.in_proj_weight is not m.in_proj_weight
    assert isinstance(c.in_proj_weight, nn.Parameter) and c.in_proj_weight.requires_grad
    np.testing.assert_array_equal(c.in_proj_weight.detach().numpy(),
                                  m.in_proj_weight.detach().numpy())
    with ember.no_grad():
        c.in_proj_weight.fill_(0.0)
    assert np.abs(m.in_proj_weight.detach().numpy()).sum() > 0


@pytest.mark.parametrize("args, kw, call, match", [
    ((8, 3), {}, None, "divisible"),
    ((0, 2), {}, None, "greater than 0"),
    ((8, 2), {}, lambda m: m(ember.zeros(4, 2, 6), ember.zeros(4, 2, 6), ember.zeros(4, 2, 6)),
     "embed_dim"),
    ((8, 2), {}, lambda m: m(ember.zeros(4, 2, 8), ember.zeros(5, 3, 8), ember.zeros(5, 3, 8)),
     "batch size"),
    ((8, 2), {}, lambda m: m(ember.zeros(4, 2, 8), ember.zeros(5, 2, 8), ember.zeros(6, 2, 8)),
     "sequence length"),
    ((8, 2), {}, lambda m: m(*[ember.zeros(4, 2, 8)] * 3, attn_mask=ember.zeros(3, 4)),
     "2D attn_mask"),
    ((8, 2), {}, lambda m: m(*[ember.zeros(4, 2, 8)] * 3, attn_mask=ember.zeros(2, 4, 4)),
     "3D attn_mask"),
    ((8, 2), {}, lambda m: m(*[ember.zeros(4, 2, 8)] * 3,
                             key_padding_mask=ember.zeros(2, 3, dtype=ember.bool)),
     "key_padding_mask"),
    ((8, 2), {}, lambda m: m(*[ember.zeros(4, 2, 8)] * 3,
                             key_padding_mask=ember.zeros(2, 4, dtype=ember.int64)),
     "bool and floating"),
    ((8, 2), {}, lambda m: m(*[ember.zeros(1, 4, 2, 8)] * 3), "3-d"),
])
def test_multihead_attention_errors(args, kw, call, match):
    with pytest.raises((RuntimeError, ValueError, TypeError), match=match) as e:
        m = nn.MultiheadAttention(*args, **kw)
        call(m)
    assert "MultiheadAttention" in str(e.value)


# ----- optional: PyTorch with the same weights ------------------------------------------------


def _load_from_torch(ember_mod, torch_mod):
    ember_mod.load_state_dict({k: ember.tensor(v.detach().numpy().copy())
                               for k, v in torch_mod.state_dict().items()})


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kw, fwd", [
    ({}, {"key_padding_mask": "kpm"}),
    ({}, {"attn_mask": "mask_bool", "need_weights": False}),
    ({"add_bias_kv": True, "add_zero_attn": True}, {"attn_mask": "mask_float"}),
    ({"kdim": 3, "vdim": 6}, {"key_padding_mask": "kpm", "average_attn_weights": False}),
    ({}, {"attn_mask": "causal", "is_causal": True, "need_weights": False}),
])
def test_multihead_attention_matches_torch(kw, fwd, batch_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(E, H, batch_first=batch_first, **kw).eval()
    m = nn.MultiheadAttention(E, H, batch_first=batch_first, **kw).eval()
    _load_from_torch(m, tm)
    x = randn(N, L, E).astype(np.float32)
    causal = kw == {} and "is_causal" in fwd
    kd, vd = kw.get("kdim", E), kw.get("vdim", E)
    src = L if causal else S
    k, v = randn(N, src, kd).astype(np.float32), randn(N, src, vd).astype(np.float32)
    if not batch_first:
        x, k, v = (np.ascontiguousarray(np.swapaxes(a, 0, 1)) for a in (x, k, v))
    masks = {"kpm": _bool(N, src), "mask_bool": _bool(L, src),
             "mask_float": randn(L, src).astype(np.float32),
             "causal": np.triu(np.ones((L, L), bool), 1)}
    fe = {a: (t(masks[b]) if isinstance(b, str) else b) for a, b in fwd.items()}
    ft = {a: (torch.tensor(masks[b]) if isinstance(b, str) else b) for a, b in fwd.items()}
    if causal:
        k, v = x, x
    out, w = m(t(x), t(k), t(v), **fe)
    with torch.no_grad():
        tout, tw = tm(torch.tensor(x), torch.tensor(k), torch.tensor(v), **ft)
    np.testing.assert_allclose(out.detach().numpy(), tout.numpy(), rtol=1e-4, atol=1e-5)
    if tw is None:
        assert w is None
    else:
        np.testing.assert_allclose(w.detach().numpy(), tw.numpy(), rtol=1e-4, atol=1e-6)


def test_sdpa_matches_torch_including_fully_masked_rows():
    torch = pytest.importorskip("torch")
    q, k, v = (randn(2, 2, 4, 8).astype(np.float32) for _ in range(3))
    mask = _bool(4, 4, p=0.5)
    mask[..., 0] = True
    mask[2] = False
    got = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=t(mask)).numpy()
    want = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(k), torch.tensor(v), attn_mask=torch.tensor(mask))
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-6)


def test_static_k_v_match_torch():
    torch = pytest.importorskip("torch")
    import ember as em
    torch.manual_seed(0)
    E, H, L, N = 8, 2, 3, 2
    m = torch.nn.MultiheadAttention(E, H)
    q = torch.randn(L, N, E)
    sk, sv = torch.randn(N * H, L, E // H), torch.randn(N * H, L, E // H)
    out, w = torch.nn.functional.multi_head_attention_forward(
        q, q, q, E, H, m.in_proj_weight, m.in_proj_bias, None, None, False, 0.0,
        m.out_proj.weight, m.out_proj.bias, training=False, static_k=sk, static_v=sv)

    def T(t):
        return em.tensor(t.detach().numpy())
    o2, w2 = em.nn.functional.multi_head_attention_forward(
        T(q), T(q), T(q), E, H, T(m.in_proj_weight), T(m.in_proj_bias), None, None, False, 0.0,
        T(m.out_proj.weight), T(m.out_proj.bias), training=False, static_k=T(sk),
        static_v=T(sv))
    np.testing.assert_allclose(o2.numpy(), out.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(w2.numpy(), w.detach().numpy(), atol=1e-6)
