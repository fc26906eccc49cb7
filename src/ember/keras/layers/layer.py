"""``keras.layers.Layer``: Keras 3's layer API on top of ember's ``nn.Module``.

A Layer is configured in ``__init__``, creates its weights lazily in ``build(input_shape)`` with
``add_weight`` once the first input arrives, and computes in ``call``. Its weights are ember
Parameters (a :class:`Variable` subclass carrying Keras's ``name``/``path``/``trainable``) filed
in the Module registries, so Keras layers mix with ``nn`` code and their weights reach
``parameters()``, ``state_dict()``, optimisers and ``ember.jit``. Non-trainable weights
(BatchNormalization's moving statistics) are buffers: in the state dict, never optimised.

Protocol for symbolic graph building (``keras.Input``): when any argument of ``layer(...)`` is
an object whose class has ``_keras_symbolic = True``, the call is handed to
``type(obj)._symbolic_call(layer, args, kwargs)``, which builds the layer (``_maybe_build``) and
records a graph node using ``compute_output_shape``.
"""
from __future__ import annotations

import inspect
import itertools
import math
import re
import threading
import weakref
from collections import OrderedDict, defaultdict

import numpy as np

from ... import _state
from ... import dtypes as _dt
from ...nn.modules.container import ModuleList
from ...nn.modules.module import Module
from ...nn.parameter import Parameter
from ...tensor import Tensor
from .. import initializers as _initializers
from .. import regularizers as _regularizers

__all__ = ["Layer", "Variable"]

# ---------------------------------------------------------------------------------------------
# unique names, as keras.backend.clear_session() resets them

_NAME_UIDS: defaultdict = defaultdict(int)


def _to_snake_case(name: str) -> str:
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique_name(prefix: str) -> str:
    """``prefix`` the first time, then ``prefix_1``, ``prefix_2``... (Keras's ``uniquify``)."""
    n = _NAME_UIDS[prefix]
    _NAME_UIDS[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


def _reset_name_counters() -> None:
    """Forget the automatic-name counters (``keras.backend.clear_session`` calls this)."""
    _NAME_UIDS.clear()


_reset_names = _reset_name_counters  # the name keras.backend.clear_session looks for


# ---------------------------------------------------------------------------------------------
# call context: an explicit ``training=`` reaches the layers called inside, as in Keras

_CTX = threading.local()


def _ctx_stack() -> list:
    s = getattr(_CTX, "stack", None)
    if s is None:
        s = _CTX.stack = []
    return s


# masks ride along with tensors (Keras's ``_keras_mask``); Tensors have __slots__, so they are
# kept beside them, keyed by id and dropped when the tensor dies
_MASKS: dict = {}


def _set_mask(t, mask) -> None:
    if not isinstance(t, Tensor) or mask is None:
        return
    key = id(t)
    _MASKS[key] = mask
    weakref.finalize(t, _MASKS.pop, key, None)


def _get_mask(t):
    return _MASKS.get(id(t)) if isinstance(t, Tensor) else None


# layers holding add_loss/activity losses from a call: the next outermost call clears them
_LOSS_LAYERS: weakref.WeakSet = weakref.WeakSet()


# ---------------------------------------------------------------------------------------------
# weights


class Variable(Parameter):
    """A layer weight: an ember Parameter with Keras's ``name``, ``path`` and ``trainable``."""

    __slots__ = ("name", "path", "regularizer", "constraint")

    @property
    def trainable(self) -> bool:
        return self.requires_grad

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self.requires_grad = bool(value)

    @property
    def value(self) -> "Variable":
        return self

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The values as a NumPy array (Keras's ``variable.numpy()``; no grad involved)."""
        return self.detach().numpy()

    def assign(self, value) -> "Variable":
        """Overwrite the values in place (shape must match), outside autograd."""
        arr = value.detach().numpy() if isinstance(value, Tensor) else np.asarray(value)
        if arr.shape != tuple(self.shape):
            raise ValueError(f"Variable '{self.path}': cannot assign a value of shape "
                             f"{arr.shape} to a variable of shape {tuple(self.shape)}")
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            self.copy_(Tensor._wrap(np.require(arr, self._data.dtype, "C")))
        finally:
            _state.grad_enabled = prev
        return self

    def __deepcopy__(self, memo):
        v = _make_variable(Tensor._wrap(self._data.copy(), self._dev), self.name, self.path,
                           self.requires_grad)
        v.regularizer, v.constraint = self.regularizer, self.constraint
        memo[id(self)] = v
        return v

    def __repr__(self) -> str:
        return (f"<Variable path={self.path}, shape={tuple(self.shape)}, "
                f"dtype={self.dtype}, trainable={self.trainable}>\n"
                + Tensor.__repr__(self.detach()))


def _make_variable(data: Tensor, name: str, path: str, trainable: bool) -> Variable:
    v = Variable(data, requires_grad=trainable)
    v.name, v.path = name, path
    v.regularizer = v.constraint = None
    return v


def _as_dtype_name(dtype) -> str:
    """Keras's dtype names from a name, an ember/NumPy dtype or a serialized DTypePolicy."""
    if dtype is None:
        try:  # keras.backend.floatx(), float32 unless set_floatx / keras.json changed it
            from ..backend import floatx
        except ImportError:
            return "float32"
        return floatx()
    if isinstance(dtype, dict):  # {"class_name": "DTypePolicy", "config": {"name": ...}}
        dtype = (dtype.get("config") or {}).get("name", "float32")
    if isinstance(dtype, str) and dtype.startswith("mixed_"):
        raise ValueError(f"Layer: mixed-precision dtype policies ({dtype!r}) are not supported "
                         f"by ember.keras layers; pass a plain dtype such as 'float32'")
    try:
        return _dt.as_dtype(dtype).name
    except TypeError:
        raise ValueError(f"Layer: unknown dtype {dtype!r}") from None


def _shape_of(x):
    """Nested shapes (tuples, batch first) of nested tensors/arrays."""
    if isinstance(x, (list, tuple)):
        return [_shape_of(v) for v in x]
    if isinstance(x, dict):
        return {k: _shape_of(v) for k, v in x.items()}
    if hasattr(x, "shape"):
        return tuple(x.shape)
    return None


def _is_shape(x) -> bool:
    return isinstance(x, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer))
                                                for d in x)


