"""``ember.nn.functional`` (PyTorch's ``torch.nn.functional``): stateless layer functions.

Each family lives in its own module and lists its public names in ``__all__``; this package
re-exports them, so ``F.conv2d`` is found in ``functional/conv.py``.
"""
from ...ops.activation import gelu, log_softmax, relu, sigmoid, silu, softmax, softplus
from ...ops.unary import tanh
from . import activation, dropout, embedding, linear

_FAMILIES = [activation, dropout, embedding, linear]

for _family in ("conv", "pooling", "normalization", "loss", "attention", "rnn", "vision"):
    try:  # families land one by one; each is optional to import until it exists
        _FAMILIES.append(__import__(f"{__name__}.{_family}", fromlist=["__all__"]))
    except ModuleNotFoundError as _e:
        if _e.name != f"{__name__}.{_family}":
            raise

for _m in _FAMILIES:
    globals().update({_n: getattr(_m, _n) for _n in _m.__all__})

__all__ = ["gelu", "log_softmax", "relu", "sigmoid", "silu", "softmax", "softplus", "tanh"] + [
    n for m in _FAMILIES for n in m.__all__]
