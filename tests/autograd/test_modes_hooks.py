"""Grad modes, hooks, retain_grad and the in-place version check."""
import numpy as np
import pytest

import ember as em


def test_no_grad_context_and_decorator():
    x = em.ones(2, requires_grad=True)
    with em.no_grad():
        assert not em.is_grad_enabled()
        assert not (x * 2).requires_grad
        with em.enable_grad():
            assert (x * 2).requires_grad
    assert em.is_grad_enabled()

    @em.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad
    assert (x * 2).requires_grad


def test_set_grad_enabled_as_call_and_context():
    x = em.ones(2, requires_grad=True)
    with em.set_grad_enabled(False):
        assert not (x + 1).requires_grad
    assert (x + 1).requires_grad
    em.set_grad_enabled(False)
    try:
        assert not (x + 1).requires_grad
    finally:
        em.set_grad_enabled(True)
    assert em.is_grad_enabled()


def test_inference_mode():
    x = em.ones(2, requires_grad=True)
    with em.inference_mode():
        assert em.is_inference_mode_enabled()
        assert not (x * x).requires_grad
    assert not em.is_inference_mode_enabled()
    with em.inference_mode(False):
        assert (x * x).requires_grad


def test_leaf_hook_can_replace_gradient():
    x = em.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    x.register_hook(lambda g: g * 10)
    (x * 3).sum().backward()
    np.testing.assert_allclose(seen[0], [3, 3])
    np.testing.assert_allclose(x.grad.numpy(), [30, 30])


def test_non_leaf_hook_and_remove():
    x = em.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    h = y.register_hook(lambda g: g * 0)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 0])
    h.remove()
    x.grad = None
    y = x * 2
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [8, 16])  # d/dx (2x)^2 = 8x


def test_retain_grad_on_non_leaf():
    x = em.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [6, 12])
    assert (x * 2).grad is None


def test_hook_on_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        em.ones(2).register_hook(lambda g: g)


def test_inplace_change_of_saved_output_is_detected():
    x = em.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    z = y * 1  # y itself is saved by exp's backward
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (z + y).sum().backward()


def test_inplace_change_of_saved_input_is_detected():
    x = em.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y.sin()      # sin saves its input
    y.mul_(2)
    with pytest.raises(RuntimeError, match="version"):
        z.sum().backward()


def test_inplace_on_unsaved_tensor_is_allowed_and_correct():
    x = em.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2        # add does not save its inputs
    y.add_(1)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (2 * np.array([1.0, 2.0]) + 1) * 2)


def test_inplace_on_leaf_requiring_grad_is_an_error_except_under_no_grad():
    w = em.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.add_(1)
    with em.no_grad():
        w.add_(1)
    np.testing.assert_allclose(w.detach().numpy(), [2, 2])
    assert w._version_count == 1
