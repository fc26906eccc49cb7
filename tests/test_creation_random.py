"""Making tensors (dtype inference, memory sharing, ranges, *_like, conversions), random
numbers (seeding, generators, state, statistics) and PyTorch's type-promotion table.

Expected dtypes are written out from PyTorch's documented rules; values come from NumPy or
closed forms.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ember

# ----- tensor(): dtype inference ------------------------------------------------------------

INFERENCE_CASES = [
    ("python_float", 1.5, ember.float32),
    ("python_int", 3, ember.int64),
    ("python_bool", True, ember.bool),
    ("float_list", [1.0, 2.0], ember.float32),
    ("int_list", [1, 2], ember.int64),
    ("bool_list", [True, False], ember.bool),
    ("int_and_float", [1, 2.5], ember.float32),
    ("bool_and_int", [True, 2], ember.int64),
    ("nested_ints", [[1, 2], [3, 4]], ember.int64),
    ("nested_mixed", [[1, 2], [3, 4.0]], ember.float32),
    ("tuple", (1, 2), ember.int64),
    ("empty_list", [], ember.float32),
    ("numpy_float64_array", np.array([1.0, 2.0]), ember.float64),
    ("numpy_float16_array", np.array([1.0], dtype=np.float16), ember.float16),
    ("numpy_int32_array", np.array([1], dtype=np.int32), ember.int32),
    ("numpy_uint8_array", np.array([1], dtype=np.uint8), ember.uint8),
    ("numpy_bool_array", np.array([True]), ember.bool),
    ("numpy_float64_scalar", np.float64(1.0), ember.float64),
    ("numpy_int32_scalar", np.int32(1), ember.int32),
    ("numpy_bool_scalar", np.bool_(True), ember.bool),
    ("list_of_numpy_float64", [np.float64(1.0), np.float64(2.0)], ember.float64),
    ("numpy_float64_and_float", [np.float64(1.0), 2.0], ember.float64),
    ("numpy_int32_and_int", [np.int32(1), 2], ember.int64),
    ("numpy_int32_and_float", [np.int32(1), 2.5], ember.float32),
    ("numpy_float16_and_int64", [np.float16(1.0), np.int64(2)], ember.float16),
    ("bool_and_numpy_int8", [True, np.int8(2)], ember.int8),
    ("list_of_numpy_arrays", [np.array([1.0, 2.0]), np.array([3.0, 4.0])], ember.float64),
]


@pytest.mark.parametrize("data,expected", [c[1:] for c in INFERENCE_CASES],
                         ids=[c[0] for c in INFERENCE_CASES])
def test_tensor_dtype_inference(data, expected):
    x = ember.tensor(data)
    assert x.dtype is expected
    np.testing.assert_array_equal(x.numpy().astype(np.float64),
                                  np.asarray(data, dtype=np.float64))


def test_tensor_shapes():
    assert ember.tensor(2.5).shape == ()
    assert ember.tensor([[1, 2, 3], [4, 5, 6]]).shape == (2, 3)
    assert ember.tensor([[]]).shape == (1, 0)


ZERO_DIM_LISTS = [
    ("floats", [ember.tensor(1.0), ember.tensor(2.0)], ember.float32, [1.0, 2.0]),
    ("ints", [ember.tensor(1), ember.tensor(2)], ember.int64, [1, 2]),
    ("int32", [ember.tensor(1, dtype=ember.int32), ember.tensor(2, dtype=ember.int32)],
     ember.int32, [1, 2]),
    ("float64_and_float32", [ember.tensor(1.0, dtype=ember.float64), ember.tensor(2.0)],
     ember.float64, [1.0, 2.0]),
    ("tensor_and_float", [ember.tensor(1), 2.5], ember.float32, [1.0, 2.5]),
    ("int32_tensor_and_int", [ember.tensor(1, dtype=ember.int32), 2], ember.int64, [1, 2]),
    ("float16_tensor_and_float", [ember.tensor(1.0, dtype=ember.float16), 2.5], ember.float32,
     [1.0, 2.5]),
]


@pytest.mark.parametrize("data,dtype,values", [c[1:] for c in ZERO_DIM_LISTS],
                         ids=[c[0] for c in ZERO_DIM_LISTS])
def test_tensor_from_list_of_zero_dim_tensors(data, dtype, values):
    x = ember.tensor(data)
    assert x.dtype is dtype and x.shape == (len(values),)
    np.testing.assert_array_equal(x.numpy(), np.array(values, dtype=dtype.np))


def test_tensor_copies_its_data():
    a = np.zeros(3)
    x = ember.tensor(a)
    a[0] = 1.0
    assert x[0].item() == 0.0
    y = ember.tensor(x)
    y.add_(1)
    assert x[0].item() == 0.0


def test_tensor_explicit_dtype_and_requires_grad():
    assert ember.tensor([1, 2], dtype=ember.float16).dtype is ember.float16
    assert ember.tensor([1, 2], dtype=float).dtype is ember.float32
    assert ember.tensor([1.7, -1.7], dtype=ember.int64).tolist() == [1, -1]
    assert ember.tensor([1.0], requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2], requires_grad=True)


@pytest.mark.parametrize("data,exc,msg", [
    ([[1, 2], [3]], ValueError, "ragged"),
    ("abc", TypeError, "can't convert"),
    (1 + 2j, TypeError, "can't convert"),
])
def test_tensor_bad_data(data, exc, msg):
    with pytest.raises(exc, match=msg):
        ember.tensor(data)


# ----- memory sharing -----------------------------------------------------------------------


def test_from_numpy_shares_memory_both_ways():
    a = np.zeros((2, 3), dtype=np.float32)
    x = ember.from_numpy(a)
    assert x.dtype is ember.float32
    a[0, 1] = 5.0
    assert x[0, 1].item() == 5.0
    x.add_(1)
    np.testing.assert_array_equal(a, [[1, 6, 1], [1, 1, 1]])


def test_from_numpy_keeps_strides():
    a = np.zeros((3, 4))[:, ::2]
    x = ember.from_numpy(a)
    assert x.stride() == (4, 2) and not x.is_contiguous()
    x.fill_(2.0)
    np.testing.assert_array_equal(a, np.full((3, 2), 2.0))


@pytest.mark.parametrize("bad,msg", [([1, 2], "np.ndarray"), (np.array(["a"]), "can't convert")])
def test_from_numpy_errors(bad, msg):
    with pytest.raises(TypeError, match=msg):
        ember.from_numpy(bad)


def test_as_tensor_shares_when_it_can():
    a = np.arange(3.0)
    x = ember.as_tensor(a)
    a[0] = 7.0
    assert x[0].item() == 7.0
    y = ember.as_tensor(a, dtype=ember.float32)  # a different dtype needs a copy
    a[1] = 8.0
    assert y[1].item() == 1.0
    t = ember.zeros(2)
    assert ember.as_tensor(t) is t
    assert ember.as_tensor([1, 2.5]).dtype is ember.float32


def test_numpy_and_array_share_memory():
    x = ember.zeros(3)
    n = x.numpy()
    n[1] = 4.0
    assert x[1].item() == 4.0
    arr = np.asarray(x)
    assert np.shares_memory(arr, n)
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    with pytest.raises(RuntimeError, match="detach"):
        ember.zeros(2, requires_grad=True).numpy()


def test_dlpack_round_trip_shares_memory():
    a = np.arange(4.0)
    x = ember.from_dlpack(a)
    x.mul_(2)
    np.testing.assert_array_equal(a, [0.0, 2.0, 4.0, 6.0])
    b = np.from_dlpack(x)
    b[0] = -1.0
    assert x[0].item() == -1.0
    y = ember.from_dlpack(ember.tensor([1, 2], dtype=ember.int32))
    assert y.dtype is ember.int32 and y.tolist() == [1, 2]


def test_item_and_tolist_give_python_types():
    assert ember.tensor(2.5).item() == 2.5 and type(ember.tensor(2.5).item()) is float
    assert type(ember.tensor(3).item()) is int
    assert type(ember.tensor(True).item()) is bool
    assert ember.tensor([[7]]).item() == 7
    assert ember.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert ember.tensor([1.5], dtype=ember.bfloat16).tolist() == [1.5]
    with pytest.raises(RuntimeError, match="2 elements"):
        ember.tensor([1, 2]).item()


def test_device_is_cpu():
    x = ember.zeros(2)
    assert x.device == "cpu" and str(x.device) == "cpu" and x.device.type == "cpu"
    assert x.to("cpu") is x and x.cpu() is x
    assert ember.zeros(2, device="cpu").device == "cpu"
    with pytest.raises(RuntimeError, match="not available"):
        x.to("cuda")


CONVERSIONS = [
    ("float", lambda x: x.float(), ember.float32),
    ("double", lambda x: x.double(), ember.float64),
    ("half", lambda x: x.half(), ember.float16),
    ("bfloat16", lambda x: x.bfloat16(), ember.bfloat16),
    ("long", lambda x: x.long(), ember.int64),
    ("int", lambda x: x.int(), ember.int32),
    ("bool", lambda x: x.bool(), ember.bool),
    ("to_dtype", lambda x: x.to(ember.int8), ember.int8),
    ("to_dtype_kw", lambda x: x.to(dtype=ember.uint8), ember.uint8),
    ("to_device_and_dtype", lambda x: x.to("cpu", ember.float64), ember.float64),
    ("to_other_tensor", lambda x: x.to(ember.zeros(1, dtype=ember.int16)), ember.int16),
]


@pytest.mark.parametrize("convert,dtype", [c[1:] for c in CONVERSIONS],
                         ids=[c[0] for c in CONVERSIONS])
def test_dtype_conversions(convert, dtype):
    a = np.array([-1.5, 0.0, 2.75, 3.0])
    y = convert(ember.tensor(a))
    assert y.dtype is dtype
    np.testing.assert_array_equal(np.asarray(y.tolist(), dtype=np.float64),
                                  a.astype(dtype.np).astype(np.float64))


def test_to_same_dtype_is_identity_unless_copy():
    x = ember.zeros(2)
    assert x.to(ember.float32) is x and x.float() is x
    c = x.to(ember.float32, copy=True)
    assert c is not x
    c.fill_(1.0)
    assert x.sum().item() == 0.0


def test_float_conversion_keeps_gradient_path():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    (x.double() * 3).sum().backward()
    assert x.grad.dtype is ember.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


# ----- zeros / ones / full / empty / ranges -------------------------------------------------

FILLED = [
    ("zeros", lambda: ember.zeros(2, 3), np.zeros((2, 3), np.float32)),
    ("zeros_tuple", lambda: ember.zeros((2, 3)), np.zeros((2, 3), np.float32)),
    ("zeros_list", lambda: ember.zeros([4]), np.zeros(4, np.float32)),
    ("zeros_scalar", lambda: ember.zeros(()), np.zeros((), np.float32)),
    ("zeros_int", lambda: ember.zeros(3, dtype=ember.int64), np.zeros(3, np.int64)),
    ("ones", lambda: ember.ones(2, 2), np.ones((2, 2), np.float32)),
    ("ones_bool", lambda: ember.ones(2, dtype=ember.bool), np.ones(2, np.bool_)),
    ("full_float", lambda: ember.full((2,), 1.5), np.full(2, 1.5, np.float32)),
    ("full_int", lambda: ember.full((2,), 7), np.full(2, 7, np.int64)),
    ("full_bool", lambda: ember.full((2,), True), np.full(2, True)),
    ("full_numpy_int32_is_int", lambda: ember.full((2,), np.int32(3)), np.full(2, 3, np.int64)),
    ("full_numpy_float64_is_float", lambda: ember.full((2,), np.float64(0.5)),
     np.full(2, 0.5, np.float32)),
    ("full_zero_dim_tensor", lambda: ember.full((2,), ember.tensor(4, dtype=ember.int32)),
     np.full(2, 4, np.int64)),
    ("full_int_size", lambda: ember.full(3, 2.0), np.full(3, 2.0, np.float32)),
    ("full_dtype", lambda: ember.full((2,), 1, dtype=ember.float64), np.ones(2)),
    ("full_uint8_wraps", lambda: ember.full((2,), -1, dtype=ember.uint8),
     np.full(2, 255, np.uint8)),
    ("eye", lambda: ember.eye(3), np.eye(3, dtype=np.float32)),
    ("eye_rect", lambda: ember.eye(2, 4), np.eye(2, 4, dtype=np.float32)),
    ("eye_int", lambda: ember.eye(2, dtype=ember.int64), np.eye(2, dtype=np.int64)),
]


@pytest.mark.parametrize("make,expected", [c[1:] for c in FILLED], ids=[c[0] for c in FILLED])
def test_filled_tensors(make, expected):
    x = make()
    assert x.dtype.np == expected.dtype and x.shape == expected.shape
    np.testing.assert_array_equal(x.numpy(), expected)


def test_empty_shape_and_dtype():
    x = ember.empty(2, 3)
    assert x.shape == (2, 3) and x.dtype is ember.float32
    assert ember.empty(4, dtype=ember.int32).dtype is ember.int32


def test_negative_size_raises():
    with pytest.raises(RuntimeError, match="negative dimension"):
        ember.zeros(2, -1)


def _arange_ref(start, end, step):
    """PyTorch's documented length ceil((end - start) / step), values start + i * step."""
    n = max(math.ceil((end - start) / step), 0)
    return start + step * np.arange(n, dtype=np.float64)


