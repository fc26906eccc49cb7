"""``nn.Parameter``: a Tensor that a Module registers as a learnable weight."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor with ``requires_grad=True`` by default, shared memory with ``data``."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = Tensor._wrap(np.empty((0,), np.float32))
        if not isinstance(data, Tensor):
            from ..ops.creation import as_tensor
            data = as_tensor(data)
        self._data = data._data
        self._dev = data._dev
        self._node = None
        self.grad = None
        self._version = data._version
        self._base = None
        self._hooks = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        p = Parameter(Tensor._wrap(self._data.copy(), self._dev), self.requires_grad)
        memo[id(self)] = p
        return p
