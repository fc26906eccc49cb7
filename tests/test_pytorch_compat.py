"""The PyTorch names and behaviours that ``import ember as torch`` scripts rely on, each checked
against NumPy or explicit expected values (and against PyTorch itself where it is installed).

The ops of the op families (meshgrid, diff, searchsorted, addmm, quantile...) have their rows in
tests/ops/test_op_table.py; this file covers the rest: top-level names (cuda, finfo, Size,
typed constructors), Tensor methods, ``ember.linalg``, the vision functions and layers,
``autograd.Function``, module backward hooks, ``pad_sequence`` and ``EmbeddingBag``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import ember
import ember.nn as nn
import ember.nn.functional as F


def _fd(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar ``f`` (NumPy -> float) at ``x`` (float64)."""
    g = np.zeros_like(x)
    for i in range(x.size):
        hi, lo = x.copy(), x.copy()
        hi.flat[i] += eps
        lo.flat[i] -= eps
        g.flat[i] = (f(hi) - f(lo)) / (2 * eps)
    return g


def _grad(fn, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """d sum(weights * fn(x)) / dx through ember's autograd."""
    t = ember.tensor(x, requires_grad=True)
    (fn(t) * ember.tensor(weights)).sum().backward()
    return t.grad.numpy()


# ----- top-level names ----------------------------------------------------------------------


def test_cuda_is_absent_and_the_device_idiom_picks_the_cpu():
    assert ember.cuda.is_available() is False
    assert ember.cuda.device_count() == 0
    assert ember.cuda.manual_seed(0) is None and ember.cuda.manual_seed_all(0) is None
    assert ember.cuda.empty_cache() is None
    device = ember.device("cuda" if ember.cuda.is_available() else "cpu")
    assert ember.ones(2).to(device).device == ember.device("cpu")


@pytest.mark.parametrize("move", [lambda: ember.ones(2).cuda(),
                                  lambda: nn.Linear(2, 2).cuda(),
                                  lambda: ember.ones(2).cuda(0)])
def test_cuda_moves_say_there_is_no_cuda_backend(move):
    with pytest.raises(RuntimeError, match="cuda"):
        move()


@pytest.mark.parametrize("dtype, np_dtype", [(ember.float16, np.float16),
                                             (ember.float32, np.float32),
                                             (ember.float64, np.float64)])
def test_finfo_matches_numpy(dtype, np_dtype):
    f, ref = ember.finfo(dtype), np.finfo(np_dtype)
    assert (f.bits, f.eps, f.max, f.min, f.tiny) == (ref.bits, float(ref.eps), float(ref.max),
                                                     float(ref.min), float(ref.tiny))
    assert f.smallest_normal == f.tiny and f.resolution == 10.0 ** -ref.precision
    assert f.dtype == dtype.name


def test_finfo_of_bfloat16_and_of_the_default_dtype():
    bf = ember.finfo(ember.bfloat16)
    assert (bf.bits, bf.eps, bf.resolution) == (16, 2.0 ** -7, 0.01)
    assert bf.max == pytest.approx(3.3895313892515355e38)
    assert ember.finfo().eps == 2.0 ** -23


@pytest.mark.parametrize("dtype, lo, hi", [(ember.uint8, 0, 255), (ember.int8, -128, 127),
                                           (ember.int32, -2 ** 31, 2 ** 31 - 1),
                                           (ember.int64, -2 ** 63, 2 ** 63 - 1)])
def test_iinfo_limits(dtype, lo, hi):
    i = ember.iinfo(dtype)
    assert (i.min, i.max, i.bits, i.dtype) == (lo, hi, np.iinfo(dtype.np).bits, dtype.name)


def test_finfo_and_iinfo_reject_the_other_category():
    with pytest.raises(TypeError, match="iinfo"):
        ember.finfo(ember.int32)
    with pytest.raises(TypeError, match="finfo"):
        ember.iinfo(ember.float32)
    with pytest.raises(TypeError):
        ember.iinfo(ember.bool)


def test_math_constants():
    assert (ember.pi, ember.e, ember.inf) == (math.pi, math.e, math.inf)
    assert math.isnan(ember.nan)


def test_size_is_a_tuple_that_knows_its_numel():
    x = ember.zeros(2, 3, 4)
    s = x.size()
    assert isinstance(s, ember.Size) and isinstance(x.shape, ember.Size)
    assert s == (2, 3, 4) and x.shape == ember.Size([2, 3, 4]) and x.size(1) == 3
    assert s.numel() == 24 and ember.Size([]).numel() == 1
    assert repr(s) == "ember.Size([2, 3, 4])" and str(ember.Size([])) == "ember.Size([])"
    assert x.reshape(ember.Size([4, 6])).shape == (4, 6)
    assert x.view(x.shape[0], -1).shape == (2, 12)
    assert ember.ones(x.shape).shape == (2, 3, 4)


@pytest.mark.parametrize("name, dtype", [("FloatTensor", ember.float32),
                                         ("DoubleTensor", ember.float64),
                                         ("LongTensor", ember.int64), ("IntTensor", ember.int32),
                                         ("BoolTensor", ember.bool), ("ByteTensor", ember.uint8),
                                         ("HalfTensor", ember.float16)])
def test_typed_constructors_and_type_names(name, dtype):
    cls = getattr(ember, name)
    t = cls([1, 0])
    assert t.dtype == dtype and t.tolist() == ([True, False] if dtype == ember.bool else [1, 0])
    assert cls(2, 3).shape == (2, 3) and cls(ember.Size([4])).shape == (4,)
    assert isinstance(t, cls) and isinstance(t, ember.Tensor)
    assert not isinstance(ember.zeros(1, dtype=ember.bfloat16), cls)
    assert t.type() == f"ember.{name}"
    assert ember.zeros(2).type(f"ember.{name}").dtype == dtype
    assert ember.zeros(2).type(cls).dtype == dtype
    assert ember.zeros(2).type_as(t).dtype == dtype


def test_set_printoptions_changes_and_restores_printing():
    try:
        ember.set_printoptions(precision=2)
        assert repr(ember.tensor([1.12345])) == "tensor([1.12])"
        ember.set_printoptions(threshold=5)
        assert repr(ember.arange(10)) == "tensor([0, 1, 2, ..., 7, 8, 9])"
    finally:
        ember.set_printoptions(profile="default")
    assert repr(ember.tensor([1.12345])) == "tensor([1.1235])"
    with pytest.raises(ValueError, match="profile"):
        ember.set_printoptions(profile="long")


def test_data_ptr_tells_shared_storage():
    x = ember.ones(4)
    assert x.data_ptr() == x[:2].data_ptr() == x.view(2, 2).data_ptr()
    assert x.data_ptr() != x[1:].data_ptr() and x.data_ptr() != x.clone().data_ptr()


def test_top_level_cosine_similarity_and_pairwise_distance():
    a, b = np.array([[1.0, 0.0], [3.0, 4.0]]), np.array([[1.0, 1.0], [3.0, 4.0]])
    cos = ember.cosine_similarity(ember.tensor(a), ember.tensor(b)).numpy()
    np.testing.assert_allclose(cos, [1 / math.sqrt(2), 1.0])
    d = ember.pairwise_distance(ember.tensor(a), ember.tensor(b)).numpy()
    np.testing.assert_allclose(d, np.linalg.norm(a - b + 1e-6, axis=1))


# ----- Tensor methods -----------------------------------------------------------------------


def test_flip_takes_dims_as_keyword_list_or_varargs():
    x = np.arange(6).reshape(2, 3)
    for got in (ember.flip(ember.tensor(x), dims=[0, 1]), ember.tensor(x).flip(0, 1),
                ember.tensor(x).flip(dims=(0, 1))):
        np.testing.assert_array_equal(got.numpy(), x[::-1, ::-1])
    np.testing.assert_array_equal(ember.tensor(x).flip(dims=1).numpy(), x[:, ::-1])


def test_index_fill_sets_entries_and_sends_the_rest_of_the_gradient_through():
    x = np.arange(12.0).reshape(3, 4)
    want = x.copy()
    want[:, [0, 2]] = -1.0
    np.testing.assert_array_equal(ember.tensor(x).index_fill(1, ember.tensor([0, 2]), -1.0)
                                  .numpy(), want)
    t = ember.tensor(x)
    assert t.index_fill_(0, ember.tensor([1]), 5.0) is t
    assert t[1].tolist() == [5.0] * 4
    w = np.random.default_rng(0).standard_normal((3, 4))
    g = _grad(lambda a: a.index_fill(1, ember.tensor([0, 2]), 0.0), x, w)
    np.testing.assert_array_equal(g, np.where(np.isin(np.arange(4), [0, 2]), 0.0, w))
    with pytest.raises(IndexError, match="index_fill"):
        ember.zeros(3).index_fill(0, ember.tensor([3]), 1.0)


@pytest.mark.parametrize("shape, wrap", [((3, 3), False), ((5, 2), False), ((5, 2), True),
                                         ((2, 4), False), ((3, 3, 3), False)])
def test_fill_diagonal_matches_numpy(shape, wrap):
    want = np.zeros(shape)
    np.fill_diagonal(want, 7.0, wrap=wrap)
    got = ember.zeros(*shape, dtype=ember.float64)
    assert got.fill_diagonal_(7.0, wrap=wrap) is got
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("shape, dim, size, step", [((10,), 0, 3, 2), ((2, 7, 3), 1, 3, 2),
                                                    ((2, 7, 3), -1, 2, 1), ((4, 5), 0, 4, 3),
                                                    ((3,), 0, 3, 1)])
def test_unfold_windows_and_gradient(shape, dim, size, step):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    d = dim % len(shape)
    n = (shape[d] - size) // step + 1

    def ref(a):  # window w holds a[..., w*step + k, ...] at a new last dim k
        wins = [np.take(a, np.arange(w * step, w * step + size), axis=d) for w in range(n)]
        return np.moveaxis(np.stack(wins, axis=d), d + 1, -1)

    got = ember.tensor(x).unfold(dim, size, step)
    np.testing.assert_array_equal(got.numpy(), ref(x))
    w = rng.standard_normal(got.shape)
    np.testing.assert_allclose(_grad(lambda t: t.unfold(dim, size, step), x, w),
                               _fd(lambda a: float(np.sum(w * ref(a))), x), atol=1e-6)
    assert ember.tensor(5.0).unfold(0, 1, 1).shape == (1,)
    with pytest.raises(RuntimeError, match="unfold"):
        ember.zeros(3).unfold(0, 4, 1)


def test_view_dtype_reinterprets_bytes():
    x = ember.tensor([1.0, -2.0], dtype=ember.float32)
    np.testing.assert_array_equal(x.view(ember.int32).numpy(),
                                  np.array([1.0, -2.0], np.float32).view(np.int32))
    assert x.view(ember.float16).shape == (4,)
    assert ember.ones(2, 4, dtype=ember.int8).view(ember.int32).shape == (2, 1)
    v = x.view(ember.int32)
    v[0] = 0  # a view: the write shows through
    assert x[0].item() == 0.0
    with pytest.raises(RuntimeError, match="view"):
        ember.ones(3).view(ember.float64)


@pytest.mark.parametrize("row, col, offset", [(3, 3, 0), (3, 3, 1), (4, 2, -1), (2, 5, 2),
                                              (0, 3, 0)])
def test_triu_and_tril_indices_match_numpy(row, col, offset):
    np.testing.assert_array_equal(ember.triu_indices(row, col, offset).numpy(),
                                  np.stack(np.triu_indices(row, offset, col)).reshape(2, -1))
    np.testing.assert_array_equal(ember.tril_indices(row, col, offset).numpy(),
                                  np.stack(np.tril_indices(row, offset, col)).reshape(2, -1))
    assert ember.triu_indices(row, col, offset).dtype == ember.int64


def test_nan_to_num_gradient_is_zero_at_replaced_entries():
    x = np.array([1.0, np.nan, np.inf, -np.inf, -2.0])
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(_grad(ember.nan_to_num, x, w), [1.0, 0, 0, 0, 5.0])
    big = float(np.finfo(np.float32).max)
    np.testing.assert_array_equal(ember.nan_to_num(ember.tensor(x, dtype=ember.float32)).numpy(),
                                  np.array([1.0, 0.0, big, -big, -2.0], np.float32))


def test_searchsorted_sorter_and_side_and_errors():
    seq = ember.tensor([3.0, 1.0, 2.0])
    got = ember.searchsorted(seq, ember.tensor([2.0, 2.5]), sorter=ember.tensor([1, 2, 0]),
                             side="right")
    assert got.tolist() == [2, 2]
    with pytest.raises(RuntimeError, match="searchsorted"):
        ember.searchsorted(ember.zeros(2, 3), ember.zeros(3, 1))
    with pytest.raises(RuntimeError, match="bincount"):
        ember.bincount(ember.tensor([1, -1]))


# ----- ember.linalg -------------------------------------------------------------------------


def _spd(rng, n, batch=()):
    a = rng.standard_normal(batch + (n, n))
    return a + 3 * np.eye(n)


def test_linalg_inv_det_solve_match_numpy():
    rng = np.random.default_rng(0)
    a = _spd(rng, 3, (2,))
    b = rng.standard_normal((2, 3, 2))
    v = rng.standard_normal((2, 3))
    A = ember.tensor(a)
    np.testing.assert_allclose(ember.linalg.inv(A).numpy(), np.linalg.inv(a), rtol=1e-10)
    np.testing.assert_allclose(ember.linalg.det(A).numpy(), np.linalg.det(a), rtol=1e-10)
    np.testing.assert_allclose(ember.linalg.solve(A, ember.tensor(b)).numpy(),
                               np.linalg.solve(a, b), rtol=1e-10)
    np.testing.assert_allclose(ember.linalg.solve(A, ember.tensor(v)).numpy(),
                               np.linalg.solve(a, v[..., None])[..., 0], rtol=1e-10)
    np.testing.assert_allclose(ember.linalg.solve(A, ember.tensor(b.swapaxes(-1, -2)),
                                                  left=False).numpy(),
                               np.linalg.solve(a.swapaxes(-1, -2), b).swapaxes(-1, -2),
                               rtol=1e-10)


@pytest.mark.parametrize("which", ["inv", "det", "solve_a", "solve_b"])
def test_linalg_gradients_match_finite_differences(which):
    rng = np.random.default_rng(1)
    a, b = _spd(rng, 3), rng.standard_normal((3, 2))
    fns = {"inv": (lambda t: ember.linalg.inv(t), np.linalg.inv, a),
           "det": (lambda t: ember.linalg.det(t), np.linalg.det, a),
           "solve_a": (lambda t: ember.linalg.solve(t, ember.tensor(b)),
                       lambda x: np.linalg.solve(x, b), a),
           "solve_b": (lambda t: ember.linalg.solve(ember.tensor(a), t),
                       lambda x: np.linalg.solve(a, x), b)}
    fn, ref, x = fns[which]
    w = rng.standard_normal(np.shape(ref(x)))
    np.testing.assert_allclose(_grad(fn, x, w), _fd(lambda y: float(np.sum(w * ref(y))), x),
                               rtol=1e-6, atol=1e-8)


def test_linalg_second_derivative_of_inverse():
    a = ember.tensor([[2.0, 0.5], [0.3, 1.5]], dtype=ember.float64, requires_grad=True)
    g, = ember.autograd.grad(ember.linalg.inv(a).sum(), a, create_graph=True)
    g2, = ember.autograd.grad(g[0, 0], a)

    def first(x):  # d sum(inv(x)) / dx[0, 0], analytically -(inv(x)^T 1 1^T inv(x)^T)[0, 0]
        y = np.linalg.inv(x).T
        return -(y @ np.ones((2, 2)) @ y)[0, 0]

    np.testing.assert_allclose(g2.numpy(), _fd(first, a.detach().numpy()), rtol=1e-5)


def test_linalg_norms_match_numpy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4))
    t = ember.tensor(x)
    assert ember.linalg.vector_norm(t).item() == pytest.approx(np.linalg.norm(x.ravel()))
    np.testing.assert_allclose(ember.linalg.vector_norm(t, 1, dim=1).numpy(),
                               np.linalg.norm(x, 1, axis=1))
    for ord_ in ("fro", 1, -1, math.inf, -math.inf):
        assert ember.linalg.matrix_norm(t, ord_).item() == pytest.approx(
            np.linalg.norm(x, ord_)), ord_
        assert ember.linalg.norm(t, ord_).item() == pytest.approx(np.linalg.norm(x, ord_))
    assert ember.linalg.norm(t).item() == pytest.approx(np.linalg.norm(x))
    np.testing.assert_allclose(ember.linalg.norm(t, dim=0).numpy(), np.linalg.norm(x, axis=0))
    np.testing.assert_allclose(ember.linalg.matrix_norm(ember.tensor(x[None]), 1,
                                                        keepdim=True).numpy(),
                               np.linalg.norm(x, 1, keepdims=True)[None])
    with pytest.raises(ValueError, match="nuc"):
        ember.linalg.matrix_norm(t, "nuc")


