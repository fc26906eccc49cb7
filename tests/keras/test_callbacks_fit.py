"""The callbacks inside ``keras.Model.fit``: early stopping, checkpoints, CSV and TensorBoard
logs, learning-rate callbacks, NaN termination, and BackupAndRestore after a killed process.
Expected values come from the run's own History (what fit reported), NumPy, or a run
without the callback."""
import csv
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ember
from ember import keras
from ember.keras import layers


def make_model(lr=0.05, dropout=0.0):
    ember.manual_seed(0)
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(8, activation="relu"),
                              layers.Dropout(dropout), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=48):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0).astype(np.int64)


def weight_recorder(model, store):
    """Appends the model's weights at the end of every epoch."""
    return keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: store.append(model.get_weights()))


def fit(model, callbacks, epochs=6, **kwargs):
    x, y = data()
    return model.fit(x, y, batch_size=8, epochs=epochs, validation_split=0.25, verbose=0,
                     callbacks=callbacks, **kwargs)


# ----- EarlyStopping ---------------------------------------------------------------------------

def test_early_stopping_stops_fit_when_val_loss_stops_changing():
    model = make_model(lr=0.0)  # nothing learns: val_loss is the same every epoch
    history = fit(model, [keras.callbacks.EarlyStopping(patience=2)], epochs=10)
    assert history.epoch == [0, 1, 2]  # epoch 0 sets the best; 1 and 2 exhaust patience
    assert len(set(history.history["val_loss"])) == 1


def test_early_stopping_restores_the_weights_of_the_best_val_loss_epoch():
    model = make_model(lr=0.3)  # a large step: val_loss goes up and down
    weights = []
    stop = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    history = fit(model, [weight_recorder(model, weights), stop], epochs=12)
    best = int(np.argmin(history.history["val_loss"]))
    assert best < len(history.epoch) - 1  # it did not end on its best epoch
    for got, want in zip(model.get_weights(), weights[best]):
        np.testing.assert_array_equal(got, want)


# ----- ModelCheckpoint -------------------------------------------------------------------------

def test_model_checkpoint_best_model_loads_back_with_the_best_weights(tmp_path):
    model = make_model(lr=0.3)
    weights = []
    path = tmp_path / "best.keras"
    ck = keras.callbacks.ModelCheckpoint(path, save_best_only=True)
    history = fit(model, [weight_recorder(model, weights), ck], epochs=6)
    best = int(np.argmin(history.history["val_loss"]))
    loaded = keras.models.load_model(path)
    for got, want in zip(loaded.get_weights(), weights[best]):
        np.testing.assert_array_equal(got, want)
    assert os.listdir(tmp_path) == ["best.keras"]


def test_model_checkpoint_weights_every_epoch_with_formatted_names(tmp_path):
    model = make_model()
    weights = []
    ck = keras.callbacks.ModelCheckpoint(str(tmp_path / "w{epoch:02d}-{val_loss:.3f}.weights.h5"),
                                         save_weights_only=True)
    history = fit(model, [weight_recorder(model, weights), ck], epochs=3)
    names = [f"w{e + 1:02d}-{v:.3f}.weights.h5" for e, v in enumerate(
        history.history["val_loss"])]
    assert sorted(os.listdir(tmp_path)) == names
    model.load_weights(tmp_path / names[1])  # back to epoch 1's weights
    for got, want in zip(model.get_weights(), weights[1]):
        np.testing.assert_array_equal(got, want)


# ----- CSVLogger, TensorBoard ------------------------------------------------------------------

def test_csv_logger_rows_match_the_history(tmp_path):
    path = tmp_path / "log.csv"
    history = fit(make_model(), [keras.callbacks.CSVLogger(path)], epochs=3)
    rows = list(csv.DictReader(open(path, newline="")))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for key in ("accuracy", "loss", "val_accuracy", "val_loss"):
        assert [float(r[key]) for r in rows] == history.history[key]  # repr round-trips


