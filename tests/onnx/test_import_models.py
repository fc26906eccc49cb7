"""Imported recurrent and attention models, built with onnx.helper, against NumPy
implementations of ONNX's equations (and onnxruntime where installed): LSTM/GRU/RNN in every
direction, with initial states, both layouts, sequence lengths, peepholes and clipping; a
transformer-style attention block; the opset-23 Attention op."""
import warnings

import numpy as np
import pytest

import ember as em

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import ember.onnx  # noqa: E402
from finite_differences import numeric_grads  # noqa: E402


def _build(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs,
                          [numpy_helper.from_array(v, k) for k, v in dict(inits).items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape=None, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def _ort(model, feeds):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


# ----- NumPy reference of ONNX's recurrent equations ---------------------------------------------


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _np_direction(op, x, w, r, b, h, c, p, clip, lbr, lens, reverse):
    """One direction over (T, B, I); ONNX gate orders (LSTM iofc, GRU zrh)."""
    T = x.shape[0]
    H = r.shape[-1]
    wb, rb = (np.zeros(w.shape[0]), np.zeros(w.shape[0])) if b is None else np.split(b, 2)
    cl = (lambda v: v) if clip is None else (lambda v: np.clip(v, -clip, clip))
    ys = np.zeros((T, x.shape[1], H))
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        if reverse and lens is not None:  # a reversed sequence starts at its own last step
            pass
        xt = x[t]
        if op == "LSTM":
            g = xt @ w.T + wb + h @ r.T + rb
            i, o, f, cc = np.split(g, 4, axis=1)
            pi, po, pf = np.split(p, 3) if p is not None else (0, 0, 0)
            i = _sig(cl(i + pi * c))
            f = _sig(cl(f + pf * c))
            nc = f * c + i * np.tanh(cl(cc))
            o = _sig(cl(o + po * nc))
            nh = o * np.tanh(nc)
        elif op == "GRU":
            xz, xr, xh = np.split(xt @ w.T + wb, 3, axis=1)
            rz, rr, rh = np.split(r, 3)
            bz, br, bh = np.split(rb, 3)
            z = _sig(cl(xz + h @ rz.T + bz))
            rg = _sig(cl(xr + h @ rr.T + br))
            if lbr:
                hh = np.tanh(cl(xh + rg * (h @ rh.T + bh)))
            else:
                hh = np.tanh(cl(xh + (rg * h) @ rh.T + bh))
            nh = (1 - z) * hh + z * h
            nc = c
        else:
            nh = np.tanh(cl(xt @ w.T + wb + h @ r.T + rb))
            nc = c
        if lens is not None:
            live = (t < lens)[:, None]
            nh, nc = np.where(live, nh, h), np.where(live, nc, c)
            ys[t] = np.where(live, nh, 0)
        else:
            ys[t] = nh
        h, c = nh, nc
    return ys, h, c


def _np_rnn(op, x, w, r, b=None, h0=None, c0=None, p=None, direction="forward", layout=0,
            clip=None, lbr=0, lens=None):
    if layout:
        x = x.transpose(1, 0, 2)
        h0 = None if h0 is None else h0.transpose(1, 0, 2)
        c0 = None if c0 is None else c0.transpose(1, 0, 2)
    dirs = w.shape[0]
    B, H = x.shape[1], r.shape[-1]
    ys, hs, cs = [], [], []
    for d in range(dirs):
        h = np.zeros((B, H)) if h0 is None else h0[d]
        c = np.zeros((B, H)) if c0 is None else c0[d]
        reverse = direction == "reverse" or d == 1
        xd = x
        if reverse and lens is not None:
            # reverse within each sequence's length, run forward, reverse back
            xd = x.copy()
            for bi, n in enumerate(lens):
                xd[:n, bi] = x[:n, bi][::-1]
        y, h, c = _np_direction(op, xd, w[d], r[d], None if b is None else b[d], h, c,
                                None if p is None else p[d], clip, lbr, lens,
                                reverse and lens is None)
        if reverse and lens is not None:
            for bi, n in enumerate(lens):
                y[:n, bi] = y[:n, bi][::-1].copy()
        ys.append(y)
        hs.append(h)
        cs.append(c)
    y, h, c = np.stack(ys, 1), np.stack(hs), np.stack(cs)
    if layout:
        y, h, c = y.transpose(2, 0, 1, 3), h.transpose(1, 0, 2), c.transpose(1, 0, 2)
    return y, h, c


_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
# (op, direction, initial states, layout, extra attributes / inputs)
CASES = [
    ("LSTM", "forward", False, 0, {}),
    ("LSTM", "reverse", True, 0, {}),
    ("LSTM", "bidirectional", True, 0, {}),
    ("LSTM", "bidirectional", True, 1, {}),
    ("LSTM", "forward", True, 0, {"clip": 0.5}),
    ("LSTM", "bidirectional", True, 0, {"peepholes": True}),
    ("LSTM", "forward", True, 0, {"lens": [3, 1]}),
    ("LSTM", "reverse", False, 0, {"lens": [2, 3]}),
    ("GRU", "forward", True, 0, {}),
    ("GRU", "bidirectional", True, 0, {"linear_before_reset": 1}),
    ("GRU", "reverse", False, 1, {"linear_before_reset": 1}),
    ("GRU", "bidirectional", True, 1, {"lens": [3, 2]}),
    ("RNN", "forward", True, 0, {}),
    ("RNN", "bidirectional", True, 1, {"clip": 1.0}),
]


def _rnn_model(op, direction, states, layout, extra, rng, T=3, B=2, I=4, H=5):
    dirs = 2 if direction == "bidirectional" else 1
    G = _GATES[op]
    arr = {"W": rng.standard_normal((dirs, G * H, I)) * 0.5,
           "R": rng.standard_normal((dirs, G * H, H)) * 0.5,
           "B": rng.standard_normal((dirs, 2 * G * H)) * 0.5}
    feeds = {"X": rng.standard_normal((B, T, I) if layout else (T, B, I))}
    names = ["X", "W", "R", "B", "", "", "", ""]
    if "lens" in extra:
        arr["lens"] = np.array(extra["lens"], np.int32)
        names[4] = "lens"
    if states:
        shape = (B, dirs, H) if layout else (dirs, B, H)
        feeds["h0"] = rng.standard_normal(shape)
        names[5] = "h0"
        if op == "LSTM":
            feeds["c0"] = rng.standard_normal(shape)
            names[6] = "c0"
    if extra.get("peepholes"):
        arr["P"] = rng.standard_normal((dirs, 3 * H)) * 0.5
        names[7] = "P"
    while names and not names[-1]:
        names.pop()
    attrs = {"hidden_size": H, "direction": direction, "layout": layout}
    for k in ("clip", "linear_before_reset"):
        if k in extra:
            attrs[k] = extra[k]
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, names, outs, **attrs)
    inits = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in arr.items()}
    feeds = {k: v.astype(np.float32) for k, v in feeds.items()}
    model = _build([node], [_vi(k, list(v.shape)) for k, v in feeds.items()],
                   [_vi(o) for o in outs], inits)
    return model, inits, feeds


