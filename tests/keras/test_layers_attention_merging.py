"""MultiHeadAttention and the merging layers against NumPy."""
import numpy as np
import pytest

import ember
from ember.keras import layers as L
from finite_differences import numeric_grads  # noqa: E402

RNG = np.random.default_rng(0)


def npy(t):
    return t.detach().numpy()


def ref_mha(q_in, v_in, k_in, w, heads, key_dim, mask=None):
    """Keras's MultiHeadAttention: per-head einsum projections, softmax(q k / sqrt(d))."""
    qk, qb, kk, kb, vk, vb, ok, ob = w
    q = np.einsum("btd,dhk->bthk", q_in, qk) + qb
    k = np.einsum("bsd,dhk->bshk", k_in, kk) + kb
    v = np.einsum("bsd,dhk->bshk", v_in, vk) + vb
    scores = np.einsum("bthk,bshk->bhts", q / np.sqrt(key_dim), k)
    if mask is not None:
        scores = np.where(mask[:, None], scores, scores - 1e9)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ctx = np.einsum("bhts,bshk->bthk", p, v)
    return np.einsum("bthk,hkd->btd", ctx, ok) + ob, p


def test_mha_matches_numpy_with_masks_and_scores():
    q = RNG.standard_normal((2, 3, 6))
    v = RNG.standard_normal((2, 4, 5))
    k = RNG.standard_normal((2, 4, 7))
    mha = L.MultiHeadAttention(2, 4, value_dim=3, output_shape=8, dtype="float64")
    mask = RNG.random((2, 3, 4)) > 0.3
    out, scores = mha(q, v, key=k, attention_mask=mask, return_attention_scores=True)
    w = mha.get_weights()
    assert [x.shape for x in w] == [(6, 2, 4), (2, 4), (7, 2, 4), (2, 4), (5, 2, 3), (2, 3),
                                    (2, 3, 8), (8,)]
    ref, p = ref_mha(q, v, k, w, 2, 4, mask)
    np.testing.assert_allclose(npy(out), ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(npy(scores), p, rtol=1e-9, atol=1e-12)
    assert mha.compute_output_shape((None, 3, 6), (None, 4, 5), (None, 4, 7)) == (None, 3, 8)
    assert list(mha.state_dict())[:2] == ["query_dense.kernel", "query_dense.bias"]


def test_mha_causal_mask_and_self_attention():
    x = RNG.standard_normal((2, 4, 6))
    mha = L.MultiHeadAttention(3, 2, dtype="float64")
    out = mha(x, x, use_causal_mask=True)
    causal = np.tril(np.ones((4, 4), bool))[None].repeat(2, 0)
    ref, _ = ref_mha(x, x, x, mha.get_weights(), 3, 2, causal)
    np.testing.assert_allclose(npy(out), ref, rtol=1e-9, atol=1e-12)
    assert tuple(out.shape) == (2, 4, 6)


def test_mha_uses_keras_masks_of_its_inputs():
    idx = np.array([[1, 2, 0], [3, 0, 0]])
    emb = L.Embedding(4, 6, mask_zero=True, dtype="float64")
    x = emb(idx)
    mha = L.MultiHeadAttention(2, 3, dtype="float64")
    out = mha(x, x)
    m = idx != 0
    ref, _ = ref_mha(npy(x), npy(x), npy(x), mha.get_weights(), 2, 3,
                     m[:, :, None] & m[:, None, :])
    np.testing.assert_allclose(npy(out), ref, rtol=1e-9, atol=1e-12)


def test_mha_gradients_match_finite_differences():
    x = RNG.standard_normal((1, 2, 3))
    mha = L.MultiHeadAttention(2, 2, dtype="float64")
    xt = ember.tensor(x, requires_grad=True)
    y = mha(xt, xt)
    r = RNG.standard_normal(tuple(y.shape))
    (y * ember.tensor(r)).sum().backward()
    w = mha.get_weights()

    def f(xx, *ws):
        return float((ref_mha(xx, xx, xx, ws, 2, 2)[0] * r).sum())
    num = numeric_grads(f, x, *w)
    got = [xt.grad] + [p.grad for p in mha.trainable_weights]
    for g, n in zip(got, num):
        np.testing.assert_allclose(g.numpy(), n, rtol=1e-5, atol=1e-8)


def test_mha_dropout_and_errors():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    mha = L.MultiHeadAttention(2, 2, dropout=0.5)
    a = npy(mha(x, x, training=False))
    np.testing.assert_array_equal(npy(mha(x, x, training=False)), a)
    assert not np.allclose(npy(mha(x, x, training=True)), a)
    with pytest.raises(ValueError, match="expected value of shape"):
        mha(x, np.ones((2, 3, 5), np.float32))
    with pytest.raises(ValueError, match="num_heads"):
        L.MultiHeadAttention(0, 2)


A = RNG.standard_normal((2, 3)).astype(np.float32)
B = RNG.standard_normal((2, 3)).astype(np.float32)
C = RNG.standard_normal((2, 1)).astype(np.float32)


@pytest.mark.parametrize("layer,inputs,ref", [
    (L.Add(), [A, B, C], A + B + C),
    (L.Subtract(), [A, B], A - B),
    (L.Multiply(), [A, B, C], A * B * C),
    (L.Average(), [A, B], (A + B) / 2),
    (L.Maximum(), [A, B, C], np.maximum(np.maximum(A, B), C)),
    (L.Minimum(), [A, B], np.minimum(A, B)),
    (L.Concatenate(), [A, B, C], np.concatenate([A, B, C], -1)),
    (L.Concatenate(axis=0), [A, B], np.concatenate([A, B], 0)),
    (L.Dot(axes=1), [A, B], (A * B).sum(1, keepdims=True)),
], ids=["add", "subtract", "multiply", "average", "maximum", "minimum", "concat", "concat0",
        "dot"])
def test_merging_matches_numpy(layer, inputs, ref):
    np.testing.assert_allclose(npy(layer(inputs)), ref, rtol=1e-6)
    assert layer.compute_output_shape([(None,) + x.shape[1:] for x in inputs])[1:] == \
        ref.shape[1:]


def test_dot_normalize_and_batched_matrices():
    x, y = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 5, 4))
    out = npy(L.Dot(axes=(2, 2), dtype="float64")([x, y]))
    np.testing.assert_allclose(out, np.einsum("bik,bjk->bij", x, y), rtol=1e-12)
    cos = npy(L.Dot(axes=1, normalize=True, dtype="float64")([A, B]))
    ref = (A * B).sum(1) / np.linalg.norm(A, axis=1) / np.linalg.norm(B, axis=1)
    np.testing.assert_allclose(cos[:, 0], ref, rtol=1e-5)


def test_functional_forms_and_errors():
    np.testing.assert_allclose(npy(L.add([A, B])), A + B)
    np.testing.assert_allclose(npy(L.concatenate([A, B], axis=-1)), np.concatenate([A, B], -1))
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        L.Subtract()([A, B, A])
    with pytest.raises(ValueError, match="list of inputs"):
        L.Add()(A)
    with pytest.raises(ValueError, match="matching shapes except for the concatenation"):
        L.Concatenate(axis=-1)([A, np.ones((3, 3), np.float32)])
    with pytest.raises(ValueError, match="broadcast"):
        L.Add()([A, np.ones((2, 4), np.float32)])
