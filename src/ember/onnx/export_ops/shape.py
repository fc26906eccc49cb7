"""ONNX rules for ``ember.ops.shape``: reshape, permute, expand, cat, flip, roll, repeat,
triu/tril, diagonal, pad, unfold, clone. Sizes that follow a dynamic axis are computed from
the input shapes (see :meth:`Emitter.sizes`)."""
from __future__ import annotations

import numpy as np

from .._builder import INT64_MAX, not_exportable, onnx_rule


@onnx_rule("reshape")
def _reshape(b, node):
    return b.reshape(b.x(0), node.inputs[0], b.attr("shape"))


@onnx_rule("permute")
def _permute(b, node):
    x = b.x(0)
    out = b.transpose(x, node.attrs["dims"])
    return out if out != x else b.op("Identity", [x])


@onnx_rule("clone")
def _clone(b, node):
    return b.op("Identity", [b.x(0)])


@onnx_rule("expand")
def _expand(b, node):
    x, v = b.x(0), node.inputs[0]
    targets = b.attr("shape")
    ins = b.emitted_traces(x, v)
    lead = len(targets[0]) - len(ins[0])
    # ONNX's Expand broadcasts both ways: a 1 keeps the input's size, so only the dims that
    # really grow need their (possibly dynamic) size
    cols = []
    for i in range(len(targets[0])):
        col = [t[i] for t in targets]
        if i >= lead and [s[i - lead] for s in ins] == col:
            col = [1] * len(col)
        cols.append(col)
    per_trace = [tuple(c[k] for c in cols) for k in range(len(targets))]
    return b.op("Expand", [x, b.sizes(per_trace, [(x, v)], "expand target")])


@onnx_rule("cat")
def _cat(b, node):
    return b.op("Concat", [b.name(v) for v in node.inputs], axis=node.attrs["dim"])


@onnx_rule("flip")
def _flip(b, node):
    dims = list(node.attrs["dims"])
    if not dims:
        return b.op("Identity", [b.x(0)])
    k = len(dims)
    return b.op("Slice", [b.x(0), b.ints([-1] * k), b.ints([-INT64_MAX] * k), b.ints(dims),
                          b.ints([-1] * k)])


@onnx_rule("roll")
def _roll(b, node):
    x, v = b.x(0), node.inputs[0]
    for s, d in zip(node.attrs["shifts"], node.attrs["dims"]):
        n = b.shape(v)[d]
        if n is not None:
            s %= n
            if s == 0:
                continue
            cut = b.ints([n - s])
        else:
            size = b.dim(b.x(0), v, d)
            cut = b.op("Sub", [size, b.op("Mod", [b.ints([s]), size], fmod=0)])
        tail = b.op("Slice", [x, cut, b.ints([INT64_MAX]), b.ints([d])])
        head = b.op("Slice", [x, b.ints([0]), cut, b.ints([d])])
        x = b.op("Concat", [tail, head], axis=d)
    return x if x != b.x(0) else b.op("Identity", [x])


@onnx_rule("repeat")
def _repeat(b, node):
    x = b.x(0)
    reps = b.attr("reps")  # counts may follow a dynamic axis: x.repeat(x.shape[0], 1)
    extra = len(reps[0]) - len(node.inputs[0].shape)
    if extra:
        x = b.unsqueeze(x, list(range(extra)))
    return b.op("Tile", [x, b.sizes(reps, [(b.x(0), node.inputs[0])], "repeat counts")])


@onnx_rule("triu", "tril")
def _trilu(b, node):
    k = (node.attrs or {}).get("diagonal", 0)
    return b.op("Trilu", [b.x(0), b.scalar(k, np.int64)],
                upper=int(node.op.name == "triu"))


@onnx_rule("diagonal")
def _diagonal(b, node):
    v = node.inputs[0]
    a = node.attrs
    off, d1, d2 = a.get("offset", 0), a.get("dim1", 0), a.get("dim2", 1)
    shape = b.shape(v)
    n, m = shape[d1], shape[d2]
    if n is None or m is None:
        b.unsupported("diagonal over a dim that follows a dynamic axis")
    others = [i for i in range(len(shape)) if i not in (d1, d2)]
    x = b.transpose(b.x(0), others + [d1, d2])
    x = b.op("Reshape", [x, b.ints([0] * len(others) + [n * m])])
    r0, c0 = max(-off, 0), max(off, 0)
    k = np.arange(max(0, min(n - r0, m - c0)))
    flat = (k + r0) * m + (k + c0)
    return b.op("Gather", [x, b.const(flat.astype(np.int64))], axis=len(others))


@onnx_rule("pad")
def _pad(b, node):
    widths = node.attrs["widths"]
    pads = [w[0] for w in widths] + [w[1] for w in widths]
    value = node.attrs.get("value", 0.0)
    dt = node.outputs[0].dtype
    x = b.x(0)
    if dt.kind == "b":
        out = b.op("Pad", [b.cast(x, np.uint8), b.ints(pads), b.scalar(value, np.uint8)])
        return b.cast(out, np.bool_)
    return b.op("Pad", [x, b.ints(pads), b.scalar(value, dt)], mode="constant")


@onnx_rule("unfold")
def _unfold(b, node):
    v = node.inputs[0]
    d, size, step = node.attrs["dim"], node.attrs["size"], node.attrs["step"]
    n = b.shape(v)[d]
    if n is None:
        b.unsupported("unfold along a dim that follows a dynamic axis")
    windows = (n - size) // step + 1
    idx = np.arange(windows)[:, None] * step + np.arange(size)[None, :]
    g = b.op("Gather", [b.x(0), b.const(idx.astype(np.int64))], axis=d)
    nd = len(v.shape) + 1
    perm = list(range(d + 1)) + list(range(d + 2, nd)) + [d + 1]
    return b.transpose(g, perm)


not_exportable("view_dtype", "ONNX has no reinterpreting bit cast before opset 25")
