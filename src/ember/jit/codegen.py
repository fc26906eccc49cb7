"""Code generation: a Graph becomes straight-line Python that calls each op's array-level
forward directly — no Tensor objects, no dispatch, no autograd bookkeeping per node.

The generated function takes ``(inputs, captures)`` (lists of arrays) and returns
``(outputs, mutations)`` (tuples of arrays). ``source`` is kept for ``jit(f).code``.

When the memory planner ran (``graph.inplace``, see :mod:`.passes.memory`) and
``reuse_buffers`` is on, a planned node is emitted as its ufunc writing into the buffer of an
input that dies there (``v7 = xp.add(v3, v5, out=_reuse(v3, v5))``); a fused chain
(:mod:`.passes.fusion`) is one call of its kernel, with ``out=`` when planned.
"""
from __future__ import annotations

import linecache

from .ir import Graph

_LITERALS = (int, float, bool, str, type(None))


def _literal(v) -> bool:
    """True when ``repr(v)`` is Python source for ``v`` (exact builtin types only: a tuple
    subclass such as ``ember.Size`` or a NaN float is passed as a bound value instead)."""
    if type(v) in _LITERALS:
        return not (isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))))
    if type(v) is tuple:
        return all(_literal(x) for x in v)
    return False


def _update_in_place(graph, j, node) -> bool:
    """An optimiser update op may write straight into its state inputs when each one is a
    capture whose only write-back is this op's matching output, and nothing reads the old
    value after this node (output 0 updates input 0; extra k updates input 2 + k)."""
    written = {id(t): v for t, v in graph.mutations}
    pairs = [(0, 0)] + [(k + 2, k + 1) for k in range(len(node.outputs) - 1)]  # (in, out)
    later = {id(v) for n in graph.nodes[j + 1:] for v in n.inputs}
    ends = {id(v) for v in graph.outputs} | {id(v) for _, v in graph.grad_writes if v}
    for i, o in pairs:
        if i >= len(node.inputs) or o >= len(node.outputs):
            continue
        src = node.inputs[i]
        if src.kind != "capture" or written.get(id(src)) is not node.outputs[o] or \
                id(src) in later or id(src) in ends:
            return False
    return True


class Compiled:
    """The generated function plus what is needed to report errors at the user's line."""

    def __init__(self, fn, source: str, line_to_node: dict, filename: str):
        self.fn = fn
        self.source = source
        self.line_to_node = line_to_node
        self.filename = filename


_counter = [0]


def generate(graph: Graph, xp, *, reuse_buffers: bool = True) -> Compiled:
    from .passes.memory import HELPERS, emit
    names = {}
    env = {"xp": xp, **HELPERS}
    plan = (getattr(graph, "inplace", None) or {}) if reuse_buffers else {}
    lines = ["def compiled(inputs, captures, dynamics=()):"]

    def name(v):
        return names[id(v)]

    for i, v in enumerate(graph.inputs):
        names[id(v)] = f"i{i}"
        lines.append(f"    i{i} = inputs[{i}]")
    for i, v in enumerate(graph.captures):
        names[id(v)] = f"k{i}"
        lines.append(f"    k{i} = captures[{i}]")
    for i, v in enumerate(graph.dynamics):
        names[id(v)] = f"d{i}"
        lines.append(f"    d{i} = dynamics[{i}]")
    for i, v in enumerate(graph.consts):
        names[id(v)] = f"c{i}"
        env[f"c{i}"] = v.data
    line_to_node = {}
    # free each intermediate right after its last use, as eager code drops activations
    end_live = {id(v) for v in graph.live_values()}
    last_use = {}
    for j, node in enumerate(graph.nodes):
        for v in node.inputs:
            last_use[id(v)] = j
        for o in node.outputs:
            last_use.setdefault(id(o), j)
    dies_at: dict = {}
    for j, node in enumerate(graph.nodes):
        for o in node.outputs:
            if id(o) not in end_live:
                dies_at.setdefault(last_use[id(o)], []).append(o)
    for j, node in enumerate(graph.nodes):
        fname = f"f{j}_{''.join(c if c.isalnum() else '_' for c in node.op.name)}"
        env[fname] = node.op.forward
        args = ["xp"] + [name(v) for v in node.inputs]
        for k, val in node.attrs.items():
            if _literal(val):
                args.append(f"{k}={val!r}")
            else:
                env[f"a{j}_{k}"] = val
                args.append(f"{k}=a{j}_{k}")
        if getattr(node.op, "updates_state", False) and _update_in_place(graph, j, node):
            args.append("inplace=True")
        call = f"{fname}({', '.join(args)})"
        if j in plan:  # write into the buffer of input ``plan[j]``, which dies here
            ins = [name(v) for v in node.inputs]
            buf = ins[plan[j]]
            out = f"_reuse({', '.join(dict.fromkeys([buf] + ins))})"
            if getattr(node.op, "steps", None) is not None:
                call = f"{fname}({', '.join(['xp'] + ins)}, out={out})"
            else:
                def lit(val, j=j):
                    if _literal(val):
                        return repr(val)
                    key = f"a{j}_lit{len(env)}"
                    env[key] = val
                    return key
                call = emit(node.op.name, ins, node.attrs, out, lit)
        outs = []
        for o in node.outputs:
            names[id(o)] = f"v{o.id}"
            outs.append(f"v{o.id}")
        if node.op.extra and node.extra_tuple and len(outs) == 1:
            target = f"{outs[0]}, _"      # an empty tuple of extras
        elif len(outs) == 1:
            target = outs[0]
        elif node.extra_tuple:
            target = f"{outs[0]}, ({', '.join(outs[1:])},)"
        else:
            target = ", ".join(outs)
        lines.append(f"    {target} = {call}")
        line_to_node[len(lines)] = node
        dead = [name(v) for v in dies_at.get(j, ()) if id(v) in names]
        if dead:
            lines.append(f"    del {', '.join(dead)}")
    outs = ", ".join(name(v) for v in graph.outputs)
    muts = ", ".join(name(v) for _, v in graph.mutations)
    gw = [v for _, v in graph.grad_writes if v is not None]
    grads = ", ".join(name(v) for v in gw)
    lines.append(f"    return ({outs}{',' if graph.outputs else ''}), "
                 f"({muts}{',' if graph.mutations else ''}), ({grads}{',' if gw else ''})")
    source = "\n".join(lines) + "\n"
    _counter[0] += 1
    filename = f"<ember.jit graph {_counter[0]}>"
    code = compile(source, filename, "exec")
    exec(code, env)
    # register the source so tracebacks through the generated code show its lines
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return Compiled(env["compiled"], source, line_to_node, filename)
