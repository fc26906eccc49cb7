"""The op registry: every primitive op is declared here once and read by everything else.

An :class:`Op` carries
- ``forward(xp, *arrays, **attrs)``: the array-level kernel on the backend namespace ``xp``;
- ``backward(node, grad)``: the gradient rule, written with ember ops so that gradients of
  gradients (``create_graph=True``) and traced backward passes come for free; it returns one
  gradient (or None) per input;
- ``onnx``: the ONNX mapping, filled in by the exporter's op table.

:func:`apply` is eager dispatch: run the kernel, wrap the result, and when gradients are
needed record a :class:`~ember.autograd.graph.Node`. The jit's tracer hooks in here too.
"""
from __future__ import annotations

import numpy as np

from .. import _state
from ..autograd.graph import Node, _creation_stack
from ..errors import shapes as _shapes
from ..tensor import Tensor

_new = object.__new__
_ndarray = np.ndarray


class Op:
    """One primitive: forward kernel, backward rule, and what backward keeps alive.

    ``saves`` lists the inputs whose *values* the backward rule reads (so in-place changes to
    them are an error), or is a function of the inputs returning that list (``mul`` reads one
    operand only when the other needs a gradient); ``saves_output`` says whether it reads the
    output's value; ``extra`` says the forward returns ``(out, extra)`` where ``extra`` is
    kept on the node (indices of a max, a dropout mask) and handed back to the caller.
    """

    __slots__ = ("name", "forward", "backward", "saves", "saves_output", "extra", "onnx",
                 "differentiable", "view", "__dict__")

    def __init__(self, name, forward, backward=None, *, saves=None, saves_output=False,
                 extra=False, view=False):
        self.name = name
        self.forward = forward
        self.backward = backward
        self.saves = saves  # None: all inputs
        self.saves_output = saves_output
        self.extra = extra
        self.view = view  # output may share memory with input 0 (reshape, transpose, slicing)
        self.onnx = None
        self.differentiable = backward is not None

    def def_backward(self, fn):
        self.backward = fn
        self.differentiable = True
        return fn

    def __repr__(self) -> str:
        return f"<ember op {self.name}>"


OPS: dict[str, Op] = {}


def register(name, *, saves=None, saves_output=False, extra=False, view=False):
    """Decorator: declare ``forward`` as op ``name``; attach its rule with ``@op.def_backward``."""
    def deco(forward):
        if name in OPS:
            raise RuntimeError(f"op '{name}' is declared twice")
        o = Op(name, forward, saves=saves, saves_output=saves_output, extra=extra, view=view)
        OPS[name] = o
        return o
    return deco


def _fail(op, inputs, attrs, exc):
    """Turn an exception from inside a kernel into one that names the op and its operands."""
    extra = ""
    if attrs:
        extra = " with " + ", ".join(f"{k}={v!r}" for k, v in attrs.items()
                                     if not isinstance(v, np.ndarray))
    msg = f"{op.name}: failed for inputs {_shapes(*inputs)}{extra}: {exc}"
    return type(exc)(msg) if isinstance(exc, (ValueError, TypeError, IndexError)) \
        else RuntimeError(msg)


def apply(op: Op, inputs: tuple, attrs: dict | None = None):
    """Run ``op`` eagerly on Tensors ``inputs``; return the output Tensor.

    For ops declared ``extra=True`` return ``(output, extra)``.
    """
    x0 = inputs[0]
    dev = x0._dev
    try:
        if len(inputs) == 1:
            out = op.forward(dev.xp, x0._data, **attrs) if attrs else op.forward(dev.xp, x0._data)
        else:
            arrays = [t._data for t in inputs]
            out = op.forward(dev.xp, *arrays, **attrs) if attrs else op.forward(dev.xp, *arrays)
    except (ValueError, TypeError, IndexError, ArithmeticError) as e:
        raise _fail(op, inputs, attrs, e) from None
    if op.extra:
        out, extra = out
    if type(out) is not _ndarray:
        out = dev.xp.asarray(out)
    t = _new(Tensor)
    t._data = out
    t._dev = dev
    if op.view and _owner(out) is _owner(x0._data):
        # a view shares memory, so it shares the version counter of what it views
        t._version = x0._version
        t._base = (x0, op, attrs, x0._version[0])  # (base, view op, attrs, version seen)
    else:
        t._version = [0]
        t._base = None
    t.grad = None
    t._hooks = None
    t.requires_grad = False
    t._node = None
    # only floating outputs carry gradients ("V" is bfloat16)
    if _state.grad_enabled and op.differentiable and out.dtype.kind in "fV":
        needs = False
        for x in inputs:
            if x._base is not None and x._version[0] != x._base[3]:
                _refresh_view(x)
            if x.requires_grad:
                needs = True
        if needs:
            t.requires_grad = True
            t._node = _record(op, inputs, attrs, out, extra if op.extra else None, t)
    if _state.tracer is not None:
        _state.tracer.record(op, inputs, attrs, t, extra if op.extra else None)
    if _state.anomaly_forward:
        _check_forward(op, inputs, out)
    if op.extra:
        return t, extra
    return t


def _refresh_view(x):
    """Re-derive a view's node from its base after the shared memory was written in place
    (through the base or another view), so gradients flow through the write — PyTorch
    regenerates a view's grad_fn the same way."""
    base, op, attrs, _ = x._base
    if base._base is not None and base._version[0] != base._base[3]:
        _refresh_view(base)
    if base.requires_grad:
        x._node = _record(op, (base,), attrs, x._data, None, x)
        x.requires_grad = True
    x._base = (base, op, attrs, x._version[0])


def _owner(a):
    b = a.base
    return a if b is None else b


def _record(op, inputs, attrs, out, extra, t):
    node = _new(Node)
    node.op = op
    node.inputs = inputs
    # Where each input's gradient goes, fixed now: a later in-place op may give the input
    # tensor a new node, but this op consumed the value it had before.
    node.edges = tuple([(x._node if x._node is not None else x) if x.requires_grad else None
                        for x in inputs])
    node.attrs = attrs
    node.out = out
    node.saved = extra
    node.hooks = None
    node.retained = None
    saves = op.saves
    if callable(saves):
        saves = saves(inputs)
    if saves is None:
        node.versions = tuple([(x._version, x._version[0]) for x in inputs])
    elif saves:
        node.versions = tuple([(inputs[i]._version, inputs[i]._version[0]) for i in saves])
    else:
        node.versions = ()
    node.out_version = (t._version, 0) if op.saves_output else None
    node.stack = _creation_stack() if _state.anomaly else None
    return node


def _check_forward(op, inputs, out):
    if out.dtype.kind in "fc" and not np.isfinite(out).all():
        raise FloatingPointError(
            f"anomaly: op '{op.name}' produced NaN/inf in forward for inputs "
            f"{_shapes(*inputs)}\n" + "".join(_creation_stack() or []))
