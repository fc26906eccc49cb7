"""ember.datasets: IDX reading (MNIST, FashionMNIST) on small files written here by hand, the
bundled digits, and the transforms against NumPy."""
import gzip
import hashlib
import os
import struct

import numpy as np
import pytest

import ember
from ember.datasets import MNIST, Digits, FashionMNIST, load_digits, read_idx
from ember.datasets import transforms as T
from ember.utils.data import DataLoader


def _np(t):
    return np.asarray(t._data)


def _write_idx(path, arr, gz=False):
    """IDX by the book: 0x0000, type code, ndim, big-endian uint32 dims, big-endian data."""
    code = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
            np.float64: 0x0E}[arr.dtype.type]
    head = struct.pack(">I", (code << 8) | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    raw = head + body
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if gz else raw)
    return path


def _fake_split(rng, n):
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)


def _write_mnist(folder, gz, n_train=5, n_test=3, seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x, y = _fake_split(rng, n)
        suffix = ".gz" if gz else ""
        _write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte{suffix}"), x, gz)
        _write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte{suffix}"),
                   y.astype(np.uint8), gz)
        out[split] = (x, y)
    return out


# ----- IDX -----------------------------------------------------------------------------------


def test_idx_magic_numbers_are_the_documented_ones(tmp_path):
    p = _write_idx(tmp_path / "a", np.zeros((2, 3, 4), np.uint8))
    assert open(p, "rb").read(4) == b"\x00\x00\x08\x03"
    p = _write_idx(tmp_path / "b", np.zeros(5, np.uint8))
    assert open(p, "rb").read(4) == b"\x00\x00\x08\x01"


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    arr = (np.arange(24).reshape(2, 3, 4) * 3 - 20).astype(dtype)
    got = read_idx(_write_idx(tmp_path / "x", arr, gz))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


def test_read_idx_errors(tmp_path):
    p = _write_idx(tmp_path / "x", np.arange(60, dtype=np.uint8).reshape(3, 4, 5))
    data = open(p, "rb").read()
    open(p, "wb").write(data[:-7])
    with pytest.raises(ValueError, match=r"truncated.*\(3, 4, 5\).*60 bytes.*53"):
        read_idx(p)
    open(p, "wb").write(b"\x12\x34" + data[2:])
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(p)
    open(p, "wb").write(data[:10])
    with pytest.raises(ValueError, match="truncated inside its header"):
        read_idx(p)


# ----- MNIST / FashionMNIST -------------------------------------------------------------------


@pytest.mark.parametrize("layout, gz", [("MNIST/raw", True), ("MNIST/raw", False), ("", False),
                                        ("", True)])
def test_mnist_reads_both_layouts(tmp_path, layout, gz):
    ref = _write_mnist(os.path.join(tmp_path, layout), gz)
    for train, split in ((True, "train"), (False, "t10k")):
        ds = MNIST(tmp_path, train=train)
        x, y = ref[split]
        assert len(ds) == len(y)
        img, label = ds[2]
        assert isinstance(label, int) and label == y[2]
        np.testing.assert_array_equal(img, x[2])
        assert ds.data.dtype == ember.uint8 and ds.data.shape == x.shape
        np.testing.assert_array_equal(_np(ds.targets), y)


def test_fashion_mnist_folder_and_classes(tmp_path):
    ref = _write_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    ds = FashionMNIST(tmp_path, train=False)
    assert len(ds) == 3 and ds.classes[9] == "Ankle boot"
    np.testing.assert_array_equal(ds[0][0], ref["t10k"][0][0])
    with pytest.raises(FileNotFoundError):
        MNIST(tmp_path)  # MNIST does not look in FashionMNIST's folder


