"""ember.quantize.dynamic / prepare / convert / static on whole models, checked against NumPy
references of the quantisation arithmetic and against the float model."""
import os

import numpy as np
import pytest

import ember as em
import ember.nn as nn
import ember.quantize as quant

rng = np.random.default_rng(1)


def np_(x):
    return x.detach().numpy()


def ref_weight(w):
    s = (np.abs(w).reshape(len(w), -1).max(1) / np.float32(127)).astype(np.float32)
    s[s == 0] = 1
    q = np.clip(np.rint(w / s.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127)
    return q.astype(np.int64), s


def ref_dynamic_linear(x, w, b):
    lo, hi = np.float32(min(x.min(), 0)), np.float32(max(x.max(), 0))
    scale = np.float32((hi - lo) / np.float32(255))
    zp = np.clip(np.rint(-lo / scale), 0, 255)
    q = np.clip(np.rint(x / scale) + zp, 0, 255).astype(np.int64) - int(zp)
    qw, ws = ref_weight(w)
    return (q @ qw.T).astype(np.float32) * (scale * ws).astype(np.float32) + b


def cnn():
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 16),
                         nn.ReLU(), nn.Linear(16, 5))


def test_dynamic_replaces_exactly_the_requested_types():
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Conv1d(2, 2, 1), nn.LSTM(3, 4),
                      nn.GRU(3, 4))
    q = quant.dynamic(m)
    kinds = [type(c).__name__ for c in q]
    assert kinds == ["DynamicQuantizedLinear", "ReLU", "Conv1d", "DynamicQuantizedLSTM",
                     "DynamicQuantizedGRU"]
    assert type(m[0]) is nn.Linear  # the original is untouched (not inplace)
    q2 = quant.dynamic(m, modules={nn.Conv1d})
    assert [type(c).__name__ for c in q2][:3] == ["Linear", "ReLU", "DynamicQuantizedConv1d"]


def test_dynamic_linear_matches_numpy_reference():
    lin = nn.Linear(20, 6)
    q = quant.dynamic(lin)
    x = rng.standard_normal((3, 4, 20)).astype(np.float32)
    y = np_(q(em.tensor(x)))
    ref = ref_dynamic_linear(x, np_(lin.weight), np_(lin.bias))
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)
    assert q.weight.dtype == em.int8 and q.weight_scale.shape == (6,)


def test_dynamic_linear_unbatched_input():
    lin = nn.Linear(700, 3)  # 700 > 518: the blocked exact path on a 1-d input
    x = rng.standard_normal(700).astype(np.float32)
    y = np_(quant.dynamic(lin)(em.tensor(x)))
    ref = ref_dynamic_linear(x[None], np_(lin.weight), np_(lin.bias))[0]
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("how", ["dynamic", "static"])
def test_conv1d_layers(how):
    conv = nn.Conv1d(3, 5, 3, stride=2)
    x = rng.standard_normal((2, 3, 11)).astype(np.float32)
    w, b = np_(conv.weight), np_(conv.bias)
    if how == "dynamic":
        q = quant.dynamic(conv, modules={nn.Conv1d})
        lo, hi = np.float32(min(x.min(), 0)), np.float32(max(x.max(), 0))
        xs = np.float32((hi - lo) / np.float32(255))
        xz = int(np.rint(-lo / xs))
    else:
        q = quant.static(conv, [em.tensor(x)])
        xs, xz = np.float32(q.input_scale.item()), int(q.input_zero_point.item())
    assert type(q).__name__ == ("DynamicQuantizedConv1d" if how == "dynamic"
                                else "QuantizedConv1d")
    a = np.clip(np.rint(x / xs) + xz, 0, 255).astype(np.int64) - xz
    qw, ws = ref_weight(w)
    cols = np.stack([a[:, :, 2 * i:2 * i + 3] for i in range(5)], 2)   # (N, C, L_out, k)
    acc = np.einsum("nclk,ock->nol", cols, qw)
    if how == "dynamic":
        ref = acc.astype(np.float32) * (xs * ws).astype(np.float32)[:, None] + b[:, None]
    else:
        acc = acc + np_(q.bias)[:, None]
        real = acc.astype(np.float32) * (xs * ws).astype(np.float32)[:, None]
        ys, yz = np.float32(q.output_scale.item()), int(q.output_zero_point.item())
        ref = (np.clip(np.rint(real / ys) + yz, 0, 255) - yz).astype(np.float32) * ys
    np.testing.assert_allclose(np_(q(em.tensor(x))), ref, rtol=1e-6, atol=1e-6)


