"""Broadcasting, as properties over random shapes (hypothesis).

- elementwise binary ops (and ``where``) on any mutually broadcastable shapes give NumPy's
  values and shape;
- shapes that do not broadcast raise a ValueError naming the op and both shapes;
- gradients come back with each input's own shape, equal to the broadcast gradient summed
  over the broadcast dims (computed here with NumPy).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ember as em

SETTINGS = settings(max_examples=60, deadline=None)

pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0,
                                          max_side=4)
triples = hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=4, min_side=0,
                                            max_side=4)
seeds = st.integers(0, 2**32 - 1)


def _away0(rng, shape):
    return np.asarray(rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape))


def _any(rng, shape):
    return np.asarray(rng.uniform(-2.0, 2.0, shape))


def _unbroadcast(g, shape):
    """Sum ``g`` over the dims along which an operand of ``shape`` was broadcast."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))
    return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True) \
        .reshape(shape)


# name: (ember op, NumPy op, generator of the second operand,
#        d out / d a, d out / d b as NumPy functions of (a, b) or None when not differentiable)
BINARY = {
    "add": (em.add, np.add, _any, lambda a, b: np.ones_like(a + b),
            lambda a, b: np.ones_like(a + b)),
    "sub": (em.sub, np.subtract, _any, lambda a, b: np.ones_like(a + b),
            lambda a, b: -np.ones_like(a + b)),
    "mul": (em.mul, np.multiply, _any, lambda a, b: b + 0 * a, lambda a, b: a + 0 * b),
    "div": (em.div, np.divide, _away0, lambda a, b: 1 / b + 0 * a, lambda a, b: -a / (b * b)),
    "maximum": (em.maximum, np.maximum, _any, lambda a, b: (a > b) + 0.0 * b,
                lambda a, b: (b > a) + 0.0 * a),
    "minimum": (em.minimum, np.minimum, _any, lambda a, b: (a < b) + 0.0 * b,
                lambda a, b: (b < a) + 0.0 * a),
    "pow": (em.pow, np.power, _any, lambda a, b: b * a ** (b - 1),
            lambda a, b: a ** b * np.log(a)),
    "atan2": (em.atan2, np.arctan2, _away0, lambda a, b: b / (a * a + b * b),
              lambda a, b: -a / (a * a + b * b)),
    "fmax": (em.fmax, np.fmax, _any, None, None),
    "remainder": (em.remainder, np.remainder, _away0, None, None),
    "eq": (em.eq, np.equal, _any, None, None),
    "lt": (em.lt, np.less, _any, None, None),
    "logical_and": (em.logical_and, np.logical_and, _any, None, None),
}
DIFFERENTIABLE = [k for k, v in BINARY.items() if v[3] is not None]


def _operands(name, shapes, seed):
    rng = np.random.default_rng(seed)
    a = np.abs(_away0(rng, shapes[0])) if name == "pow" else _any(rng, shapes[0])
    a = np.asarray(a)
    return a, BINARY[name][2](rng, shapes[1])


@pytest.mark.parametrize("name", list(BINARY))
@SETTINGS
@given(shapes=pairs, seed=seeds)
def test_binary_op_broadcasts_like_numpy(name, shapes, seed):
    a, b = _operands(name, shapes.input_shapes, seed)
    out = BINARY[name][0](em.from_numpy(a), em.from_numpy(b))
    want = BINARY[name][1](a, b)
    assert out.shape == shapes.result_shape == want.shape
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@SETTINGS
@given(shapes=pairs, seed=seeds)
def test_binary_op_gradients_have_input_shapes(name, shapes, seed):
    a, b = _operands(name, shapes.input_shapes, seed)
    ta = em.from_numpy(a.copy()).requires_grad_()
    tb = em.from_numpy(b.copy()).requires_grad_()
    w = np.asarray(np.random.default_rng(seed + 1).standard_normal(shapes.result_shape))
    ga, gb = em.autograd.grad(BINARY[name][0](ta, tb), [ta, tb], em.from_numpy(w),
                              allow_unused=True)
    _, _, _, da, db = BINARY[name]
    for g, x, want in ((ga, a, _unbroadcast(w * da(a, b), a.shape)),
                       (gb, b, _unbroadcast(w * db(a, b), b.shape))):
        got = np.zeros_like(x) if g is None else g.numpy()
        assert got.shape == x.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@SETTINGS
@given(shapes=triples, seed=seeds)
def test_where_broadcasts_like_numpy_and_unbroadcasts_gradients(shapes, seed):
    rng = np.random.default_rng(seed)
    cs, as_, bs = shapes.input_shapes
    c, a, b = np.asarray(rng.random(cs) < 0.5), _any(rng, as_), _any(rng, bs)
    ta = em.from_numpy(a.copy()).requires_grad_()
    tb = em.from_numpy(b.copy()).requires_grad_()
    out = em.where(em.from_numpy(c), ta, tb)
    assert out.shape == shapes.result_shape
    np.testing.assert_array_equal(out.detach().numpy(), np.where(c, a, b))
    w = np.asarray(rng.standard_normal(shapes.result_shape))
    ga, gb = em.autograd.grad(out, [ta, tb], em.from_numpy(w), allow_unused=True)
    full_c = np.broadcast_to(c, shapes.result_shape)
    for g, x, want in ((ga, a, _unbroadcast(np.where(full_c, w, 0.0), a.shape)),
                       (gb, b, _unbroadcast(np.where(full_c, 0.0, w), b.shape))):
        got = np.zeros_like(x) if g is None else g.numpy()
        assert got.shape == x.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@st.composite
def incompatible_pairs(draw):
    """Two shapes with sizes >= 2 that differ at one aligned dim (so they cannot broadcast)."""
    s1 = list(draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4)))
    k = draw(st.integers(1, len(s1)))             # the clashing dim, counted from the end
    s2 = list(draw(hnp.broadcastable_shapes(tuple(s1), min_dims=k, max_dims=5, min_side=0,
                                            max_side=4)))
    a = draw(st.integers(2, 5))
    s1[-k], s2[-k] = a, draw(st.integers(2, 5).filter(lambda b: b != a))
    if draw(st.booleans()):
        s1, s2 = s2, s1
    return tuple(s1), tuple(s2)


@pytest.mark.parametrize("name", list(BINARY))
@SETTINGS
@given(shapes=incompatible_pairs())
def test_incompatible_shapes_raise_a_clear_error(name, shapes):
    s1, s2 = shapes
    with pytest.raises(ValueError) as e:
        BINARY[name][0](em.zeros(s1), em.ones(s2))
    msg = str(e.value)
    assert msg.startswith(name), msg
    assert str(s1) in msg and str(s2) in msg, msg


@SETTINGS
@given(shapes=incompatible_pairs())
def test_where_with_incompatible_shapes_raises_a_clear_error(shapes):
    s1, s2 = shapes
    with pytest.raises(ValueError) as e:
        em.where(em.ones(s1, dtype=em.bool), em.zeros(s1), em.ones(s2))
    msg = str(e.value)
    assert msg.startswith("where") and str(s1) in msg and str(s2) in msg, msg
