"""model.summary(): parameter counts against Keras's published formulas and against real Keras.

Formulas (Keras docs / layer source): Dense (in + 1) * units; ConvND (prod(kernel) * in + 1) *
filters; Conv2DTranspose prod(kernel) * filters * in + filters; SeparableConv2D
prod(kernel) * in + in * filters + filters; DepthwiseConv2D prod(kernel) * in + in;
BatchNormalization 4 * C (2 C trainable); LayerNormalization 2 * C; Embedding vocab * dim;
SimpleRNN u * (in + u) + u; LSTM 4 * (u * (in + u) + u); GRU (reset_after) 3 * (u * (in + u)
+ 2 * u); Bidirectional twice its layer; MultiHeadAttention 4 * (d * h * k) + 3 * h * k + d.
"""
import os
import re

import numpy as np
import pytest

from ember import keras
from ember.keras import layers
from ember.keras.models.summary import readable_memory_size
from oracles import keras_or_skip  # noqa: E402


# real Keras (the oracle) warns about its own NumPy conversions
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _summary(model, **kwargs) -> str:
    out = []
    model.summary(print_fn=out.append, **kwargs)
    assert len(out) == 1  # Keras 3 hands the whole table to print_fn at once
    return out[0]


def _row(text: str, name: str) -> str:
    """The table line that starts the row of layer ``name``."""
    for line in text.splitlines():
        if line.startswith("│ " + name + " "):
            return line
    raise AssertionError(f"no row for {name!r} in\n{text}")


# (factory, per-sample input shape, formula's params, non-trainable part, output shape)
CASES = [
    ("dense", lambda: layers.Dense(7), (5,), (5 + 1) * 7, 0, (None, 7)),
    ("dense_nobias", lambda: layers.Dense(3, use_bias=False), (4,), 4 * 3, 0, (None, 3)),
    ("conv2d", lambda: layers.Conv2D(8, 3), (10, 10, 2), (3 * 3 * 2 + 1) * 8, 0,
     (None, 8, 8, 8)),
    ("conv2d_same_s2", lambda: layers.Conv2D(4, (3, 5), strides=2, padding="same"), (9, 9, 3),
     (3 * 5 * 3 + 1) * 4, 0, (None, 5, 5, 4)),
    ("conv1d", lambda: layers.Conv1D(6, 3), (10, 4), (3 * 4 + 1) * 6, 0, (None, 8, 6)),
    ("conv2d_transpose", lambda: layers.Conv2DTranspose(5, 3), (6, 6, 2), 3 * 3 * 5 * 2 + 5, 0,
     (None, 8, 8, 5)),
    ("separable_conv2d", lambda: layers.SeparableConv2D(6, 3), (8, 8, 4),
     3 * 3 * 4 + 4 * 6 + 6, 0, (None, 6, 6, 6)),
    ("depthwise_conv2d", lambda: layers.DepthwiseConv2D(3), (8, 8, 4), 3 * 3 * 4 + 4, 0,
     (None, 6, 6, 4)),
    ("batch_norm", lambda: layers.BatchNormalization(), (6,), 4 * 6, 2 * 6, (None, 6)),
    ("layer_norm", lambda: layers.LayerNormalization(), (3, 6), 2 * 6, 0, (None, 3, 6)),
    ("simple_rnn", lambda: layers.SimpleRNN(4), (7, 3), 4 * (3 + 4) + 4, 0, (None, 4)),
    ("lstm", lambda: layers.LSTM(5), (7, 3), 4 * (5 * (3 + 5) + 5), 0, (None, 5)),
    ("lstm_seq", lambda: layers.LSTM(5, return_sequences=True), (7, 3),
     4 * (5 * (3 + 5) + 5), 0, (None, 7, 5)),
    ("gru", lambda: layers.GRU(4), (7, 3), 3 * (4 * (3 + 4) + 2 * 4), 0, (None, 4)),
    ("bidirectional", lambda: layers.Bidirectional(layers.LSTM(5)), (7, 3),
     2 * 4 * (5 * (3 + 5) + 5), 0, (None, 10)),
    ("max_pool", lambda: layers.MaxPooling2D(2), (8, 8, 3), 0, 0, (None, 4, 4, 3)),
    ("flatten", lambda: layers.Flatten(), (4, 5), 0, 0, (None, 20)),
]


