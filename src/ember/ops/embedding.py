"""Embedding lookup as a primitive whose backward is one scatter-add into the table."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .registry import apply, register


@register("embedding", saves=())
def _embedding(xp, weight, idx, padding_idx=None):
    return weight[idx]


@_embedding.def_backward
def _(node, g):
    w, idx = node.inputs
    return (apply(_embedding_backward, (g, idx),
                  {"num": w.shape[0], "padding_idx": node.attrs.get("padding_idx")} if
                  node.attrs else {"num": w.shape[0], "padding_idx": None}), None)


@register("embedding_backward", saves=())
def _embedding_backward(xp, g, idx, num, padding_idx=None):
    out = xp.zeros((num,) + g.shape[idx.ndim:], dtype=g.dtype)
    xp.add.at(out, idx, g)
    if padding_idx is not None:
        out[padding_idx] = 0  # the padding row never learns
    return out


@_embedding_backward.def_backward
def _(node, gg):
    return (apply(_embedding, (gg, node.inputs[1])), None)


def embedding(input: Tensor, weight: Tensor, padding_idx=None, max_norm=None,
              norm_type: float = 2.0, scale_grad_by_freq=False, sparse=False) -> Tensor:
    """Rows of ``weight`` picked by the integer tensor ``input``."""
    idx = input._data
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: expected an integer index tensor (Long or Int), got "
                        f"{input.dtype} with shape {tuple(input.shape)}")
    n = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = int(idx.max() if idx.max() >= n else idx.min())
        raise IndexError(f"embedding: index {bad} is out of range for an embedding table of "
                         f"{n} rows (weight shape {tuple(weight.shape)})")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    if max_norm is not None:
        _renorm_rows(weight, idx, max_norm, norm_type)
    attrs = {"padding_idx": padding_idx} if padding_idx is not None else None
    return apply(_embedding, (weight, input), attrs)


def _renorm_rows(weight, idx, max_norm, norm_type):
    """PyTorch's max_norm: rows that are looked up are rescaled in place to the max norm."""
    rows = np.unique(idx)
    w = weight._data
    norms = np.linalg.norm(w[rows].astype(np.float64), ord=norm_type, axis=-1)
    scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
    w[rows] = (w[rows] * scale[:, None]).astype(w.dtype)
    weight._version[0] += 1


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    idx = tensor._data
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor, got {tensor.dtype}")
    if num_classes < 0:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got range "
                           f"{int(idx.min())}..{int(idx.max())}")
    out = np.zeros(idx.shape + (num_classes,), np.int64)
    np.put_along_axis(out, idx[..., None].astype(np.int64), 1, axis=-1)
    return Tensor._wrap(out, tensor._dev)