def test_linalg_cross_defaults_to_the_last_dim():
    a, b = np.eye(3), np.roll(np.eye(3), 1, axis=0)
    np.testing.assert_array_equal(ember.linalg.cross(ember.tensor(a), ember.tensor(b)).numpy(),
                                  np.cross(a, b))


def test_linalg_inv_of_a_singular_matrix_is_an_error_naming_the_op():
    with pytest.raises(np.linalg.LinAlgError, match="linalg_inv"):
        ember.linalg.inv(ember.zeros(2, 2))
    with pytest.raises(RuntimeError, match="square"):
        ember.linalg.det(ember.zeros(2, 3))


# ----- nn.functional and layers -------------------------------------------------------------


def test_functional_pad_is_ember_pad():
    assert F.pad is ember.pad
    assert F.pad(ember.ones(1, 2), (1, 1), value=0.0).tolist() == [[0.0, 1.0, 1.0, 0.0]]


@pytest.mark.parametrize("fn, ref", [(F.relu, lambda x: np.maximum(x, 0)),
                                     (F.silu, lambda x: x / (1 + np.exp(-x)))])
def test_inplace_activations_modify_a_tensor_that_needs_no_grad(fn, ref):
    x = np.array([-1.5, 0.5, 2.0])
    t = ember.tensor(x)
    out = fn(t, inplace=True)
    np.testing.assert_allclose(t.numpy(), ref(x))
    np.testing.assert_allclose(out.numpy(), ref(x))
    g = ember.tensor(x, requires_grad=True)
    np.testing.assert_allclose(fn(g * 1, inplace=True).detach().numpy(), ref(x))


