"""ONNX rule for ``ember.ops.embedding``: a ``Gather`` of table rows."""
from __future__ import annotations

from .._builder import onnx_rule


@onnx_rule("embedding")
def _embedding(b, node):
    return b.op("Gather", [b.x(0), b.x(1)], axis=0)
