"""Indexing: ``x[key]``, ``x[key] = v``, gather/scatter and friends.

Forward values are checked against NumPy's indexing (and ``np.take_along_axis``,
``np.add.at``...); gradients against central finite differences of a NumPy reference
function, in float64.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from finite_differences import numeric_grads  # noqa: E402

RNG = np.random.default_rng(1234)


# ----- helpers ------------------------------------------------------------------------------


def leaf(a):
    return ember.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def ember_key(key, kind):
    """``key`` (NumPy) with its arrays given as Python lists, arrays, or ember tensors."""
    def conv(k):
        if not isinstance(k, np.ndarray):
            return k
        if kind == "list":
            return k.tolist()
        if kind == "tensor":
            return ember.tensor(k)
        return k
    return tuple(conv(k) for k in key) if isinstance(key, tuple) else conv(key)


A = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)

# (id, NumPy key) — every case is valid for an array of A's shape (2, 3, 4)
GETITEM_CASES = [
    ("int", 1),
    ("neg_int", -1),
    ("ints", (1, -2, 3)),
    ("slice", slice(0, 1)),
    ("slice_step", (slice(None), slice(None, None, 2))),
    ("neg_step", (slice(None, None, -1), slice(2, 0, -1), slice(None, None, -3))),
    ("slice_past_end", (slice(-10, 10), slice(5, None))),
    ("ellipsis_tail", (Ellipsis, 1)),
    ("ellipsis_mid", (0, Ellipsis, slice(1, 3))),
    ("none", (None, 0, None, slice(None), None)),
    ("ellipsis_none", (Ellipsis, None)),
    ("int_list", np.array([1, 0, 1])),
    ("int_array_2d", np.array([[0, 1], [1, 1]])),
    ("neg_int_list", (slice(None), np.array([-1, 0, -3]))),
    ("two_arrays", (np.array([0, 1, 1]), np.array([2, 0, 2]))),
    ("broadcast_arrays", (np.array([[0], [1]]), slice(None), np.array([0, 3, 1]))),
    ("mixed_basic_advanced", (slice(1, None), np.array([0, 2]), slice(None, None, 2))),
    ("advanced_split_by_slice", (np.array([0, 1]), slice(None), np.array([1, 2]))),
    ("int_next_to_array", (slice(None), 1, np.array([3, 0]))),
    ("bool_mask_full", A % 3 == 0),
    ("bool_mask_leading", np.array([[True, False, True], [False, False, True]])),
    ("bool_mask_dim1", (slice(None), np.array([True, False, True]))),
    ("bool_mask_and_ellipsis", (Ellipsis, np.array([False, True, True, False]))),
    ("empty_int_list", np.array([], dtype=np.int64)),
    ("bool_scalar_true", True),
    ("bool_scalar_false", False),
]


@pytest.mark.parametrize("kind", ["ndarray", "list", "tensor"])
@pytest.mark.parametrize("key", [c[1] for c in GETITEM_CASES], ids=[c[0] for c in GETITEM_CASES])
def test_getitem_matches_numpy(key, kind):
    if kind == "list" and isinstance(key, np.ndarray) and key.dtype == np.bool_ and key.ndim > 1:
        pytest.skip("a nested list of bools is a mask only as an array/tensor")
    x = ember.tensor(A)
    out = x[ember_key(key, kind)]
    np.testing.assert_array_equal(out.numpy(), A[key])
    assert out.dtype == ember.float64


# Where PyTorch and NumPy disagree, ember follows PyTorch: ints select first (NumPy counts
# them as advanced indices and moves the array dims to the front), and an ``...`` that stands
# for no dims does not separate the arrays. Expected values are spelled out in NumPy.
TORCH_LAYOUT_CASES = [
    ("int_slice_array", (1, slice(None), np.array([3, 0])), lambda a: a[1][:, [3, 0]]),
    ("array_slice_int", (np.array([1, 0, 1]), slice(None), 2), lambda a: a[:, :, 2][[1, 0, 1]]),
    ("int_none_array", (0, None, np.array([2, 2])), lambda a: a[0][None][:, [2, 2]]),
    ("mask_slice_int", (np.array([True, True]), slice(0, 2), 3),
     lambda a: a[:, 0:2, 3][[True, True]]),
    ("empty_ellipsis_between_arrays", (slice(None), np.array([0, 2]), Ellipsis, np.array([1, 3])),
     lambda a: np.stack([a[:, 0, 1], a[:, 2, 3]], axis=1)),
]


@pytest.mark.parametrize("key,expected", [c[1:] for c in TORCH_LAYOUT_CASES],
                         ids=[c[0] for c in TORCH_LAYOUT_CASES])
def test_getitem_follows_pytorch_layout(key, expected):
    np.testing.assert_array_equal(ember.tensor(A)[ember_key(key, "tensor")].numpy(),
                                  expected(A))


@pytest.mark.parametrize("key,expected", [c[1:] for c in TORCH_LAYOUT_CASES],
                         ids=[c[0] for c in TORCH_LAYOUT_CASES])
def test_setitem_follows_pytorch_layout(key, expected):
    # every selected element is given its own value, negated: a wrong layout would move
    # values between elements
    b = A + 1
    x = ember.tensor(b)
    x[ember_key(key, "tensor")] = ember.tensor(-expected(b))
    got = x.numpy()
    np.testing.assert_array_equal(np.abs(got), b)
    np.testing.assert_array_equal(np.sort(-got[got < 0]), np.unique(expected(b)))


def test_getitem_zero_dim_long_tensor_is_an_int():
    x = ember.tensor(A)
    np.testing.assert_array_equal(x[ember.tensor(1)].numpy(), A[1])
    np.testing.assert_array_equal(x[:, ember.tensor(-1)].numpy(), A[:, -1])


def test_getitem_numpy_integer_scalars():
    x = ember.tensor(A)
    np.testing.assert_array_equal(x[np.int64(1), np.int32(2)].numpy(), A[1, 2])


def test_getitem_tuple_inside_key_is_a_sequence_index():
    # PyTorch treats a tuple nested in the key like a list of indices
    x = ember.tensor(A)
    np.testing.assert_array_equal(x[(0, 1), ].numpy(), A[[0, 1]])
    np.testing.assert_array_equal(x[:, (2, 0)].numpy(), A[:, [2, 0]])


def test_basic_getitem_is_a_view():
    base = np.zeros((3, 4))
    x = ember.from_numpy(base)
    v = x[1, ::2]
    v.fill_(7.0)
    expected = np.zeros((3, 4))
    expected[1, ::2] = 7.0
    np.testing.assert_array_equal(base, expected)


def test_advanced_getitem_is_a_copy():
    base = np.zeros((3, 4))
    x = ember.from_numpy(base)
    c = x[[0, 2]]
    c.fill_(1.0)
    np.testing.assert_array_equal(base, np.zeros((3, 4)))


def test_getitem_int_dtypes_keep_dtype():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    out = ember.tensor(a)[1:, [0, 3]]
    assert out.dtype == ember.int32
    np.testing.assert_array_equal(out.numpy(), a[1:, [0, 3]])


# ----- getitem gradients --------------------------------------------------------------------

GRAD_KEYS = [
    ("int", (1,)),
    ("neg_step", (slice(None, None, -1), slice(2, None, -2))),
    ("ellipsis_none", (Ellipsis, None, 2)),
    ("repeated_ints", np.array([1, 0, 1, 1])),
    ("repeated_pairs", (np.array([0, 1, 0, 0]), slice(None), np.array([3, 3, 3, 1]))),
    ("mixed", (slice(None), np.array([2, 2, 0]), slice(1, None))),
    ("mask", A > 10.5),
    ("mask_dim1", (slice(None), np.array([True, False, True]))),
]


@pytest.mark.parametrize("key", [c[1] for c in GRAD_KEYS], ids=[c[0] for c in GRAD_KEYS])
def test_getitem_gradient_matches_finite_differences(key):
    a = RNG.standard_normal(A.shape)
    w = RNG.standard_normal(a[key].shape)

    def ref(a):
        return float((np.sin(a[key]) * w).sum())

    x = leaf(a)
    (ember.sin(x[ember_key(key, "tensor")]) * ember.tensor(w)).sum().backward()
    (expected,) = numeric_grads(ref, a)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6, atol=1e-8)


def test_getitem_repeated_index_gradient_counts_repeats():
    x = leaf(np.zeros(4))
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0, 0.0])


def test_getitem_double_backward():
    a = RNG.standard_normal(5)
    x = leaf(a)
    y = (x[[0, 0, 3]] ** 3).sum()
    (g,) = ember.autograd.grad(y, x, create_graph=True)
    g.sum().backward()
    expected = np.zeros(5)
    np.add.at(expected, [0, 0, 3], 6 * a[[0, 0, 3]])
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)


# ----- hypothesis: random basic keys --------------------------------------------------------


@st.composite
def shapes_and_basic_keys(draw):
    """A shape and a valid basic key for it: ints, slices (any start/stop/step), None, ...."""
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=4)))
    ndim = len(shape)
    use_ellipsis = draw(st.booleans())
    n_real = draw(st.integers(0, ndim)) if use_ellipsis else ndim - draw(
        st.integers(0, ndim)) * draw(st.booleans())
    n_before = draw(st.integers(0, n_real)) if use_ellipsis else n_real
    dims = list(range(n_before)) + list(range(ndim - (n_real - n_before), ndim))

    def part(size):
        if size and draw(st.booleans()):
            return draw(st.integers(-size, size - 1))
        bound = st.one_of(st.none(), st.integers(-size - 2, size + 2))
        step = st.one_of(st.none(), st.integers(-3, 3).filter(bool))
        return slice(draw(bound), draw(bound), draw(step))

    parts = [part(shape[d]) for d in dims]
    if use_ellipsis:
        parts.insert(n_before, Ellipsis)
    for _ in range(draw(st.integers(0, 2))):
        parts.insert(draw(st.integers(0, len(parts))), None)
    return shape, tuple(parts)


@settings(max_examples=150, deadline=None)
@given(shapes_and_basic_keys())
def test_basic_getitem_property(shape_key):
    shape, key = shape_key
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    np.testing.assert_array_equal(ember.tensor(a)[key].numpy(), a[key])


@settings(max_examples=60, deadline=None)
@given(shapes_and_basic_keys())
def test_basic_getitem_gradient_property(shape_key):
    # basic keys never repeat an element, so the gradient is w placed into zeros at key
    shape, key = shape_key
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    w = np.arange(a[key].size, dtype=np.float64).reshape(a[key].shape) + 1
    x = leaf(a)
    (x[key] * ember.tensor(w)).sum().backward()
    expected = np.zeros(shape)
    expected[key] = w
    np.testing.assert_array_equal(x.grad.numpy() if x.grad is not None else np.zeros(shape),
                                  expected)


@settings(max_examples=100, deadline=None)
@given(shapes_and_basic_keys(), st.floats(-5, 5))
def test_basic_setitem_property(shape_key, value):
    shape, key = shape_key
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    x = ember.tensor(a)
    x[key] = value
    a[key] = value
    np.testing.assert_array_equal(x.numpy(), a)


def torch_rule(a, key):
    """PyTorch's reading of a key without ``...``: ints and slices first, then the arrays."""
    first = tuple(slice(None) if isinstance(k, np.ndarray) else k for k in key)
    then = tuple(k if isinstance(k, np.ndarray) else slice(None) for k in key
                 if not isinstance(k, int))
    return a[first][then]


