"""Each graph pass on small hand-built graphs: the pass's effect and unchanged results."""
import numpy as np
import pytest

import ember as em
from ember.jit import passes
from ember.jit.codegen import generate
from ember.jit.ir import Graph
from ember.ops import OPS


def _run(g, *arrays):
    return generate(g, np).fn(list(arrays), [])[0]


def _graph():
    g = Graph()
    x = g.add_input((3,), np.float32)
    return g, x


def test_dead_code_elimination_removes_unused_nodes():
    g, x = _graph()
    used = g.add_node(OPS["exp"], [x], {}, [((3,), np.float32)]).outputs[0]
    g.add_node(OPS["sin"], [x], {}, [((3,), np.float32)])
    g.outputs = [used]
    passes.eliminate_dead_code(g)
    assert [n.op.name for n in g.nodes] == ["exp"]
    a = np.array([0.0, 1.0, 2.0], np.float32)
    np.testing.assert_allclose(_run(g, a)[0], np.exp(a))


def test_cse_merges_identical_nodes():
    g, x = _graph()
    e1 = g.add_node(OPS["exp"], [x], {}, [((3,), np.float32)]).outputs[0]
    e2 = g.add_node(OPS["exp"], [x], {}, [((3,), np.float32)]).outputs[0]
    s = g.add_node(OPS["add"], [e1, e2], {}, [((3,), np.float32)]).outputs[0]
    g.outputs = [s]
    passes.eliminate_common_subexpressions(g)
    assert [n.op.name for n in g.nodes] == ["exp", "add"]
    assert g.nodes[1].inputs[0] is g.nodes[1].inputs[1]
    a = np.array([0.0, 1.0, 2.0], np.float32)
    np.testing.assert_allclose(_run(g, a)[0], 2 * np.exp(a), rtol=1e-6)


def test_cse_keeps_nodes_with_different_attrs():
    g, x = _graph()
    a = g.add_node(OPS["softmax"], [x], {"dim": 0}, [((3,), np.float32)]).outputs[0]
    b = g.add_node(OPS["log_softmax"], [x], {"dim": 0}, [((3,), np.float32)]).outputs[0]
    g.outputs = [a, b]
    passes.eliminate_common_subexpressions(g)
    assert len(g.nodes) == 2


def test_constant_folding_computes_const_only_nodes_once():
    g, x = _graph()
    c = g.add_const(np.array([1.0, 2.0, 3.0], np.float32))
    e = g.add_node(OPS["exp"], [c], {}, [((3,), np.float32)]).outputs[0]
    s = g.add_node(OPS["add"], [x, e], {}, [((3,), np.float32)]).outputs[0]
    g.outputs = [s]
    passes.fold_constants(g)
    passes.eliminate_dead_code(g)
    assert [n.op.name for n in g.nodes] == ["add"]
    a = np.zeros(3, np.float32)
    np.testing.assert_allclose(_run(g, a)[0], np.exp([1.0, 2.0, 3.0]), rtol=1e-6)


def test_traced_constants_fold_away():
    @em.jit
    def f(x):
        return x + em.arange(3.0).exp()
    f(em.zeros(3))
    np.testing.assert_allclose(f(em.zeros(3)).numpy(), np.exp(np.arange(3.0)), rtol=1e-6)
    assert [n.op.name for n in f.graph.nodes] == ["add"]


def _const(g, value, dtype=np.float32):
    return g.add_const(np.asarray(value, dtype))


SIMPLIFY_CASES = [
    # (op, operands as "x" or a constant, expected surviving ops)
    ("mul", ["x", 1.0], []),
    ("mul", [1.0, "x"], []),
    ("add", ["x", 0.0], []),
    ("add", [0.0, "x"], []),
    ("sub", ["x", 0.0], []),
    ("div", ["x", 1.0], []),
    ("pow", ["x", 1.0], []),
    ("sub", [0.0, "x"], ["sub"]),            # 0 - x is not x
    ("div", [1.0, "x"], ["div"]),            # 1 / x is not x
    ("mul", ["x", 2.0], ["mul"]),
    ("mul", ["x", np.ones((2, 3))], ["mul"]),  # broadcasts: output shape differs from x
    ("mul", ["x", np.float64(1.0)], ["mul"]),  # promotes to float64
]


@pytest.mark.parametrize("op, operands, left", SIMPLIFY_CASES)
def test_simplify_drops_neutral_elements(op, operands, left):
    g, x = _graph()
    def dtype(o):
        return np.float64 if isinstance(o, np.float64) else np.float32
    ins = [x if isinstance(o, str) else _const(g, o, dtype(o)) for o in operands]
    a = np.array([0.5, 1.0, 2.0], np.float32)
    arrays = [a if isinstance(o, str) else np.asarray(o, dtype(o)) for o in operands]
    want = OPS[op].forward(np, *arrays)
    r = g.add_node(OPS[op], ins, {}, [(want.shape, want.dtype)]).outputs[0]
    e = g.add_node(OPS["exp"], [r], {}, [(want.shape, want.dtype)]).outputs[0]
    g.outputs = [e]
    passes.simplify(g)
    assert [n.op.name for n in g.nodes] == left + ["exp"]
    np.testing.assert_allclose(_run(g, a)[0], np.exp(want), rtol=1e-6)


def test_simplify_removes_identity_shape_ops_and_merges_chains():
    g = Graph()
    x = g.add_input((2, 3, 4), np.float32)
    r1 = g.add_node(OPS["reshape"], [x], {"shape": (6, 4)}, [((6, 4), np.float32)]).outputs[0]
    r2 = g.add_node(OPS["reshape"], [r1], {"shape": (4, 6)}, [((4, 6), np.float32)]).outputs[0]
    p1 = g.add_node(OPS["permute"], [r2], {"dims": (1, 0)}, [((6, 4), np.float32)]).outputs[0]
    p2 = g.add_node(OPS["permute"], [p1], {"dims": (1, 0)}, [((4, 6), np.float32)]).outputs[0]
    same = g.add_node(OPS["reshape"], [p2], {"shape": (4, 6)}, [((4, 6), np.float32)])
    n1 = g.add_node(OPS["neg"], [same.outputs[0]], {}, [((4, 6), np.float32)]).outputs[0]
    n2 = g.add_node(OPS["neg"], [n1], {}, [((4, 6), np.float32)]).outputs[0]
    e = g.add_node(OPS["exp"], [n2], {}, [((4, 6), np.float32)]).outputs[0]
    g.outputs = [e]
    passes.optimize(g, passes.BASIC)
    # the permutes compose to the identity and the reshapes to one
    assert [n.op.name for n in g.nodes] == ["reshape", "exp"]
    a = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(g, a)[0], np.exp(a.reshape(4, 6)), rtol=1e-6)


def test_simplify_never_returns_an_input_as_a_result():
    g, x = _graph()
    one = _const(g, 1.0)
    r = g.add_node(OPS["mul"], [x, one], {}, [((3,), np.float32)]).outputs[0]
    g.outputs = [r]
    passes.simplify(g)
    assert [n.op.name for n in g.nodes] == ["mul"]
