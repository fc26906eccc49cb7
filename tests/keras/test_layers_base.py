"""The Keras ``Layer`` base on ember Modules: names, weights, freezing, config, losses, modes."""
import numpy as np
import pytest

import ember
from ember import nn
from ember.keras import initializers, regularizers
from ember.keras import layers as L
from ember.keras.layers import LSTM, BatchNormalization, Dense, Dropout, Embedding, Layer
from ember.keras.layers.layer import Variable, _reset_name_counters


@pytest.fixture(autouse=True)
def _names():
    _reset_name_counters()
    yield


class Scale(Layer):
    """A custom layer in the Keras style: weights made in build, simple constructor args."""

    def __init__(self, units=2, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="ones",
                                 name="w", regularizer=regularizers.L2(0.5))
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     name="count")

    def call(self, x, training=None):
        return x @ self.w * (2.0 if training else 1.0)


def test_auto_names_are_unique_snake_case_per_class():
    names = [Dense(1).name, Dense(1).name, BatchNormalization().name, LSTM(2).name,
             Dense(1).name, Scale().name]
    assert names == ["dense", "dense_1", "batch_normalization", "lstm", "dense_2", "scale"]
    _reset_name_counters()
    assert Dense(1).name == "dense"


@pytest.mark.parametrize("bad", [{"name": "a/b"}, {"trainable": "yes"}, {"foo": 1}])
def test_bad_constructor_arguments_name_the_layer(bad):
    with pytest.raises(ValueError, match="Dense|name|trainable"):
        Dense(2, **bad)


def test_input_shape_and_input_dim_are_kept_for_sequential():
    assert Dense(2, input_shape=(4,))._batch_input_shape == (None, 4)
    assert Dense(2, input_dim=3)._input_shape_arg == (3,)
    assert Dense(2, input_shape=(5, 6), batch_size=8)._batch_input_shape == (8, 5, 6)
    with pytest.raises(ValueError, match="input_dim"):
        Dense(2, input_dim=0)


def test_lazy_build_registers_parameters_and_buffers():
    layer = Scale(3)
    assert not layer.built and layer.weights == []
    y = layer(np.ones((2, 4), np.float32))
    assert layer.built and tuple(y.shape) == (2, 3)
    assert [n for n, _ in layer.named_parameters()] == ["w"]
    assert [n for n, _ in layer.named_buffers()] == ["count"]
    assert list(layer.state_dict()) == ["w", "count"]
    assert all(isinstance(w, Variable) for w in layer.weights)
    assert [w.path for w in layer.weights] == ["scale/w", "scale/count"]
    assert layer.count_params() == 4 * 3 + 1


def test_weights_order_is_trainable_then_non_trainable_then_sublayers():
    bn = BatchNormalization(name="bn")
    bn(np.ones((2, 3), np.float32))
    assert [w.name for w in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.name for w in bn.trainable_weights] == ["gamma", "beta"]
    assert [w.name for w in bn.non_trainable_weights] == ["moving_mean", "moving_variance"]
    assert len(list(bn.parameters())) == 2  # optimisers never see the moving statistics

    class Outer(Layer):
        def build(self, shape):
            self.inner = Dense(2, name="inner")
            self.inner.build(shape)
            self.own = self.add_weight(shape=(1,), name="own")

        def call(self, x):
            return self.inner(x) * self.own

    o = Outer()
    o(np.ones((1, 3), np.float32))
    assert [w.path for w in o.weights] == ["outer/own", "inner/kernel", "inner/bias"]


def test_trainable_false_freezes_and_true_restores():
    d = Dense(2)
    d(np.ones((1, 3), np.float32))
    d.trainable = False
    assert d.trainable_weights == [] and len(d.non_trainable_weights) == 2
    assert not any(p.requires_grad for p in d.parameters())
    d.trainable = True
    assert all(p.requires_grad for p in d.parameters())
    assert Dense(2, trainable=False)(np.ones((1, 3), np.float32)).requires_grad is False


