"""``keras.backend``: global settings (float type, epsilon, image layout) and ``clear_session``.

Defaults are Keras's (``float32``, ``1e-07``, ``channels_last``); like Keras, a
``keras.json`` in ``$KERAS_HOME`` (or ``~/.keras``) overrides them, read once on first use.
"""
from __future__ import annotations

import collections
import gc
import json
import os

__all__ = ["backend", "clear_session", "floatx", "set_floatx", "epsilon", "set_epsilon",
           "image_data_format", "set_image_data_format", "get_uid", "reset_uids"]

_FLOATS = ("float16", "bfloat16", "float32", "float64")
_settings: dict | None = None
_uids: collections.Counter = collections.Counter()
_session_hooks: list = []  # callables run by clear_session (other modules' global state)


def _config() -> dict:
    global _settings
    if _settings is None:
        _settings = {"floatx": "float32", "epsilon": 1e-7, "image_data_format": "channels_last"}
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
        try:
            with open(os.path.join(home, "keras.json")) as f:
                user = json.load(f)
        except (OSError, ValueError):
            user = {}
        if isinstance(user, dict):
            if user.get("floatx") in _FLOATS:
                _settings["floatx"] = user["floatx"]
            if isinstance(user.get("epsilon"), (int, float)):
                _settings["epsilon"] = float(user["epsilon"])
            if user.get("image_data_format") in ("channels_last", "channels_first"):
                _settings["image_data_format"] = user["image_data_format"]
    return _settings


def backend() -> str:
    """The name of the array backend: always ``"ember"``."""
    return "ember"


def floatx() -> str:
    """The default float type of new weights, as a string (default ``"float32"``)."""
    return _config()["floatx"]


def set_floatx(value: str) -> None:
    """Set the default float type: one of float16, bfloat16, float32, float64."""
    if value not in _FLOATS:
        raise ValueError(f"set_floatx: unknown float type {value!r}; expected one of "
                         f"{', '.join(_FLOATS)}")
    _config()["floatx"] = str(value)


def epsilon() -> float:
    """The fuzz factor Keras adds in divisions and logs (default ``1e-07``)."""
    return _config()["epsilon"]


def set_epsilon(value: float) -> None:
    """Set the fuzz factor returned by :func:`epsilon`."""
    _config()["epsilon"] = float(value)


def image_data_format() -> str:
    """``"channels_last"`` (Keras's default: NHWC images) or ``"channels_first"``."""
    return _config()["image_data_format"]


def set_image_data_format(data_format: str) -> None:
    """Set the default image layout: ``"channels_last"`` or ``"channels_first"``."""
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"set_image_data_format: expected 'channels_last' or "
                         f"'channels_first', got {data_format!r}")
    _config()["image_data_format"] = data_format


def get_uid(prefix: str = "") -> int:
    """A counter per prefix, from 1, as Keras's ``get_uid`` (names: dense, dense_1, ...)."""
    _uids[prefix] += 1
    return _uids[prefix]


def reset_uids() -> None:
    """Forget every name counter (the next layer is ``dense`` again)."""
    _uids.clear()


def _register_session_hook(fn) -> None:
    """Let another module reset its global state (name counters) in :func:`clear_session`."""
    if fn not in _session_hooks:
        _session_hooks.append(fn)


def clear_session(free_memory: bool = True) -> None:
    """Reset Keras's global state: auto-generated names start again from ``dense``, ``dense_1``."""
    reset_uids()
    for hook in list(_session_hooks):
        hook()
    try:  # the layers' own name registry, when the layers package keeps one
        from .layers import layer as _layer_mod
    except ImportError:
        _layer_mod = None
    reset = getattr(_layer_mod, "reset_names", None) or getattr(_layer_mod, "_reset_names", None)
    if callable(reset):
        reset()
    if free_memory:
        gc.collect()
