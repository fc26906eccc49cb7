"""ember.keras.callbacks driven hook by hook with a small fake model: the expected values are
worked out by hand from Keras 3's documented rules (test_callbacks_keras_oracle.py checks the
same cases against Keras itself)."""
import csv
import math
import os
import warnings

import numpy as np
import pytest

import ember
from ember.keras.callbacks import (Callback, CallbackList, CSVLogger, EarlyStopping, History,
                                   LambdaCallback, LearningRateScheduler, ModelCheckpoint,
                                   ReduceLROnPlateau, TerminateOnNaN)


class FakeOptimizer:
    def __init__(self, lr=1.0):
        self.learning_rate = lr


class FakeModel:
    """What callbacks use of a Keras model: weights, optimizer, stop_training, save."""

    def __init__(self, lr=1.0):
        self.weights = [np.zeros((2, 3)), np.zeros(3)]
        self.optimizer = FakeOptimizer(lr)
        self.stop_training = False
        self.saved = []  # (kind, path) of every save

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]

    def save(self, path):
        with open(path, "w") as f:
            f.write(f"model {self.weights[1][0]:g}")
        self.saved.append(("model", path))

    def save_weights(self, path):
        with open(path, "w") as f:
            f.write(f"weights {self.weights[1][0]:g}")
        self.saved.append(("weights", path))


def run_epochs(callbacks, values, monitor="val_loss", model=None):
    """A fit loop in miniature: epoch e's weights are filled with e and its logs hold
    ``values[e]`` under ``monitor``. Returns (model, epochs run, lr after each epoch)."""
    model = model or FakeModel()
    cbs = CallbackList(callbacks, model=model, epochs=len(values))
    cbs.on_train_begin()
    ran, lrs = 0, []
    for epoch, v in enumerate(values):
        cbs.on_epoch_begin(epoch)
        model.weights = [np.full_like(w, epoch) for w in model.weights]
        cbs.on_epoch_end(epoch, {"loss": 0.0, monitor: v} if monitor != "loss" else {"loss": v})
        lrs.append(model.optimizer.learning_rate)
        ran += 1
        if model.stop_training:
            break
    cbs.on_train_end()
    return model, ran, lrs


# ----- Callback, CallbackList, History ------------------------------------------------------

class Recorder(Callback):
    def __init__(self, name, log):
        super().__init__()
        self.name, self.log = name, log

    def on_epoch_end(self, epoch, logs=None):
        self.log.append((self.name, epoch, dict(logs)))

    def on_batch_end(self, batch, logs=None):  # the old name: reached via on_train_batch_end
        self.log.append((self.name, "batch", batch))


def test_callback_list_calls_each_callback_in_order_with_model_and_params():
    log = []
    a, b = Recorder("a", log), Recorder("b", log)
    model = FakeModel()
    cbs = CallbackList([a, [b]], model=model, epochs=3, steps=5)
    assert a.model is model and b.model is model
    assert a.params == {"epochs": 3, "steps": 5} == b.params
    cbs.on_train_begin()
    cbs.on_train_batch_end(4, {"loss": 1.0})
    cbs.on_epoch_end(0, {"loss": 1.0})
    cbs.on_train_end()
    assert log == [("a", "batch", 4), ("b", "batch", 4),
                   ("a", 0, {"loss": 1.0}), ("b", 0, {"loss": 1.0})]


def test_callback_list_turns_log_values_into_python_floats():
    got = []
    cb = LambdaCallback(on_epoch_end=lambda epoch, logs: got.append(logs))
    cbs = CallbackList([cb], model=FakeModel())
    cbs.on_epoch_end(0, {"loss": ember.tensor(0.5), "acc": np.float32(0.25),
                         "vec": np.array([1.0, 2.0]), "out": {"out_loss": np.array(2.0)}})
    logs = got[0]
    assert logs == {"loss": 0.5, "acc": 0.25, "out_loss": 2.0, "vec": logs["vec"]}
    assert all(type(logs[k]) is float for k in ("loss", "acc", "out_loss"))
    np.testing.assert_array_equal(logs["vec"], [1.0, 2.0])


def test_callback_list_add_history_records_epochs_on_model_history():
    model = FakeModel()
    cbs = CallbackList([], add_history=True, model=model, epochs=2)
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"loss": 3.0, "val_loss": 4.0})
    cbs.on_epoch_end(1, {"loss": 2.0, "val_loss": 5.0})
    cbs.on_train_end()
    assert isinstance(model.history, History)
    assert model.history.history == {"loss": [3.0, 2.0], "val_loss": [4.0, 5.0]}
    assert model.history.epoch == [0, 1]
    assert model.history.params == {"epochs": 2}


