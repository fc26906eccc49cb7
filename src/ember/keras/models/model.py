"""``keras.Model``: a Layer that can be trained (compile/fit come from the Trainer).

Two ways to make one, as in Keras 3:

    inputs = keras.Input(shape=(784,))                    # functional: Model(inputs, outputs)
    model = keras.Model(inputs, layers.Dense(10)(inputs))  # returns a Functional model

    class MLP(keras.Model):                               # subclassing: layers as attributes,
        def __init__(self):                               # the computation in call()
            super().__init__()
            self.hidden = layers.Dense(64, activation="relu")
            self.out = layers.Dense(10)
        def call(self, inputs, training=None):
            return self.out(self.hidden(inputs))

Layers assigned as attributes (or in lists) are tracked, so ``weights``, ``summary()``,
``parameters()`` and ``state_dict()`` see them; a model is itself a layer, so models nest.
"""
from __future__ import annotations

import json
import warnings

import numpy as np

from ... import _state
from ... import dtypes as _dt
from ...tensor import Tensor
from ..layers.layer import Layer, _ctx_stack, _find_symbolic
from ..trainer import Trainer

__all__ = ["Model"]


def _module_key(name: str) -> str:
    """A Module-registry key for a layer name ('.' separates state_dict paths)."""
    return name.replace(".", "_") or "_"


_GRAPH_PROPERTIES = {"inputs": "inputs", "outputs": "outputs", "input": "input",
                     "output": "output", "input_shape": "input shape",
                     "output_shape": "output shape"}


def _is_functional_call(args: tuple, kwargs: dict) -> bool:
    return len(args) >= 2 or "inputs" in kwargs or "outputs" in kwargs


