"""Arithmetic: add, sub, mul, div, pow, neg and friends, plus dtype casts."""
from __future__ import annotations

from .. import dtypes as _dt
from ..tensor import Tensor
from .promotion import broadcast_error, operands, sum_to
from .registry import apply, register

# ----- cast ---------------------------------------------------------------------------------


@register("cast", saves=())
def _cast(xp, x, *, dtype):
    return x.astype(dtype)


@_cast.def_backward
def _(node, g):
    x = node.inputs[0]
    if x._data.dtype.kind not in "f" and x._data.dtype != _dt._BF16:
        return (None,)
    return (cast(g, x.dtype),)


def cast(x: Tensor, dtype) -> Tensor:
    """Convert ``x`` to ``dtype`` (differentiable between float dtypes)."""
    d = _dt.as_dtype(dtype)
    if x._data.dtype == d.np:
        return x
    if x.requires_grad and d.np.kind != "f" and d.np != _dt._BF16:
        x = x.detach()  # only floating tensors carry gradients: x.long() leaves the graph
    return apply(_cast, (x,), {"dtype": d.np})


# ----- binary ops ---------------------------------------------------------------------------


def _binary(op, name, a, b, to_float=False):
    a, b = operands(name, a, b, to_float=to_float)
    try:
        return apply(op, (a, b))
    except ValueError:
        broadcast_error(name, a, b)
        raise


@register("add", saves=())
def _add(xp, a, b):
    return a + b


@_add.def_backward
def _(node, g):
    a, b = node.inputs
    return sum_to(g, a._data.shape), sum_to(g, b._data.shape)


def add(input, other, *, alpha=1):
    """``input + alpha * other`` with broadcasting."""
    if alpha != 1:
        other = mul(other, alpha) if isinstance(other, Tensor) else other * alpha
    return _binary(_add, "add", input, other)


@register("sub", saves=())
def _sub(xp, a, b):
    return a - b


@_sub.def_backward
def _(node, g):
    a, b = node.inputs
    return sum_to(g, a._data.shape), sum_to(-g, b._data.shape)


def sub(input, other, *, alpha=1):
    if isinstance(input, Tensor) and input._data.dtype.kind == "b" and \
            isinstance(other, Tensor) and other._data.dtype.kind == "b":
        raise TypeError("sub: subtraction of two bool tensors is not supported; use "
                        "logical_xor() or the ^ operator instead")
    if alpha != 1:
        other = mul(other, alpha) if isinstance(other, Tensor) else other * alpha
    return _binary(_sub, "sub", input, other)


def rsub(input, other, *, alpha=1):
    return sub(other, input, alpha=alpha)


def _mul_saves(ins):
    """mul's backward reads each operand only for the other's gradient."""
    a, b = ins[0].requires_grad, ins[1].requires_grad
    return (0, 1) if a and b else (0,) if b else (1,)


@register("mul", saves=_mul_saves)
def _mul(xp, a, b):
    return a * b


@_mul.def_backward
def _(node, g):
    a, b = node.inputs
    return (sum_to(g * b, a._data.shape) if a.requires_grad else None,
            sum_to(g * a, b._data.shape) if b.requires_grad else None)


def mul(input, other):
    return _binary(_mul, "mul", input, other)


@register("div", saves=lambda ins: (0, 1) if ins[1].requires_grad else (1,))
def _div(xp, a, b):
    return a / b


@_div.def_backward
def _(node, g):
    a, b = node.inputs
    ga = sum_to(g / b, a._data.shape) if a.requires_grad else None
    gb = sum_to(-g * a / (b * b), b._data.shape) if b.requires_grad else None
    return ga, gb


@register("floor_divide", saves=())
def _floor_divide(xp, a, b):
    return xp.floor_divide(a, b)


def _rounded_division_backward(node, g):
    # A rounded quotient is piecewise constant: its gradient is zero (PyTorch's div with a
    # rounding_mode says the same), not "not differentiable".
    a, b = node.inputs
    zero = g * 0
    return (sum_to(zero, a._data.shape) if a.requires_grad else None,
            sum_to(zero, b._data.shape) if b.requires_grad else None)


_floor_divide.def_backward(_rounded_division_backward)


@register("remainder")
def _remainder(xp, a, b):
    return xp.remainder(a, b)  # Python's sign convention, as torch.remainder


