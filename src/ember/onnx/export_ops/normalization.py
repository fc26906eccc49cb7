"""ONNX rules for ``ember.ops.normalization``: layer_norm as ``LayerNormalization``; the
batch-statistics batch_norm (training mode) and group_norm as their formulas. (Eval-mode
BatchNorm is not an op: it is ``x * scale + shift`` with per-channel constants, which the
exporter folds into two initializers.)"""
from __future__ import annotations

import numpy as np

from .._builder import onnx_rule


def _affine(b, node, y, channel_shape):
    """``y * weight + bias`` for the node's optional weight/bias inputs."""
    a = node.attrs
    k = 1
    for flag, op_type in (("w", "Mul"), ("b", "Add")):
        if a.get(flag):
            p = b.x(k)
            if channel_shape is not None:
                p = b.op("Reshape", [p, b.ints(channel_shape)])
            y = b.op(op_type, [y, p])
            k += 1
    return y


def _normalize(b, x, axes, eps, dt):
    """(x - mean) / sqrt(var + eps) over ``axes``, with the biased variance; also returns
    the statistics (keepdims)."""
    mean = b.reduce("ReduceMean", x, axes, True)
    xc = b.op("Sub", [x, mean])
    var = b.reduce("ReduceMean", b.op("Mul", [xc, xc]), axes, True)
    invstd = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [var, b.scalar(eps, dt)])])])
    return b.op("Mul", [xc, invstd]), mean, var, invstd


@onnx_rule("batch_norm")
def _batch_norm(b, node):
    v = node.inputs[0]
    nd = len(v.shape)
    dt = v.dtype
    axes = [0] + list(range(2, nd))
    y, mean, var, invstd = _normalize(b, b.x(0), axes, node.attrs["eps"], dt)
    y = _affine(b, node, y, [1, -1] + [1] * (nd - 2))
    flat = b.ints([-1])
    return [y] + [b.op("Reshape", [s, flat]) for s in (mean, var, invstd)]


@onnx_rule("layer_norm")
def _layer_norm(b, node):
    a = node.attrs
    v = node.inputs[0]
    k = a["ndim"]
    ins = [b.x(0)]
    i = 1
    if a.get("w"):
        ins.append(b.x(i))
        i += 1
    else:
        normalized = b.shape(v)[len(v.shape) - k:]
        if None in normalized:
            b.unsupported("layer_norm without weight over dims that follow a dynamic axis")
        ins.append(b.const(np.ones(normalized, v.dtype)))
    if a.get("b"):
        ins.append(b.x(i))
    y = b.op("LayerNormalization", ins, axis=-k, epsilon=float(a["eps"]))
    return [y, None, None, None]


@onnx_rule("group_norm")
def _group_norm(b, node):
    a = node.attrs
    v = node.inputs[0]
    x = b.x(0)
    nd = len(v.shape)
    g = a["groups"]
    grouped = b.op("Reshape", [x, b.ints([0, g, -1])])
    y, *_ = _normalize(b, grouped, [2], a["eps"], v.dtype)
    y = b.op("Reshape", [y, b.sizes(b.traces(v), [(x, v)], "input shape")])
    y = _affine(b, node, y, [1, -1] + [1] * (nd - 2))
    return [y, None, None, None]
