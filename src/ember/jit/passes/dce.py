"""Dead-code elimination: drop nodes whose outputs nothing reads."""
from __future__ import annotations


def eliminate_dead_code(graph):
    live = {id(v) for v in graph.live_values()}
    kept = []
    for node in reversed(graph.nodes):
        if any(id(o) in live for o in node.outputs) or getattr(node.op, "random", False):
            kept.append(node)
            live.update(id(v) for v in node.inputs)
    graph.nodes = kept[::-1]
    graph.captures = [v for v in graph.captures if id(v) in live or
                      any(t is v for t, _ in graph.mutations + graph.grad_writes)]
    graph.consts = [v for v in graph.consts if id(v) in live]
    graph.dynamics = [v for v in graph.dynamics if id(v) in live]
    return graph
