"""``model.summary()``: Keras 3's table of layers, output shapes and parameter counts.

The layout follows Keras's (a box-drawn table like the ``rich`` one Keras prints, then the
totals with their memory size); the names, shapes and counts are Keras's exactly.
"""
from __future__ import annotations

import math
import re
import shutil

import numpy as np

from ... import dtypes as _dt

__all__ = ["print_summary", "summary_text", "readable_memory_size", "count_params"]


def count_params(weights) -> int:
    """The number of scalars in ``weights``."""
    return int(sum(math.prod(w.shape) for w in weights))


def _memory(weights) -> float:
    """Bytes held by the (distinct) weights."""
    unique = {id(w): w for w in weights}.values()
    return float(sum(math.prod(w.shape) * np.dtype(_dt.as_dtype(w.dtype).np).itemsize
                     for w in unique))


def readable_memory_size(size: float) -> str:
    """``211.60 KB``: Keras's units (powers of 1024, two decimals)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _format_shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _format_output(outputs) -> str:
    """One shape as ``(None, 10)``; several as Keras prints a list of them."""
    shapes = [_format_shape(t.shape) for t in outputs]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _layer_shape(layer, graph) -> str:
    nodes = graph.layer_nodes(layer) if graph is not None else []
    if not nodes:
        nodes = layer.__dict__.get("_inbound_nodes", [])
    if nodes:
        return _format_output(nodes[-1].outputs)
    build = layer.__dict__.get("_build_shapes")
    if not layer.built or not build:
        return "?"
    try:
        out = layer.compute_output_shape(*build["args"], **build["kwargs"])
    except Exception:  # a layer that can't tell its shape without data: Keras prints "?"
        return "?"

    def leaves(s):
        if isinstance(s, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer))
                                                for d in s):
            return [tuple(s)]
        if isinstance(s, dict):
            return [x for k in sorted(s) for x in leaves(s[k])]
        return [x for v in s for x in leaves(v)]
    shapes = [_format_shape(s) for s in leaves(out)]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _connections(layer, graph) -> str:
    parts = []
    for node in graph.layer_nodes(layer):
        for t in node.input_tensors:
            op, node_index, tensor_index = t._keras_history
            parts.append(f"{op.name}[{node_index}][{tensor_index}]")
    return ", ".join(parts) if parts else "-"


def _is_sequential_like(model) -> bool:
    from .sequential import Sequential
    graph = model._graph
    if isinstance(model, Sequential) or graph is None:
        return True
    nodes = []
    for depth_nodes in graph.nodes_by_depth.values():
        if len(depth_nodes) > 1 or (len(depth_nodes) == 1 and
                                    len(depth_nodes[0].input_tensors) > 1):
            return False
        nodes.extend(depth_nodes)
    ids = {id(n) for n in nodes}
    for layer in model.layers:  # a layer called twice (shared) makes it a graph
        if sum(id(n) in ids for n in layer.__dict__.get("_inbound_nodes", [])) > 1:
            return False
    return True


def _wrap(text: str, width: int) -> list:
    """Greedy word wrap; a word longer than the cell is cut with an ellipsis, as rich does."""
    lines, cur = [], ""
    for word in text.split(" "):
        if len(word) > width:
            word = word[:max(width - 1, 0)] + "…"
        if not cur:
            cur = word
        elif len(cur) + 1 + len(word) <= width:
            cur += " " + word
        else:
            lines.append(cur)
            cur = word
    lines.append(cur)
    return lines


def _layer_range(layers: list, layer_range) -> tuple:
    if layer_range is None:
        return 0, len(layers)
    if len(layer_range) != 2 or not all(isinstance(s, str) for s in layer_range):
        raise ValueError(f"summary: layer_range must be a list or tuple of 2 layer names (or "
                         f"regexes), got {layer_range!r}")
    lower = [i for i, x in enumerate(layers) if re.match(layer_range[0], x.name)]
    upper = [i for i, x in enumerate(layers) if re.match(layer_range[1], x.name)]
    if not lower or not upper:
        raise ValueError(f"summary: layer_range {layer_range} does not match the layer names "
                         f"{[x.name for x in layers]}")
    if min(lower) > max(upper):
        return min(upper), max(lower) + 1
    return min(lower), max(upper) + 1


def _optimizer_params(model):
    """``(count, bytes)`` of the optimizer's variables as Keras counts them, or None.

    Keras shows them once the model is compiled and its optimizer built: the iteration counter
    (int32), the learning rate (float32, unless a schedule gives it) and every slot
    (momentums, velocities...).
    """
    opt = getattr(model, "optimizer", None)
    if not getattr(model, "compiled", False) or opt is None or not getattr(opt, "built", False):
        return None
    variables = list(getattr(opt, "variables", None) or [])
    slots = variables[1:]  # variables[0] is `iterations`
    if not variables:  # an ember.optim optimizer: its per-parameter state
        state = getattr(opt, "state", None) or {}
        slots = [v for s in state.values() if isinstance(s, dict) for v in s.values()
                 if hasattr(v, "shape") and _dt.as_dtype(v.dtype).is_floating_point]
    lr_var = 0 if getattr(opt, "_schedule", None) is not None else 1
    return 1 + lr_var + count_params(slots), 4 + 4 * lr_var + _memory(slots)


def summary_text(model, line_length: int | None = None, positions=None,
                 expand_nested: bool = False, show_trainable: bool = False,
                 layer_range=None) -> str:
    """The summary of ``model`` as one string (what :func:`print_summary` prints)."""
    from ..layers.layer import Layer
    graph = model._graph
    sequential_like = _is_sequential_like(model)
    if sequential_like:
        default_length, positions = 88, positions or [0.45, 0.80, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #"]
        align = ["left", "left", "right"]
    else:
        default_length, positions = 108, positions or [0.3, 0.56, 0.74, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        align = ["left", "left", "right", "left"]
    if show_trainable:
        default_length += 12
        positions = [p * 0.90 for p in positions] + [1.0]
        header.append("Trainable")
        align.append("center")
    if len(positions) != len(header):
        raise ValueError(f"summary: positions must give {len(header)} column ends, got "
                         f"{positions!r}")
    if line_length is None:
        line_length = min(default_length, shutil.get_terminal_size((80, 24)).columns - 4)
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    # inner widths (between the bars) share what the bars leave, in the positions' proportions
    inner_total = line_length - (len(header) + 1)
    ends = [round(inner_total * p / positions[-1]) for p in positions]
    widths = [e - s for s, e in zip([0] + ends[:-1], ends)]
    if any(w < 4 for w in widths):
        raise ValueError(f"summary: line_length={line_length} is too narrow to print the "
                         f"summary")

    def fields(layer, prefix=""):
        name = f"{prefix}{layer.name} ({type(layer).__name__})"
        if not layer.built:
            params = "0 (unbuilt)"
        else:
            params = f"{layer.count_params():,}"
        row = [name, _layer_shape(layer, graph), params]
        if not sequential_like:
            row.append(_connections(layer, graph))
        if show_trainable:
            row.append(("Y" if layer.trainable else "N") if layer.weights else "-")
        return row

    def rows_of(layer, level=0):
        rows = [fields(layer, "   " * level + "└ " if level else "")]
        sub = getattr(layer, "layers", None) if isinstance(layer, Layer) else None
        if expand_nested and sub and hasattr(layer, "_graph"):
            for x in sub:
                rows.extend(rows_of(x, level + 1))
        return rows

    layers = model.layers
    lo, hi = _layer_range(layers, layer_range)
    rows = [r for layer in layers[lo:hi] for r in rows_of(layer)]

    def cell(text, width, how):
        content = width - 2
        if how == "right":
            return " " + text.rjust(content) + " "
        if how == "center":
            return " " + text.center(content) + " "
        return " " + text.ljust(content) + " "

    def render(row, bar):
        cols = [_wrap(text, w - 2) for text, w in zip(row, widths)]
        height = max(len(c) for c in cols)
        out = []
        for i in range(height):
            parts = [cell(c[i] if i < len(c) else "", w, a)
                     for c, w, a in zip(cols, widths, align)]
            out.append(bar + bar.join(parts) + bar)
        return out

    def rule(left, mid, right, ch):
        return left + mid.join(ch * w for w in widths) + right

    lines = [f'Model: "{model.name}"', rule("┏", "┳", "┓", "━")]
    lines += render(header, "┃")
    lines.append(rule("┡", "╇", "┩", "━"))
    for i, row in enumerate(rows):
        if i:
            lines.append(rule("├", "┼", "┤", "─"))
        lines += render(row, "│")
    lines.append(rule("└", "┴", "┘", "─"))

    trainable = model.trainable_weights
    non_trainable = model.non_trainable_weights
    opt = _optimizer_params(model)
    o_count, o_mem = opt if opt is not None else (0, 0.0)
    t_count, n_count = count_params(trainable), count_params(non_trainable)
    t_mem, n_mem = _memory(trainable), _memory(non_trainable)
    lines.append(f" Total params: {t_count + n_count + o_count:,} "
                 f"({readable_memory_size(t_mem + n_mem + o_mem)})")
    lines.append(f" Trainable params: {t_count:,} ({readable_memory_size(t_mem)})")
    lines.append(f" Non-trainable params: {n_count:,} ({readable_memory_size(n_mem)})")
    if opt is not None:
        lines.append(f" Optimizer params: {o_count:,} ({readable_memory_size(o_mem)})")
    return "\n".join(lines) + "\n"


def print_summary(model, line_length: int | None = None, positions=None, print_fn=None,
                  expand_nested: bool = False, show_trainable: bool = False,
                  layer_range=None) -> None:
    """Print the summary, or hand the whole text to ``print_fn`` (Keras 3 calls it once)."""
    text = summary_text(model, line_length=line_length, positions=positions,
                        expand_nested=expand_nested, show_trainable=show_trainable,
                        layer_range=layer_range)
    if print_fn is None:
        print(text, end="")
    else:
        print_fn(text)