@_remainder.def_backward
def _(node, g):
    a, b = node.inputs
    gb = None
    if b.requires_grad:
        gb = sum_to(-g * floor_divide(a.detach(), b.detach()), b._data.shape)
    return sum_to(g, a._data.shape), gb


@register("fmod")
def _fmod(xp, a, b):
    return xp.fmod(a, b)  # C's sign convention, as torch.fmod


@_fmod.def_backward
def _(node, g):
    a, b = node.inputs
    gb = None
    if b.requires_grad:
        gb = sum_to(-g * trunc_div(a.detach(), b.detach()), b._data.shape)
    return sum_to(g, a._data.shape), gb


@register("trunc_divide", saves=())
def _trunc_divide(xp, a, b):
    q = a / b
    return xp.trunc(q).astype(q.dtype) if a.dtype.kind == "f" else \
        (xp.sign(a) * xp.sign(b) * (xp.abs(a) // xp.abs(b))).astype(a.dtype)


_trunc_divide.def_backward(_rounded_division_backward)


def trunc_div(a, b):
    return _binary(_trunc_divide, "div", a, b)


def div(input, other, *, rounding_mode=None):
    """True division (ints give the default float); ``rounding_mode`` 'floor' or 'trunc'."""
    if rounding_mode is None:
        return _binary(_div, "div", input, other, to_float=True)
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        return trunc_div(input, other)
    raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got "
                     f"{rounding_mode!r}")


true_divide = divide = div


def floor_divide(input, other):
    return _binary(_floor_divide, "floor_divide", input, other)


def remainder(input, other):
    return _binary(_remainder, "remainder", input, other)


def fmod(input, other):
    return _binary(_fmod, "fmod", input, other)


@register("pow")
def _pow(xp, a, b):
    if b.ndim == 0 and a.dtype.kind == "f":
        # libm's pow() per element is ~30x slower than multiplying for small integral powers
        e = float(b)
        if e == 3.0:
            return a * a * a
        if e == 4.0:
            sq = a * a
            return sq * sq
        if e == 0.5:
            return xp.sqrt(a)
        if e == -1.0:
            return 1 / a
    return xp.power(a, b)


@_pow.def_backward
def _(node, g):
    a, b = node.inputs
    ga = gb = None
    if a.requires_grad:
        # b * a^(b-1) is 0 where b == 0 (PyTorch masks it), not 0 * inf = NaN at a == 0:
        # there the power is taken with exponent 1 - 1 instead
        from .comparison import where
        ga = sum_to(g * b * a ** (where(b == 0, 1.0, b) - 1), a._data.shape)
    if b.requires_grad:
        # d/db a^b = a^b log a; define 0 where a == 0 (PyTorch masks those the same way)
        from .comparison import where
        out = node.output()
        safe = where(a == 0, 1.0, a)
        gb = sum_to(g * out * safe.log(), b._data.shape)
    return ga, gb


def pow(input, exponent):
    if isinstance(input, Tensor) and input._data.dtype.kind in "iu" and \
            not isinstance(exponent, Tensor) and isinstance(exponent, int) and exponent < 0:
        raise RuntimeError(f"pow: integers to negative integer powers are not allowed "
                           f"(input {input.dtype}, exponent {exponent})")
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool) and \
            isinstance(input, Tensor):
        # x*x is exact and several times faster than power(); only where the dtype agrees
        same_dtype = isinstance(exponent, int) or input._data.dtype.kind == "f"
        if exponent == 2 and same_dtype:
            return mul(input, input)
        if exponent == 1 and same_dtype:
            return input.clone()
    return _binary(_pow, "pow", input, exponent)


float_power = pow


@register("maximum")
def _maximum(xp, a, b):
    return xp.maximum(a, b)


@register("minimum")
def _minimum(xp, a, b):
    return xp.minimum(a, b)


def _minmax_backward(node, g):
    # The larger (smaller) input gets the gradient; ties split it, as PyTorch does. Where a
    # NaN is involved neither comparison holds, so both get it (PyTorch again), not NaN.
    from .comparison import where
    a, b = (x.detach() for x in node.inputs)
    a_loses = (a < b) if node.op.name == "maximum" else (a > b)
    b_loses = (a > b) if node.op.name == "maximum" else (a < b)
    shared = where(a == b, g * 0.5, g)
    zero = g * 0
    return (sum_to(where(a_loses, zero, shared), a._data.shape)
            if node.inputs[0].requires_grad else None,
            sum_to(where(b_loses, zero, shared), b._data.shape)
            if node.inputs[1].requires_grad else None)


