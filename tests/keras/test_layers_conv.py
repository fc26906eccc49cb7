"""Convolution and pooling layers against direct NumPy loops with TensorFlow's padding rules
("same": the odd pixel after; "causal": all before), plus finite-difference gradients."""
import numpy as np
import pytest

import ember
from ember.keras import layers as L
from finite_differences import numeric_grads  # noqa: E402

RNG = np.random.default_rng(0)


def _pads(n, k, s, d, padding):
    k_eff = d * (k - 1) + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return k_eff - 1, 0
    out = -(-n // s)
    total = max((out - 1) * s + k_eff - n, 0)
    return total // 2, total - total // 2


def ref_conv(x, k, b=None, strides=1, padding="valid", dilation=1, groups=1):
    """Channels-last cross-correlation by a loop over kernel offsets; k is (*ks, C/g, F)."""
    rank = x.ndim - 2
    ks = k.shape[:rank]
    s = (strides,) * rank if np.isscalar(strides) else strides
    d = (dilation,) * rank if np.isscalar(dilation) else dilation
    pads = [_pads(n, kk, ss, dd, padding) for n, kk, ss, dd in zip(x.shape[1:-1], ks, s, d)]
    xp = np.pad(x, [(0, 0)] + pads + [(0, 0)])
    out_sp = [(n - (dd * (kk - 1) + 1)) // ss + 1 for n, kk, ss, dd in
              zip(xp.shape[1:-1], ks, s, d)]
    cg, f = k.shape[-2], k.shape[-1]
    fg = f // groups
    out = np.zeros((x.shape[0], *out_sp, f))
    for off in np.ndindex(*ks):
        win = xp[(slice(None),) + tuple(slice(o * dd, o * dd + ss * (m - 1) + 1, ss)
                                        for o, dd, ss, m in zip(off, d, s, out_sp))]
        for g in range(groups):
            out[..., g * fg:(g + 1) * fg] += win[..., g * cg:(g + 1) * cg] @ \
                k[off][:, g * fg:(g + 1) * fg]
    return out if b is None else out + b


def ref_conv_transpose(x, k, b, strides, padding, output_padding=None):
    """Scatter each input pixel through the kernel (*ks, F, C), then crop as TensorFlow does
    (the transposed op is the gradient of a forward convolution of the output size)."""
    rank = x.ndim - 2
    ks = k.shape[:rank]
    s = (strides,) * rank if np.isscalar(strides) else strides
    full_sp = [(n - 1) * ss + kk for n, ss, kk in zip(x.shape[1:-1], s, ks)]
    full = np.zeros((x.shape[0], *full_sp, k.shape[-2]))
    for idx in np.ndindex(*x.shape[1:-1]):
        for off in np.ndindex(*ks):
            pos = tuple(i * ss + o for i, ss, o in zip(idx, s, off))
            full[(slice(None),) + pos] += x[(slice(None),) + idx] @ k[off].T
    out_sp = []
    for n, kk, ss, i in zip(x.shape[1:-1], ks, s, range(rank)):
        if output_padding is None:
            out_sp.append(n * ss + max(kk - ss, 0) if padding == "valid" else n * ss)
        else:
            pad = kk // 2 if padding == "same" else 0
            out_sp.append((n - 1) * ss + kk - 2 * pad + output_padding[i])
    out = np.zeros((x.shape[0], *out_sp, k.shape[-2]))
    sl_out, sl_full = [slice(None)], [slice(None)]
    for n_full, n_out, kk, ss in zip(full_sp, out_sp, ks, s):
        before = _pads(n_out, kk, ss, 1, "same")[0] if padding == "same" else 0
        m = min(n_full - before, n_out)
        sl_out.append(slice(0, m))
        sl_full.append(slice(before, before + m))
    out[tuple(sl_out)] = full[tuple(sl_full)]
    return out + b


def run(layer, x):
    y = layer(x)
    return y.detach().numpy(), [w.detach().numpy().astype(np.float64) for w in layer.weights]


CONV_CASES = [
    ("conv2d valid", lambda: L.Conv2D(4, 3), (2, 6, 7, 3), {}),
    ("conv2d same s2", lambda: L.Conv2D(4, 3, strides=2, padding="same"), (2, 7, 6, 3),
     {"strides": 2, "padding": "same"}),
    ("conv2d same even k", lambda: L.Conv2D(2, (2, 4), strides=(1, 2), padding="same"),
     (1, 5, 9, 2), {"strides": (1, 2), "padding": "same"}),
    ("conv2d dilated", lambda: L.Conv2D(3, 3, dilation_rate=2, padding="same"), (1, 7, 7, 2),
     {"dilation": 2, "padding": "same"}),
    ("conv2d groups", lambda: L.Conv2D(4, 3, groups=2), (1, 5, 5, 4), {"groups": 2}),
    ("conv1d causal", lambda: L.Conv1D(3, 3, padding="causal", dilation_rate=2), (2, 8, 2),
     {"padding": "causal", "dilation": 2}),
    ("conv1d same s2", lambda: L.Conv1D(3, 4, strides=2, padding="same"), (2, 9, 2),
     {"strides": 2, "padding": "same"}),
    ("conv3d", lambda: L.Conv3D(2, 2), (1, 3, 4, 3, 2), {}),
]


@pytest.mark.parametrize("name,make,shape,kw", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv_matches_numpy(name, make, shape, kw):
    x = RNG.standard_normal(shape).astype(np.float32)
    layer = make()
    y, (k, b) = run(layer, x)
    ref = ref_conv(x.astype(np.float64), k, b, **kw)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    assert layer.compute_output_shape((None,) + shape[1:]) == (None,) + ref.shape[1:]
    assert layer.count_params() == k.size + b.size


def test_conv_channels_first_equals_channels_last():
    x = RNG.standard_normal((2, 6, 5, 3)).astype(np.float32)
    last = L.Conv2D(4, 3, padding="same")
    first = L.Conv2D(4, 3, padding="same", data_format="channels_first")
    y_last = last(x).detach().numpy()
    first(x.transpose(0, 3, 1, 2))
    first.set_weights(last.get_weights())
    y_first = first(x.transpose(0, 3, 1, 2)).detach().numpy()
    np.testing.assert_allclose(y_first.transpose(0, 2, 3, 1), y_last, rtol=1e-5, atol=1e-6)
    assert first.compute_output_shape((None, 3, 6, 5)) == (None, 4, 6, 5)


TRANSPOSE_CASES = [("valid", 1, 3, None), ("valid", 2, 3, None), ("valid", 3, 2, None),
                   ("same", 1, 3, None), ("same", 2, 3, None), ("same", 2, 4, None),
                   ("same", 2, 3, (1, 1)), ("valid", 2, 3, (1, 0))]


@pytest.mark.parametrize("padding,s,k,op", TRANSPOSE_CASES)
def test_conv2d_transpose_matches_numpy(padding, s, k, op):
    x = RNG.standard_normal((2, 3, 4, 2)).astype(np.float32)
    layer = L.Conv2DTranspose(3, k, strides=s, padding=padding, output_padding=op)
    y, (kern, b) = run(layer, x)
    assert kern.shape == (k, k, 3, 2)  # Keras's (kh, kw, filters, in)
    ref = ref_conv_transpose(x.astype(np.float64), kern, b, s, padding, op)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    assert layer.compute_output_shape((None, 3, 4, 2)) == (None,) + ref.shape[1:]


def test_depthwise_and_separable_match_numpy():
    x = RNG.standard_normal((2, 6, 5, 3)).astype(np.float32)
    dw = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")
    y, (k, b) = run(dw, x)
    assert k.shape == (3, 3, 3, 2)
    xs = x.astype(np.float64)
    ref = np.concatenate([ref_conv(xs[..., c:c + 1], k[:, :, c:c + 1, :], padding="same")
                          for c in range(3)], -1) + b  # channel c*mult + m
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)

    sep = L.SeparableConv2D(4, 3, depth_multiplier=2, strides=2)
    y, (dk, pk, b) = run(sep, x)
    assert pk.shape == (1, 1, 6, 4)
    depth = np.concatenate([ref_conv(xs[..., c:c + 1], dk[:, :, c:c + 1, :], strides=2)
                            for c in range(3)], -1)
    np.testing.assert_allclose(y, depth @ pk[0, 0] + b, rtol=1e-4, atol=1e-5)
    assert sep.compute_output_shape((None, 6, 5, 3)) == (None, 2, 2, 4)


def test_conv_gradients_match_finite_differences():
    x = RNG.standard_normal((1, 4, 5, 2))
    layer = L.Conv2D(2, 3, strides=2, padding="same", activation="tanh", dtype="float64")
    xt = ember.tensor(x, requires_grad=True)
    y = layer(xt)
    r = RNG.standard_normal(tuple(y.shape))
    (y * ember.tensor(r)).sum().backward()
    k, b = layer.get_weights()
    num = numeric_grads(lambda xx, kk, bb: float((np.tanh(
        ref_conv(xx, kk, bb, 2, "same")) * r).sum()), x, k, b)
    for got, n in zip([xt.grad, layer.kernel.grad, layer.bias.grad], num):
        np.testing.assert_allclose(got.numpy(), n, rtol=1e-5, atol=1e-8)


def test_conv_transpose_gradients_match_finite_differences():
    x = RNG.standard_normal((1, 2, 3, 2))
    layer = L.Conv2DTranspose(2, 3, strides=2, padding="same", dtype="float64")
    xt = ember.tensor(x, requires_grad=True)
    y = layer(xt)
    r = RNG.standard_normal(tuple(y.shape))
    (y * ember.tensor(r)).sum().backward()
    k, b = layer.get_weights()
    num = numeric_grads(lambda xx, kk, bb: float((ref_conv_transpose(
        xx, kk, bb, 2, "same") * r).sum()), x, k, b)
    for got, n in zip([xt.grad, layer.kernel.grad, layer.bias.grad], num):
        np.testing.assert_allclose(got.numpy(), n, rtol=1e-5, atol=1e-8)


def test_conv_errors_name_the_layer_and_shapes():
    layer = L.Conv2D(2, 3)
    layer(np.ones((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"conv2d.*ndim=4.*3 channels.*\(1, 5, 5, 4\)"):
        layer(np.ones((1, 5, 5, 4), np.float32))
    with pytest.raises(ValueError, match="smaller than the .*kernel"):
        L.Conv2D(2, 5)(np.ones((1, 3, 3, 1), np.float32))
    with pytest.raises(ValueError, match="dilation_rate"):
        L.Conv2D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="padding"):
        L.Conv2D(2, 3, padding="causal")


def ref_pool(x, k, s, padding, kind):
    """Max/mean over each window's real cells (TensorFlow: padding is never counted)."""
    rank = x.ndim - 2
    pads = [_pads(n, kk, ss, 1, padding) for n, kk, ss in zip(x.shape[1:-1], k, s)]
    out_sp = [-(-n // ss) if padding == "same" else (n - kk) // ss + 1
              for n, kk, ss in zip(x.shape[1:-1], k, s)]
    out = np.zeros((x.shape[0], *out_sp, x.shape[-1]))
    for idx in np.ndindex(*out_sp):
        sl = tuple(slice(max(i * ss - lo, 0), min(i * ss - lo + kk, n)) for i, ss, kk, (lo, _), n
                   in zip(idx, s, k, pads, x.shape[1:-1]))
        win = x[(slice(None),) + sl]
        axes = tuple(range(1, rank + 1))
        out[(slice(None),) + idx] = win.max(axes) if kind == "max" else win.mean(axes)
    return out


POOL_CASES = [
    (L.MaxPooling2D, {}, (2, 2), (2, 2), "valid", "max"),
    (L.MaxPooling2D, {"pool_size": 3, "strides": 2, "padding": "same"}, (3, 3), (2, 2), "same",
     "max"),
    (L.AveragePooling2D, {"pool_size": 3, "strides": 1}, (3, 3), (1, 1), "valid", "avg"),
    (L.AveragePooling2D, {"pool_size": 3, "strides": 2, "padding": "same"}, (3, 3), (2, 2),
     "same", "avg"),
    (L.MaxPooling1D, {"pool_size": 2, "padding": "same"}, (2,), (2,), "same", "max"),
    (L.AveragePooling1D, {"pool_size": 3, "strides": 2, "padding": "same"}, (3,), (2,), "same",
     "avg"),
]


@pytest.mark.parametrize("cls,kw,k,s,padding,kind", POOL_CASES)
def test_pooling_matches_numpy(cls, kw, k, s, padding, kind):
    shape = (2, 7, 6, 3) if len(k) == 2 else (2, 7, 3)
    x = RNG.standard_normal(shape).astype(np.float32)
    layer = cls(**kw)
    ref = ref_pool(x.astype(np.float64), k, s, padding, kind)
    np.testing.assert_allclose(layer(x).numpy(), ref, rtol=1e-5, atol=1e-6)
    assert layer.compute_output_shape((None,) + shape[1:]) == (None,) + ref.shape[1:]


def test_average_pooling_same_gradient_matches_finite_differences():
    x = RNG.standard_normal((1, 5, 4, 2))
    xt = ember.tensor(x, requires_grad=True)
    y = L.AveragePooling2D(3, 2, padding="same", dtype="float64")(xt)
    r = RNG.standard_normal(tuple(y.shape))
    (y * ember.tensor(r)).sum().backward()
    (num,) = numeric_grads(lambda xx: float((ref_pool(xx, (3, 3), (2, 2), "same", "avg") *
                                             r).sum()), x)
    np.testing.assert_allclose(xt.grad.numpy(), num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cls,axes", [(L.GlobalAveragePooling2D, (1, 2)),
                                      (L.GlobalMaxPooling2D, (1, 2)),
                                      (L.GlobalAveragePooling1D, (1,)),
                                      (L.GlobalMaxPooling1D, (1,))])
def test_global_pooling(cls, axes):
    shape = (2, 4, 5, 3) if len(axes) == 2 else (2, 4, 3)
    x = RNG.standard_normal(shape).astype(np.float32)
    ref = x.mean(axes) if "Average" in cls.__name__ else x.max(axes)
    np.testing.assert_allclose(cls()(x).numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(cls(keepdims=True)(x).numpy(), np.expand_dims(ref, axes),
                               rtol=1e-6)
    assert cls().compute_output_shape((None,) + shape[1:]) == (None, 3)
    assert cls(keepdims=True).compute_output_shape((None,) + shape[1:]) == \
        (None,) + (1,) * len(axes) + (3,)


def test_global_average_pooling_1d_ignores_masked_steps():
    x = RNG.standard_normal((2, 4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    y = L.GlobalAveragePooling1D()(x, mask=mask).numpy()
    np.testing.assert_allclose(y[0], x[0, :2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(y[1], x[1].mean(0), rtol=1e-6)


def test_pooling_errors():
    with pytest.raises(ValueError, match="max_pooling2d.*ndim=4"):
        L.MaxPooling2D()(np.ones((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="pool_size"):
        L.MaxPooling2D(pool_size=(2, 2, 2))
