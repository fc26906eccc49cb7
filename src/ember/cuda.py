"""``ember.cuda``: the calls PyTorch scripts make to probe for a GPU.

ember runs on NumPy (CPU), so ``is_available()`` is False and the usual
``device = ember.device("cuda" if ember.cuda.is_available() else "cpu")`` picks the CPU.
Seeding and cache calls are accepted and do nothing, as in a CPU-only PyTorch build.
"""
from __future__ import annotations


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def manual_seed(seed: int) -> None:
    """No CUDA generator to seed (``ember.manual_seed`` seeds the CPU one)."""


def manual_seed_all(seed: int) -> None:
    """No CUDA generators to seed (``ember.manual_seed`` seeds the CPU one)."""


def empty_cache() -> None:
    """No CUDA caching allocator to release."""
