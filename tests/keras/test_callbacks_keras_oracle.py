"""The same callbacks in Keras 3 (torch backend) and in ember, driven with the same fake
model and logs, must act the same: stop epochs, restored weights, lr sequences, CSV bytes,
checkpoint files."""
import os
import re

import numpy as np
import pytest

from oracles import keras_or_skip  # noqa: E402

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = keras_or_skip()
if keras.backend.backend() != "torch":  # another backend was chosen before this test ran
    pytest.skip("the Keras oracle runs on the torch backend", allow_module_level=True)

from ember.keras import callbacks as ember_callbacks  # noqa: E402


class FakeOptimizer:
    def __init__(self, lr):
        self.learning_rate = lr


class FakeModel:
    def __init__(self, lr=1.0):
        self.weights = [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)]
        self.optimizer = FakeOptimizer(lr)
        self.stop_training = False
        self.saved = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]

    def save(self, path, overwrite=True):  # Keras passes overwrite=; ember does not
        open(path, "w").write("m")
        self.saved.append(os.path.basename(path))

    def save_weights(self, path, overwrite=True):
        open(path, "w").write("w")
        self.saved.append(os.path.basename(path))


def drive(module, make_callbacks, values, monitor="val_loss", steps=0, lr=1.0):
    """One fit loop in miniature, with ``module``'s CallbackList; returns what can differ."""
    model = FakeModel(lr)
    cbs = module.CallbackList(make_callbacks(module), model=model, epochs=len(values))
    cbs.on_train_begin()
    lrs, ran = [], 0
    for epoch, v in enumerate(values):
        cbs.on_epoch_begin(epoch)
        model.weights = [np.full_like(w, epoch) for w in model.weights]
        for b in range(steps):
            cbs.on_train_batch_begin(b)
            cbs.on_train_batch_end(b, {"loss": float(v)})
        logs = {"loss": float(v)} if monitor == "loss" else {"loss": 0.5, monitor: float(v)}
        cbs.on_epoch_end(epoch, logs)
        lrs.append(float(model.optimizer.learning_rate))
        ran += 1
        if model.stop_training:
            break
    cbs.on_train_end()
    return dict(ran=ran, lrs=lrs, weights=[w.tolist() for w in model.weights],
                saved=model.saved)


def both(make_callbacks, values, **kw):
    return (drive(keras.callbacks, make_callbacks, values, **kw),
            drive(ember_callbacks, make_callbacks, values, **kw))


rng = np.random.default_rng(0)
SEQUENCES = [
    [1.0, 0.9, 0.95, 0.8, 0.85, 0.86, 0.7, 0.71, 0.72, 0.73],
    [1.0] * 8,
    list(np.round(rng.uniform(0, 1, 12), 3)),
    list(np.round(1 / np.arange(1, 11) + rng.normal(0, 0.02, 10), 3)),
]


@pytest.mark.parametrize("values", SEQUENCES)
@pytest.mark.parametrize("kwargs", [
    dict(patience=0), dict(patience=2), dict(patience=1, min_delta=0.05),
    dict(patience=2, baseline=0.5), dict(patience=1, start_from_epoch=3),
    dict(patience=2, mode="max", monitor="val_accuracy"), dict(patience=3, monitor="loss"),
])
def test_early_stopping_matches_keras(kwargs, values):
    monitor = kwargs.get("monitor", "val_loss")
    k, e = both(lambda m: [m.EarlyStopping(restore_best_weights=True, **kwargs)], values,
                monitor=monitor)
    assert e == k


@pytest.mark.parametrize("values", SEQUENCES)
@pytest.mark.parametrize("kwargs", [
    dict(factor=0.5, patience=1, min_delta=0), dict(factor=0.5, patience=1, cooldown=2),
    dict(factor=0.2, patience=2, min_lr=0.01), dict(factor=0.5, patience=0, min_delta=0.1),
    dict(factor=0.3, patience=1, mode="max", monitor="val_accuracy", cooldown=1),
])
def test_reduce_lr_on_plateau_matches_keras(kwargs, values):
    monitor = kwargs.get("monitor", "val_loss")
    k, e = both(lambda m: [m.ReduceLROnPlateau(**kwargs)], values, monitor=monitor)
    np.testing.assert_allclose(e["lrs"], k["lrs"], rtol=1e-6)  # Keras's lr is a float32


def test_learning_rate_scheduler_matches_keras():
    def schedule(epoch, lr):
        return lr if epoch < 2 else lr * 0.9

    k, e = both(lambda m: [m.LearningRateScheduler(schedule)], [1.0] * 6, lr=0.01)
    np.testing.assert_allclose(e["lrs"], k["lrs"], rtol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(), dict(separator=";"), dict(append=True)])
def test_csv_logger_writes_the_same_bytes_as_keras(tmp_path, kwargs):
    out = {}
    for name, module in (("keras", keras.callbacks), ("ember", ember_callbacks)):
        path = tmp_path / f"{name}.csv"
        for _ in range(2 if kwargs.get("append") else 1):
            model = FakeModel()
            cbs = module.CallbackList([module.CSVLogger(path, **kwargs)], model=model)
            cbs.on_train_begin()
            cbs.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.25, "vec": np.array([1.0, 2.5])})
            cbs.on_epoch_end(1, {"loss": 0.125, "accuracy": 0.75, "vec": np.array([3.0, 4])})
            cbs.on_train_end()
        out[name] = path.read_bytes()
    assert out["ember"] == out["keras"]


@pytest.mark.parametrize("kwargs", [
    dict(filepath="m-{epoch:02d}-{val_loss:.3f}.keras"),
    dict(filepath="best.keras", save_best_only=True),
    dict(filepath="b{epoch}.weights.h5", save_best_only=True, save_weights_only=True),
    dict(filepath="e{epoch}b{batch}.keras", save_freq=3),
    dict(filepath="t{epoch}.keras", save_best_only=True, initial_value_threshold=0.8),
])
def test_model_checkpoint_saves_the_same_files_as_keras(tmp_path, kwargs):
    kwargs = dict(kwargs)
    pattern = kwargs.pop("filepath")
    out = {}
    for name, module in (("keras", keras.callbacks), ("ember", ember_callbacks)):
        folder = tmp_path / name
        folder.mkdir()
        saved = drive(module, lambda m: [m.ModelCheckpoint(str(folder / pattern), **kwargs)],
                      SEQUENCES[0], steps=4)["saved"]
        # ember saves to a temporary name, then renames it (atomic save)
        out[name] = [re.sub(r"^\.tmp-\d+-", "", p) for p in saved]
        out[name + "_files"] = sorted(os.listdir(folder))
    assert out["ember"] == out["keras"] and out["ember_files"] == out["keras_files"]
