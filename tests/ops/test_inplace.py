"""In-place ops (``add_``, ``x += y``, ``x[k] = v``...): values against NumPy, dtype rules,
aliasing, the version counter, and autograd through in-place changes of non-leaf tensors
and views (gradients against finite differences of the equivalent out-of-place NumPy code).
"""
import numpy as np
import pytest

import ember
from finite_differences import numeric_grads  # noqa: E402

RNG = np.random.default_rng(7)
A = RNG.uniform(0.2, 2.0, (3, 4)) * np.where(RNG.random((3, 4)) > 0.3, 1, -1)
B = RNG.uniform(0.5, 1.5, (3, 4))
ROW = RNG.uniform(0.5, 1.5, 4)
MASK = RNG.random((3, 4)) > 0.5
IDX = np.array([[2, 0, 1, 1], [0, 1, 2, 2]])


def t(a, **kw):
    return ember.tensor(np.asarray(a), **kw)


def scatter_ref(a, index, src):
    out = a.copy()
    for i, j in np.ndindex(index.shape):
        out[index[i, j], j] = src[i, j]
    return out


def index_add_ref(a, index, src, alpha=1):
    out = a.copy()
    np.add.at(out, index, alpha * src)
    return out


# (id, method call on x, NumPy reference of the new value of x)
VALUE_CASES = [
    ("add_tensor", lambda x: x.add_(t(B)), lambda a: a + B),
    ("add_alpha", lambda x: x.add_(t(B), alpha=2.5), lambda a: a + 2.5 * B),
    ("add_scalar_alpha", lambda x: x.add_(2, alpha=3), lambda a: a + 6),
    ("add_broadcast", lambda x: x.add_(t(ROW)), lambda a: a + ROW),
    ("sub_alpha", lambda x: x.sub_(t(B), alpha=0.5), lambda a: a - 0.5 * B),
    ("sub_scalar", lambda x: x.sub_(1.25), lambda a: a - 1.25),
    ("mul_tensor", lambda x: x.mul_(t(B)), lambda a: a * B),
    ("mul_scalar", lambda x: x.mul_(-3.0), lambda a: a * -3.0),
    ("div_tensor", lambda x: x.div_(t(B)), lambda a: a / B),
    ("div_floor", lambda x: x.div_(0.3, rounding_mode="floor"), lambda a: np.floor(a / 0.3)),
    ("div_trunc", lambda x: x.div_(0.3, rounding_mode="trunc"), lambda a: np.trunc(a / 0.3)),
    ("pow_scalar", lambda x: x.pow_(3), lambda a: a ** 3),
    ("pow_tensor", lambda x: x.abs_().pow_(t(B)), lambda a: np.abs(a) ** B),
    ("clamp_both", lambda x: x.clamp_(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7)),
    ("clamp_min", lambda x: x.clamp_(min=0.1), lambda a: np.maximum(a, 0.1)),
    ("clamp_max", lambda x: x.clamp_(max=0.1), lambda a: np.minimum(a, 0.1)),
    ("clamp_min_", lambda x: x.clamp_min_(0.3), lambda a: np.maximum(a, 0.3)),
    ("clamp_max_", lambda x: x.clamp_max_(0.3), lambda a: np.minimum(a, 0.3)),
    ("fill_scalar", lambda x: x.fill_(3.5), lambda a: np.full_like(a, 3.5)),
    ("fill_tensor", lambda x: x.fill_(t(-2.0)), lambda a: np.full_like(a, -2.0)),
    ("zero_", lambda x: x.zero_(), lambda a: np.zeros_like(a)),
    ("copy_same", lambda x: x.copy_(t(B)), lambda a: B.copy()),
    ("copy_broadcast", lambda x: x.copy_(t(ROW)), lambda a: np.broadcast_to(ROW, a.shape)),
    ("copy_cast", lambda x: x.copy_(t(np.arange(12).reshape(3, 4))),
     lambda a: np.arange(12.0).reshape(3, 4)),
    ("masked_fill_", lambda x: x.masked_fill_(t(MASK), 9.0), lambda a: np.where(MASK, 9.0, a)),
    ("masked_fill_row_mask", lambda x: x.masked_fill_(t(MASK[0]), 0.0),
     lambda a: np.where(MASK[0], 0.0, a)),
    ("scatter_", lambda x: x.scatter_(0, t(IDX), t(B[:2])), lambda a: scatter_ref(a, IDX, B[:2])),
    ("index_add_", lambda x: x.index_add_(0, t([2, 0, 2]), t(B)),
     lambda a: index_add_ref(a, [2, 0, 2], B)),
    ("index_add_alpha", lambda x: x.index_add_(0, t([1, 1, 0]), t(B), alpha=-2.0),
     lambda a: index_add_ref(a, [1, 1, 0], B, -2.0)),
    ("index_put_", lambda x: x.index_put_((t([0, 2]), t([3, 1])), t([5.0, 6.0])),
     lambda a: _put(a, ([0, 2], [3, 1]), [5.0, 6.0])),
    ("setitem", lambda x: x.__setitem__((slice(None), 1), t([1.0, 2.0, 3.0])) or x,
     lambda a: _put(a, (slice(None), 1), [1.0, 2.0, 3.0])),
    ("exp_", lambda x: x.exp_(), np.exp),
    ("log_", lambda x: x.abs_().log_(), lambda a: np.log(np.abs(a))),
    ("sqrt_", lambda x: x.abs_().sqrt_(), lambda a: np.sqrt(np.abs(a))),
    ("sin_", lambda x: x.sin_(), np.sin),
    ("cos_", lambda x: x.cos_(), np.cos),
    ("tanh_", lambda x: x.tanh_(), np.tanh),
    ("sigmoid_", lambda x: x.sigmoid_(), lambda a: 1 / (1 + np.exp(-a))),
    ("relu_", lambda x: x.relu_(), lambda a: np.maximum(a, 0)),
    ("abs_", lambda x: x.abs_(), np.abs),
    ("neg_", lambda x: x.neg_(), np.negative),
    ("sign_", lambda x: x.sign_(), np.sign),
    ("floor_", lambda x: x.mul_(2).floor_(), lambda a: np.floor(a * 2)),
    ("ceil_", lambda x: x.mul_(2).ceil_(), lambda a: np.ceil(a * 2)),
    ("round_", lambda x: x.mul_(2).round_(), lambda a: np.round(a * 2)),
    ("reciprocal_", lambda x: x.reciprocal_(), lambda a: 1 / a),
    ("square_", lambda x: x.square_(), np.square),
    ("lerp_", lambda x: x.lerp_(t(B), 0.25), lambda a: a + 0.25 * (B - a)),
    ("addcmul_", lambda x: x.addcmul_(t(B), t(ROW), value=0.5), lambda a: a + 0.5 * B * ROW),
    ("addcdiv_", lambda x: x.addcdiv_(t(B), t(ROW), value=2), lambda a: a + 2 * B / ROW),
    ("remainder_", lambda x: x.remainder_(0.7), lambda a: np.mod(a, 0.7)),
    ("floor_divide_", lambda x: x.floor_divide_(0.7), lambda a: np.floor_divide(a, 0.7)),
    ("tril_", lambda x: x.tril_(), np.tril),
]