ARANGE = [
    ("end_only", (5,), {}, ember.int64, [0, 1, 2, 3, 4]),
    ("start_end", (2, 6), {}, ember.int64, [2, 3, 4, 5]),
    ("int_step", (1, 10, 3), {}, ember.int64, [1, 4, 7]),
    ("negative_step", (5, 0, -1), {}, ember.int64, [5, 4, 3, 2, 1]),
    ("negative_int_step_2", (5, -2, -2), {}, ember.int64, [5, 3, 1, -1]),
    ("float_step", (0, 1, 0.25), {}, ember.float32, [0.0, 0.25, 0.5, 0.75]),
    ("float_end", (2.5,), {}, ember.float32, [0.0, 1.0, 2.0]),
    ("float_negative_step", (1.0, 0, -0.3), {}, ember.float32, _arange_ref(1.0, 0, -0.3)),
    ("tenth_steps_count", (0, 1, 0.1), {}, ember.float32, _arange_ref(0, 1, 0.1)),
    ("count_rounds_up", (1, 1.3, 0.1), {}, ember.float32, _arange_ref(1, 1.3, 0.1)),
    ("empty", (3, 3), {}, ember.int64, []),
    ("float64_dtype", (5,), {"dtype": ember.float64}, ember.float64, [0, 1, 2, 3, 4]),
    ("int_dtype_truncates_bounds", (0.5, 3.7, 1.5), {"dtype": ember.int64}, ember.int64,
     [0, 1, 2]),
    ("int_dtype_truncates_end", (0, 2.5, 1), {"dtype": ember.int64}, ember.int64, [0, 1]),
    ("uint8", (4,), {"dtype": ember.uint8}, ember.uint8, [0, 1, 2, 3]),
    ("numpy_int", (np.int64(3),), {}, ember.int64, [0, 1, 2]),
    ("zero_dim_tensor", (ember.tensor(2.5),), {}, ember.float32, [0.0, 1.0, 2.0]),
]


