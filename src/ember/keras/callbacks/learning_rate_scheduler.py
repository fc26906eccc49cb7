"""``keras.callbacks.LearningRateScheduler``: set the learning rate from ``schedule(epoch, lr)``
at the start of every epoch."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .callback import Callback
from .reduce_lr_on_plateau import _lr_log_key, _optimizers


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate to ``schedule(epoch, lr)`` before each epoch.

    ``schedule`` takes the epoch index (from 0) and the current learning rate and returns
    the new one as a float; a one-argument ``schedule(epoch)`` (Keras 1) is accepted too.

    Example::

        def scheduler(epoch, lr):
            return lr if epoch < 10 else lr * math.exp(-0.1)
        model.fit(x, y, epochs=15, callbacks=[LearningRateScheduler(scheduler)])
    """

    def __init__(self, schedule: Callable, verbose: int = 0) -> None:
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _update_optimizer_lr(self, optimizer, epoch: int) -> float:
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        try:
            learning_rate = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:  # the old one-argument API
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError(f"The output of the `schedule` function should be a float. "
                             f"Got: {learning_rate}")
        optimizer.learning_rate = float(learning_rate)
        return learning_rate

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        opts = _optimizers(self.model)
        for opt in opts:
            lr = self._update_optimizer_lr(opt, epoch)
            if self.verbose > 0:
                which = f"{opt.name} " if len(opts) > 1 else ""
                print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting {which}learning "
                      f"rate to {lr}.")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        opts = _optimizers(self.model)
        for opt in opts:
            logs[_lr_log_key(opt, len(opts) > 1)] = float(opt.learning_rate)
