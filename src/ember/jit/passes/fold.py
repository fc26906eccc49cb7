"""Constant folding: a node whose inputs are all constants is computed once, at compile time."""
from __future__ import annotations

import numpy as np


def foldable(op) -> bool:
    """Whether constant inputs make ``op``'s output a constant: not for random ops, nor for
    ops declared ``fold = False`` (dequantised int8 weights stay int8 + dequantize)."""
    return not getattr(op, "random", False) and getattr(op, "fold", True)


def fold_constants(graph, xp=np):
    replace = {}
    kept = []
    for node in graph.nodes:
        node.inputs = [replace.get(id(v), v) for v in node.inputs]
        if node.inputs and all(v.kind == "const" for v in node.inputs) and foldable(node.op):
            out = node.op.forward(xp, *[v.data for v in node.inputs], **node.attrs)
            if not node.op.extra:
                outs = (out,)
            elif node.extra_tuple:
                outs = (out[0],) + tuple(out[1])
            else:
                outs = out
            for o, arr in zip(node.outputs, outs):
                c = graph.add_const(np.asarray(arr), name=o.name)
                replace[id(o)] = c
            continue
        kept.append(node)
    graph.nodes = kept
    graph.replace_values(replace)
    return graph
