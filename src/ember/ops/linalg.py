"""Matrix products: matmul (batch broadcasting), mm, bmm, mv, dot, outer, einsum."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .promotion import operands, sum_to
from .registry import apply, register


@register("matmul")
def _matmul(xp, a, b):
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


# ----- einsum -------------------------------------------------------------------------------


@register("einsum")
def _einsum(xp, *ops, spec, parsed=None):
    # ``parsed`` (the subscripts per operand) is read only by the backward rule
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
