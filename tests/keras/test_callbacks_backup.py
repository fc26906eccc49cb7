"""BackupAndRestore: a training process SIGKILLed in the middle of an epoch and started again
ends with exactly the weights of an uninterrupted run.

The fit loop here is a miniature of ember.keras's, following the same resume contract
(shuffle seeded by (model._fit_seed, epoch); start at model._initial_epoch, skipping the
first model._initial_step batches), so the callback is tested on its own."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import ember
from ember.keras.callbacks import BackupAndRestore, CallbackList, LambdaCallback

MINI_FIT = textwrap.dedent('''
    import numpy as np
    import ember as em
    import ember.nn as nn
    import ember.nn.functional as F
    from ember.keras.callbacks import CallbackList


    class Optimizer:
        """The trainer's optimizer face: a float learning_rate, ember.optim's state_dict."""

        def __init__(self, params):
            self.opt = em.optim.Adam(params, lr=1e-2)

        @property
        def learning_rate(self):
            return self.opt.param_groups[0]["lr"]

        @learning_rate.setter
        def learning_rate(self, value):
            for g in self.opt.param_groups:
                g["lr"] = value

        def state_dict(self):
            return self.opt.state_dict()

        def load_state_dict(self, state):
            self.opt.load_state_dict(state)


    class Model:
        def __init__(self):
            em.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.3),
                                     nn.Linear(8, 3))
            self.optimizer = Optimizer(self.net.parameters())
            self.stop_training = False

        def get_weights(self):
            return [v.numpy().copy() for v in self.net.state_dict().values()]

        def set_weights(self, weights):
            keys = list(self.net.state_dict())
            self.net.load_state_dict({k: em.tensor(w) for k, w in zip(keys, weights)})


    def fit(model, x, y, epochs, batch_size, callbacks):
        n = len(x)
        steps = -(-n // batch_size)
        model.stop_training = False
        model._initial_epoch = model._initial_step = 0
        model._fit_seed = None
        cbs = CallbackList(callbacks, add_history=True, model=model, epochs=epochs,
                           steps=steps)
        cbs.on_train_begin()
        if model._fit_seed is None:
            model._fit_seed = int(em.randint(0, 2**31 - 1, (1,)).item())
        xt, yt = em.tensor(x), em.tensor(y)
        for epoch in range(model._initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            perm = np.random.default_rng([model._fit_seed, epoch]).permutation(n)
            first = model._initial_step if epoch == model._initial_epoch else 0
            losses = []
            for b in range(first, steps):
                cbs.on_train_batch_begin(b)
                idx = em.tensor(perm[b * batch_size:(b + 1) * batch_size])
                model.optimizer.opt.zero_grad()
                loss = F.cross_entropy(model.net(xt[idx]), yt[idx])
                loss.backward()
                model.optimizer.opt.step()
                losses.append(loss.item())
                cbs.on_train_batch_end(b, {"loss": float(np.mean(losses))})
            cbs.on_epoch_end(epoch, {"loss": float(np.mean(losses)) if losses else 0.0})
            if model.stop_training:
                break
        cbs.on_train_end()
        return model.history


    def data():
        rng = np.random.default_rng(1)
        x = rng.normal(size=(40, 4)).astype(np.float32)
        return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0).astype(np.int64)
''')

SCRIPT = textwrap.dedent('''
    import os, signal, sys
    import numpy as np
    from ember.keras.callbacks import BackupAndRestore, LambdaCallback
    from mini_fit import Model, data, fit

    backup_dir, save_freq, kill_at, out = sys.argv[1:5]
    save_freq = save_freq if save_freq == "epoch" else int(save_freq)
    kill_epoch, kill_batch = map(int, kill_at.split(","))
    state = {"epoch": None}

    def maybe_kill(batch, logs):
        if (state["epoch"], batch) == (kill_epoch, kill_batch):
            os.kill(os.getpid(), signal.SIGKILL)

    callbacks = [LambdaCallback(on_epoch_begin=lambda e, logs: state.update(epoch=e),
                                on_train_batch_end=maybe_kill)]
    if backup_dir != "-":
        callbacks.insert(0, BackupAndRestore(backup_dir, save_freq=save_freq))
    model = Model()
    history = fit(model, *data(), epochs=4, batch_size=8, callbacks=callbacks)
    np.savez(out, *model.get_weights(), epochs=np.array(history.epoch))
''')


def _run(tmp_path, *args):
    (tmp_path / "mini_fit.py").write_text(MINI_FIT)
    (tmp_path / "train.py").write_text(SCRIPT)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {"PYTHONPATH": f"{src}:{tmp_path}", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(tmp_path / "train.py"), *map(str, args)],
                          env=env, capture_output=True, text=True)


def _weights(path):
    f = np.load(path)
    return [f[k] for k in f.files if k != "arr_epochs" and k.startswith("arr_")], f["epochs"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    r = _run(tmp, "-", "epoch", "-1,-1", tmp / "ref.npz")
    assert r.returncode == 0, r.stderr
    return _weights(tmp / "ref.npz")[0]


@pytest.mark.parametrize("save_freq,kill_at,resumed_epochs", [
    (3, "1,2", [1, 2, 3]),          # backed up after epoch 1's batch 0: batches 1-2 redone
    ("epoch", "2,1", [2, 3]),       # back to the end of epoch 1
])
def test_killed_run_resumes_to_the_uninterrupted_weights(tmp_path, uninterrupted, save_freq,
                                                         kill_at, resumed_epochs):
    backup = tmp_path / "backup"
    first = _run(tmp_path, backup, save_freq, kill_at, tmp_path / "first.npz")
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert os.listdir(backup) == ["backup.safetensors"]
    second = _run(tmp_path, backup, save_freq, "-1,-1", tmp_path / "second.npz")
    assert second.returncode == 0, second.stderr
    weights, epochs = _weights(tmp_path / "second.npz")
    assert epochs.tolist() == resumed_epochs
    assert len(weights) == len(uninterrupted) == 4
    for got, ref in zip(weights, uninterrupted):
        np.testing.assert_array_equal(got, ref)  # bit for bit
    assert not backup.exists()  # deleted once training completed


# ----- in-process behaviour ----------------------------------------------------------------------

@pytest.fixture
def mini_fit(tmp_path, monkeypatch):
    (tmp_path / "mini_fit.py").write_text(MINI_FIT)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import mini_fit
    return importlib.reload(mini_fit)


def _interrupt_at(epoch_to_fail):
    def on_epoch_begin(epoch, logs):
        if epoch == epoch_to_fail:
            raise RuntimeError("Interrupting!")
    return LambdaCallback(on_epoch_begin=on_epoch_begin)


def test_exception_then_rerun_runs_only_the_remaining_epochs(tmp_path, mini_fit):
    """Keras's documented example: interrupted at epoch 2 of 4, the rerun runs epochs 2-3."""
    cb = BackupAndRestore(tmp_path / "b")
    model = mini_fit.Model()
    with pytest.raises(RuntimeError, match="Interrupting"):
        mini_fit.fit(model, *mini_fit.data(), epochs=4, batch_size=8,
                     callbacks=[cb, _interrupt_at(2)])
    model = mini_fit.Model()
    history = mini_fit.fit(model, *mini_fit.data(), epochs=4, batch_size=8, callbacks=[cb])
    assert history.epoch == [2, 3]
    assert not (tmp_path / "b").exists()


