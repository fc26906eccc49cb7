"""ember.runtime: onnxruntime's API over ember's importer + jit, checked against outputs that
onnxruntime computed for the fixture files (tests/runtime/data/make_fixtures.py)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ember as em
from ember import runtime

DATA = os.path.join(os.path.dirname(__file__), "data")
SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def fixture(name):
    return os.path.join(DATA, f"{name}.onnx"), np.load(os.path.join(DATA, f"{name}_expected.npz"))


@pytest.mark.parametrize("name,tol", [
    ("mlp", 1e-6),
    # ONNX Runtime's quantiser wrote these (dynamic; static QDQ; static QLinearConv /
    # QLinearMatMul): ember's integer kernels are exact, so only float rounding differs
    ("cnn_dynamic_ort", 1e-5), ("cnn_qdq_ort", 1e-5), ("cnn_qop_ort", 1e-5),
])
def test_matches_onnxruntime_on_fixture_files(name, tol):
    path, expected = fixture(name)
    sess = runtime.load(path)
    feeds = {a.name: expected[a.name] for a in sess.get_inputs()}
    outs = sess.run(None, feeds)
    for i, out in enumerate(outs):
        np.testing.assert_allclose(out, expected[f"out_{i}"], rtol=tol, atol=tol)


def test_runs_with_numpy_only_in_a_fresh_process():
    # the optional packages are blocked: importing any of them raises ImportError
    code = textwrap.dedent(f"""
        import sys
        for name in ("onnx", "onnxruntime", "scipy", "torch", "keras"):
            sys.modules[name] = None
        import numpy as np
        from ember import runtime
        path = {os.path.join(DATA, "cnn_qdq_ort.onnx")!r}
        e = np.load(path.replace(".onnx", "_expected.npz"))
        y = runtime.load(path)(e["x"])
        assert np.allclose(y, e["out_0"], atol=1e-5), abs(y - e["out_0"]).max()
        assert sys.modules["onnx"] is None and sys.modules["onnxruntime"] is None
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC), OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_onnxruntime_style_api():
    path, e = fixture("mlp")
    sess = runtime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (x,) = sess.get_inputs()
    assert (x.name, x.shape, x.type) == ("x", ["batch", 6], "tensor(float)")
    assert [o.name for o in sess.get_outputs()] == ["probs", "logits"]
    assert sess.get_modelmeta().producer_name == "fixture"
    assert sess.get_modelmeta().custom_metadata_map == {"purpose": "ember.runtime tests"}
    logits, probs = sess.run(["logits", "probs"], {"x": e["x"]})
    np.testing.assert_allclose(logits, e["out_1"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(probs, e["out_0"], rtol=1e-6, atol=1e-6)
    both = sess(e["x"])
    assert isinstance(both, tuple) and len(both) == 2


def test_dynamic_batch_rows_are_independent_and_results_not_reused():
    path, e = fixture("mlp")
    sess = runtime.load(path)
    x = e["x"]
    full = sess(x)[1]
    first = full.copy()
    rows = np.concatenate([sess(x[i:i + 1])[1] for i in range(len(x))])
    np.testing.assert_allclose(rows, full, rtol=1e-6, atol=1e-6)
    sess(x[::-1].copy())  # another call must not overwrite an earlier result
    np.testing.assert_array_equal(full, first)


def test_jit_and_eager_agree():
    path, e = fixture("cnn_dynamic_ort")
    a = runtime.load(path)(e["x"])
    b = runtime.load(path, jit=False)(e["x"])
    np.testing.assert_array_equal(a, b)


def test_load_from_bytes():
    path, e = fixture("mlp")
    with open(path, "rb") as f:
        sess = runtime.load(f.read())
    np.testing.assert_allclose(sess(e["x"])[0], e["out_0"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("call,err,match", [
    (lambda s: s.run(None, {"y": np.zeros((1, 6), np.float32)}), ValueError,
     r"inputs are \['x'\]; unknown: \['y'\]; missing: \['x'\]"),
    (lambda s: s.run(["nope"], {"x": np.zeros((1, 6), np.float32)}), ValueError,
     "unknown output name 'nope'"),
    (lambda s: s.run(None, {"x": np.zeros((1, 6), np.float64)}), TypeError,
     r"must be tensor\(float\)"),
    (lambda s: s.run(None, {"x": np.zeros((1, 5), np.float32)}), ValueError,
     r"must have shape \['\?', 6\]"),
    (lambda s: s(np.zeros((1, 6), np.float32), np.zeros(2)), TypeError, "takes 1 input"),
    (lambda s: s.run(None, [np.zeros((1, 6))]), TypeError, "must be a dict"),
])
def test_bad_calls(call, err, match):
    sess = runtime.load(fixture("mlp")[0])
    with pytest.raises(err, match=match):
        call(sess)


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07\x12" + b"\xff" * 10)
    with pytest.raises(runtime.DecodeError, match="bad.onnx"):
        runtime.load(str(bad))


# ----- models ember exported ------------------------------------------------------------------


def test_runs_an_ember_export_with_dynamic_batch(tmp_path):
    pytest.importorskip("onnx")
    import ember.nn as nn
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    path = str(tmp_path / "m.onnx")
    em.onnx.export(model, em.randn(2, 5), path,
                   dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    sess = runtime.load(path)
    for n in (1, 7):
        x = np.random.default_rng(n).standard_normal((n, 5)).astype(np.float32)
        with em.no_grad():
            want = model(em.tensor(x)).numpy()
        np.testing.assert_allclose(sess(x), want, rtol=1e-6, atol=1e-6)


def test_loads_a_saved_keras_model(tmp_path):
    keras = pytest.importorskip("ember.keras")
    try:
        model = keras.Sequential([keras.Input(shape=(4,)),
                                  keras.layers.Dense(6, activation="relu"),
                                  keras.layers.Dense(2)])
        path = str(tmp_path / "m.keras")
        model.save(path)
    except Exception as e:  # noqa: BLE001 - ember.keras is being written in parallel
        pytest.skip(f"ember.keras can't save a model yet: {e}")
    sess = runtime.load(path)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with em.no_grad():
        want = model(em.tensor(x)).numpy()
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], want,
                               rtol=1e-5, atol=1e-6)
