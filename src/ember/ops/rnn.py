"""Recurrent layers as whole-sequence primitives: ``lstm_layer``, ``gru_layer``, ``rnn_layer``.

One op runs one direction of one layer over all T steps, and one backward op does the whole
backpropagation through time; ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` stack them into layers and
directions. The equations and gate orders are PyTorch's (LSTM: i, f, g, o; GRU: r, z, n with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``).

How the kernels are laid out, and why:

- The input projection ``W_ih x_t + b`` of every step is one GEMM before the loop; each step then
  only does the recurrent GEMM and the gate arithmetic.
- Inside the loop the state is kept transposed, ``(features, batch)``: the step's GEMM is then
  ``W_hh @ h`` (for small batches BLAS runs this about 2x faster than ``h @ W_hh.T``), every
  gate is a contiguous block of rows, and per-step values are stored as ``(features, T, batch)``
  so the weight gradients are single GEMMs over all steps (``dW_hh = dG @ H_prev.T``).
- Per-step arithmetic writes into preallocated buffers (``out=``), no allocation in the loop.

One differentiable output: the registry gives an op a single output, so each layer op returns
one flat array ``[output (T*B*Hout) | h_T (B*Hout) | c_T (B*H), LSTM only]``. The wrappers
slice it with ``getitem`` + ``reshape`` (both differentiable views), so gradients arriving at
the output, at ``h_n`` and at ``c_n`` all flow into the same node, whose backward receives them
as one flat gradient. The backward ops return their input gradients the same way (one flat
array, sliced by the rule), and keep the forward's saved activations as extra inputs.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .registry import apply, register

_NGATES = {"lstm": 4, "gru": 3, "rnn": 1}


# ----- forward kernels ------------------------------------------------------------------------


def _time_major(xp, x, batch_first):
    """x as ``(T*B, I)`` rows ordered (t, b), and T, B."""
    if batch_first:
        B, T, I = x.shape
        return xp.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * B, I), T, B
    T, B, I = x.shape
    return x.reshape(T * B, I), T, B


def _steps(T, reverse):
    """(t, prev, new) for each step in processing order; ``hseq[:, prev]`` is the state the
    step at time t reads and ``hseq[:, new]`` the one it writes (index T or 0 holds h0)."""
    if reverse:
        return [(t, t + 1, t) for t in range(T - 1, -1, -1)]
    return [(t, t, t + 1) for t in range(T)]


def _packed_forward(xp, kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, batch_first,
                    nonlinearity="tanh"):
    """Run one layer, one direction; return the flat packed output and the saved arrays."""
    dt = x.dtype
    X, T, B = _time_major(xp, x, batch_first)
    G = w_hh.shape[0]
    H = G // _NGATES[kind]
    P = w_hh.shape[1]  # width of h: H, or proj_size for a projected LSTM
    nout = T * B * P
    packed = xp.empty(nout + B * P + (B * H if kind == "lstm" else 0), dt)
    out = packed[:nout].reshape((B, T, P) if batch_first else (T, B, P))
    out_tb = out.transpose(1, 0, 2) if batch_first else out  # out_tb[t] is (B, P)
    XW = xp.matmul(w_ih, X.T).reshape(G, T, B)
    if kind == "gru":
        XW += b_ih[:, None, None]  # b_hh stays with W_hh h: r multiplies (W_hn h + b_hn)
    else:
        XW += (b_ih + b_hh)[:, None, None]
    hseq = xp.empty((P, T + 1, B), dt)  # h0 and every step's h, stored by time
    hseq[:, T if reverse else 0] = h0.T
    tmp = xp.empty((G, B), dt)
    steps = _steps(T, reverse)
    if kind == "lstm":
        cache = _lstm_forward(xp, steps, XW, hseq, c0, w_hh, w_hr, tmp, out_tb, H, dt)
    elif kind == "gru":
        cache = _gru_forward(xp, steps, XW, hseq, w_hh, b_hh, tmp, out_tb, H, dt)
    else:
        act = xp.tanh if nonlinearity == "tanh" else _relu_out
        for t, p, n in steps:
            xp.matmul(w_hh, hseq[:, p], out=tmp)
            tmp += XW[:, t]
            act(tmp, out=hseq[:, n])
            out_tb[t] = hseq[:, n].T
        cache = ()
    packed[nout:nout + B * P].reshape(B, P)[...] = hseq[:, 0 if reverse else T].T
    if kind == "lstm":
        packed[nout + B * P:].reshape(B, H)[...] = cache[0][:, 0 if reverse else T].T
    return packed, (X, hseq) + cache


def _relu_out(a, out):
    return np.maximum(a, 0, out=out)


def _sigmoid_(a):
    """In place: sigmoid(z) = 0.5 + 0.5 * tanh(z / 2) (no overflow in exp, one SIMD tanh)."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5