def test_callback_list_keeps_a_given_history_and_shares_logs_added_by_earlier_callbacks():
    model = FakeModel(lr=0.5)
    hist = History()
    # LearningRateScheduler adds "learning_rate" to the logs: History (after it) records it
    cbs = CallbackList([LearningRateScheduler(lambda e, lr: lr), hist], add_history=True,
                       model=model)
    assert [type(c) for c in cbs.callbacks] == [LearningRateScheduler, History]
    cbs.on_train_begin()
    cbs.on_epoch_begin(0)
    cbs.on_epoch_end(0, {"loss": 1.0})
    assert hist.history == {"loss": [1.0], "learning_rate": [0.5]}


def test_callback_list_rejects_non_callbacks_and_unbalanced_end():
    with pytest.raises(TypeError, match=r"CallbackList: callbacks\[1\] is a int"):
        CallbackList([Callback(), 3])
    with pytest.raises(ValueError, match="without its on_\\*_begin"):
        CallbackList([]).on_test_end()


def test_base_callback_hooks_do_nothing_and_train_batch_hooks_call_old_aliases():
    calls = []

    class Old(Callback):
        def on_batch_begin(self, batch, logs=None):
            calls.append(("begin", batch))

    cb = Old()
    for hook in ("on_train_begin", "on_train_end", "on_test_begin", "on_test_end",
                 "on_predict_begin", "on_predict_end"):
        assert getattr(cb, hook)({}) is None
    cb.on_train_batch_begin(7)
    cb.on_test_batch_begin(8)  # not a training batch: no alias
    assert calls == [("begin", 7)]


def test_is_default_tells_overridden_hooks_apart():
    from ember.keras.callbacks.callback import is_default

    class Sub(Callback):
        def on_batch_end(self, batch, logs=None):
            pass

    cases = [(Callback().on_train_batch_end, True), (Sub().on_batch_end, False),
             (Sub().on_train_batch_end, True), (Sub().on_epoch_end, True),
             (LambdaCallback(on_train_batch_end=print).on_train_batch_end, False),
             (LambdaCallback(on_train_batch_end=print).on_test_batch_end, True),
             (TerminateOnNaN().on_batch_end, False), (CSVLogger("x").on_epoch_end, False)]
    assert [is_default(m) for m, _ in cases] == [want for _, want in cases]


# ----- EarlyStopping ---------------------------------------------------------------------------

# (kwargs, monitored values, epochs run, stopped_epoch, best epoch) -- traced by hand from the
# rule: wait += 1 each monitored epoch; an improvement (beyond min_delta) resets it (if the
# baseline is beaten too); stop once wait >= patience (never at epoch 0)
EARLY_STOPPING_CASES = [
    (dict(patience=0), [1.0, 0.9, 0.95, 0.8], 3, 2, 1),
    (dict(patience=2), [1.0, 0.9, 0.95, 0.96, 0.97, 0.5], 4, 3, 1),
    (dict(patience=2, min_delta=0.1), [1.0, 0.95, 0.85, 0.84, 0.83, 0.1], 5, 4, 2),
    (dict(patience=1, monitor="val_accuracy"), [0.5, 0.6, 0.55, 0.58, 0.7], 3, 2, 1),
    (dict(patience=1, mode="max"), [0.5, 0.6, 0.55, 0.58, 0.7], 3, 2, 1),
    (dict(patience=2, baseline=0.5), [0.9, 0.95, 0.97, 0.4], 2, 1, 0),
    (dict(patience=0, start_from_epoch=2), [1.0, 2.0, 3.0, 4.0, 5.0], 4, 3, 2),
    (dict(patience=3), [1.0, 0.9, 0.8, 0.7], 4, 0, 3),  # never stops
]


@pytest.mark.parametrize("kwargs,values,ran,stopped,best", EARLY_STOPPING_CASES)
def test_early_stopping_stops_at_the_right_epoch(kwargs, values, ran, stopped, best):
    kwargs = dict(kwargs)
    monitor = kwargs.pop("monitor", "val_loss")
    cb = EarlyStopping(monitor=monitor, **kwargs)
    _, n, _ = run_epochs([cb], values, monitor=monitor)
    assert (n, cb.stopped_epoch, cb.best_epoch) == (ran, stopped, best)


