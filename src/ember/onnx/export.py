"""``ember.onnx.export``: a Module, a jitted function or a plain function as an ONNX file.

The export goes through ember's one IR:

1. **trace** the function on the example inputs with ember.jit's tracer (eval mode, no grad),
   recording each node's module path for readable ONNX node names (``/fc1/Gemm``); a trace
   that can't be captured (``.item()``/``.numpy()`` on a traced tensor) stops the export with
   the user's source line;
2. with **dynamic axes**, trace again once per axis name with that axis at another size and
   align the graphs node by node: every value's shape and every node attribute is then known
   per trace, so the op rules can tell which concrete sizes (a reshape to ``(32, 784)``)
   derive from a dynamic axis and compute them at run time instead;
3. **optimise**: fold constants (parameters included: they are initializers, constant to the
   file), merge common subexpressions and drop dead code (the jit's passes);
4. **emit** each node through its op's rule (``OPS[name].onnx``, filled by
   :mod:`ember.onnx.export_ops`); an op without a rule fails the export in one error listing
   every such op and its source line;
5. **clean** the ONNX graph (no Identity chains, Transpose/Reshape pairs merged, no dead
   nodes or unused initializers), check it with ``onnx.checker`` (full check) and shape
   inference, and save it atomically.
"""
from __future__ import annotations

import json
from collections import Counter

import numpy as np

from .. import _state
from ..autograd.grad_mode import no_grad
from ..jit.function import JitFunction, _flatten
from ..jit.passes import eliminate_common_subexpressions, eliminate_dead_code
from ..jit.passes.fold import foldable
from ..jit.tracer import Tracer, tracing
from ..nn.modules.module import Module
from ..serialization import write_atomic
from ..tensor import Tensor
from ._builder import NOT_EXPORTABLE, Emitter, Unsupported, _Skip, is_training_only, \
    onnx_type

DEFAULT_OPSET = 18
MIN_OPSET, MAX_OPSET = 17, 21


class ExportError(RuntimeError):
    """The model can't be written as an ONNX file that computes what it computes in ember.

    ``problems`` lists ``(op name, source line, reason)`` for each node at fault.
    """

    def __init__(self, message: str, problems=()):
        super().__init__(message)
        self.problems = list(problems)


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ember.onnx.export needs the 'onnx' package: pip install ember[onnx]"
                          ) from None
    return onnx


# ----- what to trace ------------------------------------------------------------------------


def _callable(model_or_fn):
    """(function to trace, the Module it belongs to or None, a name for the graph)."""
    if isinstance(model_or_fn, JitFunction):
        module = model_or_fn._module
        fn = module if module is not None else model_or_fn._fn
        return fn, module, getattr(model_or_fn, "__name__", "ember_graph")
    if isinstance(model_or_fn, Module):
        if _is_keras(model_or_fn):
            # a Keras model takes its inputs as one list (a second positional argument
            # would be ``training``), and has a name of its own
            m = model_or_fn
            return (lambda *xs: m(list(xs) if len(xs) > 1 else xs[0])), m, m.name
        return model_or_fn, model_or_fn, type(model_or_fn).__name__
    if callable(model_or_fn):
        return model_or_fn, None, getattr(model_or_fn, "__name__", "ember_graph")
    raise TypeError(f"ember.onnx.export: expected an ember Module, a jitted function or a "
                    f"function, got {type(model_or_fn).__name__}")


def _is_keras(module) -> bool:
    import sys
    if "ember.keras.layers.layer" not in sys.modules:
        return False
    return isinstance(module, sys.modules["ember.keras.layers.layer"].Layer)


def _split_args(args):
    """PyTorch's ``args``: a Tensor, or a tuple whose last item may be a dict of kwargs."""
    if isinstance(args, Tensor):
        return (args,), {}
    if isinstance(args, (tuple, list)):
        args = tuple(args)
        if args and isinstance(args[-1], dict):
            return args[:-1], dict(args[-1])
        return args, {}
    raise TypeError(f"ember.onnx.export: args must be a Tensor or a tuple of arguments, got "
                    f"{type(args).__name__}")


def _tensor_args(args, kwargs) -> list:
    """The call's tensor arguments in input order (positional, then keywords by name)."""
    return [a for a in list(args) + [kwargs[k] for k in sorted(kwargs)] if isinstance(a, Tensor)]


def _default_names(prefix: str, n: int, given) -> list:
    given = list(given or [])
    if len(given) > n:
        raise ValueError(f"ember.onnx.export: {len(given)} {prefix}_names given for {n} "
                         f"{prefix}s: {given}")
    defaults = [prefix] if n == 1 else [f"{prefix}_{i}" for i in range(n)]
    names = given + defaults[len(given):]
    if len(set(names)) != len(names):
        raise ValueError(f"ember.onnx.export: {prefix} names must be unique, got {names}")
    return names


