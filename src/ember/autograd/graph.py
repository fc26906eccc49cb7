"""Reverse-mode autodiff: the graph node and the engine that walks it.

Each op that needs gradients records a :class:`Node` beside its output: the op, its input
tensors and whatever the backward rule reads. ``backward`` sorts the nodes reachable from the
roots topologically and runs each op's backward rule once, summing gradients where a tensor
feeds several ops. Leaf tensors (made by the user, ``requires_grad=True``) collect theirs in
``.grad``. The backward rules are ember ops, so with ``create_graph=True`` the backward pass
itself is recorded and can be differentiated again.
"""
from __future__ import annotations

import os
import traceback

from .. import _state

_EMBER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Node:
    """The record of one op application in the graph (PyTorch's ``grad_fn``)."""

    __slots__ = ("op", "inputs", "edges", "attrs", "out", "saved", "versions", "out_version",
                 "hooks", "retained", "stack", "__weakref__")

    def name(self) -> str:
        return f"{self.op.name}_backward"

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    def output(self):
        """The op's output as a Tensor attached to this node (for rules that reuse it)."""
        from ..tensor import Tensor
        t = Tensor._wrap(self.out, self.inputs[0]._dev)
        t.requires_grad = True
        t._node = self
        return t

    @property
    def next_functions(self):
        return tuple((e if isinstance(e, Node) else None, 0) for e in self.edges
                     if e is not None)


def plain_node(op, inputs, attrs, out) -> Node:
    """A node for ``out`` whose rule keeps what it needs in ``attrs`` — no saved values or
    version checks (custom ``autograd.Function`` outputs, compiled ``ember.jit`` calls)."""
    node = object.__new__(Node)
    node.op = op
    node.inputs = tuple(inputs)
    node.edges = tuple((x._node if x._node is not None else x) if x.requires_grad else None
                       for x in node.inputs)
    node.attrs = attrs
    node.out = out
    node.saved = None
    node.versions = ()
    node.out_version = None
    node.hooks = None
    node.retained = None
    node.stack = None
    return node


def _creation_stack():
    """The user's part of the current call stack, for anomaly reports and jit error locations."""
    frames = traceback.extract_stack()[:-2]
    user = [f for f in frames if not f.filename.startswith(_EMBER_DIR)]
    return traceback.format_list(user[-6:]) if user else traceback.format_list(frames[-6:])


def _key(t):
    return t._node if t._node is not None else t


def _check_versions(node):
    for lst, v in node.versions:
        if lst[0] != v:
            _raise_modified(node, v, lst[0])
    if node.out_version is not None:
        lst, v = node.out_version
        if lst[0] != v:
            _raise_modified(node, v, lst[0])


def _raise_modified(node, expected, got):
    raise RuntimeError(
        f"one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: a tensor used by {node.name()} is at version {got}; expected "
        f"version {expected} instead. Use .clone() before the in-place change, or do it "
        f"out of place." + _where(node))


def _where(node) -> str:
    if node.stack:
        return "\nThe op was created at:\n" + "".join(node.stack)
    return ""


def _freed_error(node):
    return RuntimeError(
        "Trying to backward through the graph a second time (or directly access saved "
        f"tensors after they have already been freed) at {node.name()}. Specify "
        "retain_graph=True when calling backward or autograd.grad the first time.")


def _dependencies(keys):
    """How many gradients each node or leaf will receive (Kahn's algorithm's in-degrees)."""
    deps = {}
    stack = list(keys)
    seen = {id(k) for k in keys}
    while stack:
        k = stack.pop()
        if type(k) is not Node:
            continue
        if k.inputs is None:
            raise _freed_error(k)
        for kk in k.edges:
            if kk is not None:
                i = id(kk)
                deps[i] = deps.get(i, 0) + 1
                if i not in seen:
                    seen.add(i)
                    stack.append(kk)
    return deps


