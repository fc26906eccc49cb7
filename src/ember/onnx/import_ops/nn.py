"""Layers: Conv, ConvTranspose, MaxPool, AveragePool, LpPool, the Global* pools, MaxUnpool,
BatchNormalization, LayerNormalization, InstanceNormalization, GroupNormalization,
RMSNormalization, MeanVarianceNormalization, LpNormalization, LRN, Dropout.

Convolutions run ember's N-d ``conv``/``conv_transpose`` primitives, which take ONNX's
asymmetric (begin, end) pads directly. Pools pad explicitly (-inf for max, zeros for sums)
to ONNX's exact window geometry and then run with no padding: max through ember's
``max_pool`` primitive, sums as a depthwise convolution with a kernel of ones, divided by a
per-position count that follows ``count_include_pad``.
"""
from __future__ import annotations

import math

import numpy as np

from ... import dtypes as D
from ... import ops
from ...ops import arithmetic as A
from ...ops import comparison as C
from ...ops import reduction as R
from ...ops import shape as S
from ...ops import unary as U
from ...ops.registry import OPS, apply
from ...tensor import Tensor
from . import rule
from .math import same_dtype

# ----- geometry -------------------------------------------------------------------------------


def _spatial(ctx, node, x, kernel):
    nd = len(kernel)
    if x.ndim != nd + 2:
        raise ctx.error(f"expected an input of rank {nd + 2} (N, C, {nd} spatial dims) for "
                        f"kernel {list(kernel)}, got shape {tuple(x.shape)}")
    strides = node.attr("strides") or [1] * nd
    dilations = node.attr("dilations") or [1] * nd
    return nd, list(strides), list(dilations)


def _window_pads(ctx, node, in_sp, kernel, strides, dilations, *, pool: bool):
    """(begin, end) pads and the output size per spatial dim, from ``pads`` or ``auto_pad``;
    ceil_mode windows that would start past the input are dropped (PyTorch's rule)."""
    nd = len(kernel)
    auto = node.attr("auto_pad", "NOTSET")
    ext = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    ceil_mode = bool(node.attr("ceil_mode", 0)) if pool else False
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-n // s) for n, s in zip(in_sp, strides)]
        pairs = []
        for n, s, e, o in zip(in_sp, strides, ext, out):
            total = max((o - 1) * s + e - n, 0)
            small, big = total // 2, total - total // 2
            pairs.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return pairs, out
    if auto == "VALID":
        pairs = [(0, 0)] * nd
    elif auto in ("NOTSET", ""):
        pads = node.attr("pads") or [0] * (2 * nd)
        if len(pads) != 2 * nd:
            raise ctx.error(f"pads {pads} must have 2 entries per spatial dim ({nd})")
        pairs = [(pads[i], pads[nd + i]) for i in range(nd)]
    else:
        raise ctx.error(f"unknown auto_pad {auto!r}")
    out = []
    for n, s, e, (b, a) in zip(in_sp, strides, ext, pairs):
        span = n + b + a - e
        if span < 0:
            raise ctx.error(f"the window (extent {e}) is larger than the padded input "
                            f"({n} + {b} + {a})")
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= n + b:
            o -= 1
        out.append(o)
    return pairs, out


def _pad_to_windows(x, pairs, out, strides, ext, value):
    """Pad the spatial dims so that exactly ``out`` windows fit (extra end padding for
    ceil_mode, cropping where the declared padding is longer than needed)."""
    nd = len(pairs)
    flat, crop = [], False
    for i in reversed(range(nd)):
        n = x.shape[2 + i]
        b, a = pairs[i]
        need = (out[i] - 1) * strides[i] + ext[i]
        a = need - n - b
        crop = crop or a < 0
        flat += [b, max(a, 0)]
    y = S.pad(x, flat, value=value) if any(flat) else x
    if crop:
        key = (slice(None), slice(None)) + tuple(
            slice(0, (o - 1) * s + e) for o, s, e in zip(out, strides, ext))
        y = y[key]
    return y