@pytest.mark.parametrize("args,kwargs,dtype,expected", [c[1:] for c in ARANGE],
                         ids=[c[0] for c in ARANGE])
def test_arange(args, kwargs, dtype, expected):
    x = ember.arange(*args, **kwargs)
    assert x.dtype is dtype
    np.testing.assert_allclose(x.numpy().astype(np.float64),
                               np.asarray(expected, dtype=dtype.np).astype(np.float64))


@settings(max_examples=100, deadline=None)
@given(st.integers(-50, 50), st.integers(-50, 50), st.integers(-7, 7).filter(bool),
       st.sampled_from([1, 4, 10]))
def test_arange_length_and_values_property(a, b, k, scale):
    start, end, step = a / scale, b / scale, k / scale
    if (end - start) * step < 0:
        with pytest.raises(RuntimeError, match="step sign"):
            ember.arange(start, end, step)
        return
    x = ember.arange(start, end, step, dtype=ember.float64)
    np.testing.assert_allclose(x.numpy(), _arange_ref(start, end, step), atol=1e-12)


@pytest.mark.parametrize("args,kwargs,msg", [
    ((0, 5, 0), {}, "nonzero"),
    ((0, 5, -1), {}, "step sign"),
    ((0, 2, 0.5), {"dtype": ember.int64}, "nonzero"),  # the step truncates to 0
    ((4,), {"dtype": ember.bool}, "bool"),
])
def test_arange_errors(args, kwargs, msg):
    with pytest.raises(RuntimeError, match=msg):
        ember.arange(*args, **kwargs)


