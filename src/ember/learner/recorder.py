"""fastai's ``Recorder``: the engine's recorder plus what fastai users read off ``learn.recorder``.

On top of the engine's per-epoch ``history`` (``loss``, ``val_loss``, ``val_<metric>``) it keeps

- ``losses``: the smoothed training loss after every batch (fastai's debiased exponential
  moving average, ``beta=0.98``), ``lrs``: the learning rate of every batch;
- ``values``: one row per epoch, ``[train_loss, valid_loss, *metrics]`` as the table prints
  them (``train_loss`` is the smoothed loss at the end of the epoch), ``metric_names``;
- ``iters``: the number of batches seen at the end of each epoch;
- ``hps``: the scheduled hyper-parameters of every batch (``lr``, ``mom``), from
  ``fit_one_cycle`` and the other scheduled fits;

and draws them: :meth:`plot_loss`, :meth:`plot_lr_find`, :meth:`plot_sched` (matplotlib).
"""
from __future__ import annotations

import time

import numpy as np

from ..train.metrics import Mean, to_numpy
from ..train.recorder import Recorder as _EngineRecorder
from ..train.recorder import batch_size
from .metrics import AvgSmoothLoss, _item

__all__ = ["Recorder", "format_time"]


def format_time(t: float) -> str:
    """Seconds as ``mm:ss`` (``h:mm:ss`` past an hour), as fastai's table shows time."""
    t = int(t)
    h, m, s = t // 3600, (t // 60) % 60, t % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("ember.learner's plots need matplotlib: pip install ember[plot] "
                          "(or pip install matplotlib)") from None
    return plt


