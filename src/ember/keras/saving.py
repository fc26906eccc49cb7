"""``keras.saving``: whole-model files (``.keras``), weight files, and the class registry.

A ``.keras`` file is a zip, like Keras 3's, holding

- ``config.json``: the architecture (class names and layer configs, for a functional model
  the graph's topology too) and the compile arguments;
- ``metadata.json``: versions and date;
- ``model.weights.safetensors``: the weights, named by ``state_dict`` paths;
- ``optimizer.safetensors`` (after training): the optimizer's state, written by
  ``ember.save``.

Nothing is pickled and loading never runs code from the file: classes are looked up by name
among ember's layers and the classes registered with :func:`register_keras_serializable` (or
passed as ``custom_objects``); a ``Lambda`` layer, which would need its bytecode, is refused.

Weight files: Keras 3 insists on names ending in ``.weights.h5``, so ember accepts those names
(Keras scripts run unchanged) but always writes safetensors content into them; ``.safetensors``
names work too. :func:`load_weights` reads ember's files, ``.keras`` files, and Keras's own
HDF5 weight files when ``h5py`` is installed. Every save is atomic (temporary file, then
rename).
"""
from __future__ import annotations

import datetime
import io
import json
import os
import threading
import warnings
import zipfile

import numpy as np

from ..serialization import write_atomic

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "model_from_json",
           "register_keras_serializable", "get_custom_objects", "custom_object_scope",
           "CustomObjectScope", "get_registered_name", "get_registered_object",
           "serialize_keras_object", "deserialize_keras_object", "summary_of_file"]

_CONFIG, _METADATA = "config.json", "metadata.json"
_WEIGHTS, _OPTIMIZER = "model.weights.safetensors", "optimizer.safetensors"
_KERAS_WEIGHTS = "model.weights.h5"  # inside a .keras file written by Keras itself
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"

# ----- the registry of serializable classes ---------------------------------------------------

_GLOBAL_CUSTOM_OBJECTS: dict = {}
_GLOBAL_CUSTOM_NAMES: dict = {}
_scopes = threading.local()


def register_keras_serializable(package: str = "Custom", name: str | None = None):
    """Class decorator: make a custom layer/model loadable by name (``"package>Name"``)."""
    def decorator(arg):
        class_name = name if name is not None else arg.__name__
        registered_name = f"{package}>{class_name}"
        if isinstance(arg, type) and not hasattr(arg, "get_config"):
            raise ValueError(f"register_keras_serializable: cannot register {arg.__name__}, "
                             f"which has no get_config() method")
        _GLOBAL_CUSTOM_OBJECTS[registered_name] = arg
        _GLOBAL_CUSTOM_NAMES[arg] = registered_name
        return arg
    return decorator


def get_custom_objects() -> dict:
    """The global ``{name: class}`` registry (editable, as in Keras)."""
    return _GLOBAL_CUSTOM_OBJECTS


class CustomObjectScope:
    """``with CustomObjectScope({"MyLayer": MyLayer}):`` makes names resolvable inside."""

    def __init__(self, custom_objects: dict | None) -> None:
        self.custom_objects = dict(custom_objects or {})

    def __enter__(self) -> "CustomObjectScope":
        stack = getattr(_scopes, "stack", None)
        if stack is None:
            stack = _scopes.stack = []
        stack.append(self.custom_objects)
        return self

    def __exit__(self, *exc) -> None:
        _scopes.stack.pop()


custom_object_scope = CustomObjectScope


def get_registered_name(obj) -> str:
    """``"package>Name"`` for a registered class, else the class (or function) name."""
    cls = obj if isinstance(obj, type) or callable(obj) and not hasattr(obj, "get_config") \
        else type(obj)
    return _GLOBAL_CUSTOM_NAMES.get(cls, getattr(cls, "__name__", str(cls)))


def get_registered_object(name: str, custom_objects: dict | None = None,
                          module_objects: dict | None = None):
    """The class registered (or passed, or in scope) under ``name``; None if unknown."""
    for table in ([custom_objects or {}] + list(reversed(getattr(_scopes, "stack", None) or []))
                  + [_GLOBAL_CUSTOM_OBJECTS, module_objects or {}]):
        if name in table:
            return table[name]
    return None


