"""What runs inside a DataLoader worker process, and what it sends back.

A worker receives ``(epoch, task index, sample indices)`` on its own index queue, fetches and
collates the batch, and puts ``(epoch, task index, batch)`` on the shared result queue,
pickled by the worker itself so that a batch that can't be pickled becomes an error in the
main process instead of a hang. Tensors travel as NumPy arrays (``Tensor.__reduce__``).
An error becomes an :class:`ExceptionWrapper` carrying the worker's traceback text, re-raised
by the main process.
"""
from __future__ import annotations

import os
import pickle
import queue
import random
import sys
import traceback

import numpy as np

__all__ = ["WorkerInfo", "get_worker_info"]

# how often (seconds) a waiting worker checks that the main process is still alive
_POLL_S = 1.0

_worker_info = None


class WorkerInfo:
    """Facts about the current worker: ``id``, ``num_workers``, ``seed`` and ``dataset`` (this
    process's copy of the dataset)."""

    __initialized = False

    def __init__(self, **kwargs) -> None:
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.__keys = tuple(kwargs)
        self.__initialized = True

    def __setattr__(self, key, val) -> None:
        if self.__initialized:
            raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")
        super().__setattr__(key, val)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={getattr(self, k)}" for k in self.__keys)
        return f"{type(self).__name__}({items})"


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process: its :class:`WorkerInfo`; in the main process: None.

    An ``IterableDataset`` uses it to give each worker its own shard::

        def __iter__(self):
            info = get_worker_info()
            start, step = (0, 1) if info is None else (info.id, info.num_workers)
            return iter(self.items[start::step])
    """
    return _worker_info


class KeyErrorMessage(str):
    """KeyError quotes its message (repr); this str prints it as written."""

    def __repr__(self) -> str:
        return str(self)


class ExceptionWrapper:
    """An exception caught in a worker, with its traceback as text (tracebacks don't pickle)."""

    def __init__(self, exc_info=None, where: str = "in background") -> None:
        exc_info = exc_info or sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where
        try:  # a class the main process can't import would make the result unpicklable
            pickle.dumps(self.exc_type)
        except Exception:
            self.exc_type = RuntimeError

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = KeyErrorMessage(msg)
        try:
            exc = self.exc_type(msg)
        except Exception:  # an exception class whose constructor wants other arguments
            raise RuntimeError(msg) from None
        raise exc


class _IterableDatasetStopIteration:
    """Sent by a worker whose copy of an IterableDataset is exhausted."""

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id


class _ResumeIteration:
    """Sent to persistent workers at the start of a new epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch


class _MapFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last) -> None:
        from ._collate import default_collate
        from .dataset import TensorDataset
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.getitems = getattr(dataset, "__getitems__", None) if auto_collation else None
        # default_collate of TensorDataset rows is the tensors indexed by the batch's indices:
        # one gather per tensor instead of a getitem per sample and a stack (~10x faster)
        self.gather = auto_collation and type(dataset) is TensorDataset and \
            collate_fn is default_collate and len(dataset.tensors) > 0

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        if self.gather:
            return _gather_rows(self.dataset.tensors, index)
        if self.getitems is not None:
            data = self.getitems(index)
        else:
            data = [self.dataset[i] for i in index]
        return self.collate_fn(data)


def _gather_rows(tensors, index) -> list:
    from ...tensor import Tensor
    idx = np.asarray(index, dtype=np.int64)
    out = []
    for t in tensors:
        if t.requires_grad or t._dev.type != "cpu":
            out.append(t[Tensor._wrap(idx)])  # differentiable, any device
        else:
            n = t.shape[0]
            if idx.size and (idx.min() < -n or idx.max() >= n):
                bad = int(idx[(idx < -n) | (idx >= n)][0])
                raise IndexError(f"index {bad} is out of bounds for dimension 0 with size {n}")
            out.append(Tensor._wrap(t._data[idx]))
    return out


class _IterableFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last) -> None:
        self.dataset_iter = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.dataset_iter))
        data = []
        for _ in index:
            try:
                data.append(next(self.dataset_iter))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(index)):
            raise StopIteration
        return self.collate_fn(data)


def make_fetcher(iterable: bool, dataset, auto_collation, collate_fn, drop_last):
    cls = _IterableFetcher if iterable else _MapFetcher
    return cls(dataset, auto_collation, collate_fn, drop_last)


def numpy_seed(base_seed: int, worker_id: int) -> int:
    """A 32-bit seed for NumPy's global RNG in a worker, mixed from the base seed and the id
    (so workers never share NumPy's random stream, a classic augmentation bug)."""
    return int(np.random.SeedSequence([worker_id, base_seed]).generate_state(1)[0])


def _dumps(item) -> bytes:
    try:
        return pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        epoch, idx, data = item
        where = f"in DataLoader worker process {_worker_info.id} (sending the batch of " \
                f"type {type(data).__name__} to the main process)"
        return pickle.dumps((epoch, idx, ExceptionWrapper(where=where)))


def worker_loop(iterable, dataset, index_queue, data_queue, auto_collation, collate_fn,
                drop_last, base_seed, init_fn, worker_id, num_workers, parent_pid) -> None:
    """The body of one worker process; returns when it reads None or the parent dies."""
    global _worker_info
    from ... import manual_seed
    seed = base_seed + worker_id
    random.seed(seed)
    manual_seed(seed)
    np.random.seed(numpy_seed(base_seed, worker_id))
    _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
    where = f"in DataLoader worker process {worker_id}"

    init_error = None
    fetcher = None
    try:
        if init_fn is not None:
            init_fn(worker_id)
        fetcher = make_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last)
    except Exception:
        init_error = ExceptionWrapper(where=where)

    ended = False
    try:
        while True:
            try:
                task = index_queue.get(timeout=_POLL_S)
            except queue.Empty:
                if os.getppid() != parent_pid:  # orphaned: the main process is gone
                    return
                continue
            if task is None:
                return
            if isinstance(task, _ResumeIteration):
                ended = False
                if init_error is None:
                    try:
                        fetcher = make_fetcher(iterable, dataset, auto_collation, collate_fn,
                                               drop_last)
                    except Exception:
                        init_error = ExceptionWrapper(where=where)
                continue
            if ended:
                continue  # the main process stops asking once it has seen the end marker
            epoch, idx, index = task
            if init_error is not None:
                data, init_error = init_error, None
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    if not iterable:
                        data = ExceptionWrapper(where=where)
                    else:
                        data = _IterableDatasetStopIteration(worker_id)
                        ended = True
                except Exception:
                    data = ExceptionWrapper(where=where)
            data_queue.put(_dumps((epoch, idx, data)))
            del data
    except KeyboardInterrupt:
        pass  # the main process handles Ctrl-C and shuts the workers down
    finally:
        # results nobody will read must not keep this process alive at exit
        data_queue.cancel_join_thread()
        data_queue.close()