@pytest.mark.parametrize("start,end,steps", [(0, 1, 5), (-2, 3, 7), (1, 0, 4), (2, 3, 1),
                                             (0, 1, 0)])
def test_linspace_matches_numpy(start, end, steps):
    x = ember.linspace(start, end, steps)
    assert x.dtype is ember.float32
    np.testing.assert_allclose(x.numpy(), np.linspace(start, end, steps), rtol=1e-6)
    np.testing.assert_allclose(ember.linspace(start, end, steps, dtype=ember.float64).numpy(),
                               np.linspace(start, end, steps), rtol=1e-15)


def test_linspace_int_dtype_truncates():
    np.testing.assert_array_equal(ember.linspace(0, 10, 4, dtype=ember.int64).numpy(),
                                  [0, 3, 6, 10])


def test_linspace_negative_steps_raises():
    with pytest.raises(RuntimeError, match="non-negative"):
        ember.linspace(0, 1, -1)


@pytest.mark.parametrize("start,end,steps,base", [(0, 2, 3, 10.0), (0, 3, 4, 2.0),
                                                  (-1, 1, 5, math.e)])
def test_logspace_matches_numpy(start, end, steps, base):
    x = ember.logspace(start, end, steps, base=base, dtype=ember.float64)
    np.testing.assert_allclose(x.numpy(), np.logspace(start, end, steps, base=base),
                               rtol=1e-14)
    assert ember.logspace(start, end, steps, base=base).dtype is ember.float32


