"""Pooling as primitives (N-d, channels-first), each with a backward op of its own.

- ``max_pool``: the window maximum; it keeps, per output, the kernel offset that won (its
  ``extra``), which ``max_pool_backward`` uses to route the gradient and the public wrapper
  turns into PyTorch's flat per-plane indices on request. ``max_pool_select`` (pick the
  winning offset of another tensor) is the adjoint of ``max_pool_backward``.
- ``avg_pool`` / ``avg_pool_backward``: window sums scaled by PyTorch's divisor, and their
  adjoint.
- ``adaptive_avg_pool`` / ``adaptive_avg_pool_backward``: PyTorch's bins
  (``floor(i*in/out) .. ceil((i+1)*in/out)``) as one averaging matrix per spatial dim.
- ``adaptive_max_pool``: max over the same bins, with flat indices; ``max_unpool`` scatters
  values back to flat indices and is its backward (and ``F.max_unpool``).

Windows are visited one kernel offset at a time over the whole batch (a Python loop over the
few offsets, vectorised over everything else), so no windows array is ever materialised.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..tensor import Tensor
from .conv import _batched, _geom, _ntuple
from .registry import apply, register

# ----- geometry -----------------------------------------------------------------------------


def _pool_out(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size; in ceil mode the last window must start inside the
    input or the left padding."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool_geom(in_sp, kernel, stride, padding, dilation, ceil_mode):
    out = tuple(_pool_out(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(in_sp, kernel, stride, padding, dilation))
    # pad the end far enough for the last (ceil-mode) window
    pads = tuple((p, max(p, (o - 1) * s + d * (k - 1) + 1 - n - p))
                 for n, k, s, p, d, o in zip(in_sp, kernel, stride, padding, dilation, out))
    return _geom(tuple(in_sp), tuple(kernel), tuple(stride), tuple(dilation), pads, out,
                 False)


def _disjoint(geo):
    return all(s >= d * (k - 1) + 1 for k, s, d in zip(geo.k, geo.s, geo.d))


def _scatter_offsets(xp, geo, g, mask=None):
    """Add ``g`` (times ``mask(k)`` when given) into the window of each kernel offset ``k``;
    crop to the input."""
    N, C = g.shape[:2]
    buf = xp.zeros((N, C) + geo.padded, g.dtype)
    disjoint = _disjoint(geo)
    for k, v in enumerate(geo.views(buf)):
        if disjoint:  # windows do not overlap: write straight into the strided view
            if mask is None:
                v[...] = g
            else:
                xp.multiply(g, mask(k), out=v)
        else:
            v += g if mask is None else g * mask(k)
    inner = (slice(None), slice(None)) + geo._inner()
    return buf if buf.shape[2:] == geo.in_sp else xp.ascontiguousarray(buf[inner])


def _lowest(dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


# ----- max pool -----------------------------------------------------------------------------


@register("max_pool", saves=(), extra=True)
def _max_pool(xp, x, kernel, stride, padding, dilation, ceil_mode=False):
    geo = _pool_geom(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    views = geo.views(geo.pad(xp, x, fill=_lowest(x.dtype)))
    best = views[0].copy()
    arg = xp.zeros(best.shape, np.int8 if geo.K <= 127 else np.int32)
    for k, v in enumerate(views[1:], 1):
        # strict '>' keeps the first maximum, as PyTorch; the mask arithmetic is much faster
        # in NumPy than where= or boolean assignment
        m = (v > best).view(np.int8) if arg.dtype == np.int8 else (v > best).astype(arg.dtype)
        xp.maximum(best, v, out=best)
        arg -= m * arg
        arg += m * arg.dtype.type(k)
    if best.dtype.kind == "f" and xp.isnan(best).any():
        arg = _nan_argmax(xp, views, best.shape, arg.dtype)
    return best, arg


def _nan_argmax(xp, views, shape, dtype):
    # NaN propagates: the last NaN in window order wins, as in PyTorch's CPU kernel
    best = views[0].copy()
    arg = xp.zeros(shape, dtype)
    for k, v in enumerate(views[1:], 1):
        m = (v > best) | xp.isnan(v)
        best = xp.where(m, v, best)
        arg = xp.where(m, k, arg).astype(dtype)
    return arg


@_max_pool.def_backward
def _(node, g):
    x = node.inputs[0]
    arg = Tensor._wrap(node.saved, x._dev)
    attrs = dict(node.attrs, in_shape=tuple(x.shape[2:]))
    return (apply(_max_pool_backward, (g, arg), attrs),)


@register("max_pool_backward", saves=(1,))
def _max_pool_backward(xp, g, arg, kernel, stride, padding, dilation, ceil_mode, in_shape):
    geo = _pool_geom(in_shape, kernel, stride, padding, dilation, ceil_mode)
    # multiplying by the mask is branch-free: several times faster than where() on the
    # unpredictable masks of a max
    return _scatter_offsets(xp, geo, g, lambda k: arg == k)


@_max_pool_backward.def_backward
def _(node, gg):
    g, arg = node.inputs
    attrs = {k: v for k, v in node.attrs.items() if k != "in_shape"}
    return apply(_max_pool_select, (gg, arg), attrs), None


@register("max_pool_select", saves=(1,))
def _max_pool_select(xp, x, arg, kernel, stride, padding, dilation, ceil_mode=False):
    geo = _pool_geom(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    out = xp.zeros(arg.shape, x.dtype)
    for k, v in enumerate(geo.views(geo.pad(xp, x))):
        out += v * (arg == k)
    return out


@_max_pool_select.def_backward
def _(node, g):
    x, arg = node.inputs
    attrs = dict(node.attrs, in_shape=tuple(x.shape[2:]))
    return apply(_max_pool_backward, (g, arg), attrs), None


def _flat_indices(xp, arg, geo, padding):
    """Kernel offsets -> PyTorch's indices: the flat position in each (unpadded) input plane."""
    nd = len(geo.k)
    rows = [math.prod(geo.in_sp[i + 1:]) for i in range(nd)]
    base = 0
    for i in range(nd):
        pos = np.arange(geo.out_sp[i]) * geo.s[i] - padding[i]
        base = np.add.outer(base, pos * rows[i]) if i else pos * rows[i]
    table = np.array([sum(o * d * r for o, d, r in zip(off, geo.d, rows))
                      for off in itertools.product(*(range(k) for k in geo.k))], np.int64)
    return xp.asarray(base, dtype=np.int64) + xp.asarray(table)[arg]


