"""Convolution layers with Keras's layouts: Conv1D/2D/3D, Conv1D/2D/3DTranspose,
DepthwiseConv2D, SeparableConv1D/2D.

Kernels are stored as Keras stores them (``(*kernel_size, in/groups, filters)``; transposed:
``(*kernel_size, filters, in)``), so ``set_weights`` takes weights from Keras unchanged.
Channels-last inputs are transposed to ember's channels-first convolution primitive and back;
padding follows Keras/TensorFlow ("same" puts the odd pixel after, "causal" pads before).
"""
from __future__ import annotations

from ...ops.conv import _conv, _conv_transpose
from ...ops.registry import apply
from ...tensor import Tensor
from .. import activations as _activations
from .. import initializers as _initializers
from .. import regularizers as _regularizers
from .layer import Layer, _data_format, _get_constraint, _ntuple, _padding, _ser_constraint
from .layer import _dense_config, _ser_init, _ser_reg

__all__ = ["Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
           "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
           "SeparableConv2D", "Convolution1D", "Convolution2D", "Convolution3D",
           "Convolution2DTranspose", "SeparableConvolution2D"]


def conv_output_length(n, k: int, padding: str, s: int, d: int):
    """Keras's output length of a convolution (None stays None)."""
    if n is None:
        return None
    k_eff = d * (k - 1) + 1
    if padding in ("same", "causal"):
        return -(-n // s)
    return max((n - k_eff) // s + 1, 0)


def _same_pads(n: int, k: int, s: int, d: int) -> tuple:
    """TensorFlow's "same" padding: the odd pixel goes after."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def deconv_output_length(n, k: int, padding: str, output_padding, s: int, d: int):
    """Keras's output length of a transposed convolution (None stays None)."""
    if n is None:
        return None
    k_eff = d * (k - 1) + 1
    if output_padding is None:
        if padding == "valid":
            return n * s + max(k_eff - s, 0)
        return n * s
    pad = k_eff // 2 if padding == "same" else 0
    return (n - 1) * s + k_eff - 2 * pad + output_padding


def _transpose_pads(k: int, s: int, d: int, padding: str, output_padding) -> tuple:
    """``((crop_before, crop_after), extra_after)`` turning the full transposed convolution
    (length ``(n-1)*s + k_eff``) into Keras's output; JAX/TensorFlow's convention."""
    k_eff = d * (k - 1) + 1
    if padding == "valid":
        op = max(k_eff, s) - k_eff if output_padding is None else output_padding
        left, right = k_eff - 1, k_eff - 1 + op
    else:
        pad_len = s + k_eff - 2 if output_padding is None else \
            k_eff + k_eff % 2 - 2 + output_padding
        left = min(pad_len // 2 + pad_len % 2, k_eff - 1)
        right = pad_len - left
    lo, hi = k_eff - 1 - left, k_eff - 1 - right
    return (lo, max(hi, 0)), max(-hi, 0)


def _to_channels_first(x: Tensor, rank: int) -> Tensor:
    return x.permute(0, rank + 1, *range(1, rank + 1))


def _to_channels_last(x: Tensor, rank: int) -> Tensor:
    return x.permute(0, *range(2, rank + 2), 1)


class _ConvBase(Layer):
    """What every convolution layer shares: geometry arguments, bias, activation, config."""

    _float_inputs = True

    rank = 2

    def __init__(self, kernel_size, strides=1, padding: str = "valid", data_format=None,
                 dilation_rate=1, activation=None, use_bias: bool = True,
                 bias_initializer="zeros", bias_regularizer=None, activity_regularizer=None,
                 bias_constraint=None, *, allowed_padding=("valid", "same"), **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        r = self.rank
        self.kernel_size = _ntuple(self, "kernel_size", kernel_size, r)
        self.strides = _ntuple(self, "strides", strides, r)
        self.dilation_rate = _ntuple(self, "dilation_rate", dilation_rate, r)
        self.padding = _padding(self, padding, allowed_padding)
        self.data_format = _data_format(self, data_format)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{type(self).__name__}: `strides > 1` not supported in "
                             f"conjunction with `dilation_rate > 1`, got strides="
                             f"{self.strides} and dilation_rate={self.dilation_rate}")
        self.activation = _activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)
        self.bias_constraint = _get_constraint(bias_constraint)

    # ----- shapes ---------------------------------------------------------------------------
    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def _in_channels(self, input_shape) -> int:
        if input_shape is None or len(input_shape) != self.rank + 2:
            raise ValueError(f"{type(self).__name__} \"{self.name}\": expected an input of rank "
                             f"{self.rank + 2} (batch, {self._layout()}), got input_shape="
                             f"{input_shape}")
        c = input_shape[self._channel_axis()]
        if c is None:
            raise ValueError(f"{type(self).__name__} \"{self.name}\": the channel dimension of "
                             f"the input must be known, got input_shape={input_shape}")
        return int(c)

    def _layout(self) -> str:
        sp = ", ".join(["steps"] if self.rank == 1 else [f"dim{i + 1}" for i in range(self.rank)])
        return f"{sp}, channels" if self.data_format == "channels_last" else f"channels, {sp}"

    def _spatial(self, shape) -> tuple:
        return tuple(shape[1:-1]) if self.data_format == "channels_last" else tuple(shape[2:])

    def _with(self, shape, spatial, channels) -> tuple:
        if self.data_format == "channels_last":
            return (shape[0],) + tuple(spatial) + (channels,)
        return (shape[0], channels) + tuple(spatial)

    def _check_input(self, x, channels: int) -> None:
        if not isinstance(x, Tensor) or x.ndim != self.rank + 2 \
                or x.shape[self._channel_axis()] != channels:
            raise self._input_error(x, f"ndim={self.rank + 2} (batch, {self._layout()}) with "
                                       f"{channels} channels")

    def _pads(self, spatial) -> tuple:
        out = []
        for n, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate):
            if self.padding == "valid":
                out.append((0, 0))
            elif self.padding == "causal":
                out.append((d * (k - 1), 0))
            else:
                out.append(_same_pads(n, k, s, d))
        return tuple(out)

    def _finish(self, y: Tensor) -> Tensor:
        return y if self.activation is _activations.linear else self.activation(y)

    def _conv(self, x: Tensor, weight: Tensor, bias, groups: int) -> Tensor:
        """Channels-first convolution ``x`` (N, C, *sp) with a torch-layout weight."""
        pads = self._pads(x.shape[2:])
        padded = [n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads)]
        eff = [d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation_rate)]
        if any(p < e for p, e in zip(padded, eff)):
            raise ValueError(f"{type(self).__name__} \"{self.name}\": the input's spatial "
                             f"size {tuple(x.shape[2:])} is smaller than the (dilated) kernel "
                             f"{tuple(eff)} with padding={self.padding!r}")
        inputs = (x, weight) if bias is None else (x, weight, bias)
        return apply(_conv, inputs, {"stride": self.strides, "padding": pads,
                                     "dilation": self.dilation_rate, "groups": groups})

    def _run(self, inputs: Tensor, weight: Tensor, bias, groups: int) -> Tensor:
        if self.data_format == "channels_last":
            x = _to_channels_first(inputs, self.rank)
            return _to_channels_last(self._conv(x, weight, bias, groups), self.rank)
        return self._conv(inputs, weight, bias, groups)

    def _common_config(self) -> dict:
        return {"kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate}


def _torch_weight(kernel: Tensor, rank: int) -> Tensor:
    """Keras ``(*k, in, out)`` -> ember/PyTorch ``(out, in, *k)`` (a view)."""
    return kernel.permute(rank + 1, rank, *range(rank))


class _Conv(_ConvBase):
    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 data_format=None, dilation_rate=1, groups: int = 1, activation=None,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        allowed = ("valid", "same", "causal") if self.rank == 1 else ("valid", "same")
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias, bias_initializer, bias_regularizer, activity_regularizer,
                         bias_constraint, allowed_padding=allowed, **kwargs)
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"{type(self).__name__}: invalid value for argument `filters`, "
                             f"expected a strictly positive value, got filters={filters!r}")
        if not isinstance(groups, int) or groups <= 0 or filters % groups:
            raise ValueError(f"{type(self).__name__}: the number of filters must be evenly "
                             f"divisible by the number of groups, got groups={groups!r}, "
                             f"filters={filters}")
        self.filters, self.groups = filters, groups
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.kernel_constraint = _get_constraint(kernel_constraint)

    def build(self, input_shape) -> None:
        cin = self._in_channels(input_shape)
        if cin % self.groups:
            raise ValueError(f"{type(self).__name__} \"{self.name}\": the number of input "
                             f"channels ({cin}) must be divisible by groups={self.groups}")
        self.kernel = self.add_weight(shape=self.kernel_size + (cin // self.groups,
                                                                self.filters),
                                      name="kernel", initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.filters,), name="bias",
                                        initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        else:
            self.bias = None
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        self._check_input(inputs, self.kernel.shape[-2] * self.groups)
        y = self._run(inputs, _torch_weight(self.kernel, self.rank), self.bias, self.groups)
        return self._finish(y)

    def compute_output_shape(self, input_shape) -> tuple:
        spatial = [conv_output_length(n, k, self.padding, s, d) for n, k, s, d in zip(
            self._spatial(input_shape), self.kernel_size, self.strides, self.dilation_rate)]
        return self._with(input_shape, spatial, self.filters)

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, **self._common_config(),
                "groups": self.groups, **_dense_config(self, activity=True)}


