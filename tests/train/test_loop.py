"""ember.train.Engine: event order, cancel exceptions, equivalence with a hand-written loop
(eager and compiled), loss/metric bookkeeping against NumPy, gradient callbacks."""
import io

import numpy as np
import pytest

import ember as em
import ember.nn as nn
import ember.nn.functional as F
from ember.train import (Callback, CancelBatchException, CancelEpochException,
                         CancelFitException, CancelTrainException, CancelValidException,
                         Engine, GradientAccumulation, GradientClip, ProgressBar, metrics)


def _data(n=40, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    return x, y


def _batches(x, y, bs):
    return [(x[i:i + bs], y[i:i + bs]) for i in range(0, len(x), bs)]


def _model(d=5, k=3, seed=0):
    em.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, k))


def _params(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _np_forward(p, x):
    h = np.tanh(x @ p["0.weight"].T + p["0.bias"])
    return h @ p["2.weight"].T + p["2.bias"]


def _np_ce(logits, y):
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), y]


class Record(Callback):
    def __init__(self):
        self.events = []

    def __getattribute__(self, name):
        if name.startswith(("before_", "after_")):
            return lambda: object.__getattribute__(self, "events").append(name)
        return object.__getattribute__(self, name)


for _ev in ("before_fit", "before_epoch", "before_train", "before_batch", "after_batch",
            "after_train", "before_validate", "after_validate", "after_epoch", "after_fit",
            "after_cancel_batch", "after_cancel_train", "after_cancel_validate",
            "after_cancel_epoch", "after_cancel_fit"):
    setattr(Record, _ev, lambda self: None)


def test_event_order_of_a_fit():
    x, y = _data(8)
    rec = Record()
    e = Engine(_model(), F.cross_entropy, None, _batches(x, y, 4), _batches(x, y, 8),
               cbs=[rec])
    e.opt = em.optim.SGD(e.model.parameters(), lr=0.1)
    e.fit(1)
    batch = ["before_batch", "after_batch"]
    assert rec.events == (["before_fit", "before_epoch", "before_train"] + batch * 2 +
                          ["after_train", "before_validate"] + batch +
                          ["after_validate", "after_epoch", "after_fit"])


class StepEvents(Callback):
    """Defines the step's inner events, so it keeps the loop eager."""

    def __init__(self):
        self.events = []

    def after_pred(self):
        self.events.append("after_pred")

    def after_loss(self):
        self.events.append("after_loss")

    def before_backward(self):
        self.events.append("before_backward")

    def after_backward(self):
        self.events.append("after_backward")

    def before_step(self):
        self.events.append("before_step")

    def after_step(self):
        self.events.append("after_step")


def test_step_events_in_order_and_they_turn_compilation_off():
    x, y = _data(4)
    cb = StepEvents()
    model = _model()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.1),
               _batches(x, y, 4), _batches(x, y, 4), cbs=[cb])
    e.fit(1)
    assert e.jit_status.startswith("off") and "StepEvents" in e.jit_status
    assert cb.events == ["after_pred", "after_loss", "before_backward", "after_backward",
                         "before_step", "after_step", "after_pred", "after_loss"]


@pytest.mark.parametrize("jit", [False, True])
def test_fit_equals_a_hand_written_loop(jit):
    x, y = _data(40)
    data = _batches(x, y, 16)  # 16, 16, 8: a partial last batch
    ref = _model()
    opt = em.optim.Adam(ref.parameters(), lr=0.05)
    for _ in range(3):
        for xb, yb in data:
            opt.zero_grad()
            F.cross_entropy(ref(em.tensor(xb)), em.tensor(yb)).backward()
            opt.step()
    model = _model()
    e = Engine(model, F.cross_entropy, em.optim.Adam(model.parameters(), lr=0.05), data,
               jit_compile=jit)
    e.fit(3)
    assert e.jit_status == ("on" if jit else "off (jit_compile=False)")
    want, got = _params(ref), _params(model)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("jit", [False, True])
