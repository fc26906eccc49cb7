"""``keras.Input`` and ``InputLayer``: the symbolic entry points of a functional model.

A :class:`KerasTensor` holds no data: only a shape (``None`` for the batch and any other
unknown size), a dtype and its *history*: the layer call (:class:`Node`) that produced it.
Calling a layer on KerasTensors builds the layer and records a Node instead of computing
(``keras.layers.Layer.__call__`` hands such calls to :meth:`KerasTensor._symbolic_call`), so
``Model(inputs, outputs)`` can walk the histories back from the outputs to find the graph.
"""
from __future__ import annotations

import collections
import itertools

import numpy as np

from ... import dtypes as _dt
from ..layers.layer import Layer

__all__ = ["KerasTensor", "KerasHistory", "Node", "Input", "InputLayer", "is_keras_tensor"]

KerasHistory = collections.namedtuple("KerasHistory", ["operation", "node_index",
                                                       "tensor_index"])
KerasHistory.__doc__ = "Which layer call made a KerasTensor: ``layer._inbound_nodes[node_index]``."

_tensor_uids = itertools.count()


def _standardize_dtype(dtype) -> str:
    if dtype is None:
        from ..backend import floatx
        return floatx()
    if isinstance(dtype, str) and dtype in ("float", "int", "bool"):
        dtype = {"float": "float32", "int": "int64", "bool": "bool"}[dtype]
    try:
        return _dt.as_dtype(dtype).name
    except TypeError:
        try:
            return np.dtype(dtype).name
        except TypeError:
            raise ValueError(f"keras.Input: unknown dtype {dtype!r}") from None


def _standardize_shape(shape, who: str) -> tuple:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"{who}: shape must be a tuple of ints or None, got {shape!r}") from None
    out = []
    for d in dims:
        if d is None:
            out.append(None)
        elif isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0:
            out.append(int(d))
        else:
            raise ValueError(f"{who}: every dimension must be a non-negative int or None, got "
                             f"shape={shape!r}")
    return tuple(out)


class KerasTensor:
    """A symbolic tensor: ``shape`` (batch first, ``None`` = unknown), ``dtype``, ``name``."""

    _keras_symbolic = True  # the marker Layer.__call__ looks for

    def __init__(self, shape, dtype=None, name: str | None = None) -> None:
        self.shape = _standardize_shape(shape, "KerasTensor")
        self.dtype = _standardize_dtype(dtype)
        if name is None:
            n = next(_tensor_uids)
            name = "keras_tensor" if n == 0 else f"keras_tensor_{n}"
        self.name = name
        self._keras_history = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @staticmethod
    def _symbolic_call(layer, args: tuple, kwargs: dict):
        """``layer(*args, **kwargs)`` on KerasTensors: build the layer and record a Node."""
        from .functional import symbolic_call
        return symbolic_call(layer, args, kwargs)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __bool__(self) -> bool:
        raise TypeError(f"A symbolic KerasTensor ({self.name}, shape {self.shape}) has no value: "
                        f"it cannot be used in Python control flow (if/while/and/or). Compute "
                        f"with layers, or write a subclassed Model whose call() sees real "
                        f"tensors.")

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"A symbolic KerasTensor ({self.name}, shape {self.shape}) cannot be "
                        f"converted to a NumPy array: it only describes the input of a "
                        f"functional model. Call the model on real data instead.")

    def _no_math(self, *args, **kwargs):
        raise TypeError(f"Arithmetic on a symbolic KerasTensor ({self.name}, shape "
                        f"{self.shape}) is not supported by ember.keras: use layers "
                        f"(keras.layers.Add, Multiply, Rescaling, Activation...) in the "
                        f"functional graph, or a subclassed Model.")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _no_math
    __truediv__ = __rtruediv__ = __matmul__ = __rmatmul__ = __pow__ = __neg__ = _no_math
    __getitem__ = _no_math


def is_keras_tensor(x) -> bool:
    """Whether ``x`` is a symbolic KerasTensor (made by ``keras.Input`` or a layer on one)."""
    return isinstance(x, KerasTensor)


def _flatten(obj) -> list:
    """The leaves of a nested list/tuple/dict structure, in Keras's order (dicts by key)."""
    if isinstance(obj, (list, tuple)):
        return [leaf for x in obj for leaf in _flatten(x)]
    if isinstance(obj, dict):
        return [leaf for k in sorted(obj) for leaf in _flatten(obj[k])]
    return [obj]


def _pack_as(structure, flat_iter):
    """Rebuild ``structure`` with the leaves taken in order from ``flat_iter``."""
    if isinstance(structure, (list, tuple)):
        return type(structure)(_pack_as(x, flat_iter) for x in structure)
    if isinstance(structure, dict):
        packed = {k: _pack_as(structure[k], flat_iter) for k in sorted(structure)}
        return {k: packed[k] for k in structure}
    return next(flat_iter)