# ---------------------------------------------------------------------------------------------


class Layer(Module):
    """Base class of every Keras layer: ``__init__`` config, ``build`` weights, ``call`` compute.

    Args: ``trainable`` (False freezes every weight), ``name`` (unique snake_case by default),
    ``dtype`` (weights' and computation's dtype, float32 by default); Keras's
    ``input_shape``/``input_dim``/``batch_size`` (for the first layer of a Sequential) and
    ``activity_regularizer`` are accepted as keywords.
    """

    # built-in numeric layers compute in floating point: integer inputs (pixel bytes, labels
    # used as features) are cast to the layer's dtype, as Keras's type promotion would do
    _float_inputs = False

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        # Keras's automatic config: a layer whose constructor takes only simple values can be
        # re-created from them even without its own get_config
        try:
            sig = _INIT_SIGS.get(cls)
            if sig is None:
                sig = _INIT_SIGS[cls] = inspect.signature(cls.__init__)
            bound = sig.bind(None, *args, **kwargs)
            bound.arguments.pop(next(iter(bound.arguments)))
            auto = {}
            for k, v in bound.arguments.items():
                kind = sig.parameters[k].kind
                if kind == inspect.Parameter.VAR_KEYWORD:
                    auto.update(v)
                elif kind != inspect.Parameter.VAR_POSITIONAL:
                    auto[k] = v
            object.__setattr__(self, "_auto_config", auto if _json_simple(auto) else None)
        except TypeError:
            object.__setattr__(self, "_auto_config", None)
        return self

    def __init__(self, trainable: bool = True, name: str | None = None, dtype=None, **kwargs):
        super().__init__()
        d = self.__dict__
        activity_regularizer = kwargs.pop("activity_regularizer", None)
        d["autocast"] = bool(kwargs.pop("autocast", True))
        input_dim = kwargs.pop("input_dim", None)
        input_shape = kwargs.pop("input_shape", None)
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        batch_size = kwargs.pop("batch_size", None)
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                             f"{kwargs}")
        if not isinstance(trainable, bool):
            raise ValueError(f"{type(self).__name__}: expected `trainable` to be a boolean, got "
                             f"trainable={trainable!r} (of type {type(trainable).__name__})")
        if name is None:
            name = _unique_name(_to_snake_case(type(self).__name__))
        elif not isinstance(name, str) or "/" in name or not name:
            raise ValueError(f"{type(self).__name__}: `name` must be a non-empty string without "
                             f"'/', got {name!r}")
        d["name"] = name
        d["_dtype"] = _as_dtype_name(dtype)
        d["_trainable"] = trainable
        d["built"] = False
        d["supports_masking"] = getattr(self, "supports_masking", False)
        # layers with their own compute_mask may create a mask from unmasked inputs
        d["_emits_mask"] = type(self).compute_mask is not Layer.compute_mask
        d["_trainable_names"] = []  # weights in creation order, resolved through the registries
        d["_non_trainable_names"] = []
        d["_layers"] = []  # tracked sublayers, in assignment order (Keras's weights order)
        d["_losses"] = []
        d["_build_shapes"] = None
        d["activity_regularizer"] = _regularizers.get(activity_regularizer)
        # Keras's `input_shape=`/`input_dim=` on the first layer of a Sequential
        shape = None
        if input_dim is not None:
            shape = (_positive_int(input_dim, "input_dim", self),)
        elif input_shape is not None:
            shape = _check_shape_arg(input_shape, "input_shape", self)
        elif batch_input_shape is not None:
            full = _check_shape_arg(batch_input_shape, "batch_input_shape", self)
            shape, batch_size = full[1:], full[0]
        d["_input_shape_arg"] = shape
        d["_batch_input_shape"] = None if shape is None else (batch_size,) + shape

    # ----- dtype / trainable ------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        """The dtype of the weights, as a name (``"float32"``)."""
        return self._dtype

    @property
    def compute_dtype(self) -> str:
        return self._dtype

    @property
    def variable_dtype(self) -> str:
        return self._dtype

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        """Freeze (``False``) or unfreeze this layer's weights and all its sublayers'."""
        value = bool(value)
        self.__dict__["_trainable"] = value
        for w in self._own_trainable():
            w.requires_grad_(value)
        for layer in self._sublayers():
            layer.trainable = value

    # ----- attribute tracking ---------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        if isinstance(value, Variable) and "_trainable_names" in d:
            owner = self._registered_name(value)
            if owner == name:
                return  # `self.kernel = self.add_weight(name="kernel")`: already filed
            if owner is not None:
                self._rename_weight(owner, name)
                return
        if isinstance(value, Layer) and "_layers" in d and value is not self:
            if all(value is not x for x in d["_layers"]):
                d["_layers"].append(value)
        elif (isinstance(value, (list, tuple)) and value and "_layers" in d
              and all(isinstance(v, Module) for v in value)):
            # Keras tracks lists of layers; file them as a ModuleList so the state dict reads
            # `blocks.0.kernel`, and keep the Python list for attribute access
            self._forget(name)
            for v in value:
                if isinstance(v, Layer) and all(v is not x for x in d["_layers"]):
                    d["_layers"].append(v)
            d["_modules"][name] = ModuleList(list(value))
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    def _registered_name(self, v) -> str | None:
        for table in (self._parameters, self._buffers):
            for k, x in table.items():
                if x is v:
                    return k
        return None

    def _rename_weight(self, old: str, new: str) -> None:
        for table in ("_parameters", "_buffers"):
            t = self.__dict__[table]
            if old in t:
                self._forget(new)
                self.__dict__[table] = OrderedDict((new if k == old else k, v)
                                                   for k, v in t.items())
        for names in (self._trainable_names, self._non_trainable_names):
            if old in names:
                names[names.index(old)] = new

    def _sublayers(self) -> list:
        return list(self._layers)

    def _own_trainable(self) -> list:
        return [self._lookup(n) for n in self._trainable_names]

    def _own_non_trainable(self) -> list:
        return [self._lookup(n) for n in self._non_trainable_names]

    def _lookup(self, name: str):
        t = self._parameters.get(name)
        return t if t is not None else self._buffers[name]

    # ----- weights --------------------------------------------------------------------------
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable: bool = True,
                   autocast: bool = True, regularizer=None, constraint=None,
                   aggregation: str = "none", overwrite_with_gradient: bool = False,
                   name: str | None = None) -> Variable:
        """Create a weight, file it on this module and return it.

        ``initializer`` is a name, an Initializer or a ``fn(shape, dtype)`` (glorot_uniform by
        default for floats, zeros otherwise); a non-trainable weight is a buffer (in the state
        dict, never given to optimisers); ``constraint`` is a ``fn(Tensor) -> Tensor`` applied
        by :meth:`apply_constraints` after an optimiser step.
        """
        if isinstance(shape, str):  # Keras 2 habit: add_weight(name, shape, ...)
            shape, name = initializer, shape
            initializer = None
        shape = () if shape is None else tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"{self.name}: add_weight got a negative dimension in shape {shape}")
        dtype = self._dtype if dtype is None else _as_dtype_name(dtype)
        np_dtype = np.dtype(_dt.as_dtype(dtype).np)
        if initializer is None:
            initializer = "glorot_uniform" if np_dtype.kind in "fV" else "zeros"
        init = _initializers.get(initializer)
        values = init(shape, dtype=dtype)
        if not isinstance(values, Tensor):
            values = Tensor._wrap(np.array(values, dtype=np_dtype, order="C"))
        if tuple(values.shape) != shape:
            raise ValueError(f"{self.name}: the initializer for weight '{name}' returned shape "
                             f"{tuple(values.shape)}, expected {shape}")
        if values._data.dtype != np_dtype:
            values = values.to(_dt.as_dtype(dtype))
        base = "variable" if name is None else str(name)
        attr = self._free_attr(base)
        v = _make_variable(values.detach(), base, f"{self.name}/{base}",
                           bool(trainable) and self._trainable and np_dtype.kind in "fV")
        v.regularizer = _regularizers.get(regularizer)
        v.constraint = constraint
        if trainable:
            self.register_parameter(attr, v)
            self._trainable_names.append(attr)
        else:
            self.register_buffer(attr, v)
            self._non_trainable_names.append(attr)
        return v

    def add_variable(self, shape, initializer, dtype=None, trainable: bool = True,
                     autocast: bool = True, regularizer=None, constraint=None,
                     name: str | None = None) -> Variable:
        """Keras 3's older spelling of :meth:`add_weight` (initializer required)."""
        return self.add_weight(shape=shape, initializer=initializer, dtype=dtype,
                               trainable=trainable, autocast=autocast, regularizer=regularizer,
                               constraint=constraint, name=name)

    def _free_attr(self, base: str) -> str:
        attr = re.sub(r"\W", "_", base)
        if not attr or attr[0].isdigit():
            attr = "_" + attr
        taken = (set(self._parameters) | set(self._buffers) | set(self._modules)
                 | set(self.__dict__))
        if attr in taken or hasattr(type(self), attr):
            for i in itertools.count(1):
                if f"{attr}_{i}" not in taken and not hasattr(type(self), f"{attr}_{i}"):
                    return f"{attr}_{i}"
        return attr

    @property
    def weights(self) -> list:
        """All weights: own trainable, own non-trainable (creation order), then sublayers'."""
        out, seen = [], set()
        for w in self._own_trainable() + self._own_non_trainable():
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
        for layer in self._sublayers():
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        if self._tracks_plain_modules:
            # ember.nn modules assigned in a subclassed Model train with it (Keras's
            # TorchModuleWrapper habit): their parameters and buffers are its weights too
            for m in self._modules.values():
                if m is None or isinstance(m, Layer):
                    continue
                for w in list(m.parameters()) + list(m.buffers()):
                    if id(w) not in seen:
                        seen.add(id(w))
                        out.append(w)
        return out

    _tracks_plain_modules = False  # a Model sets it

    variables = weights

    @property
    def trainable_weights(self) -> list:
        if not self._trainable:
            return []
        return [w for w in self.weights if w.requires_grad]

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self) -> list:
        if not self._trainable:
            return self.weights
        return [w for w in self.weights if not w.requires_grad]

    non_trainable_variables = non_trainable_weights

    def get_weights(self) -> list:
        """The weights' values as NumPy arrays (copies), in :attr:`weights` order."""
        return [np.array(w.detach().numpy(), copy=True) for w in self.weights]

    def set_weights(self, weights) -> None:
        """Overwrite the weights from NumPy arrays in :attr:`weights` order (shapes must match)."""
        mine = self.weights
        weights = list(weights)
        if len(weights) != len(mine):
            raise ValueError(f"You called `set_weights(weights)` on layer '{self.name}' with a "
                             f"weight list of length {len(weights)}, but the layer was "
                             f"expecting {len(mine)} weights.")
        arrays = []
        for target, w in zip(mine, weights):
            a = w.detach().numpy() if isinstance(w, Tensor) else np.asarray(w)
            if a.shape != tuple(target.shape):
                raise ValueError(f"Layer '{self.name}' weight shape {tuple(target.shape)} is "
                                 f"not compatible with provided weight shape {a.shape}.")
            arrays.append(a)
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            for target, a in zip(mine, arrays):
                target.copy_(Tensor._wrap(np.require(a, target._data.dtype, "C")))
        finally:
            _state.grad_enabled = prev

    @property
    def input(self):
        """The symbolic input of this layer's one call in a functional graph (Keras's
        ``layer.input``, for feature-extraction models)."""
        return self._only_node("input").output_structure_in()

    @property
    def output(self):
        """The symbolic output of this layer's one call in a functional graph:
        ``keras.Model(m.input, m.get_layer("conv").output)`` builds a feature extractor."""
        return self._only_node("output").output_structure

    def _only_node(self, what: str):
        nodes = self.__dict__.get("_inbound_nodes", [])
        if len(nodes) != 1:
            raise AttributeError(
                f"Layer {self.name!r}: `{what}` is defined only for a layer called exactly once "
                f"on symbolic inputs (it has {len(nodes)} calls); use "
                f"`get_{what}_at(node_index)`")
        return nodes[0]

    def get_input_at(self, node_index: int):
        return self.__dict__.get("_inbound_nodes", [])[node_index].output_structure_in()

    def get_output_at(self, node_index: int):
        return self.__dict__.get("_inbound_nodes", [])[node_index].output_structure

    def count_params(self) -> int:
        """The number of scalars in all weights (the layer must be built)."""
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer '{self.name}', but the "
                             f"layer isn't built. You can build it manually via: "
                             f"`{self.name}.build(input_shape)`.")
        return int(sum(math.prod(w.shape) for w in self.weights))

    def apply_constraints(self) -> None:
        """Project every constrained weight (``kernel_constraint``...) in place, sublayers too."""
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            for m in self.modules():
                if not isinstance(m, Layer):
                    continue
                for w in m._own_trainable() + m._own_non_trainable():
                    if w.constraint is not None:
                        w.copy_(w.constraint(w.detach()))
        finally:
            _state.grad_enabled = prev

    # ----- losses ---------------------------------------------------------------------------
    def add_loss(self, loss) -> None:
        """Add a scalar loss (a Tensor) computed in ``call``; it joins :attr:`losses`."""
        self._losses.append(loss)
        _LOSS_LAYERS.add(self)

    @property
    def losses(self) -> list:
        """Scalar losses: ``add_loss``/activity terms of the last call, then weight penalties."""
        out = []
        layers = [m for m in self.modules() if isinstance(m, Layer)]
        for m in layers:
            out.extend(m._losses)
        seen = set()
        for m in layers:
            if not m._trainable:
                continue
            for w in m._own_trainable():
                if w.regularizer is not None and w.requires_grad and id(w) not in seen:
                    seen.add(id(w))
                    out.append(w.regularizer(w))
        return out

    def _clear_losses(self) -> None:
        for m in self.modules():
            if isinstance(m, Layer) and m._losses:
                m.__dict__["_losses"] = []
                _LOSS_LAYERS.discard(m)

    # ----- build / call ---------------------------------------------------------------------
    def build(self, input_shape=None) -> None:
        """Create the weights for inputs of ``input_shape`` (batch dim first); sets ``built``."""
        self.built = True

    def _maybe_build(self, *shapes, **named_shapes) -> None:
        """Build once from input shapes: positional shapes follow ``build``'s parameters."""
        if self.built:
            return
        params = [p for p in inspect.signature(self.build).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        kw = {k: v for k, v in named_shapes.items() if any(p.name == k for p in params)}
        self.__dict__["_build_shapes"] = {"args": list(shapes), "kwargs": kw}
        if params:
            self.build(*shapes[:len(params)], **kw)
        else:
            self.build()
        self.built = True

    def _build_from_call(self, args, kwargs) -> None:
        params = [p for p in inspect.signature(self.build).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(params) <= 1:
            self._maybe_build(_shape_of(args[0]) if args else None)
            return
        # build(query_shape, value_shape, key_shape=None) <- call(query, value, key=None)
        call_params = [p.name for p in inspect.signature(self.call).parameters.values()]
        values = dict(zip(call_params, args))
        values.update({k: v for k, v in kwargs.items() if k in call_params})
        shapes = []
        for p in params:
            arg = p.name[:-len("_shape")] if p.name.endswith("_shape") else p.name
            if arg in values and values[arg] is not None:
                shapes.append(_shape_of(values[arg]))
            elif p.default is not p.empty:
                shapes.append(p.default)
            else:
                raise ValueError(f"{self.name}: cannot build: no input for build argument "
                                 f"'{p.name}'")
        self._maybe_build(*shapes)

    def call(self, *args, **kwargs):
        raise NotImplementedError(f"Layer {type(self).__name__} does not have a `call()` "
                                  f"method implemented.")

    def forward(self, *args, **kwargs):
        return self.call(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        if kwargs or len(args) != 1 or not isinstance(args[0], Tensor):
            sym = _find_symbolic(args, kwargs)
            if sym is not None:
                return type(sym)._symbolic_call(self, args, kwargs)
            if not args and "inputs" in kwargs:
                args = (kwargs.pop("inputs"),)
            args = tuple([self._convert(a) for a in args])
        else:
            x = args[0]
            kind = x._data.dtype.kind
            if (kind == "f" and self.autocast or kind in "iub" and self._float_inputs) \
                    and x.dtype.name != self._dtype:
                args = (x.to(_dt.as_dtype(self._dtype)),)
        sig = _call_params(type(self))
        stack = _ctx_stack()
        # an explicit `training=` wins, then one given to an enclosing layer, then the mode
        explicit = kwargs.pop("training", None)
        if explicit is None:
            explicit = stack[-1] if stack else None
        else:
            explicit = bool(explicit)
        if "training" in sig:
            kwargs["training"] = self.training if explicit is None else explicit
        mask = kwargs.pop("mask", None)
        if mask is None and args and _MASKS:
            mask = _get_mask(args[0])
            if mask is None and isinstance(args[0], (list, tuple)):
                masks = [_get_mask(x) for x in args[0]]
                mask = masks if any(m is not None for m in masks) else None
        if "mask" in sig and mask is not None:
            kwargs["mask"] = mask
        if not self.built:
            self._build_from_call(args, kwargs)
        if not stack and _LOSS_LAYERS:
            self._clear_losses()  # Keras: losses are those of the latest outermost call
        stack.append(explicit)
        try:
            out = Module.__call__(self, *args, **kwargs)
        finally:
            stack.pop()
        if self.activity_regularizer is not None:
            first = out[0] if isinstance(out, (list, tuple)) else out
            batch = first.shape[0] if first.ndim else 1
            self.add_loss(self.activity_regularizer(first) / batch)
        if args and (mask is not None or self._emits_mask):
            out_mask = self.compute_mask(args[0], mask)
            if out_mask is not None:
                if isinstance(out, (list, tuple)):
                    many = isinstance(out_mask, (list, tuple))
                    for i, o in enumerate(out):
                        _set_mask(o, out_mask[i] if many else out_mask)
                else:
                    _set_mask(out, out_mask)
        return out

    def _convert(self, x):
        """NumPy inputs become Tensors; floating inputs are cast to the layer's dtype."""
        if isinstance(x, (np.ndarray, np.generic)):
            a = np.asarray(x)
            if a.dtype.kind == "f" or a.dtype.kind in "iub" and self._float_inputs:
                a = a.astype(_dt.as_dtype(self._dtype).np, copy=False)
            return Tensor._wrap(np.require(a, None, "C"))
        if isinstance(x, Tensor):
            kind = x._data.dtype.kind
            if (kind == "f" and self.autocast or kind in "iub" and self._float_inputs) \
                    and x.dtype.name != self._dtype:
                return x.to(_dt.as_dtype(self._dtype))
            return x
        if isinstance(x, list):
            return [self._convert(v) for v in x]
        if isinstance(x, tuple):
            return tuple(self._convert(v) for v in x)
        if isinstance(x, dict):
            return {k: self._convert(v) for k, v in x.items()}
        return x

    def compute_mask(self, inputs, mask=None):
        """The mask of the output: the input mask when the layer supports masking."""
        return mask if self.supports_masking else None

    def compute_output_shape(self, *input_shapes, **named):
        """Output shape(s) for ``input_shape`` (``None`` for unknown dims, batch first).

        Layers override this with their formula; the default runs ``call`` on zeros twice (unknown
        dims as 2, then 3) and reports as unknown the output dims that changed.
        """
        outs = []
        for fill in (2, 3):
            arrays = [_zeros_like_shape(s, fill, self._dtype) for s in input_shapes]
            kw = {k: _zeros_like_shape(s, fill, self._dtype) for k, s in named.items()}
            prev = _state.grad_enabled
            _state.grad_enabled = False
            try:
                outs.append(_shape_of(self(*arrays, training=False, **kw)))
            finally:
                _state.grad_enabled = prev
        return _merge_shapes(*outs)

    # ----- config ---------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor arguments that re-create this layer (Keras's keys)."""
        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": {"module": "keras", "class_name": "DTypePolicy",
                            "config": {"name": self._dtype}, "registered_name": None}}
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = _regularizers.serialize(self.activity_regularizer)
        own = type(self).get_config is Layer.get_config
        if own and self._auto_config is not None and type(self) is not Layer:
            config = {**self._auto_config, **config}
        elif own and type(self).__init__ is not Layer.__init__:
            raise NotImplementedError(f"Layer {type(self).__name__} has arguments "
                                      f"{sorted(inspect.signature(type(self).__init__).parameters)[1:]} "  # noqa: E501
                                      f"in `__init__()` that are not simple values; override "
                                      f"`get_config()` to make it serializable")
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        """Re-create a layer from :meth:`get_config`'s output (weights are not restored).

        Keys of Keras features ember does not have are accepted at their off values, so
        configs written by Keras load.
        """
        config = {k: v for k, v in config.items()
                  if not (k in _KERAS_ONLY_DEFAULTS and v == _KERAS_ONLY_DEFAULTS[k])}
        return cls(**config)

    def get_build_config(self) -> dict | None:
        """The input shape(s) ``build`` was called with, to rebuild a loaded layer."""
        if self._build_shapes is None:
            return None
        args = self._build_shapes["args"]
        shapes = [_jsonable_shape(s) for s in args]
        if len(shapes) == 1 and not self._build_shapes["kwargs"]:
            return {"input_shape": shapes[0]}
        return {"shapes_dict": {"args": shapes, "kwargs": {
            k: _jsonable_shape(v) for k, v in self._build_shapes["kwargs"].items()}}}

    def build_from_config(self, config: dict | None) -> None:
        """Build from :meth:`get_build_config`'s output (no-op when it is None)."""
        if not config:
            return
        if "input_shape" in config:
            self._maybe_build(_tuple_shape(config["input_shape"]))
        else:
            sd = config["shapes_dict"]
            self._maybe_build(*[_tuple_shape(s) for s in sd["args"]],
                              **{k: _tuple_shape(v) for k, v in sd["kwargs"].items()})

    # ----- repr -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return f"name={self.name}, built={self.built}"

    def _input_error(self, inputs, expected: str) -> ValueError:
        """A ValueError naming this layer, what it expected and the shape it got."""
        shape = tuple(inputs.shape) if hasattr(inputs, "shape") else type(inputs).__name__
        return ValueError(f"Input 0 of layer \"{self.name}\" ({type(self).__name__}) is "
                          f"incompatible with the layer: expected {expected}, found "
                          f"shape={shape}")


# ---------------------------------------------------------------------------------------------
# helpers


_CALL_PARAMS: dict = {}
_INIT_SIGS: dict = {}

# Keras options without an ember implementation, as written in configs when unused
_KERAS_ONLY_DEFAULTS = {"quantization_config": None, "synchronized": False, "renorm": False,
                        "renorm_clipping": None, "renorm_momentum": 0.99, "use_gate": False,
                        "sliding_window": None, "flash_attention": None, "lora_rank": None,
                        "lora_alpha": None}


def _call_params(cls) -> frozenset:
    p = _CALL_PARAMS.get(cls)
    if p is None:
        p = _CALL_PARAMS[cls] = frozenset(inspect.signature(cls.call).parameters)
    return p


def _find_symbolic(args, kwargs):
    stack = list(args) + list(kwargs.values())
    while stack:
        x = stack.pop()
        if getattr(type(x), "_keras_symbolic", False):
            return x
        if isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
    return None


def _json_simple(v) -> bool:
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_json_simple(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _json_simple(x) for k, x in v.items())
    return False


def _positive_int(v, what: str, layer) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{type(layer).__name__}: `{what}` must be a positive integer, got "
                         f"{v!r}")
    return int(v)


