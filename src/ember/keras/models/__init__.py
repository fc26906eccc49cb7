"""``keras.models``: ``Model``, ``Sequential``, loading and cloning."""
from __future__ import annotations

import importlib

# classes load on first use, so `keras.layers` can re-export Input/InputLayer from here
# without importing the whole models package (and the trainer) while layers load
_LAZY = {"Model": "model", "Sequential": "sequential", "Functional": "functional",
         "Input": "input_layer", "InputLayer": "input_layer", "KerasTensor": "input_layer"}

__all__ = ["Model", "Sequential", "Functional", "Input", "InputLayer", "KerasTensor",
           "load_model", "save_model", "model_from_json", "clone_model"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ember.keras.models' has no attribute '{name}'")


def load_model(filepath, custom_objects: dict | None = None, compile: bool = True,
               safe_mode: bool = True):
    """Rebuild a model saved by ``model.save("m.keras")``, weights and compile state included."""
    from ..saving import load_model as _load
    return _load(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def save_model(model, filepath, overwrite: bool = True, zipped=None, **kwargs) -> None:
    """``model.save(filepath)``: a ``.keras`` zip of JSON config and safetensors weights."""
    from ..saving import save_model as _save
    _save(model, filepath, overwrite=overwrite, zipped=zipped, **kwargs)


def model_from_json(json_string: str, custom_objects: dict | None = None):
    """Rebuild a model (fresh weights) from ``model.to_json()``."""
    from ..saving import model_from_json as _from_json
    return _from_json(json_string, custom_objects=custom_objects)


def _clone_layer(layer):
    return type(layer).from_config(layer.get_config())


def clone_model(model, input_tensors=None, clone_function=None):
    """A new model with the same architecture and freshly initialised weights.

    ``clone_function(layer)`` makes each new layer (default: from its config); a layer shared
    by several calls is cloned once. ``input_tensors`` (functional and Sequential models) gives
    new ``keras.Input`` tensors to build on.
    """
    from ..saving import deserialize_keras_object, serialize_keras_object
    from .functional import Functional
    from .input_layer import InputLayer, _flatten, _pack_as
    from .sequential import Sequential
    clone_function = clone_function or _clone_layer
    if isinstance(model, Sequential):
        new = Sequential(name=model.name, trainable=model.trainable)
        if input_tensors is not None:
            new.add(_flatten(input_tensors)[0], rebuild=False)
        elif model._input_layer is not None:
            new.add(InputLayer.from_config(model._input_layer.get_config()), rebuild=False)
        for layer in model.layers:
            new.add(clone_function(layer), rebuild=False)
        new._maybe_rebuild()
        return new
    graph = model._graph
    if graph is None:  # subclassed: its config re-creates it
        return deserialize_keras_object(serialize_keras_object(model))
    if input_tensors is None:
        new_inputs = [InputLayer.from_config(x._keras_history[0].get_config()).output
                      for x in graph.inputs]
    else:
        new_inputs = _flatten(input_tensors)
        if len(new_inputs) != len(graph.inputs):
            raise ValueError(f"clone_model: model '{model.name}' has {len(graph.inputs)} "
                             f"inputs, got {len(new_inputs)} input_tensors")
    clones: dict = {}

    def call(layer, args, kwargs):
        if id(layer) not in clones:
            clones[id(layer)] = clone_function(layer)
        return clones[id(layer)](*args, **kwargs)
    outputs = graph.run(new_inputs, call)
    return Functional(_pack_as(graph.inputs_struct, iter(new_inputs)),
                      _pack_as(graph.outputs_struct, iter(outputs)), name=model.name,
                      trainable=model.trainable)