def _lstm_forward(xp, steps, XW, hseq, c0, w_hh, w_hr, tmp, out_tb, H, dt):
    T = XW.shape[1]
    B = XW.shape[2]
    gates = xp.empty((4 * H, T, B), dt)  # activated i, f, g, o
    cseq = xp.empty((H, T + 1, B), dt)
    tcs = xp.empty((H, T, B), dt)  # tanh(c_t)
    cseq[:, steps[0][1]] = c0.T
    hraw = xp.empty((H, T, B), dt) if w_hr is not None else None  # o * tanh(c) before W_hr
    prod = xp.empty((H, B), dt)
    for t, p, n in steps:
        xp.matmul(w_hh, hseq[:, p], out=tmp)
        tmp += XW[:, t]
        # sigmoid on the i, f and o rows, tanh on g: computed in tmp (contiguous), stored once
        _sigmoid_(tmp[:2 * H])
        _sigmoid_(tmp[3 * H:])
        np.tanh(tmp[2 * H:3 * H], out=tmp[2 * H:3 * H])
        a = gates[:, t]
        a[...] = tmp
        i, f, g, o = tmp[:H], tmp[H:2 * H], tmp[2 * H:3 * H], tmp[3 * H:]
        c = cseq[:, n]
        xp.multiply(f, cseq[:, p], out=c)
        xp.multiply(i, g, out=prod)
        c += prod
        tc = tcs[:, t]
        xp.tanh(c, out=tc)
        if w_hr is None:
            xp.multiply(o, tc, out=hseq[:, n])
        else:
            xp.multiply(o, tc, out=hraw[:, t])
            xp.matmul(w_hr, hraw[:, t], out=hseq[:, n])
        out_tb[t] = hseq[:, n].T
    return (cseq, gates, tcs, hraw)


def _gru_forward(xp, steps, XW, hseq, w_hh, b_hh, tmp, out_tb, H, dt):
    T = XW.shape[1]
    B = XW.shape[2]
    gates = xp.empty((3 * H, T, B), dt)  # r, z, n
    ghn = xp.empty((H, T, B), dt)  # W_hn h + b_hn, which r multiplies
    bh = b_hh[:, None]
    for t, p, n in steps:
        hp = hseq[:, p]
        xp.matmul(w_hh, hp, out=tmp)
        tmp += bh
        ghn[:, t] = tmp[2 * H:]
        a = gates[:, t]
        rz = tmp[:2 * H]
        rz += XW[:2 * H, t]
        _sigmoid_(rz)
        a[:2 * H] = rz
        r, z = rz[:H], rz[H:]
        nn = tmp[2 * H:]
        nn *= r
        nn += XW[2 * H:, t]
        np.tanh(nn, out=nn)
        a[2 * H:] = nn
        # h = (1 - z) * n + z * h_prev = n + z * (h_prev - n)
        h = hseq[:, n]
        xp.subtract(hp, nn, out=h)
        h *= z
        h += nn
        out_tb[t] = h.T
    return (gates, ghn)


# ----- backward kernels -----------------------------------------------------------------------