LIKE = [
    ("zeros_like", lambda x: ember.zeros_like(x), ember.int32, [[0, 0, 0]]),
    ("ones_like", lambda x: ember.ones_like(x), ember.int32, [[1, 1, 1]]),
    ("ones_like_dtype", lambda x: ember.ones_like(x, dtype=ember.float64), ember.float64,
     [[1.0, 1.0, 1.0]]),
    ("full_like_truncates", lambda x: ember.full_like(x, 2.7), ember.int32, [[2, 2, 2]]),
    ("full_like_dtype", lambda x: ember.full_like(x, 2.5, dtype=ember.float32), ember.float32,
     [[2.5, 2.5, 2.5]]),
    ("new_zeros", lambda x: x.new_zeros(2), ember.int32, [0, 0]),
    ("new_zeros_tuple", lambda x: x.new_zeros((1, 2)), ember.int32, [[0, 0]]),
    ("new_ones", lambda x: x.new_ones(2, 1), ember.int32, [[1], [1]]),
    ("new_full", lambda x: x.new_full((2,), 3.7), ember.int32, [3, 3]),
    ("new_tensor", lambda x: x.new_tensor([1.5, -2.5]), ember.int32, [1, -2]),
    ("new_tensor_dtype", lambda x: x.new_tensor([1.5], dtype=ember.float64), ember.float64,
     [1.5]),
]


@pytest.mark.parametrize("make,dtype,expected", [c[1:] for c in LIKE], ids=[c[0] for c in LIKE])
def test_like_and_new_methods(make, dtype, expected):
    x = ember.tensor([[5, 6, 7]], dtype=ember.int32)
    y = make(x)
    assert y.dtype is dtype
    np.testing.assert_array_equal(y.numpy(), np.array(expected, dtype=dtype.np))


def test_empty_like_and_new_empty():
    x = ember.zeros(2, 3, dtype=ember.float64)
    assert ember.empty_like(x).shape == (2, 3) and ember.empty_like(x).dtype is ember.float64
    assert x.new_empty(4).shape == (4,) and x.new_empty(4).dtype is ember.float64


def test_like_requires_grad():
    x = ember.zeros(2)
    assert ember.zeros_like(x, requires_grad=True).requires_grad
    assert ember.randn_like(x, requires_grad=True).requires_grad


# ----- random: seeding, generators and state ------------------------------------------------

DRAWS = [
    ("rand", lambda g: ember.rand(3, 4, generator=g)),
    ("randn", lambda g: ember.randn(5, generator=g)),
    ("randint", lambda g: ember.randint(0, 100, (6,), generator=g)),
    ("randperm", lambda g: ember.randperm(10, generator=g)),
    ("normal", lambda g: ember.normal(2.0, 3.0, (4,), generator=g)),
    ("normal_tensors", lambda g: ember.normal(ember.zeros(3), ember.ones(3), generator=g)),
    ("bernoulli", lambda g: ember.bernoulli(ember.full((8,), 0.5), generator=g)),
    ("multinomial", lambda g: ember.multinomial(ember.tensor([0.2, 0.3, 0.5]), 2, generator=g)),
    ("rand_like", lambda g: ember.rand_like(ember.zeros(3), generator=g)),
    ("uniform_", lambda g: ember.zeros(4).uniform_(-1, 1, generator=g)),
    ("normal_", lambda g: ember.zeros(4).normal_(generator=g)),
]


@pytest.mark.parametrize("draw", [c[1] for c in DRAWS], ids=[c[0] for c in DRAWS])
def test_manual_seed_repeats_the_numbers(draw):
    ember.manual_seed(1234)
    first = draw(None).numpy().copy()
    second = draw(None).numpy().copy()
    ember.manual_seed(1234)
    np.testing.assert_array_equal(draw(None).numpy(), first)
    np.testing.assert_array_equal(draw(None).numpy(), second)


@pytest.mark.parametrize("draw", [c[1] for c in DRAWS], ids=[c[0] for c in DRAWS])
def test_generator_is_independent_of_the_default(draw):
    g = ember.Generator().manual_seed(99)
    ember.manual_seed(0)
    expected_default = ember.randn(4).numpy().copy()
    from_g = draw(g).numpy().copy()

    ember.manual_seed(0)
    g2 = ember.Generator().manual_seed(99)
    ember.randn(7)  # draws from the default do not move g2
    np.testing.assert_array_equal(draw(g2).numpy(), from_g)
    ember.manual_seed(0)
    draw(ember.Generator().manual_seed(5))  # draws from a generator do not move the default
    np.testing.assert_array_equal(ember.randn(4).numpy(), expected_default)


