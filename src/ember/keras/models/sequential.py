"""``keras.Sequential``: a linear stack of layers, as a list or built with ``add``.

Once the input shape is known (``keras.Input`` first, ``input_shape=`` on the first layer,
``build(shape)`` or the first call on data) the stack becomes a functional graph, so its
layers know their output shapes (``summary()``) and their weights exist.
"""
from __future__ import annotations

from ..layers.layer import Layer, _shape_of
from .input_layer import InputLayer, KerasTensor
from .model import Model, _module_key

__all__ = ["Sequential"]


def _is_flat_shape(s) -> bool:
    return isinstance(s, (tuple, list)) and all(d is None or isinstance(d, int) for d in s)


class Sequential(Model):
    """Layers applied one after the other: ``Sequential([layers.Dense(8), layers.Dense(1)])``."""

    def __init__(self, layers=None, trainable: bool = True, name: str | None = None) -> None:
        Model.__init__(self, trainable=trainable, name=name)
        d = self.__dict__
        d["_input_layer"] = None
        d["_layers"] = []
        if layers:
            for layer in layers:
                self.add(layer, rebuild=False)
            self._maybe_rebuild()

    def add(self, layer, rebuild: bool = True) -> None:
        """Append ``layer`` (or the InputLayer behind a ``keras.Input`` tensor) to the stack."""
        if not self._layers and self._input_layer is None and \
                getattr(layer, "_input_shape_arg", None) is not None:
            # Keras 2 habit: `input_shape=` on the first layer makes an InputLayer
            self.add(InputLayer(shape=layer._input_shape_arg), rebuild=False)
        if isinstance(layer, KerasTensor) and layer._keras_history is not None and \
                isinstance(layer._keras_history[0], InputLayer):
            layer = layer._keras_history[0]
        if not isinstance(layer, Layer):
            raise ValueError(f"Only instances of `keras.Layer` can be added to a Sequential "
                             f"model. Received: {layer!r} (of type {type(layer).__name__})")
        if isinstance(layer, InputLayer):
            if self._input_layer is not None:
                raise ValueError(f"Sequential model '{self.name}' has already been configured "
                                 f"to use input shape {self._input_layer.batch_shape}. You "
                                 f"cannot add a different Input layer to it.")
            if self._layers:
                raise ValueError(f"Sequential model '{self.name}': an Input can only be the "
                                 f"first layer (layers {[x.name for x in self._layers]} "
                                 f"were added before it)")
            self.__dict__["_input_layer"] = layer
        else:
            names = [x.name for x in self._layers]
            if self._input_layer is not None:
                names.append(self._input_layer.name)
            if layer.name in names:
                raise ValueError(f"All layers added to a Sequential model should have unique "
                                 f"names. Name '{layer.name}' is already the name of a layer "
                                 f"in this model. Update the `name` argument to pass a "
                                 f"unique name.")
            self._layers.append(layer)
            self.add_module(_module_key(layer.name), layer)
        if rebuild:
            self._maybe_rebuild()
        else:
            self.__dict__["_graph"] = None
            self.built = False

    def pop(self, rebuild: bool = True) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise TypeError(f"Sequential model '{self.name}': there are no layers to pop")
        layer = self._layers.pop()
        del self._modules[_module_key(layer.name)]
        self.__dict__["_graph"] = None
        self.built = False
        if rebuild:
            self._maybe_rebuild()
        return layer

    def _maybe_rebuild(self) -> None:
        self.__dict__["_graph"] = None
        self.built = False
        if self._input_layer is not None and self._layers:
            self._build_graph()
        elif self._layers and getattr(self._layers[0], "_graph", None) is not None:
            self.build(self._layers[0].input_shape)  # a model as first layer knows its input

    def build(self, input_shape=None) -> None:
        """Build every layer for inputs of ``input_shape`` (batch dim first)."""
        if input_shape is None or not _is_flat_shape(input_shape):
            return  # nested inputs: the layers run one after the other, building lazily
        input_shape = tuple(input_shape)
        if not self._layers:
            raise ValueError(f"Sequential model {self.name} cannot be built because it has no "
                             f"layers. Call `model.add(layer)`.")
        if self._input_layer is not None:
            if self._input_layer.batch_shape != input_shape:
                raise ValueError(f"Sequential model '{self.name}' has already been configured "
                                 f"to use input shape {self._input_layer.batch_shape}. You "
                                 f"cannot build it with input_shape {input_shape}")
        else:
            # integer data (token ids) keeps its dtype; anything else is the layers' float type
            dtype = self.__dict__.pop("_data_dtype", None) or self._layers[0].compute_dtype
            self.__dict__["_input_layer"] = InputLayer(batch_shape=input_shape, dtype=dtype)
        self._build_graph()

    def _build_graph(self) -> None:
        from .functional import _Graph
        inputs = self._input_layer.output
        x = inputs
        for layer in self._layers:
            x = layer(x)
        d = self.__dict__
        d["_graph"] = _Graph(inputs, x)
        d["_build_shapes"] = {"args": [self._input_layer.batch_shape], "kwargs": {}}
        d["output_names"] = [self._layers[-1].name]
        d["built"] = True

    def _build_from_call(self, args, kwargs) -> None:
        shape = _shape_of(args[0]) if args else None
        if shape is not None and _is_flat_shape(shape):
            kind = getattr(getattr(args[0], "dtype", None), "name", None) or \
                str(getattr(args[0], "dtype", ""))
            if kind.startswith(("int", "uint")):
                self.__dict__["_data_dtype"] = kind
            self.build(tuple(shape))
        if not self.built:
            self.__dict__["built"] = True

    def call(self, inputs, training=None, mask=None):
        if self._graph is not None:
            return Model.call(self, inputs, training=training, mask=mask)
        x = inputs
        for layer in self._layers:
            x = layer(x, training=training) if training is not None else layer(x)
        return x

    def compute_output_shape(self, input_shape=None, **named):
        if self._graph is not None:
            return Model.compute_output_shape(self, input_shape)
        shape = input_shape
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    @property
    def layers(self) -> list:
        """The layers added, without the InputLayer (as in Keras)."""
        return list(self._layers)

    @layers.setter
    def layers(self, _) -> None:
        raise AttributeError("`Sequential.layers` attribute is reserved and should not be "
                             "used. Use `add()` and `pop()` to change the layers in this model.")

    def _require_graph(self, what: str):
        if self._graph is None:
            raise AttributeError(f"Sequential model '{self.name}' has no defined {what} yet: "
                                 f"start it with keras.Input(shape=...), or build it (call it "
                                 f"on data or `model.build(input_shape)`)")
        return self._graph

    def get_config(self) -> dict:
        """Keras's Sequential config: the layer configs in order and the build input shape."""
        from ..saving import serialize_keras_object
        layers = [serialize_keras_object(x) for x in
                  ([self._input_layer] if self._input_layer is not None else [])
                  + list(self._layers)]
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": {"module": "keras", "class_name": "DTypePolicy",
                            "config": {"name": self.dtype}, "registered_name": None},
                  "layers": layers}
        if self._input_layer is not None:
            config["build_input_shape"] = list(self._input_layer.batch_shape)
        return config

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Sequential":
        from ..saving import deserialize_keras_object
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for entry in config.get("layers", []):
            model.add(deserialize_keras_object(entry, custom_objects=custom_objects),
                      rebuild=False)
        model._maybe_rebuild()
        shape = config.get("build_input_shape")
        if model._graph is None and isinstance(shape, (list, tuple)) and _is_flat_shape(shape):
            model.build(tuple(shape))
        return model