# ----- avg pool -----------------------------------------------------------------------------


def _avg_divisor(geo, padding, count_include_pad, divisor_override, dtype):
    """PyTorch's divisor per output position, or a scalar when it is the same everywhere."""
    if divisor_override:
        return dtype.type(divisor_override)
    counts = []
    for n, k, s, p, o in zip(geo.in_sp, geo.k, geo.s, padding, geo.out_sp):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)  # padding counts, ceil-mode overhang does not
        if count_include_pad:
            counts.append(end - start)
        else:
            counts.append(np.minimum(end, n) - np.maximum(start, 0))
    div = counts[0]
    for c in counts[1:]:
        div = np.multiply.outer(div, c)
    div = np.asarray(div)
    if (div == div.flat[0]).all():
        return dtype.type(div.flat[0])
    return div.astype(dtype)


def _avg_geo(in_sp, kernel, stride, padding, ceil_mode):
    return _pool_geom(in_sp, kernel, stride, padding, (1,) * len(kernel), ceil_mode)


@register("avg_pool", saves=())
def _avg_pool(xp, x, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
              divisor_override=None):
    geo = _avg_geo(x.shape[2:], kernel, stride, padding, ceil_mode)
    views = geo.views(geo.pad(xp, x))
    acc = views[0].copy()
    for v in views[1:]:
        acc += v
    acc /= xp.asarray(_avg_divisor(geo, padding, count_include_pad, divisor_override, x.dtype))
    return acc


@_avg_pool.def_backward
def _(node, g):
    attrs = dict(node.attrs, in_shape=tuple(node.inputs[0].shape[2:]))
    return (apply(_avg_pool_backward, (g,), attrs),)


@register("avg_pool_backward", saves=())
def _avg_pool_backward(xp, g, kernel, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, in_shape):
    geo = _avg_geo(in_shape, kernel, stride, padding, ceil_mode)
    gs = g / xp.asarray(_avg_divisor(geo, padding, count_include_pad, divisor_override,
                                     g.dtype))
    return _scatter_offsets(xp, geo, gs)


@_avg_pool_backward.def_backward
def _(node, gg):
    attrs = {k: v for k, v in node.attrs.items() if k != "in_shape"}
    return (apply(_avg_pool, (gg,), attrs),)


# ----- adaptive pooling ---------------------------------------------------------------------


def _bins(n_in, n_out):
    i = np.arange(n_out)
    return (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)