def _packed_backward(xp, kind, gp, x, h0, c0, w_ih, w_hh, w_hr, cache, needs, reverse,
                     batch_first, nonlinearity="tanh"):
    """Backpropagation through time for one layer; returns the gradients of the inputs marked
    in ``needs`` (order x, h0, [c0], w_ih, w_hh, b_ih, b_hh, [w_hr]) as one flat array."""
    X, hseq = cache[0], cache[1]
    dt = X.dtype
    G, P = w_hh.shape
    H = G // _NGATES[kind]
    T = hseq.shape[1] - 1
    B = hseq.shape[2]
    nout = T * B * P
    g_out = gp[:nout].reshape((B, T, P) if batch_first else (T, B, P))
    g_tb = g_out.transpose(1, 0, 2) if batch_first else g_out
    dh_next = xp.ascontiguousarray(gp[nout:nout + B * P].reshape(B, P).T)
    steps = _steps(T, reverse)[::-1]
    dG = xp.empty((G, T, B), dt)  # gradient of the gate pre-activations, by time
    dh = xp.empty((P, B), dt)
    dGt = xp.empty((G, B), dt)
    w_hh_t = xp.ascontiguousarray(w_hh.T)  # (P, G): dh_prev = W_hh.T @ dG in BLAS's fast layout
    extra = {}
    if kind == "lstm":
        dc_next = xp.ascontiguousarray(gp[nout + B * P:].reshape(B, H).T)
        cseq, gates, tcs = cache[2:5]
        hraw = cache[5] if len(cache) > 5 else None
        dhr = xp.empty((H, B), dt) if w_hr is not None else None
        dhs = xp.empty((P, T, B), dt) if w_hr is not None else None
        w_hr_t = xp.ascontiguousarray(w_hr.T) if w_hr is not None else None
        k1 = xp.empty((H, B), dt)
        k2 = xp.empty((2 * H, B), dt)
        dc = xp.empty((H, B), dt)
        for t, p, n in steps:
            a = gates[:, t]
            i, f, g, o = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
            tc = tcs[:, t]
            xp.add(dh_next, g_tb[t].T, out=dh)
            if w_hr is not None:
                dhs[:, t] = dh
                xp.matmul(w_hr_t, dh, out=dhr)
                dhc = dhr
            else:
                dhc = dh
            # do = dh * tanh(c) * o(1-o)
            do = dGt[3 * H:]
            xp.multiply(dhc, tc, out=do)
            xp.multiply(o, o, out=k1)
            xp.subtract(o, k1, out=k1)
            do *= k1
            # dc = dc_next + dh * o * (1 - tanh(c)^2)
            xp.multiply(tc, tc, out=k1)
            xp.subtract(1, k1, out=k1)
            k1 *= o
            k1 *= dhc
            xp.add(dc_next, k1, out=dc)
            # di = dc * g * i(1-i);  df = dc * c_prev * f(1-f);  dg = dc * i * (1-g^2)
            xp.multiply(a[:2 * H], a[:2 * H], out=k2)
            xp.subtract(a[:2 * H], k2, out=k2)
            xp.multiply(dc, g, out=dGt[:H])
            xp.multiply(dc, cseq[:, p], out=dGt[H:2 * H])
            dGt[:2 * H] *= k2
            dg = dGt[2 * H:3 * H]
            xp.multiply(g, g, out=dg)
            xp.subtract(1, dg, out=dg)
            dg *= i
            dg *= dc
            xp.multiply(dc, f, out=dc_next)
            dG[:, t] = dGt
            xp.matmul(w_hh_t, dGt, out=dh_next)
        dG_h = dG
        extra["c0"] = dc_next
        if w_hr is not None:
            extra["w_hr"] = (dhs, hraw)
    elif kind == "gru":
        gates, ghn = cache[2:4]
        dG_h = xp.empty((G, T, B), dt)  # differs from dG in the n rows: times r
        k = xp.empty((H, B), dt)
        for t, p, n in steps:
            a = gates[:, t]
            r, z, nn = a[:H], a[H:2 * H], a[2 * H:]
            hp = hseq[:, p]
            xp.add(dh_next, g_tb[t].T, out=dh)
            dn = dGt[2 * H:]
            # dn_pre = dh * (1 - z) * (1 - n^2)
            xp.multiply(nn, nn, out=k)
            xp.subtract(1, k, out=k)
            xp.multiply(dh, z, out=dn)
            xp.subtract(dh, dn, out=dn)
            dn *= k
            dG[2 * H:, t] = dn
            # dz_pre = dh * (h_prev - n) * z(1-z)
            dz = dGt[H:2 * H]
            xp.subtract(hp, nn, out=dz)
            dz *= dh
            xp.multiply(z, z, out=k)
            xp.subtract(z, k, out=k)
            dz *= k
            # dr_pre = dn_pre * (W_hn h + b_hn) * r(1-r)
            dr = dGt[:H]
            xp.multiply(dn, ghn[:, t], out=dr)
            xp.multiply(r, r, out=k)
            xp.subtract(r, k, out=k)
            dr *= k
            dG[:2 * H, t] = dGt[:2 * H]
            dn *= r  # the recurrent path sees r * (W_hn h + b_hn)
            dG_h[:, t] = dGt
            xp.matmul(w_hh_t, dGt, out=dh_next)
            xp.multiply(dh, z, out=k)
            dh_next += k
    else:
        relu = nonlinearity == "relu"
        for t, p, n in steps:
            hn = hseq[:, n]
            xp.add(dh_next, g_tb[t].T, out=dh)
            if relu:
                xp.multiply(dh, hn > 0, out=dGt)
            else:
                xp.multiply(hn, hn, out=dGt)
                xp.subtract(1, dGt, out=dGt)
                dGt *= dh
            dG[:, t] = dGt
            xp.matmul(w_hh_t, dGt, out=dh_next)
        dG_h = dG
    return _pack_grads(xp, kind, needs, dG, dG_h, dh_next, extra, X, hseq, w_ih, T, B, P, H,
                       reverse, batch_first, dt)


