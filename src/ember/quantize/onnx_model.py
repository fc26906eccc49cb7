"""Quantise an ONNX model file to int8, graph to graph (``ember quantize model.onnx``).

Every ``MatMul``, ``Gemm`` and ``Conv`` whose weight is an initializer gets an int8 weight
(symmetric, one scale per output channel), in the same two forms ember.quantize exports:

- ``dynamic``: ``DynamicQuantizeLinear -> MatMulInteger | ConvInteger -> Cast -> Mul ->
  Add`` (activations quantised to uint8 per tensor at run time);
- ``static``: QDQ — ``QuantizeLinear -> DequantizeLinear`` on the layer's input and output
  with ranges calibrated by running sample inputs through the model with ``ember.runtime``,
  the weight and an int32 bias through ``DequantizeLinear``. A layer whose output feeds only
  a ``Relu`` is quantised after the ReLU (the fused form).

Layers are quantised exactly as :mod:`ember.quantize` quantises them, so an ONNX file and an
ember model quantised either way compute the same values. Writing the result needs the
``onnx`` package (``pip install ember[onnx]``).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .observers import MinMaxObserver, quantize_weight

__all__ = ["quantize_onnx"]


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ember.quantize.quantize_onnx needs the 'onnx' package to write "
                          "ONNX files: pip install ember[onnx]") from None
    return onnx


class _Rewriter:
    def __init__(self, model):
        from onnx import numpy_helper
        self.model = model
        self.graph = model.graph
        self.inits = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.new_inits: dict = {}
        self.uses = Counter(i for n in self.graph.node for i in n.input if i)
        for o in self.graph.output:
            self.uses[o.name] += 1
        self._names = set(self.inits) | {o for n in self.graph.node for o in n.output} | \
            {i.name for i in self.graph.input}

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def const(self, base: str, array) -> str:
        name = self.fresh(base)
        self.new_inits[name] = np.asarray(array)
        return name

    def float_weight(self, name: str, rank: tuple) -> np.ndarray | None:
        w = self.inits.get(name)
        if w is None or w.dtype != np.float32 or w.ndim not in rank:
            return None
        return w


def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _layer_weights(rw: _Rewriter, node):
    """(weight as (out, in...) float32, bias or None, how to rebuild) for a quantisable
    node, else None."""
    if node.op_type == "MatMul" and len(node.input) == 2:
        w = rw.float_weight(node.input[1], (2,))
        return None if w is None else (w.T, None, "matmul")
    if node.op_type == "Gemm":
        a = _attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            return None
        w = rw.float_weight(node.input[1], (2,))
        if w is None:
            return None
        w = w if a.get("transB", 0) else w.T
        bias = rw.inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if bias is not None and (bias.dtype != np.float32 or bias.shape != (w.shape[0],)):
            return None  # a broadcast C: leave the layer in float
        return w, bias, "gemm"
    if node.op_type == "Conv":
        w = rw.float_weight(node.input[1], (3, 4, 5))
        if w is None:
            return None
        bias = rw.inits.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        return w, bias, "conv"
    return None


def _dynamic_layer(rw: _Rewriter, node, w, bias, kind) -> list:
    from onnx import helper
    qw, scale = quantize_weight(w, axis=0)
    base = node.input[1]
    x, y = node.input[0], node.output[0]
    xq, xs, xz = (rw.fresh(f"{x}_quantized"), rw.fresh(f"{x}_scale"),
                  rw.fresh(f"{x}_zero_point"))
    nodes = [helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xz],
                              name=rw.fresh(f"{node.name or y}_quantize_input"))]
    acc = rw.fresh(f"{y}_int32")
    if kind == "conv":
        wq = rw.const(f"{base}_int8", qw)
        ws = rw.const(f"{base}_scale", scale.reshape((-1,) + (1,) * (w.ndim - 2)))
        conv_attrs = {k: v for k, v in _attrs(node).items()}
        nodes.append(helper.make_node("ConvInteger", [xq, wq, xz], [acc],
                                      name=rw.fresh(f"{node.name or y}_int8"), **conv_attrs))
    else:
        wq = rw.const(f"{base}_int8", np.ascontiguousarray(qw.T))
        ws = rw.const(f"{base}_scale", scale)
        nodes.append(helper.make_node("MatMulInteger", [xq, wq, xz], [acc],
                                      name=rw.fresh(f"{node.name or y}_int8")))
    accf, s = rw.fresh(f"{y}_float"), rw.fresh(f"{y}_scale")
    nodes += [helper.make_node("Cast", [acc], [accf], to=1, name=rw.fresh(f"{y}_cast")),
              helper.make_node("Mul", [xs, ws], [s], name=rw.fresh(f"{y}_scales"))]
    if bias is None:
        nodes.append(helper.make_node("Mul", [accf, s], [y], name=rw.fresh(f"{y}_rescale")))
        return nodes
    scaled = rw.fresh(f"{y}_scaled")
    b = bias.reshape((-1,) + (1,) * (w.ndim - 2)) if kind == "conv" else bias
    nodes += [helper.make_node("Mul", [accf, s], [scaled], name=rw.fresh(f"{y}_rescale")),
              helper.make_node("Add", [scaled, rw.const(f"{node.input[2]}_bias", b)], [y],
                               name=rw.fresh(f"{y}_bias"))]
    return nodes


def _qdq(rw: _Rewriter, x: str, out: str, scale, zp) -> list:
    from onnx import helper
    s = rw.const(f"{x}_scale", np.asarray(scale, np.float32))
    z = rw.const(f"{x}_zero_point", np.asarray(zp, np.uint8))
    q = rw.fresh(f"{x}_quantized")
    return [helper.make_node("QuantizeLinear", [x, s, z], [q], name=rw.fresh(f"{x}_Q")),
            helper.make_node("DequantizeLinear", [q, s, z], [out], name=rw.fresh(f"{x}_DQ"))]


def _static_layer(rw: _Rewriter, node, w, bias, kind, qin) -> tuple[list, str]:
    """The layer in QDQ form up to its float output (returned with its name); ``qin``: the
    calibrated (scale, zero point) of the input."""
    from onnx import helper
    x, y = node.input[0], node.output[0]
    qw, wscale = quantize_weight(w, axis=0)
    xd = rw.fresh(f"{x}_dequantized")
    nodes = _qdq(rw, x, xd, *qin)
    base = node.input[1]
    wd = rw.fresh(f"{base}_dequantized")
    if kind == "matmul":
        nodes.append(helper.make_node(
            "DequantizeLinear", [rw.const(f"{base}_int8", np.ascontiguousarray(qw.T)),
                                 rw.const(f"{base}_scale", wscale)], [wd], axis=1,
            name=rw.fresh(f"{base}_DQ")))
    else:
        nodes.append(helper.make_node(
            "DequantizeLinear", [rw.const(f"{base}_int8", qw),
                                 rw.const(f"{base}_scale", wscale)], [wd], axis=0,
            name=rw.fresh(f"{base}_DQ")))
    ins = [xd, wd]
    if bias is not None:
        acc_scale = (np.float32(qin[0]) * wscale).astype(np.float32)
        bq = np.clip(np.rint(bias / acc_scale), -2 ** 31, 2 ** 31 - 1).astype(np.int32)
        bd = rw.fresh(f"{node.input[2]}_dequantized")
        nodes.append(helper.make_node(
            "DequantizeLinear", [rw.const(f"{node.input[2]}_int32", bq),
                                 rw.const(f"{node.input[2]}_scale", acc_scale)], [bd],
            axis=0, name=rw.fresh(f"{node.input[2]}_DQ")))
        ins.append(bd)
    attrs = _attrs(node)
    raw = rw.fresh(f"{y}_float")
    op = {"matmul": "MatMul", "gemm": "Gemm", "conv": "Conv"}[kind]
    if kind == "gemm":
        attrs["transB"] = 1  # the int8 weight is stored (out, in)
    nodes.append(helper.make_node(op, ins, [raw], name=node.name or rw.fresh(f"{y}_{op}"),
                                  **attrs))
    return nodes, raw


def _calibrate(model, names: list, data, observer) -> dict:
    """Run ``data`` through ``model`` with ember.runtime and observe the tensors ``names``."""
    from onnx import helper

    from .. import runtime
    probe = type(model)()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    for n in names:
        if n not in have:
            probe.graph.output.append(helper.make_empty_tensor_value_info(n))
    sess = runtime.load(probe.SerializeToString(), jit=False)
    inputs = [a.name for a in sess.get_inputs()]
    outputs = [a.name for a in sess.get_outputs()]
    observers = {n: observer() for n in names}
    count = 0
    for batch in data:
        if not isinstance(batch, dict):
            batch = batch if isinstance(batch, (tuple, list)) else (batch,)
            batch = dict(zip(inputs, batch))
        for name, value in zip(outputs, sess.run(None, batch)):
            if name in observers:
                observers[name](value)
        count += 1
    if count == 0:
        raise ValueError("ember.quantize.quantize_onnx: the calibration data gave no batches")
    out = {}
    for n, obs in observers.items():
        s, z = obs.calculate_qparams()
        out[n] = (s.numpy(), z.numpy())
    return out


def quantize_onnx(model, mode: str = "dynamic", calibration_data=None,
                  observer=MinMaxObserver, op_types=("MatMul", "Gemm", "Conv")):
    """Return an int8-quantised copy of ONNX ``model`` (an ``onnx.ModelProto``, a path or
    bytes). ``mode``: "dynamic" or "static"; static needs ``calibration_data``, an iterable
    of ``{input name: array}`` dicts or of arrays (tuples of arrays for several inputs).
    ``observer``: an :mod:`ember.quantize.observers` class for the activation ranges."""
    onnx = _require_onnx()
    from onnx import numpy_helper
    if isinstance(model, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(model))
    elif not isinstance(model, onnx.ModelProto):
        model = onnx.load(model)
    if mode not in ("dynamic", "static"):
        raise ValueError(f"ember.quantize.quantize_onnx: mode must be 'dynamic' or 'static', "
                         f"got {mode!r}")
    if mode == "static" and calibration_data is None:
        raise ValueError("ember.quantize.quantize_onnx: static quantisation needs "
                         "calibration_data (sample inputs)")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise ValueError(f"ember.quantize.quantize_onnx: the model uses opset {opset}; "
                         f"per-channel int8 needs opset 13 or newer (convert it with "
                         f"onnx.version_converter first)")
    out = type(model)()
    out.CopyFrom(model)
    rw = _Rewriter(out)
    layers = []
    for node in out.graph.node:
        if node.op_type in op_types:
            found = _layer_weights(rw, node)
            if found is not None:
                layers.append((node, *found))
    if not layers:
        raise ValueError(f"ember.quantize.quantize_onnx: the model has no {'/'.join(op_types)} "
                         f"node with a float32 initializer weight to quantise")
    consumers: dict = {}
    for n in out.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in out.graph.output}
    fused = {}  # id(layer node) -> the Relu node after it
    if mode == "static":
        for node, *_ in layers:
            c = consumers.get(node.output[0], [])
            if len(c) == 1 and c[0].op_type == "Relu" and node.output[0] not in graph_outputs:
                fused[id(node)] = c[0]
        names = []
        for node, *_ in layers:
            relu = fused.get(id(node))
            names += [node.input[0], (relu or node).output[0]]
        qparams = _calibrate(model, sorted(set(names)), calibration_data, observer)
    replaced: dict = {}
    for node, w, bias, kind in layers:
        if mode == "dynamic":
            replaced[id(node)] = _dynamic_layer(rw, node, w, bias, kind)
            continue
        relu = fused.get(id(node))
        out_name = (relu or node).output[0]
        nodes, raw = _static_layer(rw, node, w, bias, kind, qparams[node.input[0]])
        if relu is not None:
            # layer -> Relu -> Q/DQ: the output is rounded after the ReLU (the fused form)
            from onnx import helper
            nodes.append(helper.make_node("Relu", [raw], [rw.fresh(f"{out_name}_float")],
                                          name=relu.name or rw.fresh("Relu")))
            raw = nodes[-1].output[0]
            replaced[id(relu)] = []
        nodes += _qdq(rw, raw, out_name, *qparams[out_name])
        replaced[id(node)] = nodes
    new_nodes = []
    for n in out.graph.node:
        new_nodes.extend(replaced.get(id(n), [n]))
    del out.graph.node[:]
    out.graph.node.extend(new_nodes)
    used = {i for n in out.graph.node for i in n.input} | graph_outputs
    keep = [t for t in out.graph.initializer if t.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(keep)
    for name, arr in rw.new_inits.items():
        out.graph.initializer.append(numpy_helper.from_array(arr, name))
    out.producer_name, out.producer_version = "ember.quantize", _version()
    onnx.checker.check_model(out)
    return out


def _version() -> str:
    from .. import __version__
    return __version__
