"""Padding layers: constant (and zero), reflection, replication and circular, in 1-3 d.

``padding`` is an int (every side) or PyTorch's tuple, last dim first: (left, right) in 1-d,
(left, right, top, bottom) in 2-d, and (..., front, back) in 3-d.
"""
from __future__ import annotations

from ...ops.shape import pad
from .module import Module


class _Pad(Module):
    _mode = "constant"
    _dims = 1

    def __init__(self, padding):
        super().__init__()
        n = 2 * self._dims
        self.padding = (padding,) * n if isinstance(padding, int) else tuple(padding)
        if len(self.padding) != n:
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of "
                             f"{n} ints, got {padding!r}")

    def forward(self, input):
        return pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPad(_Pad):
    def __init__(self, padding, value: float):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPad):
    _dims = 1


class ConstantPad2d(_ConstantPad):
    _dims = 2


class ConstantPad3d(_ConstantPad):
    _dims = 3


class _ZeroPad(_ConstantPad):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad1d(_ZeroPad):
    _dims = 1


class ZeroPad2d(_ZeroPad):
    _dims = 2


class ZeroPad3d(_ZeroPad):
    _dims = 3


class ReflectionPad1d(_Pad):
    _mode, _dims = "reflect", 1


class ReflectionPad2d(_Pad):
    _mode, _dims = "reflect", 2


class ReflectionPad3d(_Pad):
    _mode, _dims = "reflect", 3


class ReplicationPad1d(_Pad):
    _mode, _dims = "replicate", 1


class ReplicationPad2d(_Pad):
    _mode, _dims = "replicate", 2


class ReplicationPad3d(_Pad):
    _mode, _dims = "replicate", 3


class CircularPad1d(_Pad):
    _mode, _dims = "circular", 1


class CircularPad2d(_Pad):
    _mode, _dims = "circular", 2


class CircularPad3d(_Pad):
    _mode, _dims = "circular", 3
