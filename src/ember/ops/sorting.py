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
        return values_indices(input.clone(), Tensor._wrap(np.zeros((), np.int64), input._dev))
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