class Conv1D(_Conv):
    """1-D convolution over ``(batch, steps, channels)``; padding valid, same or causal."""
    rank = 1


class Conv2D(_Conv):
    """2-D convolution over ``(batch, height, width, channels)``; kernel ``(kh, kw, in, out)``."""
    rank = 2


class Conv3D(_Conv):
    """3-D convolution over ``(batch, d1, d2, d3, channels)``."""
    rank = 3


class _ConvTranspose(_ConvBase):
    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 output_padding=None, data_format=None, dilation_rate=1, activation=None,
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias, bias_initializer, bias_regularizer, activity_regularizer,
                         bias_constraint, **kwargs)
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"{type(self).__name__}: invalid value for argument `filters`, "
                             f"expected a strictly positive value, got filters={filters!r}")
        self.filters = filters
        self.output_padding = None if output_padding is None else _ntuple(
            self, "output_padding", output_padding, self.rank, 0)
        if self.output_padding is not None:
            for op, s in zip(self.output_padding, self.strides):
                if op >= s:
                    raise ValueError(f"{type(self).__name__}: output_padding "
                                     f"{self.output_padding} must be smaller than strides "
                                     f"{self.strides}")
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.kernel_constraint = _get_constraint(kernel_constraint)

    def build(self, input_shape) -> None:
        cin = self._in_channels(input_shape)
        self.kernel = self.add_weight(shape=self.kernel_size + (self.filters, cin),
                                      name="kernel", initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.filters,), name="bias",
                                        initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        else:
            self.bias = None
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        self._check_input(inputs, self.kernel.shape[-1])
        r = self.rank
        x = _to_channels_first(inputs, r) if self.data_format == "channels_last" else inputs
        pads, extra = [], []
        ops_ = self.output_padding or (None,) * r
        for k, s, d, op in zip(self.kernel_size, self.strides, self.dilation_rate, ops_):
            p, e = _transpose_pads(k, s, d, self.padding, op)
            pads.append(p)
            extra.append(e)
        # Keras (*k, out, in) -> ember's transposed layout (in, out, *k)
        w = self.kernel.permute(r + 1, r, *range(r))
        inputs_ = (x, w) if self.bias is None else (x, w, self.bias)
        y = apply(_conv_transpose, inputs_, {"stride": self.strides, "padding": tuple(pads),
                                             "output_padding": tuple(extra),
                                             "dilation": self.dilation_rate, "groups": 1})
        if self.data_format == "channels_last":
            y = _to_channels_last(y, r)
        return self._finish(y)

    def compute_output_shape(self, input_shape) -> tuple:
        ops_ = self.output_padding or (None,) * self.rank
        spatial = [deconv_output_length(n, k, self.padding, op, s, d) for n, k, s, d, op in zip(
            self._spatial(input_shape), self.kernel_size, self.strides, self.dilation_rate,
            ops_)]
        return self._with(input_shape, spatial, self.filters)

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, **self._common_config(),
                "output_padding": self.output_padding, **_dense_config(self, activity=True)}


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution; kernel ``(k, filters, in)``."""
    rank = 1


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution (upsampling); kernel ``(kh, kw, filters, in)``."""
    rank = 2


