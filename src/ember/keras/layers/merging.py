"""Merging layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot, and
Keras's functional forms (``keras.layers.add([a, b])``...). Elementwise merges broadcast."""
from __future__ import annotations

import numpy as np

from ... import ops
from ...ops.arithmetic import maximum as _maximum
from ...ops.arithmetic import minimum as _minimum
from ...ops.shape import cat
from ...tensor import Tensor
from .layer import Layer, _is_shape

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot"]


def _broadcast_dim(layer, a, b):
    if a == 1:
        return b
    if b == 1 or b is None:
        return a
    if a is None or a == b:
        return b
    raise ValueError(f"{type(layer).__name__} \"{layer.name}\": inputs have incompatible "
                     f"shapes: {a} vs {b} on one axis")


class _Merge(Layer):
    """Elementwise merge of a list of at least ``_min_inputs`` tensors."""

    supports_masking = True
    _min_inputs = 2
    _max_inputs: int | None = None

    def _check_list(self, inputs) -> list:
        if not isinstance(inputs, (list, tuple)) or _is_shape(inputs):
            raise ValueError(f"{type(self).__name__} \"{self.name}\": a merge layer should be "
                             f"called on a list of inputs, got {type(inputs).__name__}")
        n = len(inputs)
        if n < self._min_inputs or (self._max_inputs is not None and n > self._max_inputs):
            want = f"exactly {self._min_inputs}" if self._max_inputs == self._min_inputs else \
                f"at least {self._min_inputs}"
            raise ValueError(f"{type(self).__name__} \"{self.name}\": a merge layer should be "
                             f"called on a list of {want} inputs, got {n} inputs")
        return list(inputs)

    def build(self, input_shape) -> None:
        self._check_list(input_shape)
        self.compute_output_shape(input_shape)
        self.built = True

    def call(self, inputs):
        inputs = self._check_list(inputs)
        try:
            np.broadcast_shapes(*[tuple(x.shape) for x in inputs])
        except ValueError:
            raise ValueError(f"{type(self).__name__} \"{self.name}\": inputs must have "
                             f"broadcast-compatible shapes, got "
                             f"{[tuple(x.shape) for x in inputs]}") from None
        return self._merge(inputs)

    def compute_output_shape(self, input_shape) -> tuple:
        shapes = [tuple(s) for s in self._check_list(input_shape)]
        rank = max(len(s) for s in shapes)
        out = [1] * rank
        try:
            for s in shapes:
                s = (1,) * (rank - len(s)) + s
                out = [_broadcast_dim(self, a, b) for a, b in zip(out, s)]
        except ValueError:
            raise ValueError(f"{type(self).__name__} \"{self.name}\": inputs must have "
                             f"broadcast-compatible shapes, got {shapes}") from None
        return tuple(out)

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        out = None
        for m in mask:
            if m is not None:
                out = m if out is None else ops.comparison.logical_and(out, m)
        return out

    def _merge(self, inputs: list) -> Tensor:
        raise NotImplementedError


class Add(_Merge):
    """Sum of the inputs."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` (exactly two inputs)."""

    _max_inputs = 2

    def _merge(self, inputs):
        return inputs[0] - inputs[1]


class Multiply(_Merge):
    """Elementwise product of the inputs."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out * x
        return out


class Average(_Merge):
    """Elementwise mean of the inputs."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out / len(inputs)


class Maximum(_Merge):
    """Elementwise maximum of the inputs."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = _maximum(out, x)
        return out


class Minimum(_Merge):
    """Elementwise minimum of the inputs."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = _minimum(out, x)
        return out


