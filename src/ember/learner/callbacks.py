"""The Learner's callbacks beyond the engine's: the training-position counter that schedules
read, the fastai-style progress display (a bar per epoch, a results table), and fastai's
tracker callbacks (early stopping, saving the best model) and CSV logger."""
from __future__ import annotations

import csv
import os
import sys
from typing import Callable

import numpy as np

from ..train.events import Callback, CancelFitException
from ..train.progress import ProgressBar

__all__ = ["TrainEvalCallback", "ProgressCallback", "TrackerCallback", "EarlyStoppingCallback",
           "SaveModelCallback", "CSVLogger", "print_table_row"]


class TrainEvalCallback(Callback):
    """Counts training batches: ``learn.train_iter`` (batches so far in this fit) and
    ``learn.pct_train`` (the position in [0, 1) that schedules read)."""

    order = -10
    run_valid = False

    def before_fit(self) -> None:
        learn = self.learn
        learn.train_iter, learn.pct_train = 0, 0.0

    def before_train(self) -> None:
        learn = self.learn
        learn.pct_train = learn.epoch / learn.n_epoch

    def after_batch(self) -> None:
        learn = self.engine
        n_iter = learn.n_iter
        if n_iter:
            learn.pct_train += 1.0 / (n_iter * learn.n_epoch)
        learn.train_iter += 1


class ProgressCallback(ProgressBar):
    """The engine's tqdm bar over each epoch's training batches, erased when the epoch's
    training ends so that the Learner's results table stays readable."""

    name = "progress"

    def __init__(self, file=None, refresh: float = 0.1) -> None:
        super().__init__(verbose=1, file=file, refresh=refresh)

    def before_epoch(self) -> None:
        pass  # the table row says which epoch it was

    def _open(self) -> None:
        super()._open()
        if self.bar is not None:
            self.bar.leave = False

    def _close(self, logs: dict) -> None:
        # the results table reports each epoch: only a live bar is shown, then erased; no
        # summary line goes to logs and pipes
        if self.bar is not None:
            super()._close({})

    def after_train(self) -> None:
        if self.learn.phase == "fit":
            self._close({})

    def after_epoch(self) -> None:
        pass


def print_table_row(log: list, names: list, header: bool, file=None) -> None:
    """Print one row of fastai's results table (and the header first when ``header``):
    columns at least 8 wide, 2 spaces apart, floats with 6 decimals."""
    out = file if file is not None else sys.stdout
    cols = [n + " " * (8 - len(n)) if len(n) < 8 else n for n in names]
    if header:
        print("  ".join(cols), file=out, flush=True)
    cells = []
    for v, col in zip(log, cols):
        t = "#na#" if v is None else f"{v:.6f}" if isinstance(v, float) else str(v)
        cells.append(t + " " * (2 + len(col) - len(t)))
    print("".join(cells).rstrip(), file=out, flush=True)


class TrackerCallback(Callback):
    """Follows ``monitor`` (a column of the results table, e.g. "valid_loss", "accuracy")
    and sets ``new_best`` after each epoch; lower is better for losses and errors, higher
    for the rest, unless ``comp`` (``np.less`` / ``np.greater``) says otherwise."""

    order = 60

    def __init__(self, monitor: str = "valid_loss", comp: Callable | None = None,
                 min_delta: float = 0., reset_on_fit: bool = True) -> None:
        if comp is None:
            comp = np.less if "loss" in monitor or "error" in monitor else np.greater
        if comp is np.less:
            min_delta *= -1
        self.monitor, self.comp, self.min_delta = monitor, comp, min_delta
        self.reset_on_fit, self.best, self.new_best = reset_on_fit, None, False

    def before_fit(self) -> None:
        if self.reset_on_fit or self.best is None:
            self.best = float("inf") if self.comp is np.less else -float("inf")
        names = list(self.learn.recorder.metric_names[1:])
        if self.monitor not in names:
            raise ValueError(f"{type(self).__name__}: monitor={self.monitor!r} is not a column "
                             f"of the results table {names}")
        self.idx = names.index(self.monitor)

    def after_epoch(self) -> None:
        val = self.learn.recorder.values[-1][self.idx]
        self.new_best = val is not None and bool(self.comp(val - self.min_delta, self.best))
        if self.new_best:
            self.best = val


class EarlyStoppingCallback(TrackerCallback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs."""

    order = TrackerCallback.order + 3

    def __init__(self, monitor: str = "valid_loss", comp: Callable | None = None,
                 min_delta: float = 0., patience: int = 1, reset_on_fit: bool = True) -> None:
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        self.patience = patience

    def before_fit(self) -> None:
        self.wait = 0
        super().before_fit()

    def after_epoch(self) -> None:
        super().after_epoch()
        if self.new_best:
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            print(f"No improvement since epoch {self.learn.epoch - self.wait}: early stopping")
            raise CancelFitException()


class SaveModelCallback(TrackerCallback):
    """Save the model whenever ``monitor`` improves (``fname``), and load the best one at the
    end of training; or save every ``every_epoch`` epochs, or only ``at_end``."""

    order = TrackerCallback.order + 1

    def __init__(self, monitor: str = "valid_loss", comp: Callable | None = None,
                 min_delta: float = 0., fname: str = "model", every_epoch: int | bool = False,
                 at_end: bool = False, with_opt: bool = False,
                 reset_on_fit: bool = True) -> None:
        super().__init__(monitor, comp, min_delta, reset_on_fit)
        self.fname, self.every_epoch, self.at_end, self.with_opt = \
            fname, every_epoch, at_end, with_opt
        self.last_saved_path = None

    def _save(self, name: str) -> None:
        self.last_saved_path = self.learn.save(name, with_opt=self.with_opt)

    def after_epoch(self) -> None:
        if self.every_epoch:
            if self.learn.epoch % int(self.every_epoch) == 0:
                self._save(f"{self.fname}_{self.learn.epoch}")
            return
        super().after_epoch()
        if self.new_best:
            print(f"Better model found at epoch {self.learn.epoch} with {self.monitor} value: "
                  f"{self.best}.")
            self._save(self.fname)

    def after_fit(self) -> None:
        if self.at_end:
            self._save(self.fname)
        elif not self.every_epoch and self.last_saved_path is not None:
            self.learn.load(self.fname, with_opt=self.with_opt)


class CSVLogger(Callback):
    """Write the results table to ``learn.path/fname`` as CSV, one row per epoch."""

    order = 60

    def __init__(self, fname: str = "history.csv", append: bool = False) -> None:
        self.fname, self.append = fname, append
        self.path = None  # learn.path / fname, once a fit has started

    def read_log(self) -> list:
        """The rows written so far, as lists of strings (header first)."""
        if self.path is None:
            raise ValueError("CSVLogger.read_log: nothing written yet (no fit has run)")
        with open(self.path, newline="") as f:
            return list(csv.reader(f))

    def before_fit(self) -> None:
        os.makedirs(self.learn.path, exist_ok=True)
        self.path = self.learn.path / self.fname
        fresh = not (self.append and self.path.exists())
        self.file = open(self.path, "a" if self.append else "w", newline="")
        self.writer = csv.writer(self.file)
        if fresh:
            self.writer.writerow(self.learn.recorder.metric_names)
            self.file.flush()
        self.old_logger, self.learn.logger = self.learn.logger, self._add_row

    def _add_row(self, log: list) -> None:
        self.writer.writerow(["" if v is None else v for v in log])
        self.file.flush()
        self.old_logger(log)

    def after_fit(self) -> None:
        self.file.close()
        self.learn.logger = self.old_logger