def test_gumbel_softmax_soft_and_hard():
    ember.manual_seed(0)
    logits = ember.tensor([[0.0, 1.0, 2.0], [2.0, 0.0, -1.0]], requires_grad=True)
    soft = F.gumbel_softmax(logits, tau=0.5)
    np.testing.assert_allclose(soft.sum(-1).detach().numpy(), [1.0, 1.0], rtol=1e-6)
    hard = F.gumbel_softmax(logits, hard=True)
    h = hard.detach().numpy()
    assert set(np.unique(h)) <= {0.0, 1.0} and (h.sum(-1) == 1).all()
    hard.sum().backward()  # straight-through: the one-hot's gradient is the soft sample's
    np.testing.assert_allclose(logits.grad.numpy(), 0.0, atol=1e-6)  # softmax sums to 1


def _nearest_ref(x, out_size):
    """Nearest resize by its definition: out[i] = in[floor(i * in / out)] per spatial dim."""
    for d, o in enumerate(out_size):
        n = x.shape[2 + d]
        idx = np.minimum(np.floor(np.arange(o) * (n / o)).astype(int), n - 1)
        x = np.take(x, idx, axis=2 + d)
    return x


def _linear_ref(x, out_size, align_corners):
    """Separable linear resize: each output index maps to a source coordinate and blends the
    two nearest inputs (half-pixel centres, clamped at 0, unless align_corners)."""
    for d, o in enumerate(out_size):
        n = x.shape[2 + d]
        out = []
        for i in range(o):
            if align_corners:
                src = i * (n - 1) / (o - 1) if o > 1 else 0.0
            else:
                src = max((i + 0.5) * n / o - 0.5, 0.0)
            i0 = int(math.floor(src))
            i1 = min(i0 + 1, n - 1)
            lam = src - i0
            out.append((1 - lam) * np.take(x, i0, axis=2 + d) + lam * np.take(x, i1, axis=2 + d))
        x = np.stack(out, axis=2 + d)
    return x


