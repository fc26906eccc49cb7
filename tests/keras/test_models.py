"""keras.Input, Sequential, functional Model and subclassed Model: structure and values.

Forward values are checked against NumPy formulas written out here (Dense: x @ W + b), and
weight order against real Keras (importorskip, KERAS_BACKEND=torch).
"""
import os

import numpy as np
import pytest

from ember import keras
from ember.keras import layers
from ember.keras.models import clone_model, model_from_json
from ember.keras.models.input_layer import KerasTensor
from oracles import keras_or_skip  # noqa: E402


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def dense_ref(layer, x):
    """Dense without activation, in NumPy: x @ kernel + bias."""
    kernel, bias = layer.get_weights()
    return x @ kernel + bias


def relu(x):
    return np.maximum(x, 0)



# real Keras (the oracle) warns about its own NumPy conversions
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

RNG = np.random.default_rng(0)


# ----- Input / KerasTensor -----------------------------------------------------------------------

def test_input_is_symbolic_with_none_batch():
    x = keras.Input(shape=(28, 28, 1), name="img")
    assert isinstance(x, KerasTensor)
    assert (x.shape, x.dtype, x.name, x.ndim) == ((None, 28, 28, 1), "float32", "img", 4)
    layer, node_index, tensor_index = x._keras_history
    assert type(layer).__name__ == "InputLayer" and (node_index, tensor_index) == (0, 0)
    assert keras.Input(shape=(3,), batch_size=8, dtype="int32").shape == (8, 3)


def test_layer_on_keras_tensor_records_shape_and_history():
    x = keras.Input(shape=(6,))
    dense = layers.Dense(4)
    y = dense(x)
    assert isinstance(y, KerasTensor) and y.shape == (None, 4)
    assert y._keras_history[0] is dense
    assert dense.built and [w.shape for w in dense.weights] == [(6, 4), (4,)]


@pytest.mark.parametrize("bad", [lambda t: t + 1, lambda t: t * t, lambda t: bool(t),
                                 lambda t: np.asarray(t)])
def test_keras_tensor_has_no_value(bad):
    with pytest.raises(TypeError, match="symbolic KerasTensor"):
        bad(keras.Input(shape=(2,)))


@pytest.mark.parametrize("kwargs, match", [({}, "shape"), ({"shape": (2,), "batch_shape": (1, 2)},
                                                           "both"),
                                           ({"shape": (-1,)}, "non-negative")])
def test_input_rejects_bad_shapes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        keras.Input(**kwargs)


# ----- Sequential --------------------------------------------------------------------------------

def _mlp_ref(model, x):
    h = relu(dense_ref(model.layers[0], x))
    return dense_ref(model.layers[1], h)


@pytest.mark.parametrize("make", [
    lambda: keras.Sequential([keras.Input(shape=(5,)), layers.Dense(4, activation="relu"),
                              layers.Dense(3)]),
    lambda: keras.Sequential([layers.Dense(4, activation="relu", input_shape=(5,)),
                              layers.Dense(3)]),
], ids=["Input-first", "input_shape-kwarg"])
def test_sequential_with_known_input_is_built_at_once(make):
    model = make()
    assert model.built and len(model.weights) == 4
    assert model.input_shape == (None, 5) and model.output_shape == (None, 3)
    assert [type(x).__name__ for x in model.layers] == ["Dense", "Dense"]  # no InputLayer
    x = RNG.standard_normal((7, 5)).astype(np.float32)
    np.testing.assert_allclose(_np(model(x, training=False)), _mlp_ref(model, x), rtol=1e-5,
                               atol=1e-6)


def test_sequential_add_and_lazy_build_on_first_call():
    model = keras.Sequential()
    model.add(layers.Dense(4, activation="relu"))
    model.add(layers.Dense(3))
    assert not model.built and model.weights == []
    with pytest.raises(AttributeError, match="no defined input shape"):
        model.input_shape
    x = RNG.standard_normal((2, 5)).astype(np.float32)
    out = _np(model(x, training=False))
    assert model.built and model.input_shape == (2, 5)  # Keras keeps the first batch's shape
    np.testing.assert_allclose(out, _mlp_ref(model, x), rtol=1e-5, atol=1e-6)


