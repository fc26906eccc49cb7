"""Loss functions. ``cross_entropy`` and ``nll_loss`` are fused primitives; the elementwise
losses are composed from ember ops (their gradients come from autograd), except
``binary_cross_entropy`` whose primitive carries PyTorch's clamped gradient.

``cross_entropy`` is log_softmax + nll in one pass, and its backward is one op,
``softmax * alpha - beta`` scaled by the incoming gradient (``softmax - onehot`` in the plain
case), where the per-element constants ``alpha``/``beta`` hold the class weights, label
smoothing, ignored targets and the 'mean' denominator. The backward op's own rule is written
with ember ops, so gradients of gradients are exact. ``nll_loss``'s backward is a scatter
whose rule is ``nll_loss`` itself (the map is linear).

Every loss takes ``reduction`` in ('none', 'mean', 'sum') and PyTorch's legacy
``size_average``/``reduce`` flags.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..tensor import Tensor
from .registry import apply, register

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(op, reduction, size_average=None, reduce=None, allowed=_REDUCTIONS) -> str:
    if size_average is not None or reduce is not None:
        # PyTorch's legacy flags: both default to True
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
    if reduction not in allowed:
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction; expected "
                         f"one of {', '.join(repr(r) for r in allowed)}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_float(op, name, t):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point {name}, got {t.dtype} with shape "
                        f"{tuple(t.shape)}")


def _as_tensor_like(v, like: Tensor) -> Tensor:
    if isinstance(v, Tensor):
        return v
    from .creation import wrap_constant
    return wrap_constant(np.asarray(v, like._data.dtype), like._dev)


# ----- class-index targets: shared by cross_entropy and nll_loss ----------------------------


def _check_class_targets(op, input, target, weight, ignore_index):
    """Validate ``(N, C, d1...)`` input against ``(N, d1...)`` integer targets."""
    t = target._data
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected class-index targets of an integer dtype (Long) for "
                        f"input of shape {tuple(input.shape)}, got {target.dtype} target of "
                        f"shape {tuple(target.shape)}" +
                        ("; class probabilities need a float target of the input's shape"
                         if op == "cross_entropy" else ""))
    shape = input.shape
    want = (shape[0],) + tuple(shape[2:])
    if tuple(t.shape) != want:
        if t.ndim == 1 and input.ndim == 2:
            raise ValueError(f"{op}: expected input batch_size ({shape[0]}) to match target "
                             f"batch_size ({t.shape[0]}) (input shape {tuple(shape)}, target "
                             f"shape {tuple(t.shape)})")
        raise ValueError(f"{op}: expected target of shape {want} for input of shape "
                         f"{tuple(shape)}, got target of shape {tuple(t.shape)}")
    c = shape[1]
    # one reduction for both bounds: negative values are huge when read as unsigned
    if t.size and t.view(f"u{t.itemsize}").max() >= c:
        bad = t[((t < 0) | (t >= c)) & (t != ignore_index)]
        if bad.size:
            raise IndexError(f"{op}: target {int(bad.flat[0])} is out of bounds for {c} classes "
                             f"(input shape {tuple(shape)}, valid targets are 0..{c - 1} or "
                             f"ignore_index={ignore_index})")
    if weight is not None:
        if not isinstance(weight, Tensor):
            raise TypeError(f"{op}: weight must be a Tensor or None, got "
                            f"{type(weight).__name__}")
        if tuple(weight.shape) != (c,):
            raise ValueError(f"{op}: weight should be a 1-d tensor of {c} class weights for "
                             f"input of shape {tuple(shape)}, got weight of shape "
                             f"{tuple(weight.shape)}")


def _picked(t, ignore_index, weight, dt, dense=False):
    """Per element: ``(target with ignored ones set to 0, weight of the target, valid mask)``;
    the last two are None (all ones) when nothing is ignored nor weighted, unless ``dense``."""
    valid = t != ignore_index
    if valid.all():
        if weight is None:
            if not dense:
                return t, None, None
            return t, np.ones(t.shape, dt), valid
        return t, weight[t].astype(dt, copy=False), valid
    tc = np.where(valid, t, 0)
    if weight is None:
        return tc, valid.astype(dt), valid
    wt = weight[tc].astype(dt, copy=False)
    wt *= valid
    return tc, wt, valid


def _finish(loss, reduction, denom):
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    if not denom:  # every target ignored (or zero weights): nan, as PyTorch
        return np.asarray(np.nan, loss.dtype)
    return np.asarray(total / denom, loss.dtype)


# ----- cross_entropy ----------------------------------------------------------------------------


_ARANGE: dict = {}


def _rows(n):
    """``arange(n)``, cached: row indices for picking one class per row."""
    a = _ARANGE.get(n)
    if a is None:
        a = _ARANGE[n] = np.arange(n)
        a.flags.writeable = False
    return a


def _pick(a, tc):
    """``a[n, tc[n], d...]``: the class-``tc`` entry of every element."""
    if a.ndim == 2:
        return a[_rows(a.shape[0]), tc]
    return np.take_along_axis(a, tc[:, None], axis=1)[:, 0]


def _shifted_lse(x):
    """``(shifted, lse, shift)`` with ``log_softmax(x, 1) = shifted - lse`` and
    ``shifted = x - shift``; ``lse`` keeps the class dim (size 1)."""
    if x.ndim == 2 and x.size:
        # one global shift costs one fast reduction instead of a slow per-row one; it is as
        # accurate while every row's max is within ~9 of the global max (each row's sum of
        # exps is then >= 1e-4); otherwise rounding in (x - shift) - lse would grow
        m = x.max()
        if np.isfinite(m):
            shifted = x - m
            se = np.exp(shifted) @ np.ones(x.shape[1], x.dtype)
            if se.min() >= 1e-4:
                return shifted, np.log(se)[:, None], m
    m = x.max(axis=1, keepdims=True)
    shifted = x - m
    return shifted, np.log(np.exp(shifted).sum(axis=1, keepdims=True)), m


@register("cross_entropy", extra=True)
def _cross_entropy(xp, x, target, *w, reduction, ignore_index=-100, label_smoothing=0.0,
                   probs=False):
    weight = w[0] if w else None
    c = x.shape[1]
    eps = label_smoothing
    shifted, lse, m = _shifted_lse(x)  # lse: (N, 1, d...)
    wshape = (1, c) + (1,) * (x.ndim - 2)
    if probs:
        q = target * (1 - eps) + eps / c if eps else target
        wq = q * weight.reshape(wshape) if weight is not None else q
        loss = (wq * lse).sum(axis=1) - (wq * shifted).sum(axis=1)
        denom = loss.size
    else:
        tc, wt, valid = _picked(target, ignore_index, weight, x.dtype)
        logp_t = _pick(shifted, tc) - lse[:, 0]
        loss = -logp_t if wt is None else -wt * logp_t
        if eps:
            # smoothing term: -sum_c w_c log p_c, i.e. -(sum_c w_c shifted_c - W * lse)
            if weight is not None:
                smooth = lse[:, 0] * weight.sum() - (shifted * weight.reshape(wshape)).sum(1)
            else:
                smooth = lse[:, 0] * c - shifted.sum(axis=1)
            if valid is not None:
                smooth *= valid
            loss = (1 - eps) * loss + (eps / c) * smooth
        denom = loss.size if wt is None else wt.sum()
    # kept for backward: softmax = exp((x - shift) - lse); the shift is not folded into lse,
    # which would round away the small lse of huge logits in float32
    stats = np.empty((2,) + lse.shape, lse.dtype)
    stats[0] = m
    stats[1] = lse
    return _finish(loss.astype(x.dtype, copy=False), reduction, denom), stats


def _ce_constants(x_shape, target, weight, attrs, dt):
    """``alpha`` (N, 1, d...) and ``beta`` (N, C, d...): the gradient of the loss w.r.t. the
    logits is ``g * (alpha * softmax - beta)`` (the mean's 1/denominator included)."""
    c = x_shape[1]
    eps = attrs.get("label_smoothing", 0.0)
    red = attrs["reduction"]
    wshape = (1, c) + (1,) * (len(x_shape) - 2)
    wb = weight.reshape(wshape) if weight is not None else None
    if attrs.get("probs"):
        q = target * (1 - eps) + eps / c if eps else target
        beta = (q * wb).astype(dt, copy=False) if wb is not None else \
            q.astype(dt, copy=True)
        alpha = beta.sum(axis=1, keepdims=True)
        denom = beta.size // c
    else:
        tc, wt, valid = _picked(target, attrs.get("ignore_index", -100), weight, dt, True)
        wsum = weight.sum() if weight is not None else c
        alpha = (wt * (1 - eps) + valid * (eps * wsum / c))[:, None]
        beta = np.zeros(x_shape, dt)
        if eps:
            beta += (valid * (eps / c))[:, None] * (wb if wb is not None else 1.0)
        np.put_along_axis(beta, tc[:, None],
                          np.take_along_axis(beta, tc[:, None], 1) + (wt * (1 - eps))[:, None],
                          axis=1)
        denom = wt.sum()
    if red == "mean" and denom:  # all ignored: alpha and beta are 0, so is the gradient
        alpha = alpha / dt.type(denom)
        beta = beta / dt.type(denom)
    return alpha.astype(dt, copy=False), beta.astype(dt, copy=False)


@register("cross_entropy_backward")
def _cross_entropy_backward(xp, g, x, target, stats, *w, reduction, ignore_index=-100,
                            label_smoothing=0.0, probs=False):
    weight = w[0] if w else None
    s = x - stats[0]
    s -= stats[1]
    np.exp(s, out=s)  # softmax
    gb = g[:, None] if reduction == "none" else g
    if probs or label_smoothing or weight is not None:
        attrs = {"reduction": reduction, "ignore_index": ignore_index,
                 "label_smoothing": label_smoothing, "probs": probs}
        alpha, beta = _ce_constants(x.shape, target, weight, attrs, x.dtype)
        s *= alpha
        s -= beta
        s *= gb
        return s
    # the common case, softmax - onehot, without materialising the one-hot
    tc, wt, _ = _picked(target, ignore_index, None, x.dtype)
    n_valid = target.size if wt is None else wt.sum()
    if reduction == "mean" and n_valid:  # all ignored: the loss is nan, the gradient 0
        gb = gb / x.dtype.type(n_valid)
    scale = gb if wt is None else wt[:, None] * gb
    s *= scale
    if s.ndim == 2:
        rows = _rows(s.shape[0])
        s[rows, tc] -= scale if np.ndim(scale) == 0 else scale[:, 0]
        return s
    idx = tc[:, None]
    picked = np.take_along_axis(s, idx, 1) - np.broadcast_to(scale, idx.shape)
    np.put_along_axis(s, idx, picked, axis=1)
    return s


@_cross_entropy.def_backward
def _(node, g):
    x, target = node.inputs[0], node.inputs[1]
    stats = Tensor._wrap(node.saved, x._dev)
    gx = apply(_cross_entropy_backward, (g, x, target, stats) + tuple(node.inputs[2:]),
               node.attrs) if x.requires_grad else None
    gt = None
    a = node.attrs
    if a.get("probs") and target.requires_grad:
        # d loss / d q_c = -w_c * (1 - eps) * log p_c (per element, then reduced)
        from .activation import log_softmax
        c = x.shape[1]
        scale = (1 - a.get("label_smoothing", 0.0))
        if a["reduction"] == "mean":
            scale /= x.numel() // c
        gt = -log_softmax(x, 1) * scale
        if len(node.inputs) > 2:
            gt = gt * node.inputs[2].reshape((1, c) + (1,) * (x.ndim - 2))
        gt = gt * (g.unsqueeze(1) if a["reduction"] == "none" else g)
    return (gx, gt) + (None,) * (len(node.inputs) - 2)


@_cross_entropy_backward.def_backward
def _(node, gg):
    # gx = g * (alpha * s - beta) with s = softmax(x): differentiate that with ember ops
    from .activation import softmax
    g, x, target = node.inputs[0], node.inputs[1], node.inputs[2]
    weight = node.inputs[4] if len(node.inputs) > 4 else None
    a = node.attrs
    dt = x._data.dtype
    alpha, beta = _ce_constants(x.shape, target._data,
                                weight._data if weight is not None else None, a, dt)
    alpha_t, beta_t = Tensor._wrap(alpha, x._dev), Tensor._wrap(beta, x._dev)
    s = softmax(x, 1)
    none = a["reduction"] == "none"
    gb = g.unsqueeze(1) if none else g
    grad_g = grad_x = grad_t = None
    if g.requires_grad:
        inner = gg * (alpha_t * s - beta_t)
        grad_g = inner.sum(1) if none else inner.sum()
    if x.requires_grad:
        v = gg * gb * alpha_t
        grad_x = s * (v - (v * s).sum(1, keepdim=True))
    if a.get("probs") and target.requires_grad:
        c = x.shape[1]
        scale = 1 - a.get("label_smoothing", 0.0)
        if a["reduction"] == "mean":
            scale /= x.numel() // c
        grad_t = gb * ((gg * s).sum(1, keepdim=True) - gg) * scale
        if weight is not None:
            grad_t = grad_t * weight.reshape((1, c) + (1,) * (x.ndim - 2))
    return (grad_g, grad_x, grad_t, None) + ((None,) if weight is not None else ())


def _unbatched(op, input, target, probs):
    """PyTorch accepts an unbatched ``(C,)`` input with a 0-d (or ``(C,)``) target."""
    if input.ndim == 0:
        raise ValueError(f"{op}: expected an input of shape (C,), (N, C) or (N, C, d1, ...), "
                         f"got a 0-d tensor")
    if input.ndim == 1:
        return input.unsqueeze(0), target.unsqueeze(0) if (target.ndim == 0 or probs) \
            else target, True
    return input, target, False


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits ``input`` ``(N, C, d1...)`` against class indices
    ``(N, d1...)`` or class probabilities (a float target shaped like ``input``).

    ``weight`` rescales each class; targets equal to ``ignore_index`` contribute nothing and
    'mean' divides by the summed weight of the others; ``label_smoothing`` mixes the target
    with the uniform distribution. Stable for huge logits (log-sum-exp with the max taken out).
    """
    reduction = _reduction("cross_entropy", reduction, size_average, reduce)
    _check_float("cross_entropy", "input", input)
    if not isinstance(target, Tensor):
        raise TypeError(f"cross_entropy: target must be a Tensor, got {type(target).__name__}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    probs = target._data.dtype.kind in "fV"  # 'V': bfloat16
    if probs and tuple(target.shape) != tuple(input.shape):
        raise TypeError(f"cross_entropy: a floating-point target ({target.dtype}, shape "
                        f"{tuple(target.shape)}) is read as class probabilities and must have "
                        f"the input's shape {tuple(input.shape)}; class-index targets must be "
                        f"an integer (Long) tensor")
    x, t, unbatched = _unbatched("cross_entropy", input, target, probs)
    attrs = {"reduction": reduction, "ignore_index": int(ignore_index),
             "label_smoothing": float(label_smoothing), "probs": probs}
    if probs:
        if t._data.dtype != x._data.dtype:
            t = t.to(x.dtype)
        if weight is not None and tuple(weight.shape) != (x.shape[1],):
            raise ValueError(f"cross_entropy: weight should be a 1-d tensor of {x.shape[1]} "
                             f"class weights, got shape {tuple(weight.shape)}")
    else:
        _check_class_targets("cross_entropy", x, t, weight, ignore_index)
    ins = (x, t) if weight is None else (x, t, weight.to(x.dtype))
    out = apply(_cross_entropy, ins, attrs)[0]
    return out.reshape(()) if unbatched and reduction == "none" else out


# ----- nll_loss ---------------------------------------------------------------------------------


@register("nll_loss", saves=(1,))
def _nll_loss(xp, x, target, *w, reduction, ignore_index=-100):
    tc, wt, _ = _picked(target, ignore_index, w[0] if w else None, x.dtype, True)
    loss = -wt * _pick(x, tc)
    return _finish(loss, reduction, wt.sum())


@_nll_loss.def_backward
def _(node, g):
    x, target = node.inputs[0], node.inputs[1]
    attrs = dict(node.attrs, shape=tuple(x.shape))
    return (apply(_nll_loss_backward, (g, target) + tuple(node.inputs[2:]), attrs), None) + \
        (None,) * (len(node.inputs) - 2)


@register("nll_loss_backward", saves=(1,))
def _nll_loss_backward(xp, g, target, *w, reduction, shape, ignore_index=-100):
    tc, wt, _ = _picked(target, ignore_index, w[0] if w else None, g.dtype, True)
    total = wt.sum()
    if reduction == "mean" and total:  # all ignored: the loss is nan, the gradient 0
        wt /= g.dtype.type(total)
    out = np.zeros(shape, g.dtype)
    np.put_along_axis(out, tc[:, None], (-wt * g)[:, None], axis=1)
    return out


@_nll_loss_backward.def_backward
def _(node, gg):
    # the map g -> gx is linear and its transpose is nll_loss itself
    attrs = {k: v for k, v in node.attrs.items() if k != "shape"}
    grad = apply(_nll_loss, (gg, node.inputs[1]) + tuple(node.inputs[2:]), attrs)
    return (grad,) + (None,) * (len(node.inputs) - 1)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` ``(N, C, d1...)`` at class
    indices ``target`` ``(N, d1...)``; ``weight``/``ignore_index`` as in cross_entropy."""
    reduction = _reduction("nll_loss", reduction, size_average, reduce)
    _check_float("nll_loss", "input", input)
    if not isinstance(target, Tensor):
        raise TypeError(f"nll_loss: target must be a Tensor, got {type(target).__name__}")
    x, t, unbatched = _unbatched("nll_loss", input, target, False)
    _check_class_targets("nll_loss", x, t, weight, ignore_index)
    attrs = {"reduction": reduction, "ignore_index": int(ignore_index)}
    ins = (x, t) if weight is None else (x, t, weight.to(x.dtype))
    out = apply(_nll_loss, ins, attrs)
    return out.reshape(()) if unbatched and reduction == "none" else out


# ----- regression losses ------------------------------------------------------------------------


def _pair(op, input, target, weight=None):
    _check_float(op, "input", input)
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: target must be a Tensor, got {type(target).__name__}")
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"{op}: using a target size {tuple(target.shape)} that is different "
                      f"to the input size {tuple(input.shape)}; this will likely lead to "
                      f"incorrect results due to broadcasting. Please ensure they have the "
                      f"same size.", stacklevel=3)
        try:
            np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise ValueError(f"{op}: the target shape {tuple(target.shape)} can't be broadcast "
                             f"to the input shape {tuple(input.shape)}") from None
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weights and input must have the same size, got weight "
                         f"{tuple(weight.shape)} and input {tuple(input.shape)}")


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Mean squared error ``(x - y)^2``; with ``weight``, 'mean' divides by ``weight.sum()``."""
    reduction = _reduction("mse_loss", reduction, size_average, reduce)
    _pair("mse_loss", input, target, weight)
    d = input - target
    loss = d * d
    if weight is None:
        return _reduce(loss, reduction)
    loss = loss * weight
    return loss.sum() / weight.sum() if reduction == "mean" else _reduce(loss, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """Mean absolute error ``|x - y|``; with ``weight``, 'mean' divides by ``weight.sum()``."""
    reduction = _reduction("l1_loss", reduction, size_average, reduce)
    _pair("l1_loss", input, target, weight)
    loss = (input - target).abs()
    if weight is None:
        return _reduce(loss, reduction)
    loss = loss * weight
    return loss.sum() / weight.sum() if reduction == "mean" else _reduce(loss, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``beta=0``: L1)."""
    reduction = _reduction("smooth_l1_loss", reduction, size_average, reduce)
    _pair("smooth_l1_loss", input, target)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    z = (input - target).abs()
    if beta == 0:
        return _reduce(z, reduction)
    from .comparison import clamp, where
    quad = clamp(z, max=beta)  # keeps the unused branch's gradient finite and correct
    loss = where(z < beta, 0.5 * quad * quad / beta, z - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    reduction = _reduction("huber_loss", reduction)
    _pair("huber_loss", input, target, weight)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    from .comparison import clamp, where
    z = (input - target).abs()
    quad = clamp(z, max=delta)
    loss = where(z < delta, 0.5 * quad * quad, delta * (z - 0.5 * delta))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# ----- binary cross-entropy ---------------------------------------------------------------------


@register("binary_cross_entropy")
def _binary_cross_entropy(xp, x, y):
    # PyTorch clamps each log at -100 so that x = 0 or 1 gives a finite loss
    with np.errstate(divide="ignore"):
        lx = np.maximum(np.log(x), -100)
        l1x = np.maximum(np.log1p(-x), -100)
    return -(y * lx + (1 - y) * l1x)


@_binary_cross_entropy.def_backward
def _(node, g):
    x, y = node.inputs
    from .comparison import clamp
    gx = gy = None
    if x.requires_grad:  # PyTorch's formula: (x - y) / max(x (1 - x), 1e-12)
        gx = g * (x - y) / clamp(x * (1 - x), min=1e-12)
    if y.requires_grad:
        gy = g * (clamp(x.log(), min=-100) - clamp((-x).log1p(), min=-100)).neg()
    return gx, gy


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``-w (y log x + (1 - y) log(1 - x))`` for probabilities ``x`` in [0, 1]."""
    reduction = _reduction("binary_cross_entropy", reduction, size_average, reduce)
    _check_float("binary_cross_entropy", "input", input)
    _check_float("binary_cross_entropy", "target", target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy: using a target size "
                         f"{tuple(target.shape)} that is different to the input size "
                         f"{tuple(input.shape)} is not supported; please ensure they have "
                         f"the same size")
    xd = input._data
    if xd.size and not (xd.min() >= 0 and xd.max() <= 1):
        raise ValueError(f"binary_cross_entropy: all elements of input should be between 0 "
                         f"and 1 (got values in [{float(np.nanmin(xd))}, "
                         f"{float(np.nanmax(xd))}]); for logits use "
                         f"binary_cross_entropy_with_logits")
    loss = apply(_binary_cross_entropy, (input, target.to(input.dtype)))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable formula:
    ``(1 - y) softplus(x) + pos_weight * y * softplus(-x)`` (two non-negative terms, so no
    cancellation even where the loss is tiny)."""
    reduction = _reduction("binary_cross_entropy_with_logits", reduction, size_average,
                           reduce)
    _check_float("binary_cross_entropy_with_logits", "input", input)
    _check_float("binary_cross_entropy_with_logits", "target", target)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"binary_cross_entropy_with_logits: target size "
                         f"{tuple(target.shape)} must be the same as input size "
                         f"{tuple(input.shape)}")
    from .activation import softplus
    # threshold=inf: the exact log1p(exp(-|x|)) + max(x, 0), no linear cut-off
    inf = float("inf")
    pos = target * softplus(-input, threshold=inf)
    if pos_weight is not None:
        try:
            np.broadcast_shapes(pos_weight.shape, input.shape)
        except ValueError:
            raise ValueError(f"binary_cross_entropy_with_logits: pos_weight of shape "
                             f"{tuple(pos_weight.shape)} can't be broadcast to the input "
                             f"shape {tuple(input.shape)} (one weight per class, last "
                             f"dim)") from None
        pos = pos * pos_weight
    loss = (1 - target) * softplus(input, threshold=inf) + pos
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# ----- distribution and ranking losses ----------------------------------------------------------


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """``target * (log target - input)`` with ``input`` log-probabilities; 'batchmean'
    divides the sum by the batch size (the true KL divergence)."""
    reduction = _reduction("kl_div", reduction, size_average, reduce,
                           allowed=_REDUCTIONS + ("batchmean",))
    _check_float("kl_div", "input", input)
    _check_float("kl_div", "target", target)
    if reduction == "mean" and size_average is None and reduce is None:
        warnings.warn("kl_div: reduction 'mean' divides the total loss by both the batch size "
                      "and the support size; 'batchmean' divides only by the batch size and "
                      "aligns with the KL math definition", stacklevel=2)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        from .comparison import where
        pos = target > 0
        # xlogy(t, t): 0 where t == 0; the log sees 1 there so no inf leaks into gradients
        tlogt = target * where(pos, target, 1.0).log()
        loss = tlogt - target * input
    if reduction == "batchmean":
        s = loss.sum()
        return s / input.shape[0] if input.ndim else s
    return _reduce(loss, reduction)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``max(0, -y (x1 - x2) + margin)`` with ``y`` in {1, -1}."""
    reduction = _reduction("margin_ranking_loss", reduction, size_average, reduce)
    if not (input1.ndim == input2.ndim == target.ndim):
        raise RuntimeError(f"margin_ranking_loss: all input tensors should have the same "
                           f"number of dims, got input1 {tuple(input1.shape)}, input2 "
                           f"{tuple(input2.shape)}, target {tuple(target.shape)}")
    from .comparison import clamp
    return _reduce(clamp(-target * (input1 - input2) + margin, min=0), reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``1 - cos(x1, x2)`` for ``y = 1``, ``max(0, cos(x1, x2) - margin)`` for ``y = -1``."""
    reduction = _reduction("cosine_embedding_loss", reduction, size_average, reduce)
    if input1.ndim not in (1, 2) or tuple(input1.shape) != tuple(input2.shape):
        raise RuntimeError(f"cosine_embedding_loss: expected 1-d or 2-d inputs of the same "
                           f"shape, got {tuple(input1.shape)} and {tuple(input2.shape)}")
    if target.ndim != input1.ndim - 1 or (target.ndim and target.shape[0] !=
                                          input1.shape[0]):
        raise RuntimeError(f"cosine_embedding_loss: expected a target of shape "
                           f"{tuple(input1.shape[:-1])} for inputs of shape "
                           f"{tuple(input1.shape)}, got {tuple(target.shape)}")
    from .comparison import clamp, where
    d = input1.ndim - 1
    eps = 1e-12  # PyTorch's EPSILON in the squared norms
    prod = (input1 * input2).sum(d)
    denom = (((input1 * input1).sum(d) + eps) * ((input2 * input2).sum(d) + eps)).sqrt()
    cos = prod / denom
    zero = cos * 0
    loss = where(target == 1, 1 - cos, zero) + \
        where(target == -1, clamp(cos - margin, min=0), zero)
    return _reduce(loss, reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``x`` where ``y = 1`` and ``max(0, margin - x)`` where ``y = -1``."""
    reduction = _reduction("hinge_embedding_loss", reduction, size_average, reduce)
    from .comparison import clamp, where
    zero = input * 0
    loss = where(target != 1, clamp(margin - input, min=0), zero) + \
        where(target != -1, input, zero)
    return _reduce(loss, reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """``log(1 + exp(-y x))`` with ``y`` in {1, -1}."""
    reduction = _reduction("soft_margin_loss", reduction, size_average, reduce)
    _pair("soft_margin_loss", input, target)
    from .activation import softplus
    return _reduce(softplus(-target * input, threshold=float("inf")), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """Per sample, the class-mean of ``-(y log sigmoid(x) + (1 - y) log sigmoid(-x))``."""
    reduction = _reduction("multilabel_soft_margin_loss", reduction, size_average, reduce)
    from .activation import softplus
    inf = float("inf")
    loss = target * softplus(-input, threshold=inf) + (1 - target) * softplus(input,
                                                                                threshold=inf)
    if weight is not None:
        loss = loss * weight
    loss = loss.mean(input.ndim - 1)
    return _reduce(loss, reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """Poisson negative log-likelihood: ``exp(x) - y x`` (``log_input``) or
    ``x - y log(x + eps)``; ``full`` adds Stirling's term for ``y > 1``."""
    reduction = _reduction("poisson_nll_loss", reduction, size_average, reduce)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        from .comparison import where
        t = target.detach()
        safe = where(t > 1, t, 1.0)
        stirling = safe * safe.log() - safe + 0.5 * (2 * np.pi * safe).log()
        loss = loss + where(t > 1, stirling, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """``0.5 (log max(var, eps) + (x - y)^2 / max(var, eps))`` (+ ``0.5 log 2 pi`` if full)."""
    reduction = _reduction("gaussian_nll_loss", reduction)
    var = _as_tensor_like(var, input)
    if var.ndim and var.shape != input.shape:
        if var.shape == input.shape[:-1] or (var.shape[:-1] == input.shape[:-1] and
                                             var.shape[-1] == 1):
            var = var.reshape(tuple(input.shape[:-1]) + (1,))
        else:
            raise ValueError(f"gaussian_nll_loss: var of shape {tuple(var.shape)} is "
                             f"incompatible with input of shape {tuple(input.shape)}")
    if bool((var._data < 0).any()):
        raise ValueError("gaussian_nll_loss: var has negative entries")
    from .comparison import clamp
    # PyTorch clamps a no-grad copy: the value is clamped, the gradient passes unchanged
    vd = var.detach()
    v = var + (clamp(vd, min=eps) - vd)
    d = input - target
    loss = 0.5 * (v.log() + d * d / v)
    if full:
        loss = loss + 0.5 * float(np.log(2 * np.pi))
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """``max(0, d(a, p) - d(a, n) + margin)`` with ``d`` the p-norm distance."""
    reduction = _reduction("triplet_margin_loss", reduction, size_average, reduce)
    if not (anchor.ndim == positive.ndim == negative.ndim):
        raise RuntimeError(f"triplet_margin_loss: anchor, positive and negative must have "
                           f"the same number of dims, got {tuple(anchor.shape)}, "
                           f"{tuple(positive.shape)}, {tuple(negative.shape)}")
    from .comparison import clamp
    from .arithmetic import minimum
    from .reduction import norm

    def dist(a, b):
        return norm(a - b + eps, p, a.ndim - 1)
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        d_neg = minimum(d_neg, dist(positive, negative))
    return _reduce(clamp(d_pos - d_neg + margin, min=0), reduction)


# ----- CTC --------------------------------------------------------------------------------------


def _ctc_padded(targets, target_lengths, n):
    """Targets as an ``(N, S)`` array, whether given padded or concatenated (1-d)."""
    t = np.asarray(targets)
    if t.ndim == 2:
        return t
    out = np.zeros((n, int(target_lengths.max()) if n else 0), np.int64)
    start = 0
    for i, length in enumerate(target_lengths):  # one slice per sample, no per-symbol work
        out[i, :length] = t[start:start + length]
        start += length
    return out


def _ctc_forward_backward(lp, tg, in_len, tg_len, blank):
    """Per-sample ``-log p(target | lp)`` and its gradient w.r.t. ``lp`` (T, N, C), by the
    alpha/beta recursions of Graves et al. (2006) in log space, vectorised over the batch
    and the extended label positions (one loop over time)."""
    t_max, n, c = lp.shape
    s_max = tg.shape[1]
    length = 2 * s_max + 1
    ext = np.full((n, length), blank, np.int64)  # blank, l1, blank, l2, ..., blank
    ext[:, 1::2] = tg
    ext_len = 2 * tg_len + 1
    pos = np.arange(length)
    valid = pos[None, :] < ext_len[:, None]
    skip = np.zeros((n, length), bool)  # may jump over the blank between distinct labels
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    emit = lp[:, np.arange(n)[:, None], ext]  # (T, N, L)
    emit = np.where(valid[None], emit, -np.inf)
    neg = np.full((n, length), -np.inf, lp.dtype)
    skip_next = np.zeros_like(skip)  # the mirror of `skip` for the backward recursion
    skip_next[:, :-2] = skip[:, 2:]

    def logsum3(a, b, c):
        with np.errstate(invalid="ignore"):  # -inf - -inf inside logaddexp
            return np.logaddexp(np.logaddexp(a, b), c)

    def from_left(prev):  # paths into s come from s, s-1 and (if allowed) s-2
        a1 = np.concatenate([neg[:, :1], prev[:, :-1]], 1)
        a2 = np.where(skip, np.concatenate([neg[:, :2], prev[:, :-2]], 1), -np.inf)
        return logsum3(prev, a1, a2)

    def from_right(prev):  # paths out of s go to s, s+1 and (if allowed) s+2
        b1 = np.concatenate([prev[:, 1:], neg[:, :1]], 1)
        b2 = np.where(skip_next, np.concatenate([prev[:, 2:], neg[:, :2]], 1), -np.inf)
        return logsum3(prev, b1, b2)

    alpha = np.empty_like(emit)
    a0 = neg.copy()
    a0[:, 0] = emit[0, :, 0]
    a0[:, 1] = emit[0, :, 1]  # -inf already where the target is empty (masked emission)
    alpha[0] = a0
    for t in range(1, t_max):
        alpha[t] = from_left(alpha[t - 1]) + emit[t]
    last = in_len - 1
    rows = np.arange(n)
    end1 = alpha[last, rows, ext_len - 1]
    end2 = np.where(ext_len > 1, alpha[last, rows, np.maximum(ext_len - 2, 0)], -np.inf)
    with np.errstate(invalid="ignore"):
        nll = -np.logaddexp(end1, end2)
    beta = np.full_like(emit, -np.inf)
    b_init = neg.copy()  # a path ends on the last label or the blank after it
    b_init[rows, ext_len - 1] = emit[last, rows, ext_len - 1]
    two = ext_len > 1
    b_init[rows[two], ext_len[two] - 2] = emit[last[two], rows[two], ext_len[two] - 2]
    for t in range(t_max - 1, -1, -1):
        rec = from_right(beta[t + 1]) + emit[t] if t + 1 < t_max else neg
        beta[t] = np.where((t == last)[:, None], b_init,
                           np.where((t < last)[:, None], rec, -np.inf))
    # d nll / d lp[t, n, c] = -sum_{s: ext_s = c} exp(alpha + beta - emit + nll)
    with np.errstate(invalid="ignore", over="ignore"):
        post = np.exp(alpha + beta - emit + nll[None, :, None])
    post = np.where(np.isfinite(post), post, 0.0)
    flat = ((np.arange(t_max)[:, None, None] * n + rows[None, :, None]) * c + ext[None])
    grad = -np.bincount(flat.ravel(), weights=post.ravel(), minlength=t_max * n * c)
    return nll, grad.reshape(t_max, n, c).astype(lp.dtype, copy=False)


@register("ctc_loss", saves=(), extra=True)
def _ctc_loss(xp, lp, tg, in_len, tg_len, blank=0, reduction="mean", zero_infinity=False):
    dt = np.dtype(np.float32) if lp.dtype.itemsize < 4 else lp.dtype
    nll, grad = _ctc_forward_backward(lp.astype(dt, copy=False), tg, in_len, tg_len, blank)
    if zero_infinity:
        bad = ~np.isfinite(nll)
        nll[bad] = 0.0
        grad[:, bad] = 0.0
    if reduction == "none":
        out = nll
    elif reduction == "sum":
        out = nll.sum()
    else:
        out = (nll / np.maximum(tg_len, 1)).mean()
    return np.asarray(out, lp.dtype), grad.astype(lp.dtype, copy=False)


@_ctc_loss.def_backward
def _(node, g):
    from .. import _state
    if _state.grad_enabled:
        raise RuntimeError("ctc_loss: double backward (create_graph=True through ctc_loss) is "
                           "not supported")
    lp, _, _, tg_len = node.inputs
    a = node.attrs
    grad = Tensor._wrap(node.saved, lp._dev)
    red = a.get("reduction", "mean")
    if red == "none":
        scale = g
    elif red == "sum":
        scale = g.reshape(1)
    else:  # mean of nll / target_length
        n = lp.shape[1]
        per = 1.0 / (np.maximum(tg_len._data, 1) * n)
        scale = g * Tensor._wrap(per.astype(lp._data.dtype), lp._dev)
    return (grad * scale.reshape(1, -1, 1), None, None, None)


def ctc_loss(log_probs: Tensor, targets, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """Connectionist Temporal Classification loss of ``log_probs`` ``(T, N, C)`` (or
    unbatched ``(T, C)``) against ``targets`` given padded ``(N, S)`` or concatenated.

    'mean' divides each sample's loss by its target length, then averages over the batch.
    The gradient is the exact derivative w.r.t. ``log_probs`` (PyTorch's differs by a term
    that the usual upstream log_softmax cancels).
    """
    reduction = _reduction("ctc_loss", reduction)
    _check_float("ctc_loss", "log_probs", log_probs)
    unbatched = log_probs.ndim == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    if lp.ndim != 3:
        raise ValueError(f"ctc_loss: expected log_probs of shape (T, N, C) or (T, C), got "
                         f"{tuple(log_probs.shape)}")
    t_max, n, c = lp.shape

    def ints(v, name):
        a = np.asarray(v._data if isinstance(v, Tensor) else v)
        if a.dtype.kind not in "iu":
            raise TypeError(f"ctc_loss: {name} must be integers, got dtype {a.dtype}")
        return a.astype(np.int64).reshape(-1)
    in_len, tg_len = ints(input_lengths, "input_lengths"), ints(target_lengths, "target_lengths")
    tgt = targets._data if isinstance(targets, Tensor) else np.asarray(targets)
    if tgt.dtype.kind not in "iu":
        raise TypeError(f"ctc_loss: targets must be integer class indices, got {tgt.dtype}")
    if unbatched and tgt.ndim == 1 and tg_len.size == 1 and tgt.size >= tg_len[0]:
        tgt = tgt[None]
    if in_len.shape != (n,) or tg_len.shape != (n,):
        raise ValueError(f"ctc_loss: expected input_lengths and target_lengths of {n} "
                         f"entries (batch size of log_probs {tuple(log_probs.shape)}), got "
                         f"{in_len.size} and {tg_len.size}")
    if (in_len < 1).any() or (in_len > t_max).any():
        raise ValueError(f"ctc_loss: input_lengths must be in 1..{t_max} (the time dim of "
                         f"log_probs), got {in_len.tolist()}")
    if (tg_len < 0).any():
        raise ValueError(f"ctc_loss: target_lengths must be >= 0, got {tg_len.tolist()}")
    if tgt.ndim == 2:
        if tgt.shape[0] != n or (tg_len > tgt.shape[1]).any():
            raise ValueError(f"ctc_loss: padded targets of shape {tuple(tgt.shape)} do not "
                             f"fit batch size {n} and target_lengths {tg_len.tolist()}")
    elif tgt.ndim != 1 or tgt.size != tg_len.sum():
        raise ValueError(f"ctc_loss: concatenated targets have {tgt.size} entries but "
                         f"target_lengths sum to {int(tg_len.sum())}")
    tg = _ctc_padded(tgt, tg_len, n).astype(np.int64)
    used = np.arange(tg.shape[1])[None, :] < tg_len[:, None]
    if used.any():
        vals = tg[used]
        bad = vals[(vals < 0) | (vals >= c) | (vals == blank)]
        if bad.size:
            raise IndexError(f"ctc_loss: target {int(bad[0])} is not a valid label for {c} "
                             f"classes with blank={blank}")
    tg = np.where(used, tg, blank)
    dev = log_probs._dev
    ins = (lp, Tensor._wrap(tg, dev), Tensor._wrap(in_len, dev), Tensor._wrap(tg_len, dev))
    out = apply(_ctc_loss, ins, {"blank": int(blank), "reduction": reduction,
                                 "zero_infinity": bool(zero_infinity)})[0]
    return out.reshape(()) if unbatched and reduction == "none" else out
