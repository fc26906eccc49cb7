"""A real handwritten-digits dataset shipped inside ember, for examples and tests that must
run on a fresh machine with no network.

Why this one: MNIST (11 MB gzipped) is too big to ship and needs a download; scikit-learn's
``load_digits`` would make scikit-learn a dependency. So ember ships the same data that
scikit-learn bundles, the UCI "Optical Recognition of Handwritten Digits" set, as a 47 KB
NumPy ``.npz`` (``data/digits.npz``, read with ``allow_pickle=False``).

The data: 1,797 grey images of 8x8 pixels, each pixel the count (0..16) of "on" pixels in a
4x4 block of a 32x32 scan of a digit written by one of 13 people; ten classes, about 180
images each. They are the test part of the UCI set, as copied into scikit-learn
(``sklearn/datasets/data/digits.csv.gz``). ember fixes a stratified split: 20% of each class
(drawn once with seed 20240 and stored in the file) is the test split: 1,438 training and
359 test images, in their original order.

Licence and credit: E. Alpaydin and C. Kaynak (1998), "Optical Recognition of Handwritten
Digits", UCI Machine Learning Repository, https://doi.org/10.24432/C50P49, published under
Creative Commons Attribution 4.0 (CC BY 4.0), which allows redistribution with this
attribution. Changes made for ember: converted from CSV to NumPy arrays and split as
described above; no pixel value or label was changed.
"""
from __future__ import annotations

import functools
import os
from typing import Callable

import numpy as np

from ..tensor import Tensor
from ..utils.data.dataset import Dataset

__all__ = ["load_digits", "Digits"]

_PATH = os.path.join(os.path.dirname(__file__), "data", "digits.npz")


@functools.lru_cache(maxsize=1)
def _arrays() -> dict:
    try:
        with np.load(_PATH, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except FileNotFoundError:
        raise FileNotFoundError(f"load_digits: the bundled data file {_PATH} is missing; the "
                                f"ember installation is incomplete (package data not "
                                f"installed)") from None
    for a in arrays.values():
        a.setflags(write=False)  # shared by every caller through the cache
    return arrays


def load_digits(*, scaled: bool = True) -> tuple:
    """The bundled 8x8 digits as NumPy arrays, split like Keras'
    ``mnist.load_data()``: ``((x_train, y_train), (x_test, y_test))``.

    ``x`` is ``(N, 8, 8)`` float32 in [0, 1] (the pixel counts divided by 16), or with
    ``scaled=False`` the raw uint8 counts 0..16; ``y`` is int64 in 0..9.

        (x_train, y_train), (x_test, y_test) = ember.datasets.load_digits()
        x_train.shape  # (1438, 8, 8)
    """
    a = _arrays()

    def x(arr):
        return (arr.astype(np.float32) / np.float32(16)) if scaled else arr.copy()

    return ((x(a["x_train"]), a["y_train"].astype(np.int64)),
            (x(a["x_test"]), a["y_test"].astype(np.int64)))


def load_digits_as_mnist(shifted_copies: bool = False) -> tuple:
    """The bundled digits in MNIST's layout, for scripts written against
    ``keras.datasets.mnist.load_data()``: 28x28 uint8 images in 0..255, each 8x8 digit
    enlarged by bilinear interpolation to 20x20 and centred with a 4-pixel border, as MNIST
    centres its 20x20 digits. Returns ``((x_train, y_train), (x_test, y_test))`` with ``x``
    of shape (N, 28, 28) and ``y`` uint8, like Keras.

    ``shifted_copies=True`` adds to the training split four copies of each image moved by
    one source pixel (up, down, left, right; 7,190 images in all) — the classic
    augmentation, for scripts tuned to MNIST's 60,000 training images. The test split is
    never changed.
    """
    (xtr, ytr), (xte, yte) = load_digits(scaled=True)
    if shifted_copies:
        copies = [xtr]
        for axis in (1, 2):
            for step in (1, -1):
                moved = np.zeros_like(xtr)
                src = [slice(None)] * 3
                dst = [slice(None)] * 3
                src[axis] = slice(0, -1) if step == 1 else slice(1, None)
                dst[axis] = slice(1, None) if step == 1 else slice(0, -1)
                moved[tuple(dst)] = xtr[tuple(src)]
                copies.append(moved)
        xtr, ytr = np.concatenate(copies), np.tile(ytr, len(copies))

    def mnist(x):
        big = _bilinear(x, 20)
        out = np.zeros((x.shape[0], 28, 28), np.uint8)
        out[:, 4:24, 4:24] = np.clip(np.rint(big * 255), 0, 255).astype(np.uint8)
        return out

    return (mnist(xtr), ytr.astype(np.uint8)), (mnist(xte), yte.astype(np.uint8))


def _bilinear(x: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, h, w) images to (N, size, size), pixel centres aligned (half-pixel
    convention, edges clamped) — the same rule as PIL's and OpenCV's bilinear resize."""
    def weights(n_in):
        pos = (np.arange(size) + 0.5) * n_in / size - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        w = np.zeros((size, n_in), np.float32)
        np.add.at(w, (np.arange(size), lo), 1 - (pos - lo))
        np.add.at(w, (np.arange(size), hi), pos - lo)
        return w
    wr, wc = weights(x.shape[1]), weights(x.shape[2])
    return np.einsum("ri,nij,cj->nrc", wr, x, wc)


class Digits(Dataset):
    """The bundled 8x8 digits as a Dataset: ``ds[i]`` is ``(image, label)`` with the image a
    ``(1, 8, 8)`` float32 tensor in [0, 1] (ready for a model, no transform needed) and the
    label an int. ``data`` is the ``(N, 1, 8, 8)`` tensor of the split, ``targets`` the
    int64 labels.

        loader = DataLoader(Digits(train=True), batch_size=64, shuffle=True)
    """

    classes = [str(i) for i in range(10)]

    def __init__(self, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None) -> None:
        (xtr, ytr), (xte, yte) = load_digits()
        x, y = (xtr, ytr) if train else (xte, yte)
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self._images = x[:, None]  # (N, 1, 8, 8): channels first, like ToTensor's output
        self._labels = y

    @property
    def data(self) -> Tensor:
        return Tensor._wrap(self._images)

    @property
    def targets(self) -> Tensor:
        return Tensor._wrap(self._labels)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int):
        img, target = Tensor._wrap(self._images[index].copy()), int(self._labels[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __repr__(self) -> str:
        return (f"Dataset Digits\n    Number of datapoints: {len(self)}\n"
                f"    Split: {'Train' if self.train else 'Test'}")