def _avg_matrix(n_in, n_out, dtype):
    start, end = _bins(n_in, n_out)
    j = np.arange(n_in)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def _apply_matrices(xp, x, mats):
    """Contract spatial dim ``i`` of ``x`` with ``mats[i]`` (shape ``(new, old)``)."""
    y = x
    nd = len(mats)
    for i, m in enumerate(mats):
        ax = y.ndim - nd + i
        y = xp.moveaxis(y, ax, -1)
        shp = y.shape
        y = (xp.ascontiguousarray(y).reshape(-1, shp[-1]) @ xp.asarray(m).T).reshape(
            shp[:-1] + (m.shape[0],))
        y = xp.moveaxis(y, -1, ax)
    return xp.ascontiguousarray(y)


@register("adaptive_avg_pool", saves=())
def _adaptive_avg_pool(xp, x, output_size):
    mats = [_avg_matrix(n, o, x.dtype) for n, o in zip(x.shape[2:], output_size)]
    return _apply_matrices(xp, x, mats)


@_adaptive_avg_pool.def_backward
def _(node, g):
    return (apply(_adaptive_avg_pool_backward, (g,),
                  {"in_shape": tuple(node.inputs[0].shape[2:])}),)


@register("adaptive_avg_pool_backward", saves=())
def _adaptive_avg_pool_backward(xp, g, in_shape):
    mats = [_avg_matrix(n, o, g.dtype).T for n, o in zip(in_shape, g.shape[2:])]
    return _apply_matrices(xp, g, mats)


@_adaptive_avg_pool_backward.def_backward
def _(node, gg):
    return (apply(_adaptive_avg_pool, (gg,), {"output_size": tuple(node.inputs[0].shape[2:])}),)


@register("adaptive_max_pool", saves=(), extra=True)
def _adaptive_max_pool(xp, x, output_size):
    in_sp = x.shape[2:]
    nd = len(in_sp)
    rows = [math.prod(in_sp[i + 1:]) for i in range(nd)]
    bins = [_bins(n, o) for n, o in zip(in_sp, output_size)]
    widths = [int((e - s).max()) for s, e in bins]
    best = arg = None
    for off in itertools.product(*(range(w) for w in widths)):
        # offsets past a short bin repeat its last element: harmless for a max, and the
        # strict '>' keeps the first occurrence
        idx = [np.minimum(s + o, e - 1) for (s, e), o in zip(bins, off)]
        v = x[(slice(None), slice(None)) + np.ix_(*idx)]
        flat = sum(i * r for i, r in zip(np.ix_(*idx), rows))
        if best is None:
            best = v.copy()
            arg = xp.broadcast_to(xp.asarray(flat, dtype=np.int64), v.shape).copy()
            continue
        m = v > best
        if best.dtype.kind == "f":
            m |= xp.isnan(v)
        best = xp.where(m, v, best)
        arg = xp.where(m, flat, arg)
    return best, arg


@_adaptive_max_pool.def_backward
def _(node, g):
    x = node.inputs[0]
    idx = Tensor._wrap(node.saved, x._dev)
    return (apply(_max_unpool, (g, idx), {"output_size": tuple(x.shape[2:])}),)


@register("max_unpool", saves=(1,))
def _max_unpool(xp, x, indices, output_size):
    """Scatter (adding) each value to its flat index in its channel plane."""
    N, C = x.shape[:2]
    plane = math.prod(output_size)
    flat = (indices.reshape(N * C, -1) + (np.arange(N * C) * plane)[:, None]).ravel()
    out = np.bincount(flat, weights=x.reshape(-1), minlength=N * C * plane)
    return out.astype(x.dtype, copy=False).reshape((N, C) + tuple(output_size))


@_max_unpool.def_backward
def _(node, g):
    x, idx = node.inputs
    N, C = x.shape[:2]
    picked = g.reshape(N, C, -1).gather(2, idx.reshape(N, C, -1))
    return picked.reshape(x.shape), None


# ----- argument checking and the public functions -------------------------------------------


