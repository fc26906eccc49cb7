"""ember.learner Recorder plots (matplotlib, Agg backend), the missing-matplotlib message,
and the fastai-style example script."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import ember as em
import ember.nn as nn
from ember.learner import DataLoaders, Learner, ProgressCallback, accuracy
from ember.learner.recorder import format_time

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastai_style_digits.py"


def _fitted(capsys=None):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    dls = DataLoaders.from_arrays(x, y, bs=16, seed=0)
    em.manual_seed(0)
    learn = Learner(dls, nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2)),
                    metrics=accuracy)
    learn.remove_cb(ProgressCallback)
    with learn.no_logging():
        learn.fit_one_cycle(3, 1e-2)
    return learn


@pytest.fixture
def plt():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt
    yield plt
    plt.close("all")


def test_plot_loss_draws_train_and_valid_curves(plt):
    learn = _fitted()
    rec = learn.recorder
    ax = rec.plot_loss(skip_start=2)
    train, valid = ax.lines
    np.testing.assert_allclose(train.get_ydata(), rec.losses[2:])
    np.testing.assert_allclose(train.get_xdata(), np.arange(2, len(rec.losses)))
    np.testing.assert_allclose(valid.get_xdata(), rec.iters)
    np.testing.assert_allclose(valid.get_ydata(), [v[1] for v in rec.values])


def test_plot_sched_draws_lr_and_mom(plt):
    learn = _fitted()
    fig = learn.recorder.plot_sched()
    lr_ax, mom_ax = fig.axes
    np.testing.assert_allclose(lr_ax.lines[0].get_ydata(), learn.recorder.hps["lr"])
    np.testing.assert_allclose(mom_ax.lines[0].get_ydata(), learn.recorder.hps["mom"])
    assert (lr_ax.get_ylabel(), mom_ax.get_ylabel()) == ("lr", "mom")


def test_missing_matplotlib_names_the_extra(monkeypatch):
    learn = _fitted()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install ember\[plot\]"):
        learn.recorder.plot_loss()
    with pytest.warns(UserWarning, match="no plot"):  # lr_find still suggests
        res = learn.lr_find(num_it=20)
    assert res.valley > 0


@pytest.mark.parametrize("seconds, text", [(0, "00:00"), (75.9, "01:15"), (3725, "1:02:05")])
def test_format_time(seconds, text):
    assert format_time(seconds) == text


def test_fastai_style_example_reaches_95_percent(capsys):
    spec = importlib.util.spec_from_file_location("fastai_style_digits", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    acc = mod.main(["--epochs", "4"])
    assert acc >= 0.95
    out = capsys.readouterr().out
    assert "lr_find suggests" in out and "epoch     train_loss  valid_loss  accuracy" in out
