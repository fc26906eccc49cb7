"""Quantised models leave ember as ONNX files that onnxruntime runs: ember's output ==
onnxruntime's output on the exported file (dynamic batch), and the files hold int8 weights.
Also ONNX-to-ONNX quantisation (``quantize_onnx``, the ``ember quantize`` command)."""
import os

import numpy as np
import pytest

import ember as em
import ember.nn as nn
import ember.quantize as quant
from ember import runtime

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

rng = np.random.default_rng(3)
AXES = {"input": {0: "batch"}, "output": {0: "batch"}}


def conv_net():
    # stride, odd padding, a 1x1 conv and channel blocks past the exact-float32 limit (64*9)
    return nn.Sequential(nn.Conv2d(2, 64, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(64, 8, 3, stride=2, padding=(0, 1)), nn.ReLU(),
                         nn.Conv2d(8, 6, 1), nn.Flatten(), nn.Linear(6 * 3 * 4, 5)).eval()


def mlp():
    return nn.Sequential(nn.Linear(600, 32), nn.ReLU(), nn.Linear(32, 4)).eval()


def ort_run(path, x):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def export(model, x, path):
    em.onnx.export(model, em.tensor(x), str(path), dynamic_axes=AXES)
    return str(path)


@pytest.mark.parametrize("make,shape", [(conv_net, (2, 2, 7, 7)), (mlp, (3, 600))])
def test_dynamic_export_matches_onnxruntime(make, shape, tmp_path):
    q = quant.dynamic(make(), modules={nn.Linear, nn.Conv2d})
    path = export(q, rng.standard_normal(shape).astype(np.float32), tmp_path / "q.onnx")
    types = {t.name: t.data_type for t in onnx.load(path).graph.initializer}
    assert 3 in types.values() and not any(
        t == 1 and n.endswith("weight") for n, t in types.items())   # int8, no float weights
    for n in (1, 5):  # the batch axis is dynamic
        x = rng.standard_normal((n,) + shape[1:]).astype(np.float32)
        with em.no_grad():
            want = q(em.tensor(x)).numpy()
        np.testing.assert_allclose(ort_run(path, x), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(runtime.load(path)(x), want, rtol=1e-5, atol=1e-5)


def test_static_export_matches_onnxruntime_within_one_step(tmp_path):
    model = conv_net()
    calib = [em.tensor(rng.standard_normal((8, 2, 7, 7)).astype(np.float32)) for _ in range(3)]
    q = quant.static(model, calib)
    path = export(q, calib[0].numpy()[:2], tmp_path / "s.onnx")
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ops.count("QuantizeLinear") >= 8 and "Conv" in ops and "Gemm" in ops
    x = rng.standard_normal((4, 2, 7, 7)).astype(np.float32)
    with em.no_grad():
        want = q(em.tensor(x)).numpy()
    got = ort_run(path, x)
    step = q[-1].output_scale.item()
    # ONNX Runtime fuses QDQ into int8 kernels that round the requantisation its own way
    assert np.abs(got - want).max() <= step * 1.01
    assert np.mean(np.abs(got - want) < 1e-6) > 0.9
    np.testing.assert_allclose(runtime.load(path)(x), want, atol=1e-6)


def test_int8_onnx_file_is_much_smaller(tmp_path):
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    x = rng.standard_normal((1, 256)).astype(np.float32)
    f = export(model, x, tmp_path / "f.onnx")
    q = export(quant.dynamic(model), x, tmp_path / "q.onnx")
    assert os.path.getsize(f) / os.path.getsize(q) >= 3.5


def test_dynamic_rnn_export_keeps_int8_weights(tmp_path):
    from ember.ops.registry import OPS
    if OPS["lstm_layer"].onnx is None or OPS["gru_layer"].onnx is None:
        pytest.skip("the exporter has no LSTM/GRU rule yet")

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 8, batch_first=True, bidirectional=True)
            self.gru = nn.GRU(16, 6, batch_first=True)

        def forward(self, x):
            return self.gru(self.lstm(x)[0])[0]

    q = quant.dynamic(Tagger().eval())
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    path = str(tmp_path / "rnn.onnx")
    em.onnx.export(q, em.tensor(x), path)
    types = [t.data_type for t in onnx.load(path).graph.initializer]
    assert types.count(3) >= 6  # six int8 weight matrices
    with em.no_grad():
        want = q(em.tensor(x)).numpy()
    np.testing.assert_allclose(ort_run(path, x), want, rtol=1e-5, atol=1e-5)


# ----- ONNX -> ONNX ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_quantize_onnx_file_runs_in_onnxruntime_and_ember(mode, tmp_path):
    from ember.quantize.onnx_model import quantize_onnx
    model = conv_net()
    x = rng.standard_normal((4, 2, 7, 7)).astype(np.float32)
    f = export(model, x, tmp_path / "f.onnx")
    calib = [{"input": rng.standard_normal((8, 2, 7, 7)).astype(np.float32)} for _ in range(2)]
    q = quantize_onnx(f, mode, calib if mode == "static" else None)
    data = q.SerializeToString()
    ops = [n.op_type for n in q.graph.node]
    assert ("ConvInteger" in ops) if mode == "dynamic" else ("DequantizeLinear" in ops)
    (tmp_path / "q.onnx").write_bytes(data)
    got = ort_run(str(tmp_path / "q.onnx"), x)
    ours = runtime.load(data)(x)
    np.testing.assert_allclose(ours, got, rtol=1e-5, atol=2e-2 if mode == "static" else 1e-5)
    # and it approximates the float model to int8 precision
    with em.no_grad():
        want = model(em.tensor(x)).numpy()
    assert np.abs(got - want).max() < (0.03 if mode == "dynamic" else 0.08) * \
        np.abs(want).max()  # static: three requantised layers, calibrated on 16 samples
    assert os.path.getsize(f) / len(data) > 2  # small layers: scales and biases weigh in


def test_quantize_onnx_matches_ember_quantize_dynamic(tmp_path):
    # the graph rewrite and ember.quantize quantise a layer identically
    from ember.quantize.onnx_model import quantize_onnx
    model = mlp()
    x = rng.standard_normal((3, 600)).astype(np.float32)
    q = quantize_onnx(export(model, x, tmp_path / "f.onnx"))
    with em.no_grad():
        want = quant.dynamic(model)(em.tensor(x)).numpy()
    np.testing.assert_allclose(runtime.load(q.SerializeToString())(x), want, rtol=1e-6,
                               atol=1e-6)
