"""Core Keras layers against NumPy: Dense, activations as layers, Dropout, Flatten, Reshape,
Permute, RepeatVector, Lambda; gradients against finite differences of the NumPy reference."""
import numpy as np
import pytest

import ember
from ember.keras import layers as L
from finite_differences import numeric_grads  # noqa: E402

RNG = np.random.default_rng(0)


def check_grads(layer, ref, x, rtol=1e-5, atol=1e-7):
    """Autograd of ``sum(layer(x) * R)`` w.r.t. the weights and x == finite differences of the
    NumPy reference ``ref(x, *weights)``, in float64."""
    xt = ember.tensor(x, requires_grad=True)
    y = layer(xt)
    r = RNG.standard_normal(tuple(y.shape))
    (y * ember.tensor(r)).sum().backward()
    weights = [w.detach().numpy().copy() for w in layer.trainable_weights]
    numeric = numeric_grads(lambda xx, *ws: float((ref(xx, *ws) * r).sum()), x, *weights)
    got = [xt.grad.numpy()] + [w.grad.numpy() for w in layer.trainable_weights]
    for g, n in zip(got, numeric):
        np.testing.assert_allclose(g, n, rtol=rtol, atol=atol)


def test_dense_matches_numpy_on_any_rank_and_gradients():
    x = RNG.standard_normal((2, 3, 4))
    d = L.Dense(5, activation="tanh", dtype="float64")
    y = d(x)
    k, b = d.get_weights()
    np.testing.assert_allclose(y.detach().numpy(), np.tanh(x @ k + b), rtol=1e-12)
    assert d.compute_output_shape((None, 3, 4)) == (None, 3, 5)
    check_grads(L.Dense(3, activation="sigmoid", dtype="float64"),
                lambda xx, k, b: 1 / (1 + np.exp(-(xx @ k + b))), RNG.standard_normal((2, 4)))


def test_dense_without_bias_and_bad_input():
    d = L.Dense(2, use_bias=False)
    d(np.ones((1, 3), np.float32))
    assert [w.name for w in d.weights] == ["kernel"]
    with pytest.raises(ValueError, match=r'"dense(_\d+)?".*axis -1.*3.*shape=\(1, 4\)'):
        d(np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match="units"):
        L.Dense(0)


@pytest.mark.parametrize("layer,ref", [
    (L.Activation("relu"), lambda x: np.maximum(x, 0)),
    (L.ReLU(max_value=1.0), lambda x: np.clip(x, 0, 1)),
    (L.LeakyReLU(), lambda x: np.where(x > 0, x, 0.3 * x)),
    (L.ELU(alpha=0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (L.Softmax(axis=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (L.Identity(), lambda x: x),
], ids=["activation", "relu", "leaky_relu", "elu", "softmax", "identity"])
def test_activation_layers(layer, ref):
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(layer(x).numpy(), ref(x), rtol=1e-6, atol=1e-7)
    assert layer.compute_output_shape((None, 3, 4)) == (None, 3, 4)


def test_softmax_mask_gives_zero_probability():
    x = RNG.standard_normal((1, 4)).astype(np.float32)
    mask = np.array([[True, False, True, True]])
    y = L.Softmax()(x, mask=mask).numpy()
    e = np.exp(x) * mask
    np.testing.assert_allclose(y, e / e.sum(), rtol=1e-6, atol=1e-8)


def test_dropout_training_statistics_and_eval_identity():
    x = np.ones((200, 50), np.float32)
    layer = L.Dropout(0.3)
    y = layer(x, training=True).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)  # survivors scaled by 1/(1-rate)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), x)


def test_dropout_noise_shape_shares_the_draw_and_seed_repeats():
    x = np.ones((4, 6, 5), np.float32)
    y = L.Dropout(0.5, noise_shape=(None, 1, 5))(x, training=True).numpy()
    assert (y == y[:, :1, :]).all()  # one draw per (sample, feature), same for every step
    a = L.Dropout(0.5, seed=3)(x, training=True).numpy()
    b = L.Dropout(0.5, seed=3)(x, training=True).numpy()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="rate"):
        L.Dropout(1.5)


def test_flatten_reshape_permute_repeat():
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(L.Flatten()(x).numpy(), x.reshape(2, -1))
    np.testing.assert_array_equal(L.Flatten(data_format="channels_first")(x).numpy(),
                                  x.transpose(0, 2, 3, 1).reshape(2, -1))
    np.testing.assert_array_equal(L.Reshape((-1, 10))(x).numpy(), x.reshape(2, 6, 10))
    np.testing.assert_array_equal(L.Permute((3, 1, 2))(x).numpy(), x.transpose(0, 3, 1, 2))
    v = x[:, 0, 0]
    np.testing.assert_array_equal(L.RepeatVector(3)(v).numpy(),
                                  np.repeat(v[:, None], 3, axis=1))


@pytest.mark.parametrize("layer,shape,out", [
    (L.Flatten(), (None, 3, 4, 5), (None, 60)),
    (L.Flatten(), (None, None, 4), (None, None)),
    (L.Reshape((-1, 10)), (None, 3, 4, 5), (None, 6, 10)),
    (L.Reshape((5, -1)), (None, None, 5), (None, 5, None)),
    (L.Permute((2, 1)), (None, 3, 7), (None, 7, 3)),
    (L.RepeatVector(4), (None, 6), (None, 4, 6)),
    (L.Dropout(0.5), (None, 6), (None, 6)),
])
def test_compute_output_shape(layer, shape, out):
    assert layer.compute_output_shape(shape) == out


def test_shape_errors_name_the_layer():
    with pytest.raises(ValueError, match="Reshape.*cannot be reshaped"):
        L.Reshape((7, -1))(np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="permutation"):
        L.Permute((0, 1))
    with pytest.raises(ValueError, match='"permute.*ndim=3'):
        L.Permute((2, 1))(np.ones((2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="ndim in \\[2\\]"):
        L.RepeatVector(2)(np.ones((2, 3, 4), np.float32))


def test_lambda_layer_and_its_config():
    layer = L.Lambda(lambda x: x * 2)
    np.testing.assert_array_equal(layer(np.ones((1, 2), np.float32)).numpy(), [[2, 2]])
    assert layer.compute_output_shape((None, 2)) == (None, 2)
    with pytest.raises(ValueError, match="cannot serialize"):
        layer.get_config()
    act = L.Lambda("relu")
    assert L.Lambda.from_config(act.get_config())(np.array([[-1.0, 1.0]])).numpy().tolist() == \
        [[0.0, 1.0]]


def test_integer_inputs_are_cast_for_numeric_layers_only():
    pixels = np.arange(12, dtype=np.uint8).reshape(1, 12)
    d = L.Dense(2, kernel_initializer="ones", dtype="float64")
    y = d(pixels)
    assert y.dtype == ember.float64
    np.testing.assert_allclose(y.detach().numpy(), np.full((1, 2), pixels.sum()))
    assert L.Embedding(3, 2)(np.array([[1]])).dtype == ember.float32  # indices stay indices