def test_dynamic_cnn_close_to_float_model():
    m = cnn().eval()
    x = em.tensor(rng.standard_normal((8, 1, 6, 6)).astype(np.float32))
    with em.no_grad():
        y, yq = np_(m(x)), np_(quant.dynamic(m)(x))
    err = np.abs(y - yq).max() / np.abs(y).max()
    assert 0 < err < 0.03


@pytest.mark.parametrize("cls,kwargs", [
    (nn.LSTM, dict(num_layers=2, bidirectional=True, batch_first=True)),
    (nn.GRU, dict(num_layers=1)),
    (nn.LSTM, dict(proj_size=3)),
])
def test_dynamic_rnn_runs_float_math_on_dequantised_weights(cls, kwargs):
    rnn = cls(5, 6, **kwargs)
    q = quant.dynamic(rnn)
    # reference: the same float layer with every weight replaced by NumPy's q * scale
    ref = cls(5, 6, **kwargs)
    with em.no_grad():
        for name, p in rnn.named_parameters():
            a = np_(p)
            if name.startswith("weight"):
                qw, s = ref_weight(a)
                a = (qw * s[:, None]).astype(np.float32)
            getattr(ref, name).copy_(em.tensor(a))
        x = em.tensor(rng.standard_normal((2, 4, 5)).astype(np.float32))
        out, ref_out = q(x), ref(x)
    np.testing.assert_allclose(np_(out[0]), np_(ref_out[0]), rtol=1e-6, atol=1e-6)
    assert all(getattr(q, n).dtype == em.int8 for n in rnn._flat_weights_names
               if n.startswith("weight"))
    # the int8 weights are within half a step of the float ones
    w, qw, s = np_(rnn.weight_hh_l0), np_(q.weight_hh_l0), np_(q.weight_hh_l0_scale)
    assert np.all(np.abs(qw * s[:, None] - w) <= s[:, None] / 2 + 1e-7)


def test_static_calibrates_minmax_and_matches_reference():
    lin = nn.Linear(10, 4)
    xs = [rng.standard_normal((6, 10)).astype(np.float32) * k for k in (1, 2)]
    q = quant.static(lin, [em.tensor(x) for x in xs])
    lo = min(x.min() for x in xs)
    hi = max(x.max() for x in xs)
    scale = np.float32((np.float32(hi) - np.float32(lo)) / np.float32(255))
    assert q.input_scale.item() == pytest.approx(float(scale), rel=1e-6)
    assert int(q.input_zero_point.item()) == int(np.rint(-np.float32(lo) / scale))
    outs = [x @ np_(lin.weight).T + np_(lin.bias) for x in xs]
    ohi, olo = max(o.max() for o in outs), min(o.min() for o in outs)
    assert q.output_scale.item() == pytest.approx((ohi - olo) / 255, rel=1e-5)
    # bias is int32 on the accumulator's scale
    acc_scale = q.input_scale.item() * np_(q.weight_scale)
    np.testing.assert_array_equal(np_(q.bias), np.rint(np_(lin.bias) / acc_scale))
    y = np_(q(em.tensor(xs[0])))
    assert np.abs(y - outs[0]).max() < 2 * q.output_scale.item() + 0.05


def test_static_fuses_relu_in_sequential_and_runs_pool_chain():
    m = cnn().eval()
    data = [em.tensor(rng.standard_normal((16, 1, 6, 6)).astype(np.float32))
            for _ in range(3)]
    q = quant.static(m, [(x, 0) for x in data])
    names = [type(c).__name__ for c in q]
    assert names == ["QuantizedConv2d", "Identity", "MaxPool2d", "QuantizedConv2d", "Identity",
                     "Flatten", "QuantizedLinear", "Identity", "QuantizedLinear"]
    assert q[0].relu and q[3].relu and q[6].relu and not q[8].relu
    assert q[0].output_zero_point.item() == 0  # a fused ReLU's output range starts at 0
    with em.no_grad():
        y, yq = np_(m(data[0])), np_(q(data[0]))
    assert np.abs(y - yq).max() / np.abs(y).max() < 0.05
    assert (y.argmax(1) == yq.argmax(1)).mean() >= 0.8