@st.composite
def shapes_and_mixed_keys(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    n_idx = draw(st.integers(1, 3))
    parts = []
    for size in shape:
        kind = draw(st.sampled_from(["int", "slice", "array"]))
        if kind == "int":
            parts.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            parts.append(slice(draw(st.none() | st.integers(-size, size)), None,
                               draw(st.sampled_from([None, 1, 2, -1]))))
        else:
            parts.append(np.array(draw(st.lists(st.integers(-size, size - 1), min_size=n_idx,
                                                max_size=n_idx))))
    for _ in range(draw(st.integers(0, 1))):
        parts.insert(draw(st.integers(0, len(parts))), None)
    return shape, tuple(parts)


@settings(max_examples=150, deadline=None)
@given(shapes_and_mixed_keys())
def test_mixed_getitem_setitem_property(shape_key):
    shape, key = shape_key
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) + 1
    ref = torch_rule(a, key)
    np.testing.assert_array_equal(ember.tensor(a)[ember_key(key, "tensor")].numpy(), ref)
    x = ember.tensor(a)
    x[ember_key(key, "tensor")] = ember.tensor(-ref)
    got = x.numpy()
    np.testing.assert_array_equal(np.abs(got), a)
    np.testing.assert_array_equal(np.sort(-got[got < 0]), np.unique(ref))