def test_mnist_transforms_and_loader(tmp_path):
    ref = _write_mnist(tmp_path, gz=False)
    ds = MNIST(tmp_path, transform=T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.25,))]),
               target_transform=lambda t: t + 100)
    img, label = ds[1]
    expect = (ref["train"][0][1].astype(np.float32) / np.float32(255) - np.float32(0.5)) \
        / np.float32(0.25)
    assert img.shape == (1, 28, 28) and img.dtype == ember.float32
    np.testing.assert_allclose(_np(img)[0], expect, rtol=1e-6)
    assert label == ref["train"][1][1] + 100
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 1, 28, 28) and _np(yb).tolist() == list(ref["train"][1][:4] + 100)


def test_mnist_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        MNIST(tmp_path, train=False)
    msg = str(info.value)
    assert os.path.join(str(tmp_path), "MNIST", "raw") in msg
    assert "t10k-images-idx3-ubyte" in msg and "t10k-labels-idx1-ubyte" in msg
    assert "download=True" in msg


def test_mnist_inconsistent_files(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    _write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"\(4, 28, 28\).*\(3,\)"):
        MNIST(tmp_path)


def test_mnist_download_from_mirror(tmp_path, monkeypatch):
    # a local "mirror" reached through file:// URLs: urllib's real code path, no network
    mirror = tmp_path / "mirror"
    ref = _write_mnist(mirror, gz=True)
    names = [f"{s}-{k}-idx{d}-ubyte.gz" for s in ("train", "t10k")
             for k, d in (("images", 3), ("labels", 1))]
    md5 = {n: hashlib.md5(open(mirror / n, "rb").read()).hexdigest() for n in names}
    monkeypatch.setattr(MNIST, "resources", [(n, md5[n]) for n in names])
    monkeypatch.setattr(MNIST, "mirrors", [(tmp_path / "absent").as_uri() + "/",
                                           mirror.as_uri() + "/"])
    root = tmp_path / "data"
    ds = MNIST(root, download=True)
    assert sorted(os.listdir(root / "MNIST" / "raw")) == sorted(names)
    np.testing.assert_array_equal(ds[4][0], ref["train"][0][4])


def test_mnist_download_failure_names_folder_and_files(tmp_path, monkeypatch):
    monkeypatch.setattr(MNIST, "mirrors", [(tmp_path / "absent").as_uri() + "/"])
    with pytest.raises(RuntimeError) as info:
        MNIST(tmp_path / "data", download=True)
    msg = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz" in msg
    assert os.path.join(str(tmp_path / "data"), "MNIST", "raw") in msg
    assert "t10k-labels-idx1-ubyte.gz" in msg


def test_mnist_download_rejects_bad_checksum(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    _write_mnist(mirror, gz=True)
    monkeypatch.setattr(MNIST, "mirrors", [mirror.as_uri() + "/"])  # real md5s won't match
    with pytest.raises(RuntimeError, match="MD5 mismatch"):
        MNIST(tmp_path / "data", download=True)


# ----- the bundled digits --------------------------------------------------------------------

# the first image of the UCI / scikit-learn digits file (a 0), as printed in its CSV
_FIRST_DIGIT = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0,
                0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0,
                0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]


def test_load_digits_shapes_and_contents():
    (xtr, ytr), (xte, yte) = load_digits(scaled=False)
    assert xtr.shape == (1438, 8, 8) and xte.shape == (359, 8, 8)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.int64
    assert xtr.max() == 16 and xtr.min() == 0
    # class sizes of the full 1,797-image set, and a stratified 20% test split
    counts = np.bincount(np.concatenate([ytr, yte]))
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert np.all(np.abs(np.bincount(yte) - 0.2 * counts) <= 1)
    both = np.concatenate([xtr, xte])
    assert any((im.reshape(-1) == _FIRST_DIGIT).all() for im in both[:2])
    (sx, _), _ = load_digits()
    assert sx.dtype == np.float32
    np.testing.assert_array_equal(sx, xtr.astype(np.float32) / 16)


