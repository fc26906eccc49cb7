"""``keras.datasets.fashion_mnist``: Zalando's Fashion-MNIST from Keras's cache.

Keras keeps the four gzipped IDX files in ``~/.keras/datasets/fashion-mnist/`` (or under
``$KERAS_HOME``); they are read from there, downloaded from Keras's URLs when missing and
online, and otherwise the error names the folder and the files to put there.
"""
from __future__ import annotations

import os

from ...datasets.mnist import read_idx
from ..utils import get_file

__all__ = ["load_data"]

_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
          "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")


def load_data() -> tuple:
    """Return ``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 28, 28), uint8 labels."""
    subdir = os.path.join("datasets", "fashion-mnist")
    paths = [get_file(f, origin=_BASE + f, cache_subdir=subdir) for f in _FILES]
    y_train, x_train, y_test, x_test = (read_idx(p) for p in paths)
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"fashion_mnist.load_data: the {split} files in "
                             f"{os.path.dirname(paths[0])} hold images of shape {x.shape} and "
                             f"labels of shape {y.shape}; expected (N, 28, 28) and (N,)")
    return (x_train.astype("uint8", copy=False), y_train.astype("uint8", copy=False)), \
        (x_test.astype("uint8", copy=False), y_test.astype("uint8", copy=False))
