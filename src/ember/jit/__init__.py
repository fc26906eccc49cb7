"""``ember.jit``: trace eager code into a graph, optimise it, run generated code.

    fast = ember.jit(model)      # or @ember.jit on a function
    y = fast(x)                  # first call traces; later calls replay compiled code
    print(fast.graph)            # the IR; fast.graph.to_dot() for Graphviz, fast.code
"""
from .function import JitFunction, JitModule, jit
from .ir import Graph, Node, Value
from .symbolic import TensorSpec, symbolic
from .tracer import TraceAborted, Tracer

__all__ = ["jit", "JitFunction", "JitModule", "Graph", "Node", "Value", "Tracer",
           "TraceAborted", "TensorSpec", "symbolic"]
