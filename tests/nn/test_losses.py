"""Loss functions against NumPy references written from the published formulas.

``ROWS`` is the table: one row per loss (and variant) with its ember function, a NumPy
reference returning the *unreduced* loss, input generators and keyword arguments; every row
runs under each reduction ('none', 'mean', 'sum'; 'batchmean' for kl_div) and checks

- the value against the reference, reduced as PyTorch documents (weighted means divide by the
  summed weights where PyTorch does);
- the gradient of every float input against central finite differences of the reference.

Cross-entropy gets its own reference with explicit loops over samples (class weights,
ignore_index, label smoothing, N-d targets, probability targets), checks for huge logits, and
second derivatives against a finite-difference stencil.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import ember as em
import ember.nn as nn
import ember.nn.functional as F

H = 1e-6


# ----- NumPy references (unreduced; `reduce_ref` applies the reduction) ----------------------

def log_softmax_ref(x, axis=1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def softplus_ref(z):
    return np.logaddexp(0.0, z)


def mse_ref(x, y, weight=1.0):
    return (x - y) ** 2 * weight


def l1_ref(x, y, weight=1.0):
    return np.abs(x - y) * weight


def smooth_l1_ref(x, y, beta=1.0):
    z = np.abs(x - y)
    return np.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)


def huber_ref(x, y, delta=1.0):
    z = np.abs(x - y)
    return np.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))


def bce_ref(p, y, weight=None):
    out = -(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log(1 - p), -100))
    return out * weight if weight is not None else out


def bce_logits_ref(x, y, weight=None, pos_weight=None):
    """-w [pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]."""
    pw = 1.0 if pos_weight is None else pos_weight
    out = pw * y * softplus_ref(-x) + (1 - y) * softplus_ref(x)
    return out * weight if weight is not None else out


def kl_ref(x, t, log_target=False):
    if log_target:
        return np.exp(t) * (t - x)
    return np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0) - t * x


def cosine_embedding_ref(a, b, y, margin=0.0):
    cos = (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))
    return np.where(y == 1, 1 - cos, np.maximum(0.0, cos - margin))


def margin_ranking_ref(a, b, y, margin=0.0):
    return np.maximum(0.0, -y * (a - b) + margin)


def hinge_embedding_ref(x, y, margin=1.0):
    return np.where(y == 1, x, np.maximum(0.0, margin - x))


def soft_margin_ref(x, y):
    return np.log1p(np.exp(-y * x))


def multilabel_soft_margin_ref(x, y, weight=None):
    out = y * softplus_ref(-x) + (1 - y) * softplus_ref(x)
    if weight is not None:
        out = out * weight
    return out.mean(-1)


def poisson_ref(x, y, log_input=True, full=False, eps=1e-8):
    out = np.exp(x) - y * x if log_input else x - y * np.log(x + eps)
    if full:
        ys = np.where(y > 1, y, 1.0)
        out = out + np.where(y > 1, ys * np.log(ys) - ys + 0.5 * np.log(2 * np.pi * ys), 0.0)
    return out


def gaussian_ref(x, y, var, full=False):
    out = 0.5 * (np.log(var) + (x - y) ** 2 / var)
    return out + 0.5 * np.log(2 * np.pi) if full else out


def triplet_ref(a, p, n, margin=1.0, eps=1e-6):
    d = lambda u, v: np.sqrt(((u - v + eps) ** 2).sum(-1))  # noqa: E731
    return np.maximum(0.0, d(a, p) - d(a, n) + margin)


def reduce_ref(loss, reduction, denom=None):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "batchmean":
        return loss.sum() / loss.shape[0]
    return loss.sum() / (loss.size if denom is None else denom)


# ----- input generators ---------------------------------------------------------------------

def normal(shape):
    return lambda rng: rng.normal(size=shape)


def uniform(lo, hi, shape):
    return lambda rng: rng.uniform(lo, hi, shape)


def signs(shape):
    return lambda rng: rng.choice([-1.0, 1.0], shape)


def log_probs(shape):
    return lambda rng: log_softmax_ref(rng.normal(size=shape), -1)


def probs(shape):
    return lambda rng: np.exp(log_softmax_ref(rng.normal(size=shape), -1))


# ----- the table ---------------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    ember: Callable                 # F.<loss>(*tensors, reduction=..., **kwargs)
    ref: Callable                   # unreduced NumPy loss(*arrays, **ref_kwargs)
    inputs: list                    # generators: rng -> array
    grad: tuple = (0,)              # which inputs get gradients
    kwargs: dict = field(default_factory=dict)       # passed to both (arrays become tensors)
    reductions: tuple = ("none", "mean", "sum")
    denom: Callable | None = None   # 'mean' denominator from the arrays (default: numel)


S = (4, 3)
W = uniform(0.2, 2.0, S)

ROWS = [
    Row("mse_loss", F.mse_loss, mse_ref, [normal(S), normal(S)], (0, 1)),
    Row("mse_loss-weight", F.mse_loss, mse_ref, [normal(S), normal(S)], (0, 1),
        {"weight": W}, denom=lambda kw: kw["weight"].sum()),
    Row("l1_loss", F.l1_loss, l1_ref, [normal(S), normal(S)], (0, 1)),
    Row("l1_loss-weight", F.l1_loss, l1_ref, [normal(S), normal(S)], (0, 1),
        {"weight": W}, denom=lambda kw: kw["weight"].sum()),
    Row("smooth_l1_loss", F.smooth_l1_loss, smooth_l1_ref, [normal(S), normal(S)], (0, 1)),
    Row("smooth_l1_loss-beta", F.smooth_l1_loss, smooth_l1_ref, [normal(S), normal(S)], (0, 1),
        {"beta": 0.5}),
    Row("smooth_l1_loss-beta0", F.smooth_l1_loss, lambda x, y, beta: l1_ref(x, y),
        [normal(S), normal(S)], (0, 1), {"beta": 0.0}),
    Row("huber_loss", F.huber_loss, huber_ref, [normal(S), normal(S)], (0, 1)),
    Row("huber_loss-delta", F.huber_loss, huber_ref, [normal(S), normal(S)], (0, 1),
        {"delta": 0.4}),
    Row("binary_cross_entropy", F.binary_cross_entropy, bce_ref,
        [uniform(0.05, 0.95, S), uniform(0, 1, S)], (0, 1)),
    Row("binary_cross_entropy-weight", F.binary_cross_entropy, bce_ref,
        [uniform(0.05, 0.95, S), uniform(0, 1, S)], (0, 1), {"weight": W}),
    Row("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
        bce_logits_ref, [normal(S), uniform(0, 1, S)], (0, 1)),
    Row("binary_cross_entropy_with_logits-weights", F.binary_cross_entropy_with_logits,
        bce_logits_ref, [normal(S), uniform(0, 1, S)], (0, 1),
        {"weight": W, "pos_weight": uniform(0.5, 3.0, (3,))}),
    Row("kl_div", F.kl_div, kl_ref, [log_probs(S), probs(S)], (0, 1),
        reductions=("none", "mean", "sum", "batchmean")),
    Row("kl_div-log_target", F.kl_div, kl_ref, [log_probs(S), log_probs(S)], (0, 1),
        {"log_target": True}, reductions=("none", "mean", "sum", "batchmean")),
    Row("cosine_embedding_loss", F.cosine_embedding_loss, cosine_embedding_ref,
        [normal(S), normal(S), signs((4,))], (0, 1), {"margin": -0.3}),
    Row("cosine_embedding_loss-1d", F.cosine_embedding_loss, cosine_embedding_ref,
        [normal((5,)), normal((5,)), lambda rng: np.array(-1.0)], (0, 1), {"margin": -0.5}),
    Row("margin_ranking_loss", F.margin_ranking_loss, margin_ranking_ref,
        [normal((6,)), normal((6,)), signs((6,))], (0, 1), {"margin": 0.2}),
    Row("hinge_embedding_loss", F.hinge_embedding_loss, hinge_embedding_ref,
        [normal(S), signs(S)], (0,), {"margin": 0.7}),
    Row("soft_margin_loss", F.soft_margin_loss, soft_margin_ref, [normal(S), signs(S)]),
    Row("multilabel_soft_margin_loss", F.multilabel_soft_margin_loss,
        multilabel_soft_margin_ref, [normal(S), lambda rng: (rng.random(S) > 0.5) * 1.0],
        (0,), {"weight": uniform(0.2, 2.0, (3,))}),
    Row("poisson_nll_loss", F.poisson_nll_loss, poisson_ref,
        [normal(S), uniform(0, 4, S)], (0,), {"full": True}),
    Row("poisson_nll_loss-rate", F.poisson_nll_loss, poisson_ref,
        [uniform(0.5, 2, S), uniform(0, 4, S)], (0,), {"log_input": False}),
    Row("gaussian_nll_loss", F.gaussian_nll_loss, gaussian_ref,
        [normal(S), normal(S), uniform(0.5, 2, S)], (0, 1, 2), {"full": True}),
    Row("triplet_margin_loss", F.triplet_margin_loss, triplet_ref,
        [normal(S), normal(S), normal(S)], (0, 1, 2), {"margin": 1.5}),
    Row("cross_entropy", F.cross_entropy,
        lambda x, t: -log_softmax_ref(x)[np.arange(len(t)), t],
        [normal((5, 4)), lambda rng: rng.integers(0, 4, 5)]),
    Row("cross_entropy-probs", F.cross_entropy,
        lambda x, q: -(q * log_softmax_ref(x)).sum(1),
        [normal((5, 4)), probs((5, 4))], (0, 1)),
    Row("nll_loss", F.nll_loss, lambda x, t: -x[np.arange(len(t)), t],
        [log_probs((5, 4)), lambda rng: rng.integers(0, 4, 5)]),
]
CASES = [(r, red) for r in ROWS for red in r.reductions]
IDS = [f"{r.name}-{red}" for r, red in CASES]


def _materialise(row, rng):
    arrs = [gen(rng) for gen in row.inputs]
    kw = {k: (v(rng) if callable(v) else v) for k, v in row.kwargs.items()}
    return arrs, kw


def _ember_call(row, arrs, kw, reduction, requires_grad=False):
    ts = [em.tensor(a, requires_grad=requires_grad and i in row.grad and a.dtype.kind == "f")
          for i, a in enumerate(arrs)]
    ekw = {k: em.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warning
        return ts, row.ember(*ts, reduction=reduction, **ekw)


def _ref_value(row, arrs, kw, reduction):
    loss = row.ref(*arrs, **kw)
    denom = row.denom(kw) if row.denom and reduction == "mean" else None
    return reduce_ref(loss, reduction, denom)


@pytest.mark.parametrize("row, reduction", CASES, ids=IDS)
def test_value_matches_reference(row, reduction):
    arrs, kw = _materialise(row, np.random.default_rng(1))
    _, out = _ember_call(row, arrs, kw, reduction)
    want = _ref_value(row, arrs, kw, reduction)
    assert out.dtype == em.float64
    assert tuple(out.shape) == np.shape(want)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("row, reduction", CASES, ids=IDS)
def test_gradient_matches_finite_differences(row, reduction):
    rng = np.random.default_rng(2)
    arrs, kw = _materialise(row, rng)
    ts, out = _ember_call(row, arrs, kw, reduction, requires_grad=True)
    gout = rng.normal(size=out.shape)
    grads = em.autograd.grad(out, [ts[i] for i in row.grad], em.tensor(gout))
    for i, g in zip(row.grad, grads):
        a = arrs[i]
        num = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + H
            up = (_ref_value(row, arrs, kw, reduction) * gout).sum()
            a[idx] = old - H
            down = (_ref_value(row, arrs, kw, reduction) * gout).sum()
            a[idx] = old
            num[idx] = (up - down) / (2 * H)
        np.testing.assert_allclose(g.numpy(), num, rtol=1e-6, atol=1e-8,
                                   err_msg=f"input {i}")


def test_float32_inputs_give_float32_losses():
    rng = np.random.default_rng(3)
    x = em.tensor(rng.normal(size=(4, 3)).astype(np.float32))
    for out in (F.cross_entropy(x, em.tensor([0, 2, 1, 1])), F.mse_loss(x, x * 2),
                F.binary_cross_entropy_with_logits(x, x.sigmoid()),
                F.nll_loss(x, em.tensor([0, 1, 2, 0]))):
        assert out.dtype == em.float32


# ----- cross-entropy in depth --------------------------------------------------------------------

def ce_ref_loops(x, t, weight=None, ignore_index=-100, label_smoothing=0.0,
                 reduction="mean"):
    """PyTorch's documented cross-entropy, one sample at a time. ``x``: (N, C, d...)."""
    c = x.shape[1]
    xs = np.moveaxis(x, 1, -1).reshape(-1, c)   # one row per element
    ts = t.reshape(-1)
    w = np.ones(c) if weight is None else weight
    losses, wsum = [], 0.0
    for row, k in zip(xs, ts):
        if k == ignore_index:
            losses.append(0.0)
            continue
        logp = row - row.max() - np.log(np.exp(row - row.max()).sum())
        nll = -w[k] * logp[k]
        smooth = -(w * logp).sum()
        losses.append((1 - label_smoothing) * nll + label_smoothing / c * smooth)
        wsum += w[k]
    losses = np.array(losses).reshape(t.shape)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / wsum if wsum else np.nan


