"""Resizing and rearranging images: ``interpolate`` (nearest, linear, bilinear, trilinear,
area), ``pixel_shuffle``/``pixel_unshuffle`` and ``pad``, with PyTorch's signatures.

Resampling is separable: along each spatial dim the output gathers input rows
(``index_select``, whose gradient is an index_add) and, for the linear modes, blends two of
them, so a bilinear resize is one blend per dim and its backward comes from the gathers.
"""
from __future__ import annotations

import math

import numpy as np

from ...ops.creation import wrap_constant
from ...ops.indexing import index_select
from ...ops.shape import pad
from ...tensor import Tensor

__all__ = ["interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pad",
           "pixel_shuffle", "pixel_unshuffle"]

_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _per_dim(op: str, value, n: int, what: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{op}: {what} {tuple(value)} must have one entry per spatial "
                             f"dim ({n})")
        return list(value)
    return [value] * n


def _scale(in_size: int, out_size: int, scale_factor, align_corners: bool, ft=np.float32):
    """Source step per output index, in the float type PyTorch's kernels use (float32 for
    nearest and for float32 data), so the picked source indices agree with PyTorch's."""
    if align_corners:
        return ft((in_size - 1) / (out_size - 1)) if out_size > 1 else ft(0)
    if scale_factor is not None and scale_factor > 0:
        return ft(1.0 / scale_factor)
    return ft(in_size / out_size)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners=None, recompute_scale_factor=None, antialias: bool = False):
    """Resize the spatial dims of ``input`` (N, C, *spatial) to ``size`` or by
    ``scale_factor``; ``mode`` is nearest, nearest-exact, linear/bilinear/trilinear (1-, 2-,
    3-d) or area. ``align_corners`` (linear modes) maps corner pixel centres onto each other.
    """
    n = input.ndim - 2
    if n < 1 or n > 3:
        raise ValueError(f"interpolate: expects a 3-, 4- or 5-d input (N, C, *spatial), got "
                         f"shape {tuple(input.shape)}")
    if mode in _LINEAR and _LINEAR[mode] != n:
        raise ValueError(f"interpolate: mode {mode!r} needs a {_LINEAR[mode] + 2}-d input, got "
                         f"shape {tuple(input.shape)}")
    if mode not in ("nearest", "nearest-exact", "area") and mode not in _LINEAR:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported (supported: "
                                  f"nearest, nearest-exact, linear, bilinear, trilinear, area)")
    if align_corners is not None and mode not in _LINEAR:
        raise ValueError(f"interpolate: align_corners only applies to the linear modes, not "
                         f"{mode!r}")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    in_sizes = input.shape[2:]
    if size is not None:
        out_sizes = [int(s) for s in _per_dim("interpolate", size, n, "size")]
        scales = [None] * n
    else:
        scales = [float(s) for s in _per_dim("interpolate", scale_factor, n, "scale_factor")]
        out_sizes = [int(math.floor(i * s)) for i, s in zip(in_sizes, scales)]
        if recompute_scale_factor:
            scales = [None] * n
    if any(s <= 0 for s in out_sizes):
        raise ValueError(f"interpolate: output size {tuple(out_sizes)} must be positive "
                         f"(input {tuple(input.shape)})")
    if mode == "area":
        from ...ops import pooling
        return getattr(pooling, f"adaptive_avg_pool{n}d")(input, tuple(out_sizes))
    out = input
    for k, (i, o, s) in enumerate(zip(in_sizes, out_sizes, scales)):
        d = k + 2
        if mode in _LINEAR:
            out = _linear_along(out, d, i, o, s, bool(align_corners))
        elif i != o:
            dst = np.arange(o, dtype=np.float32)
            if mode == "nearest-exact":
                dst = dst + np.float32(0.5)
            src = np.minimum(np.floor(dst * _scale(i, o, s, False)).astype(np.int64), i - 1)
            out = index_select(out, d, wrap_constant(src, input._dev))
    return out


def _linear_along(x: Tensor, d: int, in_size: int, out_size: int, scale_factor,
                  align_corners: bool) -> Tensor:
    """Blend the two nearest input rows along dim ``d`` for each output index."""
    if in_size == out_size and (not align_corners or in_size == 1):
        return x
    ft = np.float64 if x._data.dtype == np.float64 else np.float32
    scale = _scale(in_size, out_size, scale_factor, align_corners, ft)
    dst = np.arange(out_size, dtype=ft)
    src = scale * dst if align_corners else np.maximum(scale * (dst + ft(0.5)) - ft(0.5),
                                                       ft(0))
    i0 = src.astype(np.int64)  # src >= 0, so truncation is floor
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = src - i0
    shape = [1] * x.ndim
    shape[d] = out_size
    w0 = wrap_constant((1 - w1).reshape(shape).astype(x._data.dtype), x._dev)
    w1 = wrap_constant(w1.reshape(shape).astype(x._data.dtype), x._dev)
    return index_select(x, d, wrap_constant(i0, x._dev)) * w0 + \
        index_select(x, d, wrap_constant(i1, x._dev)) * w1


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r): channels become r x r spatial blocks."""
    r = int(upscale_factor)
    if input.ndim < 3 or input.shape[-3] % (r * r):
        raise RuntimeError(f"pixel_shuffle: expects (*, C*r^2, H, W) with channels divisible "
                           f"by r^2 = {r * r}, got shape {tuple(input.shape)}")
    *lead, c, h, w = input.shape
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    k = len(lead)
    x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W): the inverse of :func:`pixel_shuffle`."""
    r = int(downscale_factor)
    if input.ndim < 3 or input.shape[-2] % r or input.shape[-1] % r:
        raise RuntimeError(f"pixel_unshuffle: expects (*, C, H, W) with H and W divisible by "
                           f"{r}, got shape {tuple(input.shape)}")
    *lead, c, h, w = input.shape
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    k = len(lead)
    x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)
