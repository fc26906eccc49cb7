"""The autograd engine: backward, accumulation, autograd.grad, higher order, retain_graph.

References are closed-form derivatives and central finite differences in float64."""
import numpy as np
import pytest

import ember as em


def fd_grad(f, x: np.ndarray, eps=1e-6) -> np.ndarray:
    """Central finite differences of a scalar NumPy function."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def test_scalar_backward_matches_finite_differences():
    x0 = np.array([[0.3, -1.2], [2.0, 0.7]])
    x = em.tensor(x0, requires_grad=True)
    (x.sin() * x.exp() + x ** 3).sum().backward()
    ref = fd_grad(lambda a: (np.sin(a) * np.exp(a) + a ** 3).sum(), x0)
    np.testing.assert_allclose(x.grad.numpy(), ref, rtol=1e-6, atol=1e-8)


def test_backward_with_gradient_argument():
    x = em.tensor([1.0, 2.0, 3.0], dtype=em.float64, requires_grad=True)
    y = x * x
    y.backward(em.tensor([1.0, 0.1, 0.01], dtype=em.float64))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 0.4, 0.06])


def test_non_scalar_backward_without_gradient_is_a_clear_error():
    x = em.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*\(2, 3\)"):
        (x * 2).backward()


def test_backward_on_tensor_without_grad_is_a_clear_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        em.ones(3).sum().backward()


def test_gradients_accumulate_across_backward_calls():
    x = em.tensor([1.0, -2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 - 4])


def test_shared_input_gets_summed_gradient():
    x = em.tensor([2.0], requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0])


def test_leaf_grads_do_not_alias_each_other():
    a = em.ones(3, requires_grad=True)
    b = em.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.mul_(10)
    np.testing.assert_allclose(b.grad.numpy(), [1, 1, 1])


def test_autograd_grad_returns_without_touching_dot_grad():
    x = em.tensor([1.0, 2.0], requires_grad=True)
    (g,) = em.autograd.grad((x ** 2).sum(), x)
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    assert x.grad is None


def test_autograd_grad_with_grad_outputs_and_multiple_inputs():
    a = em.tensor([1.0, 2.0], dtype=em.float64, requires_grad=True)
    b = em.tensor([3.0, 4.0], dtype=em.float64, requires_grad=True)
    y = a * b
    ga, gb = em.autograd.grad(y, [a, b], grad_outputs=em.tensor([1.0, -1.0], dtype=em.float64))
    np.testing.assert_allclose(ga.numpy(), [3.0, -4.0])
    np.testing.assert_allclose(gb.numpy(), [1.0, -2.0])


def test_unused_input_needs_allow_unused():
    a = em.ones(2, requires_grad=True)
    b = em.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="not used"):
        em.autograd.grad((a * 2).sum(), [a, b])
    ga, gb = em.autograd.grad((a * 2).sum(), [a, b], allow_unused=True)
    assert gb is None
    np.testing.assert_allclose(ga.numpy(), [2, 2])


def test_second_derivative_with_create_graph_matches_finite_differences():
    x0 = np.array([0.5, -0.3, 1.1])
    x = em.tensor(x0, requires_grad=True)
    (g,) = em.autograd.grad((x.tanh() * x ** 2).sum(), x, create_graph=True)
    (h,) = em.autograd.grad(g.sum(), x)

    def first(a):  # d/da tanh(a) a^2 in closed form
        return (1 - np.tanh(a) ** 2) * a ** 2 + 2 * a * np.tanh(a)
    ref = fd_grad(lambda a: first(a).sum(), x0)
    np.testing.assert_allclose(h.numpy(), ref, rtol=1e-6, atol=1e-8)


def test_backward_twice_needs_retain_graph():
    x = em.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    x.grad = None
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    ref = 2 * (np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0])))
    np.testing.assert_allclose(x.grad.numpy(), ref, rtol=1e-6)


def test_functional_grad_and_nesting():
    f = lambda t: (t ** 4).sum()
    x = em.tensor(1.5, dtype=em.float64)
    assert em.grad(f)(x).item() == pytest.approx(4 * 1.5 ** 3)
    assert em.grad(em.grad(f))(x).item() == pytest.approx(12 * 1.5 ** 2)
    assert em.grad(em.grad(em.grad(f)))(x).item() == pytest.approx(24 * 1.5)


def test_functional_grad_argnums_and_aux():
    f = lambda a, b: ((a * b).sum(), "aux")
    a = em.tensor([1.0, 2.0])
    b = em.tensor([3.0, 5.0])
    (ga, gb), aux = em.grad(f, argnums=(0, 1), has_aux=True)(a, b)
    np.testing.assert_allclose(ga.numpy(), [3, 5])
    np.testing.assert_allclose(gb.numpy(), [1, 2])
    assert aux == "aux"
    value, g = em.value_and_grad(lambda t: (t * t).sum())(a)
    assert value.item() == 5.0
    np.testing.assert_allclose(g.numpy(), [2, 4])


def test_grad_of_non_scalar_function_is_an_error():
    with pytest.raises(RuntimeError, match="scalar"):
        em.grad(lambda t: t * 2)(em.ones(3))


def test_detach_shares_memory_and_cuts_the_graph():
    x = em.ones(3, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    d[0] = 7.0
    assert y[0].item() == 7.0


def test_requires_grad_rules():
    with pytest.raises(RuntimeError, match="floating point"):
        em.arange(3).requires_grad_()
    y = em.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)
    assert y.grad_fn is not None and not y.is_leaf


def test_int_results_never_require_grad():
    x = em.ones(3, requires_grad=True)
    assert not (x > 0).requires_grad
    assert not x.argmax().requires_grad

