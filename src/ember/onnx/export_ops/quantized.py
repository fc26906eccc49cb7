"""ONNX rules for ``ember.ops.quantized`` (ember.quantize's int8 ops).

- dynamic int8 layers become ONNX Runtime's dynamic-quantisation pattern:
  ``DynamicQuantizeLinear -> MatMulInteger | ConvInteger -> Cast -> Mul(x_scale * w_scale)
  -> Add(bias)``, with the int8 weight stored as an initializer;
- static int8 layers become QDQ: ``QuantizeLinear -> DequantizeLinear`` on the input, the
  int8 weight and int32 bias through ``DequantizeLinear`` (per output channel), the float
  ``Gemm``/``MatMul``/``Conv`` (+ ``Relu``), and ``QuantizeLinear -> DequantizeLinear`` on the
  output. ONNX Runtime fuses this form into its int8 kernels (QLinearConv, QGemm...);
- the primitives map one to one: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
  MatMulInteger, ConvInteger.

Every node computes what the ember op computes (same rounding, same order of the scale
products), so ember and onnxruntime agree up to float rounding of the accumulations.
"""
from __future__ import annotations

import numpy as np

from ...ops import quantized as _q  # noqa: F401  (the registry ops must exist first)
from .._builder import onnx_rule

_F32 = np.float32


def _axis_attr(node, scale_v):
    return node.attrs.get("axis", 1) if len(scale_v.shape) == 1 else None


@onnx_rule("quantize_linear")
def _quantize_linear(b, node):
    return b.op("QuantizeLinear", [b.x(0), b.x(1), b.x(2)],
                axis=_axis_attr(node, node.inputs[1]))


@onnx_rule("dequantize_linear")
def _dequantize_linear(b, node):
    ins = [b.name(v) for v in node.inputs]
    return b.op("DequantizeLinear", ins, axis=_axis_attr(node, node.inputs[1]))


@onnx_rule("fake_quantize")
def _fake_quantize(b, node):
    q = b.op("QuantizeLinear", [b.x(0), b.x(1), b.x(2)])
    return b.op("DequantizeLinear", [q, b.x(1), b.x(2)])


@onnx_rule("dynamic_quantize_scale")
def _dynamic_scale(b, node):
    return b.op("DynamicQuantizeLinear", [b.x(0)], outputs=3)[1]


@onnx_rule("dynamic_quantize_zero_point")
def _dynamic_zero_point(b, node):
    return b.op("DynamicQuantizeLinear", [b.x(0)], outputs=3)[2]


@onnx_rule("matmul_integer")
def _matmul_integer(b, node):
    return b.op("MatMulInteger", [b.name(v) for v in node.inputs])


def _conv_attrs(node) -> dict:
    a = node.attrs
    pads = [lo for lo, _ in a["padding"]] + [hi for _, hi in a["padding"]]
    return {"strides": list(a["stride"]), "pads": pads, "dilations": list(a["dilation"]),
            "group": int(a.get("groups", 1))}


@onnx_rule("conv_integer")
def _conv_integer(b, node):
    return b.op("ConvInteger", [b.name(v) for v in node.inputs], **_conv_attrs(node))


def _transposed_weight(b, wv):
    """The int8 weight ``(out, in)`` as ``(in, out)`` for MatMul: a transposed initializer
    when the weight is constant to the file, else a Transpose node."""
    w = b.value(wv)
    if w is not None:
        label = b.label(wv)
        return b.const(np.ascontiguousarray(w.T), name=f"{label}.T" if label else None)
    return b.transpose(b.name(wv), [1, 0])


def _per_channel(b, sv, ndim: int) -> str:
    """A per-output-channel vector ``(C,)`` shaped ``(C, 1, ...)`` to broadcast over the
    ``ndim - 2`` spatial dims of an NC... tensor."""
    s = b.value(sv)
    if s is not None:
        label = b.label(sv)
        return b.const(np.asarray(s).reshape((-1,) + (1,) * (ndim - 2)),
                       name=f"{label}.per_channel" if label else None)
    return b.op("Reshape", [b.name(sv), b.ints([-1] + [1] * (ndim - 2))])


