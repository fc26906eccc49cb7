"""``Recorder``: the engine's built-in callback that tracks the loss and the metrics, and keeps
the per-epoch history."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .events import Callback
from .metrics import Mean, to_numpy

__all__ = ["Recorder", "batch_size"]


def batch_size(xb) -> int:
    """The number of samples in a batch: the leading size of its first array leaf."""
    if type(xb) is tuple and xb:
        shape = getattr(xb[0], "shape", None)
        if shape is not None and len(shape):
            return int(shape[0])
    stack = [xb]
    while stack:
        x = stack.pop(0)
        if isinstance(x, (tuple, list)):
            stack[:0] = list(x)
        elif isinstance(x, dict):
            stack[:0] = list(x.values())
        elif hasattr(x, "shape"):
            return int(x.shape[0]) if len(x.shape) else 1
    return 1


def _lr(opt) -> float:
    """The learning rate the optimiser used last (Keras face: a schedule's current value)."""
    lr = getattr(opt, "learning_rate", None)
    if type(lr) is float:
        return lr
    if lr is None:
        groups = getattr(opt, "param_groups", None)
        lr = groups[-1].get("lr") if groups else float("nan")
    return float(to_numpy(lr))


class Recorder(Callback):
    """Tracks the mean loss (weighted by batch size, as Keras and fastai do), any named loss
    parts the loss function returns, and the engine's metrics, for training and validation.

    After each epoch ``engine.logs`` holds ``{"loss": ..., "<metric>": ..., "val_loss": ...,
    "val_<metric>": ...}`` and ``history`` (``{name: [value per epoch]}``) grows by it;
    ``epochs`` lists the epoch numbers recorded. Per training batch, ``losses`` gets its
    loss and ``lrs`` the optimiser's learning rate (for loss and schedule plots). All of them
    start afresh with each ``fit``.
    """

    order = 50

    def __init__(self) -> None:
        self.history: dict[str, list] = {}
        self.epochs: list[int] = []
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.loss_tracker = Mean(name="loss")
        self.part_trackers: dict[str, Mean] = {}

    def before_fit(self) -> None:
        self.history, self.epochs, self.losses, self.lrs = {}, [], [], []

    def _reset(self) -> None:
        self.loss_tracker.reset_state()
        for t in self.part_trackers.values():
            t.reset_state()
        for m in self.engine.metrics:
            m.reset_state()

    def before_train(self) -> None:
        self._reset()

    def before_validate(self) -> None:
        self._reset()

    def after_batch(self) -> None:
        e = self.engine
        if e.loss is None:  # prediction only
            return
        bs = batch_size(e.xb)
        loss = e.loss
        loss = float(loss._data) if type(loss) is Tensor else float(to_numpy(loss))
        self.loss_tracker._add(loss * bs, bs)
        if e.training:
            self.losses.append(loss)
            self.lrs.append(_lr(e.opt))
        if e.loss_parts:
            for k, v in e.loss_parts.items():
                t = self.part_trackers.get(k)
                if t is None:
                    t = self.part_trackers[k] = Mean(name=k)
                t._add(float(to_numpy(v)) * bs, bs)
        if e.metrics:
            yb = e.yb
            y_true = yb[0] if yb else None
            sw = yb[1] if len(yb) > 1 else None
            for m in e.metrics:
                m.update_state(y_true, e.pred, sample_weight=sw)

    def results(self) -> dict:
        """The running loss, loss parts and metric results of the current phase."""
        out = {}
        if self.loss_tracker.count:
            out["loss"] = self.loss_tracker.result()
        for k, t in self.part_trackers.items():
            if t.count:
                out[k] = t.result()
        for m in self.engine.metrics:
            r = m.result()
            if isinstance(r, dict):
                out.update(r)
            else:
                out[m.name] = r
        return out

    def after_train(self) -> None:
        self.engine.logs.update(self.results())

    def after_validate(self) -> None:
        res = self.results()
        if self.engine.phase == "fit":
            res = {"val_" + k: v for k, v in res.items()}
        self.engine.logs.update(res)

    def after_epoch(self) -> None:
        self.epochs.append(self.engine.epoch)
        for k, v in self.engine.logs.items():
            self.history.setdefault(k, []).append(np.copy(v) if isinstance(v, np.ndarray)
                                                  else v)
