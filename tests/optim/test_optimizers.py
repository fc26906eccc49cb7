"""ember.optim optimisers against NumPy implementations of their published update rules
(PyTorch's documented pseudocode), plus state_dict round trips, groups, hooks and errors."""
import json
import math

import numpy as np
import pytest

import ember
import ember.optim as optim

SHAPES = [(3, 4), (4,)]


def _problem(seed=0):
    """Initial values and a nonlinear gradient field g(theta) = a * theta + c + 0.1 theta^3."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    a = [rng.uniform(0.5, 2.0, s) for s in SHAPES]
    c = [rng.standard_normal(s) for s in SHAPES]
    return init, lambda k, th: a[k] * th + c[k] + 0.1 * th ** 3


# ----- NumPy references: the update rules as written in PyTorch's documentation -----------
def ref_sgd(th, g, t, st, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
            maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * th
    if momentum:
        st["b"] = g if t == 1 else momentum * st["b"] + (1 - dampening) * g
        g = g + momentum * st["b"] if nesterov else st["b"]
    return th - lr * g


def ref_adam(th, g, t, st, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
             amsgrad=False, maximize=False, decoupled=False):
    b1, b2 = betas
    g = -g if maximize else g
    if weight_decay:
        if decoupled:
            th = th - lr * weight_decay * th
        else:
            g = g + weight_decay * th
    st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
    m_hat = st["m"] / (1 - b1 ** t)
    if amsgrad:
        st["vmax"] = np.maximum(st.get("vmax", 0), st["v"])
        v_hat = st["vmax"] / (1 - b2 ** t)
    else:
        v_hat = st["v"] / (1 - b2 ** t)
    return th - lr * m_hat / (np.sqrt(v_hat) + eps)


def ref_adamw(th, g, t, st, weight_decay=1e-2, **kw):
    return ref_adam(th, g, t, st, weight_decay=weight_decay, decoupled=True, **kw)


def ref_rmsprop(th, g, t, st, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                centered=False, maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * th
    st["v"] = alpha * st.get("v", 0) + (1 - alpha) * g * g
    v = st["v"]
    if centered:
        st["gave"] = alpha * st.get("gave", 0) + (1 - alpha) * g
        v = v - st["gave"] ** 2
    if momentum > 0:
        st["b"] = momentum * st.get("b", 0) + g / (np.sqrt(v) + eps)
        return th - lr * st["b"]
    return th - lr * g / (np.sqrt(v) + eps)


def ref_adagrad(th, g, t, st, lr=1e-2, lr_decay=0, weight_decay=0,
                initial_accumulator_value=0, eps=1e-10, maximize=False):
    g = -g if maximize else g
    clr = lr / (1 + (t - 1) * lr_decay)
    if weight_decay:
        g = g + weight_decay * th
    st["sum"] = st.get("sum", initial_accumulator_value) + g * g
    return th - clr * g / (np.sqrt(st["sum"]) + eps)


def ref_adadelta(th, g, t, st, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * th
    st["v"] = rho * st.get("v", 0) + (1 - rho) * g * g
    dx = np.sqrt(st.get("u", 0) + eps) / np.sqrt(st["v"] + eps) * g
    st["u"] = rho * st.get("u", 0) + (1 - rho) * dx * dx
    return th - lr * dx


REFS = {"SGD": ref_sgd, "Adam": ref_adam, "AdamW": ref_adamw, "RMSprop": ref_rmsprop,
        "Adagrad": ref_adagrad, "Adadelta": ref_adadelta}

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, maximize=True)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.8, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.8, centered=True, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)),
]
IDS = [f"{c}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for c, kw in CASES]


def _reference(name, kw, steps, seed=0):
    init, grad = _problem(seed)
    out = []
    for k, th in enumerate(init):
        st = {}
        for t in range(1, steps + 1):
            th = REFS[name](th, grad(k, th), t, st, **kw)
        out.append(th)
    return out


def _params(values, dtype=np.float64):
    return [ember.nn.Parameter(ember.tensor(np.asarray(v, dtype))) for v in values]


def _run(opt, params, grad, steps):
    for _ in range(steps):
        opt.zero_grad()
        for k, p in enumerate(params):
            th = p.detach().numpy()
            p.grad = ember.tensor(grad(k, th).astype(th.dtype))
        opt.step()


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_matches_published_update_rule(name, kw):
    init, grad = _problem()
    params = _params(init)
    _run(getattr(optim, name)(params, **kw), params, grad, steps=5)
    for p, want in zip(params, _reference(name, kw, 5)):
        np.testing.assert_allclose(p.detach().numpy(), want, rtol=1e-10, atol=1e-12)


def test_gradients_from_backward_drive_the_update():
    init, _ = _problem()
    w = ember.nn.Parameter(ember.tensor(init[0]))
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    th, b = init[0].copy(), None
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()  # gradient 2w
        opt.step()
        g = 2 * th
        b = g if b is None else 0.9 * b + g
        th = th - 0.1 * b
    np.testing.assert_allclose(w.detach().numpy(), th, rtol=1e-12)


def test_param_groups_use_their_own_options():
    init, grad = _problem()
    params = _params(init)
    opt = optim.SGD([{"params": [params[0]], "lr": 0.2, "momentum": 0.5},
                     {"params": [params[1]]}], lr=0.05, momentum=0.9)
    assert opt.param_groups[1]["lr"] == 0.05 and opt.param_groups[0]["momentum"] == 0.5
    _run(opt, params, grad, steps=4)
    want0 = _reference("SGD", dict(lr=0.2, momentum=0.5), 4)[0]
    want1 = _reference("SGD", dict(lr=0.05, momentum=0.9), 4)[1]
    np.testing.assert_allclose(params[0].detach().numpy(), want0, rtol=1e-12)
    np.testing.assert_allclose(params[1].detach().numpy(), want1, rtol=1e-12)


def test_add_param_group_and_named_parameters():
    a, b = _params([np.ones(2), np.ones(3)])
    opt = optim.Adam([("a", a)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["a"]
    opt.add_param_group({"params": [("b", b)], "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [("a2", a)]})
    with pytest.raises(ValueError, match="with/without names"):
        opt.add_param_group({"params": [_params([np.ones(1)])[0]]})


def test_parameters_without_grad_are_left_alone():
    a, b = _params([np.ones(2), np.ones(2)])
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = ember.tensor(np.ones(2))
    opt.step()
    assert np.array_equal(b.detach().numpy(), np.ones(2)) and b not in opt.state
    assert not np.array_equal(a.detach().numpy(), np.ones(2))


def test_zero_grad():
    p = _params([np.ones(3)])[0]
    opt = optim.SGD([p], lr=0.1)
    p.grad = ember.tensor(np.full(3, 2.0))
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and np.array_equal(g.numpy(), np.zeros(3))
    opt.zero_grad()
    assert p.grad is None


def test_closure_runs_with_grad_enabled_and_loss_is_returned():
    p = _params([np.ones(2)])[0]
    opt = optim.SGD([p], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with ember.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 2.0
    np.testing.assert_allclose(p.detach().numpy(), [0.0, 0.0])


def test_step_bumps_the_version_so_stale_graphs_raise():
    p = _params([np.ones(2)])[0]
    opt = optim.SGD([p], lr=0.1)
    p.grad = ember.tensor(np.ones(2))
    y = (p * p).sum()
    opt.step()
    with pytest.raises(RuntimeError):
        y.backward()


def test_step_hooks():
    p = _params([np.ones(2)])[0]
    opt = optim.SGD([p], lr=0.1)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    opt.step()
    pre.remove()
    opt.step()
    assert calls == ["pre", "post", "post"]


@pytest.mark.parametrize("make,exc,match", [
    (lambda p: optim.SGD(p, lr=-1), ValueError, "Invalid learning rate: -1"),
    (lambda p: optim.Adam(p, lr=-0.5), ValueError, "Invalid learning rate: -0.5"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), ValueError, "Invalid beta parameter at index 0"),
    (lambda p: optim.AdamW(p, betas=(0.9, -0.1)), ValueError, "beta parameter at index 1"),
    (lambda p: optim.Adam(p, eps=-1e-8), ValueError, "Invalid epsilon value"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), ValueError, "Invalid momentum value"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), ValueError, "Nesterov momentum requires"),
    (lambda p: optim.RMSprop(p, alpha=-1), ValueError, "Invalid alpha value"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), ValueError, "Invalid lr_decay value"),
    (lambda p: optim.Adadelta(p, rho=1.5), ValueError, "Invalid rho value"),
    (lambda p: optim.Adam(p, weight_decay=-1), ValueError, "Invalid weight_decay value"),
    (lambda p: optim.SGD(p[0], lr=0.1), TypeError, "iterable of Tensors or dicts"),
    (lambda p: optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda p: optim.SGD([np.ones(2)], lr=0.1), TypeError, "can only optimize Tensors"),
    (lambda p: optim.SGD([p[0] * 2], lr=0.1), ValueError, "non-leaf Tensor"),
    (lambda p: optim.SGD([{"params": {p[0]}}], lr=0.1), TypeError, "ordered collections"),
    (lambda p: optim.LBFGS([{"params": [p[0]]}, {"params": [p[1]]}]), ValueError,
     "parameter groups"),
])
def test_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make(_params([np.ones(2), np.ones(2)]))


# ----- state_dict ---------------------------------------------------------------------------
def _through_json(sd):
    """What ``ember.save`` does: tensors to a table (safetensors), everything else to JSON."""
    table = []

    def strip(x):
        if isinstance(x, ember.Tensor):
            table.append(x.numpy().copy())
            return {"__tensor__": len(table) - 1}
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [strip(v) for v in x]
        assert x is None or isinstance(x, (bool, int, float, str)), type(x)
        return x

    def restore(x):
        if isinstance(x, dict):
            if "__tensor__" in x:
                return ember.tensor(table[x["__tensor__"]])
            return {k: restore(v) for k, v in x.items()}
        if isinstance(x, list):
            return [restore(v) for v in x]
        return x

    return restore(json.loads(json.dumps(strip(sd))))


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_state_dict_resume_continues_exactly(name, kw):
    init, grad = _problem()
    straight = _params(init, np.float32)
    opt = getattr(optim, name)(straight, **kw)
    _run(opt, straight, grad, 3)
    saved = _through_json(opt.state_dict())
    resumed = _params([p.detach().numpy() for p in straight], np.float32)
    opt2 = getattr(optim, name)(resumed, lr=123.0) if "lr" in kw else \
        getattr(optim, name)(resumed)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    _run(opt, straight, grad, 3)
    _run(opt2, resumed, grad, 3)
    for a, b in zip(straight, resumed):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())


def test_state_dict_layout_is_pytorchs():
    a, b, c = _params([np.ones(2), np.ones(3), np.ones(4)])
    opt = optim.Adam([{"params": [a, b]}, {"params": [c], "lr": 0.5}], lr=0.1)
    for p in (a, c):
        p.grad = ember.ones_like(p)
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.5
    assert sorted(sd["state"]) == [0, 2]
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["state"][2]["step"].item() == 1.0 and sd["state"][2]["exp_avg"].shape == (4,)


def test_load_state_dict_copies_and_checks_sizes():
    a, b = _params([np.ones(2), np.ones(2)])
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    a.grad = ember.ones(2, dtype=ember.float64)
    opt.step()
    sd = opt.state_dict()
    opt2 = optim.SGD([b], lr=0.1, momentum=0.9)
    opt2.load_state_dict(sd)
    buf = opt2.state[b]["momentum_buffer"]
    assert buf is not sd["state"][0]["momentum_buffer"] and buf.dtype == ember.float64
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.SGD([a, b], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="number of parameter groups"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)


def test_adamw_keeps_decoupled_decay_after_loading_an_adam_state():
    p = _params([np.ones(2)])[0]
    sd = optim.Adam([p]).state_dict()
    opt = optim.AdamW([p])
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["decoupled_weight_decay"] is True


# ----- LBFGS --------------------------------------------------------------------------------
def _rosenbrock_closure(opt, x):
    def closure():
        opt.zero_grad()
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        loss.backward()
        return loss
    return closure


@pytest.mark.parametrize("kw", [dict(), dict(line_search_fn="strong_wolfe"),
                                dict(line_search_fn="strong_wolfe", history_size=3)])
def test_lbfgs_minimises_rosenbrock(kw):
    x = ember.nn.Parameter(ember.tensor([-1.5, 2.0], dtype=ember.float64))
    opt = optim.LBFGS([x], max_iter=50, tolerance_grad=1e-10, tolerance_change=1e-14, **kw)
    closure = _rosenbrock_closure(opt, x)
    for _ in range(10):
        opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), [1.0, 1.0], atol=1e-5)
    assert closure().item() < 1e-9


def test_lbfgs_first_step_follows_the_published_recursion():
    # On a quadratic 0.5 x^T A x the first iteration is a gradient step of length
    # min(1, 1/|g|_1) * lr; the second uses H_diag = s.y / y.y (no line search).
    A = np.diag([1.0, 4.0])
    x0 = np.array([1.0, 1.0])
    x = ember.nn.Parameter(ember.tensor(x0))
    opt = optim.LBFGS([x], max_iter=2, max_eval=10)

    def closure():
        opt.zero_grad()
        loss = 0.5 * (x * ember.tensor(A.diagonal()) * x).sum()
        loss.backward()
        return loss

    opt.step(closure)
    g0 = A @ x0
    x1 = x0 - min(1.0, 1.0 / np.abs(g0).sum()) * g0
    g1 = A @ x1
    s, y = x1 - x0, g1 - g0
    rho, h = 1 / (y @ s), (y @ s) / (y @ y)
    q = -g1
    al = rho * (s @ q)
    q = q - al * y
    r = h * q
    r = r + s * (al - rho * (y @ r))
    np.testing.assert_allclose(x.detach().numpy(), x1 + r, rtol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(line_search_fn="strong_wolfe", history_size=4)])
def test_lbfgs_state_dict_resume_continues_exactly(kw):
    def fresh(values):
        x = ember.nn.Parameter(ember.tensor(np.asarray(values, np.float32)))
        opt = optim.LBFGS([x], max_iter=4, **kw)
        return x, opt, _rosenbrock_closure(opt, x)

    x, opt, closure = fresh([-1.5, 2.0])
    for _ in range(3):
        opt.step(closure)
    y, opt2, closure2 = fresh(x.detach().numpy())
    opt2.load_state_dict(_through_json(opt.state_dict()))
    for _ in range(3):
        opt.step(closure)
        opt2.step(closure2)
    assert np.array_equal(x.detach().numpy(), y.detach().numpy())


# ----- against PyTorch ----------------------------------------------------------------------
TORCH_CASES = CASES + [("SGD", dict(lr=0.01, momentum=0.9, weight_decay=5e-4)),
                       ("Adam", dict(lr=1e-3, weight_decay=0.01, decoupled_weight_decay=True))]


@pytest.mark.parametrize("name,kw", TORCH_CASES)
def test_matches_torch_over_30_steps(name, kw):
    torch = pytest.importorskip("torch")
    init, grad = _problem(seed=1)
    ours = _params(init, np.float32)
    theirs = [torch.nn.Parameter(torch.tensor(v, dtype=torch.float32)) for v in init]
    opt = getattr(optim, name)(ours, **kw)
    topt = getattr(torch.optim, name)(theirs, **kw)
    sign = -1 if kw.get("maximize") else 1  # maximise a concave function: stay bounded
    for _ in range(30):
        for k, (p, q) in enumerate(zip(ours, theirs)):
            g = sign * grad(k, q.detach().numpy().astype(np.float64)).astype(np.float32)
            p.grad, q.grad = ember.tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=2e-5,
                                       atol=2e-6)
    theirs_state, ours_state = topt.state_dict()["state"], opt.state_dict()["state"]
    assert sorted(ours_state) == sorted(theirs_state)
    for i, entries in theirs_state.items():
        assert set(ours_state[i]) == set(entries)
        for k, v in entries.items():
            np.testing.assert_allclose(np.asarray(ours_state[i][k]), v.numpy(), rtol=1e-4,
                                       atol=1e-6)


@pytest.mark.parametrize("kw", [dict(), dict(line_search_fn="strong_wolfe"),
                                dict(history_size=3, max_iter=5, lr=0.5)])
def test_lbfgs_matches_torch(kw):
    torch = pytest.importorskip("torch")

    def rosen(v):
        x, y = v.astype(np.float64)
        g = [-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)]
        return (1 - x) ** 2 + 100 * (y - x * x) ** 2, np.array(g, np.float32)

    def trajectory(lib, module):
        x = lib.nn.Parameter(lib.tensor(np.array([-1.5, 2.0], np.float32)))
        opt = module.LBFGS([x], **kw)

        def closure():
            f, g = rosen(x.detach().numpy())
            x.grad = lib.tensor(g)
            return f

        out = []
        for _ in range(30):
            opt.step(closure)
            out.append(x.detach().numpy().copy())
        return np.array(out), opt.state[x]["func_evals"]

    (ours, evals), (theirs, tevals) = trajectory(ember, optim), trajectory(torch, torch.optim)
    assert evals == tevals
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    assert math.isclose(ours[-1][0], theirs[-1][0], abs_tol=1e-6)
