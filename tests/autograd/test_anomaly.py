"""detect_anomaly names the op and the user's source line of the first NaN/inf."""
import pytest

import ember as em


def test_backward_nan_names_op_and_user_line():
    x = em.tensor([0.0, 1.0], requires_grad=True)
    with em.autograd.detect_anomaly():
        y = x.sqrt()  # the line that must be reported
        with pytest.raises(FloatingPointError) as info:
            y.sum().backward()
    msg = str(info.value)
    assert "sqrt_backward" in msg
    assert "test_anomaly.py" in msg and "y = x.sqrt()" in msg


def test_forward_check_is_optional():
    x = em.tensor([-1.0, 1.0], requires_grad=True)
    with em.autograd.detect_anomaly():
        x.log()  # no forward check by default
    with em.autograd.detect_anomaly(check_forward=True):
        with pytest.raises(FloatingPointError, match="'log'.*NaN") as info:
            x.log()
    assert "test_anomaly.py" in str(info.value)


def test_anomaly_off_leaves_nan_gradients_alone():
    x = em.tensor([0.0], requires_grad=True)
    x.sqrt().sum().backward()
    assert x.grad.isinf().all()
    assert not em.autograd.is_anomaly_enabled()
