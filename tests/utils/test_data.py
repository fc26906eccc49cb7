"""ember.utils.data: datasets, samplers, collation, DataLoader (with and without workers).

Expected batches are written out by hand or computed with NumPy slicing; worker results are
compared with the same loader run in the main process.
"""
import collections
import math
import os
import time

import numpy as np
import pytest

import ember
from ember.utils.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader, Dataset,
                              IterableDataset, RandomSampler, SequentialSampler, StackDataset,
                              Subset, SubsetRandomSampler, TensorDataset,
                              WeightedRandomSampler, default_collate, default_convert,
                              get_worker_info, random_split)


def _np(t):
    return np.asarray(t._data)


def _xy(n=10):
    x = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    y = np.arange(n, dtype=np.int64)
    return x, y, TensorDataset(ember.tensor(x), ember.tensor(y))


def _labels(loader):
    return [_np(b[1]).tolist() for b in loader]


class Range(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i


class ShardedStream(IterableDataset):
    """0..n-1, each worker taking every num_workers-th item."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self):
        return self.n


class FailsAt(Dataset):
    def __init__(self, bad):
        self.bad = bad

    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == self.bad:
            raise ValueError(f"sample {i} is broken")
        return i


class WorkerFacts(Dataset):
    """Each sample reports which process made it and a random draw made there."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return {"pid": os.getpid(), "id": -1 if info is None else info.id,
                "seed": -1 if info is None else info.seed,
                "draw": float(ember.rand(1).item()), "np": float(np.random.rand())}


