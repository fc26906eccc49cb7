"""ember.save / ember.load: round trips, dtypes, atomic saves, damaged files, and the
safetensors interchange with PyTorch."""
import collections
import io
import json
import math
import os
import stat

import numpy as np
import pytest
import safetensors.numpy

import ember
from ember.serialization import CheckpointError, load, save

ml_dtypes = pytest.importorskip("ml_dtypes")


def _np(t):
    return np.asarray(t._data)


def _same(a, b):
    """Structural equality with tensors compared by dtype, shape and values."""
    if isinstance(a, ember.Tensor):
        assert isinstance(b, ember.Tensor) and type(a) is type(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(_np(a).astype(np.float64) if a.dtype == ember.bfloat16
                                      else _np(a), _np(b).astype(np.float64)
                                      if b.dtype == ember.bfloat16 else _np(b))
        return
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
        return
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


@pytest.fixture
def ckpt(tmp_path):
    return str(tmp_path / "ckpt.safetensors")


def _checkpoint():
    net = ember.nn.Linear(3, 2)
    return {
        "model": net.state_dict(),
        "optimizer": {"state": {0: {"step": 3, "exp_avg": ember.ones(2, 3)}, 1: {}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1],
                                        "amsgrad": False, "foreach": None}]},
        "epoch": 3, "rng": ember.get_rng_state(), "best": float("inf"), "nan": float("nan"),
        "neg": -0.0, "big": 2 ** 70, "name": "run-1", "raw": b"\x00\xff",
        "nested": [(1, ("a", [None, True])), {"deep": ember.arange(4)}],
        (1, "k"): "tuple key", 2.5: "float key", None: "none key",
        "ordered": collections.OrderedDict([("z", 1), ("a", 2)]),
        "array": np.arange(6, dtype=np.int32).reshape(2, 3), "scalar": np.float32(2.5),
        "dtype": ember.bfloat16, "device": ember.device("cpu"),
    }


def test_nested_round_trip(ckpt):
    obj = _checkpoint()
    save(obj, ckpt)
    _same(obj, load(ckpt))


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int8", "int16", "int32", "int64",
                                   "float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("shape", [(), (0, 3), (2, 3, 4)])
def test_dtype_round_trip(ckpt, dtype, shape):
    values = (np.arange(int(np.prod(shape))) * 7 % 11 - 5).reshape(shape)
    d = getattr(ember, dtype)
    arr = np.asarray(values > 0) if dtype == "bool" else values.astype(d.np)
    if dtype == "uint8":
        arr = np.abs(values).astype(np.uint8)
    t = ember.Tensor._wrap(arr)
    save({"t": t, "tup": (t,)}, ckpt)
    out = load(ckpt)
    assert out["t"].dtype == d and out["t"].shape == shape and isinstance(out["tup"], tuple)
    np.testing.assert_array_equal(_np(out["t"]).astype(np.float64), arr.astype(np.float64))


def test_non_contiguous_and_shared_tensors(ckpt):
    x = ember.arange(6.0).reshape(2, 3)
    p = ember.nn.Parameter(ember.ones(2))
    save({"xt": x.t(), "p": p, "p_again": p, "frozen": ember.nn.Parameter(ember.ones(1),
                                                                          requires_grad=False),
          "leaf": ember.ones(1).requires_grad_()}, ckpt)
    out = load(ckpt)
    np.testing.assert_array_equal(_np(out["xt"]), np.arange(6.0).reshape(2, 3).T)
    assert isinstance(out["p"], ember.nn.Parameter) and out["p"].requires_grad
    assert out["p"] is out["p_again"]
    assert isinstance(out["frozen"], ember.nn.Parameter) and not out["frozen"].requires_grad
    assert out["leaf"].requires_grad and out["leaf"].is_leaf
    out["xt"].add_(1)  # loaded tensors are writable


def test_file_objects(tmp_path):
    buf = io.BytesIO()
    save({"w": ember.ones(2)}, buf)
    buf.seek(0)
    np.testing.assert_array_equal(_np(load(buf)["w"]), [1.0, 1.0])


def test_state_dict_names_are_the_tensor_names(ckpt):
    sd = ember.nn.Linear(4, 3).state_dict()
    save(sd, ckpt)
    plain = safetensors.numpy.load_file(ckpt)
    assert sorted(plain) == ["bias", "weight"]
    np.testing.assert_array_equal(plain["weight"], _np(sd["weight"]))
    out = load(ckpt)
    assert list(out) == list(sd)
    net = ember.nn.Linear(4, 3)
    net.load_state_dict(out)
    np.testing.assert_array_equal(_np(net.weight.detach()), _np(sd["weight"]))


