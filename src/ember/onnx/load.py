"""``ember.onnx.load``: run an ONNX model as an ember Module whose initializers are Parameters.

The graph's nodes are evaluated in order by import rules (``ember.onnx.import_ops``), each
built from ember ops, so an imported model has gradients (fine-tune it with ember.optim) and
``ember.jit`` traces it into ember's IR like any Module.

The ``onnx`` package is needed only to parse bytes into a ModelProto; everything after that
reads the proto's fields directly (:func:`from_model_proto`), so any object with the same
fields — such as ``ember.runtime``'s NumPy-only protobuf reader — can be imported. The fields
read are listed in :func:`from_model_proto`.

Integer values that only depend on shapes and constants (``Shape -> Gather -> Concat ->
Reshape``) are computed eagerly at every call, outside any trace: they are concrete Python
ints for the rules that need them, and constants of the traced graph, which ember.jit
specialises on input shapes anyway.
"""
from __future__ import annotations

import os
import re
from collections import ChainMap, Counter

import numpy as np

from .. import _state
from ..autograd import no_grad
from ..errors import describe
from ..nn.modules.module import Module
from ..nn.parameter import Parameter
from ..ops.creation import from_numpy, tensor, wrap_constant
from ..tensor import Tensor

MIN_OPSET = 13

# ONNX TensorProto.DataType -> NumPy dtype (the unsigned 16/32/64-bit types only decode)
_NP_DTYPE = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
             7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32,
             13: np.uint64}
_ONNX_TYPE_NAME = {0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16",
                   6: "INT32", 7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16", 11: "DOUBLE",
                   12: "UINT32", 13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128",
                   16: "BFLOAT16", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2",
                   20: "FLOAT8E5M2FNUZ", 21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1",
                   24: "FLOAT8E8M0", 25: "UINT2", 26: "INT2"}
# the element types ember computes with (bfloat16 through ml_dtypes)
_EMBER_TYPES = {1, 2, 3, 5, 6, 7, 9, 10, 11, 16}

# AttributeProto.AttributeType
_A_FLOAT, _A_INT, _A_STRING, _A_TENSOR, _A_GRAPH = 1, 2, 3, 4, 5
_A_FLOATS, _A_INTS, _A_STRINGS = 6, 7, 8


def onnx_dtype(code: int):
    """NumPy dtype of ONNX element type ``code``; a clear error for types ember lacks."""
    if code == 16:
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    if code not in _EMBER_TYPES:
        raise TypeError(f"ember.onnx: element type {_ONNX_TYPE_NAME.get(code, code)} is not "
                        f"supported (ember has bool, uint8, int8, int16, int32, int64, float16, "
                        f"bfloat16, float32 and float64 tensors)")
    return np.dtype(_NP_DTYPE[code])


# ----- reading protos (fields only, no onnx.helper) -------------------------------------------


def _tensor_to_array(t, base_dir: str | None = None) -> np.ndarray:
    """A TensorProto's value as a NumPy array, read from its fields.

    Reads ``name, data_type, dims, raw_data, float_data, double_data, int32_data, int64_data,
    uint64_data, data_location, external_data`` (entries with ``key``/``value``).
    """
    code = int(t.data_type)
    dims = tuple(int(d) for d in t.dims)
    name = getattr(t, "name", "") or "<unnamed>"
    if code == 8:
        raise TypeError(f"ember.onnx: tensor '{name}' holds strings; ember has no string "
                        f"tensors")
    if code == 16:
        dtype = onnx_dtype(16)
    elif code in _NP_DTYPE:
        dtype = np.dtype(_NP_DTYPE[code])
    else:
        raise TypeError(f"ember.onnx: tensor '{name}' has element type "
                        f"{_ONNX_TYPE_NAME.get(code, code)}, which ember does not support")
    raw = t.raw_data
    if int(getattr(t, "data_location", 0) or 0) == 1:  # EXTERNAL
        raw = _read_external(t, name, base_dir)
    if raw:
        arr = np.frombuffer(bytes(raw), dtype=dtype.newbyteorder("<")).astype(dtype)
    elif code == 1:
        arr = np.asarray(list(t.float_data), np.float32)
    elif code == 11:
        arr = np.asarray(list(t.double_data), np.float64)
    elif code == 7:
        arr = np.asarray(list(t.int64_data), np.int64)
    elif code in (12, 13):
        arr = np.asarray(list(t.uint64_data), np.uint64).astype(dtype)
    elif code in (10, 16):  # 16-bit floats travel as their bit patterns in int32_data
        arr = np.asarray(list(t.int32_data), np.uint16).view(dtype)
    else:
        arr = np.asarray(list(t.int32_data), np.int32).astype(dtype)
    n = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if arr.size != n:
        raise ValueError(f"ember.onnx: tensor '{name}' has {arr.size} values for dims "
                         f"{list(dims)} ({n} expected)")
    return arr.reshape(dims)


