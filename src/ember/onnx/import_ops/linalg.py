"""Products: Gemm, MatMul, Einsum, Det."""
from __future__ import annotations

from ... import dtypes as D
from ...ops import arithmetic as A
from ...ops import linalg as L
from ...ops import shape as S
from ...ops.linear import linear
from . import rule
from .math import same_dtype


def matmul(a, b):
    """``a @ b`` in ``a``'s dtype (ember's matmul widens bfloat16 to float32)."""
    return same_dtype(L.matmul(a, b), a)


@rule("Gemm")
def _gemm(ctx, node, ins):
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    trans_a, trans_b = node.attr("transA", 0), node.attr("transB", 0)
    for name, t in (("A", a), ("B", b)):
        if t.ndim != 2:
            raise ctx.error(f"{name} must be a matrix, got shape {tuple(t.shape)}")
    if trans_a:
        a = S.transpose(a, 0, 1)
    if trans_b and alpha == 1.0 and beta == 1.0 and a._data.dtype.kind == "f" and (
            c is None or c.ndim == 1 and c.shape[0] == b.shape[0]):
        return linear(a, b, c)  # PyTorch's Linear, exported: one fused op
    if trans_b:
        b = S.transpose(b, 0, 1)
    if a.shape[1] != b.shape[0]:
        raise ctx.error(f"inner sizes differ: A' {tuple(a.shape)}, B' {tuple(b.shape)} "
                        f"(transA={trans_a}, transB={trans_b})")
    y = matmul(a, b)
    if alpha != 1.0:
        y = same_dtype(A.mul(y, alpha), y)
    if c is not None and beta != 0.0:
        y = A.add(y, same_dtype(A.mul(c, beta), c) if beta != 1.0 else c)
    return y


@rule("MatMul")
def _matmul(ctx, node, ins):
    return matmul(ins[0], ins[1])


@rule("Einsum")
def _einsum(ctx, node, ins):
    eq = node.attr("equation").replace(" ", "")
    ts = list(ins)
    if ts[0].dtype == D.bfloat16:  # NumPy's einsum has no bfloat16 loops: run in float32
        ts = [A.cast(t, D.float32) for t in ts]
    return same_dtype(L.einsum(eq, *ts), ins[0])


@rule("Det")
def _det(ctx, node, ins):
    return L.det(ins[0])
