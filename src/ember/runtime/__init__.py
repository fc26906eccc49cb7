"""``ember.runtime``: inference on ONNX files and saved ember models with NumPy only.

The API is onnxruntime's, so code can swap one for the other::

    sess = ember.runtime.load("model.onnx")        # or ember.runtime.InferenceSession(path)
    [y] = sess.run(None, {"input": x})             # NumPy in, NumPy out
    y = sess(x)                                    # positional shortcut
    sess.get_inputs()[0].name, .shape, .type       # "input", ["batch", 784], "tensor(float)"

How it runs: the file is decoded by a pure-Python protobuf reader (no ``onnx`` package), turned
into an ember Module by the ONNX importer (:func:`ember.onnx.load.from_model_proto`), and
compiled by ``ember.jit`` under ``no_grad`` — the jit's generated code with buffer reuse is the
execution plan. Each new input shape is traced once and cached (a dynamic batch axis costs one
trace per batch size seen). It needs only ember's core dependencies (NumPy, ml_dtypes): no
onnx, onnxruntime, scipy or torch.

``load`` also opens models saved by ``ember.keras`` (``.keras`` / ``.ember`` files).
"""
from __future__ import annotations

import os

import numpy as np

from ._proto import DecodeError, parse_model

__all__ = ["load", "InferenceSession", "NodeArg", "ModelMetadata", "DecodeError"]

# ONNX element type -> onnxruntime's type string
_ORT_TYPES = {1: "tensor(float)", 2: "tensor(uint8)", 3: "tensor(int8)", 4: "tensor(uint16)",
              5: "tensor(int16)", 6: "tensor(int32)", 7: "tensor(int64)", 8: "tensor(string)",
              9: "tensor(bool)", 10: "tensor(float16)", 11: "tensor(double)",
              12: "tensor(uint32)", 13: "tensor(uint64)", 16: "tensor(bfloat16)"}
_NP_TO_ORT = {"float32": "tensor(float)", "float64": "tensor(double)",
              "float16": "tensor(float16)", "int64": "tensor(int64)", "int32": "tensor(int32)",
              "int16": "tensor(int16)", "int8": "tensor(int8)", "uint8": "tensor(uint8)",
              "bool": "tensor(bool)", "bfloat16": "tensor(bfloat16)"}


class NodeArg:
    """A model input or output: ``name``, ``shape`` (ints, and strings or None for symbolic
    sizes) and ``type`` (``"tensor(float)"``), as onnxruntime's NodeArg."""

    __slots__ = ("name", "shape", "type")

    def __init__(self, name: str, shape, type: str):
        self.name, self.shape, self.type = name, shape, type

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


class ModelMetadata:
    """Producer and graph information of a loaded model (onnxruntime's ModelMetadata)."""

    def __init__(self, producer_name="", graph_name="", domain="", description="",
                 version=0, custom_metadata_map=None):
        self.producer_name, self.graph_name, self.domain = producer_name, graph_name, domain
        self.description, self.version = description, version
        self.custom_metadata_map = dict(custom_metadata_map or {})


def _arg_of(vi) -> NodeArg:
    tt = vi.type.tensor_type if vi.type is not None else None
    typ = _ORT_TYPES.get(tt.elem_type, f"tensor(type {tt.elem_type})") if tt else "unknown"
    shape = None
    if tt is not None and tt.shape is not None:
        shape = [d.dim_value if d.dim_value else (d.dim_param or None) for d in tt.shape.dim]
    return NodeArg(vi.name, shape, typ)


