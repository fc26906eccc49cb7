"""Matrix products: matmul (batch broadcasting), mm, bmm, mv, dot, outer, einsum."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .promotion import operands, sum_to
from .registry import apply, register


def _low_precision(xp, fn, *arrays):
    """bfloat16 products: accumulate in float32 and round the result back, as PyTorch does
    (NumPy has no bfloat16 kernels: its matmul returns float32, its einsum refuses)."""
    dt = arrays[0].dtype
    return fn(*[a.astype(xp.float32) for a in arrays]).astype(dt)


@register("matmul")
def _matmul(xp, a, b):
    if a.dtype.kind == "V":
        return _low_precision(xp, xp.matmul, a, b)
    return xp.matmul(a, b)


@_matmul.def_backward
def _(node, g):
    a, b = node.inputs
    ga = gb = None
    if a.ndim == 1 and b.ndim == 1:            # dot product
        return (g * b if a.requires_grad else None, g * a if b.requires_grad else None)
    a2 = a.unsqueeze(0) if a.ndim == 1 else a  # (k,) @ (..., k, n) is (1, k) @ ... squeezed
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = g2.unsqueeze(-2)
    if b.ndim == 1:
        g2 = g2.unsqueeze(-1)
    if a.requires_grad:
        ga = sum_to(matmul(g2, b2.mT), a2.shape).reshape(a.shape)
    if b.requires_grad:
        gb = sum_to(matmul(a2.mT, g2), b2.shape).reshape(b.shape)
    return ga, gb


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with NumPy/PyTorch semantics for 1-d operands and batch broadcasting."""
    try:  # fast path: two matrices of one float dtype
        ad, bd = input._data, other._data
        if ad.ndim == 2 and bd.ndim == 2 and ad.dtype is bd.dtype and ad.shape[1] == \
                bd.shape[0] and ad.dtype.kind == "f" and input._dev is other._dev:
            return apply(_matmul, (input, other))
    except AttributeError:
        pass
    a, b = operands("matmul", input, other)
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                           f"{tuple(a.shape)} and {tuple(b.shape)}")
    ka = a.shape[-1]
    kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                         f"multiplied ({ka} != {kb})")
    if a.ndim > 2 and b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions {tuple(a.shape[:-2])} and "
                             f"{tuple(b.shape[:-2])} of shapes {tuple(a.shape)} and "
                             f"{tuple(b.shape)} cannot be broadcast") from None
    if a._data.dtype.kind == "b":
        raise TypeError(f"matmul: not implemented for bool tensors (shapes {tuple(a.shape)}, "
                        f"{tuple(b.shape)}); cast to an integer or float dtype")
    return apply(_matmul, (a, b))


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"mm: expected 2-d tensors, got shapes {tuple(input.shape)} and "
                           f"{tuple(mat2.shape)}")
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError(f"bmm: expected 3-d tensors, got shapes {tuple(input.shape)} and "
                           f"{tuple(mat2.shape)}")
    if input.shape[0] != mat2.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: {tuple(input.shape)} and "
                           f"{tuple(mat2.shape)}")
    return matmul(input, mat2)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"mv: expected a matrix and a vector, got shapes "
                           f"{tuple(input.shape)} and {tuple(vec.shape)}")
    return matmul(input, vec)


def dot(input: Tensor, other: Tensor) -> Tensor:
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"dot: 1D tensors expected, but got {input.ndim}D and "
                           f"{other.ndim}D tensors")
    if input.shape != other.shape:
        raise RuntimeError(f"dot: inconsistent tensor size, expected tensor {tuple(input.shape)}"
                           f" and src {tuple(other.shape)} to have the same number of elements")
    return matmul(input, other)


inner = dot


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


