"""Elementwise math of one tensor: exp, log, sqrt, trig, rounding, abs, sign..."""
from __future__ import annotations

import math

from .. import dtypes as _dt
from ..tensor import Tensor
from .registry import apply, register


def _float_input(x: Tensor) -> Tensor:
    """Math functions of integer tensors compute in the default float dtype (as PyTorch)."""
    if x._data.dtype.kind in "biu":
        from .arithmetic import cast
        return cast(x, _dt.get_default_dtype())
    return x


def _declare(name, forward, backward=None, *, saves_output=False, float_only=True):
    """Declare a unary op and return its public function."""
    o = register(name, saves=None if not saves_output else (), saves_output=saves_output)(
        forward)
    if backward is not None:
        o.def_backward(lambda node, g: (backward(node, g),))

    if float_only:
        def fn(input: Tensor) -> Tensor:
            return apply(o, (_float_input(input),))
    else:
        def fn(input: Tensor) -> Tensor:
            return apply(o, (input,))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}``."
    return fn


def _x(node):
    return node.inputs[0]


exp = _declare("exp", lambda xp, x: xp.exp(x), lambda n, g: g * n.output(), saves_output=True)
exp2 = _declare("exp2", lambda xp, x: xp.exp2(x),
                lambda n, g: g * n.output() * math.log(2.0), saves_output=True)
expm1 = _declare("expm1", lambda xp, x: xp.expm1(x), lambda n, g: g * (n.output() + 1),
                 saves_output=True)
log = _declare("log", lambda xp, x: xp.log(x), lambda n, g: g / _x(n))
log2 = _declare("log2", lambda xp, x: xp.log2(x), lambda n, g: g / (_x(n) * math.log(2.0)))
log10 = _declare("log10", lambda xp, x: xp.log10(x),
                 lambda n, g: g / (_x(n) * math.log(10.0)))
log1p = _declare("log1p", lambda xp, x: xp.log1p(x), lambda n, g: g / (_x(n) + 1))
sqrt = _declare("sqrt", lambda xp, x: xp.sqrt(x), lambda n, g: g / (2 * n.output()),
                saves_output=True)
rsqrt = _declare("rsqrt", lambda xp, x: 1 / xp.sqrt(x),
                 lambda n, g: -0.5 * g * n.output() ** 3, saves_output=True)
sin = _declare("sin", lambda xp, x: xp.sin(x), lambda n, g: g * _x(n).cos())
cos = _declare("cos", lambda xp, x: xp.cos(x), lambda n, g: -g * _x(n).sin())
tan = _declare("tan", lambda xp, x: xp.tan(x), lambda n, g: g * (1 + n.output() ** 2),
               saves_output=True)
asin = _declare("asin", lambda xp, x: xp.arcsin(x), lambda n, g: g * (1 - _x(n) ** 2).rsqrt())
acos = _declare("acos", lambda xp, x: xp.arccos(x), lambda n, g: -g * (1 - _x(n) ** 2).rsqrt())
atan = _declare("atan", lambda xp, x: xp.arctan(x), lambda n, g: g / (1 + _x(n) ** 2))
sinh = _declare("sinh", lambda xp, x: xp.sinh(x), lambda n, g: g * _x(n).cosh())
cosh = _declare("cosh", lambda xp, x: xp.cosh(x), lambda n, g: g * _x(n).sinh())
tanh = _declare("tanh", lambda xp, x: xp.tanh(x), lambda n, g: g * (1 - n.output() ** 2),
                saves_output=True)
asinh = _declare("asinh", lambda xp, x: xp.arcsinh(x), lambda n, g: g * (_x(n) ** 2 + 1).rsqrt())
acosh = _declare("acosh", lambda xp, x: xp.arccosh(x), lambda n, g: g * (_x(n) ** 2 - 1).rsqrt())
atanh = _declare("atanh", lambda xp, x: xp.arctanh(x), lambda n, g: g / (1 - _x(n) ** 2))
reciprocal = _declare("reciprocal", lambda xp, x: 1 / x, lambda n, g: -g * n.output() ** 2,
                      saves_output=True)