def test_get_set_weights_roundtrip_and_shape_errors():
    d = Dense(2)
    d(np.ones((1, 3), np.float32))
    k = np.arange(6, dtype=np.float32).reshape(3, 2)
    b = np.array([1.0, -1.0], np.float32)
    d.set_weights([k, b])
    out = d.get_weights()
    np.testing.assert_array_equal(out[0], k)
    out[0][0, 0] = 99  # copies: editing them leaves the layer alone
    assert d.kernel.detach().numpy()[0, 0] == 0
    np.testing.assert_allclose(d(np.ones((1, 3), np.float32)).detach().numpy(),
                               np.ones((1, 3)) @ k + b)
    with pytest.raises(ValueError, match=r"weight shape \(3, 2\).*\(2, 3\)"):
        d.set_weights([k.T, b])
    with pytest.raises(ValueError, match="length 1.*expecting 2"):
        d.set_weights([k])


def test_count_params_on_an_unbuilt_layer_names_it():
    with pytest.raises(ValueError, match="'dense'.*isn't built"):
        Dense(3).count_params()


def test_losses_are_regularizer_values_recomputed_each_call():
    layer = Scale(2)
    x = np.ones((4, 3), np.float32)
    layer(x)
    (loss,) = layer.losses
    np.testing.assert_allclose(loss.item(), 0.5 * 6)  # 0.5 * sum(ones(3, 2) ** 2)
    layer.w.assign(np.full((3, 2), 2.0))
    np.testing.assert_allclose(layer.losses[0].item(), 0.5 * 6 * 4)
    loss = layer.losses[0]
    loss.backward()  # differentiable: the trainer adds sum(model.losses) to the loss
    np.testing.assert_allclose(layer.w.grad.numpy(), 2 * 0.5 * np.full((3, 2), 2.0))


def test_activity_regularizer_divides_by_batch_size():
    # Keras's doc example: kernel ones, L1(0.01) kernel, L2(0.01) activity, input 2s -> 5.25
    d = Dense(5, input_dim=5, kernel_initializer="ones", kernel_regularizer=regularizers.L1(0.01),
              activity_regularizer=regularizers.L2(0.01))
    d(np.full((5, 5), 2.0, np.float32))
    np.testing.assert_allclose(sum(loss.item() for loss in d.losses), 5.25, rtol=1e-6)


def test_config_round_trip_and_auto_config_for_custom_layers():
    d = Dense(4, activation="relu", use_bias=False, kernel_initializer="he_normal",
              kernel_regularizer="l2", name="head")
    cfg = d.get_config()
    assert cfg["activation"] == "relu" and cfg["units"] == 4 and cfg["name"] == "head"
    assert cfg["kernel_initializer"]["class_name"] == "HeNormal"
    assert cfg["kernel_regularizer"] == {"module": "keras.regularizers", "class_name": "L2",
                                         "config": {"l2": 0.01}, "registered_name": None}
    clone = Dense.from_config(cfg)
    assert clone.get_config() == cfg
    s = Scale(units=7, name="s")
    assert Scale.from_config(s.get_config()).units == 7

    class Opaque(Layer):
        def __init__(self, fn, **kw):
            super().__init__(**kw)
            self.fn = fn

    with pytest.raises(NotImplementedError, match="get_config"):
        Opaque(lambda x: x).get_config()


def test_build_config_rebuilds_with_the_same_shapes():
    d = Dense(3)
    d(np.ones((2, 5), np.float32))
    fresh = Dense.from_config(d.get_config())
    fresh.build_from_config(d.get_build_config())
    assert [w.shape for w in fresh.weights] == [w.shape for w in d.weights]


def test_training_flag_follows_module_mode_unless_given():
    layer = Scale(1)
    x = np.ones((1, 2), np.float32)
    assert layer(x).item() == 4.0  # modules start in training mode, as in PyTorch
    layer.eval()
    assert layer(x).item() == 2.0
    assert layer(x, training=True).item() == 4.0

    class Outer(Layer):
        def __init__(self):
            super().__init__()
            self.inner = Scale(1)

        def call(self, x):
            return self.inner(x)

    o = Outer()
    o.eval()
    assert o(x).item() == 2.0
    assert o(x, training=True).item() == 4.0  # an explicit flag reaches inner layers


