"""ember.optim.lr_scheduler: each schedule's learning rates against the closed-form formulas
of PyTorch's documentation (written out here), state_dict round trips, and (when torch is
installed) equality with torch's schedulers step for step."""
import json
import math
import warnings
from bisect import bisect_right

import numpy as np
import pytest

import ember
import ember.optim as optim
from ember.optim import lr_scheduler as S

BASE = 0.1


def _opt(cls=optim.SGD, lrs=(BASE,), **kw):
    groups = [{"params": [ember.nn.Parameter(ember.zeros(2))], "lr": lr} for lr in lrs]
    kw.setdefault("momentum", 0.9) if cls is optim.SGD else None
    return cls(groups, **kw)


def _lrs(make, n, opt=None, metrics=None):
    """The lr of group 0 at epochs 0..n-1 (epoch 0: right after construction)."""
    opt = opt or _opt()
    sched = make(opt)
    out = [opt.param_groups[0]["lr"]]
    for e in range(1, n):
        opt.step()
        sched.step(*([] if metrics is None else [metrics[e - 1]]))
        out.append(opt.param_groups[0]["lr"])
    assert sched.get_last_lr()[0] == out[-1]
    return out


def _cos(lo, hi, pct):
    return lo + (hi - lo) * (1 + math.cos(math.pi * pct)) / 2


N = 25
CLOSED_FORM = {
    "StepLR": (lambda o: S.StepLR(o, step_size=3, gamma=0.5),
               lambda e: BASE * 0.5 ** (e // 3)),
    "MultiStepLR": (lambda o: S.MultiStepLR(o, milestones=[2, 5, 5, 11], gamma=0.3),
                    lambda e: BASE * 0.3 ** bisect_right([2, 5, 5, 11], e)),
    "ExponentialLR": (lambda o: S.ExponentialLR(o, gamma=0.9), lambda e: BASE * 0.9 ** e),
    "CosineAnnealingLR": (lambda o: S.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
                          lambda e: _cos(0.01, BASE, e / 7)),
    "LinearLR": (lambda o: S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=6),
                 lambda e: BASE * (0.2 + 0.7 * min(e, 6) / 6)),
    "ConstantLR": (lambda o: S.ConstantLR(o, factor=0.4, total_iters=4),
                   lambda e: BASE * (0.4 if e < 4 else 1.0)),
    "LambdaLR": (lambda o: S.LambdaLR(o, lambda e: 1 / (e + 1)), lambda e: BASE / (e + 1)),
    "MultiplicativeLR": (lambda o: S.MultiplicativeLR(o, lambda e: 0.95),
                         lambda e: BASE * 0.95 ** e),
    "PolynomialLR": (lambda o: S.PolynomialLR(o, total_iters=10, power=2.0),
                     lambda e: BASE * (1 - min(e, 10) / 10) ** 2),
    "SequentialLR": (lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, 1.0, 5),
                                                  S.ExponentialLR(o, 0.8)], milestones=[5]),
                     lambda e: BASE * (0.1 + 0.9 * e / 5) if e < 5 else BASE * 0.8 ** (e - 5)),
    "ChainedScheduler": (lambda o: S.ChainedScheduler([S.ConstantLR(o, 0.5, 4),
                                                       S.ExponentialLR(o, 0.9)]),
                         lambda e: BASE * (0.5 if e < 4 else 1.0) * 0.9 ** e),
    "CyclicLR": (lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4,
                                      step_size_down=6),
                 lambda e: 0.01 + 0.09 * ((e % 10) / 4 if e % 10 <= 4 else (10 - e % 10) / 6)),
}


@pytest.mark.parametrize("name", list(CLOSED_FORM))
def test_sequence_matches_the_closed_form(name):
    make, formula = CLOSED_FORM[name]
    np.testing.assert_allclose(_lrs(make, N), [formula(e) for e in range(N)], rtol=1e-12,
                               atol=1e-15)


def test_cosine_annealing_continues_past_T_max_as_a_cosine():
    # PyTorch's recursive form keeps following eta_min + (base - eta_min)(1 + cos(pi e / T))/2
    got = _lrs(lambda o: S.CosineAnnealingLR(o, T_max=4), 13)
    np.testing.assert_allclose(got, [_cos(0.0, BASE, e / 4) for e in range(13)], atol=1e-15)


