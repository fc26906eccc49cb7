"""The learning-rate finder: a short mock training with an exponentially growing learning rate,
and fastai's rules for reading a good learning rate off the loss curve.

``Learner.lr_find`` attaches :class:`LRFinder`, which snapshots the model and optimiser,
raises the lr from ``start_lr`` to ``end_lr`` over ``num_it`` batches
(``lr_i = start_lr * (end_lr / start_lr) ** (i / (num_it - 1))``), stops once the smoothed
loss exceeds 4x its minimum, and restores both snapshots. The suggestion functions take the
recorded ``lrs`` and smoothed ``losses`` (fastai trims the first tenth and last five points
first) and return ``(suggested_lr, (lr, loss) point to mark on the plot)``:

- :func:`valley` (default): the middle of the longest descending stretch of the curve;
- :func:`slide`: walk left from the end until the slope stops changing (interval slide rule);
- :func:`minimum`: a tenth of the lr at the lowest loss;
- :func:`steep`: the lr where the loss falls fastest per unit of log lr.
"""
from __future__ import annotations

import math

import numpy as np

from ..train.events import CancelFitException, CancelValidException
from .schedule import ParamScheduler, SchedExp

__all__ = ["LRFinder", "valley", "slide", "minimum", "steep"]


def _arrays(lrs, losses) -> tuple:
    lrs = np.asarray(lrs, dtype=np.float64).ravel()
    losses = np.asarray(losses, dtype=np.float64).ravel()
    if lrs.shape != losses.shape:
        raise ValueError(f"lr suggestion: lrs {lrs.shape} and losses {losses.shape} must have "
                         f"the same length")
    if len(lrs) < 2:
        raise ValueError(f"lr suggestion: need at least 2 recorded points, got {len(lrs)} "
                         f"(run lr_find with a larger num_it)")
    return lrs, losses


def valley(lrs, losses, num_it: int | None = None) -> tuple:
    """An lr from the longest valley of the loss curve: fastai's default suggestion.

    The valley is the longest strictly decreasing subsequence of the losses (found with the
    O(n^2) longest-decreasing-run dynamic programme fastai uses); the suggestion sits at
    ``start + int(len/3) + int(len/6)`` of it.
    """
    lrs, losses = _arrays(lrs, losses)
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx]), (float(lrs[idx]), float(losses[idx]))


def slide(lrs, losses, num_it: int | None = None, lr_diff: int = 15, thresh: float = .005,
          adjust_value: float = 1.) -> tuple:
    """The interval slide rule: from the end of the curve move left while the gradients of
    the loss ``lr_diff`` points apart differ by more than ``thresh``."""
    lrs, losses = _arrays(lrs, losses)
    loss_grad = np.gradient(losses)
    r_idx = -1
    l_idx = r_idx - lr_diff
    if -l_idx > len(losses):
        raise ValueError(f"slide: needs more than lr_diff={lr_diff} points, got {len(losses)}")
    local_min_lr = lrs[l_idx]
    while l_idx >= -len(losses) and abs(loss_grad[r_idx] - loss_grad[l_idx]) > thresh:
        local_min_lr = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    suggestion = float(local_min_lr) * adjust_value
    loss = float(np.interp(np.log10(suggestion), np.log10(lrs), losses))
    return suggestion, (suggestion, loss)


def minimum(lrs, losses, num_it: int | None = None) -> tuple:
    """A tenth of the lr at which the loss was lowest (the point marked is the minimum)."""
    lrs, losses = _arrays(lrs, losses)
    i = int(np.argmin(losses))
    return float(lrs[i]) / 10, (float(lrs[i]), float(losses[i]))


def steep(lrs, losses, num_it: int | None = None) -> tuple:
    """The lr where the loss decreases fastest with respect to log(lr)."""
    lrs, losses = _arrays(lrs, losses)
    grads = (losses[1:] - losses[:-1]) / (np.log(lrs[1:]) - np.log(lrs[:-1]))
    i = int(np.argmin(grads))
    return float(lrs[i]), (float(lrs[i]), float(losses[i]))


def _snapshot(learn) -> tuple:
    """Copies of the model's and the optimiser's state (the live dicts share memory)."""
    model = {k: v.clone() for k, v in learn.model.state_dict().items()}
    opt = learn.opt.state_dict()
    opt = {"state": {k: {n: (t.clone() if hasattr(t, "clone") else t) for n, t in s.items()}
                     for k, s in opt["state"].items()},
           "param_groups": [dict(g) for g in opt["param_groups"]]}
    return model, opt


class LRFinder(ParamScheduler):
    """Train with an exponentially growing lr, stopping on divergence; restore everything after.

    The lr of batch ``i`` is ``start_lr * (end_lr / start_lr) ** (i / (num_it - 1))``, so the
    last of ``num_it`` batches runs at ``end_lr``. With ``stop_div`` the run stops as soon as
    the smoothed loss exceeds 4x the best smoothed loss seen (or becomes NaN). Validation is
    skipped. Weights, buffers and optimiser state are restored in ``after_fit``.
    """

    name = "lr_finder"
    order = 60
    run_valid = False  # lr_find never validates (before_validate cancels it)

    def __init__(self, start_lr=1e-7, end_lr=10, num_it: int = 100,
                 stop_div: bool = True) -> None:
        num_it = max(int(num_it), 6)  # fastai's floor: too few points say nothing
        if np.ndim(start_lr) or np.ndim(end_lr):
            start_lr, end_lr = np.asarray(start_lr, float), np.asarray(end_lr, float)
        super().__init__({"lr": SchedExp(start_lr, end_lr)})
        self.num_it, self.stop_div = num_it, stop_div

    def before_fit(self) -> None:
        super().before_fit()
        self._saved = _snapshot(self.learn)
        self.best_loss = float("inf")

    def before_batch(self) -> None:
        if not self.learn.training:
            return
        self._update_val(self.learn.train_iter / (self.num_it - 1))

    def after_batch(self) -> None:
        if not self.learn.training:
            return
        super().after_batch()
        smooth = self.learn.smooth_loss
        if smooth < self.best_loss:
            self.best_loss = smooth
        if self.stop_div and (smooth > 4 * self.best_loss or math.isnan(smooth)):
            raise CancelFitException()
        if self.learn.train_iter >= self.num_it:
            raise CancelFitException()

    def before_validate(self) -> None:
        raise CancelValidException()

    def after_fit(self) -> None:
        super().after_fit()
        learn = self.learn
        learn.opt.zero_grad()
        saved = getattr(self, "_saved", None)
        if saved is not None:
            model, opt = saved
            learn.model.load_state_dict(model)
            learn.opt.load_state_dict(opt)
            self._saved = None
