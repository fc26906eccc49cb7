"""Optional reference libraries for the tests, skipped cleanly when absent."""
import os

import pytest


def keras_or_skip():
    """Keras 3 on its torch backend. ``pytest.importorskip("keras")`` alone is not enough:
    without Keras installed, ``import keras`` finds this repository's ``tests/keras`` folder
    as a namespace package."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if getattr(keras, "__file__", None) is None or not hasattr(keras, "layers"):
        pytest.skip("keras is not installed", allow_module_level=True)
    return keras
