"""model.save / keras.models.load_model / save_weights / load_weights: round trips, the file
format (a zip of JSON and safetensors, never pickle), atomic writes, and Keras's HDF5 files."""
import json
import os
import sys
import zipfile

import numpy as np
import pytest

from ember import keras
from ember.keras import layers
from ember.keras import saving
from ember.keras.models import load_model
from oracles import keras_or_skip  # noqa: E402


# real Keras (the oracle) warns about its own NumPy conversions
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

RNG = np.random.default_rng(0)


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _randomize(model):
    """Distinct non-trivial values everywhere (BatchNorm statistics too)."""
    model.set_weights([np.abs(RNG.standard_normal(w.shape)).astype(np.float32) + 0.1
                       for w in model.get_weights()])
    return model


def _sequential():
    return keras.Sequential([keras.Input((6,)), layers.Dense(5, activation="relu"),
                             layers.BatchNormalization(), layers.Dropout(0.3),
                             layers.Dense(3, activation="softmax")])


def _functional():
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    shared = layers.Dense(4, name="shared")
    x = layers.Concatenate()([shared(layers.Dense(4)(a)), shared(layers.Dense(4)(b))])
    inner_in = keras.Input((8,))
    inner = keras.Model(inner_in, layers.Dense(2, activation="tanh")(inner_in), name="inner")
    return keras.Model([a, b], [inner(x), layers.Dense(1)(x)])


@keras.saving.register_keras_serializable(package="tests")
class Residual(keras.Model):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.inner = layers.Dense(units, activation="relu")
        self.out = layers.Dense(units)

    def call(self, x, training=None):
        return x + self.out(self.inner(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _data(kind):
    if kind == "functional":
        return [RNG.standard_normal((5, 4)).astype(np.float32),
                RNG.standard_normal((5, 3)).astype(np.float32)]
    return RNG.standard_normal((5, 6 if kind == "sequential" else 4)).astype(np.float32)


def _predict(model, x):
    out = model(x, training=False)
    return [_np(o) for o in out] if isinstance(out, (list, tuple)) else [_np(out)]


def _make(kind):
    if kind == "sequential":
        return _randomize(_sequential())
    if kind == "functional":
        return _randomize(_functional())
    model = Residual(units=4)
    model(np.zeros((1, 4), np.float32))
    return _randomize(model)


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_save_load_round_trip_predicts_the_same(tmp_path, kind):
    model = _make(kind)
    x = _data(kind)
    want = _predict(model, x)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded is not model
    assert [type(x).__name__ for x in loaded.layers] == [type(x).__name__ for x in model.layers]
    for got, exp in zip(_predict(loaded, x), want):
        np.testing.assert_allclose(got, exp, rtol=1e-6)
    for got, exp in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, exp)


def test_file_is_a_zip_of_json_and_safetensors(tmp_path):
    import safetensors.numpy
    model = _make("functional")
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        names = set(z.namelist())
        config = json.loads(z.read("config.json"))
        metadata = json.loads(z.read("metadata.json"))
        weights = safetensors.numpy.load(z.read("model.weights.safetensors"))
    assert names == {"config.json", "metadata.json", "model.weights.safetensors"}
    assert config["class_name"] == "Functional" and config["module"] == "keras"
    layer_classes = [entry["class_name"] for entry in config["config"]["layers"]]
    assert layer_classes.count("InputLayer") == 2 and "Concatenate" in layer_classes
    shared = next(e for e in config["config"]["layers"] if e["name"] == "shared")
    assert len(shared["inbound_nodes"]) == 2  # the topology: the shared layer's two calls
    assert "date_saved" in metadata
    assert sorted(map(np.shape, weights.values())) == sorted(map(np.shape,
                                                                 model.get_weights()))


def test_weights_are_named_by_keras_paths(tmp_path):
    import safetensors.numpy
    model = _make("sequential")
    model.save_weights(tmp_path / "w.weights.h5")
    arrays = safetensors.numpy.load((tmp_path / "w.weights.h5").read_bytes())
    # Keras addresses layers by class-based names, never by their (auto-generated) own names
    order = ["layers/dense/vars/0", "layers/dense/vars/1",
             "layers/batch_normalization/vars/0", "layers/batch_normalization/vars/1",
             "layers/batch_normalization/vars/2", "layers/batch_normalization/vars/3",
             "layers/dense_1/vars/0", "layers/dense_1/vars/1"]
    assert set(arrays) == set(order)
    for key, value in zip(order, model.get_weights()):
        np.testing.assert_array_equal(arrays[key], value)


def test_save_is_atomic(tmp_path, monkeypatch):
    model = _make("sequential")
    path = tmp_path / "m.keras"
    model.save(path)
    before = path.read_bytes()

    def boom(self, name, data, *args, **kwargs):
        if name == "model.weights.safetensors":
            raise OSError("disk full")
        return original(self, name, data, *args, **kwargs)
    original = zipfile.ZipFile.writestr
    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(OSError, match="disk full"):
        _make("sequential").save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.keras"]


@pytest.mark.parametrize("name, match", [("m.h5", "legacy HDF5"), ("m.pt", "extension")])
def test_save_rejects_other_extensions(tmp_path, name, match):
    with pytest.raises(ValueError, match=match):
        _sequential().save(tmp_path / name)


def test_unknown_classes_are_listed_and_nothing_runs(tmp_path):
    class Mystery(layers.Layer):
        def call(self, x):
            return x

    class Other(layers.Layer):
        def call(self, x):
            return x
    model = keras.Sequential([keras.Input((2,)), Mystery(), Other()])
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match=r"unknown class name\(s\) \['Mystery', 'Other'\]"):
        load_model(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", custom_objects={"Mystery": Mystery,
                                                              "Other": Other})
    assert [type(x) for x in loaded.layers] == [Mystery, Other]