# ----- index errors -------------------------------------------------------------------------

ERROR_CASES = [
    ("float_tensor", lambda x: x[ember.tensor([0.0, 1.0])], IndexError,
     ["tensors used as indices must be long", "float32"]),
    ("float_scalar", lambda x: x[1.5], IndexError, ["valid indices", "float"]),
    ("int_out_of_range", lambda x: x[:, 3], IndexError,
     ["index 3 is out of bounds for dimension 1 with size 3"]),
    ("neg_int_out_of_range", lambda x: x[-3], IndexError,
     ["index -3 is out of bounds for dimension 0 with size 2"]),
    ("list_out_of_range", lambda x: x[..., [0, 4]], IndexError,
     ["index 4 is out of bounds for dimension 2 with size 4"]),
    ("tensor_out_of_range", lambda x: x[ember.tensor([1, 2])], IndexError,
     ["index 2 is out of bounds for dimension 0 with size 2"]),
    ("too_many", lambda x: x[0, 0, 0, 0], IndexError,
     ["too many indices for tensor of dimension 3"]),
    ("too_many_with_none", lambda x: x[None, 0, :, :, 1], IndexError,
     ["too many indices for tensor of dimension 3"]),
    ("mask_shape", lambda x: x[ember.tensor([True, False, True])], IndexError,
     ["mask", "(3,)", "(2, 3, 4)"]),
    ("mask_shape_dim1", lambda x: x[:, ember.tensor([True, False])], IndexError,
     ["mask", "(2,)", "index 1"]),
]