class Concatenate(_Merge):
    """Concatenates the inputs along ``axis`` (-1); all other axes must match."""

    _min_inputs = 1

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        inputs = self._check_list(inputs)
        self.compute_output_shape([tuple(x.shape) for x in inputs])
        return cat(inputs, self.axis)

    def compute_output_shape(self, input_shape) -> tuple:
        shapes = [tuple(s) for s in self._check_list(input_shape)]
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes) or not -rank <= self.axis < rank:
            raise ValueError(f"Concatenate \"{self.name}\": inputs must have the same rank and "
                             f"axis={self.axis} must be valid, got shapes {shapes}")
        ax = self.axis % rank
        out = list(shapes[0])
        for s in shapes[1:]:
            for i, (a, b) in enumerate(zip(out, s)):
                if i == ax:
                    out[i] = None if a is None or b is None else a + b
                elif a is not None and b is not None and a != b:
                    raise ValueError(f"Concatenate \"{self.name}\": a `Concatenate` layer "
                                     f"requires inputs with matching shapes except for the "
                                     f"concatenation axis {self.axis}, got inputs shapes: "
                                     f"{shapes}")
                elif a is None:
                    out[i] = b
        return tuple(out)

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        # masks are per position (the inputs' shape without the feature axis): concatenate
        # along the axis only when it is not the feature axis, otherwise AND them
        rank = inputs[0].ndim
        if self.axis % rank == rank - 1:
            return super().compute_mask(inputs, mask)
        full = [m if m is not None else Tensor._wrap(np.ones(tuple(x.shape[:-1]), bool))
                for m, x in zip(mask, inputs)]
        return cat(full, self.axis % rank)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Dot product of two samples' vectors along ``axes``; ``normalize`` takes the cosine."""

    _max_inputs = 2

    def __init__(self, axes, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        pair = (axes, axes) if isinstance(axes, int) else axes
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                and all(isinstance(a, int) for a in pair)):
            raise ValueError(f"Dot: `axes` must be an int or a list of 2 ints, got {axes!r}")
        self.axes = axes if isinstance(axes, int) else tuple(axes)
        self._pair = tuple(pair)
        self.normalize = bool(normalize)

    def _resolved(self, shapes) -> tuple:
        return tuple(a % len(s) for a, s in zip(self._pair, shapes))

    def call(self, inputs):
        a, b = self._check_list(inputs)
        ax, bx = self._resolved([a.shape, b.shape])
        if a.shape[ax] != b.shape[bx]:
            raise ValueError(f"Dot \"{self.name}\": dimension incompatibility {a.shape[ax]} != "
                             f"{b.shape[bx]} (shapes {tuple(a.shape)} and {tuple(b.shape)}, "
                             f"axes {self.axes})")
        if self.normalize:
            a = a / (a * a).sum(ax, keepdim=True).clamp_min(1e-12).sqrt()
            b = b / (b * b).sum(bx, keepdim=True).clamp_min(1e-12).sqrt()
        # batched tensordot: move the contracted axis last in a, first (after batch) in b
        a2 = a.movedim(ax, -1)
        b2 = b.movedim(bx, 1)
        ra, rb = a2.shape[1:-1], b2.shape[2:]
        n, k = a.shape[0], a2.shape[-1]
        out = a2.reshape(n, -1, k) @ b2.reshape(n, k, -1)
        out = out.reshape((n,) + tuple(ra) + tuple(rb))
        return out.unsqueeze(1) if out.ndim == 1 else out

    def compute_output_shape(self, input_shape) -> tuple:
        sa, sb = [tuple(s) for s in self._check_list(input_shape)]
        ax, bx = self._resolved([sa, sb])
        out = sa[:ax] + sa[ax + 1:] + tuple(d for i, d in enumerate(sb) if i not in (0, bx))
        return out if len(out) > 1 else out + (1,)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self) -> dict:
        axes = self.axes if isinstance(self.axes, int) else list(self.axes)
        return {**super().get_config(), "axes": axes, "normalize": self.normalize}


def add(inputs, **kwargs):
    """Functional form of :class:`Add`."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """Functional form of :class:`Subtract`."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Functional form of :class:`Multiply`."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """Functional form of :class:`Average`."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """Functional form of :class:`Maximum`."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """Functional form of :class:`Minimum`."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis: int = -1, **kwargs):
    """Functional form of :class:`Concatenate`."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize: bool = False, **kwargs):
    """Functional form of :class:`Dot`."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
