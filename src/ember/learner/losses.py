"""fastai's "flat" losses: a PyTorch-style loss that flattens its inputs first and knows its
output activation (``activation``, used by ``get_preds``) and how to decode predictions into
labels (``decodes``, used by ``predict`` and ``show_results``).

    CrossEntropyLossFlat()     # logits (..., C) vs class indices: softmax / argmax
    BCEWithLogitsLossFlat()    # multi-label logits vs 0/1 targets: sigmoid / > thresh
    MSELossFlat(), L1LossFlat()  # regression: identity
"""
from __future__ import annotations

from typing import Callable

from .. import dtypes as _dt
from ..nn.modules.loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss
from ..ops.activation import sigmoid, softmax
from ..tensor import Tensor

__all__ = ["BaseLoss", "CrossEntropyLossFlat", "BCEWithLogitsLossFlat", "MSELossFlat",
           "L1LossFlat", "loss_activation", "loss_decodes"]

_SMALL_INTS = ("int8", "int16", "int32", "uint8")


class BaseLoss:
    """``loss_cls(*args, **kwargs)`` applied to the inputs moved so that ``axis`` is last
    and flattened to ``(-1, n)`` (``is_2d``) or ``(-1,)``; targets flattened to ``(-1,)``.

    ``floatify`` casts the targets to float (regression, BCE); small integer targets are
    widened to int64 for the class-index losses.
    """

    def __init__(self, loss_cls: type, *args, axis: int = -1, flatten: bool = True,
                 floatify: bool = False, is_2d: bool = True, **kwargs) -> None:
        self.axis, self.flatten, self.floatify, self.is_2d = axis, flatten, floatify, is_2d
        self.func = loss_cls(*args, **kwargs)

    @property
    def reduction(self) -> str:
        return self.func.reduction

    @reduction.setter
    def reduction(self, v: str) -> None:
        self.func.reduction = v

    def _contiguous(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__}: expected Tensors, got {type(x).__name__}")
        return x.transpose(self.axis, -1).contiguous() if x.ndim > 1 else x

    def __call__(self, inp: Tensor, targ: Tensor, **kwargs) -> Tensor:
        inp, targ = self._contiguous(inp), self._contiguous(targ)
        if self.floatify and targ.dtype != _dt.float16:
            targ = targ.float()
        if targ.dtype.name in _SMALL_INTS:
            targ = targ.long()
        if self.flatten:
            inp = inp.reshape(-1, inp.shape[-1]) if self.is_2d else inp.reshape(-1)
            targ = targ.reshape(-1)
            if inp.shape[0] != targ.shape[0]:
                raise ValueError(f"{type(self).__name__}: {inp.shape[0]} predictions (from "
                                 f"input {tuple(inp.shape)}) for {targ.shape[0]} targets")
        return self.func(inp, targ, **kwargs)

    def activation(self, x: Tensor) -> Tensor:
        return x

    def decodes(self, x: Tensor) -> Tensor:
        return x

    def __repr__(self) -> str:
        return f"FlattenedLoss of {self.func!r}"


class CrossEntropyLossFlat(BaseLoss):
    """Cross-entropy on logits with class axis ``axis``; activation softmax, decodes argmax."""

    def __init__(self, *args, axis: int = -1, **kwargs) -> None:
        super().__init__(CrossEntropyLoss, *args, axis=axis, **kwargs)

    def activation(self, x: Tensor) -> Tensor:
        return softmax(x, dim=self.axis)

    def decodes(self, x: Tensor) -> Tensor:
        return x.argmax(dim=self.axis)


class BCEWithLogitsLossFlat(BaseLoss):
    """Binary cross-entropy on logits (multi-label); activation sigmoid, decodes > thresh."""

    def __init__(self, *args, axis: int = -1, floatify: bool = True, thresh: float = 0.5,
                 **kwargs) -> None:
        if kwargs.get("pos_weight") is not None and not isinstance(kwargs["pos_weight"],
                                                                   Tensor):
            raise TypeError("BCEWithLogitsLossFlat: pos_weight must be a Tensor")
        super().__init__(BCEWithLogitsLoss, *args, axis=axis, floatify=floatify, is_2d=False,
                         **kwargs)
        self.thresh = thresh

    def activation(self, x: Tensor) -> Tensor:
        return sigmoid(x)

    def decodes(self, x: Tensor) -> Tensor:
        return x > self.thresh


class MSELossFlat(BaseLoss):
    """Mean squared error on flattened inputs and float targets."""

    def __init__(self, *args, axis: int = -1, floatify: bool = True, **kwargs) -> None:
        super().__init__(MSELoss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs)


class L1LossFlat(BaseLoss):
    """Mean absolute error on flattened inputs and float targets."""

    def __init__(self, *args, axis: int = -1, floatify: bool = True, **kwargs) -> None:
        super().__init__(L1Loss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs)


def _is(loss_func, module_cls: type, fn_name: str) -> bool:
    if isinstance(loss_func, module_cls):
        return True
    f = getattr(loss_func, "func", loss_func)  # functools.partial
    return getattr(f, "__name__", None) == fn_name and \
        getattr(f, "__module__", "").startswith("ember.")


def loss_activation(loss_func) -> Callable[[Tensor], Tensor]:
    """The activation turning raw outputs into predictions for ``loss_func``: its own
    ``activation``, softmax for PyTorch-style cross-entropy, sigmoid for BCE with logits."""
    act = getattr(loss_func, "activation", None)
    if callable(act):
        return act
    if _is(loss_func, CrossEntropyLoss, "cross_entropy"):
        return lambda x: softmax(x, dim=1 if x.ndim > 1 else 0)
    if _is(loss_func, BCEWithLogitsLoss, "binary_cross_entropy_with_logits"):
        return sigmoid
    return lambda x: x


def loss_decodes(loss_func) -> Callable[[Tensor], Tensor]:
    """How ``loss_func``'s activated predictions become labels (argmax for cross-entropy,
    ``> 0.5`` for BCE with logits, identity otherwise)."""
    dec = getattr(loss_func, "decodes", None)
    if callable(dec):
        return dec
    if _is(loss_func, CrossEntropyLoss, "cross_entropy"):
        return lambda x: x.argmax(dim=1 if x.ndim > 1 else 0)
    if _is(loss_func, BCEWithLogitsLoss, "binary_cross_entropy_with_logits"):
        return lambda x: x > 0.5
    return lambda x: x