# ----- serialization of layers and models ----------------------------------------------------


def _builtin_module(cls) -> str | None:
    """Keras's ``module`` field for ember's own classes, None for user classes."""
    mod = cls.__module__
    if mod.startswith("ember.keras.layers") or mod == "ember.keras.models.input_layer":
        return "keras.layers"
    if mod.startswith("ember.keras.models"):
        return "keras"
    return None


def serialize_keras_object(obj):
    """``{"module", "class_name", "config", "registered_name", "build_config"}`` of a layer."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(x) for x in obj]
    if isinstance(obj, dict):
        return {k: serialize_keras_object(v) for k, v in obj.items()}
    if not hasattr(obj, "get_config"):
        raise TypeError(f"serialize_keras_object: cannot serialize {obj!r} of type "
                        f"{type(obj).__name__}: it has no get_config()")
    cls = type(obj)
    module = _builtin_module(cls)
    registered = None if module is not None else get_registered_name(cls)
    out = {"module": module or cls.__module__, "class_name": cls.__name__,
           "config": obj.get_config(), "registered_name": registered}
    build = getattr(obj, "get_build_config", None)
    build = build() if callable(build) else None
    if build:
        out["build_config"] = build
    return out


def _layer_entries(config):
    """Every layer/model entry of a serialized object, nested models included."""
    if not isinstance(config, dict) or "class_name" not in config:
        return
    yield config
    inner = config.get("config")
    if isinstance(inner, dict):
        for entry in inner.get("layers") or []:
            yield from _layer_entries(entry)
        for key in ("layer", "backward_layer"):  # wrappers (Bidirectional, TimeDistributed)
            if isinstance(inner.get(key), dict):
                yield from _layer_entries(inner[key])


def _resolve_class(entry: dict, custom_objects: dict | None):
    from . import layers as _layers
    from . import models as _models
    from .models.input_layer import InputLayer
    name, registered = entry["class_name"], entry.get("registered_name")
    for key in (registered, name):
        if key:
            cls = get_registered_object(key, custom_objects)
            if cls is not None:
                return cls
    if name in ("Functional", "Model"):
        return _models.Functional if name == "Functional" else _models.Model
    if name == "InputLayer":
        return InputLayer
    for namespace in (_models, _layers):
        cls = getattr(namespace, name, None)
        if isinstance(cls, type):
            return cls
    return None


def deserialize_keras_object(config, custom_objects: dict | None = None):
    """Re-create a layer or model from :func:`serialize_keras_object`'s output.

    Classes are resolved by name (``custom_objects``, the registry, then ember's own); every
    unknown name is reported at once, before anything is built.
    """
    if config is None or isinstance(config, (bool, int, float)):
        return config
    if isinstance(config, str):
        config = {"class_name": config, "config": {}}
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"deserialize_keras_object: expected a dict with 'class_name' and "
                         f"'config', got {config!r}")
    entries = list(_layer_entries(config))
    # a Keras Lambda stores its function as bytecode; ember's stores an activation's name
    lambdas = sorted({(e.get("config") or {}).get("name", "?") for e in entries
                      if e["class_name"] == "Lambda"
                      and not isinstance((e.get("config") or {}).get("function"), str)})
    if lambdas:
        raise ValueError(f"This model contains Lambda layers {lambdas}: rebuilding them would "
                         f"execute Python bytecode stored in the file, which ember never "
                         f"does. Re-create those layers as registered custom layers "
                         f"(keras.saving.register_keras_serializable).")
    unknown = sorted({e.get("registered_name") or e["class_name"] for e in entries
                      if _resolve_class(e, custom_objects) is None})
    if unknown:
        raise ValueError(f"Cannot load the model: unknown class name(s) {unknown}. Register "
                         f"custom classes with @keras.saving.register_keras_serializable() or "
                         f"pass custom_objects={{'Name': cls}}.")
    with CustomObjectScope(custom_objects):
        return _deserialize(config, custom_objects)


def _deserialize(entry: dict, custom_objects):
    from .models.model import Model
    cls = _resolve_class(entry, custom_objects)
    inner = dict(entry.get("config") or {})
    try:
        if isinstance(cls, type) and issubclass(cls, Model):
            obj = cls.from_config(inner, custom_objects=custom_objects) \
                if _accepts_custom_objects(cls.from_config) else cls.from_config(inner)
        else:
            obj = cls.from_config(inner)
    except TypeError as e:
        raise TypeError(f"Could not rebuild {entry['class_name']} "
                        f"'{inner.get('name', '?')}' from its config: {e}. A custom class "
                        f"needs get_config() returning its __init__ arguments (or its own "
                        f"from_config)") from None
    build = entry.get("build_config")
    if build and not getattr(obj, "built", True) and hasattr(obj, "build_from_config"):
        obj.build_from_config(build)
    return obj


def _accepts_custom_objects(fn) -> bool:
    import inspect
    try:
        return "custom_objects" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def model_from_json(json_string: str, custom_objects: dict | None = None):
    """Rebuild a model (new weights) from :meth:`Model.to_json`'s output."""
    try:
        config = json.loads(json_string)
    except ValueError as e:
        raise ValueError(f"model_from_json: not valid JSON ({e})") from None
    return deserialize_keras_object(config, custom_objects=custom_objects)


# ----- files -------------------------------------------------------------------------------------


def _safetensors_bytes(arrays: dict) -> bytes:
    import safetensors.numpy
    return safetensors.numpy.save({k: np.require(v, requirements="C") for k, v in arrays.items()},
                                  metadata={"format": "pt"})


def _weights_of(model) -> dict:
    """The model's weights named by Keras's layout: ``layers/dense/vars/0``..."""
    return {key: w.detach().numpy() for key, w in _weight_map(model).items()}


def _compile_config(model) -> dict | None:
    get = getattr(model, "get_compile_config", None)
    if callable(get):
        try:
            return get() or None
        except (NotImplementedError, AttributeError, TypeError):
            return None
    return None


def _optimizer_of(model):
    opt = getattr(model, "optimizer", None)
    return getattr(opt, "_optimizer", None) or opt


def _optimizer_state_bytes(model) -> bytes | None:
    """The optimizer's ``state_dict()`` as safetensors: slots as tensors, the rest as JSON."""
    import safetensors.numpy
    opt = _optimizer_of(model)
    if not callable(getattr(opt, "state_dict", None)) or not getattr(opt, "built", True):
        return None  # no optimizer, or not bound to the weights yet: nothing to save
    state = opt.state_dict()
    if not isinstance(state, dict) or not state.get("param_groups"):
        return None
    arrays = {}
    for index, slots in (state.get("state") or {}).items():
        for slot, value in slots.items():
            arr = value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)
            arrays[f"state/{index}/{slot}"] = np.require(arr, requirements="C")
    rest = {k: v for k, v in state.items() if k != "state"}
    meta = {"format": "pt", "ember.optimizer": json.dumps(rest, default=_json_default)}
    return safetensors.numpy.save(arrays, metadata=meta)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "detach"):
        return obj.detach().numpy().tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in the optimizer state")