@pytest.mark.parametrize("op,direction,states,layout,extra", CASES)
def test_recurrent_layers_follow_the_onnx_equations(op, direction, states, layout, extra):
    rng = np.random.default_rng(len(op) + len(direction) + layout)
    model, inits, feeds = _rnn_model(op, direction, states, layout, extra, rng)
    m = ember.onnx.load(model)
    got = m(**feeds)
    f64 = {k: v.astype(np.float64) for k, v in {**inits, **feeds}.items()}
    ref = _np_rnn(op, f64["X"], f64["W"], f64["R"], f64["B"], f64.get("h0"), f64.get("c0"),
                  f64.get("P"), direction, layout, extra.get("clip"),
                  extra.get("linear_before_reset", 0),
                  None if "lens" not in extra else np.array(extra["lens"]))
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g.detach().numpy(), r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op,direction,states,layout,extra",
                         [c for c in CASES if c[3] == 0])  # onnxruntime has no layout=1
def test_recurrent_layers_match_onnxruntime(op, direction, states, layout, extra):
    rng = np.random.default_rng(7)
    model, _, feeds = _rnn_model(op, direction, states, layout, extra, rng)
    ref = _ort(model, feeds)
    got = ember.onnx.load(model)(**feeds)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g.detach().numpy(), r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("extra", [{"linear_before_reset": 1}, {}])
