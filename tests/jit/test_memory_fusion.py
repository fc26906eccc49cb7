"""Memory planning (in-place elementwise ops) and elementwise fusion in ember.jit.

The reference is the unplanned generated code (passes.BASIC), which calls every op's forward
and allocates each result; planned and fused code must give bit-identical arrays and never
write into inputs or captures. Plain NumPy checks the values of a few expressions too."""
import copy
import tracemalloc

import numpy as np
import pytest

import ember as em
import ember.nn as nn
import ember.nn.functional as F
from ember.jit import passes
from ember.jit.codegen import generate
from ember.jit.function import JitFunction
from ember.jit.ir import Graph
from ember.ops import OPS

F32 = np.float32


def _run_all(fn, *arrays):
    """Outputs of ``fn`` compiled with BASIC, DEFAULT and FUSED passes, each on fresh tensors;
    checks the inputs are unchanged afterwards."""
    results = []
    for p in (passes.BASIC, passes.DEFAULT, passes.FUSED):
        f = JitFunction(fn, passes_=p)
        for _ in range(2):  # the first call traces, the second runs the compiled code
            ts = [em.tensor(a.copy()) for a in arrays]
            out = f(*ts)
            for t, a in zip(ts, arrays):
                np.testing.assert_array_equal(t.numpy(), a)
        outs = out if isinstance(out, tuple) else (out,)
        results.append(([o.numpy().copy() for o in outs], f.code, f.graph))
    return results


rng = np.random.default_rng(0)
X = rng.standard_normal((4, 5)).astype(F32)
Y = np.abs(rng.standard_normal((4, 5))).astype(F32) + 1.0
B = rng.standard_normal(5).astype(F32)


def _views(x, y, b):
    t = x + y
    v = t.t()            # a view of t: t's buffer stays alive while v is read
    w = (t * 2.0).exp()  # t dies here for the planner only if v were dead
    return w + v.t() * 3.0


def _twice(x, y, b):
    t = x * y
    return (t * t) + t


def _intermediate_output(x, y, b):
    t = x + y
    u = t.relu()
    return t, u * 2.0, (u - 1.0).tanh()


CASES = {
    "chain": (lambda x, y, b: ((x + y) * y).exp() - y, lambda x, y, b: np.exp((x + y) * y) - y),
    "broadcast": (lambda x, y, b: (x * 2.0 + b).tanh() / y,
                  lambda x, y, b: np.tanh(x * F32(2.0) + b) / y),
    "onto_small": (lambda x, y, b: (b * 0.1 + y).sqrt(),
                   lambda x, y, b: np.sqrt(b * F32(0.1) + y)),
    "unary": (lambda x, y, b: (-(y.log())).abs().sqrt().sin(),
              lambda x, y, b: np.sin(np.sqrt(np.abs(-np.log(y))))),
    "minmax": (lambda x, y, b: em.maximum(x * y, y - 3.0).relu() + em.minimum(x, b),
               lambda x, y, b: np.maximum(np.maximum(x * y, y - F32(3.0)), 0)
               + np.minimum(x, b)),
    "views": (_views, None),
    "twice": (_twice, lambda x, y, b: (x * y) * (x * y) + x * y),
    "intermediate_output": (_intermediate_output, None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_planned_and_fused_code_is_bit_identical(name):
    fn, ref = CASES[name]
    (basic, _, _), (planned, code, _), (fused, _, _) = _run_all(fn, X, Y, B)
    for a, b, c in zip(basic, planned, fused):
        assert a.dtype == b.dtype == c.dtype and a.shape == b.shape == c.shape
        assert np.array_equal(a, b, equal_nan=True) and np.array_equal(a, c, equal_nan=True)
    if ref is not None:
        np.testing.assert_allclose(basic[0], ref(X, Y, B), rtol=1e-5, atol=1e-6)


def test_planner_writes_in_place_and_allocates_less():
    _, (_, code, _), (_, fcode, _) = _run_all(CASES["chain"][0], X, Y, B)
    # (x + y) allocates; mul, exp and sub write into that one buffer
    assert code.count("out=_reuse(") == 3
    assert "fused_add_mul_exp_sub(xp, i0, i1)" in fcode  # one call; no input is its buffer
    assert "xp.add(i0, i1" not in code     # inputs are never targets


def test_inputs_and_captures_are_never_targets():
    w = em.tensor(Y.copy())  # a capture (read live at every call)
    before = w.detach().numpy().copy()
    f = em.jit(lambda x: ((x + w) * w).exp() + x)
    x = em.tensor(X.copy())
    for _ in range(3):
        out = f(x)
    np.testing.assert_array_equal(x.numpy(), X)
    np.testing.assert_array_equal(w.detach().numpy(), before)
    np.testing.assert_allclose(out.numpy(), np.exp((X + Y) * Y) + X, rtol=1e-6)
    for line in f.code.splitlines():
        if "out=_reuse(" in line:
            assert "_reuse(i" not in line and "_reuse(k" not in line, line


def test_hand_built_graph_in_place_and_views():
    g = Graph()
    a = g.add_input((3, 4), F32)
    s = g.add_node(OPS["add"], [a, a], None, [((3, 4), F32)]).outputs[0]
    r = g.add_node(OPS["reshape"], [s], {"shape": (4, 3)}, [((4, 3), F32)]).outputs[0]
    e = g.add_node(OPS["exp"], [s], None, [((3, 4), F32)]).outputs[0]      # s's view r lives
    n = g.add_node(OPS["neg"], [e], None, [((3, 4), F32)]).outputs[0]      # e dies here
    t = g.add_node(OPS["tanh"], [n], None, [((3, 4), F32)]).outputs[0]     # n is an output
    g.outputs = [r, n, t]
    passes.plan_memory(g)
    assert g.inplace == {3: 0}  # only neg: exp's target s is still read through r
    arr = rng.standard_normal((3, 4)).astype(F32)
    keep = arr.copy()
    planned = generate(g, np).fn([arr], [])[0]
    plain = generate(g, np, reuse_buffers=False).fn([arr], [])[0]
    assert "out=_reuse(v" in generate(g, np).source
    np.testing.assert_array_equal(arr, keep)
    for p, q in zip(planned, plain):
        assert np.array_equal(p, q)
    np.testing.assert_allclose(planned[1], -np.exp(arr + arr), rtol=1e-6)


def test_mutations_and_outputs_stay_live():
    w = em.tensor(Y.copy())

    def step(x):
        t = x * 2.0
        u = (t + 1.0).exp()
        w.sub_(0.01 * u)       # a mutation of a capture
        return t, (u * 3.0).log()
    outs = []
    for p in (passes.BASIC, passes.FUSED):
        w.copy_(em.tensor(Y.copy())) if hasattr(w, "copy_") else None
        w._data[...] = Y
        f = JitFunction(step, passes_=p)
        x = em.tensor(X.copy())
        f(x)
        w._data[...] = Y
        res = f(x)
        outs.append([r.numpy().copy() for r in res] + [w.numpy().copy()])
        np.testing.assert_array_equal(x.numpy(), X)
    for a, b in zip(*outs):
        assert np.array_equal(a, b)
    np.testing.assert_allclose(outs[0][2], Y - F32(0.01) * np.exp(X * F32(2) + 1), rtol=1e-5)


def test_fusion_groups_chains():
    *_, (_, code, graph) = _run_all(CASES["chain"][0], X, Y, B)
    assert [n.op.name for n in graph.nodes] == ["fused_add_mul_exp_sub"]
    assert "fused_add_mul_exp_sub" in str(graph) and "fused_add_mul_exp_sub" in graph.to_dot()
    assert graph.nodes[0].op.source.count("out=_reuse(t") == 3
    # b * 2.0 has b's shape: it can't share the chain's buffer
    *_, (_, _, graph) = _run_all(CASES["onto_small"][0], X, Y, B)
    assert [n.op.name for n in graph.nodes] == ["mul", "fused_add_sqrt"]
    # an intermediate read twice ends a chain
    *_, (_, _, graph) = _run_all(_intermediate_output, X, Y, B)
    assert [n.op.name for n in graph.nodes] == ["add", "relu", "mul", "fused_sub_tanh"]


def test_allocations_drop():
    x = rng.standard_normal((256, 256)).astype(F32)

    def fn(a):
        return ((((a + 1.0) * 2.0).exp() - 1.0).tanh() * 0.5).abs().sqrt()
    peaks = []
    for p in (passes.BASIC, passes.DEFAULT):
        f = JitFunction(fn, passes_=p)
        t = em.tensor(x)
        f(t)
        tracemalloc.start()
        f(t)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 0.6 * peaks[0], peaks


def _pair():
    em.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))
    return net, copy.deepcopy(net), copy.deepcopy(net)