def _put(a, key, v):
    out = a.copy()
    out[key] = v
    return out


@pytest.mark.parametrize("autograd", [False, True], ids=["no_graph", "graph"])
@pytest.mark.parametrize("call,ref", [c[1:] for c in VALUE_CASES], ids=[c[0] for c in VALUE_CASES])
def test_inplace_values_match_numpy(call, ref, autograd):
    if autograd:  # a non-leaf tensor: the op is recorded, through the out-of-place path
        x = ember.tensor(A, requires_grad=True) * 1
    else:
        x = ember.tensor(A)
    version = x._version_count
    out = call(x)
    assert out is x
    assert x.dtype == ember.float64
    assert x._version_count > version
    np.testing.assert_allclose(x.detach().numpy(), ref(A.copy()), rtol=1e-12, atol=1e-15)


# (id, dtype, call, expected values) — same-category results are cast back to the tensor's
# dtype; integer arithmetic wraps around as in C (and PyTorch)
DTYPE_CASES = [
    ("int_add_int", ember.int64, lambda x: x.add_(3), [4, 5, 6]),
    ("int_add_bool", ember.int64, lambda x: x.add_(True), [2, 3, 4]),
    ("int_add_alpha", ember.int64, lambda x: x.add_(t([1, 1, 1]), alpha=3), [4, 5, 6]),
    ("int32_add_int64", ember.int32, lambda x: x.add_(t([10, 20, 30])), [11, 22, 33]),
    ("uint8_wraps_down", ember.uint8, lambda x: x.sub_(2), [255, 0, 1]),
    ("uint8_add_negative", ember.uint8, lambda x: x.add_(-1), [0, 1, 2]),
    ("uint8_add_big", ember.uint8, lambda x: x.add_(300), [45, 46, 47]),
    ("int8_mul_wraps", ember.int8, lambda x: x.mul_(100), [100, -56, 44]),
    ("int_div_floor", ember.int64, lambda x: x.div_(2, rounding_mode="floor"), [0, 1, 1]),
    ("int_floor_divide", ember.int64, lambda x: x.floor_divide_(2), [0, 1, 1]),
    ("int_clamp", ember.int64, lambda x: x.clamp_(2, 2), [2, 2, 2]),
    ("int_fill_float_truncates", ember.int64, lambda x: x.fill_(2.7), [2, 2, 2]),
    ("uint8_fill_negative_wraps", ember.uint8, lambda x: x.fill_(-1), [255, 255, 255]),
    ("int_copy_float_truncates", ember.int64, lambda x: x.copy_(t([1.7, -2.7, 0.5])),
     [1, -2, 0]),
    ("int_masked_fill_float", ember.int64,
     lambda x: x.masked_fill_(t([True, False, True]), 2.5), [2, 2, 2]),
    ("bool_add_true", ember.bool, lambda x: x.add_(True), [True, True, True]),
    ("float16_add_float32", ember.float16, lambda x: x.add_(t([0.5, 0.5, 0.5],
                                                              dtype=ember.float32)),
     [1.5, 2.5, 3.5]),
    ("float32_add_float64", ember.float32, lambda x: x.add_(t([0.5, 0.5, 0.5])),
     [1.5, 2.5, 3.5]),
    ("float_add_int_tensor", ember.float32, lambda x: x.add_(t([1, 2, 3])), [2.0, 4.0, 6.0]),
]