@pytest.mark.parametrize("fn,exc,parts", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_index_errors_are_clear(fn, exc, parts):
    x = ember.tensor(A.astype(np.float32))
    with pytest.raises(exc) as info:
        fn(x)
    for p in parts:
        assert p in str(info.value)


def test_setitem_out_of_range_names_dim_and_size():
    x = ember.zeros(2, 3)
    with pytest.raises(IndexError, match="out of bounds for dimension 1 with size 3"):
        x[0, 5] = 1.0


# ----- setitem ------------------------------------------------------------------------------

SETITEM_CASES = [
    ("int_scalar", 1, 5.0),
    ("slice_scalar", (slice(None), slice(1, None, 2)), -1.0),
    ("neg_step_scalar", (slice(None, None, -1), 0), 3.0),
    ("ellipsis_row", (Ellipsis, 2), np.arange(3.0)),
    ("broadcast_row", (slice(None), slice(None), 1), np.array([[10.0], [20.0]])),
    ("broadcast_plane", 0, np.arange(4.0)),
    ("int_list", np.array([1, 0]), np.arange(24.0).reshape(2, 3, 4) * -1),
    ("pairs", (np.array([0, 1]), np.array([2, 0])), np.array([7.0, 8.0, 9.0, 10.0])),
    ("mask_scalar", A > 7.5, 0.0),
    ("mask_values", A % 5 == 0, np.arange(5.0) + 100),
    ("mask_rows", np.array([[True, False, True], [False, True, False]]), np.arange(4.0)),
    ("none", (None, 1, 0), 42.0),
]


@pytest.mark.parametrize("value_kind", ["python_or_array", "tensor"])
@pytest.mark.parametrize("key,value", [c[1:] for c in SETITEM_CASES],
                         ids=[c[0] for c in SETITEM_CASES])
def test_setitem_matches_numpy(key, value, value_kind):
    a = A.copy()
    x = ember.tensor(a)
    v = ember.tensor(value) if value_kind == "tensor" else value
    x[ember_key(key, "tensor")] = v
    a[key] = value
    np.testing.assert_array_equal(x.numpy(), a)


def test_setitem_casts_value_to_tensor_dtype():
    x = ember.zeros(4, dtype=ember.int64)
    x[1:3] = ember.tensor([1.7, -2.7])
    np.testing.assert_array_equal(x.numpy(), np.array([0, 1, -2, 0]))
    assert x.dtype == ember.int64


def test_setitem_writes_through_to_shared_memory():
    base = np.zeros((2, 3))
    x = ember.from_numpy(base)
    x[:, 1] = 4.0
    np.testing.assert_array_equal(base[:, 1], [4.0, 4.0])


def test_setitem_bad_value_shape_is_clear():
    x = ember.zeros(2, 3)
    with pytest.raises((ValueError, RuntimeError), match=r"\(4,\)"):
        x[0] = ember.ones(4)


SETITEM_GRAD_CASES = [
    ("int", 1, (3, 4)),
    ("slice_broadcast", (slice(None), slice(0, 2)), (4,)),
    ("neg_step", (slice(None, None, -1), slice(None), 0), (2, 3)),
    ("mask", A > 12.5, (11,)),
    ("mask_broadcast_scalar", A < 4.5, ()),
    ("advanced", (np.array([0, 1]), np.array([2, 0])), (4,)),
]


@pytest.mark.parametrize("key,vshape", [c[1:] for c in SETITEM_GRAD_CASES],
                         ids=[c[0] for c in SETITEM_GRAD_CASES])
def test_setitem_gradient_matches_finite_differences(key, vshape):
    a = RNG.standard_normal(A.shape)
    b = RNG.standard_normal(vshape)
    w = RNG.standard_normal(A.shape)

    def ref(a, b):
        y = a * 2
        y[key] = b * 3
        return float((np.sin(y) * w).sum())

    x, v = leaf(a), leaf(b)
    y = x * 2
    y[ember_key(key, "tensor")] = v * 3
    (ember.sin(y) * ember.tensor(w)).sum().backward()
    ga, gb = numeric_grads(ref, a, b)
    np.testing.assert_allclose(x.grad.numpy(), ga, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(v.grad.numpy(), gb, rtol=1e-6, atol=1e-8)


def test_setitem_into_plain_tensor_makes_it_require_grad():
    b = RNG.standard_normal(3)
    v = leaf(b)
    x = ember.zeros(2, 3, dtype=ember.float64)
    x[1] = v
    assert x.requires_grad
    (x * x).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), 2 * b)


