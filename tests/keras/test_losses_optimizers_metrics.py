"""ember.keras.losses / optimizers / metrics: values against NumPy formulas and finite
differences, step-for-step optimiser updates against the published Keras rules, and Keras 3
itself as an oracle when installed."""
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import ember as em
from ember.keras import losses as L
from ember.keras import metrics as KM
from ember.keras import optimizers as O
from ember.keras.optimizers import schedules as S

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from finite_differences import numeric_grads  # noqa: E402
from oracles import keras_or_skip  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

rng = np.random.default_rng(0)
N, K = 6, 4
P = rng.dirichlet(np.ones(K), N)                       # probabilities
Z = rng.standard_normal((N, K))                         # logits
Y = rng.integers(0, K, N)
Y1H = np.eye(K)[Y]
PB = rng.uniform(0.05, 0.95, (N, 1))
YB = rng.integers(0, 2, (N, 1)).astype(np.float64)
RT, RP = rng.standard_normal((N, 3)), rng.standard_normal((N, 3)) * 2
SW = rng.uniform(0.2, 2.0, N)
EPS = 1e-7


def _np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_cce(y, p, ls=0.0):
    y = y * (1 - ls) + ls / y.shape[-1]
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -(y * np.log(p)).sum(-1)


def _np_bce(y, p, ls=0.0):
    y = y * (1 - ls) + 0.5 * ls
    p = np.clip(p, EPS, 1 - EPS)
    return (-(y * np.log(p) + (1 - y) * np.log(1 - p))).mean(-1)


def _np_huber(y, p, d=1.0):
    e = np.abs(p - y)
    return np.where(e <= d, 0.5 * e ** 2, d * e - 0.5 * d * d).mean(-1)


LOSS_CASES = [  # (ember Loss, Keras class + kwargs, y_true, y_pred, per-sample NumPy reference)
    (L.MeanSquaredError(), ("MeanSquaredError", {}), RT, RP, ((RT - RP) ** 2).mean(-1)),
    (L.MeanAbsoluteError(), ("MeanAbsoluteError", {}), RT, RP, np.abs(RT - RP).mean(-1)),
    (L.Huber(delta=0.7), ("Huber", {"delta": 0.7}), RT, RP, _np_huber(RT, RP, 0.7)),
    (L.CategoricalCrossentropy(), ("CategoricalCrossentropy", {}), Y1H, P, _np_cce(Y1H, P)),
    (L.CategoricalCrossentropy(label_smoothing=0.2),
     ("CategoricalCrossentropy", {"label_smoothing": 0.2}), Y1H, P, _np_cce(Y1H, P, 0.2)),
    (L.CategoricalCrossentropy(from_logits=True),
     ("CategoricalCrossentropy", {"from_logits": True}), Y1H, Z, _np_cce(Y1H, _np_softmax(Z))),
    (L.SparseCategoricalCrossentropy(), ("SparseCategoricalCrossentropy", {}), Y, P,
     _np_cce(Y1H, P)),
    (L.SparseCategoricalCrossentropy(from_logits=True),
     ("SparseCategoricalCrossentropy", {"from_logits": True}), Y[:, None], Z,
     _np_cce(Y1H, _np_softmax(Z))),
    (L.BinaryCrossentropy(), ("BinaryCrossentropy", {}), YB, PB, _np_bce(YB, PB)),
    (L.BinaryCrossentropy(label_smoothing=0.1),
     ("BinaryCrossentropy", {"label_smoothing": 0.1}), YB, PB, _np_bce(YB, PB, 0.1)),
    (L.BinaryCrossentropy(from_logits=True), ("BinaryCrossentropy", {"from_logits": True}),
     YB, Z[:, :1], _np_bce(YB, 1 / (1 + np.exp(-Z[:, :1])))),
]


@pytest.mark.parametrize("i", range(len(LOSS_CASES)))
def test_losses_match_numpy_with_sample_weights(i):
    loss, _, yt, yp, per = LOSS_CASES[i]
    got = loss(yt, em.tensor(yp, dtype=em.float64)).item()
    np.testing.assert_allclose(got, per.mean(), rtol=1e-6)
    got = loss(yt, em.tensor(yp, dtype=em.float64), sample_weight=SW).item()
    np.testing.assert_allclose(got, (per * SW).sum() / len(per), rtol=1e-6)  # over batch size


@pytest.mark.parametrize("i", range(len(LOSS_CASES)))
def test_loss_gradients_match_finite_differences(i):
    loss, _, yt, yp, _ = LOSS_CASES[i]
    x = em.tensor(yp, dtype=em.float64, requires_grad=True)
    loss(yt, x, sample_weight=SW).backward()
    (want,) = numeric_grads(lambda a: loss(yt, em.tensor(a), sample_weight=SW).item(), yp)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-4, atol=1e-7)


