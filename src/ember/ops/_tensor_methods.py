"""Which ops are also Tensor methods and operators, and the in-place (``op_``) variants.

``bind(Tensor)`` is called once from ``ember/tensor.py``; a method is the same function as
the ``ember.<name>`` op, so each op has one definition.
"""
from __future__ import annotations

import numpy as np

from .. import _state

from .. import dtypes as _dt
from . import (activation, arithmetic, comparison, creation, indexing, linalg, random,
               reduction, shape, sorting, unary)
from ..tensor import Tensor
from .inplace import inplace
from .registry import apply

# ember.<name> functions that are also methods, taking the tensor as first argument
_METHODS = {
    arithmetic: "add sub mul div true_divide divide floor_divide remainder fmod pow "
                "float_power maximum minimum fmax fmin atan2 arctan2 lerp addcmul addcdiv neg "
                "negative positive rsub logaddexp xlogy hypot",
    unary: "exp exp2 expm1 log log2 log10 log1p sqrt rsqrt sin cos tan asin acos atan sinh "
           "cosh tanh asinh acosh atanh reciprocal erf erfc abs absolute sign sgn floor ceil "
           "trunc fix frac square round logit nan_to_num",
    activation: "relu sigmoid softmax log_softmax",
    comparison: "eq ne lt le gt ge less less_equal greater greater_equal not_equal "
                "logical_and logical_or logical_xor logical_not isnan isinf isfinite isposinf "
                "isneginf signbit bitwise_and bitwise_or bitwise_xor bitwise_not equal "
                "allclose isclose where clamp clip clamp_min clamp_max",
    reduction: "sum mean nansum nanmean prod amax amin max min argmax argmin var std "
               "logsumexp cumsum cumprod norm all any count_nonzero diff bincount histc aminmax "
               "dist",
    shape: "reshape view view_as reshape_as flatten ravel unflatten permute transpose swapaxes "
           "swapdims t movedim moveaxis squeeze unsqueeze expand expand_as broadcast_to clone "
           "contiguous narrow select split chunk tensor_split unbind flip fliplr flipud roll "
           "repeat tile repeat_interleave triu tril diagonal trace unfold diag diag_embed diagflat "
           "rot90",
    indexing: "gather scatter scatter_add take_along_dim index_select index_add masked_fill "
              "masked_select nonzero argwhere index_put index_fill",
    linalg: "matmul mm bmm mv dot inner outer addmm baddbmm addmv det inverse cross",
    sorting: "sort argsort msort topk kthvalue median unique quantile",
    creation: "new_tensor new_zeros new_ones new_empty new_full",
    random: "uniform_ normal_ bernoulli_ random_ exponential_",
}

_BINARY_UFUNCS = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                  "div": np.true_divide}


def _fast_ok(self, other, name) -> bool:
    """True when NumPy's in-place ufunc gives exactly PyTorch's result dtype."""
    kind = self._data.dtype.kind
    if hasattr(other, "_data"):
        return other._data.dtype == self._data.dtype and (name != "div" or kind == "f")
    if isinstance(other, bool):
        return False
    if isinstance(other, float):
        return kind == "f"
    if isinstance(other, int):
        return kind in "fiu" and (name != "div" or kind == "f")
    return False