class Model(Trainer, Layer):
    """A trainable stack or graph of layers: ``Model(inputs, outputs)`` or a subclass."""

    _tracks_plain_modules = True  # ember.nn modules in a subclass are trained and saved too

    def __new__(cls, *args, **kwargs):
        if cls is Model and _is_functional_call(args, kwargs):
            from .functional import Functional
            return Functional.__new__(Functional, *args, **kwargs)
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, *args, **kwargs) -> None:
        inputs = kwargs.pop("inputs", None)
        outputs = kwargs.pop("outputs", None)
        if args:
            if len(args) > 2 or (len(args) == 2 and (inputs is not None or
                                                     outputs is not None)):
                raise TypeError(f"Model.__init__: expected (inputs, outputs) and keyword "
                                f"arguments, got {len(args)} positional arguments")
            inputs = args[0]
            if len(args) == 2:
                outputs = args[1]
        functional = inputs is not None or outputs is not None
        if functional and (inputs is None or outputs is None):
            raise ValueError("Model: a functional model needs both `inputs` and `outputs`")
        Layer.__init__(self, trainable=kwargs.pop("trainable", True),
                       name=kwargs.pop("name", None), dtype=kwargs.pop("dtype", None), **kwargs)
        d = self.__dict__
        d["_graph"] = None
        d["_building"] = False
        # Keras: calling a model without `training=` is inference; fit() switches the mode
        d["training"] = False
        if functional:
            self._init_graph(inputs, outputs)

    def __call__(self, *args, **kwargs):
        # the model's mode (eval unless fit() or .train() set it) is the `training` its
        # layers see, as Keras passes a model's `training` argument down to every layer
        if kwargs.get("training") is None and _find_symbolic(args, kwargs) is None:
            stack = _ctx_stack()
            if not stack or stack[-1] is None:
                kwargs["training"] = self.training
        return Layer.__call__(self, *args, **kwargs)

    def _init_graph(self, inputs, outputs) -> None:
        """Make this model run the layer graph between ``inputs`` and ``outputs``."""
        from .functional import _clone_from_intermediate, _Graph, _is_input_tensor
        from .input_layer import _flatten
        if isinstance(inputs, dict):
            for k, v in inputs.items():
                if hasattr(v, "name") and k != v.name:
                    warnings.warn(f"Model '{self.name}': when `inputs` is a dict its keys must "
                                  f"match the names of the Input tensors; key '{k}' maps to "
                                  f"input '{v.name}' (name it with keras.Input(..., "
                                  f"name='{k}'))", stacklevel=3)
        for what, group in (("inputs", inputs), ("outputs", outputs)):
            for x in _flatten(group):
                if getattr(x, "_keras_history", None) is None:
                    raise ValueError(f"Model: all `{what}` must be KerasTensors (from "
                                     f"keras.Input() and layer calls), got {x!r} of type "
                                     f"{type(x).__name__}")
        if not all(_is_input_tensor(x) for x in _flatten(inputs)):
            inputs, outputs = _clone_from_intermediate(inputs, outputs)
        graph = _Graph(inputs, outputs)
        d = self.__dict__
        d["_graph"] = graph
        layers = [op for op in graph.operations if isinstance(op, Layer)]
        d["_layers"] = layers
        for layer in layers:
            key = _module_key(layer.name)
            if key in self._modules and self._modules[key] is not layer:
                raise ValueError(f"Model '{self.name}': two layers are named '{layer.name}'")
            self.add_module(key, layer)
        d["output_names"] = [x._keras_history[0].name for x in graph.outputs]
        d["built"] = True

    # ----- structure ----------------------------------------------------------------------
    @property
    def layers(self) -> list:
        """The model's layers, in Keras's order (a functional model lists its InputLayers)."""
        return list(self._layers)

    @layers.setter
    def layers(self, _) -> None:
        raise AttributeError("`Model.layers` attribute is reserved and should not be used. "
                             "Please use another name.")

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by ``name`` or by position ``index`` in :attr:`layers`."""
        if index is not None and name is not None:
            raise ValueError(f"get_layer: provide only a layer name or a layer index, got "
                             f"name={name!r}, index={index!r}")
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: was asked to retrieve layer at index {index} but "
                                 f"model '{self.name}' only has {len(self.layers)} layers")
            return self.layers[index]
        if name is not None:
            for layer in self.layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"No such layer: {name}. Existing layers are: "
                             f"{[layer.name for layer in self.layers]}.")
        raise ValueError("get_layer: provide either a layer name or a layer index")

    def __getattr__(self, name: str):
        # a property raising AttributeError falls through to Module.__getattr__; keep the
        # property's message for the graph attributes
        if name in _GRAPH_PROPERTIES and "_graph" in self.__dict__:
            self._require_graph(_GRAPH_PROPERTIES[name])
        return Layer.__getattr__(self, name)

    def _require_graph(self, what: str):
        if self._graph is None:
            raise AttributeError(f"Model '{self.name}' has no defined {what}: only functional "
                                 f"models and built Sequential models have one (a subclassed "
                                 f"model's inputs are only known when it is called)")
        return self._graph

    @property
    def inputs(self) -> list:
        return list(self._require_graph("inputs").inputs)

    @property
    def outputs(self) -> list:
        return list(self._require_graph("outputs").outputs)

    @property
    def input(self):
        return self._require_graph("input").inputs_struct

    @property
    def output(self):
        return self._require_graph("output").outputs_struct

    @property
    def input_shape(self):
        g = self._require_graph("input shape")
        shapes = [x.shape for x in g.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        g = self._require_graph("output shape")
        shapes = [x.shape for x in g.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    # ----- build / call -------------------------------------------------------------------
    def build(self, input_shape=None) -> None:
        """Create the weights of every layer by running the model on zeros of ``input_shape``.

        Unknown sizes (``None``, e.g. the batch) become 1 for that run.
        """
        if self._graph is not None or self._building or input_shape is None:
            self.built = True
            return
        from .functional import _placeholders
        from .input_layer import KerasTensor

        def spec(s):
            if isinstance(s, dict):
                return {k: spec(v) for k, v in s.items()}
            if isinstance(s, (list, tuple)) and s and not all(
                    d is None or isinstance(d, (int, np.integer)) for d in s):
                return [spec(v) for v in s]
            return KerasTensor(s, dtype=self.compute_dtype)
        self.__dict__["_building"] = True
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            self(_placeholders(spec(input_shape), 1), training=False)
        finally:
            _state.grad_enabled = prev
            self.__dict__["_building"] = False
        self.__dict__["_build_shapes"] = {"args": [input_shape], "kwargs": {}}
        self.built = True

    def _build_from_call(self, args, kwargs) -> None:
        # the layers of a subclassed model build lazily inside the first call itself; only a
        # subclass that defines its own build() needs it called first
        if type(self).build is Model.build:
            from ..layers.layer import _shape_of
            self.__dict__["_build_shapes"] = {"args": [_shape_of(args[0]) if args else None],
                                              "kwargs": {}}
            self.built = True
            return
        Layer._build_from_call(self, args, kwargs)

    def call(self, inputs, training=None, mask=None):
        """Run the layer graph (functional models); a subclass overrides this."""
        if self._graph is None:
            raise NotImplementedError(f"Model {type(self).__name__} has no call(): a "
                                      f"subclassed model must implement "
                                      f"`call(self, inputs, training=None)`")
        from .input_layer import _pack_as
        flat = self._standardize_inputs(inputs)

        def run(layer, args, kwargs):
            if training is not None and "training" not in kwargs:
                kwargs = dict(kwargs, training=training)
            return layer(*args, **kwargs)
        outs = self._graph.run(flat, run)
        result = _pack_as(self._graph.outputs_struct, iter(outs))
        if isinstance(result, (list, tuple)) and len(result) == 1:
            return result[0]  # Keras unpacks a one-output list
        return result

    def _standardize_inputs(self, inputs) -> list:
        """Flatten ``inputs`` in the model's input order, as tensors of the declared ranks."""
        g = self._graph
        refs = g.inputs
        struct = g.inputs_struct
        names = [x.name for x in refs]
        if isinstance(inputs, dict):
            keys = sorted(struct) if isinstance(struct, dict) else names
            missing = [k for k in keys if k not in inputs]
            if missing:
                raise ValueError(f"Model '{self.name}' expects inputs named {keys}; the dict "
                                 f"given lacks {missing} (it has {sorted(inputs)})")
            flat = [inputs[k] for k in keys]
        elif isinstance(inputs, (list, tuple)):
            flat = list(inputs)
        else:
            flat = [inputs]
        if len(flat) != len(refs):
            raise ValueError(f"Model '{self.name}' expects {len(refs)} input(s) "
                             f"{[(n, x.shape) for n, x in zip(names, refs)]}, but it was "
                             f"called on {len(flat)}")
        out = []
        for x, ref in zip(flat, refs):
            if not isinstance(x, Tensor):
                x = Tensor._wrap(np.ascontiguousarray(np.asarray(x)))
            rank = len(ref.shape)
            # Keras squeezes or adds a trailing size-1 axis ((n,) labels vs (n, 1) inputs)
            if x.ndim == rank + 1 and x.shape[-1] == 1:
                x = x.squeeze(-1)
            elif x.ndim == rank - 1 and rank and ref.shape[-1] == 1:
                x = x.unsqueeze(-1)
            bad = x.ndim != rank or any(
                r is not None and d != r for d, r in zip(tuple(x.shape)[1:], ref.shape[1:]))
            if bad:
                raise ValueError(f"Input '{ref.name}' of model '{self.name}' is incompatible: "
                                 f"expected shape {ref.shape}, got a tensor of shape "
                                 f"{tuple(x.shape)}")
            if x.dtype.name != ref.dtype:
                x = x.to(_dt.as_dtype(ref.dtype))
            out.append(x)
        return out

    def compute_output_shape(self, *input_shapes, **named):
        """Output shape(s) for the given input shape(s), by shape inference through the graph."""
        if self._graph is None:
            return Layer.compute_output_shape(self, *input_shapes, **named)
        from .functional import _infer, _is_shape, _make_tensors
        from .input_layer import KerasTensor, _pack_as
        g = self._graph

        def leaves(s):
            if isinstance(s, dict):
                return [x for k in sorted(s) for x in leaves(s[k])]
            if _is_shape(s):
                return [tuple(s)]
            return [x for v in s for x in leaves(v)]
        if not input_shapes:
            shapes = [x.shape for x in g.inputs]
        else:
            shapes = leaves(input_shapes[0] if len(input_shapes) == 1 else list(input_shapes))
        if len(shapes) != len(g.inputs):
            raise ValueError(f"Model '{self.name}' expects {len(g.inputs)} input shape(s), got "
                             f"{len(shapes)}: {input_shapes}")
        # shape-only tensors without history: running the graph on them records nothing
        fresh = [KerasTensor(s, dtype=x.dtype) for s, x in zip(shapes, g.inputs)]
        outs = g.run(fresh, lambda layer, args, kwargs: _make_tensors(_infer(layer, args,
                                                                             kwargs)))
        packed = _pack_as(g.outputs_struct, iter([o.shape for o in outs]))
        if isinstance(packed, (list, tuple)) and len(packed) == 1:
            return packed[0]
        return packed

    # ----- weights ------------------------------------------------------------------------
    def get_weights(self) -> list:
        """Every weight's value as a NumPy array, in Keras's order (layer by layer)."""
        return Layer.get_weights(self)

    def set_weights(self, weights) -> None:
        """Overwrite every weight from NumPy arrays in :meth:`get_weights` order."""
        Layer.set_weights(self, weights)

    # ----- summary / config / files -------------------------------------------------------
    def summary(self, line_length: int | None = None, positions=None, print_fn=None,
                expand_nested: bool = False, show_trainable: bool = False,
                layer_range=None) -> None:
        """Print Keras's table of layers, output shapes and parameter counts."""
        from .summary import print_summary
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                      expand_nested=expand_nested, show_trainable=show_trainable,
                      layer_range=layer_range)

    def get_config(self) -> dict:
        """The config that rebuilds the model: its graph, or a subclass's constructor args."""
        if self._graph is not None and _functional_like(type(self)):
            from .functional import graph_config
            return graph_config(self)
        return Layer.get_config(self)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Model":
        """Rebuild a model from :meth:`get_config` (weights are not restored)."""
        if "layers" in config and "input_layers" in config and "output_layers" in config \
                and _functional_like(cls):
            from .functional import Functional, graph_from_config
            inputs, outputs = graph_from_config(config, custom_objects)
            target = Functional if cls is Model else cls
            return target(inputs, outputs, name=config.get("name"),
                          trainable=config.get("trainable", True))
        return cls(**config)

    def to_json(self, **kwargs) -> str:
        """The model's architecture as JSON (``keras.models.model_from_json`` reads it back)."""
        from ..saving import serialize_keras_object
        return json.dumps(serialize_keras_object(self), **kwargs)

    def save(self, filepath, overwrite: bool = True, zipped=None, **kwargs) -> None:
        """Save architecture, weights and compile state to a ``.keras`` zip (no pickle)."""
        from ..saving import save_model
        save_model(self, filepath, overwrite=overwrite, zipped=zipped, **kwargs)

    def save_weights(self, filepath, overwrite: bool = True, max_shard_size=None) -> None:
        """Save the weights (safetensors content, even in a file named ``*.weights.h5``)."""
        from ..saving import save_weights
        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch: bool = False, **kwargs) -> None:
        """Load weights saved by :meth:`save_weights` (or Keras's HDF5, with h5py)."""
        from ..saving import load_weights
        load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _functional_like(cls) -> bool:
    """Whether ``cls`` is constructed as ``cls(inputs, outputs, name=...)``."""
    from .functional import Functional
    from .sequential import Sequential
    if issubclass(cls, Sequential):
        return False
    return cls is Model or cls is Functional or cls.__init__ in (Model.__init__,
                                                                 Functional.__init__)