def _load_tensorboard_test_helpers():
    path = Path(__file__).with_name("test_callbacks_tensorboard.py")
    spec = importlib.util.spec_from_file_location("_tb_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tensorboard_scalars_match_the_history(tmp_path):
    tb = _load_tensorboard_test_helpers()
    history = fit(make_model(), [keras.callbacks.TensorBoard(tmp_path, histogram_freq=1)],
                  epochs=3)
    train, val = tb.scalars(tmp_path / "train"), tb.scalars(tmp_path / "validation")
    for key, events in (("loss", train), ("accuracy", train), ("val_loss", val),
                        ("val_accuracy", val)):
        got = events["epoch_" + key.removeprefix("val_")]
        assert [s for s, _ in got] == [0, 1, 2]
        np.testing.assert_array_equal([v for _, v in got],
                                      np.float32(history.history[key]))
    assert [v for _, v in train["epoch_learning_rate"]] == [np.float32(0.05)] * 3
    tags = {t for _, _, values in tb.read_events(tmp_path / "train") for t in values}
    assert "keras" in tags  # the model's config
    assert sum(t.endswith("/histogram") for t in tags) == 4  # two Dense kernels and biases


# ----- learning-rate callbacks, TerminateOnNaN -------------------------------------------------

def test_learning_rate_scheduler_and_reduce_lr_drive_the_optimizer():
    model = make_model(lr=0.01)
    seen = []
    sched = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 * 0.5 ** epoch)
    spy = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: seen.append(model.optimizer.learning_rate))
    history = fit(model, [sched, spy], epochs=3)
    np.testing.assert_allclose(seen, [0.01, 0.005, 0.0025])
    np.testing.assert_allclose(history.history["learning_rate"], [0.01, 0.005, 0.0025])
    model = make_model(lr=0.08)  # min_delta=10: no epoch improves, so each one reduces
    fit(model, [keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1,
                                                  min_delta=10.0)], epochs=4)
    assert model.optimizer.learning_rate == pytest.approx(0.08 * 0.5 ** 3)


def test_terminate_on_nan_stops_at_the_first_nan_batch():
    x, y = data()
    x[20] = np.nan  # in the third batch of 8 (no shuffling)
    batches = []
    spy = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    history = make_model().fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                               callbacks=[keras.callbacks.TerminateOnNaN(), spy])
    assert batches == [0, 1, 2] and history.epoch == [0]
    assert np.isnan(history.history["loss"][0])


# ----- BackupAndRestore: SIGKILL in the middle of an epoch, then resume ----------------------

SCRIPT = textwrap.dedent('''
    import os, signal, sys
    import numpy as np
    import ember
    from ember import keras
    from ember.keras import layers

    backup_dir, save_freq, kill_at, out = sys.argv[1:5]
    save_freq = save_freq if save_freq == "epoch" else int(save_freq)
    kill_epoch, kill_batch = map(int, kill_at.split(","))
    ember.manual_seed(0)
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(8, activation="relu"),
                              layers.Dropout(0.3), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0).astype(np.int64)
    state = {}

    def maybe_kill(batch, logs):
        if (state.get("epoch"), batch) == (kill_epoch, kill_batch):
            os.kill(os.getpid(), signal.SIGKILL)

    callbacks = [keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: state.update(epoch=e), on_train_batch_end=maybe_kill)]
    if backup_dir != "-":
        callbacks.insert(0, keras.callbacks.BackupAndRestore(backup_dir, save_freq=save_freq))
    history = model.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=callbacks)
    np.savez(out, *model.get_weights(), epochs=np.array(history.epoch))
''')


def _run(tmp_path, *args):
    (tmp_path / "train.py").write_text(SCRIPT)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {"PYTHONPATH": src, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(tmp_path / "train.py"), *map(str, args)],
                          env=env, capture_output=True, text=True)


def _weights(path):
    f = np.load(path)
    return [f[f"arr_{i}"] for i in range(len(f.files) - 1)], f["epochs"].tolist()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    r = _run(tmp, "-", "epoch", "-1,-1", tmp / "ref.npz")
    assert r.returncode == 0, r.stderr
    return _weights(tmp / "ref.npz")[0]


@pytest.mark.parametrize("save_freq,kill_at,resumed_epochs", [
    (3, "1,2", [1, 2, 3]),       # last backup after epoch 1's batch 0: batches 1-2 redone
    ("epoch", "2,2", [2, 3]),    # back to the end of epoch 1
])
def test_fit_killed_mid_epoch_resumes_to_the_uninterrupted_weights(
        tmp_path, uninterrupted, save_freq, kill_at, resumed_epochs):
    backup = tmp_path / "backup"
    first = _run(tmp_path, backup, save_freq, kill_at, tmp_path / "first.npz")
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert backup.exists()
    second = _run(tmp_path, backup, save_freq, "-1,-1", tmp_path / "second.npz")
    assert second.returncode == 0, second.stderr
    weights, epochs = _weights(tmp_path / "second.npz")
    assert epochs == resumed_epochs
    assert len(weights) == len(uninterrupted) == 4
    for got, want in zip(weights, uninterrupted):
        np.testing.assert_array_equal(got, want)  # bit for bit
    assert not backup.exists()


def test_a_lambda_callback_alone_gets_the_batch_logs():
    import numpy as np
    from ember import keras
    seen = []
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((8, 3), np.float32), np.zeros((8, 1), np.float32)
    cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(logs))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[cb])
    assert len(seen) == 2 and all("loss" in logs for logs in seen)
