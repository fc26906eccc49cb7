"""``ember.nn``: Modules, layers, ``functional``, ``init`` and ``utils`` with PyTorch's names."""
from . import functional, init, utils  # noqa: F401
from .modules import *  # noqa: F401,F403  (each family's public layers; see modules/__init__)
from .modules import __all__ as _layers
from .parameter import Parameter

__all__ = ["Parameter", "functional", "init", "utils"] + list(_layers)
