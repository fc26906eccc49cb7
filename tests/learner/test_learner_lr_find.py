"""ember.learner lr_find: the exponential lr sequence, divergence stop, restoring the model and
optimiser, and fastai's suggestion rules on curves with known answers."""
import numpy as np
import pytest

import ember.nn as nn
from ember.learner import DataLoaders, Learner, minimum, slide, steep, valley


def _learner(n=128, bs=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    w = rng.standard_normal((6, 3))
    y = (x @ w).argmax(1)
    dls = DataLoaders.from_arrays(x, y, valid_pct=0.25, bs=bs, seed=0)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    learn = Learner(dls, model)
    learn.remove_cb(learn.progress)
    return learn


def _state(learn):
    model = {k: v.numpy().copy() for k, v in learn.model.state_dict().items()}
    sd = learn.opt.state_dict()
    opt = {(k, n): np.array(t.numpy() if hasattr(t, "numpy") else t)
           for k, s in sd["state"].items() for n, t in s.items()}
    # lr is excluded: every fit (lr_find's too, as in fastai) starts by setting it to learn.lr
    hyper = [{k: v for k, v in g.items() if k not in ("params", "lr")}
             for g in sd["param_groups"]]
    return model, opt, hyper


def test_lr_sequence_is_exponential():
    learn = _learner()
    num_it = 20
    learn.lr_find(start_lr=1e-5, end_lr=1e-1, num_it=num_it, stop_div=False, show_plot=False)
    i = np.arange(num_it)
    expected = 1e-5 * (1e-1 / 1e-5) ** (i / (num_it - 1))
    np.testing.assert_allclose(learn.recorder.lrs, expected, rtol=1e-12)


def test_lr_find_runs_num_it_batches_across_epochs():
    learn = _learner()
    assert len(learn.dls.train) == 6  # so 20 batches span 4 epochs
    learn.lr_find(num_it=20, end_lr=1e-2, stop_div=False, show_plot=False)
    assert len(learn.recorder.losses) == 20


def test_restores_weights_buffers_and_optimizer_state():
    learn = _learner()
    learn.fit(1, lr=1e-2)  # the optimiser now has moments and step counts
    model0, opt0, hyper0 = _state(learn)
    learn.lr_find(num_it=30, show_plot=False)
    assert len(learn.recorder.lrs) > 5  # it did train
    model1, opt1, hyper1 = _state(learn)
    assert model0.keys() == model1.keys()
    for k in model0:  # running_mean / running_var of the BatchNorm included
        np.testing.assert_array_equal(model0[k], model1[k], err_msg=k)
    assert opt0.keys() == opt1.keys() and len(opt0) > 0
    for k in opt0:
        np.testing.assert_array_equal(opt0[k], opt1[k], err_msg=str(k))
    assert hyper0 == hyper1


def test_restores_on_a_fresh_learner_too():
    learn = _learner()
    before = {k: v.numpy().copy() for k, v in learn.model.state_dict().items()}
    learn.lr_find(num_it=15, show_plot=False)
    for k, v in learn.model.state_dict().items():
        np.testing.assert_array_equal(before[k], v.numpy(), err_msg=k)
    assert len(learn.opt.state_dict()["state"]) == 0  # no moments left behind


def test_stops_when_the_loss_diverges():
    learn = _learner()
    learn.lr_find(start_lr=1e-3, end_lr=1e6, num_it=100, show_plot=False,
                  suggest_funcs=None)
    losses = learn.recorder.losses
    assert len(losses) < 100
    assert losses[-1] > 4 * min(losses) or np.isnan(losses[-1])


def test_suggestion_is_sensible_and_trains():
    learn = _learner(n=256)
    res = learn.lr_find(show_plot=False, suggest_funcs=(valley, minimum, steep, slide))
    assert res._fields == ("valley", "minimum", "steep", "slide")
    assert 1e-4 < res.valley < 1
    assert 1e-5 < res.minimum < 1
    loss0 = learn.validate()[0]
    learn.fit_one_cycle(3, res.valley)
    assert learn.validate()[0] < 0.8 * loss0


def test_default_suggestion_is_valley_namedtuple():
    learn = _learner()
    res = learn.lr_find(num_it=40, show_plot=False)
    assert type(res).__name__ == "SuggestedLRs" and res._fields == ("valley",)


def test_show_plot_draws_the_curve_with_markers():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt
    learn = _learner()
    learn.lr_find(num_it=30)
    fig = plt.gcf()
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert len(ax.lines) == 2  # the curve and the valley marker
    plt.close("all")


# ----- the suggestion functions on synthetic curves --------------------------------------------

LRS = np.logspace(-6, 0, 60)


def test_minimum_is_a_tenth_of_the_lowest_point():
    losses = (np.log10(LRS) + 2.5) ** 2  # minimum at lr = 10**-2.5 (nearest grid point)
    k = int(np.argmin(losses))
    lr, (lr_pt, loss_pt) = minimum(LRS, losses)
    assert lr == pytest.approx(LRS[k] / 10)
    assert (lr_pt, loss_pt) == (pytest.approx(LRS[k]), pytest.approx(losses[k]))


def test_steep_is_the_steepest_drop_per_log_lr():
    losses = np.ones(60)
    losses[30:] = 0.5  # one cliff between points 29 and 30
    losses[:29] -= np.linspace(0, 0.01, 29)  # gentle slope elsewhere
    lr, _ = steep(LRS, losses)
    assert lr == pytest.approx(LRS[29])


def test_valley_on_a_plateau_descent_rise_curve():
    # 3 equal points, 30 strictly decreasing, then 27 rising: the longest decreasing
    # subsequence ends at index 32 with length 31, so fastai's start is 32 - 31 = 1 and the
    # suggestion sits at 1 + int(31/3) + int(31/6) = 16
    losses = np.r_[[5.0] * 3, np.linspace(4.9, 1.0, 30), np.linspace(1.1, 9.0, 27)]
    lr, (lr_pt, loss_pt) = valley(LRS, losses)
    assert lr == pytest.approx(LRS[16])
    assert loss_pt == pytest.approx(losses[16])


def test_slide_with_a_constant_slope_stops_immediately():
    losses = np.linspace(2.0, 1.0, 60)  # gradient never changes: the 15-point offset is kept
    lr, (_, loss) = slide(LRS, losses)
    assert lr == pytest.approx(LRS[-16])
    assert loss == pytest.approx(losses[-16])


def test_slide_with_ever_changing_slope_walks_to_the_start():
    losses = 0.01 * np.arange(60) ** 2
    lr, _ = slide(LRS, losses)
    assert lr == pytest.approx(LRS[0])


@pytest.mark.parametrize("fn", [valley, slide, minimum, steep])
def test_suggestions_reject_mismatched_inputs(fn):
    with pytest.raises(ValueError, match="same length"):
        fn(LRS, np.ones(10))