def _pack_grads(xp, kind, needs, dG, dG_h, dh0, extra, X, hseq, w_ih, T, B, P, H, reverse,
                batch_first, dt):
    G, I = w_ih.shape
    shapes = _input_shapes(kind, T, B, I, P, H, G, "w_hr" in extra, batch_first)
    sizes = [int(np.prod(s)) if nd else 0 for s, nd in zip(shapes, needs)]
    flat = xp.empty(sum(sizes), dt)
    slots, off = [], 0
    for s, n in zip(shapes, sizes):
        slots.append(flat[off:off + n].reshape(s) if n else None)
        off += n
    names = _input_names(kind, "w_hr" in extra)
    slot = dict(zip(names, slots))
    dG2 = dG.reshape(G, T * B)
    dGh2 = dG_h.reshape(G, T * B)
    if slot["x"] is not None:
        if batch_first:
            slot["x"][...] = xp.matmul(dG2.T, w_ih).reshape(T, B, I).transpose(1, 0, 2)
        else:
            xp.matmul(dG2.T, w_ih, out=slot["x"].reshape(T * B, I))
    if slot["h0"] is not None:
        slot["h0"][...] = dh0.T
    if slot.get("c0") is not None:
        slot["c0"][...] = extra["c0"].T
    if slot["w_ih"] is not None:
        xp.matmul(dG2, X, out=slot["w_ih"])
    if slot["w_hh"] is not None:
        hprev = hseq[:, 1:] if reverse else hseq[:, :T]
        xp.matmul(dGh2, hprev.reshape(P, T * B).T, out=slot["w_hh"])
    if slot["b_ih"] is not None or slot["b_hh"] is not None:
        ones = xp.ones(T * B, dt)
        if slot["b_ih"] is not None:
            xp.matmul(dG2, ones, out=slot["b_ih"])
        if slot["b_hh"] is not None:
            xp.matmul(dGh2, ones, out=slot["b_hh"])
    if slot.get("w_hr") is not None:
        dhs, hraw = extra["w_hr"]
        xp.matmul(dhs.reshape(P, T * B), hraw.reshape(H, T * B).T, out=slot["w_hr"])
    return flat