@pytest.mark.parametrize("shape, size", [((2, 3, 5), (8,)), ((1, 2, 4, 6), (7, 3)),
                                         ((1, 1, 3, 3), (6, 6)), ((1, 1, 2, 3, 4), (3, 5, 2))])
@pytest.mark.parametrize("mode", ["nearest", "linear", "linear-align"])
def test_interpolate_matches_its_definition(shape, size, mode):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    n = len(shape) - 2
    if mode == "nearest":
        got = F.interpolate(ember.tensor(x), size=size)
        np.testing.assert_array_equal(got.numpy(), _nearest_ref(x, size))
        return
    align = mode == "linear-align"
    name = {1: "linear", 2: "bilinear", 3: "trilinear"}[n]
    got = F.interpolate(ember.tensor(x), size=size, mode=name, align_corners=align)
    np.testing.assert_allclose(got.numpy(), _linear_ref(x, size, align), rtol=1e-12)
    w = rng.standard_normal(got.shape)
    np.testing.assert_allclose(
        _grad(lambda t: F.interpolate(t, size=size, mode=name, align_corners=align), x, w),
        _fd(lambda a: float(np.sum(w * _linear_ref(a, size, align))), x), atol=1e-7)


def test_interpolate_scale_factor_area_and_errors():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(F.interpolate(ember.tensor(x), scale_factor=2).numpy(),
                                  x.repeat(2, 2).repeat(2, 3))
    area = F.interpolate(ember.tensor(x), size=(2, 2), mode="area").numpy()
    np.testing.assert_allclose(area, x.reshape(1, 1, 2, 2, 2, 2).mean((3, 5)))
    with pytest.raises(ValueError, match="bilinear"):
        F.interpolate(ember.ones(1, 1, 4), size=2, mode="bilinear")
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(ember.ones(1, 1, 4), size=2, scale_factor=2)
    with pytest.raises(NotImplementedError, match="bicubic"):
        F.interpolate(ember.ones(1, 1, 4, 4), size=2, mode="bicubic")