def _read_external(t, name: str, base_dir: str | None) -> bytes:
    info = {e.key: e.value for e in t.external_data}
    loc = info.get("location")
    if not loc:
        raise ValueError(f"ember.onnx: tensor '{name}' is stored externally without a location")
    if base_dir is None:
        raise ValueError(f"ember.onnx: tensor '{name}' is stored in the external file {loc!r}; "
                         f"load the model from its path so the file can be found")
    path = os.path.normpath(os.path.join(base_dir, loc))
    if os.path.relpath(path, base_dir).startswith(".."):
        raise ValueError(f"ember.onnx: external data location {loc!r} of tensor '{name}' "
                         f"points outside the model's folder")
    offset = int(info.get("offset", 0))
    length = info.get("length")
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(int(length) if length is not None else -1)


def _attr_value(a, base_dir: str | None = None):
    """An AttributeProto's value as Python data: int, float, str, ndarray, lists of those, or
    a GraphProto (left as is). Reads ``name, type, i, f, s, t, g, ints, floats, strings``."""
    kind = int(a.type)
    if kind == _A_INT:
        return int(a.i)
    if kind == _A_FLOAT:
        return float(a.f)
    if kind == _A_STRING:
        return _text(a.s)
    if kind == _A_TENSOR:
        return _tensor_to_array(a.t, base_dir)
    if kind == _A_INTS:
        return [int(v) for v in a.ints]
    if kind == _A_FLOATS:
        return [float(v) for v in a.floats]
    if kind == _A_STRINGS:
        return [_text(v) for v in a.strings]
    if kind == _A_GRAPH:
        return a.g
    if kind == 0:  # UNDEFINED in very old files: whichever field is set
        for field, conv in (("ints", lambda v: [int(x) for x in v]),
                            ("floats", lambda v: [float(x) for x in v]),
                            ("strings", lambda v: [_text(x) for x in v])):
            vals = getattr(a, field, None)
            if vals:
                return conv(vals)
        return int(a.i) if a.i else float(a.f) if a.f else _text(a.s) if a.s else None
    raise TypeError(f"ember.onnx: attribute '{a.name}' has a type ({kind}) that ember does not "
                    f"read (sparse tensors, type protos, lists of tensors or graphs)")


def _text(s) -> str:
    return s.decode("utf-8") if isinstance(s, (bytes, bytearray)) else str(s)


def _value_info(vi) -> tuple:
    """(name, element type code or None, dims with None for symbolic sizes or None)."""
    tt = None
    typ = getattr(vi, "type", None)
    if typ is not None:
        tt = getattr(typ, "tensor_type", None)
    code = int(tt.elem_type) if tt is not None and getattr(tt, "elem_type", 0) else None
    dims = None
    shape = getattr(tt, "shape", None) if tt is not None else None
    if shape is not None and getattr(shape, "dim", None) is not None and (
            not hasattr(tt, "HasField") or tt.HasField("shape")):
        dims = [int(d.dim_value) if getattr(d, "dim_value", 0) else None for d in shape.dim]
    return vi.name, code, dims


class ImportNode:
    """One ONNX node with its attributes already read into Python values."""

    __slots__ = ("op_type", "domain", "name", "inputs", "outputs", "attrs")

    def __init__(self, op_type: str, domain: str, name: str, inputs: list, outputs: list,
                 attrs: dict):
        self.op_type = op_type
        self.domain = domain
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.attrs = attrs

    def attr(self, name: str, default=None):
        return self.attrs.get(name, default)

    def __repr__(self) -> str:
        return f"<{self.op_type} node '{self.name}'>"


def _domain(d: str) -> str:
    return "" if d in ("", "ai.onnx") else d


# ----- the evaluation context handed to the import rules --------------------------------------


