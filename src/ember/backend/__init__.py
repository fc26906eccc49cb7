"""The array backend boundary.

Every op's forward works on the arrays of a backend's ``xp`` namespace (NumPy's API), plus the
few extras NumPy lacks listed on :class:`Backend`. A device names its backend; ``cpu`` is NumPy.
A CuPy backend is one new module that subclasses :class:`Backend` and calls ``register``.
"""
from __future__ import annotations

from .base import Backend, Device, device, get_device, register
from . import numpy_backend as _numpy_backend  # noqa: F401  (registers "cpu")

__all__ = ["Backend", "Device", "device", "get_device", "register"]