def _binary_inplace(name):
    fn = getattr(arithmetic, name)
    ufunc = _BINARY_UFUNCS[name]

    def method(self, other, *, alpha=1, rounding_mode=None):
        if alpha != 1:
            if isinstance(alpha, float) and self._data.dtype.kind in "biu":
                raise RuntimeError(f"{name}_: for integral input tensors, argument alpha must "
                                   f"not be a floating point number (got alpha={alpha})")
            if isinstance(other, (int, float)) and not isinstance(other, bool):
                other, alpha = other * alpha, 1  # a scalar is scaled here, exactly once
        if rounding_mode is not None:
            if name != "div":
                raise TypeError(f"{name}_: unexpected keyword argument 'rounding_mode'")
            return inplace(self, lambda s: fn(s, other, rounding_mode=rounding_mode),
                           op="div_", others=(other,))
        kw = {"alpha": alpha} if alpha != 1 else {}
        fast = None
        if _fast_ok(self, other, name) and (alpha == 1 or self._data.dtype.kind == "f"):
            od = other._data if hasattr(other, "_data") else other
            if isinstance(od, int) and self._data.dtype.kind in "iu":
                od = _dt.cast_array(od, self._data.dtype)  # wraps around, as PyTorch

            def fast():
                ufunc(self._data, od if alpha == 1 else od * alpha, out=self._data)
        return inplace(self, lambda s: fn(s, other, **kw), fast=fast, op=name + "_",
                       others=(other,))
    method.__name__ = name + "_"
    return method


def _generic_inplace(fn, name):
    def method(self, *args, **kwargs):
        return inplace(self, lambda s: fn(s, *args, **kwargs), op=name,
                       others=tuple(args) + tuple(kwargs.values()))
    method.__name__ = name
    return method


def _overwrite(s, value):
    """``s`` with every element replaced by ``value`` (broadcast), as one graph node: the
    gradient goes to ``value`` and none to the old values, as PyTorch's fill_/copy_/zero_."""
    return apply(indexing._index_put, (s, value), {"key": (Ellipsis,)})


def _value_tensor(value, like):
    if hasattr(value, "_data"):
        return value if value._data.dtype == like._data.dtype else value.to(like.dtype)
    t = Tensor._wrap(_dt.cast_array(value, like._data.dtype), like._dev)
    if _state.tracer is not None:
        _state.tracer.constant(t)
    return t


def fill_(self, value):
    """Set every element to ``value`` (a number or a 0-d tensor)."""
    if hasattr(value, "_data") and value._data.ndim:
        raise RuntimeError(f"fill_: only supports a 0-dimension value tensor, but got a "
                           f"tensor of shape {tuple(value.shape)}")
    v = value._data if hasattr(value, "_data") else _dt.cast_array(value, self._data.dtype)
    return inplace(self, lambda s: _overwrite(s, _value_tensor(value, s)),
                   fast=lambda: self._data.fill(v), op="fill_", others=(value,))


def zero_(self):
    return inplace(self, lambda s: _overwrite(s, _value_tensor(0, s)),
                   fast=lambda: self._data.fill(0), op="zero_")


def copy_(self, src, non_blocking=False):
    """Copy ``src``'s values (broadcast, cast to this dtype) into this tensor."""
    if not hasattr(src, "_data"):
        src = creation.tensor(src)
    try:
        if np.broadcast_shapes(src.shape, self.shape) != self.shape:
            raise ValueError
    except ValueError:
        raise RuntimeError(f"copy_: the source shape {tuple(src.shape)} can't be broadcast "
                           f"to the destination shape {tuple(self.shape)}") from None

    def fast():
        np.copyto(self._data, src._data, casting="unsafe")
    return inplace(self, lambda s: _overwrite(s, _value_tensor(src, s)), fast=fast,
                   op="copy_", others=(src,))


def _setitem(self, key, value):
    indexing.setitem(self, key, value)


def _eq_op(fn, default):
    def method(self, other):
        if other is None or not isinstance(other, (int, float, bool, np.generic, np.ndarray,
                                                   list, tuple)) and not hasattr(other, "_data"):
            return default
        return fn(self, other)
    return method


def _invert(self):
    if self._data.dtype == np.bool_:
        return comparison.logical_not(self)
    return comparison.bitwise_not(self)


def _swap(fn):
    def method(self, other):
        return fn(other, self)
    return method