def test_interpolate_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    cases = [((2, 3, 5), "linear"), ((2, 3, 5, 7), "bilinear"), ((1, 2, 3, 4, 5), "trilinear"),
             ((2, 3, 5, 7), "nearest"), ((2, 3, 5, 7), "nearest-exact"), ((2, 3, 6, 8), "area")]
    for shape, mode in cases:
        for kw in (dict(scale_factor=2), dict(scale_factor=0.5), dict(scale_factor=1.7),
                   dict(size=4), dict(scale_factor=1 / 3),
                   dict(scale_factor=2, recompute_scale_factor=True)):
            if mode == "area" and kw.get("scale_factor") not in (None, 2, 0.5):
                continue
            for ac in ((None, True, False) if mode in ("linear", "bilinear", "trilinear")
                       else (None,)):
                x = rng.standard_normal(shape).astype(np.float32)
                tx, ex = torch.tensor(x, requires_grad=True), ember.tensor(x, requires_grad=True)
                to = torch.nn.functional.interpolate(tx, mode=mode, align_corners=ac, **kw)
                eo = F.interpolate(ex, mode=mode, align_corners=ac, **kw)
                g = rng.standard_normal(tuple(to.shape)).astype(np.float32)
                to.backward(torch.tensor(g))
                eo.backward(ember.tensor(g))
                what = f"{mode} {kw} align_corners={ac}"
                np.testing.assert_allclose(eo.detach().numpy(), to.detach().numpy(),
                                           atol=1e-5, err_msg=what)
                np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), atol=1e-4,
                                           err_msg=what)


