"""Shape ops: reshape/view, permute/transpose, squeeze/unsqueeze, expand, flatten, cat/stack,
split/chunk/unbind, flip, roll, repeat/tile, triu/tril, pad, movedim."""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..errors import check_dim, check_dims
from .. import _state
from ..tensor import Tensor
from .registry import apply, register


def _sizes(args) -> tuple:
    """Accept ``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` like PyTorch."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    try:
        return tuple(int(a) for a in args)
    except TypeError:
        raise TypeError(f"expected a sequence of ints as sizes, got {args!r}") from None


# ----- reshape ------------------------------------------------------------------------------


def _infer_shape(op, shape, numel):
    shape = list(shape)
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1 or builtins.any(s < -1 for s in shape):
        raise RuntimeError(f"{op}: invalid shape {tuple(shape)}: only one dimension can be "
                           f"inferred (-1) and sizes must be non-negative")
    known = math.prod(s for s in shape if s != -1)
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape {tuple(shape)} is invalid for input of size "
                               f"{numel}")
        shape[neg[0]] = numel // known
    elif known != numel:
        raise RuntimeError(f"{op}: shape {tuple(shape)} is invalid for input of size {numel}")
    return tuple(shape)


@register("reshape", saves=(), view=True)
def _reshape(xp, x, shape):
    return x.reshape(shape)


@_reshape.def_backward
def _(node, g):
    return (g.reshape(node.inputs[0].shape),)


def reshape(input: Tensor, *shape) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], tuple):  # a tuple or an ember.Size
        shape = shape[0]
    if -1 in shape or math.prod(shape) != input._data.size or \
            not all(type(s) is int for s in shape):
        shape = _infer_shape("reshape", _sizes(shape), input._data.size)
    if shape == input._data.shape:
        return apply(_reshape, (input,), {"shape": shape}) if input.requires_grad else \
            _alias(input)
    return apply(_reshape, (input,), {"shape": shape})


def _alias(x: Tensor) -> Tensor:
    """The same tensor under a new name: a no-op view (t() of a vector, squeeze without
    size-1 dims) must still carry the graph, or gradients would stop here."""
    if x.requires_grad or _state.tracer is not None:  # a graph must see it too
        return apply(_reshape, (x,), {"shape": x._data.shape})
    t = Tensor._wrap(x._data, x._dev)
    t._version = x._version
    return t


@register("view_dtype", saves=(), view=True)
def _view_dtype(xp, x, dtype):
    return x.view(dtype)


def _view_as_dtype(input: Tensor, dtype) -> Tensor:
    """``view(dtype)``: the same bytes read as ``dtype``; with a different element size the
    last dim shrinks or grows to match (PyTorch's and NumPy's rule)."""
    from .. import dtypes as _dt
    d = _dt.as_dtype(dtype).np
    a = input._data
    if d.itemsize != a.dtype.itemsize and (a.ndim == 0 or not a.flags.c_contiguous or
                                           (a.shape[-1] * a.dtype.itemsize) % d.itemsize):
        raise RuntimeError(f"view: can't view a {input.dtype} tensor of shape "
                           f"{tuple(input.shape)} as {_dt.as_dtype(dtype)}: the last dim's "
                           f"bytes must be contiguous and divisible by the new element size")
    return apply(_view_dtype, (input,), {"dtype": d})


def view(input: Tensor, *shape) -> Tensor:
    """Like reshape, but only where no copy is needed (PyTorch's view semantics);
    ``view(dtype)`` reinterprets the bytes."""
    if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)):
        return _view_as_dtype(input, shape[0])
    sizes = _infer_shape("view", _sizes(shape), input._data.size)
    try:
        np.reshape(input._data, sizes, copy=False)
    except ValueError:
        raise RuntimeError(f"view: size {sizes} is not compatible with input tensor's size "
                           f"and stride {tuple(input.shape)}, {input.stride()} (at least one "
                           f"dimension spans across two contiguous subspaces); use "
                           f".reshape(...) instead") from None
    return reshape(input, sizes)


def view_as(input, other):
    return view(input, other.shape)


def reshape_as(input, other):
    return reshape(input, other.shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if input.ndim == 0:
        return reshape(input, 1)
    s = check_dim("flatten", start_dim, input.ndim)
    e = check_dim("flatten", end_dim, input.ndim)
    if s > e:
        raise RuntimeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shp = input.shape
    return reshape(input, shp[:s] + (math.prod(shp[s:e + 1]),) + shp[e + 1:])


def ravel(input):
    return reshape(input, -1)


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    d = check_dim("unflatten", dim, input.ndim)
    sizes = _infer_shape("unflatten", tuple(sizes), input.shape[d])
    return reshape(input, input.shape[:d] + sizes + input.shape[d + 1:])


@register("unfold", saves=())
def _unfold(xp, x, dim, size, step):
    # sliding windows along dim (a new last dim of ``size``), every ``step``-th one; a copy,
    # since NumPy's window view is read-only and its windows overlap
    w = np.lib.stride_tricks.sliding_window_view(x, size, axis=dim)
    return xp.ascontiguousarray(w[(slice(None),) * dim + (slice(None, None, step),)])


@_unfold.def_backward
def _(node, g):
    # every window element flows back to its source position; overlaps add up
    a = node.attrs
    x = node.inputs[0]
    d, size, step = a["dim"], a["size"], a["step"]
    n_win = g.shape[d]
    idx = (np.arange(n_win)[:, None] * step + np.arange(size)[None, :]).reshape(-1)
    gm = movedim(g, -1, d + 1)
    gm = reshape(gm, gm.shape[:d] + (n_win * size,) + gm.shape[d + 2:])
    from .indexing import index_add
    return (index_add(g.new_zeros(x.shape), d, Tensor._wrap(idx, g._dev), gm),)


def unfold(input: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """Windows of ``size`` along ``dimension`` taken every ``step``: that dim becomes the
    window count and a new last dim holds each window (PyTorch's ``Tensor.unfold``)."""
    x = input if input.ndim else input.reshape(1)
    d = check_dim("unfold", dimension, x.ndim)
    if size < 0 or size > x.shape[d] or step <= 0:
        raise RuntimeError(f"unfold: needs 0 <= size <= {x.shape[d]} (dim {d} of shape "
                           f"{tuple(input.shape)}) and step > 0, got size={size}, step={step}")
    out = apply(_unfold, (x,), {"dim": d, "size": int(size), "step": int(step)})
    return out if input.ndim else reshape(out, (int(size),))  # a 0-d input: just the window


# ----- permute ------------------------------------------------------------------------------


@register("permute", saves=(), view=True)
def _permute(xp, x, dims):
    return x.transpose(dims)


@_permute.def_backward
def _(node, g):
    return (g.permute(tuple(np.argsort(node.attrs["dims"]))),)


def permute(input: Tensor, *dims) -> Tensor:
    dims = _sizes(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(f"permute: number of dims {len(dims)} doesn't match the tensor's "
                           f"{input.ndim} dims (shape {tuple(input.shape)})")
    return apply(_permute, (input,), {"dims": check_dims("permute", dims, input.ndim)})


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    n = input._data.ndim
    if n == 2 and dim0 != dim1 and {dim0, dim1} <= {0, 1, -1, -2}:
        return apply(_permute, (input,), {"dims": (1, 0)})
    if n == 0:
        return _alias(input)
    a, b = check_dim("transpose", dim0, n), check_dim("transpose", dim1, n)
    dims = list(range(n))
    dims[a], dims[b] = dims[b], dims[a]
    return apply(_permute, (input,), {"dims": tuple(dims)})


swapaxes = swapdims = transpose


def t(input: Tensor) -> Tensor:
    if input.ndim > 2:
        raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, but got "
                           f"{input.ndim} (shape {tuple(input.shape)})")
    return transpose(input, 0, 1) if input.ndim == 2 else _alias(input)


def movedim(input: Tensor, source, destination) -> Tensor:
    src = check_dims("movedim", source, input.ndim)
    dst = check_dims("movedim", destination, input.ndim)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: source {source} and destination {destination} must "
                           f"have the same number of dims")
    order = [d for d in range(input.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return apply(_permute, (input,), {"dims": tuple(order)})


moveaxis = movedim


# ----- squeeze / unsqueeze / expand ---------------------------------------------------------


def squeeze(input: Tensor, dim=None) -> Tensor:
    shp = input.shape
    if dim is None:
        new = tuple(s for s in shp if s != 1)
    else:
        dims = check_dims("squeeze", dim, input.ndim) if input.ndim else ()
        new = tuple(s for i, s in enumerate(shp) if not (i in dims and s == 1))
    return reshape(input, new) if new != shp else _alias(input)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    d = check_dim("unsqueeze", dim, input.ndim + 1)
    shp = input.shape
    return reshape(input, shp[:d] + (1,) + shp[d:])


@register("expand", saves=(), view=True)
def _expand(xp, x, shape):
    return xp.broadcast_to(x, shape)


@_expand.def_backward
def _(node, g):
    from .promotion import sum_to
    return (sum_to(g, node.inputs[0].shape),)


def expand(input: Tensor, *sizes) -> Tensor:
    sizes = _sizes(sizes)
    shp = input.shape
    if len(sizes) < len(shp):
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be "
                           f"greater or equal to the number of dimensions in the tensor "
                           f"({len(shp)}, shape {tuple(shp)})")
    lead = len(sizes) - len(shp)
    out = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                raise RuntimeError(f"expand: -1 is not allowed for a new leading dim {i}")
            out.append(s)
            continue
        have = shp[i - lead]
        if s == -1:
            s = have
        if have != s and have != 1:
            raise RuntimeError(f"expand: the expanded size of the tensor ({s}) must match the "
                               f"existing size ({have}) at non-singleton dimension {i}; target "
                               f"sizes {tuple(sizes)}, tensor shape {tuple(shp)}")
        out.append(s)
    out = tuple(out)
    if out == shp:
        return _alias(input) if not input.requires_grad else reshape(input, shp)
    return apply(_expand, (input,), {"shape": out})


def expand_as(input, other):
    return expand(input, other.shape)


def broadcast_to(input, shape):
    return expand(input, tuple(shape))


def broadcast_shapes(*shapes):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        from .promotion import broadcast_error
        broadcast_error("broadcast_shapes", *[np.empty(s) for s in shapes])
        raise


def broadcast_tensors(*tensors):
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(expand(t, shape) for t in tensors)


def meshgrid(*tensors, indexing: str = "ij") -> tuple:
    """Coordinate grids from 1-d tensors, as expanded views; ``indexing="xy"`` swaps the
    first two output dims (NumPy's default, for image coordinates)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    for i, t in enumerate(tensors):
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: expects 0-d or 1-d tensors, but tensor {i} has "
                               f"shape {tuple(t.shape)}")
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        axes[0], axes[1] = 1, 0
    shape = [0] * len(tensors)
    for t, a in zip(tensors, axes):
        shape[a] = t.numel()
    out = []
    for t, a in zip(tensors, axes):
        view_shape = [1] * len(tensors)
        view_shape[a] = -1
        out.append(expand(reshape(t, tuple(view_shape)), tuple(shape)))
    return tuple(out)


def atleast_1d(x):
    return reshape(x, 1) if x.ndim == 0 else x


def atleast_2d(x):
    return reshape(x, (1,) * (2 - x.ndim) + x.shape) if x.ndim < 2 else x


# ----- copies -------------------------------------------------------------------------------


@register("clone", saves=())
def _clone(xp, x):
    return x.copy()


@_clone.def_backward
def _(node, g):
    return (g,)


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    return apply(_clone, (input,))


def contiguous(input: Tensor, memory_format=None) -> Tensor:
    if input._data.flags.c_contiguous:
        return input
    return apply(_clone, (input,))


# ----- join and split -----------------------------------------------------------------------


@register("cat", saves=())
def _cat(xp, *xs, dim):
    return xp.concatenate(xs, axis=dim)


@_cat.def_backward
def _(node, g):
    dim = node.attrs["dim"]
    out, start = [], 0
    for x in node.inputs:
        n = x.shape[dim]
        out.append(narrow(g, dim, start, n) if x.requires_grad else None)
        start += n
    return tuple(out)


def _tensor_list(op, tensors):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of Tensors, got "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of Tensors")
    from .promotion import _cast
    from .. import dtypes as _dt
    rt = _dt.result_type(*tensors).np
    return [_cast(x, rt) for x in tensors]


def cat(tensors, dim: int = 0) -> Tensor:
    if type(tensors) in (list, tuple) and len(tensors) > 1:
        # fast path: same dtype, rank and device; sizes equal off the cat dim
        try:
            x0 = tensors[0]._data
            nd = x0.ndim
            d = dim + nd if dim < 0 else dim
            if 0 <= d < nd and all(t._data.dtype is x0.dtype and t._data.ndim == nd and
                                   t._dev is tensors[0]._dev and
                                   t._data.shape[:d] == x0.shape[:d] and
                                   t._data.shape[d + 1:] == x0.shape[d + 1:] for t in tensors):
                return apply(_cat, tuple(tensors), {"dim": d})
        except AttributeError:
            pass
    xs = _tensor_list("cat", tensors)
    # PyTorch skips legacy empty 1-d tensors in cat
    xs = [x for x in xs if not (x.ndim == 1 and x.shape[0] == 0)] or xs[:1]
    ref = xs[0]
    d = check_dim("cat", dim, ref.ndim)
    for i, x in enumerate(xs):
        if x.ndim != ref.ndim or builtins.any(a != b for j, (a, b) in
                                              enumerate(zip(x.shape, ref.shape)) if j != d):
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}: "
                               f"tensor 0 has shape {tuple(ref.shape)} and tensor {i} has "
                               f"shape {tuple(x.shape)}")
    if len(xs) == 1:
        return clone(xs[0])
    return apply(_cat, tuple(xs), {"dim": d})


concat = concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    xs = _tensor_list("stack", tensors)
    for i, x in enumerate(xs):
        if x.shape != xs[0].shape:
            raise RuntimeError(f"stack: expects each tensor to be equal size, but got "
                               f"{tuple(xs[0].shape)} at entry 0 and {tuple(x.shape)} at "
                               f"entry {i}")
    d = check_dim("stack", dim, xs[0].ndim + 1)
    return cat([unsqueeze(x, d) for x in xs], d)


def hstack(tensors):
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([atleast_2d(x) for x in tensors], 0)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    d = check_dim("narrow", dim, input.ndim)
    n = input.shape[d]
    if start < 0:
        start += n
    if not (0 <= start <= n and 0 <= length and start + length <= n):
        raise IndexError(f"narrow: start ({start}) + length ({length}) exceeds dimension size "
                         f"({n}) of dim {d}, shape {tuple(input.shape)}")
    key = (slice(None),) * d + (slice(start, start + length),)
    from .indexing import _getitem_basic
    return _getitem_basic(input, key)


def select(input: Tensor, dim: int, index: int) -> Tensor:
    d = check_dim("select", dim, input.ndim)
    n = input.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select: index {index} out of range for dimension {d} with size {n}")
    from .indexing import _getitem_basic
    return _getitem_basic(input, (slice(None),) * d + (index % n,))


def split(tensor: Tensor, split_size_or_sections, dim: int = 0):
    d = check_dim("split", dim, tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        if s <= 0 and n:
            raise RuntimeError(f"split: split_size must be positive, got {s}")
        sizes = [builtins.min(s, n - i) for i in range(0, n, s)] if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split: split_with_sizes expects split_sizes {sizes} to sum "
                               f"exactly to {n} (input shape {tuple(tensor.shape)}, dim {d})")
    out, start = [], 0
    for s in sizes:
        out.append(narrow(tensor, d, start, s))
        start += s
    return tuple(out)


def chunk(input: Tensor, chunks: int, dim: int = 0):
    if chunks <= 0:
        raise RuntimeError(f"chunk: chunks must be greater than 0, got {chunks}")
    d = check_dim("chunk", dim, input.ndim)
    n = input.shape[d]
    if n == 0:  # PyTorch hands back ``chunks`` empty pieces
        return tuple(narrow(input, d, 0, 0) for _ in range(chunks))
    return split(input, -(-n // chunks), d)


def tensor_split(input, indices_or_sections, dim=0):
    d = check_dim("tensor_split", dim, input.ndim)
    n = input.shape[d]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        bounds = [i * (n // k) + builtins.min(i, n % k) for i in range(k + 1)]
    else:
        # each piece is input[i:j] with Python's slice rules: negative indices count from
        # the end and indices past either end are clipped
        bounds = [builtins.min(builtins.max(int(i) + n if int(i) < 0 else int(i), 0), n)
                  for i in [0, *indices_or_sections, n]]
    return tuple(narrow(input, d, a, builtins.max(b - a, 0))
                 for a, b in zip(bounds[:-1], bounds[1:]))


def unbind(input: Tensor, dim: int = 0):
    d = check_dim("unbind", dim, input.ndim)
    return tuple(select(input, d, i) for i in range(input.shape[d]))


# ----- flip / roll / repeat -----------------------------------------------------------------


@register("flip", saves=(), view=True)
def _flip(xp, x, dims):
    return xp.flip(x, dims)


@_flip.def_backward
def _(node, g):
    return (g.flip(node.attrs["dims"]),)


def flip(input: Tensor, *args, dims=None) -> Tensor:
    """Reverse the order along ``dims``: ``flip(x, [0, 1])``, ``x.flip(0)``, ``flip(x, dims=0)``."""
    dims = args if dims is None else ((dims,) if isinstance(dims, int) else tuple(dims))
    dims = check_dims("flip", _sizes(dims), input.ndim) if input.ndim else ()
    return apply(_flip, (input,), {"dims": dims})


def fliplr(x):
    return flip(x, 1)


def flipud(x):
    return flip(x, 0)


@register("roll", saves=())
def _roll(xp, x, shifts, dims):
    return xp.roll(x, shifts, dims)


@_roll.def_backward
def _(node, g):
    a = node.attrs
    neg = tuple(-s for s in a["shifts"]) if a["dims"] is not None else tuple(
        -s for s in a["shifts"])
    if a["dims"] is None:
        return (g.reshape(-1).roll(neg, 0).reshape(node.inputs[0].shape),)
    return (g.roll(neg, a["dims"]),)


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        return reshape(apply(_roll, (reshape(input, -1),), {"shifts": shifts, "dims": (0,)}),
                       input.shape)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    dims = tuple(check_dim("roll", d, input.ndim) for d in dims)
    return apply(_roll, (input,), {"shifts": shifts, "dims": dims})


@register("repeat", saves=())
def _repeat(xp, x, reps):
    return xp.tile(x, reps)


@_repeat.def_backward
def _(node, g):
    reps = node.attrs["reps"]
    shp = node.inputs[0].shape
    shp = (1,) * (len(reps) - len(shp)) + tuple(shp)
    inter = []
    for r, s in zip(reps, shp):
        inter += [r, s]
    summed = g.reshape(tuple(inter)).sum(tuple(range(0, 2 * len(reps), 2)))
    return (summed.reshape(node.inputs[0].shape),)


def repeat(input: Tensor, *sizes) -> Tensor:
    """Tile the tensor ``sizes`` times along each dim (PyTorch's ``Tensor.repeat``)."""
    reps = _sizes(sizes)
    if len(reps) < input.ndim:
        raise RuntimeError(f"repeat: number of repeat dims ({len(reps)}) can not be smaller "
                           f"than number of dimensions of tensor ({input.ndim})")
    return apply(_repeat, (input,), {"reps": reps})


def tile(input: Tensor, dims) -> Tensor:
    dims = _sizes((dims,)) if not isinstance(dims, int) else (dims,)
    dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


def repeat_interleave(input: Tensor, repeats: int, dim=None) -> Tensor:
    if dim is None:
        input, dim = reshape(input, -1), 0
    d = check_dim("repeat_interleave", dim, input.ndim)
    idx = np.repeat(np.arange(input.shape[d]), repeats)
    from .indexing import index_select
    return index_select(input, d, Tensor._wrap(idx.astype(np.int64), input._dev))


# ----- triangles ----------------------------------------------------------------------------


@register("triu", saves=())
def _triu(xp, x, diagonal=0):
    return xp.triu(x, diagonal)


@register("tril", saves=())
def _tril(xp, x, diagonal=0):
    return xp.tril(x, diagonal)


_triu.def_backward(lambda node, g: (triu(g, node.attrs["diagonal"]),))
_tril.def_backward(lambda node, g: (tril(g, node.attrs["diagonal"]),))


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    if input.ndim < 2:
        raise RuntimeError(f"triu: input tensor must have at least 2 dimensions, got shape "
                           f"{tuple(input.shape)}")
    return apply(_triu, (input,), {"diagonal": diagonal})


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    if input.ndim < 2:
        raise RuntimeError(f"tril: input tensor must have at least 2 dimensions, got shape "
                           f"{tuple(input.shape)}")
    return apply(_tril, (input,), {"diagonal": diagonal})


@register("diagonal", saves=(), view=True)
def _diagonal(xp, x, offset=0, dim1=0, dim2=1):
    return xp.diagonal(x, offset, dim1, dim2)


@_diagonal.def_backward
def _(node, g):
    a = node.attrs
    x = node.inputs[0]
    return (_diag_embed_like(g, x.shape, a["offset"], a["dim1"], a["dim2"]),)


@register("diag_scatter", saves=())
def _diag_scatter(xp, g, shape, offset, dim1, dim2):
    out = xp.zeros(shape, dtype=g.dtype)
    moved = xp.moveaxis(out, (dim1, dim2), (-2, -1))  # a writable view; diagonal() is not
    k = g.shape[-1]
    rows = xp.arange(k) + builtins.max(-offset, 0)
    cols = xp.arange(k) + builtins.max(offset, 0)
    moved[..., rows, cols] = g
    return out


_diag_scatter.def_backward(lambda node, g: (diagonal(g, **{k: node.attrs[k] for k in
                                                           ("offset", "dim1", "dim2")}),))


def _diag_embed_like(g, shape, offset, dim1, dim2):
    return apply(_diag_scatter, (g,), {"shape": tuple(shape), "offset": offset, "dim1": dim1,
                                       "dim2": dim2})


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    a = check_dim("diagonal", dim1, input.ndim)
    b = check_dim("diagonal", dim2, input.ndim)
    return apply(_diagonal, (input,), {"offset": offset, "dim1": a, "dim2": b})


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices whose ``offset`` diagonal (over the new dims ``dim1``, ``dim2``) holds the
    last dim of ``input``; zeros elsewhere."""
    n = input.shape[-1] if input.ndim else 1
    m = n + builtins.abs(offset)
    rows = np.arange(n) + builtins.max(-offset, 0)
    cols = np.arange(n) + builtins.max(offset, 0)
    from .indexing import _index_put
    x = input if input.ndim else reshape(input, (1,))
    out = apply(_index_put, (x.new_zeros(x.shape[:-1] + (m, m)), x),
                {"key": (Ellipsis, rows, cols)})
    nd = out.ndim
    a, b = dim1 % nd, dim2 % nd
    if (a, b) != (nd - 2, nd - 1):
        out = movedim(out, (nd - 2, nd - 1), (a, b))
    return out


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-d input becomes a square matrix with it on the ``diagonal``; a 2-d input gives
    that diagonal as a vector."""
    if input.ndim == 1:
        return diag_embed(input, diagonal)
    if input.ndim == 2:
        return apply(_diagonal, (input,), {"offset": diagonal, "dim1": 0, "dim2": 1})
    raise RuntimeError(f"diag: expects a 1-d or 2-d tensor, got shape {tuple(input.shape)}")


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """A square matrix with the flattened input on its ``offset`` diagonal."""
    return diag_embed(reshape(input, -1), offset)


def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by 90 degrees ``k`` times in the plane of ``dims``, from the first dim toward
    the second."""
    if len(dims) != 2 or input.ndim < 2:
        raise RuntimeError(f"rot90: needs two dims and an input of at least 2 dims, got dims "
                           f"{tuple(dims)} and shape {tuple(input.shape)}")
    d0, d1 = check_dims("rot90", tuple(dims), input.ndim)
    k %= 4
    if k == 1:
        return transpose(flip(input, d1), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return transpose(flip(input, d0), d0, d1)
    return _alias(input)


def trace(input: Tensor) -> Tensor:
    return diagonal(input).sum()


# ----- pad ----------------------------------------------------------------------------------


@register("pad", saves=())
def _pad(xp, x, widths, value=0.0):
    return xp.pad(x, widths, mode="constant", constant_values=value)


@_pad.def_backward
def _(node, g):
    key = tuple(slice(b, g.shape[i] - a) for i, (b, a) in enumerate(node.attrs["widths"]))
    from .indexing import _getitem_basic
    return (_getitem_basic(g, key),)


def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """``F.pad``: ``pad`` lists (before, after) pairs from the last dim backwards."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise RuntimeError(f"pad: padding length {len(pad)} must be even and at most twice "
                           f"the number of dims ({input.ndim}, shape {tuple(input.shape)})")
    pairs = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        pairs[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        # negative padding crops, as in PyTorch
        crop = tuple(slice(-b if b < 0 else None, a if a < 0 else None) for b, a in pairs)
        x = input
        if builtins.any(b < 0 or a < 0 for b, a in pairs):
            from .indexing import _getitem_basic
            x = _getitem_basic(input, crop)
        widths = tuple((builtins.max(b, 0), builtins.max(a, 0)) for b, a in pairs)
        return apply(_pad, (x,), {"widths": widths, "value": 0.0 if value is None else value})
    np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}.get(mode)
    if np_mode is None:
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or "
                         f"'circular', got {mode!r}")
    # Non-constant modes gather from the input: index_select per padded dim, so the
    # gradient (an index_add) comes from index_select's rule.
    from .indexing import index_select
    out = input
    for d, (b, a) in enumerate(pairs):
        if b == 0 and a == 0:
            continue
        n = input.shape[d]
        if mode == "reflect" and (b >= n or a >= n):
            raise RuntimeError(f"pad: reflect padding ({b}, {a}) must be smaller than the "
                               f"input size {n} at dim {d}")
        idx = np.pad(np.arange(n), (b, a), mode=np_mode)
        out = index_select(out, d, Tensor._wrap(idx.astype(np.int64), input._dev))
    return out
