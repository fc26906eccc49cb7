"""``ember.linalg`` (PyTorch's ``torch.linalg``): norms, inverse, determinant, solve.

    x = ember.linalg.solve(A, b)          # A @ x = b
    ember.linalg.vector_norm(v, ord=1)
"""
from .ops.linalg import det, inv, matmul, matrix_norm, solve, vector_norm
from .ops.linalg import linalg_cross as cross
from .ops.linalg import linalg_norm as norm

__all__ = ["cross", "det", "inv", "matmul", "matrix_norm", "norm", "solve", "vector_norm"]