@pytest.mark.parametrize("kwargs,values,ran,stopped,best", EARLY_STOPPING_CASES)
def test_early_stopping_restores_the_best_epochs_weights(kwargs, values, ran, stopped, best):
    kwargs = dict(kwargs)
    monitor = kwargs.pop("monitor", "val_loss")
    cb = EarlyStopping(monitor=monitor, restore_best_weights=True, **kwargs)
    model, _, _ = run_epochs([cb], values, monitor=monitor)
    for w in model.weights:  # epoch e's weights are all e
        np.testing.assert_array_equal(w, np.full_like(w, best))


def test_early_stopping_without_restore_keeps_last_weights_and_is_reusable():
    cb = EarlyStopping(monitor="loss", patience=0)
    model, n, _ = run_epochs([cb], [1.0, 2.0, 3.0], monitor="loss")
    assert n == 2 and model.weights[0][0, 0] == 1.0
    model, n, _ = run_epochs([cb], [5.0, 4.0, 3.0, 3.5], monitor="loss")
    assert n == 4 and cb.stopped_epoch == 3  # state was reset by on_train_begin


def test_early_stopping_warns_when_the_metric_is_missing():
    cb = EarlyStopping(monitor="val_loss")
    with pytest.warns(UserWarning, match="val_loss.*which is not available. Available "
                                         "metrics are: loss"):
        _, n, _ = run_epochs([cb], [1.0, 2.0], monitor="loss")
    assert n == 2


@pytest.mark.parametrize("monitor,op", [("val_loss", "min"), ("loss", "min"),
                                        ("accuracy", "max"), ("val_sparse_categorical_accuracy",
                                                              "max"),
                                        ("val_auc", "max"), ("precision", "max"),
                                        ("val_mae", "min"), ("mean_squared_error", "min"),
                                        ("val_binary_crossentropy", "min"), ("f1_score", "max")])
def test_auto_mode_direction_follows_the_metric_name(monitor, op):
    cb = EarlyStopping(monitor=monitor, patience=0)
    values = [1.0, 2.0, 3.0] if op == "max" else [3.0, 2.0, 1.0]  # always improving
    _, n, _ = run_epochs([cb], values, monitor=monitor)
    assert n == 3 and cb.stopped_epoch == 0


def test_auto_mode_uses_the_models_metric_direction_and_rejects_unknown_names():
    class Metric:
        name, _direction = "score", "up"

    model = FakeModel()
    model.metrics = [Metric()]
    cb = EarlyStopping(monitor="val_score", patience=0)
    _, n, _ = run_epochs([cb], [1.0, 2.0, 1.5], monitor="val_score", model=model)
    assert n == 3 and cb.stopped_epoch == 2
    with pytest.raises(ValueError, match="monitor=val_thing.*mode='max'"):
        run_epochs([EarlyStopping(monitor="val_thing")], [1.0], monitor="val_thing")


# ----- ReduceLROnPlateau -----------------------------------------------------------------------

# lr after each epoch, traced from Keras's rule: in cooldown, count down and reset wait; on
# improvement reset wait; else (not in cooldown) wait += 1 and reduce once wait >= patience,
# never below min_lr (an lr already at min_lr, compared in float32, is left alone)
FLAT = [1.0] * 6
REDUCE_LR_CASES = [
    (dict(factor=0.5, patience=1, min_delta=0, cooldown=0), FLAT,
     [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]),
    (dict(factor=0.5, patience=1, min_delta=0, cooldown=1, min_lr=0.1), FLAT,
     [1.0, 0.5, 0.25, 0.125, 0.1, 0.1]),
    (dict(factor=0.5, patience=1, min_delta=0, cooldown=2), FLAT,
     [1.0, 0.5, 0.5, 0.25, 0.25, 0.125]),
    (dict(factor=0.1, patience=2), [1.0, 0.9, 0.95, 0.9, 0.5, 0.6, 0.7],
     [1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01]),
    # min_delta=0.2 in min mode: 0.85 is no improvement on 1.0, 0.7 is
    (dict(factor=0.5, patience=2, min_delta=0.2), [1.0, 0.85, 0.7, 0.6, 0.55],
     [1.0, 1.0, 1.0, 1.0, 0.5]),
]


