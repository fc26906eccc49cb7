"""Shape and indexing ops: Shape, Size, Reshape, Flatten, Transpose, Squeeze, Unsqueeze,
Expand, Tile, Concat, Split, Slice, Pad, Trilu, Gather, GatherElements, GatherND,
ScatterElements, ScatterND, NonZero, Compress, ReverseSequence, DepthToSpace, SpaceToDepth.

Shape-like inputs (Reshape's shape, Slice's starts, Pad's pads...) are read as Python ints
through ``ctx.ints``; indices that select data (Gather's) stay tensors and go through ember's
gather op, so a traced graph reads them live.
"""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes as D
from ... import ops
from ...ops import arithmetic as A
from ...ops import comparison as C
from ...ops import indexing as I
from ...ops import reduction as R
from ...ops import shape as S
from . import rule


@rule("Shape", static_output=True)
def _shape(ctx, node, ins):
    shape = list(ins[0].shape)
    n = len(shape)
    start = node.attr("start", 0)
    end = node.attr("end", n)
    start = min(max(start + n if start < 0 else start, 0), n)
    end = min(max(end + n if end < 0 else end, 0), n)
    return ctx.const(np.array(shape[start:end], np.int64))


@rule("Size", static_output=True)
def _size(ctx, node, ins):
    return ctx.const(np.array(int(np.prod(ins[0].shape, dtype=np.int64)), np.int64))


def reshape_target(ctx, shape: tuple, spec: list, allowzero: bool) -> tuple:
    """ONNX's Reshape shape: 0 copies the input's size (unless ``allowzero``), -1 infers."""
    out = []
    for i, s in enumerate(spec):
        if s == 0 and not allowzero:
            if i >= len(shape):
                raise ctx.error(f"shape {spec} copies dim {i} (a 0) but the input "
                                f"{tuple(shape)} has only {len(shape)} dims")
            out.append(shape[i])
        else:
            out.append(s)
    if out.count(-1) > 1:
        raise ctx.error(f"shape {spec} has more than one -1")
    total = math.prod(shape)
    if -1 in out:
        known = math.prod(s for s in out if s != -1)
        if known == 0 or total % known:
            raise ctx.error(f"cannot reshape a tensor of shape {tuple(shape)} into {spec}")
        out[out.index(-1)] = total // known
    if math.prod(out) != total or any(s < 0 for s in out):
        raise ctx.error(f"cannot reshape a tensor of shape {tuple(shape)} ({total} elements) "
                        f"into {spec}")
    return tuple(out)


@rule("Reshape")
def _reshape(ctx, node, ins):
    x, shape = ins
    target = reshape_target(ctx, tuple(x.shape), ctx.ints(shape), bool(node.attr("allowzero", 0)))
    return S.reshape(x, target)


