"""A fastai-style training script on the handwritten digits bundled with ember: DataLoaders,
a small convnet, ``lr_find``, ``fit_one_cycle``, ``show_results`` — the shape of fastai's
"MNIST in a few lines" notebooks, with ember's names.

    python examples/fastai_style_digits.py            # ~97% test accuracy in a few seconds
    python examples/fastai_style_digits.py --plot     # also save lr_find / loss plots (PNG)

The 1,438 training images are split 80/20 into training and validation sets; the 359 test
images are only used for the final accuracy.
"""
import argparse
import time

import ember as em
import ember.nn as nn
from ember.datasets import Digits
from ember.learner import DataLoaders, Learner, accuracy


def conv(ni, nf):
    """fastai's conv block: 3x3 convolution, BatchNorm, ReLU."""
    return nn.Sequential(nn.Conv2d(ni, nf, 3, padding=1, bias=False), nn.BatchNorm2d(nf),
                         nn.ReLU())


def simple_cnn():
    return nn.Sequential(
        conv(1, 16),                    # 8x8
        conv(16, 32), nn.MaxPool2d(2),  # 4x4
        conv(32, 64), nn.MaxPool2d(2),  # 2x2
        nn.Flatten(), nn.Linear(64 * 2 * 2, 10))


def main(argv=None) -> float:
    ap = argparse.ArgumentParser(description="ember digits example (fastai style)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--lr", type=float, default=None,
                    help="lr_max of the one-cycle schedule (default: lr_find's suggestion)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--plot", action="store_true", help="save lr_find.png and loss.png")
    args = ap.parse_args(argv)
    em.manual_seed(args.seed)
    t0 = time.time()

    train = Digits(train=True)
    dls = DataLoaders.from_arrays(train.data, train.targets, valid_pct=0.2, bs=args.bs,
                                  seed=args.seed)
    learn = Learner(dls, simple_cnn(), metrics=accuracy)

    suggested = learn.lr_find(show_plot=args.plot)
    print(f"lr_find suggests {suggested.valley:.2e}")
    if args.plot:
        import matplotlib.pyplot as plt
        plt.savefig("lr_find.png")
        plt.close("all")
    # valley sits on the steep part of the curve; one-cycle's warm-up tolerates a few times more
    lr = args.lr or min(max(3 * suggested.valley, 1e-3), 3e-2)
    learn.fit_one_cycle(args.epochs, lr)
    learn.show_results(max_n=6)

    test = Digits(train=False)
    preds, targs = learn.get_preds(dl=dls.test_dl(test.data, test.targets))
    acc = float((preds.argmax(dim=1) == targs).float().mean())
    print(f"test accuracy: {acc:.4f} ({len(test)} images), {time.time() - t0:.1f}s in all")
    if args.plot:
        import matplotlib.pyplot as plt
        learn.recorder.plot_loss()
        plt.savefig("loss.png")
        plt.close("all")
    return acc


if __name__ == "__main__":
    main()