# ----- convolution ------------------------------------------------------------------------------


def _conv_check(node, opset):
    if node.attr("auto_pad", "NOTSET") not in ("NOTSET", "", "SAME_UPPER", "SAME_LOWER",
                                               "VALID"):
        return f"auto_pad={node.attr('auto_pad')!r}"
    return None


@rule("Conv", check=_conv_check)
def _conv(ctx, node, ins):
    return conv(ctx, node, ins[0], ins[1], ins[2] if len(ins) > 2 else None)


def conv(ctx, node, x, w, b=None):
    """ONNX Conv (pads, auto_pad, strides, dilations, group) with ember's N-d primitive."""
    kernel = list(w.shape[2:])
    nd, strides, dilations = _spatial(ctx, node, x, kernel)
    groups = node.attr("group", 1)
    if x.shape[1] != w.shape[1] * groups:
        raise ctx.error(f"input channels {x.shape[1]} don't match weight {tuple(w.shape)} "
                        f"with group={groups}")
    if x._data.dtype != w._data.dtype:
        raise ctx.error(f"input dtype {x.dtype} and weight dtype {w.dtype} differ", TypeError)
    pairs, _ = _window_pads(ctx, node, list(x.shape[2:]), kernel, strides, dilations,
                            pool=False)
    inputs = (x, w) if b is None else (x, w, b)
    return apply(OPS["conv"], inputs, {"stride": tuple(strides), "padding": tuple(pairs),
                                       "dilation": tuple(dilations), "groups": groups})


@rule("ConvTranspose", check=_conv_check)
def _conv_transpose(ctx, node, ins):
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    kernel = list(w.shape[2:])
    nd, strides, dilations = _spatial(ctx, node, x, kernel)
    groups = node.attr("group", 1)
    if x.shape[1] != w.shape[0]:
        raise ctx.error(f"input channels {x.shape[1]} don't match weight {tuple(w.shape)}")
    out_pad = list(node.attr("output_padding") or [0] * nd)
    in_sp = list(x.shape[2:])
    ext = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    natural = [s * (n - 1) + op + e for n, s, op, e in zip(in_sp, strides, out_pad, ext)]
    auto = node.attr("auto_pad", "NOTSET")
    target = node.attr("output_shape")
    if target is not None and len(target) > nd:
        target = target[-nd:]
    if target is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        target = [n * s for n, s in zip(in_sp, strides)]
    if target is not None:
        pairs = []
        for i in range(nd):
            total = natural[i] - target[i]
            if total < 0:  # a larger output than the kernel covers: zeros at the end
                out_pad[i] += -total
                total = 0
            small, big = total // 2, total - total // 2
            pairs.append((small, big) if auto == "SAME_UPPER" else (big, small))
    else:
        pads = node.attr("pads") or [0] * (2 * nd)
        pairs = [(pads[i], pads[nd + i]) for i in range(nd)]
    inputs = (x, w) if b is None else (x, w, b)
    # the primitive takes output_padding below the stride; larger extents are zero columns
    prim_pad = [min(op, s - 1 if s > 1 else 0) for op, s in zip(out_pad, strides)]
    y = apply(OPS["conv_transpose"], inputs, {
        "stride": tuple(strides), "padding": tuple(pairs), "output_padding": tuple(prim_pad),
        "dilation": tuple(dilations), "groups": groups})
    extra = [op - p for op, p in zip(out_pad, prim_pad)]
    if any(extra):
        flat = []
        for e in reversed(extra):
            flat += [0, e]
        bias = None if b is None else S.reshape(b, (1, -1) + (1,) * nd)
        y = S.pad(y if bias is None else A.sub(y, bias), flat, value=0.0)
        y = y if bias is None else A.add(y, bias)
    return y