def _check_shape_arg(shape, what: str, layer) -> tuple:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
            s is None or (isinstance(s, (int, np.integer)) and s >= 0) for s in shape):
        raise ValueError(f"{type(layer).__name__}: `{what}` must be a tuple of non-negative "
                         f"integers or None, got {shape!r}")
    return tuple(None if s is None else int(s) for s in shape)


def _zeros_like_shape(shape, fill: int, dtype: str):
    if shape is None:
        return None
    if _is_shape(shape):
        return Tensor._wrap(np.zeros(tuple(fill if d is None else d for d in shape),
                                     _dt.as_dtype(dtype).np))
    if isinstance(shape, dict):
        return {k: _zeros_like_shape(v, fill, dtype) for k, v in shape.items()}
    return [_zeros_like_shape(s, fill, dtype) for s in shape]


def _merge_shapes(a, b):
    if _is_shape(a) and _is_shape(b):
        return tuple(x if x == y else None for x, y in zip(a, b))
    if isinstance(a, dict):
        return {k: _merge_shapes(a[k], b[k]) for k in a}
    if isinstance(a, (list, tuple)):
        return type(a)(_merge_shapes(x, y) for x, y in zip(a, b))
    return a


def _jsonable_shape(s):
    if s is None:
        return None
    if _is_shape(s):
        return [None if d is None else int(d) for d in s]
    if isinstance(s, dict):
        return {k: _jsonable_shape(v) for k, v in s.items()}
    return [_jsonable_shape(v) for v in s]


