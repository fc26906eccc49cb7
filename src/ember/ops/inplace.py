"""In-place variants (``add_``, ``mul_``, ``fill_``, ``copy_``, ``x[k] = v``...).

Without autograd an in-place op writes straight into the tensor's memory. With autograd the
op runs out of place on a stand-in for the old tensor (same values and graph position, its
own version counter, its values copied away only if the op saved them), the result is
written into the tensor's memory, and the tensor takes over the result's graph node; its
version counter goes up, so a backward rule that saved the old values finds out and raises.
The graph never loops through the overwritten tensor (``y[0] = y[1] + 1``) because each node
records where its inputs' gradients go when it is made. An in-place change of a view also
rewrites the graph of the tensor it views (PyTorch's "rebase"); a view whose base changed
later re-derives its node from the base when next used (``ops.registry._refresh_view``).
"""
from __future__ import annotations

import numpy as np

from .. import _state
from .. import dtypes as _dt
from ..tensor import Tensor


def _shallow(t: Tensor) -> Tensor:
    s = Tensor._wrap(t._data, t._dev)
    s._node = t._node
    s.requires_grad = t.requires_grad
    s._version = t._version
    s._base = t._base
    return s


class _Watched(list):
    """A private version counter that notes whether a graph node saved it (read its value)."""

    __slots__ = ("saved",)

    def __getitem__(self, i):
        self.saved = True
        return list.__getitem__(self, i)


def _old_value(self: Tensor, root, chain) -> tuple:
    """A stand-in for ``self`` before the write: same values and graph position.

    It has its own version counter, so an op that saves it (``sin_`` needs the old values)
    is not invalidated by the write; if one did save it, the caller copies the values away
    before overwriting them (PyTorch saves a clone of the original too). A view is derived
    afresh from its root, so its graph does not loop through the root's node that the write
    is about to replace.
    """
    counter = _Watched([0])
    counter.saved = False
    if root is None:
        old = _shallow(self)
        old._version = counter
        return old, counter
    frozen = _shallow(root)
    frozen._version = counter
    old = frozen
    from .registry import apply
    for op, attrs in reversed(chain):
        old = apply(op, (old,), attrs)
    return old, counter


def _check_cast(op, self, result_dtype):
    sd = self._data.dtype
    if result_dtype == sd:
        return
    rc = _dt.from_numpy_dtype(result_dtype).category
    if rc > _dt.from_numpy_dtype(sd).category:
        raise RuntimeError(f"{op}: result type {_dt.from_numpy_dtype(result_dtype).name} can't "
                           f"be cast to the desired output type {self.dtype.name} of the "
                           f"in-place tensor (shape {tuple(self.shape)})")


def _root(t: Tensor):
    chain = []
    while t._base is not None:
        base, op, attrs = t._base[:3]
        chain.append((op, attrs))
        t = base
    return t, chain


def inplace(self: Tensor, compute, *, fast=None, op: str = "inplace", others=()):
    """Run ``compute(old) -> Tensor`` and make ``self`` hold the result, in place.

    ``fast()`` (optional) does the same directly on arrays when no graph is needed.
    """
    tracking = _state.grad_enabled and (self.requires_grad or any(
        isinstance(o, Tensor) and o.requires_grad for o in others))
    root = None
    if tracking:
        if self._node is None and self.requires_grad:
            raise RuntimeError(f"{op}: a leaf Variable that requires grad (shape "
                               f"{tuple(self.shape)}) is being used in an in-place operation; "
                               f"wrap it in ember.no_grad() or clone it first")
        if self._base is not None:
            root, chain = _root(self)
            if root._node is None and root.requires_grad:
                raise RuntimeError(f"{op}: a view of a leaf Variable that requires grad is "
                                   f"being used in an in-place operation")
    tracer = _state.tracer
    if not tracking and fast is not None and self._data.flags.writeable and tracer is None:
        fast()
        self._version[0] += 1
        return self
    if tracking:
        old, counter = _old_value(self, root, chain if root is not None else None)
        result = compute(old)
        if counter.saved:
            old._data = old._data.copy()
    else:
        from ..autograd.grad_mode import no_grad
        with no_grad():
            result = compute(self)
    _check_cast(op, self, result._data.dtype)
    if result.shape != self.shape:
        raise RuntimeError(f"{op}: output with shape {tuple(self.shape)} doesn't match the "
                           f"broadcast shape {tuple(result.shape)}")
    if not self._data.flags.writeable:
        raise RuntimeError(f"{op}: unsupported operation: the tensor (shape "
                           f"{tuple(self.shape)}) is an expanded view whose elements share "
                           f"memory; clone() it before writing in place")
    if result._data is not self._data:
        np.copyto(self._data, result._data, casting="unsafe")
    self._version[0] += 1
    if tracer is not None:  # the graph writes the result back into self after each call
        tracer.inplace(self, result)
    if tracking:
        if result._data.dtype != self._data.dtype:
            result = result.to(self.dtype)
        node = result._node
        if node is not None and node.out_version is not None and node.out is result._data:
            # the op saved its output, which now lives in self: a later in-place change of
            # self must invalidate it (PyTorch raises for y.exp_(); y.exp_(); backward)
            node.out = self._data
            node.out_version = (self._version, self._version[0])
        self._node = node
        self.requires_grad = result.requires_grad
        if root is not None:
            _rebase(root, chain, self)
    return self


def region(root: Tensor, chain) -> np.ndarray:
    """The flat indices into ``root`` of the elements a view covers, in the view's order
    (found by replaying the view ops ``chain`` on an index array)."""
    idx = np.arange(root._data.size).reshape(root.shape)
    for op, attrs in reversed(chain):
        idx = op.forward(np, idx, **attrs) if attrs else op.forward(np, idx)
    return np.asarray(idx).reshape(-1)


def root_of(t: Tensor):
    """The tensor owning ``t``'s memory, and the view ops (last first) leading to ``t``."""
    return _root(t)


def _rebase(root: Tensor, chain, view: Tensor) -> None:
    """After ``view`` changed in place, give ``root`` a node that writes the view's new value
    into the region it covers (found by replaying the view ops on an index array)."""
    from .indexing import _index_put
    from .registry import apply
    old = _shallow(root)
    # a frozen alias of the view: a later in-place change of the view must not rewrite
    # this node's input
    new_view = _shallow(view)
    new_view._base = None
    flat_key = (region(root, chain),)
    new = apply(_index_put, (old.reshape(-1), new_view.reshape(-1)), {"key": flat_key})
    new = new.reshape(root.shape)
    root._node = new._node
    root.requires_grad = True
