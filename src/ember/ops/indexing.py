"""Indexing: ``x[key]`` and ``x[key] = v``, gather/scatter, index_select, take_along_dim,
masked_fill, nonzero."""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..errors import check_dim
from ..tensor import Tensor
from .registry import apply, register

_BASIC = (int, slice, type(None), type(Ellipsis))


def _index_array(op, t, allow_bool=True):
    d = t._data if isinstance(t, Tensor) else np.asarray(t)
    k = d.dtype.kind
    if k == "b" and allow_bool:
        return d
    if k not in "iu":
        raise IndexError(f"{op}: tensors used as indices must be long, int, byte or bool "
                         f"tensors, got {d.dtype} (shape {d.shape})")
    return d


def _convert_key(key):
    """User key -> (NumPy key, is_basic)."""
    if not isinstance(key, tuple):
        key = (key,)
    out, basic = [], True
    for k in key:
        if isinstance(k, bool):
            out.append(np.asarray(k))
            basic = False
        elif isinstance(k, _BASIC):
            out.append(k)
        elif isinstance(k, Tensor):
            if k._data.ndim == 0 and k._data.dtype.kind in "iu":
                out.append(int(k._data))
            else:
                out.append(_index_array("index", k))
                basic = False
        elif isinstance(k, (list, tuple, np.ndarray)):
            # a tuple nested inside the key is a sequence of indices, as in PyTorch
            a = np.asarray(k)
            if a.size == 0:
                a = a.astype(np.int64)
            a = _index_array("index", a)
            if a.ndim == 0 and a.dtype.kind in "iu":
                out.append(int(a))  # a 0-d integer array is an int, as a 0-d long tensor
            else:
                out.append(a)
                basic = False
        elif hasattr(k, "__index__"):
            out.append(int(k))
        else:
            raise IndexError(f"index: only integers, slices, ellipsis, None, lists and long or "
                             f"bool tensors are valid indices (got {type(k).__name__})")
    return tuple(out), basic


def _check_key(x, key):
    """Give PyTorch-worded errors for out-of-range ints before NumPy sees them."""
    dim = 0
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis and
                 not (isinstance(k, np.ndarray) and k.dtype == np.bool_))
    n_real += sum(k.ndim for k in key if isinstance(k, np.ndarray) and k.dtype == np.bool_)
    if n_real > x.ndim:
        raise IndexError(f"index: too many indices for tensor of dimension {x.ndim} (shape "
                         f"{tuple(x.shape)})")
    for k in key:
        if k is Ellipsis:
            dim += x.ndim - n_real
            continue
        if k is None:
            continue
        if isinstance(k, int):
            n = x.shape[dim]
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for dimension {dim} with size "
                                 f"{n} (tensor shape {tuple(x.shape)})")
        elif isinstance(k, np.ndarray) and k.dtype.kind in "iu" and k.size:
            n = x.shape[dim]
            lo, hi = int(k.min()), int(k.max())
            if lo < -n or hi >= n:
                bad = hi if hi >= n else lo
                raise IndexError(f"index {bad} is out of bounds for dimension {dim} with size "
                                 f"{n} (tensor shape {tuple(x.shape)})")
        elif isinstance(k, np.ndarray) and k.dtype == np.bool_:
            want = x.shape[dim:dim + k.ndim]
            if k.shape != want and k.ndim:
                raise IndexError(f"index: the shape of the mask {k.shape} at index {dim} does "
                                 f"not match the shape of the indexed tensor {tuple(x.shape)}")
            dim += k.ndim
            continue
        dim += 1


