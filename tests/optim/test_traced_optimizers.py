"""Optimisers inside a compiled training step (``ember.jit`` of zero_grad/forward/backward/step).

While a trace runs, each optimiser updates every parameter with one registry op ("sgd_update",
"adam_update", ...) whose results the compiled graph writes back after each call. The eager
update rules are checked against the published equations in test_optimizers.py; here the
compiled step must reproduce them step for step (and one rule is checked against NumPy
directly), learning rates and momenta changed by a scheduler must take effect without a
retrace, and the optimiser's state must stay the eager one (PyTorch's state_dict layout).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F
from ember import optim
from ember.jit.tracer import Tracer, tracing
from ember.optim.lr_scheduler import OneCycleLR, StepLR

CASES = [
    ("sgd_update", optim.SGD, dict(lr=0.1)),
    ("sgd_update", optim.SGD, dict(lr=0.1, weight_decay=0.01, maximize=True)),
    ("sgd_momentum_update", optim.SGD, dict(lr=0.1, momentum=0.9)),
    ("sgd_momentum_update", optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3,
                                            weight_decay=0.01)),
    ("sgd_momentum_update", optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("adam_update", optim.Adam, dict(lr=0.01)),
    ("adam_update", optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1,
                                     amsgrad=True)),
    ("adam_update", optim.Adam, dict(lr=0.01, maximize=True)),
    ("adam_update", optim.AdamW, dict(lr=0.01)),
    ("adam_update", optim.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("rmsprop_update", optim.RMSprop, dict(lr=0.01)),
    ("rmsprop_update", optim.RMSprop, dict(lr=0.01, momentum=0.9, centered=True,
                                           weight_decay=0.01)),
    ("rmsprop_update", optim.RMSprop, dict(lr=0.01, alpha=0.9, centered=True)),
    ("adagrad_update", optim.Adagrad, dict(lr=0.1)),
    ("adagrad_update", optim.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.01,
                                           initial_accumulator_value=0.1)),
    ("adadelta_update", optim.Adadelta, dict(lr=1.0)),
    ("adadelta_update", optim.Adadelta, dict(lr=0.5, rho=0.8, weight_decay=0.01)),
]
IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for _, cls, kw in CASES]

_rng = np.random.default_rng(0)
X = _rng.standard_normal((8, 5)).astype(np.float32)
Y = _rng.integers(0, 3, 8)
T = _rng.standard_normal((8, 3)).astype(np.float32)


def _setup(cls, kw, mse=False, zero_to_none=True):
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    opt = cls(model.parameters(), **kw)

    def train_step(x, y):
        opt.zero_grad(set_to_none=zero_to_none)
        out = model(x)
        loss = F.mse_loss(out, y) if mse else F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return loss
    return model, opt, train_step


def _params(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def _run(cls, kw, jit, steps=10, sched=None, mse=False, zero_to_none=True):
    """Parameters after each of ``steps`` training steps, the optimiser and the step fn."""
    model, opt, train_step = _setup(cls, kw, mse, zero_to_none)
    s = sched(opt) if sched else None
    fn = ember.jit(train_step) if jit else train_step
    x, y = ember.tensor(X), ember.tensor(T if mse else Y)
    history = []
    for _ in range(steps):
        fn(x, y)
        if s is not None:
            s.step()
        history.append(_params(model))
    return history, opt, fn, model


def _assert_same(a, b):
    for step, (pa, pb) in enumerate(zip(a, b)):
        for wa, wb in zip(pa, pb):
            np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-7, err_msg=f"step {step}")


def _assert_compiled(fn, op_name):
    graph = fn.graph  # raises when the step ran eagerly
    names = {n.op.name for n in graph.nodes}
    assert op_name in names, names
    assert fn.retraces == 0


@pytest.mark.parametrize("op_name,cls,kw", CASES, ids=IDS)
def test_compiled_step_matches_eager(op_name, cls, kw):
    eager, opt_e, _, _ = _run(cls, kw, jit=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced, opt_t, fn, _ = _run(cls, kw, jit=True)
    assert not [w for w in caught if "ember.jit" in str(w.message)]  # no eager fallback
    _assert_compiled(fn, op_name)
    _assert_same(eager, traced)
    # the optimiser state is the eager one, in PyTorch's layout (no extra entries)
    se, st = opt_e.state_dict()["state"], opt_t.state_dict()["state"]
    assert sorted(se) == sorted(st)
    for i in se:
        assert set(se[i]) == set(st[i])
        for k in se[i]:
            np.testing.assert_allclose(np.asarray(st[i][k]), np.asarray(se[i][k]), rtol=1e-5,
                                       atol=1e-7)


@pytest.mark.parametrize("op_name,cls,kw", [CASES[2], CASES[6], CASES[11]],
                         ids=["SGD", "Adam", "RMSprop"])
def test_mse_loss_and_grads_zeroed_in_place(op_name, cls, kw):
    """``zero_grad(set_to_none=False)`` on gradients that exist before the trace: the graph
    zeroes them and the traced backward accumulates into them."""
    x, y = ember.tensor(X), ember.tensor(T)
    results = []
    for jit in (False, True):
        model, opt, train_step = _setup(cls, kw, mse=True, zero_to_none=False)
        train_step(x, y)  # an eager step first, so .grad exists when the trace starts
        fn = ember.jit(train_step) if jit else train_step
        history = []
        for _ in range(5):
            fn(x, y)
            history.append(_params(model))
        results.append(history)
    _assert_compiled(fn, op_name)
    _assert_same(*results)


@pytest.mark.parametrize("op_name,cls,kw", [CASES[3], CASES[6], CASES[14], CASES[16]],
                         ids=["SGD", "Adam", "Adagrad", "Adadelta"])
def test_eager_steps_continue_after_compiled_ones(op_name, cls, kw):
    """The state a compiled step leaves (step counts, buffers) is what eager steps read."""
    eager, *_ = _run(cls, kw, jit=False, steps=8)
    model, opt, train_step = _setup(cls, kw)
    fn = ember.jit(train_step)
    x, y = ember.tensor(X), ember.tensor(Y)
    mixed = []
    for i in range(8):
        (fn if i < 5 else train_step)(x, y)
        mixed.append(_params(model))
    _assert_compiled(fn, op_name)
    _assert_same(eager, mixed)


SCHEDULED = [
    ("sgd_momentum_update", optim.SGD, dict(lr=0.1, momentum=0.9)),
    ("sgd_update", optim.SGD, dict(lr=0.1)),
    ("adam_update", optim.Adam, dict(lr=0.01, amsgrad=True)),
    ("adam_update", optim.AdamW, dict(lr=0.01)),
    ("rmsprop_update", optim.RMSprop, dict(lr=0.01, momentum=0.5)),
    ("adagrad_update", optim.Adagrad, dict(lr=0.1)),
    ("adadelta_update", optim.Adadelta, dict(lr=1.0)),
]


@pytest.mark.parametrize("op_name,cls,kw", SCHEDULED, ids=[c.__name__ for _, c, _ in SCHEDULED])
@pytest.mark.parametrize("which", ["StepLR", "OneCycleLR"])
def test_scheduler_changes_take_effect_without_retrace(op_name, cls, kw, which):
    if which == "StepLR":
        def sched(opt):
            return StepLR(opt, step_size=3, gamma=0.3)
    else:
        cycle = cls in (optim.Adam, optim.AdamW) or kw.get("momentum", 0) > 0

        def sched(opt):
            return OneCycleLR(opt, max_lr=0.05, total_steps=10, cycle_momentum=cycle)
    eager, opt_e, _, _ = _run(cls, kw, jit=False, sched=sched)
    traced, opt_t, fn, _ = _run(cls, kw, jit=True, sched=sched)
    _assert_compiled(fn, op_name)
    assert opt_t.param_groups[0]["lr"] == opt_e.param_groups[0]["lr"]
    assert opt_t.param_groups[0]["lr"] != kw["lr"]
    _assert_same(eager, traced)


def test_compiled_sgd_momentum_follows_the_published_rule():
    """Independent reference: SGD with momentum and dampening written out in NumPy
    (b_1 = g_1; b_t = mu b_{t-1} + (1 - tau) g_t; p -= lr b_t), for a quadratic loss
    0.5 * sum(w**2 * c) whose gradient is w * c."""
    c = np.array([1.0, 2.0, 0.5], np.float32)
    w = ember.tensor([0.3, -1.2, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9, dampening=0.25)

    @ember.jit
    def step(coef):
        opt.zero_grad()
        (0.5 * (w * w * coef).sum()).backward()
        opt.step()

    ref_w = np.array([0.3, -1.2, 2.0], np.float64)
    buf = None
    for _ in range(6):
        step(ember.tensor(c))
        g = ref_w * c
        buf = g.copy() if buf is None else 0.9 * buf + 0.75 * g
        ref_w = ref_w - 0.1 * buf
        np.testing.assert_allclose(w.detach().numpy(), ref_w, rtol=1e-5)
    assert "sgd_momentum_update" in {n.op.name for n in step.graph.nodes}


@pytest.mark.parametrize("op_name,cls,kw", [CASES[3], CASES[6], CASES[11], CASES[14],
                                            CASES[16]],
                         ids=["SGD", "Adam", "RMSprop", "Adagrad", "Adadelta"])
def test_step_under_a_manual_tracer_records_one_op_per_parameter(op_name, cls, kw):
    """``step()`` alone, traced by hand: it updates the parameters like an eager step and
    records the updates and the state changes as write-backs."""
    results = []
    for traced in (False, True):
        ember.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
        opt = cls(model.parameters(), **kw)
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(ember.tensor(X)), ember.tensor(Y)).backward()
            if traced:
                tracer = Tracer()
                with tracing(tracer):
                    opt.step()
                assert tracer.aborted is None
                nodes = [n for n in tracer.graph.nodes if n.op.name == op_name]
                assert len(nodes) == 4
                n_state = len(opt.state[next(model.parameters())])
                if op_name == "sgd_momentum_update":
                    n_state += 1  # the "buffer holds a momentum yet" flag
                assert len(tracer.graph.mutations) == 4 * (1 + n_state)
                assert all(v.kind == "capture" for v, _ in tracer.graph.mutations)
            else:
                opt.step()
        results.append(_params(model))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_lbfgs_runs_eagerly_under_jit():
    def run(jit):
        w = ember.tensor([1.5, -0.5], requires_grad=True)
        opt = optim.LBFGS([w], lr=1, max_iter=5)
        target = ember.tensor([0.2, 0.7])

        def train_step(t):
            def closure():
                opt.zero_grad()
                loss = ((w - t) ** 2).sum()
                loss.backward()
                return loss
            return opt.step(closure)
        fn = ember.jit(train_step) if jit else train_step
        for _ in range(3):
            fn(target)
        return w.detach().numpy(), fn

    expected, _ = run(False)
    with pytest.warns(UserWarning, match="LBFGS"):
        got, fn = run(True)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got, [0.2, 0.7], atol=1e-5)
    with pytest.raises(RuntimeError, match="eagerly"):
        fn.graph
