"""ONNX deployment: ``export`` an ember model to an ONNX file, ``load`` an ONNX file as an
ember Module. Both need the ``onnx`` package (``pip install ember[onnx]``), imported only
when they run."""
from __future__ import annotations

from .export import ExportError, export

# Bound here, not looked up lazily: importing the submodule ``ember.onnx.load`` sets the
# package attribute ``load`` to that module, and this binding puts the function back.
try:
    from .load import load
except Exception as _error:  # noqa: BLE001 - export must keep working without the importer
    _load_error = _error

    def load(*args, **kwargs):
        """Unavailable: the ONNX importer failed to import (the error is chained)."""
        raise ImportError(f"ember.onnx.load is unavailable: {_load_error}") from _load_error

__all__ = ["export", "load", "ExportError"]
