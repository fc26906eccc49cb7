"""Reductions with ``dim``/``keepdim``: sum, mean, prod, max/min, argmax, var/std, logsumexp,
cumsum/cumprod, norm, all/any."""
from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from .. import dtypes as _dt
from ..errors import check_dim, check_dims
from ..tensor import Tensor
from .registry import apply, register

values_indices = namedtuple("values_indices", ["values", "indices"])
min_max = namedtuple("aminmax", ["min", "max"])


def _axes(op, x, dim):
    """Normalise ``dim`` (None, int, or a sequence) to a tuple of axes (None = all)."""
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        if len(dim) == 0:
            return None
        return check_dims(op, tuple(dim), x.ndim)
    return (check_dim(op, dim, x.ndim),)


def _expand_back(g: Tensor, in_shape, axes, keepdim, scale=None):
    """Broadcast a reduced gradient back to the input's shape."""
    if not keepdim and axes is not None:
        shape = list(in_shape)
        for a in axes:
            shape[a] = 1
        g = g.reshape(tuple(shape))
    if g._data.shape == in_shape and scale is None:
        return g
    attrs = {"shape": tuple(in_shape)}
    if scale is not None:
        attrs["scale"] = scale
    return apply(_broadcast_grad, (g,), attrs)


# A reduction's gradient spread back over the input: a filled array rather than a
# broadcast view, because NumPy's broadcast_to costs more than filling small arrays and the
# gradient must be writeable where it lands in a leaf's .grad.
@register("broadcast_grad", saves=())
def _broadcast_grad(xp, g, shape, scale=None):
    out = xp.empty(shape, g.dtype)
    out[...] = g if scale is None else g * g.dtype.type(scale)
    return out


@_broadcast_grad.def_backward
def _(node, gg):
    from .promotion import sum_to
    r = sum_to(gg, node.inputs[0].shape)
    scale = node.attrs.get("scale")
    return (r if scale is None else r * scale,)


# ----- sum / mean / prod --------------------------------------------------------------------


@register("sum", saves=())
def _sum(xp, x, axes=None, keepdim=False):
    dt = np.int64 if x.dtype.kind in "biu" else None
    return x.sum(axis=axes, keepdims=keepdim, dtype=dt)


@_sum.def_backward
def _(node, g):
    x = node.inputs[0]
    a = node.attrs or {}
    return (_expand_back(g, x.shape, a.get("axes"), a.get("keepdim", False)),)


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(dtype)
    axes = _axes("sum", input, dim)
    if axes is None and not keepdim:
        return apply(_sum, (input,))
    return apply(_sum, (input,), {"axes": axes, "keepdim": keepdim})


@register("mean", saves=())
def _mean(xp, x, axes=None, keepdim=False):
    if x.size == 0:  # the mean of nothing is NaN, silently (NumPy would warn; PyTorch doesn't)
        return x.sum(axis=axes, keepdims=keepdim) * float("nan")
    if x.dtype == np.float32 or x.dtype == np.float64:
        # add.reduce skips ndarray.mean's Python-level wrapper (a third of a small mean)
        n = x.size if axes is None else int(np.prod([x.shape[i] for i in axes]))
        return xp.add.reduce(x, axis=axes, keepdims=keepdim) / x.dtype.type(n)
    return x.mean(axis=axes, keepdims=keepdim)


@_mean.def_backward
def _(node, g):
    x = node.inputs[0]
    a = node.attrs or {}
    axes = a.get("axes")
    n = x._data.size if axes is None else int(np.prod([x.shape[i] for i in axes]))
    scale = 1.0 / n if n else float("nan")  # (n == 0: the gradient is empty anyway)
    return (_expand_back(g, x.shape, axes, a.get("keepdim", False), scale=scale),)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(dtype)
    if not input.is_floating_point():
        raise RuntimeError(f"mean: could not infer output dtype: input dtype must be a "
                           f"floating point dtype, got {input.dtype}")
    axes = _axes("mean", input, dim)
    if axes is None and not keepdim:
        return apply(_mean, (input,))
    return apply(_mean, (input,), {"axes": axes, "keepdim": keepdim})


def nansum(input: Tensor, dim=None, keepdim=False) -> Tensor:
    from .comparison import where
    return sum(where(input.isnan(), 0.0, input), dim, keepdim)


