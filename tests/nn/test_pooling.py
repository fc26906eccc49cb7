"""Pooling (F.max_pool*, F.avg_pool*, F.adaptive_*, F.max_unpool*, nn pooling layers) against
explicit-loop NumPy references; gradients against central differences of those references."""
import itertools
import math

import numpy as np
import pytest

import ember as em
import ember.nn as nn
import ember.nn.functional as F

EPS = 1e-6


def np_of(t):
    return t.detach().numpy()


def _tup(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


def out_size(n, k, s, p, d, ceil_mode):
    """PyTorch's documented pooling size, with the rule that the last window must start
    inside the input or the left padding."""
    num = n + 2 * p - d * (k - 1) - 1
    o = (math.ceil(num / s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def windows(x_sp, k, s, p, d, ceil_mode):
    """For each output position, the list of (unpadded) input positions of its window, in
    row-major order, with out-of-range positions left out."""
    nd = len(x_sp)
    outs = [out_size(x_sp[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(nd)]
    for pos in itertools.product(*(range(o) for o in outs)):
        cells = []
        for off in itertools.product(*(range(kk) for kk in k)):
            at = tuple(pos[i] * s[i] - p[i] + off[i] * d[i] for i in range(nd))
            if all(0 <= a < n for a, n in zip(at, x_sp)):
                cells.append(at)
        yield pos, cells, outs


def max_pool_ref(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    nd = x.ndim - 2
    k = _tup(kernel_size, nd)
    s = k if stride is None else _tup(stride, nd)
    p, d = _tup(padding, nd), _tup(dilation, nd)
    sp = x.shape[2:]
    outs = [out_size(sp[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(nd)]
    y = np.empty(x.shape[:2] + tuple(outs))
    idx = np.empty(x.shape[:2] + tuple(outs), np.int64)
    for pos, cells, _ in windows(sp, k, s, p, d, ceil_mode):
        vals = np.stack([x[(slice(None), slice(None)) + c] for c in cells], -1)
        first = vals.argmax(-1)  # first maximum in window order
        y[(slice(None), slice(None)) + pos] = vals.max(-1)
        flat = np.array([np.ravel_multi_index(c, sp) for c in cells])
        idx[(slice(None), slice(None)) + pos] = flat[first]
    return y, idx


def avg_pool_ref(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
    nd = x.ndim - 2
    k = _tup(kernel_size, nd)
    s = k if stride is None else _tup(stride, nd)
    p = _tup(padding, nd)
    sp = x.shape[2:]
    outs = [out_size(sp[i], k[i], s[i], p[i], 1, ceil_mode) for i in range(nd)]
    y = np.empty(x.shape[:2] + tuple(outs))
    for pos, cells, _ in windows(sp, k, s, p, (1,) * nd, ceil_mode):
        total = sum(x[(slice(None), slice(None)) + c] for c in cells)
        if divisor_override:
            div = divisor_override
        elif count_include_pad:
            # window clipped to the padded input (the ceil-mode overhang is not counted)
            div = math.prod(min(pos[i] * s[i] - p[i] + k[i], sp[i] + p[i]) -
                            (pos[i] * s[i] - p[i]) for i in range(nd))
        else:
            div = len(cells)
        y[(slice(None), slice(None)) + pos] = total / div
    return y


def bins(n_in, n_out):
    return [(math.floor(i * n_in / n_out), math.ceil((i + 1) * n_in / n_out))
            for i in range(n_out)]


def adaptive_ref(x, out, reduce):
    nd = x.ndim - 2
    sp = x.shape[2:]
    b = [bins(sp[i], out[i]) for i in range(nd)]
    y = np.empty(x.shape[:2] + tuple(out))
    idx = np.empty(x.shape[:2] + tuple(out), np.int64)
    for pos in itertools.product(*(range(o) for o in out)):
        region = tuple(slice(*b[i][pos[i]]) for i in range(nd))
        patch = x[(slice(None), slice(None)) + region].reshape(x.shape[:2] + (-1,))
        key = (slice(None), slice(None)) + pos
        if reduce == "avg":
            y[key] = patch.mean(-1)
        else:
            y[key] = patch.max(-1)
            local = np.unravel_index(patch.argmax(-1), [r.stop - r.start for r in region])
            idx[key] = np.ravel_multi_index(
                tuple(loc + r.start for loc, r in zip(local, region)), sp)
    return y, idx


def distinct(rng, shape):
    """Values at least 0.1 apart: no ties, so the max (and its gradient) is unambiguous."""
    n = math.prod(shape)
    return ((rng.permutation(n) - n / 2) * 0.1 + rng.uniform(-0.02, 0.02, n)).reshape(shape)


def fd_grad(f, x, G):
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + EPS
        hi = np.sum(f(x) * G)
        x[idx] = old - EPS
        lo = np.sum(f(x) * G)
        x[idx] = old
        out[idx] = (hi - lo) / (2 * EPS)
    return out


# ----- max pooling ---------------------------------------------------------------------------

MAX2D = [
    ((2, 3, 8, 8), dict(kernel_size=2)),
    ((2, 3, 7, 9), dict(kernel_size=2)),                                  # odd: floor drops
    ((2, 3, 7, 9), dict(kernel_size=2, ceil_mode=True)),
    ((2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 6, 6), dict(kernel_size=3, stride=3, padding=1, ceil_mode=True)),  # last-window rule
    ((2, 2, 9, 8), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(2, 1))),
    ((2, 2, 9, 8), dict(kernel_size=2, stride=1, dilation=3, ceil_mode=True)),
    ((1, 2, 5, 6), dict(kernel_size=(1, 3), stride=(2, 2))),
    ((1, 1, 4, 4), dict(kernel_size=4)),
]


def _id(case):
    shape, kw = case
    return f"{shape}-" + ",".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("case", MAX2D, ids=_id)
def test_max_pool2d_values_and_indices_match_loops(case):
    shape, kw = case
    x = distinct(np.random.default_rng(0), shape)
    out, idx = F.max_pool2d(em.tensor(x), return_indices=True, **kw)
    ref, ref_idx = max_pool_ref(x, **kw)
    np.testing.assert_array_equal(np_of(out), ref)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    assert idx.dtype == em.int64


@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                dict(kernel_size=2, dilation=2, stride=3),
                                dict(kernel_size=4, padding=2)], ids=str)
def test_max_pool1d_matches_loops(kw):
    x = distinct(np.random.default_rng(1), (2, 3, 11))
    out, idx = F.max_pool1d(em.tensor(x), return_indices=True, **kw)
    ref, ref_idx = max_pool_ref(x, **kw)
    np.testing.assert_array_equal(np_of(out), ref)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)


def test_max_pool_ties_pick_the_first_and_nan_propagates():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 2, 3] = np.nan
    out, idx = F.max_pool2d(em.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy()[0, 0], [[0, 2], [8, 11]])
    assert np.isnan(np_of(out)[0, 0, 1, 1]) and np_of(out)[0, 0, 0, 0] == 0


def test_max_pool_on_integers_and_unbatched_input():
    x = np.arange(15).reshape(3, 5) % 7  # (C, L): unbatched
    out = F.max_pool1d(em.tensor(x), 2, padding=1)
    assert out.dtype == em.int64
    np.testing.assert_array_equal(out.numpy(), max_pool_ref(x[None], 2, padding=1)[0][0])


@pytest.mark.parametrize("case", [MAX2D[1], MAX2D[4], MAX2D[6], MAX2D[7]], ids=_id)
def test_max_pool2d_gradient_matches_finite_differences(case):
    shape, kw = case
    rng = np.random.default_rng(2)
    x = distinct(rng, (1,) + shape[1:])
    tx = em.tensor(x, requires_grad=True)
    y = F.max_pool2d(tx, **kw)
    G = rng.standard_normal(y.shape)
    y.backward(em.tensor(G))
    np.testing.assert_allclose(np_of(tx.grad), fd_grad(lambda a: max_pool_ref(a, **kw)[0], x, G),
                               atol=1e-8)


def test_max_pool_second_order_routes_through_the_same_indices():
    rng = np.random.default_rng(3)
    x = em.tensor(distinct(rng, (1, 2, 5, 5)), requires_grad=True)
    G = em.tensor(rng.standard_normal((1, 2, 3, 3)), requires_grad=True)
    y = F.max_pool2d(x, 3, 2, 1)
    (gx,) = em.autograd.grad(y, x, G, create_graph=True)
    V = rng.standard_normal(x.shape)
    (gG,) = em.autograd.grad((gx * em.tensor(V)).sum(), G)
    # <scatter(G), V> is linear in G: its gradient picks V at each window's argmax
    _, idx = max_pool_ref(np_of(x), 3, 2, 1)
    ref = np.take_along_axis(V.reshape(1, 2, -1), idx.reshape(1, 2, -1), 2).reshape(G.shape)
    np.testing.assert_allclose(np_of(gG), ref)


def test_max_unpool2d_places_values_at_indices():
    x = distinct(np.random.default_rng(4), (2, 3, 6, 7))
    out, idx = F.max_pool2d(em.tensor(x), 2, return_indices=True)
    un = np_of(F.max_unpool2d(out, idx, 2, output_size=(6, 7)))
    ref = np.zeros_like(x)
    ref.reshape(2, 3, -1)[np.arange(2)[:, None, None], np.arange(3)[None, :, None],
                          idx.numpy().reshape(2, 3, -1)] = np_of(out).reshape(2, 3, -1)
    np.testing.assert_array_equal(un, ref)
    out6, idx6 = F.max_pool2d(em.tensor(x[..., :6]), 2, return_indices=True)
    assert F.max_unpool2d(out6, idx6, 2).shape == (2, 3, 6, 6)  # default (in-1)*s - 2p + k


# ----- average pooling -----------------------------------------------------------------------

AVG2D = [
    ((2, 3, 8, 8), dict(kernel_size=2)),
    ((2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ((2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                        count_include_pad=False)),
    ((2, 2, 7, 9), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True,
                        divisor_override=5)),
    ((1, 2, 5, 5), dict(kernel_size=2, stride=1)),
]


@pytest.mark.parametrize("case", AVG2D, ids=_id)
def test_avg_pool2d_matches_loops(case):
    shape, kw = case
    x = np.random.default_rng(5).standard_normal(shape)
    np.testing.assert_allclose(np_of(F.avg_pool2d(em.tensor(x), **kw)), avg_pool_ref(x, **kw),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kw", [dict(kernel_size=4, stride=3, padding=2, ceil_mode=True),
                                dict(kernel_size=4, stride=3, padding=2, ceil_mode=True,
                                     count_include_pad=False),
                                dict(kernel_size=3)], ids=str)
def test_avg_pool1d_matches_loops(kw):
    x = np.random.default_rng(6).standard_normal((2, 3, 10))
    np.testing.assert_allclose(np_of(F.avg_pool1d(em.tensor(x), **kw)), avg_pool_ref(x, **kw),
                               rtol=1e-12)


@pytest.mark.parametrize("case", [AVG2D[2], AVG2D[4], AVG2D[5], AVG2D[6]], ids=_id)
def test_avg_pool2d_gradient_matches_finite_differences(case):
    shape, kw = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape)
    tx = em.tensor(x, requires_grad=True)
    y = F.avg_pool2d(tx, **kw)
    G = rng.standard_normal(y.shape)
    y.backward(em.tensor(G))
    np.testing.assert_allclose(np_of(tx.grad), fd_grad(lambda a: avg_pool_ref(a, **kw), x, G),
                               atol=1e-8)


def test_avg_pool_float32_stays_float32():
    x = np.random.default_rng(8).standard_normal((2, 3, 6, 6)).astype(np.float32)
    out = F.avg_pool2d(em.tensor(x), 3, 2, 1, count_include_pad=False)
    assert out.dtype == em.float32
    np.testing.assert_allclose(np_of(out), avg_pool_ref(x.astype(np.float64), 3, 2, 1,
                                                        count_include_pad=False), rtol=1e-6)


# ----- adaptive pooling ----------------------------------------------------------------------

ADAPTIVE = [((2, 3, 7, 8), (3, 5)), ((2, 3, 6, 8), (3, 2)), ((2, 3, 5, 4), (7, 6)),
            ((1, 2, 7, 5), (1, 1)), ((1, 2, 9, 9), (4, 4))]


def test_adaptive_bins_follow_pytorch_formula():
    # 10 -> 4: starts floor(i*10/4), ends ceil((i+1)*10/4): overlapping bins
    assert bins(10, 4) == [(0, 3), (2, 5), (5, 8), (7, 10)]
    x = np.arange(10.0).reshape(1, 1, 10)
    np.testing.assert_allclose(np_of(F.adaptive_avg_pool1d(em.tensor(x), 4))[0, 0],
                               [1.0, 3.0, 6.0, 8.0])
    np.testing.assert_allclose(np_of(F.adaptive_max_pool1d(em.tensor(x), 4))[0, 0],
                               [2.0, 4.0, 7.0, 9.0])


@pytest.mark.parametrize("shape,out", ADAPTIVE, ids=str)
def test_adaptive_avg_pool2d_matches_bins(shape, out):
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape)
    tx = em.tensor(x, requires_grad=True)
    y = F.adaptive_avg_pool2d(tx, out)
    np.testing.assert_allclose(np_of(y), adaptive_ref(x, out, "avg")[0], rtol=1e-12,
                               atol=1e-14)
    G = rng.standard_normal(y.shape)
    y.backward(em.tensor(G))
    np.testing.assert_allclose(np_of(tx.grad),
                               fd_grad(lambda a: adaptive_ref(a, out, "avg")[0], x, G),
                               atol=1e-8)


@pytest.mark.parametrize("shape,out", ADAPTIVE, ids=str)
def test_adaptive_max_pool2d_matches_bins(shape, out):
    rng = np.random.default_rng(10)
    x = distinct(rng, shape)
    tx = em.tensor(x, requires_grad=True)
    y, idx = F.adaptive_max_pool2d(tx, out, return_indices=True)
    ref, ref_idx = adaptive_ref(x, out, "max")
    np.testing.assert_array_equal(np_of(y), ref)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    G = rng.standard_normal(y.shape)
    y.backward(em.tensor(G))
    np.testing.assert_allclose(np_of(tx.grad),
                               fd_grad(lambda a: adaptive_ref(a, out, "max")[0], x, G),
                               atol=1e-8)


def test_adaptive_output_size_none_keeps_dim_and_unbatched_works():
    x = np.random.default_rng(11).standard_normal((3, 6, 5))
    y = F.adaptive_avg_pool2d(em.tensor(x), (None, 2))
    np.testing.assert_allclose(np_of(y), adaptive_ref(x[None], (6, 2), "avg")[0][0],
                               rtol=1e-12)


def test_adaptive_max_pool_second_order():
    rng = np.random.default_rng(12)
    x = em.tensor(distinct(rng, (1, 2, 5, 7)), requires_grad=True)
    G = em.tensor(rng.standard_normal((1, 2, 3, 3)), requires_grad=True)
    (gx,) = em.autograd.grad(F.adaptive_max_pool2d(x, 3), x, G, create_graph=True)
    V = rng.standard_normal(x.shape)
    (gG,) = em.autograd.grad((gx * em.tensor(V)).sum(), G)
    _, idx = adaptive_ref(np_of(x), (3, 3), "max")
    ref = np.take_along_axis(V.reshape(1, 2, -1), idx.reshape(1, 2, -1), 2).reshape(G.shape)
    np.testing.assert_allclose(np_of(gG), ref)


# ----- modules -------------------------------------------------------------------------------


@pytest.mark.parametrize("module,text", [
    (lambda: nn.MaxPool2d(2), "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, "
                              "ceil_mode=False)"),
    (lambda: nn.MaxPool1d(3, 2), "MaxPool1d(kernel_size=3, stride=2, padding=0, dilation=1, "
                                 "ceil_mode=False)"),
    (lambda: nn.AvgPool2d(3, ceil_mode=True), "AvgPool2d(kernel_size=3, stride=3, padding=0)"),
    (lambda: nn.AvgPool1d(3), "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"),
    (lambda: nn.AdaptiveAvgPool2d((None, 3)), "AdaptiveAvgPool2d(output_size=(None, 3))"),
    (lambda: nn.AdaptiveMaxPool2d(3, return_indices=True), "AdaptiveMaxPool2d(output_size=3)"),
    (lambda: nn.MaxUnpool2d(2), "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), "
                                "padding=(0, 0))"),
])
def test_pooling_module_repr_matches_pytorch(module, text):
    assert repr(module()) == text


def test_pooling_modules_call_the_functions():
    x = distinct(np.random.default_rng(13), (2, 3, 7, 7))
    tx = em.tensor(x)
    out, idx = nn.MaxPool2d(3, 2, 1, return_indices=True, ceil_mode=True)(tx)
    np.testing.assert_array_equal(np_of(out), max_pool_ref(x, 3, 2, 1, ceil_mode=True)[0])
    np.testing.assert_allclose(np_of(nn.AvgPool2d(2, count_include_pad=False)(tx)),
                               avg_pool_ref(x, 2), rtol=1e-12)
    np.testing.assert_allclose(np_of(nn.AdaptiveAvgPool2d(1)(tx)), x.mean((2, 3), keepdims=True),
                               rtol=1e-12)
    np.testing.assert_array_equal(np_of(nn.AdaptiveMaxPool2d((2, 3))(tx)),
                                  adaptive_ref(x, (2, 3), "max")[0])
    np.testing.assert_allclose(np_of(nn.AvgPool1d(3, 2)(em.tensor(x[:, :, 0]))),
                               avg_pool_ref(x[:, :, 0], 3, 2), rtol=1e-12)


# ----- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: F.max_pool2d(em.zeros(2, 3, 4, 4), 3, padding=2), ValueError,
     r"max_pool2d: pad should be at most half of effective kernel size"),
    (lambda: F.max_pool2d(em.zeros(5), 2), RuntimeError,
     r"max_pool2d: expected a 3-d \(unbatched\) or 4-d \(batched\) input .* got shape \(5,\)"),
    (lambda: F.max_pool2d(em.zeros(1, 1, 2, 2), 3), RuntimeError,
     r"max_pool2d: output size \(0, 0\) is too small for input shape \(1, 1, 2, 2\)"),
    (lambda: F.avg_pool1d(em.zeros(1, 1, 4), 2, stride=0), ValueError, r"stride must be >= 1"),
    (lambda: F.avg_pool2d(em.zeros(1, 1, 4, 4), 2, divisor_override=0), ValueError,
     r"divisor must be not zero"),
    (lambda: F.adaptive_avg_pool2d(em.zeros(1, 1, 4, 4), (2, 0)), ValueError,
     r"adaptive_avg_pool2d: output_size must be positive"),
    (lambda: F.adaptive_max_pool2d(em.zeros(1, 1, 4, 4), (1, 2, 3)), ValueError,
     r"output_size must be an int or a tuple of 2 ints"),
    (lambda: F.max_unpool2d(em.zeros(1, 1, 2, 2), em.zeros(1, 1, 2, 2, dtype=em.int64) + 16, 2),
     RuntimeError, r"max_unpool2d: found an invalid max index 16 .* \(4, 4\)"),
])
def test_bad_pooling_arguments_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ----- against PyTorch, when it is installed -------------------------------------------------


def test_pooling_matches_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = np.random.default_rng(14).standard_normal((2, 3, 9, 10))
    tx = torch.tensor(x)
    for kw in (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
               dict(kernel_size=(2, 3), dilation=(2, 1))):
        out, idx = F.max_pool2d(em.tensor(x), return_indices=True, **kw)
        tout, tidx = tf.max_pool2d(tx, return_indices=True, **kw)
        np.testing.assert_array_equal(np_of(out), tout.numpy())
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(np_of(F.avg_pool2d(em.tensor(x), **kw)),
                               tf.avg_pool2d(tx, **kw).numpy(), rtol=1e-12)
    np.testing.assert_allclose(np_of(F.adaptive_avg_pool2d(em.tensor(x), (4, 3))),
                               tf.adaptive_avg_pool2d(tx, (4, 3)).numpy(), rtol=1e-12)
    out, idx = F.adaptive_max_pool2d(em.tensor(x), (4, 3), return_indices=True)
    tout, tidx = tf.adaptive_max_pool2d(tx, (4, 3), return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