def save_model(model, filepath, overwrite: bool = True, zipped=None, **kwargs) -> None:
    """Write ``model`` to a ``.keras`` zip: JSON config, safetensors weights, optimizer state."""
    from .. import __version__
    path = os.fspath(filepath)
    if zipped is False:
        raise ValueError("save_model: zipped=False (an unzipped folder) is not supported; save "
                         "to a .keras file")
    if path.endswith((".h5", ".hdf5")):
        raise ValueError(f"save_model: {path!r}: ember does not write Keras's legacy HDF5 model "
                         f"format; use a '.keras' file (model.save('model.keras'))")
    if not path.endswith((".keras", ".ember")):  # ".ember": the same zip, ember's name for it
        raise ValueError(f"Invalid filepath extension for saving. Please add a `.keras` "
                         f"extension for the native Keras format (or `.ember`). Received: "
                         f"filepath={path}")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save_model: {path} exists and overwrite=False")
    config = serialize_keras_object(model)
    compile_config = _compile_config(model)
    if compile_config:
        config["compile_config"] = compile_config
    metadata = {"keras_version": "3", "ember_version": __version__, "format": "ember.keras",
                "weights": _WEIGHTS,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    weights = _safetensors_bytes(_weights_of(model))
    opt_state = _optimizer_state_bytes(model)

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr(_METADATA, json.dumps(metadata, indent=1))
            z.writestr(_CONFIG, json.dumps(config, indent=1))
            z.writestr(_WEIGHTS, weights)
            if opt_state is not None:
                z.writestr(_OPTIMIZER, opt_state)
    write_atomic(path, write)


def _open_keras_zip(path: str) -> zipfile.ZipFile:
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_HDF5_SIGNATURE):
        raise ValueError(f"load_model: {path} is a legacy Keras HDF5 model file; ember reads "
                         f".keras files (re-save it in Keras with model.save('model.keras'))")
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"load_model: {path} is not a .keras file (not a zip archive; it may "
                         f"be truncated)") from None
    if _CONFIG not in z.namelist():
        z.close()
        raise ValueError(f"load_model: {path} has no {_CONFIG}; it is not a .keras model file "
                         f"(it holds {z.namelist()})")
    return z