def test_pixel_shuffle_and_unshuffle_by_definition():
    r, c, h, w = 2, 3, 2, 4
    x = np.random.default_rng(0).standard_normal((2, c * r * r, h, w))
    want = np.zeros((2, c, h * r, w * r))
    for ch in range(c):
        for i in range(r):
            for j in range(r):
                want[:, ch, i::r, j::r] = x[:, ch * r * r + i * r + j]
    got = F.pixel_shuffle(ember.tensor(x), r)
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(F.pixel_unshuffle(got, r).numpy(), x)
    assert nn.PixelShuffle(r)(ember.tensor(x)).shape == (2, c, h * r, w * r)
    assert nn.PixelUnshuffle(r)(got).shape == x.shape
    with pytest.raises(RuntimeError, match="pixel_shuffle"):
        F.pixel_shuffle(ember.ones(1, 3, 2, 2), 2)


@pytest.mark.parametrize("layer, np_pad", [
    (nn.ZeroPad2d(1), lambda x: np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))),
    (nn.ConstantPad1d((1, 2), 3.5), lambda x: np.pad(x, ((0, 0), (0, 0), (0, 0), (1, 2)),
                                                    constant_values=3.5)),
    (nn.ReflectionPad2d((1, 0, 2, 1)), lambda x: np.pad(x, ((0, 0), (0, 0), (2, 1), (1, 0)),
                                                        mode="reflect")),
    (nn.ReplicationPad2d(2), lambda x: np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)),
                                              mode="edge")),
    (nn.CircularPad1d(1), lambda x: np.pad(x, ((0, 0), (0, 0), (0, 0), (1, 1)), mode="wrap")),
])
def test_padding_layers_match_numpy(layer, np_pad):
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4))
    np.testing.assert_array_equal(layer(ember.tensor(x)).numpy(), np_pad(x))


@pytest.mark.parametrize("layer, text", [
    (nn.ZeroPad2d(1), "ZeroPad2d((1, 1, 1, 1))"),
    (nn.ConstantPad1d((1, 2), 3.5), "ConstantPad1d(padding=(1, 2), value=3.5)"),
    (nn.Upsample(scale_factor=2), "Upsample(scale_factor=2.0, mode='nearest')"),
    (nn.Upsample(size=(3, 4), mode="bilinear"), "Upsample(size=(3, 4), mode='bilinear')"),
    (nn.UpsamplingBilinear2d(scale_factor=2),
     "UpsamplingBilinear2d(scale_factor=2.0, mode='bilinear')"),
    (nn.PixelShuffle(2), "PixelShuffle(upscale_factor=2)"),
    (nn.EmbeddingBag(10, 3, mode="sum"), "EmbeddingBag(10, 3, mode='sum')"),
])
def test_new_layers_print_like_pytorch(layer, text):
    assert repr(layer) == text


def test_upsample_and_distance_layers():
    x = ember.tensor(np.arange(4.0).reshape(1, 1, 2, 2))
    np.testing.assert_array_equal(nn.UpsamplingNearest2d(scale_factor=2)(x).numpy(),
                                  x.numpy().repeat(2, 2).repeat(2, 3))
    corners = nn.UpsamplingBilinear2d(size=(3, 3))(x).numpy()[0, 0]
    np.testing.assert_allclose(corners, [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]])
    a, b = ember.tensor([[3.0, 4.0]]), ember.tensor([[4.0, 3.0]])
    assert nn.CosineSimilarity(dim=1)(a, b).item() == pytest.approx(24 / 25)
    assert nn.PairwiseDistance(p=1.0, eps=0.0)(a, b).item() == pytest.approx(2.0)


def test_softmax2d_normalises_over_channels():
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 2))
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(nn.Softmax2d()(ember.tensor(x)).numpy(),
                               e / e.sum(1, keepdims=True))
    with pytest.raises(ValueError, match="Softmax2d"):
        nn.Softmax2d()(ember.ones(2, 3))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_matches_an_explicit_layout(batch_first, side):
    rng = np.random.default_rng(0)
    seqs = [rng.standard_normal((n, 2)) for n in (3, 1, 4)]
    want = np.full((3, 4, 2), -1.0)
    for b, s in enumerate(seqs):
        if side == "right":
            want[b, :len(s)] = s
        else:
            want[b, 4 - len(s):] = s
    if not batch_first:
        want = want.transpose(1, 0, 2)
    ts = [ember.tensor(s, requires_grad=True) for s in seqs]
    out = nn.utils.rnn.pad_sequence(ts, batch_first=batch_first, padding_value=-1.0,
                                    padding_side=side)
    np.testing.assert_array_equal(out.detach().numpy(), want)
    out.sum().backward()
    assert all((t.grad.numpy() == 1).all() for t in ts)
    with pytest.raises(RuntimeError, match="pad_sequence"):
        nn.utils.rnn.pad_sequence([ember.ones(2, 3), ember.ones(2, 4)])


