"""Keras 3 itself as the oracle: weights copied from a real Keras layer (get_weights ->
set_weights) give the same outputs; count_params, compute_output_shape and get_config keys
agree. Skipped when Keras is not installed."""
import os

import numpy as np
import pytest

from oracles import keras_or_skip  # noqa: E402

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = keras_or_skip()

from ember.keras import layers as L  # noqa: E402

# Keras's torch backend warns about NumPy 2's __array__ copy keyword; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RNG = np.random.default_rng(0)
X2 = RNG.standard_normal((4, 5)).astype(np.float32)
X3 = RNG.standard_normal((2, 5, 3)).astype(np.float32)
X4 = RNG.standard_normal((2, 7, 6, 3)).astype(np.float32)

# (id, factory(module), inputs, call kwargs)
CASES = [
    ("dense", lambda M: M.Dense(3, activation="relu"), [X2], {}),
    ("dense_3d", lambda M: M.Dense(4, use_bias=False), [X3], {}),
    ("conv2d", lambda M: M.Conv2D(4, 3), [X4], {}),
    ("conv2d_same_s2", lambda M: M.Conv2D(4, 3, strides=2, padding="same"), [X4], {}),
    ("conv2d_dilated", lambda M: M.Conv2D(2, 3, dilation_rate=2, padding="same"), [X4], {}),
    ("conv2d_groups", lambda M: M.Conv2D(6, 3, groups=3), [X4], {}),
    ("conv1d_causal", lambda M: M.Conv1D(4, 3, padding="causal"), [X3], {}),
    ("conv2d_transpose", lambda M: M.Conv2DTranspose(4, 3, strides=2), [X4], {}),
    ("conv2d_transpose_same", lambda M: M.Conv2DTranspose(4, 3, strides=2, padding="same"),
     [X4], {}),
    ("separable", lambda M: M.SeparableConv2D(5, 3, depth_multiplier=2, padding="same"), [X4],
     {}),
    ("depthwise", lambda M: M.DepthwiseConv2D(3, depth_multiplier=2), [X4], {}),
    ("maxpool_same", lambda M: M.MaxPooling2D(3, 2, padding="same"), [X4], {}),
    ("avgpool", lambda M: M.AveragePooling2D(2), [X4], {}),
    ("maxpool1d", lambda M: M.MaxPooling1D(2), [X3], {}),
    ("gap2d", lambda M: M.GlobalAveragePooling2D(), [X4], {}),
    ("gmp1d", lambda M: M.GlobalMaxPooling1D(keepdims=True), [X3], {}),
    ("batchnorm", lambda M: M.BatchNormalization(), [X4], {}),
    ("layernorm", lambda M: M.LayerNormalization(), [X4], {}),
    ("simple_rnn", lambda M: M.SimpleRNN(4, return_sequences=True), [X3], {}),
    ("lstm", lambda M: M.LSTM(4, return_state=True), [X3], {}),
    ("lstm_backwards", lambda M: M.LSTM(4, return_sequences=True, go_backwards=True), [X3], {}),
    ("gru", lambda M: M.GRU(4, return_sequences=True), [X3], {}),
    ("gru_reset_before", lambda M: M.GRU(4, reset_after=False), [X3], {}),
    ("bidirectional", lambda M: M.Bidirectional(M.LSTM(4, return_sequences=True)), [X3], {}),
    ("bidirectional_sum", lambda M: M.Bidirectional(M.GRU(3), merge_mode="sum"), [X3], {}),
    ("mha", lambda M: M.MultiHeadAttention(2, 4), [X3, X3], {}),
    ("mha_causal", lambda M: M.MultiHeadAttention(2, 3, value_dim=2, output_shape=5),
     [X3, X3], {"use_causal_mask": True}),
    ("embedding", lambda M: M.Embedding(10, 3), [np.array([[1, 2, 9], [0, 4, 4]])], {}),
    ("softmax", lambda M: M.Softmax(), [X3], {}),
    ("leaky_relu", lambda M: M.LeakyReLU(), [X3], {}),
    ("hard_sigmoid", lambda M: M.Activation("hard_sigmoid"), [X3], {}),
    ("gelu", lambda M: M.Activation("gelu"), [X3], {}),
    ("rescaling", lambda M: M.Rescaling(0.5, offset=1.0), [X3], {}),
    ("flatten", lambda M: M.Flatten(), [X4], {}),
    ("permute", lambda M: M.Permute((2, 1)), [X3], {}),
    ("concatenate", lambda M: M.Concatenate(), [[X3, X3]], {}),
    ("add", lambda M: M.Add(), [[X3, X3]], {}),
]


def _keras_in(x):
    if isinstance(x, list):
        return [keras.ops.convert_to_tensor(v) for v in x]
    return keras.ops.convert_to_tensor(x)


def _np(t):
    if isinstance(t, (list, tuple)):
        return [_np(v) for v in t]
    return t.detach().numpy() if hasattr(t, "detach") and not hasattr(t, "cpu") else \
        keras.ops.convert_to_numpy(t)


def _shape(s):
    if isinstance(s, (list, tuple)) and s and isinstance(s[0], (list, tuple)):
        return [tuple(v) for v in s]
    return tuple(s)


