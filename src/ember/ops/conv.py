"""Convolutions as primitives (N-d, channels-first: ``(N, C, *spatial)``).

Three ops carry every convolution and all of their derivatives:

- ``conv(x, w[, b])``: cross-correlation, ``y = W @ im2col(x)`` -- one im2col copy, one GEMM;
- ``conv_transpose(x, w[, b])``: the adjoint of ``conv`` in its input, ``col2im(W.T @ x)``;
  it is also ``conv``'s input gradient;
- ``conv_weight_grad(x, gy)``: ``gy @ im2col(x).T`` summed over the batch, ``conv``'s weight
  gradient.

Each op's backward rule is written with the other two, so gradients of any order (and traced
backward passes) stay in this small closed family. ``unfold``/``fold`` are ``im2col``/``col2im``
exposed as ops of their own.

Performance: for stride 1 the padded image is flattened and each kernel offset becomes one
contiguous shift of the flat image (output rows keep the padded width, whose extra columns
are cropped at the end), so im2col and col2im move long contiguous runs instead of rows of a
few pixels. Strided convolutions slice strided windows, one slice per kernel offset.
"""
from __future__ import annotations

import functools
import itertools
import math
import threading
from collections import OrderedDict

import numpy as np

from ..tensor import Tensor
from .registry import apply, register


class _Workspace(threading.local):
    """Scratch arrays reused across calls for temporaries that never leave a kernel (im2col
    columns, padded copies, GEMM outputs that get cropped).

    A fresh multi-megabyte NumPy array is a fresh mmap: the kernel zeroes and faults in every
    page on first touch, which costs more than the im2col copy itself (about a third of a
    small CNN's training step). Arrays are kept per (tag, shape, dtype), least recently used
    first out beyond ``limit`` bytes. Per thread, so concurrent kernels never share one.
    """

    limit = 256 << 20

    def __init__(self):
        self.arrays = OrderedDict()
        self.nbytes = 0

    def get(self, xp, tag, shape, dtype):
        if xp is not np:
            return xp.empty(shape, dtype)
        key = (tag, shape, np.dtype(dtype).char)
        a = self.arrays.get(key)
        if a is not None:
            self.arrays.move_to_end(key)
            return a
        a = np.empty(shape, dtype)
        if a.nbytes <= self.limit:
            self.arrays[key] = a
            self.nbytes += a.nbytes
            while self.nbytes > self.limit:
                self.nbytes -= self.arrays.popitem(last=False)[1].nbytes
        return a


_ws = _Workspace()


