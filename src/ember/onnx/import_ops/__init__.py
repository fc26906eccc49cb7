"""ONNX import rules: how each ONNX op runs as ember ops, one file per family of ops.

A rule is ``fn(ctx, node, inputs) -> Tensor | list[Tensor]``: ``node`` is an
:class:`~ember.onnx.load.ImportNode` (attributes already Python values), ``inputs`` one Tensor
per node input (None where the optional input is absent), ``ctx`` an
:class:`~ember.onnx.load.ImportContext` (opset, concrete values of shape inputs, constants).
Rules use ember's public ops and registry primitives only, so autograd and ember.jit see every
step. ``check(node, opset)`` optionally returns why a node can't be imported (an attribute
value ember doesn't implement), so that load fails at once with every reason listed.
"""
from __future__ import annotations

from collections.abc import Callable


class Rule:
    __slots__ = ("op_type", "domain", "fn", "check", "static_output", "random", "static_inputs")

    def __init__(self, op_type: str, domain: str, fn: Callable, check, static_output: bool,
                 random: bool, static_inputs):
        self.op_type = op_type
        self.domain = domain
        self.fn = fn
        self.check = check
        self.static_output = static_output  # output depends on shapes only (Shape, Size)
        self.random = random                # output differs between calls (RandomNormal)
        # (node, subgraph) -> the subgraph inputs the rule feeds with concrete values
        self.static_inputs = static_inputs or (lambda node, graph: [])


RULES: dict = {}


def rule(*op_types: str, domain: str = "", check=None, static_output: bool = False,
         random: bool = False, static_inputs=None):
    """Decorator: register ``fn`` as the import rule of ``op_types``."""
    def deco(fn):
        for op in op_types:
            if (domain, op) in RULES:
                raise RuntimeError(f"ONNX import rule for {op} is declared twice")
            RULES[(domain, op)] = Rule(op, domain, fn, check, static_output, random,
                                       static_inputs)
        return fn
    return deco


def supported_ops(domain: str = "") -> list:
    """The ONNX op types ember imports, sorted."""
    return sorted(op for d, op in RULES if d == domain)


from . import (  # noqa: E402,F401  (each family registers its rules on import)
    activation, attention, control, linalg, logic, loss, math, nn, quantization, reduction,
    rnn, shape, tensor, vision)