class Conv3DTranspose(_ConvTranspose):
    """Transposed 3-D convolution; kernel ``(k1, k2, k3, filters, in)``."""
    rank = 3


def _depthwise_weight(kernel: Tensor, rank: int) -> Tensor:
    """Keras ``(*k, in, mult)`` -> grouped ``(in*mult, 1, *k)``; output channel ``c*mult+m``."""
    *k, cin, mult = kernel.shape
    w = kernel.reshape(tuple(k) + (cin * mult,))
    return w.permute(rank, *range(rank)).unsqueeze(1)


class _DepthwiseConv(_ConvBase):
    def __init__(self, kernel_size, strides=1, padding: str = "valid", depth_multiplier: int = 1,
                 data_format=None, dilation_rate=1, activation=None, use_bias: bool = True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias, bias_initializer, bias_regularizer, activity_regularizer,
                         bias_constraint, **kwargs)
        if not isinstance(depth_multiplier, int) or depth_multiplier <= 0:
            raise ValueError(f"{type(self).__name__}: depth_multiplier must be a positive "
                             f"integer, got {depth_multiplier!r}")
        self.depth_multiplier = depth_multiplier
        self.depthwise_initializer = _initializers.get(depthwise_initializer)
        self.depthwise_regularizer = _regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = _get_constraint(depthwise_constraint)

    def build(self, input_shape) -> None:
        cin = self._in_channels(input_shape)
        self.kernel = self.add_weight(shape=self.kernel_size + (cin, self.depth_multiplier),
                                      name="kernel", initializer=self.depthwise_initializer,
                                      regularizer=self.depthwise_regularizer,
                                      constraint=self.depthwise_constraint)
        if self.use_bias:
            self.bias = self.add_weight(shape=(cin * self.depth_multiplier,), name="bias",
                                        initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        else:
            self.bias = None
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        cin = self.kernel.shape[-2]
        self._check_input(inputs, cin)
        y = self._run(inputs, _depthwise_weight(self.kernel, self.rank), self.bias, cin)
        return self._finish(y)

    def compute_output_shape(self, input_shape) -> tuple:
        spatial = [conv_output_length(n, k, self.padding, s, d) for n, k, s, d in zip(
            self._spatial(input_shape), self.kernel_size, self.strides, self.dilation_rate)]
        c = input_shape[self._channel_axis()]
        return self._with(input_shape, spatial, None if c is None else c * self.depth_multiplier)

    def get_config(self) -> dict:
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier,
                **self._common_config(),
                "activation": _activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "depthwise_initializer": _ser_init(self.depthwise_initializer),
                "bias_initializer": _ser_init(self.bias_initializer),
                "depthwise_regularizer": _ser_reg(self.depthwise_regularizer),
                "bias_regularizer": _ser_reg(self.bias_regularizer),
                "activity_regularizer": _ser_reg(self.activity_regularizer),
                "depthwise_constraint": _ser_constraint(self.depthwise_constraint),
                "bias_constraint": _ser_constraint(self.bias_constraint)}