def test_plain_safetensors_file_loads_as_a_flat_dict(ckpt):
    safetensors.numpy.save_file({"a": np.arange(3, dtype=np.int64),
                                 "b": np.ones((2, 2), np.float16)}, ckpt)
    out = load(ckpt)
    assert set(out) == {"a", "b"} and out["b"].dtype == ember.float16
    np.testing.assert_array_equal(_np(out["a"]), [0, 1, 2])


@pytest.mark.parametrize("map_location", ["cpu", ember.device("cpu"), {"cuda:0": "cpu"},
                                          lambda t, loc: t * 2])
def test_map_location(ckpt, map_location):
    save({"w": ember.ones(2)}, ckpt)
    out = load(ckpt, map_location=map_location, weights_only=True)
    expect = 2.0 if callable(map_location) and not isinstance(map_location, (str, dict)) \
        and not hasattr(map_location, "backend") else 1.0
    np.testing.assert_array_equal(_np(out["w"]), [expect, expect])


def test_unsupported_objects_are_named(ckpt):
    with pytest.raises(TypeError, match=r"type object at obj\['a'\]\['1'\].*never pickled"):
        save({"a": [1, object()]}, ckpt)
    with pytest.raises(TypeError, match="dict key of type frozenset"):
        save({frozenset(): 1}, ckpt)
    with pytest.raises(TypeError, match="safetensors can't store"):
        save({"c": np.zeros(2, np.complex128)}, ckpt)


# ----- atomic saves --------------------------------------------------------------------------


def _files(folder):
    return sorted(os.listdir(folder))


def test_failed_encoding_leaves_previous_file(ckpt, tmp_path):
    save({"w": ember.ones(3)}, ckpt)
    before = open(ckpt, "rb").read()
    with pytest.raises(TypeError):
        save({"w": ember.zeros(3), "later": {"bad": lambda: 0}}, ckpt)
    assert open(ckpt, "rb").read() == before
    assert _files(tmp_path) == ["ckpt.safetensors"]


@pytest.mark.parametrize("where", ["write", "replace"])
def test_crash_mid_save_leaves_previous_file(ckpt, tmp_path, monkeypatch, where):
    save({"w": ember.ones(3)}, ckpt)
    before = open(ckpt, "rb").read()

    def half_write(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x10\x00\x00\x00partial")
        raise OSError("disk full")

    def no_replace(src, dst):
        raise OSError("power cut")
    if where == "write":
        monkeypatch.setattr(safetensors.numpy, "save_file", half_write)
    else:
        monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(OSError):
        save({"w": ember.zeros(1000)}, ckpt)
    assert open(ckpt, "rb").read() == before
    assert _files(tmp_path) == ["ckpt.safetensors"]  # no temporary file left behind
    monkeypatch.undo()
    np.testing.assert_array_equal(_np(load(ckpt)["w"]), np.ones(3))


def test_saved_file_gets_normal_permissions(ckpt):
    umask = os.umask(0o022)
    try:
        save({"w": ember.ones(1)}, ckpt)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(ckpt).st_mode) == 0o644


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save({}, str(tmp_path / "nope" / "x.safetensors"))


# ----- damaged files -------------------------------------------------------------------------


def _saved(ckpt):
    save({"w": ember.arange(12.0).reshape(3, 4), "b": ember.ones(2), "step": 7}, ckpt)
    return open(ckpt, "rb").read()


def _header_len(data):
    return int.from_bytes(data[:8], "little")


@pytest.mark.parametrize("cut", ["empty", "in_length", "in_header", "in_data", "last_byte"])
def test_truncated_file(ckpt, cut):
    data = _saved(ckpt)
    n = _header_len(data)
    keep = {"empty": 0, "in_length": 5, "in_header": 8 + n // 2, "in_data": 8 + n + 10,
            "last_byte": len(data) - 1}[cut]
    open(ckpt, "wb").write(data[:keep])
    with pytest.raises(CheckpointError, match="truncated") as info:
        load(ckpt)
    assert "ckpt.safetensors" in str(info.value)


def _patch_header(data, old: bytes, new: bytes, count=1):
    n = _header_len(data)
    header = data[8:8 + n]
    assert old in header and len(old) == len(new)
    return data[:8] + header.replace(old, new, count) + data[8 + n:]


