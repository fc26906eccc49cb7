"""ember's ops: the registry and every op family, one module per family."""
from . import (activation, arithmetic, comparison, creation, indexing, linalg, random,
               reduction, shape, sorting, unary)
from .registry import OPS, Op, apply, register

__all__ = ["OPS", "Op", "apply", "register", "activation", "arithmetic", "comparison",
           "creation", "indexing", "linalg", "random", "reduction", "shape", "sorting", "unary"]