def test_keras_lambda_bytecode_is_refused(tmp_path):
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"batch_shape": [None, 2], "name": "in"}},
        {"module": "keras.layers", "class_name": "Lambda",
         "config": {"name": "evil", "function": {"class_name": "__lambda__",
                                                 "config": {"code": "YmFk"}}}}]}}
    path = tmp_path / "evil.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
    with pytest.raises(ValueError, match=r"Lambda layers \['evil'\].*never"):
        load_model(path)


@pytest.mark.parametrize("content, match", [(b"not a zip at all", "not a .keras file"),
                                            (b"\x89HDF\r\n\x1a\n" + b"\0" * 8, "legacy")])
def test_load_model_rejects_other_files(tmp_path, content, match):
    path = tmp_path / "m.keras"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_model(path)


def test_load_model_reports_weight_mismatch(tmp_path):
    model = _make("sequential")
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        parts = {n: z.read(n) for n in z.namelist()}
    config = json.loads(parts["config.json"])
    config["config"]["layers"][1]["config"]["units"] = 7
    parts["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as z:
        for n, data in parts.items():
            z.writestr(n, data)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_model(tmp_path / "bad.keras")


# ----- compile state ---------------------------------------------------------------------------

def _trained(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((48, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(6, activation="relu"),
                              layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    return model, x, y


def test_load_model_recompiles_and_restores_the_optimizer(tmp_path):
    model, x, y = _trained(tmp_path)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        assert "optimizer.safetensors" in z.namelist()
        compile_config = json.loads(z.read("config.json"))["compile_config"]
    assert compile_config["metrics"] == ["accuracy"]
    loaded = load_model(tmp_path / "m.keras")
    assert loaded.compiled and type(loaded.optimizer).__name__ == "Adam"
    assert loaded.optimizer.learning_rate == pytest.approx(0.01)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(_np(a), _np(b))
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0))
    # training goes on exactly as it would have: Adam's moments and step count came back
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_load_model_compile_false(tmp_path):
    model, _, _ = _trained(tmp_path)
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", compile=False)
    assert not loaded.compiled and loaded.optimizer is None


# ----- weights only ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["w.weights.h5", "w.safetensors"])
def test_save_weights_writes_safetensors_whatever_the_name(tmp_path, name):
    import safetensors.numpy
    model = _make("functional")
    model.save_weights(tmp_path / name)
    raw = (tmp_path / name).read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    assert json.loads(raw[8:8 + header_len])  # the safetensors framing, not HDF5
    arrays = safetensors.numpy.load(raw)
    assert len(arrays) == len(model.get_weights())
    fresh = _functional()
    fresh.load_weights(tmp_path / name)
    x = _data("functional")
    for got, exp in zip(_predict(fresh, x), _predict(model, x)):
        np.testing.assert_allclose(got, exp, rtol=1e-6)


def test_load_weights_from_a_keras_file(tmp_path):
    model = _make("sequential")
    model.save(tmp_path / "m.keras")
    fresh = _sequential()
    fresh.load_weights(tmp_path / "m.keras")
    for got, exp in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, exp)


def test_weights_name_must_end_like_keras(tmp_path):
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5`"):
        _sequential().save_weights(tmp_path / "w.h5")


def test_load_weights_mismatch_and_skip(tmp_path):
    model = _make("sequential")
    model.save_weights(tmp_path / "w.weights.h5")
    other = keras.Sequential([keras.Input((6,)), layers.Dense(5, activation="relu"),
                              layers.BatchNormalization(), layers.Dropout(0.3),
                              layers.Dense(4)])
    with pytest.raises(ValueError, match="shape mismatch"):
        other.load_weights(tmp_path / "w.weights.h5")
    with pytest.warns(UserWarning, match="2 mismatched"):
        other.load_weights(tmp_path / "w.weights.h5", skip_mismatch=True)
    np.testing.assert_array_equal(other.get_weights()[0], model.get_weights()[0])


def test_load_weights_into_unbuilt_model_says_build_first(tmp_path):
    _make("sequential").save_weights(tmp_path / "w.weights.h5")
    lazy = keras.Sequential([layers.Dense(5)])
    with pytest.raises(ValueError, match="not built"):
        lazy.load_weights(tmp_path / "w.weights.h5")


def test_subclassed_weights_round_trip(tmp_path):
    model = _make("subclassed")
    model.save_weights(tmp_path / "r.weights.h5")
    fresh = Residual(units=4)
    fresh.build((None, 4))
    fresh.load_weights(tmp_path / "r.weights.h5")
    x = _data("subclassed")
    np.testing.assert_allclose(_predict(fresh, x)[0], _predict(model, x)[0], rtol=1e-6)


# ----- Keras's own HDF5 weights ------------------------------------------------------------------

def test_reading_keras_hdf5_needs_h5py(tmp_path, monkeypatch):
    path = tmp_path / "k.weights.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now fails
    with pytest.raises(ImportError, match=r"pip install ember\[h5\]"):
        _sequential().load_weights(path)


@pytest.fixture(scope="module")
def real_keras():
    pytest.importorskip("h5py")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return keras_or_skip()


def test_load_real_keras_hdf5_weights(tmp_path, real_keras):
    def build(lib):
        L = lib.layers
        a, b = lib.Input((6,), name="a"), lib.Input((4,), name="b")
        x = L.BatchNormalization()(L.Dense(8, activation="relu")(a))
        inner_in = lib.Input((4,))
        inner = lib.Model(inner_in, L.Dense(5, activation="tanh")(inner_in), name="inner")
        z = L.Concatenate()([x, inner(b)])
        return lib.Model([a, b], L.Dense(3)(z))
    km, em = build(real_keras), build(keras)
    rng = np.random.default_rng(3)
    km.set_weights([np.abs(rng.standard_normal(w.shape)).astype(np.float32) + 0.1
                    for w in km.get_weights()])
    km.save_weights(str(tmp_path / "k.weights.h5"))
    em.load_weights(tmp_path / "k.weights.h5")
    xa = rng.standard_normal((4, 6)).astype(np.float32)
    xb = rng.standard_normal((4, 4)).astype(np.float32)
    want = np.asarray(km.predict([xa, xb], verbose=0))
    np.testing.assert_allclose(_np(em([xa, xb], training=False)), want, rtol=1e-4, atol=1e-5)


def test_weight_paths_equal_keras_hdf5_paths(tmp_path, real_keras):
    import h5py
    import safetensors.numpy

    def build(lib):
        L = lib.layers
        x = lib.Input((5,))
        inner = lib.Sequential([lib.Input((4,)), L.Dense(3), L.BatchNormalization()])
        y = inner(L.Dense(4)(x))
        return lib.Model(x, [L.Dense(2)(y), L.Dense(1)(y)])
    km, em = build(real_keras), build(keras)
    km.save_weights(str(tmp_path / "k.weights.h5"))
    em.save_weights(tmp_path / "e.weights.h5")
    keras_paths = []
    with h5py.File(tmp_path / "k.weights.h5") as f:
        f.visititems(lambda name, obj: keras_paths.append(name)
                     if isinstance(obj, h5py.Dataset) else None)
    ember_paths = safetensors.numpy.load((tmp_path / "e.weights.h5").read_bytes())
    assert sorted(ember_paths) == sorted(keras_paths)


def test_load_a_model_file_written_by_keras(tmp_path, real_keras):
    K = real_keras
    inner_in = K.Input((8,))
    inner = K.Model(inner_in, K.layers.Dense(2, activation="tanh")(inner_in))
    a, b = K.Input((4,), name="a"), K.Input((3,), name="b")
    x = K.layers.Concatenate()([K.layers.Dense(5, activation="relu")(a),
                                K.layers.Dense(3)(b)])
    x = K.layers.BatchNormalization()(x)
    km = K.Model([a, b], [inner(x), K.layers.Dense(1)(x)])
    km.set_weights([np.abs(w) + 0.1 for w in km.get_weights()])
    km.save(str(tmp_path / "k.keras"))
    em = load_model(tmp_path / "k.keras")
    assert [type(x).__name__ for x in em.layers] == [type(x).__name__ for x in km.layers]
    xa, xb = np.ones((2, 4), np.float32), np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    for got, want in zip(em([xa, xb]), km.predict([xa, xb], verbose=0)):
        np.testing.assert_allclose(_np(got), want, rtol=1e-5, atol=1e-6)


# ----- CLI helper --------------------------------------------------------------------------------

def test_summary_of_file(tmp_path):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="dense_x")],
                             name="saved_model")
    model.save(tmp_path / "m.keras")
    text = saving.summary_of_file(tmp_path / "m.keras")
    assert text.startswith('Model: "saved_model"')
    assert "dense_x (Dense)" in text and " Total params: 15 (60.00 B)" in text


def test_layers_deserialize_finds_registered_custom_layers():
    from ember import keras

    @keras.saving.register_keras_serializable(package="ember_tests")
    class Tripler(keras.layers.Layer):
        def call(self, x):
            return x * 3

        def compute_output_shape(self, shape):
            return shape

    cfg = keras.layers.serialize(Tripler())
    assert cfg["registered_name"] == "ember_tests>Tripler"
    assert type(keras.layers.deserialize(cfg)) is Tripler