def _torch_layout(shape, key):
    """A NumPy key that selects what PyTorch's ``x[key]`` selects, in PyTorch's layout.

    The two differ only for keys with advanced (array) indices: PyTorch first applies the
    ints (they select, like basic indexing; NumPy counts them as advanced indices) and treats
    an ``...`` that stands for no dims as absent (for NumPy it separates the arrays). Where
    the ints matter, the answer is an all-array key of coordinates, found on zero-stride
    index grids, so nothing of the tensor's size is allocated.
    """
    if not any(isinstance(k, np.ndarray) for k in key):
        return key
    if any(isinstance(k, np.ndarray) and k.ndim == 0 for k in key):
        return key  # a 0-d bool index adds a dim; NumPy's rule is PyTorch's there
    if any(k is Ellipsis for k in key):
        used = sum(k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 1
                   for k in key if k is not None and k is not Ellipsis)
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - used) + key[i + 1:]
    if not any(isinstance(k, int) for k in key):
        return key
    first = []  # the ints (and slices, None), arrays replaced by full slices
    for k in key:
        if isinstance(k, np.ndarray):
            first.extend([slice(None)] * (k.ndim if k.dtype == np.bool_ else 1))
        else:
            first.append(k)
    first = tuple(first)
    then = tuple(k if isinstance(k, np.ndarray) else slice(None) for k in key
                 if not isinstance(k, int))
    ndim = len(shape)
    coords = []
    for d, n in enumerate(shape):
        grid = np.arange(n, dtype=np.int64).reshape((n,) + (1,) * (ndim - d - 1))
        coords.append(np.broadcast_to(grid, shape)[first][then])
    return tuple(coords)


@register("getitem", saves=(), view=True)
def _getitem(xp, x, key):
    if len(key) == x.ndim and all(type(k) is int for k in key):
        return x[key + (Ellipsis,)]  # a 0-d view, not a NumPy scalar copy: x[0].fill_(1)
    return x[key]


@_getitem.def_backward
def _(node, g):
    x = node.inputs[0]
    return (apply(_index_grad, (g,), {"shape": x.shape, "key": node.attrs["key"]}),)


@register("index_grad", saves=())
def _index_grad(xp, g, shape, key):
    """The gradient of ``x[key]``: ``g`` added into zeros of x's shape (repeats accumulate)."""
    out = xp.zeros(shape, dtype=g.dtype)
    if all(isinstance(k, _BASIC) for k in key):
        out[key] = g
    else:
        xp.add.at(out, key, g)
    return out


@_index_grad.def_backward
def _(node, g):
    return (apply(_getitem, (g,), {"key": node.attrs["key"]}),)


def getitem(x: Tensor, key) -> Tensor:
    t = type(key)
    if t is slice:  # fast path: a slice never goes out of range
        return apply(_getitem, (x,), {"key": (key,)})
    if t is int and x._data.ndim and -x._data.shape[0] <= key < x._data.shape[0]:
        return apply(_getitem, (x,), {"key": (key,)})
    k, _ = _convert_key(key)
    _check_key(x, k)
    return apply(_getitem, (x,), {"key": _torch_layout(x.shape, k)})


def _getitem_basic(x: Tensor, key: tuple) -> Tensor:
    return apply(_getitem, (x,), {"key": key})


@register("index_put", saves=())
def _index_put(xp, x, v, key, accumulate=False):
    out = x.copy()
    if accumulate:
        xp.add.at(out, key, v)
    else:
        out[key] = v
    return out


@_index_put.def_backward
def _(node, g):
    x, v = node.inputs
    key = node.attrs["key"]
    acc = node.attrs.get("accumulate", False)
    gx = gv = None
    if x.requires_grad:
        gx = g if acc else apply(_index_put, (g, g.new_zeros(())), {"key": key})
    if v.requires_grad:
        from .promotion import sum_to
        gv = sum_to(apply(_getitem, (g,), {"key": key}), v.shape)
    return gx, gv