def test_functions_reductions_and_lookup():
    np.testing.assert_allclose(L.get("mse")(RT, RP).numpy(), ((RT - RP) ** 2).mean(-1),
                               rtol=1e-6)
    assert L.get("categorical_crossentropy") is L.categorical_crossentropy
    assert isinstance(L.get("Huber"), L.Huber) and L.get("mae") is L.mean_absolute_error
    assert L.get({"class_name": "Huber", "config": {"delta": 2.0}}).fn is L.huber
    per = L.MeanSquaredError(reduction=None)(RT, RP).numpy()
    np.testing.assert_allclose(per, ((RT - RP) ** 2).mean(-1), rtol=1e-6)
    s = L.MeanSquaredError(reduction="sum")(RT, RP).item()
    np.testing.assert_allclose(s, per.sum(), rtol=1e-6)
    m = L.MeanSquaredError(reduction="mean_with_sample_weight")(RT, RP, SW).item()
    np.testing.assert_allclose(m, (per * SW).sum() / SW.sum(), rtol=1e-6)
    # ignore_class leaves those targets out of the mean
    y = Y.copy()
    y[:2] = 3
    got = L.SparseCategoricalCrossentropy(ignore_class=3)(y, P).item()
    keep = y != 3
    np.testing.assert_allclose(got, _np_cce(Y1H[keep], P[keep]).mean(), rtol=1e-6)


def test_loss_errors_name_the_loss():
    with pytest.raises(ValueError, match="categorical_crossentropy.*same shape"):
        L.categorical_crossentropy(Y, P)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy.*class indices"):
        L.sparse_categorical_crossentropy(Y + K, P)
    with pytest.raises(ValueError, match="Could not interpret loss identifier: 'nope'"):
        L.get("nope")
    with pytest.raises(ValueError, match="reduction"):
        L.MeanSquaredError(reduction="avg")


# ----- optimisers: the published Keras rules in NumPy ---------------------------------------------

def _ref_sgd(p, grads, lr, momentum=0.0, nesterov=False, **_):
    m = np.zeros_like(p)
    for g in grads:
        if momentum:
            m = momentum * m - lr * g
            p = p + (momentum * m - lr * g if nesterov else m)
        else:
            p = p - lr * g
    return p


def _ref_adam(p, grads, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
              weight_decay=None):
    m, v, vh = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        if weight_decay:
            p = p - p * weight_decay * lr
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        vv = v
        if amsgrad:
            vh = np.maximum(vh, v)
            vv = vh
        alpha = lr * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        p = p - m * alpha / (np.sqrt(vv) + epsilon)
    return p