ger = outer


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)`` for matrices (``input`` broadcasts)."""
    return _scaled_sum(input, mm(mat1, mat2), beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * bmm(batch1, batch2)`` (``input`` broadcasts)."""
    return _scaled_sum(input, bmm(batch1, batch2), beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat @ vec)``."""
    return _scaled_sum(input, mv(mat, vec), beta, alpha)


def _scaled_sum(input, prod, beta, alpha):
    prod = prod if alpha == 1 else prod * alpha
    if beta == 0:  # PyTorch ignores input's values then (NaN and inf too), not its shape
        return prod + input.new_zeros(input.shape)
    return prod + (input if beta == 1 else input * beta)


def cross(input: Tensor, other: Tensor, dim=None) -> Tensor:
    """Cross product of 3-vectors along ``dim`` (default: the first dim of size 3, as
    ``torch.cross``; ``ember.linalg.cross`` defaults to the last)."""
    a, b = operands("cross", input, other)
    shape = np.broadcast_shapes(a.shape, b.shape)
    if dim is None:
        dim = next((i for i, s in enumerate(shape) if s == 3), None)
        if dim is None:
            raise RuntimeError(f"cross: no dimension of size 3 in shapes {tuple(a.shape)} and "
                               f"{tuple(b.shape)}")
    d = dim % len(shape) if shape else 0
    if not shape or shape[d] != 3:
        raise RuntimeError(f"cross: inputs need size 3 at dim {dim}, got shapes "
                           f"{tuple(a.shape)} and {tuple(b.shape)}")
    a, b = a.expand(shape), b.expand(shape)
    a1, a2, a3 = a.unbind(d)
    b1, b2, b3 = b.unbind(d)
    from .shape import stack
    return stack([a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1], d)


def linalg_cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """``ember.linalg.cross``: the cross product along ``dim`` (the last by default)."""
    return cross(input, other, dim)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode=None) -> Tensor:
    """Pairwise p-norm distances between the rows of ``x1`` (..., P, M) and ``x2``
    (..., R, M): a (..., P, R) tensor."""
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"cdist: expects x1 (..., P, M) and x2 (..., R, M) with the same "
                           f"M, got shapes {tuple(x1.shape)} and {tuple(x2.shape)}")
    from .reduction import norm
    return norm(x1.unsqueeze(-2) - x2.unsqueeze(-3), p, dim=-1)


# ----- einsum -------------------------------------------------------------------------------


@register("einsum")
def _einsum(xp, *ops, spec, parsed=None):
    # ``parsed`` (the subscripts per operand) is read only by the backward rule
    if ops[0].dtype.kind == "V":
        return _low_precision(xp, lambda *a: xp.einsum(spec, *a, optimize=len(a) > 2), *ops)
    return xp.einsum(spec, *ops, optimize=len(ops) > 2)


@_einsum.def_backward
def _(node, g):
    ins, out = node.attrs["parsed"]
    grads = []
    for i, x in enumerate(node.inputs):
        if not x.requires_grad:
            grads.append(None)
            continue
        others = [node.inputs[j] for j in range(len(ins)) if j != i]
        other_subs = [ins[j] for j in range(len(ins)) if j != i]
        target = ins[i]
        uniq = "".join(dict.fromkeys(target))
        available = set(out).union(*other_subs) if other_subs else set(out)
        kept = "".join(c for c in uniq if c in available)
        spec = ",".join([out] + other_subs) + "->" + kept
        gi = einsum(spec, g, *others)
        # a size-1 dim of this operand that broadcast against the others sums back to 1
        gi = sum_to(gi, tuple(x.shape[target.index(c)] for c in kept))
        if kept != uniq:
            # letters only in this operand were summed away: broadcast the gradient back
            gi = gi.reshape([x.shape[target.index(c)] if c in kept else 1 for c in uniq])
            gi = gi.expand([x.shape[target.index(c)] for c in uniq])
        if len(uniq) != len(target):  # repeated letters: the gradient lives on a diagonal
            gi = _undiagonal(gi, uniq, target, x.shape)
        grads.append(gi)
    return tuple(grads)


def _undiagonal(gi, uniq, target, shape):
    """Place a gradient indexed by unique letters onto the diagonals of ``target``'s shape."""
    idx_uniq = {c: np.arange(shape[target.index(c)]) for c in uniq}
    grids = np.meshgrid(*[idx_uniq[c] for c in uniq], indexing="ij")
    grid = dict(zip(uniq, grids))
    key = tuple(grid[c] for c in target)
    from .indexing import _index_grad
    return apply(_index_grad, (gi,), {"shape": tuple(shape), "key": key})


def _parse(spec: str, operands_):
    spec = spec.replace(" ", "")
    if "->" in spec:
        lhs, out = spec.split("->")
    else:
        lhs = spec
        letters = lhs.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = lhs.split(",")
    if len(ins) != len(operands_):
        raise ValueError(f"einsum: '{spec}' names {len(ins)} operands but {len(operands_)} "
                         f"were given")
    if "..." in spec:
        # expand the ellipsis into spare letters so the gradient rule can name every dim
        spare = iter(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in spec)
        nmax = max(op.ndim - (len(s) - 3) for s, op in zip(ins, operands_) if "..." in s)
        fill = "".join(next(spare) for _ in range(nmax))
        ins = [s.replace("...", fill[nmax - (op.ndim - (len(s) - 3)):]) if "..." in s else s
               for s, op in zip(ins, operands_)]
        out = out.replace("...", fill) if "..." in out else out
    for s, op in zip(ins, operands_):
        if len(s) != op.ndim:
            raise ValueError(f"einsum: operand subscripts '{s}' name {len(s)} dims but the "
                             f"operand has shape {tuple(op.shape)}")
    sizes = {}
    for s, op in zip(ins, operands_):
        for c, n in zip(s, op.shape):
            if sizes.setdefault(c, n) != n and n != 1 and sizes[c] != 1:
                raise ValueError(f"einsum: subscript '{c}' has size {n} in one operand and "
                                 f"{sizes[c]} in another")
    return ins, out


def einsum(equation: str, *operands_) -> Tensor:
    """Einstein summation, e.g. ``einsum('bij,bjk->bik', a, b)``."""
    if len(operands_) == 1 and isinstance(operands_[0], (list, tuple)):
        operands_ = tuple(operands_[0])
    from .. import dtypes as _dt
    rt = _dt.result_type(*operands_).np
    from .promotion import _cast
    ops = tuple(_cast(o, rt) for o in operands_)
    ins, out = _parse(equation, ops)
    spec = ",".join(ins) + "->" + out
    return apply(_einsum, ops, {"spec": spec, "parsed": (tuple(ins), out)})


