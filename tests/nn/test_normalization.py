"""Normalisation layers against NumPy references written from the published definitions.

- Values: each row of ``CASES`` names an ember call and a NumPy reference (mean and biased
  variance over the normalised axes, then the affine map), checked in float64 and float32.
- Gradients: ember's backward (the fused closed-form ops) against central finite differences
  of the *reference*, so a wrong forward cannot hide a wrong backward.
- Second derivatives (the composite path taken under ``create_graph=True``): ``u . H v`` from
  ember against a four-point finite-difference stencil of the reference.
- Modules: running statistics over several steps against PyTorch's documented update rule
  (unbiased variance, momentum or the cumulative average), eval mode, num_batches_tracked,
  parameter/buffer names and initial values; clear errors for wrong ranks and channel counts.
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

EPS = 1e-5
H = 1e-6  # central-difference step (float64)


# ----- NumPy references -----------------------------------------------------------------------

def ref_normalize(x, axes, eps=EPS):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def channel_affine(y, w, b):
    shape = (1, -1) + (1,) * (y.ndim - 2)
    if w is not None:
        y = y * w.reshape(shape)
    if b is not None:
        y = y + b.reshape(shape)
    return y


def ref_batch_norm(x, w=None, b=None):
    return channel_affine(ref_normalize(x, (0,) + tuple(range(2, x.ndim))), w, b)


def ref_layer_norm(x, w=None, b=None, k=1):
    y = ref_normalize(x, tuple(range(x.ndim - k, x.ndim)))
    if w is not None:
        y = y * w
    return y + b if b is not None else y


def ref_group_norm(x, groups, w=None, b=None):
    n, c = x.shape[:2]
    xg = x.reshape(n, groups, -1)
    return channel_affine(ref_normalize(xg, (2,)).reshape(x.shape), w, b)


def ref_instance_norm(x, w=None, b=None):
    return channel_affine(ref_normalize(x, tuple(range(2, x.ndim))), w, b)


def ref_rms_norm(x, w, k=1, eps=1e-6):
    axes = tuple(range(x.ndim - k, x.ndim))
    return x / np.sqrt((x * x).mean(axis=axes, keepdims=True) + eps) * w


def ref_lrn(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Explicit loop over channels: the window [c - size//2, c + (size-1)//2], zero-padded."""
    c = x.shape[1]
    out = np.empty_like(x)
    for ch in range(c):
        lo, hi = ch - size // 2, ch + (size - 1) // 2
        s = sum(x[:, j] ** 2 for j in range(max(lo, 0), min(hi, c - 1) + 1))
        out[:, ch] = x[:, ch] / (k + alpha / size * s) ** beta
    return out


# ----- the table ---------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    ember: Callable        # (*tensors) -> Tensor
    ref: Callable          # (*arrays) -> array
    shapes: list           # input shapes; the first is x, the others parameters
    scale: list = field(default_factory=list)  # optional per-input (mul, add)


def _bn(x, *wb):
    return F.batch_norm(x, None, None, *wb, training=True)


