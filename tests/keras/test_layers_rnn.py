"""SimpleRNN, LSTM, GRU, RNN(cell) and Bidirectional against NumPy loops of Keras's equations
(LSTM gates i, f, c, o; GRU gates z, r, h with reset_after), with masking, go_backwards,
return_state, and finite-difference gradients."""
import numpy as np
import pytest

import ember
from ember.keras import layers as L
from finite_differences import numeric_grads  # noqa: E402

RNG = np.random.default_rng(0)


def npy(t):
    return t.detach().numpy()


def sig(x):
    return 1 / (1 + np.exp(-x))


def step_simple(x, states, k, rk, b, act=np.tanh):
    h = act(x @ k + b + states[0] @ rk)
    return h, [h]


def step_lstm(x, states, k, rk, b, act=np.tanh, rec=sig):
    h, c = states
    z = x @ k + h @ rk + b
    i, f, cc, o = np.split(z, 4, -1)
    c = rec(f) * c + rec(i) * act(cc)
    h = rec(o) * act(c)
    return h, [h, c]


def step_gru(x, states, k, rk, b, reset_after=True):
    h = states[0]
    u = h.shape[-1]
    if reset_after:
        xm, inner = x @ k + b[0], h @ rk + b[1]
        z = sig(xm[:, :u] + inner[:, :u])
        r = sig(xm[:, u:2 * u] + inner[:, u:2 * u])
        hh = np.tanh(xm[:, 2 * u:] + r * inner[:, 2 * u:])
    else:
        xm = x @ k + b
        z = sig(xm[:, :u] + h @ rk[:, :u])
        r = sig(xm[:, u:2 * u] + h @ rk[:, u:2 * u])
        hh = np.tanh(xm[:, 2 * u:] + (r * h) @ rk[:, 2 * u:])
    h = z * h + (1 - z) * hh
    return h, [h]


def ref_rnn(step, x, weights, n_states, units, go_backwards=False, mask=None, zero=False,
            states=None):
    """Keras's loop: masked steps keep the state and repeat the previous output."""
    B, T = x.shape[:2]
    states = states or [np.zeros((B, units)) for _ in range(n_states)]
    order = range(T - 1, -1, -1) if go_backwards else range(T)
    outs, prev = [], np.zeros((B, units))
    for t in order:
        out, new = step(x[:, t], states, *weights)
        if mask is not None:
            m = mask[:, t:t + 1]
            out = np.where(m, out, prev)
            new = [np.where(m, a, b) for a, b in zip(new, states)]
        outs.append(out)
        prev, states = out, new
    seq = np.stack(outs, 1)
    last = outs[-1]
    if mask is not None and zero:
        m = (mask[:, ::-1] if go_backwards else mask)[..., None]
        seq = np.where(m, seq, 0)
        last = np.where(m[:, -1], last, 0)
    return seq, last, states