def test_logged_loss_and_metrics_match_numpy(jit):
    x, y = _data(40)
    data = _batches(x, y, 16)

    class Snap(Callback):  # the parameters before each training batch
        order = -1

        def __init__(self):
            self.before = []

        def before_batch(self):
            if self.training:
                self.before.append(_params(self.model))

    snap = Snap()
    model = _model()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.1), data,
               data, metrics=[metrics.Accuracy()], cbs=[snap], jit_compile=jit)
    h = e.fit(1)
    losses, hits = [], []
    for p, (xb, yb) in zip(snap.before, data):
        z = _np_forward(p, xb)
        losses.append(_np_ce(z, yb))
        hits.append(z.argmax(1) == yb)
    np.testing.assert_allclose(h["loss"][0], np.concatenate(losses).mean(), rtol=1e-5)
    np.testing.assert_allclose(e.recorder.losses, [v.mean() for v in losses], rtol=1e-5)
    assert e.recorder.lrs == [0.1] * len(data)
    np.testing.assert_allclose(h["accuracy"][0], np.concatenate(hits).mean(), rtol=1e-6)
    z = _np_forward(_params(model), x)  # validation runs on the final parameters
    np.testing.assert_allclose(h["val_loss"][0], _np_ce(z, y).mean(), rtol=1e-5)
    np.testing.assert_allclose(h["val_accuracy"][0], (z.argmax(1) == y).mean(), rtol=1e-6)


@pytest.mark.parametrize("exc, trained, validated, epochs, cancel_event", [
    (CancelBatchException, 0, 2, 2, "after_cancel_batch"),
    (CancelTrainException, 0, 2, 2, "after_cancel_train"),
    (CancelValidException, 4, 0, 2, "after_cancel_validate"),
    (CancelEpochException, 0, 0, 2, "after_cancel_epoch"),
    (CancelFitException, 0, 0, 0, "after_cancel_fit"),
])
def test_cancel_exceptions(exc, trained, validated, epochs, cancel_event):
    where = {CancelBatchException: "before_batch", CancelTrainException: "before_train",
             CancelValidException: "before_validate", CancelEpochException: "before_epoch",
             CancelFitException: "before_fit"}[exc]

    class Raise(Callback):
        def __init__(self):
            self.steps = self.valid_batches = 0
            self.seen = set()

        def after_step(self):
            self.steps += 1

        def after_batch(self):
            if not self.training:
                self.valid_batches += 1

    def raiser(self):
        raise exc()
    setattr(Raise, where, raiser)
    setattr(Raise, cancel_event, lambda self: self.seen.add(cancel_event))
    cb = Raise()
    x, y = _data(8)
    model = _model()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.1),
               _batches(x, y, 4), _batches(x, y, 8), cbs=[cb])
    h = e.fit(2)
    assert cb.steps == trained and cb.valid_batches == validated
    assert cancel_event in cb.seen
    assert len(e.recorder.epochs) == epochs and len(h.get("loss", [])) <= epochs


def test_stop_after_first_batch_still_validates_and_ends_the_fit():
    class Stop(Callback):
        order = 60  # after the recorder: an exception skips the event's later callbacks

        def after_batch(self):
            if self.training:
                raise CancelTrainException()

        def after_epoch(self):
            raise CancelFitException()

    x, y = _data(12)
    model = _model()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.1),
               _batches(x, y, 4), _batches(x, y, 12), cbs=[Stop()])
    h = e.fit(5)
    assert e.recorder.epochs == [0] and "val_loss" in h
    z = _np_forward(_params(model), x)
    np.testing.assert_allclose(h["val_loss"][0], _np_ce(z, y).mean(), rtol=1e-5)


@pytest.mark.parametrize("freq, validated", [(1, [0, 1, 2, 3]), (2, [1, 3]), ([1, 4], [0, 3])])
def test_valid_freq(freq, validated):
    x, y = _data(8)
    model = _model()

    class Seen(Callback):
        def __init__(self):
            self.epochs = []

        def before_validate(self):
            self.epochs.append(self.epoch)
    seen = Seen()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.1),
               _batches(x, y, 8), _batches(x, y, 8), cbs=[seen], valid_freq=freq)
    e.fit(4)
    assert seen.epochs == validated


@pytest.mark.parametrize("jit", [False, True])
def test_gradient_accumulation_equals_one_big_batch(jit):
    x, y = _data(32)
    ref = _model()
    opt = em.optim.SGD(ref.parameters(), lr=0.5)
    for xb, yb in _batches(x, y, 16):
        opt.zero_grad()
        F.cross_entropy(ref(em.tensor(xb)), em.tensor(yb)).backward()
        opt.step()
    model = _model()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.5),
               _batches(x, y, 8), cbs=[GradientAccumulation(2)], jit_compile=jit)
    if jit:
        with pytest.warns(UserWarning, match="runs eagerly.*GradientAccumulation"):
            e.fit(1)
    else:
        e.fit(1)
    assert e.jit_status.startswith("off")  # accumulation needs the step's events
    want, got = _params(ref), _params(model)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("kw", [dict(max_norm=0.05), dict(clip_value=0.01),
                                dict(max_norm=0.05, norm_type=float("inf"))])