CE_COMBOS = [
    # (x shape, weight?, ignore some?, label_smoothing)
    ((6, 4), False, False, 0.0),
    ((6, 4), True, False, 0.0),
    ((6, 4), False, True, 0.0),
    ((6, 4), True, True, 0.0),
    ((6, 4), False, False, 0.2),
    ((6, 4), True, True, 0.3),
    ((3, 4, 2, 2), True, True, 0.1),
    ((2, 3, 5), False, True, 0.0),
]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape, weighted, ignore, smoothing", CE_COMBOS)
def test_cross_entropy_weight_ignore_smoothing_vs_loops(shape, weighted, ignore, smoothing,
                                                       reduction):
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape) * 2
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    ignore_index = -100
    if ignore:
        ignore_index = 1  # a real class index can be the ignored one
    w = rng.uniform(0.2, 2.0, shape[1]) if weighted else None
    out = F.cross_entropy(em.tensor(x), em.tensor(t), em.tensor(w) if weighted else None,
                          ignore_index=ignore_index, reduction=reduction,
                          label_smoothing=smoothing)
    want = ce_ref_loops(x, t, w, ignore_index, smoothing, reduction)
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-12)
    # and the gradient, against central differences of the loop reference
    xt = em.tensor(x, requires_grad=True)
    out = F.cross_entropy(xt, em.tensor(t), em.tensor(w) if weighted else None,
                          ignore_index=ignore_index, reduction=reduction,
                          label_smoothing=smoothing)
    gout = rng.normal(size=out.shape)
    out.backward(em.tensor(gout))
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + H
        up = (ce_ref_loops(x, t, w, ignore_index, smoothing, reduction) * gout).sum()
        x[idx] = old - H
        down = (ce_ref_loops(x, t, w, ignore_index, smoothing, reduction) * gout).sum()
        x[idx] = old
        num[idx] = (up - down) / (2 * H)
    np.testing.assert_allclose(xt.grad.numpy(), num, rtol=1e-6, atol=1e-8)