class ImportContext:
    """What an import rule may ask about the model and its run: the opset, concrete values
    of static (shape-computing) tensors, and constants."""

    def __init__(self, opset: int, opsets: dict):
        self.opset = opset            # the default domain's opset version
        self.opsets = opsets          # domain -> version
        # id -> tensor whose value doesn't depend on the inputs (held, so ids stay unique)
        self.static: dict = {}
        self.node: ImportNode | None = None
        self.env: dict = {}           # value name -> Tensor of the graph being run

    def run_graph(self, graph: "Program", feeds: dict) -> list:
        """Run a subgraph (If's branches, Loop's and Scan's bodies) with ``feeds`` bound to
        its inputs; it also reads the enclosing graphs' values. Returns its outputs."""
        outer, node = self.env, self.node
        env = ChainMap(dict(feeds), outer)
        try:
            graph.run(self, env)
            return [env[n] for n in graph.output_names]
        finally:
            self.env, self.node = outer, node

    def mark_static(self, t: Tensor) -> Tensor:
        """Declare ``t`` independent of the model's inputs (a loop counter)."""
        self.static[id(t)] = t
        return t

    def array(self, t: Tensor) -> np.ndarray:
        """The value of ``t`` as a NumPy array, for an input that an op reads as data (a
        shape, axes, pads). Static values are read directly; reading a value computed from
        the model's inputs makes ember.jit run the call eagerly, as it must."""
        if id(t) in self.static or _state.tracer is None:
            return t._dev.backend.to_numpy(t._data)
        return np.asarray(t.detach().numpy())

    def ints(self, t: Tensor | None) -> list | None:
        """An integer 1-d (or 0-d) input as a list of Python ints; None stays None."""
        if t is None:
            return None
        return [int(v) for v in self.array(t).reshape(-1)]

    def scalar(self, t: Tensor | None, default=None):
        """A 0-d or one-element input as a Python number."""
        if t is None:
            return default
        a = self.array(t).reshape(-1)
        if a.size != 1:
            raise ValueError(self.where(f"expected a one-element tensor, got shape "
                                        f"{tuple(t.shape)}"))
        return a[0].item()

    def const(self, value, dtype=None, like: Tensor | None = None) -> Tensor:
        """A constant tensor (a graph constant under ember.jit)."""
        arr = np.asarray(value, dtype=dtype if dtype is not None else
                         (like._data.dtype if like is not None else None))
        if like is not None:
            return wrap_constant(like._dev.xp.asarray(arr), like._dev)
        from ..backend import get_device
        dev = get_device("cpu")
        return wrap_constant(dev.backend.from_numpy(np.require(arr, requirements="C")), dev)

    def axis(self, axis: int, ndim: int, what: str = "axis") -> int:
        """``axis`` in [-ndim, ndim) made non-negative, or a clear error."""
        if not -ndim <= axis < max(ndim, 1):
            raise ValueError(self.where(f"{what} {axis} is out of range for a tensor of rank "
                                        f"{ndim} (expected [-{ndim}, {ndim - 1}])"))
        return axis % ndim if ndim else 0

    def where(self, msg: str) -> str:
        n = self.node
        return f"{n.op_type} node '{n.name}': {msg}" if n is not None else msg

    def error(self, msg: str, exc=ValueError) -> Exception:
        return exc(self.where(msg))


# ----- graphs ready to run -----------------------------------------------------------------


