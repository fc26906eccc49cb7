"""ember.learner schedules: the annealers and the scheduled fits against fastai's formulas,
written out here in NumPy."""
import math

import numpy as np
import pytest

import ember as em
import ember.nn as nn
from ember.learner import (SGD, Callback, DataLoaders, Learner, SchedCos, SchedExp, SchedLin,
                           SchedNo, SchedPoly, combine_scheds, combined_cos, default_split)


def cos_anneal(start, end, pct):
    """fastai's cosine annealing: start + (1 + cos(pi * (1 - pct))) * (end - start) / 2."""
    return start + (1 + np.cos(np.pi * (1 - pct))) * (end - start) / 2


def one_cycle(pos, lr_max, div=25.0, div_final=1e5, pct_start=0.25, moms=(0.95, 0.85, 0.95)):
    """fastai's 1cycle lr and momentum at training position ``pos`` in [0, 1]."""
    if pos < pct_start:
        p = pos / pct_start
        return cos_anneal(lr_max / div, lr_max, p), cos_anneal(moms[0], moms[1], p)
    p = (pos - pct_start) / (1 - pct_start)
    return cos_anneal(lr_max, lr_max / div_final, p), cos_anneal(moms[1], moms[2], p)


@pytest.mark.parametrize("sched, pos, expected", [
    (SchedLin(2.0, 4.0), 0.25, 2.5),
    (SchedLin(2.0, 4.0), 1.0, 4.0),
    (SchedCos(0.0, 1.0), 0.0, 0.0),
    (SchedCos(0.0, 1.0), 0.5, 0.5),
    (SchedCos(0.0, 1.0), 0.25, (1 - math.sqrt(0.5)) / 2),
    (SchedCos(1.0, 0.0), 1.0, 0.0),
    (SchedExp(1.0, 100.0), 0.5, 10.0),
    (SchedExp(1e-7, 10.0), 1.0, 10.0),
    (SchedNo(3.0, 7.0), 0.9, 3.0),
    (SchedPoly(0.0, 1.0, 2), 0.5, 0.25),
    (SchedPoly(1.0, 0.0, 0.5), 0.25, 0.5),
])
def test_annealers_match_their_formulas(sched, pos, expected):
    assert sched(pos) == pytest.approx(expected, abs=1e-12)


def test_annealers_work_per_group_on_arrays():
    s = SchedCos(np.array([1.0, 10.0]), np.array([0.0, 0.0]))
    np.testing.assert_allclose(s(0.5), [0.5, 5.0])


@pytest.mark.parametrize("pos", [0.0, 0.1, 0.29999, 0.3, 0.5, 0.99, 1.0])
def test_combined_cos_is_two_cosines(pos):
    f = combined_cos(0.3, 1.0, 10.0, 0.0)
    expected = cos_anneal(1.0, 10.0, pos / 0.3) if pos < 0.3 else \
        cos_anneal(10.0, 0.0, (pos - 0.3) / 0.7)
    assert f(pos) == pytest.approx(expected, abs=1e-12)


def test_combine_scheds_three_pieces_and_edges():
    f = combine_scheds([0.2, 0.5, 0.3], [SchedLin(0, 1), SchedNo(5, 5), SchedLin(1, 0)])
    assert f(0.1) == pytest.approx(0.5)
    assert f(0.5) == 5
    assert f(0.85) == pytest.approx(0.5)
    assert f(1.0) == pytest.approx(0.0)
    g = combined_cos(1.0, 0.0, 1.0, 2.0)  # pct_start=1: a zero-width last piece
    assert g(0.5) == pytest.approx(0.5)
    assert g(1.0) == pytest.approx(2.0)  # at its end, not 0/0


@pytest.mark.parametrize("pcts", [[0.5, 0.4], [1.2, -0.2]])
def test_combine_scheds_rejects_bad_fractions(pcts):
    with pytest.raises(ValueError, match="combine_scheds"):
        combine_scheds(pcts, [SchedLin(0, 1), SchedLin(1, 0)])


def test_sched_exp_needs_positive_ends():
    with pytest.raises(ValueError, match="SchedExp"):
        SchedExp(0.0, 1.0)


# ----- the scheduled fits ------------------------------------------------------------------------

class Hypers(Callback):
    """Reads the optimiser's first group after each training batch (not the scheduler's log)."""

    order = 90
    run_valid = False

    def before_fit(self):
        self.lrs, self.moms, self.all_lrs = [], [], []

    def after_batch(self):
        g = self.learn.opt.param_groups
        self.lrs.append(g[-1]["lr"])
        self.all_lrs.append([x["lr"] for x in g])
        b = g[-1].get("betas")
        self.moms.append(b[0] if b is not None else g[-1].get("momentum"))