def test_setitem_on_leaf_requiring_grad_raises():
    x = leaf(np.zeros(3))
    with pytest.raises(RuntimeError, match="leaf"):
        x[0] = 1.0
    with ember.no_grad():
        x[0] = 1.0
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 0.0, 0.0])


# ----- gather / scatter and friends ---------------------------------------------------------


def _along(index, dim):
    """NumPy key addressing ``out[..., index[i,j,..], ...]`` (index replacing axis ``dim``)."""
    key = list(np.indices(index.shape, sparse=True))
    key[dim] = index
    return tuple(key)


def scatter_ref(a, dim, index, src):
    out = a.copy()
    for pos in np.ndindex(index.shape):
        tgt = list(pos)
        tgt[dim] = index[pos]
        out[tuple(tgt)] = src[pos]
    return out


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_matches_take_along_axis(dim):
    a = RNG.standard_normal((3, 4))
    idx_shape = (5, 4) if dim == 0 else (3, 6)
    n = a.shape[dim]
    idx = RNG.integers(0, n, idx_shape)
    out = ember.gather(ember.tensor(a), dim, ember.tensor(idx))
    np.testing.assert_array_equal(out.numpy(), np.take_along_axis(a, idx, axis=dim))


def test_gather_index_smaller_than_input_reads_leading_block():
    a = RNG.standard_normal((4, 5))
    idx = np.array([[0, 4], [3, 3]])
    out = ember.tensor(a).gather(1, ember.tensor(idx))
    np.testing.assert_array_equal(out.numpy(), np.take_along_axis(a[:2], idx, axis=1))


def test_gather_gradient_accumulates():
    a = RNG.standard_normal((3, 4))
    idx = np.array([[0, 0, 3], [1, 1, 1], [2, 0, 2]])
    w = RNG.standard_normal(idx.shape)

    def ref(a):
        return float((np.take_along_axis(a, idx, axis=1) ** 2 * w).sum())

    x = leaf(a)
    (x.gather(1, ember.tensor(idx)) ** 2 * ember.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), numeric_grads(ref, a)[0], rtol=1e-6)