class Program:
    """A graph ready to evaluate: its nodes with their rules, in order, which of them compute
    static values (shapes and constants only), and when each value can be freed. The model's
    graph and every subgraph (If's branches, Loop's and Scan's bodies) are Programs."""

    def __init__(self, nodes: list, input_names: list, output_names: list, consts: dict,
                 opsets: dict):
        from .import_ops import RULES
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.consts = dict(consts)           # name -> Tensor (Constant nodes, initializers)
        self.opsets = opsets
        self.output_types: list = []
        ctx = ImportContext(opsets.get("", 0), opsets)
        kept = []
        for node in nodes:  # Constant nodes are evaluated once, here
            if node.op_type == "Constant" and node.domain == "":
                ctx.node = node
                with no_grad():
                    self.consts[node.outputs[0]] = _run(RULES[("", "Constant")].fn, ctx, node,
                                                        [])[0]
            else:
                kept.append(node)
        self.nodes = nodes = kept
        self.rules = [RULES[(n.domain, n.op_type)] for n in nodes]
        defined = set(input_names) | set(self.consts)
        free: list = []                      # names read from enclosing graphs
        self.uses = []                       # per node: names it reads (subgraphs included)
        for node in nodes:
            reads = [n for n in node.inputs if n]
            for g in _subgraphs(node):
                reads += g.free_names
            self.uses.append(reads)
            for n in reads:
                if n not in defined and n not in free:
                    free.append(n)
            defined.update(o for o in node.outputs if o)
        self.free_names = free
        self.plan: list = []

    def analyze(self, static: set) -> None:
        """Decide which nodes are static (``static``: names known to be) and when values
        die; subgraphs are analysed with what is static where they run."""
        static = set(static) | set(self.consts)
        steps = []
        for node, r, reads in zip(self.nodes, self.rules, self.uses):
            for g in _subgraphs(node):
                g.analyze(static | set(r.static_inputs(node, g)))
            is_static = r.static_output or (not r.random and bool(reads) and
                                            all(n in static for n in reads))
            if is_static:
                static.update(o for o in node.outputs if o)
            steps.append([r.fn, node, is_static, ()])
        last: dict = {}
        for i, reads in enumerate(self.uses):
            for n in reads:
                last[n] = i
        keep = set(self.output_names) | set(self.input_names) | set(self.consts)
        for n, i in last.items():
            if n not in keep:
                steps[i][3] += (n,)
        self.plan = [tuple(st) for st in steps]
        self.static_names = static

    def run(self, ctx: ImportContext, env) -> None:
        """Evaluate the nodes in order, writing their outputs into ``env``."""
        static = ctx.static
        tracer = _state.tracer
        for name, t in self.consts.items():
            env[name] = t
            static[id(t)] = t
            if tracer is not None:  # Constant nodes are constants of the traced graph too
                tracer.constant(t)
        for fn, node, is_static, free in self.plan:
            try:
                ins = [env[n] if n else None for n in node.inputs]
            except KeyError as e:
                raise RuntimeError(f"{node.op_type} node '{node.name}': input {e} has no value "
                                   f"(it is read before any node produces it)") from None
            ctx.node = node
            ctx.env = env
            if is_static:
                # shape arithmetic: concrete values now, graph constants for ember.jit
                _state.tracer = None
                try:
                    with no_grad():
                        outs = _run(fn, ctx, node, ins)
                finally:
                    _state.tracer = tracer
                for t in outs:
                    if t is not None:
                        static[id(t)] = t
                        if tracer is not None:
                            tracer.constant(t)
            else:
                outs = _run(fn, ctx, node, ins)
            for n, t in zip(node.outputs, outs):
                if n:
                    env[n] = t
            for n in free:
                env.pop(n, None)


def _subgraphs(node: ImportNode) -> list:
    return [v for v in node.attrs.values() if isinstance(v, Program)]


# ----- the Module -----------------------------------------------------------------------------


class _Namespace(Module):
    """Holds the parameters of one dotted prefix (``fc1`` of ``fc1.weight``)."""

    def forward(self, *args, **kwargs):
        raise RuntimeError("this module only groups imported ONNX parameters; call the "
                           "OnnxModule that owns it")


_SAFE = re.compile(r"[^0-9A-Za-z_]")


def _sanitize(part: str) -> str:
    return _SAFE.sub("_", part) or "_"


