"""``keras.datasets.mnist``: the MNIST digits from Keras's ``mnist.npz``.

The file is looked for where Keras keeps it, ``~/.keras/datasets/mnist.npz`` (or
``$KERAS_HOME/datasets/mnist.npz``), so a copy Keras downloaded works as is; otherwise it is
downloaded from Keras's URL when online, and without a network the error names the path to
put the file at.
"""
from __future__ import annotations

import zipfile

import numpy as np

from ..utils import get_file

__all__ = ["load_data"]

_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


def load_data(path: str = "mnist.npz") -> tuple:
    """Return ``(x_train, y_train), (x_test, y_test)``: uint8 images (N, 28, 28), uint8 labels.

    ``path`` is the file name relative to ``~/.keras/datasets`` (or an absolute path).
    """
    file = get_file(fname=path, origin=_ORIGIN, file_hash=_SHA256)
    return _read_npz(file, "mnist")


def _read_npz(file: str, who: str) -> tuple:
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        # allow_pickle=False: an .npz holding object arrays is refused, never unpickled
        with np.load(file, allow_pickle=False) as f:
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise ValueError(f"{who}.load_data: {file} lacks the arrays {missing} "
                                 f"(it holds {sorted(f.files)}; expected {list(keys)})")
            x_train, y_train, x_test, y_test = (np.asarray(f[k]) for k in keys)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{who}.load_data: {file} is not a readable .npz file ({e}); delete "
                         f"it to download it again") from None
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{who}.load_data: {file} holds {split} images of shape {x.shape} "
                             f"and labels of shape {y.shape}; expected (N, H, W) and (N,)")
    return (x_train, y_train), (x_test, y_test)
