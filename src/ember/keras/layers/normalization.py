"""BatchNormalization and LayerNormalization with Keras 3's weights, defaults and update rules.

BatchNormalization keeps ``gamma, beta`` (trainable) and ``moving_mean, moving_variance``
(non-trainable buffers). In training (and only while the layer is ``trainable``) it normalises
with the batch mean and *biased* variance and updates ``moving = moving * momentum + batch *
(1 - momentum)`` with those same statistics; otherwise it uses the moving statistics.
"""
from __future__ import annotations

import numpy as np

from ... import _state
from ...ops import normalization as _norm
from ...tensor import Tensor
from .. import initializers as _initializers
from .. import regularizers as _regularizers
from .layer import Layer, _get_constraint, _ser_constraint, _ser_init, _ser_reg

__all__ = ["BatchNormalization", "LayerNormalization"]


def _axes_list(axis) -> list:
    return [int(a) for a in axis] if isinstance(axis, (list, tuple)) else [int(axis)]


def _positive_axes(layer, axes: list, ndim: int) -> list:
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{type(layer).__name__} \"{layer.name}\": invalid axis {a} for an "
                             f"input of rank {ndim}")
        out.append(a % ndim)
    return sorted(out)


def _as_mask(mask, like: Tensor) -> Tensor:
    m = mask if isinstance(mask, Tensor) else Tensor._wrap(np.asarray(mask))
    return m.to(like.dtype)


class BatchNormalization(Layer):
    """Normalises each feature on ``axis`` (-1: channels-last) with batch or moving statistics."""

    _float_inputs = True

    supports_masking = True

    def __init__(self, axis=-1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis) if not isinstance(axis, (list, tuple)) else _axes_list(axis)
        self.momentum, self.epsilon = float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        self.moving_mean_initializer = _initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = _initializers.get(moving_variance_initializer)
        self.beta_regularizer = _regularizers.get(beta_regularizer)
        self.gamma_regularizer = _regularizers.get(gamma_regularizer)
        self.beta_constraint = _get_constraint(beta_constraint)
        self.gamma_constraint = _get_constraint(gamma_constraint)

    def build(self, input_shape) -> None:
        ndim = len(input_shape)
        axes = _positive_axes(self, _axes_list(self.axis), ndim)
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(f"BatchNormalization \"{self.name}\": axis {self.axis} of input "
                             f"shape {tuple(input_shape)} must be known to build")
        self._feature_axes = axes
        kw = {"shape": shape}
        if self.scale:
            self.gamma = self.add_weight(name="gamma", initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint, **kw)
        else:
            self.gamma = None
        if self.center:
            self.beta = self.add_weight(name="beta", initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint, **kw)
        else:
            self.beta = None
        self.moving_mean = self.add_weight(name="moving_mean", trainable=False,
                                           initializer=self.moving_mean_initializer, **kw)
        self.moving_variance = self.add_weight(name="moving_variance", trainable=False,
                                               initializer=self.moving_variance_initializer,
                                               **kw)
        self.built = True

    def call(self, inputs: Tensor, training=None, mask=None) -> Tensor:
        axes = self._feature_axes
        if not isinstance(inputs, Tensor) or inputs.ndim <= max(axes) or tuple(
                inputs.shape[a] for a in axes) != tuple(self.moving_mean.shape):
            raise self._input_error(inputs, f"axis {self.axis} of size "
                                            f"{tuple(self.moving_mean.shape)}")
        if mask is not None and _as_mask(mask, inputs).ndim != inputs.ndim - 1:
            raise ValueError(f"BatchNormalization \"{self.name}\": the mask should have one "
                             f"dimension less than the inputs, got mask shape "
                             f"{tuple(mask.shape)} and inputs shape {tuple(inputs.shape)}")
        use_batch = bool(training) and self.trainable
        nd = inputs.ndim
        fast = mask is None and len(axes) == 1 and (axes[0] == nd - 1 or axes[0] == 1) \
            and nd >= 2
        if fast:
            return self._fused(inputs, axes[0], use_batch)
        return self._composed(inputs, axes, use_batch, mask)

    def _fused(self, x: Tensor, axis: int, use_batch: bool) -> Tensor:
        """Ember's fused batch_norm primitive over ``(N, C, *)``; channels-last is viewed as
        ``(N*H*W, C)``, which is the same normalisation."""
        c = x.shape[axis]
        flat = x.reshape(-1, c) if axis == x.ndim - 1 and x.ndim != 2 else x
        if use_batch:
            y = _norm.batch_norm(flat, None, None, self.gamma, self.beta, True, 0.0,
                                 self.epsilon)
            self._update(flat.detach(), [a for a in range(flat.ndim) if a != 1], None)
        else:
            y = _norm.batch_norm(flat, self.moving_mean, self.moving_variance, self.gamma,
                                 self.beta, False, 0.0, self.epsilon)
        return y.reshape(x.shape) if flat is not x else y

    def _composed(self, x: Tensor, axes: list, use_batch: bool, mask) -> Tensor:
        nd = x.ndim
        red = [a for a in range(nd) if a not in axes]
        bshape = [x.shape[a] if a in axes else 1 for a in range(nd)]
        if use_batch:
            mean, var = self._moments(x, red, mask)
            self._update_from(mean.detach(), var.detach())
            mean, var = mean.reshape(bshape), var.reshape(bshape)
        else:
            mean = self.moving_mean.reshape(bshape)
            var = self.moving_variance.reshape(bshape)
        inv = (var + self.epsilon).rsqrt()
        if self.gamma is not None:
            inv = inv * self.gamma.reshape(bshape)
        y = (x - mean) * inv
        return y + self.beta.reshape(bshape) if self.beta is not None else y

    def _moments(self, x: Tensor, red: list, mask):
        if mask is None:
            mean = x.mean(red)
            var = ((x - x.mean(red, keepdim=True)) ** 2).mean(red)
            return mean, var
        from ..backend import epsilon
        m = _as_mask(mask, x).unsqueeze(-1).expand(x.shape)
        weight = m.sum(red, keepdim=True) + epsilon()
        mean = (x * m).sum(red, keepdim=True) / weight
        var = (((x - mean) * m) ** 2).sum(red, keepdim=True) / weight
        return mean.reshape(self.moving_mean.shape), var.reshape(self.moving_mean.shape)

    def _update(self, x: Tensor, red: list, mask) -> None:
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            mean, var = self._moments(x, red, mask)
        finally:
            _state.grad_enabled = prev
        self._update_from(mean, var)

    def _update_from(self, mean: Tensor, var: Tensor) -> None:
        m = self.momentum
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            self.moving_mean.copy_(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.copy_(self.moving_variance * m + var * (1.0 - m))
        finally:
            _state.grad_enabled = prev

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": _ser_init(self.beta_initializer),
                "gamma_initializer": _ser_init(self.gamma_initializer),
                "moving_mean_initializer": _ser_init(self.moving_mean_initializer),
                "moving_variance_initializer": _ser_init(self.moving_variance_initializer),
                "beta_regularizer": _ser_reg(self.beta_regularizer),
                "gamma_regularizer": _ser_reg(self.gamma_regularizer),
                "beta_constraint": _ser_constraint(self.beta_constraint),
                "gamma_constraint": _ser_constraint(self.gamma_constraint)}