def test_sequential_build_with_shape():
    model = keras.Sequential([layers.Dense(3)])
    model.build((None, 7))
    assert model.layers[0].get_weights()[0].shape == (7, 3)
    assert model.output_shape == (None, 3)


def test_sequential_pop_and_rebuild():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.Dense(2, name="top")])
    last = model.pop()
    assert last.name == "top"
    assert len(model.layers) == 1 and model.output_shape == (None, 3)
    assert len(model.weights) == 2 and len(list(model.parameters())) == 2


@pytest.mark.parametrize("action, match", [
    (lambda m: m.add("dense"), "Only instances of `keras.Layer`"),
    (lambda m: m.add(layers.Dense(2, name="d1")), "unique names"),
    (lambda m: m.add(keras.Input((3,))), "already been configured"),
])
def test_sequential_add_errors(action, match):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="d1")])
    with pytest.raises(ValueError, match=match):
        action(model)


def test_sequential_pop_empty_raises():
    with pytest.raises(TypeError, match="no layers"):
        keras.Sequential().pop()


# ----- functional --------------------------------------------------------------------------------

def test_functional_multi_input_multi_output_values():
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    da, db = layers.Dense(5, name="da"), layers.Dense(5, name="db")
    merged = layers.Concatenate(name="cat")([da(a), db(b)])
    head1, head2 = layers.Dense(2, name="h1"), layers.Dense(1, name="h2")
    model = keras.Model([a, b], [head1(merged), head2(merged)])
    assert type(model).__name__ == "Functional" and isinstance(model, keras.Model)
    assert [x.name for x in model.layers] == ["a", "b", "da", "db", "cat", "h1", "h2"]
    assert model.input_shape == [(None, 4), (None, 3)]
    assert model.output_shape == [(None, 2), (None, 1)]
    xa = RNG.standard_normal((6, 4)).astype(np.float32)
    xb = RNG.standard_normal((6, 3)).astype(np.float32)
    y1, y2 = model([xa, xb])
    m = np.concatenate([dense_ref(da, xa), dense_ref(db, xb)], axis=1)
    np.testing.assert_allclose(_np(y1), dense_ref(head1, m), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(y2), dense_ref(head2, m), rtol=1e-5, atol=1e-6)
    # a dict keyed by input names works too
    y1d, _ = model({"b": xb, "a": xa})
    np.testing.assert_allclose(_np(y1d), _np(y1))


def test_functional_dict_inputs_and_outputs():
    inputs = {"x": keras.Input((2,), name="x"), "y": keras.Input((2,), name="y")}
    added = layers.Add()([inputs["x"], inputs["y"]])
    model = keras.Model(inputs, {"sum": added, "scaled": layers.Dense(1)(added)})
    x, y = np.ones((3, 2), np.float32), np.full((3, 2), 2.0, np.float32)
    out = model({"x": x, "y": y})
    assert set(out) == {"sum", "scaled"}
    np.testing.assert_allclose(_np(out["sum"]), x + y)


def test_shared_layer_shares_weights():
    a, b = keras.Input((3,)), keras.Input((3,))
    shared = layers.Dense(2)
    model = keras.Model([a, b], layers.Add()([shared(a), shared(b)]))
    assert len(model.weights) == 2 and model.count_params() == 3 * 2 + 2
    assert len(shared._inbound_nodes) == 2
    xa, xb = np.ones((1, 3), np.float32), np.full((1, 3), 3.0, np.float32)
    np.testing.assert_allclose(_np(model([xa, xb])), dense_ref(shared, xa) + dense_ref(shared, xb),
                               rtol=1e-5)


