"""Recurrent layers as whole-sequence primitives: ``lstm_layer``, ``gru_layer``, ``rnn_layer``.

One op runs one direction of one layer over all T steps, and one backward op does the whole
backpropagation through time; ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` stack them into layers and
directions. The equations and gate orders are PyTorch's (LSTM: i, f, g, o; GRU: r, z, n with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``).

How the kernels are laid out, and why (the per-step GEMMs are most of the time; the rest is
kept to a few in-place ufunc calls per step):

- Inside the loop the state is kept transposed, ``(features, batch)``: the step's GEMM is then
  ``W_hh @ h`` (for small batches OpenBLAS runs this about 2x faster than ``h @ W_hh.T``) and
  every gate is a contiguous block of rows.
- The input projection ``W_ih x_t + b`` of every step is one (batched) GEMM before the loop,
  the bias folded in as a column of ones next to x.
- Per-step values that the backward pass needs are stored by time: gates as ``(T, G, B)``
  (one contiguous block per step), h as ``(P, T+1, B)`` and the gate gradients as
  ``(G, T, B)``, so the weight gradients are single GEMMs over all steps
  (``dW_hh = dG @ H_prev.T``).
- Big arrays come from a small pool of recycled blocks (:class:`_Scratch`), nothing is
  allocated inside the loop (``out=`` everywhere).

One differentiable output: the registry gives an op a single output, so each layer op returns
one flat array ``[output (T*B*Hout) | h_T (B*Hout) | c_T (B*H), LSTM only]``. The wrappers
slice it with ``getitem`` + ``reshape`` (both differentiable views), so gradients arriving at
the output, at ``h_n`` and at ``c_n`` all flow into the same node, whose backward receives them
as one flat gradient. The backward ops return their input gradients the same way (one flat
array, sliced by the rule), and keep the forward's saved activations as extra inputs.
"""
from __future__ import annotations

import sys
import threading

import numpy as np

from ..tensor import Tensor
from .registry import apply, register

_NGATES = {"lstm": 4, "gru": 3, "rnn": 1}


# ----- scratch memory -------------------------------------------------------------------------


class _Scratch:
    """Recycled memory for the kernels' big arrays.

    A fresh multi-megabyte array costs a page fault per 4 KiB on first touch (glibc returns
    large freed blocks to the OS), which for an LSTM layer came to a quarter of its time. So
    the kernels carve their arrays out of blocks kept here. A block is free again when no
    array views it any more — NumPy views hold a reference to the block that owns their
    memory, so its reference count tells — whoever holds the views (an autograd node, a
    compiled graph's locals, the caller). At most four blocks of a size and ``limit`` bytes
    in all are kept.
    """

    def __init__(self, limit: int = 256 << 20):
        self.limit = limit
        self._blocks: dict = {}
        self._held = 0
        self._lock = threading.Lock()

    def take(self, xp, nbytes: int):
        if xp is not np:
            return xp.empty(nbytes, np.uint8)  # other backends pool memory themselves
        with self._lock:
            blocks = self._blocks.setdefault(nbytes, [])
            for block in blocks:
                # references: the pool's list, ``block`` here, getrefcount's argument
                if sys.getrefcount(block) <= 3:
                    return block
            block = np.empty(nbytes, np.uint8)
            if len(blocks) < 4 and self._held + nbytes <= self.limit:
                blocks.append(block)
                self._held += nbytes
            return block


_SCRATCH = _Scratch()