def _ref_rmsprop(p, grads, lr, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    v, a, mo = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        v = rho * v + (1 - rho) * g * g
        if centered:
            a = rho * a + (1 - rho) * g
            inc = lr * g / np.sqrt(v - a * a + epsilon)
        else:
            inc = lr * g / np.sqrt(v + epsilon)
        if momentum:
            mo = momentum * mo + inc
            p = p - mo
        else:
            p = p - inc
    return p


def _ref_adagrad(p, grads, lr, initial_accumulator_value=0.1, epsilon=1e-7):
    acc = np.full_like(p, initial_accumulator_value)
    for g in grads:
        acc = acc + g * g
        p = p - lr * g / np.sqrt(acc + epsilon)
    return p


OPT_CASES = [  # (class, kwargs, NumPy reference)
    (O.SGD, {"learning_rate": 0.1}, _ref_sgd),
    (O.SGD, {"learning_rate": 0.1, "momentum": 0.9}, _ref_sgd),
    (O.SGD, {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}, _ref_sgd),
    (O.Adam, {"learning_rate": 0.01}, _ref_adam),
    (O.Adam, {"learning_rate": 0.01, "amsgrad": True, "beta_1": 0.8}, _ref_adam),
    (O.AdamW, {"learning_rate": 0.01}, lambda p, g, lr, **k: _ref_adam(
        p, g, lr, weight_decay=0.004, **k)),
    (O.RMSprop, {"learning_rate": 0.01}, _ref_rmsprop),
    (O.RMSprop, {"learning_rate": 0.01, "momentum": 0.5, "centered": True}, _ref_rmsprop),
    (O.Adagrad, {"learning_rate": 0.1}, _ref_adagrad),
]

GRADS = [rng.standard_normal((3, 2)).astype(np.float32) for _ in range(4)]
W0 = rng.standard_normal((3, 2)).astype(np.float32)


def _run(opt, grads, jit=False):
    w = em.nn.Parameter(em.tensor(W0.copy()))
    opt.build([w])
    g_in = em.zeros(3, 2)

    def step(g):
        w.grad = g.clone()
        opt.step()
    f = em.jit(step) if jit else step
    for g in grads:
        g_in.copy_(em.tensor(g))
        f(g_in)
    return w.detach().numpy()


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("i", range(len(OPT_CASES)))
def test_optimizer_steps_follow_the_keras_rule(i, jit):
    cls, kw, ref = OPT_CASES[i]
    kw_ref = {k: v for k, v in kw.items() if k != "learning_rate"}
    want = ref(W0.astype(np.float64), [g.astype(np.float64) for g in GRADS],
               kw["learning_rate"], **kw_ref)
    opt = cls(**kw)
    got = _run(opt, GRADS, jit)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    assert opt.iterations == len(GRADS)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("clip", [{"clipnorm": 0.5}, {"clipvalue": 0.3},
                                  {"global_clipnorm": 0.5}])
def test_gradient_clipping(clip, jit):
    grads = [g * 3 for g in GRADS[:2]]
    if "clipnorm" in clip:
        clipped = [g * 0.5 / max(np.linalg.norm(g), 0.5) for g in grads]
    elif "clipvalue" in clip:
        clipped = [np.clip(g, -0.3, 0.3) for g in grads]
    else:  # one tensor here, so the global norm is its norm
        clipped = [g * min(1.0, 0.5 / np.linalg.norm(g)) for g in grads]
    want = _ref_sgd(W0.astype(np.float64), clipped, 0.1)
    got = _run(O.SGD(learning_rate=0.1, **clip), grads, jit)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_learning_rate_attribute_and_schedules():
    opt = O.SGD(learning_rate=0.5)
    opt.learning_rate = 0.25  # what ReduceLROnPlateau does
    got = _run(opt, GRADS[:1])
    np.testing.assert_allclose(got, W0 - 0.25 * GRADS[0], rtol=1e-6)
    assert opt.learning_rate == 0.25
    sched = S.PiecewiseConstantDecay([1, 2], [0.3, 0.2, 0.1])
    opt = O.SGD(learning_rate=sched)
    lrs = [0.3, 0.3, 0.2, 0.1]  # at iterations 0, 1, 2, 3
    got = _run(opt, GRADS, jit=True)
    want = W0 - sum(lr * g for lr, g in zip(lrs, GRADS))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.1
    assert opt.learning_rate == pytest.approx(0.1)


@pytest.mark.parametrize("sched, formula", [
    (S.ExponentialDecay(0.1, 10, 0.5), lambda s: 0.1 * 0.5 ** (s / 10)),
    (S.ExponentialDecay(0.1, 10, 0.5, staircase=True), lambda s: 0.1 * 0.5 ** (s // 10)),
    (S.PiecewiseConstantDecay([5, 10], [1.0, 0.5, 0.1]),
     lambda s: 1.0 if s <= 5 else 0.5 if s <= 10 else 0.1),
    (S.CosineDecay(0.1, 20, alpha=0.1),
     lambda s: 0.1 * (0.9 * 0.5 * (1 + math.cos(math.pi * min(s, 20) / 20)) + 0.1)),
    (S.CosineDecay(0.0, 20, warmup_target=0.2, warmup_steps=5),
     lambda s: 0.2 * s / 5 if s < 5 else 0.2 * 0.5 * (1 + math.cos(math.pi * min(s - 5, 20)
                                                                  / 20))),
    (S.InverseTimeDecay(0.1, 4, 0.5), lambda s: 0.1 / (1 + 0.5 * s / 4)),
    (S.PolynomialDecay(0.1, 10, 0.01, power=2), lambda s: 0.09 * (1 - min(s, 10) / 10) ** 2
     + 0.01),
])
def test_schedules_follow_their_formulas(sched, formula):
    for s in (0, 1, 4, 5, 6, 10, 11, 25, 40):
        assert sched(s) == pytest.approx(formula(s), rel=1e-9, abs=1e-12), s


def test_optimizer_lookup_state_dict_and_errors(tmp_path):
    assert isinstance(O.get("adam"), O.Adam) and O.get("adam").learning_rate == 0.001
    assert isinstance(O.get("RMSprop"), O.RMSprop) and O.get("sgd").learning_rate == 0.01
    assert O.AdamW().weight_decay == 0.004 and O.Adagrad().epsilon == 1e-7
    opt = O.Adam(learning_rate=0.01)
    _run(opt, GRADS[:2])
    path = tmp_path / "opt.safetensors"
    em.save(opt.state_dict(), path)
    w = em.nn.Parameter(em.tensor(W0.copy()))
    fresh = O.Adam(learning_rate=0.01)
    fresh.build([w])
    fresh.load_state_dict(em.load(path))
    assert fresh.iterations == 2
    for k in ("momentum", "velocity"):
        np.testing.assert_array_equal(fresh.state[w][k].numpy(),
                                      list(opt.state.values())[0][k].numpy())
    with pytest.raises(ValueError, match="Only one of `clipnorm`"):
        O.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier"):
        O.get("adamax2")
    with pytest.raises(ValueError, match="not built"):
        O.SGD().step()
    with pytest.raises(ValueError, match="not recognized"):
        O.SGD(lr=0.1)


def test_metric_lookup_by_keras_names():
    assert isinstance(KM.get("mae"), KM.MeanAbsoluteError)
    assert isinstance(KM.get("AUC"), KM.AUC) and isinstance(KM.get("auc"), KM.AUC)
    assert isinstance(KM.get("top_k_categorical_accuracy"), KM.TopKCategoricalAccuracy)
    m = KM.get("sparse_categorical_crossentropy")
    m.update_state(Y, P)
    np.testing.assert_allclose(m.result(), _np_cce(Y1H, P).mean(), rtol=1e-6)
    acc = KM.Accuracy()  # Keras's exact match
    acc.update_state([1, 2, 3, 4], [1, 2, 0, 4])
    assert acc.result() == 0.75
    for ident, y, p, cls in [("accuracy", Y, P, KM.SparseCategoricalAccuracy),
                             ("acc", Y1H, P, KM.CategoricalAccuracy),
                             ("accuracy", YB, PB, KM.BinaryAccuracy)]:
        m = KM._resolve(ident, y, p)
        assert type(m) is cls and m.name == ident
    with pytest.raises(ValueError, match="Could not interpret metric identifier"):
        KM.get("accuracyy")


# ----- Keras 3 as the oracle ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return keras_or_skip()


@pytest.mark.parametrize("i", range(len(LOSS_CASES)))
def test_losses_match_keras(keras, i):
    loss, (name, kw), yt, yp, _ = LOSS_CASES[i]
    k = getattr(keras.losses, name)(**kw)
    for sw in (None, SW):
        want = float(keras.ops.convert_to_numpy(k(yt.astype(np.float32),
                                                  yp.astype(np.float32), sw)))
        got = loss(yt, yp.astype(np.float32), sw).item()
        np.testing.assert_allclose(got, want, rtol=1e-5)


KERAS_OPT_CASES = OPT_CASES + [
    (O.SGD, {"learning_rate": 0.1, "weight_decay": 0.05, "clipnorm": 0.5}, None),
    (O.Adam, {"learning_rate": 0.01, "global_clipnorm": 0.7}, None),
    (O.RMSprop, {"learning_rate": 0.01, "clipvalue": 0.2}, None),
    (O.SGD, {"learning_rate": S.ExponentialDecay(0.1, 2, 0.5)}, None),
]


@pytest.mark.parametrize("i", range(len(KERAS_OPT_CASES)))
def test_optimizers_match_keras_step_for_step(keras, i):
    cls, kw, _ = KERAS_OPT_CASES[i]
    kkw = dict(kw)
    if isinstance(kw["learning_rate"], S.ExponentialDecay):
        kkw["learning_rate"] = keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)
    kopt = getattr(keras.optimizers, cls.__name__)(**kkw)
    kv = [keras.Variable(W0.copy()), keras.Variable(W0[:, :1].copy() * 2)]
    ev = [em.nn.Parameter(em.tensor(W0.copy())), em.nn.Parameter(em.tensor(W0[:, :1] * 2))]
    opt = cls(**kw)
    opt.build(ev)
    for g in GRADS:
        gs = [g, g[:, :1] * 0.5]
        kopt.apply([keras.ops.convert_to_tensor(x) for x in gs], kv)
        if i % 2:  # Keras's own entry point
            opt.apply_gradients(zip([em.tensor(x) for x in gs], ev))
        else:  # ember.optim's
            for p, x in zip(ev, gs):
                p.grad = em.tensor(x)
            opt.step()
    for k, e in zip(kv, ev):
        np.testing.assert_allclose(e.detach().numpy(), keras.ops.convert_to_numpy(k),
                                   rtol=1e-5, atol=1e-6)
    assert opt.iterations == int(keras.ops.convert_to_numpy(kopt.iterations))


@pytest.mark.parametrize("sched", [S.ExponentialDecay(0.1, 10, 0.5, staircase=True),
                                   S.PiecewiseConstantDecay([5, 10], [1.0, 0.5, 0.1]),
                                   S.CosineDecay(0.1, 20, alpha=0.1, warmup_target=0.3,
                                                 warmup_steps=4),
                                   S.InverseTimeDecay(0.1, 4, 0.5, staircase=True),
                                   S.PolynomialDecay(0.1, 10, 0.01, power=2, cycle=True)])
def test_schedules_match_keras(keras, sched):
    k = getattr(keras.optimizers.schedules, type(sched).__name__)(**sched.get_config())
    for s in (0, 1, 4, 5, 6, 10, 11, 25):
        want = float(keras.ops.convert_to_numpy(k(s)))
        assert sched(s) == pytest.approx(want, rel=1e-6), s
