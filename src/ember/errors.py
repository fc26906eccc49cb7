"""Error helpers: every message names the op, the shapes and dtypes, and what was expected."""
from __future__ import annotations


def describe(x) -> str:
    """A short 'shape dtype' description of a tensor, array or Python value for messages."""
    data = getattr(x, "_data", x)
    shape = getattr(data, "shape", None)
    if shape is None:
        return f"{type(x).__name__} {x!r}"
    dt = getattr(x, "dtype", data.dtype)
    return f"{tuple(shape)} {getattr(dt, 'name', dt)}"


def shapes(*xs) -> str:
    return ", ".join(describe(x) for x in xs)


def check_dim(op: str, dim, ndim: int) -> int:
    """Wrap a negative dim and check its range the way PyTorch words it."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        if hasattr(dim, "__index__"):
            dim = int(dim)
        else:
            raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    lo, hi = (-ndim, ndim - 1) if ndim else (-1, 0)
    if not lo <= dim <= hi:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of "
                         f"[{lo}, {hi}], but got {dim}) for a tensor with {ndim} dims")
    return dim % ndim if ndim else 0


def check_dims(op: str, dims, ndim: int) -> tuple:
    if isinstance(dims, int):
        dims = (dims,)
    out = tuple(check_dim(op, d, ndim) for d in dims)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: dim {tuple(dims)} appears multiple times in the list of dims")
    return out
