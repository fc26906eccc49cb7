"""Variable-length sequences for recurrent models: ``pad_sequence``.

(Packed sequences, ``pack_padded_sequence`` and friends, are not provided: pad, and mask or
pick the last valid step, instead.)
"""
from __future__ import annotations

import numpy as np

from ...ops.indexing import _index_put
from ...ops.registry import apply
from ...ops.shape import cat
from ...tensor import Tensor

__all__ = ["pad_sequence"]


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack tensors of shapes (L_i, *) into (max L, B, *) — (B, max L, *) with
    ``batch_first`` — filling the missing steps with ``padding_value``."""
    seqs = list(sequences)
    if not seqs:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'right' or 'left', got "
                         f"{padding_side!r}")
    trailing = tuple(seqs[0].shape[1:])
    for i, s in enumerate(seqs):
        if s.ndim == 0 or tuple(s.shape[1:]) != trailing:
            raise RuntimeError(f"pad_sequence: every sequence must be (L_i, *{trailing}); "
                               f"sequence {i} has shape {tuple(s.shape)}")
    lengths = np.array([s.shape[0] for s in seqs])
    n, longest = len(seqs), int(lengths.max())
    # one write of all steps at once: step t of sequence b lands at row b * longest + t
    starts = (longest - lengths) if padding_side == "left" else np.zeros(n, np.int64)
    rows = np.concatenate([b * longest + starts[b] + np.arange(length)
                           for b, length in enumerate(lengths)]).astype(np.int64)
    out = seqs[0].new_full((n * longest,) + trailing, padding_value)
    out = apply(_index_put, (out, cat(seqs, 0).to(out.dtype)), {"key": (rows,)})
    out = out.reshape((n, longest) + trailing)
    return out if batch_first else out.transpose(0, 1)
