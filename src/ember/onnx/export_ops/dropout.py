"""ONNX rules for ``ember.ops.dropout``. In eval mode dropout is not in the graph at all; a
training-mode graph draws random masks, which an exported inference model must not do."""
from __future__ import annotations

from .._builder import onnx_rule


@onnx_rule("dropout_mask")
def _dropout_mask(b, node):
    b.unsupported("dropout in training mode draws a random mask at every call; export the "
                  "model in eval mode (training='eval', the default)")


@onnx_rule("dropout")
def _dropout(b, node):
    # a mask that is a constant of the graph (the mask op itself refuses above)
    scale = b.scalar(node.attrs["scale"], node.outputs[0].dtype)
    return b.op("Mul", [b.op("Mul", [b.x(0), b.x(1)]), scale])