def _input_names(kind, proj=False):
    names = ["x", "h0", "c0"] if kind == "lstm" else ["x", "h0"]
    names += ["w_ih", "w_hh", "b_ih", "b_hh"]
    return names + ["w_hr"] if proj else names


def _input_shapes(kind, T, B, I, P, H, G, proj, batch_first):
    shapes = [(B, T, I) if batch_first else (T, B, I), (B, P)]
    if kind == "lstm":
        shapes.append((B, H))
    shapes += [(G, I), (G, P), (G,), (G,)]
    return shapes + [(P, H)] if proj else shapes


# ----- the registered ops ---------------------------------------------------------------------


def _split_inputs(kind, arrays):
    """(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr) from an op's positional inputs."""
    if kind == "lstm":
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, *rest = arrays
    else:
        (x, h0, w_ih, w_hh, b_ih, b_hh), c0, rest = arrays, None, ()
    return x, h0, c0, w_ih, w_hh, b_ih, b_hh, (rest[0] if rest else None)


def _declare(kind):
    n_base = 7 if kind == "lstm" else 6

    @register(f"{kind}_layer", extra=True)
    def fwd(xp, *arrays, reverse=False, batch_first=False, nonlinearity="tanh"):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr = _split_inputs(kind, arrays)
        return _packed_forward(xp, kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse,
                               batch_first, nonlinearity)

    @register(f"{kind}_layer_backward")
    def bwd(xp, gp, *arrays, n_inputs, needs, reverse=False, batch_first=False,
            nonlinearity="tanh"):
        ins, cache = arrays[:n_inputs], arrays[n_inputs:]
        x, h0, c0, w_ih, w_hh, _, _, w_hr = _split_inputs(kind, ins)
        return _packed_backward(xp, kind, gp, x, h0, c0, w_ih, w_hh, w_hr, cache, needs,
                                reverse, batch_first, nonlinearity)

    @fwd.def_backward
    def _(node, g):
        ins = node.inputs
        needs = tuple(t.requires_grad for t in ins)
        dev = ins[0]._dev
        cache = tuple(Tensor._wrap(a, dev) for a in node.saved if a is not None)
        attrs = dict(node.attrs, n_inputs=len(ins), needs=needs)
        flat = apply(bwd, (g,) + tuple(ins) + cache, attrs)
        grads, off = [], 0
        for t, need in zip(ins, needs):
            if need:
                n = t._data.size
                grads.append(flat[off:off + n].reshape(t.shape))
                off += n
            else:
                grads.append(None)
        return tuple(grads)

    @bwd.def_backward
    def _(node, gg):
        # Second order (rare: gradient penalties): differentiate the op-by-op recurrence twice.
        # Gradients of this rule's result (third order) are not tracked.
        a = node.attrs
        n = a["n_inputs"]
        g, ins = node.inputs[0], node.inputs[1:1 + n]
        from ..autograd import grad
        from ..autograd.grad_mode import enable_grad
        from .shape import cat
        with enable_grad():
            leaves = [t.detach().requires_grad_(True) for t in (g,) + tuple(ins)]
            packed = _composite(kind, leaves[1:], a)
            wanted = [leaves[1 + i] for i, nd in enumerate(a["needs"]) if nd]
            first = grad([packed], wanted, grad_outputs=[leaves[0]], create_graph=True,
                         materialize_grads=True)
            flat = cat([f.reshape(-1) for f in first])
            second = grad([flat], leaves, grad_outputs=[gg], allow_unused=True)
        return tuple(second) + (None,) * (len(node.inputs) - 1 - n)

    assert n_base in (6, 7)
    return fwd, bwd


