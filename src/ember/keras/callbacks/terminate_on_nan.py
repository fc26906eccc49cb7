"""``keras.callbacks.TerminateOnNaN``: stop training when the loss becomes NaN or infinite."""
from __future__ import annotations

import numpy as np

from .callback import Callback


class TerminateOnNaN(Callback):
    """Stop ``fit`` at the first batch whose loss is NaN or Inf.

    By default it sets ``model.stop_training`` (the run ends normally, ``on_train_end``
    hooks run); ``raise_error=True`` raises ``RuntimeError`` at once instead, so no other
    callback's cleanup runs (a BackupAndRestore backup is kept, for example).
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and (np.isnan(loss) or np.isinf(loss)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                                   f"{loss}. Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
