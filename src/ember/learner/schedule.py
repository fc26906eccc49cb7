"""Hyper-parameter schedules with fastai's names and formulas, and the callback that applies them.

An annealer maps the position ``pos`` in [0, 1] of training to a value::

    SchedLin(start, end)(pos)  = start + pos * (end - start)
    SchedCos(start, end)(pos)  = start + (1 + cos(pi * (1 - pos))) * (end - start) / 2
    SchedExp(start, end)(pos)  = start * (end / start) ** pos
    SchedNo(start, end)(pos)   = start
    SchedPoly(start, end, power)(pos) = start + (end - start) * pos ** power

``combine_scheds(pcts, scheds)`` runs the schedules one after another, each over its share
``pcts`` of training; ``combined_cos(pct, start, middle, end)`` is the one-cycle shape (cosine
up from ``start`` to ``middle`` over ``pct``, then cosine down to ``end``). ``start``/``end`` may
be NumPy arrays (one value per parameter group): the arithmetic is elementwise.

:class:`ParamScheduler` sets the optimiser's hyper-parameters from such schedules before every
training batch (``learn.pct_train`` is the position); the names are fastai's: ``lr``, ``mom``
(Adam's beta1 or SGD's momentum), ``sqr_mom`` (Adam's beta2, RMSprop's alpha), ``wd``, ``eps``.
"""
from __future__ import annotations

import bisect
import math
from typing import Callable, Sequence

import numpy as np

from ..train.events import Callback

__all__ = ["sched_lin", "sched_cos", "sched_no", "sched_exp", "SchedLin", "SchedCos", "SchedNo",
           "SchedExp", "SchedPoly", "combine_scheds", "combined_cos", "ParamScheduler"]


def sched_lin(start, end, pos: float):
    """Linear from ``start`` (pos 0) to ``end`` (pos 1)."""
    return start + pos * (end - start)


def sched_cos(start, end, pos: float):
    """Cosine from ``start`` to ``end``: flat at both ends, steepest in the middle."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def sched_no(start, end, pos: float):
    """Constant ``start``."""
    return start


def sched_exp(start, end, pos: float):
    """Exponential (linear in log space) from ``start`` to ``end``."""
    return start * (end / start) ** pos


class _Annealer:
    """``f(start, end, pos)`` with ``start`` and ``end`` bound: call it with ``pos``."""

    def __init__(self, f: Callable, start, end) -> None:
        self.f, self.start, self.end = f, start, end

    def __call__(self, pos: float):
        return self.f(self.start, self.end, pos)

    def __repr__(self) -> str:
        return f"{self.f.__name__}({self.start!r}, {self.end!r})"


def SchedLin(start, end) -> _Annealer:  # noqa: N802 (fastai's name)
    """Linear schedule from ``start`` to ``end``."""
    return _Annealer(sched_lin, start, end)


def SchedCos(start, end) -> _Annealer:  # noqa: N802
    """Cosine schedule from ``start`` to ``end``."""
    return _Annealer(sched_cos, start, end)


def SchedNo(start, end) -> _Annealer:  # noqa: N802
    """Constant schedule at ``start``."""
    return _Annealer(sched_no, start, end)


def SchedExp(start, end) -> _Annealer:  # noqa: N802
    """Exponential schedule from ``start`` to ``end`` (both must be > 0)."""
    if np.any(np.asarray(start) <= 0) or np.any(np.asarray(end) <= 0):
        raise ValueError(f"SchedExp: start and end must be > 0 for an exponential schedule, "
                         f"got start={start!r}, end={end!r}")
    return _Annealer(sched_exp, start, end)


def SchedPoly(start, end, power: float) -> Callable:  # noqa: N802
    """Polynomial schedule of ``power`` from ``start`` to ``end``."""
    def _inner(pos: float):
        return start + (end - start) * pos ** power
    return _inner


def combine_scheds(pcts: Sequence[float], scheds: Sequence[Callable]) -> Callable:
    """One schedule running ``scheds[i]`` over the fraction ``pcts[i]`` of training."""
    if len(pcts) != len(scheds):
        raise ValueError(f"combine_scheds: {len(pcts)} fractions for {len(scheds)} schedules")
    if any(p < 0 for p in pcts):
        raise ValueError(f"combine_scheds: fractions must be >= 0, got {list(pcts)}")
    if abs(sum(pcts) - 1.0) > 1e-6:
        raise ValueError(f"combine_scheds: fractions must sum to 1, got {list(pcts)} "
                         f"(sum {sum(pcts)})")
    bounds = np.cumsum([0.0, *pcts]).tolist()
    last = len(bounds) - 2

    def _inner(pos: float):
        # the last schedule whose start is <= pos (fastai's rule, so pos=1 lands on the last);
        # bisect, not NumPy: this runs before every batch
        idx = min(max(bisect.bisect_right(bounds, pos) - 1, 0), last)
        width = bounds[idx + 1] - bounds[idx]
        # a zero-width last piece (pct_start=1) is at its end, not 0/0
        actual = (pos - bounds[idx]) / width if width > 0 else 1.0
        return scheds[idx](float(actual))
    return _inner


def combined_cos(pct: float, start, middle, end) -> Callable:
    """Cosine from ``start`` to ``middle`` over ``pct`` of training, then to ``end``."""
    return combine_scheds([pct, 1 - pct], [SchedCos(start, middle), SchedCos(middle, end)])


class ParamScheduler(Callback):
    """Set hyper-parameters from ``scheds`` (``{name: schedule}``) before each training batch.

    Reads the position from ``learn.pct_train``; the values used are kept in ``hps`` (for the
    last parameter group, as fastai records them) and handed to ``learn.recorder.hps``.
    """

    order = 60
    run_valid = False

    def __init__(self, scheds: dict) -> None:
        self.scheds = dict(scheds)

    def before_fit(self) -> None:
        self.hps = {p: [] for p in self.scheds}

    def before_batch(self) -> None:
        self._update_val(self.engine.pct_train)

    def _update_val(self, pct: float) -> None:
        learn = self.engine
        for name, f in self.scheds.items():
            learn.set_hyper(name, f(pct))

    def after_batch(self) -> None:
        learn = self.engine
        for p in self.scheds:
            self.hps[p].append(learn._last_hyper(p))

    def after_fit(self) -> None:
        rec = getattr(self.learn, "recorder", None)
        if rec is not None and hasattr(self, "hps"):
            rec.hps = self.hps

    def __repr__(self) -> str:
        return f"ParamScheduler({self.scheds!r})"
