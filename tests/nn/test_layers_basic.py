"""Linear, Bilinear, activations, Dropout, Embedding, init against NumPy references."""
import math

import numpy as np
import pytest

import ember as em
import ember.nn as nn
import ember.nn.functional as F


def np_of(t):
    return t.detach().numpy()


def test_linear_matches_numpy_and_grads():
    lin = nn.Linear(5, 3).double()
    x = em.randn(2, 4, 5, dtype=em.float64, requires_grad=True)
    y = lin(x)
    ref = np_of(x) @ np_of(lin.weight).T + np_of(lin.bias)
    np.testing.assert_allclose(np_of(y), ref, rtol=1e-12)
    g = np.random.randn(2, 4, 3)
    y.backward(em.tensor(g))
    np.testing.assert_allclose(np_of(x.grad), g @ np_of(lin.weight), rtol=1e-12)
    np.testing.assert_allclose(np_of(lin.weight.grad),
                               g.reshape(-1, 3).T @ np_of(x).reshape(-1, 5), rtol=1e-12)
    np.testing.assert_allclose(np_of(lin.bias.grad), g.sum((0, 1)), rtol=1e-12)


def test_linear_default_init_bounds():
    lin = nn.Linear(400, 50)
    bound = 1 / math.sqrt(400)
    w = np_of(lin.weight)
    assert w.min() >= -bound and w.max() <= bound and w.std() > bound / 2.5
    assert np_of(lin.bias).max() <= bound


def test_linear_feature_mismatch_error():
    with pytest.raises(ValueError, match=r"linear: input has 4 features.*\(2, 4\)"):
        nn.Linear(3, 2)(em.ones(2, 4))


def test_bilinear_matches_einsum():
    bl = nn.Bilinear(3, 4, 2).double()
    a = em.randn(5, 3, dtype=em.float64)
    b = em.randn(5, 4, dtype=em.float64)
    ref = np.einsum("ni,kij,nj->nk", np_of(a), np_of(bl.weight), np_of(b)) + np_of(bl.bias)
    np.testing.assert_allclose(np_of(bl(a, b)), ref, rtol=1e-12)


X = np.linspace(-3, 3, 13)
SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805
ACTS = [
    (nn.ReLU(), np.maximum(X, 0)),
    (nn.ReLU6(), np.clip(X, 0, 6)),
    (nn.LeakyReLU(0.1), np.where(X > 0, X, 0.1 * X)),
    (nn.ELU(), np.where(X > 0, X, np.expm1(X))),
    (nn.SELU(), SELU_S * np.where(X > 0, X, SELU_A * np.expm1(X))),
    (nn.GELU(approximate="tanh"),
     0.5 * X * (1 + np.tanh(math.sqrt(2 / math.pi) * (X + 0.044715 * X ** 3)))),
    (nn.SiLU(), X / (1 + np.exp(-X))),
    (nn.Mish(), X * np.tanh(np.log1p(np.exp(X)))),
    (nn.Sigmoid(), 1 / (1 + np.exp(-X))),
    (nn.Tanh(), np.tanh(X)),
    (nn.Hardtanh(), np.clip(X, -1, 1)),
    (nn.Hardswish(), X * np.clip(X + 3, 0, 6) / 6),
    (nn.Hardsigmoid(), np.clip(X / 6 + 0.5, 0, 1)),
    (nn.Softplus(beta=2), np.log1p(np.exp(2 * X)) / 2),
    (nn.Softsign(), X / (1 + np.abs(X))),
    (nn.LogSigmoid(), -np.log1p(np.exp(-X))),
    (nn.PReLU(), np.where(X > 0, X, 0.25 * X)),
]


@pytest.mark.parametrize("layer,ref", ACTS, ids=[type(a[0]).__name__ for a in ACTS])
def test_activation_values_and_gradient(layer, ref):
    x = em.tensor(X, requires_grad=True)
    layer = layer.double()
    y = layer(x)
    np.testing.assert_allclose(np_of(y), ref, rtol=1e-6, atol=1e-9)
    y.sum().backward()
    eps = 1e-6
    fd = (np_of(layer(em.tensor(X + eps))) - np_of(layer(em.tensor(X - eps)))) / (2 * eps)
    kink = np.isclose(X, 0) | np.isclose(np.abs(X), 3) | np.isclose(np.abs(X), 1)
    np.testing.assert_allclose(np_of(x.grad)[~kink], fd[~kink], rtol=1e-5, atol=1e-7)


