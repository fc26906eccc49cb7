"""Normalisation layers as fused primitives: batch_norm, layer_norm, group_norm (instance_norm
is group_norm with one channel per group), plus the composites local_response_norm and rms_norm.

All three primitives are one idea seen through different reshapes of the input:

- **stats view** ``sview`` and its reduction ``axes``: mean and (biased) variance are taken over
  ``axes`` of ``x.reshape(sview)`` -- ``(N, C, L)`` over ``(0, 2)`` for batch norm, ``(R, D)``
  over ``(1,)`` for layer norm, ``(N*G, K)`` over ``(1,)`` for group norm;
- **affine view** ``aview``: the weight and bias multiply/add along ``wshape`` of
  ``x.reshape(aview)``, and their gradients sum over ``aaxes``.

Forward is one op of vectorised NumPy (mean, centred variance, scale-and-shift); the statistics
``(mean, var, invstd)`` are kept on the node (``extra``) and returned to the caller, which uses
them to update running statistics. Backward is the closed-form formula as one op
(``<name>_backward``): ``gx = invstd * (h - mean(h) - xhat * mean(h * xhat))`` with
``h = g * weight``; the weight and bias gradients come back as that op's ``extra``.

Gradients of gradients are obtained by *composition*: when the backward pass itself records a
graph (``create_graph=True``) the rule writes the same formula with ember ops (mean, var and
invstd recomputed from ``x``), so autograd differentiates it exactly. The fused backward ops are
first-order kernels only and carry no rule of their own.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _state
from ..tensor import Tensor
from .registry import apply, register

# ----- layouts ------------------------------------------------------------------------------


def _prod(shape) -> int:
    return int(math.prod(shape))


def _channel_layout(shape, groups=None):
    """Batch norm (``groups=None``: stats per channel) or group norm (stats per sample & group)."""
    n, c = shape[0], shape[1]
    length = _prod(shape[2:])
    aview = (n, c, length)
    if groups is None:
        return aview, (0, 2), aview, (1, c, 1), (0, 2)
    return (n * groups, (c // groups) * length), (1,), aview, (1, c, 1), (0, 2)


def _row_layout(shape, ndim):
    """Layer norm over the trailing ``ndim`` dims."""
    d = _prod(shape[len(shape) - ndim:])
    r = _prod(shape[:len(shape) - ndim])
    return (r, d), (1,), (r, d), (1, d), (0,)


def _layout(name, shape, attrs):
    if name == "batch_norm":
        return _channel_layout(shape)
    if name == "group_norm":
        return _channel_layout(shape, attrs["groups"])
    return _row_layout(shape, attrs["ndim"])


# ----- fast reductions over the layouts' axes: einsum's contiguous inner loops beat
# ufunc.reduce over two non-adjacent axes by ~3x (BLAS matrix-vector products are faster
# still, but their worker threads stall badly when the CPU is oversubscribed) --------------


def _sum(a, axes):
    if axes == (1,):
        return np.einsum("ij->i", a)
    if axes == (0,):
        return a.sum(0)
    n, c, length = a.shape
    return np.einsum("ij->i", a.reshape(n * c, length)).reshape(n, c).sum(0)


def _dot(a, b, axes):
    """``(a * b).sum(axes)`` without the temporary."""
    if axes == (1,):
        return np.einsum("ij,ij->i", a, b)
    if axes == (0,):
        return np.einsum("ij,ij->j", a, b)
    n, c, length = a.shape
    return np.einsum("ij,ij->i", a.reshape(n * c, length),
                     b.reshape(n * c, length)).reshape(n, c).sum(0)


def _bc(v, view, axes):
    """Per-group statistics ``v`` shaped to broadcast against ``x.reshape(view)``."""
    return v.reshape(tuple(1 if i in axes else s for i, s in enumerate(view)))


def _compute_dtype(dt):
    # half precision accumulates badly: work in float32 and round the results
    return np.dtype(np.float32) if dt.itemsize < 4 else dt


# ----- the fused kernels ------------------------------------------------------------------------


def _norm_forward(name):
    def forward(xp, x, *wb, eps, w=False, b=False, **attrs):
        sview, axes, aview, wshape, _ = _layout(name, x.shape, attrs)
        dt = _compute_dtype(x.dtype)
        weight = wb[0].astype(dt, copy=False) if w else None
        bias = wb[int(w)].astype(dt, copy=False) if b else None
        xs = x.astype(dt, copy=False).reshape(sview)
        m = _prod(sview[a] for a in axes)
        mean = _sum(xs, axes) / m
        out = xs - _bc(mean, sview, axes)  # centred first: E[x^2] - E[x]^2 cancels badly
        var = _dot(out, out, axes) / m
        invstd = 1.0 / np.sqrt(var + eps)
        if name == "batch_norm":  # stats and affine share the channel axis: fold the scales
            out *= _bc(invstd * weight if w else invstd, sview, axes)
        else:
            out *= _bc(invstd, sview, axes)
            if w:
                oa = out.reshape(aview)  # a view: the update lands in out
                oa *= weight.reshape(wshape)
        if b:
            oa = out.reshape(aview)
            oa += bias.reshape(wshape)
        return out.reshape(x.shape).astype(x.dtype, copy=False), (mean, var, invstd)
    return forward


def _norm_backward(name):
    def backward(xp, g, x, mean, invstd, *wt, eps, w=False, b=False, **attrs):
        sview, axes, aview, wshape, aaxes = _layout(name, x.shape, attrs)
        dt = _compute_dtype(x.dtype)
        weight = wt[0].astype(dt, copy=False) if w else None
        ga = g.astype(dt, copy=False).reshape(aview)
        m = _prod(sview[a] for a in axes)
        xc = x.astype(dt, copy=False).reshape(sview) - _bc(mean, sview, axes)
        if name == "batch_norm":
            # per-channel sums of g and g*xhat are the bias and weight gradients themselves
            gb = _sum(ga, axes)
            gw = _dot(ga, xc, axes) * invstd
            k = invstd * weight if w else invstd
            xc *= _bc(-k * invstd * gw / m, sview, axes)
            gx = ga * _bc(k, sview, axes)
            gx += xc
            gx += _bc(-k * gb / m, sview, axes)
        else:
            xc *= _bc(invstd, sview, axes)  # now xhat
            xa = xc.reshape(aview)
            gb = _sum(ga, aaxes) if b else None
            gw = _dot(ga, xa, aaxes) if w else None
            h = (ga * weight.reshape(wshape)).reshape(sview) if w else ga.reshape(sview)
            sh, shx = _sum(h, axes), _dot(h, xc, axes)
            xc *= _bc(-invstd * shx / m, sview, axes)
            xc += _bc(-invstd * sh / m, sview, axes)
            if w:  # h is our own buffer: finish the gradient in it
                h *= _bc(invstd, sview, axes)
                gx = h
            else:
                gx = h * _bc(invstd, sview, axes)
            gx += xc
        return gx.reshape(x.shape).astype(x.dtype, copy=False), (gw, gb)
    return backward


def _composite_grads(name, node, g):
    """The backward formula in ember ops, so that it can be differentiated again."""
    a = node.attrs
    x = node.inputs[0]
    weight = node.inputs[1] if a.get("w") else None
    bias = node.inputs[1 + int(weight is not None)] if a.get("b") else None
    sview, axes, aview, wshape, aaxes = _layout(name, x.shape, a)
    xs = x.reshape(sview)
    xc = xs - xs.mean(axes, keepdim=True)
    invstd = ((xc * xc).mean(axes, keepdim=True) + a["eps"]).rsqrt()
    xhat = xc * invstd
    ga = g.reshape(aview)
    h = (ga * weight.reshape(wshape) if weight is not None else ga).reshape(sview)
    gx = invstd * (h - h.mean(axes, keepdim=True)
                   - xhat * (h * xhat).mean(axes, keepdim=True))
    out = [gx.reshape(x.shape)]
    if weight is not None:
        out.append((ga * xhat.reshape(aview)).sum(aaxes).reshape(weight.shape))
    if bias is not None:
        out.append(ga.sum(aaxes).reshape(bias.shape))
    return tuple(out)


def _declare(name):
    fwd = register(name, extra=True)(_norm_forward(name))
    bwd = register(name + "_backward", extra=True)(_norm_backward(name))

    @fwd.def_backward
    def _(node, g):
        if _state.grad_enabled:  # create_graph: a differentiable composite
            return _composite_grads(name, node, g)
        a = node.attrs
        x = node.inputs[0]
        mean, _, invstd = node.saved
        dev = x._dev
        ins = (g, x, Tensor._wrap(mean, dev), Tensor._wrap(invstd, dev)) + \
            ((node.inputs[1],) if a.get("w") else ())
        gx, (gw, gb) = apply(bwd, ins, a)
        out = [gx]
        if a.get("w"):
            out.append(Tensor._wrap(gw.astype(x._data.dtype, copy=False), dev)
                       .reshape(node.inputs[1].shape))
        if a.get("b"):
            out.append(Tensor._wrap(gb.astype(x._data.dtype, copy=False), dev)
                       .reshape(node.inputs[-1].shape))
        return tuple(out)
    return fwd, bwd


_batch_norm, _batch_norm_backward = _declare("batch_norm")
_layer_norm, _layer_norm_backward = _declare("layer_norm")
_group_norm, _group_norm_backward = _declare("group_norm")


# ----- argument checks --------------------------------------------------------------------------


def _check_float(op, input):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected an ember Tensor input, got {type(input).__name__}")
    if not input.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype} with shape "
                        f"{tuple(input.shape)}")


def _check_param(op, name, t, shape, input):
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(t).__name__}")
    if tuple(t.shape) != tuple(shape):
        raise RuntimeError(f"{op}: {name} should have shape {tuple(shape)} to match the input "
                           f"of shape {tuple(input.shape)}, but it has shape {tuple(t.shape)}")
    if name in ("weight", "bias") and t._data.dtype != input._data.dtype:
        raise TypeError(f"{op}: {name} dtype {t.dtype} differs from the input dtype "
                        f"{input.dtype}; convert one of them with .to()")


def _affine_inputs(input, weight, bias):
    ins = (input,) + ((weight,) if weight is not None else ()) + \
        ((bias,) if bias is not None else ())
    return ins, {"w": weight is not None, "b": bias is not None}


def _update_running(running, batch_value, momentum):
    """``running = (1 - momentum) * running + momentum * batch_value``, in place (PyTorch)."""
    if running is None:
        return
    from ..autograd.grad_mode import no_grad
    with no_grad():
        v = batch_value.to(running.dtype)
        running.mul_(1.0 - momentum).add_(v, alpha=momentum)


def _eval_affine(input, mean, var, weight, bias, eps):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` with per-channel constants, as
    ``x * scale + shift`` in two elementwise passes."""
    scale = (var + eps).rsqrt()
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    dt = input.dtype
    return input * scale.to(dt).reshape(shape) + shift.to(dt).reshape(shape)