@pytest.mark.parametrize("dtype,call,expected", [c[1:] for c in DTYPE_CASES],
                         ids=[c[0] for c in DTYPE_CASES])
def test_inplace_keeps_dtype(dtype, call, expected):
    x = ember.tensor([1, 2, 3]).to(dtype)
    out = call(x)
    assert out is x and x.dtype is dtype
    np.testing.assert_array_equal(x.numpy(), np.array(expected, dtype=dtype.np))


CAST_ERRORS = [
    ("int_div", ember.int64, lambda x: x.div_(2), "float32", "int64"),
    ("int_div_int_tensor", ember.int64, lambda x: x.div_(t([2, 2, 2])), "float32", "int64"),
    ("int_itruediv", ember.int64, lambda x: x.__itruediv__(2), "float32", "int64"),
    ("int_add_float", ember.int64, lambda x: x.add_(1.5), "float32", "int64"),
    ("int_mul_float", ember.int32, lambda x: x.mul_(2.0), "float32", "int32"),
    ("int_add_float_tensor", ember.int64, lambda x: x.add_(t([1.0, 2.0, 3.0])), "float64",
     "int64"),
    ("int_add_0d_float_tensor", ember.int64, lambda x: x.add_(t(1.5)), "float64", "int64"),
    ("bool_add_int", ember.bool, lambda x: x.add_(1), "int64", "bool"),
    ("bool_mul_int", ember.bool, lambda x: x.mul_(2), "int64", "bool"),
    ("int_exp", ember.int64, lambda x: x.exp_(), "float32", "int64"),
    ("int_sqrt", ember.int64, lambda x: x.sqrt_(), "float32", "int64"),
    ("int_clamp_float", ember.int64, lambda x: x.clamp_(1.5, 2.5), "float32", "int64"),
]


