"""``keras.callbacks.Callback``: the base class of every training callback (Keras 3's API)."""
from __future__ import annotations

from typing import Any, Callable


def _default(method: Callable) -> Callable:
    """Mark a hook as the base class's no-op (Keras's ``utils.default``): a training loop can
    skip computing logs for hooks that no callback overrides. A subclass method or a function
    set on the instance (LambdaCallback) lacks the mark."""
    method._is_default = True
    return method


def is_default(method: Any) -> bool:
    """Whether ``method`` (e.g. ``cb.on_train_batch_end``) is the base class's no-op hook."""
    return getattr(method, "_is_default", False)


class Callback:
    """Base class of callbacks: override the ``on_*`` hooks that a training run should call.

    ``fit``/``evaluate``/``predict`` call the hooks through a ``CallbackList``; ``self.model``
    is the model being trained and ``self.params`` the run's parameters (``epochs``,
    ``steps``, ``verbose``). Example::

        class PrintLoss(Callback):
            def on_epoch_end(self, epoch, logs=None):
                print(epoch, logs["loss"])
    """

    def __init__(self) -> None:
        self.params: dict | None = None
        self._model: Any = None

    def set_params(self, params: dict) -> None:
        self.params = params

    def set_model(self, model: Any) -> None:
        self._model = model

    @property
    def model(self) -> Any:
        return self._model

    @model.setter
    def model(self, model: Any) -> None:
        self._model = model

    # Keras 1/2 names, kept because old callbacks still override them; the train-batch hooks
    # call them so an override of either name is honoured
    @_default
    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Alias of ``on_train_batch_begin`` (backwards compatibility)."""

    @_default
    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Alias of ``on_train_batch_end`` (backwards compatibility)."""

    @_default
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the start of an epoch of ``fit``."""

    @_default
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Called at the end of an epoch; ``logs`` holds the epoch's metrics (validation
        metrics prefixed ``val_``), e.g. ``{"loss": 0.2, "accuracy": 0.7}``."""

    @_default
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before a training batch (``batch`` counts from 0 within the epoch)."""
        self.on_batch_begin(batch, logs=logs)

    @_default
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after a training batch; ``logs`` holds the metrics averaged so far."""
        self.on_batch_end(batch, logs=logs)

    @_default
    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before a batch of ``evaluate`` (and of validation in ``fit``)."""

    @_default
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after a batch of ``evaluate`` (and of validation in ``fit``)."""

    @_default
    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Called before a batch of ``predict``."""

    @_default
    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after a batch of ``predict``."""

    @_default
    def on_train_begin(self, logs: dict | None = None) -> None:
        """Called once at the start of ``fit``."""

    @_default
    def on_train_end(self, logs: dict | None = None) -> None:
        """Called once at the end of ``fit``; ``logs`` are the last epoch's."""

    @_default
    def on_test_begin(self, logs: dict | None = None) -> None:
        """Called at the start of ``evaluate`` or of a validation pass."""

    @_default
    def on_test_end(self, logs: dict | None = None) -> None:
        """Called at the end of ``evaluate`` or of a validation pass."""

    @_default
    def on_predict_begin(self, logs: dict | None = None) -> None:
        """Called at the start of ``predict``."""

    @_default
    def on_predict_end(self, logs: dict | None = None) -> None:
        """Called at the end of ``predict``."""


def save_due_on_batch(cb, batch: int) -> bool:
    """Keras's counting for ``save_freq=<int>`` (ModelCheckpoint, BackupAndRestore): add the
    batches seen since the last call (batch numbers restart at 0 each epoch) to
    ``cb._batches_seen_since_last_saving``; True, and the count restarts, once it reaches
    ``cb.save_freq``."""
    if cb.save_freq == "epoch":
        return False
    last = cb._last_batch_seen
    cb._batches_seen_since_last_saving += batch + 1 if last is None or batch <= last \
        else batch - last
    cb._last_batch_seen = batch
    if cb._batches_seen_since_last_saving >= cb.save_freq:
        cb._batches_seen_since_last_saving = 0
        return True
    return False
