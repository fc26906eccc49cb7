"""The functional API: a define-then-run graph of layer calls on KerasTensors.

``layer(keras_tensor)`` builds the layer and records a :class:`~.input_layer.Node` (see
:func:`symbolic_call`); ``Model(inputs, outputs)`` walks the nodes back from the outputs
(:func:`map_graph`, Keras's algorithm, so ``model.layers`` comes in Keras's order) and a
call runs the recorded layer calls in topological order on real tensors. The graph and the
layers' configs serialize to JSON (:meth:`Functional.get_config`) and rebuild without
running any code from the file (:meth:`Functional.from_config`).
"""
from __future__ import annotations

import collections

import numpy as np

from ... import _state
from ... import dtypes as _dt
from ...tensor import Tensor
from ..layers.layer import Layer
from .input_layer import InputLayer, KerasTensor, Node, _flatten, _pack_as
from .model import Model

__all__ = ["Functional", "symbolic_call", "map_graph"]


# ----- symbolic calls --------------------------------------------------------------------------


def _shapes_of(x):
    """The structure of ``x`` with every KerasTensor replaced by its shape tuple."""
    if isinstance(x, KerasTensor):
        return x.shape
    if isinstance(x, (list, tuple)):
        return [_shapes_of(v) for v in x]
    if isinstance(x, dict):
        return {k: _shapes_of(v) for k, v in x.items()}
    return x


def _has_symbolic(x) -> bool:
    return any(isinstance(v, KerasTensor) for v in _flatten(x))


def _is_shape(s) -> bool:
    return isinstance(s, (tuple, list)) and all(
        d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool)) for d in s)


def _placeholders(x, fill: int):
    """Zeros for every KerasTensor in ``x`` (unknown dims set to ``fill``)."""
    if isinstance(x, KerasTensor):
        shape = tuple(fill if d is None else d for d in x.shape)
        return Tensor._wrap(np.zeros(shape, dtype=_dt.as_dtype(x.dtype).np))
    if isinstance(x, (list, tuple)):
        return type(x)(_placeholders(v, fill) for v in x)
    if isinstance(x, dict):
        return {k: _placeholders(v, fill) for k, v in x.items()}
    return x


def _merge(a, b):
    """Shapes of two placeholder runs: dims that differ depend on an unknown input size."""
    if isinstance(a, Tensor):
        return (tuple(x if x == y else None for x, y in zip(a.shape, b.shape)), a.dtype.name)
    if isinstance(a, (list, tuple)):
        return [_merge(x, y) for x, y in zip(a, b)]
    if isinstance(a, dict):
        return {k: _merge(a[k], b[k]) for k in a}
    raise TypeError(f"layer returned a {type(a).__name__}, not a tensor")


def _run_on_placeholders(layer, args, kwargs):
    """Output (shape, dtype) structure from running ``layer`` on zeros twice."""
    outs = []
    prev = _state.grad_enabled
    _state.grad_enabled = False
    try:
        for fill in (2, 3):
            a = _placeholders(args, fill)
            kw = _placeholders(kwargs, fill)
            kw.setdefault("training", False)
            outs.append(Layer.__call__(layer, *a, **kw))
    finally:
        _state.grad_enabled = prev
    return _merge(outs[0], outs[1])


def _call_shape_fn(layer, args, kwargs):
    """``layer.compute_output_shape`` on the shapes of the symbolic arguments."""
    import inspect
    fn = layer.compute_output_shape
    pos = []
    for a in args:
        if not _has_symbolic(a):
            break
        pos.append(_shapes_of(a))
    named = {}
    sym_kwargs = {k: v for k, v in kwargs.items() if _has_symbolic(v)}
    if sym_kwargs:
        params = inspect.signature(fn).parameters
        var_kw = any(p.kind == p.VAR_KEYWORD for p in params.values())
        for k, v in sym_kwargs.items():
            if f"{k}_shape" in params:
                named[f"{k}_shape"] = _shapes_of(v)
            elif k in params or var_kw:
                named[k] = _shapes_of(v)
            else:
                raise TypeError(f"compute_output_shape of {layer.name} takes no {k!r}")
    return fn(*pos, **named)


def _output_dtype(layer, args, kwargs) -> str:
    inputs = [t for t in _flatten([list(args), list(kwargs.values())])
              if isinstance(t, KerasTensor)]
    floats = [t for t in inputs if _dt.as_dtype(t.dtype).is_floating_point]
    # a weightless layer passes integer data through (Reshape of token ids); anything with
    # weights or float inputs computes in its own dtype (Embedding: int ids -> float vectors)
    if inputs and not floats and not layer.weights:
        return inputs[0].dtype
    return layer.compute_dtype


