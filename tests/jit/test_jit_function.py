"""ember.jit on functions and Modules: equivalence with eager, live captures, retracing,
data-dependent control flow, in-place write-back, inspection, errors."""
import os
import warnings

import numpy as np
import pytest

import ember as em
import ember.nn as nn


def _mlp():
    em.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def test_module_matches_eager_and_sees_live_parameters():
    net = _mlp()
    fast = em.jit(net)
    x = em.randn(5, 4)
    with em.no_grad():
        first = fast(x)          # traces
        second = fast(x)         # replays compiled code
        ref = net(x)
        np.testing.assert_array_equal(first.numpy(), ref.numpy())
        np.testing.assert_array_equal(second.numpy(), ref.numpy())
        net[0].weight.mul_(2.0)  # parameters are live inputs, never frozen constants
        np.testing.assert_allclose(fast(x).numpy(), net(x).numpy(), rtol=1e-6)
    assert fast.retraces == 0
    assert "0.weight" in str(fast.graph)


def test_function_outputs_structure_and_values():
    @em.jit
    def f(a, b):
        s = (a * 2 + b).exp()
        return s.sum(1), (s.max(), [a.mean()])

    a, b = em.randn(3, 4), em.randn(4)
    out = f(a, b)
    out = f(a, b)
    ea = a.numpy() * 2 + b.numpy()
    np.testing.assert_allclose(out[0].numpy(), np.exp(ea).sum(1), rtol=1e-5)
    np.testing.assert_allclose(out[1][0].numpy(), np.exp(ea).max(), rtol=1e-6)
    np.testing.assert_allclose(out[1][1][0].numpy(), a.numpy().mean(), rtol=1e-6)


def test_new_shapes_retrace_and_persistent_retracing_warns_once():
    calls = []

    @em.jit
    def f(x):
        calls.append(1)
        return x * 3
    for n in range(1, 4):
        np.testing.assert_array_equal(f(em.ones(n)).numpy(), np.full(n, 3.0))
        f(em.ones(n))
    assert f.retraces == 2 and len(calls) == 3  # one trace per shape, replays afterwards
    with pytest.warns(UserWarning, match=r"traced .* times.*argument 0 changed"):
        for n in range(4, 14):
            f(em.ones(n))


def test_python_scalar_arguments_are_part_of_the_signature():
    @em.jit
    def scale(x, k):
        return x * k
    x = em.ones(2)
    assert scale(x, 2.0).tolist() == [2.0, 2.0]
    assert scale(x, 5.0).tolist() == [5.0, 5.0]


def test_data_dependent_control_flow_runs_eagerly_with_a_warning():
    @em.jit
    def f(x):
        if x.sum().item() > 0:   # the line the warning must name
            return x * 2
        return x * -1
    with pytest.warns(UserWarning, match=r"item\(\).*test_jit_function.py:\d+ .*if x.sum"):
        assert f(em.ones(2)).tolist() == [2.0, 2.0]
    assert f(-em.ones(2)).tolist() == [1.0, 1.0]   # never a baked-in branch
    assert f(em.ones(2)).tolist() == [2.0, 2.0]


