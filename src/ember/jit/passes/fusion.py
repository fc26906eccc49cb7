"""Elementwise fusion: a chain of elementwise nodes becomes one node running one kernel.

A chain is a sequence of nodes from :data:`.memory.ELEMENTWISE` where each step reads the
previous step's output, that output has no other reader and is not live at the end, and every
step has the same (floating) output shape and dtype. The chain becomes one node whose op is
named after its steps (``fused_add_mul_tanh``) and whose forward is a generated Python kernel:
the first step allocates (or writes into ``out``, a buffer chosen by the memory planner) and
every later step writes into that one buffer with ``out=``. Inputs may broadcast onto the
chain's shape; the buffer itself never changes shape. ``op.source`` holds the kernel's text.
"""
from __future__ import annotations

import itertools

from ..ir import Node
from .memory import HELPERS, emit, is_elementwise

_count = itertools.count()
_LITERALS = (int, float, bool, str, type(None))


def _chains(graph):
    users = graph.users()
    live = {id(v) for v in graph.live_values()}
    chain_of: dict = {}
    chains = []
    for node in graph.nodes:
        if getattr(node.op, "steps", None) is not None or not is_elementwise(node):
            continue
        out = node.outputs[0]
        home = None
        for v in node.inputs:
            if v.kind != "node":
                continue
            ch = chain_of.get(id(v.node))
            if ch is None or ch[-1] is not v.node or id(v) in live:
                continue
            if len({id(n) for n in users.get(id(v), [])}) != 1:
                continue
            if v.shape != out.shape or v.dtype != out.dtype:
                continue
            home = ch
            break
        if home is None:
            home = []
            chains.append(home)
        home.append(node)
        chain_of[id(node)] = home
    return [c for c in chains if len(c) > 1]


def _literal(v):
    if isinstance(v, _LITERALS) and not (isinstance(v, float) and not (abs(v) < float("inf"))):
        return repr(v)
    return None


def _kernel(chain):
    """Source and function of the kernel of ``chain``; its external inputs; first-only
    input positions."""
    inter = {id(n.outputs[0]) for n in chain[:-1]}
    ext: list = []
    pos: dict = {}
    for n in chain:
        for v in n.inputs:
            if id(v) not in inter and id(v) not in pos:
                pos[id(v)] = len(ext)
                ext.append(v)
    env = dict(HELPERS)
    consts = itertools.count()

    def lit(val):
        s = _literal(val)
        if s is None:
            s = f"_c{next(consts)}"
            env[s] = val
        return s

    names = [f"a{i}" for i in range(len(ext))]
    lines = [f"def kernel(xp, {', '.join(names)}, out=None):"]
    later = set()
    for k, n in enumerate(chain):
        args = ["t" if id(v) in inter else names[pos[id(v)]] for v in n.inputs]
        if k == 0:
            out = "out"
        else:
            later.update(pos[id(v)] for v in n.inputs if id(v) not in inter)
            others = [a for a in dict.fromkeys(args) if a != "t"]
            out = f"_reuse({', '.join(['t'] + others)})"
        lines.append(f"    t = {emit(n.op.name, args, n.attrs, out, lit)}  # {n.op.name}")
    lines.append("    return t")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<ember.jit fused kernel {next(_count)}>", "exec"), env)
    first_only = set(range(len(ext))) - later
    return source, env["kernel"], ext, first_only


def fuse_elementwise(graph):
    """Replace each elementwise chain by one fused node (in place); returns the graph."""
    from ...ops.registry import Op
    replace = {}
    drop = set()
    for chain in _chains(graph):
        source, fn, ext, first_only = _kernel(chain)
        op = Op("fused_" + "_".join(n.op.name for n in chain), fn)
        op.steps = tuple(n.op.name for n in chain)
        op.first_only = first_only
        op.source = source
        tail = chain[-1]
        fused = Node(op, ext, {}, [tail.outputs[0]], tail.where)
        tail.outputs[0].node = fused
        tail.outputs[0].index = 0
        replace[id(tail)] = fused
        drop.update(id(n) for n in chain[:-1])
    graph.nodes = [replace.get(id(n), n) for n in graph.nodes if id(n) not in drop]
    return graph
