"""``keras.layers``: Keras 3 layers as ember Modules (channels-last images, lazy input sizes,
Keras's weight layouts, names, defaults and configs).

    from ember.keras import layers
    model = [layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
             layers.Flatten(), layers.Dense(10, activation="softmax")]
"""
from .attention import MultiHeadAttention
from .convolutional import (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D,
                            Conv3DTranspose, Convolution1D, Convolution2D, Convolution2DTranspose,
                            Convolution3D, DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D,
                            SeparableConv2D, SeparableConvolution2D)
from .core import (ELU, Activation, Dense, Dropout, Flatten, Identity, Lambda, LeakyReLU,
                   Permute, ReLU, RepeatVector, Reshape, Softmax)
from .embedding import Embedding
from .layer import Layer, Variable
from .merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add,
                      average, concatenate, dot, maximum, minimum, multiply, subtract)
from .normalization import BatchNormalization, LayerNormalization
from .pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, AvgPool1D, AvgPool2D,
                      AvgPool3D, GlobalAveragePooling1D, GlobalAveragePooling2D,
                      GlobalAveragePooling3D, GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D,
                      GlobalMaxPool2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
                      GlobalMaxPooling3D, MaxPool1D, MaxPool2D, MaxPool3D, MaxPooling1D,
                      MaxPooling2D, MaxPooling3D)
from .preprocessing import Normalization, Rescaling
from .rnn import GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell

__all__ = [
    "Layer", "Variable",
    "Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "Flatten",
    "Reshape", "Permute", "RepeatVector", "Identity", "Lambda",
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "Convolution1D", "Convolution2D", "Convolution3D", "Convolution2DTranspose",
    "SeparableConvolution2D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
    "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D",
    "BatchNormalization", "LayerNormalization", "Embedding",
    "SimpleRNNCell", "LSTMCell", "GRUCell", "RNN", "SimpleRNN", "LSTM", "GRU", "Bidirectional",
    "MultiHeadAttention",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
    "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot",
    "Rescaling", "Normalization",
]


def __getattr__(name: str):
    # keras.layers.Input / InputLayer live with the models (symbolic graphs); imported lazily
    # because the models package builds on this one
    if name in ("Input", "InputLayer"):
        from ..models import input_layer
        return getattr(input_layer, name)
    raise AttributeError(f"module 'ember.keras.layers' has no attribute {name!r}")


def serialize(layer: Layer) -> dict:
    """Keras's layer config dict: ``{"module", "class_name", "config", "registered_name"}``."""
    from ..saving import _GLOBAL_CUSTOM_NAMES  # set by register_keras_serializable
    return {"module": "keras.layers", "class_name": type(layer).__name__,
            "config": layer.get_config(),
            "registered_name": _GLOBAL_CUSTOM_NAMES.get(type(layer))}


def deserialize(config: dict, custom_objects: dict | None = None) -> Layer:
    """Re-create a layer from :func:`serialize`'s output (built-in or ``custom_objects``)."""
    name = config.get("class_name")
    cls = (custom_objects or {}).get(name) or globals().get(name)
    if cls is None:  # a class registered with keras.saving.register_keras_serializable
        from ..saving import get_registered_object
        cls = get_registered_object(config.get("registered_name") or name, custom_objects) \
            or get_registered_object(name, custom_objects)
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ValueError(f"keras.layers.deserialize: unknown layer class {name!r}; pass it in "
                         f"custom_objects")
    return cls.from_config(dict(config.get("config") or {}))
