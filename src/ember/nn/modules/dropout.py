"""Dropout layers: active in train() mode, identity in eval()."""
from __future__ import annotations

from ...ops import dropout as _d
from .module import Module


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: dropout probability has to be between 0 "
                             f"and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    def forward(self, input):
        return _d.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    def forward(self, input):
        return _d.dropout1d(input, self.p, self.training)


class Dropout2d(_DropoutNd):
    def forward(self, input):
        return _d.dropout2d(input, self.p, self.training)


class AlphaDropout(_DropoutNd):
    def forward(self, input):
        return _d.alpha_dropout(input, self.p, self.training)