def test_gradient_clip_matches_the_formula(kw, jit):
    x, y = _data(16)
    ref = _model()
    out = F.cross_entropy(ref(em.tensor(x)), em.tensor(y))
    out.backward()
    grads = {k: p.grad.numpy().copy() for k, p in ref.named_parameters()}
    p0 = _params(ref)
    if "clip_value" in kw:
        clipped = {k: np.clip(g, -0.01, 0.01) for k, g in grads.items()}
    else:
        flat = np.concatenate([g.ravel() for g in grads.values()]).astype(np.float64)
        total = np.abs(flat).max() if "norm_type" in kw else np.sqrt((flat ** 2).sum())
        coef = min(1.0, 0.05 / (total + 1e-6))
        assert coef < 1  # the test must clip something
        clipped = {k: g * coef for k, g in grads.items()}
    model = _model()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=1.0),
               _batches(x, y, 16), cbs=[GradientClip(**kw)], jit_compile=jit)
    e.fit(1)
    assert e.jit_status == ("on" if jit else "off (jit_compile=False)")
    got = _params(model)
    for k in clipped:
        np.testing.assert_allclose(got[k], p0[k] - clipped[k], rtol=1e-5, atol=1e-7,
                                   err_msg=k)


def test_compiled_step_falls_back_when_the_trace_reads_values():
    class Peek(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 3)

        def forward(self, x):
            out = self.fc(x)
            if out.sum().item() > 1e9:  # data-dependent Python: cannot be one graph
                out = out * 0
            return out

    x, y = _data(16)
    em.manual_seed(1)
    ref = Peek()
    opt = em.optim.SGD(ref.parameters(), lr=0.1)
    for xb, yb in _batches(x, y, 8):
        opt.zero_grad()
        F.cross_entropy(ref(em.tensor(xb)), em.tensor(yb)).backward()
        opt.step()
    em.manual_seed(1)
    model = Peek()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.1),
               _batches(x, y, 8))
    e.fit(1)
    assert e.jit_status.startswith("off") and "data-dependent" in e.jit_status
    for k, v in _params(ref).items():
        np.testing.assert_allclose(_params(model)[k], v, rtol=1e-6, err_msg=k)


def test_auto_compilation_gives_up_on_ever_changing_shapes():
    x, y = _data(30)
    data = [(x[i:i + n], y[i:i + n]) for i, n in zip((0, 2, 5, 9, 14, 20), (2, 3, 4, 5, 6, 7))]
    ref = _model()
    opt = em.optim.SGD(ref.parameters(), lr=0.1)
    for xb, yb in data:
        opt.zero_grad()
        F.cross_entropy(ref(em.tensor(xb)), em.tensor(yb)).backward()
        opt.step()
    model = _model()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.1), data)
    e.fit(1)
    assert "different shapes" in e.jit_status
    for k, v in _params(ref).items():
        np.testing.assert_allclose(_params(model)[k], v, rtol=1e-5, atol=1e-7, err_msg=k)


def test_start_epoch_and_skip_batches_train_only_the_rest():
    x, y = _data(24)
    data = _batches(x, y, 8)
    ref = _model()
    opt = em.optim.SGD(ref.parameters(), lr=0.1)
    for xb, yb in data[2:] + data:  # rest of epoch 1, then all of epoch 2
        opt.zero_grad()
        F.cross_entropy(ref(em.tensor(xb)), em.tensor(yb)).backward()
        opt.step()

    class Resume(Callback):
        def __init__(self):
            self.iters = []

        def before_fit(self):
            self.engine.start_epoch = 1
            self.engine.skip_batches = 2

        def before_batch(self):
            if self.training:
                self.iters.append((self.epoch, self.iter))

    cb = Resume()
    model = _model()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.1), data,
               cbs=[cb])
    e.fit(3)
    assert cb.iters == [(1, 2), (2, 0), (2, 1), (2, 2)]
    for k, v in _params(ref).items():
        np.testing.assert_allclose(_params(model)[k], v, rtol=1e-5, atol=1e-7, err_msg=k)