class _Geom:
    """Where each output position of a sliding-window op reads its window.

    ``in_sp``: spatial input size; ``k``, ``s``, ``d``: kernel, stride, dilation; ``pads``:
    ``(before, after)`` per spatial dim. ``out_sp`` defaults to the usual floor formula; a
    caller may pass a smaller one (a transposed convolution's input fixes it).
    """

    __slots__ = ("in_sp", "k", "s", "d", "pads", "padded", "out_sp", "K", "flat", "L",
                 "shifts", "windows", "buflen")

    def __init__(self, in_sp, k, s, d, pads, out_sp=None, allow_flat=True):
        self.in_sp, self.k, self.s, self.d, self.pads = tuple(in_sp), k, s, d, pads
        self.padded = tuple(n + lo + hi for n, (lo, hi) in zip(in_sp, pads))
        if out_sp is None:
            out_sp = tuple((p - di * (ki - 1) - 1) // si + 1
                           for p, ki, si, di in zip(self.padded, k, s, d))
        self.out_sp = tuple(out_sp)
        self.K = math.prod(k)
        offsets = list(itertools.product(*(range(ki) for ki in k)))
        nd = len(k)
        self.flat = allow_flat and nd > 1 and all(si == 1 for si in s)
        if self.flat:
            rows = [math.prod(self.padded[i + 1:]) for i in range(nd)]
            self.shifts = [sum(o * di * r for o, di, r in zip(off, d, rows)) for off in offsets]
            self.L = self.out_sp[0] * rows[0]
            # the last output row still reads (k-1)*d past the end in the inner dims
            self.buflen = math.prod(self.padded) + sum(
                (ki - 1) * di * r for ki, di, r in zip(k[1:], d[1:], rows[1:]))
        else:
            self.L = math.prod(self.out_sp)
            self.windows = [tuple(slice(o * di, o * di + si * (n - 1) + 1, si)
                                  for o, si, di, n in zip(off, s, d, self.out_sp))
                            for off in offsets]

    # ----- layouts --------------------------------------------------------------------------
    def _inner(self):
        return tuple(slice(lo, lo + n) for (lo, _), n in zip(self.pads, self.in_sp))

    def pad(self, xp, x, fill=0):
        """The padded input: ``(N, C, buflen)`` when flat, else ``(N, C, *padded)``; a
        scratch array, valid until the kernel returns."""
        N, C = x.shape[:2]
        nopad = all(lo == 0 and hi == 0 for lo, hi in self.pads)
        if self.flat:
            if nopad and self.buflen == math.prod(self.padded):
                return x.reshape(N, C, -1)
            size = math.prod(self.padded)
            buf = _ws.get(xp, "pad", (N, C, self.buflen), x.dtype)
            buf[..., size:] = fill
            _set_framed(buf[..., :size].reshape((N, C) + self.padded), self._inner(), x, fill)
            return buf
        if nopad:
            return x
        buf = _ws.get(xp, "pad", (N, C) + self.padded, x.dtype)
        _set_framed(buf, self._inner(), x, fill)
        return buf

    def views(self, buf):
        """One view of ``buf`` per kernel offset: ``(..., L)`` flat, else ``(..., *out)``."""
        if self.flat:
            L = self.L
            return [buf[..., sh:sh + L] for sh in self.shifts]
        return [buf[(Ellipsis,) + w] for w in self.windows]

    def im2col(self, xp, x, groups=1):
        """Columns ``(N, G, K, C/G, L)``: entry ``[n, g, k, c, p]`` is the pixel that kernel
        offset ``k`` of output position ``p`` reads in channel ``c`` of group ``g``. Offset-
        major columns make each offset's block contiguous (faster copies and adds)."""
        N, C = x.shape[:2]
        G, K, L = groups, self.K, self.L
        buf = self.pad(xp, x)
        if K == 1 and (self.flat or buf is x and x.shape[2:] == self.out_sp):
            return self.views(buf)[0].reshape(N, G, 1, C // G, L)  # 1x1: no copy
        if self.flat:
            cols = _ws.get(xp, "cols", (N, G, K, C // G, L), x.dtype)
            for k, v in enumerate(self.views(buf)):
                cols[:, :, k] = v.reshape(N, G, C // G, L)
            return cols
        cols = _ws.get(xp, "cols", (N, G, K, C // G) + self.out_sp, x.dtype)
        for k, v in enumerate(self.views(buf)):
            cols[:, :, k] = v.reshape((N, G, C // G) + self.out_sp)
        return cols.reshape(N, G, K, C // G, L)

    def col2im(self, xp, cols):
        """Adjoint of :meth:`im2col`: add columns ``(N, G, K, C/G, L)`` back into
        ``(N, C, *in)``."""
        N, G, K, Cg, L = cols.shape
        size = math.prod(self.padded)
        shape = (N, G, Cg) + ((self.buflen,) if self.flat else self.padded)
        # the image is cropped out of the buffer (a copy) unless it is the buffer itself
        crop = self.padded != self.in_sp or self.flat and self.buflen != size
        if not self.flat:
            cols = cols.reshape((N, G, K, Cg) + self.out_sp)
        first = 0
        if not crop:
            buf = xp.zeros(shape, cols.dtype)
        elif self.flat:  # offset 0 covers [0, L): assign it and zero the rest (saves a pass)
            buf = _ws.get(xp, "col2im", shape, cols.dtype)
            buf[..., :L] = cols[:, :, 0]
            buf[..., L:] = 0
            first = 1
        else:
            buf = _ws.get(xp, "col2im", shape, cols.dtype)
            buf.fill(0)
        for k, v in enumerate(self.views(buf)[first:], first):
            v += cols[:, :, k]
        img = (buf[..., :size] if self.flat else buf).reshape((N, G * Cg) + self.padded)
        if not crop:
            return img
        return xp.ascontiguousarray(img[(slice(None), slice(None)) + self._inner()])

    @property
    def crops_out(self):
        """Whether :meth:`to_out` copies (a flat layout with wrap-around columns)."""
        return self.flat and self.padded[1:] != self.out_sp[1:]

    def to_out(self, xp, y, bias=None):
        """``(N, C, L)`` -> ``(N, C, *out)`` (drops a flat layout's wrap-around columns),
        adding ``bias`` per channel on the way."""
        N, C = y.shape[:2]
        bshape = (-1,) + (1,) * len(self.out_sp)
        if not self.crops_out:
            y = y.reshape((N, C) + self.out_sp)
            if bias is not None:
                y += bias.reshape(bshape)
            return y
        y = y.reshape((N, C, self.out_sp[0]) + self.padded[1:])
        y = y[(Ellipsis,) + tuple(slice(0, n) for n in self.out_sp[1:])]
        if bias is None:
            return xp.ascontiguousarray(y)
        return xp.add(y, bias.reshape(bshape))  # the crop copy and the bias in one pass

    def from_out(self, xp, g):
        """``(N, C, *out)`` -> ``(N, C, L)``; a flat layout's extra columns are zero. A
        scratch array (when it is not ``g`` itself), valid until the kernel returns."""
        N, C = g.shape[:2]
        if not self.crops_out:
            return g.reshape(N, C, self.L)
        z = _ws.get(xp, "from_out", (N, C, self.out_sp[0]) + self.padded[1:], g.dtype)
        _set_framed(z, (slice(None),) + tuple(slice(0, n) for n in self.out_sp[1:]), g, 0)
        return z.reshape(N, C, self.L)


def _geom(in_sp, k, s, d, pads, out_sp=None, allow_flat=True) -> _Geom:
    """A :class:`_Geom`, computed once per layout: it depends only on sizes, and rebuilding
    it cost a third of a small CNN's batch-1 inference."""
    return _geom_cached(tuple(in_sp), tuple(k), tuple(s), tuple(d), tuple(map(tuple, pads)),
                        None if out_sp is None else tuple(out_sp), allow_flat)


_geom_cached = functools.lru_cache(maxsize=512)(_Geom)


def _set_framed(buf, inner, x, fill):
    """``buf[..., inner] = x`` and ``fill`` everywhere else, writing each element once."""
    nd = len(inner)
    lead = (slice(None),) * (buf.ndim - nd)
    for i, sl in enumerate(inner):
        n = buf.shape[buf.ndim - nd + i]
        before = (slice(None),) * i
        if sl.start:
            buf[lead + before + (slice(0, sl.start),)] = fill
        if sl.stop is not None and sl.stop < n:
            buf[lead + before + (slice(sl.stop, None),)] = fill
    buf[lead + tuple(inner)] = x


# ----- the three convolution ops ------------------------------------------------------------


def _gemm_w_cols(xp, w, cols, out=None):
    """Weights ``(Co, C/G, *k)`` times columns ``(N, G, K, C/G, L)`` -> ``(N, Co, L)``."""
    N, G, K, Cg, L = cols.shape
    Co = w.shape[0]
    # (Co, Cg, K) -> (G, Co/G, K*Cg) to match the offset-major columns
    wk = w.reshape(G, Co // G, Cg, K).swapaxes(2, 3).reshape(G, Co // G, K * Cg)
    if out is None:
        out = xp.empty((N, Co, L), cols.dtype)
    if G == 1:
        xp.matmul(wk[0], cols.reshape(N, K * Cg, L), out=out)
    else:
        xp.matmul(wk, cols.reshape(N, G, K * Cg, L), out=out.reshape(N, G, Co // G, L))
    return out


def _gemm_wT_g(xp, w, gL, groups):
    """Transposed-layout weights ``(Cin, Cout/G, *k)`` times ``(N, Cin, L)`` -> columns
    ``(N, G, K, Cout/G, L)``."""
    N, Ci, L = gL.shape
    G = groups
    Cog = w.shape[1]
    K = math.prod(w.shape[2:])
    # (G, Ci/G, Cog, K) -> (G, K*Cog, Ci/G)
    wt = w.reshape(G, Ci // G, Cog, K).transpose(0, 3, 2, 1).reshape(G, K * Cog, Ci // G)
    cols = _ws.get(xp, "gcols", (N, G, K * Cog, L), gL.dtype)
    if G == 1:
        xp.matmul(wt[0], gL, out=cols[:, 0])
    elif Ci == G:
        # one input channel per group (depthwise): each product has an inner size of 1, an
        # outer product that broadcasting does ~3x faster than a batch of tiny GEMMs
        xp.multiply(wt.reshape(1, G, K * Cog, 1), gL.reshape(N, G, 1, L), out=cols)
    else:
        xp.matmul(wt, gL.reshape(N, G, Ci // G, L), out=cols)
    return cols.reshape(N, G, K, Cog, L)


def _bias_shape(b, nd):
    return b.reshape((-1,) + (1,) * nd)


@register("conv", saves=(0, 1))
def _conv(xp, x, w, b=None, *, stride, padding, dilation, groups=1):
    geo = _geom(x.shape[2:], w.shape[2:], stride, dilation, padding)
    cols = geo.im2col(xp, x, groups)
    N, L = x.shape[0], cols.shape[-1]
    out = _ws.get(xp, "gemm", (N, w.shape[0], L), x.dtype) if geo.crops_out else None
    return geo.to_out(xp, _gemm_w_cols(xp, w, cols, out), b)


@_conv.def_backward
def _(node, g):
    x, w = node.inputs[0], node.inputs[1]
    a = node.attrs
    gx = gw = gb = None
    if x.requires_grad:
        gx = _conv_input_grad(g, w, x.shape, a)
    if w.requires_grad:
        gw = _weight_grad(x, g, w.shape[2:], a)
    if len(node.inputs) == 3:
        if node.inputs[2].requires_grad:
            gb = g.sum((0,) + tuple(range(2, g.ndim)))
        return gx, gw, gb
    return gx, gw


@register("conv_transpose", saves=(0, 1))
def _conv_transpose(xp, x, w, b=None, *, stride, padding, output_padding, dilation, groups=1):
    k = w.shape[2:]
    out_sp = tuple((i - 1) * s + d * (kk - 1) + 1 + op - lo - hi for i, s, d, kk, op, (lo, hi)
                   in zip(x.shape[2:], stride, dilation, k, output_padding, padding))
    geo = _geom(out_sp, k, stride, dilation, padding, out_sp=x.shape[2:])
    y = geo.col2im(xp, _gemm_wT_g(xp, w, geo.from_out(xp, x), groups))
    if b is not None:
        y += _bias_shape(b, len(k))
    return y


@_conv_transpose.def_backward
def _(node, g):
    x, w = node.inputs[0], node.inputs[1]
    a = node.attrs
    conv_attrs = {k: a[k] for k in ("stride", "padding", "dilation", "groups")}
    gx = gw = gb = None
    if x.requires_grad:
        gx = _crop_to(apply(_conv, (g, w), conv_attrs), x.shape)
    if w.requires_grad:
        gw = _weight_grad(g, x, w.shape[2:], conv_attrs)
    if len(node.inputs) == 3:
        if node.inputs[2].requires_grad:
            gb = g.sum((0,) + tuple(range(2, g.ndim)))
        return gx, gw, gb
    return gx, gw


@register("conv_weight_grad", saves=(0, 1))
def _conv_weight_grad(xp, x, gy, *, kernel, stride, padding, dilation, groups=1):
    geo = _geom(x.shape[2:], kernel, stride, dilation, padding, out_sp=gy.shape[2:])
    cols = geo.im2col(xp, x, groups)
    N, G, K, Cg, L = cols.shape
    Co = gy.shape[1]
    gL = geo.from_out(xp, gy).reshape(N, G, Co // G, L)
    # cols @ gy.T per image (this orientation runs ~1.4x faster in OpenBLAS than gy @ cols.T)
    per_image = _ws.get(xp, "wgrad", (N, G, K * Cg, Co // G), x.dtype)
    gw = xp.matmul(cols.reshape(N, G, K * Cg, L), gL.swapaxes(2, 3), out=per_image).sum(0)
    # (G, K, Cg, Co/G) -> (Co, Cg, *k)
    gw = gw.reshape(G, K, Cg, Co // G).transpose(0, 3, 2, 1)
    return xp.ascontiguousarray(gw).reshape((Co, Cg) + tuple(kernel))


@_conv_weight_grad.def_backward
def _(node, ggw):
    x, gy = node.inputs
    a = node.attrs
    conv_attrs = {k: a[k] for k in ("stride", "padding", "dilation", "groups")}
    gx = ggy = None
    if x.requires_grad:
        gx = _conv_input_grad(gy, ggw, x.shape, conv_attrs)
    if gy.requires_grad:
        ggy = _crop_to(apply(_conv, (x, ggw), conv_attrs), gy.shape)
    return gx, ggy


def _conv_input_grad(g, w, x_shape, a):
    """``conv``'s input gradient: the transposed convolution that restores ``x_shape``."""
    k = w.shape[2:]
    op = tuple(n + lo + hi - ((o - 1) * s + d * (kk - 1) + 1) for n, o, s, d, kk, (lo, hi)
               in zip(x_shape[2:], g.shape[2:], a["stride"], a["dilation"], k, a["padding"]))
    return apply(_conv_transpose, (g, w), {"stride": a["stride"], "padding": a["padding"],
                                          "output_padding": op, "dilation": a["dilation"],
                                          "groups": a["groups"]})


def _weight_grad(x, gy, kernel, a):
    return apply(_conv_weight_grad, (x, gy), {"kernel": tuple(kernel), "stride": a["stride"],
                                             "padding": a["padding"],
                                             "dilation": a["dilation"], "groups": a["groups"]})


def _crop_to(t, shape):
    # an output_padding of a whole stride (allowed when dilation > stride) gives one
    # extra position that the transposed op never used
    if tuple(t.shape) == tuple(shape):
        return t
    from .indexing import _getitem_basic
    return _getitem_basic(t, tuple(slice(0, n) for n in shape))


# ----- unfold / fold (im2col and col2im as ops) ---------------------------------------------


@register("im2col", saves=())
def _im2col(xp, x, kernel, dilation, padding, stride):
    geo = _geom(x.shape[2:], kernel, stride, dilation, padding, allow_flat=False)
    cols = geo.im2col(xp, x)[:, 0]  # (N, K, C, L) scratch; PyTorch's rows are channel-major
    out = xp.empty((x.shape[0], x.shape[1], geo.K, geo.L), x.dtype)
    out[...] = cols.swapaxes(1, 2)
    return out.reshape(x.shape[0], -1, geo.L)


@_im2col.def_backward
def _(node, g):
    a = dict(node.attrs)
    a["output_size"] = tuple(node.inputs[0].shape[2:])
    return (apply(_col2im, (g,), a),)


@register("col2im", saves=())
def _col2im(xp, cols, output_size, kernel, dilation, padding, stride):
    geo = _geom(output_size, kernel, stride, dilation, padding, allow_flat=False)
    N = cols.shape[0]
    C = cols.shape[1] // geo.K
    return geo.col2im(xp, cols.reshape(N, C, geo.K, geo.L).swapaxes(1, 2)[:, None])


@_col2im.def_backward
def _(node, g):
    a = {k: v for k, v in node.attrs.items() if k != "output_size"}
    return (apply(_im2col, (g,), a),)


# ----- argument checking and the public functions -------------------------------------------


def _ntuple(op: str, name: str, value, n: int, minimum: int) -> tuple:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value),) * n
    elif isinstance(value, (tuple, list)) and len(value) == 1 and n > 1:
        value = (int(value[0]),) * n
    if not (isinstance(value, (tuple, list)) and len(value) == n and
            all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    value = tuple(int(v) for v in value)
    if any(v < minimum for v in value):
        raise ValueError(f"{op}: {name} must be >= {minimum} in every dimension, got {value}")
    return value


def _padding_pairs(op: str, padding, kernel, stride, dilation) -> tuple:
    """Padding as ``(before, after)`` pairs; 'same' pads the odd extra at the end, as
    PyTorch does."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided "
                                 f"convolutions (stride {stride})")
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in total)
        raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of "
                         f"'valid', 'same'")
    return tuple((p, p) for p in _ntuple(op, "padding", padding, n, 0))


def _batched(op: str, input: Tensor, nd: int):
    if input.ndim == nd + 2:
        return input, False
    if input.ndim == nd + 1:
        return input.unsqueeze(0), True
    layout = {1: "(C, L) or (N, C, L)", 2: "(C, H, W) or (N, C, H, W)",
              3: "(C, D, H, W) or (N, C, D, H, W)"}[nd]
    raise RuntimeError(f"{op}: expected a {nd + 1}-d (unbatched) or {nd + 2}-d (batched) "
                       f"input {layout}, got shape {tuple(input.shape)}")


def _check_common(op, input, weight, bias, nd, groups, out_channels):
    if not isinstance(weight, Tensor) or weight.ndim != nd + 2:
        raise RuntimeError(f"{op}: expected a {nd + 2}-d weight, got "
                           f"{tuple(weight.shape) if isinstance(weight, Tensor) else weight!r}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    if input._data.dtype != weight._data.dtype:
        raise TypeError(f"{op}: input dtype {input.dtype} and weight dtype {weight.dtype} "
                        f"differ; convert the input with .to({weight.dtype})")
    if input._data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    if bias is not None:
        if tuple(bias.shape) != (out_channels,):
            raise RuntimeError(f"{op}: expected bias of shape ({out_channels},) for weight "
                               f"{tuple(weight.shape)}, got {tuple(bias.shape)}")
        if bias._data.dtype != weight._data.dtype:
            raise TypeError(f"{op}: bias dtype {bias.dtype} differs from weight dtype "
                            f"{weight.dtype}")


def _convnd(op: str, nd: int, input, weight, bias, stride, padding, dilation, groups):
    x, unbatched = _batched(op, input, nd)
    Co = weight.shape[0] if isinstance(weight, Tensor) else None
    _check_common(op, x, weight, bias, nd, groups, Co)
    stride = _ntuple(op, "stride", stride, nd, 1)
    dilation = _ntuple(op, "dilation", dilation, nd, 1)
    k = tuple(weight.shape[2:])
    pads = _padding_pairs(op, padding, k, stride, dilation)
    C = x.shape[1]
    if C != weight.shape[1] * groups:
        grp = f" and groups={groups}" if groups != 1 else ""
        raise RuntimeError(f"{op}: expected input with {weight.shape[1] * groups} channels "
                           f"(weight {tuple(weight.shape)}{grp}), got shape "
                           f"{tuple(input.shape)}")
    if Co % groups:
        raise RuntimeError(f"{op}: out channels {Co} (weight {tuple(weight.shape)}) must be "
                           f"divisible by groups={groups}")
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads))
    eff = tuple(d * (kk - 1) + 1 for kk, d in zip(k, dilation))
    if any(p < e for p, e in zip(padded, eff)):
        raise RuntimeError(f"{op}: kernel size {k} (dilated extent {eff}) is larger than the "
                           f"padded input {padded} (input shape {tuple(input.shape)}, padding "
                           f"{padding!r})")
    inputs = (x, weight) if bias is None else (x, weight, bias)
    out = apply(_conv, inputs, {"stride": stride, "padding": pads, "dilation": dilation,
                                "groups": int(groups)})
    return out.squeeze(0) if unbatched else out


def _conv_transposend(op, nd, input, weight, bias, stride, padding, output_padding, groups,
                      dilation):
    x, unbatched = _batched(op, input, nd)
    if isinstance(weight, Tensor) and weight.ndim == nd + 2:
        Co = weight.shape[1] * groups if isinstance(groups, int) else None
    else:
        Co = None
    _check_common(op, x, weight, bias, nd, groups, Co)
    stride = _ntuple(op, "stride", stride, nd, 1)
    dilation = _ntuple(op, "dilation", dilation, nd, 1)
    if isinstance(padding, str):
        raise ValueError(f"{op}: string padding {padding!r} is not supported for transposed "
                         f"convolutions; give an int or a tuple")
    pads = tuple((p, p) for p in _ntuple(op, "padding", padding, nd, 0))
    out_pad = _ntuple(op, "output_padding", output_padding, nd, 0)
    for o, s, d in zip(out_pad, stride, dilation):
        if o >= s and o >= d:
            raise ValueError(f"{op}: output_padding {out_pad} must be smaller than either "
                             f"stride {stride} or dilation {dilation}")
    Ci = weight.shape[0]
    if x.shape[1] != Ci:
        raise RuntimeError(f"{op}: expected input with {Ci} channels (weight "
                           f"{tuple(weight.shape)}), got shape {tuple(input.shape)}")
    if Ci % groups:
        raise RuntimeError(f"{op}: in channels {Ci} (weight {tuple(weight.shape)}) must be "
                           f"divisible by groups={groups}")
    k = tuple(weight.shape[2:])
    out_sp = tuple((i - 1) * s + d * (kk - 1) + 1 + o - 2 * p for i, s, d, kk, o, (p, _)
                   in zip(x.shape[2:], stride, dilation, k, out_pad, pads))
    if any(n <= 0 for n in out_sp):
        raise RuntimeError(f"{op}: the output size {out_sp} is too small (input shape "
                           f"{tuple(input.shape)}, weight {tuple(weight.shape)}, stride "
                           f"{stride}, padding {padding!r})")
    inputs = (x, weight) if bias is None else (x, weight, bias)
    out = apply(_conv_transpose, inputs, {"stride": stride, "padding": pads,
                                          "output_padding": out_pad, "dilation": dilation,
                                          "groups": int(groups)})
    return out.squeeze(0) if unbatched else out


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-d cross-correlation: input ``(N, C_in, L)`` or ``(C_in, L)``, weight
    ``(C_out, C_in/groups, k)``; ``padding`` is an int, a tuple, 'valid' or 'same'."""
    return _convnd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-d cross-correlation: input ``(N, C_in, H, W)`` or ``(C_in, H, W)``, weight
    ``(C_out, C_in/groups, kH, kW)``; ``padding`` is an int, a tuple, 'valid' or 'same'."""
    return _convnd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """3-d cross-correlation: input ``(N, C_in, D, H, W)``, weight
    ``(C_out, C_in/groups, kD, kH, kW)``."""
    return _convnd("conv3d", 3, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 1-d convolution; weight ``(C_in, C_out/groups, k)``; output length
    ``(L-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1``."""
    return _conv_transposend("conv_transpose1d", 1, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-d convolution (the gradient of conv2d in its input); weight
    ``(C_in, C_out/groups, kH, kW)``."""
    return _conv_transposend("conv_transpose2d", 2, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 3-d convolution; weight ``(C_in, C_out/groups, kD, kH, kW)``."""
    return _conv_transposend("conv_transpose3d", 3, input, weight, bias, stride, padding,
                             output_padding, groups, dilation)


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding local blocks (im2col): ``(N, C, H, W)`` -> ``(N, C*kH*kW, L)``."""
    x, unbatched = _batched("unfold", input, 2)
    k = _ntuple("unfold", "kernel_size", kernel_size, 2, 1)
    d = _ntuple("unfold", "dilation", dilation, 2, 1)
    s = _ntuple("unfold", "stride", stride, 2, 1)
    p = _ntuple("unfold", "padding", padding, 2, 0)
    geo = _geom(x.shape[2:], k, s, d, tuple((q, q) for q in p), allow_flat=False)
    if any(o <= 0 for o in geo.out_sp):
        raise RuntimeError(f"unfold: kernel {k} with dilation {d} does not fit the padded "
                           f"input {geo.padded} (input shape {tuple(input.shape)})")
    out = apply(_im2col, (x,), {"kernel": k, "dilation": d, "padding": tuple((q, q) for q in p),
                                "stride": s})
    return out.squeeze(0) if unbatched else out


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Combine sliding local blocks into an image (col2im, summing overlaps): ``(N, C*kH*kW,
    L)`` -> ``(N, C, *output_size)``."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"fold: expected a 2-d (unbatched) or 3-d (batched) input "
                           f"(N, C*kH*kW, L), got shape {tuple(input.shape)}")
    x = input.unsqueeze(0) if input.ndim == 2 else input
    size = _ntuple("fold", "output_size", output_size, 2, 1)
    k = _ntuple("fold", "kernel_size", kernel_size, 2, 1)
    d = _ntuple("fold", "dilation", dilation, 2, 1)
    s = _ntuple("fold", "stride", stride, 2, 1)
    p = _ntuple("fold", "padding", padding, 2, 0)
    pads = tuple((q, q) for q in p)
    geo = _geom(size, k, s, d, pads, allow_flat=False)
    if x.shape[1] % geo.K:
        raise RuntimeError(f"fold: expected size of input's dimension 1 to be divisible by the "
                           f"product of kernel_size {k}, got shape {tuple(input.shape)}")
    if x.shape[2] != geo.L:
        raise RuntimeError(f"fold: expected {geo.L} blocks (output_size {size}, kernel {k}, "
                           f"dilation {d}, padding {p}, stride {s}), got shape "
                           f"{tuple(input.shape)}")
    if x._data.dtype.kind != "f":
        raise TypeError(f"fold: expected a floating-point input, got {input.dtype}")
    out = apply(_col2im, (x,), {"output_size": size, "kernel": k, "dilation": d,
                                "padding": pads, "stride": s})
    return out.squeeze(0) if input.ndim == 2 else out