def test_numpy_inputs_are_cast_to_the_layer_dtype():
    d = Dense(2, dtype="float64")
    y = d(np.ones((1, 3), np.float32))
    assert d.kernel.dtype == ember.float64 and y.dtype == ember.float64
    assert d.dtype == "float64" and Dense(1).dtype == "float32"


def test_keras_layers_train_inside_nn_sequential_with_sgd():
    rng = np.random.default_rng(0)
    x = ember.tensor(rng.standard_normal((64, 3)).astype(np.float32))
    w_true = np.array([[1.0], [-2.0], [0.5]], np.float32)
    y = ember.tensor(x.numpy() @ w_true + 0.3)
    model = nn.Sequential(Dense(8, activation="tanh"), nn.Linear(8, 8), Dense(1))
    model(x)
    assert len(list(model.parameters())) == 6
    assert list(model.state_dict())[:2] == ["0.kernel", "0.bias"]
    opt = ember.optim.SGD(model.parameters(), lr=0.05)
    first = None
    for _ in range(150):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.05 * first


def test_compute_output_shape_fallback_runs_the_layer():
    class Pairs(Layer):
        def call(self, x):
            return x.reshape(x.shape[0], x.shape[1], -1, 2)

    assert Pairs().compute_output_shape((None, 3, 4)) == (None, 3, 2, 2)


def test_embedding_mask_reaches_the_next_layer():
    seen = {}

    class Probe(Layer):
        def call(self, x, mask=None):
            seen["mask"] = mask
            return x

    emb = Embedding(5, 2, mask_zero=True)
    Probe()(emb(np.array([[1, 0, 2]])))
    np.testing.assert_array_equal(seen["mask"].numpy(), [[True, False, True]])
    Probe()(Dropout(0.1)(emb(np.array([[0, 3]])), training=False))  # Dropout passes it on
    np.testing.assert_array_equal(seen["mask"].numpy(), [[False, True]])


def test_state_dict_round_trips_through_ember_save(tmp_path):
    bn = BatchNormalization()
    bn(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32), training=True)
    path = str(tmp_path / "bn.safetensors")
    ember.save(bn.state_dict(), path)
    fresh = BatchNormalization()
    fresh.build((None, 3))
    fresh.load_state_dict(ember.load(path))
    for a, b in zip(fresh.get_weights(), bn.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_initializer_helpers_used_by_add_weight():
    layer = Layer()
    v = layer.add_weight(shape=(2, 2), initializer=np.eye(2), name="eye")
    np.testing.assert_array_equal(v.detach().numpy(), np.eye(2))
    with pytest.raises(ValueError, match="shape"):
        layer.add_weight(shape=(3,), initializer=initializers.get(np.zeros(2)))


def test_jit_compiled_train_step_matches_eager():
    rng = np.random.default_rng(1)
    x = ember.tensor(rng.standard_normal((8, 5, 5, 2)).astype(np.float32))
    y = ember.tensor(rng.integers(0, 3, 8))
    results = []
    for use_jit in (False, True):
        ember.manual_seed(3)
        model = nn.Sequential(L.Conv2D(3, 3), BatchNormalization(), L.Flatten(),
                              Dense(3, kernel_regularizer="l2"))
        model(x)
        opt = ember.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y) + sum(model[3].losses)
            loss.backward()
            opt.step()
            return loss

        f = ember.jit(step) if use_jit else step
        losses = [f(x, y).item() for _ in range(3)]
        results.append((losses, model[1].moving_mean.numpy().copy(),
                        model[3].kernel.numpy().copy()))
    (l0, m0, k0), (l1, m1, k1) = results
    np.testing.assert_allclose(l1, l0, rtol=1e-5)
    np.testing.assert_allclose(m1, m0, rtol=1e-5, atol=1e-7)  # buffers written back
    np.testing.assert_allclose(k1, k0, rtol=1e-5, atol=1e-7)


def test_deepcopy_keeps_variables_independent():
    import copy
    d = Dense(2)
    d(np.ones((1, 3), np.float32))
    c = copy.deepcopy(d)
    assert isinstance(c.kernel, Variable) and c.kernel.path == d.kernel.path
    c.kernel.assign(np.zeros((3, 2)))
    assert np.abs(d.kernel.numpy()).sum() > 0
    assert [w.name for w in c.weights] == ["kernel", "bias"]