@pytest.mark.parametrize("dtype,call,result,target", [c[1:] for c in CAST_ERRORS],
                         ids=[c[0] for c in CAST_ERRORS])
def test_inplace_cast_errors(dtype, call, result, target):
    x = ember.tensor([1, 2, 3]).to(dtype)
    before = x.numpy().copy()
    with pytest.raises(RuntimeError, match="can't be cast") as info:
        call(x)
    assert result in str(info.value) and target in str(info.value)
    np.testing.assert_array_equal(x.numpy(), before)  # nothing was written


def test_float_alpha_with_int_tensor_raises():
    with pytest.raises(RuntimeError, match="alpha must not be a floating point"):
        ember.tensor([1, 2]).sub_(1, alpha=0.5)


def test_copy_shape_mismatch_raises():
    with pytest.raises(RuntimeError, match=r"\(2,\).*\(2, 3\)"):
        ember.zeros(2, 3).copy_(ember.zeros(2))
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(3,\)"):
        ember.zeros(3).copy_(ember.zeros(2, 3))


def test_fill_with_a_non_scalar_tensor_raises():
    with pytest.raises(RuntimeError, match="0-dimension"):
        ember.zeros(3).fill_(ember.ones(3))


def test_write_into_expanded_view_raises():
    with pytest.raises(RuntimeError, match="expanded"):
        ember.zeros(3).expand(2, 3).add_(1)


# ----- operators and aliasing ---------------------------------------------------------------

OPERATOR_CASES = [
    ("iadd", lambda x: x.__iadd__(2.0), lambda a: a + 2.0),
    ("iadd_tensor", lambda x: x.__iadd__(t(ROW)), lambda a: a + ROW),
    ("isub", lambda x: x.__isub__(t(B)), lambda a: a - B),
    ("imul", lambda x: x.__imul__(t(B)), lambda a: a * B),
    ("itruediv", lambda x: x.__itruediv__(4.0), lambda a: a / 4.0),
    ("ipow", lambda x: x.__ipow__(2), lambda a: a ** 2),
    ("imod", lambda x: x.__imod__(0.5), lambda a: np.mod(a, 0.5)),
    ("ifloordiv", lambda x: x.__ifloordiv__(0.5), lambda a: np.floor_divide(a, 0.5)),
]


@pytest.mark.parametrize("call,ref", [c[1:] for c in OPERATOR_CASES],
                         ids=[c[0] for c in OPERATOR_CASES])
def test_augmented_assignment_is_in_place(call, ref):
    base = A.copy()
    x = ember.from_numpy(base)
    row = x[1]
    out = call(x)
    assert out is x
    np.testing.assert_allclose(base, ref(A.copy()), rtol=1e-12)  # the memory itself changed
    np.testing.assert_allclose(row.numpy(), ref(A.copy())[1], rtol=1e-12)  # views see it


def test_augmented_assignment_statements():
    x = ember.tensor([1.0, 2.0, 3.0])
    alias = x
    x += 1
    x *= 2
    x -= 1
    x /= 2
    x **= 2
    assert x is alias
    np.testing.assert_allclose(x.numpy(), ((np.array([1.0, 2, 3]) + 1) * 2 - 1) ** 2 / 4)


@pytest.mark.parametrize("op,ref", [("__iand__", np.bitwise_and), ("__ior__", np.bitwise_or),
                                    ("__ixor__", np.bitwise_xor)])
def test_bitwise_augmented_assignment(op, ref):
    a, b = np.array([5, 7, 12]), np.array([6, 3, 10])
    x = ember.tensor(a)
    assert getattr(x, op)(ember.tensor(b)) is x
    np.testing.assert_array_equal(x.numpy(), ref(a, b))


def test_int_true_division_statement_raises():
    x = ember.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        x /= 2


