"""ember.learner's fastai callbacks: early stopping, saving the best model, CSV logging."""
import numpy as np
import pytest

import ember as em
import ember.nn as nn
from ember.learner import (Callback, CSVLogger, DataLoaders, EarlyStoppingCallback, Learner,
                           ProgressCallback, SaveModelCallback)

SCRIPT = [0.5, 0.6, 0.55, 0.58, 0.9, 0.95]  # the "score" of each epoch, by construction


def _learner(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = rng.integers(0, 2, 64)
    dls = DataLoaders.from_arrays(x, y, bs=16, seed=0)
    em.manual_seed(0)
    learn = Learner(dls, nn.Linear(4, 2), path=tmp_path)

    def score(pred, targ):
        return SCRIPT[learn.epoch]
    learn.metrics = [score]
    learn.remove_cb(ProgressCallback)
    return learn


class Snapshots(Callback):
    order = 90

    def before_fit(self):
        self.params = []

    def after_epoch(self):
        self.params.append(self.learn.model.weight.detach().numpy().copy())


def test_early_stopping_after_patience(tmp_path, capsys):
    learn = _learner(tmp_path)
    learn.fit(6, cbs=EarlyStoppingCallback(monitor="score", patience=2))
    # best 0.6 at epoch 1; epochs 2 and 3 don't beat it: stop after epoch 3
    assert len(learn.recorder.values) == 4
    assert "No improvement since epoch 1: early stopping" in capsys.readouterr().out


def test_early_stopping_min_delta(tmp_path, capsys):
    learn = _learner(tmp_path)
    # with min_delta 0.2 only 0.9 (epoch 4) beats 0.5 by enough; patience 5 lets it run
    cb = EarlyStoppingCallback(monitor="score", min_delta=0.2, patience=5)
    learn.fit(6, cbs=cb)
    assert cb.best == 0.9


def test_save_model_keeps_and_reloads_the_best(tmp_path, capsys):
    learn = _learner(tmp_path)
    snaps = Snapshots()
    learn.fit(4, lr=1e-2, cbs=[SaveModelCallback(monitor="score", fname="best"), snaps])
    assert (tmp_path / "models" / "best.safetensors").exists()
    np.testing.assert_array_equal(learn.model.weight.detach().numpy(), snaps.params[1])
    assert not np.array_equal(snaps.params[1], snaps.params[3])
    assert "Better model found at epoch 1 with score value: 0.6." in capsys.readouterr().out


def test_save_model_every_epoch(tmp_path, capsys):
    learn = _learner(tmp_path)
    learn.fit(3, cbs=SaveModelCallback(every_epoch=1, fname="m"))
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == \
        ["m_0.safetensors", "m_1.safetensors", "m_2.safetensors"]


def test_tracker_rejects_unknown_column(tmp_path):
    learn = _learner(tmp_path)
    with pytest.raises(ValueError, match="monitor='acc' is not a column"):
        learn.fit(1, cbs=EarlyStoppingCallback(monitor="acc"))


def test_csv_logger_writes_the_table(tmp_path, capsys):
    learn = _learner(tmp_path)
    cb = CSVLogger()
    learn.fit(3, cbs=cb)
    rows = cb.read_log()
    assert rows[0] == ["epoch", "train_loss", "valid_loss", "score", "time"]
    assert len(rows) == 4
    for e, row in enumerate(rows[1:]):
        np.testing.assert_allclose([float(v) for v in row[1:4]], learn.recorder.values[e])
    learn.fit(1, cbs=CSVLogger(append=True))
    assert len(cb.read_log()) == 5
    assert "valid_loss" in capsys.readouterr().out  # the table is still printed