@pytest.mark.parametrize("make, shape, params, frozen, out_shape",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_param_counts_match_keras_formulas(make, shape, params, frozen, out_shape):
    layer = make()
    model = keras.Sequential([keras.Input(shape), layer])
    assert layer.count_params() == params
    text = _summary(model, line_length=150)
    row = _row(text, f"{layer.name} ({type(layer).__name__})")
    assert str(out_shape) in row and f" {params:,} │" in row
    trainable = params - frozen
    assert f" Total params: {params:,} ({readable_memory_size(4 * params)})" in text
    assert f" Trainable params: {trainable:,} ({readable_memory_size(4 * trainable)})" in text
    assert f" Non-trainable params: {frozen:,} ({readable_memory_size(4 * frozen)})" in text


def test_embedding_and_attention_counts():
    ids = keras.Input((5,), dtype="int32")
    emb = layers.Embedding(100, 6)
    mha = layers.MultiHeadAttention(num_heads=2, key_dim=3)
    x = emb(ids)
    model = keras.Model(ids, mha(x, x))
    assert emb.count_params() == 100 * 6
    assert mha.count_params() == 4 * (6 * 2 * 3) + 3 * 2 * 3 + 6
    assert model.count_params() == 600 + 4 * 36 + 18 + 6
    assert model.output_shape == (None, 5, 6)


@pytest.mark.parametrize("size, text", [(0, "0.00 B"), (1023, "1023.00 B"), (1024, "1.00 KB"),
                                        (216680, "211.60 KB"), (1536 * 1024, "1.50 MB"),
                                        (3 * 1024 ** 3, "3.00 GB")])
def test_readable_memory_size(size, text):
    assert readable_memory_size(size) == text


def test_sequential_table_layout():
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3, name="conv2d"),
                              layers.Flatten(name="flatten"), layers.Dense(10, name="dense")],
                             name="demo")
    text = _summary(model, line_length=80)
    lines = text.splitlines()
    assert lines[0] == 'Model: "demo"'
    assert lines[1].startswith("┏") and lines[1].endswith("┓") and len(lines[1]) == 80
    assert re.match(r"┃ Layer \(type\) +┃ Output Shape +┃ +Param # ┃", lines[2])
    assert re.search(r"│ conv2d \(Conv2D\) +│ \(None, 26, 26, 8\) +│ +80 │", text)
    assert re.search(r"│ dense \(Dense\) +│ \(None, 10\) +│ +54,090 │", text)
    assert "Connected to" not in text
    assert lines[-3:] == [" Total params: 54,170 (211.60 KB)",
                          " Trainable params: 54,170 (211.60 KB)",
                          " Non-trainable params: 0 (0.00 B)"]


def test_functional_table_has_connections_and_trainable_column():
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    da = layers.Dense(5, name="da")
    db = layers.Dense(5, name="db", trainable=False)
    cat = layers.Concatenate(name="cat")([da(a), db(b)])
    model = keras.Model([a, b], layers.Dense(2, name="out")(cat))
    text = _summary(model, line_length=160, show_trainable=True)
    header = text.splitlines()[2]
    assert "Connected to" in header and "Trainable" in header
    assert re.search(r"│ a \(InputLayer\) +│ \(None, 4\) +│ +0 │ - +│ +- +│", text)
    assert re.search(r"│ da \(Dense\) .*│ a\[0\]\[0\] +│ +Y +│", text)
    assert re.search(r"│ db \(Dense\) .*│ b\[0\]\[0\] +│ +N +│", text)
    assert "da[0][0], db[0][0]" in _row(text, "cat (Concatenate)")
    assert " Trainable params: 47 (188.00 B)" in text  # da 25 + out 22; db (20) frozen
    assert " Non-trainable params: 20 (80.00 B)" in text