def test_random_ops_draw_fresh_numbers_at_every_call():
    drop = nn.Dropout(0.5)
    fast = em.jit(drop)
    x = em.ones(1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dropout compiles: no fallback warning
        fast(x)  # the trace
        b, c = fast(x).numpy(), fast(x).numpy()
    assert not np.array_equal(b, c)     # the replayed graph draws a fresh mask each call
    assert {n.op.name for n in fast.graph.nodes} == {"dropout_mask", "dropout"}
    assert abs((c == 0).mean() - 0.5) < 0.1
    drop.eval()  # train/eval is part of the signature: eval dropout is the identity graph
    np.testing.assert_array_equal(fast(x).numpy(), x.numpy())
    assert fast.graph.nodes == [] or all(n.op.name != "dropout" for n in fast.graph.nodes)


def test_inplace_updates_of_captured_tensors_are_written_back():
    total = em.zeros(3)

    @em.jit
    def accumulate(x):
        total.add_(x)
        return total * 1
    with em.no_grad():
        for _ in range(3):
            out = accumulate(em.ones(3))
    np.testing.assert_array_equal(total.numpy(), [3, 3, 3])
    np.testing.assert_array_equal(out.numpy(), [3, 3, 3])
    assert accumulate.graph.mutations


def test_batchnorm_running_stats_match_eager():
    em.manual_seed(0)
    bn_e, bn_j = nn.BatchNorm1d(4), nn.BatchNorm1d(4)
    fast = em.jit(bn_j)
    with em.no_grad():
        for i in range(4):
            x = em.randn(8, 4) * (i + 1)
            np.testing.assert_allclose(fast(x).numpy(), bn_e(x).numpy(), rtol=1e-5,
                                       atol=1e-6)
    np.testing.assert_allclose(bn_j.running_mean.numpy(), bn_e.running_mean.numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(bn_j.running_var.numpy(), bn_e.running_var.numpy(), rtol=1e-6)


def test_disable_and_environment_variable(monkeypatch):
    f = em.jit(lambda x: x + 1, disable=True)
    f(em.ones(1))
    with pytest.raises(RuntimeError, match="nothing compiled"):
        f.graph
    monkeypatch.setenv("EMBER_DISABLE_JIT", "1")
    g = em.jit(lambda x: x + 1)
    assert g(em.ones(1)).tolist() == [2.0]
    with pytest.raises(RuntimeError):
        g.graph


def test_gradients_flow_through_a_jitted_function_called_from_eager():
    f = em.jit(lambda x: (x * x).sum())
    x = em.tensor([1.0, 2.0], requires_grad=True)
    f(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_graph_listing_dot_and_code():
    @em.jit
    def f(x):
        return x.relu() * 2
    f(em.ones(2, 2))
    listing = str(f.graph)
    assert "relu(" in listing and "f32[2, 2]" in listing
    assert "test_jit_function.py" in listing and "return x.relu() * 2" in listing
    assert f.graph.to_dot().startswith("digraph")
    assert "def compiled" in f.code and "relu" in f.code


def test_error_inside_compiled_graph_names_op_and_user_line():
    @em.jit
    def pick(x, idx):
        return x.gather(0, idx)
    x = em.arange(4.0)
    assert pick(x, em.tensor([1, 3])).tolist() == [1.0, 3.0]
    with pytest.raises(IndexError) as info:
        pick(x, em.tensor([1, 9]))
    msg = str(info.value)
    assert "gather" in msg and "compiled ember.jit graph" in msg
    assert "test_jit_function.py" in msg and "x.gather(0, idx)" in msg


def test_nested_jit_is_inlined():
    inner = em.jit(lambda x: x * 2)
    outer = em.jit(lambda x: inner(x) + 1)
    assert outer(em.ones(2)).tolist() == [3.0, 3.0]
    assert outer(em.ones(2)).tolist() == [3.0, 3.0]
    assert [n.op.name for n in outer.graph.nodes] == ["mul", "add"]


def test_env_var_unset_after(monkeypatch):
    assert os.environ.get("EMBER_DISABLE_JIT") in (None, "", "0")


def test_dynamic_scalars_are_read_at_every_call():
    from ember import _state
    box = {"lr": 0.5}

    @em.jit
    def scaled(x):
        tr = _state.tracer
        lr = tr.dynamic_scalar(lambda: box["lr"], np.float32) if tr else em.tensor(box["lr"])
        return x * lr
    assert scaled(em.ones(2)).tolist() == [0.5, 0.5]
    box["lr"] = 0.25
    assert scaled(em.ones(2)).tolist() == [0.25, 0.25]
    assert scaled.retraces == 0 and "dynamic" in str(scaled.graph)


def _train_step_pair():
    import copy
    import ember.nn.functional as F
    em.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    twin = copy.deepcopy(net)

    def make(model):
        def step(x, y):
            model.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            with em.no_grad():
                for p in model.parameters():
                    p.sub_(0.1 * p.grad)
            return loss.detach()
        return step
    return net, twin, make


def test_whole_training_step_compiles_and_matches_eager():
    net, twin, make = _train_step_pair()
    eager, fast = make(net), em.jit(make(twin))
    x, y = em.randn(16, 4), em.randint(0, 3, (16,))
    for _ in range(10):
        le, lf = eager(x, y), fast(x, y)
        np.testing.assert_allclose(lf.numpy(), le.numpy(), rtol=1e-5)
    for (n, a), (_, b) in zip(net.named_parameters(), twin.named_parameters()):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=n)
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-5, atol=1e-6)
    names = [n.op.name for n in fast.graph.nodes]
    assert "cross_entropy_backward" in names and fast.retraces == 0
    assert len(fast.graph.mutations) == 4 and len(fast.graph.grad_writes) == 4


def test_outputs_that_require_grad_compile_with_a_backward_graph():
    lin = nn.Linear(3, 2)
    fast = em.jit(lin)
    x = em.randn(4, 3, requires_grad=True)
    w, b, xs = lin.weight.detach().numpy(), lin.bias.detach().numpy(), x.detach().numpy()
    for _ in range(3):
        lin.zero_grad()
        x.grad = None
        y = fast(x)
        (y * y).sum().backward()
        # d/dW sum((xW^T+b)^2) = 2 (xW^T+b)^T x, written out in NumPy
        r = 2 * (xs @ w.T + b)
        np.testing.assert_allclose(lin.weight.grad.numpy(), r.T @ xs, rtol=1e-5)
        np.testing.assert_allclose(lin.bias.grad.numpy(), r.sum(0), rtol=1e-5)
        np.testing.assert_allclose(x.grad.numpy(), r @ w, rtol=1e-5)
    assert fast.retraces == 0
    assert [n.op.name for n in fast.graph.nodes] == ["linear"]       # compiled, not eager
    assert "matmul" in str(fast._last_entry.back_graph)


def test_gradients_of_gradients_through_a_compiled_function():
    f = em.jit(lambda t: (t ** 3).sum())
    t = em.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(2):
        (d,) = em.autograd.grad(f(t), t, create_graph=True)
        (h,) = em.autograd.grad(d.sum(), t)
        np.testing.assert_allclose(d.detach().numpy(), [3.0, 12.0])   # 3t^2
        np.testing.assert_allclose(h.numpy(), [6.0, 12.0])           # 6t


def test_freezing_a_parameter_retraces_the_backward():
    lin = nn.Linear(3, 2)
    fast = em.jit(lin)
    x = em.randn(4, 3)
    fast(x).sum().backward()
    lin.weight.requires_grad_(False)
    lin.zero_grad()
    y = fast(x)
    y.sum().backward()
    assert lin.weight.grad is None
    np.testing.assert_allclose(lin.bias.grad.numpy(), [4.0, 4.0])


def test_define_then_run_from_declared_shapes():
    from ember.jit import TensorSpec, symbolic
    net = _mlp()
    f = symbolic(net, TensorSpec((5, 4)))
    assert [n.op.name for n in f.graph.nodes] == ["linear", "tanh", "linear"]
    assert f.graph.inputs[0].shape == (5, 4)
    x = em.randn(5, 4)
    with em.no_grad():
        np.testing.assert_allclose(f(x).numpy(), net(x).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="every dimension needs a size"):
        TensorSpec((None, 4)).placeholder()


def test_gradients_accumulate_across_compiled_calls_like_eager():
    x = em.tensor([1.0, -2.0, 3.0])
    for mode in ("eager", "jit"):
        w = em.ones(3, requires_grad=True)

        def step(x):
            (x * w).clamp(min=0).sum().backward()
            return x.sum()
        f = em.jit(step) if mode == "jit" else step
        seen = []
        for _ in range(3):
            f(x)
            seen.append(w.grad.numpy().copy())
        np.testing.assert_array_equal(seen[2], 3 * np.array([1.0, 0.0, 3.0]), err_msg=mode)


def test_zero_grad_without_set_to_none_keeps_one_grad_tensor():
    import ember.nn.functional as F
    em.manual_seed(0)
    net = nn.Linear(3, 2)
    opt = em.optim.SGD(net.parameters(), lr=0.1)
    x, y = em.randn(4, 3), em.randn(4, 2)
    net(x).sum().backward()  # grads exist before the compiled step

    @em.jit
    def step():
        opt.zero_grad(set_to_none=False)
        F.mse_loss(net(x), y).backward()
        opt.step()
    ref = nn.Linear(3, 2)
    ref.load_state_dict(net.state_dict())
    ref_opt = em.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(4):
        step()
        ref_opt.zero_grad()
        F.mse_loss(ref(x), y).backward()
        ref_opt.step()
    np.testing.assert_allclose(net.weight.detach().numpy(), ref.weight.detach().numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(net.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-6)


def test_torch_compile_spelling():
    net = _mlp()
    fast = em.compile(net)
    x = em.randn(2, 4)
    with em.no_grad():
        fast(x)
        np.testing.assert_array_equal(fast(x).numpy(), net(x).numpy())
    assert fast.graph.nodes


def test_function_closing_over_a_module_follows_its_train_eval_mode():
    em.manual_seed(0)
    bn = nn.BatchNorm1d(3)

    @em.jit
    def f(x):
        return bn(x)
    x = em.randn(8, 3) * 5 + 2
    with em.no_grad():
        f(x)
        f(x)
        bn.eval()   # running statistics now, not batch statistics
        got = f(x).numpy()
        ref = bn(x).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def _base_written_after_view_read(x):
    y = x * 2
    v = y[0]
    s = v.sum()
    y.add_(1)                   # v sees this through shared memory
    return v * 3, s


def _view_written_in_place(x):
    y = x * 2
    y[0].add_(1)                # writes into y's memory
    return y * 1


def _index_assignment_of_a_python_number(x):
    y = x * 2
    y[1:] = 5.0
    return y.sum()


def _input_view_written(x):
    x[:, 0].mul_(10)            # the caller's tensor changes, as in eager
    return x.sum()


@pytest.mark.parametrize("fn", [_base_written_after_view_read, _view_written_in_place,
                                _index_assignment_of_a_python_number, _input_view_written])
def test_in_place_writes_through_views_match_numpy(fn):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)

    def numpy_ref(x):
        # the same program on NumPy arrays, whose views share memory like eager tensors
        x = x.copy()
        if fn is _base_written_after_view_read:
            y = x * 2
            v = y[0]
            s = v.sum()
            y += 1
            return [v * 3, s], x
        if fn is _view_written_in_place:
            y = x * 2
            y[0] += 1
            return [y], x
        if fn is _index_assignment_of_a_python_number:
            y = x * 2
            y[1:] = 5.0
            return [y.sum()], x
        x[:, 0] *= 10
        return [x.sum()], x

    fast = em.jit(fn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no eager fallback
        for _ in range(3):
            x = em.from_numpy(a.copy())
            got = fast(x)
            got = got if isinstance(got, tuple) else (got,)
            want, x_after = numpy_ref(a)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g.numpy(), w)
            np.testing.assert_allclose(x.numpy(), x_after)
    assert fast.retraces == 0


def test_training_a_compiled_module_in_an_eager_loop_equals_eager():
    """``model = ember.compile(model)`` then an ordinary PyTorch loop: the forward replays
    compiled, backward runs its compiled backward graph, the optimiser stays eager."""
    def run(compiled):
        em.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 3))
        net = em.compile(model) if compiled else model
        opt = em.optim.AdamW(model.parameters(), lr=1e-2)
        x, y = em.randn(6, 1, 4, 4), em.randint(0, 3, (6,))
        losses = []
        em.manual_seed(1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(5):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(net(x), y)
                loss.backward()
                opt.step()
                losses.append(loss.item())
        return losses, model
    (le, me), (lc, mc) = run(False), run(True)
    np.testing.assert_allclose(lc, le, rtol=1e-6)
    for (k, a), b in zip(me.state_dict().items(), mc.state_dict().values()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