def _read_config(z: zipfile.ZipFile, path: str) -> dict:
    try:
        return json.loads(z.read(_CONFIG).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"load_model: {path} has a corrupted {_CONFIG} ({e})") from None


def load_model(filepath, custom_objects: dict | None = None, compile: bool = True,
               safe_mode: bool = True):
    """Rebuild a model saved by :meth:`Model.save`, with its weights (and compile state).

    ``custom_objects`` maps class names to user classes not registered globally;
    ``compile=False`` skips re-compiling. ``safe_mode`` is accepted for Keras compatibility:
    ember's loading never executes code from the file.
    """
    path = os.fspath(filepath)
    if not path.endswith(".keras") and not zipfile.is_zipfile(path):
        raise ValueError(f"load_model: file format not supported: {path!r}. ember loads "
                         f"'.keras' files written by model.save()")
    with _open_keras_zip(path) as z:
        config = _read_config(z, path)
        names = z.namelist()
        model = deserialize_keras_object(config, custom_objects=custom_objects)
        if _WEIGHTS in names:
            _load_arrays(model, _safetensors_arrays(z.read(_WEIGHTS), f"{path}:{_WEIGHTS}"),
                         path)
        elif _KERAS_WEIGHTS in names:
            _load_h5_bytes(model, z.read(_KERAS_WEIGHTS), f"{path}:{_KERAS_WEIGHTS}")
        compile_config = config.get("compile_config")
        if compile and compile_config:
            try:
                _compile_from_config(model, compile_config)
            except (ValueError, TypeError, KeyError) as e:
                # the model itself loaded; an unknown optimizer/loss option (a file from a
                # newer Keras) should not make it unusable
                warnings.warn(f"load_model: the model from {path} was loaded but could not be "
                              f"compiled with its saved settings ({e}); call compile() "
                              f"yourself", stacklevel=2)
            else:
                if _OPTIMIZER in names:
                    _restore_optimizer(model, z.read(_OPTIMIZER), path)
    return model


def _compile_from_config(model, config: dict) -> None:
    fn = getattr(model, "compile_from_config", None)
    if callable(fn):
        fn(config)
        return
    compile_fn = getattr(model, "compile", None)
    if not callable(compile_fn):
        warnings.warn(f"load_model: the model was saved compiled, but "
                      f"{type(model).__name__} has no compile(); it is returned uncompiled")
        return
    compile_fn(**config)