def test_inplace_on_view_changes_base():
    base = np.zeros((3, 4))
    x = ember.from_numpy(base)
    v = x[1:, ::2]
    v += 5
    x[0, 0] = 1.0
    x.t()[3].fill_(7.0)
    expected = np.zeros((3, 4))
    expected[1:, ::2] += 5
    expected[0, 0] = 1.0
    expected[:, 3] = 7.0
    np.testing.assert_array_equal(base, expected)
    np.testing.assert_array_equal(v.numpy(), expected[1:, ::2])


def test_scalar_element_is_a_view():
    x = ember.zeros(3)
    x[1].fill_(5.0)
    x.reshape(3, 1)[2, 0].add_(2.0)
    np.testing.assert_array_equal(x.numpy(), [0.0, 5.0, 2.0])


def test_from_numpy_and_numpy_see_inplace_changes():
    base = np.ones(4)
    x = ember.from_numpy(base)
    x.mul_(3)
    np.testing.assert_array_equal(base, np.full(4, 3.0))
    x.numpy()[0] = -1.0
    assert x[0].item() == -1.0


# ----- leaves, no_grad and the version counter ----------------------------------------------


def test_inplace_on_leaf_requiring_grad_raises():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)
    with pytest.raises(RuntimeError, match="leaf"):
        x[0].mul_(2)  # a view of the leaf
    with pytest.raises(RuntimeError, match="leaf"):
        x[1] = 0.0
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0])


def test_inplace_on_leaf_allowed_under_no_grad():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    with ember.no_grad():
        x.mul_(3)
        x[0] = 5.0
        x.sub_(ember.tensor([1.0, 1.0]))
    assert x.is_leaf and x.requires_grad and x.grad_fn is None
    np.testing.assert_array_equal(x.detach().numpy(), [4.0, 5.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 10.0])


def test_version_counter_is_shared_by_views_and_detach():
    x = ember.zeros(3)
    v = x[1:]
    d = x.detach()
    assert x._version_count == 0
    x.add_(1)
    v.mul_(2)
    d.zero_()
    x[0] = 1.0
    assert x._version_count == v._version_count == d._version_count == 4


def _leaf():
    return ember.tensor(A.copy(), requires_grad=True)


# cases PyTorch rejects at backward: a value a backward rule needs was overwritten
RAISES = [
    ("exp_then_add_", lambda x: _sum(_apply(x.exp(), "add_", 1))),
    ("sigmoid_then_mul_", lambda x: _sum(_apply(x.sigmoid(), "mul_", 2))),
    ("tanh_then_view_add_", lambda x: _modify_view(x.tanh())),
    ("operand_of_mul", lambda x: _then_modify(x, lambda y: x * y, "add_")),
    ("operand_of_pow", lambda x: _then_modify(x, lambda y: y ** 3, "mul_")),
    ("operand_of_matmul", lambda x: _then_modify(x, lambda y: y @ y.t(), "add_")),
    ("exp_output_used_by_clone", lambda x: _exp_clone(x)),
    ("log_of_exp", lambda x: _log_of_exp(x)),
    ("detach_shares_version", lambda x: _detach_mod(x)),
    ("no_grad_write", lambda x: _no_grad_mod(x)),
    ("exp_twice", lambda x: _sum(_apply(_apply(x * 1, "exp_"), "exp_"))),
    ("mul_by_itself", lambda x: _sum(_mul_self(x))),
    ("relu_then_add_", lambda x: _sum(_apply(x.relu(), "add_", 1))),
]


def _sum(y):
    return y.sum()


def _apply(y, name, *args):
    getattr(y, name)(*args)
    return y


def _modify_view(y):
    y[0].add_(1)
    return y.sum()


def _then_modify(x, consumer, name):
    y = x + 0
    z = consumer(y)
    getattr(y, name)(1)
    return z.sum()


def _exp_clone(x):
    y = x.exp()
    z = y.clone()
    y.add_(1)
    return z.sum()


def _log_of_exp(x):
    y = x.exp()
    z = y.log()
    y.mul_(2)
    return z.sum()


def _detach_mod(x):
    z = x * x
    x.detach().add_(1)
    return z.sum()


