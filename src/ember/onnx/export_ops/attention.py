"""ONNX rule for ``ember.ops.attention``: ``softmax(q @ k^T * scale + mask)`` spelled out
(opsets 17-21 have no attention op), with ember's safe softmax for fully masked rows."""
from __future__ import annotations

import numpy as np

from .._builder import onnx_rule


@onnx_rule("attention_probs")
def _attention_probs(b, node):
    a = node.attrs
    k = node.inputs[1]
    dt = node.outputs[0].dtype
    nd = len(k.shape)
    kt = b.transpose(b.x(1), list(range(nd - 2)) + [nd - 1, nd - 2])
    s = b.op("MatMul", [b.op("Mul", [b.x(0), b.scalar(a["scale"], dt)]), kt])
    masked = len(node.inputs) == 3 or a.get("causal")
    if len(node.inputs) == 3:
        s = b.op("Add", [s, b.x(2)])
    if a.get("causal"):
        s = b.op("Add", [s, _causal_bias(b, node, dt)])
    if not (masked and a.get("safe", True)):
        return b.op("Softmax", [s], axis=-1)
    # a row with every score -inf gives zeros, not NaN (PyTorch's SDPA): shift by a max that
    # is 0 there, and divide by a sum that is 1 there
    zero = b.scalar(0, dt)
    m = b.reduce("ReduceMax", s, [-1], True)
    m = b.op("Where", [b.op("IsInf", [m], detect_positive=0), zero, m])
    e = b.op("Exp", [b.op("Sub", [s, m])])
    z = b.reduce("ReduceSum", e, [-1], True)
    z = b.op("Where", [b.op("Equal", [z, zero]), b.scalar(1, dt), z])
    return b.op("Div", [e, z])


def _causal_bias(b, node, dt):
    """(L, S): -inf above the diagonal (top-left aligned), 0 elsewhere."""
    q, k = node.inputs[0], node.inputs[1]
    L, S = b.shape(q)[-2], b.shape(k)[-2]
    if L is not None and S is not None:
        return b.const(np.triu(np.full((L, S), -np.inf, dt), 1))
    rows = b.op("Range", [b.scalar(0, np.int64),
                          b.squeeze(b.dim(b.x(0), q, len(q.shape) - 2), [0]),
                          b.scalar(1, np.int64)])
    cols = b.op("Range", [b.scalar(0, np.int64),
                          b.squeeze(b.dim(b.x(1), k, len(k.shape) - 2), [0]),
                          b.scalar(1, np.int64)])
    above = b.op("Less", [b.unsqueeze(rows, [1]), b.unsqueeze(cols, [0])])
    return b.op("Where", [above, b.scalar(-np.inf, dt), b.scalar(0, dt)])