def _carve(xp, dt, shapes):
    """One scratch block cut into arrays of ``shapes``; returns (block, arrays)."""
    item = np.dtype(dt).itemsize
    sizes = [int(np.prod(s)) * item for s in shapes]
    offs, total = [], 0
    for n in sizes:
        offs.append(total)
        total += -(-n // 64) * 64  # 64-byte aligned starts (cache lines, SIMD)
    block = _SCRATCH.take(xp, max(total, 64))
    return block, [block[o:o + n].view(dt).reshape(s) for o, n, s in zip(offs, sizes, shapes)]


# ----- forward kernels ------------------------------------------------------------------------


def _steps(T, reverse):
    """(t, prev, new) for each step in processing order; ``hseq[:, prev]`` is the state the
    step at time t reads and ``hseq[:, new]`` the one it writes (index T or 0 holds h0)."""
    if reverse:
        return [(t, t + 1, t) for t in range(T - 1, -1, -1)]
    return [(t, t, t + 1) for t in range(T)]


def _sigmoid_(a):
    """In place: sigmoid(z) = 0.5 + 0.5 * tanh(z / 2) (no overflow in exp, one SIMD tanh)."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5


def _packed_forward(xp, kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, batch_first,
                    nonlinearity="tanh"):
    """Run one layer, one direction; return the flat packed output and the saved arrays
    ``(X, hseq, ...)``: X the input as (T*B, I), hseq (P, T+1, B) h0 and every step's h."""
    dt = x.dtype
    if batch_first:
        B, T, I = x.shape
    else:
        T, B, I = x.shape
    G, P = w_hh.shape  # P: width of h (H, or proj_size for a projected LSTM)
    H = G // _NGATES[kind]
    nout = T * B * P
    packed = xp.empty(nout + B * P + (B * H if kind == "lstm" else 0), dt)
    out = packed[:nout].reshape((B, T, P) if batch_first else (T, B, P))
    out_tb = out.transpose(1, 0, 2) if batch_first else out  # out_tb[t] is (B, P)
    # saved: [x_t, 1] rows (T*B, I+1) and hseq, then per kind: LSTM gates (T, 4H, B), c
    # (T+1, H, B), tanh(c) (T, H, B) [, o * tanh(c) (T, H, B)]; GRU gates (T, 3H, B),
    # W_hn h + b_hn (T, H, B)
    shapes = [(T * B, I + 1), (P, T + 1, B)] + {
        "lstm": [(T, G, B), (T + 1, H, B), (T, H, B)] + [(T, H, B)] * (w_hr is not None),
        "gru": [(T, G, B), (T, H, B)], "rnn": []}[kind]
    block, saved = _carve(xp, dt, shapes)
    X1, hseq = saved[0], saved[1]
    X1[:, :I].reshape(T, B, I)[...] = x.transpose(1, 0, 2) if batch_first else x
    X1[:, I] = 1
    hseq[:, T if reverse else 0] = h0.T
    steps = _steps(T, reverse)
    # work arrays: [W_ih | b], the recurrent GEMM's result, then for LSTM the reordered W_hh
    # and i * g, for RNN the input projections (T, G, B)
    more = {"lstm": [(G, P), (H, B)], "gru": [], "rnn": [(T, G, B)]}[kind]
    wblock, (w1, tmp, *more) = _carve(xp, dt, [(G, I + 1), (G, B)] + more)
    w1[:, :I] = w_ih
    if kind == "gru":  # b_hn stays with W_hn h: r multiplies (W_hn h + b_hn)
        w1[:, I] = b_ih
        w1[:2 * H, I] += b_hh[:2 * H]
    else:
        xp.add(b_ih, b_hh, out=w1[:, I])
    if kind == "lstm":
        _lstm_forward(xp, steps, saved[1:], c0, w1, w_hh, w_hr, X1, tmp, *more, out_tb, H)
    else:
        # every step's input projection, bias included, as one batched GEMM: (T, G, B)
        xw = saved[2] if kind == "gru" else more[0]
        xp.matmul(w1, X1.reshape(T, B, X1.shape[1]).transpose(0, 2, 1), out=xw)
        if kind == "gru":
            _gru_forward(xp, steps, saved[1:], w_hh, b_hh, tmp, out_tb, H)
        else:
            act = xp.tanh if nonlinearity == "tanh" else _relu_out
            for t, p, n in steps:
                xp.matmul(w_hh, hseq[:, p], out=tmp)
                tmp += xw[t]
                act(tmp, out=hseq[:, n])
                out_tb[t] = hseq[:, n].T
    last = 0 if reverse else T
    packed[nout:nout + B * P].reshape(B, P)[...] = hseq[:, last].T
    if kind == "lstm":
        packed[nout + B * P:].reshape(B, H)[...] = saved[3][last].T
    saved[0] = X1[:, :I]
    return packed, tuple(saved)


def _relu_out(a, out):
    return np.maximum(a, 0, out=out)


def _lstm_forward(xp, steps, saved, c0, w1, w_hh, w_hr, X1, tmp, w_hh_s, prod, out_tb, H):
    """The LSTM recurrence. Gates are stored as (T, 4H, B) in the order i, f, o, g (PyTorch's
    is i, f, g, o) with the i, f, o rows of the weights halved: then one tanh over the step's
    4H rows and one affine map on its first 3H give all four activations, since
    sigmoid(z) = 0.5 + 0.5 * tanh(z / 2) (halving is exact in floating point)."""
    hseq, gates, cseq, tcs = saved[:4]
    hraw = saved[4] if w_hr is not None else None  # o * tanh(c) before the projection
    T, G, B = gates.shape
    # reorder i, f, g, o -> i, f, o, g and halve the i, f, o rows of [W_ih | b] and W_hh
    g_rows = w1[2 * H:3 * H].copy()
    w1[:2 * H] *= 0.5
    xp.multiply(w1[3 * H:], 0.5, out=w1[2 * H:3 * H])
    w1[3 * H:] = g_rows
    xp.multiply(w_hh[:2 * H], 0.5, out=w_hh_s[:2 * H])
    xp.multiply(w_hh[3 * H:], 0.5, out=w_hh_s[2 * H:3 * H])
    w_hh_s[3 * H:] = w_hh[2 * H:3 * H]
    # every step's input projection, bias included, straight into the gates: (T, G, B)
    xp.matmul(w1, X1.reshape(T, B, X1.shape[1]).transpose(0, 2, 1), out=gates)
    cseq[steps[0][1]] = c0.T
    for t, p, n in steps:
        a = gates[t]
        xp.matmul(w_hh_s, hseq[:, p], out=tmp)
        a += tmp
        xp.tanh(a, out=a)
        s = a[:3 * H]
        s *= 0.5
        s += 0.5
        i, f, o, g = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
        c = cseq[n]
        xp.multiply(f, cseq[p], out=c)
        xp.multiply(i, g, out=prod)
        c += prod
        tc = tcs[t]
        xp.tanh(c, out=tc)
        if w_hr is None:
            xp.multiply(o, tc, out=hseq[:, n])
        else:
            xp.multiply(o, tc, out=hraw[t])
            xp.matmul(w_hr, hraw[t], out=hseq[:, n])
        out_tb[t] = hseq[:, n].T


def _gru_forward(xp, steps, saved, w_hh, b_hh, tmp, out_tb, H):
    """The GRU recurrence: gates (T, 3H, B) arrive holding the input projections and leave
    holding r, z, n; ``ghn`` keeps W_hn h + b_hn, which r multiplies."""
    hseq, gates, ghn = saved[:3]
    b_hn = b_hh[2 * H:, None]
    for t, p, n in steps:
        hp = hseq[:, p]
        a = gates[t]
        xp.matmul(w_hh, hp, out=tmp)
        xp.add(tmp[2 * H:], b_hn, out=ghn[t])
        rz = a[:2 * H]
        rz += tmp[:2 * H]
        _sigmoid_(rz)
        r, z, nn = a[:H], a[H:2 * H], a[2 * H:]
        k = tmp[2 * H:]
        xp.multiply(r, ghn[t], out=k)
        nn += k
        xp.tanh(nn, out=nn)
        # h = (1 - z) * n + z * h_prev = n + z * (h_prev - n)
        h = hseq[:, n]
        xp.subtract(hp, nn, out=h)
        h *= z
        h += nn
        out_tb[t] = h.T


# ----- backward kernels -----------------------------------------------------------------------


def _packed_backward(xp, kind, gp, w_ih, w_hh, w_hr, cache, needs, reverse, batch_first,
                     nonlinearity="tanh"):
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
    steps = _steps(T, reverse)[::-1]
    proj = w_hr is not None
    shapes = [(G, T, B), (G, B), (P, B), (P, B), (P, G), (H, B), (H, B), (H, B), (3 * H, B)]
    if kind == "gru":
        shapes.append((G, T, B))
    if proj:
        shapes += [(P, T, B), (H, P), (H, B)]
    block, arrs = _carve(xp, dt, shapes)
    dG, dGt, dh, dh_next, w_hh_t, k, dc, dc_next, k3 = arrs[:9]
    dh_next[...] = gp[nout:nout + B * P].reshape(B, P).T
    w_hh_t[...] = w_hh.T  # dh_prev = W_hh.T @ dG in BLAS's fast layout
    extra = {}
    if kind == "lstm":
        gates, cseq, tcs = cache[2:5]
        hraw = cache[5] if proj else None
        dc_next[...] = gp[nout + B * P:].reshape(B, H).T
        if proj:
            dhs, w_hr_t, dhr = arrs[-3:]
            w_hr_t[...] = w_hr.T
        for t, p, n in steps:
            a = gates[t]  # i, f, o, g
            i, f, o, g = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
            tc = tcs[t]
            xp.add(dh_next, g_tb[t].T, out=dh)
            if proj:
                dhs[:, t] = dh
                xp.matmul(w_hr_t, dh, out=dhr)
                dhc = dhr
            else:
                dhc = dh
            s3 = a[:3 * H]
            xp.multiply(s3, s3, out=k3)
            xp.subtract(s3, k3, out=k3)  # sigmoid' of i, f, o
            # do = dh * tanh(c) * o(1-o)
            do = dGt[3 * H:]
            xp.multiply(dhc, tc, out=do)
            do *= k3[2 * H:]
            # dc = dc_next + dh * o * (1 - tanh(c)^2)
            xp.multiply(tc, tc, out=k)
            k *= o
            xp.subtract(o, k, out=k)
            k *= dhc
            xp.add(dc_next, k, out=dc)
            # di = dc * g * i(1-i);  df = dc * c_prev * f(1-f);  dg = dc * i * (1-g^2)
            xp.multiply(dc, g, out=dGt[:H])
            xp.multiply(dc, cseq[p], out=dGt[H:2 * H])
            dGt[:2 * H] *= k3[:2 * H]
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
        if proj:
            extra["w_hr"] = (dhs, hraw)
    elif kind == "gru":
        gates, ghn = cache[2:4]
        dG_h = arrs[9]  # differs from dG in the n rows: times r
        for t, p, n in steps:
            a = gates[t]
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
            xp.multiply(dn, ghn[t], out=dr)
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
    return _pack_grads(xp, kind, needs, dG, dG_h, dh_next, extra, X, hseq, w_ih, T, B, P,
                       H, reverse, batch_first, dt)


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
    slot = dict(zip(_input_names(kind, "w_hr" in extra), slots))
    dG2 = dG.reshape(G, T * B)
    dGh2 = dG_h.reshape(G, T * B)
    if slot["x"] is not None:
        if batch_first:
            block, (dx,) = _carve(xp, dt, [(T * B, I)])
            xp.matmul(dG2.T, w_ih, out=dx)
            slot["x"][...] = dx.reshape(T, B, I).transpose(1, 0, 2)
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
            if dG_h is dG and slot["b_ih"] is not None:
                slot["b_hh"][...] = slot["b_ih"]  # LSTM, RNN: both biases add to one sum
            else:
                xp.matmul(dGh2, ones, out=slot["b_hh"])
    if slot.get("w_hr") is not None:
        dhs, hraw = extra["w_hr"]
        xp.matmul(dhs.reshape(P, T * B), hraw.transpose(1, 0, 2).reshape(H, T * B).T,
                  out=slot["w_hr"])
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
        return _packed_backward(xp, kind, gp, w_ih, w_hh, w_hr, cache, needs, reverse,
                                batch_first, nonlinearity)

    @fwd.def_backward
    def _(node, g):
        ins = node.inputs
        needs = tuple(t.requires_grad for t in ins)
        dev = ins[0]._dev
        cache = tuple(Tensor._wrap(a, dev) for a in node.saved)
        # the activations travel as inputs (which keeps their scratch memory in use)
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
    ng = _NGATES[op.split("_")[0]]
    if w_hh.ndim != 2 or w_hh.shape[0] % ng or (w_hr is not None and w_hr.ndim != 2):
        raise RuntimeError(f"{op}: weight_hh must be 2-d ({ng} * hidden_size, hidden_size), got "
                           f"{tuple(w_hh.shape)}" + (f" (weight_hr {tuple(w_hr.shape)})"
                                                     if w_hr is not None else ""))
    G, P = w_hh.shape
    H = G // ng
    B = x.shape[0] if batch_first else x.shape[1]
    T = x.shape[1] if batch_first else x.shape[0]
    if T == 0:
        raise RuntimeError(f"{op}: expected sequence length to be larger than 0, got input "
                           f"shape {tuple(x.shape)}")
    problems = []
    if w_ih.ndim != 2 or w_ih.shape[0] != G:
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
    from .creation import wrap_constant
    return wrap_constant(w_hh._dev.xp.zeros(w_hh.shape[0], w_hh._data.dtype), w_hh._dev)


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
