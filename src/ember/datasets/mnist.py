"""MNIST and Fashion-MNIST read from their IDX files (LeCun's format), like torchvision.

The four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-*``, each
optionally gzipped) are looked for in ``root/<Name>/raw`` (torchvision's layout, so a folder
torchvision downloaded works as is), ``root/<Name>`` and ``root`` itself. ``download=True``
fetches them from the usual mirrors and checks their MD5 sums; without a network it fails
with a message naming the folder and the files to put there.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
from typing import Callable

import numpy as np

from ..tensor import Tensor
from ..serialization import write_atomic
from ..utils.data.dataset import Dataset

__all__ = ["MNIST", "FashionMNIST", "read_idx"]

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtypes
_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or not, told by its first bytes) into a native-endian array.

    The header is two zero bytes, a type code, the number of dimensions, then each dimension
    as a big-endian uint32; the data follow in C order, big-endian.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"read_idx: {path} is a corrupted gzip file ({e})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise ValueError(f"read_idx: {path} is not an IDX file (magic number "
                         f"{raw[:4].hex() or 'missing'}; expected 0000 then a type code "
                         f"08/09/0b/0c/0d/0e and the number of dimensions)")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"read_idx: {path} is truncated inside its header ({len(raw)} bytes, "
                         f"the header of a {ndim}-d array needs {head})")
    shape = struct.unpack(f">{ndim}I", raw[4:head])
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - head
    if have != need:
        what = "truncated" if have < need else "longer than its header says"
        raise ValueError(f"read_idx: {path} is {what}: the header gives shape {shape} of "
                         f"{dtype.newbyteorder('=').name}, which is {need} bytes of data, but "
                         f"the file has {have}")
    arr = np.frombuffer(raw, dtype=dtype, offset=head).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # a native, writable copy


class MNIST(Dataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test 28x28 grey images.

    ``ds[i]`` is ``(image, label)``: the image a ``(28, 28)`` uint8 NumPy array (what
    torchvision's transforms get from a PIL image, so ``ToTensor()`` gives a ``(1, 28, 28)``
    float tensor in [0, 1]), the label an int. ``data`` (uint8) and ``targets`` (int64) hold
    the whole split as tensors.

    Args:
        root: folder holding ``MNIST/raw/<files>`` (torchvision's layout) or the files.
        train: the training split, else the test split.
        transform / target_transform: applied to the image / the label.
        download: fetch missing files into ``root/MNIST/raw`` (needs a network).
    """

    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/",
               "http://yann.lecun.com/exdb/mnist/"]
    resources = [("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                 ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
                 ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                 ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")]
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root: str | os.PathLike, train: bool = True,
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 download: bool = False) -> None:
        self.root = os.path.expanduser(os.fspath(root))
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        if download and self._find_folder() is None:
            self.download()
        folder = self._find_folder()
        if folder is None:
            raise FileNotFoundError(self._missing_message())
        images_path, labels_path = (self._file_in(folder, s) for s in self._stems())
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{type(self).__name__}: {images_path} holds shape "
                             f"{images.shape} and {labels_path} shape {labels.shape}; expected "
                             f"(N, H, W) images and N labels")
        self._images = images.astype(np.uint8, copy=False)
        self._labels = labels.astype(np.int64)

    # ----- the files ------------------------------------------------------------------------
    @property
    def raw_folder(self) -> str:
        return os.path.join(self.root, type(self).__name__, "raw")

    def _stems(self) -> tuple:
        split = "train" if self.train else "t10k"
        return f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"

    def _candidate_folders(self) -> list:
        return [self.raw_folder, os.path.join(self.root, type(self).__name__), self.root]

    @staticmethod
    def _file_in(folder: str, stem: str) -> str | None:
        for name in (stem, stem + ".gz"):
            p = os.path.join(folder, name)
            if os.path.isfile(p):
                return p
        return None

    def _find_folder(self) -> str | None:
        for folder in self._candidate_folders():
            if all(self._file_in(folder, s) for s in self._stems()):
                return folder
        return None

    def _missing_message(self) -> str:
        files = " and ".join(f"{s}[.gz]" for s in self._stems())
        return (f"{type(self).__name__}: dataset not found. Expected the IDX files {files} in "
                f"{self.raw_folder} (torchvision's layout) or in {self.root}. Pass "
                f"download=True to fetch them (needs a network), or copy them there.")

    def download(self) -> None:
        """Fetch the four gzipped IDX files into ``raw_folder``, checking their MD5 sums."""
        os.makedirs(self.raw_folder, exist_ok=True)
        for filename, md5 in self.resources:
            dest = os.path.join(self.raw_folder, filename)
            if os.path.isfile(dest) and _md5(dest) == md5:
                continue
            errors = []
            for mirror in self.mirrors:
                url = mirror + filename
                try:
                    data = _fetch(url)
                except (OSError, ValueError) as e:  # urllib's URLError is an OSError
                    errors.append(f"{url}: {getattr(e, 'reason', e)}")
                    continue
                got = hashlib.md5(data, usedforsecurity=False).hexdigest()
                if got != md5:
                    errors.append(f"{url}: MD5 mismatch (got {got}, expected {md5})")
                    continue
                write_atomic(dest, data)
                break
            else:
                raise RuntimeError(
                    f"{type(self).__name__}: could not download {filename} from any mirror "
                    f"({'; '.join(errors)}). Without a network, copy the files "
                    f"{', '.join(f for f, _ in self.resources)} into {self.raw_folder}.")

    # ----- the samples ----------------------------------------------------------------------
    @property
    def data(self) -> Tensor:
        return Tensor._wrap(self._images)

    @property
    def targets(self) -> Tensor:
        return Tensor._wrap(self._labels)

    @property
    def class_to_idx(self) -> dict:
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int):
        img, target = self._images[index], int(self._labels[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __repr__(self) -> str:
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}",
                 f"    Split: {'Train' if self.train else 'Test'}"]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        return "\n".join(lines)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes, ten kinds of clothing.
    Files go in ``root/FashionMNIST/raw`` (or ``root``)."""

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
               "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/"
               "fashion/"]
    resources = [("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                 ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
                 ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                 ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310")]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]


def _fetch(url: str) -> bytes:
    import urllib.request  # only when downloading (ssl adds to every import of ember)
    req = urllib.request.Request(url, headers={"User-Agent": "ember"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def _md5(path: str) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
