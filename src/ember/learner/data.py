"""``DataLoaders``: fastai's pair of training and validation loaders, over ember's DataLoader.

    dls = DataLoaders.from_arrays(x, y, valid_pct=0.2, bs=64, seed=42)
    dls = DataLoaders.from_dsets(train_ds, valid_ds, bs=64)
    dls = DataLoaders(train_loader, valid_loader)
    xb, yb = dls.one_batch()

As in fastai, the training loader shuffles and drops its last partial batch; the validation
loader does neither. Attributes not found on ``DataLoaders`` are looked up on the training
loader (``dls.batch_size``, ``dls.dataset``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import dtypes as _dt
from ..ops.random import Generator, randperm
from ..tensor import Tensor
from ..utils.data import DataLoader, TensorDataset

__all__ = ["DataLoaders"]


def _as_tensor(a, what: str) -> Tensor:
    """An array-like as a Tensor; floating data takes ember's default dtype (so NumPy's
    float64 meets float32 weights), integer labels become int64 (what losses index with)."""
    if isinstance(a, Tensor):
        return a
    try:
        arr = np.asarray(a)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"DataLoaders.from_arrays: {what} must be an array-like, got "
                        f"{type(a).__name__}: {e}") from None
    if arr.dtype.kind == "f":
        arr = arr.astype(_dt.get_default_dtype().np, copy=False)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64, copy=False)
    elif arr.dtype.kind != "b":
        raise TypeError(f"DataLoaders.from_arrays: {what} must hold numbers, got dtype "
                        f"{arr.dtype}")
    return Tensor._wrap(np.ascontiguousarray(arr))


class DataLoaders:
    """Holds the loaders: ``train`` (index 0), ``valid`` (index 1), any more after."""

    def __init__(self, *loaders, path: str = ".", device=None) -> None:
        if not loaders:
            raise ValueError("DataLoaders: give at least a training loader")
        self.loaders = list(loaders)
        self.path = path
        self.device = device
        self.loss_func = None  # set by from_arrays from the targets' kind
        self.vocab = None  # class names, when known
        self.splits = None  # from_arrays: the sample indices of (train, valid)

    def __getitem__(self, i: int):
        return self.loaders[i]

    def __len__(self) -> int:
        return len(self.loaders)

    def __iter__(self):
        return iter(self.loaders)

    def __getattr__(self, name: str):
        # only reached for names DataLoaders lacks: delegate to the training loader (fastai)
        if name.startswith("__") or name == "loaders":
            raise AttributeError(name)
        return getattr(self.loaders[0], name)

    @property
    def train(self):
        """The training loader."""
        return self.loaders[0]

    @property
    def valid(self):
        """The validation loader (None when there is none)."""
        return self.loaders[1] if len(self.loaders) > 1 else None

    @property
    def train_ds(self):
        return self.train.dataset

    @property
    def valid_ds(self):
        return None if self.valid is None else self.valid.dataset

    @property
    def bs(self) -> int | None:
        """The training batch size."""
        return getattr(self.train, "batch_size", None)

    def one_batch(self) -> Any:
        """The first batch of the training loader."""
        for b in self.train:
            return b
        raise ValueError(f"DataLoaders.one_batch: the training loader yields no batch "
                         f"(dataset of {len(self.train_ds)} items, bs={self.bs}, "
                         f"drop_last={getattr(self.train, 'drop_last', None)})")

    def test_dl(self, x, y=None, bs: int | None = None) -> DataLoader:
        """A loader over new inputs (and optional targets) with the validation settings."""
        tensors = [_as_tensor(x, "x")] + ([] if y is None else [_as_tensor(y, "y")])
        if y is not None and tensors[0].shape[0] != tensors[1].shape[0]:
            raise ValueError(f"DataLoaders.test_dl: x has {tensors[0].shape[0]} samples and y "
                             f"{tensors[1].shape[0]}")
        bs = bs or getattr(self.valid or self.train, "batch_size", None) or 64
        return DataLoader(TensorDataset(*tensors), batch_size=bs, shuffle=False)

    @classmethod
    def from_dsets(cls, *dsets, path: str = ".", bs: int = 64, val_bs: int | None = None,
                   shuffle: bool = True, drop_last: bool | None = None, num_workers: int = 0,
                   collate_fn=None, device=None, **kwargs) -> "DataLoaders":
        """Loaders over datasets: the first trains (shuffled, last partial batch dropped),
        the others validate (in order, all samples). Extra ``kwargs`` go to every DataLoader.
        """
        if not dsets:
            raise ValueError("DataLoaders.from_dsets: give at least a training dataset")
        for i, d in enumerate(dsets):
            if not hasattr(d, "__getitem__") and not hasattr(d, "__iter__"):
                raise TypeError(f"DataLoaders.from_dsets: dataset {i} is a "
                                f"{type(d).__name__}, not a Dataset")
        if not isinstance(bs, int) or bs < 1:
            raise ValueError(f"DataLoaders.from_dsets: bs must be a positive int, got {bs!r}")
        loaders = []
        for i, d in enumerate(dsets):
            train = i == 0
            loaders.append(DataLoader(
                d, batch_size=bs if train else (val_bs or bs), shuffle=shuffle and train,
                drop_last=(train if drop_last is None else drop_last and train),
                num_workers=num_workers, collate_fn=collate_fn, **kwargs))
        return cls(*loaders, path=path, device=device)

    @classmethod
    def from_arrays(cls, x, y, valid_pct: float = 0.2, bs: int = 64, shuffle: bool = True,
                    seed: int | None = None, valid: Sequence | None = None,
                    val_bs: int | None = None, path: str = ".", vocab: Sequence | None = None,
                    **kwargs) -> "DataLoaders":
        """Loaders over arrays ``x`` (inputs) and ``y`` (targets), with a random
        ``valid_pct`` of the samples held out for validation (fastai's RandomSplitter; a
        ``seed`` makes the split reproducible, else ember's global RNG draws it; the indices
        are kept in ``dls.splits``). Pass
        ``valid=(x_valid, y_valid)`` to give the validation set instead.

        The loss the Learner uses by default follows the targets: cross-entropy for integer
        class labels, mean squared error for floating values. ``vocab`` names the classes
        (``vocab[i]`` for label ``i``) in ``predict`` and ``show_results``.
        """
        xt, yt = _as_tensor(x, "x"), _as_tensor(y, "y")
        if xt.ndim == 0 or yt.ndim == 0 or xt.shape[0] != yt.shape[0]:
            raise ValueError(f"DataLoaders.from_arrays: x {tuple(xt.shape)} and y "
                             f"{tuple(yt.shape)} must have the same number of samples "
                             f"(first dimension)")
        ds = TensorDataset(xt, yt)
        if valid is not None:
            if valid_pct not in (0.2, 0, 0.0, None):
                raise ValueError("DataLoaders.from_arrays: give valid_pct or valid, not both")
            train_ds = ds
            valid_ds = TensorDataset(_as_tensor(valid[0], "valid x"),
                                     _as_tensor(valid[1], "valid y"))
        else:
            if not 0 <= valid_pct < 1:
                raise ValueError(f"DataLoaders.from_arrays: valid_pct must be in [0, 1), got "
                                 f"{valid_pct}")
            n = len(ds)
            gen = None if seed is None else Generator().manual_seed(seed)
            idx = randperm(n, generator=gen).numpy()
            cut = int(valid_pct * n)
            splits = (idx[cut:], idx[:cut])
            # gathered TensorDatasets, not Subsets: the DataLoader batches a TensorDataset
            # with one indexing per tensor instead of one per sample
            train_ds, valid_ds = (TensorDataset(xt[Tensor._wrap(i)], yt[Tensor._wrap(i)])
                                  for i in splits)
        dls = cls.from_dsets(train_ds, valid_ds, bs=bs, val_bs=val_bs, shuffle=shuffle,
                             path=path, **kwargs)
        dls.splits = (splits[0].tolist(), splits[1].tolist()) if valid is None else None
        dls.loss_func = _default_loss(yt)
        dls.vocab = None if vocab is None else list(vocab)
        return dls

    def __repr__(self) -> str:
        sizes = ", ".join(str(_len(dl)) for dl in self.loaders)
        return f"DataLoaders({len(self.loaders)} loaders, samples: {sizes}, bs={self.bs})"


def _len(dl) -> Any:
    try:
        return len(dl.dataset)
    except (AttributeError, TypeError):
        return "?"


def _default_loss(y: Tensor):
    from .losses import CrossEntropyLossFlat, MSELossFlat
    if y.dtype.is_floating_point:
        return MSELossFlat()
    return CrossEntropyLossFlat()