def run_backward(roots, root_grads, *, retain_graph=False, create_graph=False, inputs=None,
                 accumulate=True):
    """Backpropagate ``root_grads`` from ``roots``.

    With ``accumulate`` add into leaves' ``.grad``; otherwise return the gradients of
    ``inputs`` (a list of tensors) for ``autograd.grad``.
    """
    keys = [_key(r) for r in roots]
    grads: dict = {}
    for k, g in zip(keys, root_grads):
        grads[id(k)] = grads[id(k)] + g if id(k) in grads else g
    deps = _dependencies(keys)
    if len(keys) == 1:
        ready = keys
    else:
        ready = [k for k in {id(k): k for k in keys}.values() if deps.get(id(k), 0) == 0]
    handed = {id(_owner(g._data)) for g in root_grads}  # arrays a leaf must not alias
    want = None
    if inputs is not None:
        want = {id(_key(t)): i for i, t in enumerate(inputs)}
        results = [None] * len(inputs)
    anomaly = _state.anomaly
    prev = _state.grad_enabled
    _state.grad_enabled = create_graph
    try:
        while ready:
            k = ready.pop()
            g = grads.pop(id(k), None)
            if type(k) is not Node:  # a leaf
                if g is None:
                    continue
                if k._hooks:
                    for h in list(k._hooks.values()):
                        r = h(g)
                        if r is not None:
                            g = r
                if want is not None:
                    if id(k) in want:
                        results[want[id(k)]] = g
                    continue
                if accumulate:
                    if _state.tracer is not None:
                        _state.tracer.note_grad_use(k)
                    if create_graph:
                        k.grad = g if k.grad is None else k.grad + g
                    elif k.grad is None:
                        # a leaf's .grad is its own: copy a gradient array another leaf got too
                        owner = _owner(g._data)
                        k.grad = g.clone() if id(owner) in handed or not \
                            g._data.flags.writeable else g.detach()
                        handed.add(id(owner))
                    else:
                        acc = k.grad._data
                        if acc.shape == g._data.shape and acc.dtype == g._data.dtype and \
                                acc.flags.writeable and _state.tracer is None:
                            acc += g._data
                            k.grad._version[0] += 1
                        else:
                            k.grad.add_(g)
                continue
            node = k
            in_grads = None
            if g is not None:
                if node.hooks:
                    for h in list(node.hooks.values()):
                        r = h(g)
                        if r is not None:
                            g = r
                if node.retained is not None:
                    t = node.retained()
                    if t is not None:
                        t.grad = g if create_graph else g.detach()
                if want is not None and id(node) in want:
                    results[want[id(node)]] = g
                if node.versions or node.out_version is not None:
                    _check_versions(node)
                in_grads = node.op.backward(node, g)
                if anomaly:
                    _check_backward(node, in_grads)
            for i, kk in enumerate(node.edges):
                if kk is None:
                    continue
                x = node.inputs[i]
                kid = id(kk)
                gi = in_grads[i] if in_grads is not None else None
                if gi is not None:
                    if gi._data.shape != x._data.shape:
                        raise RuntimeError(
                            f"{node.name()}: backward rule returned a gradient of shape "
                            f"{tuple(gi.shape)} for an input of shape {tuple(x.shape)}")
                    prev_g = grads.get(kid)
                    grads[kid] = gi if prev_g is None else prev_g + gi
                n = deps[kid] - 1
                deps[kid] = n
                if n == 0:
                    ready.append(kk)
            if not retain_graph:
                node.inputs = None
                node.out = None
                node.saved = None
    finally:
        _state.grad_enabled = prev
    if want is not None:
        return results
    return None


def _owner(a):
    return a.base if a.base is not None else a


def _check_backward(node, in_grads):
    import numpy as np
    for i, gi in enumerate(in_grads):
        if gi is None:
            continue
        d = gi._data
        if d.dtype.kind in "fc" and not np.isfinite(d).all():
            raise FloatingPointError(
                f"anomaly: function '{node.name()}' returned NaN/inf values in its output "
                f"{i} (gradient of shape {tuple(d.shape)})." + _where(node))