CASES = [
    Case("batch_norm-2d", _bn, ref_batch_norm, [(5, 3), (3,), (3,)]),
    Case("batch_norm-3d", _bn, ref_batch_norm, [(3, 2, 4), (2,), (2,)]),
    Case("batch_norm-4d", _bn, ref_batch_norm, [(2, 3, 3, 2), (3,), (3,)]),
    Case("batch_norm-5d", _bn, ref_batch_norm, [(2, 2, 2, 2, 3), (2,), (2,)]),
    Case("batch_norm-noaffine", _bn, ref_batch_norm, [(3, 2, 4)]),
    Case("batch_norm-biasonly", lambda x, b: _bn(x, None, b),
         lambda x, b: ref_batch_norm(x, None, b), [(3, 2, 4), (2,)]),
    Case("layer_norm-1", lambda x, w, b: F.layer_norm(x, (4,), w, b),
         ref_layer_norm, [(3, 2, 4), (4,), (4,)]),
    Case("layer_norm-2", lambda x, w, b: F.layer_norm(x, (2, 4), w, b),
         lambda x, w, b: ref_layer_norm(x, w, b, k=2), [(3, 2, 4), (2, 4), (2, 4)]),
    Case("layer_norm-weightonly", lambda x, w: F.layer_norm(x, 5, w),
         lambda x, w: ref_layer_norm(x, w), [(4, 5), (5,)]),
    Case("layer_norm-noaffine", lambda x: F.layer_norm(x, [3]), ref_layer_norm, [(2, 2, 3)]),
    Case("layer_norm-biasonly", lambda x, b: F.layer_norm(x, 3, None, b),
         lambda x, b: ref_layer_norm(x, None, b), [(2, 2, 3), (3,)]),
    Case("group_norm-2", lambda x, w, b: F.group_norm(x, 2, w, b),
         lambda x, w, b: ref_group_norm(x, 2, w, b), [(2, 4, 3), (4,), (4,)]),
    Case("group_norm-1", lambda x, w, b: F.group_norm(x, 1, w, b),
         lambda x, w, b: ref_group_norm(x, 1, w, b), [(2, 3, 2, 2), (3,), (3,)]),
    Case("group_norm-weightonly", lambda x, w: F.group_norm(x, 2, w),
         lambda x, w: ref_group_norm(x, 2, w), [(3, 4, 2), (4,)]),
    Case("group_norm-C", lambda x: F.group_norm(x, 3),
         lambda x: ref_group_norm(x, 3), [(2, 3, 4)]),
    Case("instance_norm-affine", lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
         ref_instance_norm, [(2, 3, 2, 3), (3,), (3,)]),
    Case("instance_norm", lambda x: F.instance_norm(x), ref_instance_norm, [(3, 2, 5)]),
    Case("rms_norm", lambda x, w: F.rms_norm(x, (4,), w, 1e-6), ref_rms_norm,
         [(3, 4), (4,)]),
    Case("local_response_norm-3", lambda x: F.local_response_norm(x, 3, alpha=0.5, k=2.0),
         lambda x: ref_lrn(x, 3, alpha=0.5, k=2.0), [(2, 5, 3)]),
    Case("local_response_norm-4", lambda x: F.local_response_norm(x, 4, alpha=0.3),
         lambda x: ref_lrn(x, 4, alpha=0.3), [(2, 4, 2, 2)]),
]
IDS = [c.name for c in CASES]


def _inputs(case, rng, dtype=np.float64):
    arrs = [rng.normal(size=s) for s in case.shapes]
    arrs[0] = arrs[0] * 2.0 + 0.5  # non-trivial mean and variance
    return [a.astype(dtype) for a in arrs]


