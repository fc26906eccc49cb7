"""Sampling images: Resize, GridSample, AffineGrid, Col2Im, NonMaxSuppression.

Resizing is separable: each resized axis is one matrix product with an (out, in)
interpolation matrix built in NumPy from the static sizes, tap for tap as ONNX's reference
implementation defines nearest/linear/cubic, the coordinate transformations, antialiasing
and exclude_outside — so the result is differentiable in the input. GridSample gathers the
taps around each sampling point with ember's gather and weights them with ember ops, so it
is differentiable in both the input and the grid.
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from ... import dtypes as D
from ... import ops
from ...ops import arithmetic as A
from ...ops import comparison as C
from ...ops import indexing as I
from ...ops import shape as S
from ...ops import unary as U
from . import rule
from .linalg import matmul

# ----- Resize ---------------------------------------------------------------------------------


_COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                "asymmetric", "tf_crop_and_resize")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _resize_check(node, opset):
    mode = node.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "cubic"):
        return f"mode={mode!r}"
    ctm = node.attr("coordinate_transformation_mode", "half_pixel")
    if ctm not in _COORD_MODES:
        return f"coordinate_transformation_mode={ctm!r}"
    if node.attr("nearest_mode", "round_prefer_floor") not in _NEAREST_MODES:
        return f"nearest_mode={node.attr('nearest_mode')!r}"
    if node.attr("keep_aspect_ratio_policy", "stretch") not in ("stretch", "not_larger",
                                                                 "not_smaller"):
        return f"keep_aspect_ratio_policy={node.attr('keep_aspect_ratio_policy')!r}"
    return None


def _resize_coeffs(mode: str, nearest_mode: str, a: float, antialias: bool, ratio: float,
                   scale: float) -> np.ndarray:
    """Weights of the taps around a source coordinate whose fraction is ``ratio`` (in
    (0, 1]; an exact integer comes as 1), as ONNX's reference implementation defines them."""
    if mode == "nearest":
        if float(ratio).is_integer():
            return np.array([0.0, 1.0])
        return np.array({"round_prefer_floor": [ratio <= 0.5, ratio > 0.5],
                         "round_prefer_ceil": [ratio < 0.5, ratio >= 0.5],
                         "floor": [1, 0], "ceil": [0, 1]}[nearest_mode], np.float64)
    if mode == "linear":
        if not antialias:
            return np.array([1 - ratio, ratio])
        s = min(scale, 1.0)  # antialiasing widens the kernel by 1/scale when shrinking
        start = int(np.floor(-1 / s) + 1)
        c = np.clip(1 - np.abs((np.arange(start, start + 2 - 2 * start) - ratio) * s), 0, 1)
        return c / c.sum()

    def cubic(x):
        x = np.abs(x)
        return np.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                        np.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0))
    if not antialias:
        return cubic(np.array([ratio + 1, ratio, 1 - ratio, 2 - ratio]))
    s = min(scale, 1.0)
    start = int(np.floor(-2 / s) + 1)
    c = cubic(s * (np.arange(start, 2 - start) - ratio))
    return c / c.sum()