def _axes_spec(spec, what: str, name: str, rank: int) -> dict:
    """``{0: "batch"}`` or ``[0, 2]`` -> {axis: symbol name}."""
    if isinstance(spec, dict):
        items = list(spec.items())
    elif isinstance(spec, (list, tuple)):
        items = [(a, f"{name}_dynamic_axes_{int(a) + 1}") for a in spec]
    else:
        raise TypeError(f"ember.onnx.export: dynamic_axes[{name!r}] must be a dict "
                        f"{{axis: name}} or a list of axes, got {spec!r}")
    out = {}
    for a, sym in items:
        if not isinstance(a, (int, np.integer)) or not -rank <= a < rank:
            raise ValueError(f"ember.onnx.export: dynamic axis {a!r} of {what} {name!r} is out "
                             f"of range for its {rank} dims")
        out[int(a) % rank] = str(sym)
    return out


# ----- tracing ------------------------------------------------------------------------------


def _arrays(extra) -> bool:
    items = extra if isinstance(extra, tuple) else (extra,)
    return all(hasattr(e, "shape") and hasattr(e, "dtype") for e in items)


class _ExportTracer(Tracer):
    """ember.jit's tracer, noting each node's module path; an op's non-array extra (the
    recurrent layers' saved activations, kept for backward only) is left out."""

    def __init__(self):
        super().__init__()
        self.stack: list = []
        self.scopes: dict = {}

    def record(self, op, inputs, attrs, out, extra=None):
        if extra is not None and not _arrays(extra):
            extra = None
        n = len(self.graph.nodes)
        super().record(op, inputs, attrs, out, extra)
        if len(self.graph.nodes) > n and self.stack:
            self.scopes[id(self.graph.nodes[-1])] = self.stack[-1]


def _trace(fn, module, args, kwargs):
    """Trace ``fn(*args, **kwargs)``; return (graph, tracer, output structure count)."""
    tracer = _ExportTracer()
    handles = []

    def enter(path):
        def hook(mod, a):
            tracer.stack.append(path)
        return hook

    def leave(mod, a, out):
        tracer.stack.pop()

    if module is not None:
        for path, m in module.named_modules():
            if path:
                handles.append(m.register_forward_pre_hook(enter(path)))
                handles.append(m.register_forward_hook(leave))
    try:
        for t in _tensor_args(args, kwargs):
            tracer.add_input(t)
        with no_grad(), tracing(tracer):
            result = fn(*args, **kwargs)
        leaves: list = []
        _flatten(result, leaves)
        if tracer.aborted is None:
            _state.tracer = tracer  # outputs made outside ember's ops abort too
            try:
                tracer.graph.outputs = [tracer.value_of(t) for t in leaves]
            finally:
                _state.tracer = None
    finally:
        for h in handles:
            h.remove()
    if tracer.aborted is not None:
        e = tracer.aborted
        raise ExportError(f"ember.onnx.export: the model can't be captured as one graph: "
                          f"{e.reason}" + (f" at {e.where}" if e.where else "") +
                          ". The ONNX file would bake that value in; keep forward() in "
                          "ember ops (no .item(), .numpy(), bool() or NumPy on tensors).",
                          [("", e.where, e.reason)])
    if not leaves:
        raise ExportError("ember.onnx.export: the model returned no tensors")
    return tracer.graph, tracer


def _probe(args, kwargs, axes_of_input: dict, symbol: str, size_of: dict):
    """The call's arguments with every input axis named ``symbol`` at another size (rows
    repeated cyclically, so integer inputs such as token ids stay valid)."""
    tensors = _tensor_args(args, kwargs)
    new_size = 2 * size_of[symbol] + 3
    swap = {}
    for i, t in enumerate(tensors):
        a = t._data
        for ax, sym in axes_of_input.get(i, {}).items():
            if sym == symbol:
                a = np.take(a, np.arange(new_size) % a.shape[ax], axis=ax)
        if a is not t._data:
            swap[id(t)] = Tensor._wrap(np.ascontiguousarray(a), t._dev)

    def sub(x):
        return swap.get(id(x), x) if isinstance(x, Tensor) else x
    return tuple(sub(a) for a in args), {k: sub(v) for k, v in kwargs.items()}, new_size