# ----- pooling --------------------------------------------------------------------------------


def _pool_check(node, opset):
    if node.attr("auto_pad", "NOTSET") not in ("NOTSET", "", "SAME_UPPER", "SAME_LOWER",
                                               "VALID"):
        return f"auto_pad={node.attr('auto_pad')!r}"
    if node.attr("storage_order", 0) not in (0, 1):
        return f"storage_order={node.attr('storage_order')}"
    return None


def _lowest(x):
    dt = x._data.dtype
    return -math.inf if dt.kind == "f" else int(np.iinfo(dt).min)


def _pool_geometry(ctx, node, x):
    """A pooling node's kernel, rank, strides, dilations, (begin, end) pads, output size
    and window extent per spatial dim."""
    kernel = node.attr("kernel_shape")
    nd, strides, dilations = _spatial(ctx, node, x, kernel)
    pairs, out = _window_pads(ctx, node, list(x.shape[2:]), kernel, strides, dilations,
                              pool=True)
    ext = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    return kernel, nd, strides, dilations, pairs, out, ext


@rule("MaxPool", check=_pool_check)
def _max_pool(ctx, node, ins):
    x = ins[0]
    kernel, nd, strides, dilations, pairs, out, ext = _pool_geometry(ctx, node, x)
    src = A.cast(x, D.int16) if x._data.dtype in (np.int8, np.uint8) else x
    xp = _pad_to_windows(src, pairs, out, strides, ext, _lowest(src))
    attrs = {"kernel": tuple(kernel), "stride": tuple(strides), "padding": (0,) * nd,
             "dilation": tuple(dilations), "ceil_mode": False}
    y, arg = apply(OPS["max_pool"], (xp,), attrs)
    y = same_dtype(y, x)
    if len(node.outputs) < 2 or not node.outputs[1]:
        return [y]
    # Indices: flat positions in the unpadded input (N, C, *spatial), picked by the winning
    # kernel offset from a padded tensor of positions
    shape = tuple(x.shape)
    pos = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    if node.attr("storage_order", 0):  # column-major within each plane
        sp = shape[2:]
        plane = np.arange(math.prod(sp), dtype=np.int64).reshape(sp[::-1]).T
        pos = (np.arange(shape[0] * shape[1], dtype=np.int64).reshape(shape[:2] + (1,) * nd)
               * math.prod(sp) + plane)
    pos_t = _pad_to_windows(ctx.const(np.ascontiguousarray(pos)), pairs, out, strides, ext, -1)
    idx = apply(OPS["max_pool_select"], (pos_t, Tensor._wrap(arg, x._dev)), attrs)
    return [y, idx]


def _window_sum(x, kernel, strides, dilations):
    """Sum over each window: a depthwise convolution of (N*C, 1, *spatial) with ones."""
    n, c = x.shape[:2]
    nd = len(kernel)
    flat = S.reshape(x, (n * c, 1) + tuple(x.shape[2:]))
    ones = ops.creation.ones(*((1, 1) + tuple(kernel)), dtype=x.dtype)
    y = apply(OPS["conv"], (flat, ones), {"stride": tuple(strides), "padding": ((0, 0),) * nd,
                                          "dilation": tuple(dilations), "groups": 1})
    return S.reshape(y, (n, c) + tuple(y.shape[2:]))


def _window_counts(in_sp, pairs, out, kernel, strides, dilations, include_pad: bool):
    """Per output position, how many window taps land on the input (or on input + declared
    padding with ``include_pad``): the average's divisor, separable over dims."""
    div = np.ones((), np.float64)
    for n, (b, a), o, k, s, d in zip(in_sp, pairs, out, kernel, strides, dilations):
        taps = np.arange(o)[:, None] * s + np.arange(k)[None, :] * d   # padded coordinates
        lo, hi = (0, n + b + a) if include_pad else (b, b + n)
        cnt = ((taps >= lo) & (taps < hi)).sum(1)
        div = np.multiply.outer(div, cnt)
    return div


