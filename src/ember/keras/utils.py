"""``keras.utils``: one-hot labels, global seeding and Keras's download cache (``get_file``).

The serialization helpers (``register_keras_serializable``, ``get_custom_objects``,
``custom_object_scope``...) live in :mod:`ember.keras.saving`; Keras re-exports them here.
"""
from __future__ import annotations

import hashlib
import os
import random
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from ..serialization import write_atomic
from .saving import (  # Keras re-exports its serialization helpers in keras.utils
    custom_object_scope, deserialize_keras_object, get_custom_objects, get_registered_name,
    get_registered_object, register_keras_serializable, serialize_keras_object)

__all__ = ["to_categorical", "normalize", "set_random_seed", "get_file", "keras_home",
           "register_keras_serializable", "get_custom_objects", "custom_object_scope",
           "get_registered_name", "get_registered_object", "serialize_keras_object",
           "deserialize_keras_object"]


def to_categorical(x, num_classes: int | None = None) -> np.ndarray:
    """One-hot encode integer class labels: shape ``(..., num_classes)``, float64 like Keras.

    A trailing axis of size 1 (labels shaped ``(n, 1)``) is dropped first; ``num_classes``
    defaults to ``max(x) + 1``.
    """
    if hasattr(x, "_data") and hasattr(x, "numpy"):  # an ember Tensor
        x = x.numpy()
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"to_categorical: labels must be integers, got {arr.dtype} "
                             f"values that are not whole numbers")
    elif arr.dtype.kind not in "iub":
        raise TypeError(f"to_categorical: labels must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    shape = arr.shape
    if len(shape) > 1 and shape[-1] == 1:  # Keras squeezes (n, 1) label columns
        shape = shape[:-1]
    flat = arr.reshape(-1)
    if flat.size and flat.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {int(flat.min())}")
    if not num_classes:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    num_classes = int(num_classes)
    if flat.size and flat.max() >= num_classes:
        raise ValueError(f"to_categorical: label {int(flat.max())} is out of range for "
                         f"num_classes={num_classes} (labels must be in [0, {num_classes}))")
    out = np.zeros((flat.size, num_classes))
    out[np.arange(flat.size), flat] = 1
    return out.reshape(shape + (num_classes,))


def normalize(x, axis: int = -1, order: int = 2) -> np.ndarray:
    """Scale ``x`` to unit ``order``-norm along ``axis`` (zero vectors stay zero)."""
    arr = np.asarray(x, dtype=np.float64 if np.asarray(x).dtype.kind != "f" else None)
    norm = np.atleast_1d(np.linalg.norm(arr, order, axis))
    norm[norm == 0] = 1
    return arr / np.expand_dims(norm, axis)


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and ember's default generator."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"set_random_seed: expected an integer seed, got {seed!r} "
                         f"(of type {type(seed).__name__})")
    from ..ops.random import manual_seed
    random.seed(int(seed))
    np.random.seed(int(seed) % (1 << 32))
    manual_seed(int(seed))


def keras_home() -> str:
    """Keras's cache root: ``$KERAS_HOME`` if set, else ``~/.keras``."""
    home = os.environ.get("KERAS_HOME")
    return os.path.expanduser(home) if home else os.path.join(os.path.expanduser("~"), ".keras")


def _hash_file(path: str, algorithm: str) -> str:
    h = hashlib.sha256() if algorithm == "sha256" else hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download_atomic(url: str, dest: str) -> None:
    """Fetch ``url`` into ``dest`` through a temporary file: a failed download leaves no file."""
    def copy(out):
        req = urllib.request.Request(url, headers={"User-Agent": "ember"})
        with urllib.request.urlopen(req, timeout=60) as r:
            for block in iter(lambda: r.read(1 << 20), b""):
                out.write(block)
    write_atomic(dest, copy)


def get_file(fname: str | None = None, origin: str | None = None, file_hash: str | None = None,
             cache_subdir: str = "datasets", hash_algorithm: str = "auto",
             cache_dir: str | None = None, force_download: bool = False,
             md5_hash: str | None = None) -> str:
    """Return the path of ``fname`` in Keras's cache, downloading it from ``origin`` if absent.

    The file lives at ``<cache_dir or $KERAS_HOME or ~/.keras>/<cache_subdir>/<fname>``. A file
    already there is used as is (so a copy put there by hand works offline); a downloaded file
    is checked against ``file_hash`` (sha256 or md5, 64 or 32 hex digits) and written
    atomically. Without a network the error says where to put the file. (Keras's
    ``extract``/``untar`` archive options are not supported.)
    """
    if origin is None:
        raise ValueError("get_file: please specify the 'origin' argument (URL of the file "
                         "to download)")
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    if not fname:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(f"get_file: can't parse a file name from origin {origin!r}; "
                             f"pass fname=")
    fname = os.fspath(fname)
    datadir = os.path.join(os.path.expanduser(cache_dir or keras_home()), cache_subdir)
    target = os.path.join(datadir, fname)  # an absolute fname (mnist's path=) wins, as in Keras
    if os.path.exists(target) and not force_download:
        return target
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    except OSError as e:
        raise OSError(f"get_file: cannot create the cache folder {os.path.dirname(target)} "
                      f"({e}); set KERAS_HOME to a writable folder") from None
    try:
        _download_atomic(origin, target)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise RuntimeError(
            f"get_file: {fname} is not in the Keras cache and could not be downloaded from "
            f"{origin} ({reason}). Without a network, download it elsewhere and copy it to "
            f"{target} (the cache root is $KERAS_HOME, or ~/.keras when unset).") from None
    if file_hash is not None:
        algo = hash_algorithm
        if algo == "auto":
            algo = "sha256" if len(file_hash) == 64 else "md5"
        got = _hash_file(target, algo)
        if got != file_hash:
            os.remove(target)
            raise ValueError(f"get_file: the file downloaded from {origin} is incomplete or "
                             f"corrupted: its {algo} hash is {got}, expected {file_hash}")
    return target