def _restore_optimizer(model, data: bytes, path: str) -> None:
    import safetensors.numpy

    from ..tensor import Tensor
    opt = _optimizer_of(model)
    if opt is None or not callable(getattr(opt, "load_state_dict", None)):
        return
    try:
        arrays = safetensors.numpy.load(data)
        header_len = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + header_len]).get("__metadata__", {})
        state = json.loads(meta["ember.optimizer"])
        slots: dict = {}
        for key, arr in arrays.items():
            _, index, slot = key.split("/", 2)
            slots.setdefault(int(index), {})[slot] = Tensor._wrap(np.array(arr))
        state["state"] = slots
        if not getattr(opt, "built", True) and callable(getattr(opt, "build", None)):
            # the parameters in the order fit() binds them, so state indices line up
            opt.build([p for p in model.parameters() if p.requires_grad])
        opt.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError, TypeError) as e:
        warnings.warn(f"load_model: could not restore the optimizer state from {path} ({e}); "
                      f"the optimizer starts fresh")


def _safetensors_arrays(data: bytes, where: str) -> dict:
    import safetensors.numpy
    if data[:1] == b"\x80" and len(data) >= 8 and int.from_bytes(data[:8], "little") > len(data):
        raise ValueError(f"{where} is a pickle file, not a weights file; ember never unpickles "
                         f"files (that can run code)")
    try:
        return dict(safetensors.numpy.load(data))
    except Exception as e:  # the Rust parser's message says what is wrong with the framing
        raise ValueError(f"{where} is not a readable safetensors weights file ({e})") from None


def _is_keras_layout(arrays: dict) -> bool:
    return bool(arrays) and all(k.startswith("vars/") or "/vars/" in k for k in arrays)


def _load_arrays(model, arrays: dict, where: str, skip_mismatch: bool = False) -> None:
    """Load a flat ``{name: array}`` file: Keras's layout, or a ``state_dict``'s names."""
    if not model.weights and not model.state_dict() and arrays:
        raise ValueError(f"Cannot load weights from {where} into model '{model.name}': the "
                         f"model has no weights yet (it is not built). Build it first: call "
                         f"it on data, or model.build(input_shape), or start it with "
                         f"keras.Input(shape=...)")
    if not _is_keras_layout(arrays):
        _load_state(model, arrays, where, strict=not skip_mismatch)
        return
    expected = _weight_map(model)
    missing = [k for k in expected if k not in arrays]
    unexpected = [k for k in arrays if k not in expected]
    mismatched = [f"{k}: file {tuple(arrays[k].shape)} vs model {tuple(w.shape)}"
                  for k, w in expected.items()
                  if k in arrays and tuple(arrays[k].shape) != tuple(w.shape)]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing from the file: {missing}")
        if unexpected:
            parts.append(f"not in the model: {unexpected}")
        if mismatched:
            parts.append(f"shape mismatch: {mismatched}")
        msg = (f"Cannot load weights from {where} into model '{model.name}' (the file was "
               f"saved from a different architecture): " + "; ".join(parts))
        if not skip_mismatch:
            raise ValueError(msg)
        warnings.warn(f"load_weights: skipped weights of model '{model.name}' "
                      f"({len(mismatched)} mismatched, {len(missing)} missing in {where})")
    for k, w in expected.items():
        if k in arrays and tuple(arrays[k].shape) == tuple(w.shape):
            _assign(w, arrays[k])


def _assign(w, value) -> None:
    from .. import _state
    from ..tensor import Tensor
    prev = _state.grad_enabled
    _state.grad_enabled = False
    try:
        w.copy_(Tensor._wrap(np.require(value, requirements="C").astype(w.detach().numpy().dtype,
                                                                 copy=False)))
    finally:
        _state.grad_enabled = prev