def _same(a, b) -> bool:
    """Equality of attribute values (arrays, slices, nested tuples, dicts)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and \
            bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, slice) and isinstance(b, slice):
        return _same((a.start, a.stop, a.step), (b.start, b.stop, b.step))
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return a is b


def _align(ga, gb, symbol: str, sizes: tuple):
    """Pair the values and nodes of two traces of one function; a difference in structure
    means Python code depends on the dynamic axis' size."""
    vmap: dict = {}
    nmap: dict = {}

    def mismatch(where: str, detail: str):
        hint = " (an example size of 1 often causes this: a size-1 dim broadcasts or " \
               "squeezes; use 2 or more)" if sizes[0] == 1 else ""
        raise ExportError(
            f"ember.onnx.export: the traced graph changes when dynamic axis {symbol!r} "
            f"changes size ({sizes[0]} -> {sizes[1]}): {detail}"
            + (f" at {where}" if where else "") + ". The model's Python code depends on that "
            f"size (a loop over it, a branch on it, a shape computed from it); export without "
            f"that dynamic axis or make the code size-independent{hint}.",
            [("", where, detail)])

    def pair(va, vb, where):
        prev = vmap.get(id(va))
        if prev is not None:
            if prev is not vb:
                mismatch(where, "the data flow differs")
            return
        if va.kind != vb.kind or va.dtype != vb.dtype or len(va.shape) != len(vb.shape) or \
                (va.kind == "capture" and va.tensor is not vb.tensor) or \
                (va.kind == "input" and va.index != vb.index):
            mismatch(where, f"a {va.kind} {va.dtype}{list(va.shape)} is a {vb.kind} "
                            f"{vb.dtype}{list(vb.shape)}")
        vmap[id(va)] = vb

    for va, vb in zip(ga.inputs, gb.inputs):
        pair(va, vb, "")
    for i, (na, nb) in enumerate(zip(ga.nodes, gb.nodes)):
        if na.op.name != nb.op.name or len(na.inputs) != len(nb.inputs) or \
                len(na.outputs) != len(nb.outputs) or na.attrs.keys() != nb.attrs.keys():
            mismatch(na.where, f"op '{na.op.name}' became '{nb.op.name}'")
        for va, vb in zip(na.inputs, nb.inputs):
            pair(va, vb, na.where)
        for va, vb in zip(na.outputs, nb.outputs):
            pair(va, vb, na.where)
        nmap[id(na)] = nb
    if len(ga.nodes) != len(gb.nodes):
        longer = ga if len(ga.nodes) > len(gb.nodes) else gb
        extra = longer.nodes[min(len(ga.nodes), len(gb.nodes))]
        mismatch(extra.where, f"{len(ga.nodes)} ops became {len(gb.nodes)}")
    if len(ga.outputs) != len(gb.outputs):
        mismatch("", f"{len(ga.outputs)} outputs became {len(gb.outputs)}")
    for va, vb in zip(ga.outputs, gb.outputs):
        pair(va, vb, "")
    return vmap, nmap


# ----- what the rules see about each value: shapes and constants per trace ------------------


class _TraceInfo:
    """Per-trace shapes, attributes and constants of the exported graph's values."""

    def __init__(self, vmaps, nmaps, symbols, params_are_constants: bool):
        self.vmaps = vmaps          # one {id(value): value in probe k} per probe
        self.nmaps = nmaps          # one {id(node): node in probe k} per probe
        self.symbols = symbols      # [(name, per-trace sizes, (onnx input, Value, axis))]
        self.params_are_constants = params_are_constants
        self.hints: dict = {}       # id(const) -> initializer name for folded constants
        self.folded: dict = {}      # id(const) -> the node folded into it
        self.inputs: list = []      # (onnx name, Value) of the graph's tensor inputs

    def shapes(self, v) -> list:
        return [v.shape] + [m[id(v)].shape if id(v) in m else v.shape for m in self.vmaps]

    def attrs(self, node) -> list:
        return [node.attrs] + [m[id(node)].attrs if id(node) in m else node.attrs
                               for m in self.nmaps]

    def dynamic_attrs(self, node) -> bool:
        a = node.attrs
        return any(not _same(a, b) for b in self.attrs(node)[1:])

    def const_traces(self, v) -> list:
        return [v.data] + [m[id(v)].data if id(v) in m else v.data for m in self.vmaps]

    def static_value(self, v):
        if v.kind == "capture":
            return v.tensor._data if self.params_are_constants else None
        if v.kind == "const":
            ds = self.const_traces(v)
            if all(_same(ds[0], d) for d in ds[1:]):
                return v.data
        return None

    def input_sources(self, b) -> list:
        return list(self.inputs)

    def constant_name(self, b: Emitter, v) -> str:
        """Initializer (or, for a constant whose shape follows a dynamic axis, the nodes
        computing it) for a capture or a constant."""
        if v.kind == "capture":
            return b.const(v.tensor._data, name=v.name)
        data = self.static_value(v)
        if data is not None:
            return b.const(data, name=self.hints.get(id(v)))
        return _dynamic_constant(b, v, self.const_traces(v), self.shapes(v))


