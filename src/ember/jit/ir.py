"""ember's graph IR: a list of nodes over values, produced by the tracer (and, later, by the
ONNX importer) and consumed by the passes, the code generator and the ONNX exporter.

A :class:`Value` is one array in the graph: a positional input, a *capture* (a tensor that
existed outside the traced function, such as a parameter, read live at every call), a
constant (an array baked into the graph), or the output of a node. A :class:`Node` applies
one registry op to values. ``Graph.mutations`` lists in-place writes to inputs/captures that
the compiled function must write back (an optimiser step, BatchNorm's running statistics).
"""
from __future__ import annotations

import itertools

import numpy as np

_ids = itertools.count()


class Value:
    """One array in the graph, with its static shape and dtype."""

    __slots__ = ("id", "shape", "dtype", "kind", "node", "index", "tensor", "data", "name")

    def __init__(self, shape, dtype, kind: str, *, node=None, index: int = 0, tensor=None,
                 data=None, name: str | None = None):
        self.id = next(_ids)
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.kind = kind          # "input" | "capture" | "dynamic" | "const" | "node"
        self.node = node          # producing Node (kind "node")
        self.index = index        # input position, or output position on the node
        self.tensor = tensor      # the live Tensor of a capture; the callable of a dynamic
        self.data = data          # the array of a constant
        self.name = name or f"v{self.id}"

    def __repr__(self) -> str:
        return f"%{self.name}: {_dtype_name(self.dtype)}{list(self.shape)}"


class Node:
    """One op applied to values; ``outputs[0]`` is the op's output, ``outputs[1]`` its extra
    (indices of max, statistics of batch_norm) when the op has one."""

    __slots__ = ("op", "inputs", "attrs", "outputs", "where", "extra_tuple")

    def __init__(self, op, inputs, attrs, outputs, where: str = ""):
        self.op = op
        self.inputs = list(inputs)
        self.attrs = dict(attrs or {})
        self.outputs = list(outputs)
        self.where = where        # "file.py:12  source line" of the user's call
        self.extra_tuple = False  # the op's extra is a tuple of arrays (batch_norm's stats)

    def __repr__(self) -> str:
        outs = ", ".join(repr(o) for o in self.outputs)
        ins = ", ".join(f"%{v.name}" for v in self.inputs)
        attrs = ", ".join(f"{k}={_short(v)}" for k, v in self.attrs.items())
        s = f"{outs} = {self.op.name}({ins}{', ' if ins and attrs else ''}{attrs})"
        return s + (f"    # {self.where}" if self.where else "")


