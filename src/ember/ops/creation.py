"""Making tensors: tensor, from_numpy, zeros/ones/full/empty, arange/linspace/eye, *_like."""
from __future__ import annotations

import math

import numpy as np

from .. import _state
from .. import dtypes as _dt
from ..backend import get_device
from ..tensor import Tensor


def _finish(arr, dtype, device, requires_grad) -> Tensor:
    dev = get_device(device)
    if dtype is not None:
        arr = arr.astype(_dt.as_dtype(dtype).np, copy=False)
    if arr.dtype not in _dt._FROM_NP:
        arr = arr.astype(_infer_np_dtype(arr), copy=False)
    t = Tensor._wrap(dev.backend.from_numpy(arr), dev)
    if requires_grad:
        t.requires_grad_(True)
    if _state.tracer is not None:
        _state.tracer.constant(t)
    return t


def wrap_constant(arr, dev=None) -> Tensor:
    """Wrap an array ember made from Python values (not from any tensor's data) as a Tensor
    (on ``dev``, default the CPU); under ``ember.jit`` it is recorded as a graph constant."""
    t = Tensor._wrap(arr, dev if dev is not None else get_device("cpu"))
    if _state.tracer is not None:
        _state.tracer.constant(t)
    return t


def _infer_np_dtype(arr):
    k = arr.dtype.kind
    if k == "f":
        return arr.dtype if arr.dtype in _dt._FROM_NP else np.float64
    if k in "iu":
        return np.int64
    if k == "b":
        return np.bool_
    raise TypeError(f"tensor: can't convert data of NumPy dtype {arr.dtype}; ember supports "
                    f"bool, integer and floating point data")


def _infer_dtype(types: set, objects: list):
    """PyTorch's dtype for (nested) Python data, or None for data it doesn't know, from the
    leaves' ``types`` and the tensors and arrays among them (``_collect`` finds both).

    Python floats give the default float dtype, ints int64, bools bool; NumPy scalars and
    arrays and tensors keep their own dtype; mixed items promote pairwise (so a list of
    ``np.float64`` stays float64 and ``[np.float16(1), 2]`` is float16, as in PyTorch).
    """
    objects = list(objects)
    found = set()
    for t in types:
        if t is float:
            found.add(_dt.get_default_dtype())
        elif t is int:
            found.add(_dt.int64)
        elif t is bool:
            found.add(_dt.bool_)
        elif issubclass(t, np.generic):
            objects.append(np.dtype(t))
        else:
            return None  # complex, str...: NumPy's conversion gives the error
    for o in objects:
        if isinstance(o, Tensor):
            found.add(o.dtype)
        else:
            npd = o if isinstance(o, np.dtype) else o.dtype
            found.add(_dt.from_numpy_dtype(npd if npd in _dt._FROM_NP else
                                           np.dtype(_infer_np_dtype(np.empty(0, npd)))))
    if not found:
        return _dt.get_default_dtype()  # tensor([]) is a float tensor
    out = found.pop()
    for d in found:
        out = _dt.promote_types(out, d)
    return out


def _collect(data, types: set, objects: list) -> None:
    """The types of the leaves of nested lists (tensors and arrays themselves go to
    ``objects``); a flat list of numbers costs one C-level pass."""
    if not isinstance(data, (list, tuple)):
        data = (data,)
    ts = set(map(type, data))
    if not any(issubclass(t, (list, tuple, Tensor, np.ndarray)) for t in ts):
        types.update(ts)
        return
    for d in data:
        if isinstance(d, (list, tuple)):
            _collect(d, types, objects)
        elif isinstance(d, (Tensor, np.ndarray)):
            objects.append(d)
        else:
            types.add(type(d))


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python numbers, nested lists, arrays, tensors).

    Python floats give the default float dtype, ints int64, bools bool; NumPy arrays keep
    their dtype.
    """
    t = type(data)
    if (t is float or t is bool or t is int) and dtype is None and -2**63 <= data < 2**63:
        npd = _dt.get_default_dtype().np if t is float else np.int64 if t is int else np.bool_
        return _finish(np.array(data, dtype=npd), None, device, requires_grad)
    if isinstance(data, Tensor):
        arr = data._dev.backend.to_numpy(data._data).copy()
    elif isinstance(data, np.ndarray):
        arr = data.copy()
    else:
        types, objects = set(), []
        _collect(data, types, objects)
        inferred = _infer_dtype(types, objects) if dtype is None else None
        if any(isinstance(o, Tensor) for o in objects):
            from .shape import stack
            parts = [tensor(d) for d in data]
            return _finish(stack(parts)._data, dtype or inferred, device, requires_grad)
        try:
            arr = np.array(data)
        except ValueError as e:
            raise ValueError(f"tensor: can't make a tensor from ragged or mixed data: {e}") \
                from None
        if arr.dtype == object:
            raise TypeError(f"tensor: can't convert data of type {type(data).__name__} (an "
                            f"object array; nested sequences must be rectangular numbers)")
        if inferred is not None:
            arr = arr.astype(inferred.np, copy=False)
    return _finish(arr, dtype, device, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with ``data`` where it can."""
    if isinstance(data, Tensor):
        return data.to(dtype=dtype, device=device) if dtype or device else data
    if isinstance(data, np.ndarray) and data.dtype in _dt._FROM_NP:
        return _finish(data, dtype, device, False)
    return tensor(data, dtype=dtype, device=device)