def test_unbuilt_and_subclassed_models():
    lazy = keras.Sequential([layers.Dense(3, name="d")])
    text = _summary(lazy)
    assert re.search(r"│ d \(Dense\) +│ \? +│ +0 \(unbuilt\) │", text)
    assert " Total params: 0 (0.00 B)" in text

    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.hidden = layers.Dense(4, name="hidden")
            self.out = layers.Dense(2, name="head")

        def call(self, x):
            return self.out(self.hidden(x))
    net = Net()
    net(np.zeros((3, 6), np.float32))
    text = _summary(net, line_length=100)
    assert re.search(r"│ hidden \(Dense\) +│ \(3, 4\) +│ +28 │", text)
    assert re.search(r"│ head \(Dense\) +│ \(3, 2\) +│ +10 │", text)


def test_expand_nested_and_layer_range():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, layers.Dense(3, name="inner_dense")(inner_in), name="inner")
    x = keras.Input((4,), name="x")
    model = keras.Model(x, layers.Dense(1, name="top")(inner(x)))
    flat = _summary(model, line_length=120)
    assert "inner_dense" not in flat and "inner (Functional)" in flat
    nested = _summary(model, line_length=120, expand_nested=True)
    assert "└ inner_dense (Dense)" in nested
    ranged = _summary(model, line_length=120, layer_range=["inner", "top"])
    assert "x (InputLayer)" not in ranged and "top (Dense)" in ranged
    with pytest.raises(ValueError, match="layer_range"):
        model.summary(layer_range=["nothing", "top"], print_fn=lambda s: None)


def test_long_names_wrap_and_truncate():
    model = keras.Sequential([keras.Input((2,)), layers.Dense(1, name="a_rather_long_name")])
    text = _summary(model, line_length=40)
    assert all(len(line) == 40 for line in text.splitlines()[1:-3])
    assert "…" in text  # a word wider than its cell is cut, as rich does


def test_printing_without_print_fn(capsys):
    keras.Sequential([keras.Input((2,)), layers.Dense(1)], name="p").summary()
    assert capsys.readouterr().out.startswith('Model: "p"\n')


# ----- oracle: real Keras ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return keras_or_skip()


def _convnet(lib):
    L = lib.layers
    return lib.Sequential([
        lib.Input((16, 16, 3)), L.Conv2D(8, 3, activation="relu"), L.BatchNormalization(),
        L.SeparableConv2D(6, 3, padding="same"), L.MaxPooling2D(2), L.Conv2DTranspose(4, 3),
        L.DepthwiseConv2D(3), L.GlobalAveragePooling2D(), L.Dense(10), L.Dropout(0.1),
        L.Dense(3, activation="softmax")])


def _recurrent(lib):
    L = lib.layers
    ids = lib.Input((9,), dtype="int32")
    x = L.Embedding(50, 8)(ids)
    x = L.Bidirectional(L.LSTM(6, return_sequences=True))(x)
    x = L.LayerNormalization()(x)
    att = L.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)
    x = L.Add()([x, att])
    x = L.GRU(5)(x)
    y = L.SimpleRNN(3)(L.Reshape((5, 1))(x))
    return lib.Model(ids, [L.Dense(2)(x), y])


@pytest.mark.parametrize("build", [_convnet, _recurrent], ids=["convnet", "recurrent"])
def test_counts_equal_real_keras(real_keras, build):
    km, em = build(real_keras), build(keras)
    assert [type(x).__name__ for x in em.layers] == [type(x).__name__ for x in km.layers]
    assert [x.count_params() for x in em.layers] == [x.count_params() for x in km.layers]
    assert em.count_params() == km.count_params()

    def totals(model, lib_model):
        out = []
        lib_model.summary(print_fn=lambda s, **k: out.append(s))
        return [line for line in out[0].splitlines() if "params:" in line]
    assert totals(em, em) == totals(km, km)


def test_optimizer_params_after_training_match_keras(real_keras):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    lines = []
    for lib in (real_keras, keras):
        for opt in ("adam", "sgd"):
            model = lib.Sequential([lib.Input((4,)), lib.layers.Dense(8), lib.layers.Dense(2)])
            model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
            model.fit(x, y, epochs=1, batch_size=16, verbose=0)
            out = []
            model.summary(print_fn=lambda s, **k: out.append(s))
            lines.append([line for line in out[0].splitlines() if "params:" in line])
    assert lines[:2] == lines[2:]
    assert lines[2][-1] == " Optimizer params: 118 (472.00 B)"  # 2 * 58 slots + it + lr