@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_matches_loop_reference(dim):
    a = RNG.standard_normal((4, 5))
    # distinct targets along dim, so the result does not depend on write order
    if dim == 0:
        idx = np.stack([RNG.permutation(4)[:3] for _ in range(5)], axis=1)
    else:
        idx = np.stack([RNG.permutation(5)[:3] for _ in range(4)], axis=0)
    src = RNG.standard_normal((6, 6))
    out = ember.scatter(ember.tensor(a), dim, ember.tensor(idx), ember.tensor(src))
    src_block = src[tuple(slice(0, s) for s in idx.shape)]
    np.testing.assert_array_equal(out.numpy(), scatter_ref(a, dim, idx, src_block))


def test_scatter_scalar_value():
    a = np.zeros((2, 4))
    idx = np.array([[1, 3], [0, 0]])
    out = ember.tensor(a).scatter(1, ember.tensor(idx), 2.5)
    np.testing.assert_array_equal(out.numpy(), scatter_ref(a, 1, idx, np.full(idx.shape, 2.5)))


@pytest.mark.parametrize("reduce,ufunc", [("add", np.add), ("multiply", np.multiply)])
def test_scatter_reduce_matches_ufunc_at(reduce, ufunc):
    a = RNG.standard_normal((3, 4))
    idx = np.array([[0, 0, 2, 0], [1, 0, 1, 1]])
    src = RNG.standard_normal(idx.shape)
    out = ember.scatter(ember.tensor(a), 0, ember.tensor(idx), ember.tensor(src), reduce=reduce)
    expected = a.copy()
    ufunc.at(expected, _along(idx, 0), src)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)


def test_scatter_gradient():
    a = RNG.standard_normal((3, 4))
    idx = np.array([[2, 0, 1, 1], [0, 1, 2, 0]])
    b = RNG.standard_normal(idx.shape)
    w = RNG.standard_normal(a.shape)

    def ref(a, b):
        return float((np.tanh(scatter_ref(a, 0, idx, b)) * w).sum())

    x, s = leaf(a), leaf(b)
    (ember.tanh(x.scatter(0, ember.tensor(idx), s)) * ember.tensor(w)).sum().backward()
    ga, gb = numeric_grads(ref, a, b)
    np.testing.assert_allclose(x.grad.numpy(), ga, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s.grad.numpy(), gb, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_add_matches_add_at_and_gradient(dim):
    a = RNG.standard_normal((3, 4))
    idx = RNG.integers(0, a.shape[dim], (3, 4))
    b = RNG.standard_normal(idx.shape)
    w = RNG.standard_normal(a.shape)

    def fwd(a, b):
        out = a.copy()
        np.add.at(out, _along(idx, dim), b)
        return out

    x, s = leaf(a), leaf(b)
    out = x.scatter_add(dim, ember.tensor(idx), s)
    np.testing.assert_allclose(out.detach().numpy(), fwd(a, b), rtol=1e-12)
    (out ** 2 * ember.tensor(w)).sum().backward()
    ga, gb = numeric_grads(lambda a, b: float((fwd(a, b) ** 2 * w).sum()), a, b)
    np.testing.assert_allclose(x.grad.numpy(), ga, rtol=1e-6)
    np.testing.assert_allclose(s.grad.numpy(), gb, rtol=1e-6)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select_matches_take_and_gradient(dim):
    a = RNG.standard_normal((3, 4))
    idx = np.array([0, 2, 2, -1 % a.shape[dim]])
    w = RNG.standard_normal(np.take(a, idx, axis=dim).shape)
    x = leaf(a)
    out = ember.index_select(x, dim, ember.tensor(idx))
    np.testing.assert_array_equal(out.detach().numpy(), np.take(a, idx, axis=dim))
    (out.sin() * ember.tensor(w)).sum().backward()
    (g,) = numeric_grads(lambda a: float((np.sin(np.take(a, idx, axis=dim)) * w).sum()), a)
    np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("alpha", [1, 2.5])
def test_index_add_matches_add_at_and_gradient(alpha):
    a = RNG.standard_normal((4, 3))
    idx = np.array([0, 3, 0, 0, 2])
    b = RNG.standard_normal((5, 3))
    w = RNG.standard_normal(a.shape)

    def fwd(a, b):
        out = a.copy()
        np.add.at(out, idx, alpha * b)
        return out

    x, s = leaf(a), leaf(b)
    out = ember.index_add(x, 0, ember.tensor(idx), s, alpha=alpha)
    np.testing.assert_allclose(out.detach().numpy(), fwd(a, b), rtol=1e-12)
    (out.cos() * ember.tensor(w)).sum().backward()
    ga, gb = numeric_grads(lambda a, b: float((np.cos(fwd(a, b)) * w).sum()), a, b)
    np.testing.assert_allclose(x.grad.numpy(), ga, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s.grad.numpy(), gb, rtol=1e-6, atol=1e-9)


def test_index_add_along_dim1():
    a = np.zeros((2, 4))
    idx = np.array([3, 3, 1])
    b = np.arange(6.0).reshape(2, 3)
    out = ember.tensor(a).index_add(1, ember.tensor(idx), ember.tensor(b))
    expected = a.copy()
    np.add.at(expected, (slice(None), idx), b)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_take_along_dim_broadcasts_like_numpy():
    a = RNG.standard_normal((3, 1, 5))
    idx = RNG.integers(0, 5, (1, 4, 2))
    out = ember.take_along_dim(ember.tensor(a), ember.tensor(idx), dim=2)
    ref = np.take_along_axis(np.broadcast_to(a, (3, 4, 5)), np.broadcast_to(idx, (3, 4, 2)), 2)
    np.testing.assert_array_equal(out.numpy(), ref)


def test_take_along_dim_without_dim_flattens():
    a = RNG.standard_normal((3, 4))
    idx = np.array([11, 0, 5, 5])
    out = ember.take_along_dim(ember.tensor(a), ember.tensor(idx))
    np.testing.assert_array_equal(out.numpy(), a.reshape(-1)[idx])


def test_take_along_dim_gradient():
    a = RNG.standard_normal((3, 4))
    idx = np.argsort(a, axis=1)[:, :2]
    x = leaf(a)
    (ember.take_along_dim(x, ember.tensor(idx), dim=1) ** 2).sum().backward()
    (g,) = numeric_grads(lambda a: float((np.take_along_axis(a, idx, 1) ** 2).sum()), a)
    np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-6)


