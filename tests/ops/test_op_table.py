"""Every op of the arithmetic, unary, activation, comparison, reduction, shape, linalg and
sorting families in one table, checked against an independent reference.

Each row names an ember function, a NumPy (or SciPy) reference written from the published
definition, the input shapes to try, and whether the op is differentiable. For every row and
shape the tests check

- the forward value and dtype on float64 inputs against the reference (and that the inputs
  are left unchanged);
- the same with inputs that require grad: recording the graph changes no value, and integer
  or bool results never require grad;
- the result dtype (and loosely the value) on float32 inputs;
- for differentiable rows, the gradient from ember's backward against central finite
  differences of the *reference* (so a wrong forward cannot hide a wrong backward).

Adding an op means adding a row: ``test_every_public_op_has_a_row`` fails for a public function
of these families that no row names. A row's name is ``<ember function>`` or
``<ember function>-<variant>``.

Inputs come from generators chosen so the op is smooth at the samples (positive for log,
``|x| < 1`` for asin, distinct values for max and sort); rows at non-smooth points (ties, zeros
of sign, all ``-inf`` rows) check values only.
"""
from __future__ import annotations

import inspect
import math
import warnings
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import scipy.special as sp

import ember as em
from ember.ops import (activation, arithmetic, comparison, linalg, reduction, shape, sorting,
                       unary)

EPS = 1e-6  # central-difference step (float64)


# ----- input generators: (rng, shape) -> array ------------------------------------------------

def _uniform(lo, hi):
    return lambda rng, shape: np.asarray(rng.uniform(lo, hi, shape), np.float64)


ANY = _uniform(-2.0, 2.0)          # ops defined and smooth everywhere
POS = _uniform(0.5, 3.0)
UNIT = _uniform(-0.9, 0.9)        # asin, acos, atanh: inside (-1, 1)
PROB = _uniform(0.05, 0.95)       # logit: inside (0, 1)
HUGE = _uniform(-1e4, 1e4)        # softmax / log_softmax must stay finite


def AWAY0(rng, shape):
    """|x| in [0.5, 2]: away from the kink of abs/relu and the pole of 1/x."""
    return np.asarray(rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape))


def DISTINCT(rng, shape):
    """Values at least 0.15 apart, so max/sort/median have no ties to break."""
    n = math.prod(shape)
    v = (rng.permutation(n) - n / 2) * 0.25 + rng.uniform(-0.05, 0.05, n)
    return v.reshape(shape)


def INTS(rng, shape):
    """Small integers stored as floats: ties for comparisons and stable sorts."""
    return np.asarray(rng.integers(-2, 3, shape), np.float64)


def INT64(rng, shape):
    return np.asarray(rng.integers(-7, 8, shape), np.int64)


def INT64_NONZERO(rng, shape):
    return np.asarray(rng.integers(1, 4, shape) * rng.choice([-1, 1], shape), np.int64)


def BOOL(rng, shape):
    return np.asarray(rng.random(shape) < 0.5)


def NONNEG_INT(rng, shape):
    return np.asarray(rng.integers(0, 5, shape), np.int64)


def SORTED(rng, shape):
    """Sorted along the last dim (searchsorted's sequences)."""
    return np.sort(rng.uniform(-2.0, 2.0, shape), -1)


def SORTED_INTS(rng, shape):
    """Sorted small integers, with repeats: ties for searchsorted's ``right``."""
    return np.sort(rng.integers(-2, 3, shape), -1).astype(np.float64)


def WELL_CONDITIONED(rng, shape):
    """Diagonally dominant matrices: inverses well away from singular."""
    return rng.uniform(-1.0, 1.0, shape) + 3.0 * np.eye(shape[-1])


def WITH_ZEROS(rng, shape):
    """About a third of the entries exactly zero (prod, cumprod, all/any, logical ops)."""
    v = rng.uniform(-2.0, 2.0, shape)
    return np.asarray(np.where(rng.random(shape) < 0.35, 0.0, v))


def SPECIALS(rng, shape):
    """Finite values with NaN, inf and -inf sprinkled in."""
    v = rng.uniform(-2.0, 2.0, shape)
    pick = rng.integers(0, 5, shape)
    return np.asarray(np.select([pick == 0, pick == 1, pick == 2], [np.nan, np.inf, -np.inf],
                                v))


def WITH_NAN(rng, shape):
    v = rng.uniform(-2.0, 2.0, shape)
    return np.asarray(np.where(rng.random(shape) < 0.3, np.nan, v))


def ZERO_ROW(rng, shape):
    """Row 0 all zeros: the norm's subgradient there is 0 (and so is the central difference)."""
    v = rng.uniform(-2.0, 2.0, shape)
    v[0] = 0.0
    return v


def CONSTANT_ROWS(rng, shape):
    """Rows 0 and 1 constant: std's subgradient at zero spread is 0."""
    v = rng.uniform(-2.0, 2.0, shape)
    v[0], v[1] = 1.5, -0.5
    return v


def NEG_INF_ROWS(rng, shape):
    """Row 0 all -inf, row 1 partly -inf, the rest finite (logsumexp)."""
    v = rng.uniform(-2.0, 2.0, shape)
    v[0] = -np.inf
    v[1, ::2] = -np.inf
    return v


def PARTLY_NEG_INF(rng, shape):
    """Some -inf entries but never a whole row: logsumexp stays differentiable."""
    v = rng.uniform(-2.0, 2.0, shape)
    v[..., :1] = -np.inf
    return v


# ----- shapes ---------------------------------------------------------------------------------

def U(*shapes):
    """Cases for a one-input op: one shape per case."""
    return tuple((s,) for s in shapes)


UNARY = U((), (1,), (3, 4), (2, 1, 3), (0, 3))
BINARY = (((3, 4), (3, 4)), ((), ()), ((3, 4), ()), ((), (2, 3)), ((2, 1, 4), (3, 1)),
          ((1,), (2, 3)), ((0, 3), (1, 3)), ((4,), (0, 1)))
TERNARY = (((3, 4), (3, 4), (3, 4)), ((), (), ()), ((2, 1, 4), (3, 1), (4,)),
           ((1, 3), (), (2, 1)), ((0, 3), (3,), (1, 1)))
MATRIX = U((3, 4), (2, 3, 4), (1, 5), (0, 3))      # ops that need >= 2 dims or a dim 1
ND2 = U((3, 4), (2, 1, 3), (1, 4), (0, 3))         # reductions along dim 1 / -1
ND2_DIM0 = U((3, 4), (2, 1, 3), (1, 4), (3, 0))    # reductions along dim 0


# ----- the table ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    name: str                       # "<ember function>" or "<ember function>-<variant>"
    fn: Callable                    # ember: (*tensors) -> Tensor | tuple of Tensors
    ref: Callable                   # NumPy: (*arrays) -> array | tuple of arrays
    shapes: tuple                   # cases: one tuple of input shapes each
    grad: bool                      # differentiable here: check against finite differences
    gen: object = ANY            # input generator, or a tuple with one per input
    dtype32: type = np.float32      # dtype of the float outputs for float32 inputs


def _np_softmax(x, axis):
    return sp.softmax(x, axis=axis) if x.ndim and x.size else np.ones_like(x)


def _np_log_softmax(x, axis):
    return sp.log_softmax(x, axis=axis) if x.ndim and x.size else np.zeros_like(x)


def _np_max_dim(x, axis, keepdims=False, fn=np.max, arg=np.argmax):
    return fn(x, axis=axis, keepdims=keepdims), arg(x, axis=axis, keepdims=keepdims)


def _np_norm(x, p, axis=None, keepdims=False):
    # the vector p-norm from its definition, over all elements or ``axis``
    a = np.abs(x)
    if p == np.inf:
        return np.max(a, axis=axis, keepdims=keepdims)
    if p == -np.inf:
        return np.min(a, axis=axis, keepdims=keepdims)
    if p == 0:
        return np.sum(a != 0, axis=axis, keepdims=keepdims).astype(x.dtype)
    return np.sum(a ** p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def _np_sort(x):
    # a 0-d tensor sorts to itself, at index 0
    if x.ndim == 0:
        return x, np.zeros((), np.int64)
    return np.sort(x, -1), np.argsort(x, -1, kind="stable")


def _scan(fn, x, axis):
    return fn(x, axis) if x.ndim else x  # a 0-d tensor scans to itself


def _np_topk(x, k, axis=-1, largest=True):
    order = np.argsort(-x if largest else x, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis), idx


def _np_kth(x, k, axis=-1, keepdims=False):
    idx = np.take(np.argsort(x, axis=axis, kind="stable"), [k - 1], axis=axis)
    vals = np.take_along_axis(x, idx, axis)
    if not keepdims:
        idx, vals = np.squeeze(idx, axis), np.squeeze(vals, axis)
    return vals, idx


def _np_chunk(x, chunks, axis=0):
    # torch.chunk: chunks of ceil(n / chunks); an empty dim gives ``chunks`` empty pieces
    n = x.shape[axis]
    if n == 0:
        return [x] * chunks
    size = -(-n // chunks)
    return np.split(x, range(size, n, size), axis=axis)


def _np_split(x, size, axis=0):
    return np.split(x, range(size, x.shape[axis], size), axis=axis)


def _np_pad(x, pad, mode="constant", value=0.0):
    # F.pad lists (before, after) pairs from the last dim backwards
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        crop = tuple(slice(-b if b < 0 else None, a if a < 0 else None) for b, a in widths)
        return np.pad(x[crop], [(max(b, 0), max(a, 0)) for b, a in widths],
                      constant_values=value)
    return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge",
                                   "circular": "wrap"}[mode])


def _np_searchsorted(s, v, side="left"):
    if s.ndim == 1:
        return np.searchsorted(s, v, side).astype(np.int64)
    rows = zip(s.reshape(-1, s.shape[-1]), v.reshape(-1, v.shape[-1]))
    return np.stack([np.searchsorted(a, b, side) for a, b in rows]).reshape(v.shape).astype(
        np.int64)


def _np_diag_embed(x, offset=0):
    """Matrices with the last dim of ``x`` on the ``offset`` diagonal, one per leading index."""
    x = np.atleast_1d(x)
    m = x.shape[-1] + abs(offset)
    out = np.zeros(x.shape[:-1] + (m, m), x.dtype)
    for i in range(x.shape[-1]):
        out[..., i + max(-offset, 0), i + max(offset, 0)] = x[..., i]
    return out


def _np_cdist(a, b, p=2):
    d = np.abs(a[..., :, None, :] - b[..., None, :, :])
    return (d ** p).sum(-1) ** (1.0 / p)