def _load_state(model, arrays: dict, where: str, strict: bool = True) -> None:
    """Copy named arrays into the model's state_dict, with messages naming what differs."""
    from ..tensor import Tensor
    own = model.state_dict()
    if not own and arrays:
        raise ValueError(f"Cannot load weights from {where} into model '{model.name}': the "
                         f"model has no weights yet (it is not built). Build it first: call "
                         f"it on data, or model.build(input_shape), or start it with "
                         f"keras.Input(shape=...)")
    missing = [k for k in own if k not in arrays]
    unexpected = [k for k in arrays if k not in own]
    mismatched = [f"{k}: file {arrays[k].shape} vs model {tuple(own[k].shape)}"
                  for k in own if k in arrays and tuple(arrays[k].shape) != tuple(own[k].shape)]
    if strict and (missing or unexpected or mismatched):
        parts = []
        if missing:
            parts.append(f"missing from the file: {missing}")
        if unexpected:
            parts.append(f"not in the model: {unexpected}")
        if mismatched:
            parts.append(f"shape mismatch: {mismatched}")
        raise ValueError(f"Cannot load weights from {where} into model '{model.name}': "
                         + "; ".join(parts))
    if mismatched or missing:
        warnings.warn(f"load_weights: skipped weights of model '{model.name}' "
                      f"({len(mismatched)} mismatched, {len(missing)} missing in {where})")
    ok = {k: Tensor._wrap(np.require(arrays[k], requirements="C").astype(own[k].numpy().dtype,
                                                                 copy=False))
          for k in own if k in arrays and tuple(arrays[k].shape) == tuple(own[k].shape)}
    model.load_state_dict(ok, strict=False)


def _check_weights_name(path: str, verb: str) -> None:
    if not path.endswith((".weights.h5", ".weights.safetensors", ".safetensors")):
        raise ValueError(f"The filename must end in `.weights.h5` (or `.safetensors`). "
                         f"Received: filepath={path} ({verb}_weights; ember writes "
                         f"safetensors content whatever the extension)")


def save_weights(model, filepath, overwrite: bool = True) -> None:
    """Save the weights to ``*.weights.h5`` or ``*.safetensors`` (safetensors content)."""
    path = os.fspath(filepath)
    _check_weights_name(path, "save")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save_weights: {path} exists and overwrite=False")
    data = _safetensors_bytes(_weights_of(model))
    write_atomic(path, data)


def load_weights(model, filepath, skip_mismatch: bool = False) -> None:
    """Load weights from an ember weights file, a ``.keras`` file, or Keras's HDF5 (h5py)."""
    path = os.fspath(filepath)
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_HDF5_SIGNATURE):
        with open(path, "rb") as f:
            _load_h5_bytes(model, f.read(), path, skip_mismatch=skip_mismatch)
        return
    if head.startswith(b"PK"):
        with _open_keras_zip(path) as z:
            names = z.namelist()
            if _WEIGHTS in names:
                _load_arrays(model, _safetensors_arrays(z.read(_WEIGHTS), path), path,
                             skip_mismatch)
            elif _KERAS_WEIGHTS in names:
                _load_h5_bytes(model, z.read(_KERAS_WEIGHTS), path, skip_mismatch=skip_mismatch)
            else:
                raise ValueError(f"load_weights: {path} holds no weights ({names})")
        return
    with open(path, "rb") as f:
        data = f.read()
    _load_arrays(model, _safetensors_arrays(data, path), path, skip_mismatch)


# ----- Keras's own HDF5 weights (read only, needs h5py) ------------------------------------------


def _keras_attr_key(name: str) -> str:
    return "~" + name if name.startswith("_") else name  # Keras visits private names last


def _children(obj) -> list:
    """``(attribute, layer or list of layers)`` in the order Keras's saver walks them."""
    from ..nn.modules.module import Module
    from .layers.layer import Layer
    from .models.model import Model
    from .models.sequential import Sequential
    if isinstance(obj, Model) and (obj._graph is not None or isinstance(obj, Sequential)):
        return [("layers", obj.layers)]  # a graph model saves its layers list
    attrs = {}
    for key, mod in obj._modules.items():
        if isinstance(mod, Layer):
            attrs[key] = mod
        elif isinstance(mod, Module) and mod._modules:  # a list of layers (a ModuleList)
            attrs[key] = [m for m in mod._modules.values() if isinstance(m, Layer)]
    if isinstance(obj, Model):
        attrs["layers"] = obj.layers
    return sorted(attrs.items(), key=lambda kv: _keras_attr_key(kv[0]))