@pytest.mark.parametrize("mask_shape", [(3, 4), (4,), (3, 1)])
def test_masked_fill_matches_where_and_gradient(mask_shape):
    a = RNG.standard_normal((3, 4))
    mask = RNG.random(mask_shape) > 0.5
    x = leaf(a)
    out = x.masked_fill(ember.tensor(mask), -2.0)
    np.testing.assert_array_equal(out.detach().numpy(), np.where(mask, -2.0, a))
    (out ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(mask, 0.0, 2 * a))


def test_masked_fill_zero_dim_tensor_value_keeps_dtype():
    x = ember.zeros(2, 2, dtype=ember.int64)
    out = x.masked_fill(ember.tensor([[True, False], [False, True]]), ember.tensor(3.9))
    np.testing.assert_array_equal(out.numpy(), [[3, 0], [0, 3]])
    assert out.dtype == ember.int64


def test_masked_fill_errors():
    x = ember.zeros(2, 3)
    with pytest.raises(RuntimeError, match="broadcastable"):
        x.masked_fill(ember.tensor([True, False]), 1.0)
    with pytest.raises(TypeError, match="bool mask"):
        x.masked_fill(ember.tensor([1, 0, 1]), 1.0)


@pytest.mark.parametrize("mask_shape", [(3, 4), (4,), (2, 3, 1)])
def test_masked_select_matches_numpy_and_gradient(mask_shape):
    a = RNG.standard_normal((3, 4))
    mask = RNG.random(mask_shape) > 0.4
    shape = np.broadcast_shapes(a.shape, mask.shape)
    ref = np.broadcast_to(a, shape)[np.broadcast_to(mask, shape)]
    x = leaf(a)
    out = ember.masked_select(x, ember.tensor(mask))
    np.testing.assert_array_equal(out.detach().numpy(), ref)
    (out ** 2).sum().backward()
    (g,) = numeric_grads(
        lambda a: float((np.broadcast_to(a, shape)[np.broadcast_to(mask, shape)] ** 2).sum()),
        a)
    np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-6)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 2), (0, 3)])
