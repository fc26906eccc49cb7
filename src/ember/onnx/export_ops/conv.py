"""ONNX rules for ``ember.ops.conv``: conv, conv_transpose, and unfold/fold (im2col/col2im)."""
from __future__ import annotations

import numpy as np

from .._builder import onnx_rule


def _pads(pairs) -> list:
    """ember's ``((before, after), ...)`` as ONNX's ``[befores..., afters...]``."""
    return [p[0] for p in pairs] + [p[1] for p in pairs]


@onnx_rule("conv")
def _conv(b, node):
    a = node.attrs
    w = node.inputs[1]
    return b.op("Conv", [b.name(v) for v in node.inputs], kernel_shape=list(w.shape[2:]),
                strides=list(a["stride"]), pads=_pads(a["padding"]),
                dilations=list(a["dilation"]), group=a.get("groups", 1))


@onnx_rule("conv_transpose")
def _conv_transpose(b, node):
    # output_padding as a smaller end padding (onnxruntime refuses output_padding >= stride,
    # which PyTorch allows when dilation > stride); where the end padding can't shrink that
    # far, the rest is zeros padded on afterwards, the bias added last
    a = node.attrs
    w = node.inputs[1]
    begins = [p[0] for p in a["padding"]]
    ends = [p[1] - op for p, op in zip(a["padding"], a["output_padding"])]
    rest = [max(-e, 0) for e in ends]
    has_bias = len(node.inputs) == 3
    ins = [b.x(0), b.x(1)] + ([b.x(2)] if has_bias and not any(rest) else [])
    out = b.op("ConvTranspose", ins, kernel_shape=list(w.shape[2:]), strides=list(a["stride"]),
               pads=begins + [max(e, 0) for e in ends], dilations=list(a["dilation"]),
               group=a.get("groups", 1))
    if not any(rest):
        return out
    nd = len(rest)
    out = b.op("Pad", [out, b.ints([0] * (nd + 2) + [0, 0] + rest)])
    if has_bias:
        out = b.op("Add", [out, b.op("Reshape", [b.x(2), b.ints([-1] + [1] * nd)])])
    return out


@onnx_rule("im2col")
def _im2col(b, node):
    # F.unfold as a convolution with one-hot kernels: each of the K kernel offsets picks one
    # input pixel per output position; channels go through the batch dim so the result is
    # PyTorch's channel-major (N, C * K, L)
    a = node.attrs
    v = node.inputs[0]
    n, c = b.shape(v)[:2]
    if c is None:
        b.unsupported("unfold over a channel count that follows a dynamic axis")
    k = tuple(a["kernel"])
    kk = int(np.prod(k))
    eye = np.eye(kk, dtype=v.dtype).reshape((kk, 1) + k)
    x = b.op("Reshape", [b.x(0), b.ints([-1, 1] + [0] * len(k))])
    cols = b.op("Conv", [x, b.const(eye)], kernel_shape=list(k), strides=list(a["stride"]),
                pads=_pads(a["padding"]), dilations=list(a["dilation"]))
    batch = b.dim(b.x(0), v, 0)
    return b.op("Reshape", [cols, b.op("Concat", [batch, b.ints([c * kk, -1])], axis=0)])


@onnx_rule("col2im")
def _col2im(b, node):
    a = node.attrs
    if b.opset < 18:
        b.unsupported(f"fold (Col2Im) needs opset_version >= 18 (got {b.opset})")
    return b.op("Col2Im", [b.x(0), b.ints(a["output_size"]), b.ints(a["kernel"])],
                dilations=list(a["dilation"]), pads=_pads(a["padding"]),
                strides=list(a["stride"]))