def _infer(layer, args: tuple, kwargs: dict):
    """Build ``layer`` for the symbolic arguments; return its output (shape, dtype) structure."""
    if not layer.built:
        layer._build_from_call(args, kwargs)
    try:
        shapes = _call_shape_fn(layer, args, kwargs)
        dtype = _output_dtype(layer, args, kwargs)

        def attach(s):
            if _is_shape(s):
                return (tuple(s), dtype)
            if isinstance(s, (list, tuple)):
                return [attach(x) for x in s]
            if isinstance(s, dict):
                return {k: attach(v) for k, v in s.items()}
            raise TypeError(f"compute_output_shape of {layer.name} returned {s!r}")
        return attach(shapes)
    except (NotImplementedError, TypeError):
        return _run_on_placeholders(layer, args, kwargs)


def _make_tensors(spec):
    if isinstance(spec, tuple):  # (shape, dtype)
        return KerasTensor(spec[0], dtype=spec[1])
    if isinstance(spec, list):
        return [_make_tensors(s) for s in spec]
    return {k: _make_tensors(v) for k, v in spec.items()}


def symbolic_call(layer, args: tuple, kwargs: dict):
    """``layer(*args, **kwargs)`` with KerasTensor arguments: build, infer shapes, record."""
    if not args and "inputs" in kwargs:
        kwargs = dict(kwargs)
        args = (kwargs.pop("inputs"),)
    for t in _flatten([list(args), list(kwargs.values())]):
        if isinstance(t, KerasTensor) and t._keras_history is None:
            raise ValueError(f"Layer '{layer.name}' ({type(layer).__name__}) was called on a "
                             f"KerasTensor that no layer produced ({t}); use keras.Input() to "
                             f"make the inputs of a functional model")
    try:
        spec = _infer(layer, args, kwargs)
    except ValueError as e:
        shapes = [_shapes_of(a) for a in args]
        raise ValueError(f"Layer '{layer.name}' ({type(layer).__name__}) cannot be called on "
                         f"inputs of shape {shapes[0] if len(shapes) == 1 else shapes}: "
                         f"{e}") from e
    outputs = _make_tensors(spec)
    Node(layer, args, kwargs, outputs)
    return outputs


# ----- the graph ---------------------------------------------------------------------------------


def _node_key(node) -> tuple:
    return (id(node.operation), node.operation._inbound_nodes.index(node))


def _build_map(inputs: list, outputs: list) -> tuple:
    """Nodes from inputs to outputs (depth-first from each output), and first-visit order."""
    finished, in_progress = set(), set()
    ordered, op_index = [], {}
    input_ids = {id(x) for x in inputs}

    def visit(tensor):
        op, node_index, _ = tensor._keras_history
        node = op._inbound_nodes[node_index]
        if id(node) in finished:
            return
        if not node.is_input and id(tensor) in input_ids:
            finished.add(id(node))
            return
        if id(node) in in_progress:
            raise ValueError(f"Tensor {tensor} from layer '{op.name}' is part of a cycle")
        op_index.setdefault(id(op), len(op_index))
        in_progress.add(id(node))
        if not node.is_input:
            for t in node.input_tensors:
                visit(t)
        finished.add(id(node))
        in_progress.discard(id(node))
        ordered.append(node)

    for out in outputs:
        visit(out)
    return ordered, op_index


def map_graph(inputs: list, outputs: list) -> tuple:
    """``(node_keys, nodes_by_depth, operations)`` of the graph from ``inputs`` to ``outputs``.

    Depth 0 is the output side; layers come out by decreasing depth and, within a depth, in
    first-visit order: exactly Keras's ``model.layers`` order.
    """
    ordered, op_index = _build_map(inputs, outputs)
    in_graph = {id(n) for n in ordered}
    keys = {_node_key(n) for n in ordered}
    node_depth, op_depth, ops = {}, {}, {}
    for node in reversed(ordered):
        depth = node_depth.setdefault(id(node), 0)
        depth = max(depth, op_depth.get(id(node.operation), 0))
        op_depth[id(node.operation)] = depth
        ops[id(node.operation)] = node.operation
        node_depth[id(node)] = depth
        for parent in node.parent_nodes:
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    all_nodes = {id(n): n for n in ordered}
    for x in inputs:
        op, node_index, _ = x._keras_history
        if id(op) not in op_depth:
            node = op._inbound_nodes[node_index]
            if node.is_input:
                op_depth[id(op)] = 0
                ops[id(op)] = op
                op_index[id(op)] = -1
                node_depth[id(node)] = 0
                all_nodes[id(node)] = node
                keys.add(_node_key(node))
    nodes_by_depth = collections.defaultdict(list)
    for nid, depth in node_depth.items():
        nodes_by_depth[depth].append(all_nodes[nid])
    by_depth = collections.defaultdict(list)
    for oid, depth in op_depth.items():
        by_depth[depth].append(ops[oid])
    operations = []
    for depth in sorted(by_depth, reverse=True):
        operations.extend(sorted(by_depth[depth], key=lambda o: op_index[id(o)]))
    # every node's inputs must be computable from the model's inputs
    computable = {id(x) for x in inputs}
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            if node.is_input:
                continue  # an Input that is not among the model's inputs gives no value
            for x in node.input_tensors:
                if id(x) not in computable:
                    raise ValueError(f"Graph disconnected: cannot obtain the value of tensor {x} "
                                     f"at layer '{node.operation.name}': it does not come "
                                     f"from the model's inputs "
                                     f"{[t.name for t in inputs]}")
            computable.update(id(x) for x in node.outputs)
    names = [op.name for op in operations]
    for name in names:
        if names.count(name) != 1:
            raise ValueError(f'The name "{name}" is used {names.count(name)} times in the '
                             f"model. All layer names should be unique.")
    return keys, dict(nodes_by_depth), operations


