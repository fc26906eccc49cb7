"""Backward graphs for jitted functions whose outputs the caller backpropagates through.

While tracing such a function the tracer also records its backward pass: ``autograd.grad``
of the differentiable outputs with respect to every input and parameter that requires grad,
seeded with placeholder gradients. The combined graph is then split in two:

- the *forward* graph computes the outputs plus the values the backward reads (its "saved"
  values, what eager autograd would keep on its nodes);
- the *backward* graph takes the output gradients and the saved values and returns one
  gradient per source.

At run time the forward graph's outputs get one autograd node whose rule runs the backward
graph, so ``jit(f)(x).sum().backward()`` fills ``x.grad`` and the parameters' ``.grad`` as
eager code does. Under ``create_graph=True`` the backward graph is interpreted with ember's
ops instead, so gradients of gradients stay differentiable.
"""
from __future__ import annotations

import numpy as np

from .. import _state
from ..autograd.graph import plain_node
from ..tensor import Tensor
from .ir import Graph, Value


def trace_backward(tracer, outputs: list, diff: list) -> tuple | None:
    """Record the backward of ``outputs[i] for i in diff`` into the tracer's graph.

    Returns ``(placeholders, sources, grads)``: the gradient placeholder values, the
    (value, tensor) pairs gradients are taken for, and the gradient value of each source
    (None where it gets none) — or None when the trace aborted.
    """
    from ..autograd.engine_api import grad as autograd_grad
    from .tracer import tracing
    g = tracer.graph
    sources = [(v, tracer._input_tensors[v.index]) for v in g.inputs
               if tracer._input_tensors[v.index].requires_grad]
    sources += [(v, v.tensor) for v in g.captures if v.tensor.requires_grad]
    if not sources:
        return [], [], []
    with tracing(tracer):
        seeds = []
        for i in diff:
            o = outputs[i]
            s = Tensor._wrap(o._dev.xp.zeros(o._data.shape, o._data.dtype), o._dev)
            tracer.add_input(s, name=f"grad_{i}")
            seeds.append(s)
        grads = autograd_grad([outputs[i] for i in diff], [t for _, t in sources],
                              grad_outputs=seeds, retain_graph=True, allow_unused=True)
        if tracer.aborted is not None:
            return None
        values = [tracer.value_of(x) if x is not None else None for x in grads]
    if tracer.aborted is not None:
        return None
    placeholders = g.inputs[len(g.inputs) - len(diff):]
    return placeholders, sources, values


def split(graph: Graph, n_inputs: int, n_outputs: int, placeholders: list) -> tuple:
    """Split a combined forward+backward graph (outputs: the function's ``n_outputs``
    results, then the gradients) into ``(forward, backward, n_saved)``.

    The forward graph returns the results and then the saved values; the backward graph's
    inputs are the placeholders followed by the saved values."""
    seed = {id(v) for v in placeholders}
    back_nodes, fwd_nodes = [], []
    for n in graph.nodes:
        if any(id(v) in seed for v in n.inputs):
            back_nodes.append(n)
            seed.update(id(o) for o in n.outputs)
        else:
            fwd_nodes.append(n)
    grads = graph.outputs[n_outputs:]
    # what the backward reads from the forward: node outputs, inputs and dynamic scalars
    # (captures are read live, constants are copied)
    back_out = {id(o) for n in back_nodes for o in n.outputs}
    saved: list[Value] = []
    seen = set()
    for v in [v for n in back_nodes for v in n.inputs] + grads:
        if id(v) in seen or id(v) in back_out or v.kind in ("capture", "const") or \
                any(v is p for p in placeholders):
            continue
        seen.add(id(v))
        saved.append(v)

    fwd = Graph()
    fwd.inputs = graph.inputs[:n_inputs]
    fwd.captures = list(graph.captures)
    fwd.dynamics = list(graph.dynamics)
    fwd.consts = list(graph.consts)
    fwd.nodes = fwd_nodes
    fwd.outputs = graph.outputs[:n_outputs] + saved
    fwd.mutations = list(graph.mutations)

    back = Graph()
    mapping = {}
    for i, p in enumerate(placeholders):
        back.inputs.append(p)
        p.index = i
    for v in saved:
        nv = Value(v.shape, v.dtype, "input", index=len(back.inputs), name=f"saved_{v.name}")
        back.inputs.append(nv)
        mapping[id(v)] = nv
    for n in back_nodes:
        n.inputs = [mapping.get(id(v), v) for v in n.inputs]
    back.captures = list(graph.captures)
    back.consts = list(graph.consts)
    back.nodes = back_nodes
    back.outputs = [mapping.get(id(v), v) for v in grads]
    return fwd, back, len(saved)


