"""``ember.nn`` layers, one module per family; this package re-exports each family's
``__all__`` (or its public classes)."""
from .module import Module

_FAMILY_NAMES = ("container", "linear", "flatten", "activation", "dropout", "embedding",
                 "conv", "pooling", "normalization", "rnn", "attention", "transformer", "loss",
                 "padding", "distance", "pixelshuffle", "upsampling")
_families = []
for _family in _FAMILY_NAMES:
    try:  # families land one by one
        _families.append(__import__(f"{__name__}.{_family}", fromlist=["*"]))
    except ModuleNotFoundError as _e:
        if _e.name != f"{__name__}.{_family}":
            raise


def _public(m):
    names = getattr(m, "__all__", None)
    if names is None:
        names = [n for n, v in vars(m).items() if isinstance(v, type) and
                 issubclass(v, Module) and not n.startswith("_") and v.__module__ == m.__name__]
    return names


__all__ = ["Module"]
for _m in _families:
    for _n in _public(_m):
        globals()[_n] = getattr(_m, _n)
        __all__.append(_n)
