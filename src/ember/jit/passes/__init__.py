"""Graph passes; each is a small function ``Graph -> Graph`` (in place) with its own tests."""
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .fold import fold_constants
from .fusion import fuse_elementwise
from .memory import plan_memory
from .simplify import simplify

# plan_memory must run last: it records node indices (graph.inplace) for the code generator
BASIC = (fold_constants, simplify, eliminate_common_subexpressions, eliminate_dead_code)
DEFAULT = BASIC + (plan_memory,)
# with elementwise fusion: chains of elementwise nodes become one node each
FUSED = BASIC + (fuse_elementwise, plan_memory)


def optimize(graph, passes=DEFAULT):
    for p in passes:
        p(graph)
    return graph


__all__ = ["eliminate_dead_code", "eliminate_common_subexpressions", "fold_constants",
           "fuse_elementwise", "plan_memory", "simplify", "optimize", "DEFAULT", "BASIC", "FUSED"]