def interpret(graph: Graph, inputs: list, captures: list) -> list:
    """Run a graph op by op with ember's eager dispatch (differentiable; used for
    ``create_graph=True``). ``inputs``/``captures``: Tensors."""
    from ..ops.registry import apply
    env = {}
    for v, t in zip(graph.inputs, inputs):
        env[id(v)] = t
    for v, t in zip(graph.captures, captures):
        env[id(v)] = t
    for v in graph.consts:
        env[id(v)] = Tensor._wrap(v.data)
    for v in graph.dynamics:
        env[id(v)] = Tensor._wrap(np.asarray(v.tensor(), dtype=v.dtype))
    for n in graph.nodes:
        res = apply(n.op, tuple(env[id(v)] for v in n.inputs), n.attrs or None)
        if n.op.extra:
            out, extra = res
            env[id(n.outputs[0])] = out
            extras = list(extra) if isinstance(extra, tuple) else [extra]
            for o, e in zip(n.outputs[1:], extras):
                env[id(o)] = Tensor._wrap(e, out._dev)
        else:
            env[id(n.outputs[0])] = res
    return [env[id(v)] for v in graph.outputs]


def backward_op(name: str):
    """The op of the autograd nodes a compiled call attaches to its outputs."""
    from ..ops.registry import Op
    return Op(f"jit({name})", None, _run_backward)


def _run_backward(node, g):
    a = node.attrs
    dev = g._dev
    seeds = []
    for j, shape_dtype in enumerate(a["out_specs"]):
        if j == a["index"]:
            seeds.append(g)
        else:
            seeds.append(Tensor._wrap(dev.xp.zeros(*shape_dtype), dev))
    entry = a["entry"]
    caps = [v.tensor for v in entry.back_graph.captures]
    if _state.grad_enabled:
        # create_graph: the gradients must be differentiable functions of the inputs, so
        # rerun the forward with ember's ops to get saved values attached to the graph
        fwd = entry.graph
        outs = interpret(fwd, a["inputs"], [v.tensor for v in fwd.captures])
        grads = interpret(entry.back_graph, seeds + outs[entry.n_out:], caps)
    else:
        arrays = [s._data for s in seeds] + list(a["saved"])
        outs, _, _ = entry.back_compiled.fn(arrays, [c._data for c in caps], ())
        grads = [Tensor._wrap(o if isinstance(o, dev.xp.ndarray) else dev.xp.asarray(o),
                              dev) for o in outs]
    it = iter(grads)
    return tuple(next(it) if has else None for has in entry.source_has_grad)


def attach(entry, outputs: list, sources: list, saved: list, inputs: list) -> None:
    """Give the differentiable ``outputs`` (Tensors, in ``entry.diff`` order) one autograd
    node each whose rule runs the compiled backward graph."""
    specs = [(o.shape, o._data.dtype) for o in outputs]
    for j, t in enumerate(outputs):
        t.requires_grad = True
        t._node = plain_node(entry.backward_op, sources, {
            "entry": entry, "index": j, "out_specs": specs, "saved": saved, "inputs": inputs},
            t._data)