def test_softmax_modules():
    x = em.randn(3, 5)
    ref = np.exp(np_of(x)) / np.exp(np_of(x)).sum(1, keepdims=True)
    np.testing.assert_allclose(np_of(nn.Softmax(dim=1)(x)), ref, rtol=1e-5)
    np.testing.assert_allclose(np_of(nn.LogSoftmax(dim=1)(x)), np.log(ref), rtol=1e-5,
                               atol=1e-6)


def test_dropout_train_and_eval():
    d = nn.Dropout(0.25)
    x = em.ones(200, 200)
    y = np_of(d(x))
    assert set(np.unique(y).tolist()) <= {0.0, float(np.float32(1 / 0.75))}
    assert abs((y == 0).mean() - 0.25) < 0.01
    d.eval()
    np.testing.assert_array_equal(np_of(d(x)), np_of(x))
    xg = em.ones(4, 4, requires_grad=True)
    d.train()
    out = d(xg)
    out.sum().backward()
    np.testing.assert_array_equal(np_of(xg.grad), np_of(out))  # grad = mask * scale


def test_dropout2d_zeroes_whole_channels():
    y = np_of(F.dropout2d(em.ones(4, 16, 3, 3), 0.5))
    per_channel = y.reshape(4, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))


def test_embedding_lookup_padding_and_grad():
    emb = nn.Embedding(6, 3, padding_idx=2)
    np.testing.assert_array_equal(np_of(emb.weight)[2], 0)
    idx = em.tensor([[1, 2, 1], [5, 0, 2]])
    out = emb(idx)
    np.testing.assert_array_equal(np_of(out), np_of(emb.weight)[np_of(idx)])
    out.sum().backward()
    counts = np.bincount(np_of(idx).ravel(), minlength=6).astype(np.float32)
    counts[2] = 0
    np.testing.assert_array_equal(np_of(emb.weight.grad), np.repeat(counts[:, None], 3, 1))
    with pytest.raises(IndexError, match="index 6 is out of range"):
        emb(em.tensor([6]))
    with pytest.raises(TypeError, match="integer"):
        emb(em.tensor([1.0]))


@pytest.mark.parametrize("fn,shape,check", [
    (lambda t: nn.init.xavier_uniform_(t), (300, 200),
     lambda w: abs(w.std() - math.sqrt(2 / 500)) < 0.003),
    (lambda t: nn.init.xavier_normal_(t), (300, 200),
     lambda w: abs(w.std() - math.sqrt(2 / 500)) < 0.003),
    (lambda t: nn.init.kaiming_normal_(t, nonlinearity="relu"), (300, 200),
     lambda w: abs(w.std() - math.sqrt(2 / 200)) < 0.004),
    (lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu"), (300, 200),
     lambda w: np.abs(w).max() <= math.sqrt(6 / 200)),
    (lambda t: nn.init.orthogonal_(t), (30, 20),
     lambda w: np.allclose(w.T @ w, np.eye(20), atol=1e-5)),
    (lambda t: nn.init.constant_(t, 0.3), (3, 3), lambda w: np.all(w == np.float32(0.3))),
    (lambda t: nn.init.zeros_(t), (3, 3), lambda w: np.all(w == 0)),
])
def test_init_statistics(fn, shape, check):
    w = nn.Parameter(em.empty(*shape))
    fn(w)
    assert check(np_of(w))


def test_clip_grad_norm_matches_formula():
    ps = [nn.Parameter(em.randn(3, 4)), nn.Parameter(em.randn(5))]
    for p in ps:
        p.grad = em.randn(*p.shape) * 10
    grads = [np_of(p.grad).copy() for p in ps]
    total = math.sqrt(sum((g ** 2).sum() for g in grads))
    got = nn.utils.clip_grad_norm_(ps, 1.0)
    assert got.item() == pytest.approx(total, rel=1e-5)
    for p, g in zip(ps, grads):
        np.testing.assert_allclose(np_of(p.grad), g * (1.0 / (total + 1e-6)), rtol=1e-5)
    vec = nn.utils.parameters_to_vector(ps)
    assert vec.shape == (17,)


def test_torch_linear_weights_load_and_agree():
    torch = pytest.importorskip("torch")
    tl = torch.nn.Linear(4, 3)
    el = nn.Linear(4, 3)
    el.load_state_dict({k: em.tensor(v.detach().numpy()) for k, v in tl.state_dict().items()})
    x = np.random.randn(2, 4).astype(np.float32)
    np.testing.assert_allclose(np_of(el(em.tensor(x))), tl(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
