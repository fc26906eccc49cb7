"""Pooling layers with Keras's conventions: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D and the
global poolings (channels-last by default; ``strides`` default to ``pool_size``; "same" padding
ignores the padded cells, as TensorFlow does)."""
from __future__ import annotations

import numpy as np

from ...ops import pooling as _pool
from ...ops.shape import pad as _pad
from ...tensor import Tensor
from .convolutional import _to_channels_first, _to_channels_last, conv_output_length
from .layer import Layer, _data_format, _ntuple, _padding

__all__ = ["MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
           "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
           "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D",
           "GlobalMaxPooling2D", "GlobalMaxPooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D",
           "AvgPool1D", "AvgPool2D", "AvgPool3D", "GlobalAvgPool1D", "GlobalAvgPool2D",
           "GlobalMaxPool1D", "GlobalMaxPool2D"]

_MAX = {1: _pool.max_pool1d, 2: _pool.max_pool2d, 3: _pool.max_pool3d}
_AVG = {1: _pool.avg_pool1d, 2: _pool.avg_pool2d, 3: _pool.avg_pool3d}


def _same_pool_pads(n: int, k: int, s: int) -> tuple:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class _Pooling(Layer):
    _float_inputs = True
    rank = 2
    _kind = "max"

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        r = self.rank
        self.pool_size = _ntuple(self, "pool_size", pool_size, r)
        self.strides = self.pool_size if strides is None else _ntuple(self, "strides",
                                                                      strides, r)
        self.padding = _padding(self, padding)
        self.data_format = _data_format(self, data_format)

    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def call(self, inputs: Tensor) -> Tensor:
        r = self.rank
        if not isinstance(inputs, Tensor) or inputs.ndim != r + 2:
            raise self._input_error(inputs, f"ndim={r + 2} (batch, spatial x{r}, channels)")
        x = _to_channels_first(inputs, r) if self.data_format == "channels_last" else inputs
        sp = tuple(x.shape[2:])
        if self.padding == "valid":
            if any(n < k for n, k in zip(sp, self.pool_size)):
                raise self._input_error(inputs, f"spatial dims at least pool_size="
                                                f"{self.pool_size}")
            fn = _MAX[r] if self._kind == "max" else _AVG[r]
            y = fn(x, self.pool_size, self.strides)
        else:
            y = self._same(x, sp)
        return _to_channels_last(y, r) if self.data_format == "channels_last" else y

    def _same(self, x: Tensor, sp: tuple) -> Tensor:
        r = self.rank
        pads = [_same_pool_pads(n, k, s) for n, k, s in zip(sp, self.pool_size, self.strides)]
        flat = []
        for lo, hi in reversed(pads):  # F.pad lists the last dim first
            flat += [lo, hi]
        if self._kind == "max":
            fill = -np.inf if x.is_floating_point() else np.iinfo(x._data.dtype).min
            return _MAX[r](_pad(x, flat, value=float(fill)), self.pool_size, self.strides)
        # average only over real cells: sum over the zero-padded window / count of real cells
        y = _AVG[r](_pad(x, flat), self.pool_size, self.strides)
        counts = np.ones((), x._data.dtype)
        for ax, (n, k, s, (lo, _)) in enumerate(zip(sp, self.pool_size, self.strides, pads)):
            start = np.arange(y.shape[2 + ax]) * s
            c = np.minimum(start + k, lo + n) - np.maximum(start, lo)
            counts = counts[..., None] * c.astype(x._data.dtype)
        k = self.pool_size
        scale = Tensor._wrap(np.prod(k) / counts).to(x.dtype)
        return y * scale

    def compute_output_shape(self, input_shape) -> tuple:
        if self.data_format == "channels_last":
            sp, c = input_shape[1:-1], input_shape[-1]
        else:
            sp, c = input_shape[2:], input_shape[1]
        out = [conv_output_length(n, k, self.padding, s, 1)
               for n, k, s in zip(sp, self.pool_size, self.strides)]
        if self.data_format == "channels_last":
            return (input_shape[0],) + tuple(out) + (c,)
        return (input_shape[0], c) + tuple(out)

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": self.pool_size, "padding": self.padding,
                "strides": self.strides, "data_format": self.data_format}


class MaxPooling1D(_Pooling):
    """Max over windows of ``(batch, steps, channels)``."""
    rank, _kind = 1, "max"


class MaxPooling2D(_Pooling):
    """Max over ``pool_size`` windows of ``(batch, height, width, channels)``."""
    rank, _kind = 2, "max"


class MaxPooling3D(_Pooling):
    """Max over windows of ``(batch, d1, d2, d3, channels)``."""
    rank, _kind = 3, "max"


class AveragePooling1D(_Pooling):
    """Mean over windows of ``(batch, steps, channels)``."""
    rank, _kind = 1, "avg"


class AveragePooling2D(_Pooling):
    """Mean over ``pool_size`` windows of ``(batch, height, width, channels)``."""
    rank, _kind = 2, "avg"


class AveragePooling3D(_Pooling):
    """Mean over windows of ``(batch, d1, d2, d3, channels)``."""
    rank, _kind = 3, "avg"


class _GlobalPooling(Layer):
    _float_inputs = True
    rank = 2
    _kind = "avg"

    def __init__(self, data_format=None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(self, data_format)
        self.keepdims = bool(keepdims)
        self.supports_masking = self.rank == 1 and self._kind == "avg"

    def _axes(self) -> tuple:
        r = self.rank
        return tuple(range(1, r + 1)) if self.data_format == "channels_last" else \
            tuple(range(2, r + 2))

    def call(self, inputs: Tensor, mask=None) -> Tensor:
        if not isinstance(inputs, Tensor) or inputs.ndim != self.rank + 2:
            raise self._input_error(inputs, f"ndim={self.rank + 2}")
        axes = self._axes()
        if self._kind == "max":
            return inputs.amax(axes, keepdim=self.keepdims)
        if mask is not None and self.rank == 1:
            # Keras averages over the unmasked steps only
            m = mask if isinstance(mask, Tensor) else Tensor._wrap(np.asarray(mask))
            m = m.to(inputs.dtype)
            m = m.unsqueeze(-1) if self.data_format == "channels_last" else m.unsqueeze(1)
            return (inputs * m).sum(axes, keepdim=self.keepdims) / m.sum(
                axes, keepdim=self.keepdims)
        return inputs.mean(axes, keepdim=self.keepdims)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape) -> tuple:
        axes = self._axes()
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(input_shape))
        return tuple(d for i, d in enumerate(input_shape) if i not in axes)

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the steps axis (masked steps excluded)."""
    rank, _kind = 1, "avg"


class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over height and width."""
    rank, _kind = 2, "avg"


class GlobalAveragePooling3D(_GlobalPooling):
    """Mean over the three spatial axes."""
    rank, _kind = 3, "avg"


class GlobalMaxPooling1D(_GlobalPooling):
    """Max over the steps axis."""
    rank, _kind = 1, "max"


class GlobalMaxPooling2D(_GlobalPooling):
    """Max over height and width."""
    rank, _kind = 2, "max"


class GlobalMaxPooling3D(_GlobalPooling):
    """Max over the three spatial axes."""
    rank, _kind = 3, "max"


# Keras's short aliases
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
