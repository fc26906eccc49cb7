"""Control flow: If, Loop, Scan. Their subgraphs (already imported as Programs) run with
``ctx.run_graph`` and may read the enclosing graph's values. A condition or trip count is
read as a Python value: eagerly that is the ONNX semantics; under ember.jit a condition
computed from the inputs makes the call run eagerly (a static one is unrolled into the
trace, one step per iteration)."""
from __future__ import annotations

import numpy as np

from ...ops import shape as S
from ..load import onnx_dtype
from . import rule


@rule("If")
def _if(ctx, node, ins):
    cond = ctx.array(ins[0])
    if cond.size != 1:
        raise ctx.error(f"the condition must hold one value, got shape {cond.shape}")
    branch = node.attr("then_branch") if bool(cond.reshape(-1)[0]) else node.attr("else_branch")
    outs = ctx.run_graph(branch, {})
    if len(outs) != len([o for o in node.outputs]):
        raise ctx.error(f"the branch returns {len(outs)} values for {len(node.outputs)} outputs")
    return outs


def _loop_counter(node, graph):
    return graph.input_names[:1]  # the iteration number is a concrete Python int


def _empty_scan(ctx, graph, index, like=None):
    """A scan output of a loop that ran zero times: (0, *declared shape)."""
    _, code, dims = graph.output_types[index] if index < len(graph.output_types) else \
        (None, None, None)
    dt = onnx_dtype(code) if code else np.float32
    shape = (0,) + tuple(d or 0 for d in (dims or []))
    return ctx.const(np.zeros(shape, dt), dtype=dt)


@rule("Loop", static_inputs=_loop_counter)
def _loop(ctx, node, ins):
    body = node.attr("body")
    trips = ctx.scalar(ins[0]) if len(ins) > 0 and ins[0] is not None else None
    cond = bool(ctx.scalar(ins[1])) if len(ins) > 1 and ins[1] is not None else True
    carried = list(ins[2:])
    n_carried = len(carried)
    n_scan = len(body.output_names) - 1 - n_carried
    if len(body.input_names) != 2 + n_carried or n_scan < 0:
        raise ctx.error(f"the body takes {len(body.input_names)} inputs and returns "
                        f"{len(body.output_names)} outputs for {n_carried} loop-carried values")
    scans: list = [[] for _ in range(n_scan)]
    i = 0
    cond_in = ins[1] if len(ins) > 1 and ins[1] is not None else ctx.const(np.array(True))
    while cond and (trips is None or i < trips):
        feeds = dict(zip(body.input_names, [ctx.mark_static(ctx.const(np.array(i, np.int64))),
                                            cond_in] + carried))
        outs = ctx.run_graph(body, feeds)
        cond_in = outs[0]
        cond = bool(ctx.scalar(cond_in))
        carried = outs[1:1 + n_carried]
        for k, t in enumerate(outs[1 + n_carried:]):
            scans[k].append(t)
        i += 1
    stacked = [S.stack(s, 0) if s else _empty_scan(ctx, body, 1 + n_carried + k)
               for k, s in enumerate(scans)]
    return carried + stacked


def _scan_check(node, opset):
    dirs = (node.attr("scan_input_directions") or []) + (node.attr("scan_output_directions")
                                                          or [])
    if any(d not in (0, 1) for d in dirs):
        return f"scan directions {dirs} (expected 0 or 1)"
    return None


@rule("Scan", check=_scan_check)
def _scan(ctx, node, ins):
    body = node.attr("body")
    m = node.attr("num_scan_inputs")
    n_state = len(ins) - m
    states, xs = list(ins[:n_state]), list(ins[n_state:])
    in_axes = node.attr("scan_input_axes") or [0] * m
    in_dirs = node.attr("scan_input_directions") or [0] * m
    in_axes = [ctx.axis(a, x.ndim) for a, x in zip(in_axes, xs)]
    lengths = {x.shape[a] for x, a in zip(xs, in_axes)}
    if len(lengths) != 1:
        raise ctx.error(f"scan inputs have different lengths {sorted(lengths)} along their "
                        f"scan axes")
    T = lengths.pop()
    n_out = len(body.output_names) - n_state
    scans: list = [[] for _ in range(n_out)]
    for t in range(T):
        slices = [S.select(x, a, T - 1 - t if d else t) for x, a, d in zip(xs, in_axes, in_dirs)]
        outs = ctx.run_graph(body, dict(zip(body.input_names, states + slices)))
        states = outs[:n_state]
        for k, y in enumerate(outs[n_state:]):
            scans[k].append(y)
    out_axes = node.attr("scan_output_axes") or [0] * n_out
    out_dirs = node.attr("scan_output_directions") or [0] * n_out
    results = []
    for k, ys in enumerate(scans):
        if out_dirs[k]:
            ys = ys[::-1]
        if not ys:
            results.append(_empty_scan(ctx, body, n_state + k))
            continue
        axis = ctx.axis(out_axes[k], ys[0].ndim + 1)
        results.append(S.stack(ys, axis))
    return states + results