def _dynamic_constant(b: Emitter, v, datas, shapes) -> str:
    """A constant made by ``zeros``/``ones``/``full``/``arange`` with a size that follows a
    dynamic axis: ``ConstantOfShape`` or ``Range`` computing it at run time."""
    from onnx import numpy_helper
    flat = [np.asarray(d).reshape(-1) for d in datas]
    if all(f.size for f in flat):
        fill = flat[0][0]
        if all((f == fill).all() or (f != f).all() and fill != fill for f in flat):
            value = numpy_helper.from_array(np.asarray([fill], dtype=v.dtype))
            return b.op("ConstantOfShape", [b.sizes(shapes, what="constant's shape")],
                        value=value)
    if all(len(s) == 1 for s in shapes) and all(f.size >= 2 for f in flat):
        start, step = flat[0][0], flat[0][1] - flat[0][0]
        if all(np.array_equal(f, (start + step * np.arange(f.size)).astype(v.dtype))
               for f in flat):
            n = b.int_of([s[0] for s in shapes])
            if n is not None:
                count = b.cast(b.squeeze(n, [0]), v.dtype)
                st, dt = b.scalar(start, v.dtype), b.scalar(step, v.dtype)
                limit = b.op("Add", [st, b.op("Mul", [count, dt])])
                return b.op("Range", [st, limit, dt])
    raise Unsupported(f"a constant {v.dtype}{list(v.shape)} made in Python has values or a "
                      f"size that depend on a dynamic axis; build it with ember ops from the "
                      f"input (e.g. zeros_like) so export can compute it")


# ----- graph passes on the IR ---------------------------------------------------------------


def _fold(graph, info: _TraceInfo):
    """Constant folding: a node whose inputs are all constant to the file (constants with
    the same value in every trace, and parameters when they are stored in it) becomes an
    initializer, unless that would blow up the file (an expand of a scalar)."""
    replace: dict = {}
    kept = []
    for node in graph.nodes:
        node.inputs = [replace.get(id(v), v) for v in node.inputs]
        arrays = [info.static_value(v) for v in node.inputs]
        if node.inputs and all(a is not None for a in arrays) and \
                foldable(node.op) and not info.dynamic_attrs(node):
            out_size = sum(int(np.prod(o.shape)) for o in node.outputs)
            if out_size <= max(1024, max(a.size for a in arrays)):
                try:
                    out = node.op.forward(np, *arrays, **node.attrs)
                except Exception:  # noqa: BLE001 - leave it to run in the file
                    out = None
                if out is not None:
                    if not node.op.extra:
                        outs = (out,)
                    else:
                        outs = (out[0],) + (tuple(out[1]) if node.extra_tuple else (out[1],))
                    base = next((_label(info, v) for v in node.inputs
                                 if _label(info, v) is not None), None)
                    for o, arr in zip(node.outputs, outs):
                        c = graph.add_const(np.asarray(arr), name=o.name)
                        if base is not None:
                            info.hints[id(c)] = base + _step(node)
                        info.folded[id(c)] = node
                        replace[id(o)] = c
                    continue
        kept.append(node)
    graph.nodes = kept
    graph.replace_values(replace)


def _label(info, v):
    return v.name if v.kind == "capture" else info.hints.get(id(v))


def _step(node) -> str:
    """How a folded initializer's name shows the op that made it: ``w[0:16]``, ``v/rsqrt``."""
    if node.op.name == "getitem":
        parts = []
        for k in node.attrs["key"]:
            if isinstance(k, slice):
                parts.append(":".join("" if x is None else str(x)
                                      for x in (k.start, k.stop, k.step)[:2 + (k.step is not
                                                                              None)]))
            elif isinstance(k, (int, np.integer)):
                parts.append(str(int(k)))
            else:
                return "/getitem"
        return f"[{', '.join(parts)}]"
    return f"/{node.op.name}"


def _optimize(graph, info: _TraceInfo, fold: bool) -> None:
    graph.mutations = []      # an exported model is a pure function of its inputs
    graph.grad_writes = []
    if fold:
        _fold(graph, info)
    # CSE keys on the first trace's attributes: a node whose attributes change with a
    # dynamic axis gets an unhashable marker so that it is never merged with a look-alike
    marked = [n for n in graph.nodes if info.dynamic_attrs(n)]
    for n in marked:
        n.attrs["__ember_dynamic__"] = {}
    eliminate_common_subexpressions(graph)
    for n in marked:
        n.attrs.pop("__ember_dynamic__", None)
    eliminate_dead_code(graph)


