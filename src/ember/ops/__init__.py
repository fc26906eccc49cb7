"""ember's ops: the registry and every op family, one module per family."""
from . import (activation, arithmetic, comparison, creation, indexing, linalg, random,
               reduction, shape, sorting, unary)
from . import (attention, conv, dropout, embedding, linear, loss, normalization,  # noqa: F401
               pooling, rnn)
from .registry import OPS, Op, apply, register

__all__ = ["OPS", "Op", "apply", "register", "activation", "arithmetic", "attention",
           "comparison", "conv", "creation", "dropout", "embedding", "indexing", "linalg",
           "linear", "loss", "normalization", "pooling", "random", "reduction", "rnn", "shape",
           "sorting", "unary"]
