"""keras.utils (to_categorical, set_random_seed, get_file), keras.datasets and keras.backend."""
import gzip
import hashlib
import io
import os
import random
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest

import ember
from ember import keras
from ember.keras import backend as K
from ember.keras.datasets import fashion_mnist, mnist
from ember.keras.utils import get_file, set_random_seed, to_categorical


# ----- to_categorical ----------------------------------------------------------------------------

@pytest.mark.parametrize("labels, num_classes, shape", [
    ([0, 1, 2, 3], 4, (4, 4)),
    ([2, 0, 1], None, (3, 3)),              # inferred as max + 1
    ([[1], [0], [3]], 5, (3, 5)),           # a trailing axis of 1 is squeezed, as in Keras
    ([[1, 2], [0, 0]], 3, (2, 2, 3)),       # class axis appended last
    (np.array([4, 1], dtype=np.uint8), 6, (2, 6)),
    (np.array([1.0, 0.0]), None, (2, 2)),   # whole floats are accepted
])
def test_to_categorical_matches_identity_rows(labels, num_classes, shape):
    out = to_categorical(labels, num_classes)
    flat = np.asarray(labels).reshape(-1).astype(int)
    n = shape[-1]
    assert out.shape == shape and out.dtype == np.float64
    np.testing.assert_array_equal(out.reshape(-1, n), np.eye(n)[flat])


def test_to_categorical_accepts_ember_tensor():
    out = to_categorical(ember.tensor([1, 0]), 3)
    np.testing.assert_array_equal(out, [[0, 1, 0], [1, 0, 0]])