def test_nonzero_matches_argwhere(shape):
    a = (RNG.random(shape) > 0.5) * RNG.integers(1, 5, shape)
    out = ember.nonzero(ember.tensor(a))
    assert out.dtype == ember.int64
    np.testing.assert_array_equal(out.numpy(), np.argwhere(a).reshape(-1, len(shape)))
    tup = ember.tensor(a).nonzero(as_tuple=True)
    assert len(tup) == len(shape)
    for got, want in zip(tup, np.nonzero(a)):
        np.testing.assert_array_equal(got.numpy(), want)


def test_nonzero_of_zero_dim():
    assert tuple(ember.nonzero(ember.tensor(3.0)).shape) == (1, 0)
    assert tuple(ember.nonzero(ember.tensor(0.0)).shape) == (0, 0)


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_matches_numpy_and_gradient(accumulate):
    a = RNG.standard_normal((4, 3))
    rows = np.array([0, 2, 0, 3]) if accumulate else np.array([0, 2, 1, 3])
    cols = np.array([1, 1, 1, 0])
    b = RNG.standard_normal(4)
    w = RNG.standard_normal(a.shape)

    def fwd(a, b):
        out = a.copy()
        if accumulate:
            np.add.at(out, (rows, cols), b)
        else:
            out[rows, cols] = b
        return out

    x, v = leaf(a), leaf(b)
    out = ember.index_put(x, (ember.tensor(rows), ember.tensor(cols)), v, accumulate=accumulate)
    np.testing.assert_allclose(out.detach().numpy(), fwd(a, b), rtol=1e-12)
    (out.exp() * ember.tensor(w)).sum().backward()
    ga, gb = numeric_grads(lambda a, b: float((np.exp(fwd(a, b)) * w).sum()), a, b)
    np.testing.assert_allclose(x.grad.numpy(), ga, rtol=1e-6)
    np.testing.assert_allclose(v.grad.numpy(), gb, rtol=1e-6)


def test_index_put_inplace_accumulate():
    x = ember.zeros(5, dtype=ember.float64)
    x.index_put_((ember.tensor([1, 1, 4]),), ember.tensor([1.0, 2.0, 3.0]), accumulate=True)
    np.testing.assert_array_equal(x.numpy(), [0.0, 3.0, 0.0, 0.0, 3.0])


GATHER_ERRORS = [
    ("gather_float_index", lambda x: x.gather(1, ember.tensor([[0.0]])), IndexError,
     "gather"),
    ("gather_dim_count", lambda x: x.gather(1, ember.tensor([0, 1])), RuntimeError,
     "same number of dimensions"),
    ("gather_out_of_range", lambda x: x.gather(1, ember.tensor([[0, 3]])), IndexError,
     "out of bounds for dimension 1 with size 3"),
    ("gather_bad_dim", lambda x: x.gather(2, ember.tensor([[0]])), IndexError,
     "dimension out of range"),
    ("scatter_out_of_range", lambda x: x.scatter(0, ember.tensor([[2]]), 1.0), IndexError,
     "out of bounds for dimension 0 with size 2"),
    ("index_select_out_of_range", lambda x: x.index_select(1, ember.tensor([3])), IndexError,
     "index_select"),
    ("index_select_2d", lambda x: x.index_select(0, ember.tensor([[0]])), IndexError,
     "vector"),
    ("index_add_out_of_range", lambda x: x.index_add(0, ember.tensor([2]), ember.ones(1, 3)),
     IndexError, "out of bounds for dimension 0 with size 2"),
    ("index_add_source_size", lambda x: x.index_add(0, ember.tensor([0]), ember.ones(2, 3)),
     RuntimeError, r"number of indices \(1\) should equal source.size\(0\)"),
]


@pytest.mark.parametrize("fn,exc,msg", [c[1:] for c in GATHER_ERRORS],
                         ids=[c[0] for c in GATHER_ERRORS])
def test_gather_family_errors(fn, exc, msg):
    x = ember.zeros(2, 3)
    with pytest.raises(exc, match=msg):
        fn(x)