class Sleepy(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        time.sleep(3)
        return i


class DiesAt(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            os._exit(3)
        return i


_INIT_VALUE = 0


def _set_init_value(worker_id):
    global _INIT_VALUE
    _INIT_VALUE = 100 + worker_id


class ReadsInitValue(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return _INIT_VALUE


# ----- datasets ------------------------------------------------------------------------------


def test_tensor_dataset_rows():
    x, y, ds = _xy(5)
    assert len(ds) == 5
    xi, yi = ds[3]
    np.testing.assert_array_equal(_np(xi), x[3])
    assert int(yi) == 3


def test_tensor_dataset_size_mismatch():
    with pytest.raises(AssertionError, match=r"Size mismatch.*\(3, 2\).*\(4,\)"):
        TensorDataset(ember.zeros(3, 2), ember.zeros(4))


def test_subset_concat_stack():
    a, b = Range(3), Range(4)
    c = a + b
    assert isinstance(c, ConcatDataset) and len(c) == 7
    assert [c[i] for i in range(7)] == [0, 1, 2, 0, 1, 2, 3]
    assert c[-1] == 3 and c[-7] == 0
    with pytest.raises(ValueError, match="absolute value"):
        c[-8]
    with pytest.raises(IndexError):
        c[7]
    s = Subset(Range(10), [7, 2, 5])
    assert len(s) == 3 and [s[i] for i in range(3)] == [7, 2, 5]
    assert StackDataset(a, Range(3))[2] == (2, 2)
    assert StackDataset(p=a, q=Range(3))[1] == {"p": 1, "q": 1}
    with pytest.raises(ValueError, match="Size mismatch"):
        StackDataset(a, b)


def test_chain_dataset():
    chained = ShardedStream(2) + ShardedStream(3)
    assert isinstance(chained, ChainDataset) and len(chained) == 5
    assert list(chained) == [0, 1, 0, 1, 2]


@pytest.mark.parametrize("lengths, sizes", [([3, 7], [3, 7]), ([0.3, 0.7], [3, 7]),
                                            ([0.34, 0.33, 0.33], [4, 3, 3]),
                                            ([0.5, 0.5], [5, 5])])
def test_random_split_sizes_and_cover(lengths, sizes):
    parts = random_split(Range(10), lengths, generator=ember.Generator().manual_seed(1))
    assert [len(p) for p in parts] == sizes
    items = sorted(p[i] for p in parts for i in range(len(p)))
    assert items == list(range(10))


def test_random_split_reproducible():
    def split(seed):
        parts = random_split(Range(20), [5, 15], generator=ember.Generator().manual_seed(seed))
        return [list(p.indices) for p in parts]
    assert split(3) == split(3)
    assert split(3) != split(4)
    ember.manual_seed(7)
    a = [list(p.indices) for p in random_split(Range(20), [10, 10])]
    ember.manual_seed(7)
    b = [list(p.indices) for p in random_split(Range(20), [10, 10])]
    assert a == b


@pytest.mark.parametrize("lengths, match", [([3, 3], "Sum of input lengths"),
                                            ([1.5, -0.5], "not between 0 and 1"),
                                            ([-1, 11], "non-negative")])
def test_random_split_errors(lengths, match):
    with pytest.raises(ValueError, match=match):
        random_split(Range(10), lengths)


# ----- samplers ------------------------------------------------------------------------------


def test_batch_sampler():
    seq = SequentialSampler(range(10))
    assert list(BatchSampler(seq, 3, False)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert list(BatchSampler(seq, 3, True)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(BatchSampler(seq, 3, False)) == 4 and len(BatchSampler(seq, 3, True)) == 3


def test_random_sampler_is_a_permutation_and_reproducible():
    g = ember.Generator().manual_seed(5)
    order = list(RandomSampler(range(10), generator=g))
    assert sorted(order) == list(range(10)) and order != list(range(10))
    assert list(RandomSampler(range(10), generator=ember.Generator().manual_seed(5))) == order
    ember.manual_seed(1)
    a = list(RandomSampler(range(10)))
    b = list(RandomSampler(range(10)))  # the default generator moved on: a new order
    ember.manual_seed(1)
    assert list(RandomSampler(range(10))) == a and a != b


def test_random_sampler_num_samples():
    s = list(RandomSampler(range(10), num_samples=25))
    assert len(s) == 25 and sorted(s[:10]) == list(range(10)) and sorted(s[10:20]) == \
        list(range(10))
    counts = np.bincount(s, minlength=10)
    assert counts.min() >= 2 and counts.max() <= 3
    r = list(RandomSampler(range(4), replacement=True, num_samples=100))
    assert len(r) == 100 and set(r) <= {0, 1, 2, 3} and len(set(r)) == 4


def test_subset_and_weighted_samplers():
    assert sorted(SubsetRandomSampler([3, 8, 5])) == [3, 5, 8]
    assert list(WeightedRandomSampler([0.0, 0.0, 1.0], 6)) == [2] * 6
    w = list(WeightedRandomSampler([1.0, 0.0, 1.0, 1.0], 3, replacement=False))
    assert sorted(w) == [0, 2, 3]


@pytest.mark.parametrize("make, exc, match", [
    (lambda: RandomSampler(range(3), replacement=1), TypeError, "replacement should be"),
    (lambda: RandomSampler(range(3), num_samples=0), ValueError, "num_samples should be"),
    (lambda: WeightedRandomSampler([1.0], 0), ValueError, "num_samples should be"),
    (lambda: WeightedRandomSampler([[1.0]], 1), ValueError, "weights should be a 1d"),
    (lambda: BatchSampler(range(3), 0, False), ValueError, "batch_size should be"),
    (lambda: BatchSampler(range(3), 2, 1), ValueError, "drop_last should be"),
])
def test_sampler_argument_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


# ----- collation -----------------------------------------------------------------------------


Point = collections.namedtuple("Point", "x y")


def test_default_collate_types():
    batch = default_collate([
        {"img": np.full((2, 2), i, np.uint8), "n": i, "f": i / 2, "s": f"s{i}", "ok": i > 0,
         "p": Point(ember.tensor([i, i]), np.float32(i)), "t": (i, [i, -i])}
        for i in range(3)])
    assert batch["img"].dtype == ember.uint8 and batch["img"].shape == (3, 2, 2)
    np.testing.assert_array_equal(_np(batch["img"])[:, 0, 0], [0, 1, 2])
    assert batch["n"].dtype == ember.int64 and _np(batch["n"]).tolist() == [0, 1, 2]
    assert batch["f"].dtype == ember.float64  # like PyTorch, not the default dtype
    assert _np(batch["f"]).tolist() == [0.0, 0.5, 1.0]
    assert batch["s"] == ["s0", "s1", "s2"]
    assert batch["ok"].dtype == ember.bool and _np(batch["ok"]).tolist() == [False, True, True]
    assert isinstance(batch["p"], Point) and _np(batch["p"].x).tolist() == [[0, 0], [1, 1],
                                                                            [2, 2]]
    assert batch["p"].y.dtype == ember.float32
    assert isinstance(batch["t"], list)  # tuples become lists, as in PyTorch
    assert _np(batch["t"][0]).tolist() == [0, 1, 2]
    assert [_np(v).tolist() for v in batch["t"][1]] == [[0, 1, 2], [0, -1, -2]]


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match=r"equal size.*\(2,\) at entry 0 and \(3,\)"):
        default_collate([ember.zeros(2), ember.zeros(3)])
    with pytest.raises(TypeError, match="batch must contain tensors"):
        default_collate([object(), object()])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal"):
        default_collate([[1, 2], [1]])


def test_default_convert():
    out = default_convert({"a": np.arange(3), "b": (np.float32(1), "x"), "c": 5})
    assert isinstance(out["a"], ember.Tensor) and _np(out["a"]).tolist() == [0, 1, 2]
    assert isinstance(out["b"], list) and isinstance(out["b"][0], ember.Tensor)
    assert out["b"][1] == "x" and out["c"] == 5


# ----- DataLoader in the main process ---------------------------------------------------------


def test_sequential_batches_match_numpy_slices():
    x, y, ds = _xy(10)
    batches = list(DataLoader(ds, batch_size=4))
    assert len(batches) == 3
    for k, (xb, yb) in enumerate(batches):
        np.testing.assert_array_equal(_np(xb), x[4 * k:4 * k + 4])
        np.testing.assert_array_equal(_np(yb), y[4 * k:4 * k + 4])


@pytest.mark.parametrize("n, bs, drop_last", [(10, 4, False), (10, 4, True), (8, 4, True),
                                              (8, 4, False), (3, 5, False), (3, 5, True)])
def test_len_and_drop_last(n, bs, drop_last):
    loader = DataLoader(Range(n), batch_size=bs, drop_last=drop_last)
    batches = [_np(b).tolist() for b in loader]
    expect = n // bs if drop_last else math.ceil(n / bs)
    assert len(loader) == expect == len(batches)
    assert all(len(b) == bs for b in batches[:n // bs])


def test_shuffle_reproducible_and_complete():
    _, _, ds = _xy(12)
    ember.manual_seed(3)
    a = _labels(DataLoader(ds, batch_size=5, shuffle=True))
    a2 = _labels(DataLoader(ds, batch_size=5, shuffle=True))
    ember.manual_seed(3)
    b = _labels(DataLoader(ds, batch_size=5, shuffle=True))
    assert a == b and a != a2
    assert sorted(sum(a, [])) == list(range(12)) and sum(a, []) != list(range(12))
    g = lambda: ember.Generator().manual_seed(11)  # noqa: E731
    assert _labels(DataLoader(ds, batch_size=5, shuffle=True, generator=g())) == \
        _labels(DataLoader(ds, batch_size=5, shuffle=True, generator=g()))


def test_shuffle_differs_between_epochs():
    loader = DataLoader(Range(20), batch_size=20, shuffle=True)
    e1, e2 = (_np(next(iter(loader))).tolist() for _ in range(2))
    assert sorted(e1) == sorted(e2) == list(range(20)) and e1 != e2


def test_sampler_and_batch_sampler_and_collate_fn():
    _, _, ds = _xy(6)
    assert _labels(DataLoader(ds, batch_size=2, sampler=[5, 0, 3])) == [[5, 0], [3]]
    assert _labels(DataLoader(ds, batch_sampler=[[4, 1], [2], [0, 5, 3]])) == \
        [[4, 1], [2], [0, 5, 3]]
    got = list(DataLoader(Range(5), batch_size=2, collate_fn=lambda b: sum(b)))
    assert got == [1, 5, 4]


def test_batch_size_none_converts_single_samples():
    class Arrays(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.array([i, i + 1])
    out = list(DataLoader(Arrays(), batch_size=None))
    assert all(isinstance(o, ember.Tensor) for o in out)
    assert [_np(o).tolist() for o in out] == [[0, 1], [1, 2]]


def test_iterable_dataset_in_main_process():
    loader = DataLoader(ShardedStream(7), batch_size=3)
    assert [_np(b).tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(loader) == 3
    assert [_np(b).tolist() for b in DataLoader(ShardedStream(7), batch_size=3,
                                                drop_last=True)] == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(num_workers=-1), ValueError, "num_workers option should be non-negative"),
    (dict(timeout=-1), ValueError, "timeout option should be non-negative"),
    (dict(prefetch_factor=2), ValueError, "prefetch_factor option could only be specified"),
    (dict(num_workers=1, prefetch_factor=-1), ValueError, "prefetch_factor option should be"),
    (dict(persistent_workers=True), ValueError, "persistent_workers option needs"),
    (dict(shuffle=True, sampler=[0, 1]), ValueError, "sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], batch_size=2), ValueError, "batch_sampler option is mutually"),
    (dict(batch_sampler=[[0]], drop_last=True), ValueError, "batch_sampler option is mutually"),
    (dict(batch_size=None, drop_last=True), ValueError, "batch_size=None option disables"),
    (dict(multiprocessing_context="fork"), ValueError, "multiprocessing_context can only"),
    (dict(num_workers=1, multiprocessing_context="nope"), ValueError, "valid start method"),
    (dict(batch_size=0), ValueError, "batch_size should be a positive integer"),
])
def test_dataloader_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        DataLoader(Range(4), **kwargs)


@pytest.mark.parametrize("kwargs, match", [(dict(shuffle=True), "expected unspecified shuffle"),
                                           (dict(sampler=[0]), "expected unspecified sampler"),
                                           (dict(batch_sampler=[[0]]),
                                            "expected unspecified batch_sampler")])
def test_iterable_dataset_rejects_samplers(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(ShardedStream(4), **kwargs)


def test_attributes_frozen_after_init():
    loader = DataLoader(Range(4))
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 3


# ----- DataLoader with worker processes ------------------------------------------------------


def test_workers_give_the_same_batches_as_the_main_process():
    _, _, ds = _xy(23)
    g = lambda: ember.Generator().manual_seed(4)  # noqa: E731
    main = list(DataLoader(ds, batch_size=3, shuffle=True, generator=g()))
    work = list(DataLoader(ds, batch_size=3, shuffle=True, generator=g(), num_workers=2))
    assert len(main) == len(work) == 8
    for (xa, ya), (xb, yb) in zip(main, work):
        assert xb.dtype == ember.float32 and yb.dtype == ember.int64
        np.testing.assert_array_equal(_np(xa), _np(xb))
        np.testing.assert_array_equal(_np(ya), _np(yb))


def test_workers_respect_manual_seed_like_the_main_process():
    ember.manual_seed(9)
    a = _labels(DataLoader(_xy(10)[2], batch_size=4, shuffle=True))
    ember.manual_seed(9)
    b = _labels(DataLoader(_xy(10)[2], batch_size=4, shuffle=True, num_workers=2))
    assert a == b


def test_iterable_dataset_sharded_across_workers():
    loader = DataLoader(ShardedStream(10), batch_size=2, num_workers=2)
    # batches alternate between the workers (0 takes evens, 1 odds), each ending short
    assert [_np(b).tolist() for b in loader] == [[0, 2], [1, 3], [4, 6], [5, 7], [8], [9]]


def test_iterable_dataset_without_sharding_repeats_per_worker():
    loader = DataLoader(ShardedStream(3), batch_size=None, num_workers=2)
    # an unsharded copy would give each item twice; ShardedStream shards, so once each
    assert sorted(int(b) for b in loader) == [0, 1, 2]


def test_worker_exception_is_reraised_with_its_traceback():
    loader = DataLoader(FailsAt(5), batch_size=2, num_workers=2)
    with pytest.raises(ValueError) as info:
        list(loader)
    msg = str(info.value)
    assert "in DataLoader worker process" in msg and "sample 5 is broken" in msg
    assert "__getitem__" in msg and "Traceback" in msg


def test_worker_seeds_differ_and_are_reproducible():
    def run():
        ember.manual_seed(123)
        return list(DataLoader(WorkerFacts(), batch_size=2, num_workers=2))
    a, b = run(), run()
    ids = [int(v) for batch in a for v in _np(batch["id"])]
    assert ids == [0, 0, 1, 1, 0, 0, 1, 1]  # batches go round robin to the workers
    seeds = {int(i): int(s) for batch in a for i, s in zip(_np(batch["id"]), _np(batch["seed"]))}
    assert seeds[1] == seeds[0] + 1
    draws = [float(v) for batch in a for v in _np(batch["draw"])]
    assert draws[0] != draws[2] and len(set(draws)) == 8  # no two workers share a stream
    np_draws = [float(v) for batch in a for v in _np(batch["np"])]
    assert np_draws[0] != np_draws[2]
    assert draws == [float(v) for batch in b for v in _np(batch["draw"])]
    assert {int(p) for batch in a for p in _np(batch["pid"])}.isdisjoint({os.getpid()})


def test_worker_init_fn_runs_in_each_worker():
    out = [_np(b).tolist() for b in DataLoader(ReadsInitValue(), batch_size=1, num_workers=2,
                                               worker_init_fn=_set_init_value)]
    assert out == [[100], [101], [100], [101]]
    assert get_worker_info() is None  # the main process is not a worker


def test_persistent_workers_keep_processes_across_epochs():
    loader = DataLoader(WorkerFacts(), batch_size=4, num_workers=2, persistent_workers=True)
    pids1 = {int(p) for b in loader for p in _np(b["pid"])}
    pids2 = {int(p) for b in loader for p in _np(b["pid"])}
    assert len(pids1) == 2 and pids1 == pids2
    it = iter(loader)
    next(it)  # abandon an epoch half way: the next epoch must still be complete and correct
    assert len(list(loader)) == 2
    loader._iterator._shutdown_workers()


def test_breaking_out_shuts_workers_down():
    it = iter(DataLoader(Range(50), batch_size=2, num_workers=2))
    next(it)
    workers = list(it._workers)
    del it
    for w in workers:
        w.join(timeout=5)
        assert not w.is_alive()


def test_worker_timeout():
    loader = DataLoader(Sleepy(), batch_size=1, num_workers=1, timeout=0.3)
    t = time.monotonic()
    with pytest.raises(RuntimeError, match="timed out after 0.3 seconds"):
        next(iter(loader))
    assert time.monotonic() - t < 2.5


def test_worker_that_dies_is_reported():
    with pytest.raises(RuntimeError, match=r"exited unexpectedly"):
        list(DataLoader(DiesAt(), batch_size=1, num_workers=2))


def test_unpicklable_batch_is_an_error_not_a_hang():
    loader = DataLoader(Range(4), batch_size=2, num_workers=1, collate_fn=lambda b: lambda: b)
    with pytest.raises(Exception, match="sending the batch"):
        list(loader)


def test_tensor_dataset_fast_path_equals_per_sample_collation():
    x = ember.randn(9, 3, requires_grad=True)
    ds = TensorDataset(x, ember.arange(9))
    sampler = [8, 0, 3, -1, 4]
    fast = list(DataLoader(ds, batch_size=2, sampler=sampler))
    slow = list(DataLoader(ds, batch_size=2, sampler=sampler,
                           collate_fn=lambda b: default_collate(b)))
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(_np(xf), _np(xs))
        np.testing.assert_array_equal(_np(yf), _np(ys))
    fast[0][0].sum().backward()  # the batch stays connected to the dataset's tensor
    np.testing.assert_array_equal(_np(x.grad).sum(axis=1), [3, 0, 0, 0, 0, 0, 0, 0, 3])
    with pytest.raises(IndexError, match="out of bounds"):
        list(DataLoader(TensorDataset(ember.arange(3)), batch_size=2, sampler=[0, 3]))


def test_persistent_workers_recover_after_an_error():
    loader = DataLoader(FailsAt(1), batch_size=2, num_workers=1, persistent_workers=True)
    for _ in range(2):  # each epoch fails the same way; the loader restarts its workers
        with pytest.raises(ValueError, match="sample 1 is broken"):
            list(loader)
    loader._iterator._shutdown_workers()
