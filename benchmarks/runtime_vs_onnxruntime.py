"""ember.runtime (NumPy only) against onnxruntime on the same ONNX files: batch-1 latency,
cold start (process start -> first result) and peak memory, measured in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/runtime_vs_onnxruntime.py

Models (built in ember, exported with ember.onnx.export, dynamic batch): an MLP, the example
digits CNN (examples/pytorch_style_digits.py), the same CNN quantised to int8 (dynamic), and
a bidirectional-LSTM tagger. For each:

- latency: both engines in this process, interleaved round by round, ``--number`` calls per
  round; median ms per call and the 25th..75th percentile spread;
- cold start: a fresh ``python`` process per sample that imports the engine, loads the file
  and runs one batch-1 input; the parent times Popen -> the child's first result. Engines
  alternate sample by sample; median and spread of ``--cold`` samples;
- peak memory: the child's peak resident set size (``VmHWM``) at that point, and the same
  minus a child that only imports NumPy (what the engine and model add).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

import ember as em  # noqa: E402
import ember.nn as nn  # noqa: E402

CHILD = r"""
import json, resource, sys, time
import numpy as np
engine, path, shape = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split(",")]
x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
if engine == "ember":
    from ember import runtime
    y = runtime.load(path)(x)
elif engine == "onnxruntime":
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = s.run(None, {s.get_inputs()[0].name: x})[0]
t = time.time()
# VmHWM: this process's peak RSS. Not ru_maxrss: Linux carries that over from the forked
# parent across exec, so every child would report at least the parent's size.
try:
    with open("/proc/self/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
except (OSError, StopIteration):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"t": t, "rss_kib": rss}))
"""


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(32, 64, batch_first=True, bidirectional=True)
        self.out = nn.Linear(128, 10)

    def forward(self, x):
        return self.out(self.lstm(x)[0])


def example_net():
    spec = importlib.util.spec_from_file_location("digits_example",
                                                  ROOT / "examples" / "pytorch_style_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.Net()


def models():
    import ember.quantize as quant
    em.manual_seed(0)
    cnn = example_net().eval()
    return [("mlp 784-512-256-10", nn.Sequential(nn.Linear(784, 512), nn.ReLU(),
                                                 nn.Linear(512, 256), nn.ReLU(),
                                                 nn.Linear(256, 10)).eval(), (1, 784)),
            ("digits CNN", cnn, (1, 1, 8, 8)),
            ("digits CNN, dynamic int8", quant.dynamic(cnn), (1, 1, 8, 8)),
            ("BiLSTM tagger (T=20)", Tagger().eval(), (1, 20, 32))]


def spread(ts, scale=1e3, digits=3) -> str:
    q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
    return (f"{scale * statistics.median(ts):.{digits}f} "
            f"({scale * q[0]:.{digits}f}–{scale * q[2]:.{digits}f})")


def child(engine: str, path: str, shape) -> tuple[float, int]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t0 = time.time()
    r = subprocess.run([sys.executable, "-c", CHILD, engine, path,
                        ",".join(str(s) for s in shape)], capture_output=True, text=True,
                       env=env, timeout=300)
    if r.returncode:
        raise RuntimeError(f"{engine} child failed: {r.stderr[-2000:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["t"] - t0, out["rss_kib"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--number", type=int, default=100)
    ap.add_argument("--cold", type=int, default=7, help="cold-start samples per engine")
    args = ap.parse_args(argv)
    import onnxruntime as ort

    from ember import runtime
    tmp = tempfile.mkdtemp()
    rows = []
    base = [child("numpy", "-", (1,)) for _ in range(3)]
    base_rss = statistics.median(r for _, r in base)
    print(f"baseline: a python process importing NumPy peaks at {base_rss / 1024:.1f} MiB, "
          f"starts in {spread([t for t, _ in base], 1, 3)} s\n")
    for name, model, shape in models():
        path = os.path.join(tmp, name.split()[0] + f"_{len(rows)}.onnx")
        try:
            em.onnx.export(model, em.randn(*shape), path,
                           dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        except Exception as e:  # noqa: BLE001 - report and go on with the other models
            print(f"{name}: export failed ({type(e).__name__}: {str(e)[:200]})")
            continue
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        ours = runtime.load(path)
        theirs = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        iname = theirs.get_inputs()[0].name
        diff = float(np.abs(ours(x) - theirs.run(None, {iname: x})[0]).max())
        engines = {"ember.runtime": lambda: ours(x),
                   "onnxruntime": lambda: theirs.run(None, {iname: x})}
        lat = {k: [] for k in engines}
        order = list(engines.items())
        for r in range(args.rounds):
            for k, fn in order[r % 2:] + order[:r % 2]:  # alternate which engine goes first
                t0 = time.perf_counter()
                for _ in range(args.number):
                    fn()
                lat[k].append((time.perf_counter() - t0) / args.number)
        cold = {"ember": [], "onnxruntime": []}
        for r in range(args.cold):
            for eng in (["ember", "onnxruntime"] if r % 2 == 0 else ["onnxruntime", "ember"]):
                cold[eng].append(child(eng, path, shape))
        rows.append((name, os.path.getsize(path), diff, lat, cold))

    print("| model | engine | batch-1 latency ms | cold start s | peak RSS MiB | "
          "RSS above NumPy-only MiB |")
    print("|---|---|---|---|---|---|")
    for name, size, diff, lat, cold in rows:
        for eng, key in (("ember.runtime", "ember"), ("onnxruntime", "onnxruntime")):
            rss = statistics.median(r for _, r in cold[key])
            print(f"| {name} ({size / 1024:.0f} KiB, max diff {diff:.1e}) | {eng} | "
                  f"{spread(lat[eng])} | {spread([t for t, _ in cold[key]], 1, 3)} | "
                  f"{rss / 1024:.1f} | {(rss - base_rss) / 1024:.1f} |")
    print(f"\nlatency: {args.rounds} interleaved rounds of {args.number} calls; cold start and "
          f"memory: {args.cold} fresh processes per engine, alternating")


if __name__ == "__main__":
    main()
