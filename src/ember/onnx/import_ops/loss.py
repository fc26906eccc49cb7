"""Training losses that exported training graphs contain: NegativeLogLikelihoodLoss and
SoftmaxCrossEntropyLoss (class dim 1, optional per-class weights, ignore_index, reduction
none/sum/mean; 'mean' divides by the summed weights of the counted targets)."""
from __future__ import annotations

from ... import dtypes as D
from ... import ops
from ...ops import activation as Act
from ...ops import arithmetic as A
from ...ops import comparison as C
from ...ops import indexing as I
from ...ops import reduction as R
from ...ops import shape as S
from . import rule
from .math import same_dtype
from .shape import _gather_rows


def _reduction_check(node, opset):
    red = node.attr("reduction", "mean")
    return None if red in ("none", "sum", "mean") else f"reduction={red!r}"


def _nll(ctx, node, logp, target, weight):
    if logp.ndim < 2:
        raise ctx.error(f"expected input of shape (N, C, ...), got {tuple(logp.shape)}")
    if tuple(target.shape) != (logp.shape[0],) + tuple(logp.shape[2:]):
        raise ctx.error(f"target shape {tuple(target.shape)} doesn't match input "
                        f"{tuple(logp.shape)} (expected (N, d1, ...))")
    t = A.cast(target, D.int64)
    ignore = node.attr("ignore_index")
    keep = C.ne(t, ignore) if ignore is not None else None
    if keep is not None:
        t = C.where(keep, t, ops.creation.zeros_like(t))  # any valid class; weighted 0 below
    picked = S.squeeze(I.gather(logp, 1, S.unsqueeze(t, 1)), 1)
    w = _gather_rows(ctx, weight, 0, t) if weight is not None else \
        ops.creation.ones_like(picked)
    if keep is not None:
        w = C.where(keep, w, ops.creation.zeros_like(w))
    loss = A.mul(A.neg(picked), w)
    red = node.attr("reduction", "mean")
    if red == "sum":
        loss = R.sum(loss)
    elif red == "mean":
        loss = A.div(R.sum(loss), R.sum(w))
    return same_dtype(loss, logp)


@rule("NegativeLogLikelihoodLoss", check=_reduction_check)
def _nll_loss(ctx, node, ins):
    return _nll(ctx, node, ins[0], ins[1], ins[2] if len(ins) > 2 else None)


@rule("SoftmaxCrossEntropyLoss", check=_reduction_check)
def _softmax_cross_entropy(ctx, node, ins):
    scores, labels = ins[0], ins[1]
    logp = Act.log_softmax(scores, 1)
    loss = _nll(ctx, node, logp, labels, ins[2] if len(ins) > 2 else None)
    return [loss, logp]