# ----- naming captures ----------------------------------------------------------------------


def _name_captures(graph, module, fn) -> None:
    """Captures get their state_dict names (``fc1.weight``); a plain function's globals and
    closure variables their Python names."""
    names: dict = {}
    if module is not None:
        for n, t in list(module.named_parameters()) + list(module.named_buffers()):
            names.setdefault(id(t), n)
    else:
        code = getattr(fn, "__code__", None)
        if code is not None:
            for var, cell in zip(code.co_freevars, fn.__closure__ or ()):
                try:
                    names.setdefault(id(cell.cell_contents), var)
                except ValueError:
                    pass
            g = getattr(fn, "__globals__", {})
            for var in code.co_names:
                if isinstance(g.get(var), Tensor):
                    names.setdefault(id(g[var]), var)
    used: set = set()
    for i, v in enumerate(graph.captures):
        name = names.get(id(v.tensor), f"param_{i}")
        base, k = name, 1
        while name in used:
            name = f"{base}_{k}"
            k += 1
        used.add(name)
        v.name = name


# ----- cleaning the ONNX graph --------------------------------------------------------------


# one input, same shape out, no axis: a Transpose commutes with them
_UNARY_ELEMENTWISE = {"Relu", "Sigmoid", "Tanh", "Exp", "Log", "Abs", "Neg", "Sqrt", "Erf",
                      "Softplus", "Elu", "Selu", "LeakyRelu", "HardSigmoid", "Floor", "Ceil",
                      "Round", "Sign", "Reciprocal", "Sin", "Cos", "Not", "IsNaN", "Cast"}


def _consumers(nodes) -> dict:
    out: dict = {}
    for n in nodes:
        for i in n.input:
            if i:
                out.setdefault(i, []).append(n)
    return out


def _rename_uses(nodes, old: str, new: str) -> None:
    for n in nodes:
        for k, i in enumerate(n.input):
            if i == old:
                n.input[k] = new


def _clean(nodes, initializers: dict, graph_inputs: list, graph_outputs: list) -> list:
    """Drop Identity nodes, compose Transpose pairs, merge Reshape pairs, remove dead nodes
    and unused initializers."""
    from onnx import helper
    outs = set(graph_outputs)
    fixed = set(graph_inputs) | set(initializers)
    changed = True
    while changed:
        changed = False
        # the same node twice (both directions of an RNN transposing one input)
        seen: dict = {}
        for n in list(nodes):
            key = (n.op_type, n.domain, tuple(n.input), len(n.output),
                   tuple(a.SerializeToString() for a in n.attribute))
            first = seen.setdefault(key, n)
            if first is not n and not any(o in outs for o in n.output):
                for old, new in zip(n.output, first.output):
                    _rename_uses(nodes, old, new)
                nodes.remove(n)
                changed = True
        producer = {o: n for n in nodes for o in n.output}
        users = _consumers(nodes)
        for n in list(nodes):
            if n.op_type == "Identity":
                src, dst = n.input[0], n.output[0]
                if dst in outs:
                    p = producer.get(src)
                    if src in fixed or src in outs or p is None:
                        continue
                    # the producer writes the graph output directly
                    p.output[list(p.output).index(src)] = dst
                    _rename_uses(nodes, src, dst)
                else:
                    _rename_uses(nodes, dst, src)
                nodes.remove(n)
                changed = True
                break
            p = producer.get(n.input[0]) if n.input else None
            if p is None or len(users.get(n.input[0], [])) != 1 or n.input[0] in outs:
                continue
            if n.op_type in _UNARY_ELEMENTWISE and p.op_type == "Transpose" and \
                    len(n.input) == 1 and n.output[0] not in outs:
                # x -> Transpose -> Relu  becomes  x -> Relu -> Transpose, so that the
                # transpose meets (and cancels) the next one (channels-last layers)
                x, mid, y = p.input[0], p.output[0], n.output[0]
                n.input[0], n.output[0], p.input[0], p.output[0] = x, mid, mid, y
                nodes.remove(p)
                nodes.insert(nodes.index(n) + 1, p)
                changed = True
                break
            if n.op_type == "Transpose" and p.op_type == "Transpose":
                p1 = list(p.attribute[0].ints)
                p2 = list(n.attribute[0].ints)
                perm = [p1[j] for j in p2]
                if perm == list(range(len(perm))):
                    if n.output[0] in outs:
                        continue
                    _rename_uses(nodes, n.output[0], p.input[0])
                    nodes.remove(n)
                else:
                    del n.attribute[:]
                    n.attribute.append(helper.make_attribute("perm", perm))
                    n.input[0] = p.input[0]
                nodes.remove(p)
                changed = True
                break
            if n.op_type == "Reshape" and p.op_type == "Reshape" and n.input[1] in initializers:
                target = initializers[n.input[1]]
                if (target != 0).all():
                    n.input[0] = p.input[0]
                    nodes.remove(p)
                    changed = True
                    break
    # dead nodes, then unused initializers
    live = set(outs)
    kept = []
    for n in reversed(nodes):
        if any(o in live for o in n.output):
            kept.append(n)
            live.update(i for i in n.input if i)
    for name in list(initializers):
        if name not in live:
            del initializers[name]
    return kept[::-1]


