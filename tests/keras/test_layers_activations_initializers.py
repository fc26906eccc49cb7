"""keras.activations, keras.initializers and keras.regularizers against their published formulas."""
import math

import numpy as np
import pytest
from scipy import special

import ember
from ember.keras import activations, initializers, regularizers

X = np.linspace(-4, 4, 17)

SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


ACTIVATIONS = [
    ("relu", lambda x: np.maximum(x, 0)),
    ("relu6", lambda x: np.clip(x, 0, 6)),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", np.tanh),
    ("linear", lambda x: x),
    ("elu", lambda x: np.where(x > 0, x, np.expm1(x))),
    ("selu", lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x))),
    ("gelu", lambda x: 0.5 * x * (1 + special.erf(x / np.sqrt(2)))),
    ("swish", lambda x: x / (1 + np.exp(-x))),
    ("silu", lambda x: x / (1 + np.exp(-x))),
    ("softplus", lambda x: np.log1p(np.exp(x))),
    ("softsign", lambda x: x / (1 + np.abs(x))),
    ("leaky_relu", lambda x: np.where(x > 0, x, 0.2 * x)),
    ("hard_sigmoid", lambda x: np.clip(x / 6 + 0.5, 0, 1)),  # Keras 3: relu6(x + 3) / 6
    ("hard_silu", lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
    ("exponential", np.exp),
    ("softmax", _softmax),
    ("log_softmax", lambda x: np.log(_softmax(x))),
    ("mish", lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    ("log_sigmoid", lambda x: -np.log1p(np.exp(-x))),
    ("hard_tanh", lambda x: np.clip(x, -1, 1)),
]


@pytest.mark.parametrize("name,ref", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_values(name, ref):
    x = X.reshape(1, -1)
    y = activations.get(name)(ember.tensor(x))
    np.testing.assert_allclose(y.numpy(), ref(x), rtol=1e-6, atol=1e-7)


def test_activation_get_serialize():
    assert activations.get(None) is activations.linear
    assert activations.serialize(activations.get("relu")) == "relu"
    assert activations.serialize(None) == "linear"
    with pytest.raises(ValueError, match="could not interpret.*'nope'"):
        activations.get("nope")
    np.testing.assert_allclose(activations.gelu(ember.tensor([1.0]), approximate=True).numpy(),
                               0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) *
                                                    (1 + 0.044715))), rtol=1e-6)
    y = activations.relu(ember.tensor(X), negative_slope=0.1, max_value=2.0, threshold=1.0)
    ref = np.where(X > 1, np.minimum(X, 2.0), 0.1 * (X - 1))
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-6)


@pytest.mark.parametrize("shape,fans", [((), (1, 1)), ((5,), (5, 5)), ((3, 4), (3, 4)),
                                        ((3, 3, 2, 8), (18, 72)), ((5, 2, 4), (10, 20))])
def test_compute_fans(shape, fans):
    assert initializers.compute_fans(shape) == fans


# (name, shape, expected std, expected limit of the support or None)
SCALINGS = [
    ("glorot_uniform", (200, 300), math.sqrt(2 / 500), math.sqrt(6 / 500)),
    ("he_uniform", (200, 300), math.sqrt(2 / 200), math.sqrt(6 / 200)),
    ("lecun_uniform", (3, 3, 20, 30), math.sqrt(1 / 180), math.sqrt(3 / 180)),
    ("glorot_normal", (200, 300), math.sqrt(2 / 500), 2 * math.sqrt(2 / 500) / 0.8796),
    ("he_normal", (3, 3, 20, 30), math.sqrt(2 / 180), 2 * math.sqrt(2 / 180) / 0.8796),
    ("lecun_normal", (200, 300), math.sqrt(1 / 200), 2 * math.sqrt(1 / 200) / 0.8796),
    ("random_normal", (200, 300), 0.05, None),
    ("random_uniform", (200, 300), 0.1 / math.sqrt(12), 0.05),
    ("truncated_normal", (200, 300), 0.05 * 0.8796, 0.1),
]


