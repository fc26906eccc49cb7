"""ember.learner.Learner: training on real data, validate/get_preds against NumPy computed from
the model's outputs, checkpoints, freezing, the recorder and the results table."""
import re
import warnings

import numpy as np
import pytest

import ember as em
import ember.nn as nn
import ember.nn.functional as F
from ember.datasets import load_digits
from ember.learner import (Callback, CancelFitException, DataLoaders, Learner, ProgressCallback,
                           Recorder, TrainEvalCallback, accuracy, default_split, error_rate)


def _toy(n=96, d=6, k=3, bs=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (x @ rng.standard_normal((d, k))).argmax(1)
    return x, y, DataLoaders.from_arrays(x, y, valid_pct=0.25, bs=bs, seed=0)


def _mlp(d=6, k=3, seed=0):
    em.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, k))


def _quiet(learn):
    learn.remove_cb(ProgressCallback)
    return learn


def _valid_arrays(x, y, dls):
    idx = np.asarray(dls.splits[1])
    return x[idx], y[idx]


def _logits(model, x):
    model.eval()
    with em.no_grad():
        return model(em.tensor(x)).numpy().astype(np.float64)


def _log_softmax(z):
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def _params(model):
    return {k: v.detach().numpy().copy() for k, v in model.named_parameters()}


# ----- training ----------------------------------------------------------------------------------

def test_fit_one_cycle_learns_digits(capsys):
    (x, y), (xt, yt) = load_digits()
    dls = DataLoaders.from_arrays(x.reshape(len(x), -1), y, bs=32, seed=0)
    em.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    learn = _quiet(Learner(dls, model, metrics=accuracy))
    learn.fit_one_cycle(6, 1e-2)
    assert learn.validate()[1] >= 0.93
    preds, targs = learn.get_preds(dl=dls.test_dl(xt.reshape(len(xt), -1), yt))
    assert (preds.numpy().argmax(1) == yt).mean() >= 0.94
    assert learn.jit_status == "on"  # the Learner's callbacks keep the compiled step