def nanmean(input: Tensor, dim=None, keepdim=False) -> Tensor:
    keep = input.isnan().logical_not()
    return nansum(input, dim, keepdim) / sum(keep, dim, keepdim)


@register("prod")
def _prod(xp, x, axis=None, keepdim=False):
    dt = np.int64 if x.dtype.kind in "biu" else None
    return x.prod(axis=axis, keepdims=keepdim, dtype=dt)


@_prod.def_backward
def _(node, g):
    x = node.inputs[0]
    a = node.attrs or {}
    axis = a.get("axis")
    keepdim = a.get("keepdim", False)
    if axis is None:
        flat = x.reshape(-1)
        return ((_prod_others(flat, 0) * g.reshape(())).reshape(x.shape),)
    gk = _expand_back(g, x.shape, (axis,), keepdim)
    return (gk * _prod_others(x, axis),)


def _prod_others(x: Tensor, dim: int) -> Tensor:
    """prod of all elements along ``dim`` except the one at each position (zeros welcome)."""
    from .shape import cat, narrow
    n = x.shape[dim]
    if n == 0:
        return x
    ones = x.new_ones(x.shape[:dim] + (1,) + x.shape[dim + 1:])
    left = cat([ones, narrow(x, dim, 0, n - 1)], dim).cumprod(dim)
    right = cat([narrow(x, dim, 1, n - 1), ones], dim).flip(dim).cumprod(dim).flip(dim)
    return left * right


def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        return apply(_prod, (input,))
    return apply(_prod, (input,), {"axis": check_dim("prod", dim, input.ndim),
                                   "keepdim": keepdim})


# ----- max / min ----------------------------------------------------------------------------


def _even_split_backward(node, g):
    # Ties share the gradient evenly (PyTorch's amax/amin and full max/min rule).
    x = node.inputs[0]
    a = node.attrs or {}
    axes, keepdim = a.get("axes"), a.get("keepdim", False)
    out = _expand_back(node.output().detach(), x.shape, axes, keepdim)
    mask = (x.detach() == out).type(g.dtype)
    count = _expand_back(mask.sum(axes, keepdim=True) if axes is not None else mask.sum(),
                         x.shape, axes, True)
    return (_expand_back(g, x.shape, axes, keepdim) * mask / count,)


@register("amax", saves=(0,), saves_output=True)
def _amax(xp, x, axes=None, keepdim=False):
    return x.max(axis=axes, keepdims=keepdim)


@register("amin", saves=(0,), saves_output=True)
def _amin(xp, x, axes=None, keepdim=False):
    return x.min(axis=axes, keepdims=keepdim)


_amax.def_backward(_even_split_backward)
_amin.def_backward(_even_split_backward)


def _check_nonempty(op, x, axes):
    if x._data.size == 0:
        if axes is None or builtins.any(x.shape[a] == 0 for a in axes):
            raise IndexError(f"{op}: expected a non-empty tensor along the reduced dims, got "
                             f"shape {tuple(x.shape)}")


def amax(input: Tensor, dim=None, keepdim=False) -> Tensor:
    axes = _axes("amax", input, dim)
    _check_nonempty("amax", input, axes)
    return apply(_amax, (input,), {"axes": axes, "keepdim": keepdim})


def amin(input: Tensor, dim=None, keepdim=False) -> Tensor:
    axes = _axes("amin", input, dim)
    _check_nonempty("amin", input, axes)
    return apply(_amin, (input,), {"axes": axes, "keepdim": keepdim})


@register("max_dim", saves=(), extra=True)
def _max_dim(xp, x, dim, keepdim=False):
    idx = x.argmax(axis=dim, keepdims=True).astype(np.int64, copy=False)
    vals = xp.take_along_axis(x, idx, axis=dim)
    if not keepdim:
        idx, vals = idx.squeeze(dim), vals.squeeze(dim)
    return vals, idx


@register("min_dim", saves=(), extra=True)
def _min_dim(xp, x, dim, keepdim=False):
    idx = x.argmin(axis=dim, keepdims=True).astype(np.int64, copy=False)
    vals = xp.take_along_axis(x, idx, axis=dim)
    if not keepdim:
        idx, vals = idx.squeeze(dim), vals.squeeze(dim)
    return vals, idx