@pytest.mark.parametrize("labels, num_classes, match", [
    ([0, 3], 3, "out of range"),
    ([-1, 0], 3, ">= 0"),
    ([0.5, 1.0], None, "whole numbers"),
    (["a"], None, "integers"),
])
def test_to_categorical_rejects_bad_labels(labels, num_classes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        to_categorical(labels, num_classes)


# ----- set_random_seed ---------------------------------------------------------------------------

def test_set_random_seed_repeats_python_numpy_and_ember_draws():
    def draws():
        return random.random(), np.random.rand(), ember.randn(3).numpy().tolist()
    set_random_seed(123)
    first = draws()
    set_random_seed(123)
    assert draws() == first
    set_random_seed(124)
    assert draws() != first


def test_set_random_seed_rejects_non_integers():
    with pytest.raises(ValueError, match="integer seed"):
        set_random_seed(1.5)


# ----- fake datasets in a temporary KERAS_HOME ---------------------------------------------------

def _idx(arr: np.ndarray) -> bytes:
    """An IDX file (LeCun's format) for a uint8 array, gzipped as Keras caches them."""
    head = b"\x00\x00\x08" + bytes([arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(head + arr.astype(np.uint8).tobytes())


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def offline(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("network is unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


def _fake_mnist(rng):
    return {"x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
            "y_train": rng.integers(0, 10, 6, dtype=np.uint8),
            "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
            "y_test": rng.integers(0, 10, 4, dtype=np.uint8)}


def test_mnist_reads_keras_cache_file(keras_home, offline):
    data = _fake_mnist(np.random.default_rng(0))
    (keras_home / "datasets").mkdir()
    np.savez(keras_home / "datasets" / "mnist.npz", **data)
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    for got, key in ((x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test"),
                     (y_test, "y_test")):
        np.testing.assert_array_equal(got, data[key])
        assert got.dtype == np.uint8
    assert not offline  # a cached file needs no network


def test_mnist_absolute_path_argument(tmp_path, offline):
    data = _fake_mnist(np.random.default_rng(1))
    np.savez(tmp_path / "my_mnist.npz", **data)
    (x_train, _), _ = mnist.load_data(path=str(tmp_path / "my_mnist.npz"))
    np.testing.assert_array_equal(x_train, data["x_train"])


def test_mnist_offline_error_names_the_cache_path(keras_home, offline):
    with pytest.raises(RuntimeError) as e:
        mnist.load_data()
    msg = str(e.value)
    assert os.path.join(str(keras_home), "datasets", "mnist.npz") in msg
    assert "storage.googleapis.com" in msg and "network is unreachable" in msg
    assert offline and not os.listdir(keras_home / "datasets")  # nothing half-written


def test_mnist_rejects_npz_without_the_arrays(keras_home, offline):
    (keras_home / "datasets").mkdir()
    np.savez(keras_home / "datasets" / "mnist.npz", x_train=np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="lacks the arrays"):
        mnist.load_data()


def test_fashion_mnist_reads_gzipped_idx_files(keras_home, offline):
    rng = np.random.default_rng(2)
    x_train = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    y_train = rng.integers(0, 10, 5, dtype=np.uint8)
    x_test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    y_test = rng.integers(0, 10, 3, dtype=np.uint8)
    folder = keras_home / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name, arr in (("train-images-idx3-ubyte.gz", x_train),
                      ("train-labels-idx1-ubyte.gz", y_train),
                      ("t10k-images-idx3-ubyte.gz", x_test),
                      ("t10k-labels-idx1-ubyte.gz", y_test)):
        (folder / name).write_bytes(_idx(arr))
    (a, b), (c, d) = fashion_mnist.load_data()
    for got, want in ((a, x_train), (b, y_train), (c, x_test), (d, y_test)):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.uint8


def test_fashion_mnist_offline_error_names_the_folder(keras_home, offline):
    with pytest.raises(RuntimeError, match="fashion-mnist"):
        fashion_mnist.load_data()


# ----- get_file: download when online ------------------------------------------------------------

class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_get_file_downloads_atomically_and_checks_the_hash(keras_home, monkeypatch):
    payload = b"some dataset bytes" * 100
    monkeypatch.setattr(urllib.request, "urlopen", lambda req, timeout=None: _Response(payload))
    sha = hashlib.sha256(payload).hexdigest()
    path = get_file("data.bin", origin="https://example.com/data.bin", file_hash=sha)
    assert path == os.path.join(str(keras_home), "datasets", "data.bin")
    with open(path, "rb") as f:
        assert f.read() == payload
    assert os.listdir(keras_home / "datasets") == ["data.bin"]  # no temporary file left


def test_get_file_rejects_a_corrupted_download(keras_home, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda req, timeout=None: _Response(b"bad"))
    with pytest.raises(ValueError, match="corrupted"):
        get_file("data.bin", origin="https://example.com/data.bin", file_hash="0" * 64)
    assert os.listdir(keras_home / "datasets") == []


def test_get_file_needs_an_origin():
    with pytest.raises(ValueError, match="origin"):
        get_file("x.bin")


# ----- backend -----------------------------------------------------------------------------------

@pytest.fixture
def fresh_settings(monkeypatch):
    monkeypatch.setattr(K, "_settings", None)


def test_backend_defaults_are_keras_defaults(tmp_path, monkeypatch, fresh_settings):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert (K.floatx(), K.epsilon(), K.image_data_format()) == ("float32", 1e-7,
                                                                "channels_last")
    assert keras.config.floatx() == "float32"


def test_backend_reads_keras_json(tmp_path, monkeypatch, fresh_settings):
    (tmp_path / "keras.json").write_text('{"floatx": "float64", "epsilon": 0.001, '
                                         '"image_data_format": "channels_first", '
                                         '"backend": "tensorflow"}')
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert (K.floatx(), K.epsilon(), K.image_data_format()) == ("float64", 1e-3,
                                                                "channels_first")


def test_backend_setters_validate(tmp_path, monkeypatch, fresh_settings):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    K.set_floatx("float64")
    K.set_image_data_format("channels_first")
    assert (K.floatx(), K.image_data_format()) == ("float64", "channels_first")
    with pytest.raises(ValueError, match="float type"):
        K.set_floatx("int8")
    with pytest.raises(ValueError, match="channels_last"):
        K.set_image_data_format("NHWC")


def test_clear_session_restarts_automatic_names():
    from ember.keras.layers import Layer

    class Probe(Layer):
        pass
    Probe(), Probe()
    assert Probe().name == "probe_2"
    K.clear_session(free_memory=False)
    assert Probe().name == "probe"


def test_namespace_mirrors_keras():
    for name in ("Input", "Sequential", "Model", "Layer", "layers", "models", "utils",
                 "datasets", "backend", "saving"):
        assert hasattr(keras, name), name
    assert keras.utils.to_categorical is to_categorical
    assert keras.datasets.mnist.load_data is mnist.load_data
    assert keras.models.Sequential is keras.Sequential
    with pytest.raises(AttributeError):
        keras.no_such_thing
