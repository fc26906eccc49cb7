"""Each graph pass on small hand-built graphs: the pass's effect and unchanged results."""
import numpy as np

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
