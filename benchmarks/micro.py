"""Per-op overhead on tiny tensors: ember eager vs PyTorch eager, measured side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/micro.py [--repeats 15]

Each case is written once against the shared PyTorch-style API and run on both libraries;
the two sides are interleaved round by round so machine noise hits both alike. Reports the
median time per call (microseconds), the spread (25th..75th percentile) and the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import ember  # noqa: E402


def _cases():
    """(name, setup(lib) -> state, run(lib, state)) with the same code for both libraries."""
    def small(lib, rg=False):
        lib.manual_seed(0)
        return {"a": lib.randn(4, 4, requires_grad=rg), "b": lib.randn(4, 4),
                "v": lib.randn(16)}

    def fwd_bwd(lib, s):
        y = (s["a"] * s["b"] + s["a"]).tanh().sum()
        y.backward()

    def mlp_bwd(lib, s):
        h = (s["a"] @ s["b"]).relu()
        loss = lib.log_softmax(h, dim=1).mean()
        loss.backward()

    return [
        ("add", small, lambda lib, s: s["a"] + s["b"]),
        ("mul scalar", small, lambda lib, s: s["a"] * 2.0),
        ("exp", small, lambda lib, s: s["a"].exp()),
        ("sum", small, lambda lib, s: s["a"].sum()),
        ("sum dim", small, lambda lib, s: s["a"].sum(1)),
        ("matmul 4x4", small, lambda lib, s: s["a"] @ s["b"]),
        ("reshape", small, lambda lib, s: s["a"].reshape(2, 8)),
        ("transpose", small, lambda lib, s: s["a"].t()),
        ("getitem slice", small, lambda lib, s: s["a"][1:3]),
        ("softmax", small, lambda lib, s: lib.softmax(s["a"], dim=1)),
        ("cat", small, lambda lib, s: lib.cat([s["a"], s["b"]], 0)),
        ("add (requires_grad)", lambda lib: small(lib, True), lambda lib, s: s["a"] + s["b"]),
        ("exp (requires_grad)", lambda lib: small(lib, True), lambda lib, s: s["a"].exp()),
        ("matmul (requires_grad)", lambda lib: small(lib, True), lambda lib, s: s["a"] @ s["b"]),
        ("fwd+bwd (a*b+a).tanh().sum()", lambda lib: small(lib, True), fwd_bwd),
        ("fwd+bwd matmul-relu-log_softmax", lambda lib: small(lib, True), mlp_bwd),
    ]


def _time(fn, lib, state, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn(lib, state)
    return (time.perf_counter() - t0) / number * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--number", type=int, default=2000)
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = ap.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(1)
        libs = {"ember": ember, "torch": torch}
    except ImportError:
        torch = None
        libs = {"ember": ember}
    rows = []
    for name, setup, run in _cases():
        states = {k: setup(lib) for k, lib in libs.items()}
        for k, lib in libs.items():  # warm up
            _time(run, lib, states[k], 200)
        samples = {k: [] for k in libs}
        for _ in range(args.repeats):
            for k, lib in libs.items():
                samples[k].append(_time(run, lib, states[k], args.number))
        rows.append((name, samples))
    header = "| case | ember µs (IQR) | torch µs (IQR) | ember/torch |"
    print(header)
    print("|---|---|---|---|")
    ratios = []
    for name, samples in rows:
        def fmt(xs):
            q = statistics.quantiles(xs, n=4)
            return f"{statistics.median(xs):.2f} ({q[0]:.2f}–{q[2]:.2f})"
        e = statistics.median(samples["ember"])
        if "torch" in samples:
            t = statistics.median(samples["torch"])
            ratios.append(e / t)
            print(f"| {name} | {fmt(samples['ember'])} | {fmt(samples['torch'])} | "
                  f"{e / t:.2f} |")
        else:
            print(f"| {name} | {fmt(samples['ember'])} | – | – |")
    if ratios:
        geo = statistics.geometric_mean(ratios)
        print(f"\ngeometric mean ember/torch: {geo:.2f}; worst: {max(ratios):.2f}")
        print(f"torch {torch.__version__}, ember {ember.__version__}, python "
              f"{sys.version.split()[0]}")


if __name__ == "__main__":
    main()
