"""Transformer layers: ``TransformerEncoderLayer``, ``TransformerDecoderLayer``, the
``TransformerEncoder`` / ``TransformerDecoder`` stacks and ``Transformer``.

Values are checked against a NumPy implementation of the published equations (multi-head
attention one head at a time, LayerNorm, the residual wiring of post-LN and pre-LN layers)
fed with the module's own weights; gradients against central finite differences of that
reference in float64. Optional tests load PyTorch's weights and compare outputs.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F
from finite_differences import numeric_grads  # noqa: E402

RNG = np.random.default_rng(11)


def randn(*shape):
    return RNG.standard_normal(shape)


def t(a, grad=False):
    return ember.tensor(np.asarray(a), requires_grad=grad)


# ----- NumPy reference (batch-first arrays, float additive or bool=masked-out masks) ----------

_erf = np.vectorize(math.erf)
ACTS = {"relu": lambda x: np.maximum(x, 0), "gelu": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))}


def _additive(m):
    if m is None:
        return 0.0
    return np.where(m, -np.inf, 0.0) if m.dtype == bool else m


def ref_mha(x, mem, P, pre, H, attn_mask=None, kpm=None):
    """x (N, L, E), mem (N, S, E); P maps parameter names (prefix ``pre``) to arrays."""
    N, L, E = x.shape
    D = E // H
    w, b = P[pre + "in_proj_weight"], P.get(pre + "in_proj_bias", np.zeros(3 * E))
    out = np.zeros_like(x)
    for n in range(N):
        q = x[n] @ w[:E].T + b[:E]
        k = mem[n] @ w[E:2 * E].T + b[E:2 * E]
        v = mem[n] @ w[2 * E:].T + b[2 * E:]
        bias = _additive(attn_mask) + (_additive(kpm[n])[None, :] if kpm is not None else 0.0)
        heads = []
        for h in range(H):
            sl = slice(h * D, (h + 1) * D)
            s = q[:, sl] @ k[:, sl].T / np.sqrt(D) + bias
            e = np.exp(s - s.max(-1, keepdims=True))
            heads.append((e / e.sum(-1, keepdims=True)) @ v[:, sl])
        out[n] = np.hstack(heads) @ P[pre + "out_proj.weight"].T + \
            P.get(pre + "out_proj.bias", 0.0)
    return out


def ref_layer_norm(x, P, pre, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * P[pre + "weight"] + P.get(pre + "bias", 0.0)


def ref_ff(x, P, pre, act):
    h = ACTS[act](x @ P[pre + "linear1.weight"].T + P.get(pre + "linear1.bias", 0.0))
    return h @ P[pre + "linear2.weight"].T + P.get(pre + "linear2.bias", 0.0)


def ref_encoder_layer(x, P, H, act, norm_first, pre="", mask=None, kpm=None):
    sa = lambda y: ref_mha(y, y, P, pre + "self_attn.", H, mask, kpm)  # noqa: E731
    n1 = lambda y: ref_layer_norm(y, P, pre + "norm1.")  # noqa: E731
    n2 = lambda y: ref_layer_norm(y, P, pre + "norm2.")  # noqa: E731
    if norm_first:
        x = x + sa(n1(x))
        return x + ref_ff(n2(x), P, pre, act)
    x = n1(x + sa(x))
    return n2(x + ref_ff(x, P, pre, act))


def ref_decoder_layer(x, mem, P, H, act, norm_first, pre="", tgt_mask=None, mem_mask=None,
                      tgt_kpm=None, mem_kpm=None):
    sa = lambda y: ref_mha(y, y, P, pre + "self_attn.", H, tgt_mask, tgt_kpm)  # noqa: E731
    ca = lambda y: ref_mha(y, mem, P, pre + "multihead_attn.", H, mem_mask,  # noqa: E731
                           mem_kpm)
    n = [lambda y, i=i: ref_layer_norm(y, P, f"{pre}norm{i}.") for i in (1, 2, 3)]
    if norm_first:
        x = x + sa(n[0](x))
        x = x + ca(n[1](x))
        return x + ref_ff(n[2](x), P, pre, act)
    x = n[0](x + sa(x))
    x = n[1](x + ca(x))
    return n[2](x + ref_ff(x, P, pre, act))


def params(m):
    return {k: v.numpy().astype(np.float64) for k, v in m.state_dict().items()}


def randomise(m):
    """Non-trivial values for every parameter (LayerNorm weights away from 1, biases non-zero)."""
    with ember.no_grad():
        for _, p in m.named_parameters():
            p.copy_(t(randn(*p.shape) * 0.5 + (1.0 if p.ndim == 1 else 0.0)))
    return m


D_MODEL, NHEAD, FF, L, S, N = 8, 2, 12, 4, 5, 3


def _kpm(n, s):
    m = RNG.random((n, s)) < 0.3
    m[:, 0] = False
    return m


# ----- parameters and structure -------------------------------------------------------------


def _mha_keys(pre, E):
    return [(pre + "in_proj_weight", (3 * E, E)), (pre + "in_proj_bias", (3 * E,)),
            (pre + "out_proj.weight", (E, E)), (pre + "out_proj.bias", (E,))]


def _tail_keys(pre, E, F_, norms):
    keys = [(pre + "linear1.weight", (F_, E)), (pre + "linear1.bias", (F_,)),
            (pre + "linear2.weight", (E, F_)), (pre + "linear2.bias", (E,))]
    for i in range(1, norms + 1):
        keys += [(f"{pre}norm{i}.weight", (E,)), (f"{pre}norm{i}.bias", (E,))]
    return keys


def _enc_keys(pre):
    return _mha_keys(pre + "self_attn.", D_MODEL) + _tail_keys(pre, D_MODEL, FF, 2)


def _dec_keys(pre):
    return (_mha_keys(pre + "self_attn.", D_MODEL) + _mha_keys(pre + "multihead_attn.", D_MODEL)
            + _tail_keys(pre, D_MODEL, FF, 3))


def _layout(m):
    return [(k, tuple(v.shape)) for k, v in m.state_dict().items()]


def test_encoder_layer_state_dict_layout():
    assert _layout(nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF)) == _enc_keys("")


def test_decoder_layer_state_dict_layout():
    assert _layout(nn.TransformerDecoderLayer(D_MODEL, NHEAD, FF)) == _dec_keys("")


def test_encoder_layer_without_bias_has_no_bias_parameters():
    m = nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, bias=False)
    assert [k for k, _ in _layout(m)] == [
        "self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight",
        "linear2.weight", "norm1.weight", "norm2.weight"]


def test_encoder_stack_state_dict_layout():
    layer = nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(D_MODEL))
    assert _layout(enc) == (_enc_keys("layers.0.") + _enc_keys("layers.1.")
                            + [("norm.weight", (D_MODEL,)), ("norm.bias", (D_MODEL,))])


def test_transformer_state_dict_layout():
    m = nn.Transformer(D_MODEL, NHEAD, 1, 2, FF)
    norm = [("weight", (D_MODEL,)), ("bias", (D_MODEL,))]
    assert _layout(m) == (_enc_keys("encoder.layers.0.")
                          + [("encoder.norm." + k, s) for k, s in norm]
                          + _dec_keys("decoder.layers.0.") + _dec_keys("decoder.layers.1.")
                          + [("decoder.norm." + k, s) for k, s in norm])


def test_transformer_reinitialises_matrices_xavier_uniform():
    m = nn.Transformer(D_MODEL, NHEAD, 1, 1, FF)
    w = m.encoder.layers[0].linear1.weight.detach().numpy()
    bound = math.sqrt(6.0 / (D_MODEL + FF))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound


def test_submodule_names_and_types():
    enc = nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, dropout=0.2)
    dec = nn.TransformerDecoderLayer(D_MODEL, NHEAD, FF, dropout=0.2)
    assert [n for n, _ in enc.named_children()] == [
        "self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2"]
    assert [n for n, _ in dec.named_children()] == [
        "self_attn", "multihead_attn", "linear1", "dropout", "linear2", "norm1", "norm2",
        "norm3", "dropout1", "dropout2", "dropout3"]
    assert isinstance(enc.self_attn, nn.MultiheadAttention) and enc.dropout2.p == 0.2
    assert isinstance(dec.norm3, nn.LayerNorm)


def test_encoder_clones_are_deep_copies():
    layer = nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF)
    enc = nn.TransformerEncoder(layer, 3)
    ws = [enc.layers[i].self_attn.in_proj_weight for i in range(3)]
    assert len({id(w) for w in ws} | {id(layer.self_attn.in_proj_weight)}) == 4
    np.testing.assert_array_equal(ws[0].detach().numpy(), ws[2].detach().numpy())
    with ember.no_grad():
        ws[0].fill_(1.0)
    assert not np.all(ws[1].detach().numpy() == 1.0)
    assert len(list(enc.parameters())) == 3 * len(list(layer.parameters()))


def test_generate_square_subsequent_mask():
    m = nn.Transformer.generate_square_subsequent_mask(4)
    want = np.array([[0, -np.inf, -np.inf, -np.inf], [0, 0, -np.inf, -np.inf],
                     [0, 0, 0, -np.inf], [0, 0, 0, 0]])
    assert m.dtype == ember.float32
    np.testing.assert_array_equal(m.numpy(), want)
    assert nn.Transformer.generate_square_subsequent_mask(3, dtype=ember.float64).dtype == \
        ember.float64


def test_bad_activation_name_is_an_error():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(D_MODEL, NHEAD, activation="tanh")


# ----- values -----------------------------------------------------------------------------------

ENC_CASES = [  # (norm_first, activation, batch_first, masks)
    (False, "relu", False, "none"),
    (False, "gelu", True, "both"),
    (True, "relu", True, "kpm"),
    (True, "gelu", False, "bool-mask"),
    (True, F.gelu, True, "float-mask"),
    (False, nn.GELU(), False, "both"),
]


def _masks(kind):
    mask = kpm = None
    if kind in ("both", "float-mask"):
        mask = randn(L, L)
    if kind == "bool-mask":
        mask = np.triu(np.ones((L, L), bool), 1)
    if kind in ("both", "kpm"):
        kpm = _kpm(N, L)
    return mask, kpm


def _act_name(a):
    return a if isinstance(a, str) else "gelu"


@pytest.mark.parametrize("norm_first, act, batch_first, masks", ENC_CASES)
def test_encoder_layer_matches_numpy_reference(norm_first, act, batch_first, masks):
    m = randomise(nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, activation=act,
                                             norm_first=norm_first,
                                             batch_first=batch_first).double().eval())
    x = randn(N, L, D_MODEL)
    mask, kpm = _masks(masks)
    ref = ref_encoder_layer(x, params(m), NHEAD, _act_name(act), norm_first, mask=mask,
                            kpm=kpm)
    xin = x if batch_first else np.swapaxes(x, 0, 1)
    out = m(t(xin), src_mask=None if mask is None else t(mask),
            src_key_padding_mask=None if kpm is None else t(kpm))
    got = out.detach().numpy()
    np.testing.assert_allclose(got if batch_first else np.swapaxes(got, 0, 1), ref,
                               rtol=1e-9, atol=1e-10)


def test_encoder_layer_unbatched_and_causal_hint():
    m = randomise(nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF).double().eval())
    x = randn(L, D_MODEL)
    mask = nn.Transformer.generate_square_subsequent_mask(L, dtype=ember.float64)
    ref = ref_encoder_layer(x[None], params(m), NHEAD, "relu", False, mask=mask.numpy())[0]
    out = m(t(x), src_mask=mask, is_causal=True)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-9, atol=1e-10)


DEC_CASES = [(False, "relu", False), (True, "gelu", True), (True, "relu", False)]


@pytest.mark.parametrize("norm_first, act, batch_first", DEC_CASES)
def test_decoder_layer_matches_numpy_reference(norm_first, act, batch_first):
    m = randomise(nn.TransformerDecoderLayer(D_MODEL, NHEAD, FF, activation=act,
                                             norm_first=norm_first,
                                             batch_first=batch_first).double().eval())
    x, mem = randn(N, L, D_MODEL), randn(N, S, D_MODEL)
    tgt_mask = np.triu(np.ones((L, L), bool), 1)
    mem_mask = randn(L, S)
    tgt_kpm, mem_kpm = _kpm(N, L), _kpm(N, S)
    ref = ref_decoder_layer(x, mem, params(m), NHEAD, act, norm_first, tgt_mask=tgt_mask,
                            mem_mask=mem_mask, tgt_kpm=tgt_kpm, mem_kpm=mem_kpm)
    sw = (lambda a: a) if batch_first else (lambda a: np.swapaxes(a, 0, 1))
    out = m(t(sw(x)), t(sw(mem)), tgt_mask=t(tgt_mask), memory_mask=t(mem_mask),
            tgt_key_padding_mask=t(tgt_kpm), memory_key_padding_mask=t(mem_kpm))
    np.testing.assert_allclose(sw(out.detach().numpy()), ref, rtol=1e-9, atol=1e-10)


def test_encoder_and_decoder_stacks_match_reference():
    enc = randomise(nn.TransformerEncoder(
        nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, batch_first=True), 2,
        norm=nn.LayerNorm(D_MODEL)).double().eval())
    dec = randomise(nn.TransformerDecoder(
        nn.TransformerDecoderLayer(D_MODEL, NHEAD, FF, batch_first=True), 2,
        norm=nn.LayerNorm(D_MODEL)).double().eval())
    src, tgt = randn(N, S, D_MODEL), randn(N, L, D_MODEL)
    causal = nn.Transformer.generate_square_subsequent_mask(L, dtype=ember.float64)
    Pe, Pd = params(enc), params(dec)
    mem = src
    for i in range(2):
        mem = ref_encoder_layer(mem, Pe, NHEAD, "relu", False, pre=f"layers.{i}.")
    mem = ref_layer_norm(mem, Pe, "norm.")
    y = tgt
    for i in range(2):
        y = ref_decoder_layer(y, mem, Pd, NHEAD, "relu", False, pre=f"layers.{i}.",
                              tgt_mask=causal.numpy())
    y = ref_layer_norm(y, Pd, "norm.")
    memory = enc(t(src))
    np.testing.assert_allclose(memory.detach().numpy(), mem, rtol=1e-9, atol=1e-10)
    out = dec(t(tgt), memory, tgt_mask=causal)  # a causal tgt_mask is detected as such
    np.testing.assert_allclose(out.detach().numpy(), y, rtol=1e-9, atol=1e-10)


def test_transformer_forward_is_encoder_then_decoder():
    m = randomise(nn.Transformer(D_MODEL, NHEAD, 1, 1, FF, batch_first=True).double().eval())
    src, tgt = randn(N, S, D_MODEL), randn(N, L, D_MODEL)
    P = params(m)
    mem = ref_layer_norm(ref_encoder_layer(src, P, NHEAD, "relu", False,
                                           pre="encoder.layers.0."), P, "encoder.norm.")
    y = ref_decoder_layer(tgt, mem, P, NHEAD, "relu", False, pre="decoder.layers.0.")
    y = ref_layer_norm(y, P, "decoder.norm.")
    np.testing.assert_allclose(m(t(src), t(tgt)).detach().numpy(), y, rtol=1e-9, atol=1e-10)
    with pytest.raises(RuntimeError, match="batch number"):
        m(t(src), t(tgt[:2]))
    with pytest.raises(RuntimeError, match="d_model"):
        m(t(src[..., :4]), t(tgt))


def test_dropout_active_only_in_training():
    m = nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, dropout=0.5)
    x = t(randn(L, N, D_MODEL).astype(np.float32))
    a, b = m(x).detach().numpy(), m(x).detach().numpy()
    assert not np.allclose(a, b)
    m.eval()
    np.testing.assert_array_equal(m(x).detach().numpy(), m(x).detach().numpy())


# ----- gradients --------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_gradients_match_finite_differences(norm_first):
    E_, H_, F_, L_, N_ = 4, 2, 6, 3, 2
    m = randomise(nn.TransformerEncoderLayer(E_, H_, F_, activation="gelu", dropout=0.0,
                                             norm_first=norm_first,
                                             batch_first=True).double())
    x = randn(N_, L_, E_)
    mask = randn(L_, L_)
    R = randn(N_, L_, E_)
    P = params(m)
    names = ["self_attn.in_proj_weight", "self_attn.out_proj.bias", "linear1.weight",
             "norm1.weight", "norm2.bias"]

    def f(xx, *ws):
        Q = dict(P, **dict(zip(names, ws)))
        return (ref_encoder_layer(xx, Q, H_, "gelu", norm_first, mask=mask) * R).sum()

    num = numeric_grads(f, x, *[P[n] for n in names])
    xl = t(x, grad=True)
    (m(xl, src_mask=t(mask)) * t(R)).sum().backward()
    got = [xl.grad] + [m.get_parameter(n).grad for n in names]
    for name, g, n in zip(["input"] + names, got, num):
        np.testing.assert_allclose(g.numpy(), n, rtol=1e-6, atol=1e-8, err_msg=name)


def test_decoder_layer_memory_gradient():
    E_, H_, F_ = 4, 2, 5
    m = randomise(nn.TransformerDecoderLayer(E_, H_, F_, dropout=0.0,
                                             batch_first=True).double())
    x, mem, R = randn(2, 3, E_), randn(2, 2, E_), randn(2, 3, E_)
    P = params(m)
    (num,) = numeric_grads(lambda mm: (ref_decoder_layer(x, mm, P, H_, "relu", False)
                                       * R).sum(), mem)
    ml = t(mem, grad=True)
    (m(t(x), ml) * t(R)).sum().backward()
    np.testing.assert_allclose(ml.grad.numpy(), num, rtol=1e-6, atol=1e-8)


# ----- optional: PyTorch with the same weights --------------------------------------------------


@pytest.fixture(name="torch")
def _torch():
    """PyTorch with its fused inference fast path off: in torch 2.13 that path returned NaN
    for a pre-LN layer with a float src_mask, while its reference path is finite."""
    torch = pytest.importorskip("torch")
    prev = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    yield torch
    torch.backends.mha.set_fastpath_enabled(prev)


def _from_torch(ember_mod, torch_mod):
    ember_mod.load_state_dict({k: ember.tensor(v.detach().numpy().copy())
                               for k, v in torch_mod.state_dict().items()})
    return ember_mod.eval()


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("act", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_matches_torch(norm_first, act, batch_first, torch):
    kw = dict(activation=act, norm_first=norm_first, batch_first=batch_first)
    tm = torch.nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, **kw).eval()
    m = _from_torch(nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, **kw), tm)
    x = randn(N, L, D_MODEL).astype(np.float32)
    if not batch_first:
        x = np.ascontiguousarray(np.swapaxes(x, 0, 1))
    mask, kpm = randn(L, L).astype(np.float32), _kpm(N, L)
    out = m(t(x), src_mask=t(mask), src_key_padding_mask=t(kpm))
    with torch.no_grad():
        want = tm(torch.tensor(x), src_mask=torch.tensor(mask),
                  src_key_padding_mask=torch.tensor(kpm))
    np.testing.assert_allclose(out.detach().numpy(), want.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first, torch):
    kw = dict(activation="gelu", norm_first=norm_first, batch_first=True)
    tm = torch.nn.TransformerDecoderLayer(D_MODEL, NHEAD, FF, **kw).eval()
    m = _from_torch(nn.TransformerDecoderLayer(D_MODEL, NHEAD, FF, **kw), tm)
    x, mem = randn(N, L, D_MODEL).astype(np.float32), randn(N, S, D_MODEL).astype(np.float32)
    causal = np.triu(np.ones((L, L), bool), 1)
    mkpm = _kpm(N, S)
    out = m(t(x), t(mem), tgt_mask=t(causal), memory_key_padding_mask=t(mkpm))
    with torch.no_grad():
        want = tm(torch.tensor(x), torch.tensor(mem), tgt_mask=torch.tensor(causal),
                  memory_key_padding_mask=torch.tensor(mkpm))
    np.testing.assert_allclose(out.detach().numpy(), want.numpy(), rtol=1e-4, atol=1e-5)


def test_transformer_matches_torch(torch):
    torch.manual_seed(0)
    tm = torch.nn.Transformer(D_MODEL, NHEAD, 2, 2, FF, batch_first=True).eval()
    m = _from_torch(nn.Transformer(D_MODEL, NHEAD, 2, 2, FF, batch_first=True), tm)
    src, tgt = randn(N, S, D_MODEL).astype(np.float32), randn(N, L, D_MODEL).astype(np.float32)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(L)
    skpm = _kpm(N, S)
    out = m(t(src), t(tgt), tgt_mask=t(causal.numpy()), src_key_padding_mask=t(skpm),
            memory_key_padding_mask=t(skpm))
    with torch.no_grad():
        want = tm(torch.tensor(src), torch.tensor(tgt), tgt_mask=causal,
                  src_key_padding_mask=torch.tensor(skpm),
                  memory_key_padding_mask=torch.tensor(skpm))
    np.testing.assert_allclose(out.detach().numpy(), want.numpy(), rtol=1e-4, atol=1e-5)


def test_encoder_layer_training_gradients_match_torch(torch):
    kw = dict(activation="gelu", norm_first=True, batch_first=True, dropout=0.0)
    tm = torch.nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, **kw).double()
    m = _from_torch(nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, **kw).double(), tm).train()
    x = randn(N, L, D_MODEL)
    mask = np.triu(np.ones((L, L), bool), 1)
    xe, xt = t(x, grad=True), torch.tensor(x, requires_grad=True)
    (m(xe, src_mask=t(mask), is_causal=True) ** 2).sum().backward()
    (tm(xt, src_mask=torch.tensor(mask), is_causal=True) ** 2).sum().backward()
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)
    for (name, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-8, atol=1e-10,
                                   err_msg=name)


def test_deepcopy_of_a_trained_layer_keeps_values():
    m = nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF)
    c = copy.deepcopy(m)
    for (n1, p1), (n2, p2) in zip(m.named_parameters(), c.named_parameters()):
        assert n1 == n2 and p1 is not p2
        np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())