@pytest.mark.parametrize("kwargs,values,expected", REDUCE_LR_CASES)
def test_reduce_lr_on_plateau_lr_sequence(kwargs, values, expected):
    _, _, lrs = run_epochs([ReduceLROnPlateau(**kwargs)], values)
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


def test_reduce_lr_on_plateau_max_mode_and_logged_learning_rate():
    seen = []
    cbs = [ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1),
           LambdaCallback(on_epoch_end=lambda e, logs: seen.append(logs["learning_rate"]))]
    _, _, lrs = run_epochs(cbs, [0.5, 0.6, 0.6, 0.7], monitor="val_accuracy")
    assert lrs == [1.0, 1.0, 0.5, 0.5]
    assert seen == [1.0, 1.0, 1.0, 0.5]  # the lr the epoch ran with


def test_reduce_lr_on_plateau_bad_arguments():
    with pytest.raises(ValueError, match="factor >= 1.0. Received factor=1.5"):
        ReduceLROnPlateau(factor=1.5)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['patiense'\\]"):
        ReduceLROnPlateau(patiense=3)
    assert ReduceLROnPlateau(epsilon=0.5).min_delta == 0.5  # Keras 2's name


# ----- LearningRateScheduler, TerminateOnNaN, LambdaCallback --------------------------------

def test_learning_rate_scheduler_sets_lr_at_each_epoch_start():
    seen = []
    sched = LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr * math.exp(-0.1))
    spy = LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(model.optimizer.learning_rate))
    model = FakeModel(lr=0.01)
    run_epochs([sched, spy], [1.0] * 5, model=model)
    np.testing.assert_allclose(seen, [0.01, 0.01, 0.01 * math.exp(-0.1),
                                      0.01 * math.exp(-0.2), 0.01 * math.exp(-0.3)])


def test_learning_rate_scheduler_one_argument_schedule_and_bad_output():
    model, _, lrs = run_epochs([LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))],
                               [1.0] * 3)
    np.testing.assert_allclose(lrs, [0.1, 0.05, 0.1 / 3])
    with pytest.raises(ValueError, match="should be a float. Got: 1"):
        run_epochs([LearningRateScheduler(lambda epoch, lr: 1)], [1.0])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_terminate_on_nan_stops_at_the_bad_batch(bad):
    model = FakeModel()
    cbs = CallbackList([TerminateOnNaN()], model=model)
    cbs.on_train_batch_end(0, {"loss": 1.0})
    assert not model.stop_training
    cbs.on_train_batch_end(1, {"loss": bad})
    assert model.stop_training
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 3"):
        CallbackList([TerminateOnNaN(raise_error=True)], model=model).on_train_batch_end(
            3, {"loss": bad})


def test_lambda_callback_calls_the_given_functions():
    calls = []
    cb = LambdaCallback(on_epoch_begin=lambda e, logs: calls.append(("eb", e)),
                        on_train_batch_end=lambda b, logs: calls.append(("be", b, logs)),
                        on_train_end=lambda logs: calls.append(("te",)),
                        on_test_end=lambda logs: calls.append(("test_end", logs)))
    cbs = CallbackList([cb], model=FakeModel())
    cbs.on_train_begin()
    cbs.on_epoch_begin(0)
    cbs.on_train_batch_end(2, {"loss": 1.0})
    cbs.on_test_begin()
    cbs.on_test_end({"loss": 2.0})
    cbs.on_epoch_end(0)
    cbs.on_train_end()
    assert calls == [("eb", 0), ("be", 2, {"loss": 1.0}), ("test_end", {"loss": 2.0}),
                     ("te",)]
    with pytest.raises(TypeError, match="unknown hooks \\['on_epoch_ends'\\]"):
        LambdaCallback(on_epoch_ends=print)


# ----- CSVLogger -------------------------------------------------------------------------------

def _log_two_epochs(path, **kwargs):
    cb = CSVLogger(path, **kwargs)
    cbs = CallbackList([cb], model=FakeModel())
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.25})
    cbs.on_epoch_end(1, {"loss": 0.125, "accuracy": 0.75})
    cbs.on_train_end()


def test_csv_logger_writes_epoch_then_sorted_keys_with_na_for_missing_validation(tmp_path):
    path = tmp_path / "log.csv"
    _log_two_epochs(path)
    assert path.read_bytes() == (b"epoch,accuracy,loss,val_accuracy,val_loss\r\n"
                                 b"0,0.25,0.5,NA,NA\r\n1,0.75,0.125,NA,NA\r\n")