@rule("AveragePool", check=_pool_check)
def _avg_pool(ctx, node, ins):
    x = ins[0]
    kernel, nd, strides, dilations, pairs, out, ext = _pool_geometry(ctx, node, x)
    include = bool(node.attr("count_include_pad", 0))
    sums = _window_sum(_pad_to_windows(x, pairs, out, strides, ext, 0.0), kernel, strides,
                       dilations)
    div = _window_counts(list(x.shape[2:]), pairs, out, kernel, strides, dilations, include)
    return A.div(sums, ctx.const(np.maximum(div, 1).astype(x._data.dtype)))


@rule("LpPool", check=_pool_check)
def _lp_pool(ctx, node, ins):
    x = ins[0]
    kernel, nd, strides, dilations, pairs, out, ext = _pool_geometry(ctx, node, x)
    p = float(node.attr("p", 2))
    powered = A.pow(U.abs(x), p)
    sums = _window_sum(_pad_to_windows(powered, pairs, out, strides, ext, 0.0), kernel,
                       strides, dilations)
    return A.pow(sums, 1.0 / p)


def _spatial_dims(x):
    return tuple(range(2, x.ndim))


@rule("GlobalAveragePool")
def _global_avg_pool(ctx, node, ins):
    x = ins[0]
    return R.mean(x, _spatial_dims(x), keepdim=True)


@rule("GlobalMaxPool")
def _global_max_pool(ctx, node, ins):
    x = ins[0]
    return R.amax(x, _spatial_dims(x), keepdim=True)


@rule("GlobalLpPool")
def _global_lp_pool(ctx, node, ins):
    x = ins[0]
    p = float(node.attr("p", 2))
    return A.pow(R.sum(A.pow(U.abs(x), p), _spatial_dims(x), keepdim=True), 1.0 / p)


@rule("MaxUnpool")
def _max_unpool(ctx, node, ins):
    x, idx = ins[0], ins[1]
    kernel = node.attr("kernel_shape")
    nd, strides, _ = _spatial(ctx, node, x, kernel)
    pads = node.attr("pads") or [0] * (2 * nd)
    inferred = tuple(x.shape[:2]) + tuple(
        (n - 1) * s + k - pads[i] - pads[nd + i]
        for i, (n, s, k) in enumerate(zip(x.shape[2:], strides, kernel)))
    from ...ops.indexing import index_put
    flat = ops.creation.zeros(math.prod(inferred), dtype=x.dtype)
    out = S.reshape(index_put(flat, (S.reshape(idx, (-1,)),), S.reshape(x, (-1,))), inferred)
    if len(ins) > 2 and ins[2] is not None:
        # a larger output_shape: the unpooled block sits at the start, zeros after it
        shape = ctx.ints(ins[2])
        flat_pad = []
        for n, m in zip(reversed(shape), reversed(inferred)):
            if n < m:
                raise ctx.error(f"output_shape {shape} is smaller than the unpooled shape "
                                f"{list(inferred)}")
            flat_pad += [0, n - m]
        out = S.pad(out, flat_pad, value=0.0)
    return out


# ----- normalisation --------------------------------------------------------------------------


def _channel(t, x):
    """A per-channel (C,) tensor shaped to broadcast over an (N, C, *) input."""
    return S.reshape(t, (1, -1) + (1,) * (x.ndim - 2))