def _pool_args(op, nd, kernel_size, stride, padding, dilation=1):
    k = _ntuple(op, "kernel_size", kernel_size, nd, 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else \
        _ntuple(op, "stride", stride, nd, 1)
    p = _ntuple(op, "padding", padding, nd, 0)
    d = _ntuple(op, "dilation", dilation, nd, 1)
    for kk, pp in zip(k, p):
        if pp > kk // 2:
            raise ValueError(f"{op}: pad should be at most half of effective kernel size, "
                             f"but got padding={p} and kernel_size={k}")
    return k, s, p, d


def _check_size(op, input, x, k, s, p, d, ceil_mode):
    out = tuple(_pool_out(n, kk, ss, pp, dd, ceil_mode)
                for n, kk, ss, pp, dd in zip(x.shape[2:], k, s, p, d))
    if any(o <= 0 for o in out):
        raise RuntimeError(f"{op}: output size {out} is too small for input shape "
                           f"{tuple(input.shape)} (kernel_size {k}, stride {s}, padding {p}, "
                           f"dilation {d})")


def _max_poolnd(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode,
                return_indices):
    x, unbatched = _batched(op, input, nd)
    k, s, p, d = _pool_args(op, nd, kernel_size, stride, padding, dilation)
    _check_size(op, input, x, k, s, p, d, ceil_mode)
    if x._data.dtype.kind not in "fiu":
        raise TypeError(f"{op}: expected a numeric input, got {input.dtype}")
    attrs = {"kernel": k, "stride": s, "padding": p, "dilation": d, "ceil_mode": bool(ceil_mode)}
    out, arg = apply(_max_pool, (x,), attrs)
    if unbatched:
        out = out.squeeze(0)
    if not return_indices:
        return out
    idx = apply(_max_pool_indices, (Tensor._wrap(arg, x._dev),),
                dict(attrs, spatial=tuple(x.shape[2:])))
    return out, (idx.squeeze(0) if unbatched else idx)


# PyTorch's flat per-plane indices of each window's maximum, from max_pool's in-window
# argmax: an op of its own so that graphs (ember.jit, export) compute them too
@register("max_pool_indices")
def _max_pool_indices(xp, arg, spatial, kernel, stride, padding, dilation, ceil_mode):
    geo = _pool_geom(spatial, kernel, stride, padding, dilation, ceil_mode)
    return _flat_indices(xp, arg, geo, padding)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max over sliding windows of ``(N, C, L)`` or ``(C, L)``; ``stride`` defaults to the
    kernel size; padding counts as -inf."""
    return _max_poolnd("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                       ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max over sliding windows of ``(N, C, H, W)`` or ``(C, H, W)``. With
    ``return_indices`` also the flat index ``h * W + w`` of each maximum in its plane."""
    return _max_poolnd("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                       ceil_mode, return_indices)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max over sliding windows of ``(N, C, D, H, W)`` or ``(C, D, H, W)``."""
    return _max_poolnd("max_pool3d", 3, input, kernel_size, stride, padding, dilation,
                       ceil_mode, return_indices)


def _avg_poolnd(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override):
    x, unbatched = _batched(op, input, nd)
    k, s, p, d = _pool_args(op, nd, kernel_size, stride, padding)
    _check_size(op, input, x, k, s, p, d, ceil_mode)
    if x._data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"{op}: divisor must be not zero")
    out = apply(_avg_pool, (x,), {"kernel": k, "stride": s, "padding": p,
                                  "ceil_mode": bool(ceil_mode),
                                  "count_include_pad": bool(count_include_pad),
                                  "divisor_override": divisor_override})
    return out.squeeze(0) if unbatched else out


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over sliding windows of ``(N, C, L)`` or ``(C, L)``."""
    return _avg_poolnd("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, None)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """Mean over sliding windows of ``(N, C, H, W)`` or ``(C, H, W)``; the divisor counts
    the zero padding unless ``count_include_pad=False``, or is ``divisor_override``."""
    return _avg_poolnd("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """Mean over sliding windows of ``(N, C, D, H, W)`` or ``(C, D, H, W)``."""
    return _avg_poolnd("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override)


def _output_size(op, nd, output_size, in_sp):
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size,) * nd
    output_size = tuple(output_size)
    if len(output_size) == 1 and nd > 1:
        output_size = output_size * nd
    if len(output_size) != nd:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {nd} ints, got "
                         f"{output_size!r}")
    out = tuple(n if o is None else int(o) for o, n in zip(output_size, in_sp))
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    return out


def _adaptive_input(op, nd, input):
    x, unbatched = _batched(op, input, nd)
    if any(n == 0 for n in x.shape[2:]):
        raise RuntimeError(f"{op}: expected non-empty spatial dims, got shape "
                           f"{tuple(input.shape)}")
    return x, unbatched


def _adaptive_avg_poolnd(op, nd, input, output_size):
    x, unbatched = _adaptive_input(op, nd, input)
    if x._data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    in_sp = tuple(x.shape[2:])
    out_sp = _output_size(op, nd, output_size, in_sp)
    if out_sp == in_sp:
        out = x.clone()
    elif all(o == 1 for o in out_sp):
        out = x.mean(tuple(range(2, 2 + nd)), keepdim=True)
    elif all(n % o == 0 for n, o in zip(in_sp, out_sp)):
        # equal bins: the regular pooling kernel
        k = tuple(n // o for n, o in zip(in_sp, out_sp))
        out = apply(_avg_pool, (x,), {"kernel": k, "stride": k, "padding": (0,) * nd,
                                      "ceil_mode": False, "count_include_pad": True,
                                      "divisor_override": None})
    else:
        out = apply(_adaptive_avg_pool, (x,), {"output_size": out_sp})
    return out.squeeze(0) if unbatched else out


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average ``(N, C, L)`` over ``output_size`` bins ``[floor(i*L/out), ceil((i+1)*L/out))``."""
    return _adaptive_avg_poolnd("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average ``(N, C, H, W)`` to ``output_size`` (an int, a pair, ``None`` keeps a dim)."""
    return _adaptive_avg_poolnd("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    return _adaptive_avg_poolnd("adaptive_avg_pool3d", 3, input, output_size)


def _adaptive_max_poolnd(op, nd, input, output_size, return_indices):
    x, unbatched = _adaptive_input(op, nd, input)
    if x._data.dtype.kind not in "fiu":
        raise TypeError(f"{op}: expected a numeric input, got {input.dtype}")
    in_sp = tuple(x.shape[2:])
    out_sp = _output_size(op, nd, output_size, in_sp)
    if all(n % o == 0 for n, o in zip(in_sp, out_sp)):
        k = tuple(n // o for n, o in zip(in_sp, out_sp))
        zero, one = (0,) * nd, (1,) * nd
        out, arg = apply(_max_pool, (x,), {"kernel": k, "stride": k, "padding": zero,
                                           "dilation": one, "ceil_mode": False})
        if return_indices:
            idx = apply(_max_pool_indices, (Tensor._wrap(arg, x._dev),),
                        {"spatial": in_sp, "kernel": k, "stride": k, "padding": zero,
                         "dilation": one, "ceil_mode": False})
    else:
        out, idx = apply(_adaptive_max_pool, (x,), {"output_size": out_sp})
        idx = Tensor._wrap(idx, x._dev)
    if unbatched:
        out = out.squeeze(0)
    if not return_indices:
        return out
    return out, (idx.squeeze(0) if unbatched else idx)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    """Max of ``(N, C, L)`` over PyTorch's adaptive bins."""
    return _adaptive_max_poolnd("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    """Max of ``(N, C, H, W)`` over PyTorch's adaptive bins; indices are flat per plane."""
    return _adaptive_max_poolnd("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    return _adaptive_max_poolnd("adaptive_max_pool3d", 3, input, output_size, return_indices)


def _max_unpoolnd(op, nd, input, indices, kernel_size, stride, padding, output_size):
    x, unbatched = _batched(op, input, nd)
    k = _ntuple(op, "kernel_size", kernel_size, nd, 1)
    s = k if stride is None else _ntuple(op, "stride", stride, nd, 1)
    p = _ntuple(op, "padding", padding, nd, 0)
    if output_size is None:
        out_sp = tuple((n - 1) * ss - 2 * pp + kk for n, ss, pp, kk in zip(x.shape[2:], s, p, k))
    else:
        out_sp = tuple(int(o) for o in tuple(output_size)[-nd:])
    if not isinstance(indices, Tensor) or tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"{op}: expected indices of the input's shape {tuple(input.shape)}, "
                           f"got {getattr(indices, 'shape', indices)!r}")
    if indices._data.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got {indices.dtype}")
    idx = indices.unsqueeze(0) if unbatched else indices
    plane = math.prod(out_sp)
    if idx._data.size and (idx._data.min() < 0 or idx._data.max() >= plane):
        raise RuntimeError(f"{op}: found an invalid max index {int(idx._data.max())} for an "
                           f"output of spatial size {out_sp}")
    out = apply(_max_unpool, (x, idx), {"output_size": out_sp})
    return out.squeeze(0) if unbatched else out


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """Partial inverse of max_pool1d: place each value at its index, zeros elsewhere."""
    return _max_unpoolnd("max_unpool1d", 1, input, indices, kernel_size, stride, padding,
                         output_size)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """Partial inverse of max_pool2d: place each value at its flat index, zeros elsewhere."""
    return _max_unpoolnd("max_unpool2d", 2, input, indices, kernel_size, stride, padding,
                         output_size)