def test_prepare_then_convert_step_by_step_with_histogram_observer():
    m = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))
    p = quant.prepare(m, observer="histogram")
    for _ in range(3):
        p(em.tensor(rng.standard_normal((32, 8)).astype(np.float32)))
    q = quant.convert(p)
    assert [type(c).__name__ for c in q] == ["QuantizedLinear", "Tanh", "QuantizedLinear"]
    assert isinstance(p[0], nn.Linear)  # convert copies unless inplace
    with pytest.raises(RuntimeError, match="saw no calibration data"):
        quant.convert(quant.prepare(m))


def test_save_load_roundtrip_int8_and_smaller(tmp_path):
    m = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))
    q = quant.dynamic(m)
    fp, qp = tmp_path / "float.safetensors", tmp_path / "int8.safetensors"
    em.save(m.state_dict(), fp)
    em.save(q.state_dict(), qp)
    assert os.path.getsize(fp) / os.path.getsize(qp) >= 3.5
    fresh = quant.dynamic(nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10)))
    fresh.load_state_dict(em.load(qp))
    x = em.tensor(rng.standard_normal((5, 256)).astype(np.float32))
    np.testing.assert_array_equal(np_(fresh(x)), np_(q(x)))
    assert fresh[0].weight.dtype == em.int8


def test_static_save_load_into_uncalibrated_structure(tmp_path):
    m = cnn()
    data = [em.tensor(rng.standard_normal((8, 1, 6, 6)).astype(np.float32))]
    q = quant.static(m, data)
    em.save(q.state_dict(), tmp_path / "q.safetensors")
    skeleton = quant.convert(quant.prepare(cnn()), calibrated=False)
    skeleton.load_state_dict(em.load(tmp_path / "q.safetensors"))
    with em.no_grad():
        np.testing.assert_array_equal(np_(skeleton(data[0])), np_(q(data[0])))


def test_quantised_model_compiles_with_jit():
    m = cnn().eval()
    q = quant.dynamic(m)
    x = em.tensor(rng.standard_normal((4, 1, 6, 6)).astype(np.float32))
    with em.no_grad():
        eager = np_(q(x))
        fast = em.jit(q)
        np.testing.assert_array_equal(np_(fast(x)), eager)
        np.testing.assert_array_equal(np_(fast(x)), eager)
        assert any(n.op.name == "dynamic_quantized_conv" for n in fast.graph.nodes)


def test_warns_when_nothing_is_quantised():
    with pytest.warns(UserWarning, match="nothing was quantised"):
        q = quant.dynamic(nn.Sequential(nn.Tanh(), nn.Conv1d(1, 1, 1)))
    assert type(q[1]) is nn.Conv1d
    with pytest.warns(UserWarning, match="nothing was quantised"):
        quant.prepare(nn.Sequential(nn.Tanh()))


@pytest.mark.parametrize("call,err,match", [
    (lambda: quant.dynamic(nn.Sequential(nn.Linear(2, 2)), modules={nn.ReLU}), TypeError,
     "can't quantise ReLU"),
    (lambda: quant.dynamic(nn.Linear(2, 2), dtype="float16"), ValueError, "only int8"),
    (lambda: quant.dynamic(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"),
                           modules={nn.Conv2d}), ValueError, "padding_mode='zeros'"),
    (lambda: quant.prepare(nn.Linear(2, 2), observer="bogus"), ValueError, "unknown observer"),
    (lambda: quant.convert(nn.Linear(2, 2)), ValueError, "no layers prepared"),
    (lambda: quant.static(nn.Linear(2, 2), []), ValueError, "gave no batches"),
    (lambda: quant.dynamic(nn.Linear(3, 2))(em.ones(2, 4)), ValueError,
     r"shape \(2, 4\) but the weight expects 3"),
])
def test_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()