def _no_grad_mod(x):
    z = x * x
    with ember.no_grad():
        x.add_(1)
    return z.sum()


def _mul_self(x):
    y = x * 1
    y.mul_(y)
    return y


@pytest.mark.parametrize("build", [c[1] for c in RAISES], ids=[c[0] for c in RAISES])
def test_backward_after_overwriting_saved_value_raises(build):
    loss = build(_leaf())
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


# cases PyTorch accepts: (id, ember loss of x, NumPy reference loss of a)
ACCEPTS = [
    ("mul_then_add_",
     lambda x: _sq(_apply(x * 2, "add_", 1)),
     lambda a: ((a * 2 + 1) ** 2).sum()),
    ("add_then_mul_",
     lambda x: _sq(_apply(x + 1, "mul_", 3)),
     lambda a: (((a + 1) * 3) ** 2).sum()),
    ("sin_", lambda x: _sq(_apply(x * 1, "sin_")), lambda a: (np.sin(a) ** 2).sum()),
    ("exp_", lambda x: _sq(_apply(x * 1, "exp_")), lambda a: (np.exp(a) ** 2).sum()),
    ("pow_", lambda x: _sq(_apply(x * 1, "pow_", 3)), lambda a: (a ** 6).sum()),
    ("div_", lambda x: _sq(_apply(x * 1, "div_", 4.0)), lambda a: ((a / 4) ** 2).sum()),
    ("clamp_", lambda x: _sq(_apply(x * 1, "clamp_", -0.5, 0.5)),
     lambda a: (np.clip(a, -0.5, 0.5) ** 2).sum()),
    ("relu_", lambda x: _sq(_apply(x * 1, "relu_")), lambda a: (np.maximum(a, 0) ** 2).sum()),
    ("sigmoid_", lambda x: _sq(_apply(x * 1, "sigmoid_")),
     lambda a: ((1 / (1 + np.exp(-a))) ** 2).sum()),
    ("chain_of_inplace", lambda x: _sq(_apply(_apply(_apply(x * 1, "sin_"), "mul_", 0.5),
                                              "exp_")),
     lambda a: (np.exp(0.5 * np.sin(a)) ** 2).sum()),
    ("add_itself", lambda x: _sq(_add_self(x)), lambda a: ((2 * a) ** 2).sum()),
    ("masked_fill_", lambda x: _sq(_apply(x * 2, "masked_fill_", t(MASK), 0.5)),
     lambda a: (np.where(MASK, 0.5, 2 * a) ** 2).sum()),
    ("index_saved_then_add_", lambda x: _index_then_add(x), lambda a: (a[[0, 2]] ** 2).sum()),
    ("view_mul_base_used", lambda x: _view_mul(x, use="base"),
     lambda a: (_row_times(a, 0, 2) ** 2).sum()),
    ("view_mul_view_used", lambda x: _view_mul(x, use="view"),
     lambda a: ((2 * a[0]) ** 2).sum()),
    ("view_twice_both_used", lambda x: _view_twice(x),
     lambda a: (np.sin(a[0] + 2) ** 2).sum() + (_row_plus(a, 0, 2) ** 3).sum()),
    ("base_mul_view_used", lambda x: _base_mul(x), lambda a: ((2 * a[0]) ** 2).sum()),
    ("sibling_view", lambda x: _sibling(x), lambda a: (_row_times(a, 0, 3)[:, 1] ** 2).sum()),
    ("transposed_view_relu_", lambda x: _sq(_apply_t(x)), lambda a: (np.maximum(a, 0) ** 2).sum()),
    ("columns_imul", lambda x: _cols_imul(x), lambda a: (_cols_times(a, 2) ** 2).sum()),
    ("view_of_view", lambda x: _view_of_view(x), lambda a: (_vov_ref(a) ** 2).sum()),
    ("setitem_from_own_row", lambda x: _setitem_own(x), lambda a: (_own_ref(a) ** 2).sum()),
    ("view_copy_from_base", lambda x: _view_copy(x), lambda a: (_view_copy_ref(a) ** 2).sum()),
    ("setitem_value_requires_grad", lambda x: _setitem_into_plain(x),
     lambda a: (_put(np.zeros((3, 4)), 1, a[2] * 3) ** 2).sum()),
    ("view_written_from_sibling_view", lambda x: _from_sibling(x, ember),
     lambda a: _from_sibling(a, np)),
    ("transposed_view_from_own_column", lambda x: _columns(x, ember),
     lambda a: _columns(a, np)),
    ("flat_view_shifted_copy", lambda x: _shifted(x, ember), lambda a: _shifted(a, np)),
    ("view_updated_from_itself_twice", lambda x: _self_twice(x, ember),
     lambda a: _self_twice(a, np)),
]