def test_nested_model_is_a_layer():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, layers.Dense(3, activation="relu")(inner_in), name="inner")
    x = keras.Input((4,))
    outer = keras.Model(x, layers.Dense(2)(inner(x)), name="outer")
    assert [type(layer).__name__ for layer in outer.layers] == ["InputLayer", "Functional",
                                                                "Dense"]
    assert outer.count_params() == 4 * 3 + 3 + 3 * 2 + 2
    data = RNG.standard_normal((5, 4)).astype(np.float32)
    want = dense_ref(outer.layers[2], relu(dense_ref(inner.layers[1], data)))
    np.testing.assert_allclose(_np(outer(data)), want, rtol=1e-5, atol=1e-6)
    seq = keras.Sequential([inner, layers.Dense(1)])  # a model as first layer gives the input
    assert seq.input_shape == (None, 4) and seq.output_shape == (None, 1)


def test_model_on_intermediate_tensors_extracts_features():
    x = keras.Input((4,))
    hidden = layers.Dense(3, name="hidden")(x)
    out = layers.Dense(1, name="out")(hidden)
    full = keras.Model(x, out)
    features = keras.Model(full.input, hidden)
    head = keras.Model(hidden, out)  # starts from an intermediate tensor: a new InputLayer
    data = RNG.standard_normal((2, 4)).astype(np.float32)
    h = _np(features(data))
    np.testing.assert_allclose(h, dense_ref(full.get_layer("hidden"), data), rtol=1e-5)
    np.testing.assert_allclose(_np(head(h)), _np(full(data)), rtol=1e-5, atol=1e-6)
    assert head.input_shape == (None, 3)


def test_rank_adjustment_and_input_checks():
    x = keras.Input((1,), name="x")
    model = keras.Model(x, layers.Dense(2)(x))
    assert tuple(model(np.ones(3, np.float32)).shape) == (3, 2)  # (n,) -> (n, 1)
    with pytest.raises(ValueError, match=r"Input 'x' .*expected shape \(None, 1\)"):
        model(np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match="expects 1 input"):
        model([np.ones((3, 1)), np.ones((3, 1))])


def test_graph_disconnected_is_reported():
    a, b = keras.Input((2,)), keras.Input((2,))
    out = layers.Add()([a, b])
    with pytest.raises(ValueError, match="Graph disconnected"):
        keras.Model(a, out)


def test_functional_rejects_non_symbolic_inputs():
    with pytest.raises(ValueError, match="KerasTensors"):
        keras.Model(np.zeros((1, 2)), keras.Input((2,)))


def test_layer_shape_error_names_the_layer():
    x = keras.Input((4, 5))
    with pytest.raises(ValueError, match="add"):
        layers.Add(name="add")([x, keras.Input((3, 5))])


def test_integer_input_into_embedding_gives_float_output():
    ids = keras.Input((7,), dtype="int32")
    emb = layers.Embedding(50, 4)(ids)
    assert emb.shape == (None, 7, 4) and emb.dtype == "float32"
    pooled = layers.GlobalAveragePooling1D()(emb)
    model = keras.Model(ids, pooled)
    tokens = RNG.integers(0, 50, (2, 7))
    table = model.layers[1].get_weights()[0]
    np.testing.assert_allclose(_np(model(tokens)), table[tokens].mean(axis=1), rtol=1e-5)


def test_lazy_sequential_keeps_integer_token_ids():
    model = keras.Sequential([layers.Embedding(10, 3), layers.GlobalAveragePooling1D()])
    ids = np.array([[1, 2, 3], [4, 5, 9]])
    out = _np(model(ids))
    table = model.layers[0].get_weights()[0]
    np.testing.assert_allclose(out, table[ids].mean(axis=1), rtol=1e-6)


def test_multi_output_layer_in_a_graph():
    x = keras.Input((5, 3))
    seq, h, c = layers.LSTM(4, return_state=True)(x)
    assert [t._keras_history[2] for t in (seq, h, c)] == [0, 1, 2]
    model = keras.Model(x, [seq, h, c])
    out, state_h, state_c = model(RNG.standard_normal((2, 5, 3)).astype(np.float32))
    np.testing.assert_array_equal(_np(out), _np(state_h))  # an LSTM's output is its last h
    assert tuple(state_c.shape) == (2, 4)


