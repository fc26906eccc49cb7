"""Activation layers: thin Modules over ``nn.functional``."""
from __future__ import annotations

from ... import ops
from ...ops import activation as A
from ..functional import activation as FA
from ..parameter import Parameter
from .module import Module


class _Simple(Module):
    """An activation with no parameters: ``forward`` applies ``_fn``."""

    _fn = None

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return type(self)._fn(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_Simple):
    _fn = staticmethod(A.relu)


class ReLU6(_Simple):
    _fn = staticmethod(FA.relu6)


class SELU(_Simple):
    _fn = staticmethod(FA.selu)


class SiLU(_Simple):
    _fn = staticmethod(A.silu)


class Mish(_Simple):
    _fn = staticmethod(FA.mish)


class Hardswish(_Simple):
    _fn = staticmethod(FA.hardswish)


class Hardsigmoid(_Simple):
    _fn = staticmethod(FA.hardsigmoid)


class Sigmoid(_Simple):
    _fn = staticmethod(A.sigmoid)


class Tanh(_Simple):
    _fn = staticmethod(ops.unary.tanh)


class Softsign(_Simple):
    _fn = staticmethod(FA.softsign)


class Tanhshrink(_Simple):
    _fn = staticmethod(FA.tanhshrink)


class LogSigmoid(_Simple):
    _fn = staticmethod(FA.logsigmoid)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return FA.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):
        return FA.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class CELU(ELU):
    def forward(self, input):
        return FA.celu(input, self.alpha)


class GELU(Module):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return A.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate='{self.approximate}'"


class Hardtanh(Module):
    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return FA.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return A.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Threshold(Module):
    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return FA.threshold(input, self.threshold, self.value)


class PReLU(Module):
    """Leaky ReLU with a learned slope: one shared (``num_parameters=1``) or per channel."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.weight = Parameter(ops.creation.full((num_parameters,), float(init), dtype=dtype,
                                                  device=device))

    def forward(self, input):
        return FA.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class _DimSoftmax(Module):
    _fn = None

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return type(self)._fn(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_DimSoftmax):
    _fn = staticmethod(A.softmax)


class LogSoftmax(_DimSoftmax):
    _fn = staticmethod(A.log_softmax)


class Softmin(_DimSoftmax):
    _fn = staticmethod(FA.softmin)


class Softmax2d(Module):
    """Softmax over the channels of each location of a (N, C, H, W) or (C, H, W) input."""

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expects a 3-d or 4-d input, got shape "
                             f"{tuple(input.shape)}")
        return A.softmax(input, -3)


class GLU(Module):
    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return FA.glu(input, self.dim)