def _numeric_grads(f, arrs, gout):
    """Central differences of ``sum(f(*arrs) * gout)`` w.r.t. every array."""
    grads = []
    for i, a in enumerate(arrs):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + H
            up = (f(*arrs) * gout).sum()
            a[idx] = old - H
            down = (f(*arrs) * gout).sum()
            a[idx] = old
            g[idx] = (up - down) / (2 * H)
        grads.append(g)
    return grads


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_reference_float64(case):
    arrs = _inputs(case, np.random.default_rng(1))
    out = case.ember(*[em.tensor(a) for a in arrs])
    assert out.dtype == em.float64
    np.testing.assert_allclose(out.numpy(), case.ref(*arrs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_float32_keeps_dtype(case):
    arrs = _inputs(case, np.random.default_rng(2), np.float32)
    out = case.ember(*[em.tensor(a) for a in arrs])
    assert out.dtype == em.float32
    ref = case.ref(*[a.astype(np.float64) for a in arrs])
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_finite_differences(case):
    rng = np.random.default_rng(3)
    arrs = _inputs(case, rng)
    ts = [em.tensor(a, requires_grad=True) for a in arrs]
    out = case.ember(*ts)
    gout = rng.normal(size=out.shape)
    out.backward(em.tensor(gout))
    for t, num in zip(ts, _numeric_grads(case.ref, arrs, gout)):
        np.testing.assert_allclose(t.grad.numpy(), num, rtol=1e-6, atol=1e-7)


SECOND_ORDER = [c for c in CASES if c.name in (
    "batch_norm-3d", "batch_norm-2d", "layer_norm-2", "layer_norm-weightonly", "group_norm-2",
    "instance_norm-affine")]


@pytest.mark.parametrize("case", SECOND_ORDER, ids=[c.name for c in SECOND_ORDER])
def test_second_derivatives_match_finite_differences(case):
    """``u . H v`` of ``L = sum(f(x, w, b) * G)^2``-style losses, through create_graph."""
    rng = np.random.default_rng(4)
    arrs = _inputs(case, rng)
    out_shape = case.ref(*arrs).shape
    gw = rng.normal(size=out_shape)

    def loss_ref(*a):
        y = case.ref(*a)
        return ((y * gw) ** 2).sum() + (y ** 3 * gw).sum()

    ts = [em.tensor(a, requires_grad=True) for a in arrs]
    y = case.ember(*ts)
    loss = ((y * em.tensor(gw)) ** 2).sum() + (y ** 3 * em.tensor(gw)).sum()
    grads = em.autograd.grad(loss, ts, create_graph=True)
    v = [rng.normal(size=a.shape) for a in arrs]
    u = [rng.normal(size=a.shape) for a in arrs]
    hv = em.autograd.grad(sum((g * em.tensor(vi)).sum() for g, vi in zip(grads, v)), ts)
    u_hv = sum(float((h.numpy() * ui).sum()) for h, ui in zip(hv, u))
    h = 1e-4

    def at(su, sv):
        return loss_ref(*[a + su * h * ui + sv * h * vi for a, ui, vi in zip(arrs, u, v)])
    num = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * h * h)
    assert u_hv == pytest.approx(num, rel=1e-5, abs=1e-6)


def test_modifying_the_input_in_place_before_backward_is_an_error():
    # like PyTorch, batch_norm keeps its input for backward: modifying it in place is an error
    x = em.tensor(np.random.default_rng(0).normal(size=(4, 3)), requires_grad=True)
    h = x * 1.0
    y = F.batch_norm(h, None, None, training=True)
    h.mul_(2.0)
    with pytest.raises(RuntimeError):
        y.sum().backward()


def test_batch_norm_is_stable_for_a_large_mean():
    # centred variance: E[x^2] - E[x]^2 would lose everything in float32 here
    rng = np.random.default_rng(5)
    x = (1e4 + rng.normal(size=(64, 3))).astype(np.float32)
    out = F.batch_norm(em.tensor(x), None, None, training=True).numpy()
    np.testing.assert_allclose(out, ref_batch_norm(x.astype(np.float64)), atol=2e-3)


def test_batch_norm_with_affine_gradients_only_when_input_is_data():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 2, 3))
    w = em.tensor(rng.normal(size=2), requires_grad=True)
    b = em.tensor(rng.normal(size=2), requires_grad=True)
    F.batch_norm(em.tensor(x), None, None, w, b, training=True).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), [12.0, 12.0])
    np.testing.assert_allclose(w.grad.numpy(), [0.0, 0.0], atol=1e-12)  # sum of xhat is 0


# ----- running statistics -----------------------------------------------------------------------

def _batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    n = x.size // x.shape[1]
    mean = x.mean(axis=axes)
    var_b = x.var(axis=axes)
    return mean, var_b, var_b * n / (n - 1)


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_batchnorm2d_running_stats_follow_the_documented_update(momentum):
    rng = np.random.default_rng(7)
    bn = nn.BatchNorm2d(3, momentum=momentum).double()
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(1, 5):
        x = rng.normal(size=(4, 3, 2, 3)) * (step + 1) + step
        out = bn(em.tensor(x))
        mean, var_b, var_u = _batch_stats(x)
        m = 1.0 / step if momentum is None else momentum  # None: cumulative moving average
        rm = (1 - m) * rm + m * mean
        rv = (1 - m) * rv + m * var_u
        np.testing.assert_allclose(out.detach().numpy(), ref_batch_norm(x), rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-12)
        np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-12)
        assert bn.num_batches_tracked.item() == step