def _walk(model):
    """``(path, layer, own weights)`` for every layer, in Keras's saving order.

    Paths are Keras's: attributes by name, lists of layers by class-based names (``dense``,
    ``dense_1``...): never a layer's own name, which is auto-generated and differs between
    two instances of the same model.
    """
    from .layers.layer import _to_snake_case
    visited: set = set()

    def visit(obj, path):
        if id(obj) in visited:
            return
        visited.add(id(obj))
        yield path, obj, obj._own_trainable() + obj._own_non_trainable()
        for attr, child in _children(obj):
            base = f"{path}/{attr}" if path else attr
            if not isinstance(child, list):
                yield from visit(child, base)
                continue
            used: dict = {}
            for item in child:
                name = _to_snake_case(type(item).__name__)
                n = used[name] = used.get(name, -1) + 1
                yield from visit(item, f"{base}/{name}" if n == 0 else f"{base}/{name}_{n}")
    yield from visit(model, "")


def _var_key(path: str, i: int) -> str:
    return f"{path}/vars/{i}" if path else f"vars/{i}"


def _weight_map(model) -> dict:
    """``{Keras path: weight}`` for every weight (tensors outside Keras layers by their
    state_dict name under ``ember/``, so nothing is left out)."""
    out, seen = {}, set()
    for path, _, own in _walk(model):
        for i, w in enumerate(own):
            out[_var_key(path, i)] = w
            seen.add(id(w))
    for name, t in model.state_dict(keep_vars=True).items():
        if id(t) not in seen:
            out[f"ember/{name}"] = t
    return out


def _h5_vars(group) -> list:
    if group is None or "vars" not in group:
        return []
    g = group["vars"]
    return [np.asarray(g[k]) for k in sorted(g.keys(), key=lambda s: (len(s), s))]


def _h5_all_vars(group) -> list:
    """Every array under ``group``: its vars, then its child groups' (by name)."""
    out = _h5_vars(group)
    for k in sorted(group.keys()):
        if k != "vars" and hasattr(group[k], "keys"):
            out.extend(_h5_all_vars(group[k]))
    return out


def _load_h5_bytes(model, data: bytes, where: str, skip_mismatch: bool = False) -> None:
    """Copy Keras's HDF5 weights (``<path>/vars/<i>``) into ``model``."""
    try:
        import h5py
    except ImportError:
        raise ImportError(f"{where} is a Keras HDF5 weights file; reading it needs h5py: "
                          f"pip install ember[h5] (or pip install h5py). ember's own weight "
                          f"files need nothing extra.") from None
    if not model.weights:
        raise ValueError(f"Cannot load weights from {where} into model '{model.name}': the "
                         f"model has no weights yet (it is not built). Build it first: call "
                         f"it on data, or model.build(input_shape)")
    problems = []
    with h5py.File(io.BytesIO(data), "r") as f:
        for path, layer, own in _walk(model):
            if not own:
                continue
            group = f.get(path) if path else f
            arrays = _h5_vars(group)
            if group is not None and not arrays:
                arrays = _h5_all_vars(group)  # Keras keeps some weights in a cell (LSTM)
            if len(arrays) == len(own) and all(tuple(a.shape) == tuple(w.shape)
                                               for a, w in zip(arrays, own)):
                for w, a in zip(own, arrays):
                    _assign(w, a)
            else:
                problems.append(f"layer '{layer.name}' at '{path or '/'}' expects "
                                f"{[tuple(w.shape) for w in own]}, the file holds "
                                f"{[tuple(a.shape) for a in arrays]}")
    if problems:
        msg = f"load_weights: {where} does not match the model: " + "; ".join(problems)
        if not skip_mismatch:
            raise ValueError(msg)
        warnings.warn(msg + " (skipped)")


# ----- CLI helper --------------------------------------------------------------------------------


def summary_of_file(path) -> str:
    """The ``model.summary()`` text of a saved ``.keras`` file (for ``ember summary FILE``)."""
    from .models.summary import summary_text
    model = load_model(path, compile=False)
    return summary_text(model)