# ----- public functions -----------------------------------------------------------------------


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over all dims but the channel dim 1 of an ``(N, C, *)`` input.

    Training uses the batch's statistics (biased variance) and, when given, updates
    ``running_mean``/``running_var`` in place with ``momentum`` -- the running variance gets
    the *unbiased* batch variance, as in PyTorch. Evaluation uses the running statistics.
    """
    _check_float("batch_norm", input)
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, *) with at least 2 "
                         f"dims, got shape {tuple(input.shape)}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_param("batch_norm", name, t, (c,), input)
    if training:
        count = input.numel() // c if c else 0
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input size {tuple(input.shape)}")
        ins, attrs = _affine_inputs(input, weight, bias)
        attrs["eps"] = eps
        out, (mean, var, _) = apply(_batch_norm, ins, attrs)
        # the statistics as tensors aliasing the op's extra outputs (so ember.jit traces the
        # running-stat update as ops on them)
        mean, var = Tensor._wrap(mean, input._dev), Tensor._wrap(var, input._dev)
        _update_running(running_mean, mean, momentum)
        _update_running(running_var, var * (count / (count - 1)), momentum)
        return out
    if running_mean is None or running_var is None:
        raise RuntimeError("batch_norm: running_mean and running_var must be given when "
                           "training=False (evaluation normalises with the running "
                           "statistics)")
    return _eval_affine(input, running_mean, running_var, weight, bias, eps)


def _normalized_shape(op, normalized_shape) -> tuple:
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    try:
        return tuple(int(s) for s in normalized_shape)
    except TypeError:
        raise TypeError(f"{op}: normalized_shape must be an int or a sequence of ints, got "
                        f"{normalized_shape!r}") from None


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing dims ``normalized_shape`` (mean 0, biased variance 1)."""
    _check_float("layer_norm", input)
    ns = _normalized_shape("layer_norm", normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != ns:
        raise RuntimeError(f"layer_norm: given normalized_shape={list(ns)}, expected input "
                           f"with shape [*, {', '.join(map(str, ns))}], but got input of "
                           f"shape {tuple(input.shape)}")
    _check_param("layer_norm", "weight", weight, ns, input)
    _check_param("layer_norm", "bias", bias, ns, input)
    ins, attrs = _affine_inputs(input, weight, bias)
    attrs["eps"] = eps
    attrs["ndim"] = k
    return apply(_layer_norm, ins, attrs)[0]


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample's channels in ``num_groups`` groups; per-channel affine."""
    _check_float("group_norm", input)
    if input.ndim < 2:
        raise RuntimeError(f"group_norm: expected an input of shape (N, C, *) with at least 2 "
                           f"dims, got shape {tuple(input.shape)}")
    c = input.shape[1]
    if not isinstance(num_groups, numbers.Integral) or num_groups <= 0 or c % num_groups:
        raise RuntimeError(f"group_norm: expected the number of channels in the input to be "
                           f"divisible by num_groups, but got input of shape "
                           f"{tuple(input.shape)} and num_groups={num_groups}")
    _check_param("group_norm", "weight", weight, (c,), input)
    _check_param("group_norm", "bias", bias, (c,), input)
    ins, attrs = _affine_inputs(input, weight, bias)
    attrs["eps"] = eps
    attrs["groups"] = int(num_groups)
    return apply(_group_norm, ins, attrs)[0]


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each sample's each channel over its spatial dims (``(N, C, *)`` input).

    With ``use_input_stats`` the running statistics (when given) are updated with the
    batch-average of the per-instance mean and unbiased variance, as PyTorch does.
    """
    _check_float("instance_norm", input)
    if input.ndim < 3:
        raise ValueError(f"instance_norm: expected an input of shape (N, C, *) with at least "
                         f"one spatial dim, got shape {tuple(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_param("instance_norm", name, t, (c,), input)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise RuntimeError("instance_norm: running_mean and running_var must be given "
                               "when use_input_stats=False")
        return _eval_affine(input, running_mean, running_var, weight, bias, eps)
    count = _prod(input.shape[2:])
    if count <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element when "
                         f"training, got input size {tuple(input.shape)}")
    ins, attrs = _affine_inputs(input, weight, bias)
    attrs["eps"] = eps
    attrs["groups"] = c
    out, (mean, var, _) = apply(_group_norm, ins, attrs)
    mean, var = Tensor._wrap(mean, input._dev), Tensor._wrap(var, input._dev)
    if running_mean is not None or running_var is not None:
        _update_running(running_mean, mean.reshape(n, c).mean(0), momentum)
        _update_running(running_var, (var * (count / (count - 1))).reshape(n, c).mean(0),
                        momentum)
    return out


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """``x / sqrt(mean(x^2) + eps) * weight`` over the trailing dims (``eps`` defaults to the
    dtype's machine epsilon, as PyTorch)."""
    _check_float("rms_norm", input)
    ns = _normalized_shape("rms_norm", normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != ns:
        raise RuntimeError(f"rms_norm: given normalized_shape={list(ns)}, expected input with "
                           f"shape [*, {', '.join(map(str, ns))}], but got input of shape "
                           f"{tuple(input.shape)}")
    _check_param("rms_norm", "weight", weight, ns, input)
    if eps is None:
        eps = float(np.finfo(_compute_dtype(input._data.dtype)).eps)
    dims = tuple(range(input.ndim - k, input.ndim))
    out = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    return out * weight if weight is not None else out


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """AlexNet's normalisation across channels: ``x / (k + alpha * mean_window(x^2))^beta``,
    the window being ``size`` neighbouring channels (zero-padded at the ends)."""
    _check_float("local_response_norm", input)
    if input.ndim < 3:
        raise ValueError(f"local_response_norm: expected an input of 3 or more dims "
                         f"(N, C, *), got shape {tuple(input.shape)}")
    if input.numel() == 0:
        return input.clone()
    from .shape import pad
    c = input.shape[1]
    sq = input * input
    # pad the channel dim by (size // 2, (size - 1) // 2), then add the `size` shifted windows
    pairs = [0, 0] * (input.ndim - 2) + [size // 2, (size - 1) // 2]
    padded = pad(sq, pairs)
    acc = padded.narrow(1, 0, c)
    for off in range(1, size):
        acc = acc + padded.narrow(1, off, c)
    div = (acc * (alpha / size) + k) ** beta
    return input / div
