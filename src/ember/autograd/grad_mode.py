"""Switches for gradient recording: no_grad, enable_grad, set_grad_enabled, inference_mode.

Each works as a context manager and as a decorator, as in PyTorch.
"""
from __future__ import annotations

import functools

from .. import _state


class _GradMode:
    """Base: a context manager that sets the grad switch and restores it on exit."""

    _value = True

    def __enter__(self):
        self._prev = (_state.grad_enabled, _state.inference)
        self._set()
        return self

    def _set(self):
        _state.grad_enabled = self._value

    def __exit__(self, *exc):
        _state.grad_enabled, _state.inference = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__.__new__(self.__class__) as _:
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Run without recording the graph: results have ``requires_grad=False``."""

    _value = False


class enable_grad(_GradMode):
    """Turn recording back on inside a ``no_grad`` block."""

    _value = True


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` as a function call, context manager or decorator."""

    def __init__(self, mode: bool):
        self._value = bool(mode)
        self._prev = (_state.grad_enabled, _state.inference)
        _state.grad_enabled = self._value  # takes effect as a plain call too

    def __enter__(self):
        return self

    def __call__(self, fn):
        _state.grad_enabled, _state.inference = self._prev
        mode = self._value

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


class inference_mode(_GradMode):
    """Like ``no_grad``, for pure inference (``inference_mode(False)`` is a no-op switch)."""

    def __init__(self, mode: bool = True):
        self._mode = bool(mode)

    def _set(self):
        if self._mode:
            _state.grad_enabled = False
            _state.inference = True

    def __call__(self, fn):
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)
        return wrapper


def is_grad_enabled() -> bool:
    return _state.grad_enabled


def is_inference_mode_enabled() -> bool:
    return _state.inference