def test_different_seeds_differ():
    a = ember.rand(8, generator=ember.Generator().manual_seed(1)).numpy()
    b = ember.rand(8, generator=ember.Generator().manual_seed(2)).numpy()
    assert not np.array_equal(a, b)


def test_rng_state_restores_the_stream():
    ember.manual_seed(7)
    ember.rand(3)
    state = ember.get_rng_state()
    assert state.dtype is ember.uint8
    a = ember.randn(5).numpy().copy()
    b = ember.randint(0, 10, (5,)).numpy().copy()
    ember.set_rng_state(state)
    np.testing.assert_array_equal(ember.randn(5).numpy(), a)
    np.testing.assert_array_equal(ember.randint(0, 10, (5,)).numpy(), b)


def test_generator_state_and_seed():
    g = ember.Generator().manual_seed(11)
    assert g.initial_seed() == 11
    s = g.get_state()
    a = ember.rand(4, generator=g).numpy().copy()
    g.set_state(s)
    np.testing.assert_array_equal(ember.rand(4, generator=g).numpy(), a)
    assert ember.manual_seed(5).initial_seed() == 5 and ember.initial_seed() == 5


def test_set_rng_state_rejects_garbage():
    with pytest.raises(RuntimeError, match="get_state"):
        ember.set_rng_state(ember.tensor([1, 2, 3], dtype=ember.uint8))


# ----- random: statistics -------------------------------------------------------------------

N = 100_000


@pytest.mark.parametrize("dtype", [ember.float32, ember.float64])
def test_randn_moments(dtype):
    x = ember.randn(N, dtype=dtype)
    assert x.dtype is dtype
    a = x.numpy().astype(np.float64)
    # standard errors: mean 1/sqrt(N) ~ 0.003, variance sqrt(2/N) ~ 0.0045
    assert abs(a.mean()) < 0.02 and abs(a.var() - 1) < 0.03
    assert abs(np.mean(a ** 3)) < 0.05  # symmetric


def test_rand_moments_and_range():
    a = ember.rand(N).numpy().astype(np.float64)
    assert a.min() >= 0.0 and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.01 and abs(a.var() - 1 / 12) < 0.005


@pytest.mark.parametrize("dtype", [ember.float16, ember.bfloat16])
def test_rand_low_precision_dtypes(dtype):
    x = ember.rand(1000, dtype=dtype)
    assert x.dtype is dtype
    a = np.asarray(x.tolist())
    assert a.min() >= 0.0 and a.max() <= 1.0 and abs(a.mean() - 0.5) < 0.05


