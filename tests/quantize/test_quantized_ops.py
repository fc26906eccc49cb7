"""ember.ops.quantized against NumPy references written with int64 integer arithmetic."""
import numpy as np
import pytest

import ember as em
from ember.ops import quantized as Q

rng = np.random.default_rng(0)


def t(a):
    return em.tensor(np.asarray(a))


def ref_dynamic_params(x):
    """ONNX DynamicQuantizeLinear's formula, in float32."""
    lo = np.float32(min(x.min(), 0))
    hi = np.float32(max(x.max(), 0))
    scale = np.float32((hi - lo) / np.float32(255))
    if scale == 0:
        scale = np.float32(1)
    zp = int(np.clip(np.rint(-lo / scale), 0, 255))
    return scale, zp


def ref_quant(x, scale, zp, lo=0, hi=255):
    return np.clip(np.rint(x / scale) + zp, lo, hi).astype(np.int64)


def ref_weight(w):
    s = (np.abs(w).reshape(len(w), -1).max(1) / np.float32(127)).astype(np.float32)
    s[s == 0] = 1
    q = np.clip(np.rint(w / s.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127)
    return q.astype(np.int64), s


def ref_conv2d_int(x, w, pad):
    """Direct int64 cross-correlation (N, C, H, W) * (O, C, kh, kw), zero padding."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    out = np.zeros((N, O, H - kh + 1, W - kw + 1), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + out.shape[2], j:j + out.shape[3]]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out


@pytest.mark.parametrize("x", [
    rng.standard_normal((4, 7)).astype(np.float32),
    np.abs(rng.standard_normal((3, 5))).astype(np.float32) + 1,      # all positive
    -np.abs(rng.standard_normal((3, 5))).astype(np.float32) - 0.5,   # all negative
    np.zeros((2, 3), np.float32),                                    # scale falls back to 1
])
def test_dynamic_quantize_linear_matches_onnx_formula(x):
    q, s, z = Q.dynamic_quantize_linear(t(x))
    scale, zp = ref_dynamic_params(x)
    assert s.item() == pytest.approx(float(scale), rel=1e-7)
    assert int(z.item()) == zp
    assert q.dtype == em.uint8
    np.testing.assert_array_equal(q.numpy(), ref_quant(x, scale, zp))


def test_quantize_dequantize_per_channel_axis():
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    scale = np.array([0.01, 0.02, 0.05], np.float32)
    zp = np.array([-3, 0, 5], np.int8)
    q = Q.quantize_linear(t(x), t(scale), t(zp), axis=1)
    ref = np.clip(np.rint(x / scale[None, :, None]) + zp[None, :, None], -128, 127)
    np.testing.assert_array_equal(q.numpy(), ref)
    back = Q.dequantize_linear(q, t(scale), t(zp), axis=1).numpy()
    np.testing.assert_allclose(back, (ref - zp[None, :, None]) * scale[None, :, None],
                               rtol=1e-6)


def test_quantize_rounds_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5], np.float32)
    q = Q.quantize_linear(t(x), t(np.float32(1)), t(np.int8(0)), axis=0)
    np.testing.assert_array_equal(q.numpy(), [0, 2, 2, 0, -2])


@pytest.mark.parametrize("shape,K", [((5,), 16), ((3, 40), 40), ((2, 3, 600), 600),
                                     ((4, 1100), 1100)])
def test_dynamic_quantized_linear_exact_integer_arithmetic(shape, K):
    # K > 518 takes several exact float32 blocks; the result must still be the int64 one
    x = rng.standard_normal(shape[:-1] + (K,)).astype(np.float32) * 3
    w = rng.standard_normal((9, K)).astype(np.float32)
    b = rng.standard_normal(9).astype(np.float32)
    qw, ws = ref_weight(w)
    y = Q.dynamic_quantized_linear(t(x), t(qw.astype(np.int8)), t(ws), t(b)).numpy()
    scale, zp = ref_dynamic_params(x)
    acc = (ref_quant(x, scale, zp) - zp) @ qw.T
    ref = acc.astype(np.float32) * (scale * ws).astype(np.float32) + b
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    # and it approximates the float layer to within the quantisation error
    bound = (K * (scale / 2 * np.abs(w).max() + np.abs(x).max() * ws.max() / 2))
    assert np.abs(y - (x @ w.T + b)).max() < bound


@pytest.mark.parametrize("C,k,pad,groups", [(3, 3, 1, 1), (80, 3, 0, 1), (4, 1, 0, 2)])
def test_dynamic_quantized_conv_exact(C, k, pad, groups):
    # C=80, k=3: 720 products per output -> the channel-blocked exact path
    x = rng.standard_normal((2, C, 6, 5)).astype(np.float32)
    w = rng.standard_normal((6, C // groups, k, k)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    qw, ws = ref_weight(w)
    y = Q.dynamic_quantized_conv(t(x), t(qw.astype(np.int8)), t(ws), t(b), padding=pad,
                                 groups=groups).numpy()
    scale, zp = ref_dynamic_params(x)
    a = ref_quant(x, scale, zp) - zp
    if groups == 1:
        acc = ref_conv2d_int(a, qw, pad)
    else:
        half = C // groups
        acc = np.concatenate([ref_conv2d_int(a[:, g * half:(g + 1) * half],
                                             qw[3 * g:3 * (g + 1)], pad) for g in range(2)], 1)
    ref = acc.astype(np.float32) * (scale * ws).astype(np.float32)[:, None, None] + \
        b[:, None, None]
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)


def test_static_quantized_linear_matches_integer_reference():
    x = rng.standard_normal((5, 30)).astype(np.float32)
    w = rng.standard_normal((7, 30)).astype(np.float32) * 0.2
    bq = rng.integers(-500, 500, 7).astype(np.int32)
    qw, ws = ref_weight(w)
    xs, xz, ys, yz = np.float32(0.03), 120, np.float32(0.05), 100
    y = Q.quantized_linear(t(x), t(qw.astype(np.int8)), t(ws), t(xs), t(np.uint8(xz)), t(ys),
                           t(np.uint8(yz)), t(bq), relu=True).numpy()
    acc = (ref_quant(x, xs, xz) - xz) @ qw.T + bq
    real = np.maximum(acc.astype(np.float32) * (xs * ws).astype(np.float32), 0)
    ref = (ref_quant(real, ys, yz) - yz).astype(np.float32) * ys
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-7)
    # the output lies on the uint8 grid of (ys, yz), and relu clipped it at 0
    grid = y / ys + yz
    np.testing.assert_allclose(grid, np.rint(grid), atol=1e-3)
    assert y.min() >= 0


def test_static_quantized_conv_matches_integer_reference():
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32) * 0.3
    bq = rng.integers(-300, 300, 3).astype(np.int32)
    qw, ws = ref_weight(w)
    xs, xz, ys, yz = np.float32(0.02), 128, np.float32(0.1), 90
    y = Q.quantized_conv(t(x), t(qw.astype(np.int8)), t(ws), t(xs), t(np.uint8(xz)), t(ys),
                         t(np.uint8(yz)), t(bq), padding=1).numpy()
    acc = ref_conv2d_int(ref_quant(x, xs, xz) - xz, qw, 1) + bq[:, None, None]
    real = acc.astype(np.float32) * (xs * ws).astype(np.float32)[:, None, None]
    ref = (ref_quant(real, ys, yz) - yz).astype(np.float32) * ys
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("adt,bdt,azp,bzp", [
    (np.uint8, np.int8, 3, None), (np.uint8, np.uint8, 128, 100), (np.int8, np.int8, -5, 7),
])
def test_matmul_integer(adt, bdt, azp, bzp):
    ai, bi = np.iinfo(adt), np.iinfo(bdt)
    a = rng.integers(ai.min, ai.max + 1, (2, 3, 700)).astype(adt)
    b = rng.integers(bi.min, bi.max + 1, (700, 4)).astype(bdt)
    out = Q.matmul_integer(t(a), t(b), t(adt(azp)), None if bzp is None else t(bdt(bzp)))
    ref = (a.astype(np.int64) - azp) @ (b.astype(np.int64) - (bzp or 0))
    assert out.dtype == em.int32
    np.testing.assert_array_equal(out.numpy(), ref)


def test_conv_integer_per_channel_weight_zero_point():
    x = rng.integers(0, 256, (1, 2, 4, 4)).astype(np.uint8)
    w = rng.integers(-128, 128, (3, 2, 2, 2)).astype(np.int8)
    wz = np.array([1, -2, 0], np.int8)
    out = Q.conv_integer(t(x), t(w), t(np.uint8(10)), t(wz), padding=1)
    ref = ref_conv2d_int(x.astype(np.int64) - 10, w.astype(np.int64) -
                         wz[:, None, None, None], 1)
    # padding is the zero point: the centred input is padded with 0
    np.testing.assert_array_equal(out.numpy(), ref)


@pytest.mark.parametrize("call,match", [
    (lambda: Q.dynamic_quantized_linear(t(np.zeros((2, 3), np.float64)),
                                        t(np.zeros((4, 3), np.int8)),
                                        t(np.ones(4, np.float32))), "float32 input"),
    (lambda: Q.dynamic_quantized_linear(t(np.zeros((2, 5), np.float32)),
                                        t(np.zeros((4, 3), np.int8)),
                                        t(np.ones(4, np.float32))), "expects 3 features"),
    (lambda: Q.dynamic_quantized_linear(t(np.zeros((2, 3), np.float32)),
                                        t(np.zeros((4, 3), np.float32)),
                                        t(np.ones(4, np.float32))), "qweight must be int8"),
    (lambda: Q.dynamic_quantized_linear(t(np.zeros((2, 3), np.float32)),
                                        t(np.zeros((4, 3), np.int8)),
                                        t(np.ones(3, np.float32))), r"weight_scale must have"),
    (lambda: Q.dynamic_quantized_conv(t(np.zeros((1, 2, 4, 4), np.float32)),
                                      t(np.zeros((3, 3, 1, 1), np.int8)),
                                      t(np.ones(3, np.float32))), "expects 3"),
    (lambda: Q.quantize_linear(t(np.zeros((2, 3), np.float32)), t(np.ones(2, np.float32)),
                               t(np.zeros(2, np.uint8)), axis=1), "does not match dim 1"),
    (lambda: Q.matmul_integer(t(np.zeros((2, 3), np.uint8)), t(np.zeros((4, 2), np.int8))),
     "can't be multiplied"),
])
def test_bad_input_errors_name_op_and_shapes(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()