def test_predict_and_validate():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 3)

        def forward(self, x):
            z = self.fc(x)
            return {"logits": z, "first": (z[:, 0],)}

    x, y = _data(10)
    model = Two()
    e = Engine(model, lambda p, t: F.cross_entropy(p["logits"], t))
    out = e.predict([(x[:4],), (x[4:],)])
    p = _params(model)
    z = x @ p["fc.weight"].T + p["fc.bias"]
    assert set(out) == {"logits", "first"} and isinstance(out["first"], tuple)
    np.testing.assert_allclose(out["logits"], z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["first"][0], z[:, 0], rtol=1e-5, atol=1e-6)
    logs = e.validate(_batches(x, y, 3))
    assert set(logs) == {"loss"}
    np.testing.assert_allclose(logs["loss"], _np_ce(z, y).mean(), rtol=1e-5)


def test_loss_parts_are_logged():
    x, y = _data(12)
    model = _model()

    def loss(pred, t):
        ce = F.cross_entropy(pred, t)
        reg = (pred ** 2).mean()
        return ce + 0.1 * reg, {"ce": ce, "reg": reg}

    for jit in (False, True):
        e = Engine(model, loss, em.optim.SGD(model.parameters(), lr=0.0), _batches(x, y, 4),
                   jit_compile=jit)
        h = e.fit(1)
        z = _np_forward(_params(model), x)
        np.testing.assert_allclose(h["ce"][0], _np_ce(z, y).mean(), rtol=1e-5)
        np.testing.assert_allclose(h["reg"][0], (z ** 2).mean(), rtol=1e-5)
        np.testing.assert_allclose(h["loss"][0], h["ce"][0] + 0.1 * h["reg"][0], rtol=1e-5)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("verbose, live", [(1, False), (1, True), (2, False)])
def test_progress_output(verbose, live, capsys):
    pytest.importorskip("tqdm")
    x, y = _data(16)
    model = _model()
    bar = ProgressBar(verbose, file=_Terminal() if live else None)
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.1),
               _batches(x, y, 4), _batches(x, y, 8), metrics=[metrics.Accuracy()],
               cbs=[bar])
    e.fit(2)
    out = bar.file.getvalue() if live else capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "4/4" in out and "val_accuracy: " in out and "loss: " in out
    if not live:  # a log file gets one line per epoch
        lines = [ln for ln in out.splitlines() if ln.startswith("4/4")]
        assert len(lines) == 2 and "/step" in lines[0]
    else:  # tqdm's live bar: carriage returns, an ETA
        assert "\r" in out and "<" in out


def test_bad_arguments_are_named():
    model = _model()
    with pytest.raises(ValueError, match="Engine.fit: no optimiser"):
        Engine(model, F.cross_entropy, None, [(np.zeros((1, 5), np.float32), [0])]).fit(1)
    with pytest.raises(ValueError, match="jit_compile"):
        Engine(model, jit_compile="yes")
    with pytest.raises(TypeError, match="Engine.add_cb"):
        Engine(model).add_cb(object())
    with pytest.raises(ValueError, match="GradientClip"):
        GradientClip()
    with pytest.raises(ValueError, match="GradientAccumulation"):
        GradientAccumulation(0)


def test_run_valid_false_skips_validation_batches_but_not_epoch_events():
    x, y = _data()
    calls = []

    class TrainOnly(Callback):
        run_valid = False

        def after_batch(self):
            calls.append(("batch", self.training))

        def after_epoch(self):
            calls.append(("epoch", None))

    model = _model()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.1),
               _batches(x, y, 20), _batches(x, y, 20), cbs=[TrainOnly()], verbose=0)
    e.fit(2)
    assert calls == [("batch", True)] * 2 + [("epoch", None)] + [("batch", True)] * 2 + \
        [("epoch", None)]
    assert TrainOnly().name == "train_only"


def test_validate_and_predict_leave_the_epoch_of_a_fit():
    x, y = _data()
    model = _model()
    e = Engine(model, F.cross_entropy, em.optim.SGD(model.parameters(), lr=0.1),
               _batches(x, y, 20), _batches(x, y, 20), verbose=0)
    e.fit(3)
    e.validate()
    e.predict([(x,)])
    assert e.epoch == 2