_maximum.def_backward(_minmax_backward)
_minimum.def_backward(_minmax_backward)


def maximum(input, other):
    return _binary(_maximum, "maximum", input, other)


def minimum(input, other):
    return _binary(_minimum, "minimum", input, other)


@register("fmax")
def _fmax(xp, a, b):
    return xp.fmax(a, b)


@register("fmin")
def _fmin(xp, a, b):
    return xp.fmin(a, b)


def _fminmax_backward(node, g):
    # PyTorch's rule: the operand that was picked gets the gradient, the first one on ties
    # (unlike maximum, which splits ties) and the number when the other operand is NaN.
    a, b = (x.detach() for x in node.inputs)
    pick_a = (a >= b) if node.op.name == "fmax" else (a <= b)
    pick_a = pick_a | b.isnan()
    zero = g * 0
    from .comparison import where
    return (sum_to(where(pick_a, g, zero), a._data.shape) if node.inputs[0].requires_grad
            else None,
            sum_to(where(pick_a, zero, g), b._data.shape) if node.inputs[1].requires_grad
            else None)


_fmax.def_backward(_fminmax_backward)
_fmin.def_backward(_fminmax_backward)


def fmax(input, other):
    """Elementwise maximum that ignores NaN: a NaN loses to a number (NumPy's fmax)."""
    return _binary(_fmax, "fmax", input, other)


def fmin(input, other):
    """Elementwise minimum that ignores NaN: a NaN loses to a number (NumPy's fmin)."""
    return _binary(_fmin, "fmin", input, other)


@register("atan2")
def _atan2(xp, a, b):
    return xp.arctan2(a, b)


@_atan2.def_backward
def _(node, g):
    from .comparison import where
    a, b = node.inputs
    denom = a * a + b * b
    denom = where(denom == 0, 1.0, denom)  # at (0, 0) the gradient is 0 (PyTorch), not NaN
    return (sum_to(g * b / denom, a._data.shape) if a.requires_grad else None,
            sum_to(-g * a / denom, b._data.shape) if b.requires_grad else None)


def atan2(input, other):
    return _binary(_atan2, "atan2", input, other, to_float=True)


arctan2 = atan2


def lerp(input, end, weight):
    """``input + weight * (end - input)``."""
    return add(input, mul(weight, sub(end, input)))


def addcmul(input, tensor1, tensor2, *, value=1):
    return add(input, mul(mul(tensor1, tensor2), value))


def addcdiv(input, tensor1, tensor2, *, value=1):
    return add(input, mul(div(tensor1, tensor2), value))


def logaddexp(input, other):
    """``log(exp(a) + exp(b))`` without overflow: ``max(a, b) + log1p(exp(-|a - b|))``."""
    from .comparison import isnan, where
    a, b = operands("logaddexp", input, other, to_float=True)
    d = sub(a, b).abs()
    tail = where(isnan(d), 0.0, (-d).exp().log1p())  # NaN from inf - inf: both infinite
    return add(maximum(a, b), tail)


def xlogy(input, other):
    """``x * log(y)``, and 0 where ``x == 0`` (unless ``y`` is NaN)."""
    from .comparison import isposinf, where
    x, y = operands("xlogy", input, other, to_float=True)
    # where x == 0 and log(y) is infinite, take the log of a harmless 1 instead, so neither
    # the value nor the gradients meet 0 * inf; elsewhere x * log(y) is exactly 0 at x == 0
    # and d/dx is log(y), as in PyTorch
    safe = where((x == 0) & ((y == 0) | isposinf(y)), 1.0, y)
    return mul(x, safe.log())


def hypot(input, other):
    """``sqrt(a**2 + b**2)``."""
    a, b = operands("hypot", input, other, to_float=True)
    return add(mul(a, a), mul(b, b)).sqrt()


# ----- negation -----------------------------------------------------------------------------


@register("neg", saves=())
def _neg(xp, x):
    return -x


@_neg.def_backward
def _(node, g):
    return (-g,)


def neg(input):
    if input._data.dtype.kind == "b":
        raise TypeError("neg: negation, the `-` operator, on a bool tensor is not supported; "
                        "use logical_not() or the ~ operator instead")
    return apply(_neg, (input,))


negative = neg


def positive(input):
    return input