class LayerNormalization(Layer):
    """Normalises each sample over ``axis`` (-1 by default) with ``epsilon`` 1e-3.

    ``rms_scaling`` (Keras's definition) divides by ``sqrt(variance + epsilon)`` without
    centring and uses ``gamma`` only.
    """

    _float_inputs = True

    supports_masking = True

    def __init__(self, axis=-1, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 rms_scaling: bool = False, beta_initializer="zeros", gamma_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axes_list(axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.epsilon = float(epsilon)
        self.center, self.scale, self.rms_scaling = bool(center), bool(scale), bool(rms_scaling)
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        self.beta_regularizer = _regularizers.get(beta_regularizer)
        self.gamma_regularizer = _regularizers.get(gamma_regularizer)
        self.beta_constraint = _get_constraint(beta_constraint)
        self.gamma_constraint = _get_constraint(gamma_constraint)

    def build(self, input_shape) -> None:
        axes = _positive_axes(self, _axes_list(self.axis), len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(f"LayerNormalization \"{self.name}\": axis {self.axis} of input "
                             f"shape {tuple(input_shape)} must be known to build")
        self._norm_axes = axes
        if self.scale or self.rms_scaling:
            self.gamma = self.add_weight(name="gamma", shape=shape,
                                         initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        else:
            self.gamma = None
        if self.center and not self.rms_scaling:
            self.beta = self.add_weight(name="beta", shape=shape,
                                        initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        else:
            self.beta = None
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        axes = self._norm_axes
        nd = inputs.ndim if isinstance(inputs, Tensor) else -1
        shape = tuple(self.gamma.shape if self.gamma is not None else
                      self.beta.shape if self.beta is not None else ())
        if nd <= max(axes) or (shape and tuple(inputs.shape[a] for a in axes) != shape):
            raise self._input_error(inputs, f"axis {self.axis} of size {shape}")
        trailing = axes == list(range(nd - len(axes), nd))
        if trailing and not self.rms_scaling:
            ns = tuple(inputs.shape[a] for a in axes)
            return _norm.layer_norm(inputs, ns, self.gamma, self.beta, self.epsilon)
        bshape = [inputs.shape[a] if a in axes else 1 for a in range(nd)]
        mean = inputs.mean(axes, keepdim=True)
        var = ((inputs - mean) ** 2).mean(axes, keepdim=True)
        inv = (var + self.epsilon).rsqrt()
        if self.rms_scaling:
            y = inputs * inv
            return y * self.gamma.reshape(bshape) if self.gamma is not None else y
        if self.gamma is not None:
            inv = inv * self.gamma.reshape(bshape)
        y = (inputs - mean) * inv
        return y + self.beta.reshape(bshape) if self.beta is not None else y

    def compute_output_shape(self, input_shape) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "rms_scaling": self.rms_scaling,
                "beta_initializer": _ser_init(self.beta_initializer),
                "gamma_initializer": _ser_init(self.gamma_initializer),
                "beta_regularizer": _ser_reg(self.beta_regularizer),
                "gamma_regularizer": _ser_reg(self.gamma_regularizer),
                "beta_constraint": _ser_constraint(self.beta_constraint),
                "gamma_constraint": _ser_constraint(self.gamma_constraint)}