def _tuple_shape(s):
    if s is None:
        return None
    if _is_shape(s):
        return tuple(s)
    if isinstance(s, dict):
        return {k: _tuple_shape(v) for k, v in s.items()}
    return [_tuple_shape(v) for v in s]


# ---------------------------------------------------------------------------------------------
# shared by the layer families: argument normalisation and config (de)serialisation


def _dense_config(layer, activity: bool = False) -> dict:
    """The config entries of a layer with an activation, a kernel and an optional bias
    (Dense, the convolutions), in Keras's key order."""
    from .. import activations as _activations
    cfg = {"activation": _activations.serialize(layer.activation),
           "use_bias": layer.use_bias,
           "kernel_initializer": _ser_init(layer.kernel_initializer),
           "bias_initializer": _ser_init(layer.bias_initializer),
           "kernel_regularizer": _ser_reg(layer.kernel_regularizer),
           "bias_regularizer": _ser_reg(layer.bias_regularizer)}
    if activity:
        cfg["activity_regularizer"] = _ser_reg(layer.activity_regularizer)
    cfg["kernel_constraint"] = _ser_constraint(layer.kernel_constraint)
    cfg["bias_constraint"] = _ser_constraint(layer.bias_constraint)
    return cfg


def _ser_init(init):
    return _initializers.serialize(init)