def test_csv_logger_append_separator_and_validation_keys(tmp_path):
    path = tmp_path / "sub" / "log.csv"
    _log_two_epochs(path, separator=";")
    _log_two_epochs(path, separator=";", append=True)  # no second header
    rows = list(csv.reader(open(path, newline=""), delimiter=";"))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "0", "1"]
    cb = CSVLogger(path)
    cbs = CallbackList([cb], model=FakeModel())
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"val_loss": 2.0, "loss": 1.0, "vec": np.array([1, 2])})
    cbs.on_train_end()
    rows = list(csv.reader(open(path, newline="")))
    assert rows == [["epoch", "loss", "val_loss", "vec"], ["0", "1.0", "2.0", '"[1, 2]"']]


# ----- ModelCheckpoint -------------------------------------------------------------------------

def test_model_checkpoint_formats_the_path_each_epoch(tmp_path):
    pattern = str(tmp_path / "ck" / "m-{epoch:02d}-{val_loss:.2f}.keras")
    model, _, _ = run_epochs([ModelCheckpoint(pattern)], [0.5, 0.25, 0.75])
    assert sorted(os.listdir(tmp_path / "ck")) == ["m-01-0.50.keras", "m-02-0.25.keras",
                                                   "m-03-0.75.keras"]
    assert (tmp_path / "ck" / "m-02-0.25.keras").read_text() == "model 1"


def test_model_checkpoint_save_best_only_keeps_the_best(tmp_path):
    path = tmp_path / "best.weights.h5"
    cb = ModelCheckpoint(path, save_best_only=True, save_weights_only=True)
    model, _, _ = run_epochs([cb], [0.5, 0.25, 0.75, 0.3])
    assert [kind for kind, _ in model.saved] == ["weights", "weights"]  # epochs 0 and 1
    assert path.read_text() == "weights 1"
    assert cb.best == 0.25
    assert os.listdir(tmp_path) == ["best.weights.h5"]  # no temporary file left


def test_model_checkpoint_max_mode_and_initial_value_threshold(tmp_path):
    path = str(tmp_path / "m{epoch}.keras")
    cb = ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True,
                         initial_value_threshold=0.6)
    run_epochs([cb], [0.5, 0.7, 0.65, 0.9], monitor="val_accuracy")
    assert sorted(os.listdir(tmp_path)) == ["m2.keras", "m4.keras"]


def test_model_checkpoint_every_n_batches(tmp_path):
    path = str(tmp_path / "e{epoch}b{batch}.keras")
    cb = ModelCheckpoint(path, save_freq=3)
    cbs = CallbackList([cb], model=FakeModel())
    cbs.on_train_begin()
    for epoch in range(2):
        cbs.on_epoch_begin(epoch)
        for b in range(5):
            cbs.on_train_batch_end(b, {"loss": 1.0})
        cbs.on_epoch_end(epoch, {"loss": 1.0})
    # batches counted across epochs: the 3rd, 6th and 9th (epoch 1's batches 0 and 3)
    assert sorted(os.listdir(tmp_path)) == ["e1b3.keras", "e2b1.keras", "e2b4.keras"]


def test_model_checkpoint_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "m.keras"
    path.write_text("previous")

    class Broken(FakeModel):
        def save(self, p):
            with open(p, "w") as f:
                f.write("half")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_epochs([ModelCheckpoint(path)], [1.0], model=Broken())
    assert path.read_text() == "previous" and os.listdir(tmp_path) == ["m.keras"]


def test_model_checkpoint_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="must end in `.keras`.*filepath=m.h6"):
        ModelCheckpoint("m.h6")
    with pytest.raises(ValueError, match="must end in `.weights.h5`"):
        ModelCheckpoint("m.keras", save_weights_only=True)
    with pytest.raises(ValueError, match="Unrecognized save_freq: often"):
        ModelCheckpoint("m.keras", save_freq="often")
    with pytest.raises(KeyError, match="Failed to format.*val_acc"):
        run_epochs([ModelCheckpoint(str(tmp_path / "{val_acc}.keras"))], [1.0])


def test_model_checkpoint_warns_and_saves_when_monitor_is_missing(tmp_path):
    cb = ModelCheckpoint(tmp_path / "m.keras", monitor="val_auc", save_best_only=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        run_epochs([cb], [1.0], monitor="loss")
    assert any("Can save best model only with val_auc available" in str(x.message) for x in w)
    assert os.listdir(tmp_path) == ["m.keras"]