class OnnxModule(Module):
    """An imported ONNX graph; call it with the graph's inputs (Tensors or arrays, by
    position or by input name). Float initializers are Parameters (``named_parameters()``
    follows their names, dots as submodules), other initializers buffers;
    ``initializer_names`` maps each ember name back to the ONNX name."""

    def __init__(self, program: Program, inputs: list, initializers: dict, opsets: dict,
                 graph_name: str = ""):
        super().__init__()
        self.input_names = [n for n, _, _ in inputs]
        self.output_names = list(program.output_names)
        self.input_specs = {n: (code, dims) for n, code, dims in inputs}
        self.opset = opsets.get("", 0)
        self.opsets = dict(opsets)
        self.graph_name = graph_name
        self.initializer_names: dict = {}   # ember name -> ONNX initializer name
        self._init_slots: list = []         # (onnx name, owning module, table, attribute)
        self._add_initializers(initializers)
        self._program = program
        program.analyze({name for name, _, table, _ in self._init_slots
                         if table == "_buffers"})

    def _add_initializers(self, initializers: dict) -> None:
        # names that would shadow a Module attribute get a trailing underscore
        reserved = set(dir(OnnxModule)) | set(self.__dict__) | {"training"}
        used: set = set()      # leaf paths
        prefixes: set = set()  # submodule paths
        for onnx_name, arr in initializers.items():
            parts = [_sanitize(p) for p in onnx_name.split(".")]
            parts = [p + "_" if p in reserved else p for p in parts]
            path = ".".join(parts)
            if (path in used or path in prefixes
                    or any(".".join(parts[:i]) in used for i in range(1, len(parts)))):
                # a leaf where a prefix is (or the reverse): one flat name instead
                flat = _sanitize(onnx_name.replace(".", "_"))
                base = path = flat + "_" if flat in reserved else flat
                k = 1
                while path in used or path in prefixes:
                    path = f"{base}_{k}"
                    k += 1
                parts = [path]
            used.add(path)
            prefixes.update(".".join(parts[:i]) for i in range(1, len(parts)))
            owner = self
            for p in parts[:-1]:
                sub = owner._modules.get(p)
                if sub is None:
                    sub = _Namespace()
                    owner.add_module(p, sub)
                owner = sub
            t = tensor(arr)
            if arr.dtype.kind in "fV":  # V: bfloat16
                owner.register_parameter(parts[-1], Parameter(t))
                table = "_parameters"
            else:
                owner.register_buffer(parts[-1], t)
                table = "_buffers"
            self.initializer_names[path] = onnx_name
            self._init_slots.append((onnx_name, owner, table, parts[-1]))

    def named_initializers(self):
        """(ONNX initializer name, its current Parameter or buffer) pairs."""
        for name, owner, table, attr in self._init_slots:
            yield name, getattr(owner, table)[attr]

    def extra_repr(self) -> str:
        return (f"inputs={self.input_names}, outputs={self.output_names}, "
                f"nodes={len(self._program.nodes)}, opset={self.opset}")

    # ----- running ----------------------------------------------------------------------------
    def _bind(self, args: tuple, kwargs: dict) -> dict:
        names = self.input_names
        if len(args) > len(names):
            raise TypeError(f"OnnxModule: the model takes {len(names)} input(s) {names}, got "
                            f"{len(args)} positional arguments")
        feeds = dict(zip(names, args))
        for k, v in kwargs.items():
            if k not in names:
                raise TypeError(f"OnnxModule: unknown input name {k!r}; the model's inputs are "
                                f"{names}")
            if k in feeds:
                raise TypeError(f"OnnxModule: input {k!r} given both by position and by name")
            feeds[k] = v
        missing = [n for n in names if n not in feeds]
        if missing:
            raise TypeError(f"OnnxModule: missing input(s) {missing}; the model's inputs are "
                            f"{names}")
        return {n: self._as_tensor(n, v) for n, v in feeds.items()}

    def _param_dtypes(self) -> set:
        """Floating dtypes of the parameters now: after ``.double()`` float64 inputs fit."""
        return {p._data.dtype for p in self.parameters() if p._data.dtype.kind == "f"}

    def _as_tensor(self, name: str, value) -> Tensor:
        code, dims = self.input_specs.get(name, (None, None))
        want = onnx_dtype(code) if code in _EMBER_TYPES else None
        if isinstance(value, Tensor):
            t = value
        elif isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf" and value.dtype != want:
                raise TypeError(f"OnnxModule: input '{name}' has NumPy dtype {value.dtype}; "
                                f"ember takes bool, integer and floating point arrays")
            t = _from_array(value)
        else:
            t = tensor(np.asarray(value, dtype=want))
        if want is not None and t._data.dtype != want and not (
                want.kind == "f" and t._data.dtype in self._param_dtypes()):
            raise TypeError(f"OnnxModule: input '{name}' must have dtype {want} (the model's "
                            f"declared type), got {describe(t)}")
        if dims is not None:
            if t.ndim != len(dims) or any(d is not None and d != s
                                          for d, s in zip(dims, t.shape)):
                shown = ["?" if d is None else d for d in dims]
                raise ValueError(f"OnnxModule: input '{name}' must have shape {shown} (the "
                                 f"model's declared shape, ? any size), got "
                                 f"{tuple(t.shape)}")
        return t

    def forward(self, *args, **kwargs):
        """Evaluate the graph; one output is returned as a Tensor, several as a tuple."""
        env = self._bind(args, kwargs)
        ctx = ImportContext(self.opset, self.opsets)
        for name, owner, table, attr in self._init_slots:
            t = getattr(owner, table)[attr]
            env[name] = t
            if table == "_buffers":
                ctx.static[id(t)] = t
        self._program.run(ctx, env)
        results = []
        for n in self.output_names:
            if n not in env:
                raise RuntimeError(f"OnnxModule: graph output '{n}' was not computed by any "
                                   f"node")
            results.append(env[n])
        return results[0] if len(results) == 1 else tuple(results)


