"""Recurrent layers: LSTM, GRU, RNN in every direction, with initial states, sequence lengths,
both layouts, peepholes, clipping, custom activations and GRU's ``linear_before_reset``.

The common case (default activations, no clip, no peepholes, full-length sequences; for GRU
``linear_before_reset=1``, PyTorch's formula) runs ember's fused whole-sequence primitives
with the gates reordered (ONNX: LSTM i,o,f,c and GRU z,r,h; ember: i,f,g,o and r,z,n).
Anything else steps through time with ember ops, following ONNX's equations literally.
"""
from __future__ import annotations

import numpy as np

from ... import ops
from ...ops import activation as Act
from ...ops import arithmetic as A
from ...ops import comparison as C
from ...ops import linalg as L
from ...ops import shape as S
from ...ops import unary as U
from ...ops.rnn import gru_layer, lstm_layer, rnn_layer
from . import rule

_DEFAULTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
# activation name -> (uses alpha, uses beta, default alpha, default beta)
_ACT_PARAMS = {"Relu": (0, 0, 0, 0), "Tanh": (0, 0, 0, 0), "Sigmoid": (0, 0, 0, 0),
               "Affine": (1, 1, 1.0, 0.0), "LeakyRelu": (1, 0, 0.01, 0),
               "ThresholdedRelu": (1, 0, 1.0, 0), "ScaledTanh": (1, 1, 1.0, 1.0),
               "HardSigmoid": (1, 1, 0.2, 0.5), "Elu": (1, 0, 1.0, 0), "Softsign": (0, 0, 0, 0),
               "Softplus": (0, 0, 0, 0)}


def _activation(name: str, alpha: float, beta: float):
    if name == "Relu":
        return Act.relu
    if name == "Tanh":
        return U.tanh
    if name == "Sigmoid":
        return Act.sigmoid
    if name == "Affine":
        return lambda x: A.add(A.mul(x, alpha), beta)
    if name == "LeakyRelu":
        return lambda x: C.where(C.gt(x, 0), x, A.mul(x, alpha))
    if name == "ThresholdedRelu":
        return lambda x: C.where(C.gt(x, alpha), x, ops.creation.zeros_like(x))
    if name == "ScaledTanh":
        return lambda x: A.mul(U.tanh(A.mul(x, beta)), alpha)
    if name == "HardSigmoid":
        return lambda x: C.clamp(A.add(A.mul(x, alpha), beta), 0.0, 1.0)
    if name == "Elu":
        return lambda x: C.where(C.gt(x, 0), x, A.mul(U.expm1(C.clamp(x, max=0.0)), alpha))
    if name == "Softsign":
        return lambda x: A.div(x, A.add(U.abs(x), 1.0))
    return lambda x: A.add(C.clamp(x, min=0.0), U.log1p(U.exp(A.neg(U.abs(x)))))  # Softplus


def _names(node):
    """Activation names per direction, each with its alpha/beta (consumed in order by the
    activations that take them)."""
    op = node.op_type
    dirs = 2 if node.attr("direction", "forward") == "bidirectional" else 1
    names = node.attr("activations") or _DEFAULTS[op] * dirs
    if len(names) == len(_DEFAULTS[op]) and dirs == 2 and not node.attr("activations"):
        names = _DEFAULTS[op] * 2
    return names, dirs


def _rnn_check(node, opset):
    if node.attr("direction", "forward") not in ("forward", "reverse", "bidirectional"):
        return f"direction={node.attr('direction')!r}"
    names, dirs = _names(node)
    per = len(_DEFAULTS[node.op_type])
    if len(names) not in (per, per * dirs):
        return f"activations {names} (expected {per} per direction)"
    unknown = [n for n in names if _norm_name(n) not in _ACT_PARAMS]
    if unknown:
        return f"activation(s) {unknown}"
    return None


def _norm_name(n: str) -> str:
    lower = {k.lower(): k for k in _ACT_PARAMS}
    return lower.get(n.lower(), n)


def _activations(node):
    names, dirs = _names(node)
    per = len(_DEFAULTS[node.op_type])
    if len(names) == per and dirs == 2:
        names = names * 2
    alphas = list(node.attr("activation_alpha") or [])
    betas = list(node.attr("activation_beta") or [])
    fns = []
    for n in names:
        n = _norm_name(n)
        ua, ub, da, db = _ACT_PARAMS[n]
        a = alphas.pop(0) if ua and alphas else da
        b = betas.pop(0) if ub and betas else db
        fns.append(_activation(n, a, b))
    return [fns[i * per:(i + 1) * per] for i in range(dirs)], names


