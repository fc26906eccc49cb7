"""Int8 quantisation primitives (inference ops: none has a backward rule).

Quantising maps a float ``x`` to an integer ``q = saturate(round(x / scale) + zero_point)``
(round half to even) and back with ``x ~ (q - zero_point) * scale``: ONNX's QuantizeLinear and
DequantizeLinear. ember follows ONNX Runtime's conventions, so exported models compute what
ember computes:

- weights: int8, symmetric (zero point 0), one scale per output channel, ``q`` in [-127, 127];
- activations: uint8, asymmetric, one scale and zero point per tensor, either measured on each
  batch at run time (*dynamic*, exactly ONNX's DynamicQuantizeLinear: the range always holds 0,
  ``scale = (max - min) / 255``) or fixed by calibration (*static*).

Integer products. NumPy's integer matmul does not use BLAS (about 20x slower than a float32
GEMM, measured). Products of small integers are exact in float32, though: with
``|q - zero_point| <= 255`` and ``|w| <= 127`` a dot product of at most ``_KBLOCK = 518`` terms
stays below 2**24, so every partial sum is an exact integer. The kernels run float32 BLAS on
blocks of at most 518 along the reduced dimension and add the blocks in float64 (exact): the
accumulator equals ONNX's int32 MatMulInteger/ConvInteger result bit for bit, at ~1.05x the
float32 GEMM time (a float64 GEMM takes ~2x). It is then rounded to float32 as ONNX's
``Cast(int32 -> float)`` rounds it.
"""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor
from .registry import apply, register

_KBLOCK = (1 << 24) // (255 * 127)   # 518 products of |255| x |127| sum exactly in float32
_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}
_F32 = np.float32


# ----- array helpers --------------------------------------------------------------------------


def _along(p, ndim: int, axis: int):
    """A per-channel parameter (1-d) shaped to broadcast along ``axis`` of an ``ndim`` array."""
    if p.ndim == 0:
        return p
    shape = [1] * ndim
    shape[axis] = p.shape[0]
    return p.reshape(shape)


def _quant_float(xp, x, scale, zp, lo, hi):
    """``saturate(round(x / scale) + zp)`` as integer-valued float32 (round half to even)."""
    q = xp.divide(x, scale, dtype=_F32)
    xp.rint(q, out=q)
    q += zp
    return xp.clip(q, lo, hi, out=q)


def _dynamic_params(xp, x):
    """ONNX DynamicQuantizeLinear's uint8 (scale, zero point), both as float32 0-d arrays: the
    range is widened to hold 0 (so 0 is exact and zero padding stays zero), scale 1 when the
    tensor is all zeros (as ONNX Runtime does)."""
    if x.size == 0:
        return _F32(1.0), _F32(0.0)
    lo = min(_F32(float(x.min())), _F32(0))  # float(): a 0-d array of any backend
    hi = max(_F32(float(x.max())), _F32(0))
    scale = _F32((hi - lo) / _F32(255))
    if scale == 0 or not np.isfinite(scale):
        scale = _F32(1.0)
    zp = _F32(np.clip(np.rint(_F32(0) - lo / scale), 0, 255))
    return scale, zp


