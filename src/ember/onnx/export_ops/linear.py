"""ONNX rule for ``ember.ops.linear``: ``Gemm`` for 2-d inputs, ``MatMul`` + ``Add``
otherwise."""
from __future__ import annotations

from .._builder import onnx_rule


@onnx_rule("linear")
def _linear(b, node):
    x, w = node.inputs[0], node.inputs[1]
    has_bias = len(node.inputs) == 3
    src = b.folded_from(w)
    if src is not None and src.op.name == "permute" and src.inputs[0].kind == "capture":
        # x @ kernel for a stored (in, out) kernel (Keras' Dense): no transposed copy
        kernel = b.name(src.inputs[0])
        if len(x.shape) == 2:
            ins = [b.x(0), kernel] + ([b.x(2)] if has_bias else [])
            return b.op("Gemm", ins)
        out = b.op("MatMul", [b.x(0), kernel])
        return b.op("Add", [out, b.x(2)]) if has_bias else out
    if len(x.shape) == 2:
        ins = [b.x(0), b.x(1)] + ([b.x(2)] if has_bias else [])
        return b.op("Gemm", ins, transB=1)
    # Gemm is 2-d only: x @ W.T with the transpose stored (a constant weight) or computed
    wv = b.value(w)
    if wv is not None:
        label = b.label(w)
        wt = b.const(wv.T, name=f"{label}.T" if label else None)
    else:
        wt = b.transpose(b.x(1), [1, 0])
    out = b.op("MatMul", [b.x(0), wt])
    return b.op("Add", [out, b.x(2)]) if has_bias else out