def _bag_ref(weight, bags, mode, psw=None):
    out = []
    for k, bag in enumerate(bags):
        rows = weight[bag] * (1.0 if psw is None else psw[k][:, None])
        if len(bag) == 0:
            out.append(np.zeros(weight.shape[1]))
        else:
            out.append({"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0)}[mode])
    return np.stack(out)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_matches_a_loop_over_bags(mode):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((10, 3))
    idx = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    offsets = [0, 3, 3, 5]  # bag 1 is empty
    bags = [idx[0:3], idx[3:3], idx[3:5], idx[5:]]
    got = F.embedding_bag(ember.tensor(idx), ember.tensor(w), ember.tensor(offsets), mode=mode)
    np.testing.assert_allclose(got.numpy(), _bag_ref(w, bags, mode), rtol=1e-12)
    g = rng.standard_normal((4, 3))
    np.testing.assert_allclose(
        _grad(lambda t: F.embedding_bag(ember.tensor(idx), t, ember.tensor(offsets),
                                        mode=mode), w, g),
        _fd(lambda a: float(np.sum(g * _bag_ref(a, bags, mode))), w), atol=1e-7)


def test_embedding_bag_2d_input_padding_and_per_sample_weights():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 2))
    idx = np.array([[1, 0, 2], [0, 0, 0], [3, 4, 5]])
    got = F.embedding_bag(ember.tensor(idx), ember.tensor(w), mode="mean", padding_idx=0)
    np.testing.assert_allclose(got.numpy(), _bag_ref(w, [[1, 2], [], [3, 4, 5]], "mean"))
    psw = rng.standard_normal((3, 3))
    got = F.embedding_bag(ember.tensor(idx), ember.tensor(w), mode="sum",
                          per_sample_weights=ember.tensor(psw))
    np.testing.assert_allclose(got.numpy(), _bag_ref(w, list(idx), "sum", psw))
    bag = nn.EmbeddingBag(6, 2, mode="max", padding_idx=0)
    assert bag.weight.shape == (6, 2) and (bag.weight[0] == 0).all()
    assert bag(ember.tensor([1, 2, 3]), ember.tensor([0, 2])).shape == (2, 2)
    with pytest.raises(ValueError, match="offsets"):
        F.embedding_bag(ember.tensor([1, 2]), ember.tensor(w))


# ----- autograd.Function --------------------------------------------------------------------


class _Cube(ember.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return 3 * x ** 2 * grad


class _ScaleShift(ember.autograd.Function):
    """Two outputs and a non-tensor argument: (k * x, x + y)."""

    @staticmethod
    def forward(ctx, x, k, y):
        ctx.k = k
        ctx.flags = ctx.needs_input_grad
        return x * k, x + y

    @staticmethod
    def backward(ctx, g1, g2):
        return g1 * ctx.k + g2, None, g2


def test_custom_function_value_gradient_and_grad_fn():
    x = ember.tensor([1.0, -2.0, 0.5], requires_grad=True)
    y = _Cube.apply(x)
    np.testing.assert_allclose(y.detach().numpy(), [1.0, -8.0, 0.125])
    assert y.requires_grad and "_Cube" in repr(y.grad_fn)
    (y * ember.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.array([1.0, 4.0, 0.25]) * [1, 2, 3])


def test_custom_function_second_derivative():
    x = ember.tensor(2.0, requires_grad=True)
    g, = ember.autograd.grad(_Cube.apply(x), x, create_graph=True)
    g2, = ember.autograd.grad(g, x)
    assert (g.item(), g2.item()) == (12.0, 12.0)


def test_custom_function_with_two_outputs_and_a_number_argument():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = ember.tensor([0.5, 0.5])
    a, b = _ScaleShift.apply(x, 3.0, y)
    (a.sum() + 2 * b.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])  # 3 + 2
    assert y.grad is None
    x2 = ember.tensor([1.0], requires_grad=True)
    a, _ = _ScaleShift.apply(x2, 2.0, ember.tensor([0.0], requires_grad=True))
    a.sum().backward()  # the unused output's gradient arrives as zeros
    assert x2.grad.tolist() == [2.0]


def test_custom_function_under_no_grad_and_without_grad_inputs():
    x = ember.tensor([1.0, 2.0])
    assert not _Cube.apply(x).requires_grad
    with ember.no_grad():
        assert not _Cube.apply(ember.ones(2, requires_grad=True)).requires_grad


def test_custom_function_needs_input_grad_and_setup_context_form():
    class Mul(ember.autograd.Function):
        @staticmethod
        def forward(a, b):
            return a * b

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(*inputs)
            ctx.seen = ctx.needs_input_grad

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return (g * b if ctx.needs_input_grad[0] else None,
                    g * a if ctx.needs_input_grad[1] else None)

    a = ember.tensor([2.0, 3.0], requires_grad=True)
    b = ember.tensor([5.0, 7.0])
    Mul.apply(a, b).sum().backward()
    assert a.grad.tolist() == [5.0, 7.0]