def _block(amax: int, bmax: int) -> int:
    """The longest dot product of terms ``|a| <= amax``, ``|b| <= bmax`` exact in float32."""
    return max((1 << 24) // (amax * bmax), 1)


def _exact_matmul(xp, a, b, kblock: int = _KBLOCK):
    """``a @ b`` for integer-valued float32 ``a (..., K)`` and ``b (..., K, N)`` whose dot
    products of ``kblock`` terms are exact in float32; returns the exact integer result as
    float64 when it took several blocks, else as float32 (exact)."""
    K = a.shape[-1]
    if K <= kblock:
        return xp.matmul(a, b)
    acc = None
    for k0 in range(0, K, kblock):
        part = xp.matmul(a[..., k0:k0 + kblock], b[..., k0:k0 + kblock, :])
        acc = part.astype(np.float64) if acc is None else xp.add(acc, part, out=acc)
    return acc


def _int_matmul(xp, a, w):
    """``a @ w.T`` computed exactly for integer-valued float32 ``a`` (``|a| <= 255``) and int8
    ``w`` ``(N, K)`` in [-127, 127]; returned as float32 (the exact integer rounded once)."""
    return _exact_matmul(xp, a, w.astype(_F32).T).astype(_F32, copy=False)


def _exact_conv(xp, a, wf, stride, padding, dilation, groups, kblock: int = _KBLOCK):
    """Convolution of integer-valued float32 ``a`` and ``wf``, exact (see module doc): blocks
    of input channels short enough for float32, else a float64 convolution."""
    from .conv import _conv
    attrs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    k = math.prod(wf.shape[2:])
    Cg = wf.shape[1]
    if Cg * k <= kblock:
        return _conv.forward(xp, a, wf, **attrs)
    step = kblock // k
    if groups == 1 and step >= 1:
        acc = None
        for c0 in range(0, Cg, step):
            part = _conv.forward(xp, xp.ascontiguousarray(a[:, c0:c0 + step]),
                                 xp.ascontiguousarray(wf[:, c0:c0 + step]), **attrs)
            acc = part.astype(np.float64) if acc is None else xp.add(acc, part, out=acc)
        return acc
    return _conv.forward(xp, a.astype(np.float64), wf.astype(np.float64), **attrs)


def _int_conv(xp, a, w, stride, padding, dilation, groups):
    """Convolution of integer-valued float32 ``a`` (``|a| <= 255``) with int8 ``w`` in
    [-127, 127], exact, as float32."""
    out = _exact_conv(xp, a, w.astype(_F32), stride, padding, dilation, groups)
    return out.astype(_F32, copy=False)


def _requantize(xp, y, scale, zp):
    """Round ``y`` to the uint8 grid of (scale, zp) and return the grid value (a QDQ pair)."""
    q = _quant_float(xp, y, scale, zp, 0, 255)
    q -= zp
    q *= scale
    return q


# ----- the ops ----------------------------------------------------------------------------------


@register("quantize_linear")
def _quantize_linear(xp, x, scale, zero_point, *, axis=1):
    lo, hi = _RANGES[zero_point.dtype]
    s = _along(scale, x.ndim, axis)
    z = _along(zero_point, x.ndim, axis).astype(_F32)
    return _quant_float(xp, x, s, z, lo, hi).astype(zero_point.dtype)


@register("dequantize_linear")
def _dequantize_linear(xp, q, scale, zero_point=None, *, axis=1):
    out = q.astype(_F32)
    if zero_point is not None:
        out -= _along(zero_point, q.ndim, axis).astype(_F32)
    out *= _along(scale, q.ndim, axis)
    return out


# Never folded into a constant (jit passes, ONNX export): dequantised weights must stay int8 +
# DequantizeLinear in exported files (4x smaller, and the QDQ form ONNX Runtime fuses into
# int8 kernels).
_dequantize_linear.fold = False


@register("dynamic_quantized_linear")
def _dynamic_quantized_linear(xp, x, qweight, weight_scale, bias=None):
    s, zp = _dynamic_params(xp, x)
    a = _quant_float(xp, x, s, zp, 0, 255)
    a -= zp
    out = _int_matmul(xp, a, qweight)
    out *= s * weight_scale  # the float32 product of the two scales, as the ONNX graph's Mul
    if bias is not None:
        out += bias
    return out


@register("dynamic_quantized_conv")
def _dynamic_quantized_conv(xp, x, qweight, weight_scale, bias=None, *, stride, padding,
                            dilation, groups=1):
    s, zp = _dynamic_params(xp, x)
    a = _quant_float(xp, x, s, zp, 0, 255)
    a -= zp  # zero padding in this domain is the zero point in uint8: real 0
    out = _int_conv(xp, a, qweight, stride, padding, dilation, groups)
    out *= _along(s * weight_scale, out.ndim, 1)
    if bias is not None:
        out += _along(bias, out.ndim, 1)
    return out


@register("quantized_linear")
def _quantized_linear(xp, x, qweight, weight_scale, input_scale, input_zero_point,
                      output_scale, output_zero_point, bias=None, *, relu=False):
    zx, zy = input_zero_point.astype(_F32), output_zero_point.astype(_F32)
    a = _quant_float(xp, x, input_scale, zx, 0, 255)
    a -= zx
    acc = _int_matmul(xp, a, qweight)
    if bias is not None:  # int32 bias on the accumulator's scale, as int8 hardware adds it
        acc += bias.astype(_F32)
    acc *= input_scale * weight_scale
    if relu:
        xp.maximum(acc, 0, out=acc)
    return _requantize(xp, acc, output_scale, zy)


@register("quantized_conv")
def _quantized_conv(xp, x, qweight, weight_scale, input_scale, input_zero_point, output_scale,
                    output_zero_point, bias=None, *, stride, padding, dilation, groups=1,
                    relu=False):
    zx, zy = input_zero_point.astype(_F32), output_zero_point.astype(_F32)
    a = _quant_float(xp, x, input_scale, zx, 0, 255)
    a -= zx
    acc = _int_conv(xp, a, qweight, stride, padding, dilation, groups)
    if bias is not None:
        acc += _along(bias.astype(_F32), acc.ndim, 1)
    acc *= _along(input_scale * weight_scale, acc.ndim, 1)
    if relu:
        xp.maximum(acc, 0, out=acc)
    return _requantize(xp, acc, output_scale, zy)


@register("fake_quantize")
def _fake_quantize(xp, x, scale, zero_point):
    return _requantize(xp, x, scale, zero_point.astype(_F32))


# ONNX's integer ops as exact primitives (DynamicQuantizeLinear, MatMulInteger, ConvInteger)


@register("dynamic_quantize_scale")
def _dynamic_quantize_scale(xp, x):
    return np.asarray(_dynamic_params(xp, x)[0], _F32)


@register("dynamic_quantize_zero_point")
def _dynamic_quantize_zero_point(xp, x):
    return np.asarray(_dynamic_params(xp, x)[1], np.uint8)


def _centred(a, zp, axis):
    """``a - zp`` as float32 (zp 0-d, or 1-d along ``axis``)."""
    out = a.astype(_F32)
    if zp is not None:
        out -= _along(zp, a.ndim, axis).astype(_F32)
    return out


@register("matmul_integer")
def _matmul_integer(xp, a, b, a_zero_point=None, b_zero_point=None):
    # a's zero point may be per row (M), b's per column (N): ONNX MatMulInteger
    af = _centred(a, a_zero_point, a.ndim - 2 if a.ndim > 1 else 0)
    bf = _centred(b, b_zero_point, b.ndim - 1)
    if af.ndim == 1:
        return _matmul_integer(xp, a[None], b, a_zero_point, b_zero_point)[..., 0, :]
    squeeze = bf.ndim == 1
    if squeeze:
        bf = bf[:, None]
    out = _exact_matmul(xp, af, bf, _block(255, 255))
    out = out.astype(np.int32)
    return out[..., 0] if squeeze else out


@register("conv_integer")
def _conv_integer(xp, x, w, x_zero_point=None, w_zero_point=None, *, stride, padding,
                  dilation, groups=1):
    xf = _centred(x, x_zero_point, 1)  # zero padding here is the zero point in x's domain
    wf = _centred(w, w_zero_point, 0)
    out = _exact_conv(xp, xf, wf, stride, padding, dilation, groups, _block(255, 255))
    return out.astype(np.int32)


# ----- checks and public functions ------------------------------------------------------------


def _desc(t) -> str:
    return f"{tuple(t.shape)} {t.dtype.name}" if isinstance(t, Tensor) else repr(t)


def _need(op: str, what: str, t, dtypes: tuple, shape: tuple | None = None) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {what} must be a Tensor, got {type(t).__name__}")
    if t.dtype.name not in dtypes:
        raise TypeError(f"{op}: {what} must be {' or '.join(dtypes)}, got {_desc(t)}")
    if shape is not None and tuple(t.shape) != shape:
        raise ValueError(f"{op}: {what} must have shape {shape}, got {_desc(t)}")


def _check_weight(op: str, qweight, weight_scale, ndim: int | tuple) -> None:
    _need(op, "qweight", qweight, ("int8",))
    nds = ndim if isinstance(ndim, tuple) else (ndim,)
    if qweight.ndim not in nds:
        raise ValueError(f"{op}: qweight must be {' or '.join(map(str, nds))}-d, got "
                         f"{_desc(qweight)}")
    _need(op, "weight_scale", weight_scale, ("float32",), (qweight.shape[0],))


def _check_float_input(op: str, x, features: int, where: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.dtype.name != "float32":
        raise TypeError(f"{op}: expected a float32 input (int8 quantisation works on float32 "
                        f"activations), got {_desc(x)}")
    if x.ndim == 0 or x.shape[where] != features:
        raise ValueError(f"{op}: input has shape {tuple(x.shape)} but the weight expects "
                         f"{features} features in dim {where}")


def _check_qparams(op: str, scale, zero_point, prefix: str) -> None:
    _need(op, f"{prefix}scale", scale, ("float32",), ())
    _need(op, f"{prefix}zero_point", zero_point, ("uint8",), ())


def quantize_linear(input: Tensor, scale: Tensor, zero_point: Tensor, axis: int = 1) -> Tensor:
    """ONNX QuantizeLinear: ``saturate(round(input / scale) + zero_point)`` in zero_point's
    dtype (uint8 or int8); a 1-d scale/zero_point quantises per channel along ``axis``."""
    op = "quantize_linear"
    _need(op, "input", input, ("float32",))
    _need(op, "scale", scale, ("float32",))
    _need(op, "zero_point", zero_point, ("uint8", "int8"))
    _check_axis(op, input, scale, zero_point, axis)
    return apply(_quantize_linear, (input, scale, zero_point),
                 {"axis": axis % input.ndim if input.ndim else 0})


def dequantize_linear(input: Tensor, scale: Tensor, zero_point: Tensor | None = None,
                      axis: int = 1) -> Tensor:
    """ONNX DequantizeLinear: ``(input - zero_point) * scale`` as float32."""
    op = "dequantize_linear"
    _need(op, "input", input, ("uint8", "int8", "int32"))
    _need(op, "scale", scale, ("float32",))
    if zero_point is not None:
        _need(op, "zero_point", zero_point, (input.dtype.name,))
    _check_axis(op, input, scale, zero_point, axis)
    ins = (input, scale) if zero_point is None else (input, scale, zero_point)
    return apply(_dequantize_linear, ins, {"axis": axis % input.ndim if input.ndim else 0})


def _check_axis(op, x, scale, zero_point, axis):
    if scale.ndim > 1 or (zero_point is not None and zero_point.shape != scale.shape):
        raise ValueError(f"{op}: scale and zero_point must be 0-d (per tensor) or 1-d (per "
                         f"channel) of one shape, got {_desc(scale)} and {_desc(zero_point)}")
    if scale.ndim == 1:
        if not -x.ndim <= axis < x.ndim or x.shape[axis] != scale.shape[0]:
            raise ValueError(f"{op}: per-channel scale {_desc(scale)} does not match dim "
                             f"{axis} of input {_desc(x)}")


def dynamic_quantized_linear(input: Tensor, qweight: Tensor, weight_scale: Tensor,
                             bias: Tensor | None = None) -> Tensor:
    """``input @ W.T + bias`` with ``W = qweight * weight_scale[:, None]`` (int8, per output
    channel) and ``input`` quantised to uint8 per tensor on the fly (DynamicQuantizeLinear)."""
    op = "dynamic_quantized_linear"
    _check_weight(op, qweight, weight_scale, 2)
    _check_float_input(op, input, qweight.shape[1], -1)
    if bias is not None:
        _need(op, "bias", bias, ("float32",), (qweight.shape[0],))
    ins = (input, qweight, weight_scale) + ((bias,) if bias is not None else ())
    return apply(_dynamic_quantized_linear, ins)


def _conv_attrs(op: str, qweight, stride, padding, dilation, groups, in_channels: int):
    from .conv import _ntuple, _padding_pairs
    nd = qweight.ndim - 2
    stride = _ntuple(op, "stride", stride, nd, 1)
    dilation = _ntuple(op, "dilation", dilation, nd, 1)
    pads = _padding_pairs(op, padding, tuple(qweight.shape[2:]), stride, dilation)
    if in_channels != qweight.shape[1] * groups:
        raise ValueError(f"{op}: input has {in_channels} channels but the weight "
                         f"{tuple(qweight.shape)} with groups={groups} expects "
                         f"{qweight.shape[1] * groups}")
    return {"stride": stride, "padding": pads, "dilation": dilation, "groups": int(groups)}


def _batched(op: str, input: Tensor, nd: int):
    if input.ndim == nd + 2:
        return input, False
    if input.ndim == nd + 1:
        return input.unsqueeze(0), True
    raise ValueError(f"{op}: expected a {nd + 1}-d (unbatched) or {nd + 2}-d (batched) input, "
                     f"got shape {tuple(input.shape)}")


def dynamic_quantized_conv(input: Tensor, qweight: Tensor, weight_scale: Tensor,
                           bias: Tensor | None = None, stride=1, padding=0, dilation=1,
                           groups: int = 1) -> Tensor:
    """Convolution (1-d or 2-d, from the weight's rank) with int8 per-output-channel weights
    and the input quantised to uint8 per tensor on the fly."""
    op = "dynamic_quantized_conv"
    _check_weight(op, qweight, weight_scale, (3, 4))
    x, unbatched = _batched(op, input, qweight.ndim - 2)
    _check_float_input(op, x, x.shape[1], 1)
    attrs = _conv_attrs(op, qweight, stride, padding, dilation, groups, x.shape[1])
    if bias is not None:
        _need(op, "bias", bias, ("float32",), (qweight.shape[0],))
    ins = (x, qweight, weight_scale) + ((bias,) if bias is not None else ())
    out = apply(_dynamic_quantized_conv, ins, attrs)
    return out.squeeze(0) if unbatched else out


def quantized_linear(input: Tensor, qweight: Tensor, weight_scale: Tensor,
                     input_scale: Tensor, input_zero_point: Tensor, output_scale: Tensor,
                     output_zero_point: Tensor, bias: Tensor | None = None,
                     relu: bool = False) -> Tensor:
    """Static int8 affine map: the input is quantised with the calibrated (scale, zero point),
    multiplied exactly by the int8 weight, ``bias`` (int32 on the scale ``input_scale *
    weight_scale``) added, ReLU applied when ``relu``, and the result rounded to the output's
    uint8 grid. Returns the float32 value of that grid point."""
    op = "quantized_linear"
    _check_weight(op, qweight, weight_scale, 2)
    _check_float_input(op, input, qweight.shape[1], -1)
    _check_qparams(op, input_scale, input_zero_point, "input_")
    _check_qparams(op, output_scale, output_zero_point, "output_")
    if bias is not None:
        _need(op, "bias", bias, ("int32",), (qweight.shape[0],))
    ins = (input, qweight, weight_scale, input_scale, input_zero_point, output_scale,
           output_zero_point) + ((bias,) if bias is not None else ())
    return apply(_quantized_linear, ins, {"relu": bool(relu)})


def quantized_conv(input: Tensor, qweight: Tensor, weight_scale: Tensor, input_scale: Tensor,
                   input_zero_point: Tensor, output_scale: Tensor, output_zero_point: Tensor,
                   bias: Tensor | None = None, stride=1, padding=0, dilation=1,
                   groups: int = 1, relu: bool = False) -> Tensor:
    """Static int8 convolution (1-d or 2-d); see :func:`quantized_linear`."""
    op = "quantized_conv"
    _check_weight(op, qweight, weight_scale, (3, 4))
    x, unbatched = _batched(op, input, qweight.ndim - 2)
    _check_float_input(op, x, x.shape[1], 1)
    _check_qparams(op, input_scale, input_zero_point, "input_")
    _check_qparams(op, output_scale, output_zero_point, "output_")
    attrs = _conv_attrs(op, qweight, stride, padding, dilation, groups, x.shape[1])
    attrs["relu"] = bool(relu)
    if bias is not None:
        _need(op, "bias", bias, ("int32",), (qweight.shape[0],))
    ins = (x, qweight, weight_scale, input_scale, input_zero_point, output_scale,
           output_zero_point) + ((bias,) if bias is not None else ())
    out = apply(_quantized_conv, ins, attrs)
    return out.squeeze(0) if unbatched else out


def fake_quantize(input: Tensor, scale: Tensor, zero_point: Tensor) -> Tensor:
    """Round ``input`` to the uint8 grid of (scale, zero point) and return the grid's float32
    value: a QuantizeLinear + DequantizeLinear pair."""
    op = "fake_quantize"
    _need(op, "input", input, ("float32",))
    _check_qparams(op, scale, zero_point, "")
    return apply(_fake_quantize, (input, scale, zero_point))


def dynamic_quantize_linear(input: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """ONNX DynamicQuantizeLinear: ``(q uint8, scale, zero_point)`` for the range of
    ``input`` widened to hold 0."""
    op = "dynamic_quantize_linear"
    _need(op, "input", input, ("float32",))
    scale = apply(_dynamic_quantize_scale, (input,))
    zp = apply(_dynamic_quantize_zero_point, (input,))
    return apply(_quantize_linear, (input, scale, zp), {"axis": 0}), scale, zp


def _check_int_zp(op, what, zp, like, n_ok):
    if zp is None:
        return
    _need(op, what, zp, (like.dtype.name,))
    if zp.ndim > 1 or (zp.ndim == 1 and zp.shape[0] not in n_ok):
        raise ValueError(f"{op}: {what} must be 0-d or 1-d of size {n_ok[-1]}, got "
                         f"{_desc(zp)}")


def matmul_integer(a: Tensor, b: Tensor, a_zero_point: Tensor | None = None,
                   b_zero_point: Tensor | None = None) -> Tensor:
    """ONNX MatMulInteger: ``(a - a_zero_point) @ (b - b_zero_point)`` exactly, as int32
    (uint8/int8 operands; zero points per tensor, or per row of a / per column of b)."""
    op = "matmul_integer"
    _need(op, "a", a, ("uint8", "int8"))
    _need(op, "b", b, ("uint8", "int8"))
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} can't be "
                         f"multiplied (a (..., M, K) @ b (..., K, N) expected)")
    _check_int_zp(op, "a_zero_point", a_zero_point, a, (1, a.shape[-2] if a.ndim > 1 else 1))
    _check_int_zp(op, "b_zero_point", b_zero_point, b, (1, b.shape[-1]))
    ins = [a, b]
    if a_zero_point is not None or b_zero_point is not None:
        ins.append(a_zero_point if a_zero_point is not None else
                   _zero_like(a))
    if b_zero_point is not None:
        ins.append(b_zero_point)
    return apply(_matmul_integer, tuple(ins))


def _zero_like(t: Tensor) -> Tensor:
    from .creation import wrap_constant
    return wrap_constant(np.zeros((), t._data.dtype), t._dev)


def conv_integer(input: Tensor, weight: Tensor, x_zero_point: Tensor | None = None,
                 w_zero_point: Tensor | None = None, stride=1, padding=0, dilation=1,
                 groups: int = 1) -> Tensor:
    """ONNX ConvInteger: the convolution of ``input - x_zero_point`` with ``weight -
    w_zero_point`` (uint8/int8; w's zero point per tensor or per output channel), exactly,
    as int32. ``padding`` as for ``conv2d`` (int, tuple, 'same', 'valid') or (before, after)
    pairs per spatial dim."""
    op = "conv_integer"
    _need(op, "input", input, ("uint8", "int8"))
    _need(op, "weight", weight, ("uint8", "int8"))
    if weight.ndim not in (3, 4, 5) or input.ndim != weight.ndim:
        raise ValueError(f"{op}: expected a batched input and a weight of the same rank 3-5, "
                         f"got {_desc(input)} and {_desc(weight)}")
    _check_int_zp(op, "x_zero_point", x_zero_point, input, (1,))
    _check_int_zp(op, "w_zero_point", w_zero_point, weight, (1, weight.shape[0]))
    if isinstance(padding, (tuple, list)) and padding and isinstance(padding[0], (tuple, list)):
        attrs = _conv_attrs(op, weight, stride, 0, dilation, groups, input.shape[1])
        attrs["padding"] = tuple((int(lo), int(hi)) for lo, hi in padding)
    else:
        attrs = _conv_attrs(op, weight, stride, padding, dilation, groups, input.shape[1])
    ins = [input, weight]
    if x_zero_point is not None or w_zero_point is not None:
        ins.append(x_zero_point if x_zero_point is not None else _zero_like(input))
    if w_zero_point is not None:
        ins.append(w_zero_point)
    return apply(_conv_integer, tuple(ins), attrs)