def index_put(input: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    """Out-of-place ``input[indices] = values`` (``accumulate`` adds, repeats included)."""
    k, _ = _convert_key(indices)
    _check_key(input, k)
    k = _torch_layout(input.shape, k)
    v = _as_value(values, input)
    return apply(_index_put, (input, v), {"key": k, "accumulate": accumulate})


def _as_value(values, like: Tensor) -> Tensor:
    if isinstance(values, Tensor):
        return values.to(like.dtype) if values._data.dtype != like._data.dtype else values
    return _constant(_dt.cast_array(values, like._data.dtype), like._dev)


def _constant(arr, dev=None) -> Tensor:
    """An array made from Python values (a graph constant under ember.jit)."""
    from .creation import wrap_constant  # creation imports this module's functions
    return wrap_constant(arr, dev)


def setitem(x: Tensor, key, value) -> None:
    """``x[key] = value``: in place, recorded for autograd like PyTorch's ``index_put_``."""
    k, _ = _convert_key(key)
    _check_key(x, k)
    k = _torch_layout(x.shape, k)
    v = _as_value(value, x)
    from .inplace import inplace
    try:
        inplace(x, lambda s: apply(_index_put, (s, v), {"key": k}),
                fast=lambda: x._data.__setitem__(k, v._data), op="setitem", others=(v,))
    except ValueError as e:
        raise ValueError(f"setitem: cannot assign a value of shape {tuple(v.shape)} to the "
                         f"selection {key!r} of a tensor of shape {tuple(x.shape)}: {e}") \
            from None


# ----- gather / scatter ---------------------------------------------------------------------


def _check_gather(op, input, dim, index):
    d = check_dim(op, dim, input.ndim)
    idx = _index_array(op, index, allow_bool=False)
    if idx.ndim != input.ndim and not (input.ndim == 0 and idx.ndim <= 1):
        raise RuntimeError(f"{op}: index tensor must have the same number of dimensions as "
                           f"input tensor (index {idx.shape}, input {tuple(input.shape)})")
    if idx.size:
        n = input.shape[d] if input.ndim else 1
        if idx.min() < -n or idx.max() >= n:
            raise IndexError(f"{op}: index {int(idx.max() if idx.max() >= n else idx.min())} "
                             f"is out of bounds for dimension {d} with size {n}")
    return d, idx


@register("gather", saves=())
def _gather(xp, x, index, dim):
    return xp.take_along_axis(x, index, axis=dim)


@_gather.def_backward
def _(node, g):
    x, index = node.inputs
    return _scatter_into_zeros(g, index, node.attrs["dim"], x.shape), None


def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    d, idx = _check_gather("gather", input, dim, index)
    for i, (a, b) in enumerate(zip(idx.shape, input.shape)):
        if i != d and a > b:
            raise RuntimeError(f"gather: size of index {idx.shape} exceeds input "
                               f"{tuple(input.shape)} at dimension {i}")
    if idx.shape != input.shape:
        # take_along_axis broadcasts; PyTorch reads the leading block of the other dims
        key = tuple(slice(0, s) if i != d else slice(None) for i, s in enumerate(idx.shape))
        input = _getitem_basic(input, key)
    return apply(_gather, (input, _idx_tensor(index, idx)), {"dim": d})


def _idx_tensor(index, idx):
    return index if isinstance(index, Tensor) else _constant(idx)


@register("scatter_add", saves=())
def _scatter_add(xp, x, index, src, dim):
    out = x.copy()
    from ..backend import get_device
    get_device("cpu").backend.scatter_add(out, index, src, dim) if xp is np else \
        xp.add.at(out, _along(xp, index, dim), src)
    return out


def _along(xp, index, dim):
    idx = list(xp.indices(index.shape, sparse=True))
    idx[dim] = index
    return tuple(idx)


@_scatter_add.def_backward
def _(node, g):
    x, index, src = node.inputs
    d = node.attrs["dim"]
    gs = apply(_gather, (g, index), {"dim": d}) if src.requires_grad else None
    return g, None, gs


@register("scatter", saves=())
def _scatter(xp, x, index, src, dim, reduce=None):
    out = x.copy()
    key = _along(xp, index, dim)
    if reduce is None:
        out[key] = src
    elif reduce == "add":
        xp.add.at(out, key, src)
    elif reduce == "multiply":
        xp.multiply.at(out, key, src)
    return out


@_scatter.def_backward
def _(node, g):
    x, index, src = node.inputs
    d = node.attrs["dim"]
    if node.attrs.get("reduce") is not None:
        raise RuntimeError("scatter: the gradient of scatter with reduce= is not defined; use "
                           "scatter_add for a differentiable sum")
    gx = apply(_scatter, (g, index, g.new_zeros(index.shape)), {"dim": d})
    gs = apply(_gather, (g, index), {"dim": d}) if src.requires_grad else None
    return gx, None, gs


def _scatter_src(op, input, index, src, idx):
    if isinstance(src, Tensor):
        if src._data.dtype != input._data.dtype:
            src = src.to(input.dtype)
        if src.shape != idx.shape:
            key = tuple(slice(0, s) for s in idx.shape)
            src = _getitem_basic(src, key)
        return src
    npd = input._data.dtype
    return _constant(np.full(idx.shape, _dt.cast_array(src, npd), dtype=npd), input._dev)


def scatter(input: Tensor, dim: int, index: Tensor, src=None, *, value=None, reduce=None):
    """Out-of-place ``scatter``: ``out[index[i][j]][j] = src[i][j]`` for dim 0, and so on."""
    if src is None:
        src = value
    d, idx = _check_gather("scatter", input, dim, index)
    s = _scatter_src("scatter", input, index, src, idx)
    if reduce not in (None, "add", "multiply"):
        raise ValueError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
    attrs = {"dim": d}
    if reduce is not None:
        attrs["reduce"] = reduce
    return apply(_scatter, (input, _idx_tensor(index, idx), s), attrs)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    d, idx = _check_gather("scatter_add", input, dim, index)
    s = _scatter_src("scatter_add", input, index, src, idx)
    return apply(_scatter_add, (input, _idx_tensor(index, idx), s), {"dim": d})


def _scatter_into_zeros(g: Tensor, index: Tensor, dim: int, shape) -> Tensor:
    return apply(_scatter_add, (g.new_zeros(tuple(shape)), index, g), {"dim": dim})


def take_along_dim(input: Tensor, indices: Tensor, dim=None) -> Tensor:
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    d = check_dim("take_along_dim", dim, input.ndim)
    idx = _index_array("take_along_dim", indices, allow_bool=False)
    if idx.ndim != input.ndim:
        raise RuntimeError(f"take_along_dim: input {tuple(input.shape)} and indices "
                           f"{idx.shape} should have the same number of dimensions")
    shape = list(np.broadcast_shapes(tuple(s if i != d else 1 for i, s in
                                           enumerate(input.shape)),
                                     tuple(s if i != d else 1 for i, s in enumerate(idx.shape))))
    x = input.expand(tuple(shape[:d] + [input.shape[d]] + shape[d + 1:]))
    ind = indices.expand(tuple(shape[:d] + [idx.shape[d]] + shape[d + 1:]))
    return gather(x, d, ind)


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    d = check_dim("index_select", dim, input.ndim)
    idx = _index_array("index_select", index, allow_bool=False)
    if idx.ndim > 1:
        raise IndexError(f"index_select: index must be a vector (got shape {idx.shape})")
    n = input.shape[d]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"index_select: index out of range in self: dimension {d} has size "
                         f"{n}, indices range {int(idx.min())}..{int(idx.max())}")
    key = (slice(None),) * d + (idx.reshape(-1),)
    return apply(_getitem, (input,), {"key": key})


