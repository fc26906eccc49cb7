"""ONNX rules for ``ember.ops.indexing``: ``x[key]`` (Slice / Squeeze / Unsqueeze for basic
keys, Gather / GatherND for index arrays), ``x[key] = v`` as ScatterND, gather/scatter as
GatherElements/ScatterElements, nonzero."""
from __future__ import annotations

import numpy as np

from .._builder import INT64_MAX, onnx_rule


def _expand_ellipsis(key, ndim):
    used = sum(k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 1
               for k in key if k is not None and k is not Ellipsis)
    out = []
    for k in key:
        if k is Ellipsis:
            out.extend([slice(None)] * (ndim - used))
        else:
            out.append(k)
    return out


def _bounds(s: slice):
    """ONNX Slice start/end/step for a Python slice."""
    step = 1 if s.step is None else s.step
    if step > 0:
        start = 0 if s.start is None else s.start
        stop = INT64_MAX if s.stop is None else s.stop
    else:
        start = -1 if s.start is None else s.start
        stop = -INT64_MAX if s.stop is None else s.stop
    return start, stop, step


def _int_col(b, values):
    """1-d int64 ``[value]`` per trace, computed when it follows a dynamic axis."""
    d = b.int_of(values, [(b.x(0), b.node.inputs[0])])
    if d is None:
        b.unsupported(f"an index {values[0]} that depends on a dynamic axis in a way export "
                      f"can't express")
    return d


def _basic(b, node, x, keys):
    """Slice -> Squeeze (ints) -> Unsqueeze (None) for keys of ints, slices and None."""
    axes, starts, stops, steps = [], [], [], []
    squeeze, unsqueeze = [], []
    ax = out_pos = 0
    for j, k in enumerate(keys[0]):
        col = [ks[j] for ks in keys]
        if k is None:
            unsqueeze.append(out_pos)
            out_pos += 1
            continue
        if isinstance(k, slice):
            bounds = [_bounds(s) for s in col]
            if bounds[0] != (0, INT64_MAX, 1) or any(bd != bounds[0] for bd in bounds):
                axes.append(ax)
                starts.append([bd[0] for bd in bounds])
                stops.append([bd[1] for bd in bounds])
                steps.append(bounds[0][2])
            out_pos += 1
        else:  # an int: a length-1 slice, squeezed afterwards
            axes.append(ax)
            starts.append(list(col))
            stops.append([c + 1 if c != -1 else INT64_MAX for c in col])
            steps.append(1)
            squeeze.append(ax)
        ax += 1
    if len(axes) == 1 and squeeze and len(set(starts[0])) == 1:
        # one int index and nothing else sliced: a single Gather drops the dim
        x = b.op("Gather", [x, b.scalar(starts[0][0], np.int64)], axis=axes[0])
        axes, squeeze = [], []
    if axes:
        def vec(cols):
            static = all(all(c == cs[0] for c in cs) for cs in cols)
            if static:
                return b.ints([cs[0] for cs in cols])
            return b.op("Concat", [b.ints([cs[0]]) if all(c == cs[0] for c in cs)
                                   else _int_col(b, cs) for cs in cols], axis=0)
        x = b.op("Slice", [x, vec(starts), vec(stops), b.ints(axes), b.ints(steps)])
    if squeeze:
        x = b.squeeze(x, squeeze)
    if unsqueeze:
        x = b.unsqueeze(x, unsqueeze)
    if x == b.x(0):
        x = b.op("Identity", [x])
    return x


@onnx_rule("getitem")
def _getitem(b, node):
    v = node.inputs[0]
    keys = b.attr("key")
    p = b.packed(v)
    if p is not None and len(keys[0]) == 1 and isinstance(keys[0][0], slice):
        for name, starts, stops, _ in p.parts:
            got = [(k[0].start or 0, t if k[0].stop is None else k[0].stop)
                   for k, t in zip(keys, stops)]
            if got == list(zip(starts, stops)) and keys[0][0].step in (None, 1):
                return name
    x = b.x(0)
    ndim = len(v.shape)
    keys = [_expand_ellipsis(k, ndim) for k in keys]
    if not any(isinstance(k, np.ndarray) for k in keys[0]):
        return _basic(b, node, x, keys)
    if any(not _same_key(keys[0], k) for k in keys[1:]):
        b.unsupported("index arrays that change with a dynamic axis")
    return _advanced(b, x, keys[0], list(b.shape(v)))


def _same_key(k1, k2):
    if len(k1) != len(k2):
        return False
    for a, c in zip(k1, k2):
        if isinstance(a, np.ndarray) or isinstance(c, np.ndarray):
            if not (isinstance(a, np.ndarray) and isinstance(c, np.ndarray) and
                    a.shape == c.shape and np.array_equal(a, c)):
                return False
        elif a != c:
            return False
    return True