asarray = as_tensor


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``ndarray`` (no copy)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(ndarray).__name__})")
    if ndarray.dtype not in _dt._FROM_NP:
        raise TypeError(f"from_numpy: can't convert np.ndarray of type {ndarray.dtype}; "
                        f"supported: {', '.join(d.name for d in _dt.ALL)}")
    return Tensor._wrap(ndarray)


def from_dlpack(ext_tensor) -> Tensor:
    """A tensor sharing memory with any object that speaks DLPack (``__dlpack__``)."""
    return from_numpy(np.from_dlpack(ext_tensor))


def _shape(op, size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    try:
        shape = tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"{op}: size must be ints or a tuple of ints, got {size!r}") from None
    if any(s < 0 for s in shape):
        raise RuntimeError(f"{op}: trying to create tensor with negative dimension: {shape}")
    return shape


def _float(dtype):
    return _dt.as_dtype(dtype).np if dtype is not None else _dt.get_default_dtype().np


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.zeros(_shape("zeros", size), _float(dtype)), None, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.ones(_shape("ones", size), _float(dtype)), None, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.empty(_shape("empty", size), _float(dtype)), None, device, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if isinstance(fill_value, (Tensor, np.generic)):
        fill_value = fill_value.item()  # PyTorch reads a 0-d tensor or NumPy scalar as a number
    if dtype is None:
        if isinstance(fill_value, bool):
            dtype = _dt.bool_
        elif isinstance(fill_value, int):
            dtype = _dt.int64
    shape = _shape("full", (size,) if isinstance(size, int) else tuple(size))
    npd = _float(dtype)
    return _finish(np.full(shape, _dt.cast_array(fill_value, npd), npd), None, device,
                   requires_grad)


def _like(op, input, dtype, device):
    return (input.shape, dtype if dtype is not None else input.dtype,
            device if device is not None else input.device)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    s, d, dev = _like("zeros_like", input, dtype, device)
    return zeros(s, dtype=d, device=dev, requires_grad=requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    s, d, dev = _like("ones_like", input, dtype, device)
    return ones(s, dtype=d, device=dev, requires_grad=requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    s, d, dev = _like("empty_like", input, dtype, device)
    return empty(s, dtype=d, device=dev, requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    s, d, dev = _like("full_like", input, dtype, device)
    return full(s, fill_value, dtype=d, device=dev, requires_grad=requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    vals = [start, end, step]
    if any(isinstance(v, Tensor) for v in vals):
        vals = [v.item() if isinstance(v, Tensor) else v for v in vals]
        start, end, step = vals
    if dtype is not None and not _dt.as_dtype(dtype).is_floating_point:
        if _dt.as_dtype(dtype) is _dt.bool_:
            raise RuntimeError("arange: not implemented for dtype bool")
        # PyTorch converts the bounds and the step to the integer dtype first
        start, end, step = int(start), int(end), int(step)
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and larger bound inconsistent with step sign "
                           f"(start={start}, end={end}, step={step})")
    if dtype is None:
        dtype = _dt.get_default_dtype() if any(isinstance(v, float) for v in vals) else \
            _dt.int64
    n = max(math.ceil((end - start) / step), 0)
    # computed in float64 and cast, like PyTorch, so float32 ends match its values
    arr = start + step * np.arange(n, dtype=np.float64) if _dt.as_dtype(dtype).is_floating_point \
        else np.arange(start, end, step, dtype=np.int64)
    return _finish(np.asarray(arr), dtype, device, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    arr = np.linspace(float(start), float(end), int(steps), dtype=np.float64)
    return _finish(arr, dtype or _dt.get_default_dtype(), device, requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad=False) -> Tensor:
    arr = np.logspace(float(start), float(end), int(steps), base=base)
    return _finish(arr, dtype or _dt.get_default_dtype(), device, requires_grad)


def eye(n: int, m=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.eye(n, m, dtype=_float(dtype)), None, device, requires_grad)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row and column indices of the upper triangle of a ``row`` x ``col`` matrix
    (from the ``offset`` diagonal up), in row-major order."""
    idx = np.stack(np.triu_indices(row, offset, col)) if row and col else np.zeros((2, 0))
    return _finish(idx.astype(_dt.as_dtype(dtype or _dt.int64).np), None, device, False)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) indices of the lower triangle (to the ``offset`` diagonal), row-major."""
    idx = np.stack(np.tril_indices(row, offset, col)) if row and col else np.zeros((2, 0))
    return _finish(idx.astype(_dt.as_dtype(dtype or _dt.int64).np), None, device, False)


def _to_device(t: Tensor, dev) -> Tensor:
    """Move ``t`` to ``dev`` (a copy through host memory)."""
    host = t._dev.backend.to_numpy(t._data)
    out = Tensor._wrap(dev.backend.from_numpy(np.array(host)), dev)
    out.requires_grad = t.requires_grad and t._node is None
    return out


# ----- new_* methods ------------------------------------------------------------------------


def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                  requires_grad=requires_grad)


def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
    return zeros(*size, dtype=dtype or self.dtype, device=device or self.device,
                 requires_grad=requires_grad)


def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
    return ones(*size, dtype=dtype or self.dtype, device=device or self.device,
                requires_grad=requires_grad)


def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
    return empty(*size, dtype=dtype or self.dtype, device=device or self.device,
                 requires_grad=requires_grad)


def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    return full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                requires_grad=requires_grad)