# the same code runs on ember (with autograd) and on NumPy (the reference): views and
# in-place writes mean the same in both
def _copy(x, lib):
    return x * 1 if lib is ember else x.copy()


def _from_sibling(x, lib):
    y = _copy(x, lib)
    row, col = y[0], y[:, 0]
    row[:3] = col + 2  # col is read before the write; it sees the write afterwards
    return (col ** 2).sum() + (y ** 3).sum()


def _columns(x, lib):
    y = _copy(x, lib)
    t = y.T
    t[1] += t[2]
    return (y ** 2).sum() + (t ** 3).sum()


def _shifted(x, lib):
    y = _copy(x, lib)
    r = y.reshape(-1)
    r[2:5] = r[0:3] + 1
    return (y ** 2).sum() + (r ** 3).sum()


def _self_twice(x, lib):
    y = _copy(x, lib)
    v = y[1]
    v[...] = v + 1
    v += v
    return (y ** 2).sum() + (v ** 3).sum()


def _sq(y):
    return (y * y).sum()


def _add_self(x):
    y = x * 1
    y.add_(y)
    return y


def _index_then_add(x):
    y = x + 0
    z = y[[0, 2]]
    y.add_(1)
    return _sq(z)


def _row_times(a, row, k):
    out = a.copy()
    out[row] *= k
    return out


def _row_plus(a, row, k):
    out = a.copy()
    out[row] += k
    return out


def _view_mul(x, use):
    y = x * 1
    v = y[0]
    v.mul_(2)
    return _sq(y if use == "base" else v)


def _view_twice(x):
    y = x * 1
    v = y[0]
    v.add_(1)
    v.add_(1)
    return _sq(v.sin()) + (y ** 3).sum()


def _base_mul(x):
    y = x * 1
    v = y[0]
    y.mul_(2)
    return _sq(v)


def _sibling(x):
    y = x * 1
    a = y[0]
    b = y[:, 1]
    a.mul_(3)
    return _sq(b)


def _apply_t(x):
    y = x * 1
    y.t().relu_()
    return y


def _cols_imul(x):
    y = x.clone()
    y[:, :2] *= 2
    return _sq(y)


def _cols_times(a, k):
    out = a.copy()
    out[:, :2] *= k
    return out


def _view_of_view(x):
    y = x * 1
    v = y.reshape(-1)[1:6]
    w = v[1:]
    w.sub_(x[0])
    return _sq(y)


def _vov_ref(a):
    out = a.copy().reshape(-1)
    out[2:6] -= a[0]
    return out


def _setitem_own(x):
    y = x * 1
    y[0] = y[1] + 2
    return _sq(y)


def _own_ref(a):
    out = a.copy()
    out[0] = a[1] + 2
    return out


def _view_copy(x):
    y = x * 1
    v = y[0]
    v.copy_(v + y[2])
    return _sq(y)


def _view_copy_ref(a):
    out = a.copy()
    out[0] = a[0] + a[2]
    return out


def _setitem_into_plain(x):
    z = ember.zeros(3, 4, dtype=ember.float64)
    z[1] = x[2] * 3
    return _sq(z)


@pytest.mark.parametrize("build,ref", [c[1:] for c in ACCEPTS], ids=[c[0] for c in ACCEPTS])
def test_gradient_through_inplace_matches_finite_differences(build, ref):
    x = _leaf()
    loss = build(x)
    np.testing.assert_allclose(loss.item(), ref(A.copy()), rtol=1e-12)
    loss.backward()
    (expected,) = numeric_grads(lambda a: float(ref(a)), A)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6, atol=1e-8)


