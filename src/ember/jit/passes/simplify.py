"""Algebraic simplification: drop nodes that give back their input unchanged, and merge
chains of shape ops.

- ``x * 1``, ``1 * x``, ``x / 1``, ``x + 0``, ``0 + x``, ``x - 0``, ``x ** 1``: the output is
  ``x`` when it has ``x``'s shape and dtype (so the constant neither broadcasts nor promotes);
- ``neg(neg(x))`` is ``x``; ``cast`` to the value's own dtype is ``x``;
- ``reshape`` to the value's own shape, ``permute`` by the identity, ``expand`` to its own
  shape are ``x``; ``reshape(reshape(x))`` is one ``reshape``;
  ``permute(permute(x, p), q)`` is one ``permute``.

A value is never replaced by a graph input or capture that would then become a result
itself (eager returns a new tensor there, not an alias of the argument).
"""
from __future__ import annotations

import numpy as np

# op -> (its neutral constant, the operand positions where that constant may sit)
_NEUTRAL = {
    "mul": (1.0, (0, 1)),
    "add": (0.0, (0, 1)),
    "sub": (0.0, (1,)),
    "div": (1.0, (1,)),
    "pow": (1.0, (1,)),
}


def _is_const(v, value) -> bool:
    return v.kind == "const" and v.data.size <= 64 and bool(np.all(v.data == value))


def _passthrough(node):
    """The input value the node's output equals, or None."""
    name = node.op.name
    out = node.outputs[0]
    ins = node.inputs

    def same(v):
        return v.shape == out.shape and v.dtype == out.dtype

    if name in _NEUTRAL and len(ins) == 2 and len(node.outputs) == 1 and \
            node.attrs.get("alpha", 1) == 1:
        value, positions = _NEUTRAL[name]
        for p in positions:
            other = ins[1 - p]
            if _is_const(ins[p], value) and same(other):
                return other
        return None
    if len(ins) != 1 or len(node.outputs) != 1:
        return None
    x = ins[0]
    if name in ("reshape", "expand") and same(x):
        return x
    if name == "permute" and tuple(node.attrs.get("dims", ())) == tuple(range(len(x.shape))):
        return x
    if name == "cast" and same(x):
        return x
    if name == "neg" and x.kind == "node" and x.node.op.name == "neg":
        inner = x.node.inputs[0]
        return inner if same(inner) else None
    return None


def simplify(graph):
    replace = {}
    results = {id(v) for v in graph.live_values()}
    kept = []
    for node in graph.nodes:
        node.inputs = [replace.get(id(v), v) for v in node.inputs]
        _merge_shape_chain(node)
        src = _passthrough(node)
        out = node.outputs[0]
        if src is not None and not (id(out) in results and src.kind != "node"):
            replace[id(out)] = src
            continue
        kept.append(node)
    graph.nodes = kept
    graph.replace_values(replace)
    return graph


def _merge_shape_chain(node) -> None:
    """reshape(reshape(x)) -> reshape(x); permute(permute(x, p), q) -> permute(x, p[q])."""
    name = node.op.name
    x = node.inputs[0] if node.inputs else None
    if x is None or x.kind != "node" or x.node.op.name != name or len(node.inputs) != 1:
        return
    if name == "reshape":
        node.inputs = [x.node.inputs[0]]
    elif name == "permute":
        p, q = x.node.attrs["dims"], node.attrs["dims"]
        node.inputs = [x.node.inputs[0]]
        node.attrs = dict(node.attrs, dims=tuple(p[i] for i in q))