@rule("BatchNormalization")
def _batch_norm(ctx, node, ins):
    x, scale, bias, mean, var = ins[:5]
    eps = node.attr("epsilon", 1e-5)
    if node.attr("training_mode", 0) or len([o for o in node.outputs if o]) > 1:
        dims = (0,) + _spatial_dims(x)
        bm = R.mean(x, dims)
        bv = R.mean(A.mul(A.sub(x, _channel(bm, x)), A.sub(x, _channel(bm, x))), dims)
        mom = node.attr("momentum", 0.9)
        y = A.add(A.mul(A.div(A.sub(x, _channel(bm, x)),
                              U.sqrt(A.add(_channel(bv, x), eps))), _channel(scale, x)),
                  _channel(bias, x))
        run_mean = A.add(A.mul(mean, mom), A.mul(bm, 1 - mom))
        run_var = A.add(A.mul(var, mom), A.mul(bv, 1 - mom))
        return [same_dtype(y, x), same_dtype(run_mean, mean), same_dtype(run_var, var)]
    if all(t._data.dtype == x._data.dtype for t in ins[:5]) and x.ndim >= 2:
        from ...ops.normalization import batch_norm
        return batch_norm(x, mean, var, scale, bias, training=False, eps=eps)
    inv = U.rsqrt(A.add(A.cast(var, x.dtype), eps))
    y = A.mul(A.sub(x, _channel(A.cast(mean, x.dtype), x)), _channel(inv, x))
    return A.add(A.mul(y, _channel(A.cast(scale, x.dtype), x)),
                 _channel(A.cast(bias, x.dtype), x))


def _stash(x, node):
    """The dtype statistics are computed in: float32 for 16-bit inputs (stash_type=1)."""
    if node.attr("stash_type", 1) == 1 and x._data.dtype.itemsize < 4:
        return A.cast(x, D.float32)
    return x


def _normalize(x, dims, eps):
    """(x - mean) / sqrt(var + eps) over ``dims`` (biased variance), with mean and 1/std."""
    mean = R.mean(x, dims, keepdim=True)
    d = A.sub(x, mean)
    var = R.mean(A.mul(d, d), dims, keepdim=True)
    inv = U.rsqrt(A.add(var, eps))
    return A.mul(d, inv), mean, inv


@rule("LayerNormalization")
def _layer_norm(ctx, node, ins):
    x, scale = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    axis = ctx.axis(node.attr("axis", -1), x.ndim)
    eps = node.attr("epsilon", 1e-5)
    ns = tuple(x.shape[axis:])
    wants_stats = len(node.outputs) > 1 and any(node.outputs[1:])
    if (not wants_stats and tuple(scale.shape) == ns and (bias is None or tuple(bias.shape) == ns)
            and x._data.dtype in (np.float32, np.float64)
            and scale._data.dtype == x._data.dtype
            and (bias is None or bias._data.dtype == x._data.dtype)):
        from ...ops.normalization import layer_norm
        return layer_norm(x, ns, scale, bias, eps)  # the fused primitive
    xs = _stash(x, node)
    y, mean, inv = _normalize(xs, tuple(range(axis, x.ndim)), eps)
    y = A.mul(same_dtype(y, x), scale)
    if bias is not None:
        y = A.add(y, bias)
    return [same_dtype(y, x), same_dtype(mean, xs), same_dtype(inv, xs)]


@rule("InstanceNormalization")
def _instance_norm(ctx, node, ins):
    x, scale, bias = ins
    y, _, _ = _normalize(x, _spatial_dims(x), node.attr("epsilon", 1e-5))
    return A.add(A.mul(y, _channel(scale, x)), _channel(bias, x))


