"""Training-step benchmarks: ember eager vs PyTorch eager on the same code, side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/workloads.py
    ... --workloads mlp cnn --rounds 5 --steps 5      # a subset, fewer samples
    ... --memory                                      # peak RSS per side (subprocesses)

Every workload is written once against the PyTorch API and built for each library (``lib``
is ``ember`` or ``torch``), so both sides run the identical model definition. Rounds
interleave the sides, each round starting with the next side; the report gives the median
step time, the spread (min–max of the round medians) and the ratio ember/torch.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


# ----- the workloads (PyTorch API; `lib` is ember or torch) ----------------------------------

def mlp(lib):
    nn, F = lib.nn, lib.nn.functional
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                          nn.Linear(512, 10))
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = lib.randn(128, 784), lib.randint(0, 10, (128,))
    return model, opt, lambda: F.cross_entropy(model(x), y)


def cnn(lib):
    nn, F = lib.nn, lib.nn.functional
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    x, y = lib.randn(64, 1, 28, 28), lib.randint(0, 10, (64,))
    return model, opt, lambda: F.cross_entropy(model(x), y)


def _gpt_model(lib, vocab=256, ctx=128, d=256, heads=4, layers=4):
    nn, F = lib.nn, lib.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
            self.register_buffer("mask", lib.tril(lib.ones(ctx, ctx)).bool())

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            q = q.reshape(B, T, heads, C // heads).transpose(1, 2)
            k = k.reshape(B, T, heads, C // heads).transpose(1, 2)
            v = v.reshape(B, T, heads, C // heads).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / (C // heads) ** 0.5)
            att = att.masked_fill(~self.mask[:T, :T], float("-inf"))
            att = F.softmax(att, dim=-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, C)
            x = x + self.proj(y)
            return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

        def forward(self, idx):
            T = idx.shape[1]
            x = self.tok(idx) + self.pos(lib.arange(T))
            for b in self.blocks:
                x = b(x)
            return self.head(self.ln(x))

    return GPT()


def gpt(lib):
    F = lib.nn.functional
    model = _gpt_model(lib)
    opt = lib.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    x, y = lib.randint(0, 256, (16, 128)), lib.randint(0, 256, (16, 128))
    return model, opt, lambda: F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))


def lstm(lib):
    nn, F = lib.nn, lib.nn.functional

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(256, 128)
            self.rnn = nn.LSTM(128, 256, batch_first=True)
            self.head = nn.Linear(256, 256)

        def forward(self, x):
            h, _ = self.rnn(self.emb(x))
            return self.head(h)

    model = Tagger()
    opt = lib.optim.Adam(model.parameters(), lr=1e-3)
    x, y = lib.randint(0, 256, (32, 64)), lib.randint(0, 256, (32, 64))
    return model, opt, lambda: F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))


WORKLOADS = {"mlp": mlp, "cnn": cnn, "gpt": gpt, "lstm": lstm}


def _train_step(model, opt, loss_fn):
    def step():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    return step


def _latency(lib):
    """mlp forward at batch 1 (no grad): the per-call latency a served model sees."""
    model, _, _ = mlp(lib)
    model.eval()
    x = lib.randn(1, 784)

    def step():
        with lib.no_grad():
            return model(x)
    return step


# ----- measurement -------------------------------------------------------------------------

def _libs():
    import ember
    libs = {"ember": ember}
    try:
        import torch
        libs["torch"] = torch
    except ImportError:
        pass
    return libs


def _make(lib, name, jit=False):
    lib.manual_seed(0)
    if name == "mlp-latency-b1":
        step = _latency(lib)
        return (lib.jit(step) if jit else step), 200
    model, opt, loss_fn = WORKLOADS[name](lib)
    step = _train_step(model, opt, loss_fn)
    return (lib.jit(step) if jit else step), 1


def _time(step, n):
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def run(names, rounds, steps, with_jit=False):
    libs = _libs()
    if with_jit:
        libs = {"ember": libs["ember"], "ember-jit": libs["ember"],
                **({"torch": libs["torch"]} if "torch" in libs else {})}
    results = {}
    for name in names:
        fns = {}
        for k, lib in libs.items():
            step, inner = _make(lib, name, jit=k == "ember-jit")
            step()  # warm-up: first-touch allocations, lazy init (and the trace)
            step()
            fns[k] = (step, inner)
        per = {k: [] for k in libs}
        order = list(libs)
        for r in range(rounds):
            # rotate who goes first: a side that runs right after torch shares the cores with
            # torch's OpenMP threads while they spin down, so no side may always follow it
            for k in order[r % len(order):] + order[:r % len(order)]:
                step, inner = fns[k]
                per[k].append(statistics.median(_time(step, inner) for _ in range(steps)))
        results[name] = per
    return results


def _peak_rss(lib_name, name, steps):
    """Peak resident memory (MiB) that building and training the workload adds to a fresh
    process that imported only that library (Linux: the high-water mark is reset after the
    import through /proc/self/clear_refs)."""
    code = f"""
import sys
sys.path.insert(0, {str(ROOT / 'src')!r}); sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
import {lib_name} as lib
import workloads as w

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

open("/proc/self/clear_refs", "w").write("5")
base = status("VmRSS")
step, inner = w._make(lib, {name!r})
for _ in range({steps} * inner):
    step()
print(status("VmHWM") - base)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=os.environ.copy())
    if out.returncode:
        return None
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", nargs="*", default=list(WORKLOADS) + ["mlp-latency-b1"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--jit", action="store_true", help="also run the ember.jit-compiled step")
    ap.add_argument("--json", help="also write raw results here")
    args = ap.parse_args(argv)
    res = run(args.workloads, args.rounds, args.steps, args.jit)

    def fmt(xs):
        return f"{statistics.median(xs) * 1e3:.2f} ({min(xs) * 1e3:.2f}–{max(xs) * 1e3:.2f})"
    if args.jit:
        print("| workload | ember ms | ember.jit ms | torch ms | eager/jit | jit/torch |")
        print("|---|---|---|---|---|---|")
        for name, per in res.items():
            e, j = statistics.median(per["ember"]), statistics.median(per["ember-jit"])
            t = statistics.median(per["torch"]) if "torch" in per else float("nan")
            print(f"| {name} | {fmt(per['ember'])} | {fmt(per['ember-jit'])} | "
                  f"{fmt(per['torch']) if 'torch' in per else '–'} | {e / j:.2f} | "
                  f"{j / t:.2f} |")
    else:
        print("| workload | ember ms (min–max) | torch ms (min–max) | ember/torch |")
        print("|---|---|---|---|")
        for name, per in res.items():
            e = statistics.median(per["ember"])
            if "torch" in per:
                t = statistics.median(per["torch"])
                print(f"| {name} | {fmt(per['ember'])} | {fmt(per['torch'])} | {e / t:.2f} |")
            else:
                print(f"| {name} | {fmt(per['ember'])} | – | – |")
    if args.memory:
        print("\n| workload | ember peak RSS MiB | torch peak RSS MiB |\n|---|---|---|")
        for name in args.workloads:
            mems = [_peak_rss(k, name, 3) for k in ("ember", "torch")]
            print(f"| {name} | " + " | ".join("–" if m is None else f"{m:.0f}" for m in mems)
                  + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(res))


if __name__ == "__main__":
    main()
