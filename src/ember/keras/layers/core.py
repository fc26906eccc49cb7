"""Core layers: Dense, Activation (and ReLU, LeakyReLU, ELU, Softmax), Dropout, Flatten, Reshape,
Permute, RepeatVector, Identity and Lambda, with Keras 3's arguments, defaults and configs."""
from __future__ import annotations

import math

import numpy as np

from ... import ops
from ...ops.dropout import _masked
from ...ops.linear import linear
from ...ops.random import Generator
from ...tensor import Tensor
from .. import activations as _activations
from .. import initializers as _initializers
from .. import regularizers as _regularizers
from .layer import Layer, _check_rank, _data_format, _get_constraint
from .layer import _dense_config

__all__ = ["Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "Flatten",
           "Reshape", "Permute", "RepeatVector", "Identity", "Lambda"]


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` on the last axis; kernel ``(in, units)``."""

    _float_inputs = True

    supports_masking = True

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Dense: received an invalid value for `units`, expected a "
                             f"positive integer, got units={units!r}")
        self.units = int(units)
        self.activation = _activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)
        self.kernel_constraint = _get_constraint(kernel_constraint)
        self.bias_constraint = _get_constraint(bias_constraint)

    def build(self, input_shape) -> None:
        if input_shape is None or len(input_shape) < 1 or input_shape[-1] is None:
            raise ValueError(f"Dense \"{self.name}\": the last dimension of the input must be "
                             f"known to build, got input_shape={input_shape}")
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel",
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.units,), name="bias",
                                        initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        else:
            self.bias = None
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        if not isinstance(inputs, Tensor) or inputs.ndim < 1 \
                or inputs.shape[-1] != self.kernel.shape[0]:
            raise self._input_error(inputs, f"axis -1 of input shape to have value "
                                            f"{self.kernel.shape[0]}")
        # the fused linear op wants (out, in): the transposed view costs no copy
        y = linear(inputs, self.kernel.t(), self.bias)
        return y if self.activation is _activations.linear else self.activation(y)

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, **_dense_config(self)}


class Activation(Layer):
    """Applies an activation function (a name from ``keras.activations`` or a callable)."""

    supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _activations.get(activation)

    def call(self, inputs: Tensor) -> Tensor:
        return self.activation(inputs)

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(),
                "activation": _activations.serialize(self.activation)}


class ReLU(Layer):
    """Keras's ReLU layer: ``max_value`` clip, ``negative_slope`` leak, ``threshold``."""

    supports_masking = True

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0,
                 threshold: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0.0:
            raise ValueError(f"ReLU: max_value of a ReLU layer cannot be negative, got "
                             f"{max_value}")
        if negative_slope is None or negative_slope < 0.0:
            raise ValueError(f"ReLU: negative_slope must be a non-negative float, got "
                             f"{negative_slope}")
        if threshold is None or threshold < 0.0:
            raise ValueError(f"ReLU: threshold must be a non-negative float, got {threshold}")
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def call(self, inputs: Tensor) -> Tensor:
        return _activations.relu(inputs, self.negative_slope, self.max_value, self.threshold)

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(Layer):
    """``x`` for positive x, ``negative_slope * x`` otherwise (the layer's default is 0.3)."""

    supports_masking = True

    def __init__(self, negative_slope: float = 0.3, **kwargs):
        if "alpha" in kwargs:  # the Keras 2 name
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError(f"LeakyReLU: negative_slope must be a non-negative float, got "
                             f"{negative_slope}")
        self.negative_slope = negative_slope

    def call(self, inputs: Tensor) -> Tensor:
        return _activations.leaky_relu(inputs, self.negative_slope)

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """``x`` for positive x, ``alpha * (exp(x) - 1)`` otherwise."""

    supports_masking = True

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def call(self, inputs: Tensor) -> Tensor:
        return _activations.elu(inputs, self.alpha)

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(Layer):
    """Softmax over ``axis`` (an int or a tuple); masked positions get probability 0."""

    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs: Tensor, mask=None) -> Tensor:
        if mask is not None:
            # Keras adds a large negative number where the mask is False
            big = -3e4 if inputs.dtype.name == "float16" else -1e9
            m = mask if isinstance(mask, Tensor) else Tensor._wrap(np.asarray(mask))
            inputs = inputs + (1.0 - m.to(inputs.dtype)) * big
        if isinstance(self.axis, (tuple, list)):
            axes = tuple(self.axis)
            return (inputs - inputs.logsumexp(axes, keepdim=True)).exp()
        return ops.activation.softmax(inputs, self.axis)

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


class Dropout(Layer):
    """Zeroes inputs with probability ``rate`` in training and scales the rest by 1/(1-rate).

    ``noise_shape`` (with ``None`` for "same as the input") shares one draw along size-1 axes;
    ``seed`` gives the layer its own generator.
    """

    supports_masking = True

    def __init__(self, rate: float, noise_shape=None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(f"Dropout: invalid value received for argument `rate`, expected "
                             f"a float value between 0 and 1, got rate={rate!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._generator = None if seed is None else Generator().manual_seed(seed)

    def call(self, inputs: Tensor, training=None) -> Tensor:
        if not training or self.rate == 0:
            return inputs
        shape = tuple(inputs.shape)
        if self.noise_shape is not None:
            if len(self.noise_shape) != len(shape):
                raise self._input_error(inputs, f"rank {len(self.noise_shape)} to match "
                                                f"noise_shape={self.noise_shape}")
            shape = tuple(n if s is None else s for s, n in zip(self.noise_shape, shape))
            if any(s not in (1, n) for s, n in zip(shape, inputs.shape)):
                raise self._input_error(inputs, f"a shape that noise_shape={self.noise_shape} "
                                                f"broadcasts to")
        return _masked("Dropout", inputs, self.rate, True, shape, self._generator)

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}


class Flatten(Layer):
    """Flattens all axes but the batch axis (channels-first inputs are made channels-last
    first, so the order matches a channels-last model)."""

    def __init__(self, data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(self, data_format)

    def call(self, inputs: Tensor) -> Tensor:
        _check_rank(self, inputs, range(1, 64), "at least the batch axis")
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = inputs.permute(0, *range(2, inputs.ndim), 1)
        return inputs.reshape(inputs.shape[0], -1)

    def compute_output_shape(self, input_shape) -> tuple:
        rest = input_shape[1:]
        flat = None if any(d is None for d in rest) else int(math.prod(rest))
        return (input_shape[0], flat)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format}


def _resolve_target(layer, target: tuple, known: tuple) -> tuple:
    """``target_shape`` with its one -1 replaced, given the (non-batch) input shape."""
    total = None if any(d is None for d in known) else int(math.prod(known))
    if -1 not in target:
        if total is not None and math.prod(target) != total:
            raise ValueError(f"Reshape \"{layer.name}\": the total size of the input "
                             f"{known} ({total}) must equal the size of target_shape "
                             f"{target} ({math.prod(target)})")
        return target
    rest = math.prod(d for d in target if d != -1)
    if total is None:
        return tuple(None if d == -1 else d for d in target)
    if rest == 0 or total % rest:
        raise ValueError(f"Reshape \"{layer.name}\": the input shape {known} ({total} values) "
                         f"cannot be reshaped to {target}")
    return tuple(total // rest if d == -1 else d for d in target)


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target = tuple(target_shape)
        if not all(isinstance(d, (int, np.integer)) and (d > 0 or d == -1) for d in target) \
                or target.count(-1) > 1:
            raise ValueError(f"Reshape: target_shape must be positive integers with at most "
                             f"one -1, got {target_shape!r}")
        self.target_shape = tuple(int(d) for d in target)

    def call(self, inputs: Tensor) -> Tensor:
        shape = _resolve_target(self, self.target_shape, tuple(inputs.shape[1:]))
        return inputs.reshape((inputs.shape[0],) + shape)

    def compute_output_shape(self, input_shape) -> tuple:
        return (input_shape[0],) + _resolve_target(self, self.target_shape,
                                                   tuple(input_shape[1:]))

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    """Permutes the non-batch axes; ``dims`` is 1-based (``(2, 1)`` swaps axes 1 and 2)."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(int(d) for d in dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: invalid permutation argument `dims`, it should be a "
                             f"permutation of 1..{len(dims)} (indexing starts at 1), got "
                             f"dims={dims}")
        self.dims = dims

    def call(self, inputs: Tensor) -> Tensor:
        if inputs.ndim != len(self.dims) + 1:
            raise self._input_error(inputs, f"ndim={len(self.dims) + 1} (batch + dims "
                                            f"{self.dims})")
        return inputs.permute(0, *self.dims)

    def compute_output_shape(self, input_shape) -> tuple:
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def get_config(self) -> dict:
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """``(batch, features)`` -> ``(batch, n, features)``."""

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise TypeError(f"RepeatVector: expected an integer value for `n`, got {n!r}")
        self.n = int(n)

    def call(self, inputs: Tensor) -> Tensor:
        _check_rank(self, inputs, (2,), "(batch, features)")
        return inputs.unsqueeze(1).expand(inputs.shape[0], self.n, inputs.shape[1])

    def compute_output_shape(self, input_shape) -> tuple:
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self) -> dict:
        return {**super().get_config(), "n": self.n}


class Identity(Layer):
    """Returns its input unchanged."""

    supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


class Lambda(Layer):
    """Wraps ``function(inputs, **arguments)`` as a layer.

    Only functions from ``keras.activations`` serialise: ember never stores Python code in
    model files, so a model with another Lambda cannot be saved as a config.
    """

    def __init__(self, function, output_shape=None, mask=None, arguments: dict | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(function, (str, dict)):
            function = _activations.get(function)
        if not callable(function):
            raise TypeError(f"Lambda: `function` must be callable, got {function!r}")
        self.function = function
        self._output_shape = output_shape
        self.mask = mask
        self.arguments = dict(arguments or {})
        self.supports_masking = mask is not None

    def call(self, inputs, mask=None, training=None):
        return self.function(inputs, **self.arguments)

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            return super().compute_output_shape(input_shape)
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        return (input_shape[0],) + tuple(self._output_shape)

    def get_config(self) -> dict:
        try:
            name = _activations.serialize(self.function)
        except ValueError:
            raise ValueError(f"Lambda \"{self.name}\": cannot serialize the Python function "
                             f"{self.function!r}; ember saves no code in model files. Write a "
                             f"Layer subclass with get_config() instead") from None
        if callable(self._output_shape) or callable(self.mask):
            raise ValueError(f"Lambda \"{self.name}\": callable output_shape/mask cannot be "
                             f"serialized")
        return {**super().get_config(), "function": name,
                "output_shape": None if self._output_shape is None else list(self._output_shape),
                "mask": self.mask, "arguments": self.arguments}
