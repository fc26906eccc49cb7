"""``keras.callbacks.History``: records every epoch's logs; ``fit`` returns it."""
from __future__ import annotations

from .callback import Callback


class History(Callback):
    """Records the epoch logs: ``history.history["loss"][i]`` is epoch ``history.epoch[i]``'s.

    Every ``fit`` adds one (it becomes ``model.history``), so users rarely create it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)
        # set here, not only in set_model, so model.history is the latest run's record
        if self.model is not None:
            self.model.history = self
