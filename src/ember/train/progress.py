"""``ProgressBar``: the engine's live progress display (tqdm), in Keras's three verbosities.

- ``verbose=1``: "Epoch 3/10", then a bar per epoch with steps done/total, elapsed time, ETA,
  speed, and the running loss and metrics (refreshed at most every ``refresh`` seconds);
  when the epoch ends the bar's last line shows the epoch's logs, validation included. When
  the output is not a terminal or a notebook, only that last line is written.
- ``verbose=2``: one line per epoch: ``45/45 - 1s - 21ms/step - loss: 0.3120 - val_loss: ...``.
- ``verbose=0``: nothing (don't attach it).

Outside ``fit`` (``Engine.validate`` / ``predict``) a bar follows the batches at ``verbose=1``
and ``verbose=2`` prints the final line.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from .events import Callback

__all__ = ["ProgressBar", "format_logs"]


def _format_value(v) -> str:
    if isinstance(v, np.ndarray) and v.ndim:
        return "[" + " ".join(_format_value(x) for x in v.ravel()) + "]"
    v = float(v)
    return f"{v:.4f}" if v == 0 or 1e-3 <= abs(v) < 1e5 else f"{v:.4e}"


def format_logs(logs: dict) -> str:
    """``loss: 0.3120 - accuracy: 0.9012`` as Keras's progress bar writes it."""
    return " - ".join(f"{k}: {_format_value(v)}" for k, v in logs.items())


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("ember.train's progress bar needs tqdm: pip install tqdm "
                          "(or pass verbose=0)") from None
    return tqdm


def _time(seconds: float) -> str:
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s"
    return f"{seconds * 1e3:.0f}ms"


class ProgressBar(Callback):
    """Shows training progress (see the module doc); ``file`` defaults to ``sys.stdout``;
    ``sort`` lists the logs alphabetically (Keras's order) instead of as recorded.

    On a terminal or in a notebook the bar is live (tqdm); when the output is a file or a
    pipe (a log, CI) only each epoch's final line is written, as Keras does.
    """

    order = 80

    def __init__(self, verbose: int = 1, file=None, refresh: float = 0.1,
                 sort: bool = False) -> None:
        if verbose not in (1, 2):
            raise ValueError(f"ProgressBar: verbose must be 1 or 2, got {verbose!r}")
        self.verbose, self.file, self.refresh, self.sort = verbose, file, refresh, sort
        self.bar = None
        self._steps = self._shown = 0

    @property
    def _out(self):
        return self.file if self.file is not None else sys.stdout

    def _live(self) -> bool:
        if self.verbose != 1:
            return False
        isatty = getattr(self._out, "isatty", None)
        return bool(isatty and isatty()) or "ipykernel" in sys.modules

    def before_fit(self) -> None:
        self._tqdm = _tqdm() if self._live() else None

    def before_epoch(self) -> None:
        print(f"Epoch {self.engine.epoch + 1}/{self.engine.n_epoch}", file=self._out,
              flush=True)

    def _open(self) -> None:
        e = self.engine
        self._t0 = self._last = time.perf_counter()
        self._start = e.skip_batches if e.training else 0
        self._steps = self._shown = 0
        self._total = e.n_iter
        if self._live():
            if getattr(self, "_tqdm", None) is None:
                self._tqdm = _tqdm()
            self.bar = self._tqdm(total=e.n_iter, file=self._out, leave=True, unit="step",
                                  initial=self._start, dynamic_ncols=False,
                                  bar_format="{n_fmt}/{total_fmt} {bar:20} "
                                  "{elapsed}<{remaining} {rate_fmt}{postfix}")

    def before_train(self) -> None:
        self._open()

    def before_validate(self) -> None:
        if self.engine.phase != "fit":
            self._open()

    def before_batch(self) -> None:
        e = self.engine
        if not (e.phase == "fit" and not e.training):  # validation in fit is not shown
            self._steps += 1

    def after_batch(self) -> None:
        e = self.engine
        if self.bar is None or (e.phase == "fit" and not e.training):
            return
        self.bar.update(self._steps - self._shown)
        self._shown = self._steps
        now = time.perf_counter()
        if now - self._last >= self.refresh:
            self._last = now
            self.bar.set_postfix_str(self._fmt(e.recorder.results()), refresh=True)

    def _close(self, logs: dict) -> None:
        if self.bar is not None:
            if self._steps > self._shown:  # a callback ended the epoch mid-batch
                self.bar.update(self._steps - self._shown)
            self.bar.set_postfix_str(self._fmt(logs), refresh=False)
            self.bar.close()
            self.bar = None
            return
        dt = time.perf_counter() - self._t0
        n = self._start + self._steps
        total = self._total or n
        per = f" - {_time(dt / self._steps)}/step" if self._steps else ""
        if self.verbose == 1:
            done = int(20 * n / total) if total else 20
            line = f"{n}/{total} {'━' * done}{' ' * (20 - done)} {_time(dt)}{per[2:]}"
        else:
            line = f"{n}/{total} - {_time(dt)}{per}"
        if logs:
            line += " - " + self._fmt(logs)
        print(line, file=self._out, flush=True)

    def _fmt(self, logs: dict) -> str:
        return format_logs(dict(sorted(logs.items())) if self.sort else logs)

    def after_epoch(self) -> None:
        self._close(self.engine.logs)

    def after_validate(self) -> None:
        if self.engine.phase != "fit":
            self._close(self.engine.logs)

    def after_fit(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
