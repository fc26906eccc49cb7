"""From a trained ember model to a small file that runs anywhere: ONNX export with a dynamic
batch axis, inference with ember's NumPy-only runtime (and onnxruntime when installed), and
int8 quantisation — on the CNN of examples/pytorch_style_digits.py and the bundled digits.

    pip install "ember[onnx]"
    python examples/deploy_digits.py [--epochs 4] [--out deploy-digits]

Needs the onnx package to export; ember.runtime itself needs only NumPy.
"""
import argparse
import importlib.util
import os
from pathlib import Path

import numpy as np

import ember
from ember.datasets import load_digits


def _example_net():
    """The network (and its training recipe) of the PyTorch-style example."""
    path = Path(__file__).with_name("pytorch_style_digits.py")
    spec = importlib.util.spec_from_file_location("pytorch_style_digits", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--out", default="deploy-digits", help="folder for the files")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    # 1. train with the example's own recipe (ember eager, PyTorch style)
    ex = _example_net()
    ember.manual_seed(1)
    model = ex.Net()
    opt = ember.optim.Adadelta(model.parameters(), lr=1.0)
    sched = ember.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    loader = ember.utils.data.DataLoader(ember.datasets.Digits(train=True), batch_size=64,
                                         shuffle=True)
    for epoch in range(1, args.epochs + 1):
        ex.train(model, loader, opt, epoch, log_interval=1000)
        sched.step()
    model.eval()
    (_, _), (x_test, y_test) = load_digits()
    x_test = x_test[:, None]                                   # (N, 1, 8, 8)

    # 2. export with a dynamic batch axis
    onnx_path = os.path.join(args.out, "digits.onnx")
    ember.onnx.export(model, ember.from_numpy(x_test[:2]), onnx_path,
                      input_names=["image"], output_names=["log_probs"],
                      dynamic_axes={"image": {0: "batch"}, "log_probs": {0: "batch"}})

    # 3. run it with ember.runtime (NumPy only), the way onnxruntime is called
    session = ember.runtime.load(onnx_path)
    (log_probs,) = session.run(None, {"image": x_test})
    with ember.no_grad():
        eager = model(ember.from_numpy(x_test)).numpy()
    report = {"accuracy": float((log_probs.argmax(1) == y_test).mean()),
              "runtime_vs_eager": float(np.abs(log_probs - eager).max()),
              "onnx_kib": os.path.getsize(onnx_path) / 1024}
    try:
        import onnxruntime as ort
        sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        report["onnxruntime_vs_eager"] = float(
            np.abs(sess.run(None, {"image": x_test})[0] - eager).max())
    except ImportError:
        pass

    # 4. int8: quantise the weights, export again, run again
    qmodel = ember.quantize.dynamic(model)
    q_path = os.path.join(args.out, "digits-int8.onnx")
    ember.onnx.export(qmodel, ember.from_numpy(x_test[:2]), q_path,
                      input_names=["image"], output_names=["log_probs"],
                      dynamic_axes={"image": {0: "batch"}, "log_probs": {0: "batch"}})
    (q_log_probs,) = ember.runtime.load(q_path).run(None, {"image": x_test})
    report["int8_accuracy"] = float((q_log_probs.argmax(1) == y_test).mean())
    report["int8_onnx_kib"] = os.path.getsize(q_path) / 1024

    print(f"float32: test accuracy {100 * report['accuracy']:.1f}%, "
          f"{report['onnx_kib']:.0f} KiB ONNX; ember.runtime matches eager to "
          f"{report['runtime_vs_eager']:.1e}"
          + (f", onnxruntime to {report['onnxruntime_vs_eager']:.1e}"
             if "onnxruntime_vs_eager" in report else ""))
    print(f"int8:    test accuracy {100 * report['int8_accuracy']:.1f}%, "
          f"{report['int8_onnx_kib']:.0f} KiB ONNX "
          f"({report['onnx_kib'] / report['int8_onnx_kib']:.1f}x smaller)")
    print(f"files in {args.out}/: digits.onnx, digits-int8.onnx "
          f"(inspect them with `ember inspect {onnx_path}`)")
    return report


if __name__ == "__main__":
    main()