def _from_array(value: np.ndarray) -> Tensor:
    if value.dtype in (np.uint16, np.uint32, np.uint64):
        raise TypeError(f"OnnxModule: NumPy dtype {value.dtype} has no ember tensor type")
    try:
        return from_numpy(np.require(value, requirements="C"))
    except (TypeError, ValueError):
        return tensor(value)


def _run(fn, ctx: ImportContext, node: ImportNode, ins: list) -> list:
    try:
        out = fn(ctx, node, ins)
    except (ValueError, TypeError, IndexError, RuntimeError, ArithmeticError) as e:
        if f"node '{node.name}'" in str(e):
            raise
        shown = ", ".join(f"'{n}' {describe(t)}" if t is not None else "(absent)"
                          for n, t in zip(node.inputs, ins)) or "none"
        raise type(e)(f"{node.op_type} node '{node.name}': failed for inputs {shown}: "
                      f"{e}") from e
    if isinstance(out, Tensor):
        return [out]
    return list(out)


# ----- loading --------------------------------------------------------------------------------


def _import_onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError("ember.onnx.load needs the 'onnx' package to parse .onnx files: "
                          "pip install ember[onnx]") from e
    return onnx


def load(f, *, check_opset: bool = True) -> OnnxModule:
    """Import an ONNX model (a path, the file's bytes, a file object or a ModelProto) as an
    :class:`OnnxModule`.

    >>> m = ember.onnx.load("net.onnx"); y = m(x)
    """
    base_dir = None
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        with open(path, "rb") as fh:
            data = fh.read()
        base_dir = os.path.dirname(os.path.abspath(path))
    elif isinstance(f, (bytes, bytearray, memoryview)):
        data = bytes(f)
    elif hasattr(f, "read"):
        data = f.read()
    else:
        return from_model_proto(f, check_opset=check_opset)
    onnx = _import_onnx()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError has no common base
        raise ValueError(f"ember.onnx.load: not a valid ONNX model ({len(data)} bytes): "
                         f"{e}") from None
    return from_model_proto(model, base_dir=base_dir, check_opset=check_opset)


def from_model_proto(model, *, base_dir: str | None = None,
                     check_opset: bool = True) -> OnnxModule:
    """Import a ModelProto, or any object with the same fields.

    Fields read: ``model.opset_import[*].domain/.version``, ``model.graph`` and, for it and
    every subgraph, ``.name``, ``.node[*].op_type/.domain/.name/.input/.output/.attribute``,
    ``attribute[*].name/.type/.i/.f/.s/.t/.g/.ints/.floats/.strings``, ``.initializer``
    (TensorProto fields, see :func:`_tensor_to_array`), ``.input/.output[*].name`` and
    ``.type.tensor_type.elem_type`` / ``.type.tensor_type.shape.dim[*].dim_value`` when
    present. ``base_dir`` locates external-data files.
    """
    graph = model.graph
    opsets = {}
    for o in model.opset_import:
        opsets[_domain(o.domain)] = int(o.version)
    if "" not in opsets:
        raise ValueError("ember.onnx.load: the model imports no default-domain (ai.onnx) opset")
    if check_opset and opsets[""] < MIN_OPSET:
        raise ValueError(f"ember.onnx.load: the model uses opset {opsets['']}; ember imports "
                         f"opset {MIN_OPSET} and newer. Convert it first: "
                         f"onnx.version_converter.convert_version(model, {MIN_OPSET})")
    from .import_ops import RULES
    _check_supported(_raw_nodes(graph, True), opsets, RULES)
    problems: list = []
    nodes = _read_nodes(graph, base_dir, opsets, problems)
    if problems:
        raise NotImplementedError("ember.onnx.load: the model uses op features ember does not "
                                  "import:\n" + "\n".join(problems))
    initializers = {}
    for t in graph.initializer:
        initializers[t.name] = _tensor_to_array(t, base_dir)
    if len(getattr(graph, "sparse_initializer", ()) or ()):
        raise NotImplementedError("ember.onnx.load: sparse initializers are not supported")
    inputs = [_value_info(vi) for vi in graph.input if vi.name not in initializers]
    outputs = [vi.name for vi in graph.output]
    _check_graph(nodes, [n for n, _, _ in inputs], initializers, outputs)
    program = Program(nodes, [n for n, _, _ in inputs] + list(initializers), outputs, {},
                      opsets)
    return OnnxModule(program, inputs, initializers, opsets, getattr(graph, "name", ""))


