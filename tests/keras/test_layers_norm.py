"""BatchNormalization, LayerNormalization, Embedding and the preprocessing layers against NumPy
(Keras's formulas: biased batch variance, moving = moving * momentum + batch * (1 - momentum))."""
import numpy as np
import pytest

import ember
from ember.keras import layers as L
from finite_differences import numeric_grads  # noqa: E402

RNG = np.random.default_rng(0)


def npy(t):
    return t.detach().numpy()


def ref_bn(x, gamma, beta, mean, var, eps=1e-3):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


@pytest.mark.parametrize("shape,axis", [((6, 4), -1), ((3, 4, 5, 2), -1), ((3, 2, 4, 5), 1),
                                        ((4, 3, 5), [1, 2])])
def test_batchnorm_training_uses_batch_stats_and_updates_moving_stats(shape, axis):
    x = RNG.standard_normal(shape).astype(np.float64) * 2 + 1
    bn = L.BatchNormalization(axis=axis, momentum=0.9, dtype="float64")
    bn.build(shape)
    feat = [a % x.ndim for a in (axis if isinstance(axis, list) else [axis])]
    red = tuple(a for a in range(x.ndim) if a not in feat)
    fshape = tuple(shape[a] for a in feat)
    gamma, beta = RNG.standard_normal(fshape), RNG.standard_normal(fshape)
    bn.set_weights([gamma, beta, np.zeros(fshape), np.ones(fshape)])
    y = npy(bn(x, training=True))
    bshape = [shape[a] if a in feat else 1 for a in range(x.ndim)]
    mean, var = x.mean(red), x.var(red)  # biased, as Keras
    ref = ref_bn(x, gamma.reshape(bshape), beta.reshape(bshape), mean.reshape(bshape),
                 var.reshape(bshape))
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * var, rtol=1e-12)
    # inference uses the moving statistics
    y_inf = npy(bn(x, training=False))
    ref_inf = ref_bn(x, gamma.reshape(bshape), beta.reshape(bshape),
                     (0.1 * mean).reshape(bshape), (0.9 + 0.1 * var).reshape(bshape))
    np.testing.assert_allclose(y_inf, ref_inf, rtol=1e-10, atol=1e-12)


def test_batchnorm_frozen_runs_in_inference_mode():
    x = RNG.standard_normal((8, 3))
    bn = L.BatchNormalization(dtype="float64", trainable=False)
    y = npy(bn(x, training=True))
    np.testing.assert_allclose(y, x / np.sqrt(1 + 1e-3), rtol=1e-12)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(3))


def test_batchnorm_defaults_weights_and_mask():
    bn = L.BatchNormalization()
    assert (bn.momentum, bn.epsilon, bn.axis, bn.center, bn.scale) == (0.99, 1e-3, -1, True,
                                                                       True)
    x = RNG.standard_normal((2, 5, 3))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    bn = L.BatchNormalization(dtype="float64", momentum=0.0)
    bn(x, training=True, mask=mask)
    valid = x[mask]  # the masked steps do not count in the statistics
    np.testing.assert_allclose(bn.moving_mean.numpy(), valid.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), valid.var(0), rtol=1e-5)
    no_affine = L.BatchNormalization(center=False, scale=False)
    no_affine.build((None, 3))
    assert [w.name for w in no_affine.weights] == ["moving_mean", "moving_variance"]
    with pytest.raises(ValueError, match="batch_normalization.*axis -1"):
        bn(np.ones((2, 4)))