def test_eval_mode_uses_running_stats_and_leaves_them_alone():
    rng = np.random.default_rng(8)
    bn = nn.BatchNorm1d(4).double()
    bn(em.tensor(rng.normal(size=(6, 4, 3)) + 2))
    with em.no_grad():
        bn.weight.copy_(em.tensor(rng.normal(size=4)))
        bn.bias.copy_(em.tensor(rng.normal(size=4)))
    rm, rv = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
    bn.eval()
    assert not bn.training
    x = rng.normal(size=(2, 4, 3))
    out = bn(em.tensor(x)).detach().numpy()
    w, b = bn.weight.detach().numpy(), bn.bias.detach().numpy()
    want = (x - rm[None, :, None]) / np.sqrt(rv[None, :, None] + EPS) * w[None, :, None] \
        + b[None, :, None]
    np.testing.assert_allclose(out, want, rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean.numpy(), rm)
    np.testing.assert_array_equal(bn.running_var.numpy(), rv)
    assert bn.num_batches_tracked.item() == 1
    bn.train()
    bn(em.tensor(x))
    assert bn.num_batches_tracked.item() == 2


def test_eval_mode_gradients_match_finite_differences():
    rng = np.random.default_rng(9)
    rm, rv = rng.normal(size=3), rng.uniform(0.5, 2, 3)
    x, w, b = rng.normal(size=(2, 3, 2)), rng.normal(size=3), rng.normal(size=3)

    def ref(x, w, b):
        return channel_affine((x - rm[None, :, None]) / np.sqrt(rv[None, :, None] + EPS), w, b)
    ts = [em.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = F.batch_norm(ts[0], em.tensor(rm), em.tensor(rv), ts[1], ts[2], training=False)
    gout = rng.normal(size=out.shape)
    out.backward(em.tensor(gout))
    for t, num in zip(ts, _numeric_grads(ref, [x, w, b], gout)):
        np.testing.assert_allclose(t.grad.numpy(), num, rtol=1e-6, atol=1e-8)


def test_without_running_stats_eval_uses_batch_stats():
    bn = nn.BatchNorm1d(3, track_running_stats=False).double()
    assert bn.running_mean is None and bn.num_batches_tracked is None
    assert list(bn.state_dict()) == ["weight", "bias"]
    bn.eval()
    x = np.random.default_rng(10).normal(size=(5, 3))
    np.testing.assert_allclose(bn(em.tensor(x)).detach().numpy(), ref_batch_norm(x),
                               rtol=1e-10)


def test_functional_batch_norm_updates_given_buffers_in_place():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(8, 2)) * 3 + 1
    rm, rv = em.zeros(2, dtype=em.float64), em.ones(2, dtype=em.float64)
    F.batch_norm(em.tensor(x), rm, rv, training=True, momentum=0.25)
    mean, _, var_u = _batch_stats(x)
    np.testing.assert_allclose(rm.numpy(), 0.25 * mean, rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), 0.75 + 0.25 * var_u, rtol=1e-12)