def test_direct_call_is_inference_and_follows_the_mode():
    model = keras.Sequential([keras.Input((4,)), layers.Dropout(0.5)])
    x = np.ones((1, 4), np.float32)
    np.testing.assert_array_equal(_np(model(x)), x)  # Keras: no `training` means inference
    assert set(np.unique(_np(model(x, training=True)))) <= {0.0, 2.0}
    model.train()
    assert set(np.unique(_np(model(x)))) <= {0.0, 2.0}


# ----- get_layer ---------------------------------------------------------------------------------

def test_get_layer_by_name_and_index():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2, name="first"),
                              layers.Dense(1, name="second")])
    assert model.get_layer("second") is model.layers[1]
    assert model.get_layer(index=0).name == "first"
    with pytest.raises(ValueError, match="No such layer: nope. Existing layers are"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="only a layer name or a layer index"):
        model.get_layer("first", 0)
    with pytest.raises(ValueError, match="index 5"):
        model.get_layer(index=5)


# ----- subclassing -------------------------------------------------------------------------------

class TwoTower(keras.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.encoder = layers.Dense(units, activation="relu")
        self.blocks = [layers.Dense(units), layers.Dense(units)]
        self.head = layers.Dense(1)

    def call(self, inputs, training=None):
        h = self.encoder(inputs)
        for block in self.blocks:
            h = block(h)
        return self.head(h)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_subclassed_model_tracks_attributes_and_lists():
    model = TwoTower()
    data = RNG.standard_normal((4, 5)).astype(np.float32)
    out = _np(model(data))
    assert [x.name for x in model.layers] == [model.encoder.name, model.blocks[0].name,
                                              model.blocks[1].name, model.head.name]
    assert len(model.weights) == 8 and len(list(model.parameters())) == 8
    h = relu(dense_ref(model.encoder, data))
    for block in model.blocks:
        h = dense_ref(block, h)
    np.testing.assert_allclose(out, dense_ref(model.head, h), rtol=1e-5, atol=1e-6)
    with pytest.raises(AttributeError, match="no defined inputs"):
        model.inputs


def test_subclassed_model_build_creates_weights():
    model = TwoTower(units=2)
    model.build((None, 6))
    assert model.built and model.count_params() == (6 * 2 + 2) + 2 * (2 * 2 + 2) + (2 + 1)


def test_subclass_with_functional_constructor():
    class Wrapped(keras.Model):
        def __init__(self, **kwargs):
            x = keras.Input((3,))
            super().__init__(x, layers.Dense(2, name="inner_dense")(x), **kwargs)
    model = Wrapped(name="wrapped")
    data = RNG.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(_np(model(data)), dense_ref(model.get_layer("inner_dense"), data),
                               rtol=1e-5, atol=1e-6)
    assert model.name == "wrapped" and model.output_shape == (None, 2)


def test_lazy_sequential_is_built_by_fit():
    x = RNG.standard_normal((32, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    model = keras.Sequential([layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert model.built and model.layers[0].get_weights()[0].shape == (3, 1)


def test_model_without_call_raises():
    class Empty(keras.Model):
        pass
    with pytest.raises(NotImplementedError, match="call"):
        Empty()(np.ones((1, 2)))


# ----- weights -----------------------------------------------------------------------------------

def test_set_weights_get_weights_round_trip_and_errors():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2), layers.BatchNormalization()])
    new = [RNG.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="expecting 6 weights"):
        model.set_weights(new[:2])


# ----- config / json / clone ---------------------------------------------------------------------

def _same_architecture(a, b):
    assert [type(x).__name__ for x in a.layers] == [type(x).__name__ for x in b.layers]
    assert [x.name for x in a.layers] == [x.name for x in b.layers]
    assert [w.shape for w in a.get_weights()] == [w.shape for w in b.get_weights()]


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_to_json_and_from_config_rebuild_the_architecture(kind):
    if kind == "sequential":
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="tanh"),
                                  layers.Dropout(0.2), layers.Dense(2)])
    else:
        a, b = keras.Input((4,), name="a"), keras.Input((2,), name="b")
        shared = layers.Dense(2)
        model = keras.Model([a, b], layers.Concatenate()([shared(layers.Dense(2)(a)),
                                                          shared(b)]))
    rebuilt = model_from_json(model.to_json())
    _same_architecture(model, rebuilt)
    again = type(model).from_config(model.get_config())
    _same_architecture(model, again)
    rebuilt.set_weights(model.get_weights())
    data = ([RNG.standard_normal((3, 4)).astype(np.float32),
             RNG.standard_normal((3, 2)).astype(np.float32)]
            if kind == "functional" else RNG.standard_normal((3, 4)).astype(np.float32))
    np.testing.assert_allclose(_np(rebuilt(data, training=False)),
                               _np(model(data, training=False)), rtol=1e-6)


