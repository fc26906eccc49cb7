"""RNN / LSTM / GRU and their cells: forward against NumPy loops over the published equations,
gradients against central finite differences (float64), PyTorch's parameter names and shapes."""
import itertools
import math

import numpy as np
import pytest

import ember
import ember.nn as nn
from ember.ops import rnn as R

# ----- an independent reference: the published equations, one time step at a time -------------


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_cell(mode, x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """One step of PyTorch's documented equations; x (B, I), h (B, P), c (B, H)."""
    gi = x @ w_ih.T + (b_ih if b_ih is not None else 0)
    gh = h @ w_hh.T + (b_hh if b_hh is not None else 0)
    if mode == "LSTM":
        H = w_hh.shape[0] // 4
        i, f = _sig(gi[:, :H] + gh[:, :H]), _sig(gi[:, H:2 * H] + gh[:, H:2 * H])
        g, o = np.tanh(gi[:, 2 * H:3 * H] + gh[:, 2 * H:3 * H]), _sig(gi[:, 3 * H:] + gh[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        return (h @ w_hr.T if w_hr is not None else h), c
    if mode == "GRU":
        H = w_hh.shape[0] // 3
        r = _sig(gi[:, :H] + gh[:, :H])
        z = _sig(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (np.tanh(pre) if mode == "RNN_TANH" else np.maximum(pre, 0)), None


def np_rnn(mode, params, x, h0, c0, num_layers, bidirectional, batch_first):
    """Multi-layer, optionally bidirectional reference over x (T, B, I) / (B, T, I) / (T, I)."""
    unbatched = x.ndim == 2
    if unbatched:
        x = x[:, None] if not batch_first else x[None]
        h0 = None if h0 is None else h0[:, None]
        c0 = None if c0 is None else c0[:, None]
    if batch_first:
        x = x.transpose(1, 0, 2)
    T, B, _ = x.shape
    D = 2 if bidirectional else 1
    hn, cn = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = params["weight_ih" + sfx], params["weight_hh" + sfx]
            b_ih, b_hh = params.get("bias_ih" + sfx), params.get("bias_hh" + sfx)
            w_hr = params.get("weight_hr" + sfx)
            P = w_hh.shape[1]
            H = w_hr.shape[1] if w_hr is not None else P
            k = layer * D + d
            h = h0[k] if h0 is not None else np.zeros((B, P))
            c = c0[k] if c0 is not None else np.zeros((B, H))
            out = [None] * T
            for t in (range(T - 1, -1, -1) if d else range(T)):
                h, c = np_cell(mode, x[t], h, c, w_ih, w_hh, b_ih, b_hh, w_hr)
                out[t] = h
            outs.append(np.stack(out))
            hn.append(h)
            cn.append(c)
        x = np.concatenate(outs, -1)
    if batch_first:
        x = x.transpose(1, 0, 2)
    hn, cn = np.stack(hn), (np.stack(cn) if mode == "LSTM" else None)
    if unbatched:
        x = x[:, 0] if not batch_first else x[0]
        hn = hn[:, 0]
        cn = None if cn is None else cn[:, 0]
    return x, hn, cn


def _params(m):
    return {k: v.detach().numpy() for k, v in m.state_dict().items()}


def _make(mode, *args, **kw):
    if mode.startswith("RNN"):
        return nn.RNN(*args, nonlinearity="tanh" if mode == "RNN_TANH" else "relu", **kw)
    return getattr(nn, mode)(*args, **kw)


def _run(m, x, h0, c0):
    """(output, h_n, c_n or None) from an ember module call."""
    if m.mode == "LSTM":
        out, (h, c) = m(x, None if h0 is None else (h0, c0))
        return out, h, c
    out, h = m(x, h0)
    return out, h, None


_MODES = ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]
_TABLE = list(itertools.product(_MODES, [1, 2], [False, True], [False, True], [False, True],
                                [False, True]))


@pytest.mark.parametrize("mode,layers,bidir,batch_first,with_state,unbatched", _TABLE)
def test_forward_matches_numpy_equations(mode, layers, bidir, batch_first, with_state,
                                         unbatched):
    T, B, I, H = 4, 3, 5, 6
    m = _make(mode, I, H, num_layers=layers, bidirectional=bidir, batch_first=batch_first,
              dtype=ember.float64)
    rng = np.random.default_rng(1)
    shape = (T, I) if unbatched else ((B, T, I) if batch_first else (T, B, I))
    x = rng.standard_normal(shape)
    n = layers * (2 if bidir else 1)
    sshape = (n, H) if unbatched else (n, B, H)
    h0 = rng.standard_normal(sshape) if with_state else None
    c0 = rng.standard_normal(sshape) if with_state else None
    out, h, c = _run(m, ember.tensor(x), None if h0 is None else ember.tensor(h0),
                     None if c0 is None else ember.tensor(c0))
    ro, rh, rc = np_rnn(mode, _params(m), x, h0, c0 if mode == "LSTM" else None, layers, bidir,
                        batch_first)
    np.testing.assert_allclose(out.detach().numpy(), ro, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h.detach().numpy(), rh, rtol=1e-12, atol=1e-12)
    if mode == "LSTM":
        np.testing.assert_allclose(c.detach().numpy(), rc, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bidir,batch_first", [(False, False), (True, True)])
def test_lstm_proj_size_forward(bidir, batch_first):
    m = nn.LSTM(4, 5, num_layers=2, proj_size=3, bidirectional=bidir, batch_first=batch_first,
                dtype=ember.float64)
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    out, (h, c) = m(ember.tensor(x))
    D = 2 if bidir else 1
    assert tuple(out.shape) == (2, 3, 3 * D)
    assert tuple(h.shape) == (2 * D, 2 if batch_first else 3, 3)
    assert tuple(c.shape) == (2 * D, 2 if batch_first else 3, 5)
    ro, rh, rc = np_rnn("LSTM", _params(m), x, None, None, 2, bidir, batch_first)
    np.testing.assert_allclose(out.detach().numpy(), ro, atol=1e-12)
    np.testing.assert_allclose(h.detach().numpy(), rh, atol=1e-12)
    np.testing.assert_allclose(c.detach().numpy(), rc, atol=1e-12)


def test_float32_forward_close_to_float64_reference():
    m = nn.LSTM(8, 16, batch_first=True)
    x = np.random.default_rng(3).standard_normal((4, 7, 8)).astype(np.float32)
    out, (h, c) = m(ember.tensor(x))
    assert out.dtype == ember.float32
    ro, rh, rc = np_rnn("LSTM", {k: v.astype(np.float64) for k, v in _params(m).items()},
                        x.astype(np.float64), None, None, 1, False, True)
    np.testing.assert_allclose(out.detach().numpy(), ro, atol=1e-5)
    np.testing.assert_allclose(c.detach().numpy(), rc, atol=1e-5)


# ----- gradients: central finite differences in float64 ----------------------------------------


def _fd_check(loss_fn, tensors, eps=1e-6, tol=1e-7, value_fn=None):
    """Compare each tensor's .grad (after loss_fn().backward()) with central differences of
    ``value_fn`` (default: loss_fn without gradient tracking)."""
    for t in tensors:
        t.grad = None
    loss_fn().backward()
    if value_fn is None:
        value_fn = loss_fn
        mode = ember.no_grad
    else:
        mode = ember.enable_grad
    for t in tensors:
        d = t._data
        num = np.zeros_like(d)
        with mode():
            for idx in np.ndindex(d.shape):
                v = d[idx]
                d[idx] = v + eps
                fp = value_fn().item()
                d[idx] = v - eps
                fm = value_fn().item()
                d[idx] = v
                num[idx] = (fp - fm) / (2 * eps)
        assert t.grad is not None, f"no gradient for a tensor of shape {tuple(t.shape)}"
        np.testing.assert_allclose(t.grad.numpy(), num, rtol=1e-6, atol=tol)


_GRAD_CASES = [(mode, layers, bidir, bf) for mode in _MODES
               for layers, bidir, bf in [(1, False, False), (2, True, True)]]


@pytest.mark.parametrize("mode,layers,bidir,batch_first", _GRAD_CASES)
def test_gradients_match_finite_differences(mode, layers, bidir, batch_first):
    T, B, I, H = 3, 2, 3, 2
    m = _make(mode, I, H, num_layers=layers, bidirectional=bidir, batch_first=batch_first,
              dtype=ember.float64)
    rng = np.random.default_rng(4)
    n = layers * (2 if bidir else 1)
    x = ember.tensor(rng.standard_normal((B, T, I) if batch_first else (T, B, I)),
                     requires_grad=True)
    h0 = ember.tensor(rng.standard_normal((n, B, H)), requires_grad=True)
    c0 = ember.tensor(rng.standard_normal((n, B, H)), requires_grad=True)
    D = 2 if bidir else 1
    w_out = ember.tensor(rng.standard_normal(tuple(x.shape[:2]) + (D * H,)))
    w_h, w_c = (ember.tensor(rng.standard_normal((n, B, H))) for _ in range(2))

    def loss():
        out, h, c = _run(m, x, h0, c0)
        total = (out * w_out).sum() + (h * w_h).sum()
        return total + (c * w_c).sum() if c is not None else total

    tensors = [x, h0] + ([c0] if mode == "LSTM" else []) + list(m.parameters())
    _fd_check(loss, tensors)


def test_lstm_proj_gradients_match_finite_differences():
    m = nn.LSTM(3, 3, proj_size=2, bidirectional=True, dtype=ember.float64)
    x = ember.tensor(np.random.default_rng(5).standard_normal((3, 2, 3)), requires_grad=True)
    w = ember.tensor(np.random.default_rng(6).standard_normal((3, 2, 4)))

    def loss():
        out, (h, c) = m(x)
        return (out * w).sum() + (h * h).sum() + c.sum()

    _fd_check(loss, [x] + list(m.parameters()))


def test_gradient_through_final_state_only():
    # a classifier on h_n: the output slice gets no gradient, the state path must still work
    m = nn.GRU(2, 3, dtype=ember.float64)
    x = ember.tensor(np.random.default_rng(7).standard_normal((4, 2, 2)), requires_grad=True)
    _fd_check(lambda: (m(x)[1] ** 2).sum(), [x] + list(m.parameters()))


@pytest.mark.parametrize("mode", _MODES)
def test_unbatched_gradients(mode):
    m = _make(mode, 2, 2, dtype=ember.float64)
    x = ember.tensor(np.random.default_rng(8).standard_normal((3, 2)), requires_grad=True)
    _fd_check(lambda: (m(x)[0] ** 2).sum(), [x] + list(m.parameters()))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_second_order_gradients(kind):
    # d/dθ <v, d loss/dx> vs finite differences of the (already checked) first-order gradient
    rng = np.random.default_rng(9)
    T, B, I, H = 2, 2, 2, 2
    G = {"lstm": 4, "gru": 3, "rnn": 1}[kind] * H
    x = ember.tensor(rng.standard_normal((T, B, I)), requires_grad=True)
    h0 = ember.tensor(rng.standard_normal((B, H)), requires_grad=True)
    c0 = ember.tensor(rng.standard_normal((B, H)))
    w_ih = ember.tensor(rng.standard_normal((G, I)) * 0.5, requires_grad=True)
    w_hh = ember.tensor(rng.standard_normal((G, H)) * 0.5, requires_grad=True)
    v = ember.tensor(rng.standard_normal((T, B, I)))

    def first(create_graph):
        if kind == "lstm":
            out, h, c = R.lstm_layer(x, h0, c0, w_ih, w_hh)
        elif kind == "gru":
            out, h = R.gru_layer(x, h0, w_ih, w_hh)
        else:
            out, h = R.rnn_layer(x, h0, w_ih, w_hh)
        loss = (out ** 2).sum() + h.sum()
        (gx,) = ember.autograd.grad(loss, [x], create_graph=create_graph)
        return (gx * v).sum()

    _fd_check(lambda: first(True), [w_hh, h0], value_fn=lambda: first(False))


# ----- cells ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls,mode", [(nn.LSTMCell, "LSTM"), (nn.GRUCell, "GRU"),
                                      (nn.RNNCell, "RNN_TANH"), (nn.RNNCell, "RNN_RELU")])
@pytest.mark.parametrize("unbatched", [False, True])
def test_cells_match_numpy_and_finite_differences(cls, mode, unbatched):
    kw = {"nonlinearity": "relu"} if mode == "RNN_RELU" else {}
    cell = cls(3, 2, dtype=ember.float64, **kw)
    rng = np.random.default_rng(10)
    shape = (3,) if unbatched else (4, 3)
    hshape = (2,) if unbatched else (4, 2)
    x = ember.tensor(rng.standard_normal(shape), requires_grad=True)
    h = ember.tensor(rng.standard_normal(hshape), requires_grad=True)
    c = ember.tensor(rng.standard_normal(hshape), requires_grad=True)
    p = _params(cell)
    as2 = (lambda a: a[None]) if unbatched else (lambda a: a)
    rh, rc = np_cell(mode, as2(x.detach().numpy()), as2(h.detach().numpy()),
                     as2(c.detach().numpy()), p["weight_ih"], p["weight_hh"], p["bias_ih"],
                     p["bias_hh"])
    if mode == "LSTM":
        h1, c1 = cell(x, (h, c))
        np.testing.assert_allclose(c1.detach().numpy(), rc.reshape(hshape), atol=1e-12)
        loss = lambda: (cell(x, (h, c))[0] ** 2).sum() + cell(x, (h, c))[1].sum()
        tensors = [x, h, c]
    else:
        h1 = cell(x, h)
        loss = lambda: (cell(x, h) ** 2).sum()
        tensors = [x, h]
    assert tuple(h1.shape) == hshape
    np.testing.assert_allclose(h1.detach().numpy(), rh.reshape(hshape), atol=1e-12)
    _fd_check(loss, tensors + list(cell.parameters()))


def test_cell_default_state_is_zeros():
    cell = nn.LSTMCell(3, 2, dtype=ember.float64)
    x = ember.randn(4, 3, dtype=ember.float64)
    z = ember.zeros(4, 2, dtype=ember.float64)
    h1, c1 = cell(x)
    h2, c2 = cell(x, (z, z))
    np.testing.assert_array_equal(h1.detach().numpy(), h2.detach().numpy())
    np.testing.assert_array_equal(c1.detach().numpy(), c2.detach().numpy())


# ----- parameters: PyTorch's names, shapes and initialisation ----------------------------------


def _keys(m):
    return [(k, tuple(v.shape)) for k, v in m.state_dict().items()]


def test_state_dict_layout_lstm_bidirectional_projected():
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    assert _keys(m) == [
        ("weight_ih_l0", (16, 3)), ("weight_hh_l0", (16, 2)), ("bias_ih_l0", (16,)),
        ("bias_hh_l0", (16,)), ("weight_hr_l0", (2, 4)),
        ("weight_ih_l0_reverse", (16, 3)), ("weight_hh_l0_reverse", (16, 2)),
        ("bias_ih_l0_reverse", (16,)), ("bias_hh_l0_reverse", (16,)),
        ("weight_hr_l0_reverse", (2, 4)),
        ("weight_ih_l1", (16, 4)), ("weight_hh_l1", (16, 2)), ("bias_ih_l1", (16,)),
        ("bias_hh_l1", (16,)), ("weight_hr_l1", (2, 4)),
        ("weight_ih_l1_reverse", (16, 4)), ("weight_hh_l1_reverse", (16, 2)),
        ("bias_ih_l1_reverse", (16,)), ("bias_hh_l1_reverse", (16,)),
        ("weight_hr_l1_reverse", (2, 4))]


def test_state_dict_layout_gru_rnn_cells():
    assert _keys(nn.GRU(3, 4, bias=False)) == [("weight_ih_l0", (12, 3)),
                                              ("weight_hh_l0", (12, 4))]
    assert _keys(nn.RNN(3, 4, num_layers=2)) == [
        ("weight_ih_l0", (4, 3)), ("weight_hh_l0", (4, 4)), ("bias_ih_l0", (4,)),
        ("bias_hh_l0", (4,)), ("weight_ih_l1", (4, 4)), ("weight_hh_l1", (4, 4)),
        ("bias_ih_l1", (4,)), ("bias_hh_l1", (4,))]
    assert _keys(nn.LSTM(3, 4, bidirectional=True)) == [
        ("weight_ih_l0", (16, 3)), ("weight_hh_l0", (16, 4)), ("bias_ih_l0", (16,)),
        ("bias_hh_l0", (16,)), ("weight_ih_l0_reverse", (16, 3)),
        ("weight_hh_l0_reverse", (16, 4)), ("bias_ih_l0_reverse", (16,)),
        ("bias_hh_l0_reverse", (16,))]
    assert _keys(nn.LSTMCell(3, 4)) == [("weight_ih", (16, 3)), ("weight_hh", (16, 4)),
                                        ("bias_ih", (16,)), ("bias_hh", (16,))]
    assert _keys(nn.GRUCell(3, 4, bias=False)) == [("weight_ih", (12, 3)),
                                                   ("weight_hh", (12, 4))]
    assert _keys(nn.RNNCell(3, 4)) == [("weight_ih", (4, 3)), ("weight_hh", (4, 4)),
                                       ("bias_ih", (4,)), ("bias_hh", (4,))]


@pytest.mark.parametrize("m", [nn.LSTM(10, 64, num_layers=2), nn.GRUCell(10, 64)],
                         ids=["LSTM", "GRUCell"])
def test_init_is_uniform_within_one_over_sqrt_hidden(m):
    bound = 1 / math.sqrt(64)
    for name, p in m.named_parameters():
        a = p.detach().numpy()
        assert np.abs(a).max() <= bound, name
        if a.size > 500:  # U(-b, b) has std b / sqrt(3)
            assert abs(a.std() - bound / math.sqrt(3)) < 0.1 * bound, name


def test_repr_and_attributes():
    m = nn.GRU(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5)
    assert repr(m) == "GRU(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5)"
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"
    lstm = nn.LSTM(3, 4, bidirectional=True)
    assert lstm._flat_weights_names[:2] == ["weight_ih_l0", "weight_hh_l0"]
    assert [len(ws) for ws in lstm.all_weights] == [4, 4]
    lstm.flatten_parameters()  # a no-op, but PyTorch scripts call it


# ----- training mode, dropout between layers ------------------------------------------------------


def test_dropout_between_layers_only_in_training():
    m = nn.GRU(3, 4, num_layers=2, dropout=1.0, dtype=ember.float64)
    x = np.random.default_rng(11).standard_normal((5, 2, 3))
    p = _params(m)
    out, _ = m(ember.tensor(x))  # p=1 zeroes layer 0's output: layer 1 sees zeros
    zeros_in = np_rnn("GRU", {k.replace("_l1", "_l0"): v for k, v in p.items() if "_l1" in k},
                      np.zeros((5, 2, 4)), None, None, 1, False, False)[0]
    np.testing.assert_allclose(out.detach().numpy(), zeros_in, atol=1e-12)
    m.eval()
    out, _ = m(ember.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(),
                               np_rnn("GRU", p, x, None, None, 2, False, False)[0], atol=1e-12)


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.3)


# ----- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("call,exc,words", [
    (lambda: nn.LSTM(3, 4)(ember.randn(2, 3, 4, 5)), ValueError, ["LSTM", "2D or 3D", "4D"]),
    (lambda: nn.GRU(3, 4)(ember.randn(2, 3, 5)), RuntimeError, ["GRU", "Expected 3, got 5"]),
    (lambda: nn.LSTM(3, 4)(ember.randn(2, 3, 3), (ember.randn(1, 2, 4), ember.randn(1, 3, 4))),
     RuntimeError, ["LSTM", "(1, 3, 4)", "(1, 2, 4)"]),
    (lambda: nn.LSTM(3, 4)(ember.randn(2, 3, 3), (ember.randn(1, 3, 4), ember.randn(1, 3, 5))),
     RuntimeError, ["LSTM", "c_0", "(1, 3, 5)"]),
    (lambda: nn.RNN(3, 4, num_layers=2)(ember.randn(2, 3, 3), ember.randn(1, 3, 4)),
     RuntimeError, ["RNN", "(2, 3, 4)", "(1, 3, 4)"]),
    (lambda: nn.GRU(3, 4)(ember.randn(2, 3, 3), ember.randn(3, 4)), RuntimeError,
     ["GRU", "3-D", "2-D"]),
    (lambda: nn.GRU(3, 4)(ember.randn(2, 3), ember.randn(1, 1, 4)), RuntimeError,
     ["GRU", "unbatched"]),
    (lambda: nn.LSTM(3, 4)(ember.randn(2, 3, 3), ember.randn(1, 3, 4)), TypeError,
     ["LSTM", "tuple"]),
    (lambda: nn.LSTM(3, 4)(ember.randn(2, 3, 3, dtype=ember.float64)), ValueError,
     ["LSTM", "float64", "float32"]),
    (lambda: nn.LSTM(3, 4)(ember.randn(0, 2, 3)), RuntimeError, ["lstm_layer", "sequence length"]),
    (lambda: nn.LSTMCell(3, 4)(ember.randn(2, 5)), RuntimeError, ["LSTMCell", "got 5 expected 3"]),
    (lambda: nn.GRUCell(3, 4)(ember.randn(2, 2, 3)), ValueError, ["GRUCell", "1D or 2D", "3D"]),
    (lambda: nn.GRUCell(3, 4)(ember.randn(2, 3), ember.randn(3, 4)), RuntimeError,
     ["GRUCell", "(2, 4)", "(3, 4)"]),
    (lambda: nn.LSTM(3, 4, dropout=1.5), ValueError, ["dropout", "[0, 1]"]),
    (lambda: nn.LSTM(3, 0), ValueError, ["hidden_size"]),
    (lambda: nn.LSTM(3, 4, num_layers=0), ValueError, ["num_layers"]),
    (lambda: nn.LSTM(3, 4, proj_size=4), ValueError, ["proj_size", "smaller"]),
    (lambda: nn.GRU(3, 4, proj_size=2), ValueError, ["proj_size", "LSTM"]),
    (lambda: nn.RNN(3, 4, nonlinearity="gelu"), ValueError, ["gelu", "tanh", "relu"]),
    (lambda: R.lstm_layer(ember.randn(2, 3, 3), ember.zeros(3, 4), ember.zeros(3, 4),
                          ember.randn(16, 5), ember.randn(16, 4)), RuntimeError,
     ["lstm_layer", "input_size 3", "5"]),
])
def test_errors_name_the_layer_and_shapes(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


# ----- interchange with PyTorch (optional) --------------------------------------------------------


@pytest.mark.parametrize("name,kw", [("LSTM", {"num_layers": 2, "bidirectional": True}),
                                     ("LSTM", {"proj_size": 3, "batch_first": True}),
                                     ("GRU", {"num_layers": 2, "batch_first": True}),
                                     ("RNN", {"nonlinearity": "relu", "bidirectional": True})])
def test_torch_state_dict_gives_same_outputs_and_gradients(name, kw):
    torch = pytest.importorskip("torch")
    tm = getattr(torch.nn, name)(5, 4, **kw).double()
    em = getattr(nn, name)(5, 4, **kw).double()
    em.load_state_dict({k: ember.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(12).standard_normal((3, 6, 5))
    tx, ex = torch.tensor(x, requires_grad=True), ember.tensor(x, requires_grad=True)
    to, th = tm(tx)
    eo, eh = em(ex)
    th, eh = (th[0], eh[0]) if name == "LSTM" else (th, eh)
    np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(eh.detach().numpy(), th.detach().numpy(), atol=1e-12)
    ((to ** 2).sum() + th.sum()).backward()
    ((eo ** 2).sum() + eh.sum()).backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), atol=1e-10)
    for (k, p), (k2, q) in zip(em.named_parameters(), tm.named_parameters()):
        assert k == k2
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), atol=1e-10, err_msg=k)