def test_cosine_warm_restarts():
    # T_0=3, T_mult=2: cycles of 3, 6, 12 epochs; T_cur restarts at 0 at each cycle
    t_cur = [0, 1, 2, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3]
    t_i = [3, 3, 3, 6, 6, 6, 6, 6, 6, 12, 12, 12, 12]
    got = _lrs(lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.01), 13)
    np.testing.assert_allclose(got, [_cos(0.01, BASE, c / i) for c, i in zip(t_cur, t_i)],
                               rtol=1e-12)


@pytest.mark.parametrize("epoch,t_cur,t_i", [(0.5, 0.5, 3), (2.75, 2.75, 3), (4.5, 1.5, 6),
                                             (9.25, 0.25, 12), (21.0, 0.0, 24)])
def test_cosine_warm_restarts_fractional_epochs(epoch, t_cur, t_i):
    opt = _opt()
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched.step(epoch)
    assert math.isclose(opt.param_groups[0]["lr"], _cos(0.01, BASE, t_cur / t_i),
                        rel_tol=1e-12)
    assert sched.last_epoch == math.floor(epoch)


def _one_cycle_expected(total, max_lr, pct, div, final_div, anneal, three_phase,
                        mom=(0.85, 0.95)):
    """The 1cycle schedule of PyTorch's docs, phase by phase."""
    init, lo_mom, hi_mom = max_lr / div, mom[0], mom[1]
    low = init / final_div
    up = pct * total - 1
    if three_phase:
        phases = [(up, init, max_lr, hi_mom, lo_mom), (2 * pct * total - 2, max_lr, init,
                                                        lo_mom, hi_mom),
                  (total - 1, init, low, hi_mom, hi_mom)]
    else:
        phases = [(up, init, max_lr, hi_mom, lo_mom), (total - 1, max_lr, low, lo_mom, hi_mom)]

    def interp(a, b, x):
        return _cos(b, a, x) if anneal == "cos" else a + (b - a) * x

    lrs, moms = [], []
    for step in range(total):
        start = 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
            if step <= end or i == len(phases) - 1:
                x = (step - start) / (end - start)
                lrs.append(interp(lr0, lr1, x))
                moms.append(interp(m0, m1, x))
                break
            start = end
    return lrs, moms


@pytest.mark.parametrize("kw", [
    dict(total_steps=30),
    dict(epochs=3, steps_per_epoch=10, pct_start=0.25, anneal_strategy="linear"),
    dict(total_steps=40, three_phase=True, div_factor=10.0, final_div_factor=100.0),
])
def test_one_cycle(kw):
    kw = dict(kw)
    total = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    opt = _opt()
    sched = S.OneCycleLR(opt, max_lr=1.0, **kw)
    lrs, moms = [], []
    for step in range(total):
        if step:
            opt.step()
            sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
    want_lr, want_mom = _one_cycle_expected(
        total, 1.0, kw.get("pct_start", 0.3), kw.get("div_factor", 25.0),
        kw.get("final_div_factor", 1e4), kw.get("anneal_strategy", "cos"),
        kw.get("three_phase", False))
    np.testing.assert_allclose(lrs, want_lr, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(moms, want_mom, rtol=1e-12)
    opt.step()
    sched.step()  # the step that reaches total_steps is allowed; the next one is not
    with pytest.raises(ValueError, match="Tried to step"):
        sched.step()


def test_one_cycle_cycles_adams_beta1():
    opt = _opt(optim.Adam)
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    assert opt.param_groups[0]["betas"] == (0.95, 0.999)
    for _ in range(3):
        opt.step()
        sched.step()
    _, moms = _one_cycle_expected(10, 1.0, 0.3, 25.0, 1e4, "cos", False)
    assert math.isclose(opt.param_groups[0]["betas"][0], moms[3], rel_tol=1e-12)
    with pytest.raises(ValueError, match="momentum or beta1"):
        S.OneCycleLR(_opt(optim.Adagrad), max_lr=1.0, total_steps=10)


def test_reduce_lr_on_plateau():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85]
    got = _lrs(lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1),
               13, metrics=metrics)
    # bad epochs after the best 0.9: 3 in a row -> halve (epoch 5); 0.8 is a new best;
    # then 3 bad -> halve at epoch 9; cooldown 1 swallows epoch 10; 3 more bad -> epoch 13
    want = [BASE] * 5 + [BASE / 2] * 4 + [BASE / 4] * 4
    assert got == want[:13]