def test_normal_moments():
    a = ember.normal(3.0, 2.0, (N,)).numpy().astype(np.float64)
    assert abs(a.mean() - 3.0) < 0.04 and abs(a.std() - 2.0) < 0.04
    mean = ember.tensor([-5.0, 0.0, 5.0]).expand(N // 10, 3)
    std = ember.tensor([0.5, 1.0, 2.0])
    b = ember.normal(mean, std).numpy().astype(np.float64)
    np.testing.assert_allclose(b.mean(axis=0), [-5.0, 0.0, 5.0], atol=0.1)
    np.testing.assert_allclose(b.std(axis=0), [0.5, 1.0, 2.0], rtol=0.05)


def test_randint_range_and_uniformity():
    a = ember.randint(-3, 4, (N,)).numpy()
    assert a.dtype == np.int64 and a.min() == -3 and a.max() == 3
    counts = np.bincount(a + 3, minlength=7)
    np.testing.assert_allclose(counts / N, np.full(7, 1 / 7), atol=0.01)
    assert ember.randint(5, (3,)).numpy().max() < 5


def test_randint_bad_range():
    with pytest.raises(RuntimeError, match="less than"):
        ember.randint(5, 5, (2,))


@pytest.mark.parametrize("n", [0, 1, 17, 1000])
def test_randperm_is_a_permutation(n):
    p = ember.randperm(n)
    assert p.dtype is ember.int64
    np.testing.assert_array_equal(np.sort(p.numpy()), np.arange(n))


def test_bernoulli_frequencies():
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    draws = ember.bernoulli(ember.tensor(p, dtype=ember.float64).expand(N // 5, 5)).numpy()
    assert set(np.unique(draws)) <= {0.0, 1.0}
    np.testing.assert_allclose(draws.mean(axis=0), p, atol=0.01)
    assert ember.bernoulli(ember.zeros(4), p=1.0).tolist() == [1.0] * 4


def test_multinomial_with_replacement_frequencies():
    w = np.array([1.0, 0.0, 3.0, 6.0])  # unnormalised weights
    s = ember.multinomial(ember.tensor(w), N, replacement=True).numpy()
    np.testing.assert_allclose(np.bincount(s, minlength=4) / N, w / w.sum(), atol=0.01)


def test_multinomial_without_replacement_gives_distinct_indices():
    w = ember.rand(50, 20) + 0.01
    w[:, 3] = 0.0
    s = ember.multinomial(w, 19).numpy()
    assert s.shape == (50, 19) and s.dtype == np.int64
    for row in s:
        assert len(set(row)) == 19 and 3 not in row


@pytest.mark.parametrize("call,msg", [
    (lambda: ember.multinomial(ember.tensor([0.5, 0.5]), 3), "without replacement"),
    (lambda: ember.multinomial(ember.tensor([0.5, 0.0, 0.5]), 3), "non-zero"),
    (lambda: ember.multinomial(ember.tensor([-1.0, 2.0]), 1), "< 0"),
    (lambda: ember.multinomial(ember.zeros(2, 2, 2), 1), "1 or 2 dim"),
    (lambda: ember.bernoulli(ember.tensor([1.5])), r"\[0, 1\]"),
    (lambda: ember.zeros(2, dtype=ember.int64).uniform_(), "floating point"),
    (lambda: ember.zeros(2, dtype=ember.int64).normal_(), "floating point"),
    (lambda: ember.rand(2, dtype=ember.int64), "floating point"),
])
def test_random_errors(call, msg):
    with pytest.raises((RuntimeError, TypeError), match=msg):
        call()


# ----- type promotion -----------------------------------------------------------------------


def _t(dtype, zero_dim=False):
    return ember.ones((), dtype=dtype) if zero_dim else ember.ones(2, dtype=dtype)


i8, u8, i16, i32, i64 = ember.int8, ember.uint8, ember.int16, ember.int32, ember.int64
f16, bf16, f32, f64, b = ember.float16, ember.bfloat16, ember.float32, ember.float64, ember.bool

# PyTorch's rules: categories bool < integer < float; a Python number or a 0-d tensor only
# changes the result when it is of a higher category than the tensors with dims (a Python
# float then gives the default float32); within a category the types promote pairwise.
PROMOTION = [
    ("int64 + 2.5", lambda: _t(i64) + 2.5, f32),
    ("int64 + 2", lambda: _t(i64) + 2, i64),
    ("int32 + 2", lambda: _t(i32) + 2, i32),
    ("uint8 + 2", lambda: _t(u8) + 2, u8),
    ("uint8 + True", lambda: _t(u8) + True, u8),
    ("bool + 2", lambda: _t(b) + 2, i64),
    ("bool + 2.5", lambda: _t(b) + 2.5, f32),
    ("bool + True", lambda: _t(b) + True, b),
    ("bool + bool", lambda: _t(b) + _t(b), b),
    ("float16 + 2.5", lambda: _t(f16) + 2.5, f16),
    ("bfloat16 + 2", lambda: _t(bf16) + 2, bf16),
    ("float32 + float64 0-d", lambda: _t(f32) + _t(f64, True), f32),
    ("int32 + int64 0-d", lambda: _t(i32) + _t(i64, True), i32),
    ("uint8 + int8 0-d", lambda: _t(u8) + _t(i8, True), u8),
    ("int32 + float64 0-d", lambda: _t(i32) + _t(f64, True), f64),
    ("int64 + float16 0-d", lambda: _t(i64) + _t(f16, True), f16),
    ("int8 * bool 0-d", lambda: _t(i8) * _t(b, True), i8),
    ("bool * int8 0-d", lambda: _t(b) * _t(i8, True), i8),
    ("0-d float64 + 0-d float32", lambda: _t(f64, True) + _t(f32, True), f64),
    ("0-d int64 + 2.5", lambda: _t(i64, True) + 2.5, f32),
    ("0-d float16 + int64", lambda: _t(f16, True) + _t(i64), f16),
    ("uint8 + int8", lambda: _t(u8) + _t(i8), i16),
    ("uint8 + int16", lambda: _t(u8) + _t(i16), i16),
    ("int8 + int16", lambda: _t(i8) + _t(i16), i16),
    ("int32 + int64", lambda: _t(i32) + _t(i64), i64),
    ("bool + uint8", lambda: _t(b) + _t(u8), u8),
    ("bool + float16", lambda: _t(b) + _t(f16), f16),
    ("int64 + float16", lambda: _t(i64) + _t(f16), f16),
    ("int8 + bfloat16", lambda: _t(i8) + _t(bf16), bf16),
    ("float16 + bfloat16", lambda: _t(f16) + _t(bf16), f32),
    ("bfloat16 + float32", lambda: _t(bf16) + _t(f32), f32),
    ("float16 + float32", lambda: _t(f16) + _t(f32), f32),
    ("float32 + float64", lambda: _t(f32) + _t(f64), f64),
    ("int64 / int64", lambda: _t(i64) / _t(i64), f32),
    ("int32 / 2", lambda: _t(i32) / 2, f32),
    ("uint8 / uint8", lambda: _t(u8) / _t(u8), f32),
    ("bool / bool", lambda: _t(b) / _t(b), f32),
    ("float16 / 2", lambda: _t(f16) / 2, f16),
    ("int32 * 1.5", lambda: _t(i32) * 1.5, f32),
    ("int32 // 2", lambda: _t(i32) // 2, i32),
    ("int32 ** 2", lambda: _t(i32) ** 2, i32),
    ("2 ** int32", lambda: 2 ** _t(i32), i32),
    ("2.5 - uint8", lambda: 2.5 - _t(u8), f32),
    ("int64 sqrt", lambda: _t(i64).sqrt(), f32),
    ("int32 exp", lambda: _t(i32).exp(), f32),
    ("bool exp", lambda: _t(b).exp(), f32),
    ("float16 exp", lambda: _t(f16).exp(), f16),
    ("int32 == 1.5", lambda: _t(i32) == 1.5, b),
    ("maximum(int64, float32)", lambda: ember.maximum(_t(i64), _t(f32)), f32),
    ("where(int32, float64 0-d)", lambda: ember.where(_t(b), _t(i32), _t(f64, True)), f64),
    ("where(int32, 2.5)", lambda: ember.where(_t(b), _t(i32), 2.5), f32),
    ("int32 sum", lambda: _t(i32).sum(), i64),
    ("bool sum", lambda: _t(b).sum(), i64),
    ("uint8 sum", lambda: _t(u8).sum(), i64),
    ("float16 sum", lambda: _t(f16).sum(), f16),
    ("int32 cumsum", lambda: _t(i32).cumsum(0), i64),
    ("int32 prod", lambda: _t(i32).prod(), i64),
    ("int32 matmul", lambda: ember.ones(2, 2, dtype=i32) @ ember.ones(2, 2, dtype=i32), i32),
]


@pytest.mark.parametrize("compute,expected", [c[1:] for c in PROMOTION],
                         ids=[c[0] for c in PROMOTION])
def test_type_promotion(compute, expected):
    assert compute().dtype is expected


def test_int_tensor_to_float_power_is_float():
    assert (_t(i32) ** 2.0).dtype is f32


PROMOTE_TYPES = [
    (u8, i8, i16), (f16, bf16, f32), (i64, f16, f16), (b, u8, u8), (i32, i64, i64),
    (b, b, b), (bf16, i64, bf16), (f32, f64, f64), (u8, i16, i16), (i8, u8, i16),
]


@pytest.mark.parametrize("a,b_,expected", PROMOTE_TYPES)
def test_promote_types_table(a, b_, expected):
    assert ember.promote_types(a, b_) is expected
    assert ember.promote_types(b_, a) is expected


RESULT_TYPE = [
    ((_t(i32), 1.0), f32),
    ((_t(u8), _t(i8)), i16),
    ((2, 2.5), f32),
    ((_t(i32, True), 5), i32),
    ((_t(b, True), 5), i64),
    ((_t(f16, True), 2.5), f16),
    ((_t(i64), _t(f16, True)), f16),
    ((_t(f32), _t(f64, True)), f32),
]


@pytest.mark.parametrize("operands,expected", RESULT_TYPE)
def test_result_type_table(operands, expected):
    assert ember.result_type(*operands) is expected


def test_promotion_values_match_numpy():
    # the value is computed in the promoted dtype: uint8 + int8 in int16 does not wrap
    x = ember.tensor([200, 250], dtype=ember.uint8) + ember.tensor([100, 10], dtype=ember.int8)
    np.testing.assert_array_equal(x.numpy(), np.array([300, 260], dtype=np.int16))
    y = ember.tensor([3, 4]) / ember.tensor([2, 8])
    np.testing.assert_array_equal(y.numpy(), np.array([1.5, 0.5], dtype=np.float32))
    z = ember.tensor([250], dtype=ember.uint8) + 10  # stays uint8 and wraps, as in C
    np.testing.assert_array_equal(z.numpy(), np.array([4], dtype=np.uint8))