KINDS = {
    "simple": (L.SimpleRNN, step_simple, 1),
    "lstm": (L.LSTM, step_lstm, 2),
    "gru": (L.GRU, step_gru, 1),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_sequence_layers_match_numpy(kind, go_backwards):
    cls, step, n = KINDS[kind]
    x = RNG.standard_normal((3, 5, 4))
    layer = cls(6, return_sequences=True, return_state=True, go_backwards=go_backwards,
                dtype="float64")
    out = layer(x)
    weights = layer.get_weights()
    seq, last, states = ref_rnn(step, x, weights, n, 6, go_backwards)
    np.testing.assert_allclose(npy(out[0]), seq, rtol=1e-9, atol=1e-12)
    for got, ref in zip(out[1:], states):
        np.testing.assert_allclose(npy(got), ref, rtol=1e-9, atol=1e-12)
    assert len(out) == 1 + n
    plain = cls(6, dtype="float64")
    plain(x)
    plain.set_weights(weights)
    np.testing.assert_allclose(npy(plain(x)), ref_rnn(step, x, weights, n, 6)[1], rtol=1e-9)


def test_weight_layouts_and_lstm_forget_bias():
    lstm = L.LSTM(3)
    lstm(np.zeros((1, 2, 5), np.float32))
    assert [(w.name, tuple(w.shape)) for w in lstm.weights] == [
        ("kernel", (5, 12)), ("recurrent_kernel", (3, 12)), ("bias", (12,))]
    np.testing.assert_array_equal(lstm.cell.bias.numpy(), [0] * 3 + [1] * 3 + [0] * 6)
    assert list(lstm.state_dict()) == ["cell.kernel", "cell.recurrent_kernel", "cell.bias"]
    gru = L.GRU(3)
    gru(np.zeros((1, 2, 5), np.float32))
    assert tuple(gru.cell.bias.shape) == (2, 9)
    assert tuple(L.GRU(3, reset_after=False)(np.zeros((1, 2, 5), np.float32)).shape) == (1, 3)
    assert lstm.units == 3 and lstm.count_params() == 5 * 12 + 3 * 12 + 12
    rk = lstm.cell.recurrent_kernel.numpy().astype(np.float64)
    np.testing.assert_allclose(rk @ rk.T, np.eye(3), atol=1e-5)  # orthogonal rows


@pytest.mark.parametrize("cls,kw,step,n", [
    (L.LSTM, {"activation": "relu"}, lambda x, s, k, rk, b: step_lstm(
        x, s, k, rk, b, act=lambda v: np.maximum(v, 0)), 2),
    (L.GRU, {"reset_after": False}, lambda x, s, k, rk, b: step_gru(x, s, k, rk, b, False), 1),
    (L.SimpleRNN, {"activation": "relu"}, lambda x, s, k, rk, b: step_simple(
        x, s, k, rk, b, act=lambda v: np.maximum(v, 0)), 1),
])
def test_non_default_math_runs_the_step_loop(cls, kw, step, n):
    x = RNG.standard_normal((2, 4, 3))
    layer = cls(5, return_sequences=True, dtype="float64", **kw)
    y = npy(layer(x))
    np.testing.assert_allclose(y, ref_rnn(step, x, layer.get_weights(), n, 5)[0], rtol=1e-9,
                               atol=1e-12)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_steps_keep_state(kind, go_backwards):
    cls, step, n = KINDS[kind]
    x = RNG.standard_normal((3, 5, 2))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 1, 0, 1]], bool)
    for zero in (False, True):
        layer = cls(4, return_sequences=True, return_state=True, go_backwards=go_backwards,
                    zero_output_for_mask=zero, dtype="float64")
        out = layer(x, mask=mask)
        seq, _, states = ref_rnn(step, x, layer.get_weights(), n, 4, go_backwards, mask,
                                 zero)
        np.testing.assert_allclose(npy(out[0]), seq, rtol=1e-9, atol=1e-12)
        for got, ref in zip(out[1:], states):
            np.testing.assert_allclose(npy(got), ref, rtol=1e-9, atol=1e-12)


def test_embedding_mask_flows_into_lstm():
    idx = np.array([[3, 1, 0, 0], [2, 4, 1, 0]])
    emb = L.Embedding(5, 3, mask_zero=True, dtype="float64")
    lstm = L.LSTM(4, dtype="float64")
    y = npy(lstm(emb(idx)))
    x = emb.get_weights()[0][idx]
    _, last, _ = ref_rnn(step_lstm, x, lstm.get_weights(), 2, 4, mask=idx != 0)
    np.testing.assert_allclose(y, last, rtol=1e-9)


def test_initial_state_and_errors():
    x = RNG.standard_normal((2, 3, 4))
    h0, c0 = RNG.standard_normal((2, 5)), RNG.standard_normal((2, 5))
    lstm = L.LSTM(5, dtype="float64")
    y = npy(lstm(x, initial_state=[h0, c0]))
    np.testing.assert_allclose(y, ref_rnn(step_lstm, x, lstm.get_weights(), 2, 5,
                                          states=[h0, c0])[1], rtol=1e-9)
    with pytest.raises(ValueError, match=r"initial_state must be 2 tensor\(s\)"):
        lstm(x, initial_state=[h0])
    with pytest.raises(ValueError, match=r'"lstm.*ndim=3 \(batch, timesteps, 4\)'):
        lstm(np.ones((2, 4)))
    with pytest.raises(ValueError, match="stateful"):
        L.LSTM(2, stateful=True)


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merge_modes(mode):
    x = RNG.standard_normal((2, 4, 3))
    bi = L.Bidirectional(L.GRU(5, return_sequences=True, dtype="float64"), merge_mode=mode)
    out = bi(x)
    w = bi.get_weights()
    assert len(w) == 6 and bi.forward_layer.name.startswith("forward_")
    fwd = ref_rnn(step_gru, x, w[:3], 1, 5)[0]
    bwd = ref_rnn(step_gru, x, w[3:], 1, 5, go_backwards=True)[0][:, ::-1]  # realigned
    ref = {"concat": np.concatenate([fwd, bwd], -1), "sum": fwd + bwd, "mul": fwd * bwd,
           "ave": (fwd + bwd) / 2, None: [fwd, bwd]}[mode]
    if mode is None:
        for got, r in zip(out, ref):
            np.testing.assert_allclose(npy(got), r, rtol=1e-9, atol=1e-12)
    else:
        np.testing.assert_allclose(npy(out), ref, rtol=1e-9, atol=1e-12)
    shape = bi.compute_output_shape((None, 4, 3))
    assert shape == ([(None, 4, 5)] * 2 if mode is None else
                     (None, 4, 10) if mode == "concat" else (None, 4, 5))