@pytest.mark.parametrize("kw,metrics,want", [
    (dict(mode="max", patience=0, threshold=0.1, threshold_mode="abs"),
     [1.0, 1.05, 1.2], [BASE, BASE, BASE * 0.1, BASE * 0.1]),
    (dict(patience=0, min_lr=0.05), [1.0, 2.0, 3.0], [BASE, BASE, 0.05, 0.05]),
    (dict(patience=0, factor=0.5, eps=0.06), [1.0, 2.0, 3.0], [BASE] * 4),  # change < eps
])
def test_reduce_lr_on_plateau_options(kw, metrics, want):
    assert _lrs(lambda o: S.ReduceLROnPlateau(o, **kw), len(metrics) + 1,
                metrics=metrics) == want


def test_scheduler_records_initial_lr_and_base_lrs():
    opt = _opt(lrs=(0.1, 0.02))
    sched = S.StepLR(opt, 2)
    assert sched.base_lrs == [0.1, 0.02] and sched.last_epoch == 0
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.02]
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_opt(), 2, last_epoch=3)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.StepLR(object(), 2)


def test_stepping_the_scheduler_first_warns():
    opt = _opt()
    sched = S.StepLR(opt, 2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()


def _through_json(sd):
    return json.loads(json.dumps(sd))


FACTORIES = {name: make for name, (make, _) in CLOSED_FORM.items()}
FACTORIES.update({
    "CosineAnnealingWarmRestarts": lambda o: S.CosineAnnealingWarmRestarts(o, 3, 2, 0.01),
    "OneCycleLR": lambda o: S.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=40),
    "OneCycleLR-3phase-linear": lambda o: S.OneCycleLR(
        o, 1.0, epochs=4, steps_per_epoch=10, three_phase=True, anneal_strategy="linear",
        pct_start=0.25),
    "CosineAnnealingLR-sequential": lambda o: S.SequentialLR(
        o, [S.LinearLR(o, 0.1, 1.0, 5), S.CosineAnnealingLR(o, 10), S.StepLR(o, 4)],
        milestones=[5, 20]),
    "CyclicLR-triangular2": lambda o: S.CyclicLR(o, 0.01, [0.1, 0.2], step_size_up=4,
                                                 step_size_down=6, mode="triangular2"),
    "CyclicLR-exp_range": lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3,
                                               mode="exp_range", gamma=0.9),
    "LambdaLR-per-group": lambda o: S.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: 1 / (e + 1)]),
})


def _trace(make, n, opt_cls=optim.SGD, resume_at=None, metrics=None):
    """Both groups' lr and momentum over n steps; with ``resume_at`` the optimiser and the
    scheduler are rebuilt from JSON'd state dicts at that step."""
    opt = _opt(opt_cls, lrs=(0.1, 0.2))
    sched = make(opt)
    out = []
    for i in range(n):
        if i == resume_at:
            osd, ssd = _through_json(opt.state_dict()), _through_json(sched.state_dict())
            opt = _opt(opt_cls, lrs=(0.1, 0.2))
            sched = make(opt)
            sched.load_state_dict(ssd)
            opt.load_state_dict(osd)
        opt.step()
        sched.step(*([] if metrics is None else [metrics[i]]))
        groups = opt.param_groups
        out.append([g["lr"] for g in groups] + [g.get("momentum", g.get("betas", [0])[0])
                                                for g in groups] + list(sched.get_last_lr()))
    return out


@pytest.mark.parametrize("name", list(FACTORIES))
def test_state_dict_through_json_resumes_exactly(name):
    make = FACTORIES[name]
    assert _trace(make, 30, resume_at=11) == _trace(make, 30)


def test_reduce_lr_on_plateau_state_dict_resumes_exactly():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85] * 2

    def make(o):
        return S.ReduceLROnPlateau(o, patience=1, cooldown=1)

    assert _trace(make, 20, resume_at=7, metrics=metrics) == _trace(make, 20, metrics=metrics)


# ----- against PyTorch ----------------------------------------------------------------------
def _torch_trace(torch, name, n=40, opt_name="SGD", metrics=None):
    """Run the same factory against torch.optim by swapping the module it reads from."""
    def build(module, lib):
        groups = [{"params": [lib.nn.Parameter(lib.zeros(2))], "lr": lr} for lr in (0.1, 0.2)]
        kw = {"momentum": 0.9} if opt_name == "SGD" else {}
        opt = getattr(module, opt_name)(groups, **kw)
        sched = _FACTORY_SOURCES[name](module.lr_scheduler, opt)
        out = []
        for i in range(n):
            opt.step()
            sched.step(*([] if metrics is None else [metrics[i]]))
            out.append([g["lr"] for g in opt.param_groups]
                       + [g.get("momentum", g.get("betas", [0])[0]) for g in opt.param_groups]
                       + list(sched.get_last_lr()))
        return out
    return build(optim, ember), build(torch.optim, torch)