class Node:
    """One call of a layer on symbolic inputs: ``operation(*call_args, **call_kwargs)``."""

    def __init__(self, operation, call_args: tuple = (), call_kwargs: dict | None = None,
                 outputs=None) -> None:
        self.operation = operation
        self.call_args = tuple(call_args)
        self.call_kwargs = dict(call_kwargs or {})
        self.output_structure = outputs
        self.outputs = [] if outputs is None else _flatten(outputs)
        self.input_tensors = [x for x in _flatten([list(self.call_args),
                                                   [self.call_kwargs[k] for k in
                                                    sorted(self.call_kwargs)]])
                              if isinstance(x, KerasTensor)]
        self.is_input = not self.input_tensors
        nodes = operation.__dict__.setdefault("_inbound_nodes", [])
        nodes.append(self)
        index = len(nodes) - 1
        for i, t in enumerate(self.outputs):
            t._keras_history = KerasHistory(operation, index, i)

    @property
    def output_tensors(self) -> list:
        return self.outputs

    def output_structure_in(self):
        """The call's symbolic inputs: one KerasTensor, or the list of them."""
        return self.input_tensors[0] if len(self.input_tensors) == 1 else list(
            self.input_tensors)

    @property
    def parent_nodes(self) -> list:
        """The nodes whose outputs this node reads."""
        out = []
        for t in self.input_tensors:
            op, index, _ = t._keras_history
            out.append(op._inbound_nodes[index])
        return out

    def fill_in(self, values: dict) -> tuple:
        """``(args, kwargs)`` with each KerasTensor replaced by ``values[id(tensor)]``."""
        def sub(x):
            if isinstance(x, KerasTensor):
                return values[id(x)]
            if isinstance(x, (list, tuple)):
                return type(x)(sub(v) for v in x)
            if isinstance(x, dict):
                return {k: sub(v) for k, v in x.items()}
            return x
        return tuple(sub(a) for a in self.call_args), {k: sub(v)
                                                        for k, v in self.call_kwargs.items()}

    def __repr__(self) -> str:
        return f"<Node operation={self.operation.name}, id={id(self)}>"


class InputLayer(Layer):
    """The layer behind ``keras.Input``: it has no weights and outputs its KerasTensor."""

    def __init__(self, shape=None, batch_size: int | None = None, dtype=None, sparse=None,
                 batch_shape=None, input_tensor=None, optional: bool = False,
                 name: str | None = None, **kwargs) -> None:
        if "input_shape" in kwargs:  # Keras 2 spelling
            shape = kwargs.pop("input_shape")
        if "batch_input_shape" in kwargs:
            batch_shape = kwargs.pop("batch_input_shape")
        kwargs.pop("ragged", None)
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to InputLayer: {kwargs}")
        if sparse:
            raise ValueError("InputLayer: sparse=True is not supported by ember (no sparse "
                             "tensors)")
        super().__init__(name=name)
        if input_tensor is not None:
            if not isinstance(input_tensor, KerasTensor):
                raise ValueError(f"InputLayer: input_tensor must be a KerasTensor, got "
                                 f"{type(input_tensor).__name__}")
            batch_shape, dtype = input_tensor.shape, input_tensor.dtype
        else:
            if shape is not None and batch_shape is not None:
                raise ValueError("InputLayer: you cannot pass both `shape` and `batch_shape`")
            if batch_size is not None and batch_shape is not None:
                raise ValueError("InputLayer: you cannot pass both `batch_size` and "
                                 "`batch_shape`")
            if shape is None and batch_shape is None:
                raise ValueError("InputLayer: you must pass a `shape` argument (the shape of "
                                 "one sample, without the batch size)")
            if shape is not None:
                batch_shape = (batch_size,) + _standardize_shape(shape, "keras.Input")
            batch_shape = _standardize_shape(batch_shape, "keras.Input")
        d = self.__dict__
        d["_batch_shape"] = tuple(batch_shape)
        d["_dtype"] = _standardize_dtype(dtype)
        d["optional"] = bool(optional)
        if input_tensor is None:
            input_tensor = KerasTensor(batch_shape, dtype=self._dtype, name=name)
        d["_input_tensor"] = input_tensor
        Node(self, (), {}, input_tensor)
        d["built"] = True

    @property
    def batch_shape(self) -> tuple:
        return self._batch_shape

    @property
    def output(self) -> KerasTensor:
        return self._input_tensor

    def call(self, inputs=None):
        return inputs

    def compute_output_shape(self, input_shape=None):
        return self._batch_shape

    def get_config(self) -> dict:
        return {"batch_shape": list(self._batch_shape), "dtype": self._dtype, "sparse": False,
                "ragged": False, "name": self.name, "optional": self.optional}

    @classmethod
    def from_config(cls, config: dict) -> "InputLayer":
        return cls(**config)


def Input(shape=None, batch_size: int | None = None, dtype=None, sparse=None, batch_shape=None,
          name: str | None = None, tensor=None, optional: bool = False) -> KerasTensor:
    """A symbolic input of ``shape`` (one sample, no batch dim) for a functional model.

    ``keras.Input(shape=(28, 28, 1))`` has shape ``(None, 28, 28, 1)``; ``dtype`` defaults to
    ``keras.backend.floatx()``.
    """
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse,
                       batch_shape=batch_shape, name=name, input_tensor=tensor,
                       optional=optional)
    return layer.output