def test_bidirectional_lstm_return_state():
    x = RNG.standard_normal((2, 4, 3))
    bi = L.Bidirectional(L.LSTM(2, return_state=True, dtype="float64"))
    out = bi(x)
    assert len(out) == 5
    w = bi.get_weights()
    _, last_f, st_f = ref_rnn(step_lstm, x, w[:3], 2, 2)
    _, last_b, st_b = ref_rnn(step_lstm, x, w[3:], 2, 2, go_backwards=True)
    np.testing.assert_allclose(npy(out[0]), np.concatenate([last_f, last_b], -1), rtol=1e-9)
    for got, ref in zip(out[1:], st_f + st_b):
        np.testing.assert_allclose(npy(got), ref, rtol=1e-9)
    with pytest.raises(ValueError, match="merge mode"):
        L.Bidirectional(L.LSTM(2), merge_mode="max")


def test_generic_rnn_with_a_cell():
    x = RNG.standard_normal((2, 3, 4))
    rnn = L.RNN(L.SimpleRNNCell(3, dtype="float64"), return_sequences=True)
    y = npy(rnn(x))
    np.testing.assert_allclose(y, ref_rnn(step_simple, x, rnn.get_weights(), 1, 3)[0],
                               rtol=1e-9)
    cell = L.LSTMCell(2, dtype="float64")
    h, (h2, c) = cell(x[:, 0], [np.zeros((2, 2)), np.zeros((2, 2))])
    ref_h, (_, ref_c) = step_lstm(x[:, 0], [np.zeros((2, 2))] * 2, *cell.get_weights())
    np.testing.assert_allclose(npy(h), ref_h, rtol=1e-9)
    np.testing.assert_allclose(npy(c), ref_c, rtol=1e-9)
    again = L.RNN.from_config(rnn.get_config())
    assert isinstance(again.cell, L.SimpleRNNCell) and again.cell.units == 3


def test_recurrent_dropout_only_in_training():
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    layer = L.LSTM(3, dropout=0.5, recurrent_dropout=0.5, seed=1)
    ref = npy(layer(x, training=False))
    np.testing.assert_allclose(npy(layer(x, training=False)), ref)
    assert not np.allclose(npy(layer(x, training=True)), ref)


@pytest.mark.parametrize("kind", list(KINDS))
def test_gradients_match_finite_differences(kind):
    cls, step, n = KINDS[kind]
    x = RNG.standard_normal((2, 3, 2))
    layer = cls(2, return_sequences=True, dtype="float64")
    xt = ember.tensor(x, requires_grad=True)
    y = layer(xt)
    r = RNG.standard_normal(tuple(y.shape))
    (y * ember.tensor(r)).sum().backward()
    weights = layer.get_weights()
    num = numeric_grads(lambda xx, *ws: float((ref_rnn(step, xx, ws, n, 2)[0] * r).sum()),
                        x, *weights)
    got = [xt.grad] + [w.grad for w in layer.trainable_weights]
    for g, nm in zip(got, num):
        np.testing.assert_allclose(g.numpy(), nm, rtol=1e-5, atol=1e-8)


def test_config_round_trips():
    lstm = L.LSTM(4, return_sequences=True, dropout=0.1, unit_forget_bias=False, name="enc")
    cfg = lstm.get_config()
    assert cfg["units"] == 4 and cfg["recurrent_activation"] == "sigmoid"
    again = L.LSTM.from_config(cfg)
    assert again.get_config() == cfg
    bi = L.Bidirectional(L.GRU(3), merge_mode="sum")
    again = L.Bidirectional.from_config(bi.get_config())
    assert again.merge_mode == "sum" and again.backward_layer.go_backwards
