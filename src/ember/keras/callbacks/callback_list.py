"""``keras.callbacks.CallbackList``: calls every hook on each callback in order."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np

from .callback import Callback
from .history import History


def _pythonify_logs(logs: dict | None) -> dict:
    """Flatten nested dicts and turn scalar tensors/arrays into Python floats, as Keras does,
    so callbacks can format, compare and serialise the values."""
    result: dict = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            result.update(_pythonify_logs(value))
            continue
        data = getattr(value, "_data", None)  # an ember Tensor
        if data is not None:
            value = np.asarray(data)
        try:
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.reshape(())  # float() of a 1-element vector is deprecated
            value = float(value)
        except (TypeError, ValueError):
            pass  # a vector or a string stays as it is (CSVLogger writes it as a list)
        result[key] = value
    return result


class CallbackList(Callback):
    """A list of callbacks called as one: ``cbs.on_epoch_end(3, logs)`` calls each in turn.

    ``add_history=True`` appends a ``History`` (unless one is present) and makes it
    ``model.history``. ``add_progbar`` is accepted for Keras compatibility: ember's training
    engine draws the progress bar itself, so no callback is added. ``**params`` are passed to
    every callback's ``set_params``.
    """

    def __init__(self, callbacks: Iterable[Callback] | Callback | None = None,
                 add_history: bool = False, add_progbar: bool = False, model: Any = None,
                 **params: Any) -> None:
        super().__init__()
        self.callbacks: list[Callback] = _flatten(callbacks)
        self._in_begin_end_block_count = 0
        self._history: History | None = None
        for cb in self.callbacks:
            if isinstance(cb, History):
                self._history = cb
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        self.set_model(model)
        self.set_params(params)

    def append(self, callback: Callback) -> None:
        """Add a callback at the end (it gets this list's model and params)."""
        _check_callback(callback, len(self.callbacks))
        self.callbacks.append(callback)
        if self.model is not None:
            callback.set_model(self.model)
        if self.params:
            callback.set_params(self.params)

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def set_params(self, params: dict) -> None:
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def set_model(self, model: Any) -> None:
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    def _on_begin(self) -> None:
        self._in_begin_end_block_count += 1

    def _on_end(self) -> None:
        self._in_begin_end_block_count -= 1
        if self._in_begin_end_block_count < 0:
            self._in_begin_end_block_count = 0
            raise ValueError("CallbackList: an on_*_end hook was called without its "
                             "on_*_begin (on_train/test/predict_begin must come first)")

    # every hook hands the same pythonified dict to each callback in turn, so a value one
    # callback adds (ReduceLROnPlateau's "learning_rate") is seen by the next (History), as
    # in Keras
    def _call(self, hook: str, *args: Any, logs: dict | None = None) -> None:
        logs = _pythonify_logs(logs)
        for cb in self.callbacks:
            getattr(cb, hook)(*args, logs)

    def _call_batch(self, hook: str, batch: int, logs: dict | None) -> None:
        # batch hooks get logs by keyword, as Keras calls them (LambdaCallback's
        # documented signature for them is ``f(batch, logs=...)``)
        logs = _pythonify_logs(logs)
        for cb in self.callbacks:
            getattr(cb, hook)(batch, logs=logs)

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._call_batch("on_batch_begin", batch, logs)

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._call_batch("on_batch_end", batch, logs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._call("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._call_batch("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._call_batch("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._call_batch("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._call_batch("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._call_batch("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._call_batch("on_predict_batch_end", batch, logs)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._on_begin()
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        self._call("on_train_end", logs=logs)
        self._on_end()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._on_begin()
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        self._call("on_test_end", logs=logs)
        self._on_end()

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._on_begin()
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs: dict | None = None) -> None:
        self._call("on_predict_end", logs=logs)
        self._on_end()


def _check_callback(cb: Any, index: int) -> None:
    if not all(callable(getattr(cb, h, None))
               for h in ("set_model", "set_params", "on_epoch_end", "on_train_batch_end")):
        raise TypeError(f"CallbackList: callbacks[{index}] is a {type(cb).__name__}, expected "
                        f"a keras.callbacks.Callback (an object with set_model, set_params "
                        f"and the on_* hooks)")


def _flatten(callbacks: Any) -> list:
    """Keras accepts a callback, a list, or nested lists/tuples of them."""
    def walk(obj: Any) -> list:
        if obj is None:
            return []
        if isinstance(obj, (list, tuple)):
            return [cb for item in obj for cb in walk(item)]
        return [obj]

    out = walk(callbacks)
    for i, cb in enumerate(out):
        _check_callback(cb, i)
    return out
