"""Training-engine overhead: ``fit`` throughput (samples/s) against a hand-written ember loop.

    python benchmarks/fit_overhead.py                    # 7 rounds of 3 epochs each
    python benchmarks/fit_overhead.py --rounds 11 --epochs 5 --batch-size 32

The workload is an MLP (64-256-256-10, softmax output) on the bundled digits
(``ember.datasets.load_digits``, 1,438 training images), Adam, Keras's sparse categorical
cross-entropy, shuffled batches. Each side does the same arithmetic:

- hand-written: ``for idx in batches: opt.zero_grad(); loss(y, model(x)).backward();
  opt.step()`` over NumPy slices, with the step jitted (``ember.jit``) or eager;
- ``Engine.fit`` (ember.train, verbose=0) and ``model.fit`` (the Keras face, verbose=0), with
  the compiled train step (default) or eagerly (``jit_compile=False`` / ``run_eagerly``).

Rounds interleave the variants; the report gives each variant's median throughput, its
spread (min-max of the rounds) and the overhead against the hand-written loop of the same
mode (``1 - fit / hand``; the goal is under 5%). Times are the process's CPU time by default
(``--clock cpu``): everything runs on one thread, and CPU time is not inflated by other
programs competing for the cores; ``--clock wall`` measures elapsed time instead.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import ember as em  # noqa: E402
import ember.nn as nn  # noqa: E402
import ember.nn.functional as F  # noqa: E402
from ember.keras import losses, optimizers  # noqa: E402
from ember.keras.trainer import Trainer  # noqa: E402
from ember.train import Engine  # noqa: E402


_clock = time.process_time


class MLP(Trainer, nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(64, 256), nn.Linear(256, 256), nn.Linear(256, 10)

    def forward(self, x):
        return F.softmax(self.l3(F.relu(self.l2(F.relu(self.l1(x))))), dim=-1)


def _data():
    (x, y), _ = em.datasets.load_digits()
    return np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32), y


def _batches(n, bs, epoch):
    perm = np.random.default_rng([0, epoch]).permutation(n)
    return [perm[i:i + bs] for i in range(0, n, bs)]


def hand(x, y, epochs, bs, jit):
    em.manual_seed(0)
    model = MLP()
    opt = optimizers.Adam(learning_rate=1e-3)
    opt.build(list(model.parameters()))
    loss_fn = losses.SparseCategoricalCrossentropy()

    def step(xb, yb):
        opt.zero_grad()
        loss = loss_fn(yb, model(xb))
        loss.backward()
        opt.step()
        return loss.detach()
    if jit:
        step = em.jit(step)
    t = _clock()
    for epoch in range(epochs):
        for idx in _batches(len(x), bs, epoch):
            step(em.Tensor._wrap(x[idx]), em.Tensor._wrap(y[idx]))
    return _clock() - t


class _Shuffled:
    """The same shuffled NumPy batches as the hand-written loop, epoch by epoch."""

    def __init__(self, x, y, bs):
        self.x, self.y, self.bs, self.epoch = x, y, bs, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return -(-len(self.x) // self.bs)

    def __iter__(self):
        for idx in _batches(len(self.x), self.bs, self.epoch):
            yield self.x[idx], self.y[idx]


def engine_fit(x, y, epochs, bs, jit):
    em.manual_seed(0)
    model = MLP()
    opt = optimizers.Adam(learning_rate=1e-3)
    opt.build(list(model.parameters()))
    loss_fn = losses.SparseCategoricalCrossentropy()
    engine = Engine(model, lambda pred, t: loss_fn(t, pred), opt, _Shuffled(x, y, bs),
                    jit_compile=jit)
    t = _clock()
    engine.fit(epochs)
    return _clock() - t


def keras_fit(x, y, epochs, bs, jit):
    em.manual_seed(0)
    model = MLP()
    model.compile(optimizer=optimizers.Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy", run_eagerly=not jit)
    t = _clock()
    model.fit(x, y, batch_size=bs, epochs=epochs, verbose=0)
    return _clock() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args(argv)
    global _clock
    _clock = time.process_time if args.clock == "cpu" else time.perf_counter
    x, y = _data()
    n = len(x) * args.epochs
    variants = {(name, jit): fn for jit in (True, False)
                for name, fn in (("hand-written", hand), ("Engine.fit", engine_fit),
                                 ("keras fit", keras_fit))}
    for (name, jit), fn in variants.items():  # warm-up: imports, caches, first traces
        fn(x, y, 1, args.batch_size, jit)
    times: dict = {k: [] for k in variants}
    for _ in range(args.rounds):
        for k, fn in variants.items():
            times[k].append(fn(x, y, args.epochs, args.batch_size, k[1]))
    print(f"MLP 64-256-256-10 on digits ({len(x)} samples), batch {args.batch_size}, "
          f"{args.epochs} epochs x {args.rounds} rounds (median samples per {args.clock} "
          f"second, spread)")
    for jit in (True, False):
        mode = "compiled step (ember.jit)" if jit else "eager"
        print(f"\n{mode}:")
        base = n / statistics.median(times[("hand-written", jit)])
        for name in ("hand-written", "Engine.fit", "keras fit"):
            ts = times[(name, jit)]
            med = n / statistics.median(ts)
            lo, hi = n / max(ts), n / min(ts)
            over = "" if name == "hand-written" else f"   overhead {1 - med / base:+.1%}"
            print(f"  {name:13s} {med:9.0f} /s  [{lo:.0f}-{hi:.0f}]{over}")


if __name__ == "__main__":
    main()