class _Graph:
    """The recorded layer calls between a model's symbolic inputs and outputs."""

    def __init__(self, inputs, outputs) -> None:
        self.inputs_struct = inputs
        self.outputs_struct = outputs
        self.inputs = _flatten(inputs)
        self.outputs = _flatten(outputs)
        if not self.inputs:
            raise ValueError("Model: `inputs` cannot be empty")
        if not self.outputs:
            raise ValueError("Model: `outputs` cannot be empty")
        for what, group in (("inputs", self.inputs), ("outputs", self.outputs)):
            for x in group:
                if not isinstance(x, KerasTensor):
                    raise ValueError(f"Model: all `{what}` must be KerasTensors (from "
                                     f"keras.Input() and layer calls), got {x!r} of type "
                                     f"{type(x).__name__}")
        self.node_keys, self.nodes_by_depth, self.operations = map_graph(self.inputs,
                                                                         self.outputs)
        # the execution order, fixed once: inputs side (deepest) first
        self.order = [node for depth in sorted(self.nodes_by_depth, reverse=True)
                      for node in self.nodes_by_depth[depth] if not node.is_input]

    def run(self, flat_inputs: list, call) -> list:
        """Values of the outputs; ``call(layer, args, kwargs)`` computes one node."""
        values = {id(x): v for x, v in zip(self.inputs, flat_inputs)}
        for node in self.order:
            args, kwargs = node.fill_in(values)
            out = call(node.operation, args, kwargs)
            flat = _flatten(out)
            if len(flat) != len(node.outputs):
                raise ValueError(f"Layer '{node.operation.name}' returned {len(flat)} "
                                 f"tensor(s) but was recorded with {len(node.outputs)} when the "
                                 f"model was built")
            for x, y in zip(node.outputs, flat):
                values[id(x)] = y
        missing = [x.name for x in self.outputs if id(x) not in values]
        if missing:
            raise ValueError(f"Model outputs {missing} are not connected to the inputs")
        return [values[id(x)] for x in self.outputs]

    def layer_nodes(self, layer) -> list:
        """The nodes of ``layer`` that belong to this graph."""
        return [n for i, n in enumerate(layer.__dict__.get("_inbound_nodes", []))
                if (id(layer), i) in self.node_keys]


def _is_input_tensor(x) -> bool:
    h = x._keras_history if isinstance(x, KerasTensor) else None
    return h is not None and isinstance(h[0], InputLayer) and h[0]._inbound_nodes[h[1]].is_input


def _clone_from_intermediate(inputs, outputs) -> tuple:
    """New InputLayers in place of intermediate-tensor inputs, and the layers replayed on them
    (Keras's clone_graph_nodes): ``Model(hidden, out)`` becomes an ordinary graph."""
    flat = _flatten(inputs)
    new = [x if _is_input_tensor(x) else
           InputLayer(batch_shape=x.shape, dtype=x.dtype,
                      name=f"{x._keras_history[0].name}_input"
                      if x._keras_history is not None else None).output
           for x in flat]
    graph = _Graph(inputs, outputs)
    new_outputs = graph.run(new, lambda layer, a, kw: layer(*a, **kw))
    return _pack_as(inputs, iter(new)), _pack_as(outputs, iter(new_outputs))


class Functional(Model):
    """A model defined by ``keras.Model(inputs, outputs)``: what ``Model`` returns then."""

    def __init__(self, inputs, outputs, name: str | None = None, trainable: bool = True,
                 **kwargs) -> None:
        Model.__init__(self, inputs=inputs, outputs=outputs, name=name, trainable=trainable,
                       **kwargs)


# ----- config ------------------------------------------------------------------------------------


