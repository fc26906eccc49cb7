"""Turning a list of samples into a batch: ``default_collate`` and ``default_convert``.

The rules are PyTorch's: tensors are stacked on a new first dimension, NumPy arrays and
NumPy scalars become tensors (uint16/uint32, which ember lacks, are widened to int32/int64),
Python ints become an int64 tensor and Python floats a float64 tensor (not the default
dtype: PyTorch does the same), strings and bytes stay a list, and dicts, namedtuples, tuples
and lists are collated field by field (tuples come back as lists, as in PyTorch).
"""
from __future__ import annotations

import collections.abc
import copy
import re
from typing import Callable

import numpy as np

from ... import dtypes as _dt
from ...tensor import Tensor

__all__ = ["default_collate", "default_convert", "collate", "default_collate_fn_map"]

# NumPy dtypes that hold strings or objects, which can't become tensors
_np_str_obj = re.compile(r"[SaUO]")
_ERR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        "found {}")


def default_convert(data):
    """Convert NumPy arrays (also inside dicts, lists, tuples) to tensors; leave the rest.

    The DataLoader applies it to single samples when automatic batching is off
    (``batch_size=None``).
    """
    if isinstance(data, Tensor):
        return data
    t = type(data)
    if t.__module__ == "numpy" and t.__name__ not in ("str_", "bytes_", "string_"):
        if isinstance(data, np.ndarray) and _np_str_obj.search(data.dtype.str):
            return data
        return _from_numpy(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({k: default_convert(data[k]) for k in data})
                return clone
            return t({k: default_convert(data[k]) for k in data})
        except TypeError:
            return {k: default_convert(data[k]) for k in data}
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return t(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return t([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


# unsigned types ember lacks are widened to a signed type that holds every value
_WIDEN = {np.dtype(np.uint16): np.int32, np.dtype(np.uint32): np.int64}


def _from_numpy(a: np.ndarray) -> Tensor:
    if a.dtype in _WIDEN:
        a = a.astype(_WIDEN[a.dtype])
    if a.dtype not in _dt._FROM_NP:
        raise TypeError(f"default_collate: NumPy dtype {a.dtype} has no ember dtype; "
                        f"supported: {', '.join(d.name for d in _dt.ALL)}")
    return Tensor._wrap(a)


def collate(batch, *, collate_fn_map: dict | None = None):
    """Collate ``batch`` (a list of samples) by the type of its first element.

    ``collate_fn_map`` maps a type (or tuple of types) to ``fn(batch, *, collate_fn_map)``;
    exact types are looked up first, then ``isinstance`` in insertion order. Containers are
    handled here and recurse with the same map.
    """
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for typ in collate_fn_map:
            if isinstance(elem, typ):
                return collate_fn_map[typ](batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, collections.abc.Mapping):
        fields = {k: collate([d[k] for d in batch], collate_fn_map=collate_fn_map)
                  for k in elem}
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update(fields)
                return clone
            return elem_type(fields)
        except TypeError:
            return fields
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(collate(list(s), collate_fn_map=collate_fn_map)
                           for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        for i, e in enumerate(batch):
            if len(e) != size:
                raise RuntimeError(f"each element in list of batch should be of equal size "
                                   f"(element 0 has {size} items, element {i} has {len(e)})")
        transposed = [collate(list(s), collate_fn_map=collate_fn_map) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return transposed  # PyTorch returns tuples as lists
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, s in enumerate(transposed):
                    clone[i] = s
                return clone
            return elem_type(transposed)
        except TypeError:
            return transposed
    raise TypeError(_ERR.format(elem_type))


def _collate_tensor(batch, *, collate_fn_map=None):
    first = batch[0]
    for i, t in enumerate(batch):
        if t.shape != first.shape:
            raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, "
                               f"but got {tuple(first.shape)} at entry 0 and {tuple(t.shape)} "
                               f"at entry {i}; pad the samples or pass a collate_fn")
    if first._dev.type != "cpu" or any(
            t.requires_grad or t._data.dtype != first._data.dtype or t._dev is not first._dev
            for t in batch):
        from ...ops.shape import stack
        return stack(batch, 0)  # differentiable, promotes dtypes, any device
    return Tensor._wrap(np.stack([t._data for t in batch]))


def _collate_ndarray(batch, *, collate_fn_map=None):
    if _np_str_obj.search(batch[0].dtype.str) is not None:
        raise TypeError(_ERR.format(batch[0].dtype))
    return collate([_from_numpy(b) for b in batch], collate_fn_map=collate_fn_map)


def _collate_np_scalar(batch, *, collate_fn_map=None):
    return _from_numpy(np.asarray(batch))


def _collate_float(batch, *, collate_fn_map=None):
    return Tensor._wrap(np.asarray(batch, dtype=np.float64))


def _collate_int(batch, *, collate_fn_map=None):
    # bools are ints in Python; a batch of bools becomes a bool tensor as in PyTorch
    if all(isinstance(b, bool) for b in batch):
        return Tensor._wrap(np.asarray(batch, dtype=np.bool_))
    return Tensor._wrap(np.asarray(batch, dtype=np.int64))


def _collate_str(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map: dict[type | tuple, Callable] = {
    Tensor: _collate_tensor,
    np.ndarray: _collate_ndarray,
    (np.bool_, np.number): _collate_np_scalar,
    float: _collate_float,
    int: _collate_int,
    str: _collate_str,
    bytes: _collate_str,
}


def default_collate(batch):
    """Stack a list of samples into a batch (PyTorch's ``default_collate``).

        default_collate([(np.zeros(2), 1), (np.ones(2), 0)])
        # [tensor([[0., 0.], [1., 1.]], dtype=ember.float64), tensor([1, 0])]
    """
    return collate(batch, collate_fn_map=default_collate_fn_map)
