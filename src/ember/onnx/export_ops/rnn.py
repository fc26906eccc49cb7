"""ONNX rules for ``ember.ops.rnn``: one layer and direction of LSTM / GRU / RNN as ONNX's
``LSTM`` / ``GRU`` / ``RNN`` op.

Gate orders differ: PyTorch's (and ember's) LSTM stacks i, f, g, o and ONNX's i, o, f, c; the
GRU stacks r, z, n and ONNX z, r, h -- with ``linear_before_reset=1``, which is PyTorch's
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``. Constant weights are reordered at export
time (new initializers); computed ones by a ``Gather`` of their rows.

ember's layer op returns one flat array ``[output | h_n | c_n]`` that the caller slices; the
rule hands back a :class:`Packed` value so that those slices read ONNX's ``Y``, ``Y_h`` and
``Y_c`` directly.
"""
from __future__ import annotations

import numpy as np

from .._builder import Packed, onnx_rule

# ONNX gate block k comes from ember gate block _ORDER[kind][k]
_ORDER = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}
_SUFFIX = {"lstm": "iofc", "gru": "zrh", "rnn": "onnx"}


def _gates(b, v, kind):
    """The (G, K) weight or (G,) bias ``v`` with its gate blocks in ONNX's order."""
    order = _ORDER[kind]
    arr = b.value(v)
    if arr is not None:
        n = arr.shape[0] // len(order)
        return np.concatenate([arr[j * n:(j + 1) * n] for j in order]), True
    n = v.shape[0] // len(order)
    idx = np.concatenate([np.arange(j * n, (j + 1) * n) for j in order]).astype(np.int64)
    return b.op("Gather", [b.name(v), b.const(idx)], axis=0), False


def _weight(b, v, kind):
    w, const = _gates(b, v, kind)
    if const:
        label = b.label(v)
        return b.const(w[None], name=f"{label}.{_SUFFIX[kind]}" if label else None)
    return b.unsqueeze(w, [0])


def _bias(b, b_ih, b_hh, kind):
    if b.is_zero(b_ih) and b.is_zero(b_hh):
        return ""  # ONNX's default
    wb, const_i = _gates(b, b_ih, kind)
    rb, const_h = _gates(b, b_hh, kind)
    if const_i and const_h:
        label = b.label(b_ih)
        name = f"{label.replace('bias_ih', 'bias')}.{_SUFFIX[kind]}" if label else None
        return b.const(np.concatenate([wb, rb])[None], name=name)
    parts = [x if not c else b.const(x) for x, c in ((wb, const_i), (rb, const_h))]
    return b.unsqueeze(b.op("Concat", parts, axis=0), [0])


def _state(b, v):
    return "" if b.is_zero(v) else b.unsqueeze(b.name(v), [0])


def _layer(kind):
    def rule(b, node):
        a = node.attrs
        ins = node.inputs
        bf = a.get("batch_first", False)
        if kind == "lstm":
            x, h0, c0, w_ih, w_hh, b_ih, b_hh = ins[:7]
            if len(ins) > 7:
                b.unsupported("LSTM with proj_size has no ONNX LSTM equivalent")
        else:
            x, h0, w_ih, w_hh, b_ih, b_hh = ins
            c0 = None
        H = w_hh.shape[1]
        X = b.transpose(b.name(x), [1, 0, 2]) if bf else b.name(x)
        onnx_ins = [X, _weight(b, w_ih, kind), _weight(b, w_hh, kind),
                    _bias(b, b_ih, b_hh, kind), "", _state(b, h0)]
        if kind == "lstm":
            onnx_ins.append(_state(b, c0))
        while onnx_ins[-1] == "":
            onnx_ins.pop()
        attrs = {"hidden_size": H, "direction": "reverse" if a.get("reverse") else "forward"}
        if kind == "gru":
            attrs["linear_before_reset"] = 1
        if kind == "rnn":
            attrs["activations"] = ["Relu" if a.get("nonlinearity") == "relu" else "Tanh"]
        n_out = 3 if kind == "lstm" else 2
        outs = b.op({"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[kind], onnx_ins,
                    outputs=n_out, **attrs)
        y = b.squeeze(outs[0], [1])                      # (T, B, H)
        if bf:
            y = b.transpose(y, [1, 0, 2])                # (B, T, H)
        parts = [y] + [b.squeeze(o, [0]) for o in outs[1:]]
        # where each part sits in ember's flat [output | h_n | c_n], per trace
        packed = []
        for t in b.traces(x):
            B, T = (t[0], t[1]) if bf else (t[1], t[0])
            sizes = [T * B * H] + [B * H] * (n_out - 1)
            shapes = [(B, T, H) if bf else (T, B, H)] + [(B, H)] * (n_out - 1)
            packed.append((sizes, shapes))
        spans = []
        for i, name in enumerate(parts):
            starts = [sum(s[:i]) for s, _ in packed]
            stops = [sum(s[:i + 1]) for s, _ in packed]
            spans.append((name, starts, stops, [sh[i] for _, sh in packed]))
        for name, _, _, shapes in spans:
            b.set_emitted_traces(name, shapes)
        return Packed(spans)
    return rule


onnx_rule("lstm_layer")(_layer("lstm"))
onnx_rule("gru_layer")(_layer("gru"))
onnx_rule("rnn_layer")(_layer("rnn"))