def _split_dir(t, d):
    return None if t is None else S.select(t, 0, d)


def _chunks(t, n, dim=0):
    size = t.shape[dim] // n
    return [S.narrow(t, dim, i * size, size) for i in range(n)]


def _rnn_rule(ctx, node, ins):
    op = node.op_type
    G = _GATES[op]
    x, w, r = ins[0], ins[1], ins[2]
    b = ins[3] if len(ins) > 3 else None
    lens = ins[4] if len(ins) > 4 else None
    h0 = ins[5] if len(ins) > 5 else None
    c0 = ins[6] if len(ins) > 6 and op == "LSTM" else None
    peep = ins[7] if len(ins) > 7 and op == "LSTM" else None
    layout = node.attr("layout", 0)
    direction = node.attr("direction", "forward")
    dirs = 2 if direction == "bidirectional" else 1
    H = node.attr("hidden_size") or r.shape[-1]
    if layout:  # (batch, seq, in) -> (seq, batch, in); states (batch, dir, H) -> (dir, ...)
        x = S.transpose(x, 0, 1)
        h0 = None if h0 is None else S.transpose(h0, 0, 1)
        c0 = None if c0 is None else S.transpose(c0, 0, 1)
    T, B = x.shape[0], x.shape[1]
    if w.shape[0] != dirs or w.shape[1] != G * H or r.shape[1] != G * H:
        raise ctx.error(f"W {tuple(w.shape)} and R {tuple(r.shape)} don't match "
                        f"{dirs} direction(s) x {G} gates x hidden_size {H}")
    if x.shape[2] != w.shape[2]:
        raise ctx.error(f"input size {x.shape[2]} of X {tuple(x.shape)} doesn't match W "
                        f"{tuple(w.shape)}")
    seq_lens = None
    if lens is not None:
        seq_lens = np.asarray(ctx.array(lens)).reshape(-1).astype(np.int64)
        if np.all(seq_lens == T):
            seq_lens = None
    acts, names = _activations(node)
    clip = node.attr("clip")
    fast = (clip is None and peep is None and seq_lens is None
            and names == _DEFAULTS[op] * dirs and not node.attr("input_forget", 0)
            and (op != "GRU" or node.attr("linear_before_reset", 0))
            and x._data.dtype in (np.float32, np.float64)
            and all(t is None or t._data.dtype == x._data.dtype for t in (w, r, b, h0, c0)))
    ys, hs, cs = [], [], []
    for d in range(dirs):
        reverse = direction == "reverse" or d == 1
        wd, rd = _split_dir(w, d), _split_dir(r, d)
        bd = _split_dir(b, d)
        wb, rb = (None, None) if bd is None else _chunks(bd, 2)
        hd = _split_dir(h0, d) if h0 is not None else ops.creation.zeros(B, H, dtype=x.dtype)
        cd = _split_dir(c0, d) if c0 is not None else ops.creation.zeros(B, H, dtype=x.dtype)
        if fast:
            y, h, c = _fused(op, x, wd, rd, wb, rb, hd, cd, reverse)
        else:
            pd = _split_dir(peep, d)
            y, h, c = _stepwise(ctx, node, x, wd, rd, wb, rb, hd, cd, pd, acts[d], reverse,
                                seq_lens, clip)
        ys.append(y)
        hs.append(h)
        cs.append(c)
    y = S.stack(ys, 1)                      # (T, dirs, B, H)
    h = S.stack(hs, 0)                      # (dirs, B, H)
    c = S.stack(cs, 0) if op == "LSTM" else None
    if layout:
        y = S.permute(y, (2, 0, 1, 3))
        h = S.transpose(h, 0, 1)
        c = None if c is None else S.transpose(c, 0, 1)
    return [y, h] + ([c] if op == "LSTM" else [])


def _reorder(t, op, dim=0):
    """ONNX gate blocks -> ember's order."""
    if t is None:
        return None
    if op == "LSTM":
        i, o, f, c = _chunks(t, 4, dim)
        return S.cat([i, f, c, o], dim)
    if op == "GRU":
        z, r, h = _chunks(t, 3, dim)
        return S.cat([r, z, h], dim)
    return t