@functools.lru_cache(maxsize=256)
def _resize_matrix(mode: str, ctm: str, nearest_mode: str, a: float, exclude: bool,
                   antialias: bool, n_in: int, n_out: int, scale: float, roi: tuple) -> tuple:
    """The (n_out, n_in) interpolation matrix of one axis — resizing is separable — and, for
    tf_crop_and_resize, the mask of outputs outside the input (they take
    extrapolation_value). Follows ONNX's reference implementation tap for tap."""
    width = scale * n_in  # fractional, as the reference uses it
    y = np.arange(n_out, dtype=np.float64)
    outside = None
    if ctm == "align_corners":
        x = np.zeros(n_out) if width == 1 else y * (n_in - 1) / (width - 1)
    elif ctm == "asymmetric":
        x = y / scale
    elif ctm == "tf_crop_and_resize":
        lo, hi = roi
        x = (np.full(n_out, (hi - lo) * (n_in - 1) / 2) if width == 1
             else y * (hi - lo) * (n_in - 1) / (width - 1))
        x = x + lo * (n_in - 1)
        outside = (x < 0) | (x > n_in - 1)
    elif ctm == "pytorch_half_pixel":
        x = np.full(n_out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    elif ctm == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    else:  # half_pixel_symmetric
        offset = n_in / 2 * (1 - n_out / width)
        x = offset + (y + 0.5) / scale - 0.5
    W = np.zeros((n_out, n_in), np.float64)
    for i, xi in enumerate(x):
        base = np.floor(xi)
        ratio = 1.0 if xi == base else xi - base
        c = _resize_coeffs(mode, nearest_mode, a, antialias, ratio, scale)
        n = len(c)
        # the n taps nearest to x (ties to the smaller index), in edge-padded coordinates
        pad = -(-n // 2)
        xp = xi + pad
        p = np.floor(xp)
        frac = xp - p
        if n % 2 == 0:
            off = -(n // 2) if frac == 0 else -(n // 2) + 1
        else:
            off = -((n - 1) // 2) + (0 if frac <= 0.5 else 1)
        taps = int(p) + off + np.arange(n) - pad
        if exclude:
            c = np.where((taps < 0) | (taps >= n_in), 0.0, c)
            total = c.sum()
            c = c / (total if total != 0 else 1.0)
        np.add.at(W[i], np.clip(taps, 0, n_in - 1), c)
    if outside is not None:
        W[outside] = 0.0
    return W, outside


@rule("Resize", check=_resize_check)
def _resize(ctx, node, ins):
    x = ins[0]
    roi = ctx.array(ins[1]).reshape(-1).astype(np.float64) if len(ins) > 1 and \
        ins[1] is not None and ins[1].numel() else None
    scales = ctx.array(ins[2]).reshape(-1).astype(np.float64) if len(ins) > 2 and \
        ins[2] is not None and ins[2].numel() else None
    sizes = ctx.ints(ins[3]) if len(ins) > 3 and ins[3] is not None and ins[3].numel() \
        else None
    return _resize_impl(ctx, node, x, roi, scales, sizes)


def _resize_impl(ctx, node, x, roi, scales, sizes):
    r = x.ndim
    axes = node.attr("axes")
    axes = list(range(r)) if axes is None else [ctx.axis(a, r) for a in axes]
    if scales is None and sizes is None:
        raise ctx.error("needs scales or sizes")
    if scales is not None and len(scales) != len(axes):
        raise ctx.error(f"scales {list(scales)} must have one entry per axis {axes}")
    if sizes is not None:
        if len(sizes) != len(axes):
            raise ctx.error(f"sizes {sizes} must have one entry per axis {axes}")
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        ratios = [s / x.shape[a] for s, a in zip(sizes, axes)]
        if policy != "stretch":
            f = min(ratios) if policy == "not_larger" else max(ratios)
            ratios = [f] * len(axes)
            sizes = [int(np.floor(x.shape[a] * f + 0.5)) for a in axes]
        scales = np.array(ratios, np.float64)
    else:
        sizes = [int(np.floor(x.shape[a] * s)) for a, s in zip(axes, scales)]
    full_roi = {}
    if roi is not None:
        k = len(roi) // 2
        roi_axes = axes if k == len(axes) else list(range(r))
        for i, a in enumerate(roi_axes):
            full_roi[a] = (roi[i], roi[k + i])
    out = x if x._data.dtype.kind == "f" else A.cast(x, D.float64)
    mask_total = None
    for a, s, n_out in zip(axes, scales, sizes):
        n_in = x.shape[a]
        if n_out == n_in and s == 1.0 and node.attr("coordinate_transformation_mode") != \
                "tf_crop_and_resize":
            continue
        mode = node.attr("mode", "nearest")
        W, outside = _resize_matrix(
            mode, node.attr("coordinate_transformation_mode", "half_pixel"),
            node.attr("nearest_mode", "round_prefer_floor"), node.attr("cubic_coeff_a", -0.75),
            bool(node.attr("exclude_outside", 0)),
            bool(node.attr("antialias", 0)) and mode != "nearest", n_in, n_out, float(s),
            tuple(full_roi.get(a, (0.0, 1.0))))
        moved = S.movedim(out, a, -1)
        moved = matmul(moved, ctx.const(W.T.astype(out._data.dtype)))
        out = S.movedim(moved, -1, a)
        if outside is not None and outside.any():
            shape = [1] * r
            shape[a] = n_out
            m = outside.reshape(shape)
            mask_total = m if mask_total is None else (mask_total | m)
    if mask_total is not None:
        ev = node.attr("extrapolation_value", 0.0)
        out = C.where(ctx.const(np.broadcast_to(mask_total, tuple(out.shape)).copy()),
                      ops.creation.full_like(out, ev), out)
    if x._data.dtype.kind != "f":
        info = np.iinfo(x._data.dtype)
        out = A.cast(C.clamp(U.round(out), float(info.min), float(info.max)), x.dtype)
    return out


# ----- GridSample, AffineGrid -----------------------------------------------------------------


def _grid_sample_check(node, opset):
    mode = node.attr("mode", "linear" if opset >= 20 else "bilinear")
    if mode not in ("linear", "bilinear", "nearest", "cubic", "bicubic"):
        return f"mode={mode!r}"
    if node.attr("padding_mode", "zeros") not in ("zeros", "border", "reflection"):
        return f"padding_mode={node.attr('padding_mode')!r}"
    return None


def _reflect(x, lo: float, hi: float):
    """Fold coordinates into [lo, hi] by mirroring at the borders (any number of times)."""
    span = hi - lo
    if span <= 0:
        return ops.creation.full_like(x, lo)
    below, above = C.lt(x, lo), C.gt(x, hi)
    dx = C.where(below, A.sub(lo, x), A.sub(x, hi))
    n = U.floor(A.div(dx, span))
    r = A.sub(dx, A.mul(n, span))
    even = C.eq(A.remainder(n, 2.0), 0)
    low_side = C.where(even, A.add(r, lo), A.sub(hi, r))
    high_side = C.where(even, A.sub(hi, r), A.add(r, lo))
    return C.where(below, low_side, C.where(above, high_side, x))


def _cubic(t):
    """Keys' cubic weights (a = -0.75) of the taps at offsets -1, 0, 1, 2 from floor(x)."""
    a = -0.75

    def near(d):  # |d| <= 1
        return A.add(A.mul(A.mul(A.sub(A.mul(d, a + 2), a + 3), d), d), 1.0)

    def far(d):   # 1 < |d| < 2
        return A.sub(A.mul(A.add(A.mul(A.sub(A.mul(d, a), 5 * a), d), 8 * a), d), 4 * a)
    return [far(A.add(t, 1.0)), near(t), near(A.sub(1.0, t)), far(A.sub(2.0, t))]


@rule("GridSample", check=_grid_sample_check)
def _grid_sample(ctx, node, ins):
    x, grid = ins
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(node.attr("mode"), node.attr("mode"))
    if mode is None:
        mode = "linear"
    pad_mode = node.attr("padding_mode", "zeros")
    align = bool(node.attr("align_corners", 0))
    n, c = x.shape[:2]
    dims = tuple(x.shape[2:])
    nd = len(dims)
    if grid.ndim != nd + 2 or grid.shape[-1] != nd or grid.shape[0] != n:
        raise ctx.error(f"grid {tuple(grid.shape)} must be (N, *out, {nd}) for input "
                        f"{tuple(x.shape)}")
    out_sp = tuple(grid.shape[1:-1])
    g = S.reshape(A.cast(grid, D.float64), (n, -1, nd))            # (N, P, nd)
    coords = []
    for i, size in enumerate(dims):  # the grid's last dim is (x, y[, z]): reversed dims
        v = S.select(g, 2, nd - 1 - i)
        v = A.div(A.mul(A.add(v, 1.0), size - 1), 2.0) if align else \
            A.div(A.sub(A.mul(A.add(v, 1.0), size), 1.0), 2.0)
        if mode == "nearest":
            v = U.round(v)
        lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
        if pad_mode == "border":
            v = C.clamp(v, 0.0, size - 1.0)
        elif pad_mode == "reflection":
            v = _reflect(v, lo, hi)
        coords.append((v, size, lo, hi))
    # taps per dim: (index, weight)
    taps = []
    for v, size, lo, hi in coords:
        if mode == "nearest":
            taps.append([(v, None)])
            continue
        base = U.floor(v)
        t = A.sub(v, base)
        if mode == "linear":
            taps.append([(base, A.sub(1.0, t)), (A.add(base, 1.0), t)])
        else:
            w = _cubic(t)
            taps.append([(A.add(base, float(k)), w[k + 1]) for k in range(-1, 3)])
    flat = S.reshape(x, (n, c, -1))
    strides = [math.prod(dims[i + 1:]) for i in range(nd)]
    total = None
    for combo in itertools.product(*taps):
        weight, index, valid = None, None, None
        for (pos, w), size, st, (_, _, lo, hi) in zip(combo, dims, strides, coords):
            if pad_mode == "zeros":
                ok = C.logical_and(C.ge(pos, 0.0), C.lt(pos, float(size)))
                valid = ok if valid is None else C.logical_and(valid, ok)
                p = C.clamp(pos, 0.0, size - 1.0)
            elif pad_mode == "border":
                p = C.clamp(pos, 0.0, size - 1.0)
            else:  # the tap itself is mirrored, then truncated as the reference does
                p = C.clamp(U.trunc(_reflect(pos, lo, hi)), 0.0, size - 1.0)
            term = A.mul(A.cast(p, D.int64), st)
            index = term if index is None else A.add(index, term)
            if w is not None:
                weight = w if weight is None else A.mul(weight, w)
        idx = S.broadcast_to(S.unsqueeze(index, 1), (n, c, index.shape[1]))
        val = A.cast(I.gather(flat, 2, idx), D.float64)                 # (N, C, P)
        if weight is not None:
            val = A.mul(val, S.unsqueeze(weight, 1))
        if valid is not None:
            val = C.where(S.unsqueeze(valid, 1), val, ops.creation.zeros_like(val))
        total = val if total is None else A.add(total, val)
    return A.cast(S.reshape(total, (n, c) + out_sp), x.dtype)


@rule("AffineGrid")
def _affine_grid(ctx, node, ins):
    theta, size = ins
    shape = ctx.ints(size)
    sp = shape[2:]
    nd = len(sp)
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (nd, nd + 1):
        raise ctx.error(f"theta {tuple(theta.shape)} must be (N, {nd}, {nd + 1}) for size "
                        f"{shape}")
    align = bool(node.attr("align_corners", 0))
    axes = []
    for m in sp:
        if align:
            axes.append(np.linspace(-1.0, 1.0, m) if m > 1 else np.zeros(1))
        else:
            axes.append((2 * np.arange(m) + 1) / m - 1)
    mesh = np.meshgrid(*axes, indexing="ij")               # per spatial dim (D, H, W order)
    # homogeneous points (x, y[, z], 1): the fastest-varying dim first, as the grid is read
    pts = np.stack([m.reshape(-1) for m in mesh[::-1]] + [np.ones(mesh[0].size)], 0)
    grid = matmul(theta, ctx.const(pts.astype(theta._data.dtype)))   # (N, nd, P)
    return S.reshape(S.permute(grid, (0, 2, 1)), (theta.shape[0],) + tuple(sp) + (nd,))


# ----- Col2Im ---------------------------------------------------------------------------------


@rule("Col2Im")
def _col2im(ctx, node, ins):
    x, image_shape, block_shape = ins
    image, block = ctx.ints(image_shape), ctx.ints(block_shape)
    nd = len(image)
    dil = node.attr("dilations") or [1] * nd
    pads = node.attr("pads") or [0] * (2 * nd)
    strides = node.attr("strides") or [1] * nd
    n, ck, L = x.shape
    k = math.prod(block)
    c = ck // k
    padded = [m + pads[i] + pads[nd + i] for i, m in enumerate(image)]
    counts = [(p - (d * (b - 1) + 1)) // s + 1 for p, d, b, s in zip(padded, dil, block,
                                                                        strides)]
    if ck % k or math.prod(counts) != L:
        raise ctx.error(f"input {tuple(x.shape)} doesn't hold (C*{k}, {math.prod(counts)}) "
                        f"blocks of {block} for image {image}")
    # scatter-add every block element to its pixel: one index table, built once
    grid = np.arange(math.prod(padded)).reshape(padded)
    cols = []
    for off in itertools.product(*(range(b) for b in block)):
        sl = tuple(slice(o * d, o * d + (m - 1) * s + 1, s)
                   for o, d, m, s in zip(off, dil, counts, strides))
        cols.append(grid[sl].reshape(-1))
    target = np.stack(cols, 0).reshape(-1)                   # (k * L,)
    vals = S.reshape(x, (n, c, k * L))
    out = ops.creation.zeros(n, c, math.prod(padded), dtype=x.dtype)
    idx = ctx.const(np.broadcast_to(target, (n, c, k * L)).copy())
    out = I.scatter_add(out, 2, idx, vals)
    out = S.reshape(out, (n, c) + tuple(padded))
    key = (slice(None), slice(None)) + tuple(slice(pads[i], pads[i] + image[i])
                                             for i in range(nd))
    return out[key]


# ----- NonMaxSuppression ----------------------------------------------------------------------


def _iou_suppresses(a: np.ndarray, b: np.ndarray, center: int, threshold: float) -> bool:
    if center:
        ax0, ax1 = a[0] - a[2] / 2, a[0] + a[2] / 2
        ay0, ay1 = a[1] - a[3] / 2, a[1] + a[3] / 2
        bx0, bx1 = b[0] - b[2] / 2, b[0] + b[2] / 2
        by0, by1 = b[1] - b[3] / 2, b[1] + b[3] / 2
    else:  # [y1, x1, y2, x2], corners in any order
        ay0, ay1 = sorted((a[0], a[2]))
        ax0, ax1 = sorted((a[1], a[3]))
        by0, by1 = sorted((b[0], b[2]))
        bx0, bx1 = sorted((b[1], b[3]))
    iw = min(ax1, bx1) - max(ax0, bx0)
    ih = min(ay1, by1) - max(ay0, by0)
    if iw <= 0 or ih <= 0:
        return False
    inter = iw * ih
    area_a, area_b = (ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0)
    union = area_a + area_b - inter
    if area_a <= 0 or area_b <= 0 or union <= 0:
        return False
    return inter / union > threshold


@rule("NonMaxSuppression")
def _non_max_suppression(ctx, node, ins):
    boxes, scores = ctx.array(ins[0]), ctx.array(ins[1])
    ins = list(ins) + [None] * (5 - len(ins))
    max_out = max(int(ctx.scalar(ins[2], 0)), 0) if ins[2] is not None and ins[2].numel() \
        else 0
    iou = float(ctx.scalar(ins[3], 0.0)) if ins[3] is not None and ins[3].numel() else 0.0
    score_min = float(ctx.scalar(ins[4])) if ins[4] is not None and ins[4].numel() else None
    center = node.attr("center_point_box", 0)
    picked = []
    for b in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[b, c]
            cand = [i for i in range(s.shape[0]) if score_min is None or s[i] > score_min]
            cand.sort(key=lambda i: (-s[i], i))      # best first; ties: lower index first
            kept: list = []
            for i in cand:
                if len(kept) >= max_out:
                    break
                if not any(_iou_suppresses(boxes[b, i], boxes[b, j], center, iou)
                           for j in kept):
                    kept.append(i)
                    picked.append((b, c, i))
    return ctx.const(np.array(picked, np.int64).reshape(-1, 3))