def _lower_median(x, axis=None, keepdims=False):
    """PyTorch's median: the lower of the two middle values; NaN (and the index of the first
    NaN) where the reduced values hold one."""
    if axis is None:
        s = np.sort(x.reshape(-1))  # NaN sorts last
        return s[-1] if np.isnan(s).any() else s[(s.size - 1) // 2]
    vals, idx = _np_kth(x, (x.shape[axis] + 1) // 2, axis, True)
    nan = np.isnan(x)
    has_nan = nan.any(axis, keepdims=True)
    vals = np.where(has_nan, np.nan, vals)
    idx = np.where(has_nan, np.argmax(nan, axis, keepdims=True), idx)
    if not keepdims:
        vals, idx = np.squeeze(vals, axis), np.squeeze(idx, axis)
    return vals, idx


def _np_topk_nan_largest(x, k):
    order = np.argsort(np.where(np.isnan(x), -np.inf, -x), -1, kind="stable")  # NaN first
    idx = order[..., :k]
    return np.take_along_axis(x, idx, -1), idx


def _mean(x, axis=None, keepdims=False):
    with warnings.catch_warnings():  # the mean of nothing is NaN, as in PyTorch
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.mean(x, axis=axis, keepdims=keepdims)


def _var(x, axis=None, ddof=1, keepdims=False, root=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        v = np.var(x, axis=axis, ddof=ddof, keepdims=keepdims)
    return np.sqrt(v) if root else v


def _unary(name, ref, gen=ANY, grad=True, shapes=UNARY):
    return Row(name, getattr(em, name), ref, shapes, grad, gen)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

ROWS = [
    # ----- arithmetic -------------------------------------------------------------------------
    Row("add", em.add, np.add, BINARY, True),
    Row("add-alpha", lambda a, b: em.add(a, b, alpha=2.5), lambda a, b: a + 2.5 * b,
        BINARY, True),
    Row("add-scalar", lambda a: em.add(a, 1.5), lambda a: a + 1.5, UNARY, True),
    Row("add-int", em.add, np.add, BINARY, False, INT64),
    # PyTorch promotion: int with float tensor is float; a Python float makes ints float32
    Row("add-int-float", em.add, np.add, BINARY, True, (INT64, ANY)),
    Row("add-int-scalar-float", lambda a: em.add(a, 0.5),
        lambda a: (a + 0.5).astype(np.float32), UNARY, False, INT64),
    Row("add-int-scalar-int", lambda a: em.add(a, 3), lambda a: a + 3, UNARY, False, INT64),
    Row("add-bool", em.add, np.logical_or, BINARY, False, BOOL),
    Row("mul-bool-float", em.mul, np.multiply, BINARY, True, (BOOL, ANY)),
    Row("sub", em.sub, np.subtract, BINARY, True),
    Row("sub-alpha", lambda a, b: em.sub(a, b, alpha=0.5), lambda a, b: a - 0.5 * b,
        BINARY, True),
    Row("rsub", lambda a: em.rsub(a, 2.0), lambda a: 2.0 - a, UNARY, True),
    Row("mul", em.mul, np.multiply, BINARY, True),
    Row("mul-scalar", lambda a: em.mul(a, 3), lambda a: 3 * a, UNARY, True),
    Row("mul-bool", em.mul, np.logical_and, BINARY, False, BOOL),
    Row("div", em.div, np.divide, BINARY, True, (ANY, AWAY0)),
    Row("div-scalar-numerator", lambda b: em.div(2.0, b), lambda b: 2.0 / b, UNARY, True,
        AWAY0),
    Row("div-by-zero", em.div, np.divide, BINARY, False, (WITH_ZEROS, lambda rng, s: np.zeros(s))),
    Row("div-int", em.div, lambda a, b: (a / b).astype(np.float32), BINARY, False,
        (INT64, INT64_NONZERO)),
    Row("div-floor", lambda a, b: em.div(a, b, rounding_mode="floor"),
        lambda a, b: np.floor(a / b), BINARY, True, (ANY, AWAY0)),
    Row("div-trunc", lambda a, b: em.div(a, b, rounding_mode="trunc"),
        lambda a, b: np.trunc(a / b), BINARY, True, (ANY, AWAY0)),
    Row("div-floor-int", lambda a, b: em.div(a, b, rounding_mode="floor"),
        lambda a, b: np.floor(a / b).astype(np.int64), BINARY, False, (INT64, INT64_NONZERO)),
    Row("div-trunc-int", lambda a, b: em.div(a, b, rounding_mode="trunc"),
        lambda a, b: np.trunc(a / b).astype(np.int64), BINARY, False, (INT64, INT64_NONZERO)),
    Row("trunc_div", em.trunc_div, lambda a, b: np.trunc(a / b), BINARY, True,
        (ANY, AWAY0)),
    Row("floor_divide", em.floor_divide, lambda a, b: np.floor(a / b), BINARY, True,
        (ANY, AWAY0)),
    Row("floor_divide-int", em.floor_divide, lambda a, b: np.floor(a / b).astype(np.int64),
        BINARY, False, (INT64, INT64_NONZERO)),
    # remainder takes the divisor's sign (Python), fmod the dividend's (C)
    Row("remainder", em.remainder, lambda a, b: a - np.floor(a / b) * b, BINARY, True,
        (ANY, AWAY0)),
    Row("remainder-scalar", lambda a: em.remainder(a, -1.5),
        lambda a: a - np.floor(a / -1.5) * -1.5, UNARY, True),
    Row("fmod-scalar", lambda a: em.fmod(a, -1.5), lambda a: a - np.trunc(a / -1.5) * -1.5,
        UNARY, True),
    Row("remainder-int", em.remainder, lambda a, b: a - np.floor(a / b).astype(np.int64) * b,
        BINARY, False, (INT64, INT64_NONZERO)),
    Row("fmod", em.fmod, lambda a, b: a - np.trunc(a / b) * b, BINARY, True, (ANY, AWAY0)),
    Row("fmod-int", em.fmod, lambda a, b: a - np.trunc(a / b).astype(np.int64) * b,
        BINARY, False, (INT64, INT64_NONZERO)),
    Row("pow", em.pow, np.power, BINARY, True, (POS, ANY)),
    Row("pow-scalar-2", lambda a: em.pow(a, 2), lambda a: a * a, UNARY, True),
    Row("pow-scalar-3", lambda a: em.pow(a, 3), lambda a: a * a * a, UNARY, True),
    Row("pow-scalar-1", lambda a: em.pow(a, 1), lambda a: a, UNARY, True),
    Row("pow-scalar-0", lambda a: em.pow(a, 0), np.ones_like, UNARY, True),
    Row("pow-scalar-0-at-zero", lambda a: em.pow(a, 0.0), np.ones_like, U((3, 4),), True,
        WITH_ZEROS),
    Row("pow-scalar-half", lambda a: em.pow(a, 0.5), np.sqrt, UNARY, True, POS),
    Row("pow-scalar-negative", lambda a: em.pow(a, -1.5), lambda a: 1 / (a * np.sqrt(a)),
        UNARY, True, POS),
    Row("pow-scalar-base", lambda b: em.pow(2.0, b), lambda b: np.exp(b * math.log(2.0)),
        UNARY, True),
    Row("pow-zero-base", em.pow, np.power, BINARY, True,
        (WITH_ZEROS, lambda rng, s: rng.choice([2.0, 3.0], s))),
    Row("pow-int", lambda a: em.pow(a, 3), lambda a: a * a * a, UNARY, False, INT64),
    Row("maximum", em.maximum, np.maximum, BINARY, True),
    # at a tie the central difference of max(a, b) is 1/2 to each: PyTorch's split
    Row("maximum-ties", em.maximum, np.maximum, BINARY, True, INTS),
    Row("maximum-nan", em.maximum, np.maximum, BINARY, False, WITH_NAN),
    Row("minimum", em.minimum, np.minimum, BINARY, True),
    Row("minimum-ties", em.minimum, np.minimum, BINARY, True, INTS),
    Row("minimum-nan", em.minimum, np.minimum, BINARY, False, WITH_NAN),
    # fmax/fmin ignore a NaN when the other operand is a number
    Row("fmax", em.fmax, np.fmax, BINARY, True),
    Row("fmax-nan", em.fmax, np.fmax, BINARY, False, WITH_NAN),
    Row("fmin", em.fmin, np.fmin, BINARY, True),
    Row("fmin-nan", em.fmin, np.fmin, BINARY, False, WITH_NAN),
    Row("atan2", em.atan2, np.arctan2, BINARY, True, (ANY, AWAY0)),
    Row("lerp", em.lerp, lambda a, b, w: a + w * (b - a), TERNARY, True),
    Row("lerp-scalar-weight", lambda a, b: em.lerp(a, b, 0.3), lambda a, b: a + 0.3 * (b - a),
        BINARY, True),
    Row("addcmul", lambda a, b, c: em.addcmul(a, b, c, value=0.5),
        lambda a, b, c: a + 0.5 * b * c, TERNARY, True),
    Row("addcdiv", lambda a, b, c: em.addcdiv(a, b, c, value=-2),
        lambda a, b, c: a - 2 * b / c, TERNARY, True, (ANY, ANY, AWAY0)),
    Row("neg", em.neg, np.negative, UNARY, True),
    Row("neg-int", em.neg, np.negative, UNARY, False, INT64),
    Row("positive", em.positive, lambda a: a, UNARY, True),
    Row("cast-float32", lambda a: em.cast(a, em.float32), lambda a: a.astype(np.float32),
        UNARY, False),
    Row("cast-int64", lambda a: em.cast(a, em.int64), lambda a: np.trunc(a).astype(np.int64),
        UNARY, False),
    Row("cast-bool", lambda a: em.cast(a, em.bool), lambda a: a != 0, UNARY, False,
        WITH_ZEROS),

    # ----- unary ------------------------------------------------------------------------------
    _unary("exp", np.exp),
    _unary("exp2", lambda x: np.power(2.0, x)),
    _unary("expm1", np.expm1),
    _unary("log", np.log, POS),
    _unary("log2", lambda x: np.log(x) / math.log(2.0), POS),
    _unary("log10", lambda x: np.log(x) / math.log(10.0), POS),
    _unary("log1p", np.log1p, _uniform(-0.5, 2.0)),
    _unary("sqrt", np.sqrt, POS),
    _unary("rsqrt", lambda x: 1 / np.sqrt(x), POS),
    _unary("sin", np.sin),
    _unary("cos", np.cos),
    _unary("tan", np.tan, _uniform(-1.2, 1.2)),
    _unary("asin", np.arcsin, UNIT),
    _unary("acos", np.arccos, UNIT),
    _unary("atan", np.arctan),
    _unary("sinh", np.sinh),
    _unary("cosh", np.cosh),
    _unary("tanh", np.tanh),
    _unary("asinh", np.arcsinh),
    _unary("acosh", np.arccosh, _uniform(1.2, 3.0)),
    _unary("atanh", np.arctanh, UNIT),
    _unary("reciprocal", lambda x: 1 / x, AWAY0),
    _unary("erf", sp.erf),
    _unary("erfc", sp.erfc),
    _unary("abs", np.abs, AWAY0),
    _unary("sign", np.sign, AWAY0),
    _unary("floor", np.floor),
    _unary("ceil", np.ceil),
    _unary("trunc", np.trunc),
    _unary("frac", lambda x: np.modf(x)[0]),
    _unary("square", lambda x: x * x),
    _unary("round", np.round),  # half to even, like PyTorch
    _unary("logit", sp.logit, PROB),
    Row("round-half", em.round, np.round, U((4,)), False, lambda rng, s: np.array(
        [-2.5, -0.5, 0.5, 1.5])),
    Row("round-decimals-negative", lambda x: em.round(x, decimals=-1),
        lambda x: np.round(x, -1), UNARY, True, _uniform(-50, 50)),
    Row("round-decimals", lambda x: em.round(x, decimals=2), lambda x: np.round(x, 2),
        UNARY, True),
    Row("logit-eps", lambda x: em.logit(x, eps=0.2), lambda x: sp.logit(np.clip(x, 0.2, 0.8)),
        UNARY, True, _uniform(0.01, 0.99)),
    Row("sign-zeros", em.sign, np.sign, UNARY, False, WITH_ZEROS),
    Row("exp-int", em.exp, lambda x: np.exp(x).astype(np.float32), UNARY, False, INT64),
    Row("sqrt-int", em.sqrt, lambda x: np.sqrt(np.abs(x)).astype(np.float32),
        UNARY, False, lambda rng, s: np.abs(INT64(rng, s))),
    Row("abs-int", em.abs, np.abs, UNARY, False, INT64),
    Row("sign-int", em.sign, np.sign, UNARY, False, INT64),
    Row("floor-int", em.floor, lambda x: x, UNARY, False, INT64),
    Row("square-int", em.square, lambda x: x * x, UNARY, False, INT64),

    # ----- activation -------------------------------------------------------------------------
    _unary("relu", lambda x: np.where(x > 0, x, 0.0), AWAY0),
    _unary("sigmoid", sp.expit),
    Row("sigmoid-huge", em.sigmoid, sp.expit, U((6,)), True, _uniform(-800, 800)),
    _unary("gelu", lambda x: 0.5 * x * (1 + sp.erf(x / math.sqrt(2.0)))),
    Row("gelu-tanh", lambda x: em.gelu(x, approximate="tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))),
        UNARY, True),
    _unary("silu", lambda x: x * sp.expit(x)),
    _unary("softplus", lambda x: np.log1p(np.exp(x))),
    Row("softplus-beta-threshold", lambda x: em.softplus(x, beta=2.0, threshold=1.0),
        lambda x: np.where(2 * x > 1.0, x, np.log1p(np.exp(2 * x)) / 2), UNARY, True),
    Row("softplus-huge", em.softplus, lambda x: np.logaddexp(0.0, x), U((6,)), True,
        _uniform(-800, 800)),
    Row("softmax-last", lambda x: em.softmax(x, -1), lambda x: _np_softmax(x, -1), UNARY,
        True),
    Row("softmax-dim0", lambda x: em.softmax(x, 0), lambda x: _np_softmax(x, 0),
        U((3, 4), (2, 1, 3), (1, 5), (3, 0)), True),
    Row("softmax-huge", lambda x: em.softmax(x, 1), lambda x: _np_softmax(x, 1),
        U((2, 5)), True, HUGE),
    Row("softmax-masked", lambda x: em.softmax(x, -1), lambda x: _np_softmax(x, -1),
        U((3, 4),), True, PARTLY_NEG_INF),
    Row("log_softmax-masked", lambda x: em.log_softmax(x, -1),
        lambda x: _np_log_softmax(x, -1), U((3, 4),), False, PARTLY_NEG_INF),
    Row("log_softmax-last", lambda x: em.log_softmax(x, -1), lambda x: _np_log_softmax(x, -1),
        UNARY, True),
    Row("log_softmax-dim1", lambda x: em.log_softmax(x, 1), lambda x: _np_log_softmax(x, 1),
        U((3, 4), (2, 1, 3), (1, 5), (3, 0)), True),
    Row("log_softmax-huge", lambda x: em.log_softmax(x, 1), lambda x: _np_log_softmax(x, 1),
        U((2, 5)), True, HUGE),

    # ----- comparison -------------------------------------------------------------------------
    *[Row(n, getattr(em, n), f, BINARY, False, INTS) for n, f in [
        ("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
        ("gt", np.greater), ("ge", np.greater_equal)]],
    Row("eq-scalar", lambda a: em.eq(a, 1.0), lambda a: a == 1.0, UNARY, False, INTS),
    Row("lt-int-float", em.lt, np.less, BINARY, False, (INT64, ANY)),
    *[Row(n, getattr(em, n), f, BINARY, False, WITH_ZEROS) for n, f in [
        ("logical_and", np.logical_and), ("logical_or", np.logical_or),
        ("logical_xor", np.logical_xor)]],
    Row("logical_not", em.logical_not, np.logical_not, UNARY, False, WITH_ZEROS),
    *[Row(n, getattr(em, n), f, BINARY, False, INT64) for n, f in [
        ("bitwise_and", np.bitwise_and), ("bitwise_or", np.bitwise_or),
        ("bitwise_xor", np.bitwise_xor)]],
    Row("bitwise_not", em.bitwise_not, np.invert, UNARY, False, INT64),
    Row("bitwise_and-bool", em.bitwise_and, np.logical_and, BINARY, False, BOOL),
    *[Row(n, getattr(em, n), f, UNARY, False, SPECIALS) for n, f in [
        ("isnan", np.isnan), ("isinf", np.isinf), ("isfinite", np.isfinite),
        ("isposinf", np.isposinf), ("isneginf", np.isneginf)]],
    Row("signbit", em.signbit, np.signbit, UNARY, False, WITH_ZEROS),
    Row("isclose", em.isclose, lambda a, b: np.abs(a - b) <= 1e-8 + 1e-5 * np.abs(b),
        BINARY, False, INTS),
    Row("equal", em.equal, lambda a, b: a.shape == b.shape and bool((a == b).all()),
        (((3,), (3,)), ((2,), (3,))), False, lambda rng, s: np.arange(float(s[0]))),
    Row("allclose", em.allclose, lambda a, b: bool((np.abs(a - b) <= 1e-8 + 1e-5 *
                                                    np.abs(b)).all()),
        (((3,), (3,)), ((2, 1), (3,))), False, lambda rng, s: np.zeros(s)),
    Row("where", em.where, np.where, TERNARY, True, (BOOL, ANY, ANY)),
    Row("where-int-float", em.where, np.where, TERNARY, True, (BOOL, INT64, ANY)),
    Row("where-scalar", lambda c, a: em.where(c, a, 0.5), lambda c, a: np.where(c, a, 0.5),
        BINARY, True, (BOOL, ANY)),
    Row("clamp", lambda x: em.clamp(x, -0.5, 0.8), lambda x: np.minimum(np.maximum(x, -0.5),
                                                                        0.8), UNARY, True),
    Row("clamp-crossed", lambda x: em.clamp(x, 0.5, -0.5), lambda x: np.full_like(x, -0.5),
        UNARY, True),  # min > max: everything is max, as in PyTorch
    Row("clamp-nan", lambda x: em.clamp(x, -1.0, 1.0), lambda x: np.clip(x, -1.0, 1.0),
        UNARY, False, WITH_NAN),
    Row("clamp-min", lambda x: em.clamp(x, min=0.3), lambda x: np.maximum(x, 0.3), UNARY, True),
    Row("clamp-max", lambda x: em.clamp(x, max=0.3), lambda x: np.minimum(x, 0.3), UNARY, True),
    Row("clamp-tensor", lambda x, lo, hi: em.clamp(x, lo, hi),
        lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi), TERNARY, True),
    Row("clamp-tensor-min", lambda x, lo: em.clamp(x, min=lo), np.maximum, BINARY, True),
    Row("clamp-int", lambda x: em.clamp(x, -3, 2), lambda x: np.minimum(np.maximum(x, -3), 2),
        UNARY, False, INT64),
    Row("clamp-int-float-bound", lambda x: em.clamp(x, -2.5, 1.5),
        lambda x: np.minimum(np.maximum(x, -2.5), 1.5).astype(np.float32), UNARY, False, INT64),
    Row("clip", lambda x: em.clip(x, -1, 1), lambda x: np.minimum(np.maximum(x, -1.0), 1.0),
        UNARY, True),
    Row("clamp_min", lambda x: em.clamp_min(x, 0.1), lambda x: np.maximum(x, 0.1), UNARY, True),
    Row("clamp_max", lambda x: em.clamp_max(x, 0.1), lambda x: np.minimum(x, 0.1), UNARY, True),

    # ----- reduction --------------------------------------------------------------------------
    Row("sum", em.sum, np.sum, UNARY, True),
    Row("sum-dim1", lambda x: em.sum(x, 1), lambda x: np.sum(x, 1), ND2, True),
    Row("sum-dims-keepdim", lambda x: em.sum(x, (0, -1), keepdim=True),
        lambda x: np.sum(x, (0, x.ndim - 1), keepdims=True), ND2, True),
    Row("sum-dtype", lambda x: em.sum(x, 1, dtype=em.float64), lambda x: np.sum(x, 1),
        U((3, 4),), True, dtype32=np.float64),
    Row("sum-int", em.sum, np.sum, UNARY, False, INT64),
    Row("sum-bool", lambda x: em.sum(x, 0), lambda x: np.sum(x, 0, dtype=np.int64),
        U((3, 4), (1,)), False, BOOL),
    Row("mean", em.mean, _mean, UNARY, True),
    Row("mean-dim1", lambda x: em.mean(x, 1), lambda x: _mean(x, 1), ND2, True),
    Row("mean-dims-keepdim", lambda x: em.mean(x, (0, -1), keepdim=True),
        lambda x: _mean(x, (0, x.ndim - 1), keepdims=True), ND2, True),
    Row("nansum", em.nansum, np.nansum, UNARY, True, WITH_NAN),
    Row("nanmean", lambda x: em.nanmean(x, -1), lambda x: np.nanmean(x, -1),
        U((3, 4), (2, 1, 3)), True, lambda rng, s: np.where(
            np.arange(s[-1]) == 0, np.nan, rng.uniform(-2, 2, s))),
    Row("prod", em.prod, np.prod, UNARY, True),
    Row("prod-dim1", lambda x: em.prod(x, 1), lambda x: np.prod(x, 1), ND2, True),
    Row("prod-dim0-keepdim", lambda x: em.prod(x, 0, keepdim=True),
        lambda x: np.prod(x, 0, keepdims=True), ND2, True),
    Row("prod-zeros", em.prod, np.prod, U((5,), (3, 4)), True,
        lambda rng, s: np.where(np.arange(math.prod(s)).reshape(s) == 2, 0.0,
                                rng.uniform(-2, 2, s))),
    Row("prod-two-zeros-dim1", lambda x: em.prod(x, 1), lambda x: np.prod(x, 1),
        U((3, 4)), True, lambda rng, s: np.where(np.arange(s[1]) % 2 == 0, 0.0,
                                                 rng.uniform(-2, 2, s))),
    Row("prod-random-zeros", lambda x: em.prod(x, -1), lambda x: np.prod(x, -1), ND2, True,
        WITH_ZEROS),
    Row("amax", em.amax, np.max, UNARY[:-1], True, DISTINCT),
    Row("amax-dims", lambda x: em.amax(x, (0, 1), keepdim=True),
        lambda x: np.max(x, (0, 1), keepdims=True), ND2[:-1], True, DISTINCT),
    Row("amax-int", lambda x: em.amax(x, 0), lambda x: np.max(x, 0), U((4, 3),), False, INT64),
    Row("prod-int", lambda x: em.prod(x, 1), lambda x: np.prod(x, 1), U((3, 4),), False,
        INT64),
    Row("amax-ties", lambda x: em.amax(x, 1), lambda x: np.max(x, 1), ND2, False, INTS),
    Row("amin", em.amin, np.min, UNARY[:-1], True, DISTINCT),
    Row("amin-dim1", lambda x: em.amin(x, 1), lambda x: np.min(x, 1), ND2, True, DISTINCT),
    Row("max", em.max, np.max, UNARY[:-1], True, DISTINCT),
    Row("max-dim", lambda x: tuple(em.max(x, 1)), lambda x: _np_max_dim(x, 1), ND2, True,
        DISTINCT),
    Row("max-dim-keepdim", lambda x: tuple(em.max(x, -1, keepdim=True)),
        lambda x: _np_max_dim(x, -1, True), ND2, True, DISTINCT),
    Row("max-dim-ties", lambda x: tuple(em.max(x, 1)), lambda x: _np_max_dim(x, 1), ND2,
        False, INTS),  # the index of the first maximum, as NumPy
    Row("max-other", lambda a, b: em.max(a, b), np.maximum, BINARY, True),
    Row("min", em.min, np.min, UNARY[:-1], True, DISTINCT),
    Row("min-dim", lambda x: tuple(em.min(x, 0)),
        lambda x: _np_max_dim(x, 0, fn=np.min, arg=np.argmin), ND2_DIM0, True, DISTINCT),
    Row("max-dim-nan", lambda x: tuple(em.max(x, 1)), lambda x: _np_max_dim(x, 1),
        U((4, 3), (3, 4)), False, WITH_NAN),  # NaN wins, at its first index
    Row("amax-nan", lambda x: em.amax(x, 0), lambda x: np.max(x, 0), U((4, 3),), False,
        WITH_NAN),
    Row("argmax-nan", lambda x: em.argmax(x, 1), lambda x: np.argmax(x, 1), U((4, 3),), False,
        WITH_NAN),
    Row("argmax", em.argmax, lambda x: np.argmax(x), UNARY[:-1], False, DISTINCT),
    Row("argmax-keepdim", lambda x: em.argmax(x, keepdim=True),
        lambda x: np.argmax(x.reshape(-1)).reshape((1,) * x.ndim), U((3, 4), (2, 1, 3)), False,
        DISTINCT),
    Row("argmax-dim", lambda x: em.argmax(x, 1, keepdim=True),
        lambda x: np.argmax(x, 1, keepdims=True), ND2, False, DISTINCT),
    Row("argmax-ties", lambda x: em.argmax(x, -1), lambda x: np.argmax(x, -1), ND2, False,
        INTS),
    Row("argmin", em.argmin, lambda x: np.argmin(x), UNARY[:-1], False, DISTINCT),
    Row("argmin-dim", lambda x: em.argmin(x, 0), lambda x: np.argmin(x, 0), ND2_DIM0, False,
        INTS),
    *[Row(f"var-correction{c}", lambda x, c=c: em.var(x, 1, correction=c),
          lambda x, c=c: _var(x, 1, c), U((3, 4), (2, 3, 2), (1, 5)), True) for c in (0, 1, 2)],
    Row("var", em.var, _var, U((3, 4), (5,)), True),
    Row("var-unbiased-false-keepdim", lambda x: em.var(x, 0, unbiased=False, keepdim=True),
        lambda x: _var(x, 0, 0, keepdims=True), U((3, 4), (2, 1, 3)), True),
    Row("var-degenerate", lambda x: em.var(x, 1), lambda x: _var(x, 1, 1), U((3, 1)), False),
    *[Row(f"std-correction{c}", lambda x, c=c: em.std(x, -1, correction=c),
          lambda x, c=c: _var(x, -1, c, root=True), U((3, 4), (2, 3, 4), (1, 5)), True)
      for c in (0, 1, 2)],
    Row("std-constant-rows", lambda x: em.std(x, 1), lambda x: _var(x, 1, root=True),
        U((3, 4),), True, CONSTANT_ROWS),
    Row("std", em.std, lambda x: _var(x, root=True), U((3, 4), (5,)), True),
    Row("var_mean", lambda x: em.var_mean(x, 1), lambda x: (_var(x, 1), _mean(x, 1)),
        U((3, 4)), True),
    Row("std_mean", lambda x: em.std_mean(x, 0, correction=0),
        lambda x: (_var(x, 0, 0, root=True), _mean(x, 0)), U((3, 4)), True),
    Row("logsumexp", lambda x: em.logsumexp(x, -1), lambda x: sp.logsumexp(x, -1),
        U((1,), (3, 4), (2, 1, 3), (3, 0)), True),
    Row("logsumexp-dims", lambda x: em.logsumexp(x, (0, 1), keepdim=True),
        lambda x: sp.logsumexp(x, (0, 1), keepdims=True), U((3, 4), (2, 1, 3)), True),
    Row("logsumexp-all", lambda x: em.logsumexp(x), sp.logsumexp, U((), (3, 4)), True),
    Row("logsumexp-huge", lambda x: em.logsumexp(x, 1), lambda x: sp.logsumexp(x, 1),
        U((2, 5)), True, HUGE),
    Row("logsumexp-partly-neginf", lambda x: em.logsumexp(x, 1), lambda x: sp.logsumexp(x, 1),
        U((3, 4)), True, PARTLY_NEG_INF),
    Row("logsumexp-neginf-rows", lambda x: em.logsumexp(x, 1),
        lambda x: sp.logsumexp(x, 1), U((3, 4)), False, NEG_INF_ROWS),
    Row("cumsum", lambda x: em.cumsum(x, 0), lambda x: _scan(np.cumsum, x, 0), UNARY, True),
    Row("cumsum-last", lambda x: em.cumsum(x, -1), lambda x: np.cumsum(x, -1), ND2, True),
    Row("cumsum-bool", lambda x: em.cumsum(x, -1), lambda x: np.cumsum(x, -1, dtype=np.int64),
        U((3, 4),), False, BOOL),
    Row("cumsum-int", lambda x: em.cumsum(x, 0), lambda x: np.cumsum(x, 0), U((5,)), False,
        INT64),
    Row("cumprod", lambda x: em.cumprod(x, 0), lambda x: _scan(np.cumprod, x, 0), UNARY,
        True),
    Row("cumprod-last", lambda x: em.cumprod(x, -1), lambda x: np.cumprod(x, -1), ND2, True),
    Row("cumprod-zeros", lambda x: em.cumprod(x, -1), lambda x: np.cumprod(x, -1),
        U((3, 5), (2, 1, 4)), True, WITH_ZEROS),
    Row("cumprod-zero-first-dim0", lambda x: em.cumprod(x, 0), lambda x: np.cumprod(x, 0),
        U((4, 3)), True, lambda rng, s: np.where(np.arange(s[0])[:, None] == 0, 0.0,
                                                 rng.uniform(-2, 2, s))),
    *[Row(f"norm-p{p}", lambda x, p=p: em.norm(x, p), lambda x, p=p: _np_norm(x, p),
          U((1,), (3, 4), (2, 1, 3)), True, AWAY0) for p in (1, 2, 3, 1.5)],
    Row("norm-pinf", lambda x: em.norm(x, float("inf")), lambda x: _np_norm(x, np.inf),
        U((1,), (3, 4)), True, DISTINCT),
    Row("norm-pneginf", lambda x: em.norm(x, float("-inf")), lambda x: _np_norm(x, -np.inf),
        U((1,), (3, 4)), True, DISTINCT),
    Row("norm-p0.5", lambda x: em.norm(x, 0.5), lambda x: _np_norm(x, 0.5), U((3, 4),), True,
        AWAY0),
    Row("norm-p0.5-zeros", lambda x: em.norm(x, 0.5, 1), lambda x: _np_norm(x, 0.5, 1),
        U((3, 4),), True, WITH_ZEROS),
    *[Row(f"norm-p{p}-zero-row", lambda x, p=p: em.norm(x, p, 1),
          lambda x, p=p: _np_norm(x, p, 1), U((3, 4), (2, 1)), True, ZERO_ROW)
      for p in (2, 3, 1.5)],
    Row("norm-p0", lambda x: em.norm(x, 0), lambda x: _np_norm(x, 0), U((3, 4)), True,
        WITH_ZEROS),
    Row("norm-fro", em.norm, lambda x: np.sqrt(np.sum(x * x)), UNARY, True),
    Row("norm-p3-dim1-keepdim", lambda x: em.norm(x, 3, 1, keepdim=True),
        lambda x: _np_norm(x, 3, 1, True), ND2, True, AWAY0),
    Row("norm-pinf-dim1", lambda x: em.norm(x, float("inf"), 1),
        lambda x: _np_norm(x, np.inf, 1), ND2[:-1], True, DISTINCT),
    Row("all", em.all, np.all, UNARY, False, WITH_ZEROS),
    Row("all-dim", lambda x: em.all(x, 1), lambda x: np.all(x, 1), ND2, False, WITH_ZEROS),
    Row("any", em.any, np.any, UNARY, False, WITH_ZEROS),
    Row("any-dim-keepdim", lambda x: em.any(x, 0, keepdim=True),
        lambda x: np.any(x, 0, keepdims=True), ND2, False, WITH_ZEROS),
    Row("any-bool", lambda x: em.any(x, -1), lambda x: np.any(x, -1), ND2, False, BOOL),
    Row("count_nonzero", em.count_nonzero, lambda x: np.asarray(np.count_nonzero(x)), UNARY,
        False, WITH_ZEROS),
    Row("count_nonzero-dims", lambda x: em.count_nonzero(x, (0, 1)),
        lambda x: np.count_nonzero(x, (0, 1)).astype(np.int64), U((3, 4), (2, 1, 3)), False,
        WITH_ZEROS),
    Row("count_nonzero-dim", lambda x: em.count_nonzero(x, 1),
        lambda x: np.count_nonzero(x, 1).astype(np.int64), ND2, False, WITH_ZEROS),

    # ----- shape ------------------------------------------------------------------------------
    Row("reshape", lambda x: em.reshape(x, (-1,)), lambda x: x.reshape(-1), UNARY, True),
    Row("reshape-2d", lambda x: em.reshape(x, (2, -1)), lambda x: x.reshape(2, -1),
        U((4, 3), (2, 1, 3), (2,), (0, 3)), True),
    Row("reshape-list", lambda x: em.reshape(x, [2, -1]), lambda x: x.reshape(2, -1),
        U((4, 3),), True),
    Row("reshape-scalar", lambda x: em.reshape(x, ()), lambda x: x.reshape(()),
        U((), (1,), (1, 1)), True),
    Row("view", lambda x: em.view(x, 3, -1), lambda x: x.reshape(3, -1),
        U((3, 4), (6, 2), (3,), (0, 3)), True),
    Row("view_as", lambda x, y: em.view_as(x, y), lambda x, y: x.reshape(y.shape),
        (((3, 4), (2, 6)), ((), (1,)), ((0, 2), (2, 0))), True),
    Row("reshape_as", lambda x, y: em.reshape_as(x, y), lambda x, y: x.reshape(y.shape),
        (((3, 4), (2, 6)), ((1,), ())), True),
    Row("ravel", em.ravel, np.ravel, UNARY, True),
    Row("flatten", em.flatten, lambda x: x.reshape(-1), UNARY, True),
    Row("flatten-middle", lambda x: em.flatten(x, 1, 2),
        lambda x: x.reshape(x.shape[0], -1, *x.shape[3:]),
        U((2, 3, 4), (2, 1, 1), (3, 0, 2), (2, 3, 4, 1)), True),
    Row("unflatten", lambda x: em.unflatten(x, 1, (2, -1)),
        lambda x: x.reshape(x.shape[0], 2, x.shape[1] // 2), U((3, 4), (1, 6), (0, 2)), True),
    Row("permute", lambda x: em.permute(x, (2, 0, 1)), lambda x: np.transpose(x, (2, 0, 1)),
        U((2, 3, 4), (1, 3, 1), (0, 2, 3)), True),
    Row("permute-negative", lambda x: em.permute(x, -1, 0, -2), lambda x: np.transpose(
        x, (2, 0, 1)), U((2, 3, 4),), True),
    Row("permute-scalar", lambda x: em.permute(x, ()), lambda x: x, U(()), True),
    Row("transpose", lambda x: em.transpose(x, 0, -1), lambda x: np.swapaxes(x, 0, -1),
        U((3, 4), (2, 3, 4), (1, 5), (0, 3)), True),
    Row("transpose-scalar", lambda x: em.transpose(x, 0, -1), lambda x: x, U(()), True),
    Row("swapaxes", lambda x: em.swapaxes(x, 1, 2), lambda x: np.swapaxes(x, 1, 2),
        U((2, 3, 4),), True),
    Row("t", em.t, lambda x: x.T, U((), (3,), (3, 4), (0, 2)), True),
    Row("movedim", lambda x: em.movedim(x, 0, -1), lambda x: np.moveaxis(x, 0, -1),
        U((2, 3, 4), (1, 2), (0, 3, 1), (3,)), True),
    Row("movedim-multi", lambda x: em.movedim(x, (0, 1), (2, 0)),
        lambda x: np.moveaxis(x, (0, 1), (2, 0)), U((2, 3, 4), (1, 2, 1, 3)), True),
    Row("squeeze", em.squeeze, np.squeeze, U((), (1,), (3, 1, 4), (1, 1), (0, 1)), True),
    Row("squeeze-dim", lambda x: em.squeeze(x, 1), lambda x: np.squeeze(x, 1)
        if x.shape[1] == 1 else x, U((3, 1, 4), (3, 4), (0, 1)), True),
    Row("squeeze-dims", lambda x: em.squeeze(x, (0, 2)), lambda x: np.squeeze(x, (0, 2)),
        U((1, 3, 1), (1, 1, 1)), True),
    Row("unsqueeze", lambda x: em.unsqueeze(x, 0), lambda x: x[None], UNARY, True),
    Row("unsqueeze-last", lambda x: em.unsqueeze(x, -1), lambda x: x[..., None], UNARY, True),
    Row("expand", lambda x: em.expand(x, 2, 3, 4), lambda x: np.broadcast_to(x, (2, 3, 4)),
        U((), (1,), (4,), (3, 1), (1, 3, 4), (3, 4)), True),
    Row("expand-keep", lambda x: em.expand(x, -1, 5), lambda x: np.broadcast_to(
        x, (x.shape[0], 5)), U((3, 1), (0, 1), (2, 5)), True),
    Row("expand-empty", lambda x: em.expand(x, 0, 4), lambda x: np.broadcast_to(x, (0, 4)),
        U((1, 4), (4,), (1, 1)), True),
    Row("expand_as", em.expand_as, lambda x, y: np.broadcast_to(x, y.shape),
        (((3, 1), (2, 3, 4)), ((), (2,))), True),
    Row("broadcast_to", lambda x: em.broadcast_to(x, (2, 3)),
        lambda x: np.broadcast_to(x, (2, 3)), U((), (3,), (2, 1)), True),
    Row("broadcast_tensors", lambda a, b: em.broadcast_tensors(a, b), np.broadcast_arrays,
        BINARY, True),
    Row("atleast_1d", em.atleast_1d, np.atleast_1d, U((), (3,), (2, 3)), True),
    Row("atleast_2d", em.atleast_2d, np.atleast_2d, U((), (3,), (2, 3)), True),
    Row("clone", em.clone, np.copy, UNARY, True),
    Row("contiguous", lambda x: em.contiguous(em.t(x)), lambda x: x.T.copy(),
        U((3, 4), (1, 2)), True),
    Row("cat", lambda a, b: em.cat([a, b]), lambda a, b: np.concatenate([a, b]),
        (((2, 3), (4, 3)), ((1, 3), (0, 3)), ((0, 3), (0, 3)), ((2,), (3,))), True),
    Row("cat-last", lambda a, b: em.cat((a, b), -1), lambda a, b: np.concatenate([a, b], -1),
        (((2, 3), (2, 1)), ((2, 1, 2), (2, 1, 3)), ((0, 2), (0, 3))), True),
    Row("cat-three", lambda a, b, c: em.cat([a, b, c], 1),
        lambda a, b, c: np.concatenate([a, b, c], 1), (((2, 1), (2, 3), (2, 2)),), True),
    Row("cat-legacy-empty", lambda a, b: em.cat([a, b]), lambda a, b: b.copy(),
        (((0,), (2, 3)),), True),  # PyTorch skips 1-d empty tensors
    Row("cat-promote", lambda a, b: em.cat([a, b]),
        lambda a, b: np.concatenate([a.astype(np.float32), b]),
        (((2,), (3,)),), False, (INT64, lambda rng, s: rng.uniform(-1, 1, s).astype(
            np.float32))),
    Row("concat", lambda a, b: em.concat([a, b], 1), lambda a, b: np.concatenate([a, b], 1),
        (((2, 3), (2, 1)),), True),
    Row("stack", lambda a, b: em.stack([a, b]), lambda a, b: np.stack([a, b]),
        (((2, 3), (2, 3)), ((), ()), ((0, 2), (0, 2))), True),
    Row("stack-last", lambda a, b: em.stack([a, b], -1), lambda a, b: np.stack([a, b], -1),
        (((2, 3), (2, 3)), ((), ()), ((1,), (1,))), True),
    Row("hstack", lambda a, b: em.hstack([a, b]), lambda a, b: np.hstack([a, b]),
        (((2,), (3,)), ((2, 1), (2, 3))), True),
    Row("vstack", lambda a, b: em.vstack([a, b]), lambda a, b: np.vstack([a, b]),
        (((3,), (3,)), ((1, 3), (2, 3)), ((), ()),), True),
    Row("split", lambda x: em.split(x, 2), lambda x: _np_split(x, 2),
        U((5, 3), (4,), (1, 2), (0, 3)), True),
    Row("split-sections", lambda x: em.split(x, [1, 0, 3], 1),
        lambda x: np.split(x, [1, 1], 1), U((2, 4), (0, 4)), True),
    Row("chunk", lambda x: em.chunk(x, 3), lambda x: _np_chunk(x, 3),
        U((7, 2), (6,), (2, 3), (4,), (0, 2)), True),
    Row("chunk-dim1", lambda x: em.chunk(x, 2, 1), lambda x: _np_chunk(x, 2, 1),
        U((2, 5), (3, 1)), True),
    Row("tensor_split", lambda x: em.tensor_split(x, 3), lambda x: np.array_split(x, 3),
        U((7, 2), (2,), (0, 3)), True),
    Row("tensor_split-indices", lambda x: em.tensor_split(x, [1, 4], 1),
        lambda x: np.split(x, [1, 4], 1), U((2, 5), (1, 3)), True),
    Row("unbind", lambda x: em.unbind(x), lambda x: list(x), U((3, 2), (1,), (0, 2)), True),
    Row("unbind-dim1", lambda x: em.unbind(x, 1), lambda x: list(np.moveaxis(x, 1, 0)),
        U((3, 2), (2, 1, 3)), True),
    Row("narrow", lambda x: em.narrow(x, 1, 1, 2), lambda x: x[:, 1:3],
        U((3, 4), (1, 3), (0, 3)), True),
    Row("narrow-negative-start", lambda x: em.narrow(x, -1, -2, 2), lambda x: x[..., -2:],
        U((3, 4), (2,)), True),
    Row("select", lambda x: em.select(x, 0, -1), lambda x: x[-1], U((3, 4), (1,), (2, 0)),
        True),
    Row("select-dim1", lambda x: em.select(x, 1, 2), lambda x: x[:, 2], U((3, 4), (1, 3, 2)),
        True),
    Row("flip", lambda x: em.flip(x, 0), lambda x: np.flip(x, 0) if x.ndim else x,
        UNARY, True),
    Row("flip-dims", lambda x: em.flip(x, (0, -1)), lambda x: np.flip(x, (0, x.ndim - 1)),
        ND2, True),
    Row("fliplr", em.fliplr, np.fliplr, U((3, 4), (2, 3, 2)), True),
    Row("flipud", em.flipud, np.flipud, U((3, 4), (3,)), True),
    Row("roll", lambda x: em.roll(x, 1, 0), lambda x: np.roll(x, 1, 0),
        U((3, 4), (5,), (1,), (0, 3)), True),
    Row("roll-dims", lambda x: em.roll(x, (1, -3), (0, 1)), lambda x: np.roll(x, (1, -3), (0, 1)),
        U((3, 4), (2, 1)), True),
    Row("roll-flat", lambda x: em.roll(x, 2), lambda x: np.roll(x, 2), UNARY, True),
    Row("repeat", lambda x: em.repeat(x, 2, 1, 3), lambda x: np.tile(x, (2, 1, 3)),
        U((), (2,), (1, 3), (2, 0), (2, 1, 2)), True),
    Row("repeat-zero", lambda x: em.repeat(x, 0, 2), lambda x: np.tile(x, (0, 2)),
        U((3,), (2, 3)), True),
    Row("tile", lambda x: em.tile(x, (2,)), lambda x: np.tile(x, 2), U((3,), (2, 3), (0,)),
        True),
    Row("tile-more", lambda x: em.tile(x, (2, 1, 2)), lambda x: np.tile(x, (2, 1, 2)),
        U((), (3,), (2, 3)), True),
    Row("repeat_interleave", lambda x: em.repeat_interleave(x, 2),
        lambda x: np.repeat(x, 2), UNARY, True),
    Row("repeat_interleave-dim", lambda x: em.repeat_interleave(x, 3, 1),
        lambda x: np.repeat(x, 3, 1), ND2, True),
    *[Row(f"{n}-diag{k}", lambda x, n=n, k=k: getattr(em, n)(x, k),
          lambda x, f=f, k=k: f(x, k), U((3, 4), (4, 3), (2, 3, 3), (1, 1), (0, 3)), True)
      for n, f in (("triu", np.triu), ("tril", np.tril)) for k in (0, 1, -1)],
    Row("diagonal", em.diagonal, np.diagonal, U((3, 4), (4, 3), (1, 1), (0, 3)), True),
    Row("diagonal-offset", lambda x: em.diagonal(x, 1), lambda x: np.diagonal(x, 1),
        U((3, 4), (4, 3), (1, 1)), True),
    Row("diagonal-negative-offset", lambda x: em.diagonal(x, -1), lambda x: np.diagonal(x, -1),
        U((3, 4), (4, 3)), True),
    Row("diagonal-offset-past-end", lambda x: em.diagonal(x, 5), lambda x: np.diagonal(x, 5),
        U((3, 4),), True),
    Row("diagonal-dims", lambda x: em.diagonal(x, 0, 1, 2), lambda x: np.diagonal(x, 0, 1, 2),
        U((2, 3, 3), (2, 3, 4)), True),
    Row("diagonal-dims-reversed", lambda x: em.diagonal(x, 1, -1, 0),
        lambda x: np.diagonal(x, 1, -1, 0), U((3, 2, 4),), True),
    Row("trace", em.trace, np.trace, U((3, 4), (3, 3), (1, 1)), True),
    Row("pad-constant", lambda x: em.pad(x, (1, 2)), lambda x: _np_pad(x, (1, 2)),
        U((3,), (2, 3), (0, 2)), True),
    Row("pad-constant-value", lambda x: em.pad(x, (1, 1, 2, 0), value=0.5),
        lambda x: _np_pad(x, (1, 1, 2, 0), value=0.5), U((3, 4), (2, 1, 2)), True),
    Row("pad-constant-crop", lambda x: em.pad(x, (-1, 2)), lambda x: _np_pad(x, (-1, 2)),
        U((3, 4),), True),
    Row("pad-reflect", lambda x: em.pad(x, (2, 1), mode="reflect"),
        lambda x: _np_pad(x, (2, 1), "reflect"), U((2, 4), (1, 3, 3)), True),
    Row("pad-reflect-2d", lambda x: em.pad(x, (1, 1, 2, 1), mode="reflect"),
        lambda x: _np_pad(x, (1, 1, 2, 1), "reflect"), U((1, 3, 4),), True),
    Row("pad-replicate", lambda x: em.pad(x, (2, 3), mode="replicate"),
        lambda x: _np_pad(x, (2, 3), "replicate"), U((2, 4), (1, 1)), True),
    Row("pad-replicate-2d", lambda x: em.pad(x, (1, 0, 2, 1), mode="replicate"),
        lambda x: _np_pad(x, (1, 0, 2, 1), "replicate"), U((1, 3, 4),), True),
    Row("pad-circular", lambda x: em.pad(x, (2, 1), mode="circular"),
        lambda x: _np_pad(x, (2, 1), "circular"), U((2, 4), (1, 3)), True),
    Row("pad-circular-2d", lambda x: em.pad(x, (2, 1, 1, 1), mode="circular"),
        lambda x: _np_pad(x, (2, 1, 1, 1), "circular"), U((1, 3, 4),), True),

    # ----- linalg -----------------------------------------------------------------------------
    Row("matmul", em.matmul, np.matmul,
        (((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
         ((2, 3), (5, 3, 4)), ((5, 1, 2, 3), (4, 3, 2)), ((3,), (5, 3, 4)), ((5, 2, 3), (3,)),
         ((1, 1), (1, 1)), ((0, 3), (3, 4)), ((2, 0), (0, 4)), ((0,), (0,))), True),
    Row("matmul-int", em.matmul, np.matmul, (((2, 3), (3, 2)), ((3,), (3,))), False, INT64),
    Row("mm", em.mm, np.matmul, (((2, 3), (3, 4)), ((1, 1), (1, 5)), ((0, 2), (2, 3))), True),
    Row("bmm", em.bmm, np.matmul, (((4, 2, 3), (4, 3, 5)), ((1, 1, 2), (1, 2, 1)),
                                   ((0, 2, 3), (0, 3, 1))), True),
    Row("mv", em.mv, np.matmul, (((2, 3), (3,)), ((1, 1), (1,)), ((0, 2), (2,))), True),
    Row("dot", em.dot, np.dot, (((3,), (3,)), ((1,), (1,)), ((0,), (0,))), True),
    Row("outer", em.outer, np.outer, (((3,), (4,)), ((1,), (2,)), ((0,), (3,))), True),
    Row("einsum-diag", lambda x: em.einsum("ii->i", x), lambda x: np.einsum("ii->i", x),
        U((3, 3), (1, 1)), True),
    Row("einsum-trace", lambda x: em.einsum("ii", x), lambda x: np.einsum("ii", x),
        U((3, 3),), True),
    Row("einsum-sum", lambda x: em.einsum("ij->", x), lambda x: np.einsum("ij->", x),
        U((3, 4), (1, 1), (0, 2)), True),
    Row("einsum-transpose", lambda x: em.einsum("ij", x), lambda x: np.einsum("ij", x),
        U((3, 4),), True),
    Row("einsum-bmm", lambda a, b: em.einsum("bij,bjk->bik", a, b),
        lambda a, b: np.einsum("bij,bjk->bik", a, b),
        (((2, 3, 4), (2, 4, 5)), ((1, 1, 2), (1, 2, 1))), True),
    Row("einsum-ellipsis", lambda a, b: em.einsum("...ij,...jk->...ik", a, b),
        lambda a, b: np.einsum("...ij,...jk->...ik", a, b),
        (((2, 3), (3, 4)), ((2, 2, 3), (2, 3, 4)), ((5, 2, 3), (3, 1)),
         ((2, 1, 2, 3), (4, 3, 2))), True),
    Row("einsum-outer", lambda a, b: em.einsum("i,j->ij", a, b),
        lambda a, b: np.einsum("i,j->ij", a, b), (((3,), (4,)),), True),
    Row("einsum-three", lambda a, b, c: em.einsum("ij,jk,k->i", a, b, c),
        lambda a, b, c: np.einsum("ij,jk,k->i", a, b, c), (((2, 3), (3, 4), (4,)),), True),
    Row("einsum-spaces-matvec", lambda a, b: em.einsum("ij, j -> i", a, b),
        lambda a, b: np.einsum("ij,j->i", a, b), (((2, 3), (3,)),), True),
    Row("einsum-hadamard", lambda a, b: em.einsum("ij,ij->ij", a, b),
        lambda a, b: np.einsum("ij,ij->ij", a, b), (((2, 3), (2, 3)),), True),
    Row("einsum-list", lambda a, b: em.einsum("ij,ij->i", [a, b]),
        lambda a, b: np.einsum("ij,ij->i", a, b), (((2, 3), (2, 3)),), True),
    Row("einsum-sum-one-operand", lambda a, b: em.einsum("ij,jk->i", a, b),
        lambda a, b: np.einsum("ij,jk->i", a, b), (((2, 3), (3, 4)),), True),
    Row("tensordot", lambda a, b: em.tensordot(a, b), lambda a, b: np.tensordot(a, b),
        (((2, 3, 4), (3, 4, 5)), ((1, 2), (1, 2))), True),
    Row("tensordot-1", lambda a, b: em.tensordot(a, b, 1), lambda a, b: np.tensordot(a, b, 1),
        (((2, 3), (3, 4)), ((2, 1, 3), (3, 2))), True),
    Row("tensordot-lists", lambda a, b: em.tensordot(a, b, ([1, 0], [0, 2])),
        lambda a, b: np.tensordot(a, b, ([1, 0], [0, 2])), (((3, 2, 4), (2, 5, 3)),), True),
    Row("tensordot-0", lambda a, b: em.tensordot(a, b, 0), lambda a, b: np.tensordot(a, b, 0),
        (((2,), (3,)),), True),

    # ----- sorting ----------------------------------------------------------------------------
    Row("sort", lambda x: tuple(em.sort(x)), _np_sort,
        U((), (1,), (3, 4), (2, 1, 3), (0, 3)), True, DISTINCT),
    Row("sort-dim0-descending", lambda x: tuple(em.sort(x, 0, descending=True)),
        lambda x: (np.take_along_axis(x, np.argsort(-x, 0, kind="stable"), 0),
                   np.argsort(-x, 0, kind="stable")), ND2, True, DISTINCT),
    Row("sort-stable-ties", lambda x: tuple(em.sort(x, stable=True)),
        lambda x: (np.sort(x, -1), np.argsort(x, -1, kind="stable")), U((4, 7), (9,)),
        False, INTS),
    Row("sort-descending-stable-ties", lambda x: tuple(em.sort(x, descending=True, stable=True)),
        lambda x: (-np.sort(-x, -1), np.argsort(-x, -1, kind="stable")), U((4, 7), (9,)),
        False, INTS),
    Row("sort-nan", lambda x: tuple(em.sort(x, descending=True)),
        lambda x: (np.take_along_axis(x, np.argsort(np.where(np.isnan(x), -np.inf, -x), -1,
                                                    kind="stable"), -1),
                   np.argsort(np.where(np.isnan(x), -np.inf, -x), -1, kind="stable")),
        U((6,)), False, lambda rng, s: np.array([1.0, np.nan, -2.0, 3.0, np.nan, 0.5])),
    Row("argsort", em.argsort, lambda x: _np_sort(x)[1],
        U((), (3, 4), (0, 3)), False, DISTINCT),
    Row("argsort-descending-ties", lambda x: em.argsort(x, 0, descending=True, stable=True),
        lambda x: np.argsort(-x, 0, kind="stable"), U((7, 3),), False, INTS),
    Row("msort", em.msort, lambda x: np.sort(x, 0), U((3, 4), (5,)), True, DISTINCT),
    Row("topk", lambda x: tuple(em.topk(x, 2)), lambda x: _np_topk(x, 2),
        U((5,), (3, 4), (2, 1, 3)), True, DISTINCT),
    Row("topk-smallest-dim0", lambda x: tuple(em.topk(x, 2, 0, largest=False)),
        lambda x: _np_topk(x, 2, 0, largest=False), U((3, 4), (2, 0)), True, DISTINCT),
    Row("topk-k0", lambda x: tuple(em.topk(x, 0)), lambda x: _np_topk(x, 0), U((3, 4),), True),
    Row("topk-scalar", lambda x: tuple(em.topk(x, 1)), lambda x: (x, np.zeros((), np.int64)),
        U(()), True),
    Row("kthvalue", lambda x: tuple(em.kthvalue(x, 2)), lambda x: _np_kth(x, 2),
        U((5,), (3, 4), (2, 1, 3)), True, DISTINCT),
    Row("kthvalue-scalar", lambda x: tuple(em.kthvalue(x, 1)),
        lambda x: (x, np.zeros((), np.int64)), U(()), True),
    Row("kthvalue-dim0-keepdim", lambda x: tuple(em.kthvalue(x, 3, 0, keepdim=True)),
        lambda x: _np_kth(x, 3, 0, True), U((3, 4), (4, 1)), True, DISTINCT),
    Row("median", em.median, _lower_median, U((), (5,), (4,), (3, 4)), True, DISTINCT),
    Row("median-ties", em.median, _lower_median, U((7,), (3, 4)), False, INTS),
    Row("median-empty", em.median, lambda x: np.float64(np.nan), U((0,), (2, 0)), False),
    Row("median-scalar-dim", lambda x: tuple(em.median(x, 0)),
        lambda x: (x, np.zeros((), np.int64)), U(()), True),
    Row("median-dim", lambda x: tuple(em.median(x, 1)), lambda x: _lower_median(x, 1),
        U((3, 4), (2, 5), (2, 1)), True, DISTINCT),
    Row("median-dim-keepdim", lambda x: tuple(em.median(x, 0, keepdim=True)),
        lambda x: _lower_median(x, 0, True), U((4, 3),), True, DISTINCT),
    Row("sort-int", lambda x: tuple(em.sort(x, descending=True)),
        lambda x: (-np.sort(-x, -1), np.argsort(-x, -1, kind="stable")), U((3, 5),), False,
        INT64),
    Row("sort-bool", lambda x: tuple(em.sort(x, descending=True)),
        lambda x: (np.take_along_axis(x, np.argsort(~x, -1, kind="stable"), -1),
                   np.argsort(~x, -1, kind="stable")), U((3, 5),), False, BOOL),
    Row("sort-nan-ascending", lambda x: tuple(em.sort(x)), _np_sort, U((6,), (2, 3)), False,
        WITH_NAN),
    Row("topk-nan", lambda x: tuple(em.topk(x, 2)), lambda x: _np_topk_nan_largest(x, 2),
        U((6,), (3, 4)), False, WITH_NAN),
    Row("kthvalue-nan", lambda x: tuple(em.kthvalue(x, 3)), lambda x: _np_kth(x, 3),
        U((6,), (3, 4)), False, WITH_NAN),
    Row("median-nan", em.median, _lower_median, U((5,), (3, 4)), False, WITH_NAN),
    Row("median-dim-nan", lambda x: tuple(em.median(x, -1)), lambda x: _lower_median(x, -1),
        U((4, 5), (3, 4)), False, WITH_NAN),
    Row("repeat_interleave-tensor", lambda x, r: em.repeat_interleave(x, r, 0),
        lambda x, r: np.repeat(x, r, 0), (((3, 2), (3,)), ((2,), (2,))), True,
        (ANY, lambda rng, s: np.asarray(rng.integers(0, 3, s), np.int64))),
    Row("unique", lambda x: em.unique(x, return_inverse=True, return_counts=True),
        lambda x: np.unique(x, return_inverse=True, return_counts=True),
        U((7,), (3, 4), (0,)), False, INTS),
    Row("unique-dim", lambda x: em.unique(x, dim=0), lambda x: np.unique(x, axis=0),
        U((5, 2),), False, lambda rng, s: np.asarray(rng.integers(0, 2, s), np.float64)),
    Row("searchsorted", em.searchsorted, _np_searchsorted,
        (((5,), (3,)), ((5,), (2, 3)), ((2, 5), (2, 3)), ((5,), ()), ((0,), (2,))), False,
        (SORTED, ANY)),
    Row("searchsorted-right-ties", lambda s, v: em.searchsorted(s, v, right=True),
        lambda s, v: _np_searchsorted(s, v, "right"), (((6,), (4,)), ((3, 6), (3, 4))), False,
        (SORTED_INTS, INTS)),
    Row("bucketize", em.bucketize, lambda x, b: np.searchsorted(b, x, "left"),
        (((3, 4), (5,)), ((), (3,))), False, (INTS, SORTED_INTS)),
    Row("bucketize-right", lambda x, b: em.bucketize(x, b, right=True),
        lambda x, b: np.searchsorted(b, x, "right"), (((3, 4), (5,)),), False,
        (INTS, SORTED_INTS)),

    # ----- added for PyTorch compatibility ------------------------------------------------------
    Row("nan_to_num", em.nan_to_num, np.nan_to_num, UNARY, True),
    Row("nan_to_num-nan", em.nan_to_num, np.nan_to_num, UNARY, False, WITH_NAN),
    Row("nan_to_num-values", lambda x: em.nan_to_num(x, 0.5, 2.0, -3.0),
        lambda x: np.nan_to_num(x, nan=0.5, posinf=2.0, neginf=-3.0), UNARY, False, SPECIALS),
    Row("isin", em.isin, np.isin, (((3, 4), (5,)), ((), (2,)), ((3,), ())), False, INTS),
    Row("diff", em.diff, np.diff, U((5,), (3, 4), (2, 1, 3), (0, 3)), True),
    Row("diff-n2-dim0", lambda x: em.diff(x, 2, 0), lambda x: np.diff(x, 2, 0),
        U((5,), (4, 3)), True),
    Row("diff-prepend-append", lambda x, p, a: em.diff(x, 1, -1, p, a),
        lambda x, p, a: np.diff(x, 1, -1, prepend=p, append=a), (((3, 4), (3, 1), (3, 2)),),
        True),
    Row("diff-bool", em.diff, np.diff, U((6,), (2, 5)), False, BOOL),
    Row("diff-int", em.diff, np.diff, U((6,),), False, INT64),
    Row("bincount", em.bincount, lambda x: np.bincount(x).astype(np.int64), U((7,), (0,)),
        False, NONNEG_INT),
    Row("bincount-weights", lambda x, w: em.bincount(x, w, minlength=8),
        lambda x, w: np.bincount(x, w, minlength=8), (((7,), (7,)),), False, (NONNEG_INT, ANY)),
    Row("histc", lambda x: em.histc(x, bins=5, min=-2, max=2),
        lambda x: np.histogram(x, 5, (-2, 2))[0].astype(x.dtype), U((7,), (3, 4), (0,)), False),
    Row("histc-data-range", lambda x: em.histc(x, bins=4),
        lambda x: np.histogram(x, 4, (x.min(), x.max()))[0].astype(x.dtype), U((9,), (3, 4)),
        False),
    Row("meshgrid", lambda a, b: em.meshgrid(a, b, indexing="ij"),
        lambda a, b: np.meshgrid(a, b, indexing="ij"), (((3,), (4,)), ((1,), (0,)), ((), (2,))),
        True),
    Row("meshgrid-xy-three", lambda a, b, c: em.meshgrid([a, b, c], indexing="xy"),
        lambda a, b, c: np.meshgrid(a, b, c, indexing="xy"), (((2,), (3,), (4,)),), True),
    Row("addmm", lambda i, a, b: em.addmm(i, a, b, beta=0.5, alpha=2.0),
        lambda i, a, b: 0.5 * i + 2.0 * (a @ b),
        (((2, 4), (2, 3), (3, 4)), ((4,), (2, 3), (3, 4)), ((), (1, 2), (2, 1))), True),
    Row("addmm-beta0-ignores-nan", lambda i, a, b: em.addmm(i, a, b, beta=0),
        lambda i, a, b: np.broadcast_to(a @ b, np.broadcast_shapes(i.shape, (2, 4))).copy(),
        (((2, 4), (2, 3), (3, 4)),), False, (WITH_NAN, ANY, ANY)),
    Row("addmv", lambda i, m, v: em.addmv(i, m, v, beta=2, alpha=-1),
        lambda i, m, v: 2 * i - m @ v, (((2,), (2, 3), (3,)), ((), (2, 3), (3,))), True),
    Row("baddbmm", lambda i, a, b: em.baddbmm(i, a, b, alpha=0.5),
        lambda i, a, b: i + 0.5 * (a @ b), (((2, 3, 4), (2, 3, 5), (2, 5, 4)),
                                           ((3, 4), (2, 3, 5), (2, 5, 4))), True),
    Row("cdist", em.cdist, _np_cdist, (((3, 2), (4, 2)), ((2, 3, 4), (2, 5, 4)), ((1, 3), (2, 3))),
        True),
    Row("cdist-p1", lambda a, b: em.cdist(a, b, p=1), lambda a, b: _np_cdist(a, b, 1),
        (((3, 2), (4, 2)),), True),
    # coincident points: the norm's subgradient at 0 is 0, as is the central difference
    Row("cdist-zero-distance", em.cdist, _np_cdist, (((3, 2), (4, 2)),), True,
        lambda rng, s: np.arange(math.prod(s), dtype=np.float64).reshape(s) * 0.3 - 1),
    Row("logaddexp", em.logaddexp, np.logaddexp, BINARY, True),
    Row("logaddexp-ties", em.logaddexp, np.logaddexp, BINARY, True, INTS),
    Row("logaddexp-infinite", em.logaddexp, np.logaddexp, BINARY, False, SPECIALS),
    Row("xlogy", em.xlogy, lambda x, y: x * np.log(y), BINARY, True, (ANY, POS)),
    Row("xlogy-zeros", em.xlogy, lambda x, y: np.where(x == 0, 0.0, x * np.log(y)),
        (((3, 4), (3, 4)),), True, (WITH_ZEROS, lambda rng, s: rng.uniform(0.5, 2, s))),
    # x == 0 gives 0 even where y is 0 or inf (NaN where y is)
    Row("xlogy-zero-times-log-zero", em.xlogy,
        lambda x, y: np.where((x == 0) & ~np.isnan(y), 0.0, x * np.log(y)),
        (((6,), (6,)),), False, (lambda rng, s: np.array([0.0, 0, 0, 1, 2, 0]),
                                 lambda rng, s: np.array([0.0, np.inf, 2, 0, np.inf, np.nan]))),
    Row("hypot", em.hypot, np.hypot, BINARY, True, (AWAY0, AWAY0)),
    Row("aminmax", lambda x: tuple(em.aminmax(x, dim=1)),
        lambda x: (np.min(x, 1), np.max(x, 1)), ND2[:-1], True, DISTINCT),
    Row("aminmax-all", lambda x: tuple(em.aminmax(x)), lambda x: (np.min(x), np.max(x)),
        UNARY[:-1], True, DISTINCT),
    Row("dist", em.dist, lambda a, b: np.sqrt(np.sum((a - b) ** 2)), BINARY, True),
    Row("dist-p1", lambda a, b: em.dist(a, b, 1), lambda a, b: np.sum(np.abs(a - b)),
        (((3, 4), (3, 4)), ((2, 1), (3,))), True, (AWAY0, lambda rng, s: np.zeros(s))),
    Row("quantile", lambda x: em.quantile(x, 0.3), lambda x: np.quantile(x, 0.3),
        U((5,), (3, 4), (1,)), True, DISTINCT),
    Row("quantile-dim-keepdim", lambda x: em.quantile(x, 0.75, 1, keepdim=True),
        lambda x: np.quantile(x, 0.75, 1, keepdims=True), U((3, 4), (2, 5, 2)), True, DISTINCT),
    Row("quantile-q-tensor", lambda x: em.quantile(x, em.tensor([0.0, 0.5, 0.9], dtype=x.dtype),
                                                   0),
        lambda x: np.quantile(x, [0.0, 0.5, 0.9], 0), U((4, 3), (6,)), True, DISTINCT),
    *[Row(f"quantile-{m}", lambda x, m=m: em.quantile(x, 0.4, -1, interpolation=m),
          lambda x, m=m: np.quantile(x, 0.4, -1, method=m), U((3, 6),), m in ("lower", "higher",
                                                                            "nearest"),
          DISTINCT) for m in ("lower", "higher", "nearest", "midpoint")],
    Row("quantile-nan", lambda x: em.quantile(x, 0.5, 1), lambda x: np.quantile(x, 0.5, 1),
        U((4, 3),), False, WITH_NAN),
    Row("cross", em.cross, np.cross, (((3,), (3,)), ((4, 3), (4, 3)), ((2, 1, 3), (4, 3))),
        True),
    Row("cross-dim0", lambda a, b: em.cross(a, b, 0), lambda a, b: np.cross(a, b, axis=0),
        (((3, 2), (3, 2)), ((3, 3), (3, 1))), True),
    Row("diag", em.diag, np.diag, U((3,), (3, 4), (1,), (0,)), True),
    Row("diag-offset", lambda x: em.diag(x, -1), lambda x: np.diag(x, -1), U((3,), (4, 3)),
        True),
    Row("diag_embed", em.diag_embed, _np_diag_embed, U((3,), (2, 3), ()), True),
    Row("diag_embed-offset-dims", lambda x: em.diag_embed(x, 1, 0, 2),
        lambda x: np.moveaxis(_np_diag_embed(x, 1), (-2, -1), (0, 2)), U((2, 3),), True),
    Row("diagflat", lambda x: em.diagflat(x, 2), lambda x: np.diagflat(x, 2), U((2, 2), (3,)),
        True),
    *[Row(f"rot90-k{k}", lambda x, k=k: em.rot90(x, k, (1, -1)),
          lambda x, k=k: np.rot90(x, k, (1, x.ndim - 1)), U((2, 3, 4), (3, 2, 2)), True)
      for k in (1, 2, 3, -1, 4)],
    Row("det", em.det, np.linalg.det, U((3, 3), (2, 4, 4), (1, 1)), True),
    Row("inverse", em.inverse, np.linalg.inv, U((3, 3), (2, 4, 4), (1, 1)), True,
        WELL_CONDITIONED),
]

# Public functions of these families that the table does not exercise, and why.
NOT_IN_TABLE = {
    "broadcast_shapes": "works on shapes, not tensors (checked in test_broadcasting_props.py)",
}
FAMILIES = (arithmetic, unary, activation, comparison, reduction, shape, linalg, sorting)


# ----- running a row --------------------------------------------------------------------------

def _sid(shape) -> str:
    return "x".join(map(str, shape)) if shape else "()"


CASES = [pytest.param(r, s, id=f"{r.name}[{','.join(_sid(x) for x in s)}]")
         for r in ROWS for s in r.shapes]


def _rng(row, shapes):
    return np.random.default_rng(zlib.crc32(f"{row.name}{shapes}".encode()))


def _inputs(row, shapes) -> list:
    rng = _rng(row, shapes)
    gens = row.gen if isinstance(row.gen, tuple) else (row.gen,) * len(shapes)
    return [np.asarray(g(rng, s)) for g, s in zip(gens, shapes)]


def _outputs(result) -> list:
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _to_numpy(out):
    return out.detach().numpy() if isinstance(out, em.Tensor) else np.asarray(out)


def _float(a) -> bool:
    return a.dtype.kind == "f"


def _assert_matches(got, want, rtol, atol, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def _reference(row, arrays) -> list:
    with np.errstate(all="ignore"):
        return [np.asarray(r) for r in _outputs(row.ref(*arrays))]


FLOAT32_CASES = [c for c in CASES if any(_float(a) for a in _inputs(*c.values))]
GRAD_CASES = [c for c in CASES if c.values[0].grad]


@pytest.mark.parametrize("row, shapes", CASES)
def test_forward_matches_numpy_float64(row, shapes):
    arrays = _inputs(row, shapes)
    before = [a.copy() for a in arrays]
    got = [_to_numpy(o) for o in _outputs(row.fn(*[em.from_numpy(a) for a in arrays]))]
    want = _reference(row, arrays)
    assert len(got) == len(want), f"{row.name}: {len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        tol = 1e-6 if w.dtype == np.float32 else 1e-10
        _assert_matches(g, w, tol, tol, f"{row.name} output {i}")
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b, err_msg=f"{row.name} modified its input")


@pytest.mark.parametrize("row, shapes", FLOAT32_CASES)
def test_forward_with_requires_grad_inputs(row, shapes):
    """Recording the graph changes no value, and integer or bool results never ask for a
    gradient."""
    arrays = _inputs(row, shapes)
    tensors = [em.from_numpy(a.copy()).requires_grad_() if _float(a) else em.from_numpy(a)
               for a in arrays]
    outs = _outputs(row.fn(*tensors))
    for i, (o, w) in enumerate(zip(outs, _reference(row, arrays))):
        tol = 1e-6 if w.dtype == np.float32 else 1e-10
        _assert_matches(_to_numpy(o), w, tol, tol, f"{row.name} output {i}")
        if isinstance(o, em.Tensor) and not o.is_floating_point():
            assert not o.requires_grad, f"{row.name}: {o.dtype} output {i} requires grad"


@pytest.mark.parametrize("row, shapes", FLOAT32_CASES)
def test_forward_float32_keeps_dtype(row, shapes):
    arrays = [a.astype(np.float32) if _float(a) else a for a in _inputs(row, shapes)]
    got = [_to_numpy(o) for o in _outputs(row.fn(*[em.from_numpy(a) for a in arrays]))]
    want = _reference(row, [a.astype(np.float64) if _float(a) else a for a in arrays])
    for i, (g, w) in enumerate(zip(got, want)):
        if w.dtype == np.float64:
            w = w.astype(row.dtype32)
        _assert_matches(g, w, 2e-4, 2e-5 * max(1.0, float(np.nanmax(np.abs(
            w[np.isfinite(w)]), initial=0.0))), f"{row.name} float32 output {i}")


def _loss(row, arrays, weights):
    """The scalar sum_k <w_k, ref_k(arrays)> over the float outputs that carry a weight."""
    outs = _reference(row, arrays)
    return sum(float(np.sum(w * o)) for w, o in zip(weights, outs) if w is not None)


def _finite_difference(row, arrays, weights, i) -> np.ndarray:
    grad = np.zeros_like(arrays[i])
    for j in range(arrays[i].size):
        plus = [a.copy() for a in arrays]
        minus = [a.copy() for a in arrays]
        plus[i].flat[j] += EPS
        minus[i].flat[j] -= EPS
        grad.flat[j] = (_loss(row, plus, weights) - _loss(row, minus, weights)) / (2 * EPS)
    return grad


@pytest.mark.parametrize("row, shapes", GRAD_CASES)
def test_gradient_matches_finite_differences(row, shapes):
    arrays = _inputs(row, shapes)
    tensors = [em.from_numpy(a.copy()).requires_grad_() if _float(a) else em.from_numpy(a)
               for a in arrays]
    outs = _outputs(row.fn(*tensors))
    rng = _rng(row, shapes)
    weights = [rng.standard_normal(o.shape) if _float(o._data) else None for o in outs]
    diff = [o for o, w in zip(outs, weights) if w is not None]
    leaves = [t for t in tensors if t.requires_grad]
    assert all(o.requires_grad for o in diff), f"{row.name}: a float output has no grad_fn"
    if diff:
        grads = em.autograd.grad(diff, leaves, [em.from_numpy(w) for o, w in zip(outs, weights)
                                                if w is not None], allow_unused=True)
    else:  # e.g. unbind of an empty dim: nothing flows back
        grads = [None] * len(leaves)
    k = 0
    for i, a in enumerate(arrays):
        if not _float(a):
            continue
        g = grads[k]
        k += 1
        got = np.zeros_like(a) if g is None else g.numpy()
        assert got.shape == a.shape and got.dtype == a.dtype, \
            f"{row.name}: grad of input {i} is {got.shape} {got.dtype}"
        want = _finite_difference(row, arrays, weights, i)
        scale = max(1.0, float(np.abs(want).max(initial=0.0)))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * scale,
                                   err_msg=f"{row.name}: d/d input {i}")


def test_every_public_op_has_a_row():
    """Adding an op to one of these families means adding a row to ROWS."""
    covered = {id(getattr(em, r.name.split("-")[0])) for r in ROWS}
    missing = sorted(
        name for fam in FAMILIES for name, fn in vars(fam).items()
        if not name.startswith("_") and inspect.isfunction(fn) and fn.__module__ == fam.__name__
        and id(fn) not in covered and name not in NOT_IN_TABLE
        and hasattr(em, name))
    assert not missing, f"ops without a row in ROWS: {missing}"


def test_row_names_name_ember_functions():
    for r in ROWS:
        assert callable(getattr(em, r.name.split("-")[0], None)), r.name
    names = [r.name for r in ROWS]
    assert len(names) == len(set(names)), "row names must be unique"