_FACTORY_SOURCES = {
    "StepLR": lambda M, o: M.StepLR(o, 3, 0.5),
    "MultiStepLR": lambda M, o: M.MultiStepLR(o, [2, 5, 5, 11], 0.3),
    "ExponentialLR": lambda M, o: M.ExponentialLR(o, 0.93),
    "CosineAnnealingLR": lambda M, o: M.CosineAnnealingLR(o, 7, 0.001),
    "CosineAnnealingWarmRestarts": lambda M, o: M.CosineAnnealingWarmRestarts(o, 3, 2, 0.01),
    "OneCycleLR": lambda M, o: M.OneCycleLR(o, [1.0, 2.0], total_steps=40),
    "OneCycleLR-3phase": lambda M, o: M.OneCycleLR(o, 1.0, epochs=4, steps_per_epoch=10,
                                                   three_phase=True, anneal_strategy="linear",
                                                   pct_start=0.25),
    "LinearLR": lambda M, o: M.LinearLR(o, 0.2, 0.9, 6),
    "ConstantLR": lambda M, o: M.ConstantLR(o, 0.4, 4),
    "LambdaLR": lambda M, o: M.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: 1 / (e + 1)]),
    "MultiplicativeLR": lambda M, o: M.MultiplicativeLR(o, lambda e: 0.95),
    "PolynomialLR": lambda M, o: M.PolynomialLR(o, 10, 2.0),
    "SequentialLR": lambda M, o: M.SequentialLR(o, [M.LinearLR(o, 0.1, 1.0, 5),
                                                    M.CosineAnnealingLR(o, 10),
                                                    M.StepLR(o, 4)], [5, 20]),
    "ChainedScheduler": lambda M, o: M.ChainedScheduler([M.ConstantLR(o, 0.5, 4),
                                                         M.ExponentialLR(o, 0.9)]),
    "CyclicLR": lambda M, o: M.CyclicLR(o, 0.01, [0.1, 0.2], step_size_up=4, step_size_down=6,
                                        mode="triangular2"),
    "CyclicLR-exp_range": lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=3,
                                                  mode="exp_range", gamma=0.9),
    "ReduceLROnPlateau": lambda M, o: M.ReduceLROnPlateau(o, factor=0.5, patience=1,
                                                          cooldown=2, min_lr=[0.01, 0.05]),
    "ReduceLROnPlateau-max-abs": lambda M, o: M.ReduceLROnPlateau(
        o, mode="max", threshold_mode="abs", threshold=0.01, patience=0),
}


@pytest.mark.parametrize("name", list(_FACTORY_SOURCES))
def test_matches_torch_step_for_step(name):
    torch = pytest.importorskip("torch")
    metrics = ([1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85] * 4
               if name.startswith("ReduceLROnPlateau") else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = _torch_trace(torch, name, metrics=metrics)
    assert ours == theirs


@pytest.mark.parametrize("name", ["OneCycleLR", "CyclicLR"])
def test_momentum_cycling_of_adam_matches_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = _torch_trace(torch, name, opt_name="Adam")
    assert ours == theirs


def test_closed_form_epoch_argument_matches_torch():
    torch = pytest.importorskip("torch")
    for name in ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
                 "ConstantLR", "PolynomialLR"]:
        got = []
        for module, lib in ((optim, ember), (torch.optim, torch)):
            opt = module.SGD([lib.nn.Parameter(lib.zeros(1))], lr=0.1)
            sched = _FACTORY_SOURCES[name](module.lr_scheduler, opt)
            seq = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for epoch in [3, 7, 1, 12, 0, 25]:
                    sched.step(epoch)
                    seq.append(sched.get_last_lr())
            got.append(seq)
        assert got[0] == got[1], name


def test_the_usual_order_raises_no_warnings():
    opt = _opt()
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(5):
            opt.step()
            sched.step()


def test_calling_get_lr_directly_warns():
    sched = S.StepLR(_opt(), 2)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
