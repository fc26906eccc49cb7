"""ember's dtypes and PyTorch's type-promotion rules.

A dtype is a small object that names a NumPy dtype and knows its category (bool < integer <
floating). Promotion follows PyTorch, not NumPy: a Python float does not upcast a float32
tensor, int tensor + Python float gives the default float dtype, and a 0-d tensor only wins
when it is of a higher category than the dimensioned operands.
"""
from __future__ import annotations

import numpy as np

try:  # bfloat16 has no NumPy dtype of its own; ml_dtypes registers one with ufunc support.
    import ml_dtypes as _ml_dtypes

    _BF16 = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes is a core dependency
    _ml_dtypes = None
    _BF16 = None

_BOOL, _INT, _FLOAT = 0, 1, 2


class dtype:
    """An ember dtype (``ember.float32``...). Compares equal to itself only."""

    __slots__ = ("name", "np", "category", "itemsize", "is_floating_point", "is_signed")

    def __init__(self, name: str, np_dtype, category: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.category = category
        self.itemsize = self.np.itemsize
        self.is_floating_point = category == _FLOAT
        self.is_signed = category == _FLOAT or (category == _INT and self.np.kind == "i")

    def __repr__(self) -> str:
        return f"ember.{self.name}"

    def __reduce__(self):  # dtypes are singletons; keep them so across copy/deepcopy
        return self.name


bool_ = dtype("bool", np.bool_, _BOOL)
uint8 = dtype("uint8", np.uint8, _INT)
int8 = dtype("int8", np.int8, _INT)
int16 = dtype("int16", np.int16, _INT)
int32 = dtype("int32", np.int32, _INT)
int64 = dtype("int64", np.int64, _INT)
float16 = dtype("float16", np.float16, _FLOAT)
float32 = dtype("float32", np.float32, _FLOAT)
float64 = dtype("float64", np.float64, _FLOAT)
bfloat16 = dtype("bfloat16", _BF16, _FLOAT) if _BF16 is not None else None

ALL = [d for d in (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
       if d is not None]
_FROM_NP = {d.np: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update(half=float16, float=float32, double=float64, short=int16, int=int32,
                long=int64, bool=bool_)

_default_float = float32


def get_default_dtype() -> dtype:
    return _default_float


def set_default_dtype(d: dtype) -> None:
    """Set the dtype of float tensors made from Python floats (PyTorch's set_default_dtype)."""
    global _default_float
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: expected a floating point dtype, got {d}")
    _default_float = d


def from_numpy_dtype(npd) -> dtype:
    try:
        return _FROM_NP[npd]
    except KeyError:
        npd = np.dtype(npd)
        if npd in _FROM_NP:
            return _FROM_NP[npd]
        raise TypeError(f"ember has no dtype matching NumPy dtype {npd}; supported: "
                        f"{', '.join(d.name for d in ALL)}") from None


def cast_array(value, np_dtype) -> np.ndarray:
    """``value`` (numbers, nested lists) as an array of ``np_dtype``, converted the way a C
    cast does, as PyTorch does: ints wrap around (-1 -> 255 in uint8), floats truncate toward
    zero into integers, and too-large floats become inf. NumPy 2 raises for such Python ints.
    """
    try:
        return np.asarray(value, dtype=np_dtype)
    except OverflowError:
        pass
    with np.errstate(over="ignore", invalid="ignore"):
        a = np.asarray(value)
        if a.dtype == object:  # ints beyond int64
            a = np.asarray(value, dtype=np.float64)
        return a.astype(np_dtype)


def as_dtype(d) -> dtype:
    """Accept an ember dtype, a NumPy dtype/type, a Python type or a name."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return _default_float
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d]
    try:
        return from_numpy_dtype(np.dtype(d))
    except TypeError:
        raise TypeError(f"not a dtype: {d!r}") from None


# Pairwise promotion inside one category follows PyTorch's table (e.g. uint8+int8 -> int16,
# float16+bfloat16 -> float32), which is NumPy's except for the bfloat16 pairs.
_PROMOTE: dict = {}


def _pair(a: dtype, b: dtype) -> dtype:
    key = (a, b)
    r = _PROMOTE.get(key)
    if r is None:
        if a is b:
            r = a
        elif a.category != b.category:
            r = a if a.category > b.category else b
        elif bfloat16 is not None and bfloat16 in (a, b):
            other = b if a is bfloat16 else a
            r = float32 if other is float16 else (bfloat16 if other.itemsize <= 2 else other)
        else:
            r = _FROM_NP[np.promote_types(a.np, b.np)]
        _PROMOTE[key] = r
    return r


def promote_types(a, b) -> dtype:
    return _pair(as_dtype(a), as_dtype(b))


def result_type(*operands) -> dtype:
    """PyTorch's result_type over tensors and Python scalars.

    Three priority tiers: tensors with dims, 0-d tensors, Python numbers. A lower tier only
    matters when its category is higher than every tier above it; a Python number then takes
    the default dtype of its category (float -> default float, int -> int64).
    """
    dim_t = zero_t = None
    scalar_cat = -1
    for o in operands:
        d = getattr(o, "_data", None)
        if d is not None:
            dt = _FROM_NP[d.dtype]
            if d.ndim:
                dim_t = dt if dim_t is None else _pair(dim_t, dt)
            else:
                zero_t = dt if zero_t is None else _pair(zero_t, dt)
        elif isinstance(o, bool):
            scalar_cat = max(scalar_cat, _BOOL)
        elif isinstance(o, int):
            scalar_cat = max(scalar_cat, _INT)
        elif isinstance(o, float):
            scalar_cat = max(scalar_cat, _FLOAT)
        elif isinstance(o, np.generic):
            scalar_cat = max(scalar_cat, from_numpy_dtype(o.dtype).category)
        else:
            raise TypeError(f"result_type: unsupported operand of type {type(o).__name__}")
    r = dim_t
    if zero_t is not None:
        if r is None:
            r = zero_t
        elif zero_t.category > r.category:
            r = zero_t
    if scalar_cat >= 0:
        if r is None or scalar_cat > r.category:
            r = (bool_, int64, _default_float)[scalar_cat]
    return r


class finfo:
    """Numerical limits of a floating dtype (PyTorch's ``torch.finfo``): ``bits``, ``eps``,
    ``max``, ``min``, ``tiny`` (= ``smallest_normal``), ``resolution``; all Python floats.

        ember.finfo(ember.float32).eps   # 1.1920928955078125e-07
    """

    def __init__(self, type=None):
        d = _default_float if type is None else as_dtype(type)
        if not d.is_floating_point:
            raise TypeError(f"finfo: requires a floating point dtype, got {d}; use "
                            f"ember.iinfo for integer dtypes")
        info = _ml_dtypes.finfo(d.np) if d is bfloat16 else np.finfo(d.np)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)  # as PyTorch: 1e-06 for float32
        self.dtype = d.name

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.tiny:g}, tiny={self.tiny:g}, "
                f"dtype={self.dtype})")


class iinfo:
    """Numerical limits of an integer dtype (PyTorch's ``torch.iinfo``): ``bits``, ``max``,
    ``min``; Python ints."""

    def __init__(self, type):
        d = as_dtype(type)
        if d.category != _INT:
            raise TypeError(f"iinfo: requires an integer dtype, got {d}; use ember.finfo "
                            f"for floating point dtypes")
        info = np.iinfo(d.np)
        self.bits = int(info.bits)
        self.max = int(info.max)
        self.min = int(info.min)
        self.dtype = d.name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