def _learner(n=80, bs=16, model=None, **kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    dls = DataLoaders.from_arrays(x, y, valid_pct=0.25, bs=bs, seed=0)
    model = model or nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    learn = Learner(dls, model, **kw)
    learn.remove_cb(learn.progress)
    return learn


@pytest.mark.parametrize("n_epoch, lr_max, pct_start, moms", [
    (2, 1e-2, 0.25, None),
    (3, 3e-3, 0.4, (0.9, 0.8, 0.7)),
])
def test_fit_one_cycle_follows_fastai_formula(n_epoch, lr_max, pct_start, moms, capsys):
    learn = _learner()
    h = Hypers()
    learn.fit_one_cycle(n_epoch, lr_max, pct_start=pct_start, moms=moms, cbs=h)
    n_iter = len(learn.dls.train)
    total = n_epoch * n_iter
    assert len(h.lrs) == total
    for i in range(total):
        lr, mom = one_cycle(i / total, lr_max, pct_start=pct_start,
                            moms=moms or (0.95, 0.85, 0.95))
        assert h.lrs[i] == pytest.approx(lr, rel=1e-9), i
        assert h.moms[i] == pytest.approx(mom, rel=1e-9), i
    # the recorder keeps the same schedule (fastai's recorder.hps)
    np.testing.assert_allclose(learn.recorder.hps["lr"], h.lrs, rtol=1e-12)
    np.testing.assert_allclose(learn.recorder.moms, h.moms, rtol=1e-12)


def test_fit_one_cycle_starts_low_peaks_and_ends_near_zero(capsys):
    learn = _learner()
    h = Hypers()
    learn.fit_one_cycle(4, 1e-2, cbs=h)
    assert h.lrs[0] == pytest.approx(1e-2 / 25)
    assert max(h.lrs) <= 1e-2 and max(h.lrs) > 0.95e-2
    assert h.lrs[-1] < 1e-3
    assert h.moms[0] == pytest.approx(0.95) and min(h.moms) >= 0.85


def test_fit_one_cycle_discriminative_lrs_per_group(capsys):
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 2))
    learn = _learner(model=model, splitter=default_split)
    h = Hypers()
    learn.fit_one_cycle(1, slice(1e-4, 1e-2), cbs=h)
    total = len(learn.dls.train)
    # fastai spreads a slice evenly on a log scale over the groups
    for i in (0, total // 2, total - 1):
        lrs = sorted(set(h.all_lrs[i]))
        exp = sorted({one_cycle(i / total, m)[0] for m in (1e-4, 1e-2)})
        np.testing.assert_allclose(lrs, exp, rtol=1e-9)


def test_fit_flat_cos_formula(capsys):
    learn = _learner()
    h = Hypers()
    learn.fit_flat_cos(2, lr=1e-2, cbs=h)
    total = len(h.lrs)
    for i, lr in enumerate(h.lrs):
        pos = i / total
        exp = 1e-2 if pos < 0.75 else cos_anneal(1e-2, 1e-2 / 1e5, (pos - 0.75) / 0.25)
        assert lr == pytest.approx(exp, rel=1e-9)


def test_fit_sgdr_restarts(capsys):
    learn = _learner()
    h = Hypers()
    learn.fit_sgdr(2, 1, lr_max=1e-2, cbs=h)  # cycles of 1 then 2 epochs: 3 epochs
    n_iter = len(learn.dls.train)
    assert len(h.lrs) == 3 * n_iter
    assert h.lrs[0] == pytest.approx(1e-2) and h.lrs[n_iter] == pytest.approx(1e-2)
    pos = 1 / (3 * n_iter)  # second batch: 1/n_iter of the first (1/3) cycle
    assert h.lrs[1] == pytest.approx(cos_anneal(1e-2, 0, pos / (1 / 3)), rel=1e-9)


def test_sgd_without_momentum_is_not_given_one(capsys):
    learn = _learner(opt_func=SGD)
    h = Hypers()
    learn.fit_one_cycle(1, 1e-2, cbs=h)
    assert set(h.moms) == {0.0}


def test_sgd_with_momentum_gets_the_cycle(capsys):
    from functools import partial
    learn = _learner(opt_func=partial(SGD, mom=0.9))
    h = Hypers()
    learn.fit_one_cycle(1, 1e-2, cbs=h)
    assert h.moms[0] == pytest.approx(0.95)
    assert em.optim.SGD is type(learn.opt)