def bind(Tensor) -> None:
    for module, names in _METHODS.items():
        for name in names.split():
            setattr(Tensor, name, getattr(module, name))
    A, C = arithmetic, comparison
    ops = {
        "__add__": A.add, "__radd__": _swap(A.add), "__sub__": A.sub, "__rsub__": _swap(A.sub),
        "__mul__": A.mul, "__rmul__": _swap(A.mul), "__truediv__": A.div,
        "__rtruediv__": _swap(A.div), "__floordiv__": A.floor_divide,
        "__rfloordiv__": _swap(A.floor_divide), "__mod__": A.remainder,
        "__rmod__": _swap(A.remainder), "__pow__": A.pow, "__rpow__": _swap(A.pow),
        "__matmul__": linalg.matmul, "__rmatmul__": _swap(linalg.matmul),
        "__neg__": A.neg, "__pos__": A.positive, "__abs__": unary.abs, "__invert__": _invert,
        "__and__": C.bitwise_and, "__rand__": _swap(C.bitwise_and),
        "__or__": C.bitwise_or, "__ror__": _swap(C.bitwise_or),
        "__xor__": C.bitwise_xor, "__rxor__": _swap(C.bitwise_xor),
        "__eq__": _eq_op(C.eq, False), "__ne__": _eq_op(C.ne, True),
        "__lt__": C.lt, "__le__": C.le, "__gt__": C.gt, "__ge__": C.ge,
        "__getitem__": indexing.getitem, "__setitem__": _setitem,
    }
    for k, v in ops.items():
        setattr(Tensor, k, v)
    for name in ("add", "sub", "mul", "div"):
        m = _binary_inplace(name)
        setattr(Tensor, name + "_", m)
    Tensor.__iadd__ = Tensor.add_
    Tensor.__isub__ = Tensor.sub_
    Tensor.__imul__ = Tensor.mul_
    Tensor.__itruediv__ = Tensor.div_
    Tensor.true_divide_ = Tensor.divide_ = Tensor.div_
    generic = {
        "pow_": A.pow, "neg_": A.neg, "floor_divide_": A.floor_divide,
        "remainder_": A.remainder, "fmod_": A.fmod, "lerp_": A.lerp, "addcmul_": A.addcmul,
        "addcdiv_": A.addcdiv, "maximum_": A.maximum, "minimum_": A.minimum,
        "clamp_": C.clamp, "clip_": C.clamp, "clamp_min_": C.clamp_min,
        "clamp_max_": C.clamp_max, "masked_fill_": indexing.masked_fill,
        "index_put_": indexing.index_put, "scatter_": indexing.scatter,
        "scatter_add_": indexing.scatter_add, "index_add_": indexing.index_add,
        "index_fill_": indexing.index_fill, "fill_diagonal_": indexing._fill_diagonal,
        "relu_": activation.relu, "sigmoid_": activation.sigmoid,
        "logical_not_": C.logical_not, "bitwise_and_": C.bitwise_and,
        "bitwise_or_": C.bitwise_or, "bitwise_xor_": C.bitwise_xor,
        "bitwise_not_": C.bitwise_not,
        "tril_": shape.tril, "triu_": shape.triu,
    }
    for name in ("exp log log1p expm1 sqrt rsqrt sin cos tanh abs sign floor ceil trunc "
                 "frac reciprocal square round erf").split():
        generic[name + "_"] = getattr(unary, name)
    for name, fn in generic.items():
        setattr(Tensor, name, _generic_inplace(fn, name))
    Tensor.__ipow__ = Tensor.pow_
    Tensor.__imod__ = Tensor.remainder_
    Tensor.__ifloordiv__ = Tensor.floor_divide_
    Tensor.__iand__ = Tensor.bitwise_and_
    Tensor.__ior__ = Tensor.bitwise_or_
    Tensor.__ixor__ = Tensor.bitwise_xor_
    Tensor.fill_ = fill_
    Tensor.zero_ = zero_
    Tensor.copy_ = copy_
    Tensor.T = property(lambda self: shape.permute(self, tuple(range(self.ndim - 1, -1, -1))))
    Tensor.mT = property(lambda self: shape.transpose(self, -2, -1))
    Tensor.mH = Tensor.mT
    Tensor.H = property(lambda self: shape.t(self))
