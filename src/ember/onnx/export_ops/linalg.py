"""ONNX rules for ``ember.ops.linalg``: matmul, einsum, det."""
from __future__ import annotations

from .._builder import not_exportable, onnx_rule, same_op

onnx_rule("matmul")(same_op("MatMul"))
onnx_rule("linalg_det")(same_op("Det"))


@onnx_rule("einsum")
def _einsum(b, node):
    # ember spells an expanded '...' with upper-case letters; ONNX wants lower case only
    spec = node.attrs["spec"]
    letters = sorted(set(c for c in spec if c.isalpha()))
    free = iter(c for c in "abcdefghijklmnopqrstuvwxyz" if c not in letters)
    to_lower = {c: next(free) for c in letters if c.isupper()}
    spec = "".join(to_lower.get(c, c) for c in spec)
    return b.op("Einsum", [b.name(v) for v in node.inputs], equation=spec)


not_exportable("linalg_inv", "ONNX has no matrix inverse operator")
not_exportable("linalg_solve", "ONNX has no linear-system solver operator")