def _erf_forward(xp, x):
    from ..backend import get_device
    return get_device("cpu").backend.erf(x) if xp.__name__ == "numpy" else xp.erf(x)


erf = _declare("erf", _erf_forward,
               lambda n, g: g * (2 / math.sqrt(math.pi)) * (-(_x(n) ** 2)).exp())
erfc = _declare("erfc", lambda xp, x: 1 - _erf_forward(xp, x),
                lambda n, g: -g * (2 / math.sqrt(math.pi)) * (-(_x(n) ** 2)).exp())

# Sign-like and rounding functions: gradient zero almost everywhere, and kept int for ints.
_zero = (lambda n, g: g * 0)
abs = _declare("abs", lambda xp, x: xp.abs(x), lambda n, g: g * _x(n).sign(), float_only=False)
sign = _declare("sign", lambda xp, x: xp.sign(x).astype(x.dtype, copy=False), _zero,
                float_only=False)
sgn = sign
floor = _declare("floor", lambda xp, x: xp.floor(x) if x.dtype.kind == "f" else x.copy(), _zero,
                 float_only=False)
ceil = _declare("ceil", lambda xp, x: xp.ceil(x) if x.dtype.kind == "f" else x.copy(), _zero,
                float_only=False)
trunc = _declare("trunc", lambda xp, x: xp.trunc(x) if x.dtype.kind == "f" else x.copy(), _zero,
                 float_only=False)
fix = trunc
frac = _declare("frac", lambda xp, x: x - xp.trunc(x), lambda n, g: g)
square = _declare("square", lambda xp, x: x * x, lambda n, g: 2 * g * _x(n), float_only=False)
absolute = abs

_round0 = register("round")(lambda xp, x, decimals=0: xp.round(x, decimals) if
                            x.dtype.kind == "f" else x.copy())
_round0.def_backward(lambda n, g: (g * 0,))


def round(input: Tensor, *, decimals: int = 0) -> Tensor:
    """Round half to even, as PyTorch (and NumPy) do; ``decimals`` digits after the point."""
    return apply(_round0, (input,), {"decimals": decimals} if decimals else None)


@register("logit")
def _logit(xp, x, eps=None):
    if eps is not None:
        x = xp.clip(x, eps, 1 - eps)
    return xp.log(x / (1 - x))


@_logit.def_backward
def _(node, g):
    x = node.inputs[0]
    eps = (node.attrs or {}).get("eps")
    r = g / (x * (1 - x))
    if eps is not None:
        from .comparison import where
        r = where((x < eps) | (x > 1 - eps), 0.0, r)
    return (r,)


def logit(input: Tensor, eps=None) -> Tensor:
    return apply(_logit, (_float_input(input),), {"eps": eps} if eps is not None else None)


@register("nan_to_num")
def _nan_to_num(xp, x, nan=0.0, posinf=None, neginf=None):
    if x.dtype.kind in "biu":
        return x.copy()
    big = _dt.finfo(_dt.from_numpy_dtype(x.dtype)).max  # also knows bfloat16
    out = xp.where(xp.isnan(x), nan, x)
    out = xp.where(out == xp.inf, big if posinf is None else posinf, out)
    return xp.where(out == -xp.inf, -big if neginf is None else neginf, out).astype(x.dtype)


@_nan_to_num.def_backward
def _(node, g):
    # the replaced entries are constants: gradient only where the input was finite
    from .comparison import isfinite
    return (g * isfinite(node.inputs[0]).type(g.dtype),)


def nan_to_num(input: Tensor, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:
    """Replace NaN by ``nan`` and +/-inf by ``posinf``/``neginf`` (default: the dtype's
    largest/lowest finite value)."""
    return apply(_nan_to_num, (input,), {"nan": nan, "posinf": posinf, "neginf": neginf})