def _index_reduction_backward(node, g):
    # The gradient goes to the one element that was picked (indices kept on the node).
    from .indexing import _scatter_into_zeros
    x = node.inputs[0]
    dim, keepdim = node.attrs["dim"], node.attrs.get("keepdim", False)
    idx = Tensor._wrap(node.saved, x._dev)
    if not keepdim:
        g = g.unsqueeze(dim)
        idx = idx.unsqueeze(dim)
    return (_scatter_into_zeros(g, idx, dim, x.shape),)


_max_dim.def_backward(_index_reduction_backward)
_min_dim.def_backward(_index_reduction_backward)


def _max_min(op_name, full, by_dim, input, dim, keepdim, other):
    if other is not None:  # max(a, b) is the elementwise maximum
        from .arithmetic import maximum, minimum
        return (maximum if op_name == "max" else minimum)(input, other)
    if isinstance(dim, Tensor):
        from .arithmetic import maximum, minimum
        return (maximum if op_name == "max" else minimum)(input, dim)
    if dim is None:
        _check_nonempty(op_name, input, None)
        return apply(full, (input,), {"axes": None, "keepdim": False})
    d = check_dim(op_name, dim, input.ndim)
    _check_nonempty(op_name, input, (d,))
    vals, idx = apply(by_dim, (input,), {"dim": d, "keepdim": keepdim})
    return values_indices(vals, Tensor._wrap(idx, input._dev))


def max(input: Tensor, dim=None, keepdim: bool = False, *, other=None):
    """``max(x)`` is the largest value; ``max(x, dim)`` returns ``(values, indices)``."""
    return _max_min("max", _amax, _max_dim, input, dim, keepdim, other)


def min(input: Tensor, dim=None, keepdim: bool = False, *, other=None):
    return _max_min("min", _amin, _min_dim, input, dim, keepdim, other)


def _arg_forward(fn):
    def forward(xp, x, dim=None, keepdim=False):
        if dim is None:
            r = fn(x.reshape(-1), axis=0)
            return xp.asarray(r, dtype=np.int64).reshape((1,) * x.ndim if keepdim else ())
        return xp.asarray(fn(x, axis=dim, keepdims=keepdim), dtype=np.int64)
    return forward


_argmax = register("argmax")(_arg_forward(np.argmax))
_argmin = register("argmin")(_arg_forward(np.argmin))


def _arg(op, o, input, dim, keepdim):
    if dim is None:
        _check_nonempty(op, input, None)
        return apply(o, (input,), {"keepdim": keepdim} if keepdim else None)
    d = check_dim(op, dim, input.ndim)
    if input.ndim == 0:
        return apply(o, (input,))
    _check_nonempty(op, input, (d,))
    return apply(o, (input,), {"dim": d, "keepdim": keepdim})


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _arg("argmax", _argmax, input, dim, keepdim)


def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _arg("argmin", _argmin, input, dim, keepdim)


# ----- statistics ---------------------------------------------------------------------------