class Graph:
    """A traced (or declared) computation."""

    def __init__(self):
        self.inputs: list[Value] = []
        self.captures: list[Value] = []
        self.dynamics: list[Value] = []
        self.consts: list[Value] = []
        self.nodes: list[Node] = []
        self.outputs: list[Value] = []
        self.mutations: list[tuple[Value, Value]] = []   # (input or capture, new value)
        # (input or capture, value or None): what its ``.grad`` is after a call (a traced
        # training step's backward sets the parameters' gradients)
        self.grad_writes: list[tuple[Value, Value | None]] = []

    # ----- building -------------------------------------------------------------------------
    def add_input(self, shape, dtype, name=None) -> Value:
        v = Value(shape, dtype, "input", index=len(self.inputs), name=name)
        self.inputs.append(v)
        return v

    def add_capture(self, tensor, name=None) -> Value:
        v = Value(tensor.shape, tensor._data.dtype, "capture", tensor=tensor, name=name)
        self.captures.append(v)
        return v

    def add_dynamic(self, fn, dtype, name=None) -> Value:
        """A 0-d value computed by ``fn()`` in Python at every call (a learning rate that a
        scheduler changes between steps)."""
        v = Value((), dtype, "dynamic", tensor=fn, name=name)
        self.dynamics.append(v)
        return v

    def add_const(self, array, name=None) -> Value:
        v = Value(array.shape, array.dtype, "const", data=array, name=name)
        self.consts.append(v)
        return v

    def add_node(self, op, inputs, attrs, out_specs, where="") -> Node:
        """``out_specs``: (shape, dtype) per output."""
        node = Node(op, inputs, attrs, [], where)
        node.outputs = [Value(s, d, "node", node=node, index=i) for i, (s, d) in
                        enumerate(out_specs)]
        self.nodes.append(node)
        return node

    def replace_values(self, replace: dict) -> None:
        """Point the graph's results (outputs, write-backs, grad writes) at ``replace[id(v)]``
        where a pass substituted a value."""
        def r(v):
            return replace.get(id(v), v) if v is not None else None
        self.outputs = [r(v) for v in self.outputs]
        self.mutations = [(t, r(v)) for t, v in self.mutations]
        self.grad_writes = [(t, r(v)) for t, v in self.grad_writes]

    # ----- queries --------------------------------------------------------------------------
    def users(self) -> dict:
        """id(value) -> list of nodes that read it."""
        out: dict = {}
        for n in self.nodes:
            for v in n.inputs:
                out.setdefault(id(v), []).append(n)
        return out

    def live_values(self) -> list:
        return self.outputs + [v for _, v in self.mutations] + \
            [v for _, v in self.grad_writes if v is not None]

    # ----- display --------------------------------------------------------------------------
    def __str__(self) -> str:
        lines = ["graph(" + ", ".join(repr(v) for v in self.inputs) + "):"]
        for v in self.captures:
            lines.append(f"  {v!r} = capture")
        for v in self.dynamics:
            lines.append(f"  {v!r} = dynamic {getattr(v.tensor, '__qualname__', '')}")
        for v in self.consts:
            lines.append(f"  {v!r} = const {_short(v.data)}")
        for n in self.nodes:
            lines.append(f"  {n!r}")
        for target, new in self.mutations:
            lines.append(f"  write %{new.name} -> %{target.name}")
        for target, new in self.grad_writes:
            lines.append(f"  %{target.name}.grad = " + (f"%{new.name}" if new else "None"))
        lines.append("  return " + ", ".join(f"%{v.name}" for v in self.outputs))
        return "\n".join(lines)

    __repr__ = __str__

    def to_dot(self) -> str:
        """Graphviz text: values as ellipses, ops as boxes."""
        out = ["digraph ember {", "  rankdir=TB;", '  node [fontname="Helvetica"];']

        def vid(v):
            return f"v{v.id}"
        for v in self.inputs + self.captures + self.dynamics + self.consts:
            shape = {"input": "ellipse", "capture": "ellipse", "dynamic": "ellipse",
                     "const": "note"}[v.kind]
            out.append(f'  {vid(v)} [label="{v.name}\\n{_dtype_name(v.dtype)}'
                       f'{list(v.shape)}", shape={shape}];')
        for i, n in enumerate(self.nodes):
            where = n.where.split("  ")[0] if n.where else ""
            out.append(f'  n{i} [label="{n.op.name}\\n{where}", shape=box];')
            for v in n.inputs:
                src = f"n{self.nodes.index(v.node)}" if v.kind == "node" else vid(v)
                out.append(f"  {src} -> n{i};")
        for j, v in enumerate(self.outputs):
            out.append(f'  out{j} [label="output {j}\\n{_dtype_name(v.dtype)}{list(v.shape)}",'
                       f" shape=ellipse];")
            src = f"n{self.nodes.index(v.node)}" if v.kind == "node" else vid(v)
            out.append(f"  {src} -> out{j};")
        out.append("}")
        return "\n".join(out)


def _dtype_name(d) -> str:
    return {"float32": "f32", "float64": "f64", "float16": "f16", "int64": "i64",
            "int32": "i32", "bool": "bool", "uint8": "u8"}.get(str(d), str(d))


def _short(v) -> str:
    if isinstance(v, np.ndarray):
        return f"array{list(v.shape)}" if v.size > 4 else np.array2string(v, separator=",")
    if isinstance(v, tuple) and any(isinstance(x, np.ndarray) for x in v):
        return "(" + ", ".join(_short(x) for x in v) + ")"
    return repr(v)
