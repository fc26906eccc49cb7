"""Second derivatives: the backward rules are ember ops, so a gradient taken with
``create_graph=True`` can be differentiated again.

For ``F(x) = <w, f(x)>`` ember gives the gradient ``g(x)`` (checked against finite differences
in test_op_table.py). The Hessian-vector product ``H v`` is the gradient of ``<g(x), v>``
(ember's second-order result) and, independently, the central difference
``(g(x + eps v) - g(x - eps v)) / (2 eps)`` of first-order gradients. Directions run over all
inputs at once, so mixed partials (d2F / da db of matmul, pow, div) are covered too.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import ember as em

EPS = 1e-5


def _uniform(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape)


ANY = _uniform(-2.0, 2.0)
POS = _uniform(0.5, 2.5)


def AWAY0(rng, shape):
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def DISTINCT(rng, shape):
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.25 + rng.uniform(-0.05, 0.05, n)).reshape(shape)


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable        # ember: (*tensors) -> Tensor
    shapes: tuple       # one shape per input
    gen: object = ANY


CASES = [
    Case("exp", em.exp, ((3, 4),)),
    Case("log", em.log, ((3, 4),), POS),
    Case("sqrt", em.sqrt, ((5,),), POS),
    Case("sin", em.sin, ((5,),)),
    Case("tanh", em.tanh, ((3, 4),)),
    Case("sigmoid", em.sigmoid, ((3, 4),)),
    Case("relu-squared", lambda x: em.relu(x) * x, ((3, 4),), AWAY0),
    Case("gelu", em.gelu, ((3, 4),)),
    Case("gelu-tanh", lambda x: em.gelu(x, approximate="tanh"), ((3, 4),)),
    Case("silu", em.silu, ((6,),)),
    Case("softplus", lambda x: em.softplus(x, beta=2.0), ((6,),)),
    Case("softmax", lambda x: em.softmax(x, -1), ((3, 4),)),
    Case("softmax-dim0", lambda x: em.softmax(x, 0), ((3, 4),)),
    Case("log_softmax", lambda x: em.log_softmax(x, -1), ((3, 4),)),
    Case("log_softmax-dim0", lambda x: em.log_softmax(x, 0), ((2, 3, 2),)),
    Case("logsumexp", lambda x: em.logsumexp(x, 1), ((3, 4),)),
    Case("logsumexp-all", lambda x: em.logsumexp(x), ((2, 3),)),
    Case("matmul", em.matmul, ((2, 3), (3, 4))),
    Case("matmul-batched-broadcast", em.matmul, ((2, 1, 2, 3), (3, 3, 2))),
    Case("matmul-vector", em.matmul, ((3,), (3, 2))),
    Case("matmul-square", lambda a: em.matmul(a, a), ((3, 3),)),
    Case("pow", em.pow, ((3, 4), (3, 4)), (POS, ANY)),
    Case("pow-broadcast", em.pow, ((3, 4), (4,)), (POS, ANY)),
    Case("pow-scalar", lambda x: em.pow(x, 3.5), ((5,),), POS),
    Case("pow-square", lambda x: x ** 2, ((5,),)),
    Case("pow-scalar-base", lambda x: em.pow(1.7, x), ((5,),)),
    Case("div", em.div, ((3, 4), (3, 4)), (ANY, AWAY0)),
    Case("div-broadcast", em.div, ((3, 1), (4,)), (ANY, AWAY0)),
    Case("mul-broadcast", lambda a, b: a * b * a, ((2, 3), (3,))),
    Case("sum-squared", lambda x: em.sum(x, 1) ** 2, ((3, 4),)),
    Case("sum-all-keepdim", lambda x: em.sum(x, (0, 1), keepdim=True) * x, ((2, 3),)),
    Case("mean-squared", lambda x: em.mean(x, 0) ** 2, ((3, 4),)),
    Case("mean-all", lambda x: em.mean(x) * x, ((2, 3),)),
    Case("var", lambda x: em.var(x, 1), ((3, 4),)),
    Case("std", lambda x: em.std(x), ((6,),)),
    Case("norm", lambda x: em.norm(x, 3, 1), ((3, 4),), AWAY0),
    Case("prod", lambda x: em.prod(x, 1), ((3, 4),)),
    Case("cumprod", lambda x: em.cumprod(x, 1), ((2, 4),)),
    Case("amax-squared", lambda x: em.amax(x, 1) ** 2, ((3, 4),), DISTINCT),
    Case("max-dim-cubed", lambda x: em.max(x, 0).values ** 3, ((3, 4),), DISTINCT),
    Case("sort-cubed", lambda x: em.sort(x, -1).values ** 3 * em.arange(4.0).double(),
         ((3, 4),), DISTINCT),
    Case("getitem-slice", lambda x: x[1:, ::2] ** 3, ((3, 4),)),
    Case("getitem-int", lambda x: em.exp(x[1]), ((3, 4),)),
    Case("getitem-repeated-indices", lambda x: x[[0, 2, 0]] ** 3, ((3, 2),)),
    Case("getitem-mask", lambda x: em.exp(x[x > 0]), ((3, 4),), AWAY0),
    Case("where", lambda a, b: em.where(a > 0, a * b, b * b), ((3, 4), (3, 4)),
         (AWAY0, ANY)),
    Case("maximum", lambda a, b: em.maximum(a, b) ** 2, ((3, 4), (4,))),
    Case("atan2", em.atan2, ((5,), (5,)), (ANY, AWAY0)),
    Case("einsum", lambda a, b: em.einsum("bij,bjk->bik", a, b) ** 2, ((2, 2, 3), (2, 3, 2))),
    Case("transpose-cat", lambda a, b: em.cat([a.t(), b], 0) ** 3, ((3, 2), (1, 3))),
    Case("composite-mlp", lambda x, w: em.log_softmax(em.tanh(x @ w), -1), ((2, 3), (3, 4))),
]


def _inputs(case):
    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    gens = case.gen if isinstance(case.gen, tuple) else (case.gen,) * len(case.shapes)
    arrays = [np.asarray(g(rng, s), np.float64) for g, s in zip(gens, case.shapes)]
    out_shape = case.fn(*[em.from_numpy(a) for a in arrays]).shape
    return arrays, rng.standard_normal(out_shape), rng


def _first_grads(case, arrays, w, create_graph=False):
    xs = [em.from_numpy(a.copy()).requires_grad_() for a in arrays]
    gs = em.autograd.grad(case.fn(*xs), xs, em.from_numpy(w), create_graph=create_graph,
                          allow_unused=True)
    return xs, [em.zeros_like(x) if g is None else g for x, g in zip(xs, gs)]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hessian_vector_product_matches_finite_differences(case):
    arrays, w, rng = _inputs(case)
    for _ in range(2):  # two random directions over all inputs at once
        v = [rng.standard_normal(a.shape) for a in arrays]
        xs, gs = _first_grads(case, arrays, w, create_graph=True)
        gv = sum((g * em.from_numpy(vi)).sum() for g, vi in zip(gs, v))
        assert gv.requires_grad, f"{case.name}: the gradient was not recorded"
        hv = em.autograd.grad(gv, xs, allow_unused=True)

        plus = [a + EPS * vi for a, vi in zip(arrays, v)]
        minus = [a - EPS * vi for a, vi in zip(arrays, v)]
        gp = _first_grads(case, plus, w)[1]
        gm = _first_grads(case, minus, w)[1]
        for i, (x, h) in enumerate(zip(xs, hv)):
            want = (gp[i].numpy() - gm[i].numpy()) / (2 * EPS)
            got = np.zeros_like(arrays[i]) if h is None else h.numpy()
            assert got.shape == arrays[i].shape and got.dtype == np.float64
            scale = max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * scale,
                                       err_msg=f"{case.name}: (H v) for input {i}")


@pytest.mark.parametrize("case", CASES[:12], ids=[c.name for c in CASES[:12]])
def test_create_graph_gives_the_same_first_derivative(case):
    arrays, w, _ = _inputs(case)
    with_graph = _first_grads(case, arrays, w, create_graph=True)[1]
    without = _first_grads(case, arrays, w)[1]
    for a, b in zip(with_graph, without):
        np.testing.assert_allclose(a.detach().numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


def _np_tanh_second(x):
    t = np.tanh(x)
    return -2 * t * (1 - t * t)


def _np_sigmoid_second(x):
    s = 1 / (1 + np.exp(-x))
    return s * (1 - s) * (1 - 2 * s)


# Elementwise ops: the second derivative against the textbook formula too.
SECOND = [
    ("exp", em.exp, np.exp, ANY),
    ("log", em.log, lambda x: -1 / (x * x), POS),
    ("tanh", em.tanh, _np_tanh_second, ANY),
    ("sigmoid", em.sigmoid, _np_sigmoid_second, ANY),
    ("sin", em.sin, lambda x: -np.sin(x), ANY),
    ("sqrt", em.sqrt, lambda x: -0.25 * x ** -1.5, POS),
    ("reciprocal", em.reciprocal, lambda x: 2 / x ** 3, AWAY0),
    ("gelu", em.gelu, lambda x: np.exp(-x * x / 2) / np.sqrt(2 * np.pi) * (2 - x * x), ANY),
]


@pytest.mark.parametrize("name, fn, second, gen", SECOND, ids=[s[0] for s in SECOND])
def test_elementwise_second_derivative_matches_formula(name, fn, second, gen):
    x0 = gen(np.random.default_rng(1), (7,))
    x = em.from_numpy(x0.copy()).requires_grad_()
    (g,) = em.autograd.grad(fn(x).sum(), x, create_graph=True)
    (h,) = em.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), second(x0), rtol=1e-10, atol=1e-12)


def test_third_derivative_of_tanh():
    x0 = np.linspace(-2, 2, 5)
    x = em.from_numpy(x0.copy()).requires_grad_()
    (g,) = em.autograd.grad(em.tanh(x).sum(), x, create_graph=True)
    (h,) = em.autograd.grad(g.sum(), x, create_graph=True)
    (t,) = em.autograd.grad(h.sum(), x)
    th = np.tanh(x0)
    np.testing.assert_allclose(t.numpy(), -2 * (1 - th ** 2) * (1 - 3 * th ** 2), rtol=1e-10)
