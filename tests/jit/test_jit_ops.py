"""Every op in the op table, jitted vs eager: the replayed graph gives the same outputs, and a
traced gradient computation gives the same gradients (one shape case per row)."""
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import ember as em

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ops"))
import test_op_table as table  # noqa: E402

ROWS = [pytest.param(r, r.shapes[0], id=r.name) for r in table.ROWS]
GRAD_ROWS = [pytest.param(r, r.shapes[0], id=r.name) for r in table.ROWS if r.grad]


def _call_twice(fn, tensors):
    """Trace, then replay: the second call runs the compiled graph (or eager after a
    documented fallback, e.g. data-dependent output shapes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn(*tensors)
        return fn(*tensors)


@pytest.mark.parametrize("row, shapes", ROWS)
def test_jitted_forward_equals_eager(row, shapes):
    arrays = table._inputs(row, shapes)
    tensors = [em.from_numpy(a.copy()) for a in arrays]
    want = [table._to_numpy(o) for o in table._outputs(row.fn(*tensors))]
    fast = em.jit(lambda *ts: row.fn(*ts))
    got = [table._to_numpy(o) for o in table._outputs(_call_twice(fast, tensors))]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("row, shapes", GRAD_ROWS)
def test_jitted_gradients_equal_eager(row, shapes):
    arrays = table._inputs(row, shapes)
    idx = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]

    def grads(*ts):
        ts = list(ts)
        for i in idx:
            ts[i] = ts[i].detach().requires_grad_()
        outs = [o for o in table._outputs(row.fn(*ts))
                if isinstance(o, em.Tensor) and o.requires_grad]
        loss = sum((o * (k + 1.5)).sum() for k, o in enumerate(outs))
        return em.autograd.grad(loss, [ts[i] for i in idx], allow_unused=True,
                                materialize_grads=True)

    tensors = [em.from_numpy(a.copy()) for a in arrays]
    want = [g.numpy() for g in grads(*tensors)]
    got = [g.numpy() for g in _call_twice(em.jit(grads), tensors)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("row, shapes", GRAD_ROWS)
def test_backward_through_a_jitted_call_equals_eager(row, shapes):
    """The caller backpropagates through the compiled function's outputs: the compiled
    backward graph gives eager's gradients."""
    arrays = table._inputs(row, shapes)
    idx = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    fn = em.jit(lambda *ts: row.fn(*ts))

    def grads(f):
        ts = [em.from_numpy(a.copy()) for a in arrays]
        for i in idx:
            ts[i].requires_grad_()
        outs = [o for o in table._outputs(f(*ts)) if isinstance(o, em.Tensor) and o.requires_grad]
        if not outs:
            return []
        loss = sum((o * (k + 1.5)).sum() for k, o in enumerate(outs))
        return [g.numpy() for g in em.autograd.grad(loss, [ts[i] for i in idx],
                                                    allow_unused=True, materialize_grads=True)]

    want = grads(row.fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grads(fn)
        got = grads(fn)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, equal_nan=True)