_lstm_layer, _lstm_layer_backward = _declare("lstm")
_gru_layer, _gru_layer_backward = _declare("gru")
_rnn_layer, _rnn_layer_backward = _declare("rnn")


def _composite(kind, ins, attrs):
    """The layer written step by step in ember ops (for second-order gradients): same packed
    output as the primitive."""
    from .activation import relu, sigmoid
    from .shape import cat, stack
    x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr = _split_inputs(kind, ins)
    bf = attrs.get("batch_first", False)
    T = x.shape[1] if bf else x.shape[0]
    order = range(T - 1, -1, -1) if attrs.get("reverse", False) else range(T)
    outs = [None] * T
    for t in order:
        xt = x[:, t] if bf else x[t]
        gi = xt @ w_ih.mT + b_ih
        gh = h @ w_hh.mT + b_hh
        if kind == "lstm":
            i, f, g, o = (gi + gh).chunk(4, -1)
            c = sigmoid(f) * c + sigmoid(i) * g.tanh()
            h = sigmoid(o) * c.tanh()
            if w_hr is not None:
                h = h @ w_hr.mT
        elif kind == "gru":
            xr, xz, xn = gi.chunk(3, -1)
            hr, hz, hn = gh.chunk(3, -1)
            r, z = sigmoid(xr + hr), sigmoid(xz + hz)
            nn = (xn + r * hn).tanh()
            h = nn + z * (h - nn)
        else:
            pre = gi + gh
            h = relu(pre) if attrs.get("nonlinearity", "tanh") == "relu" else pre.tanh()
        outs[t] = h
    parts = [stack(outs, 1 if bf else 0).reshape(-1), h.reshape(-1)]
    if kind == "lstm":
        parts.append(c.reshape(-1))
    return cat(parts)


# ----- public functions -----------------------------------------------------------------------


def _check(op, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, batch_first):
    if x.ndim != 3:
        raise ValueError(f"{op}: expected a 3-d input ({'B, T' if batch_first else 'T, B'}, "
                         f"input_size), got shape {tuple(x.shape)}")
    G, P = w_hh.shape
    ng = _NGATES[op.split("_")[0]]
    H = G // ng
    B = x.shape[0] if batch_first else x.shape[1]
    T = x.shape[1] if batch_first else x.shape[0]
    if T == 0:
        raise RuntimeError(f"{op}: expected sequence length to be larger than 0, got input "
                           f"shape {tuple(x.shape)}")
    problems = []
    if w_ih.ndim != 2 or w_ih.shape[0] != G or G % ng:
        problems.append(f"weight_ih {tuple(w_ih.shape)} (expected ({G}, input_size))")
    elif w_ih.shape[1] != x.shape[2]:
        problems.append(f"input_size {x.shape[2]} != weight_ih's {w_ih.shape[1]}")
    Pw = H if w_hr is None else w_hr.shape[0]
    if P != Pw:
        problems.append(f"weight_hh {tuple(w_hh.shape)} (expected ({G}, {Pw}))")
    if w_hr is not None and tuple(w_hr.shape) != (Pw, H):
        problems.append(f"weight_hr {tuple(w_hr.shape)} (expected ({Pw}, {H}))")
    for name, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
        if b is not None and tuple(b.shape) != (G,):
            problems.append(f"{name} {tuple(b.shape)} (expected ({G},))")
    if tuple(h0.shape) != (B, P):
        problems.append(f"h0 {tuple(h0.shape)} (expected ({B}, {P}))")
    if c0 is not None and tuple(c0.shape) != (B, H):
        problems.append(f"c0 {tuple(c0.shape)} (expected ({B}, {H}))")
    if problems:
        raise RuntimeError(f"{op}: input {tuple(x.shape)} with weight_hh {tuple(w_hh.shape)}: "
                           + "; ".join(problems))
    dt = w_hh._data.dtype
    for name, t in (("input", x), ("h0", h0), ("c0", c0), ("weight_ih", w_ih), ("bias_ih", b_ih),
                    ("bias_hh", b_hh), ("weight_hr", w_hr)):
        if t is not None and t._data.dtype != dt:
            raise TypeError(f"{op}: {name} dtype {t.dtype} does not match weight dtype "
                            f"{w_hh.dtype}")
    if dt.kind != "f":
        raise TypeError(f"{op}: expected floating-point tensors, got {w_hh.dtype}")