def test_compiled_and_eager_steps_follow_the_same_schedule(capsys):
    x, y, dls = _toy()
    out = []
    for jit in (True, False):
        em.manual_seed(1)
        learn = _quiet(Learner(dls, _mlp(), jit_compile=jit))
        em.manual_seed(2)  # same shuffling in both runs
        learn.fit_one_cycle(2, 1e-2)
        out.append(_params(learn.model))
    for k in out[0]:
        np.testing.assert_allclose(out[0][k], out[1][k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_validate_matches_numpy_on_model_outputs(capsys):
    x, y, dls = _toy()
    learn = _quiet(Learner(dls, _mlp(), metrics=[accuracy, error_rate]))
    learn.fit(1, lr=1e-2)
    xv, yv = _valid_arrays(x, y, dls)
    z = _logits(learn.model, xv)
    loss = -_log_softmax(z)[np.arange(len(yv)), yv].mean()
    acc = (z.argmax(1) == yv).mean()
    res = learn.validate()
    assert len(res) == 3
    np.testing.assert_allclose(res, [loss, acc, 1 - acc], rtol=1e-5)


def test_get_preds_matches_numpy(capsys):
    x, y, dls = _toy()
    learn = _quiet(Learner(dls, _mlp()))
    learn.fit(1, lr=1e-2)
    xv, yv = _valid_arrays(x, y, dls)
    z = _logits(learn.model, xv)
    probs = np.exp(_log_softmax(z))
    inp, preds, targs, dec, losses = learn.get_preds(with_input=True, with_decoded=True,
                                                     with_loss=True)
    np.testing.assert_allclose(inp.numpy(), xv)
    np.testing.assert_allclose(preds.numpy(), probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(targs.numpy(), yv)
    np.testing.assert_array_equal(dec.numpy(), probs.argmax(1))
    np.testing.assert_allclose(losses.numpy(), -_log_softmax(z)[np.arange(len(yv)), yv],
                               rtol=1e-5)


def test_get_preds_activation_for_a_plain_loss_function(capsys):
    x, y, dls = _toy()
    learn = _quiet(Learner(dls, _mlp(), loss_func=F.cross_entropy))
    xv, _ = _valid_arrays(x, y, dls)
    z = _logits(learn.model, xv)
    preds, _ = learn.get_preds()  # softmax, as for fastai's CrossEntropyLossFlat
    np.testing.assert_allclose(preds.numpy(), np.exp(_log_softmax(z)), rtol=1e-5, atol=1e-7)
    raw, _ = learn.get_preds(act=lambda t: t)
    np.testing.assert_allclose(raw.numpy(), z, rtol=1e-5, atol=1e-6)
    _, _, losses = learn.get_preds(with_loss=True)
    assert losses.shape == (len(xv),)


def test_predict_one_item(capsys):
    x, y, dls = _toy()
    learn = _quiet(Learner(dls, _mlp()))
    item = x[5]
    label, dec, probs = learn.predict(item)
    p = np.exp(_log_softmax(_logits(learn.model, item[None])))[0]
    np.testing.assert_allclose(probs.numpy(), p, rtol=1e-5)
    assert label == int(p.argmax()) and int(dec) == label


def test_show_results_prints_targets_and_predictions(capsys):
    x, y, dls = _toy()
    learn = _quiet(Learner(dls, _mlp()))
    capsys.readouterr()
    learn.show_results(max_n=4, shuffle=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.split(r"\s+", lines[0].strip()) == ["input", "target", "prediction"]
    assert len(lines) == 5
    xv, yv = _valid_arrays(x, y, dls)
    z = _logits(learn.model, xv[:4])
    for i, line in enumerate(lines[1:]):
        cells = re.split(r"\s{2,}", line.strip())
        assert cells[-2:] == [str(yv[i]), str(z[i].argmax())]


# ----- the recorder and the table ----------------------------------------------------------------

class RawLoss(Callback):
    order = 90

    def before_fit(self):
        self.losses, self.lrs = [], []

    def after_batch(self):
        if self.learn.training:
            self.losses.append(float(self.learn.loss))
            self.lrs.append(self.learn.opt.param_groups[0]["lr"])


def test_recorder_smooths_losses_and_keeps_rows(capsys):
    x, y, dls = _toy()
    learn = _quiet(Learner(dls, _mlp(), metrics=accuracy))
    raw = RawLoss()
    learn.fit(2, lr=3e-3, cbs=raw)
    rec = learn.recorder
    ema, smooth = 0.0, []
    for i, v in enumerate(raw.losses, 1):  # fastai's debiased moving average, beta 0.98
        ema = 0.98 * ema + 0.02 * v
        smooth.append(ema / (1 - 0.98 ** i))
    np.testing.assert_allclose(rec.losses, smooth, rtol=1e-9)
    assert rec.lrs == raw.lrs == [3e-3] * len(raw.losses)
    n_iter = len(dls.train)
    assert rec.iters == [n_iter, 2 * n_iter]
    assert rec.metric_names == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert [r[0] for r in rec.values] == pytest.approx([smooth[n_iter - 1], smooth[-1]])
    np.testing.assert_allclose(rec.values[-1][1:], learn.validate(), rtol=1e-9)
    assert learn.smooth_loss == pytest.approx(smooth[-1])
    assert rec.history["val_accuracy"][-1] == rec.values[-1][2]


def test_results_table_is_printed(capsys):
    x, y, dls = _toy()
    learn = _quiet(Learner(dls, _mlp(), metrics=accuracy))
    capsys.readouterr()
    learn.fit(2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].rstrip() == "epoch     train_loss  valid_loss  accuracy  time"
    assert len(lines) == 3
    for e, line in enumerate(lines[1:]):
        cells = line.split()
        assert cells[0] == str(e)
        assert all(re.fullmatch(r"\d+\.\d{6}", c) for c in cells[1:4])
        assert re.fullmatch(r"\d\d:\d\d", cells[4])
    with learn.no_logging():
        learn.fit(1)
    assert capsys.readouterr().out == ""


def test_progress_bar_runs_and_no_bar_removes_it(capsys):
    x, y, dls = _toy()
    learn = Learner(dls, _mlp())
    assert isinstance(learn.progress, ProgressCallback)
    learn.fit(1)
    with learn.no_bar():
        assert not any(isinstance(c, ProgressCallback) for c in learn.cbs)
    assert learn.progress in learn.cbs


# ----- callbacks ---------------------------------------------------------------------------------

def test_default_callbacks_are_reachable_by_name():
    _, _, dls = _toy()
    learn = Learner(dls, _mlp())
    assert isinstance(learn.recorder, Recorder)
    assert isinstance(learn.train_eval, TrainEvalCallback)

    class MyThing(Callback):
        pass
    cb = MyThing()
    learn.add_cb(cb)
    assert learn.my_thing is cb and cb.learn is learn
    learn.remove_cb(cb)
    assert cb not in learn.cbs and learn.my_thing is None


def test_cancel_fit_from_a_callback(capsys):
    _, _, dls = _toy()

    class StopAfter2(Callback):
        order = 60  # after the recorder has logged the batch

        def after_batch(self):
            if self.learn.train_iter == 2:
                raise CancelFitException()

    learn = _quiet(Learner(dls, _mlp()))
    learn.fit(3, cbs=StopAfter2())
    assert learn.train_iter == 2 and len(learn.recorder.losses) == 2


# ----- optimiser groups, freezing ----------------------------------------------------------------

def _split_model():
    em.manual_seed(0)
    body = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU())
    return nn.Sequential(body, nn.Linear(16, 3))


def test_weight_decay_skips_biases_and_norm_layers():
    _, _, dls = _toy()
    model = _split_model()
    learn = Learner(dls, model, splitter=default_split)
    learn.create_opt()
    decays = {id(p): g["weight_decay"] for g in learn.opt.param_groups for p in g["params"]}
    assert decays[id(model[0][0].weight)] == 0.01 and decays[id(model[1].weight)] == 0.01
    for p in (model[0][0].bias, model[0][1].weight, model[0][1].bias, model[1].bias):
        assert decays[id(p)] == 0.0
    learn.set_hyper("wd", 0.1)
    assert decays[id(model[1].weight)] != learn.hypers[1]["wd"] == 0.1
    assert all(g["weight_decay"] in (0.0, 0.1) for g in learn.opt.param_groups)


def test_discriminative_learning_rates():
    _, _, dls = _toy()
    learn = Learner(dls, _split_model(), splitter=default_split)
    learn.set_hyper("lr", slice(1e-4, 1e-2))
    assert [h["lr"] for h in learn.hypers] == pytest.approx([1e-4, 1e-2])
    learn.set_hyper("lr", slice(1e-2))  # fastai: lr/10 for all but the last group
    assert [h["lr"] for h in learn.hypers] == pytest.approx([1e-3, 1e-2])
    with pytest.raises(ValueError, match="3 values for lr but there are 2"):
        learn.set_hyper("lr", [1e-3, 1e-3, 1e-3])


@pytest.mark.parametrize("train_bn", [True, False])
def test_freeze_trains_only_the_head(train_bn, capsys):
    _, _, dls = _toy()
    model = _split_model()
    learn = _quiet(Learner(dls, model, splitter=default_split, train_bn=train_bn))
    learn.freeze()
    before = _params(model)
    learn.fit(1, lr=1e-2)
    after = _params(model)
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    bn = {"0.1.weight", "0.1.bias"}
    assert changed == {"1.weight", "1.bias"} | (bn if train_bn else set())
    learn.unfreeze()
    learn.fit(1, lr=1e-2)
    again = _params(model)
    assert all(not np.array_equal(after[k], again[k]) for k in after)


def test_freeze_with_one_group_warns():
    _, _, dls = _toy()
    learn = Learner(dls, _mlp())
    with pytest.warns(UserWarning, match="single parameter group"):
        learn.freeze()
    assert all(p.requires_grad for p in learn.model.parameters())


def test_fine_tune_runs_frozen_then_unfrozen(capsys):
    _, _, dls = _toy()
    model = _split_model()
    learn = _quiet(Learner(dls, model, splitter=default_split))
    learn.fine_tune(1, freeze_epochs=1)
    assert all(p.requires_grad for p in model.parameters())
    assert len(learn.recorder.values) == 1  # the recorder describes the last fit


# ----- checkpoints -------------------------------------------------------------------------------

def test_save_load_round_trip_with_optimizer(tmp_path, capsys):
    _, _, dls = _toy()
    learn = _quiet(Learner(dls, _mlp(), path=tmp_path))
    learn.fit(1, lr=1e-2)
    f = learn.save("stage1")
    assert f == tmp_path / "models" / "stage1.safetensors"
    saved = _params(learn.model)
    saved_opt = {k: {n: np.array(t.numpy()) for n, t in s.items()}
                 for k, s in learn.opt.state_dict()["state"].items()}
    learn.fit(1, lr=1e-2)
    assert not np.array_equal(saved["0.weight"], learn.model[0].weight.detach().numpy())
    learn.load("stage1")
    for k, v in _params(learn.model).items():
        np.testing.assert_array_equal(v, saved[k])
    state = learn.opt.state_dict()["state"]
    for k, s in saved_opt.items():
        for n, v in s.items():
            np.testing.assert_array_equal(state[k][n].numpy(), v)
    assert sorted(p.name for p in f.parent.iterdir()) == ["stage1.safetensors"]  # no temp left


def test_checkpoint_is_safetensors_not_pickle(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    _, _, dls = _toy()
    learn = Learner(dls, _mlp(), path=tmp_path)
    f = learn.save("m", with_opt=False)
    assert f.read_bytes()[:1] != b"\x80"  # pickle's protocol marker
    tensors = st.load_file(str(f))
    np.testing.assert_array_equal(tensors["model.0.weight"], learn.model[0].weight.detach().numpy())


def test_load_without_optimizer_state_warns(tmp_path):
    _, _, dls = _toy()
    learn = Learner(dls, _mlp(), path=tmp_path)
    learn.save("m", with_opt=False)
    with pytest.warns(UserWarning, match="no optimizer state"):
        learn.load("m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learn.load("m", with_opt=False)


# ----- errors ------------------------------------------------------------------------------------

def test_errors_are_clear(tmp_path):
    x, y, dls = _toy()
    with pytest.raises(TypeError, match="dls must be DataLoaders"):
        Learner((x, y), _mlp())
    plain = DataLoaders(dls.train, dls.valid)
    with pytest.raises(ValueError, match="could not infer a loss function"):
        Learner(plain, _mlp())
    small = DataLoaders.from_arrays(x[:20], y[:20], bs=64)
    with pytest.raises(ValueError, match="yields no batch"):
        Learner(small, _mlp()).fit(1)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Learner(dls, _mlp(), path=tmp_path).load("missing")
    with pytest.raises(TypeError, match="Learner metrics"):
        Learner(dls, _mlp(), metrics=[3])