def test_overwrite_sends_no_gradient_to_old_values():
    # fill_/copy_/zero_ of a non-leaf: the old values get zero gradient, the source all of it
    x = _leaf()
    src = ember.tensor(ROW.copy(), requires_grad=True)
    y = x * 1
    y.copy_(src)
    assert y.requires_grad
    (y * ember.tensor(B)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros_like(A))
    np.testing.assert_allclose(src.grad.numpy(), B.sum(axis=0))


def test_fill_with_zero_dim_tensor_gradient():
    x = _leaf()
    v = ember.tensor(0.5, dtype=ember.float64, requires_grad=True)
    y = x * 1
    y.fill_(v)
    (y * ember.tensor(B)).sum().backward()
    np.testing.assert_allclose(v.grad.item(), B.sum())
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros_like(A))


def test_copy_over_inf_gives_finite_values_and_gradients():
    a = np.array([np.inf, -np.inf, np.nan, 1.0])
    x = ember.tensor(a, requires_grad=True)
    src = ember.tensor([1.0, 2.0, 3.0, 4.0], dtype=ember.float64, requires_grad=True)
    y = x * 1
    y.copy_(src)
    np.testing.assert_array_equal(y.detach().numpy(), [1.0, 2.0, 3.0, 4.0])
    y.sum().backward()
    np.testing.assert_array_equal(src.grad.numpy(), np.ones(4))


@pytest.mark.parametrize("method", ["scatter_", "index_add_"])
def test_scatter_and_index_add_into_non_leaf_gradients(method):
    s0 = RNG.standard_normal((2, 4))
    w = RNG.standard_normal((3, 4))

    def ref(a, s):
        if method == "scatter_":
            out = scatter_ref(a * 2, IDX, s)
        else:
            out = index_add_ref(a * 2, [2, 2], s)
        return float((np.sin(out) * w).sum())

    x = _leaf()
    src = ember.tensor(s0, requires_grad=True)
    y = x * 2
    if method == "scatter_":
        y.scatter_(0, t(IDX), src)
    else:
        y.index_add_(0, t([2, 2]), src)
    (ember.sin(y) * t(w)).sum().backward()
    ga, gs = numeric_grads(ref, A, s0)
    np.testing.assert_allclose(x.grad.numpy(), ga, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(src.grad.numpy(), gs, rtol=1e-6, atol=1e-9)


# Cases that need each graph node to remember its inputs' nodes at record time and
# mul/div to save only the operand they read.
EARLIER_NODES = [
    pytest.param(lambda x: _sum_then_mul(x), lambda a: (a + 1).sum(), id="sum_before_mul_"),
    pytest.param(lambda x: _exp_then_zero_column(x), lambda a: np.exp(a).sum(),
                 id="exp_before_view_zero_"),
    pytest.param(lambda x: _mul_then_add(x), lambda a: (a * 2).sum(), id="times_2_before_add_"),
    pytest.param(lambda x: _setitem_scaled_row(x), lambda a: (_scaled_ref(a) ** 2).sum(),
                 id="setitem_from_own_row_times_2"),
]


def _sum_then_mul(x):
    y = x + 1
    z = y.sum()
    y.mul_(2)
    return z


def _exp_then_zero_column(x):
    y = x * 1
    w = y.exp()
    y[:, 0].zero_()
    return w.sum()


def _mul_then_add(x):
    y = x * 1
    z = y * 2
    y.add_(1)
    return z.sum()


def _setitem_scaled_row(x):
    y = x * 1
    y[0] = y[1] * 2
    return _sq(y)


def _scaled_ref(a):
    out = a.copy()
    out[0] = a[1] * 2
    return out


@pytest.mark.parametrize("build,ref", EARLIER_NODES)
def test_gradient_after_inplace_of_an_earlier_input(build, ref):
    x = _leaf()
    build(x).backward()
    (expected,) = numeric_grads(lambda a: float(ref(a)), A)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6, atol=1e-8)