def _final_names(nodes, keep: set) -> None:
    """Unique node names (``/fc1/Gemm``, ``/fc1/Gemm_1``) and tensor names after them."""
    count: Counter = Counter()
    rename: dict = {}
    for n in nodes:
        base = n.name or f"/{n.op_type}"
        k = count[base]
        count[base] += 1
        n.name = base if k == 0 else f"{base}_{k}"
        for i, o in enumerate(n.output):
            if o and o not in keep and o.startswith("_t"):
                rename[o] = f"{n.name}_output_{i}"
                n.output[i] = rename[o]
    for n in nodes:
        for k, i in enumerate(n.input):
            if i in rename:
                n.input[k] = rename[i]


# ----- saving -------------------------------------------------------------------------------


def _save(model, f) -> None:
    data = model.SerializeToString()
    if hasattr(f, "write"):
        f.write(data)
        return
    write_atomic(f, data)  # a crash leaves the previous file whole


# ----- the export, step by step ------------------------------------------------------------


def _dynamic_inputs(dynamic_axes: dict, in_names: list, tensors: list):
    """({input index: {axis: symbol}}, {symbol: its size in the example})."""
    axes_of_input: dict = {}
    size_of: dict = {}
    for i, (name, t) in enumerate(zip(in_names, tensors)):
        if name not in dynamic_axes:
            continue
        axes_of_input[i] = _axes_spec(dynamic_axes[name], "input", name, t.ndim)
        for ax, sym in axes_of_input[i].items():
            n = t.shape[ax]
            if n == 0:
                raise ValueError(f"ember.onnx.export: dynamic axis {ax} of input {name!r} has "
                                 f"size 0 in the example; give it a size >= 2")
            if size_of.setdefault(sym, n) != n:
                raise ValueError(f"ember.onnx.export: dynamic axis {sym!r} has size "
                                 f"{size_of[sym]} in one input and {n} in input {name!r}")
    return axes_of_input, size_of


def _trace_all(fn, module, args, kwargs, training, axes_of_input, size_of):
    """The graph of the example call, and the value/node maps to one probe trace per
    dynamic axis name; the module's train/eval flags and buffers are left as found."""
    modes = [(m, m.training) for m in module.modules()] if module is not None else []
    # tracing runs forward; in training mode that would update BatchNorm's statistics
    buffers = [(t, t._data.copy()) for t in module.buffers()] if module is not None else []
    try:
        if module is not None and training != "preserve":
            module.train(training == "train")
        graph, tracer = _trace(fn, module, args, kwargs)
        vmaps, nmaps, probes = [], [], []
        for sym in size_of:
            pargs, pkwargs, new = _probe(args, kwargs, axes_of_input, sym, size_of)
            try:
                g2, _ = _trace(fn, module, pargs, pkwargs)
            except ExportError:
                raise
            except Exception as e:
                raise ExportError(f"ember.onnx.export: running the model with dynamic axis "
                                  f"{sym!r} at size {new} (instead of {size_of[sym]}) failed: "
                                  f"{type(e).__name__}: {e}") from e
            vm, nm = _align(graph, g2, sym, (size_of[sym], new))
            vmaps.append(vm)
            nmaps.append(nm)
            probes.append(new)
    finally:
        for m, mode in modes:
            m.training = mode
        for t, data in buffers:
            t._data[...] = data
    return graph, tracer, vmaps, nmaps, probes


def _problems_error(what: str, problems: list) -> ExportError:
    problems = list(dict.fromkeys(problems))
    lines = "\n".join(f"  op '{op}' at {w or '<unknown line>'}: {why}" for op, w, why in problems)
    return ExportError(f"ember.onnx.export: {len(problems)} {what} of the model can't be "
                       f"exported to ONNX:\n{lines}", problems)


def _check_rules(graph) -> None:
    """Every op needs a rule: all that lack one are reported at once."""
    missing = []
    for node in graph.nodes:
        if node.op.onnx is None:
            why = NOT_EXPORTABLE.get(node.op.name) or (
                "a training-only op (gradients, optimiser updates)"
                if is_training_only(node.op.name) else "no ONNX export rule")
            missing.append((node.op.name, node.where, why))
    if missing:
        raise _problems_error("op(s)", missing)