def test_clone_model_has_new_weights_and_shares_clones():
    a, b = keras.Input((3,)), keras.Input((3,))
    shared = layers.Dense(4)
    model = keras.Model([a, b], layers.Add()([shared(a), shared(b)]))
    clone = clone_model(model)
    _same_architecture(model, clone)
    assert all(x is not y for x, y in zip(model.layers, clone.layers))
    assert len(clone.weights) == 2  # the shared layer stays shared in the clone
    seq = keras.Sequential([keras.Input((3,)), layers.Dense(5)])
    seq_clone = clone_model(seq)
    assert seq_clone.layers[0] is not seq.layers[0]
    assert not np.allclose(seq_clone.get_weights()[0], seq.get_weights()[0])


# ----- oracle: Keras's weight order --------------------------------------------------------------

@pytest.fixture(scope="module")
def real_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return keras_or_skip()


def test_weights_copied_from_real_keras_give_keras_predictions(real_keras):
    K = real_keras

    def build(lib):
        a = lib.Input((6,), name="a")
        b = lib.Input((4,), name="b")
        x = lib.layers.Dense(8, activation="relu")(a)
        x = lib.layers.BatchNormalization()(x)
        y = lib.layers.Dense(8, activation="tanh")(b)
        z = lib.layers.Concatenate()([x, y])
        return lib.Model([a, b], lib.layers.Dense(3, activation="softmax")(z))
    km, em = build(K), build(keras)
    assert [w.shape for w in em.get_weights()] == [tuple(w.shape) for w in km.get_weights()]
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in km.get_weights()]
    weights[5] = np.abs(weights[5]) + 0.5  # moving variance must be positive
    km.set_weights(weights)
    em.set_weights(km.get_weights())
    xa = rng.standard_normal((5, 6)).astype(np.float32)
    xb = rng.standard_normal((5, 4)).astype(np.float32)
    want = np.asarray(km.predict([xa, xb], verbose=0))
    np.testing.assert_allclose(_np(em([xa, xb], training=False)), want, rtol=1e-4, atol=1e-5)


def test_feature_extractor_from_a_layer_output():
    import numpy as np
    from ember import keras
    inp = keras.Input((4,))
    h = keras.layers.Dense(3, activation="relu", name="hidden")(inp)
    out = keras.layers.Dense(2, name="head")(h)
    model = keras.Model(inp, out)
    features = keras.Model(model.input, model.get_layer("hidden").output)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    w, b = model.get_layer("hidden").get_weights()
    np.testing.assert_allclose(features.predict(x, verbose=0), np.maximum(x @ w + b, 0),
                               rtol=1e-5, atol=1e-6)
    assert model.get_layer("head").input is h


def test_nn_modules_inside_a_subclassed_model_are_trained():
    import numpy as np
    import ember.nn as nn
    from ember import keras

    class Mixed(keras.Model):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 8)               # PyTorch-style layer
            self.head = keras.layers.Dense(2)       # Keras layer

        def call(self, x):
            return self.head(self.fc(x).relu())

    model = Mixed()
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    y = np.ones((16, 2), np.float32)
    model(x[:1])
    before = model.fc.weight.detach().numpy().copy()
    assert len(model.trainable_weights) == 4 and model.count_params() == 4 * 8 + 8 + 8 * 2 + 2
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert not np.allclose(model.fc.weight.detach().numpy(), before)
