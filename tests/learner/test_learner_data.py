"""ember.learner.DataLoaders: splitting, fastai's loader defaults, dtypes and errors."""
import numpy as np
import pytest

import ember as em
from ember.datasets import Digits
from ember.learner import CrossEntropyLossFlat, DataLoaders, MSELossFlat
from ember.utils.data import DataLoader, TensorDataset


def _xy(n=100):
    x = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    y = np.arange(n, dtype=np.int32) % 4
    return x, y


def _ids(dl):
    return np.concatenate([xb.numpy()[:, 0] // 3 for xb, _ in dl]).astype(int)


def test_random_split_sizes_and_disjoint():
    x, y = _xy()
    dls = DataLoaders.from_arrays(x, y, valid_pct=0.2, bs=10, seed=1)
    assert len(dls.train_ds) == 80 and len(dls.valid_ds) == 20
    tr = set(np.asarray(dls.splits[0]).tolist())
    va = set(np.asarray(dls.splits[1]).tolist())
    assert not tr & va and tr | va == set(range(100))


def test_seed_makes_the_split_reproducible():
    x, y = _xy()
    a = DataLoaders.from_arrays(x, y, seed=3).splits[1]
    b = DataLoaders.from_arrays(x, y, seed=3).splits[1]
    c = DataLoaders.from_arrays(x, y, seed=4).splits[1]
    assert list(a) == list(b) and list(a) != list(c)


def test_global_seed_drives_the_split_without_seed():
    x, y = _xy()
    em.manual_seed(7)
    a = DataLoaders.from_arrays(x, y).splits[1]
    em.manual_seed(7)
    b = DataLoaders.from_arrays(x, y).splits[1]
    assert list(a) == list(b)


def test_train_shuffles_and_drops_last_valid_does_neither():
    x, y = _xy()
    dls = DataLoaders.from_arrays(x, y, valid_pct=0.2, bs=16, seed=0)
    assert len(dls.train) == 80 // 16  # drop_last: 5 full batches
    assert all(xb.shape[0] == 16 for xb, _ in dls.train)
    assert len(dls.valid) == 2 and [xb.shape[0] for xb, _ in dls.valid] == [16, 4]
    np.testing.assert_array_equal(_ids(dls.valid), np.asarray(dls.splits[1]))
    assert sorted(_ids(dls.train)) != list(_ids(dls.train))  # shuffled
    assert dls.bs == 16


def test_shuffle_false_keeps_order():
    x, y = _xy()
    dls = DataLoaders.from_arrays(x, y, bs=8, shuffle=False, seed=0)
    np.testing.assert_array_equal(_ids(dls.train), np.asarray(dls.splits[0])[:80])


def test_dtypes_follow_ember_defaults():
    x, y = _xy()
    xb, yb = DataLoaders.from_arrays(x, y, bs=8).one_batch()
    assert xb.dtype == em.float32 and yb.dtype == em.int64


@pytest.mark.parametrize("y, loss", [
    (np.arange(40) % 3, CrossEntropyLossFlat),
    (np.linspace(0, 1, 40), MSELossFlat),
])
def test_default_loss_follows_the_targets(y, loss):
    x = np.zeros((40, 2), np.float32)
    assert isinstance(DataLoaders.from_arrays(x, y).loss_func, loss)


def test_explicit_validation_arrays():
    x, y = _xy()
    dls = DataLoaders.from_arrays(x[:70], y[:70], valid=(x[70:], y[70:]), bs=10)
    assert len(dls.train_ds) == 70 and len(dls.valid_ds) == 30


def test_from_dsets_on_ember_datasets():
    dls = DataLoaders.from_dsets(Digits(train=True), Digits(train=False), bs=32)
    xb, yb = dls.one_batch()
    assert tuple(xb.shape) == (32, 1, 8, 8) and tuple(yb.shape) == (32,)
    assert len(dls.valid) == int(np.ceil(359 / 32))
    assert dls.valid_ds.classes[3] == "3"


def test_wraps_existing_loaders_and_delegates_to_train():
    ds = TensorDataset(em.zeros(10, 2), em.zeros(10))
    train, valid = DataLoader(ds, batch_size=4), DataLoader(ds, batch_size=5)
    dls = DataLoaders(train, valid)
    assert dls.train is train and dls[1] is valid and len(dls) == 2
    assert dls.batch_size == 4  # fastai's GetAttr: unknown names go to the train loader


def test_test_dl_uses_validation_settings():
    x, y = _xy()
    dls = DataLoaders.from_arrays(x, y, bs=16, seed=0)
    dl = dls.test_dl(x[:20])
    batches = list(dl)
    assert [b[0].shape[0] for b in batches] == [16, 4] and len(batches[0]) == 1
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), x[:20])


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=np.zeros((10, 2)), y=np.zeros(9)), "same number of samples"),
    (dict(x=np.zeros((10, 2)), y=np.zeros(10), valid_pct=1.5), "valid_pct"),
    (dict(x=np.array(["a", "b"]), y=np.zeros(2)), "must hold numbers"),
])
def test_bad_arrays_are_reported(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DataLoaders.from_arrays(**kwargs)


def test_one_batch_on_an_empty_train_loader_explains():
    dls = DataLoaders.from_arrays(np.zeros((10, 2)), np.zeros(10), bs=64)
    with pytest.raises(ValueError, match="yields no batch.*bs=64"):
        dls.one_batch()