@rule("Flatten")
def _flatten(ctx, node, ins):
    x = ins[0]
    axis = node.attr("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis <= x.ndim:
        raise ctx.error(f"axis {node.attr('axis', 1)} is out of range for rank {x.ndim}")
    return S.reshape(x, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


@rule("Transpose")
def _transpose(ctx, node, ins):
    x = ins[0]
    perm = node.attr("perm")
    if perm is None:
        perm = list(range(x.ndim))[::-1]
    if sorted(perm) != list(range(x.ndim)):
        raise ctx.error(f"perm {perm} is not a permutation of the {x.ndim} dims of "
                        f"{tuple(x.shape)}")
    return S.permute(x, perm)


def _axes_of(ctx, node, ins, i: int = 1):
    if len(ins) > i and ins[i] is not None:
        return ctx.ints(ins[i])
    return node.attr("axes")


@rule("Squeeze")
def _squeeze(ctx, node, ins):
    x = ins[0]
    axes = _axes_of(ctx, node, ins)
    if axes is None:
        return S.reshape(x, tuple(n for n in x.shape if n != 1))
    axes = {ctx.axis(a, x.ndim) for a in axes}
    for a in axes:
        if x.shape[a] != 1:
            raise ctx.error(f"cannot squeeze axis {a} of size {x.shape[a]} (shape "
                            f"{tuple(x.shape)})")
    return S.reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


@rule("Unsqueeze")
def _unsqueeze(ctx, node, ins):
    x = ins[0]
    axes = _axes_of(ctx, node, ins)
    rank = x.ndim + len(axes)
    axes = sorted(ctx.axis(a, rank) for a in axes)
    if len(set(axes)) != len(axes):
        raise ctx.error(f"axes {axes} repeat an axis")
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return S.reshape(x, tuple(shape))


@rule("Expand")
def _expand(ctx, node, ins):
    x, shape = ins
    spec = ctx.ints(shape)
    try:
        out = np.broadcast_shapes(tuple(x.shape), tuple(spec))
    except ValueError:
        raise ctx.error(f"input shape {tuple(x.shape)} can't be broadcast to {spec}") from None
    return S.broadcast_to(x, out) if tuple(out) != tuple(x.shape) else S.clone(x)


@rule("Tile")
def _tile(ctx, node, ins):
    x, repeats = ins
    reps = ctx.ints(repeats)
    if len(reps) != x.ndim:
        raise ctx.error(f"repeats {reps} must have one entry per dim of {tuple(x.shape)}")
    return S.repeat(x, tuple(reps)) if x.ndim else S.clone(x)


@rule("Concat")
def _concat(ctx, node, ins):
    ts = [t for t in ins if t is not None]
    axis = ctx.axis(node.attr("axis"), ts[0].ndim)
    return S.cat(ts, axis)


@rule("Split")
def _split(ctx, node, ins):
    x = ins[0]
    axis = ctx.axis(node.attr("axis", 0), x.ndim)
    n = x.shape[axis]
    sizes = ctx.ints(ins[1]) if len(ins) > 1 and ins[1] is not None else node.attr("split")
    if sizes is None:
        parts = node.attr("num_outputs") or len(node.outputs)
        if n % parts == 0:
            sizes = [n // parts] * parts
        else:  # opset 18: the last chunk is smaller
            size = -(-n // parts)
            sizes = [size] * (parts - 1) + [n - size * (parts - 1)]
    if sum(sizes) != n or any(s < 0 for s in sizes):
        raise ctx.error(f"split sizes {sizes} don't add up to the size {n} of axis {axis}")
    out, start = [], 0
    for s in sizes:
        out.append(S.narrow(x, axis, start, s))
        start += s
    return out


@rule("Slice")
def _slice(ctx, node, ins):
    x = ins[0]
    starts, ends = ctx.ints(ins[1]), ctx.ints(ins[2])
    axes = ctx.ints(ins[3]) if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
    steps = ctx.ints(ins[4]) if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.error(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} must "
                        f"have one length")
    key = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise ctx.error("steps must not be 0")
        key[ctx.axis(a, x.ndim)] = slice(s, e, st)  # Python's slice clamping is ONNX's
    return I.getitem(x, tuple(key))


def _gather_rows(ctx, x, axis: int, idx):
    """``x`` indexed along ``axis`` by the integer tensor ``idx`` (any shape), with ember's
    differentiable gather; negative indices count from the end."""
    n = x.shape[axis]
    idx = A.cast(idx, D.int64) if idx._data.dtype != np.int64 else idx
    idx = C.where(C.lt(idx, 0), A.add(idx, n), idx)
    lead, tail = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1:])
    flat = S.reshape(idx, (1, -1, 1))
    x3 = S.reshape(x, (lead, n, tail))
    out = I.gather(x3, 1, S.broadcast_to(flat, (lead, flat.shape[1], tail)))
    return S.reshape(out, tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:]))


@rule("Gather")
def _gather(ctx, node, ins):
    x, idx = ins
    axis = ctx.axis(node.attr("axis", 0), x.ndim)
    _check_range(ctx, idx, x.shape[axis], "indices")
    return _gather_rows(ctx, x, axis, idx)


def _check_range(ctx, idx, n, what):
    """Out-of-range indices are an error in ONNX; checked on concrete (eager) values only."""
    from ... import _state
    if _state.tracer is not None and id(idx) not in ctx.static:
        return  # the traced gather op checks at run time
    a = ctx.array(idx)
    if a.size and (a.min() < -n or a.max() >= n):
        raise ctx.error(f"{what} out of range: values {int(a.min())}..{int(a.max())} for a "
                        f"dimension of size {n}", IndexError)