def test_digits_dataset_and_loader():
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) == 1438 and len(test) == 359
    img, label = test[5]
    (_, _), (xte, yte) = load_digits()
    assert img.shape == (1, 8, 8) and img.dtype == ember.float32 and label == yte[5]
    np.testing.assert_array_equal(_np(img)[0], xte[5])
    xb, yb = next(iter(DataLoader(train, batch_size=32, shuffle=True)))
    assert xb.shape == (32, 1, 8, 8) and yb.dtype == ember.int64
    flipped = Digits(transform=T.RandomHorizontalFlip(1.0), target_transform=str)[0]
    np.testing.assert_array_equal(_np(flipped[0]), _np(train[0][0])[..., ::-1])
    assert flipped[1] == str(train[0][1])


# ----- transforms ----------------------------------------------------------------------------


def test_to_tensor_matches_numpy():
    img = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    t = T.ToTensor()(img)
    assert t.shape == (3, 5, 4) and t.dtype == ember.float32
    np.testing.assert_array_equal(_np(t), img.transpose(2, 0, 1).astype(np.float32) /
                                  np.float32(255))
    gray = T.ToTensor()(img[..., 0])
    assert gray.shape == (1, 5, 4)
    f = T.ToTensor()(np.ones((2, 2, 1), np.float64) * 7)  # non-uint8 keeps values and dtype
    assert f.dtype == ember.float64 and _np(f).max() == 7
    assert T.ToTensor()(t) is t
    with pytest.raises(ValueError, match="2/3 dimensional"):
        T.ToTensor()(np.zeros((1, 2, 3, 4), np.uint8))


def test_normalize_matches_numpy():
    x = np.random.default_rng(1).random((2, 3, 4, 5)).astype(np.float32)
    mean, std = (0.1, 0.2, 0.3), (0.5, 1.0, 2.0)
    got = T.Normalize(mean, std)(ember.tensor(x))
    expect = (x - np.float32(mean).reshape(3, 1, 1)) / np.float32(std).reshape(3, 1, 1)
    np.testing.assert_allclose(_np(got), expect, rtol=1e-6)
    hwc = x[0].transpose(1, 2, 0)
    np.testing.assert_allclose(T.Normalize(mean, std)(hwc), expect[0].transpose(1, 2, 0),
                               rtol=1e-6)
    t = ember.tensor(x)
    assert T.Normalize(mean, std, inplace=True)(t) is t
    np.testing.assert_allclose(_np(t), expect, rtol=1e-6)


@pytest.mark.parametrize("make, x, exc, match", [
    (lambda: T.Normalize((0.5,), (0.0,)), ember.zeros(1, 2, 2), ValueError, "std evaluated"),
    (lambda: T.Normalize((0.5,), (1.0,)), ember.zeros(1, 2, 2, dtype=ember.uint8), TypeError,
     "float tensor"),
    (lambda: T.Normalize((0.5,), (1.0,)), ember.zeros(2, 2), ValueError, r"\(\.\.\., C, H, W\)"),
    (lambda: T.Normalize((0.5, 0.5), (1.0, 1.0)), ember.zeros(3, 2, 2), ValueError,
     "3 channels"),
    (lambda: T.RandomCrop(5), ember.zeros(1, 4, 4), ValueError, "larger than input"),
    (lambda: T.Lambda(3), None, TypeError, "should be callable"),
    (lambda: T.RandomCrop(2, padding_mode="wrap"), None, ValueError, "padding_mode"),
])
def test_transform_errors(make, x, exc, match):
    with pytest.raises(exc, match=match):
        make()(x)


@pytest.mark.parametrize("padding, mode", [(None, "constant"), (2, "constant"),
                                           ((1, 2), "reflect"), ((1, 0, 2, 3), "edge"),
                                           (1, "symmetric")])
