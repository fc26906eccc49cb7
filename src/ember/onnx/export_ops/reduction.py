"""ONNX rules for ``ember.ops.reduction``: sum/mean/prod, max/min (with indices), argmax,
logsumexp, cumsum/cumprod, histc, all/any/count_nonzero."""
from __future__ import annotations

import numpy as np

from .._builder import not_exportable, onnx_rule


def _int64_if_integral(b, node):
    """The input, cast to int64 for integer and bool inputs (NumPy sums those in int64)."""
    x = b.x(0)
    if node.inputs[0].dtype.kind in "biu" and node.inputs[0].dtype != np.int64:
        x = b.cast(x, np.int64)
    return x


def _any_nan(b, x, axes, keepdim):
    """Bool: does ``x`` hold a NaN along ``axes``?"""
    return b.cast(b.reduce("ReduceMax", b.cast(b.op("IsNaN", [x]), np.uint8), axes, keepdim),
                  np.bool_)


def _reduce_rule(op_type, axes_key="axes", integral=False):
    def rule(b, node):
        a = node.attrs or {}
        axes = a.get(axes_key)
        if isinstance(axes, int):
            axes = (axes,)
        keepdim = a.get("keepdim", False)
        x = _int64_if_integral(b, node) if integral else b.x(0)
        dt = node.inputs[0].dtype
        if not integral and dt.kind == "b":
            x = b.cast(x, np.uint8)  # ONNX's max/min take no bools
        out = b.reduce(op_type, x, axes, keepdim)
        if not integral and dt.kind == "b":
            return b.cast(out, np.bool_)
        if op_type in ("ReduceMax", "ReduceMin") and dt.kind == "f":
            # NaN wins, as in NumPy and PyTorch (onnxruntime's max skips it)
            nan = b.scalar(np.nan, dt)
            out = b.op("Where", [_any_nan(b, x, axes, keepdim), nan, out])
        return out
    return rule


onnx_rule("sum")(_reduce_rule("ReduceSum", integral=True))
onnx_rule("prod")(_reduce_rule("ReduceProd", "axis", integral=True))
onnx_rule("mean")(_reduce_rule("ReduceMean"))
onnx_rule("amax")(_reduce_rule("ReduceMax"))
onnx_rule("amin")(_reduce_rule("ReduceMin"))


@onnx_rule("logsumexp")
def _logsumexp(b, node):
    # max-shifted like ember's kernel (exact for -inf rows, no overflow for huge values)
    x = b.x(0)
    a = node.attrs
    axes, keepdim = a["axes"], a.get("keepdim", False)
    dt = node.outputs[0].dtype
    m = b.reduce("ReduceMax", x, axes, True)
    m = b.op("Where", [b.op("IsInf", [m]), b.scalar(0, dt), m])
    s = b.reduce("ReduceSum", b.op("Exp", [b.op("Sub", [x, m])]), axes, True)
    out = b.op("Add", [b.op("Log", [s]), m])
    return out if keepdim else b.squeeze(out, axes)


def _value_and_index(arg_type):
    def rule(b, node):
        x = b.x(0)
        dim, keepdim = node.attrs["dim"], node.attrs.get("keepdim", False)
        if node.inputs[0].dtype.kind == "b":
            x = b.cast(x, np.uint8)
        idx = _arg_nan_first(b, node, arg_type, x, dim)
        vals = b.op("GatherElements", [b.x(0), idx], axis=dim)
        if not keepdim:
            idx, vals = b.squeeze(idx, [dim]), b.squeeze(vals, [dim])
        return [vals, idx]
    return rule


onnx_rule("max_dim")(_value_and_index("ArgMax"))
onnx_rule("min_dim")(_value_and_index("ArgMin"))


def _arg_nan_first(b, node, op_type, x, dim):
    """``ArgMax``/``ArgMin`` (keepdims) where the first NaN wins, as in NumPy."""
    idx = b.op(op_type, [x], axis=dim, keepdims=1)
    if node.inputs[0].dtype.kind != "f":
        return idx
    isnan = b.op("IsNaN", [x])
    first_nan = b.op("ArgMax", [b.cast(isnan, np.uint8)], axis=dim, keepdims=1)
    return b.op("Where", [_any_nan(b, x, [dim], True), first_nan, idx])


