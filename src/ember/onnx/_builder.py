"""What an op's ONNX export rule works with: the :class:`Emitter` and the rule table.

A rule is a function ``rule(b, node)`` registered for one or more registry ops with
:func:`onnx_rule` (it lands in ``OPS[name].onnx``). It reads the IR node (``node.inputs``,
``node.attrs``, ``node.outputs``), adds ONNX nodes through ``b.op(...)`` and returns the ONNX
name of each of the node's outputs (one name, or a list with ``None`` for outputs it can't
produce). Inputs come from ``b.x(i)``, constants from ``b.const``/``b.scalar``/``b.ints``.

Sizes: a traced graph holds concrete sizes (a reshape to ``(32, 784)``). When the export has
dynamic axes, the exporter traced the model more than once, with those axes at other sizes,
so every value's shape and every node attribute is known *per trace*. ``b.shape(v)`` gives a
value's shape with ``None`` where a dim changes between traces, and ``b.sizes(...)`` turns a
per-trace list of sizes into an ONNX int64 vector computed from the inputs' shapes at run time
(``Shape -> ... -> Concat``) wherever a size depends on a dynamic axis.

Ops of other subsystems (``ember.quantize``'s ``quantized_linear``) register their rules the
same way, from their own files::

    from ember.onnx.export_ops import onnx_rule

    @onnx_rule("quantized_linear")
    def _(b, node):
        ...
        return b.op("QLinearMatMul", [...])
"""
from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np

from ..ops.registry import OPS

# ops that only appear in training graphs (gradients and optimiser updates): no rule needed
_TRAINING_ONLY_SUFFIXES = ("_backward", "_grad", "_update")
_TRAINING_ONLY = {"diag_scatter", "max_pool_select"}

# op name -> why ONNX can't express it (reported when such an op is in an exported graph)
NOT_EXPORTABLE: dict[str, str] = {}

INT64_MAX = np.iinfo(np.int64).max


def onnx_rule(*names: str):
    """Register the decorated ``rule(b, node)`` as the ONNX export rule of registry ops
    ``names``."""
    def deco(fn):
        for n in names:
            op = OPS.get(n)
            if op is None:
                raise KeyError(f"onnx_rule: there is no registry op named {n!r}")
            op.onnx = fn
        return fn
    return deco


def not_exportable(name: str, reason: str) -> None:
    """Declare registry op ``name`` as having no ONNX form, and why (shown in the error)."""
    if name not in OPS:
        raise KeyError(f"not_exportable: there is no registry op named {name!r}")
    NOT_EXPORTABLE[name] = reason


def is_training_only(name: str) -> bool:
    """Gradient and optimiser ops, which never appear in an inference graph."""
    if name.endswith(_TRAINING_ONLY_SUFFIXES) or name in _TRAINING_ONLY:
        return True
    module = getattr(OPS[name].forward, "__module__", "") if name in OPS else ""
    return ".optim" in module  # ember.optim.*, ember.keras.optimizers


class Unsupported(Exception):
    """Raised by a rule for a node it can't export (an attribute ONNX has no form for)."""


class _Skip(Exception):
    """A node reads the output of a node that already failed: that failure is reported."""


class Packed:
    """An op output that is several tensors laid end to end in one flat array (the recurrent
    layers' ``[output | h_n | c_n]``): ``parts`` are ``(onnx name, per-trace start, per-trace
    stop, per-trace shape)``. ``getitem`` of exactly one part reads that part directly."""

    def __init__(self, parts):
        self.parts = parts


def onnx_type(dtype) -> int:
    """The ONNX TensorProto element type of a NumPy dtype."""
    from onnx import helper
    d = np.dtype(dtype)
    if d.name == "bfloat16":
        from onnx import TensorProto
        return TensorProto.BFLOAT16
    return helper.np_dtype_to_tensor_dtype(d)


