"""The ``ember`` command. ``ember demo`` runs ember's main job."""
from __future__ import annotations

import argparse
import sys
import time


def demo(args) -> int:
    """Tensors, broadcasting and autograd: fit a small polynomial regression by gradient
    descent, then check one gradient against a finite difference."""
    import ember as em

    em.manual_seed(0)
    print(f"ember {em.__version__} — tensors and automatic differentiation on NumPy\n")
    x = em.linspace(-2, 2, 200).unsqueeze(1)                     # (200, 1)
    true_w = em.tensor([[0.5], [-1.0], [2.0]])                   # y = 0.5 - x + 2x^2
    feats = em.cat([x ** 0, x, x ** 2], dim=1)                   # (200, 3)
    y = feats @ true_w + 0.1 * em.randn(200, 1)
    w = em.zeros(3, 1, requires_grad=True)
    print("fitting y = w0 + w1*x + w2*x^2 by gradient descent")
    t0 = time.perf_counter()
    for step in range(args.steps):
        loss = ((feats @ w - y) ** 2).mean()
        loss.backward()
        with em.no_grad():
            w -= 0.05 * w.grad
        w.grad = None
        if step % max(args.steps // 5, 1) == 0 or step == args.steps - 1:
            print(f"  step {step:4d}  loss {loss.item():.5f}")
    dt = time.perf_counter() - t0
    print(f"learned w = {[round(v, 3) for v in w.detach().reshape(-1).tolist()]}  "
          f"(true {true_w.reshape(-1).tolist()}) in {dt * 1e3:.0f} ms")

    # the gradient of a composite expression against a central finite difference
    a = em.tensor([0.3, -1.2, 2.0], dtype=em.float64, requires_grad=True)
    f = lambda t: (t.tanh() * t.exp()).sum() + em.logsumexp(t, 0)
    (g,) = em.autograd.grad(f(a), a)
    eps = 1e-6
    fd = []
    for i in range(3):
        e = em.zeros(3, dtype=em.float64)
        e[i] = eps
        fd.append(((f(a.detach() + e) - f(a.detach() - e)) / (2 * eps)).item())
    print(f"autograd  d/da = {[round(v, 6) for v in g.tolist()]}")
    print(f"finite-difference = {[round(v, 6) for v in fd]}")
    second = em.grad(em.grad(lambda t: (t ** 3).sum()))(em.tensor(2.0))
    print(f"second derivative of x^3 at 2 = {second.item():.1f} (expected 12.0)")
    if args.epochs:
        _train_digits(em, args.epochs)
    return 0


def _train_digits(em, epochs: int) -> None:
    """A small CNN on the handwritten digits bundled with ember, PyTorch style."""
    import ember.nn as nn
    import ember.nn.functional as F
    from ember.datasets import Digits
    from ember.utils.data import DataLoader

    print(f"\ntraining a CNN on real handwritten digits (8x8, {len(Digits(True))} train / "
          f"{len(Digits(False))} test images)")
    em.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 4 * 4, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")
    opt = em.optim.Adam(model.parameters(), lr=2e-3)
    sched = em.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    train = DataLoader(Digits(train=True), batch_size=64, shuffle=True)
    test = DataLoader(Digits(train=False), batch_size=512)
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        total, n = 0.0, 0
        for x, y in train:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            n += len(y)
        sched.step()
        model.eval()
        with em.no_grad():
            correct = sum((model(x).argmax(1) == y).sum().item() for x, y in test)
        print(f"  epoch {epoch:2d}  train loss {total / n:.4f}  test accuracy "
              f"{100 * correct / len(test.dataset):.1f}%  ({time.perf_counter() - t0:.1f} s)")
    path = "ember-demo-digits.safetensors"
    em.save(model.state_dict(), path)
    print(f"saved the weights to {path} (safetensors; loads into the same PyTorch model)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ember", description="ember deep learning framework")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("demo", help="run ember's demo (the README's main job)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--epochs", type=int, default=8, help="CNN training epochs (0 to skip)")
    p.set_defaults(func=demo)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