def _emit(b: Emitter, graph, scopes: dict, out_names: list) -> None:
    """Run every node's rule; the node producing a graph output writes its name directly.
    Nodes that can't be exported are all reported in one error."""
    problems = []
    for node in graph.nodes:
        b.node = node
        b.scope = scopes.get(id(node), "")
        b.read_per_trace = set()
        try:
            outs = node.op.onnx(b, node)
            _check_attrs_read(b, node)
        except _Skip:  # it reads a failed node's output: that failure is reported
            outs = None
        except Unsupported as e:
            problems.append((node.op.name, node.where, str(e)))
            outs = None
        if outs is None:
            for v in node.outputs:
                b.fail(v)
            continue
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        for v, name in zip(node.outputs, outs):
            if name is not None:
                b.bind(v, name)
    b.node, b.scope = None, ""
    renamed: dict = {}
    for v, name in zip(graph.outputs, out_names):
        try:
            src = b.name(v)
        except _Skip:
            continue
        except Unsupported as e:
            problems.append(("output", "", str(e)))
            continue
        src = renamed.get(src, src)
        produced = {o: n for n in b.nodes for o in n.output}
        if src in produced and src.startswith("_t"):
            n = produced[src]
            n.output[list(n.output).index(src)] = name
            _rename_uses(b.nodes, src, name)
            renamed[src] = name
        else:  # an input, a weight or another output returned again
            b.op("Identity", [src])
            b.nodes[-1].output[0] = name
    if problems:
        raise _problems_error("node(s)", problems)


def _check_attrs_read(b: Emitter, node) -> None:
    """An attribute that changes with a dynamic axis must have been read per trace
    (``b.attr``); a rule that used the example's value would bake that size in."""
    traces = b.info.attrs(node)
    for key, value in node.attrs.items():
        if key in b.read_per_trace:
            continue
        other = next((t[key] for t in traces[1:] if not _same(value, t.get(key))), None)
        if other is not None:
            raise Unsupported(f"its attribute {key}={_short(value)} changes with a dynamic "
                              f"axis (to {_short(other)}), which this op's ONNX form can't "
                              f"compute from the input shapes")


def _short(v) -> str:
    return f"array{list(v.shape)}" if isinstance(v, np.ndarray) else repr(v)


def _output_dims(name, v, info: _TraceInfo, given: dict) -> list:
    """Each output dim: its size, the user's name for it, the dynamic axis it equals in
    every trace, or a fresh name where it changes otherwise."""
    dims = []
    ts = info.shapes(v)
    for k, d in enumerate(v.shape):
        col = [t[k] for t in ts]
        if k in given:
            dims.append(given[k])
        elif all(c == d for c in col):
            dims.append(d)
        else:
            dims.append(next((s for s, sizes, _ in info.symbols if sizes == col),
                             f"{name}_dynamic_axes_{k + 1}"))
    return dims


# ----- the public function ------------------------------------------------------------------