def test_cross_entropy_probability_targets_with_weight_and_smoothing():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 4, 2))
    q = np.exp(log_softmax_ref(rng.normal(size=(3, 4, 2))))
    w = rng.uniform(0.5, 2, 4)
    eps = 0.25
    qs = q * (1 - eps) + eps / 4
    loss = -(qs * w[None, :, None] * log_softmax_ref(x)).sum(1)
    out = F.cross_entropy(em.tensor(x), em.tensor(q), em.tensor(w), label_smoothing=eps)
    np.testing.assert_allclose(out.item(), loss.mean(), rtol=1e-12)  # mean over N*d, not w
    out = F.cross_entropy(em.tensor(x), em.tensor(q), em.tensor(w), reduction="none",
                          label_smoothing=eps)
    np.testing.assert_allclose(out.numpy(), loss, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"weight": True}])
@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_all_targets_ignored_mean_is_nan_with_zero_gradient(fn, kwargs):
    # PyTorch: 0 / 0 for the loss, but ignored targets contribute nothing to the gradient
    if fn is F.nll_loss and "label_smoothing" in kwargs:
        return
    x = em.randn(3, 4, requires_grad=True)
    kw = {"weight": em.rand(4)} if "weight" in kwargs else kwargs
    out = fn(x, em.tensor([-100, -100, -100]), **kw)
    assert np.isnan(out.item())
    out.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))
    assert fn(x, em.tensor([-100, -100, -100]), reduction="sum", **kw).item() == 0.0


