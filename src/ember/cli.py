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
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="ember", description="ember deep learning framework")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("demo", help="run ember's demo (the README's main job)")
    p.add_argument("--steps", type=int, default=300)
    p.set_defaults(func=demo)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