@pytest.mark.parametrize("name,shape,std,limit", SCALINGS, ids=[s[0] for s in SCALINGS])
def test_variance_scaling_statistics(name, shape, std, limit):
    w = initializers.get(name)(shape).numpy()
    assert w.shape == shape and w.dtype == np.float32
    assert abs(w.mean()) < 0.05 * std + 1e-4
    assert abs(w.std() / std - 1) < 0.03
    if limit is not None:
        assert np.abs(w).max() <= limit * 1.0001


def test_constant_zeros_ones_identity_orthogonal():
    np.testing.assert_array_equal(initializers.Constant(3.0)((2, 2)).numpy(), np.full((2, 2), 3))
    np.testing.assert_array_equal(initializers.get("zeros")((3,)).numpy(), np.zeros(3))
    np.testing.assert_array_equal(initializers.get("ones")(()).numpy(), np.ones(()))
    np.testing.assert_array_equal(initializers.Identity(2.0)((2, 3)).numpy(), 2 * np.eye(2, 3))
    q = initializers.Orthogonal(seed=1)((6, 4)).numpy().astype(np.float64)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)
    q = initializers.Orthogonal(gain=2.0, seed=1)((3, 3, 2, 5)).numpy().reshape(-1, 5)
    np.testing.assert_allclose(q.T @ q, 4 * np.eye(5), atol=1e-4)
    with pytest.raises(ValueError, match="two-dimensional"):
        initializers.Orthogonal()((3,))


def test_seeds_repeat_and_defaults_follow_ember_manual_seed():
    a = initializers.GlorotUniform(seed=3)((4, 4)).numpy()
    b = initializers.GlorotUniform(seed=3)((4, 4)).numpy()
    np.testing.assert_array_equal(a, b)
    ember.manual_seed(7)
    c = initializers.HeNormal()((4, 4)).numpy()
    ember.manual_seed(7)
    np.testing.assert_array_equal(c, initializers.HeNormal()((4, 4)).numpy())


def test_initializer_config_round_trip():
    init = initializers.VarianceScaling(2.0, "fan_out", "uniform", seed=4)
    cfg = initializers.serialize(init)
    assert cfg["class_name"] == "VarianceScaling"
    again = initializers.deserialize(cfg)
    np.testing.assert_array_equal(again((3, 3)).numpy(), init((3, 3)).numpy())
    assert initializers.RandomNormal().get_config() == {"mean": 0.0, "stddev": 0.05,
                                                        "seed": None}
    with pytest.raises(ValueError, match="unknown initializer 'bogus'"):
        initializers.get("bogus")


W = np.array([[1.0, -2.0], [3.0, 0.5]])


@pytest.mark.parametrize("reg,expected", [
    ("l1", 0.01 * 6.5), ("l2", 0.01 * 14.25), (regularizers.L2(0.5), 0.5 * 14.25),
    (regularizers.L1L2(l1=0.1, l2=0.2), 0.1 * 6.5 + 0.2 * 14.25), ("l1_l2", 0.01 * 20.75),
    (regularizers.L1L2(), 0.0),
])
def test_regularizer_values(reg, expected):
    np.testing.assert_allclose(regularizers.get(reg)(ember.tensor(W)).item(), expected)


def test_orthogonal_regularizer_formula():
    w = np.random.default_rng(0).standard_normal((3, 4))
    n = w / np.linalg.norm(w, axis=1, keepdims=True)
    p = np.abs(n @ n.T - np.diag(np.diag(n @ n.T))).sum()
    expected = 0.01 * 0.5 * p / 3  # 3 = number of pairs of rows
    got = regularizers.OrthogonalRegularizer()(ember.tensor(w)).item()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_regularizer_errors_and_config():
    with pytest.raises(ValueError, match="non-negative"):
        regularizers.L2(-1.0)
    with pytest.raises(ValueError, match="could not interpret"):
        regularizers.get("l3")
    assert regularizers.deserialize(regularizers.serialize(regularizers.L1(0.3))).l1 == 0.3