def _pair(make, inputs, kwargs):
    """A Keras layer and an ember layer with Keras's weights, both called once."""
    kl, el = make(keras.layers), make(L)
    ky = kl(*[_keras_in(x) for x in inputs], **kwargs)
    el(*inputs, training=False, **kwargs)
    el.set_weights(kl.get_weights())
    return kl, el, ky


@pytest.mark.parametrize("name,make,inputs,kwargs", CASES, ids=[c[0] for c in CASES])
def test_outputs_params_and_shapes_match_keras(name, make, inputs, kwargs):
    kl, el, ky = _pair(make, inputs, kwargs)
    ey = el(*inputs, training=False, **kwargs)
    ky, ey = _np(ky), _np(ey)
    for a, b in zip(ky if isinstance(ky, list) else [ky], ey if isinstance(ey, list) else [ey]):
        np.testing.assert_allclose(b, a, rtol=2e-5, atol=2e-6)
    assert el.count_params() == kl.count_params()
    assert [tuple(w.shape) for w in el.weights] == [tuple(w.shape) for w in kl.weights]
    shapes = [(None,) + np.shape(x)[1:] if not isinstance(x, list) else
              [(None,) + v.shape[1:] for v in x] for x in inputs]
    assert _shape(el.compute_output_shape(*shapes)) == _shape(kl.compute_output_shape(*shapes))


# Keras config keys of features ember does not implement (accepted by from_config when off)
UNSUPPORTED_KEYS = {"quantization_config", "synchronized", "renorm", "renorm_clipping",
                    "renorm_momentum", "use_gate", "sliding_window"}


@pytest.mark.parametrize("name,make,inputs,kwargs", CASES, ids=[c[0] for c in CASES])
def test_config_keys_match_keras_and_keras_configs_load(name, make, inputs, kwargs):
    kcfg, ecfg = make(keras.layers).get_config(), make(L).get_config()
    assert set(ecfg) == set(kcfg) - UNSUPPORTED_KEYS
    if name.startswith("bidirectional"):
        return  # its nested configs name Keras's own classes
    clone = type(make(L)).from_config(kcfg)  # a config written by Keras
    assert clone.get_config().keys() == ecfg.keys()


def test_batchnorm_training_step_matches_keras():
    kl, el = keras.layers.BatchNormalization(momentum=0.9), L.BatchNormalization(momentum=0.9)
    kl.build(X4.shape)
    el.build(X4.shape)
    el.set_weights(kl.get_weights())
    ky = kl(keras.ops.convert_to_tensor(X4), training=True)
    ey = el(X4, training=True)
    np.testing.assert_allclose(_np(ey), _np(ky), rtol=1e-5, atol=1e-6)
    for a, b in zip(el.get_weights(), kl.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_masked_embedding_lstm_matches_keras():
    idx = np.array([[1, 2, 0, 0], [3, 4, 5, 0]])
    kseq = keras.Sequential([keras.layers.Embedding(10, 3, mask_zero=True),
                             keras.layers.LSTM(4, return_sequences=True)])
    ky = keras.ops.convert_to_numpy(kseq(idx))
    emb, lstm = L.Embedding(10, 3, mask_zero=True), L.LSTM(4, return_sequences=True)
    lstm(emb(idx))
    emb.set_weights(kseq.layers[0].get_weights())
    lstm.set_weights(kseq.layers[1].get_weights())
    np.testing.assert_allclose(lstm(emb(idx)).detach().numpy(), ky, rtol=1e-5, atol=1e-6)


def test_mha_attention_mask_and_scores_match_keras():
    mask = RNG.random((2, 5, 5)) > 0.3
    kl, el, _ = _pair(lambda M: M.MultiHeadAttention(2, 4), [X3, X3], {})
    ko, ks = kl(_keras_in(X3), _keras_in(X3), attention_mask=mask,
                return_attention_scores=True)
    eo, es = el(X3, X3, attention_mask=mask, return_attention_scores=True)
    np.testing.assert_allclose(_np(eo), _np(ko), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(es), _np(ks), rtol=1e-5, atol=1e-6)


def test_normalization_adapt_matches_keras():
    data = RNG.standard_normal((40, 3)).astype(np.float32) * 3 + 1
    kl, el = keras.layers.Normalization(), L.Normalization()
    kl.adapt(data)
    el.adapt(data)
    np.testing.assert_allclose(_np(el(X2[:, :3])), _np(kl(X2[:, :3])), rtol=1e-5, atol=1e-6)
    for a, b in zip(el.get_weights(), kl.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_auto_names_follow_keras():
    from ember.keras.layers.layer import _reset_name_counters
    _reset_name_counters()
    keras.backend.clear_session()
    made = [lambda M: M.Dense(1), lambda M: M.Dense(1), lambda M: M.Conv2D(1, 1),
            lambda M: M.BatchNormalization(), lambda M: M.SimpleRNN(1),
            lambda M: M.GlobalAveragePooling2D(), lambda M: M.Conv2DTranspose(1, 1),
            lambda M: M.LSTM(1), lambda M: M.Dense(1)]
    assert [m(L).name for m in made] == [m(keras.layers).name for m in made]