def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    d = check_dim("index_add", dim, input.ndim)
    idx = _index_array("index_add", index, allow_bool=False)
    if idx.ndim > 1:
        raise IndexError(f"index_add: index must be a vector (got shape {idx.shape})")
    idx = idx.reshape(-1)
    n = input.shape[d] if input.ndim else 1
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = int(idx.max() if idx.max() >= n else idx.min())
        raise IndexError(f"index_add: index {bad} is out of bounds for dimension {d} with "
                         f"size {n}")
    src_n = source.shape[d] if source.ndim else 1
    if source.ndim not in (0, input.ndim) or src_n != idx.size:
        raise RuntimeError(f"index_add: the number of indices ({idx.size}) should equal "
                           f"source.size({d}) (source {tuple(source.shape)}, input "
                           f"{tuple(input.shape)})")
    key = (slice(None),) * d + (idx,)
    src = source * alpha if alpha != 1 else source
    return apply(_index_put, (input, _as_value(src, input)), {"key": key, "accumulate": True})


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """``input`` with the entries at ``index`` along ``dim`` set to ``value`` (a number or a
    0-d tensor, which receives the gradient of the filled entries)."""
    d = check_dim("index_fill", dim, input.ndim) if input.ndim else 0
    idx = _index_array("index_fill", index, allow_bool=False)
    if idx.ndim > 1:
        raise IndexError(f"index_fill: index must be a vector (got shape {idx.shape})")
    n = input.shape[d] if input.ndim else 1
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = int(idx.max() if idx.max() >= n else idx.min())
        raise IndexError(f"index_fill: index {bad} is out of bounds for dimension {d} with "
                         f"size {n} (input {tuple(input.shape)})")
    if isinstance(value, Tensor) and value.ndim:
        raise RuntimeError(f"index_fill: only supports a 0-dimensional value tensor, got "
                           f"shape {tuple(value.shape)}")
    key = (slice(None),) * d + (idx.reshape(-1),) if input.ndim else (Ellipsis,)
    return apply(_index_put, (input, _as_value(value, input)), {"key": key})