@rule("GatherElements")
def _gather_elements(ctx, node, ins):
    x, idx = ins
    axis = ctx.axis(node.attr("axis", 0), x.ndim)
    _check_range(ctx, idx, x.shape[axis], "indices")
    idx = A.cast(idx, D.int64) if idx._data.dtype != np.int64 else idx
    idx = C.where(C.lt(idx, 0), A.add(idx, x.shape[axis]), idx)
    return I.gather(x, axis, idx)


def _linear_index(ctx, idx, dims: tuple):
    """Row-major flat positions of the index tuples in the last dim of ``idx`` within
    ``dims`` (negative entries count from the end)."""
    m = idx.shape[-1]
    idx = A.cast(idx, D.int64) if idx._data.dtype != np.int64 else idx
    sizes = ctx.const(np.array(dims[:m], np.int64))
    idx = C.where(C.lt(idx, 0), A.add(idx, sizes), idx)
    strides = [math.prod(dims[j + 1:m]) for j in range(m)]
    return R.sum(A.mul(idx, ctx.const(np.array(strides, np.int64))), -1)


@rule("GatherND")
def _gather_nd(ctx, node, ins):
    x, idx = ins
    b = node.attr("batch_dims", 0)
    m = idx.shape[-1]
    if b + m > x.ndim:
        raise ctx.error(f"indices' last dim {m} plus batch_dims {b} exceed the rank of "
                        f"{tuple(x.shape)}")
    batch = math.prod(x.shape[:b])
    block = math.prod(x.shape[b:b + m])
    tail = tuple(x.shape[b + m:])
    lin = _linear_index(ctx, idx, tuple(x.shape[b:b + m]))          # batch dims + I
    lin = S.reshape(lin, (batch, -1))
    offsets = ctx.const(np.arange(batch, dtype=np.int64).reshape(batch, 1) * block)
    rows = S.reshape(A.add(lin, offsets), (-1,))
    flat = S.reshape(x, (batch * block,) + tail)
    out = _gather_rows(ctx, flat, 0, rows)
    return S.reshape(out, tuple(idx.shape[:-1]) + tail)


def _scatter_reduce(ctx, target, pos, upd, reduction: str):
    """``target`` (L, *tail) with rows ``pos`` (N,) combined with ``upd`` (N, *tail) by
    ``reduction``; duplicate positions all take part (a one-hot mask over the rows)."""
    L = target.shape[0]
    mask = C.eq(S.unsqueeze(pos, 1), ctx.const(np.arange(L, dtype=np.int64)))   # (N, L)
    mask = S.reshape(mask, mask.shape + (1,) * (upd.ndim - 1))
    vals = S.unsqueeze(upd, 1)                                                  # (N, 1, *tail)
    hit = R.any(mask, 0)
    if reduction == "add":
        red = R.sum(C.where(mask, vals, ops.creation.zeros_like(vals)), 0)
        return A.add(target, A.cast(red, target.dtype))
    if reduction == "mul":
        red = R.prod(C.where(mask, vals, ops.creation.ones_like(vals)), 0) \
            if mask.shape[0] else ops.creation.ones_like(target)
        return A.cast(A.mul(target, red), target.dtype)
    big = _extreme(target._data.dtype, reduction == "min")
    fill = ops.creation.full_like(vals, big)
    if reduction == "max":
        red = R.amax(C.where(mask, vals, fill), 0) if mask.shape[0] else target
        return C.where(hit, A.maximum(target, red), target)
    red = R.amin(C.where(mask, vals, fill), 0) if mask.shape[0] else target
    return C.where(hit, A.minimum(target, red), target)


def _extreme(dt, high: bool):
    if dt.kind == "f":
        return math.inf if high else -math.inf
    info = np.iinfo(dt)
    return info.max if high else info.min


def _reduction_check(node, opset):
    red = node.attr("reduction", "none")
    if red not in ("none", "add", "mul", "max", "min"):
        return f"reduction={red!r} (expected none, add, mul, max or min)"
    return None


