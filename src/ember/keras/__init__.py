"""``ember.keras``: Keras 3's API on ember — a Keras script runs with only its import changed.

    from ember import keras
    from ember.keras import layers
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)),
                              layers.Conv2D(32, 3, activation="relu"),
                              layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.summary()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

Submodules load on first use, so ``import ember`` stays light.
"""
from __future__ import annotations

import importlib

__version__ = "3.0.0-ember"

# top-level names -> (submodule, attribute); a submodule alone for `keras.<module>`
_NAMES = {
    "Input": ("models.input_layer", "Input"),
    "InputLayer": ("models.input_layer", "InputLayer"),
    "KerasTensor": ("models.input_layer", "KerasTensor"),
    "Model": ("models.model", "Model"),
    "Sequential": ("models.sequential", "Sequential"),
    "Functional": ("models.functional", "Functional"),
    "Layer": ("layers.layer", "Layer"),
    "Variable": ("layers.layer", "Variable"),
    "Optimizer": ("optimizers", "Optimizer"),
    "Loss": ("losses", "Loss"),
    "Metric": ("metrics", "Metric"),
    "Initializer": ("initializers", "Initializer"),
    "Regularizer": ("regularizers", "Regularizer"),
    "Callback": ("callbacks", "Callback"),
}
_MODULES = ("models", "layers", "optimizers", "losses", "metrics", "callbacks", "activations",
            "initializers", "regularizers", "constraints", "utils", "datasets", "backend",
            "saving", "trainer", "ops")
_ALIASES = {"config": "backend"}  # keras.config.floatx() and keras.backend.floatx() agree

__all__ = sorted(set(_NAMES) | set(_MODULES) | set(_ALIASES) | {"version"})


def version() -> str:
    """The Keras API version ember follows."""
    return __version__


def __getattr__(name: str):
    if name in _NAMES:
        module, attr = _NAMES[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    elif name in _MODULES or name in _ALIASES:
        target = _ALIASES.get(name, name)
        try:
            value = importlib.import_module(f"{__name__}.{target}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{target}":
                raise
            raise AttributeError(f"module 'ember.keras' has no attribute '{name}' (ember does "
                                 f"not provide keras.{name})") from None
    else:
        raise AttributeError(f"module 'ember.keras' has no attribute '{name}'")
    globals()[name] = value
    return value


def __dir__() -> list:
    return __all__
