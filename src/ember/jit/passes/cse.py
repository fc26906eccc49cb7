"""Common-subexpression elimination: one node for each (op, inputs, attrs) computed twice."""
from __future__ import annotations

import numpy as np


def _key(node):
    try:
        attrs = tuple(sorted((k, _hashable(v)) for k, v in node.attrs.items()))
    except TypeError:
        return None
    return (node.op.name, tuple(id(v) for v in node.inputs), attrs)


def _hashable(v):
    if isinstance(v, np.ndarray):
        return ("array", v.shape, v.dtype.str, v.tobytes())
    if isinstance(v, (list, tuple)):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, slice):
        return ("slice", v.start, v.stop, v.step)
    hash(v)
    return v


def eliminate_common_subexpressions(graph):
    seen = {}
    replace = {}
    kept = []
    for node in graph.nodes:
        node.inputs = [replace.get(id(v), v) for v in node.inputs]
        key = None if getattr(node.op, "random", False) else _key(node)
        if key is not None and key in seen:
            for old, new in zip(node.outputs, seen[key].outputs):
                replace[id(old)] = new
            continue
        if key is not None:
            seen[key] = node
        kept.append(node)
    graph.nodes = kept
    graph.replace_values(replace)
    return graph