def _make(model):
    def step(x, y):
        model.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        with em.no_grad():
            for p in model.parameters():
                p.sub_(0.1 * p.grad)
        return loss.detach()
    return step


def test_whole_training_step_with_planning_and_fusion():
    net, basic_net, fused_net = _pair()
    eager = _make(net)
    basic = JitFunction(_make(basic_net), passes_=passes.BASIC)
    fast = JitFunction(_make(fused_net), passes_=passes.FUSED)
    x, y = em.randn(16, 4), em.randint(0, 3, (16,))
    for _ in range(6):
        le, lb, lf = eager(x, y), basic(x, y), fast(x, y)
        np.testing.assert_allclose(lf.numpy(), le.numpy(), rtol=1e-5)
        assert np.array_equal(lf.numpy(), lb.numpy())
    for a, b, c in zip(net.parameters(), basic_net.parameters(), fused_net.parameters()):
        np.testing.assert_allclose(c.detach().numpy(), a.detach().numpy(), rtol=1e-5, atol=1e-6)
        assert np.array_equal(c.detach().numpy(), b.detach().numpy())
        assert np.array_equal(c.grad.numpy(), b.grad.numpy())
    assert "out=_reuse(" in fast.code
    assert fast.retraces == 0


def test_threshold_backward_with_inf_keeps_where_semantics():
    g = Graph()
    gv = g.add_input((2, 3), F32)
    yv = g.add_input((2, 3), F32)
    m = g.add_node(OPS["mul"], [gv, yv], None, [((2, 3), F32)]).outputs[0]
    tb = g.add_node(OPS["threshold_backward"], [m, yv], {"threshold": 0.0},
                    [((2, 3), F32)]).outputs[0]
    g.outputs = [tb]
    passes.plan_memory(g)
    assert g.inplace == {1: 0}
    ga = np.array([[np.inf, 1, 2], [3, np.nan, 5]], F32)
    ya = np.array([[-1, 1, -2], [3, -1, 5]], F32)
    got = generate(g, np).fn([ga, ya], [])[0][0]
    want = generate(g, np, reuse_buffers=False).fn([ga, ya], [])[0][0]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(want, np.where(ya > 0, ga * ya, 0))