def _fill_diagonal(input: Tensor, fill_value, wrap: bool = False) -> Tensor:
    """``input`` with its main diagonal set to ``fill_value`` (``Tensor.fill_diagonal_``):
    all dims must be equal above 2-d; a tall matrix's diagonal restarts every ``cols + 1``
    rows when ``wrap``."""
    shape = input.shape
    if input.ndim < 2 or (input.ndim > 2 and len(set(shape)) != 1):
        raise RuntimeError(f"fill_diagonal_: dimensions must be at least 2 and all of equal "
                           f"length above 2-d, got shape {tuple(shape)}")
    if input.ndim == 2:
        rows, cols = shape
        end = rows * cols if wrap else min(rows, cols) * cols
        flat = np.arange(0, end, cols + 1)
        key = np.unravel_index(flat, shape)
    else:
        key = (np.arange(shape[0]),) * input.ndim
    return apply(_index_put, (input, _as_value(fill_value, input)), {"key": tuple(key)})


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    if not isinstance(mask, Tensor) or mask._data.dtype != np.bool_:
        raise TypeError(f"masked_fill: expected a bool mask tensor, got "
                        f"{getattr(mask, 'dtype', type(mask).__name__)}")
    from .comparison import where
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"masked_fill: only supports a 0-dimensional value tensor, got "
                               f"shape {tuple(value.shape)}")
        value = value.to(input.dtype)
    else:
        from .creation import wrap_constant
        value = wrap_constant(_dt.cast_array(value, input._data.dtype), input._dev)
    try:
        np.broadcast_shapes(mask.shape, input.shape)
    except ValueError:
        raise RuntimeError(f"masked_fill: the mask shape {tuple(mask.shape)} must be "
                           f"broadcastable to the input shape {tuple(input.shape)}") from None
    out = where(mask, value, input)
    return out if out.shape == input.shape else out.expand(input.shape).clone()


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    shape = np.broadcast_shapes(input.shape, mask.shape)
    return getitem(input.expand(shape), mask.expand(shape))


@register("nonzero")
def _nonzero(xp, x):
    return xp.stack(xp.nonzero(x), axis=-1).astype(np.int64) if x.ndim else \
        xp.zeros((int(bool(x)), 0), np.int64)


def nonzero(input: Tensor, *, as_tuple: bool = False):
    out = apply(_nonzero, (input,))
    if as_tuple:
        return tuple(out[:, i] for i in range(out.shape[1])) if input.ndim else (out[:, 0:0],)
    return out


def argwhere(input):
    return nonzero(input)
