"""The ONNX export rules of ember's registry ops, one file per op family (mirroring
``ember/ops/``). Importing this package fills ``OPS[name].onnx``; other subsystems add rules
for their own ops with :func:`onnx_rule` (see :mod:`ember.onnx._builder`)."""
from __future__ import annotations

from .._builder import NOT_EXPORTABLE, Emitter, not_exportable, onnx_rule, same_op
from . import (activation, arithmetic, attention, comparison, conv, dropout,  # noqa: F401
               embedding, indexing, linalg, linear, loss, normalization, pooling, reduction,
               rnn, shape, sorting, unary)

__all__ = ["onnx_rule", "not_exportable", "same_op", "Emitter", "NOT_EXPORTABLE"]
