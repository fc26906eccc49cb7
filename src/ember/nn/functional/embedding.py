"""``F.embedding``, ``F.one_hot`` (the primitive lives in ``ember.ops.embedding``) and
``F.embedding_bag``, composed from them."""
from __future__ import annotations

import numpy as np

from ...ops.embedding import embedding, one_hot
from ...tensor import Tensor

__all__ = ["embedding", "one_hot", "embedding_bag"]


def embedding_bag(input: Tensor, weight: Tensor, offsets=None, max_norm=None,
                  norm_type: float = 2, scale_grad_by_freq: bool = False, mode: str = "mean",
                  sparse: bool = False, per_sample_weights=None,
                  include_last_offset: bool = False, padding_idx=None) -> Tensor:
    """Sum, mean or max of the embedding rows of each bag, without forming the (bags,
    length, dim) lookup. Bags are the rows of a 2-d ``input``, or slices of a 1-d ``input``
    starting at ``offsets``; an empty bag gives zeros, and ``padding_idx`` entries are left
    out (also from a mean's count)."""
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights needs mode='sum', got "
                                  f"mode={mode!r}")
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError(f"embedding_bag: offsets must be None for a 2-d input (bags are "
                             f"its rows), got input {tuple(input.shape)}")
        n_bags, length = input.shape
        starts = np.arange(n_bags) * length
        flat = input.reshape(-1)
        psw = None if per_sample_weights is None else per_sample_weights.reshape(-1)
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("embedding_bag: a 1-d input needs offsets (where each bag starts)")
        starts = np.asarray(offsets._data if isinstance(offsets, Tensor) else offsets,
                            np.int64).reshape(-1)
        if include_last_offset:
            starts = starts[:-1]
        n_bags = len(starts)
        if n_bags and (starts[0] != 0 or (np.diff(starts) < 0).any()
                       or starts[-1] > input.shape[0]):
            raise ValueError(f"embedding_bag: offsets must start at 0 and be non-decreasing "
                             f"within the input's {input.shape[0]} entries, got {starts}")
        flat, psw = input, per_sample_weights
    else:
        raise ValueError(f"embedding_bag: input must be 1-d (with offsets) or 2-d, got shape "
                         f"{tuple(input.shape)}")
    n = flat.shape[0]
    bag = np.searchsorted(starts, np.arange(n), side="right") - 1  # the bag of each entry
    keep = np.ones(n, bool)
    if padding_idx is not None:
        keep = flat._data != (padding_idx % weight.shape[0])
    if not keep.all():
        kept = Tensor._wrap(np.flatnonzero(keep), flat._dev)
        flat = flat.index_select(0, kept)
        psw = None if psw is None else psw.index_select(0, kept)
        bag = bag[keep]
    rows = embedding(flat, weight, None, max_norm, norm_type)
    if psw is not None:
        rows = rows * psw.unsqueeze(-1)
    dim = weight.shape[1]
    counts = np.bincount(bag, minlength=n_bags)
    bag_t = Tensor._wrap(bag.astype(np.int64), flat._dev)
    if mode in ("sum", "mean"):
        out = rows.new_zeros((n_bags, dim)).index_add(0, bag_t, rows)
        if mode == "mean":
            div = np.maximum(counts, 1).astype(out._data.dtype).reshape(-1, 1)
            out = out / Tensor._wrap(div, out._dev)
        return out
    # max: lay each bag out in a padded (bags, longest, dim) block of -inf, then reduce
    longest = int(counts.max(initial=0))
    if longest == 0:
        return rows.new_zeros((n_bags, dim))
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(bag)) - first[bag]
    block = rows.new_full((n_bags * longest, dim), float("-inf"))
    block = block.index_put((Tensor._wrap(bag * longest + rank, flat._dev),), rows)
    out = block.reshape(n_bags, longest, dim).amax(1)
    from ...ops.comparison import where
    empty = Tensor._wrap((counts == 0).reshape(-1, 1), out._dev)
    return where(empty, 0.0, out)
