"""Custom differentiable functions (PyTorch's ``torch.autograd.Function``).

    class Exp(ember.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            y, = ctx.saved_tensors
            return grad * y

    y = Exp.apply(x)

``forward`` runs without recording; ``apply`` then records one graph node per output whose
backward rule calls the user's ``backward``. A forward with several outputs gets one node
each: each calls ``backward`` with that output's gradient and zeros for the others, which
sums to the same input gradients because a backward rule is linear in its gradients.
"""
from __future__ import annotations

import functools

from .. import _state
from ..tensor import Tensor
from .graph import Node, plain_node

__all__ = ["Function", "FunctionCtx", "once_differentiable"]


class FunctionCtx:
    """The ``ctx`` handed to ``forward`` and ``backward``: stash tensors with
    ``save_for_backward`` and anything else as attributes."""

    def __init__(self, needs_input_grad: tuple):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._saved: tuple = ()
        self._versions: tuple = ()
        self._non_differentiable: set = set()

    def save_for_backward(self, *tensors) -> None:
        self._saved = tensors
        self._versions = tuple((t._version, t._version[0]) for t in tensors
                               if isinstance(t, Tensor))

    @property
    def saved_tensors(self) -> tuple:
        for lst, v in self._versions:
            if lst[0] != v:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: a tensor saved by save_for_backward is at "
                    f"version {lst[0]}; expected version {v} instead")
        return self._saved

    def mark_non_differentiable(self, *outputs) -> None:
        self._non_differentiable.update(id(t) for t in outputs)

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors) -> None:
        raise NotImplementedError("autograd.Function: ctx.mark_dirty (in-place custom "
                                  "functions) is not supported; return a new tensor")


class Function:
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)`` (one
    gradient, or None, per ``forward`` argument); call it as ``MyFn.apply(*args)``.
    PyTorch 2's split form, ``forward(*args)`` plus ``setup_context(ctx, inputs, output)``,
    works too."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("autograd.Function: subclasses must define forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("autograd.Function: subclasses must define backward")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        split = cls.setup_context is not Function.setup_context
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            out = cls.forward(*args, **kwargs) if split else cls.forward(ctx, *args, **kwargs)
            if split:
                cls.setup_context(ctx, args, out)
        finally:
            _state.grad_enabled = prev
        if not (prev and any(needs)):
            return out
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        tensor_outs = [i for i, o in enumerate(outs) if isinstance(o, Tensor)]
        op = _op_for(cls)
        inputs = tuple(a for a in args if isinstance(a, Tensor))
        wrapped = list(outs)
        for i in tensor_outs:
            o = outs[i]
            t = Tensor._wrap(o._data, o._dev)
            if id(o) in ctx._non_differentiable or not t.is_floating_point():
                wrapped[i] = t
                continue
            t.requires_grad = True
            t._node = _record(op, inputs, args, ctx, i, [outs[j] for j in tensor_outs], t)
            wrapped[i] = t
        return wrapped[0] if single else tuple(wrapped)


def _record(op, inputs, args, ctx, index, outputs, t) -> Node:
    return plain_node(op, inputs, {"ctx": ctx, "index": index, "outputs": outputs,
                                   "arg_is_tensor": tuple(isinstance(a, Tensor) for a in args)},
                      t._data)


def _op_for(cls):
    """One Op per Function subclass, named after it, whose rule calls ``cls.backward``."""
    op = cls.__dict__.get("_ember_op")
    if op is None:
        from ..ops.registry import Op  # the registry imports autograd: import on first use
        op = Op(cls.__name__, None, functools.partial(_backward, cls))
        cls._ember_op = op
    return op


def _backward(cls, node, g):
    a = node.attrs
    ctx = a["ctx"]
    outs = a["outputs"]
    grads = []
    for j, o in enumerate(outs):
        if j == a["index"]:
            grads.append(g)
        elif ctx.materialize_grads:
            grads.append(Tensor._wrap(g._dev.xp.zeros(o._data.shape, o._data.dtype), g._dev))
        else:
            grads.append(None)
    res = cls.backward(ctx, *grads)
    res = res if isinstance(res, tuple) else (res,)
    n = len(a["arg_is_tensor"])
    if len(res) < n or any(r is not None for r in res[n:]):
        raise RuntimeError(f"{cls.__name__}.backward returned an incorrect number of "
                           f"gradients (expected {n}, one per forward argument, got "
                           f"{len(res)})")
    return tuple(r for r, is_t in zip(res, a["arg_is_tensor"]) if is_t)


def once_differentiable(fn):
    """Mark a ``backward`` as not itself differentiable: it runs without recording."""
    @functools.wraps(fn)
    def wrapper(ctx, *args):
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            return fn(ctx, *args)
        finally:
            _state.grad_enabled = prev
    return wrapper
