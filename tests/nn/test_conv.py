"""Convolutions (F.conv1d/2d/3d, F.conv_transpose1d/2d, F.unfold/fold, nn.Conv*) against
explicit-loop NumPy references; gradients against central differences of those references."""
import itertools
import math
import re

import numpy as np
import pytest

import ember as em
import ember.nn as nn
import ember.nn.functional as F

EPS = 1e-6


def np_of(t):
    return t.detach().numpy()


# ----- references: explicit loops over output (or input) positions ------------------------


def _pairs(padding, k, d, nd):
    if padding == "valid":
        return [(0, 0)] * nd
    if padding == "same":
        tot = [dd * (kk - 1) for kk, dd in zip(k, d)]
        return [(t // 2, t - t // 2) for t in tot]
    p = (padding,) * nd if isinstance(padding, int) else padding
    return [(q, q) for q in p]


def _tup(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


def conv_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation: one dot product per output position and group."""
    nd = x.ndim - 2
    k = w.shape[2:]
    s, d = _tup(stride, nd), _tup(dilation, nd)
    pads = _pairs(padding, k, d, nd)
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    out_sp = [(xp.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(nd)]
    N, C = x.shape[:2]
    Co = w.shape[0]
    cg, og = C // groups, Co // groups
    y = np.zeros((N, Co) + tuple(out_sp))
    for pos in itertools.product(*(range(o) for o in out_sp)):
        win = tuple(slice(p * s[i], p * s[i] + d[i] * (k[i] - 1) + 1, d[i])
                    for i, p in enumerate(pos))
        for g in range(groups):
            patch = xp[(slice(None), slice(g * cg, (g + 1) * cg)) + win]
            wg = w[g * og:(g + 1) * og]
            y[(slice(None), slice(g * og, (g + 1) * og)) + pos] = np.tensordot(
                patch, wg, axes=(list(range(1, nd + 2)), list(range(1, nd + 2))))
    if b is not None:
        y += b.reshape((-1,) + (1,) * nd)
    return y


def conv_transpose_ref(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
    """Transposed convolution: every input pixel scatters ``x * w`` into the output."""
    nd = x.ndim - 2
    k = w.shape[2:]
    s, d = _tup(stride, nd), _tup(dilation, nd)
    p, op = _tup(padding, nd), _tup(output_padding, nd)
    N, Ci = x.shape[:2]
    og = w.shape[1]
    ig = Ci // groups
    full = [(x.shape[2 + i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 + op[i] for i in range(nd)]
    y = np.zeros((N, og * groups) + tuple(full))
    for pos in itertools.product(*(range(n) for n in x.shape[2:])):
        for off in itertools.product(*(range(kk) for kk in k)):
            at = tuple(pos[i] * s[i] + off[i] * d[i] for i in range(nd))
            for g in range(groups):
                contrib = x[(slice(None), slice(g * ig, (g + 1) * ig)) + pos] @ \
                    w[(slice(g * ig, (g + 1) * ig), slice(None)) + off]
                y[(slice(None), slice(g * og, (g + 1) * og)) + at] += contrib
    y = y[(slice(None), slice(None)) + tuple(slice(p[i], full[i] - p[i]) for i in range(nd))]
    if b is not None:
        y = y + b.reshape((-1,) + (1,) * nd)
    return y


def fd_grad(f, arrays, i, G):
    """Central differences of ``sum(f(*arrays) * G)`` with respect to ``arrays[i]``."""
    a = arrays[i]
    out = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + EPS
        hi = np.sum(f(*arrays) * G)
        a[idx] = old - EPS
        lo = np.sum(f(*arrays) * G)
        a[idx] = old
        out[idx] = (hi - lo) / (2 * EPS)
    return out


# ----- forward tables ------------------------------------------------------------------------

# (input shape, weight shape, kwargs)
CONV2D = [
    ((2, 3, 7, 6), (4, 3, 3, 3), {}),
    ((2, 3, 7, 6), (4, 3, 3, 3), {"padding": 1}),
    ((2, 3, 8, 7), (4, 3, 3, 3), {"stride": 2, "padding": 1}),
    ((2, 3, 8, 7), (4, 3, 2, 3), {"stride": (2, 1), "padding": (0, 2)}),
    ((2, 3, 9, 8), (4, 3, 3, 3), {"dilation": 2, "padding": 2}),
    ((2, 3, 9, 8), (4, 3, 3, 2), {"dilation": (2, 1), "stride": (1, 3)}),
    ((2, 4, 6, 6), (6, 2, 3, 3), {"groups": 2, "padding": 1}),
    ((2, 4, 6, 6), (8, 1, 3, 3), {"groups": 4, "stride": 2, "padding": 1}),  # depthwise x2
    ((2, 4, 6, 6), (4, 1, 3, 3), {"groups": 4, "padding": "same"}),          # depthwise
    ((2, 3, 7, 6), (4, 3, 3, 3), {"padding": "same"}),
    ((2, 3, 7, 6), (4, 3, 4, 2), {"padding": "same"}),                      # even: extra at end
    ((2, 3, 9, 8), (4, 3, 2, 3), {"padding": "same", "dilation": (3, 2)}),
    ((2, 3, 7, 6), (4, 3, 3, 3), {"padding": "valid"}),
    ((2, 3, 5, 4), (4, 3, 1, 1), {}),
    ((2, 3, 5, 4), (4, 3, 1, 1), {"stride": 2}),
    ((2, 3, 4, 5), (4, 3, 4, 5), {}),                                       # kernel == input
    ((1, 2, 5, 5), (3, 2, 3, 3), {"stride": 3, "padding": 2, "dilation": 2}),
]

CONV1D = [
    ((2, 3, 9), (4, 3, 3), {}),
    ((2, 3, 9), (4, 3, 3), {"padding": 2, "stride": 2}),
    ((2, 4, 10), (6, 2, 3), {"groups": 2, "dilation": 3, "padding": 1}),
    ((2, 4, 10), (4, 1, 5), {"groups": 4, "padding": "same"}),
    ((2, 3, 8), (4, 3, 4), {"padding": "same", "dilation": 2}),
    ((2, 3, 8), (4, 3, 1), {"stride": 3}),
]


def _case_id(case):
    xs, ws, kw = case
    return f"x{xs}-w{ws}-" + ",".join(f"{k}={v}" for k, v in kw.items())


def _run_conv(fn, xs, ws, kw, bias=True, dtype=np.float64):
    rng = np.random.default_rng(abs(hash((xs, ws))) % 2 ** 32)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if bias else None
    out = fn(em.tensor(x), em.tensor(w), None if b is None else em.tensor(b), **kw)
    return x, w, b, out


@pytest.mark.parametrize("case", CONV2D, ids=_case_id)
def test_conv2d_forward_matches_loop_reference(case):
    xs, ws, kw = case
    x, w, b, out = _run_conv(F.conv2d, xs, ws, kw)
    np.testing.assert_allclose(np_of(out), conv_ref(x, w, b, **kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV1D, ids=_case_id)
def test_conv1d_forward_matches_loop_reference(case):
    xs, ws, kw = case
    x, w, b, out = _run_conv(F.conv1d, xs, ws, kw)
    np.testing.assert_allclose(np_of(out), conv_ref(x, w, b, **kw), rtol=1e-12, atol=1e-12)


def test_conv3d_forward_matches_loop_reference():
    for kw in ({"padding": 1}, {"stride": (1, 2, 1), "padding": (1, 0, 1), "dilation": 1}):
        x, w, b, out = _run_conv(F.conv3d, (2, 2, 4, 5, 4), (3, 2, 2, 3, 2), kw)
        np.testing.assert_allclose(np_of(out), conv_ref(x, w, b, **kw), atol=1e-12)


def test_conv2d_float32_stays_float32():
    x, w, b, out = _run_conv(F.conv2d, (2, 3, 7, 6), (4, 3, 3, 3), {"padding": 1},
                             dtype=np.float32)
    assert out.dtype == em.float32
    np.testing.assert_allclose(np_of(out), conv_ref(x.astype(np.float64), w, b, padding=1),
                               rtol=1e-4, atol=1e-4)


def test_conv_without_bias_and_unbatched_input():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 5))
    w = rng.standard_normal((2, 3, 3, 3))
    out = F.conv2d(em.tensor(x), em.tensor(w), padding=1)
    assert out.shape == (2, 6, 5)
    np.testing.assert_allclose(np_of(out), conv_ref(x[None], w, padding=1)[0], atol=1e-12)
    x1 = rng.standard_normal((3, 7))
    out1 = F.conv1d(em.tensor(x1), em.tensor(w[:, :, 0]), stride=2)
    np.testing.assert_allclose(np_of(out1), conv_ref(x1[None], w[:, :, 0], stride=2)[0],
                               atol=1e-12)


# ----- gradients -----------------------------------------------------------------------------

GRAD_CASES = [
    (F.conv2d, (2, 2, 5, 4), (3, 2, 3, 3), {"padding": 1}),
    (F.conv2d, (1, 2, 6, 5), (3, 2, 3, 2), {"stride": 2, "padding": (1, 0)}),
    (F.conv2d, (1, 4, 5, 5), (4, 2, 2, 2), {"groups": 2, "dilation": 2, "padding": "same"}),
    (F.conv2d, (1, 3, 5, 4), (3, 1, 3, 3), {"groups": 3, "stride": (2, 1)}),
    (F.conv1d, (2, 2, 7), (3, 2, 3), {"stride": 2, "padding": 1, "dilation": 2}),
    (F.conv1d, (1, 2, 6), (2, 2, 4), {"padding": "same"}),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: _case_id(c[1:]))
def test_conv_gradients_match_finite_differences(case):
    fn, xs, ws, kw = case
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    tx, tw, tb = (em.tensor(a, requires_grad=True) for a in (x, w, b))
    y = fn(tx, tw, tb, **kw)
    G = rng.standard_normal(y.shape)
    y.backward(em.tensor(G))
    arrays = [x, w, b]
    ref = lambda x_, w_, b_: conv_ref(x_, w_, b_, **kw)  # noqa: E731
    for i, t in enumerate((tx, tw, tb)):
        np.testing.assert_allclose(np_of(t.grad), fd_grad(ref, arrays, i, G), rtol=1e-6,
                                   atol=1e-7)


def test_conv2d_second_order_gradients():
    # d/dw of <dL/dx, V> and d/dx of <dL/dw, V> (conv_transpose / conv_weight_grad
    # backward rules) against central differences of the first-order gradients
    rng = np.random.default_rng(3)
    kw = {"stride": 2, "padding": 1, "groups": 2}
    x, w = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((4, 2, 3, 3))
    G = rng.standard_normal((1, 4, 3, 3))
    V = rng.standard_normal(x.shape)
    U = rng.standard_normal(w.shape)

    def first(x_, w_):
        tx, tw = em.tensor(x_, requires_grad=True), em.tensor(w_, requires_grad=True)
        gx, gw = em.autograd.grad(F.conv2d(tx, tw, **kw), [tx, tw], em.tensor(G))
        return np_of(gx), np_of(gw)

    tx, tw = em.tensor(x, requires_grad=True), em.tensor(w, requires_grad=True)
    gx, gw = em.autograd.grad(F.conv2d(tx, tw, **kw), [tx, tw], em.tensor(G),
                              create_graph=True)
    s = (gx * em.tensor(V)).sum() + (gw * em.tensor(U)).sum()
    ddx, ddw = em.autograd.grad(s, [tx, tw])
    # dL/dx is linear in w and free of x; dL/dw is linear in x and free of w
    np.testing.assert_allclose(np_of(ddw), fd_grad(lambda x_, w_: first(x_, w_)[0], [x, w], 1, V),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_of(ddx), fd_grad(lambda x_, w_: first(x_, w_)[1], [x, w], 0, U),
                               rtol=1e-5, atol=1e-6)


# ----- transposed convolution ----------------------------------------------------------------

CONVT2D = [
    ((2, 3, 4, 5), (3, 2, 3, 3), {}),
    ((2, 3, 4, 5), (3, 2, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((2, 4, 3, 4), (4, 3, 3, 2), {"stride": (2, 3), "padding": (1, 0),
                                  "output_padding": (0, 2), "groups": 2, "dilation": (1, 2)}),
    ((2, 4, 3, 4), (4, 1, 2, 2), {"groups": 4, "stride": 2}),
    ((1, 2, 4, 4), (2, 3, 3, 3), {"dilation": 2, "output_padding": 1}),  # op < dilation
    ((1, 2, 3, 3), (2, 3, 4, 4), {"stride": 2, "padding": 1}),
]


@pytest.mark.parametrize("case", CONVT2D, ids=_case_id)
def test_conv_transpose2d_matches_scatter_reference(case):
    xs, ws, kw = case
    rng = np.random.default_rng(4)
    groups = kw.get("groups", 1)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[1] * groups)
    out = F.conv_transpose2d(em.tensor(x), em.tensor(w), em.tensor(b), **kw)
    np.testing.assert_allclose(np_of(out), conv_transpose_ref(x, w, b, **kw), atol=1e-12)


def test_conv_transpose1d_matches_scatter_reference():
    rng = np.random.default_rng(5)
    for kw in ({}, {"stride": 3, "padding": 1, "output_padding": 2, "groups": 2},
               {"dilation": 2, "stride": 2}):
        x, w = rng.standard_normal((2, 4, 5)), rng.standard_normal((4, 3, 3))
        out = F.conv_transpose1d(em.tensor(x), em.tensor(w), **kw)
        np.testing.assert_allclose(np_of(out), conv_transpose_ref(x, w, **kw), atol=1e-12)


@pytest.mark.parametrize("kw", [{"stride": 2, "padding": 1, "output_padding": 1},
                                {"groups": 2, "dilation": 2, "stride": 1}])
def test_conv_transpose2d_gradients_match_finite_differences(kw):
    rng = np.random.default_rng(6)
    x, w, b = rng.standard_normal((1, 4, 3, 3)), rng.standard_normal((4, 1, 3, 2)), \
        rng.standard_normal(kw.get("groups", 1))
    tx, tw, tb = (em.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv_transpose2d(tx, tw, tb, **kw)
    G = rng.standard_normal(y.shape)
    y.backward(em.tensor(G))
    ref = lambda x_, w_, b_: conv_transpose_ref(x_, w_, b_, **kw)  # noqa: E731
    for i, t in enumerate((tx, tw, tb)):
        np.testing.assert_allclose(np_of(t.grad), fd_grad(ref, [x, w, b], i, G), rtol=1e-6,
                                   atol=1e-7)


def test_conv_transpose_is_the_adjoint_of_conv():
    # <conv(x, w), y> == <x, conv_transpose(y, w)> when the sizes line up
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 3, 3))
    kw = {"stride": 2, "padding": 1, "groups": 2}
    y = conv_ref(x, w, **kw)
    v = rng.standard_normal(y.shape)
    back = F.conv_transpose2d(em.tensor(v), em.tensor(w), output_padding=(0, 1), **kw)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(y * v), np.sum(x * np_of(back)), rtol=1e-10)


# ----- unfold / fold -------------------------------------------------------------------------


def test_unfold_matches_patches_and_fold_sums_overlaps():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 6, 5))
    k, d, p, s = (2, 3), (2, 1), (1, 1), (2, 1)
    cols = np_of(F.unfold(em.tensor(x), k, dilation=d, padding=p, stride=s))
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    oh = (6 + 2 - 2 * 1 - 1) // 2 + 1
    ow = (5 + 2 - 1 * 2 - 1) // 1 + 1
    assert cols.shape == (2, 3 * 6, oh * ow)
    for i, j in itertools.product(range(oh), range(ow)):
        patch = xp[:, :, i * 2:i * 2 + 3:2, j:j + 3]
        np.testing.assert_array_equal(cols[:, :, i * ow + j], patch.reshape(2, -1))
    # fold is unfold's adjoint: <unfold(x), c> == <x, fold(c)>
    c = rng.standard_normal(cols.shape)
    folded = np_of(F.fold(em.tensor(c), (6, 5), k, dilation=d, padding=p, stride=s))
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * folded), rtol=1e-12)


def test_unfold_gradient_is_fold():
    x = em.tensor(np.random.default_rng(9).standard_normal((1, 2, 4, 4)), requires_grad=True)
    F.unfold(x, 3, padding=1).sum().backward()
    # each pixel is copied once per window that covers it
    cover = np.array([2, 3, 3, 2], float)
    np.testing.assert_allclose(np_of(x.grad)[0, 0], np.outer(cover, cover))


# ----- modules -------------------------------------------------------------------------------


def test_conv2d_module_shapes_init_and_state_dict():
    conv = nn.Conv2d(6, 8, (3, 5), groups=2)
    assert conv.weight.shape == (8, 3, 3, 5) and conv.bias.shape == (8,)
    assert list(conv.state_dict()) == ["weight", "bias"]
    bound = 1 / math.sqrt(3 * 3 * 5)
    w, b = np_of(conv.weight), np_of(conv.bias)
    assert np.abs(w).max() <= bound and w.std() > bound / 2.5
    assert np.abs(b).max() <= bound
    convt = nn.ConvTranspose2d(6, 8, 3, groups=2, bias=False)
    assert convt.weight.shape == (6, 4, 3, 3) and convt.bias is None
    assert np.abs(np_of(convt.weight)).max() <= 1 / math.sqrt(4 * 9)


def test_conv_module_forward_uses_functional_semantics():
    conv = nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2).double()
    x = np.random.default_rng(10).standard_normal((2, 4, 11))
    ref = conv_ref(x, np_of(conv.weight), np_of(conv.bias), stride=2, padding=1, dilation=2,
                   groups=2)
    np.testing.assert_allclose(np_of(conv(em.tensor(x))), ref, atol=1e-12)


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("replicate", "edge"),
                                          ("circular", "wrap")])
def test_conv2d_padding_modes(mode, np_mode):
    conv = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode=mode).double()
    x = np.random.default_rng(11).standard_normal((2, 2, 5, 6))
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (2, 2)], mode=np_mode)
    ref = conv_ref(xp, np_of(conv.weight), np_of(conv.bias))
    np.testing.assert_allclose(np_of(conv(em.tensor(x))), ref, atol=1e-12)


def test_conv_same_padding_with_padding_mode_pads_asymmetrically():
    conv = nn.Conv1d(1, 1, 4, padding="same", padding_mode="replicate", bias=False).double()
    x = np.arange(6.0).reshape(1, 1, 6)
    xp = np.pad(x, [(0, 0), (0, 0), (1, 2)], mode="edge")
    np.testing.assert_allclose(np_of(conv(em.tensor(x))), conv_ref(xp, np_of(conv.weight)),
                               atol=1e-12)


def test_conv_transpose_module_output_size():
    convt = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    x = em.randn(1, 2, 4, 4, dtype=em.float64)
    assert convt(x).shape == (1, 3, 7, 7)
    y = convt(x, output_size=(8, 8))
    assert y.shape == (1, 3, 8, 8)
    ref = conv_transpose_ref(np_of(x), np_of(convt.weight), np_of(convt.bias), stride=2,
                             padding=1, output_padding=1)
    np.testing.assert_allclose(np_of(y), ref, atol=1e-12)
    with pytest.raises(ValueError, match="valid sizes range from 7 to 8"):
        convt(x, output_size=(9, 9))


@pytest.mark.parametrize("module,text", [
    (lambda: nn.Conv2d(3, 16, 3), "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1))"),
    (lambda: nn.Conv2d(3, 16, (3, 5), stride=2, padding=1, dilation=2, bias=False,
                       padding_mode="reflect"),
     "Conv2d(3, 16, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), dilation=(2, 2), "
     "bias=False, padding_mode=reflect)"),
    (lambda: nn.Conv1d(4, 8, 3, padding="same"),
     "Conv1d(4, 8, kernel_size=(3,), stride=(1,), padding=same)"),
    (lambda: nn.ConvTranspose2d(4, 8, 3, stride=2, output_padding=1, groups=2),
     "ConvTranspose2d(4, 8, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1), "
     "groups=2)"),
])
def test_conv_module_repr_matches_pytorch(module, text):
    assert repr(module()) == text


# ----- errors --------------------------------------------------------------------------------


def test_channel_mismatch_error_names_weight_and_input():
    with pytest.raises(RuntimeError, match=re.escape(
            "conv2d: expected input with 3 channels (weight (16, 3, 3, 3)), got shape "
            "(8, 4, 28, 28)")):
        F.conv2d(em.zeros(8, 4, 28, 28), em.zeros(16, 3, 3, 3))


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: F.conv2d(em.zeros(3, 5), em.zeros(4, 3, 3, 3)), RuntimeError,
     r"conv2d: expected a 3-d \(unbatched\) or 4-d \(batched\) input \(C, H, W\) or "
     r"\(N, C, H, W\), got shape \(3, 5\)"),
    (lambda: F.conv2d(em.zeros(1, 2, 3, 4, 5, 6), em.zeros(4, 2, 3, 3)), RuntimeError,
     r"conv2d: expected a 3-d \(unbatched\) or 4-d \(batched\) input"),
    (lambda: F.conv1d(em.zeros(2, 3, 5), em.zeros(4, 3, 3, 3)), RuntimeError,
     r"conv1d: expected a 3-d weight, got \(4, 3, 3, 3\)"),
    (lambda: F.conv2d(em.zeros(1, 3, 2, 2), em.zeros(4, 3, 3, 3)), RuntimeError,
     r"conv2d: kernel size \(3, 3\).*larger than the padded input \(2, 2\)"),
    (lambda: F.conv2d(em.zeros(1, 3, 5, 5), em.zeros(4, 3, 2, 2), dilation=5), RuntimeError,
     r"dilated extent \(6, 6\)"),
    (lambda: F.conv2d(em.zeros(1, 4, 5, 5), em.zeros(6, 1, 3, 3), groups=4), RuntimeError,
     r"out channels 6 .* divisible by groups=4"),
    (lambda: F.conv2d(em.zeros(1, 4, 5, 5), em.zeros(4, 2, 3, 3), groups=3), RuntimeError,
     r"expected input with 6 channels"),
    (lambda: F.conv2d(em.zeros(1, 3, 5, 5), em.zeros(4, 3, 3, 3), stride=2, padding="same"),
     ValueError, r"padding='same' is not supported for strided"),
    (lambda: F.conv2d(em.zeros(1, 3, 5, 5), em.zeros(4, 3, 3, 3), padding="full"),
     ValueError, r"invalid padding string 'full'"),
    (lambda: F.conv2d(em.zeros(1, 3, 5, 5), em.zeros(4, 3, 3, 3), em.zeros(3)), RuntimeError,
     r"expected bias of shape \(4,\)"),
    (lambda: F.conv2d(em.zeros(1, 3, 5, 5, dtype=em.float64), em.zeros(4, 3, 3, 3)),
     TypeError, r"input dtype \S*float64 and weight dtype \S*float32 differ"),
    (lambda: F.conv2d(em.zeros(1, 3, 5, 5), em.zeros(4, 3, 3, 3), stride=0), ValueError,
     r"stride must be >= 1"),
    (lambda: F.conv_transpose2d(em.zeros(1, 3, 5, 5), em.zeros(4, 2, 3, 3)), RuntimeError,
     r"conv_transpose2d: expected input with 4 channels"),
    (lambda: F.conv_transpose2d(em.zeros(1, 4, 5, 5), em.zeros(4, 2, 3, 3), stride=2,
                                output_padding=2), ValueError,
     r"output_padding \(2, 2\) must be smaller than either stride"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, r"out_channels \(6\) must be divisible"),
    (lambda: nn.Conv2d(4, 6, 3, padding_mode="mirror"), ValueError, "padding_mode"),
    (lambda: nn.ConvTranspose2d(4, 6, 3, padding_mode="reflect"), ValueError, "zeros"),
])
def test_bad_conv_arguments_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


# ----- against PyTorch, when it is installed -------------------------------------------------


@pytest.mark.parametrize("kw", [{"stride": 2, "padding": 1},
                                {"padding": "same", "dilation": 2, "groups": 2}])
def test_conv2d_matches_torch(kw):
    torch = pytest.importorskip("torch")
    conv = nn.Conv2d(4, 6, 3, **kw).double()
    tconv = torch.nn.Conv2d(4, 6, 3, **kw).double()
    tconv.load_state_dict({k: torch.tensor(np_of(v)) for k, v in conv.state_dict().items()})
    x = np.random.default_rng(12).standard_normal((2, 4, 9, 8))
    tx = torch.tensor(x, requires_grad=True)
    ex = em.tensor(x, requires_grad=True)
    ty, ey = tconv(tx), conv(ex)
    np.testing.assert_allclose(np_of(ey), ty.detach().numpy(), atol=1e-12)
    ty.sum().backward()
    ey.sum().backward()
    np.testing.assert_allclose(np_of(ex.grad), tx.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(np_of(conv.weight.grad), tconv.weight.grad.numpy(), atol=1e-10)


def test_conv_transpose2d_matches_torch():
    torch = pytest.importorskip("torch")
    m = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2).double()
    tm = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1,
                                  groups=2).double()
    tm.load_state_dict({k: torch.tensor(np_of(v)) for k, v in m.state_dict().items()})
    x = np.random.default_rng(13).standard_normal((2, 4, 5, 4))
    np.testing.assert_allclose(np_of(m(em.tensor(x))), tm(torch.tensor(x)).detach().numpy(),
                               atol=1e-12)



def test_results_do_not_depend_on_reused_scratch_buffers():
    # kernels reuse scratch arrays between calls; a run that fills them with other data
    # first must not change any result
    from ember.ops import conv as conv_ops
    rng = np.random.default_rng(14)

    def run(xs, ws, kw, seed):
        r = np.random.default_rng(seed)
        x = em.tensor(r.standard_normal(xs), requires_grad=True)
        w = em.tensor(r.standard_normal(ws), requires_grad=True)
        y = F.conv2d(x, w, **kw)
        y.backward(em.tensor(r.standard_normal(y.shape)))
        t = F.conv_transpose2d(y.detach(), w.detach(), **kw)
        return [np_of(a) for a in (y, x.grad, w.grad, t)]

    cases = [c for c in CONV2D if not isinstance(c[2].get("padding"), str)]
    for xs, ws, kw in cases:
        conv_ops._ws.arrays.clear()
        conv_ops._ws.nbytes = 0
        fresh = run(xs, ws, kw, 1)
        for other in cases:  # fill the scratch buffers with other shapes' garbage
            run(*other, seed=int(rng.integers(100)))
        again = run(xs, ws, kw, 1)
        for a, b in zip(fresh, again):
            np.testing.assert_array_equal(a, b)