def tensordot(a, b, dims=2):
    letters = "abcdefghijklmnopqrstuvwxyz"
    if isinstance(dims, int):
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = [list(d) if isinstance(d, (list, tuple)) else [d] for d in dims]
    sa = list(letters[:a.ndim])
    sb = list(letters[a.ndim:a.ndim + b.ndim])
    for i, j in zip(da, db):
        sb[j] = sa[i]
    out = [c for i, c in enumerate(sa) if i not in da] + [c for j, c in enumerate(sb)
                                                          if j not in db]
    return einsum(f"{''.join(sa)},{''.join(sb)}->{''.join(out)}", a, b)


# ----- ember.linalg: inverse, determinant, solve --------------------------------------------


def _check_square(op: str, a: Tensor) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"linalg.{op}: A must be a batch of square matrices, got shape "
                           f"{tuple(a.shape)}")
    if not a.is_floating_point():
        raise RuntimeError(f"linalg.{op}: expected a floating point tensor, got {a.dtype}")


@register("linalg_inv", saves=(), saves_output=True)
def _inv(xp, a):
    return xp.linalg.inv(a)


@_inv.def_backward
def _(node, g):
    y = node.output().mT
    return (-matmul(matmul(y, g), y),)  # d(A^-1) = -A^-1 dA A^-1


def inv(A: Tensor) -> Tensor:
    """Inverse of a (batch of) square matrix; singular input raises ``LinAlgError``."""
    _check_square("inv", A)
    return apply(_inv, (A,))


inverse = inv


@register("linalg_det", saves_output=True)
def _det(xp, a):
    return xp.asarray(xp.linalg.det(a), dtype=a.dtype)


@_det.def_backward
def _(node, g):
    # Jacobi's formula d det(A) = det(A) tr(A^-1 dA); needs A invertible (PyTorch also
    # handles singular A through an SVD, ember does not yet)
    a = node.inputs[0]
    return ((g * node.output()).unsqueeze(-1).unsqueeze(-1) * inv(a).mT,)


def det(A: Tensor) -> Tensor:
    """Determinant of a (batch of) square matrix."""
    _check_square("det", A)
    return apply(_det, (A,))


@register("linalg_solve", saves=(0,), saves_output=True)
def _solve(xp, a, b):
    return xp.linalg.solve(a, b)


@_solve.def_backward
def _(node, g):
    a, b = node.inputs
    gb = solve(a.mT, g)
    ga = -matmul(gb, node.output().mT) if a.requires_grad else None
    return (sum_to(ga, a.shape) if ga is not None else None,
            sum_to(gb, b.shape) if b.requires_grad else None)


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """X with ``A @ X = B`` (``left=False``: ``X @ A = B``); B is a (batch of) matrix, or a
    vector (..., n) when its shape is A's without the last dim."""
    _check_square("solve", A)
    if not left:
        return solve(A.mT, B.mT).mT
    a, b = operands("linalg.solve", A, B)
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])
    if vector:
        b = b.unsqueeze(-1)
    if b.shape[-2] != a.shape[-1]:
        raise RuntimeError(f"linalg.solve: incompatible shapes A {tuple(A.shape)} and B "
                           f"{tuple(B.shape)}")
    x = apply(_solve, (a, b))
    return x.squeeze(-1) if vector else x


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The ``ord``-norm of ``x`` as a flat vector, or over ``dim``."""
    from .reduction import norm as _norm
    return _norm(x, ord, dim, keepdim, dtype)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *,
                dtype=None) -> Tensor:
    """Frobenius (``'fro'``), 1, -1, inf or -inf norm of the matrices over ``dim``."""
    from .reduction import amax, amin
    from .reduction import sum as _sum
    if dtype is not None:
        A = A.to(dtype)
    if ord == "fro":
        return vector_norm(A, 2, dim, keepdim)
    d0, d1 = (d % A.ndim for d in dim)
    if ord in (1, -1):  # max/min absolute column sum
        s = _sum(A.abs(), d0, keepdim=True)
        r = (amax if ord == 1 else amin)(s, d1, keepdim=True)
    elif ord in (float("inf"), float("-inf")):  # max/min absolute row sum
        s = _sum(A.abs(), d1, keepdim=True)
        r = (amax if ord > 0 else amin)(s, d0, keepdim=True)
    else:
        raise ValueError(f"linalg.matrix_norm: ord must be 'fro', 1, -1, inf or -inf, got "
                         f"{ord!r} (nuclear and spectral norms need an SVD)")
    return r if keepdim else r.squeeze((d0, d1))


def linalg_norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None):
    """``ember.linalg.norm``: a vector norm for 1 dim (or all dims when ``ord`` is None), a
    matrix norm for 2."""
    if dim is not None and not isinstance(dim, int) and len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, tuple(dim), keepdim, dtype=dtype)
    if dim is None and ord is not None and A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