class Recorder(_EngineRecorder):
    """Records losses, learning rates, hyper-parameters and metrics during training.

    Args:
        add_time: add a ``time`` column (epoch wall time) to the table.
        train_metrics: also compute the metrics on the training batches.
        valid_metrics: compute the loss and metrics on the validation set.
        beta: smoothing of the training loss.
    """

    name = "recorder"
    order = 50

    def __init__(self, add_time: bool = True, train_metrics: bool = False,
                 valid_metrics: bool = True, beta: float = 0.98) -> None:
        super().__init__()
        self.add_time, self.train_metrics, self.valid_metrics = \
            add_time, train_metrics, valid_metrics
        self.smooth_loss = AvgSmoothLoss(beta=beta)
        self.lrs: list = []
        self.iters: list = []
        self.losses: list = []
        self.values: list = []
        self.hps: dict = {}
        self.log: list = []
        self.metric_names: list = []

    # ----- the loop ----------------------------------------------------------------------------
    def before_fit(self) -> None:
        # fastai's recorder describes the last fit: the engine's history restarts with it
        self.history, self.epochs = {}, []
        self.lrs, self.iters, self.losses, self.values = [], [], [], []
        names = [m.name for m in self.learn.metrics]
        if self.train_metrics and self.valid_metrics:
            names = [f"train_{n}" for n in ["loss", *names]] + \
                [f"valid_{n}" for n in ["loss", *names]]
        elif self.valid_metrics:
            names = ["train_loss", "valid_loss", *names]
        else:
            names = ["train_loss", *names]
        if self.add_time:
            names.append("time")
        self.metric_names = ["epoch", *names]
        self.smooth_loss.reset()

    def before_epoch(self) -> None:
        self.cancel_train = self.cancel_valid = False
        self._train_row = self._valid_row = None
        self.start_epoch = time.time()
        self.log = [self.learn.epoch]

    def _metrics_on(self) -> bool:
        return self.train_metrics if self.engine.training else self.valid_metrics

    def _reset(self) -> None:
        self.loss_tracker.reset_state()
        for t in self.part_trackers.values():
            t.reset_state()
        for m in self.learn.metrics:
            m.reset()

    def after_batch(self) -> None:
        learn = self.engine  # (self.learn goes through __getattr__: slower, every batch)
        if learn.loss is None or not learn.yb:  # prediction only
            return
        bs = batch_size(learn.yb)
        loss = float(to_numpy(learn.loss).mean())
        self.loss_tracker._add(loss * bs, bs)
        if learn.loss_parts:
            for k, v in learn.loss_parts.items():
                t = self.part_trackers.get(k)
                if t is None:
                    t = self.part_trackers[k] = Mean(name=k)
                t._add(float(to_numpy(v)) * bs, bs)
        if self._metrics_on():
            for m in learn.metrics:
                m.accumulate(learn)
        if not learn.training:
            return
        self.smooth_loss.add(loss)
        self.losses.append(self.smooth_loss.value)
        learn.smooth_loss = self.smooth_loss.value
        if learn.opt is not None:
            self.lrs.append(learn._last_hyper("lr"))

    def results(self) -> dict:
        """The running loss, loss parts and (when computed in this phase) metrics."""
        out = {}
        if self.loss_tracker.count:
            out["loss"] = self.loss_tracker.result()
        for k, t in self.part_trackers.items():
            if t.count:
                out[k] = t.result()
        if self._metrics_on():
            for m in self.learn.metrics:
                v = _item(m.value)
                if v is not None:
                    out[m.name] = v
        return out

    def after_train(self) -> None:
        super().after_train()
        row = [self.smooth_loss.value]
        if self.train_metrics:
            row += [_item(m.value) for m in self.learn.metrics]
        self._train_row = row

    def after_cancel_train(self) -> None:
        self.cancel_train = True

    def after_validate(self) -> None:
        super().after_validate()
        if self.valid_metrics:
            loss = self.loss_tracker.result() if self.loss_tracker.count else None
            self._valid_row = [loss] + [_item(m.value) for m in self.learn.metrics]

    def after_cancel_validate(self) -> None:
        self.cancel_valid = True

    def after_epoch(self) -> None:
        super().after_epoch()
        n_train = 1 + (len(self.learn.metrics) if self.train_metrics else 0)
        n_valid = (1 + len(self.learn.metrics)) if self.valid_metrics else 0
        train = self._train_row if self._train_row and not self.cancel_train \
            else [None] * n_train
        valid = self._valid_row if self._valid_row and not self.cancel_valid \
            else [None] * n_valid
        self.log = [self.learn.epoch, *train, *valid]
        self.learn.final_record = self.log[1:]
        self.values.append(self.log[1:])
        if self.add_time:
            self.log.append(format_time(time.time() - self.start_epoch))
        self.learn.logger(self.log)
        self.iters.append(self.smooth_loss.count)

    # ----- plots -------------------------------------------------------------------------------
    @property
    def moms(self) -> list:
        """The momentum of every batch of the last scheduled fit (``hps["mom"]``)."""
        return self.hps.get("mom", [])

    def plot_loss(self, skip_start: int = 5, with_valid: bool = True, log: bool = False,
                  show_epochs: bool = False, ax=None):
        """Plot the smoothed training loss per batch, and the validation loss per epoch."""
        plt = _plt()
        if not self.losses:
            raise ValueError("Recorder.plot_loss: nothing recorded yet; train first")
        if ax is None:
            ax = plt.gca()
        xs = list(range(skip_start, len(self.losses)))
        (ax.loglog if log else ax.plot)(xs, self.losses[skip_start:], label="train")
        if show_epochs:
            for x in self.iters:
                ax.axvline(x, color="grey", ls=":")
        ax.set_ylabel("loss")
        ax.set_xlabel("steps")
        ax.set_title("learning curve")
        if with_valid and "valid_loss" in self.metric_names:
            idx = int((np.array(self.iters) < skip_start).sum())
            col = self.metric_names.index("valid_loss") - 1
            ax.plot(self.iters[idx:], [v[col] for v in self.values[idx:]], label="valid")
            ax.legend()
        return ax

    def plot_lr_find(self, skip_end: int = 5, return_fig: bool = True, suggestions=None,
                     nms=None, **kwargs):
        """Plot the smoothed loss against the (log-scaled) learning rate of an lr_find run,
        marking the suggested points."""
        plt = _plt()
        lrs = self.lrs if skip_end == 0 else self.lrs[:-skip_end]
        losses = self.losses if skip_end == 0 else self.losses[:-skip_end]
        fig, ax = plt.subplots(1, 1, **kwargs)
        ax.plot(lrs, losses)
        ax.set_ylabel("Loss")
        ax.set_xlabel("Learning Rate")
        ax.set_xscale("log")
        if suggestions:
            colors = plt.rcParams["axes.prop_cycle"].by_key()["color"][1:]
            for (val, loss), nm, color in zip(suggestions, nms or [], colors):
                ax.plot(val, loss, "o", label=nm, c=color)
            ax.legend(loc="best")
        return fig if return_fig else None

    def plot_sched(self, keys=None, figsize=None):
        """Plot the scheduled hyper-parameters (``lr``, ``mom``...) against the batch."""
        plt = _plt()
        keys = list(self.hps) if keys is None else list(keys)
        if not keys:
            raise ValueError("Recorder.plot_sched: no schedule recorded; run fit_one_cycle "
                             "(or another scheduled fit) first")
        rows, cols = (len(keys) + 1) // 2, min(2, len(keys))
        figsize = figsize or (6 * cols, 4 * rows)
        fig, axs = plt.subplots(rows, cols, figsize=figsize)
        axs = np.asarray(axs).ravel()
        for p, ax in zip(keys, axs):
            ax.plot(self.hps[p])
            ax.set_ylabel(p)
        return fig