def test_instance_norm_running_stats_average_the_instances():
    rng = np.random.default_rng(12)
    m = nn.InstanceNorm1d(3, track_running_stats=True, momentum=0.2).double()
    x = rng.normal(size=(4, 3, 5)) * 2 + 1
    out = m(em.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), ref_instance_norm(x), rtol=1e-10)
    mean = x.mean(axis=2).mean(axis=0)
    var_u = x.var(axis=2, ddof=1).mean(axis=0)
    np.testing.assert_allclose(m.running_mean.numpy(), 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(m.running_var.numpy(), 0.8 + 0.2 * var_u, rtol=1e-12)
    assert m.num_batches_tracked.item() == 0  # PyTorch's instance norm does not count
    m.eval()
    y = rng.normal(size=(2, 3, 5))
    want = (y - m.running_mean.numpy()[:, None]) / np.sqrt(m.running_var.numpy()[:, None] + EPS)
    np.testing.assert_allclose(m(em.tensor(y)).detach().numpy(), want, rtol=1e-12)


def test_instance_norm_unbatched_input():
    x = np.random.default_rng(13).normal(size=(3, 4, 4))
    out = nn.InstanceNorm2d(3)(em.tensor(x))
    assert out.shape == (3, 4, 4)
    np.testing.assert_allclose(out.numpy(), ref_instance_norm(x[None])[0], rtol=1e-10)


# ----- parameters, buffers and initialisation ------------------------------------------------

@pytest.mark.parametrize("cls", [nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d])
def test_batchnorm_parameters_buffers_and_init(cls):
    bn = cls(5)
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var",
                        "num_batches_tracked"]
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(sd["weight"].numpy(), np.ones(5, np.float32))
    np.testing.assert_array_equal(sd["bias"].numpy(), np.zeros(5, np.float32))
    np.testing.assert_array_equal(sd["running_mean"].numpy(), np.zeros(5, np.float32))
    np.testing.assert_array_equal(sd["running_var"].numpy(), np.ones(5, np.float32))
    nbt = sd["num_batches_tracked"]
    assert nbt.dtype == em.int64 and nbt.shape == () and nbt.item() == 0
    assert sd["weight"].dtype == em.float32
    assert (bn.eps, bn.momentum, bn.affine, bn.track_running_stats) == (1e-5, 0.1, True, True)