def test_gru_gradients_match_finite_differences(extra):
    """Both paths, the fused primitive (linear_before_reset=1) and the step-by-step ops."""
    rng = np.random.default_rng(0)
    model, inits, feeds = _rnn_model("GRU", "bidirectional", True, 0, extra, rng, T=2, B=1,
                                     I=2, H=2)
    m = ember.onnx.load(model).double()
    x = feeds["X"].astype(np.float64)
    h0 = feeds["h0"].astype(np.float64)
    y = m(X=em.tensor(x), h0=em.tensor(h0))[0]
    (y * y).sum().backward()
    W = dict(m.named_parameters())["W"]
    lbr = extra.get("linear_before_reset", 0)

    def f(w):
        out = _np_rnn("GRU", x, w, inits["R"].astype(np.float64),
                      inits["B"].astype(np.float64), h0, None, None, "bidirectional", 0,
                      None, lbr)[0]
        return float((out * out).sum())

    expected = numeric_grads(f, inits["W"].astype(np.float64))[0]
    np.testing.assert_allclose(W.grad.numpy(), expected, rtol=1e-5, atol=1e-8)


# ----- attention ------------------------------------------------------------------------------


def _attention_block(rng, d=8, heads=2):
    """A transformer attention block as exporters write it: projections, head split with
    Reshape/Transpose, scaled QK^T, Softmax, PV, merge, output projection, residual."""
    inits = {f"{n}.weight": (rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32)
             for n in ("q", "k", "v", "o")}
    inits.update({"heads_shape": np.array([0, 0, heads, d // heads], np.int64),
                  "merge_shape": np.array([0, 0, d], np.int64),
                  "scale": np.array(1 / np.sqrt(d // heads), np.float32)})
    n = helper.make_node
    nodes = []
    for p in ("q", "k", "v"):
        nodes += [n("MatMul", ["x", f"{p}.weight"], [f"{p}0"]),
                  n("Reshape", [f"{p}0", "heads_shape"], [f"{p}1"]),
                  n("Transpose", [f"{p}1"], [f"{p}h"], perm=[0, 2, 1, 3])]
    nodes += [n("Transpose", ["kh"], ["kt"], perm=[0, 1, 3, 2]),
              n("MatMul", ["qh", "kt"], ["s0"]), n("Mul", ["s0", "scale"], ["s"]),
              n("Add", ["s", "mask"], ["sm"]),
              n("Softmax", ["sm"], ["a"], axis=-1), n("MatMul", ["a", "vh"], ["ctx"]),
              n("Transpose", ["ctx"], ["ct"], perm=[0, 2, 1, 3]),
              n("Reshape", ["ct", "merge_shape"], ["merged"]),
              n("MatMul", ["merged", "o.weight"], ["proj"]), n("Add", ["x", "proj"], ["y"])]
    model = _build(nodes, [_vi("x", ["B", "S", d]), _vi("mask", ["S", "S"])], [_vi("y")],
                   inits)
    return model, inits


def _np_attention_block(x, mask, p, heads):
    b, s, d = x.shape

    def split(t):
        return t.reshape(b, s, heads, d // heads).transpose(0, 2, 1, 3)
    q, k, v = (split(x @ p[f"{n}.weight"]) for n in "qkv")
    sc = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // heads) + mask
    a = np.exp(sc - sc.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    ctx = (a @ v).transpose(0, 2, 1, 3).reshape(b, s, d)
    return x + ctx @ p["o.weight"]


def _causal(s):
    return np.triu(np.full((s, s), -1e9, np.float32), 1)


def test_attention_block_matches_numpy_eager_and_jitted():
    rng = np.random.default_rng(0)
    model, p = _attention_block(rng)
    m = ember.onnx.load(model)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    ref = _np_attention_block(x.astype(np.float64), _causal(5), p, 2)
    np.testing.assert_allclose(m(x, _causal(5)).detach().numpy(), ref, rtol=1e-4, atol=1e-5)
    fast = em.jit(m)
    with em.no_grad():
        args = (em.tensor(x), em.tensor(_causal(5)))
        fast(*args)
        np.testing.assert_allclose(fast(*args).numpy(), ref, rtol=1e-4, atol=1e-5)


def test_attention_block_matches_onnxruntime():
    rng = np.random.default_rng(1)
    model, _ = _attention_block(rng)
    x = rng.standard_normal((3, 4, 8)).astype(np.float32)
    ref = _ort(model, {"x": x, "mask": _causal(4)})[0]
    got = ember.onnx.load(model)(x, _causal(4)).detach().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("q_heads,kv_heads,causal", [(2, 2, 0), (4, 2, 1)])
def test_attention_op_of_opset_23(q_heads, kv_heads, causal):
    rng = np.random.default_rng(q_heads)
    B, S, dh = 2, 4, 3
    q = rng.standard_normal((B, q_heads, S, dh)).astype(np.float32)
    k = rng.standard_normal((B, kv_heads, S, dh)).astype(np.float32)
    v = rng.standard_normal((B, kv_heads, S, dh)).astype(np.float32)
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=causal)
    model = _build([node], [_vi("q", list(q.shape)), _vi("k", list(k.shape)),
                            _vi("v", list(v.shape))], [_vi("y")], opset=23)
    got = ember.onnx.load(model)(q, k, v).detach().numpy()
    rep = q_heads // kv_heads
    kk, vv = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    s = q.astype(np.float64) @ kk.transpose(0, 1, 3, 2) / np.sqrt(dh)
    if causal:
        s = s + np.triu(np.full((S, S), -np.inf), 1)
    a = np.exp(s - s.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    np.testing.assert_allclose(got, a @ vv, rtol=1e-4, atol=1e-5)


# ----- control flow ---------------------------------------------------------------------------


def _loop_model(trips):
    """acc = x; repeat `trips` times: acc = acc * w + i (the iteration number); also stack
    every acc (a scan output)."""
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
         helper.make_node("Mul", ["acc_in", "w"], ["m"]),
         helper.make_node("Add", ["m", "fi"], ["acc_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Identity", ["acc_out"], ["scan"])],
        "body", [_vi("i", [], TensorProto.INT64), _vi("cond_in", [], TensorProto.BOOL),
                 _vi("acc_in", [3])],
        [_vi("cond_out", [], TensorProto.BOOL), _vi("acc_out", [3]), _vi("scan", [3])])
    node = helper.make_node("Loop", ["trips", "", "x"], ["acc", "all"], body=body)
    return _build([node], [_vi("x", [3])], [_vi("acc"), _vi("all")],
                  {"trips": np.array(trips, np.int64),
                   "w": np.array([1.0, 2.0, 0.5], np.float32)})


def _np_loop(x, trips):
    acc, out = x.astype(np.float64), []
    for i in range(trips):
        acc = acc * np.array([1.0, 2.0, 0.5]) + i
        out.append(acc)
    return acc, np.stack(out)


def test_loop_with_a_constant_trip_count_runs_and_unrolls_under_jit():
    m = ember.onnx.load(_loop_model(3))
    x = np.array([1.0, -1.0, 4.0], np.float32)
    acc, stacked = m(x)
    ref_acc, ref_all = _np_loop(x, 3)
    np.testing.assert_allclose(acc.detach().numpy(), ref_acc, rtol=1e-6)
    np.testing.assert_allclose(stacked.detach().numpy(), ref_all, rtol=1e-6)
    fast = em.jit(m)
    with em.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        fast(em.tensor(x))
        acc2, all2 = fast(em.tensor(x))
    np.testing.assert_allclose(all2.numpy(), ref_all, rtol=1e-6)
    assert [n.op.name for n in fast.graph.nodes].count("mul") == 3   # one step per iteration


def test_if_takes_the_branch_its_condition_selects():
    def branch(op, name):
        return helper.make_graph([helper.make_node(op, ["x"], [f"{name}_y"])], name, [],
                                 [_vi(f"{name}_y", [2])])
    node = helper.make_node("If", ["c"], ["y"], then_branch=branch("Neg", "then"),
                            else_branch=branch("Abs", "else"))
    m = ember.onnx.load(_build([node], [_vi("c", [], TensorProto.BOOL), _vi("x", [2])],
                               [_vi("y", [2])]))
    x = np.array([-1.5, 2.0], np.float32)
    np.testing.assert_array_equal(m(np.array(True), x).numpy(), -x)
    np.testing.assert_array_equal(m(np.array(False), x).numpy(), np.abs(x))


def test_global_lp_pool_which_onnx_has_no_node_case_for():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    node = helper.make_node("GlobalLpPool", ["x"], ["y"], p=3)
    m = ember.onnx.load(_build([node], [_vi("x", list(x.shape))], [_vi("y")]))
    ref = (np.abs(x.astype(np.float64)) ** 3).sum(axis=(2, 3), keepdims=True) ** (1 / 3)
    np.testing.assert_allclose(m(x).numpy(), ref, rtol=1e-5)