def _fused(op, x, w, r, wb, rb, h0, c0, reverse):
    w, r, wb, rb = (_reorder(t, op) for t in (w, r, wb, rb))
    if op == "LSTM":
        return lstm_layer(x, h0, c0, w, r, wb, rb, reverse=reverse)
    if op == "GRU":
        y, h = gru_layer(x, h0, w, r, wb, rb, reverse=reverse)
        return y, h, None
    y, h = rnn_layer(x, h0, w, r, wb, rb, reverse=reverse)
    return y, h, None


def _stepwise(ctx, node, x, w, r, wb, rb, h, c, peep, acts, reverse, seq_lens, clip):
    """ONNX's equations one step at a time; steps past a sequence's length keep its state
    and output zeros."""
    op = node.op_type
    T, B = x.shape[0], x.shape[1]
    xw = L.matmul(x, S.transpose(w, 0, 1))             # (T, B, G*H): all input projections
    if wb is not None:
        xw = A.add(xw, wb)
    if op == "GRU" and not node.attr("linear_before_reset", 0):
        r_zr, r_h = S.narrow(r, 0, 0, 2 * r.shape[1]), _chunks(r, 3)[2]
        rb_zr = None if rb is None else S.narrow(rb, 0, 0, 2 * r.shape[1])
        rb_h = None if rb is None else _chunks(rb, 3)[2]
    rt = S.transpose(r, 0, 1)
    if seq_lens is not None:
        masks = [ctx.const((t < seq_lens).reshape(B, 1)) for t in range(T)]
    steps = range(T - 1, -1, -1) if reverse else range(T)
    outs = [None] * T

    def clipped(v):
        return v if clip is None else C.clamp(v, -clip, clip)

    for t in steps:
        xt = S.select(xw, 0, t)
        if op == "LSTM":
            gates = A.add(xt, L.matmul(h, rt))
            if rb is not None:
                gates = A.add(gates, rb)
            gi, go, gf, gc = _chunks(gates, 4, 1)
            if peep is not None:
                pi, po, pf = _chunks(peep, 3)
                gi, gf = A.add(gi, A.mul(pi, c)), A.add(gf, A.mul(pf, c))
            f_, g_, h_ = acts
            i = f_(clipped(gi))
            f = A.sub(1.0, i) if node.attr("input_forget", 0) else f_(clipped(gf))
            new_c = A.add(A.mul(f, c), A.mul(i, g_(clipped(gc))))
            if peep is not None:
                go = A.add(go, A.mul(po, new_c))
            o = f_(clipped(go))
            new_h = A.mul(o, h_(new_c))
        elif op == "GRU":
            f_, g_ = acts
            xz, xr, xh = _chunks(xt, 3, 1)
            if node.attr("linear_before_reset", 0):
                hr = L.matmul(h, rt)
                if rb is not None:
                    hr = A.add(hr, rb)
                hz, hrr, hh = _chunks(hr, 3, 1)
                z = f_(clipped(A.add(xz, hz)))
                rr = f_(clipped(A.add(xr, hrr)))
                cand = g_(clipped(A.add(xh, A.mul(rr, hh))))
            else:
                hzr = L.matmul(h, S.transpose(r_zr, 0, 1))
                if rb_zr is not None:
                    hzr = A.add(hzr, rb_zr)
                hz, hrr = _chunks(hzr, 2, 1)
                z = f_(clipped(A.add(xz, hz)))
                rr = f_(clipped(A.add(xr, hrr)))
                hh = L.matmul(A.mul(rr, h), S.transpose(r_h, 0, 1))
                if rb_h is not None:
                    hh = A.add(hh, rb_h)
                cand = g_(clipped(A.add(xh, hh)))
            new_h = A.add(A.mul(A.sub(1.0, z), cand), A.mul(z, h))
            new_c = c
        else:
            pre = A.add(xt, L.matmul(h, rt))
            if rb is not None:
                pre = A.add(pre, rb)
            new_h = acts[0](clipped(pre))
            new_c = c
        if seq_lens is not None:
            m = masks[t]
            outs[t] = C.where(m, new_h, ops.creation.zeros_like(new_h))
            h = C.where(m, new_h, h)
            c = C.where(m, new_c, c)
        else:
            outs[t] = new_h
            h, c = new_h, new_c
    y = S.stack(outs, 0) if T else ops.creation.zeros(0, B, h.shape[1], dtype=x.dtype)
    return y, h, c


for _op in ("LSTM", "GRU", "RNN"):
    rule(_op, check=_rnn_check)(_rnn_rule)
del _op
