"""Ops that make tensors or change their type: Constant, ConstantOfShape, Range, EyeLike,
OneHot, Cast, CastLike, Identity."""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes as D
from ...ops import arithmetic as A
from ...ops import comparison as C
from ...ops import shape as S
from ...ops.unary import trunc
from ..load import onnx_dtype
from . import rule


def ember_dtype(code: int):
    """The ember dtype of ONNX element type ``code`` (a clear error for types ember lacks)."""
    return D.from_numpy_dtype(onnx_dtype(code))


def _constant_check(node, opset):
    if "sparse_value" in node.attrs:
        return "sparse_value constants are not supported"
    if "value_string" in node.attrs or "value_strings" in node.attrs:
        return "string constants are not supported (ember has no string tensors)"
    return None


@rule("Constant", check=_constant_check)
def _constant(ctx, node, ins):
    a = node.attrs
    if "value" in a:
        arr = a["value"]
    elif "value_float" in a:
        arr = np.array(a["value_float"], np.float32)
    elif "value_floats" in a:
        arr = np.array(a["value_floats"], np.float32)
    elif "value_int" in a:
        arr = np.array(a["value_int"], np.int64)
    elif "value_ints" in a:
        arr = np.array(a["value_ints"], np.int64)
    else:
        raise ctx.error("has no value attribute")
    return ctx.const(arr, dtype=arr.dtype)


@rule("ConstantOfShape")
def _constant_of_shape(ctx, node, ins):
    shape = ctx.ints(ins[0])
    if any(n < 0 for n in shape):
        raise ctx.error(f"shape {shape} has a negative size")
    value = node.attr("value")
    if value is None:
        value = np.zeros(1, np.float32)
    if value.size != 1:
        raise ctx.error(f"value must hold one element, got shape {value.shape}")
    return ctx.const(np.full(shape, value.reshape(-1)[0], value.dtype), dtype=value.dtype)


@rule("Range")
def _range(ctx, node, ins):
    start, limit, delta = (ctx.array(t).reshape(()) for t in ins)
    dt = ins[0]._data.dtype
    if delta == 0:
        raise ctx.error("delta must not be zero")
    n = max(int(math.ceil((float(limit) - float(start)) / float(delta))), 0)
    # start + i*delta in the input type, as the ONNX function body computes it
    values = (start + np.arange(n, dtype=dt) * delta).astype(dt)
    return ctx.const(values, dtype=dt)


@rule("EyeLike", static_output=True)
def _eye_like(ctx, node, ins):
    x = ins[0]
    if x.ndim != 2:
        raise ctx.error(f"expected a 2-d input, got shape {tuple(x.shape)}")
    dt = onnx_dtype(node.attr("dtype")) if node.attr("dtype") is not None else x._data.dtype
    return ctx.const(np.eye(x.shape[0], x.shape[1], node.attr("k", 0), dtype=dt), dtype=dt)


@rule("OneHot")
def _one_hot(ctx, node, ins):
    indices, depth, values = ins
    d = int(ctx.scalar(depth))
    axis = node.attr("axis", -1)
    rank = indices.ndim + 1
    axis = ctx.axis(axis, rank)
    idx = indices if indices._data.dtype.kind in "iu" else trunc(indices)  # as the reference
    idx = A.cast(idx, D.int64)
    idx = C.where(C.lt(idx, 0), A.add(idx, d), idx)  # negative indices count from the end
    shape = [1] * rank
    shape[axis] = d
    classes = ctx.const(np.arange(d, dtype=np.int64).reshape(shape))
    hot = C.eq(S.unsqueeze(idx, axis), classes)
    off = S.reshape(S.narrow(S.reshape(values, (-1,)), 0, 0, 1), ())
    on = S.reshape(S.narrow(S.reshape(values, (-1,)), 0, 1, 1), ())
    return C.where(hot, on, off)


def _cast_check(node, opset):
    code = node.attr("to")
    try:
        onnx_dtype(code)
    except TypeError as e:
        return str(e).replace("ember.onnx: ", "")
    return None


@rule("Cast", check=_cast_check)
def _cast(ctx, node, ins):
    x = ins[0]
    to = ember_dtype(node.attr("to"))
    return A.cast(x, to) if x.dtype != to else x


@rule("CastLike")
def _cast_like(ctx, node, ins):
    x, like = ins
    return A.cast(x, like.dtype) if x.dtype != like.dtype else x


@rule("Identity")
def _identity(ctx, node, ins):
    return ins[0]


def _window(kind: str):
    def run(ctx, node, ins):
        size = int(ctx.scalar(ins[0]))
        n = np.arange(size, dtype=np.float64)
        denom = size if node.attr("periodic", 1) else size - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            if kind == "hann":
                w = np.sin(n * np.pi / denom) ** 2
            elif kind == "hamming":
                w = 25 / 46 - np.cos(n * 2 * np.pi / denom) * (21 / 46)
            else:
                w = 0.42 - 0.5 * np.cos(n * 2 * np.pi / denom) + 0.08 * np.cos(
                    n * 4 * np.pi / denom)
        dt = onnx_dtype(node.attr("output_datatype", 1))
        return ctx.const(w.astype(dt), dtype=dt)
    return run


rule("HannWindow")(_window("hann"))
rule("HammingWindow")(_window("hamming"))
rule("BlackmanWindow")(_window("blackman"))


@rule("BitCast", check=_cast_check)
def _bitcast(ctx, node, ins):
    x = ins[0]
    to = ember_dtype(node.attr("to"))
    if x._data.dtype.itemsize != to.itemsize:
        raise ctx.error(f"{x.dtype} and {to} differ in width; BitCast keeps the bits",
                        TypeError)
    return S.view(x, to)