@pytest.mark.parametrize("old, new, match", [
    (b"{", b"X", "not valid JSON"),
    (b'"F32"', b'"F3Z"', "not a tensor description"),
    (b'"shape":[3,4]', b'"shape":[3,5]', r"needs 60 bytes but its data_offsets span 48"),
    (b'"data_offsets":[0,', b'"data_offsets":[4,', "needs 8 bytes but its data_offsets span 4"),
    (b'"data_offsets":[8,56]', b'"data_offsets":[0,48]', "safetensors could not parse"),
    (b'\\"version\\":1', b'\\"version\\":9', "newer ember"),
    (b'\\"$tensor\\"', b'\\"$system\\"', "unknown tag"),
])
def test_corrupted_header(ckpt, old, new, match):
    data = _saved(ckpt)
    open(ckpt, "wb").write(_patch_header(data, old, new))
    with pytest.raises(CheckpointError, match=match) as info:
        load(ckpt)
    assert "ckpt.safetensors" in str(info.value)


def test_flipped_data_byte_fails_the_checksum(ckpt):
    data = bytearray(_saved(ckpt))
    data[-3] ^= 0xFF
    open(ckpt, "wb").write(bytes(data))
    with pytest.raises(CheckpointError, match="CRC32"):
        load(ckpt)


def test_huge_header_length(ckpt):
    data = _saved(ckpt)
    open(ckpt, "wb").write((2 ** 40).to_bytes(8, "little") + data[8:])
    with pytest.raises(CheckpointError, match="announce a 1099511627776-byte header"):
        load(ckpt)


@pytest.mark.parametrize("content, match", [(b"PK\x03\x04rest-of-zip", "PyTorch zip/pickle"),
                                            (b"\x80\x04\x95pickle", "pickle file"),
                                            (b"hello world, not a checkpoint", "truncated or")])
def test_not_a_checkpoint(ckpt, content, match):
    open(ckpt, "wb").write(content)
    with pytest.raises(CheckpointError, match=match):
        load(ckpt)


def test_structure_is_data_not_code(ckpt):
    # a hostile structure can only name tags; anything unknown is refused, nothing imported
    meta = {"ember": json.dumps({"version": 1, "root": {"$class": "os.system"}})}
    safetensors.numpy.save_file({}, ckpt, metadata=meta)
    with pytest.raises(CheckpointError, match=r"unknown tag .\$class"):
        load(ckpt)


# ----- interchange with PyTorch --------------------------------------------------------------


def test_pytorch_reads_ember_state_dict(ckpt):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    net = ember.nn.Linear(4, 3)
    sd = dict(net.state_dict())
    sd["half"] = ember.ones(2).bfloat16()
    save(sd, ckpt)
    loaded = st.load_file(ckpt)
    assert sorted(loaded) == sorted(sd)
    for k, v in sd.items():
        assert loaded[k].dtype == getattr(torch, v.dtype.name)
        np.testing.assert_array_equal(loaded[k].float().numpy(), _np(v).astype(np.float32))
    tnet = torch.nn.Linear(4, 3)
    tnet.load_state_dict({k: loaded[k] for k in ("weight", "bias")})


def test_ember_reads_pytorch_safetensors(ckpt):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    sd = {"w": torch.randn(3, 2), "i": torch.arange(4), "b": torch.ones(2, dtype=torch.bfloat16),
          "m": torch.tensor([True, False])}
    st.save_file(sd, ckpt)
    out = load(ckpt)
    for k, v in sd.items():
        assert out[k].dtype == getattr(ember, str(v.dtype).split(".")[1])
        np.testing.assert_array_equal(_np(out[k]).astype(np.float64), v.double().numpy())


def test_a_header_length_that_looks_like_pickle_magic_still_loads(tmp_path):
    # a 640-byte header is stored as 80 02 00 ...: the pickle protocol-2 magic
    import json
    import struct

    import safetensors.numpy
    name = "w"
    for _ in range(5):
        buf = safetensors.numpy.save({name: np.zeros(3, np.float32)})
        header_size = struct.unpack("<Q", buf[:8])[0]
        if header_size == 640:
            break
        name += "x" * (640 - header_size)
    assert buf[:2] == b"\x80\x02"  # and without the fix: "is a pickle file"
    assert json.loads(buf[8:8 + 640])[name]["shape"] == [3]
    p = tmp_path / "w.safetensors"
    p.write_bytes(buf)
    loaded = ember.load(str(p))
    np.testing.assert_array_equal(loaded[name].numpy(), np.zeros(3, np.float32))