def _raw_nodes(graph, recurse: bool):
    """(node proto, its index) of ``graph`` and, with ``recurse``, of its subgraphs."""
    for i, n in enumerate(graph.node):
        yield n, i
        if recurse:
            for a in n.attribute:
                if int(a.type) == _A_GRAPH:
                    yield from _raw_nodes(a.g, True)


def _read_nodes(graph, base_dir, opsets, problems: list) -> list:
    """ImportNodes with attributes read; subgraphs become Programs; each rule's ``check``
    adds why a node can't be imported to ``problems``."""
    from .import_ops import RULES
    nodes = []
    for i, n in enumerate(graph.node):
        node = ImportNode(n.op_type, _domain(getattr(n, "domain", "")),
                          getattr(n, "name", "") or f"{n.op_type}_{i}", list(n.input),
                          list(n.output), {})
        for a in n.attribute:
            if int(a.type) == _A_GRAPH:
                node.attrs[a.name] = _subprogram(a.g, base_dir, opsets, problems)
            else:
                node.attrs[a.name] = _attr_value(a, base_dir)
        r = RULES[(node.domain, node.op_type)]
        if r.check is not None:
            reason = r.check(node, opsets.get(node.domain, 0))
            if reason:
                problems.append(f"  {node.op_type} node '{node.name}': {reason}")
        nodes.append(node)
    return nodes


def _subprogram(graph, base_dir, opsets, problems) -> Program:
    nodes = _read_nodes(graph, base_dir, opsets, problems)
    consts = {t.name: tensor(_tensor_to_array(t, base_dir)) for t in graph.initializer}
    inputs = [vi.name for vi in graph.input]
    outputs = [vi.name for vi in graph.output]
    program = Program(nodes, inputs, outputs, consts, opsets)
    program.output_types = [_value_info(vi) for vi in graph.output]
    return program


def _check_supported(raw: list, opsets: dict, rules: dict) -> None:
    """One error listing every op ember can't import: type, domain, count, first nodes."""
    missing: Counter = Counter()
    first: dict = {}
    for n, i in raw:
        key = (_domain(getattr(n, "domain", "")), n.op_type)
        if key not in rules:
            missing[key] += 1
            name = getattr(n, "name", "") or f"{n.op_type}_{i}"
            if name not in first.setdefault(key, []):
                first[key].append(name)
    if not missing:
        return
    lines = []
    for (dom, op), count in sorted(missing.items(), key=lambda kv: (-kv[1], kv[0])):
        names = ", ".join(repr(x) for x in first[(dom, op)][:3])
        more = ", ..." if count > 3 else ""
        lines.append(f"  {op} (domain '{dom or 'ai.onnx'}', opset {opsets.get(dom, '?')}): "
                     f"{count} node(s), e.g. {names}{more}")
    raise NotImplementedError(f"ember.onnx.load: {len(missing)} op type(s) in this model have "
                              f"no ember import rule:\n" + "\n".join(lines))


def _check_graph(nodes, input_names, initializers, outputs) -> None:
    known = set(input_names) | set(initializers)
    for n in nodes:
        reads = [x for x in n.inputs if x]
        for g in _subgraphs(n):
            reads += g.free_names
        for name in reads:
            if name not in known:
                raise ValueError(f"ember.onnx.load: {n.op_type} node '{n.name}' reads '{name}', "
                                 f"which no earlier node, input or initializer produces (the "
                                 f"graph must be topologically sorted)")
        known.update(o for o in n.outputs if o)
    for o in outputs:
        if o not in known:
            raise ValueError(f"ember.onnx.load: graph output '{o}' is produced by no node, input "
                             f"or initializer")