def test_batchnorm_gradients_match_finite_differences():
    x = RNG.standard_normal((5, 3))
    bn = L.BatchNormalization(dtype="float64")
    bn.build((None, 3))
    bn.set_weights([RNG.standard_normal(3), RNG.standard_normal(3), np.zeros(3), np.ones(3)])
    xt = ember.tensor(x, requires_grad=True)
    y = bn(xt, training=True)
    r = RNG.standard_normal(y.shape)
    (y * ember.tensor(r)).sum().backward()
    g, b = bn.gamma.detach().numpy(), bn.beta.detach().numpy()
    num = numeric_grads(lambda xx, gg, bb: float((ref_bn(xx, gg, bb, xx.mean(0), xx.var(0)) *
                                                  r).sum()), x, g, b)
    for got, n in zip([xt.grad, bn.gamma.grad, bn.beta.grad], num):
        np.testing.assert_allclose(got.numpy(), n, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("axis,shape", [(-1, (2, 3, 4)), ([1, 2], (2, 3, 4)), (1, (2, 3, 4)),
                                        ([1, 2, 3], (2, 3, 2, 4))])
def test_layernorm_matches_numpy(axis, shape):
    x = RNG.standard_normal(shape) * 3
    ln = L.LayerNormalization(axis=axis, dtype="float64")
    ln.build(shape)
    axes = tuple(a % len(shape) for a in (axis if isinstance(axis, list) else [axis]))
    wshape = tuple(shape[a] for a in axes)
    gamma, beta = RNG.standard_normal(wshape), RNG.standard_normal(wshape)
    ln.set_weights([gamma, beta])
    bshape = [shape[a] if a in axes else 1 for a in range(len(shape))]
    mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    ref = (x - mean) / np.sqrt(var + 1e-3) * gamma.reshape(bshape) + beta.reshape(bshape)
    np.testing.assert_allclose(npy(ln(x)), ref, rtol=1e-10, atol=1e-12)


def test_layernorm_rms_scaling_and_gradients():
    x = RNG.standard_normal((2, 5))
    ln = L.LayerNormalization(rms_scaling=True, dtype="float64")
    y = npy(ln(x))
    assert [w.name for w in ln.weights] == ["gamma"]
    np.testing.assert_allclose(y, x / np.sqrt(x.var(-1, keepdims=True) + 1e-3), rtol=1e-10)
    ln = L.LayerNormalization(dtype="float64")
    ln.build((None, 5))
    ln.set_weights([RNG.standard_normal(5), RNG.standard_normal(5)])
    xt = ember.tensor(x, requires_grad=True)
    r = RNG.standard_normal(x.shape)
    (ln(xt) * ember.tensor(r)).sum().backward()

    def ref(xx, g, b):
        m, v = xx.mean(-1, keepdims=True), xx.var(-1, keepdims=True)
        return float((((xx - m) / np.sqrt(v + 1e-3) * g + b) * r).sum())
    num = numeric_grads(ref, x, ln.gamma.detach().numpy(), ln.beta.detach().numpy())
    for got, n in zip([xt.grad, ln.gamma.grad, ln.beta.grad], num):
        np.testing.assert_allclose(got.numpy(), n, rtol=1e-5, atol=1e-8)


def test_embedding_lookup_mask_and_gradient():
    emb = L.Embedding(6, 3, mask_zero=True)
    idx = np.array([[1, 0, 5], [2, 2, 0]])
    y = emb(idx)
    table = emb.get_weights()[0]
    np.testing.assert_array_equal(y.detach().numpy(), table[idx])
    assert np.abs(table).max() <= 0.05  # Keras's uniform(-0.05, 0.05) default
    np.testing.assert_array_equal(emb.compute_mask(ember.tensor(idx)).numpy(), idx != 0)
    y.sum().backward()
    counts = np.bincount(idx.ravel(), minlength=6)[:, None] * np.ones((1, 3))
    np.testing.assert_array_equal(emb.embeddings.grad.numpy(), counts)
    assert emb.compute_output_shape((None, 3)) == (None, 3, 3)
    with pytest.raises(IndexError, match="embedding.*index 6.*input_dim=6"):
        emb(np.array([[6]]))
    np.testing.assert_array_equal(L.Embedding(3, 2)(np.array([[2.0]])).detach().numpy().shape,
                                  (1, 1, 2))  # float indices are cast, as Keras does


def test_embedding_initial_weights():
    w = np.arange(8, dtype=np.float32).reshape(4, 2)
    emb = L.Embedding(4, 2, weights=[w])
    np.testing.assert_array_equal(emb(np.array([3])).detach().numpy(), w[[3]])


def test_rescaling():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(npy(L.Rescaling(1 / 255.0)(x)), x / 255.0, rtol=1e-7)
    np.testing.assert_allclose(npy(L.Rescaling(2.0, offset=-1.0)(x)), 2 * x - 1)
    ints = np.arange(4, dtype=np.uint8).reshape(1, 4)
    y = L.Rescaling(0.5)(ints)
    assert y.dtype == ember.float32
    np.testing.assert_allclose(npy(y), ints * 0.5)


def test_normalization_adapt_array_and_batches():
    x = RNG.standard_normal((50, 4)) * [1, 2, 3, 4] + [0, 1, 2, 3]
    norm = L.Normalization()
    norm.adapt(x)
    eps = 1e-7
    ref = (x - x.mean(0)) / np.maximum(x.std(0), eps)
    np.testing.assert_allclose(npy(norm(x.astype(np.float32))), ref, rtol=1e-4, atol=1e-5)
    assert [w.name for w in norm.weights] == ["mean", "variance", "count"]
    batched = L.Normalization()
    batched.adapt([(x[i:i + 16], None) for i in range(0, 50, 16)])  # (x, y) batches
    np.testing.assert_allclose(batched.adapt_mean.numpy(), x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(batched.adapt_variance.numpy(), x.var(0), rtol=1e-5)
    inv = L.Normalization(invert=True)
    inv.adapt(x)
    np.testing.assert_allclose(npy(inv(ref.astype(np.float32))), x, rtol=1e-4, atol=1e-4)


def test_normalization_given_statistics_and_axes():
    x = RNG.standard_normal((3, 2, 4)).astype(np.float32)
    norm = L.Normalization(mean=2.0, variance=4.0)
    np.testing.assert_allclose(npy(norm(x)), (x - 2) / 2, rtol=1e-6)
    norm = L.Normalization(axis=1)
    norm.adapt(x)
    ref = (x - x.mean((0, 2), keepdims=True)) / x.std((0, 2), keepdims=True)
    np.testing.assert_allclose(npy(norm(x)), ref, rtol=1e-4, atol=1e-5)
    cfg = L.Normalization(mean=[1.0, 2.0], variance=[1.0, 4.0]).get_config()
    again = L.Normalization.from_config(cfg)
    np.testing.assert_allclose(npy(again(np.array([[1.0, 4.0]], np.float32))), [[0.0, 1.0]])
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        L.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="adapt.*incompatible shape"):
        norm.adapt(np.ones((2, 5, 4)))