def _serialize_arg(x, reindex: dict):
    if isinstance(x, KerasTensor):
        op, node_index, tensor_index = x._keras_history
        return {"class_name": "__keras_tensor__",
                "config": {"shape": list(x.shape), "dtype": x.dtype,
                           "keras_history": [op.name, reindex[(id(op), node_index)],
                                             tensor_index]}}
    if isinstance(x, (list, tuple)):
        return [_serialize_arg(v, reindex) for v in x]
    if isinstance(x, dict):
        return {k: _serialize_arg(v, reindex) for k, v in x.items()}
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"cannot serialize the layer-call argument {x!r} of type "
                    f"{type(x).__name__} in a functional model config")


def graph_config(model) -> dict:
    """Keras's functional config: layer configs with their inbound nodes, inputs, outputs."""
    from ..saving import serialize_keras_object
    graph = model._graph
    reindex = {}
    for op in graph.operations:
        # Keras numbers a nested functional model's calls from 1 (its node 0 was the call
        # that built it in tf.keras); kept so files read the same in both
        kept = 1 if isinstance(op, Functional) else 0
        for i, _ in enumerate(op.__dict__.get("_inbound_nodes", [])):
            if (id(op), i) in graph.node_keys:
                reindex[(id(op), i)] = kept
                kept += 1
    layers = []
    for op in graph.operations:
        entry = serialize_keras_object(op)
        entry["name"] = op.name
        entry["inbound_nodes"] = [
            {"args": _serialize_arg(list(n.call_args), reindex),
             "kwargs": _serialize_arg(n.call_kwargs, reindex)}
            for n in graph.layer_nodes(op) if not n.is_input]
        layers.append(entry)

    def ref(t):
        op, node_index, tensor_index = t._keras_history
        return [op.name, reindex[(id(op), node_index)], tensor_index]

    def refs(struct):
        if isinstance(struct, KerasTensor):
            return ref(struct)
        if isinstance(struct, dict):
            return {k: refs(v) for k, v in struct.items()}
        return [refs(v) for v in struct]

    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": refs(graph.inputs_struct),
            "output_layers": refs(graph.outputs_struct)}


def graph_from_config(config: dict, custom_objects: dict | None = None) -> tuple:
    """Re-create the layers and replay their calls; return ``(inputs, outputs)`` structures."""
    from ..saving import deserialize_keras_object
    created: dict = {}
    pending: dict = {}
    for data in config["layers"]:
        layer = deserialize_keras_object(data, custom_objects=custom_objects)
        if not isinstance(layer, Layer):
            raise ValueError(f"functional config: layer entry {data.get('name')!r} "
                             f"deserialized to a {type(layer).__name__}, not a Layer")
        created[data["name"]] = layer
        if data.get("inbound_nodes"):
            pending[data["name"]] = list(data["inbound_nodes"])

    def tensor(name, node_index, tensor_index):
        layer = created[name]
        nodes = [n for n in layer.__dict__.get("_inbound_nodes", [])]
        if isinstance(layer, InputLayer):
            return nodes[0].outputs[tensor_index]
        # nodes recorded in this rebuild, in order (a layer built by build_from_config has none)
        own = layer.__dict__.setdefault("_rebuilt_nodes", [])
        if isinstance(layer, Functional):
            node_index -= 1
        if node_index >= len(own):
            raise IndexError(node_index)
        return own[node_index].outputs[tensor_index]

    def resolve(x):
        if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
            return tensor(*x["config"]["keras_history"])
        if isinstance(x, list):
            return [resolve(v) for v in x]
        if isinstance(x, dict):
            return {k: resolve(v) for k, v in x.items()}
        return x

    try:
        while pending:
            progressed = False
            for data in config["layers"]:
                name = data["name"]
                if name not in pending:
                    continue
                queue = pending[name]
                while queue:
                    try:
                        args = resolve(queue[0]["args"])
                        kwargs = resolve(queue[0].get("kwargs") or {})
                    except IndexError:
                        break  # an input of this call is not made yet
                    layer = created[name]
                    layer(*args, **kwargs)
                    layer.__dict__.setdefault("_rebuilt_nodes", []).append(
                        layer._inbound_nodes[-1])
                    queue.pop(0)
                    progressed = True
                if not queue:
                    del pending[name]
            if not progressed:
                raise ValueError(f"functional config: the graph has loops or disconnected "
                                 f"layers; these calls could not be resolved: "
                                 f"{sorted(pending)}")

        def refs(struct):
            if isinstance(struct, list) and len(struct) == 3 and isinstance(struct[0], str) \
                    and all(isinstance(v, int) for v in struct[1:]):
                return tensor(*struct)
            if isinstance(struct, dict):
                return {k: refs(v) for k, v in struct.items()}
            return [refs(v) for v in struct]

        inputs = refs(config["input_layers"])
        outputs = refs(config["output_layers"])
    finally:
        for layer in created.values():
            layer.__dict__.pop("_rebuilt_nodes", None)
    return inputs, outputs