class DepthwiseConv1D(_DepthwiseConv):
    """Per-channel 1-D convolution; kernel ``(k, in, depth_multiplier)``."""
    rank = 1


class DepthwiseConv2D(_DepthwiseConv):
    """Per-channel 2-D convolution; kernel ``(kh, kw, in, depth_multiplier)``."""
    rank = 2


class _SeparableConv(_ConvBase):
    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 data_format=None, dilation_rate=1, depth_multiplier: int = 1, activation=None,
                 use_bias: bool = True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, pointwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias, bias_initializer, bias_regularizer, activity_regularizer,
                         bias_constraint, **kwargs)
        if not isinstance(filters, int) or filters <= 0:
            raise ValueError(f"{type(self).__name__}: invalid value for argument `filters`, "
                             f"expected a strictly positive value, got filters={filters!r}")
        if not isinstance(depth_multiplier, int) or depth_multiplier <= 0:
            raise ValueError(f"{type(self).__name__}: depth_multiplier must be a positive "
                             f"integer, got {depth_multiplier!r}")
        self.filters, self.depth_multiplier = filters, depth_multiplier
        self.depthwise_initializer = _initializers.get(depthwise_initializer)
        self.pointwise_initializer = _initializers.get(pointwise_initializer)
        self.depthwise_regularizer = _regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = _regularizers.get(pointwise_regularizer)
        self.depthwise_constraint = _get_constraint(depthwise_constraint)
        self.pointwise_constraint = _get_constraint(pointwise_constraint)

    def build(self, input_shape) -> None:
        cin = self._in_channels(input_shape)
        dm = self.depth_multiplier
        self.depthwise_kernel = self.add_weight(
            shape=self.kernel_size + (cin, dm), name="depthwise_kernel",
            initializer=self.depthwise_initializer, regularizer=self.depthwise_regularizer,
            constraint=self.depthwise_constraint)
        self.pointwise_kernel = self.add_weight(
            shape=(1,) * self.rank + (cin * dm, self.filters), name="pointwise_kernel",
            initializer=self.pointwise_initializer, regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint)
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.filters,), name="bias",
                                        initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)
        else:
            self.bias = None
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        cin = self.depthwise_kernel.shape[-2]
        self._check_input(inputs, cin)
        r = self.rank
        x = _to_channels_first(inputs, r) if self.data_format == "channels_last" else inputs
        y = self._conv(x, _depthwise_weight(self.depthwise_kernel, r), None, cin)
        pw = _torch_weight(self.pointwise_kernel, r)
        inputs_ = (y, pw) if self.bias is None else (y, pw, self.bias)
        y = apply(_conv, inputs_, {"stride": (1,) * r, "padding": ((0, 0),) * r,
                                   "dilation": (1,) * r, "groups": 1})
        if self.data_format == "channels_last":
            y = _to_channels_last(y, r)
        return self._finish(y)

    def compute_output_shape(self, input_shape) -> tuple:
        spatial = [conv_output_length(n, k, self.padding, s, d) for n, k, s, d in zip(
            self._spatial(input_shape), self.kernel_size, self.strides, self.dilation_rate)]
        return self._with(input_shape, spatial, self.filters)

    def get_config(self) -> dict:
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier,
                "filters": self.filters, **self._common_config(),
                "activation": _activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "depthwise_initializer": _ser_init(self.depthwise_initializer),
                "pointwise_initializer": _ser_init(self.pointwise_initializer),
                "bias_initializer": _ser_init(self.bias_initializer),
                "depthwise_regularizer": _ser_reg(self.depthwise_regularizer),
                "pointwise_regularizer": _ser_reg(self.pointwise_regularizer),
                "bias_regularizer": _ser_reg(self.bias_regularizer),
                "activity_regularizer": _ser_reg(self.activity_regularizer),
                "depthwise_constraint": _ser_constraint(self.depthwise_constraint),
                "pointwise_constraint": _ser_constraint(self.pointwise_constraint),
                "bias_constraint": _ser_constraint(self.bias_constraint)}


class SeparableConv1D(_SeparableConv):
    """Depthwise then pointwise 1-D convolution."""
    rank = 1


class SeparableConv2D(_SeparableConv):
    """Depthwise (per channel) then pointwise (1x1) 2-D convolution."""
    rank = 2


# Keras's long aliases
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
Convolution2DTranspose, SeparableConvolution2D = Conv2DTranspose, SeparableConv2D
