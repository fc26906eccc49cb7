"""Backpropagating through a compiled call (``jit(f)(x)`` then ``backward()``) gives eager's
gradients for the shapes of output a function may have: several outputs, integer outputs,
constants, dicts, random ops, unused inputs. (Eager's own gradients are checked against
finite differences in tests/ops.)"""
import warnings

import numpy as np
import pytest

import ember as em
import ember.nn as nn

_drop = nn.Dropout(0.5)

CASES = [
    # (name, function, input shapes, loss of the outputs)
    ("two_outputs", lambda x, w: ((x @ w).tanh(), (x * x).sum(1)), [(3, 4), (4, 2)],
     lambda o: o[0].sum() * 2 + o[1].sum()),
    ("max_with_indices", lambda x: x.max(1), [(3, 4)], lambda o: (o[0] * 3).sum()),
    ("constant_output", lambda x: (x.sin(), em.ones(3)), [(3,)], lambda o: o[0].sum()),
    ("output_used_twice", lambda x: x.exp(), [(3,)], lambda y: (y * y).sum() + y.sum()),
    ("dropout_mask", lambda x: _drop(x) * 2, [(10,)], lambda y: (y ** 2).sum()),
    ("unused_input", lambda x, y: x * 2, [(3,), (3,)], lambda o: o.sum()),
    ("dict_output", lambda x: {"a": x.relu(), "b": x.sigmoid()}, [(4,)],
     lambda o: o["a"].sum() + (o["b"] ** 2).sum()),
]


@pytest.mark.parametrize("name, fn, shapes, loss", CASES, ids=[c[0] for c in CASES])
def test_backward_through_compiled_calls_equals_eager(name, fn, shapes, loss):
    grads = []
    for use_jit in (False, True):
        em.manual_seed(0)
        ins = [em.randn(*s, requires_grad=True) for s in shapes]
        f = em.jit(fn) if use_jit else fn
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no eager fallback
            for _ in range(3):  # trace, then replay twice
                for t in ins:
                    t.grad = None
                em.manual_seed(1)  # the same dropout mask on both sides
                loss(f(*ins)).backward()
        if use_jit:
            assert f.retraces == 0 and f._last_entry.back_graph is not None
        grads.append([None if t.grad is None else t.grad.numpy().copy() for t in ins])
    for g_eager, g_jit in zip(*grads):
        assert (g_eager is None) == (g_jit is None)
        if g_eager is not None:
            np.testing.assert_allclose(g_jit, g_eager, rtol=1e-6, atol=1e-7)
