"""The examples do what their docstrings promise (run in-process, on the bundled data)."""
import importlib.util
import math
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pytorch_style_digits_reaches_95_percent(capsys):
    acc = _load("pytorch_style_digits").main(["--log-interval", "1000"])
    assert acc >= 0.95


def test_char_lstm_learns(capsys):
    mod = _load("char_lstm")
    vocab = len(set(mod.corpus()))
    final = mod.main(["--steps", "60", "--batch", "16", "--seq", "32"])
    assert final < math.log(vocab) - 1.0  # well below the uniform guess


@pytest.mark.parametrize("argv", [["demo", "--steps", "50", "--epochs", "2"]])
def test_cli_demo_runs(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    from ember.cli import main
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "second derivative of x^3 at 2 = 12.0" in out
    assert "test accuracy" in out
    assert (tmp_path / "ember-demo-digits.keras").exists()
    if "exported ember-demo-digits.onnx" in out:  # with the onnx extra installed
        assert (tmp_path / "ember-demo-digits.onnx").exists()


def test_keras_mnist_convnet_reaches_95_percent(capsys, monkeypatch):
    import runpy
    import sys
    monkeypatch.setattr(sys, "argv", ["keras_mnist_convnet.py", "--epochs", "4"])
    import ember
    ember.manual_seed(0)  # the script draws its initial weights from the global generator
    runpy.run_path(str(EXAMPLES / "keras_mnist_convnet.py"), run_name="__main__")
    out = capsys.readouterr().out
    acc = float(out.split("Test accuracy:")[1].split()[0])
    assert acc >= 0.95


def test_deploy_digits_exports_runs_and_quantises(tmp_path, capsys):
    pytest.importorskip("onnx")
    report = _load("deploy_digits").main(["--epochs", "2", "--out", str(tmp_path)])
    assert report["accuracy"] >= 0.8
    assert report["runtime_vs_eager"] < 1e-5
    assert abs(report["int8_accuracy"] - report["accuracy"]) <= 0.02
    assert report["onnx_kib"] / report["int8_onnx_kib"] >= 3.5