class Emitter:
    """Collects the ONNX nodes and initializers of one export; the API op rules use."""

    def __init__(self, info, opset: int):
        self.info = info
        self.opset = opset
        self.nodes: list = []           # onnx NodeProto, in order
        self.initializers: dict = {}    # name -> np.ndarray
        self.node = None                # the IR node whose rule is running
        self.read_per_trace: set = set()  # attributes it read with attr()
        self.scope = ""                 # its module path ("encoder.layers.0.linear1")
        self._names: dict = {}          # id(Value) -> ONNX name
        self._failed: set = set()       # ids of values whose producer failed
        self._packed: dict = {}         # id(Value) -> Packed
        self._shapes: dict = {}         # ONNX name -> per-trace shapes, where not the IR's
        self._by_content: dict = {}     # small constants, deduplicated
        self._shape_nodes: dict = {}    # (name, start, end) -> Shape output
        self._tmp = itertools.count()
        self._const_ids = itertools.count()

    # ----- values ---------------------------------------------------------------------------
    def bind(self, v, name) -> None:
        if isinstance(name, Packed):
            self._packed[id(v)] = name
        else:
            self._names[id(v)] = name

    def fail(self, v) -> None:
        self._failed.add(id(v))

    def name(self, v) -> str:
        """The ONNX name holding IR value ``v`` (constants become initializers on first use)."""
        n = self._names.get(id(v))
        if n is not None:
            return n
        if id(v) in self._failed:
            raise _Skip()
        if id(v) in self._packed:
            n = self._unpack_all(self._packed[id(v)])
        elif v.kind in ("const", "capture"):
            n = self.info.constant_name(self, v)
        elif v.kind == "dynamic":
            raise Unsupported(f"a Python number read at every call ({v.name}, from a "
                              f"scheduler or similar) can't be stored in an ONNX file")
        else:
            raise Unsupported(f"an output of op '{v.node.op.name}' that ONNX export doesn't "
                              f"produce is used here")
        self._names[id(v)] = n
        return n

    def x(self, i: int) -> str:
        """ONNX name of the current node's input ``i``."""
        return self.name(self.node.inputs[i])

    def packed(self, v):
        return self._packed.get(id(v))

    def _unpack_all(self, p: Packed) -> str:
        flat = [self.op("Reshape", [name, self.ints([-1])]) for name, *_ in p.parts]
        return self.op("Concat", flat, axis=0)

    def value(self, v):
        """The array of ``v`` when it is a constant known at export time, else None."""
        return self.info.static_value(v)

    def is_zero(self, v) -> bool:
        """Is ``v`` a constant of zeros (in every trace)?"""
        return v.kind == "const" and all(not np.any(d) for d in self.info.const_traces(v))

    def folded_from(self, v):
        """The IR node constant folding turned into ``v`` (its op, attrs and inputs), so a
        rule can read a folded ``w.T`` as ``w``; None for other values."""
        return self.info.folded.get(id(v))

    def label(self, v) -> str | None:
        """A readable name for an initializer derived from ``v`` (its state_dict name)."""
        return v.name if v.kind == "capture" else self.info.hints.get(id(v))

    # ----- shapes ---------------------------------------------------------------------------
    def traces(self, v) -> list:
        """``v``'s shape in each trace (one entry without dynamic axes)."""
        return self.info.shapes(v)

    def shape(self, v) -> tuple:
        """``v``'s shape with ``None`` for dims that change with a dynamic axis."""
        ts = self.traces(v)
        return tuple(d if all(t[i] == d for t in ts) else None for i, d in enumerate(ts[0]))

    def is_dynamic(self, v) -> bool:
        return None in self.shape(v)

    def emitted_traces(self, name: str, v) -> list:
        """Per-trace shapes of ONNX tensor ``name``, which holds IR value ``v``."""
        return self._shapes.get(name) or self.traces(v)

    def set_emitted_traces(self, name: str, traces: list) -> None:
        """Record that ``name`` has other shapes than the IR value it stands for."""
        self._shapes[name] = [tuple(t) for t in traces]

    def attr(self, key, default=None) -> list:
        """The current node's attribute ``key`` in each trace (a rule that reads an attribute
        this way handles its changing with a dynamic axis; one read from ``node.attrs`` must
        not change, which the exporter checks)."""
        self.read_per_trace.add(key)
        return [a.get(key, default) for a in self.info.attrs(self.node)]

    # ----- emitting -------------------------------------------------------------------------
    def op(self, op_type: str, inputs, outputs: int = 1, **attrs):
        """Add ONNX node ``op_type``; return its output name (a list when ``outputs > 1``).
        ``inputs`` may hold ``""`` for an omitted optional input."""
        from onnx import helper
        outs = [f"_t{next(self._tmp)}" for _ in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        node = helper.make_node(op_type, list(inputs), outs, **attrs)
        node.name = f"/{self.scope.replace('.', '/')}/{op_type}" if self.scope \
            else f"/{op_type}"
        self.nodes.append(node)
        return outs[0] if outputs == 1 else outs

    def const(self, array, name: str | None = None) -> str:
        """An initializer holding ``array``; small unnamed ones are shared by content."""
        a = np.asarray(array)
        if not a.flags.c_contiguous:  # (ascontiguousarray would make a 0-d array 1-d)
            a = a.copy()
        key = None
        if name is None and a.size <= 64:
            key = (a.dtype.str, a.shape, a.tobytes())
            n = self._by_content.get(key)
            if n is not None:
                return n
        if name is None:
            name = f"const_{next(self._const_ids)}"
        base, k = name, 1
        while name in self.initializers:
            name = f"{base}_{k}"
            k += 1
        self.initializers[name] = a
        if key is not None:
            self._by_content[key] = name
        return name

    def scalar(self, value, dtype) -> str:
        """A 0-d constant of ``dtype``."""
        return self.const(np.asarray(value, dtype=dtype))

    def ints(self, values) -> str:
        """A 1-d int64 constant (shapes, axes, pads)."""
        return self.const(np.asarray(list(values), dtype=np.int64).reshape(-1))

    def unsupported(self, message: str):
        raise Unsupported(message)

    def cast(self, name: str, dtype) -> str:
        return self.op("Cast", [name], to=onnx_type(dtype))

    def reduce(self, op_type: str, x: str, axes, keepdims: bool) -> str:
        """``Reduce*`` over ``axes`` (None: all), with axes as an input where the opset
        wants one (ReduceSum since 13, the others since 18)."""
        as_input = op_type == "ReduceSum" or self.opset >= 18
        kd = int(bool(keepdims))
        if axes is None:
            return self.op(op_type, [x], keepdims=kd)
        axes = [int(a) for a in axes]
        if as_input:
            return self.op(op_type, [x, self.ints(axes)], keepdims=kd)
        return self.op(op_type, [x], axes=axes, keepdims=kd)

    def unsqueeze(self, x: str, axes) -> str:
        return self.op("Unsqueeze", [x, self.ints(axes)])

    def squeeze(self, x: str, axes) -> str:
        return self.op("Squeeze", [x, self.ints(axes)])

    def transpose(self, x: str, perm) -> str:
        perm = [int(p) for p in perm]
        if perm == list(range(len(perm))):
            return x
        return self.op("Transpose", [x], perm=perm)

    # ----- sizes that may depend on dynamic axes --------------------------------------------
    def dim(self, name: str, v, axis: int) -> str:
        """1-d int64 ``[v.shape[axis]]`` for the ONNX tensor ``name`` holding ``v``."""
        ts = self.emitted_traces(name, v)
        if all(t[axis] == ts[0][axis] for t in ts):
            return self.ints([ts[0][axis]])
        return self.shape_slice(name, axis, axis + 1)

    def scalar_dim(self, name: str, v, axis: int) -> str:
        """0-d int64 ``v.shape[axis]`` (Range's bounds must be scalars)."""
        ts = self.emitted_traces(name, v)
        if all(t[axis] == ts[0][axis] for t in ts):
            return self.scalar(ts[0][axis], np.int64)
        return self.squeeze(self.shape_slice(name, axis, axis + 1), [0])

    def shape_slice(self, name: str, start: int, end: int) -> str:
        key = (name, start, end)
        n = self._shape_nodes.get(key)
        if n is None:
            n = self.op("Shape", [name], start=start, end=end)
            self._shape_nodes[key] = n
        return n

    def int_of(self, per_trace, prefer=()) -> str | None:
        """A 1-d int64 ``[n]`` for the integer whose value in each trace is ``per_trace``,
        computed from the shapes of ``prefer`` (``(onnx name, Value)`` pairs) or of the graph
        inputs; None when no formula of them fits."""
        per_trace = [int(n) for n in per_trace]
        if all(n == per_trace[0] for n in per_trace):
            return self.ints([per_trace[0]])
        sources = list(prefer) + self.info.input_sources(self)
        for name, v in sources:
            ts = self.emitted_traces(name, v)
            rank = len(ts[0])
            for i in range(rank):
                for j in range(i + 1, rank + 1):
                    prods = [math.prod(t[i:j]) for t in ts]
                    if prods == per_trace:
                        s = self.shape_slice(name, i, j)
                        return s if j == i + 1 else self.op("ReduceProd", [s], keepdims=1)
        return self._formula(per_trace)

    def _formula(self, n) -> str | None:
        """``c * prod(sym_k ** e_k)`` or ``sym_k + c`` over the dynamic axes' sizes."""
        syms = self.info.symbols  # [(name, per-trace sizes, (onnx input name, Value, axis))]
        if not syms:
            return None
        exps = []
        for k, (_, sizes, _) in enumerate(syms):
            # probe k + 1 changes only symbol k
            r = Fraction(n[k + 1], n[0]) if n[0] else None
            rho = Fraction(sizes[k + 1], sizes[0])
            e = next((e for e in (0, 1, 2, -1) if r is not None and rho ** e == r), None)
            if e is None:
                exps = None
                break
            exps.append(e)
        if exps is not None and any(exps):
            c = Fraction(n[0])
            for (_, sizes, _), e in zip(syms, exps):
                c /= Fraction(sizes[0]) ** e
            acc = None
            for (_, _, (iname, v, axis)), e in zip(syms, exps):
                for _ in range(abs(e)):
                    d = self.shape_slice(iname, axis, axis + 1)
                    if acc is None:
                        acc = d if e > 0 else self.op("Div", [self.ints([1]), d])
                    else:
                        acc = self.op("Mul" if e > 0 else "Div", [acc, d])
            if c.denominator != 1:
                acc = self.op("Div", [acc, self.ints([c.denominator])])
            if c.numerator != 1:
                acc = self.op("Mul", [acc, self.ints([c.numerator])])
            return acc
        for k, (_, sizes, (iname, v, axis)) in enumerate(syms):
            # sym // d and ceil(sym / d): halves, chunks
            for d in range(2, 17):
                for up in (0, d - 1):
                    if all((sizes[t] + up) // d == n[t] for t in range(len(n))):
                        s = self.shape_slice(iname, axis, axis + 1)
                        if up:
                            s = self.op("Add", [s, self.ints([up])])
                        return self.op("Div", [s, self.ints([d])])
            c = n[0] - sizes[0]
            if all(n[t] - sizes[t] == c if t in (0, k + 1) else n[t] == n[0]
                   for t in range(len(n))):
                return self.op("Add", [self.shape_slice(iname, axis, axis + 1),
                                       self.ints([c])])
        return None

    def sizes(self, per_trace, prefer=(), what: str = "size") -> str:
        """A 1-d int64 tensor of sizes (``per_trace``: one sequence per trace); entries that
        change with a dynamic axis are computed from shapes at run time."""
        per_trace = [tuple(int(s) for s in p) for p in per_trace]
        first = per_trace[0]
        if all(p == first for p in per_trace):
            return self.ints(first)
        pieces, run = [], []
        for i in range(len(first)):
            col = [p[i] for p in per_trace]
            if all(c == col[0] for c in col):
                run.append(col[0])
                continue
            d = self.int_of(col, prefer)
            if d is None:
                self.unsupported(f"the {what} {first} depends on a dynamic axis in a way "
                                 f"export can't express from the input shapes")
            if run:
                pieces.append(self.ints(run))
                run = []
            pieces.append(d)
        if run:
            pieces.append(self.ints(run))
        return pieces[0] if len(pieces) == 1 else self.op("Concat", pieces, axis=0)

    def reshape(self, x: str, xv, per_trace) -> str:
        """``Reshape`` of ONNX tensor ``x`` (holding IR value ``xv``) to ``per_trace`` shapes,
        shape-agnostic: a dim equal to ``x``'s dim at the same place is copied (0), other
        sizes that follow a dynamic axis are computed, and one that can't be is inferred
        (-1)."""
        per_trace = [tuple(int(s) for s in p) for p in per_trace]
        xs = self.emitted_traces(x, xv)
        if xs == per_trace:
            return x
        first = per_trace[0]
        if all(p == first for p in per_trace):
            # a literal 0 means "copy" unless allowzero (an empty tensor's real 0)
            return self.op("Reshape", [x, self.ints(first)], allowzero=1 if 0 in first else None)
        if any(0 in p for p in per_trace):
            self.unsupported(f"reshape to {first}: empty tensors with dynamic axes")
        cols = [[p[i] for p in per_trace] for i in range(len(first))]
        static = [all(c == col[0] for c in col) for col in cols]
        copied = [not st and i < len(xs[0]) and [t[i] for t in xs] == col
                  for i, (col, st) in enumerate(zip(cols, static))]
        todo = [i for i in range(len(first)) if not static[i] and not copied[i]]
        pieces, run = [], []
        inferred = False
        for i, col in enumerate(cols):
            if static[i] or copied[i]:
                run.append(col[0] if static[i] else 0)
                continue
            d = self.int_of(col, [(x, xv)]) if len(todo) > 1 else None
            if d is None:
                if inferred:
                    self.unsupported(f"reshape to {first}: more than one size depends on a "
                                     f"dynamic axis in a way export can't express")
                inferred = True
                run.append(-1)
                continue
            if run:
                pieces.append(self.ints(run))
                run = []
            pieces.append(d)
        if run:
            pieces.append(self.ints(run))
        shape = pieces[0] if len(pieces) == 1 else self.op("Concat", pieces, axis=0)
        return self.op("Reshape", [x, shape])


def same_op(op_type: str, **onnx_attrs):
    """A rule mapping the node one to one onto ONNX ``op_type`` (its inputs in order)."""
    def rule(b: Emitter, node):
        return b.op(op_type, [b.name(v) for v in node.inputs], **onnx_attrs)
    rule.__name__ = f"to_{op_type}"
    return rule