class InferenceSession:
    """A loaded model ready to run; see the module docstring. ``path_or_bytes``: an
    ``.onnx`` path or its bytes, or a ``.keras``/``.ember`` model saved by ember.keras.
    ``providers``/``sess_options`` are accepted for onnxruntime compatibility (ember runs
    on NumPy); ``jit=False`` runs the module eagerly."""

    def __init__(self, path_or_bytes, sess_options=None, providers=None, *, jit: bool = True):
        self._path = os.fspath(path_or_bytes) if isinstance(path_or_bytes, (str, os.PathLike)) \
            else None
        if self._path is not None and _is_saved_ember_model(self._path):
            self._init_ember_model(self._path)
        else:
            self._init_onnx(path_or_bytes)
        self.module.eval()
        if jit:
            from ..jit import jit as _jit
            self._fn = _jit(self.module)
        else:
            self._fn = self.module

    # ----- construction ---------------------------------------------------------------------
    def _init_onnx(self, src) -> None:
        from ..onnx.load import from_model_proto
        base_dir = None
        if self._path is not None:
            with open(self._path, "rb") as f:
                data = f.read()
            base_dir = os.path.dirname(os.path.abspath(self._path))
        elif isinstance(src, (bytes, bytearray, memoryview)):
            data = bytes(src)
        else:
            raise TypeError(f"ember.runtime.load: expected a path or the bytes of an ONNX "
                            f"model, got {type(src).__name__}")
        where = self._path or f"<{len(data)} bytes>"
        try:
            proto = parse_model(data)
        except DecodeError as e:
            raise DecodeError(f"ember.runtime.load: {where}: {e}") from None
        self.proto = proto
        self.module = from_model_proto(proto, base_dir=base_dir)
        inits = {t.name for t in proto.graph.initializer}
        self._inputs = [_arg_of(vi) for vi in proto.graph.input if vi.name not in inits]
        self._outputs = [_arg_of(vi) for vi in proto.graph.output]
        meta = {e.key: e.value for e in proto.metadata_props}
        self._meta = ModelMetadata(proto.producer_name, proto.graph.name, proto.domain,
                                   proto.doc_string, proto.model_version, meta)

    def _init_ember_model(self, path: str) -> None:
        try:
            from ..keras.models import load_model
        except ImportError as e:
            raise ImportError(f"ember.runtime.load: {path} is a saved ember.keras model, but "
                              f"ember.keras can't be imported here ({e})") from e
        self.proto = None
        self.module = load_model(path)
        names = list(getattr(self.module, "input_names", None) or [])
        shapes = _keras_input_shapes(self.module)
        if not names:
            names = ["input"] if len(shapes) <= 1 else [f"input_{i}" for i in
                                                         range(len(shapes))]
        self._inputs = [NodeArg(n, s, "tensor(float)") for n, s in
                        zip(names, shapes or [None] * len(names))]
        outs = list(getattr(self.module, "output_names", None) or ["output"])
        self._outputs = [NodeArg(n, None, "tensor(float)") for n in outs]
        self._meta = ModelMetadata("ember.keras", getattr(self.module, "name", "") or "")

    # ----- onnxruntime's API ----------------------------------------------------------------
    def get_inputs(self) -> list:
        return list(self._inputs)

    def get_outputs(self) -> list:
        return list(self._outputs)

    def get_modelmeta(self) -> ModelMetadata:
        return self._meta

    def get_providers(self) -> list:
        return ["EmberNumPyExecutionProvider"]

    def run(self, output_names, input_feed: dict, run_options=None) -> list:
        """Run the model on ``input_feed`` (``{input name: array}``); return the outputs
        named in ``output_names`` (None: all) as NumPy arrays, in that order."""
        if not isinstance(input_feed, dict):
            raise TypeError(f"InferenceSession.run: input_feed must be a dict mapping input "
                            f"names to arrays, got {type(input_feed).__name__}")
        names = [a.name for a in self._inputs]
        unknown = [k for k in input_feed if k not in names]
        missing = [n for n in names if n not in input_feed]
        if unknown or missing:
            raise ValueError(f"InferenceSession.run: the model's inputs are {names}; "
                             + (f"unknown: {unknown}" if unknown else "")
                             + ("; " if unknown and missing else "")
                             + (f"missing: {missing}" if missing else ""))
        outs = self._call([input_feed[n] for n in names])
        all_names = [a.name for a in self._outputs]
        if output_names is None:
            return outs
        picked = []
        for n in output_names:
            if n not in all_names:
                raise ValueError(f"InferenceSession.run: unknown output name {n!r}; the "
                                 f"model's outputs are {all_names}")
            picked.append(outs[all_names.index(n)])
        return picked

    def __call__(self, *arrays):
        """Run on positional inputs; one output comes back as an array, several as a
        tuple."""
        if len(arrays) != len(self._inputs):
            raise TypeError(f"InferenceSession: the model takes {len(self._inputs)} input(s) "
                            f"{[a.name for a in self._inputs]}, got {len(arrays)}")
        outs = self._call(list(arrays))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _call(self, arrays: list) -> list:
        from ..autograd import no_grad
        from ..ops.creation import from_numpy
        from ..tensor import Tensor
        tensors = []
        for arg, a in zip(self._inputs, arrays):
            if isinstance(a, Tensor):
                tensors.append(a)
                continue
            a = np.asarray(a)
            want = _np_dtype(arg.type)
            if want is not None and a.dtype != want:
                raise TypeError(f"InferenceSession: input '{arg.name}' must be "
                                f"{arg.type} ({want}), got an array of {a.dtype}")
            tensors.append(from_numpy(np.ascontiguousarray(a)))
        with no_grad():
            out = self._fn(*tensors)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        return [np.array(o.detach().numpy(), copy=True) for o in outs]

    def __repr__(self) -> str:
        ins = ", ".join(f"{a.name}: {a.type}{a.shape}" for a in self._inputs)
        outs = ", ".join(a.name for a in self._outputs)
        return f"<ember.runtime.InferenceSession ({ins}) -> ({outs})>"


def _np_dtype(ort_type: str):
    for k, v in _NP_TO_ORT.items():
        if v == ort_type:
            if k == "bfloat16":
                import ml_dtypes
                return np.dtype(ml_dtypes.bfloat16)
            return np.dtype(k)
    return None


def _is_saved_ember_model(path: str) -> bool:
    """A ``.keras``/``.ember`` zip archive (ONNX files are protobuf, never zip)."""
    if not path.endswith((".keras", ".ember")):
        return False
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _keras_input_shapes(model) -> list:
    shapes = []
    for t in getattr(model, "inputs", None) or []:
        shape = getattr(t, "shape", None)
        if shape is not None:
            shapes.append([s if isinstance(s, int) else None for s in shape])
    return shapes


def load(path_or_bytes, *, jit: bool = True) -> InferenceSession:
    """Load an ``.onnx`` file (path or bytes) or a saved ember.keras model for inference."""
    return InferenceSession(path_or_bytes, jit=jit)