def export(model_or_fn, args, f=None, input_names=None, output_names=None,
           dynamic_axes=None, opset_version: int | None = None,
           do_constant_folding: bool = True, export_params: bool = True,
           training: str = "eval", keep_initializers_as_inputs: bool = False,
           verbose: bool = False, doc_string: str | None = None):
    """Export a Module, an ``ember.jit`` function or a plain function to ONNX.

    ``args``: the example input (a Tensor, or a tuple of arguments whose last item may be a
    dict of keyword arguments). ``f``: a path or a binary file object (None: only return the
    ModelProto). ``dynamic_axes``: per input/output name, ``{axis: "name"}`` or a list of
    axes whose size may change (``{"input": {0: "batch"}, "output": {0: "batch"}}``).
    ``opset_version``: 17 to 21 (default 18). ``training``: ``"eval"`` (default: the model
    is put in eval mode for the export, then restored), ``"train"`` or ``"preserve"``.
    ``export_params=False`` makes the weights graph inputs. Returns the ``onnx.ModelProto``.

    Example::

        ember.onnx.export(net, ember.randn(1, 784), "net.onnx",
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    """
    onnx = _require_onnx()
    from onnx import helper, numpy_helper
    from .. import __version__
    from . import export_ops  # noqa: F401 - fills OPS[...].onnx

    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"ember.onnx.export: opset_version must be between {MIN_OPSET} and "
                         f"{MAX_OPSET}, got {opset_version}")
    if training not in ("eval", "train", "preserve"):
        raise ValueError(f"ember.onnx.export: training must be 'eval', 'train' or 'preserve', "
                         f"got {training!r}")
    fn, module, graph_name = _callable(model_or_fn)
    args, kwargs = _split_args(args)
    tensors = _tensor_args(args, kwargs)
    if not tensors:
        raise ValueError("ember.onnx.export: args hold no tensors; the exported graph needs "
                         "at least one input")
    in_names = _default_names("input", len(tensors), input_names)
    dynamic_axes = dict(dynamic_axes or {})
    axes_of_input, size_of = _dynamic_inputs(dynamic_axes, in_names, tensors)

    graph, tracer, vmaps, nmaps, probes = _trace_all(fn, module, args, kwargs, training,
                                                     axes_of_input, size_of)
    out_names = _default_names("output", len(graph.outputs), output_names)
    unknown = set(dynamic_axes) - set(in_names) - set(out_names)
    if unknown:
        raise ValueError(f"ember.onnx.export: dynamic_axes names {sorted(unknown)} are "
                         f"neither inputs {in_names} nor outputs {out_names}")
    _check_rules(graph)
    _name_captures(graph, module, fn)
    info = _TraceInfo(vmaps, nmaps, [], export_params)
    _optimize(graph, info, do_constant_folding)

    b = Emitter(info, opset)
    for v, name in zip(graph.inputs, in_names):
        b.bind(v, name)
        info.inputs.append((name, v))
    for k, (sym, new) in enumerate(zip(size_of, probes)):
        # trace 0 is the example, trace k + 1 changes this axis only
        sizes = [size_of[sym]] + [new if j == k else size_of[sym] for j in range(len(probes))]
        src = next((name, v, ax) for i, (name, v) in enumerate(info.inputs)
                   for ax, s in axes_of_input.get(i, {}).items() if s == sym)
        info.symbols.append((sym, sizes, src))
    param_inputs = [] if export_params else list(graph.captures)
    for v in param_inputs:
        b.bind(v, v.name)
    _emit(b, graph, tracer.scopes, out_names)
    nodes = _clean(b.nodes, b.initializers, in_names + [v.name for v in param_inputs],
                   out_names)
    _final_names(nodes, set(out_names) | set(in_names) | set(b.initializers))

    # graph inputs and outputs, with dim_param names on dynamic axes
    inputs = [helper.make_tensor_value_info(
        name, onnx_type(v.dtype), [axes_of_input.get(i, {}).get(k, d)
                                   for k, d in enumerate(v.shape)])
        for i, (name, v) in enumerate(info.inputs)]
    inputs += [helper.make_tensor_value_info(v.name, onnx_type(v.dtype), list(v.shape))
               for v in param_inputs]
    outputs = [helper.make_tensor_value_info(name, onnx_type(v.dtype), _output_dims(
        name, v, info, _axes_spec(dynamic_axes[name], "output", name, len(v.shape))
        if name in dynamic_axes else {})) for name, v in zip(out_names, graph.outputs)]
    # weights first (by their state_dict names), then the exporter's constants
    ordered = sorted(b.initializers.items(), key=lambda kv: kv[0].startswith("const_"))
    if sum(a.nbytes for _, a in ordered) >= 2 ** 31 - 2 ** 24:
        raise ExportError(f"ember.onnx.export: the weights of {graph_name} take more than "
                          f"2 GB, the protobuf limit of one ONNX file; ember does not write "
                          f"ONNX external data files")
    inits = [numpy_helper.from_array(a, name) for name, a in ordered]
    if keep_initializers_as_inputs:
        inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                   for t in inits]
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(helper.make_graph(nodes, graph_name, inputs, outputs, inits),
                              opset_imports=opsets, producer_name="ember",
                              producer_version=__version__,
                              doc_string=doc_string or f"{graph_name}, exported by ember "
                                                       f"{__version__}")
    model.ir_version = helper.find_min_ir_version_for(opsets)
    dims = {vi.name: {str(k): d.dim_param for k, d in enumerate(vi.type.tensor_type.shape.dim)
                      if d.dim_param} for vi in list(inputs[:len(in_names)]) + outputs}
    helper.set_model_props(model, {
        "ember_model": graph_name,
        "input_names": json.dumps(in_names),
        "output_names": json.dumps(out_names),
        "dynamic_axes": json.dumps({k: v for k, v in dims.items() if v})})
    try:
        onnx.checker.check_model(model, full_check=True)
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as e:  # noqa: BLE001 - an exporter bug: say so, with the model's text
        raise ExportError(f"ember.onnx.export: the ONNX graph built for {graph_name} fails "
                          f"onnx.checker ({type(e).__name__}: {e}); this is a bug in ember's "
                          f"exporter, please report it with the model") from e
    if verbose:
        print(onnx.printer.to_text(model.graph))
    if f is not None:
        _save(model, f)
    return model


__all__ = ["export", "ExportError"]
