"""TensorBoard event files: read back with a small independent decoder (CRC32C checked
bit by bit against the published test vector) and with TensorBoard's own EventAccumulator."""
import os
import struct
import zlib

import numpy as np
import pytest

from ember.keras.callbacks import CallbackList, TensorBoard
from ember.keras.callbacks import _event_file


# ----- an independent reader -------------------------------------------------------------------

def crc32c_bitwise(data: bytes) -> int:
    """CRC-32C straight from its definition: reflected, polynomial 0x1EDC6F41."""
    poly = int(f"{0x1EDC6F41:032b}"[::-1], 2)
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (poly if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_crc32c_test_vectors():
    assert crc32c_bitwise(b"123456789") == 0xE3069283  # the published check value
    for data in (b"", b"a", b"123456789", bytes(range(256)) * 3):
        assert _event_file.crc32c(data) == crc32c_bitwise(data)
    assert _event_file.crc32c(b"123456789") == 0xE3069283


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path):
    buf = open(path, "rb").read()
    out, pos = [], 0
    while pos < len(buf):
        header = buf[pos:pos + 8]
        (length,), (hcrc,) = struct.unpack("<Q", header), struct.unpack("<I",
                                                                        buf[pos + 8:pos + 12])
        assert hcrc == masked(crc32c_bitwise(header)), "bad length CRC"
        data = buf[pos + 12:pos + 12 + length]
        (dcrc,) = struct.unpack("<I", buf[pos + 12 + length:pos + 16 + length])
        assert dcrc == masked(crc32c_bitwise(data)), "bad data CRC"
        out.append(data)
        pos += 16 + length
    assert pos == len(buf)
    return out