def var(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """Variance with Bessel's ``correction`` (default 1; ``unbiased=False`` means 0)."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    if not input.is_floating_point():
        raise RuntimeError(f"var: expected a floating point tensor, got {input.dtype}")
    axes = _axes("var", input, dim)
    n = input._data.size if axes is None else int(np.prod([input.shape[a] for a in axes]))
    mu = mean(input, dim, keepdim=True)
    d = input - mu
    return sum(d * d, dim, keepdim) / builtins.max(n - correction, 0)


def std(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    return _root(var(input, dim, unbiased, keepdim, correction=correction), 2)


def _root(s: Tensor, p) -> Tensor:
    """``s ** (1/p)`` whose gradient at ``s == 0`` is 0, as PyTorch's std and norm give, not
    the inf * 0 = NaN of the chain rule: the zero branch takes ``s * 0`` and the root only
    ever sees positive numbers."""
    from .comparison import where
    zero = s == 0
    safe = where(zero, 1.0, s)
    return where(zero, s * 0, safe.sqrt() if p == 2 else safe ** (1.0 / p))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


@register("logsumexp", saves=(0,), saves_output=True)
def _logsumexp(xp, x, axes, keepdim=False):
    # max has no identity: over an empty dim use 0 (the sum of nothing, giving -inf)
    m = x.max(axis=axes, keepdims=True) if x.size else x.sum(axis=axes, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)  # all -inf rows give -inf, not NaN
    r = xp.log(xp.exp(x - m).sum(axis=axes, keepdims=True)) + m
    return r if keepdim else r.squeeze(axis=axes)


@_logsumexp.def_backward
def _(node, g):
    x = node.inputs[0]
    axes, keepdim = node.attrs["axes"], node.attrs.get("keepdim", False)
    out = _expand_back(node.output(), x.shape, axes, keepdim)
    return (_expand_back(g, x.shape, axes, keepdim) * (x - out).exp(),)


def logsumexp(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    from .unary import _float_input
    x = _float_input(input)
    axes = _axes("logsumexp", x, dim)
    if axes is None:
        axes = tuple(range(x.ndim))
    return apply(_logsumexp, (x,), {"axes": axes, "keepdim": keepdim})


# ----- scans --------------------------------------------------------------------------------


@register("cumsum", saves=())
def _cumsum(xp, x, dim):
    dt = np.int64 if x.dtype.kind in "biu" else None
    return xp.cumsum(x, axis=dim, dtype=dt)


@_cumsum.def_backward
def _(node, g):
    d = node.attrs["dim"]
    return (g.flip(d).cumsum(d).flip(d),)


def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(dtype)
    d = check_dim("cumsum", dim, input.ndim)
    if input.ndim == 0:
        return input.clone()
    return apply(_cumsum, (input,), {"dim": d})


@register("cumprod", saves_output=True)
def _cumprod(xp, x, dim):
    dt = np.int64 if x.dtype.kind in "biu" else None
    return xp.cumprod(x, axis=dim, dtype=dt)


@_cumprod.def_backward
def _(node, g):
    x = node.inputs[0]
    d = node.attrs["dim"]
    if not (x._data == 0).any():
        out = node.output()
        return ((g * out).flip(d).cumsum(d).flip(d) / x,)
    # With zeros, out/x is undefined: form prod_{j<=k, j!=i} x_j explicitly (O(n^2)).
    from .comparison import where
    from .creation import eye
    xm = x.movedim(d, -1)
    gm = g.movedim(d, -1)
    n = xm.shape[-1]
    diag = eye(n, dtype=_dt.bool_)
    p = where(diag, 1.0, xm.unsqueeze(-2)).cumprod(-1)   # [..., i, k]
    upper = eye(n, dtype=_dt.bool_).logical_not().triu() | diag
    r = (gm.unsqueeze(-2) * p * upper.type(x.dtype)).sum(-1)
    return (r.movedim(-1, d),)


def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(dtype)
    d = check_dim("cumprod", dim, input.ndim)
    if input.ndim == 0:
        return input.clone()
    return apply(_cumprod, (input,), {"dim": d})


def aminmax(input: Tensor, *, dim=None, keepdim: bool = False):
    """``(amin, amax)`` in one call, as a named tuple ``(min, max)``."""
    return min_max(amin(input, dim, keepdim), amax(input, dim, keepdim))


def dist(input: Tensor, other, p: float = 2) -> Tensor:
    """The p-norm of ``input - other`` over all elements."""
    return norm(input - other, p)


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    """``n``-th forward difference along ``dim`` (``x[i+1] - x[i]``; xor for bool), after
    concatenating ``prepend``/``append`` along ``dim``."""
    if input.ndim == 0:
        raise RuntimeError("diff: expects input to be at least one-dimensional")
    d = check_dim("diff", dim, input.ndim)
    if prepend is not None or append is not None:
        from .shape import cat

        def _along(t):
            t = t if isinstance(t, Tensor) else Tensor._wrap(
                _dt.cast_array(t, input._data.dtype), input._dev)
            return t.expand(input.shape[:d] + (1,) + input.shape[d + 1:]) if t.ndim == 0 else t
        parts = ([_along(prepend)] if prepend is not None else []) + [input] + \
            ([_along(append)] if append is not None else [])
        input = cat(parts, d)
    out = input
    for _ in range(n):
        m = out.shape[d]
        if m == 0:
            break
        hi, lo = out.narrow(d, 1, m - 1), out.narrow(d, 0, m - 1)
        out = hi ^ lo if out._data.dtype == np.bool_ else hi - lo
    return out


_bincount = register("bincount")(
    lambda xp, x, w, minlength=0: xp.bincount(x, w, minlength=minlength).astype(w.dtype))
_bincount_unweighted = register("bincount_unweighted")(
    lambda xp, x, minlength=0: xp.bincount(x, minlength=minlength).astype(np.int64))


def bincount(input: Tensor, weights=None, minlength: int = 0) -> Tensor:
    """Count of each value 0..max of a 1-d non-negative integer tensor (sum of ``weights``
    per value when given)."""
    if input.ndim != 1 or input._data.dtype.kind not in "iu":
        raise RuntimeError(f"bincount: expects a 1-d integer tensor, got shape "
                           f"{tuple(input.shape)} and {input.dtype}")
    if input._data.size and input._data.min() < 0:
        raise RuntimeError(f"bincount: input must be non-negative, got minimum "
                           f"{int(input._data.min())}")
    if weights is None:
        return apply(_bincount_unweighted, (input,), {"minlength": minlength})
    if weights.shape != input.shape:
        raise RuntimeError(f"bincount: weights {tuple(weights.shape)} must have the same "
                           f"shape as input {tuple(input.shape)}")
    if not weights.is_floating_point():
        weights = weights.to(_dt.float64)
    return apply(_bincount, (input, weights), {"minlength": minlength})


def _histc_forward(xp, x, bins, min, max):
    if min == max:  # the data range, as PyTorch
        min, max = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if min == max:
        min, max = min - 1, max + 1
    counts, _ = xp.histogram(x, bins=bins, range=(min, max))
    return counts.astype(x.dtype)


_histc = register("histc")(_histc_forward)


def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:
    """Histogram of ``bins`` equal-width bins over [min, max] (the data's range when both
    are 0); values outside are ignored."""
    if not input.is_floating_point():
        raise RuntimeError(f"histc: expects a floating point tensor, got {input.dtype}")
    if max < min:
        raise RuntimeError(f"histc: max ({max}) must be larger than or equal to min ({min})")
    return apply(_histc, (input,), {"bins": bins, "min": float(min), "max": float(max)})


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Vector p-norm over ``dim`` (all elements by default); 'fro' is the 2-norm."""
    if dtype is not None:
        input = input.to(dtype)
    if p in ("fro", 2, 2.0):
        return _root(sum(input * input, dim, keepdim), 2)
    if p in (float("inf"), "inf"):
        return amax(input.abs(), dim, keepdim)
    if p in (float("-inf"), "-inf"):
        return amin(input.abs(), dim, keepdim)
    if p == 0:
        # the count of nonzeros, kept on the graph with a zero gradient (as PyTorch): the
        # branch taken at zeros is input * 0
        from .comparison import where
        return sum(where(input != 0, 1.0, input * 0), dim, keepdim)
    if p == 1:
        return sum(input.abs(), dim, keepdim)
    if isinstance(p, str):
        raise ValueError(f"norm: unsupported p={p!r}; use a number, 'fro', inf or -inf")
    a = input.abs()
    if p < 1:  # |x|^p has an infinite slope at 0, where PyTorch takes the gradient as 0
        from .comparison import where
        zero = a == 0
        return _root(sum(where(zero, a * 0, where(zero, 1.0, a) ** p), dim, keepdim), p)
    return _root(sum(a ** p, dim, keepdim), p)


# ----- boolean reductions -------------------------------------------------------------------


_all = register("all")(lambda xp, x, axes=None, keepdim=False:
                      xp.asarray(x.all(axis=axes, keepdims=keepdim), dtype=np.bool_))
_any = register("any")(lambda xp, x, axes=None, keepdim=False:
                      xp.asarray(x.any(axis=axes, keepdims=keepdim), dtype=np.bool_))
_count_nonzero = register("count_nonzero")(
    lambda xp, x, axes=None: xp.asarray(xp.count_nonzero(x, axis=axes), dtype=np.int64))


def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return apply(_all, (input,), {"axes": _axes("all", input, dim), "keepdim": keepdim})


def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return apply(_any, (input,), {"axes": _axes("any", input, dim), "keepdim": keepdim})


def count_nonzero(input: Tensor, dim=None) -> Tensor:
    return apply(_count_nonzero, (input,), {"axes": _axes("count_nonzero", input, dim)})
