"""ONNX rules for ``ember.ops.sorting``: sort and topk as ``TopK`` (ties keep the lower index
first, as ember's stable sort), median of all elements, searchsorted as a count of smaller
entries."""
from __future__ import annotations

import numpy as np

from .._builder import onnx_rule


@onnx_rule("sort")
def _sort(b, node):
    v = node.inputs[0]
    d = node.attrs["dim"]
    k = b.dim(b.x(0), v, d)
    x = b.cast(b.x(0), np.uint8) if v.dtype.kind == "b" else b.x(0)
    vals, idx = b.op("TopK", [x, k], outputs=2, axis=d,
                     largest=int(bool(node.attrs.get("descending", False))), sorted=1)
    return [b.cast(vals, np.bool_) if v.dtype.kind == "b" else vals, idx]


@onnx_rule("topk")
def _topk(b, node):
    a = node.attrs
    is_bool = node.inputs[0].dtype.kind == "b"
    x = b.cast(b.x(0), np.uint8) if is_bool else b.x(0)
    vals, idx = b.op("TopK", [x, b.ints([a["k"]])], outputs=2, axis=a["dim"],
                     largest=int(bool(a.get("largest", True))), sorted=1)
    return [b.cast(vals, np.bool_) if is_bool else vals, idx]


@onnx_rule("median_all")
def _median_all(b, node):
    v = node.inputs[0]
    shape = b.shape(v)
    if None in shape:
        b.unsupported("median of a tensor whose size follows a dynamic axis")
    n = int(np.prod(shape))
    flat = b.op("Reshape", [b.x(0), b.ints([-1])])
    k = (n - 1) // 2
    smallest, _ = b.op("TopK", [flat, b.ints([k + 1])], outputs=2, axis=0, largest=0,
                       sorted=1)
    med = b.op("Gather", [smallest, b.scalar(k, np.int64)], axis=0)
    if v.dtype.kind != "f":
        return med
    # any NaN makes the median NaN (NaN sorts last in ember)
    has_nan = b.cast(b.reduce("ReduceMax", b.cast(b.op("IsNaN", [flat]), np.uint8), None,
                              False), np.bool_)
    return b.op("Where", [has_nan, b.scalar(np.nan, v.dtype), med])


@onnx_rule("searchsorted")
def _searchsorted(b, node):
    seq, values = node.inputs
    a = node.attrs
    s = b.x(0)
    if len(seq.shape) > 1:
        s = b.unsqueeze(s, [-2])                  # (..., 1, M)
    vals = b.unsqueeze(b.x(1), [-1])              # (..., K, 1)
    cmp = b.op("LessOrEqual" if a.get("right") else "Less", [s, vals])
    count = b.reduce("ReduceSum", b.cast(cmp, np.int64), [-1], False)
    return b.cast(count, np.int32) if a.get("out_int32") else count