@rule("GroupNormalization")
def _group_norm(ctx, node, ins):
    x, scale, bias = ins
    g = node.attr("num_groups")
    n, c = x.shape[:2]
    if c % g:
        raise ctx.error(f"channels {c} are not divisible by num_groups={g}")
    xs = _stash(x, node)
    grouped = S.reshape(xs, (n, g, -1))
    y, _, _ = _normalize(grouped, (2,), node.attr("epsilon", 1e-5))
    y = S.reshape(same_dtype(y, x), tuple(x.shape))
    if tuple(scale.shape) == (g,) and g != c:  # opset 18: one scale per group
        scale = S.reshape(S.broadcast_to(S.reshape(scale, (g, 1)), (g, c // g)), (c,))
        bias = S.reshape(S.broadcast_to(S.reshape(bias, (g, 1)), (g, c // g)), (c,))
    return A.add(A.mul(y, _channel(scale, x)), _channel(bias, x))


@rule("RMSNormalization")
def _rms_norm(ctx, node, ins):
    x, scale = ins
    axis = ctx.axis(node.attr("axis", -1), x.ndim)
    xs = _stash(x, node)
    ms = R.mean(A.mul(xs, xs), tuple(range(axis, x.ndim)), keepdim=True)
    y = A.mul(xs, U.rsqrt(A.add(ms, node.attr("epsilon", 1e-5))))
    return A.mul(same_dtype(y, x), scale)


@rule("MeanVarianceNormalization")
def _mvn(ctx, node, ins):
    x = ins[0]
    axes = tuple(sorted(ctx.axis(a, x.ndim) for a in node.attr("axes", [0, 2, 3])))
    mean = R.mean(x, axes, keepdim=True)
    d = A.sub(x, mean)
    var = R.mean(A.mul(d, d), axes, keepdim=True)
    return A.div(d, A.add(U.sqrt(var), 1e-9))  # the ONNX function body's epsilon


@rule("LpNormalization", check=lambda node, opset: None if node.attr("p", 2) in (1, 2)
      else f"p={node.attr('p')} (expected 1 or 2)")
def _lp_norm(ctx, node, ins):
    x = ins[0]
    d = ctx.axis(node.attr("axis", -1), x.ndim)
    p = node.attr("p", 2)
    norm = R.sum(U.abs(x), d, keepdim=True) if p == 1 else \
        U.sqrt(R.sum(A.mul(x, x), d, keepdim=True))
    zero = C.eq(norm, 0)
    return C.where(zero, ops.creation.zeros_like(x), A.div(x, C.where(zero, 1.0, norm)))


@rule("LRN")
def _lrn(ctx, node, ins):
    x = ins[0]
    size = node.attr("size")
    alpha, beta, bias = node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0)
    c = x.shape[1]
    lo, hi = (size - 1) // 2, -(-(size - 1) // 2)
    sq = A.mul(x, x)
    flat = [0, 0] * (x.ndim - 2) + [lo, hi]
    padded = S.pad(sq, flat, value=0.0)
    total = S.narrow(padded, 1, 0, c)
    for i in range(1, size):
        total = A.add(total, S.narrow(padded, 1, i, c))
    return A.div(x, A.pow(A.add(A.mul(total, alpha / size), bias), beta))


@rule("Dropout", random=True)
def _dropout(ctx, node, ins):
    x = ins[0]
    ratio = ctx.scalar(ins[1], 0.5) if len(ins) > 1 and ins[1] is not None else 0.5
    training = bool(ctx.scalar(ins[2], False)) if len(ins) > 2 and ins[2] is not None \
        else False
    want_mask = len(node.outputs) > 1 and bool(node.outputs[1])
    if not training or ratio == 0:
        out = [x]
        if want_mask:
            out.append(ctx.const(np.ones(tuple(x.shape), np.bool_)))
        return out
    if not 0 <= ratio < 1:
        raise ctx.error(f"ratio must be in [0, 1), got {ratio}")
    seed = node.attr("seed")
    if seed is not None:
        # the reference implementation's stream, so seeded graphs reproduce
        draw = np.random.RandomState(seed).uniform(0, 1.0, tuple(x.shape))
        mask = ctx.const(draw >= ratio)
    else:
        mask = C.ge(ops.random.rand(*x.shape, dtype=D.float64), ratio)
    y = A.mul(C.where(mask, x, ops.creation.zeros_like(x)), 1.0 / (1.0 - ratio))
    return [same_dtype(y, x), mask] if want_mask else [same_dtype(y, x)]
