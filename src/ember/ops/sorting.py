"""Sorting and selection: sort, argsort, topk, kthvalue, unique."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .. import dtypes as _dt
from ..errors import check_dim
from ..tensor import Tensor
from .registry import apply, register

values_indices = namedtuple("values_indices", ["values", "indices"])


def _descending_order(xp, x, dim):
    """A stable descending argsort; NaN counts as the largest value, as in PyTorch."""
    keys = x.astype(np.int64) if x.dtype.kind in "ub" else x
    idx = xp.argsort(-keys, axis=dim, kind="stable")
    if x.dtype.kind == "f":
        nan = xp.isnan(xp.take_along_axis(x, idx, dim))
        if nan.any():
            idx = xp.take_along_axis(idx, xp.argsort(~nan, axis=dim, kind="stable"), dim)
    return idx


@register("sort", saves=(), extra=True)
def _sort(xp, x, dim, descending=False):
    idx = _descending_order(xp, x, dim) if descending else xp.argsort(x, axis=dim, kind="stable")
    idx = idx.astype(np.int64, copy=False)
    return xp.take_along_axis(x, idx, axis=dim), idx


def _take_backward(node, g):
    from .indexing import _scatter_into_zeros
    x = node.inputs[0]
    idx = Tensor._wrap(node.saved, x._dev)
    return (_scatter_into_zeros(g, idx, node.attrs["dim"], x.shape),)


_sort.def_backward(_take_backward)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """Sorted values and their indices along ``dim`` (ties keep their order)."""
    if input.ndim == 0:
        from .creation import wrap_constant  # creation imports the op families
        return values_indices(input.clone(), wrap_constant(np.zeros((), np.int64), input._dev))
    d = check_dim("sort", dim, input.ndim)
    vals, idx = apply(_sort, (input,), {"dim": d, "descending": descending})
    return values_indices(vals, Tensor._wrap(idx, input._dev))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    return sort(input, dim, descending, stable).indices


def msort(input):
    return sort(input, 0).values


@register("topk", saves=(), extra=True)
def _topk(xp, x, k, dim, largest=True):
    if largest:
        idx = _descending_order(xp, x, dim)
    else:
        idx = xp.argsort(x, axis=dim, kind="stable")
    idx = xp.take(idx, xp.arange(k), axis=dim).astype(np.int64, copy=False)
    return xp.take_along_axis(x, idx, axis=dim), idx


_topk.def_backward(_take_backward)


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """The ``k`` largest (or smallest) values along ``dim`` and their indices."""
    d = check_dim("topk", dim, input.ndim) if input.ndim else 0
    n = input.shape[d] if input.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: k ({k}) is out of range for dimension {d} of size {n} "
                           f"(input shape {tuple(input.shape)})")
    x = input if input.ndim else input.reshape(1)
    vals, idx = apply(_topk, (x,), {"k": k, "dim": d, "largest": largest})
    if input.ndim == 0:
        vals, idx = vals.reshape(()), idx.reshape(())
    return values_indices(vals, Tensor._wrap(idx, input._dev))


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """The ``k``-th smallest value along ``dim`` and its index (NaN counts as the largest)."""
    d = check_dim("kthvalue", dim, input.ndim)
    if input.ndim == 0:
        v, i = kthvalue(input.reshape(1), k, 0)
        return values_indices(v, i)
    vals, idx = topk(input, k, d, largest=False)
    v, i = vals.narrow(d, k - 1, 1), idx.narrow(d, k - 1, 1)
    if not keepdim:
        v, i = v.squeeze(d), i.squeeze(d)
    return values_indices(v, i)


def median(input: Tensor, dim=None, keepdim: bool = False):
    """The lower median (PyTorch's convention), with its index when ``dim`` is given.

    Where the values hold a NaN the median is NaN, at the index of the first NaN (PyTorch's
    rule; ``nanmedian`` would skip them).
    """
    if dim is None:
        if input._data.size == 0 and not input.is_floating_point():
            raise IndexError(f"median: the median of an empty {input.dtype} tensor is "
                             f"undefined (shape {tuple(input.shape)})")
        return apply(_median_all, (input,))
    d = check_dim("median", dim, input.ndim)
    if input.ndim == 0:
        return _median(input.reshape(1), 0, False)
    if input.shape[d] == 0:
        raise IndexError(f"median: expected reduction dim {d} to have non-zero size "
                         f"(input shape {tuple(input.shape)})")
    return _median(input, d, keepdim)


@register("median_all", saves=(0,), saves_output=True)
def _median_all(xp, x):
    flat = xp.sort(x.reshape(-1))  # NaN sorts last
    if flat.size == 0 or flat[-1] != flat[-1]:
        return xp.full((), xp.nan, x.dtype)
    return flat[(flat.size - 1) // 2]


@_median_all.def_backward
def _(node, g):
    # Unlike median(dim), which picks one index, the full median shares its gradient evenly
    # among the elements equal to it (the NaNs, when it is NaN): PyTorch's documented
    # deterministic subgradient.
    x, out = node.inputs[0].detach(), node.output().detach()
    mask = (x == out) | (x.isnan() & out.isnan()) if x.is_floating_point() else x == out
    mask = mask.type(g.dtype)
    return (g * mask / mask.sum(),)


def _median(x: Tensor, d: int, keepdim: bool):
    from .comparison import where
    from .indexing import gather
    n = x.shape[d]
    vals, idx = sort(x, d)  # stable and ascending, so NaNs come last in their input order
    shape = x.shape[:d] + (1,) + x.shape[d + 1:]
    pos = x.new_full(shape, (n + 1) // 2 - 1, dtype=_dt.int64)
    if x.is_floating_point():
        nans = x.isnan().sum(d, keepdim=True)
        pos = where(nans > 0, n - nans, pos)  # the first NaN's place in the sorted order
    v, i = gather(vals, d, pos), gather(idx, d, pos)
    if not keepdim:
        v, i = v.squeeze(d), i.squeeze(d)
    return values_indices(v, i)


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim=None):
    a = input._data
    if dim is None:
        res = np.unique(a, return_inverse=return_inverse, return_counts=return_counts)
    else:
        res = np.unique(a, return_inverse=return_inverse, return_counts=return_counts,
                        axis=check_dim("unique", dim, input.ndim))
    if not isinstance(res, tuple):
        return Tensor._wrap(res, input._dev)
    out = [Tensor._wrap(res[0], input._dev)]
    i = 1
    if return_inverse:
        out.append(Tensor._wrap(res[i].reshape(input.shape if dim is None else -1)
                                .astype(np.int64), input._dev))
        i += 1
    if return_counts:
        out.append(Tensor._wrap(res[i].astype(np.int64), input._dev))
    return tuple(out)


def _searchsorted_forward(xp, seq, values, right=False, out_int32=False):
    dt = np.int32 if out_int32 else np.int64
    if seq.ndim == 1:
        return xp.asarray(xp.searchsorted(seq, values, side="right" if right else "left"),
                          dtype=dt)
    # Rows of a batch at once: sort each row's sequence and values together (values before
    # equal sequence entries for side="left", after them for "right"); a value's answer is
    # the count of sequence entries sorted before it in its row.
    rows, m, k = int(np.prod(seq.shape[:-1])), seq.shape[-1], values.shape[-1]
    keys = xp.concatenate([seq.reshape(rows, m), values.reshape(rows, k)], axis=1)
    is_seq = xp.concatenate([xp.ones((rows, m), np.int64), xp.zeros((rows, k), np.int64)], 1)
    tie = is_seq if not right else 1 - is_seq
    row = xp.broadcast_to(xp.arange(rows)[:, None], keys.shape)
    order = xp.lexsort((tie.ravel(), keys.ravel(), row.ravel()))
    before = xp.cumsum(is_seq.ravel()[order]) - xp.repeat(xp.arange(rows) * m, m + k)
    out = xp.empty(rows * (m + k), np.int64)
    out[order] = before
    return out.reshape(rows, m + k)[:, m:].reshape(values.shape).astype(dt)


_searchsorted = register("searchsorted")(_searchsorted_forward)


def searchsorted(sorted_sequence: Tensor, input, *, out_int32: bool = False,
                 right: bool = False, side=None, sorter=None) -> Tensor:
    """Indices where ``input`` would be inserted into the innermost dim of
    ``sorted_sequence`` to keep it sorted (``right``/``side="right"``: after equal entries).
    A batched sequence (..., M) pairs with values (..., K) of the same leading dims."""
    if side is not None:
        if side not in ("left", "right") or (side == "left" and right):
            raise RuntimeError(f"searchsorted: side must be 'left' or 'right' and agree "
                               f"with right={right}, got side={side!r}")
        right = side == "right"
    if sorter is not None:
        from .indexing import gather
        sorted_sequence = gather(sorted_sequence, -1, sorter)
    scalar = not isinstance(input, Tensor)
    values = input if not scalar else Tensor._wrap(
        np.asarray(input, dtype=sorted_sequence._data.dtype), sorted_sequence._dev)
    if sorted_sequence.ndim == 0:
        raise RuntimeError("searchsorted: sorted_sequence must have at least one dimension")
    if sorted_sequence.ndim > 1 and (values.ndim != sorted_sequence.ndim or
                                     values.shape[:-1] != sorted_sequence.shape[:-1]):
        raise RuntimeError(f"searchsorted: a batched sorted_sequence "
                           f"{tuple(sorted_sequence.shape)} needs values with the same "
                           f"leading dims, got {tuple(values.shape)}")
    rt = _dt.result_type(sorted_sequence, values).np
    seq, vals = sorted_sequence._data.astype(rt, copy=False), values._data.astype(rt, copy=False)
    return apply(_searchsorted, (Tensor._wrap(seq, sorted_sequence._dev),
                                 Tensor._wrap(vals, sorted_sequence._dev)),
                 {"right": right, "out_int32": out_int32})


def bucketize(input, boundaries: Tensor, *, out_int32: bool = False, right: bool = False):
    """The bucket of each value among the 1-d sorted ``boundaries``: ``i`` such that
    ``boundaries[i-1] < x <= boundaries[i]`` (``right``: ``boundaries[i-1] <= x <
    boundaries[i]``)."""
    if boundaries.ndim != 1:
        raise RuntimeError(f"bucketize: boundaries must be 1-d, got shape "
                           f"{tuple(boundaries.shape)}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def quantile(input: Tensor, q, dim=None, keepdim: bool = False, *,
             interpolation: str = "linear") -> Tensor:
    """The ``q``-th quantiles (``q`` a number or a 1-d tensor in [0, 1]) along ``dim`` (all
    elements by default), interpolating between the two nearest sorted values; a tensor ``q``
    adds a leading dim. A slice holding a NaN gives NaN."""
    if not input.is_floating_point():
        raise RuntimeError(f"quantile: input must be a float or double tensor, got "
                           f"{input.dtype}")
    scalar_q = not isinstance(q, Tensor)
    qa = np.asarray(q if scalar_q else q._data, dtype=np.float64)
    if qa.ndim > 1 or ((qa < 0) | (qa > 1)).any():
        raise RuntimeError(f"quantile: q must be a number or a 1-d tensor of values in [0, 1], "
                           f"got {q!r}")
    if interpolation not in ("linear", "lower", "higher", "nearest", "midpoint"):
        raise ValueError(f"quantile: interpolation must be linear, lower, higher, nearest or "
                         f"midpoint, got {interpolation!r}")
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else check_dim("quantile", dim, input.ndim)
    n = x.shape[d]
    if n == 0:
        raise IndexError(f"quantile: input slice along dim {d} is empty (shape "
                         f"{tuple(input.shape)})")
    pos = qa.reshape(-1) * (n - 1)
    if interpolation == "lower":
        pos = np.floor(pos)
    elif interpolation == "higher":
        pos = np.ceil(pos)
    elif interpolation == "nearest":
        pos = np.round(pos)  # half to even, as PyTorch
    lo, hi = np.floor(pos).astype(np.int64), np.ceil(pos).astype(np.int64)
    frac = np.where(hi > lo, 0.5, 0.0) if interpolation == "midpoint" else pos - lo
    v = sort(x, d).values
    a = v.index_select(d, Tensor._wrap(lo, x._dev))
    b = v.index_select(d, Tensor._wrap(hi, x._dev))
    shape = [1] * x.ndim
    shape[d] = -1
    w = Tensor._wrap(frac.astype(x._data.dtype).reshape(shape), x._dev)
    out = a + (b - a) * w
    from .comparison import isnan, where
    out = where(isnan(x).any(d, keepdim=True), float("nan"), out)
    out = out.movedim(d, 0)  # the q dim leads
    if keepdim:
        out = out.reshape((len(pos),) + (1,) * input.ndim) if dim is None else out.unsqueeze(
            d + 1)
    return out.squeeze(0) if scalar_q else out
