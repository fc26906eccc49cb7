"""Quantisation: QuantizeLinear, DequantizeLinear (per tensor, per axis, blocked),
DynamicQuantizeLinear, and the integer kernels QLinearMatMul, QLinearConv, MatMulInteger,
ConvInteger — what QDQ and QOperator int8 models (onnxruntime's quantiser, ember.quantize)
contain. Integer products are computed exactly in float64 (sums of int8 products stay far
below 2**53), then rounded half to even and saturated as ONNX specifies."""
from __future__ import annotations

import numpy as np

from ... import dtypes as D
from ...ops import arithmetic as A
from ...ops import comparison as C
from ...ops import linalg as L
from ...ops import reduction as R
from ...ops import shape as S
from ...ops import unary as U
from . import rule
from .nn import conv
from .tensor import ember_dtype

_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127),
           np.dtype(np.int16): (-32768, 32767)}


def _per(ctx, v, x, axis: int, block: int):
    """A scale or zero point shaped to broadcast over ``x``: scalar, per axis, or blocked
    (each entry repeated ``block`` times along ``axis``)."""
    if v.ndim == 0:
        return v
    if v.numel() == 1:
        return S.reshape(v, ())
    axis = ctx.axis(axis, x.ndim)
    if not block:
        if v.ndim != 1 or v.shape[0] != x.shape[axis]:
            raise ctx.error(f"a per-axis scale/zero point must have shape ({x.shape[axis]},) "
                            f"for axis {axis} of {tuple(x.shape)}, got {tuple(v.shape)}")
        shape = [1] * x.ndim
        shape[axis] = v.shape[0]
        return S.reshape(v, tuple(shape))
    full = S.narrow(S.repeat_interleave(v, block, axis), axis, 0, x.shape[axis])
    if tuple(full.shape) != tuple(x.shape):
        raise ctx.error(f"blocked scale {tuple(v.shape)} with block_size {block} doesn't "
                        f"cover the input {tuple(x.shape)} along axis {axis}")
    return full


def _saturate(ctx, y, dt):
    """Round half to even, clip to ``dt``'s range, convert."""
    if np.dtype(dt) not in _RANGES:
        raise ctx.error(f"quantised type {np.dtype(dt)} is not supported (uint8, int8, int16)",
                        TypeError)
    lo, hi = _RANGES[np.dtype(dt)]
    return A.cast(C.clamp(U.round(y), float(lo), float(hi)), D.from_numpy_dtype(np.dtype(dt)))


@rule("QuantizeLinear")
def _quantize(ctx, node, ins):
    x, scale = ins[0], ins[1]
    zp = ins[2] if len(ins) > 2 else None
    axis, block = node.attr("axis", 1), node.attr("block_size", 0)
    if zp is not None:
        out_dt = zp._data.dtype
    elif node.attr("output_dtype"):
        out_dt = ember_dtype(node.attr("output_dtype")).np
    else:
        out_dt = np.dtype(np.uint8)
    prec = node.attr("precision")
    xf = x if prec is None else A.cast(x, ember_dtype(prec))
    s = _per(ctx, scale, x, axis, block)
    y = A.div(xf, A.cast(s, xf.dtype))
    y = U.round(y)
    if zp is not None:
        y = A.add(A.cast(y, D.float64), A.cast(_per(ctx, zp, x, axis, block), D.float64))
    return _saturate(ctx, y, out_dt)


@rule("DequantizeLinear")
def _dequantize(ctx, node, ins):
    x, scale = ins[0], ins[1]
    zp = ins[2] if len(ins) > 2 else None
    axis, block = node.attr("axis", 1), node.attr("block_size", 0)
    xf = A.cast(x, D.float32)
    if zp is not None:
        xf = A.sub(xf, A.cast(_per(ctx, zp, x, axis, block), D.float32))
    y = A.mul(xf, _per(ctx, scale, x, axis, block))
    out = ember_dtype(node.attr("output_dtype")) if node.attr("output_dtype") else scale.dtype
    return A.cast(y, out) if y.dtype != out else y


@rule("DynamicQuantizeLinear")
def _dynamic_quantize(ctx, node, ins):
    x = ins[0]
    hi = A.maximum(R.amax(x), ctx.const(0, like=x))
    lo = A.minimum(R.amin(x), ctx.const(0, like=x))
    span = A.sub(hi, lo)
    scale = A.div(C.where(C.eq(span, 0), ctx.const(1, like=x), span), 255.0)
    zp = U.round(C.clamp(A.neg(A.div(lo, scale)), 0.0, 255.0))
    y = A.add(U.round(A.div(x, scale)), zp)
    return [_saturate(ctx, y, np.uint8), scale, A.cast(zp, D.uint8)]


def _centered(x, zp, like_rank=None):
    """``x - zero_point`` as exact float64."""
    xf = A.cast(x, D.float64)
    if zp is None:
        return xf
    z = A.cast(zp, D.float64)
    if like_rank is not None and z.ndim == 1 and z.numel() > 1:
        z = S.reshape(z, (-1,) + (1,) * (like_rank - 1))  # per output channel of a weight
    return A.sub(xf, z)


def _rows(v, rank):
    """A per-row (M,) scale/zero point of a matrix operand, as a column."""
    return S.reshape(v, (-1, 1)) if v.ndim == 1 and v.numel() > 1 and rank >= 2 else v


@rule("MatMulInteger")
def _matmul_integer(ctx, node, ins):
    a, b = ins[0], ins[1]
    azp = ins[2] if len(ins) > 2 else None
    bzp = ins[3] if len(ins) > 3 else None
    a0 = _centered(a, None if azp is None else _rows(azp, a.ndim))
    out = L.matmul(a0, _centered(b, bzp))
    return A.cast(out, D.int32)


@rule("QLinearMatMul")
def _qlinear_matmul(ctx, node, ins):
    a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp = ins
    acc = L.matmul(_centered(a, None if a_zp is None else _rows(a_zp, a.ndim)),
                   _centered(b, b_zp))
    mult = A.div(A.mul(A.cast(_rows(a_s, a.ndim), D.float64), A.cast(b_s, D.float64)),
                 A.cast(y_s, D.float64))
    y = A.mul(acc, mult)
    if y_zp is not None:
        y = A.add(y, A.cast(y_zp, D.float64))
    return _saturate(ctx, y, (y_zp if y_zp is not None else a)._data.dtype)


@rule("ConvInteger")
def _conv_integer(ctx, node, ins):
    x, w = ins[0], ins[1]
    xzp = ins[2] if len(ins) > 2 else None
    wzp = ins[3] if len(ins) > 3 else None
    out = conv(ctx, node, _centered(x, xzp), _centered(w, wzp, w.ndim))
    return A.cast(out, D.int32)


@rule("QLinearConv")
def _qlinear_conv(ctx, node, ins):
    x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp = ins[:8]
    bias = ins[8] if len(ins) > 8 else None
    acc = conv(ctx, node, _centered(x, x_zp), _centered(w, w_zp, w.ndim),
               None if bias is None else A.cast(bias, D.float64))
    ws = A.cast(w_s, D.float64)
    if ws.numel() > 1:
        ws = S.reshape(ws, (1, -1) + (1,) * (x.ndim - 2))
    y = A.mul(acc, A.div(A.mul(A.cast(x_s, D.float64), ws), A.cast(y_s, D.float64)))
    if y_zp is not None:
        y = A.add(y, A.cast(y_zp, D.float64))
    return _saturate(ctx, y, (y_zp if y_zp is not None else x)._data.dtype)
