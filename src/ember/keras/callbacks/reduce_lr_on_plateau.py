"""``keras.callbacks.ReduceLROnPlateau``: cut the learning rate when a metric plateaus."""
from __future__ import annotations

import warnings

import numpy as np

from .monitor_callback import MonitorCallback


def _optimizers(model) -> list:
    opt = getattr(model, "optimizer", None)
    if opt is None:
        raise ValueError(f"{type(model).__name__} has no optimizer: compile the model before "
                         f"fit() with a learning-rate callback")
    inner = getattr(opt, "optimizers", None)  # a multi-optimizer holds several
    return list(inner) if isinstance(inner, (list, tuple)) else [opt]


def _lr_log_key(opt, many: bool) -> str:
    return f"learning_rate_{opt.name}" if many else "learning_rate"


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement.

    Args:
        factor: ``new_lr = lr * factor`` (must be < 1).
        min_delta: smallest change of ``monitor`` that counts as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: lower bound of the learning rate.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, **kwargs) -> None:
        if "epsilon" in kwargs:  # the Keras 2 name of min_delta
            min_delta = kwargs.pop("epsilon")
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor}")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected keyword arguments "
                            f"{sorted(kwargs)}")
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self) -> None:
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def _reduce_optimizer_lr(self, optimizer, epoch: int, name: str = "") -> bool:
        old_lr = float(optimizer.learning_rate)
        # Keras compares against a float32 min_lr (its learning rate is a float32 variable),
        # so an lr already at min_lr up to float32 rounding is left alone
        if old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            optimizer.learning_rate = new_lr
            if self.verbose > 0:
                name_str = f" {name}" if name else ""
                print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing{name_str} learning "
                      f"rate to {new_lr}.")
            return True
        return False

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        opts = _optimizers(self.model)
        for opt in opts:
            logs[_lr_log_key(opt, len(opts) > 1)] = float(opt.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                          f"which is not available. Available metrics are: "
                          f"{','.join(list(logs.keys()))}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                reduced = False
                for opt in opts:
                    name = getattr(opt, "name", "") if len(opts) > 1 else ""
                    reduced = self._reduce_optimizer_lr(opt, epoch, name) or reduced
                if reduced:
                    self.cooldown_counter = self.cooldown
                    self.wait = 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0