@rule("ScatterElements", check=_reduction_check)
def _scatter_elements(ctx, node, ins):
    x, idx, upd = ins
    axis = ctx.axis(node.attr("axis", 0), x.ndim)
    _check_range(ctx, idx, x.shape[axis], "indices")
    idx = A.cast(idx, D.int64) if idx._data.dtype != np.int64 else idx
    idx = C.where(C.lt(idx, 0), A.add(idx, x.shape[axis]), idx)
    red = node.attr("reduction", "none")
    if red == "none":
        return I.scatter(x, axis, idx, upd)
    # move the axis first and flatten: each update's row is its index, its column the rest
    xt = S.movedim(x, axis, 0)
    it, ut = S.movedim(idx, axis, 0), S.movedim(upd, axis, 0)
    other = [ops.creation.arange(s).reshape([s if j == i else 1 for j in range(it.ndim)])
             for i, s in enumerate(it.shape) if i > 0]
    cols = math.prod(xt.shape[1:])
    strides = [math.prod(xt.shape[i + 1:]) for i in range(1, xt.ndim)]
    col = ctx.const(np.zeros((), np.int64))
    for o, s in zip(other, strides):
        col = A.add(col, A.mul(o, s))
    pos = A.add(A.mul(it, cols), col)                          # flat position in xt
    flat = S.reshape(xt, (-1, 1))
    out = _scatter_reduce(ctx, flat, S.reshape(pos, (-1,)), S.reshape(ut, (-1, 1)), red)
    return S.movedim(S.reshape(out, xt.shape), 0, axis)


@rule("ScatterND", check=_reduction_check)
def _scatter_nd(ctx, node, ins):
    x, idx, upd = ins
    m = idx.shape[-1]
    tail = tuple(x.shape[m:])
    flat = S.reshape(x, (math.prod(x.shape[:m]),) + tail)
    pos = S.reshape(_linear_index(ctx, idx, tuple(x.shape)), (-1,))
    u = S.reshape(upd, (-1,) + tail)
    red = node.attr("reduction", "none")
    if red == "none":
        out = I.index_put(flat, (pos,), u)
    else:
        out = _scatter_reduce(ctx, flat, pos, u, red)
    return S.reshape(out, tuple(x.shape))


@rule("Pad", check=lambda node, opset: None if node.attr("mode", "constant") in (
    "constant", "reflect", "edge", "wrap") else f"mode={node.attr('mode')!r}")
def _pad(ctx, node, ins):
    x = ins[0]
    pads = ctx.ints(ins[1])
    value = ins[2] if len(ins) > 2 else None
    axes = ctx.ints(ins[3]) if len(ins) > 3 and ins[3] is not None else list(range(x.ndim))
    axes = [ctx.axis(a, x.ndim) for a in axes]
    if len(pads) != 2 * len(axes):
        raise ctx.error(f"pads {pads} must have 2 entries per padded axis ({len(axes)} axes)")
    widths = [(0, 0)] * x.ndim
    for i, a in enumerate(axes):
        widths[a] = (pads[i], pads[len(axes) + i])
    # negative pads crop first
    key = tuple(slice(-b if b < 0 else None, e if e < 0 else None) for b, e in widths)
    if any(b < 0 or e < 0 for b, e in widths):
        x = I.getitem(x, key)
    widths = [(max(b, 0), max(e, 0)) for b, e in widths]
    if not any(b or e for b, e in widths):
        return S.clone(x)
    mode = node.attr("mode", "constant")
    if mode == "constant":
        v = ctx.scalar(value, 0) if value is not None else 0
        flat = []
        for b, e in reversed(widths):
            flat += [b, e]
        return S.pad(x, flat, value=v)
    np_mode = {"reflect": "reflect", "edge": "edge", "wrap": "wrap"}[mode]
    out = x
    for d, (b, e) in enumerate(widths):
        if b == 0 and e == 0:
            continue
        n = x.shape[d]
        if n == 0:
            raise ctx.error(f"{mode} padding ({b}, {e}) needs a non-empty axis {d} "
                            f"(shape {tuple(x.shape)})")
        idx = np.pad(np.arange(n), (b, e), mode=np_mode)
        out = _gather_rows(ctx, out, d, ctx.const(idx.astype(np.int64)))
    return out


