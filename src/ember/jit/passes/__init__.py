"""Graph passes; each is a small function ``Graph -> Graph`` (in place) with its own tests."""
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_code
from .fold import fold_constants

DEFAULT = (fold_constants, eliminate_common_subexpressions, eliminate_dead_code)


def optimize(graph, passes=DEFAULT):
    for p in passes:
        p(graph)
    return graph


__all__ = ["eliminate_dead_code", "eliminate_common_subexpressions", "fold_constants",
           "optimize", "DEFAULT"]
