"""int8 post-training quantisation of the example CNN (examples/pytorch_style_digits.py) on
the bundled handwritten digits: accuracy, model size and speed.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/quantize.py [--epochs 6]

Trains the example's ``Net`` (its training recipe: Adadelta lr 1.0, StepLR 0.7), then
compares float32 with ember.quantize's dynamic int8 and static int8 (MinMax calibration on 256
training images):

- test accuracy on the 359 test images;
- size: ``ember.save(state_dict)`` files and exported ONNX files;
- speed, batch 1 and 64: ember eager, ember compiled (``ember.jit``), ember.runtime on the
  exported files and onnxruntime on the same files (when installed), interleaved round by
  round; median time per call and the 25th..75th percentile spread.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

import ember as em  # noqa: E402
import ember.nn.functional as F  # noqa: E402
import ember.quantize as quant  # noqa: E402
from ember import runtime  # noqa: E402
from ember.datasets import Digits  # noqa: E402
from ember.utils.data import DataLoader  # noqa: E402


def example_net():
    spec = importlib.util.spec_from_file_location("digits_example",
                                                  ROOT / "examples" / "pytorch_style_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.Net()


def train(epochs: int):
    em.manual_seed(1)
    model = example_net()
    opt = em.optim.Adadelta(model.parameters(), lr=1.0)
    sched = em.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    loader = DataLoader(Digits(train=True), batch_size=64, shuffle=True)
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            F.nll_loss(model(x), y).backward()
            opt.step()
        sched.step()
    return model.eval()


def accuracy(fn, x, y) -> float:
    with em.no_grad():
        pred = np.concatenate([np.asarray(fn(x[i:i + 128])).argmax(1)
                               for i in range(0, len(x), 128)])
    return 100.0 * float((pred == y).mean())


def timed(cases: dict, inputs, rounds: int, number: int) -> dict:
    """Interleaved rounds: per round, every case runs ``number`` calls, starting each round
    at the next case (no case always runs first); per-call seconds."""
    times = {k: [] for k in cases}
    for fn in cases.values():
        fn(inputs)  # warm up (jit traces, ORT allocations)
    items = list(cases.items())
    for r in range(rounds):
        for k, fn in items[r % len(items):] + items[:r % len(items)]:
            t0 = time.perf_counter()
            for _ in range(number):
                fn(inputs)
            times[k].append((time.perf_counter() - t0) / number)
    return times


def fmt(ts) -> str:
    q = statistics.quantiles(ts, n=4)
    return f"{1e3 * statistics.median(ts):.3f} ({1e3 * q[0]:.3f}–{1e3 * q[2]:.3f})"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    model = train(args.epochs)
    print(f"trained the example CNN for {args.epochs} epochs in "
          f"{time.perf_counter() - t0:.0f} s")
    test = Digits(train=False)
    xt = em.stack([test[i][0] for i in range(len(test))])
    yt = np.array([int(test[i][1]) for i in range(len(test))])
    train_set = Digits(train=True)
    calib = em.stack([train_set[i][0] for i in range(256)])

    dyn = quant.dynamic(model)
    sta = quant.static(model, [calib[i:i + 64] for i in range(0, 256, 64)])
    models = {"float32": model, "dynamic int8": dyn, "static int8": sta}

    print("\n## Accuracy (359 test images)\n")
    print("| model | test accuracy | change |")
    print("|---|---|---|")
    base = accuracy(model, xt, yt)
    for name, m in models.items():
        acc = accuracy(m, xt, yt)
        print(f"| {name} | {acc:.2f}% | {acc - base:+.2f} points |")

    tmp = tempfile.mkdtemp()
    sizes, onnx_paths = {}, {}
    have_onnx = importlib.util.find_spec("onnx") is not None
    for name, m in models.items():
        p = os.path.join(tmp, name.replace(" ", "_"))
        em.save(m.state_dict(), p + ".safetensors")
        sizes[name] = [os.path.getsize(p + ".safetensors")]
        if have_onnx:
            em.onnx.export(m, xt[:1], p + ".onnx",
                           dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
            sizes[name].append(os.path.getsize(p + ".onnx"))
            onnx_paths[name] = p + ".onnx"
    print("\n## Size\n")
    print("| model | ember.save file | ratio | ONNX file | ratio |")
    print("|---|---|---|---|---|")
    for name, s in sizes.items():
        row = f"| {name} | {s[0] / 1024:.1f} KiB | {sizes['float32'][0] / s[0]:.2f}x |"
        row += (f" {s[1] / 1024:.1f} KiB | {sizes['float32'][1] / s[1]:.2f}x |" if len(s) > 1
                else " – | – |")
        print(row)
    if have_onnx:
        for name, path in onnx_paths.items():
            acc = accuracy(runtime.load(path), xt.numpy(), yt)
            print(f"(ember.runtime on the {name} ONNX file: {acc:.2f}% test accuracy)")

    cases = {}
    for name, m in models.items():
        cases[f"ember eager {name}"] = lambda x, m=m: m(x)
        jm = em.jit(m)
        cases[f"ember jit {name}"] = lambda x, jm=jm: jm(x)
    for name, path in onnx_paths.items():
        sess = runtime.load(path)
        cases[f"ember.runtime {name}"] = lambda x, s=sess: s(x.numpy())
    try:
        import onnxruntime as ort
        for name, path in onnx_paths.items():
            s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            cases[f"onnxruntime {name}"] = lambda x, s=s: s.run(None, {"input": x.numpy()})
    except ImportError:
        pass
    print("\n## Speed: ms per call, median (25th–75th percentile)\n")
    print("| engine / model | batch 1 | batch 64 |")
    print("|---|---|---|")
    with em.no_grad():
        t1 = timed(cases, xt[:1], args.rounds, 200)
        t64 = timed(cases, xt[:64], args.rounds, 20)
    for k in cases:
        print(f"| {k} | {fmt(t1[k])} | {fmt(t64[k])} |")


if __name__ == "__main__":
    main()
