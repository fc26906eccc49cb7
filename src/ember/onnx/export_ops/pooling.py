"""ONNX rules for ``ember.ops.pooling``: max/avg pooling, adaptive pooling over uneven bins,
max_unpool."""
from __future__ import annotations

import math

import numpy as np

from ...ops.pooling import _avg_matrix, _bins
from .._builder import onnx_rule


def _ceil_mode(b, node, dilation):
    """ONNX's ``ceil_mode`` flag, and the spatial axes whose last window ONNX keeps but
    PyTorch drops (PyTorch's ceil mode wants every window to start inside the input or its
    left padding; ONNX's has no such rule)."""
    a = node.attrs
    if not a.get("ceil_mode"):
        return 0, []
    v = node.inputs[0]
    extra = []
    for i, (n, k, s, p, d) in enumerate(zip(b.shape(v)[2:], a["kernel"], a["stride"],
                                             a["padding"], dilation)):
        span = (n if n is not None else 0) + 2 * p - d * (k - 1) - 1
        if n is None:
            # the last window can start past the input only when the stride is longer than
            # the window's reach; then whether it does depends on the size
            if s > d * (k - 1) + 1 - p:
                b.unsupported("ceil_mode pooling over a spatial dim that follows a dynamic "
                              "axis, with a stride longer than the window")
            continue
        onnx_out = -(-span // s) + 1
        if onnx_out > node.outputs[0].shape[2 + i]:
            extra.append(2 + i)
    return 1, extra


def _drop_last_windows(b, node, out, axes):
    if not axes:
        return out
    ends = [node.outputs[0].shape[ax] for ax in axes]
    return b.op("Slice", [out, b.ints([0] * len(axes)), b.ints(ends), b.ints(axes)])


@onnx_rule("max_pool")
def _max_pool(b, node):
    a = node.attrs
    k = list(a["kernel"])
    ceil, extra = _ceil_mode(b, node, a["dilation"])
    out = b.op("MaxPool", [b.x(0)], kernel_shape=k, strides=list(a["stride"]),
               pads=list(a["padding"]) * 2, dilations=list(a["dilation"]), ceil_mode=ceil)
    # (the winning window offsets, output 1, are ember's own, for its backward)
    return [_drop_last_windows(b, node, out, extra), None]


@onnx_rule("avg_pool")
def _avg_pool(b, node):
    a = node.attrs
    k = list(a["kernel"])
    ceil, extra = _ceil_mode(b, node, [1] * len(k))
    div = a.get("divisor_override")
    include = bool(a.get("count_include_pad", True)) or bool(div)
    out = b.op("AveragePool", [b.x(0)], kernel_shape=k, strides=list(a["stride"]),
               pads=list(a["padding"]) * 2, ceil_mode=ceil, count_include_pad=int(include))
    out = _drop_last_windows(b, node, out, extra)
    if not div:
        return out
    v = node.inputs[0]
    sp = b.shape(v)[2:]
    if ceil and (None in sp or any(
            (o - 1) * s + kk > n + 2 * p for n, o, s, kk, p in
            zip(sp, node.outputs[0].shape[2:], a["stride"], k, a["padding"]))):
        b.unsupported("avg_pool with divisor_override and ceil_mode windows that overhang "
                      "the input")
    # every window is whole: window sum = mean * kernel size
    dt = node.outputs[0].dtype
    return b.op("Mul", [out, b.scalar(math.prod(k) / div, dt)])


def _along(b, x, axis, nd, fn):
    """Apply ``fn`` (on the last axis) to ``axis`` of an ``nd``-dim tensor."""
    perm = [i for i in range(nd) if i != axis] + [axis]
    y = fn(b.transpose(x, perm))
    return b.transpose(y, [int(i) for i in np.argsort(perm)])


@onnx_rule("adaptive_avg_pool")
def _adaptive_avg_pool(b, node):
    # one averaging matrix per spatial dim (PyTorch's uneven bins), as in ember's kernel
    v = node.inputs[0]
    nd = len(v.shape)
    x = b.x(0)
    for i, (n, o) in enumerate(zip(b.shape(v)[2:], node.attrs["output_size"])):
        if n is None:
            b.unsupported("adaptive pooling over a spatial dim that follows a dynamic axis")
        m = b.const(_avg_matrix(n, o, v.dtype).T)
        x = _along(b, x, 2 + i, nd, lambda t, m=m: b.op("MatMul", [t, m]))
    return x


@onnx_rule("adaptive_max_pool")
def _adaptive_max_pool(b, node):
    # each bin padded to the widest one by repeating its last element (harmless for a max):
    # gather (out, width) windows per spatial dim, then one max over the window axes
    v = node.inputs[0]
    x = b.x(0)
    sp = b.shape(v)[2:]
    if None in sp:
        b.unsupported("adaptive pooling over a spatial dim that follows a dynamic axis")
    win_axes = []
    for i, (n, o) in enumerate(zip(sp, node.attrs["output_size"])):
        s, e = _bins(n, o)
        w = int((e - s).max())
        idx = np.minimum(s[:, None] + np.arange(w)[None, :], (e - 1)[:, None])
        axis = 2 + 2 * i
        x = b.op("Gather", [x, b.const(idx.astype(np.int64))], axis=axis)
        win_axes.append(axis + 1)
    return [b.reduce("ReduceMax", x, win_axes, False), None]


@onnx_rule("max_unpool")
def _max_unpool(b, node):
    # values scattered (added) to their flat index within their (n, c) plane
    x, idx = b.x(0), b.x(1)
    v = node.inputs[0]
    plane = math.prod(node.attrs["output_size"])
    flat_x = b.op("Reshape", [x, b.ints([0, 0, -1])])
    flat_i = b.op("Reshape", [idx, b.ints([0, 0, -1])])
    if node.inputs[1].dtype != np.int64:
        flat_i = b.cast(flat_i, np.int64)
    nc = b.shape_slice(x, 0, 2)
    zeros = b.op("ConstantOfShape", [b.op("Concat", [nc, b.ints([plane])], axis=0)],
                 value=_zero_tensor(v.dtype))
    out = b.op("ScatterElements", [zeros, flat_i, flat_x], axis=2, reduction="add")
    return b.op("Reshape", [out, b.ints([0, 0] + list(node.attrs["output_size"]))])


def _zero_tensor(dtype):
    from onnx import numpy_helper
    return numpy_helper.from_array(np.zeros(1, dtype))


@onnx_rule("max_pool_indices")
def _max_pool_indices(b, node):
    pool = node.inputs[0].node  # the max_pool whose in-window offsets this op converts
    if pool is None or pool.op.name != "max_pool":
        b.unsupported("max-pool indices not taken from a max_pool")
    a = pool.attrs
    spatial = b.shape(pool.inputs[0])[2:]
    if None in spatial:
        b.unsupported("max-pool indices with a dynamic spatial size")
    ceil, extra = _ceil_mode(b, pool, a["dilation"])
    _, idx = b.op("MaxPool", [b.name(pool.inputs[0])], outputs=2, kernel_shape=list(a["kernel"]),
                  strides=list(a["stride"]), pads=list(a["padding"]) * 2,
                  dilations=list(a["dilation"]), ceil_mode=ceil)
    idx = _drop_last_windows(b, pool, idx, extra)
    # ONNX numbers elements over the whole (N, C, *spatial) tensor, PyTorch within a plane
    return b.op("Mod", [idx, b.scalar(math.prod(spatial), np.int64)])
