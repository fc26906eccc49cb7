"""Reductions and selection by value: ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/
SumSquare, ArgMax/ArgMin, TopK.

Axes come as an attribute (opset < 18, ReduceSum < 13) or as the optional second input;
``noop_with_empty_axes=1`` with no axes returns the input unchanged. Reducing an empty
dimension gives the reduction's identity (0, 1, -inf, +inf) as in ONNX.
"""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes as D
from ... import ops
from ...ops import arithmetic as A
from ...ops import reduction as R
from ...ops import shape as S
from ...ops import sorting
from ...ops import unary as U
from . import rule
from .math import same_dtype


def _axes(ctx, node, ins):
    """The reduced dims (sorted, non-negative), or None for the no-op case."""
    x = ins[0]
    if len(ins) > 1 and ins[1] is not None:
        axes = ctx.ints(ins[1])
    else:
        axes = node.attr("axes")
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return None
        return tuple(range(x.ndim))
    return tuple(sorted({ctx.axis(a, x.ndim, "axis") for a in axes}))


def _out_shape(shape, dims, keep):
    return tuple(1 if i in dims else n for i, n in enumerate(shape) if keep or i not in dims)


def _reduction(kernel, identity, *, float_compute: bool = False):
    """A Reduce* rule from ``kernel(x, dims, keepdim)``; ``identity`` fills empty reductions."""
    def run(ctx, node, ins):
        x = ins[0]
        dims = _axes(ctx, node, ins)
        if dims is None:
            return S.clone(x)
        keep = bool(node.attr("keepdims", 1))
        src = x
        if x._data.dtype.kind == "b":
            src = A.cast(x, D.uint8)
        elif float_compute and x._data.dtype.kind != "f":
            src = A.cast(x, D.float64)
        if any(x.shape[d] == 0 for d in dims):
            fill = identity(x._data.dtype) if callable(identity) else identity
            return ops.creation.full(_out_shape(x.shape, dims, keep), fill, dtype=x.dtype)
        if not dims:  # a 0-d input: the elementwise part of the reduction only
            out = kernel(S.unsqueeze(src, 0), (0,), False)
        else:
            out = kernel(src, dims, keep)
        return same_dtype(out, x)
    return run


def _lowest(dt):
    return -math.inf if dt.kind == "f" else (False if dt.kind == "b" else np.iinfo(dt).min)


def _highest(dt):
    return math.inf if dt.kind == "f" else (True if dt.kind == "b" else np.iinfo(dt).max)


rule("ReduceSum")(_reduction(lambda x, d, k: R.sum(x, d, keepdim=k), 0))
rule("ReduceMean")(_reduction(lambda x, d, k: R.mean(x, d, keepdim=k), math.nan,
                              float_compute=True))
rule("ReduceMax")(_reduction(lambda x, d, k: R.amax(x, d, keepdim=k), _lowest))
rule("ReduceMin")(_reduction(lambda x, d, k: R.amin(x, d, keepdim=k), _highest))
rule("ReduceProd")(_reduction(lambda x, d, k: _prod(x, d, k), 1))
rule("ReduceL1")(_reduction(lambda x, d, k: R.sum(U.abs(x), d, keepdim=k), 0))
rule("ReduceL2")(_reduction(lambda x, d, k: U.sqrt(R.sum(A.mul(x, x), d, keepdim=k)), 0,
                            float_compute=True))
rule("ReduceSumSquare")(_reduction(lambda x, d, k: R.sum(A.mul(x, x), d, keepdim=k), 0))
rule("ReduceLogSum")(_reduction(lambda x, d, k: U.log(R.sum(x, d, keepdim=k)), -math.inf,
                                float_compute=True))
rule("ReduceLogSumExp")(_reduction(lambda x, d, k: R.logsumexp(x, d, keepdim=k), -math.inf,
                                   float_compute=True))


def _prod(x, dims, keep):
    """ember's prod reduces one dim: move ``dims`` last and merge them first."""
    rest = [i for i in range(x.ndim) if i not in dims]
    y = S.reshape(S.permute(x, rest + list(dims)), tuple(x.shape[i] for i in rest) + (-1,))
    return S.reshape(R.prod(y, -1), _out_shape(x.shape, dims, keep))


def _arg(fn):
    def run(ctx, node, ins):
        x = ins[0]
        d = ctx.axis(node.attr("axis", 0), x.ndim)
        keep = bool(node.attr("keepdims", 1))
        src = A.cast(x, D.uint8) if x._data.dtype.kind == "b" else x
        if node.attr("select_last_index", 0):
            n = x.shape[d]
            idx = A.sub(n - 1, fn(S.flip(src, d), d, keepdim=keep))
        else:
            idx = fn(src, d, keepdim=keep)
        return idx
    return run


rule("ArgMax")(_arg(R.argmax))
rule("ArgMin")(_arg(R.argmin))


@rule("TopK")
def _topk(ctx, node, ins):
    x, k = ins
    d = ctx.axis(node.attr("axis", -1), x.ndim)
    kk = int(ctx.scalar(k))
    if not 0 <= kk <= x.shape[d]:
        raise ctx.error(f"K={kk} is out of range for axis {d} of size {x.shape[d]}")
    largest = bool(node.attr("largest", 1))
    # a stable sort keeps equal values in index order, as ONNX requires
    key = A.neg(x) if largest and x._data.dtype.kind != "u" else x
    if largest and x._data.dtype.kind == "u":
        key = A.sub(A.cast(ops.creation.full_like(x, _highest(x._data.dtype)), x.dtype), x)
    idx = sorting.argsort(key, dim=d, stable=True)
    idx = S.narrow(idx, d, 0, kk)
    from ...ops.indexing import gather
    return gather(x, d, idx), idx


@rule("Unique")
def _unique(ctx, node, ins):
    x = ins[0]
    axis = node.attr("axis")
    data = ctx.array(x)
    if axis is None:
        src, d = S.reshape(x, (-1,)), 0
        y, first, inverse, counts = np.unique(data.reshape(-1), True, True, True)
    else:
        d = ctx.axis(axis, x.ndim)
        src = x
        y, first, inverse, counts = np.unique(data, True, True, True, axis=d)
    inverse = inverse.reshape(-1)
    if not node.attr("sorted", 1):
        # order of first occurrence
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        first, counts, inverse = first[order], counts[order], rank[inverse]
    from .shape import _gather_rows
    values = _gather_rows(ctx, src, d, ctx.const(first.astype(np.int64)))
    return [values, ctx.const(first.astype(np.int64)), ctx.const(inverse.astype(np.int64)),
            ctx.const(counts.astype(np.int64))]