def test_cross_entropy_huge_logits_stay_finite():
    x = np.array([[1e4, -1e4, 0.0, 5e3], [-1e4, 1e4, 1e4, 0.0], [0.0, 0.0, 0.0, -1e4]],
                 np.float32)
    t = np.array([1, 2, 3])
    xt = em.tensor(x, requires_grad=True)
    out = F.cross_entropy(xt, em.tensor(t), reduction="none")
    out.sum().backward()
    want = -log_softmax_ref(x.astype(np.float64))[np.arange(3), t]
    assert np.isfinite(out.detach().numpy()).all()
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-6)
    p = np.exp(log_softmax_ref(x.astype(np.float64)))
    p[np.arange(3), t] -= 1
    np.testing.assert_allclose(xt.grad.numpy(), p, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings either
        F.cross_entropy(em.tensor(x * 3), em.tensor(t), label_smoothing=0.1)


def test_cross_entropy_unbatched_input():
    x = np.array([0.5, -1.0, 2.0])
    out = F.cross_entropy(em.tensor(x), em.tensor(2), reduction="none")
    assert out.shape == ()
    assert out.item() == pytest.approx(-log_softmax_ref(x, 0)[2])


SECOND_ORDER = [
    ("cross_entropy", {}),
    ("cross_entropy-weight-smooth-ignore", {"weight": True, "label_smoothing": 0.2,
                                            "ignore_index": 0}),
    ("cross_entropy-probs", {"probs": True}),
]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name, opts", SECOND_ORDER, ids=[s[0] for s in SECOND_ORDER])
def test_cross_entropy_second_derivatives(name, opts, reduction):
    """``u . H v`` of ``L(x) = sum(G * ce(x))`` through create_graph vs a 4-point stencil."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 3))
    t = rng.integers(0, 3, 4)
    t[0] = 0
    w = rng.uniform(0.5, 2, 3) if opts.get("weight") else None
    ignore = opts.get("ignore_index", -100)
    eps = opts.get("label_smoothing", 0.0)
    q = np.exp(log_softmax_ref(rng.normal(size=(4, 3)))) if opts.get("probs") else None
    gout = rng.normal(size=(4,)) if reduction == "none" else rng.normal()

    def ref(x):
        if q is not None:
            return (reduce_ref(-(q * log_softmax_ref(x)).sum(1), reduction) * gout).sum()
        return (ce_ref_loops(x, t, w, ignore, eps, reduction) * gout).sum()

    xt = em.tensor(x, requires_grad=True)
    target = em.tensor(q) if q is not None else em.tensor(t)
    out = F.cross_entropy(xt, target, em.tensor(w) if w is not None else None,
                          ignore_index=ignore, label_smoothing=eps, reduction=reduction)
    (g,) = em.autograd.grad((out * em.tensor(gout)).sum(), [xt], create_graph=True)
    u, v = rng.normal(size=x.shape), rng.normal(size=x.shape)
    (hv,) = em.autograd.grad((g * em.tensor(v)).sum(), [xt])
    h = 1e-4
    num = (ref(x + h * u + h * v) - ref(x + h * u - h * v) - ref(x - h * u + h * v)
           + ref(x - h * u - h * v)) / (4 * h * h)
    assert float((hv.numpy() * u).sum()) == pytest.approx(num, rel=1e-5, abs=1e-7)


def test_cross_entropy_gradient_of_gradient_wrt_upstream_grad():
    # d/dG of <d(G . ce)/dx, v> is <d ce_i/dx, v> per sample: linear in G
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 4))
    t = np.array([0, 3, 1])
    xt = em.tensor(x, requires_grad=True)
    gt = em.tensor(np.ones(3), requires_grad=True)
    out = F.cross_entropy(xt, em.tensor(t), reduction="none")
    (g,) = em.autograd.grad(out, [xt], gt, create_graph=True)
    v = rng.normal(size=x.shape)
    (dg,) = em.autograd.grad((g * em.tensor(v)).sum(), [gt])
    p = np.exp(log_softmax_ref(x))
    p[np.arange(3), t] -= 1
    np.testing.assert_allclose(dg.numpy(), (p * v).sum(1), rtol=1e-12)


def test_nll_loss_nd_with_weight_and_ignore_index():
    rng = np.random.default_rng(8)
    lp = log_softmax_ref(rng.normal(size=(2, 3, 4)))
    t = rng.integers(0, 3, (2, 4))
    t[0, 1] = -1
    w = rng.uniform(0.5, 2, 3)
    xt = em.tensor(lp, requires_grad=True)
    out = F.nll_loss(xt, em.tensor(t), em.tensor(w), ignore_index=-1)
    losses, wsum = 0.0, 0.0
    want_grad = np.zeros_like(lp)
    for n in range(2):
        for d in range(4):
            k = t[n, d]
            if k == -1:
                continue
            losses += -w[k] * lp[n, k, d]
            wsum += w[k]
            want_grad[n, k, d] = -w[k]
    assert out.item() == pytest.approx(losses / wsum, rel=1e-12)
    out.backward()
    np.testing.assert_allclose(xt.grad.numpy(), want_grad / wsum, rtol=1e-12)


def test_bce_clamps_the_log_at_minus_100():
    p = em.tensor([0.0, 1.0, 0.5], requires_grad=True)
    y = em.tensor([1.0, 0.0, 1.0])
    out = F.binary_cross_entropy(p, y, reduction="none")
    np.testing.assert_allclose(out.detach().numpy(), [100.0, 100.0, np.log(2)], rtol=1e-6)
    out.sum().backward()
    assert np.isfinite(p.grad.numpy()).all()


def test_bce_with_logits_is_stable_for_large_logits():
    x = em.tensor([500.0, -500.0, 60.0, -60.0], dtype=em.float64, requires_grad=True)
    y = em.tensor([0.0, 1.0, 1.0, 0.0], dtype=em.float64)
    out = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(out.detach().numpy(), [500.0, 500.0, np.exp(-60.0),
                                                      np.exp(-60.0)], rtol=1e-12)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, -1.0, -np.exp(-60.0), np.exp(-60.0)],
                               rtol=1e-12, atol=1e-15)


# ----- modules -------------------------------------------------------------------------------

MODULES = [
    (lambda: nn.CrossEntropyLoss(label_smoothing=0.1), "ce"),
    (lambda: nn.NLLLoss(reduction="sum"), "nll"),
    (lambda: nn.MSELoss(), "pair"),
    (lambda: nn.L1Loss(reduction="none"), "pair"),
    (lambda: nn.SmoothL1Loss(beta=0.5), "pair"),
    (lambda: nn.HuberLoss(delta=0.5), "pair"),
    (lambda: nn.BCELoss(), "bce"),
    (lambda: nn.BCEWithLogitsLoss(pos_weight=em.tensor([2.0, 0.5, 1.0],
                                                       dtype=em.float64)), "bcel"),
    (lambda: nn.KLDivLoss(reduction="batchmean"), "kl"),
    (lambda: nn.CosineEmbeddingLoss(margin=0.1), "cos"),
    (lambda: nn.MarginRankingLoss(margin=0.1), "rank"),
    (lambda: nn.HingeEmbeddingLoss(), "hinge"),
    (lambda: nn.SoftMarginLoss(), "hinge"),
]


def _module_case(kind, rng):
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    t = rng.integers(0, 3, 4)
    if kind == "ce":
        lp = log_softmax_ref(x)
        loss = 0.9 * -lp[np.arange(4), t] + 0.1 / 3 * -lp.sum(1)
        return (x, t), loss.mean()
    if kind == "nll":
        return (x, t), (-x[np.arange(4), t]).sum()
    if kind == "pair":
        return (x, y), None
    if kind == "bce":
        p = 1 / (1 + np.exp(-x))
        return (p, (y > 0) * 1.0), bce_ref(p, (y > 0) * 1.0).mean()
    if kind == "bcel":
        yy = (y > 0) * 1.0
        return (x, yy), bce_logits_ref(x, yy, pos_weight=np.array([2.0, 0.5, 1.0])).mean()
    if kind == "kl":
        lp, q = log_softmax_ref(x), np.exp(log_softmax_ref(y))
        return (lp, q), kl_ref(lp, q).sum() / 4
    if kind == "cos":
        s = np.array([1.0, -1.0, -1.0, 1.0])
        return (x, y, s), cosine_embedding_ref(x, y, s, 0.1).mean()
    if kind == "rank":
        s = np.array([1.0, -1.0, -1.0, 1.0])
        return (x[:, 0], y[:, 0], s), margin_ranking_ref(x[:, 0], y[:, 0], s, 0.1).mean()
    s = np.sign(y)
    return (x, s), None


@pytest.mark.parametrize("make, kind", MODULES, ids=[m[1] + str(i) for i, m in
                                                    enumerate(MODULES)])
def test_loss_modules_compute_the_reference(make, kind):
    rng = np.random.default_rng(9)
    arrs, want = _module_case(kind, rng)
    m = make()
    out = m(*[em.tensor(a) for a in arrs])
    if want is None:  # the elementwise losses: the reference by name
        x, y = arrs
        name = type(m).__name__
        ref = {"MSELoss": mse_ref(x, y), "L1Loss": l1_ref(x, y),
               "SmoothL1Loss": smooth_l1_ref(x, y, 0.5), "HuberLoss": huber_ref(x, y, 0.5),
               "HingeEmbeddingLoss": hinge_embedding_ref(x, y),
               "SoftMarginLoss": soft_margin_ref(x, y)}[name]
        want = ref if m.reduction == "none" else ref.mean()
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10)


def test_loss_module_weights_are_buffers():
    w = em.tensor([1.0, 2.0, 3.0])
    assert list(nn.CrossEntropyLoss(weight=w).state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    assert list(nn.BCEWithLogitsLoss(pos_weight=w).state_dict()) == ["pos_weight"]
    m = nn.NLLLoss(weight=w).double()
    assert m.weight.dtype == em.float64
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.L1Loss(reduce=False).reduction == "none"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"


# ----- errors ----------------------------------------------------------------------------------

def test_cross_entropy_errors_name_the_problem():
    x = em.randn(4, 3)
    with pytest.raises(TypeError, match=r"floating-point target .*\(4,\).*probabilities"):
        F.cross_entropy(x, em.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(IndexError, match=r"target 3 is out of bounds for 3 classes"):
        F.cross_entropy(x, em.tensor([0, 1, 3, 1]))
    with pytest.raises(IndexError, match=r"target -2 is out of bounds"):
        F.cross_entropy(x, em.tensor([0, -2, 1, 1]))
    with pytest.raises(ValueError, match=r"input batch_size \(4\) to match target batch_size "
                                         r"\(3\)"):
        F.cross_entropy(x, em.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"expected target of shape \(2, 5\)"):
        F.cross_entropy(em.randn(2, 3, 5), em.tensor(np.zeros((2, 4), np.int64)))
    with pytest.raises(ValueError, match=r"weight should be a 1-d tensor of 3 class weights"):
        F.cross_entropy(x, em.tensor([0, 1, 2, 1]), weight=em.ones(4))
    with pytest.raises(ValueError, match=r"'avg' is not a valid value for reduction"):
        F.cross_entropy(x, em.tensor([0, 1, 2, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"label_smoothing must be between 0.0 and 1.0"):
        F.cross_entropy(x, em.tensor([0, 1, 2, 1]), label_smoothing=1.5)
    with pytest.raises(TypeError, match=r"nll_loss: expected class-index targets of an "
                                        r"integer dtype"):
        F.nll_loss(x, em.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(TypeError, match=r"cross_entropy: expected a floating-point input"):
        F.cross_entropy(em.tensor([[1, 2]]), em.tensor([0]))
    # ignore_index is exempt from the range check
    F.cross_entropy(x, em.tensor([0, -100, 2, 1]))


def test_other_loss_errors():
    x = em.rand(4, 3)
    with pytest.raises(ValueError, match=r"all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(x * 2 - 0.5, x)
    with pytest.raises(ValueError, match=r"target size \(4, 1\).*input size \(4, 3\)"):
        F.binary_cross_entropy(x, em.rand(4, 1))
    with pytest.raises(ValueError, match=r"target size \(4,\) must be the same as input"):
        F.binary_cross_entropy_with_logits(x, em.rand(4))
    with pytest.raises(ValueError, match=r"weights and input must have the same size"):
        F.mse_loss(x, x, weight=em.ones(3))
    with pytest.raises(ValueError, match=r"target shape \(5,\) can't be broadcast"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            F.mse_loss(x, em.rand(5))
    with pytest.warns(UserWarning, match=r"different to the input size"):
        F.l1_loss(x, em.rand(3))
    with pytest.raises(ValueError, match=r"'batchmean' is not a valid value"):
        F.mse_loss(x, x, reduction="batchmean")
    with pytest.raises(ValueError, match=r"'batchmean' is not a valid value"):
        nn.MSELoss(reduction="batchmean")
    with pytest.raises(TypeError, match=r"weight must be a Tensor or None, got list"):
        nn.CrossEntropyLoss(weight=[1.0, 2.0])


# ----- optional: PyTorch on the same inputs -----------------------------------------------------

def test_matches_pytorch_on_the_same_inputs():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    rng = np.random.default_rng(10)
    x, t = rng.normal(size=(6, 5)), rng.integers(0, 5, 6)
    t[2] = 4
    w = rng.uniform(0.3, 2, 5)
    x3, t3 = rng.normal(size=(2, 5, 3)), rng.integers(0, 5, (2, 3))
    calls = [
        ("cross_entropy", (x, t), {"weight": w, "ignore_index": 4, "label_smoothing": 0.15}),
        ("cross_entropy", (x3, t3), {"weight": w, "label_smoothing": 0.05}),
        ("cross_entropy", (x, np.exp(log_softmax_ref(x * 2))), {"label_smoothing": 0.3}),
        ("nll_loss", (log_softmax_ref(x3), t3), {"weight": w, "ignore_index": 0}),
        ("binary_cross_entropy_with_logits", (x, (x > 0.3) * 1.0),
         {"pos_weight": rng.uniform(0.5, 2, 5)}),
        ("kl_div", (log_softmax_ref(x), np.exp(log_softmax_ref(x3.reshape(6, 5)))),
         {"reduction": "batchmean"}),
        ("huber_loss", (x, x3.reshape(6, 5)), {"delta": 0.3}),
        ("smooth_l1_loss", (x, x3.reshape(6, 5)), {"beta": 0.3}),
    ]
    for name, args, kw in calls:
        for red in (["none", "mean", "sum"] if "reduction" not in kw else [kw["reduction"]]):
            kw2 = dict(kw, reduction=red)
            ex = em.tensor(args[0], requires_grad=True)
            tx = torch.tensor(args[0], requires_grad=True)
            eo = getattr(F, name)(ex, em.tensor(args[1]),
                                  **{k: em.tensor(v) if isinstance(v, np.ndarray) else v
                                     for k, v in kw2.items()})
            to = getattr(TF, name)(tx, torch.tensor(args[1]),
                                   **{k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                                      for k, v in kw2.items()})
            np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), rtol=1e-10,
                                       atol=1e-12, err_msg=f"{name} {red}")
            g = rng.normal(size=tuple(to.shape))
            eo.backward(em.tensor(g))
            to.backward(torch.tensor(g))
            np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=f"{name} {red} grad")


# ----- CTC ---------------------------------------------------------------------------------------

def ctc_brute_force(lp, target, blank=0):
    """-log of the summed probability of every length-T path that collapses (merge repeats,
    drop blanks) to ``target``: the definition, by enumeration. ``lp``: (T, C)."""
    import itertools
    t_len, c = lp.shape
    total = 0.0
    for path in itertools.product(range(c), repeat=t_len):
        collapsed = [k for i, k in enumerate(path) if (i == 0 or k != path[i - 1])]
        if [k for k in collapsed if k != blank] == list(target):
            total += np.exp(sum(lp[t, k] for t, k in enumerate(path)))
    return -np.log(total)


CTC_TARGETS = [[1, 2], [2, 2], [1], [], [1, 2, 1]]
CTC_IN_LEN = [5, 4, 5, 3, 5]


def _ctc_ref(lp, reduction):
    losses = np.array([ctc_brute_force(lp[:n_t, i], tg) for i, (tg, n_t) in
                       enumerate(zip(CTC_TARGETS, CTC_IN_LEN))])
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return (losses / np.maximum([len(t) for t in CTC_TARGETS], 1)).mean()


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_ctc_loss_matches_path_enumeration(reduction):
    rng = np.random.default_rng(11)
    lp = log_softmax_ref(rng.normal(size=(5, len(CTC_TARGETS), 3)), 2)
    padded = np.zeros((len(CTC_TARGETS), 3), np.int64)
    for i, t in enumerate(CTC_TARGETS):
        padded[i, :len(t)] = t
    lengths = [len(t) for t in CTC_TARGETS]
    xt = em.tensor(lp, requires_grad=True)
    out = F.ctc_loss(xt, em.tensor(padded), em.tensor(CTC_IN_LEN), em.tensor(lengths),
                     reduction=reduction)
    np.testing.assert_allclose(out.detach().numpy(), _ctc_ref(lp, reduction), rtol=1e-10)
    concat = em.tensor(np.concatenate([np.array(t, np.int64) for t in CTC_TARGETS]))
    again = F.ctc_loss(em.tensor(lp), concat, CTC_IN_LEN, lengths, reduction=reduction)
    np.testing.assert_allclose(again.numpy(), out.detach().numpy(), rtol=1e-12)
    gout = rng.normal(size=out.shape)
    out.backward(em.tensor(gout))
    num = np.zeros_like(lp)
    for idx in np.ndindex(lp.shape):
        old = lp[idx]
        lp[idx] = old + H
        up = (_ctc_ref(lp, reduction) * gout).sum()
        lp[idx] = old - H
        down = (_ctc_ref(lp, reduction) * gout).sum()
        lp[idx] = old
        num[idx] = (up - down) / (2 * H)
    np.testing.assert_allclose(xt.grad.numpy(), num, rtol=1e-6, atol=1e-8)


def test_ctc_loss_impossible_alignment_and_zero_infinity():
    lp = em.tensor(log_softmax_ref(np.random.default_rng(12).normal(size=(3, 1, 4)), 2),
                   requires_grad=True)
    target = em.tensor([[1, 1, 1]])  # needs 5 frames (blanks between repeats), has 3
    assert np.isinf(F.ctc_loss(lp, target, [3], [3], reduction="sum").item())
    out = nn.CTCLoss(zero_infinity=True, reduction="sum")(lp, target, [3], [3])
    out.backward()
    assert out.item() == 0.0 and not lp.grad.numpy().any()


def test_ctc_loss_errors():
    lp = em.randn(4, 2, 3)
    with pytest.raises(IndexError, match=r"target 0 is not a valid label for 3 classes with "
                                         r"blank=0"):
        F.ctc_loss(lp, em.tensor([[1, 0], [1, 2]]), [4, 4], [2, 2])
    with pytest.raises(ValueError, match=r"input_lengths must be in 1..4"):
        F.ctc_loss(lp, em.tensor([[1, 2], [1, 2]]), [5, 4], [2, 2])
    with pytest.raises(ValueError, match=r"concatenated targets have 3 entries but "
                                         r"target_lengths sum to 4"):
        F.ctc_loss(lp, em.tensor([1, 2, 1]), [4, 4], [2, 2])


def test_ctc_loss_matches_pytorch_through_log_softmax():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    logits = rng.normal(size=(20, 3, 6))
    targets = rng.integers(1, 6, (3, 7))
    in_len, tg_len = [20, 15, 18], [7, 3, 5]
    for reduction in ("none", "mean", "sum"):
        ex = em.tensor(logits, requires_grad=True)
        tx = torch.tensor(logits, requires_grad=True)
        eo = F.ctc_loss(F.log_softmax(ex, 2), em.tensor(targets), in_len, tg_len,
                        reduction=reduction)
        to = torch.nn.functional.ctc_loss(torch.log_softmax(tx, 2), torch.tensor(targets),
                                          in_len, tg_len, reduction=reduction)
        g = rng.normal(size=tuple(to.shape))
        eo.backward(em.tensor(g))
        to.backward(torch.tensor(g))
        np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-12)