def _dynamic_quantize(b):
    """DynamicQuantizeLinear of the node's input 0: (uint8 tensor, scale, zero point)."""
    return b.op("DynamicQuantizeLinear", [b.x(0)], outputs=3)


@onnx_rule("dynamic_quantized_linear")
def _dynamic_quantized_linear(b, node):
    xq, xs, xz = _dynamic_quantize(b)
    acc = b.op("MatMulInteger", [xq, _transposed_weight(b, node.inputs[1]), xz])
    scale = b.op("Mul", [xs, b.x(2)])
    out = b.op("Mul", [b.cast(acc, np.float32), scale])
    return b.op("Add", [out, b.x(3)]) if len(node.inputs) == 4 else out


@onnx_rule("dynamic_quantized_conv")
def _dynamic_quantized_conv(b, node):
    nd = len(node.outputs[0].shape)
    xq, xs, xz = _dynamic_quantize(b)
    acc = b.op("ConvInteger", [xq, b.x(1), xz], **_conv_attrs(node))
    scale = b.op("Mul", [xs, _per_channel(b, node.inputs[2], nd)])
    out = b.op("Mul", [b.cast(acc, np.float32), scale])
    if len(node.inputs) == 4:
        out = b.op("Add", [out, _per_channel(b, node.inputs[3], nd)])
    return out


def _qdq(b, x: str, scale: str, zp: str) -> str:
    return b.op("DequantizeLinear", [b.op("QuantizeLinear", [x, scale, zp]), scale, zp])


def _bias_dq(b, node) -> str:
    """DequantizeLinear of the int32 bias on the accumulator's scale ``input_scale *
    weight_scale`` (an initializer when both are constant to the file)."""
    xs_v, ws_v, bias_v = node.inputs[3], node.inputs[2], node.inputs[7]
    xs, ws = b.value(xs_v), b.value(ws_v)
    if xs is not None and ws is not None:
        label = b.label(bias_v)
        acc_scale = b.const((np.asarray(xs, _F32) * np.asarray(ws, _F32)).astype(_F32),
                            name=f"{label}_scale" if label else None)
    else:
        acc_scale = b.op("Mul", [b.x(3), b.x(2)])
    return b.op("DequantizeLinear", [b.x(7), acc_scale], axis=0)


def _static_output(b, node, y: str) -> str:
    if node.attrs.get("relu"):
        y = b.op("Relu", [y])
    return _qdq(b, y, b.x(5), b.x(6))


@onnx_rule("quantized_linear")
def _quantized_linear(b, node):
    xd = _qdq(b, b.x(0), b.x(3), b.x(4))
    has_bias = len(node.inputs) == 8
    if len(node.inputs[0].shape) == 2:
        wd = b.op("DequantizeLinear", [b.x(1), b.x(2)], axis=0)
        ins = [xd, wd] + ([_bias_dq(b, node)] if has_bias else [])
        return _static_output(b, node, b.op("Gemm", ins, transB=1))
    wd = b.op("DequantizeLinear", [_transposed_weight(b, node.inputs[1]), b.x(2)], axis=1)
    y = b.op("MatMul", [xd, wd])
    if has_bias:
        y = b.op("Add", [y, _bias_dq(b, node)])
    return _static_output(b, node, y)


@onnx_rule("quantized_conv")
def _quantized_conv(b, node):
    xd = _qdq(b, b.x(0), b.x(3), b.x(4))
    wd = b.op("DequantizeLinear", [b.x(1), b.x(2)], axis=0)
    ins = [xd, wd] + ([_bias_dq(b, node)] if len(node.inputs) == 8 else [])
    return _static_output(b, node, b.op("Conv", ins, **_conv_attrs(node)))
