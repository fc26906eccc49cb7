"""ONNX rules for ``ember.ops.loss``: cross_entropy (class indices or probabilities, class
weights, ignore_index, label smoothing), nll_loss and binary_cross_entropy, written out from
their definitions (ONNX's SoftmaxCrossEntropyLoss has no label smoothing)."""
from __future__ import annotations

import numpy as np

from .._builder import not_exportable, onnx_rule


def _reduce(b, loss, reduction, denom=None):
    if reduction == "none":
        return loss
    total = b.reduce("ReduceSum", loss, None, False)
    if reduction == "sum":
        return total
    if denom is None:
        return b.reduce("ReduceMean", loss, None, False)
    return b.op("Div", [total, denom])


def _class_terms(b, node, logp, weight):
    """(weight of each element's target, valid mask as float, -log p of the target)."""
    a = node.attrs
    dt = node.inputs[0].dtype
    target = b.x(1)
    if node.inputs[1].dtype != np.int64:
        target = b.cast(target, np.int64)
    valid = b.op("Not", [b.op("Equal", [target, b.scalar(a.get("ignore_index", -100),
                                                          np.int64)])])
    tc = b.op("Where", [valid, target, b.scalar(0, np.int64)])
    picked = b.squeeze(b.op("GatherElements", [logp, b.unsqueeze(tc, [1])], axis=1), [1])
    validf = b.cast(valid, dt)
    wt = validf if weight is None else b.op("Mul", [b.op("Gather", [weight, tc], axis=0),
                                                    validf])
    return wt, validf, b.op("Neg", [picked])


def _channel(b, node, weight):
    """The class weights shaped to broadcast over (N, C, d...)."""
    nd = len(node.inputs[0].shape)
    return b.op("Reshape", [weight, b.ints([1, -1] + [1] * (nd - 2))])


@onnx_rule("cross_entropy")
def _cross_entropy(b, node):
    a = node.attrs
    x = node.inputs[0]
    dt = x.dtype
    c = x.shape[1]
    eps = a.get("label_smoothing", 0.0)
    weight = b.x(2) if len(node.inputs) > 2 else None
    logp = b.op("LogSoftmax", [b.x(0)], axis=1)
    if a.get("probs"):
        q = b.x(1)
        if eps:
            q = b.op("Add", [b.op("Mul", [q, b.scalar(1 - eps, dt)]), b.scalar(eps / c, dt)])
        if weight is not None:
            q = b.op("Mul", [q, _channel(b, node, weight)])
        loss = b.op("Neg", [b.reduce("ReduceSum", b.op("Mul", [q, logp]), [1], False)])
        return [_reduce(b, loss, a["reduction"]), None]
    wt, validf, nll = _class_terms(b, node, logp, weight)
    loss = b.op("Mul", [wt, nll])
    if eps:
        w = logp if weight is None else b.op("Mul", [logp, _channel(b, node, weight)])
        smooth = b.op("Mul", [b.op("Neg", [b.reduce("ReduceSum", w, [1], False)]), validf])
        loss = b.op("Add", [b.op("Mul", [loss, b.scalar(1 - eps, dt)]),
                            b.op("Mul", [smooth, b.scalar(eps / c, dt)])])
    denom = b.reduce("ReduceSum", wt, None, False)
    return [_reduce(b, loss, a["reduction"], denom), None]


@onnx_rule("nll_loss")
def _nll_loss(b, node):
    a = node.attrs
    weight = b.x(2) if len(node.inputs) > 2 else None
    wt, _, nll = _class_terms(b, node, b.x(0), weight)
    loss = b.op("Mul", [wt, nll])
    return _reduce(b, loss, a["reduction"], b.reduce("ReduceSum", wt, None, False))


@onnx_rule("binary_cross_entropy")
def _binary_cross_entropy(b, node):
    x, y = b.x(0), b.x(1)
    dt = node.inputs[0].dtype
    one, floor = b.scalar(1, dt), b.scalar(-100, dt)
    # each log clamped at -100, as PyTorch
    lx = b.op("Max", [b.op("Log", [x]), floor])
    l1x = b.op("Max", [b.op("Log", [b.op("Sub", [one, x])]), floor])
    total = b.op("Add", [b.op("Mul", [y, lx]), b.op("Mul", [b.op("Sub", [one, y]), l1x])])
    return b.op("Neg", [total])


not_exportable("ctc_loss", "ONNX has no CTC loss operator (a dynamic-programming recursion "
                           "over the alignment lattice)")