def _advanced(b, x, key, shape):
    """Keys with index arrays (NumPy's advanced indexing, in PyTorch's layout) into ``x`` of
    ``shape`` (None for dynamic dims)."""
    if any(isinstance(k, np.ndarray) and k.ndim == 0 and k.dtype == np.bool_ for k in key):
        b.unsupported("a 0-d bool index combined with index arrays")
    if any(k is None for k in key):
        # a None is a full slice over a new size-1 axis (it breaks the arrays' adjacency
        # just as a slice does)
        axes, new_key, ax = [], [], 0
        for k in key:
            if k is None:
                axes.append(ax)
                shape.insert(ax, 1)
                new_key.append(slice(None))
                ax += 1
            else:
                new_key.append(k)
                ax += k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 1
        return _advanced(b, b.unsqueeze(x, axes), new_key, shape)
    # bool masks -> the coordinates of their true entries (constants of the graph)
    flat = []
    for k in key:
        if isinstance(k, np.ndarray) and k.dtype == np.bool_:
            flat.extend(np.nonzero(k))
        else:
            flat.append(k)
    arrays = [i for i, k in enumerate(flat) if isinstance(k, np.ndarray)]
    slices = [(i, k) for i, k in enumerate(flat) if isinstance(k, slice)]
    # the slices first (they keep their dims)
    cut = [(i, _bounds(s)) for i, s in slices if _bounds(s) != (0, INT64_MAX, 1)]
    if cut:
        x = b.op("Slice", [x, b.ints([c[1][0] for c in cut]), b.ints([c[1][1] for c in cut]),
                           b.ints([c[0] for c in cut]), b.ints([c[1][2] for c in cut])])
    idx = [np.asarray(flat[i], dtype=np.int64) for i in arrays]
    for n, i in enumerate(arrays):
        if (idx[n] < 0).any():
            if shape[i] is None:
                b.unsupported("negative indices along a dim that follows a dynamic axis")
            idx[n] = idx[n] % shape[i]
    if len(arrays) == 1:
        return b.op("Gather", [x, b.const(idx[0])], axis=arrays[0])
    bshape = np.broadcast_shapes(*[a.shape for a in idx])
    rest = [i for i in range(len(shape)) if i not in arrays]
    xt = b.transpose(x, arrays + rest)
    coords = np.stack([np.broadcast_to(a, bshape) for a in idx], axis=-1)
    out = b.op("GatherND", [xt, b.const(coords)])
    if arrays == list(range(arrays[0], arrays[0] + len(arrays))) and arrays[0] > 0:
        # adjacent index arrays: NumPy puts their dims where the first one was
        nb, first = len(bshape), arrays[0]
        perm = list(range(nb, nb + first)) + list(range(nb)) + \
            list(range(nb + first, nb + len(rest)))
        out = b.transpose(out, perm)
    return out


@onnx_rule("index_put")
def _index_put(b, node):
    v = node.inputs[0]
    shape = b.shape(v)
    if None in shape:
        b.unsupported("item assignment (x[key] = v) into a tensor whose shape follows a "
                      "dynamic axis")
    key = node.attrs["key"]
    acc = node.attrs.get("accumulate", False)
    targets = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)[key]
    sel = targets.shape
    flat_t = targets.reshape(-1)
    vals = b.op("Reshape", [b.op("Expand", [b.x(1), b.ints(sel)]), b.ints([-1])])
    if not acc and len(np.unique(flat_t)) != flat_t.size:
        # repeated targets: the last write wins, as in NumPy
        rev = flat_t[::-1]
        _, first = np.unique(rev, return_index=True)
        keep = np.sort(flat_t.size - 1 - first)
        vals = b.op("Gather", [vals, b.const(keep.astype(np.int64))], axis=0)
        flat_t = flat_t[keep]
    data = b.op("Reshape", [b.x(0), b.ints([-1])])
    out = b.op("ScatterND", [data, b.const(flat_t.reshape(-1, 1)), vals],
               reduction="add" if acc else None)
    return b.op("Reshape", [out, b.ints(shape)])


@onnx_rule("gather")
def _gather(b, node):
    return b.op("GatherElements", [b.x(0), b.x(1)], axis=node.attrs["dim"])


@onnx_rule("scatter_add")
def _scatter_add(b, node):
    return b.op("ScatterElements", [b.x(0), b.x(1), b.x(2)], axis=node.attrs["dim"],
                reduction="add")


@onnx_rule("scatter")
def _scatter(b, node):
    red = {None: None, "add": "add", "multiply": "mul"}[node.attrs.get("reduce")]
    return b.op("ScatterElements", [b.x(0), b.x(1), b.x(2)], axis=node.attrs["dim"],
                reduction=red)


@onnx_rule("nonzero")
def _nonzero(b, node):
    if not node.inputs[0].shape:
        b.unsupported("nonzero of a 0-d tensor")
    return b.op("Transpose", [b.op("NonZero", [b.x(0)])], perm=[1, 0])