def parse(msg):
    """Protobuf wire format -> {field: [values]} (varints as ints, fixed64/32 as bytes)."""
    fields, pos = {}, 0

    def varint():
        nonlocal pos
        shift = result = 0
        while True:
            b = msg[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while pos < len(msg):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire == 1:
            value, pos = msg[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = msg[pos:pos + 4], pos + 4
        elif wire == 2:
            n = varint()
            value, pos = msg[pos:pos + n], pos + n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        fields.setdefault(field, []).append(value)
    return fields


def read_events(folder):
    """[(step, file_version or None, {tag: summary value fields})] of the one file there."""
    files = os.listdir(folder)
    assert len(files) == 1 and files[0].startswith("events.out.tfevents.")
    events = []
    for rec in read_records(os.path.join(folder, files[0])):
        e = parse(rec)
        assert struct.unpack("<d", e[1][0])[0] > 1e9  # a wall time
        values = {}
        for v in parse(e[5][0]).get(1, []) if 5 in e else []:
            v = parse(v)
            values[v[1][0].decode()] = v
        events.append((e.get(2, [0])[0], e[3][0].decode() if 3 in e else None, values))
    return events


def scalars(folder):
    """{tag: [(step, value)]} of the simple_value scalars in folder's event file."""
    out = {}
    for step, _, values in read_events(folder):
        for tag, v in values.items():
            if 2 in v:
                out.setdefault(tag, []).append((step, struct.unpack("<f", v[2][0])[0]))
    return out


# ----- a fake model and a run -------------------------------------------------------------------

class FakeOptimizer:
    def __init__(self):
        self.learning_rate = 0.125


class FakeModel:
    def __init__(self):
        self.optimizer = FakeOptimizer()
        self.stop_training = False
        self.w = {"dense/kernel": np.arange(12, dtype=np.float32).reshape(3, 4) / 12,
                  "dense/bias": np.array([-1.0, 0.0, 0.5, 2.0], np.float32)}

    def named_parameters(self):
        return [(k.replace("/", "."), v) for k, v in self.w.items()]

    def get_weights(self):
        return list(self.w.values())

    def to_json(self):
        return '{"class_name": "Sequential"}'


def run(log_dir, epochs=3, steps=4, model=None, **kwargs):
    model = model or FakeModel()
    cbs = CallbackList([TensorBoard(log_dir, **kwargs)], model=model, epochs=epochs)
    cbs.on_train_begin()
    for epoch in range(epochs):
        cbs.on_epoch_begin(epoch)
        for b in range(steps):
            cbs.on_train_batch_begin(b)
            cbs.on_train_batch_end(b, {"loss": 1.0 / (1 + epoch * steps + b)})
        cbs.on_test_begin()
        cbs.on_test_end({"loss": 2.0 - epoch})
        cbs.on_epoch_end(epoch, {"loss": 1.0 - 0.25 * epoch, "accuracy": 0.5 + 0.125 * epoch,
                                 "val_loss": 2.0 - epoch, "val_accuracy": 0.25 * epoch})
    cbs.on_train_end()
    return model


def test_epoch_scalars_in_train_and_validation_files(tmp_path):
    run(tmp_path, write_graph=False)
    assert sorted(os.listdir(tmp_path)) == ["train", "validation"]
    events = read_events(tmp_path / "train")
    assert events[0][1] == "brain.Event:2"  # the first record is the file version
    train = scalars(tmp_path / "train")
    assert train == {"epoch_loss": [(0, 1.0), (1, 0.75), (2, 0.5)],
                     "epoch_accuracy": [(0, 0.5), (1, 0.625), (2, 0.75)],
                     "epoch_learning_rate": [(0, 0.125), (1, 0.125), (2, 0.125)]}
    val = scalars(tmp_path / "validation")
    assert val["epoch_loss"] == [(0, 2.0), (1, 1.0), (2, 0.0)]
    assert val["epoch_accuracy"] == [(0, 0.0), (1, 0.25), (2, 0.5)]
    # each validation pass, against the number of optimizer steps taken
    assert val["evaluation_loss_vs_iterations"] == [(4, 2.0), (8, 1.0), (12, 0.0)]


@pytest.mark.parametrize("update_freq,steps", [("batch", list(range(1, 13))), (5, [5, 10])])
def test_batch_scalars_every_update_freq_batches(tmp_path, update_freq, steps):
    run(tmp_path, write_graph=False, update_freq=update_freq)
    got = scalars(tmp_path / "train")["batch_loss"]
    assert [s for s, _ in got] == steps
    np.testing.assert_allclose([v for _, v in got], [1.0 / s for s in steps], rtol=1e-6)


def test_histograms_images_and_graph(tmp_path):
    run(tmp_path, histogram_freq=2, write_images=True)
    events = read_events(tmp_path / "train")
    # the model's JSON config, as Keras writes it for the graph dashboard
    graph = [v for _, _, vals in events for t, v in vals.items() if t == "keras"]
    assert len(graph) == 1
    tensor, meta = parse(graph[0][8][0]), parse(parse(graph[0][9][0])[1][0])
    assert tensor[8] == [b'{"class_name": "Sequential"}'] and tensor[1] == [7]  # DT_STRING
    assert meta == {1: [b"graph_keras_model"], 2: [b"1"]}
    histos = [(step, vals["dense/kernel/histogram"]) for step, _, vals in events
              if "dense/kernel/histogram" in vals]
    assert [s for s, _ in histos] == [0, 2]
    h = parse(histos[0][1][5][0])
    f64 = lambda b: struct.unpack("<d", b)[0]  # noqa: E731
    x = (np.arange(12, dtype=np.float32) / 12).astype(np.float64)  # the float32 weights
    assert (f64(h[1][0]), f64(h[2][0]), f64(h[3][0])) == (0.0, x[-1], 12.0)
    assert f64(h[4][0]) == pytest.approx(x.sum()) and f64(h[5][0]) == pytest.approx(x @ x)
    counts = np.frombuffer(h[7][0], "<f8")
    limits = np.frombuffer(h[6][0], "<f8")
    assert counts.sum() == 12 and len(limits) == 30 and limits[-1] == x[-1]
    # 30 equal buckets over [min, max], each given by its right edge
    np.testing.assert_allclose(limits, np.linspace(0, x[-1], 31)[1:], rtol=1e-12)
    expected_counts = [np.sum((x >= lo) & ((x < hi) if i < 29 else (x <= hi)))
                       for i, (lo, hi) in enumerate(zip(np.linspace(0, x[-1], 31)[:-1],
                                                       np.linspace(0, x[-1], 31)[1:]))]
    np.testing.assert_array_equal(counts, expected_counts)
    # the 3x4 kernel is drawn wide (4 x 3 -> 1 x 3 x 4 x 1) as a PNG
    image = [vals["dense/kernel/image"] for _, _, vals in events if "dense/kernel/image" in vals]
    img = parse(image[0][4][0])
    assert (img[1], img[2], img[3]) == ([3], [4], [1])
    png = img[4][0]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    idat = png.index(b"IDAT")
    n = struct.unpack(">I", png[idat - 4:idat])[0]
    rows = zlib.decompress(png[idat + 4:idat + 4 + n])
    pixels = np.frombuffer(rows, np.uint8).reshape(3, 5)[:, 1:]  # drop the filter bytes
    expected = (np.arange(12, dtype=np.float32).reshape(3, 4) / 12 * 255.5).astype(np.uint8)
    np.testing.assert_array_equal(pixels, expected)


def test_histograms_of_an_ember_module_named_after_its_parameters(tmp_path):
    import ember

    net = ember.nn.Linear(3, 2)
    net.optimizer = FakeOptimizer()
    net.stop_training = False
    run(tmp_path, epochs=1, model=net, histogram_freq=1)
    (_, _, values), = [e for e in read_events(tmp_path / "train") if "weight/histogram" in e[2]]
    assert set(values) == {"weight/histogram", "bias/histogram"}
    h = parse(values["bias/histogram"][5][0])
    b = net.bias.detach().numpy().astype(np.float64)
    assert struct.unpack("<d", h[1][0])[0] == b.min()
    assert struct.unpack("<d", h[4][0])[0] == pytest.approx(b.sum())


def test_bad_arguments():
    with pytest.raises(ValueError, match="profiling is not available.*profile_batch=5"):
        TensorBoard(profile_batch=5)
    with pytest.raises(ValueError, match="update_freq must be 'epoch', 'batch' or a positive "
                                         "integer, got 'often'"):
        TensorBoard(update_freq="often")


def test_embeddings_projector_config_and_weights(tmp_path):
    class Embedding:
        name = "embedding"

    class Dense:
        name = "dense"

    saved = []
    model = FakeModel()
    model.layers = [Embedding(), Dense()]
    model.save_weights = lambda path: (saved.append(path), open(path, "w").close())
    run(tmp_path, epochs=2, model=model, write_graph=False, embeddings_freq=1,
        embeddings_metadata={"embedding": "meta.tsv"})
    assert (tmp_path / "projector_config.pbtxt").read_text() == (
        'embeddings {\n  tensor_name: "layer_with_weights-0/embeddings/.ATTRIBUTES/'
        'VARIABLE_VALUE"\n  metadata_path: "meta.tsv"\n}\n')
    assert [os.path.basename(p) for p in saved] == ["keras_embedding.ckpt-0.weights.h5",
                                                    "keras_embedding.ckpt-1.weights.h5"]


# ----- TensorBoard's own reader -----------------------------------------------------------------

def test_tensorboard_event_accumulator_reads_the_files(tmp_path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    run(tmp_path, histogram_freq=1, write_images=True, update_freq=2)
    acc = event_accumulator.EventAccumulator(str(tmp_path / "train"),
                                             size_guidance={"scalars": 0, "histograms": 0,
                                                            "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", "batch_loss"} <= set(
        tags["scalars"])
    assert [(e.step, e.value) for e in acc.Scalars("epoch_loss")] == [(0, 1.0), (1, 0.75),
                                                                       (2, 0.5)]
    assert [e.step for e in acc.Scalars("batch_loss")] == [2, 4, 6, 8, 10, 12]
    assert set(tags["histograms"]) == {"dense/kernel/histogram", "dense/bias/histogram"}
    h = acc.Histograms("dense/bias/histogram")[0].histogram_value
    assert (h.min, h.max, h.num, h.sum, h.sum_squares) == (-1.0, 2.0, 4.0, 1.5, 5.25)
    assert "dense/kernel/image" in tags["images"]
    img = acc.Images("dense/kernel/image")[0]
    assert (img.width, img.height) == (4, 3)
    assert "keras" in tags["tensors"]
    val = event_accumulator.EventAccumulator(str(tmp_path / "validation"))
    val.Reload()
    assert [(e.step, e.value) for e in val.Scalars("epoch_loss")] == [(0, 2.0), (1, 1.0),
                                                                       (2, 0.0)]


def test_tensorboard_data_provider_reads_the_scalars(tmp_path):
    """The loader TensorBoard 2's web app uses (tensor-based, via data_compat)."""
    plugin_event_multiplexer = pytest.importorskip(
        "tensorboard.backend.event_processing.plugin_event_multiplexer")
    run(tmp_path, write_graph=False)
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(tmp_path))
    mux.Reload()
    assert set(mux.Runs()) == {"train", "validation"}
    events = mux.Tensors("train", "epoch_loss")
    from tensorboard.util import tensor_util
    assert [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in events] == [
        (0, 1.0), (1, 0.75), (2, 0.5)]
