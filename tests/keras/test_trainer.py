"""ember.keras.trainer.Trainer on a plain ember Module: fit/evaluate/predict against a NumPy
softmax-regression reference, Keras's data and callback semantics, and Keras 3 itself (when
installed) as the oracle for whole training runs."""
import os
import warnings

import numpy as np
import pytest

import ember as em
import ember.nn as nn
import ember.nn.functional as F
from ember.keras import optimizers as O
from ember.keras.callbacks import Callback
from ember.keras.trainer import Trainer
from ember.utils.data import DataLoader, TensorDataset
from oracles import keras_or_skip  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

D, K = 5, 3


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, D)).astype(np.float32)
    y = rng.integers(0, K, n)
    return x, y


W0 = np.random.default_rng(7).standard_normal((K, D)).astype(np.float32) * 0.3
B0 = np.zeros(K, np.float32)


class Softmax(Trainer, nn.Module):
    """Softmax regression: probabilities out, as Keras models usually end."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, K)
        with em.no_grad():
            self.fc.weight.copy_(em.tensor(W0))
            self.fc.bias.copy_(em.tensor(B0))

    def forward(self, x):
        return F.softmax(self.fc(x), dim=-1)


def _np_probs(W, b, x):
    z = x @ W.T + b
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _np_fit(x, y, batches, lr, sw=None, W=W0, b=B0):
    """SGD on softmax regression with Keras's sparse CCE (sum over batch size) in NumPy;
    ``batches`` is a list of index arrays. Returns (W, b, per-batch losses)."""
    W, b = W.astype(np.float64), b.astype(np.float64)
    losses = []
    for idx in batches:
        p = _np_probs(W, b, x[idx])
        w = np.ones(len(idx)) if sw is None else sw[idx]
        losses.append((w * -np.log(p[np.arange(len(idx)), y[idx]])).sum() / len(idx))
        dz = (p - np.eye(K)[y[idx]]) * w[:, None] / len(idx)
        W = W - lr * dz.T @ x[idx]
        b = b - lr * dz.sum(0)
    return W, b, losses


def _seq(n, bs):
    return [np.arange(i, min(i + bs, n)) for i in range(0, n, bs)]


def _weights(m):
    return m.fc.weight.detach().numpy(), m.fc.bias.detach().numpy()


def _compiled(jit="auto", **kw):
    m = Softmax()
    m.compile(optimizer=O.SGD(learning_rate=0.5), loss="sparse_categorical_crossentropy",
              jit_compile=jit, **kw)
    return m


@pytest.mark.parametrize("jit", [True, False])
def test_fit_equals_numpy_sgd(jit):
    x, y = _data(40)
    m = _compiled(jit, metrics=["accuracy"])
    h = m.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    batches = _seq(40, 16)
    W, b, l1 = _np_fit(x, y, batches, 0.5)
    Wn, bn, l2 = _np_fit(x, y, batches, 0.5, W=W, b=b)
    got_W, got_b = _weights(m)
    np.testing.assert_allclose(got_W, Wn, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_b, bn, rtol=1e-4, atol=1e-5)
    sizes = np.array([len(i) for i in batches])
    for e, ls in enumerate((l1, l2)):  # the epoch loss: batch losses weighted by batch size
        np.testing.assert_allclose(h.history["loss"][e], (np.array(ls) * sizes).sum() / 40,
                                   rtol=1e-5)
    assert set(h.history) == {"loss", "accuracy"} and m.history is h


def test_a_pytorch_style_optimizer_works_too():
    x, y = _data(24)
    m = Softmax()
    m.compile(optimizer=em.optim.SGD(m.parameters(), lr=0.5),
              loss="sparse_categorical_crossentropy")
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    W, b, _ = _np_fit(x, y, _seq(24, 8), 0.5)
    np.testing.assert_allclose(_weights(m)[0], W, rtol=1e-4, atol=1e-5)


def test_validation_split_takes_the_last_fraction_and_class_weights():
    x, y = _data(40)
    m = _compiled(metrics=["accuracy"])
    cw = {0: 2.0, 1: 0.5}
    h = m.fit(x, y, batch_size=10, epochs=1, shuffle=False, validation_split=0.25,
              class_weight=cw, verbose=0)
    sw = np.array([cw.get(int(c), 1.0) for c in y])
    W, b, _ = _np_fit(x, y, _seq(30, 10), 0.5, sw=sw)
    np.testing.assert_allclose(_weights(m)[0], W, rtol=1e-4, atol=1e-5)
    p = _np_probs(W, b, x[30:])  # validation: the last 10 samples, unweighted
    np.testing.assert_allclose(h.history["val_loss"][0],
                               -np.log(p[np.arange(10), y[30:]]).mean(), rtol=1e-5)
    np.testing.assert_allclose(h.history["val_accuracy"][0], (p.argmax(1) == y[30:]).mean())


def test_sample_weight_and_weighted_metrics():
    x, y = _data(24)
    sw = np.random.default_rng(3).uniform(0.1, 2, 24).astype(np.float32)
    m = Softmax()
    m.compile(optimizer=O.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"], weighted_metrics=["accuracy"])
    h = m.fit(x, y, sample_weight=sw, batch_size=8, epochs=1, shuffle=False, verbose=0)
    p = _np_probs(W0, B0, x)
    ce = -np.log(p[np.arange(24), y])
    np.testing.assert_allclose(h.history["loss"][0], (ce * sw).sum() / 24, rtol=1e-5)
    hit = p.argmax(1) == y
    np.testing.assert_allclose(h.history["accuracy"][0], hit.mean())
    np.testing.assert_allclose(h.history["weighted_accuracy"][0], (hit * sw).sum() / sw.sum(),
                               rtol=1e-6)


class Record(Callback):
    def __init__(self, seed=None, epoch=None, step=None):
        super().__init__()
        self.calls, self.seed, self.epoch, self.step = [], seed, epoch, step

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))
        if self.seed is not None:
            self.model._fit_seed = self.seed
        if self.epoch is not None:
            self.model._initial_epoch, self.model._initial_step = self.epoch, self.step

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, sorted(logs)))

    def on_test_begin(self, logs=None):
        self.calls.append(("test_begin",))

    def on_test_batch_end(self, batch, logs=None):
        self.calls.append(("test_batch_end", batch))

    def on_test_end(self, logs=None):
        self.calls.append(("test_end", sorted(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", sorted(logs or {})))


def test_callback_hooks_in_keras_order_with_keras_logs():
    x, y = _data(12)
    rec = Record()
    m = _compiled(metrics=["accuracy"])
    m.fit(x, y, batch_size=6, epochs=1, validation_data=(x[:4], y[:4]), callbacks=[rec],
          verbose=0)
    train_keys = ["accuracy", "loss"]
    all_keys = ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert rec.calls == [("train_begin",), ("epoch_begin", 0),
                         ("batch_begin", 0), ("batch_end", 0, train_keys),
                         ("batch_begin", 1), ("batch_end", 1, train_keys),
                         ("test_begin",), ("test_batch_end", 0), ("test_end", train_keys),
                         ("epoch_end", 0, all_keys), ("train_end", all_keys)]


def test_steps_per_execution_groups_the_batch_hooks():
    x, y = _data(20)
    rec = Record()
    m = _compiled(steps_per_execution=2)
    m.fit(x, y, batch_size=4, epochs=1, shuffle=False, callbacks=[rec], verbose=0)
    hooks = [c[:2] for c in rec.calls if c[0] in ("batch_begin", "batch_end")]
    assert hooks == [("batch_begin", 0), ("batch_end", 1), ("batch_begin", 2),
                     ("batch_end", 3), ("batch_begin", 4), ("batch_end", 4)]
    W, b, _ = _np_fit(x, y, _seq(20, 4), 0.5)  # every batch still trains
    np.testing.assert_allclose(_weights(m)[0], W, rtol=1e-4, atol=1e-5)


def test_stop_training_from_a_callback():
    class StopAt(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    x, y = _data(40)
    rec = Record()
    m = _compiled()
    h = m.fit(x, y, batch_size=8, epochs=5, shuffle=False, validation_data=(x, y),
              callbacks=[StopAt(), rec], verbose=0)
    assert [c[1] for c in rec.calls if c[0] == "batch_begin"] == [0, 1]
    assert len(h.history["loss"]) == 1 and "val_loss" in h.history
    W, b, _ = _np_fit(x, y, _seq(40, 8)[:2], 0.5)
    np.testing.assert_allclose(_weights(m)[0], W, rtol=1e-4, atol=1e-5)


def test_shuffle_seed_and_resume_contract():
    x, y = _data(24)
    rec = Record(seed=123, epoch=1, step=2)
    m = _compiled()
    m.fit(x, y, batch_size=8, epochs=3, callbacks=[rec], verbose=0)
    assert [c for c in rec.calls if c[0] in ("epoch_begin", "batch_begin")] == [
        ("epoch_begin", 1), ("batch_begin", 2), ("epoch_begin", 2), ("batch_begin", 0),
        ("batch_begin", 1), ("batch_begin", 2)]
    order = []
    for epoch in (1, 2):
        perm = np.random.default_rng([123, epoch]).permutation(24)
        order += [perm[i:i + 8] for i in range(0, 24, 8)]
    W, b, _ = _np_fit(x, y, order[2:], 0.5)  # epoch 1's first two batches skipped
    np.testing.assert_allclose(_weights(m)[0], W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_weights(m)[1], b, rtol=1e-4, atol=1e-5)
    assert m._fit_seed == 123


class Seen(Softmax):
    """Records the samples of every batch it trains on (runs eagerly: Python sees each)."""

    def forward(self, x):
        if self.training:
            self.batches.append(x.numpy()[:, 0].copy())
        return super().forward(x)


@pytest.mark.parametrize("shuffle", [False, True, "batch"])
def test_shuffle_modes(shuffle):
    x, y = _data(20)
    m = Seen()
    m.batches = []
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", run_eagerly=True)
    m.fit(x, y, batch_size=8, epochs=1, shuffle=shuffle, verbose=0)
    seq = [x[i:i + 8, 0] for i in (0, 8, 16)]
    got = m.batches
    assert len(got) == 3
    if shuffle is False:
        assert all(np.array_equal(a, b) for a, b in zip(got, seq))
    elif shuffle == "batch":  # the same batches, each in its own order
        assert all(sorted(a) == sorted(b) for a, b in zip(got, seq))
        assert any(not np.array_equal(a, b) for a, b in zip(got, seq))
    else:
        perm = np.random.default_rng([m._fit_seed, 0]).permutation(20)
        assert all(np.array_equal(a, x[perm[i:i + 8], 0]) for a, i in zip(got, (0, 8, 16)))


def test_fit_seed_is_drawn_from_embers_generator():
    x, y = _data(16)
    seeds = []
    for _ in range(2):
        em.manual_seed(5)
        m = _compiled()
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)
        seeds.append(m._fit_seed)
    assert seeds[0] == seeds[1] and seeds[0] is not None


def _gen(x, y, bs, sw=None):
    while True:
        for i in range(0, len(x), bs):
            yield (x[i:i + bs], y[i:i + bs]) if sw is None else \
                (x[i:i + bs], y[i:i + bs], sw[i:i + bs])


@pytest.mark.parametrize("kind", ["generator", "generator_sw", "dataloader", "list"])
def test_fit_on_iterables(kind):
    x, y = _data(32)
    sw = None
    if kind.startswith("generator"):
        if kind == "generator_sw":
            sw = np.linspace(0.5, 2, 32).astype(np.float32)
        data, kw = _gen(x, y, 8, sw), {"steps_per_epoch": 3}
        batches = (_seq(32, 8) * 2)[:6]  # the generator continues across epochs
    elif kind == "dataloader":
        data = DataLoader(TensorDataset(em.tensor(x), em.tensor(y)), batch_size=8)
        kw, batches = {}, _seq(32, 8) * 2
    else:
        data, kw, batches = [(x[i:i + 16], y[i:i + 16]) for i in (0, 16)], {}, _seq(32, 16) * 2
    m = _compiled()
    m.fit(data, epochs=2, verbose=0, **kw)
    W, b, _ = _np_fit(x, y, batches, 0.5, sw=sw)
    np.testing.assert_allclose(_weights(m)[0], W, rtol=1e-4, atol=1e-5)


def test_a_generator_that_runs_out_stops_training():
    x, y = _data(16)

    def finite():
        yield x[:8], y[:8]
        yield x[8:], y[8:]

    m = _compiled()
    with pytest.warns(UserWarning, match="ran out of data"):
        h = m.fit(finite(), epochs=5, verbose=0)
    assert h.epoch == [0, 1] and len(h.history["loss"]) == 1  # the second epoch is empty


class TwoHeads(Trainer, nn.Module):
    output_names = ["cls", "reg"]

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(D, K)
        self.b = nn.Linear(D, 1)
        with em.no_grad():
            self.a.weight.copy_(em.tensor(W0))
            self.a.bias.zero_()

    def forward(self, inputs):
        x = inputs["left"] + inputs["right"]
        return [F.softmax(self.a(x), dim=-1), self.b(x)]


def test_multi_input_multi_output():
    x, y = _data(20)
    t = np.random.default_rng(2).standard_normal((20, 1)).astype(np.float32)
    m = TwoHeads()
    m.compile(optimizer=O.SGD(learning_rate=0.0),
              loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
              loss_weights=[1.0, 0.5], metrics={"cls": ["accuracy"], "reg": ["mae"]})
    inputs = {"left": x, "right": np.zeros_like(x)}
    h = m.fit(inputs, {"cls": y, "reg": t}, batch_size=5, epochs=1, verbose=0)
    p = _np_probs(W0, B0, x)
    ce = -np.log(p[np.arange(20), y]).mean()
    r = m.b(em.tensor(x)).detach().numpy()
    mse = ((r - t) ** 2).mean()
    assert set(h.history) == {"loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"}
    np.testing.assert_allclose(h.history["cls_loss"][0], ce, rtol=1e-5)
    np.testing.assert_allclose(h.history["reg_loss"][0], mse, rtol=1e-5)
    np.testing.assert_allclose(h.history["loss"][0], ce + 0.5 * mse, rtol=1e-5)
    np.testing.assert_allclose(h.history["reg_mae"][0], np.abs(r - t).mean(), rtol=1e-5)
    out = m.predict(inputs, batch_size=7, verbose=0)
    assert isinstance(out, list) and out[0].shape == (20, K) and out[1].shape == (20, 1)
    np.testing.assert_allclose(out[0], p, rtol=1e-5, atol=1e-6)
    res = m.evaluate(inputs, [y, t], verbose=0, return_dict=True)
    assert list(res) == sorted(res) and res["cls_loss"] == pytest.approx(ce, rel=1e-5)
    values = m.evaluate(inputs, [y, t], verbose=0)
    assert dict(zip(m.metrics_names, values)) == pytest.approx(res)


def test_evaluate_predict_and_on_batch_methods():
    x, y = _data(20)
    m = _compiled(metrics=["accuracy"])
    p = _np_probs(W0, B0, x)
    loss = -np.log(p[np.arange(20), y]).mean()
    acc = (p.argmax(1) == y).mean()
    assert m.evaluate(x, y, batch_size=6, verbose=0) == pytest.approx([loss, acc], rel=1e-5)
    assert m.metrics_names == ["loss", "accuracy"]
    np.testing.assert_allclose(m.predict(x, batch_size=6, verbose=0), p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.predict_on_batch(x[:3]), p[:3], rtol=1e-5, atol=1e-6)
    assert m.test_on_batch(x, y, return_dict=True) == pytest.approx(
        {"accuracy": acc, "loss": loss}, rel=1e-5)
    gen = (xb for xb in np.split(x, 4))  # predict on a generator of inputs
    np.testing.assert_allclose(m.predict(gen, verbose=0), p, rtol=1e-5, atol=1e-6)
    out = m.train_on_batch(x[:10], y[:10])
    p10 = p[:10]
    assert out == pytest.approx([-np.log(p10[np.arange(10), y[:10]]).mean(),
                                 (p10.argmax(1) == y[:10]).mean()], rel=1e-5)
    m.train_on_batch(x[10:], y[10:])
    W, b, _ = _np_fit(x, y, [np.arange(10), np.arange(10, 20)], 0.5)
    np.testing.assert_allclose(_weights(m)[0], W, rtol=1e-4, atol=1e-5)
    assert m.optimizer.iterations == 2


class Lazy(Trainer, nn.Module):
    """Creates its layer on the first call, like a Keras layer without an input shape."""

    def __init__(self):
        super().__init__()
        self.fc = None

    def forward(self, x):
        if self.fc is None:
            self.fc = nn.Linear(x.shape[-1], K)
        return F.softmax(self.fc(x), dim=-1)


def test_lazy_model_is_built_before_the_optimizer():
    x, y = _data(16)
    m = Lazy()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert m.optimizer.iterations == 2 and len(m.optimizer.param_groups[0]["params"]) == 2


def test_optimizer_state_is_reachable_and_progress_output(capsys):
    x, y = _data(16)
    m = Softmax()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    m.fit(x, y, epochs=2, batch_size=8, validation_data=(x, y))
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "2/2" in out and "val_acc:" in out
    sd = m.optimizer.state_dict()
    assert sd["iterations"] == 4 and len(sd["state"]) == 2


def test_errors_name_the_problem():
    x, y = _data(10)
    with pytest.raises(ValueError, match="compile"):
        Softmax().fit(x, y)
    m = _compiled()
    with pytest.raises(ValueError, match="same number of samples"):
        m.fit(x, y[:5], verbose=0)
    with pytest.raises(ValueError, match="`y` must be None"):
        m.fit(_gen(x, y, 5), y, steps_per_epoch=1, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(_gen(x, y, 5), steps_per_epoch=1, validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="not sufficient"):
        m.fit(x[:1], y[:1], validation_split=0.1, verbose=0)
    with pytest.raises(ValueError, match="class_weight.*sample_weight"):
        m.fit(x, y, class_weight={0: 1.0}, sample_weight=np.ones(10), verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        m.fit(x, y, verbose=3)
    with pytest.raises(ValueError, match="Could not interpret loss"):
        m.compile(loss="cross_entropy_please")
        m.fit(x, y, verbose=0)


# ----- Keras 3 as the oracle ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return keras_or_skip()


class MLP(Trainer, nn.Module):
    def __init__(self, weights):
        super().__init__()
        self.h = nn.Linear(D, 8)
        self.o = nn.Linear(8, K)
        with em.no_grad():
            for layer, (w, b) in zip((self.h, self.o), weights):
                layer.weight.copy_(em.tensor(w.T))
                layer.bias.copy_(em.tensor(b))

    def forward(self, x):
        return F.softmax(self.o(F.relu(self.h(x))), dim=-1)


@pytest.mark.parametrize("opt, extra", [("adam", {}), ("rmsprop", {"class_weight": {1: 3.0}})])
def test_whole_fit_matches_keras(keras, opt, extra):
    x, y = _data(48, seed=4)
    km = keras.Sequential([keras.Input((D,)), keras.layers.Dense(8, activation="relu"),
                           keras.layers.Dense(K, activation="softmax")])
    weights = [(km.layers[i].kernel.numpy(), km.layers[i].bias.numpy()) for i in (0, 1)]
    m = MLP(weights)
    for model in (km, m):
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    kw = dict(batch_size=10, epochs=3, shuffle=False, validation_split=0.25, verbose=0, **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kh = km.fit(x, y, **kw).history
    h = m.fit(x, y, **kw).history
    assert sorted(h) == sorted(kh)
    for k in kh:
        np.testing.assert_allclose(h[k], kh[k], rtol=2e-4, atol=1e-5, err_msg=k)
    for layer, (w, b) in zip((m.h, m.o), [(km.layers[i].kernel.numpy(),
                                           km.layers[i].bias.numpy()) for i in (0, 1)]):
        np.testing.assert_allclose(layer.weight.detach().numpy(), w.T, rtol=1e-3, atol=1e-5)
    ke = km.evaluate(x, y, verbose=0, return_dict=True)
    assert m.evaluate(x, y, verbose=0, return_dict=True) == pytest.approx(ke, rel=2e-4)


class Dropped(Softmax):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        return F.softmax(self.fc(self.drop(x)), dim=-1)


class Crash(Exception):
    pass


@pytest.mark.parametrize("jit", [True, False])
def test_backup_and_restore_resumes_a_crashed_fit_exactly(tmp_path, jit):
    from ember.keras.callbacks import BackupAndRestore

    class CrashAt(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.epochs_seen == 1 and batch == 2:
                raise Crash()

        def on_epoch_begin(self, epoch, logs=None):
            self.model.epochs_seen = epoch

    x, y = _data(40)

    def run(callbacks):
        em.manual_seed(11)
        m = Dropped()
        m.epochs_seen = -1
        m.compile(optimizer=O.Adam(learning_rate=0.05), loss="sparse_categorical_crossentropy",
                  jit_compile=jit)
        m.fit(x, y, batch_size=8, epochs=3, callbacks=callbacks, verbose=0)
        return m

    want = run([])
    backup = BackupAndRestore(tmp_path / "backup", save_freq=1)
    with pytest.raises(Crash):
        run([backup, CrashAt()])
    got = run([BackupAndRestore(tmp_path / "backup", save_freq=1)])
    for a, b in zip(_weights(got), _weights(want)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert got.optimizer.iterations == want.optimizer.iterations == 15


def test_weight_constraints_are_applied_after_every_step():
    from ember import keras
    seen = []

    def non_neg(w):  # a Keras constraint is any callable weight -> weight
        return w.clamp(min=0.0)

    model = keras.Sequential([keras.Input((3,)),
                              keras.layers.Dense(4, kernel_constraint=non_neg)])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    y = -10 * np.ones((16, 4), np.float32)      # pulls the kernel negative
    cb = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: seen.append(model.layers[0].get_weights()[0].min()))
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[cb])
    assert len(seen) == 8 and min(seen) >= 0.0


def test_a_custom_train_step_is_refused_not_skipped():
    from ember import keras

    class Custom(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(1)

        def call(self, x):
            return self.d(x)

        def train_step(self, data):  # Keras 3 habit: a custom step
            return {}

    m = Custom()
    m.compile("sgd", "mse")
    with pytest.raises(NotImplementedError, match="overrides train_step"):
        m.fit(np.ones((4, 2), np.float32), np.ones((4, 1), np.float32), verbose=0)