def test_restores_optimizer_state_learning_rate_rng_and_seed(tmp_path, mini_fit):
    cb = BackupAndRestore(tmp_path / "b", delete_checkpoint=False)
    model = mini_fit.Model()
    model.optimizer.learning_rate = 0.0625
    mini_fit.fit(model, *mini_fit.data(), epochs=1, batch_size=8, callbacks=[cb])
    saved_weights = model.get_weights()
    saved_moment = model.optimizer.state_dict()["state"][0]["exp_avg"].numpy().copy()
    rng_after = ember.get_rng_state().numpy().copy()
    seed = model._fit_seed
    fresh = mini_fit.Model()
    ember.manual_seed(123)
    CallbackList([cb], model=fresh).on_train_begin()
    for got, ref in zip(fresh.get_weights(), saved_weights):
        np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(
        fresh.optimizer.state_dict()["state"][0]["exp_avg"].numpy(), saved_moment)
    assert fresh.optimizer.learning_rate == 0.0625
    np.testing.assert_array_equal(ember.get_rng_state().numpy(), rng_after)
    assert (fresh._fit_seed, fresh._initial_epoch, fresh._initial_step) == (seed, 1, 0)


def test_double_checkpoint_falls_back_to_the_previous_backup(tmp_path, mini_fit):
    folder = tmp_path / "b"
    cb = BackupAndRestore(folder, double_checkpoint=True, delete_checkpoint=False)
    model = mini_fit.Model()
    with pytest.raises(RuntimeError):
        mini_fit.fit(model, *mini_fit.data(), epochs=4, batch_size=8,
                     callbacks=[cb, _interrupt_at(2)])
    assert sorted(os.listdir(folder)) == ["backup.safetensors", "backup.safetensors.bkp"]
    (folder / "backup.safetensors").write_bytes(b"\x00" * 10)  # damaged
    fresh = mini_fit.Model()
    CallbackList([cb], model=fresh).on_train_begin()
    assert fresh._initial_epoch == 1  # the previous backup: after epoch 0


def test_refuses_a_backup_of_another_model_or_an_unbuilt_model(tmp_path, mini_fit):
    cb = BackupAndRestore(tmp_path / "b", delete_checkpoint=False)
    mini_fit.fit(mini_fit.Model(), *mini_fit.data(), epochs=1, batch_size=8, callbacks=[cb])
    other = mini_fit.Model()
    other.net = ember.nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"holds weights of shapes \[\(8, 4\), \(8,\), "
                                         r"\(3, 8\), \(3,\)\], the model has \[\(3, 4\), \(3,\)\]"):
        CallbackList([cb], model=other).on_train_begin()
    unbuilt = mini_fit.Model()
    unbuilt.built = False
    with pytest.raises(ValueError, match="model must be built before you call `fit\\(\\)`"):
        CallbackList([cb], model=unbuilt).on_train_begin()


def test_bad_arguments_and_foreign_files(tmp_path):
    with pytest.raises(ValueError, match="empty `backup_dir`"):
        BackupAndRestore("")
    with pytest.raises(ValueError, match="save_freq='often'"):
        BackupAndRestore(tmp_path, save_freq="often")
    ember.save({"x": 1}, tmp_path / "backup.safetensors")
    with pytest.raises(ValueError, match="not a backup written by BackupAndRestore"):
        CallbackList([BackupAndRestore(tmp_path)], model=object()).on_train_begin()