def test_affine_false_and_bias_false():
    bn = nn.BatchNorm2d(3, affine=False)
    assert bn.weight is None and bn.bias is None
    assert list(bn.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    assert list(nn.BatchNorm2d(3, bias=False).state_dict())[:2] == ["weight", "running_mean"]


def test_instance_norm_defaults_like_pytorch():
    m = nn.InstanceNorm2d(4)
    assert not m.affine and not m.track_running_stats
    assert m.weight is None and m.running_mean is None
    assert list(m.state_dict()) == []
    m2 = nn.InstanceNorm1d(4, affine=True, track_running_stats=True)
    assert list(m2.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]


def test_layer_norm_and_group_norm_parameters():
    ln = nn.LayerNorm((2, 3))
    assert ln.weight.shape == (2, 3) and ln.bias.shape == (2, 3)
    assert ln.normalized_shape == (2, 3)
    np.testing.assert_array_equal(ln.weight.detach().numpy(), np.ones((2, 3)))
    assert nn.LayerNorm(4, bias=False).bias is None
    assert nn.LayerNorm(4, elementwise_affine=False).weight is None
    gn = nn.GroupNorm(2, 6)
    assert gn.weight.shape == (6,) and list(gn.state_dict()) == ["weight", "bias"]
    np.testing.assert_array_equal(gn.bias.detach().numpy(), np.zeros(6))
    assert list(nn.RMSNorm(5).state_dict()) == ["weight"]


def test_modules_compute_the_reference():
    rng = np.random.default_rng(14)
    x = rng.normal(size=(2, 4, 3))
    np.testing.assert_allclose(nn.LayerNorm(3).double()(em.tensor(x)).detach().numpy(),
                               ref_layer_norm(x), rtol=1e-10)
    np.testing.assert_allclose(nn.GroupNorm(2, 4).double()(em.tensor(x)).detach().numpy(),
                               ref_group_norm(x, 2), rtol=1e-10)
    np.testing.assert_allclose(nn.LocalResponseNorm(2)(em.tensor(x)).numpy(), ref_lrn(x, 2),
                               rtol=1e-10)
    np.testing.assert_allclose(nn.RMSNorm(3, eps=1e-6).double()(em.tensor(x)).detach().numpy(),
                               ref_rms_norm(x, np.ones(3)), rtol=1e-10)


def test_train_eval_switch_propagates_through_containers():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    net.eval()
    assert not net[1].training
    net.train()
    assert net[1].training


# ----- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, shape, match", [
    (lambda: nn.BatchNorm1d(3), (2, 3, 4, 5), r"BatchNorm1d: expected 2D \(N, C\) or 3D"),
    (lambda: nn.BatchNorm2d(3), (2, 3, 4), r"BatchNorm2d: expected 4D"),
    (lambda: nn.BatchNorm3d(3), (2, 3, 4, 4), r"BatchNorm3d: expected 5D"),
    (lambda: nn.BatchNorm2d(3), (2, 4, 5, 5), r"BatchNorm2d: expected input with 3 channels"),
    (lambda: nn.InstanceNorm2d(3), (3, 4), r"InstanceNorm2d: expected 3D \(unbatched\)"),
    (lambda: nn.InstanceNorm1d(3, affine=True), (2, 4, 5), r"3 channels at dim 1, got 4"),
    (lambda: nn.GroupNorm(2, 4), (2, 6, 3), r"GroupNorm: expected input with 4 channels"),
    (lambda: nn.BatchNorm1d(3), (1, 3), r"more than 1 value per channel when training"),
])
def test_wrong_rank_or_channel_count_is_a_clear_error(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer()(em.randn(*shape))


def test_functional_errors():
    x = em.randn(2, 6, 3)
    with pytest.raises(RuntimeError, match=r"divisible by num_groups.*num_groups=4"):
        F.group_norm(x, 4)
    with pytest.raises(ValueError, match=r"divisible by num_groups \(4\)"):
        nn.GroupNorm(4, 6)
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[4\].*\[\*, 4\].*\(2, 6, 3\)"):
        F.layer_norm(x, 4)
    with pytest.raises(RuntimeError, match=r"weight should have shape \(3,\)"):
        F.layer_norm(x, 3, weight=em.ones(4))
    with pytest.raises(RuntimeError, match=r"running_mean should have shape \(6,\)"):
        F.batch_norm(x, em.zeros(5), em.ones(6), training=True)
    with pytest.raises(RuntimeError, match=r"running_mean and running_var must be given"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(TypeError, match=r"batch_norm: expected a floating-point input"):
        F.batch_norm(em.ones(2, 3, dtype=em.int64), None, None, training=True)
    with pytest.raises(TypeError, match=r"weight dtype ember.float64 differs from the input "
                                        r"dtype ember.float32"):
        F.group_norm(x, 2, weight=em.ones(6, dtype=em.float64))
    with pytest.raises(ValueError, match=r"more than 1 spatial element"):
        F.instance_norm(em.randn(2, 3, 1))


def test_instance_norm_warns_on_channel_mismatch_without_affine():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        nn.InstanceNorm1d(3)(em.randn(2, 4, 5))
    assert any("does not match num_features" in str(x.message) for x in w)


# ----- optional: the same weights through PyTorch ------------------------------------------------

def test_matches_pytorch_modules_with_identical_state():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    pairs = [(nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3), (4, 3, 2, 2)),
             (nn.BatchNorm1d(3, momentum=None), torch.nn.BatchNorm1d(3, momentum=None),
              (5, 3)),
             (nn.InstanceNorm1d(3, affine=True, track_running_stats=True),
              torch.nn.InstanceNorm1d(3, affine=True, track_running_stats=True), (2, 3, 4)),
             (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4), (2, 4, 3)),
             (nn.LayerNorm((3, 2)), torch.nn.LayerNorm((3, 2)), (2, 3, 2))]
    for e, t, shape in pairs:
        e.double()
        t.double()
        with torch.no_grad():
            for p in t.parameters():
                p.copy_(torch.tensor(rng.normal(size=tuple(p.shape))))
        e.load_state_dict({k: em.tensor(v.numpy()) for k, v in t.state_dict().items()})
        for _ in range(3):
            x = rng.normal(size=shape) * 2 + 1
            ex = em.tensor(x, requires_grad=True)
            tx = torch.tensor(x, requires_grad=True)
            g = rng.normal(size=shape)
            e(ex).backward(em.tensor(g))
            t(tx).backward(torch.tensor(g))
            np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-9,
                                       atol=1e-12)
        for k, v in t.state_dict().items():
            np.testing.assert_allclose(e.state_dict()[k].numpy(), v.numpy(), rtol=1e-12)
        for (n, p), tp in zip(e.named_parameters(), t.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=n)
        e.eval()
        t.eval()
        x = rng.normal(size=shape)
        np.testing.assert_allclose(e(em.tensor(x)).detach().numpy(),
                                   t(torch.tensor(x)).detach().numpy(), rtol=1e-10)