def test_custom_function_errors():
    class Wrong(ember.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return (g,)

    x = ember.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        Wrong.apply(x, x).sum().backward()

    class Saves(ember.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * 2

        @staticmethod
        def backward(ctx, g):
            a, = ctx.saved_tensors
            return g * 2

    x = ember.ones(2, requires_grad=True)
    h = x * 1
    out = Saves.apply(h)
    h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_mark_non_differentiable_and_once_differentiable():
    class SortValues(ember.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            v, i = x.sort()
            ctx.mark_non_differentiable(i)
            ctx.save_for_backward(i)
            return v, i

        @staticmethod
        @ember.autograd.function.once_differentiable
        def backward(ctx, gv, gi):
            i, = ctx.saved_tensors
            return ember.zeros_like(gv).scatter(0, i, gv)

    x = ember.tensor([3.0, 1.0, 2.0], requires_grad=True)
    v, i = SortValues.apply(x)
    assert v.requires_grad and not i.requires_grad
    (v * ember.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [100.0, 1.0, 10.0]


# ----- module backward hooks ----------------------------------------------------------------


def test_full_backward_hook_sees_input_and_output_gradients():
    lin = nn.Linear(3, 2)
    seen = []
    handle = lin.register_full_backward_hook(
        lambda m, gi, go: seen.append((m, [g.numpy().copy() for g in gi], go[0].numpy().copy())))
    x = ember.tensor(np.ones((4, 3)), dtype=ember.float32, requires_grad=True)
    w = np.arange(8.0, dtype=np.float32).reshape(4, 2)
    (lin(x) * ember.tensor(w)).sum().backward()
    (m, gi, go), = seen
    assert m is lin
    np.testing.assert_allclose(go, w)
    np.testing.assert_allclose(gi[0], w @ lin.weight.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), gi[0])
    handle.remove()
    (lin(x) * 1).sum().backward()
    assert len(seen) == 1


def test_backward_hook_without_grad_inputs_and_replacing_gradients():
    lin = nn.Linear(2, 2)
    got = []
    lin.register_full_backward_hook(lambda m, gi, go: got.append(gi))
    lin(ember.ones(1, 2)).sum().backward()  # no input needs a gradient: called with None
    assert got == [(None,)]
    scale = nn.Linear(2, 2)
    scale.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0,))
    x = ember.ones(1, 2, requires_grad=True)
    scale(x).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0]]
    pre = nn.Linear(2, 1)
    pre.register_full_backward_pre_hook(lambda m, go: (go[0] * 10,))
    y = ember.ones(1, 2, requires_grad=True)
    pre(y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 10 * pre.weight.detach().numpy())
    np.testing.assert_allclose(pre.bias.grad.numpy(), [10.0])


def test_backward_hooks_match_pytorch():
    torch = pytest.importorskip("torch")

    def run(lib):
        lib.manual_seed(0)
        m = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))
        with lib.no_grad():
            for i, p in enumerate(m.parameters()):
                p.copy_(lib.tensor(np.random.default_rng(i).standard_normal(tuple(p.shape))
                                   .astype(np.float32)))
        log = []
        m[1].register_full_backward_hook(
            lambda mod, gi, go: log.append((gi[0].numpy().copy(), go[0].numpy().copy())))
        m[2].register_full_backward_pre_hook(lambda mod, go: (go[0] * 2,))
        x = lib.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
        m(x).sum().backward()
        return log, m[0].weight.grad.numpy().copy()

    (t_log, t_grad), (e_log, e_grad) = run(torch), run(ember)
    np.testing.assert_allclose(e_log[0][0], t_log[0][0], rtol=1e-5)
    np.testing.assert_allclose(e_log[0][1], t_log[0][1], rtol=1e-5)
    np.testing.assert_allclose(e_grad, t_grad, rtol=1e-5)


# ----- against PyTorch ------------------------------------------------------------------------


def test_embedding_bag_and_quantile_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    w = rng.standard_normal((10, 3)).astype(np.float32)
    idx = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    for mode in ("sum", "mean", "max"):
        for offsets, last in (([0, 3, 3, 8], True), ([0, 4], False)):
            t = torch.nn.functional.embedding_bag(torch.tensor(idx), torch.tensor(w),
                                                  torch.tensor(offsets), mode=mode,
                                                  include_last_offset=last)
            e = F.embedding_bag(ember.tensor(idx), ember.tensor(w), ember.tensor(offsets),
                                mode=mode, include_last_offset=last)
            np.testing.assert_allclose(e.numpy(), t.numpy(), rtol=1e-6, err_msg=mode)
    x = rng.standard_normal((3, 5, 4))
    for q in (0.3, [0.1, 0.5, 0.99]):
        for dim in (None, 1):
            for how in ("linear", "lower", "higher", "nearest", "midpoint"):
                tq = torch.tensor(q, dtype=torch.float64) if isinstance(q, list) else q
                eq = ember.tensor(q, dtype=ember.float64) if isinstance(q, list) else q
                t = torch.quantile(torch.tensor(x), tq, dim, True, interpolation=how)
                e = ember.quantile(ember.tensor(x), eq, dim, True, interpolation=how)
                np.testing.assert_allclose(e.numpy(), t.numpy(), err_msg=f"{q} {dim} {how}")