def _arg(op_type):
    def rule(b, node):
        x = b.x(0)
        if node.inputs[0].dtype.kind == "b":
            x = b.cast(x, np.uint8)
        a = node.attrs or {}
        keepdim = a.get("keepdim", False)
        nd = len(node.inputs[0].shape)
        if a.get("dim") is None or not nd:  # over the flattened tensor
            flat = _arg_nan_first(b, node, op_type, b.op("Reshape", [x, b.ints([-1])]), 0)
            return b.op("Reshape", [flat, b.ints([1] * nd if keepdim and nd else [])])
        idx = _arg_nan_first(b, node, op_type, x, a["dim"])
        return idx if keepdim else b.squeeze(idx, [a["dim"]])
    return rule


onnx_rule("argmax")(_arg("ArgMax"))
onnx_rule("argmin")(_arg("ArgMin"))


@onnx_rule("cumsum")
def _cumsum(b, node):
    return b.op("CumSum", [_int64_if_integral(b, node), b.ints([node.attrs["dim"]])])


@onnx_rule("cumprod")
def _cumprod(b, node):
    # ONNX has no CumProd: out[..., k] = prod over j <= k, as a product over a masked
    # (..., n, n) grid
    x = _int64_if_integral(b, node)
    v = node.inputs[0]
    d, nd = node.attrs["dim"], len(v.shape)
    perm = [i for i in range(nd) if i != d] + [d]
    xt = b.transpose(x, perm)
    n = b.scalar_dim(b.x(0), v, d)
    r = b.op("Range", [b.scalar(0, np.int64), n, b.scalar(1, np.int64)])
    mask = b.op("LessOrEqual", [b.unsqueeze(r, [0]), b.unsqueeze(r, [1])])  # [k, j]: j <= k
    one = b.scalar(1, np.int64 if node.outputs[0].dtype == np.int64 else v.dtype)
    grid = b.op("Where", [mask, b.unsqueeze(xt, [-2]), one])
    out = b.reduce("ReduceProd", grid, [-1], False)
    inv = [int(i) for i in np.argsort(perm)]
    return b.transpose(out, inv)


@onnx_rule("all", "any")
def _all_any(b, node):
    a = node.attrs or {}
    x = b.x(0)
    if node.inputs[0].dtype.kind != "b":
        x = b.op("Not", [b.op("Equal", [x, b.scalar(0, node.inputs[0].dtype)])])
    op_type = "ReduceMin" if node.op.name == "all" else "ReduceMax"
    out = b.reduce(op_type, b.cast(x, np.uint8), a.get("axes"), a.get("keepdim", False))
    return b.cast(out, np.bool_)


@onnx_rule("count_nonzero")
def _count_nonzero(b, node):
    x = b.x(0)
    nz = b.op("Not", [b.op("Equal", [x, b.scalar(0, node.inputs[0].dtype)])])
    return b.reduce("ReduceSum", b.cast(nz, np.int64), (node.attrs or {}).get("axes"), False)


@onnx_rule("histc")
def _histc(b, node):
    a = node.attrs
    lo, hi, bins = a["min"], a["max"], a["bins"]
    if lo == hi:
        b.unsupported("histc with min == max takes its range from the data, which the "
                      "traced graph baked in; give explicit min and max")
    dt = node.inputs[0].dtype
    x = b.op("Reshape", [b.x(0), b.ints([-1])])
    # NumPy's histogram: bin = floor((x - lo) / (hi - lo) * bins), x == hi in the last bin
    scaled = b.op("Mul", [b.op("Div", [b.op("Sub", [x, b.scalar(lo, dt)]),
                                       b.scalar(hi - lo, dt)]), b.scalar(bins, dt)])
    idx = b.cast(b.op("Floor", [scaled]), np.int64)
    idx = b.op("Where", [b.op("Equal", [x, b.scalar(hi, dt)]), b.scalar(bins - 1, np.int64),
                         idx])
    inside = b.op("And", [b.op("GreaterOrEqual", [x, b.scalar(lo, dt)]),
                          b.op("LessOrEqual", [x, b.scalar(hi, dt)])])
    onehot = b.op("And", [b.op("Equal", [b.unsqueeze(idx, [-1]),
                                         b.const(np.arange(bins, dtype=np.int64))]),
                          b.unsqueeze(inside, [-1])])
    counts = b.reduce("ReduceSum", b.cast(onehot, np.int64), [0], False)
    return b.cast(counts, dt)


_DATA_SIZED = "its output size is the largest input value, which a graph can't fix in advance"
not_exportable("bincount", _DATA_SIZED)
not_exportable("bincount_unweighted", _DATA_SIZED)