@rule("Trilu")
def _trilu(ctx, node, ins):
    x = ins[0]
    k = int(ctx.scalar(ins[1])) if len(ins) > 1 and ins[1] is not None else 0
    if x.ndim < 2:
        raise ctx.error(f"expected a tensor of rank >= 2, got shape {tuple(x.shape)}")
    return S.triu(x, k) if node.attr("upper", 1) else S.tril(x, k)


@rule("NonZero")
def _nonzero(ctx, node, ins):
    x = ins[0]
    if x.ndim == 0:
        return ctx.const(np.zeros((0, int(bool(ctx.array(x)))), np.int64))
    return S.permute(I.nonzero(x), (1, 0))


@rule("Compress")
def _compress(ctx, node, ins):
    x, cond = ins
    keep = np.nonzero(ctx.array(cond).reshape(-1))[0].astype(np.int64)
    axis = node.attr("axis")
    if axis is None:
        x, axis = S.reshape(x, (-1,)), 0
    axis = ctx.axis(axis, x.ndim)
    if keep.size and keep[-1] >= x.shape[axis]:
        raise ctx.error(f"condition selects index {keep[-1]} of axis {axis} of size "
                        f"{x.shape[axis]}", IndexError)
    return _gather_rows(ctx, x, axis, ctx.const(keep))


@rule("ReverseSequence")
def _reverse_sequence(ctx, node, ins):
    x, lens = ins
    t_axis, b_axis = node.attr("time_axis", 0), node.attr("batch_axis", 1)
    lens = ctx.array(lens).reshape(-1)
    T, B = x.shape[t_axis], x.shape[b_axis]
    idx = np.tile(np.arange(T)[:, None], (1, B))
    for b, n in enumerate(lens):
        idx[:n, b] = np.arange(n)[::-1]
    shape = [1] * x.ndim
    shape[t_axis], shape[b_axis] = T, B
    order = idx if t_axis < b_axis else idx.T
    full = np.broadcast_to(order.reshape(shape), tuple(x.shape))
    return I.gather(x, t_axis, ctx.const(np.ascontiguousarray(full).astype(np.int64)))


@rule("DepthToSpace")
def _depth_to_space(ctx, node, ins):
    x = ins[0]
    b = node.attr("blocksize")
    n, c, h, w = x.shape
    if node.attr("mode", "DCR") == "DCR":
        y = S.reshape(x, (n, b, b, c // (b * b), h, w))
        y = S.permute(y, (0, 3, 4, 1, 5, 2))
    else:
        y = S.reshape(x, (n, c // (b * b), b, b, h, w))
        y = S.permute(y, (0, 1, 4, 2, 5, 3))
    return S.reshape(y, (n, c // (b * b), h * b, w * b))


@rule("SpaceToDepth")
def _space_to_depth(ctx, node, ins):
    x = ins[0]
    b = node.attr("blocksize")
    n, c, h, w = x.shape
    y = S.reshape(x, (n, c, h // b, b, w // b, b))
    if node.attr("mode", "DCR") == "DCR":
        y = S.permute(y, (0, 3, 5, 1, 2, 4))
    else:
        y = S.permute(y, (0, 1, 3, 5, 2, 4))
    return S.reshape(y, (n, c * b * b, h // b, w // b))


@rule("CenterCropPad")
def _center_crop_pad(ctx, node, ins):
    x, shape = ins
    sizes = ctx.ints(shape)
    axes = node.attr("axes")
    axes = list(range(x.ndim)) if axes is None else [ctx.axis(a, x.ndim) for a in axes]
    if len(sizes) != len(axes):
        raise ctx.error(f"shape {sizes} must have one size per axis {axes}")
    out = x
    for a, want in zip(axes, sizes):
        n = out.shape[a]
        if want < n:  # crop the centre; an odd excess leaves the extra row at the end
            out = S.narrow(out, a, (n - want) // 2, want)
        elif want > n:  # pad around; an odd excess pads the extra row at the end
            before = (want - n) // 2
            flat = [0, 0] * (out.ndim - 1 - a) + [before, want - n - before]
            out = S.pad(out, flat, value=0)
    return out if out is not x else S.clone(x)