def _zeros_bias(w_hh, b):
    if b is not None:
        return b
    return Tensor._wrap(w_hh._dev.xp.zeros(w_hh.shape[0], w_hh._data.dtype), w_hh._dev)


def _unpack(packed, kind, x, P, H, batch_first):
    T, B = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
    n = T * B * P
    out = packed[:n].reshape((B, T, P) if batch_first else (T, B, P))
    h = packed[n:n + B * P].reshape(B, P)
    if kind != "lstm":
        return out, h
    return out, h, packed[n + B * P:].reshape(B, H)


def lstm_layer(input: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor,
               b_ih: Tensor | None = None, b_hh: Tensor | None = None,
               w_hr: Tensor | None = None, *, reverse: bool = False,
               batch_first: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM layer over a whole sequence: returns ``(output, h_T, c_T)``.

    ``input`` is ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``), ``h0`` ``(B, P)``, ``c0``
    ``(B, H)``, ``w_ih`` ``(4H, I)``, ``w_hh`` ``(4H, P)`` with gates i, f, g, o; ``w_hr``
    ``(P, H)`` projects h (PyTorch's ``proj_size``; P = H without it). ``reverse`` runs from
    the last step to the first (the backward direction of a bidirectional layer).
    """
    _check("lstm_layer", input, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, batch_first)
    ins = (input, h0, c0, w_ih, w_hh, _zeros_bias(w_hh, b_ih), _zeros_bias(w_hh, b_hh))
    if w_hr is not None:
        ins += (w_hr,)
    packed, _ = apply(_lstm_layer, ins, {"reverse": reverse, "batch_first": batch_first})
    return _unpack(packed, "lstm", input, w_hh.shape[1], w_hh.shape[0] // 4, batch_first)


def gru_layer(input: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
              b_hh: Tensor | None = None, *, reverse: bool = False,
              batch_first: bool = False) -> tuple[Tensor, Tensor]:
    """One GRU layer over a whole sequence (gates r, z, n): returns ``(output, h_T)``."""
    _check("gru_layer", input, h0, None, w_ih, w_hh, b_ih, b_hh, None, batch_first)
    ins = (input, h0, w_ih, w_hh, _zeros_bias(w_hh, b_ih), _zeros_bias(w_hh, b_hh))
    packed, _ = apply(_gru_layer, ins, {"reverse": reverse, "batch_first": batch_first})
    return _unpack(packed, "gru", input, w_hh.shape[1], w_hh.shape[1], batch_first)


def rnn_layer(input: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
              b_hh: Tensor | None = None, *, nonlinearity: str = "tanh", reverse: bool = False,
              batch_first: bool = False) -> tuple[Tensor, Tensor]:
    """One Elman RNN layer, ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``: ``(output, h_T)``."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn_layer: unknown nonlinearity {nonlinearity!r}; select from "
                         f"'tanh' or 'relu'")
    _check("rnn_layer", input, h0, None, w_ih, w_hh, b_ih, b_hh, None, batch_first)
    ins = (input, h0, w_ih, w_hh, _zeros_bias(w_hh, b_ih), _zeros_bias(w_hh, b_hh))
    attrs = {"reverse": reverse, "batch_first": batch_first, "nonlinearity": nonlinearity}
    packed, _ = apply(_rnn_layer, ins, attrs)
    return _unpack(packed, "rnn", input, w_hh.shape[1], w_hh.shape[1], batch_first)