def test_random_crop_is_a_window_of_the_padded_image(padding, mode):
    from ember.ops.random import randint
    x = np.arange(2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7)
    crop = T.RandomCrop((4, 5), padding=padding, padding_mode=mode, fill=-1)
    p = {None: (0, 0, 0, 0), 2: (2, 2, 2, 2), (1, 2): (1, 2, 1, 2),
         (1, 0, 2, 3): (1, 0, 2, 3), 1: (1, 1, 1, 1)}[padding]  # left, top, right, bottom
    widths = ((0, 0), (p[1], p[3]), (p[0], p[2]))
    padded = np.pad(x, widths, mode=mode, **({"constant_values": -1} if mode == "constant"
                                              else {}))
    for seed in range(5):
        ember.manual_seed(seed)
        got = _np(crop(ember.tensor(x)))
        ember.manual_seed(seed)  # torchvision's get_params: top then left, uniform ints
        i = int(randint(0, padded.shape[1] - 4 + 1, (1,)).item())
        j = int(randint(0, padded.shape[2] - 5 + 1, (1,)).item())
        np.testing.assert_array_equal(got, padded[:, i:i + 4, j:j + 5])
        ember.manual_seed(seed)  # a channels-last array gets the same window
        np.testing.assert_array_equal(crop(x.transpose(1, 2, 0)), got.transpose(1, 2, 0))


def test_random_crop_pad_if_needed_and_full_size():
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3)
    out = T.RandomCrop(5, pad_if_needed=True)(ember.tensor(x))
    assert out.shape == (1, 5, 5)
    assert _np(out).sum() == x.sum()  # zero padding adds nothing, the image is all there
    np.testing.assert_array_equal(_np(T.RandomCrop(3)(ember.tensor(x))), x)


def test_random_horizontal_flip():
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    np.testing.assert_array_equal(_np(T.RandomHorizontalFlip(1.0)(ember.tensor(x))),
                                  x[..., ::-1])
    np.testing.assert_array_equal(_np(T.RandomHorizontalFlip(0.0)(ember.tensor(x))), x)
    hwc = x.transpose(1, 2, 0)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(hwc), hwc[:, ::-1])
    flips = [_np(T.RandomHorizontalFlip()(ember.tensor(x)))[0, 0, 0] == 3 for _ in range(400)]
    assert 0.4 < np.mean(flips) < 0.6
    ember.manual_seed(2)
    a = [_np(T.RandomHorizontalFlip()(ember.tensor(x)))[0, 0, 0] for _ in range(20)]
    ember.manual_seed(2)
    assert a == [_np(T.RandomHorizontalFlip()(ember.tensor(x)))[0, 0, 0] for _ in range(20)]


def test_compose_and_lambda():
    pipeline = T.Compose([T.ToTensor(), T.Lambda(lambda t: t * 2), T.Lambda(lambda t: t + 1)])
    out = pipeline(np.full((2, 2), 255, np.uint8))
    np.testing.assert_array_equal(_np(out), np.full((1, 2, 2), 3.0, np.float32))
    assert "ToTensor" in repr(pipeline)


def test_digits_as_mnist_layout_and_interpolation():
    from ember.datasets import load_digits, load_digits_as_mnist
    (xtr, ytr), (xte, yte) = load_digits_as_mnist()
    (dtr, dytr), (dte, dyte) = load_digits()
    assert xtr.shape == (1438, 28, 28) and xte.shape == (359, 28, 28)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.uint8
    np.testing.assert_array_equal(ytr, dytr)
    np.testing.assert_array_equal(yte, dyte)
    assert xtr[:, :4].max() == 0 and xtr[:, 24:].max() == 0      # MNIST's empty border
    # half-pixel bilinear 8 -> 20 written out for one image, pixel by pixel
    img = dtr[5]
    want = np.zeros((20, 20))
    for r in range(20):
        for c in range(20):
            pr = min(max((r + 0.5) * 8 / 20 - 0.5, 0), 7)
            pc = min(max((c + 0.5) * 8 / 20 - 0.5, 0), 7)
            r0, c0 = int(pr), int(pc)
            r1, c1 = min(r0 + 1, 7), min(c0 + 1, 7)
            fr, fc = pr - r0, pc - c0
            want[r, c] = ((1 - fr) * ((1 - fc) * img[r0, c0] + fc * img[r0, c1]) +
                          fr * ((1 - fc) * img[r1, c0] + fc * img[r1, c1]))
    np.testing.assert_allclose(xtr[5, 4:24, 4:24], np.rint(want * 255), atol=1)