def _ser_reg(reg):
    return None if reg is None else _regularizers.serialize(reg)


def _get_constraint(c):
    """A constraint is a ``fn(Tensor) -> Tensor``; names and configs need keras.constraints."""
    if c is None or (callable(c) and not isinstance(c, (str, dict))):
        return c
    try:
        from .. import constraints
    except ImportError:
        raise ValueError(f"constraint {c!r}: ember.keras has no constraints module to look "
                         f"names up in; pass a callable fn(weight) -> weight") from None
    return constraints.get(c)


def _ser_constraint(c):
    if c is None:
        return None
    if hasattr(c, "get_config"):
        return {"module": "keras.constraints", "class_name": type(c).__name__,
                "config": c.get_config(), "registered_name": None}
    raise ValueError(f"cannot serialize the constraint {c!r}: it has no get_config()")


def _ntuple(layer, name: str, value, n: int, minimum: int = 1) -> tuple:
    """An int or a sequence of ``n`` ints as a tuple (Keras's ``standardize_tuple``)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value),) * n
    if not (isinstance(value, (tuple, list)) and len(value) == n and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"{type(layer).__name__}: the `{name}` argument must be an int or a "
                         f"tuple of {n} integers, got {name}={value!r}")
    value = tuple(int(v) for v in value)
    if any(v < minimum for v in value):
        raise ValueError(f"{type(layer).__name__}: the `{name}` argument must be >= {minimum} "
                         f"in every dimension, got {name}={value}")
    return value


def _data_format(layer, value) -> str:
    if value is None:
        try:
            from ..backend import image_data_format
        except ImportError:
            return "channels_last"
        return image_data_format()
    v = str(value).lower()
    if v not in ("channels_last", "channels_first"):
        raise ValueError(f"{type(layer).__name__}: data_format must be 'channels_last' or "
                         f"'channels_first', got {value!r}")
    return v


def _padding(layer, value, allowed=("valid", "same")) -> str:
    v = str(value).lower()
    if v not in allowed:
        raise ValueError(f"{type(layer).__name__}: padding must be one of {allowed}, got "
                         f"{value!r}")
    return v


def _check_rank(layer, x, ranks, what: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"Layer \"{layer.name}\" ({type(layer).__name__}) expects a tensor "
                        f"input, got {type(x).__name__}")
    if x.ndim not in ranks:
        raise layer._input_error(x, f"ndim in {sorted(ranks)} ({what})")