# ----- edge cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", _MODES)
def test_empty_batch(mode):
    m = _make(mode, 3, 4, bidirectional=True)
    x = ember.randn(5, 0, 3, requires_grad=True)
    out, h, c = _run(m, x, None, None)
    assert tuple(out.shape) == (5, 0, 8) and tuple(h.shape) == (2, 0, 4)
    out.sum().backward()
    assert float(np.abs(m.weight_hh_l0.grad.numpy()).sum()) == 0.0


def test_non_contiguous_input_and_expanded_state():
    m = nn.LSTM(3, 4, dtype=ember.float64)
    x = np.random.default_rng(13).standard_normal((5, 3, 2))
    xe = ember.tensor(x).transpose(1, 2)  # (5, 2, 3), not contiguous
    z = ember.zeros(1, 1, 4, dtype=ember.float64).expand(1, 2, 4)
    out, _ = m(xe, (z, z))
    ref = np_rnn("LSTM", _params(m), x.transpose(0, 2, 1), None, None, 1, False, False)[0]
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-12)


def test_saved_activations_survive_later_calls():
    # the kernels recycle scratch memory: activations kept for a pending backward must not be
    # reused by other forward calls in between
    m = nn.LSTM(3, 4, dtype=ember.float64)
    x = ember.tensor(np.random.default_rng(14).standard_normal((6, 2, 3)))
    loss = (m(x)[0] ** 2).sum()
    loss.backward(retain_graph=True)
    g1 = m.weight_hh_l0.grad.numpy().copy()
    for _ in range(3):  # forwards with and without a graph, same shapes
        with ember.no_grad():
            m(ember.randn(6, 2, 3, dtype=ember.float64))
        (m(ember.randn(6, 2, 3, dtype=ember.float64))[0].sum()).backward()
    m.zero_grad()
    loss.backward()
    np.testing.assert_array_equal(m.weight_hh_l0.grad.numpy(), g1)
