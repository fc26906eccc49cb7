"""Every op's ONNX export rule, one tiny graph per case: exported with ``ember.onnx.export``,
run by onnxruntime, compared with ember's eager result.

Two tables drive it: the rows of ``tests/ops/test_op_table.py`` (arithmetic, unary,
activation, comparison, reduction, shape, linalg and sorting, each through its public
function) and :data:`FAMILY_ROWS` below for the families that table leaves out (conv,
pooling, normalization, recurrent, attention, indexing, losses, embedding, linear). A case
is skipped only when the graph holds an op listed in ``NOT_EXPORTABLE`` (with its reason) or
when ember's own function can't be traced (:data:`UNTRACEABLE`, with the reason).
"""
from __future__ import annotations

import importlib.util
import io
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import ember as em
import ember.nn.functional as F

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from ember.onnx import ExportError, export  # noqa: E402
from ember.onnx.export_ops import NOT_EXPORTABLE  # noqa: E402
from ember.onnx._builder import is_training_only  # noqa: E402
from ember.ops.registry import OPS  # noqa: E402


pytest.importorskip("scipy")  # the op table's references


def _load_op_table():
    path = Path(__file__).resolve().parents[1] / "ops" / "test_op_table.py"
    spec = importlib.util.spec_from_file_location("_ember_op_table_rows", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the file runs
    spec.loader.exec_module(mod)
    return mod


TABLE = _load_op_table()

# public functions whose ember implementation leaves the graph (data-dependent sizes or
# NumPy inside the wrapper): a trace of them is refused, so there is nothing to export
UNTRACEABLE = {
    "unique": "output size depends on the values (NumPy's unique in the wrapper)",
    "quantile": "computed with NumPy inside the wrapper",
    "repeat_interleave-tensor": "repeat counts read from a tensor's values",
    "topk-scalar": "a 0-d input's indices are made outside ember's ops",
    "histc-data-range": "the bin range is read from the data (give min and max)",
}


def _untraceable(name: str):
    for key, why in UNTRACEABLE.items():
        if name == key or (key in ("unique", "quantile") and name.startswith(key + "-")):
            return why
    return None


def _run(fn, arrays, opset=None):
    """Export ``fn`` on ``arrays``; return (ember's outputs, onnxruntime's outputs)."""
    tensors = [em.from_numpy(a) for a in arrays]
    with em.no_grad():
        want = fn(*tensors)
    want = list(want) if isinstance(want, (tuple, list)) else [want]
    buf = io.BytesIO()
    try:
        export(fn, tuple(tensors), buf, opset_version=opset)
    except ExportError as e:
        ops = {p[0] for p in e.problems}
        if ops and ops <= set(NOT_EXPORTABLE):
            pytest.skip("; ".join(f"{o}: {NOT_EXPORTABLE[o]}" for o in sorted(ops)))
        raise
    sess = ort.InferenceSession(buf.getvalue())
    got = sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), arrays)})
    return [w.numpy() for w in want], got


def _check(want, got, rtol=1e-4, atol=1e-5):
    assert len(want) == len(got)
    for w, g in zip(want, got):
        assert g.shape == w.shape, f"shape {g.shape}, expected {w.shape}"
        assert g.dtype == w.dtype, f"dtype {g.dtype}, expected {w.dtype}"
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, w)


# ----- the shared op table --------------------------------------------------------------------

def _table_case(row):
    """The row's first case without empty dims, preferring inputs of rank >= 1 (ONNX has no
    empty-tensor conventions worth testing here); float inputs as float32."""
    ok = [s for s in row.shapes if all(0 not in sh for sh in s)]
    shapes = next((s for s in ok if all(len(sh) for sh in s)), ok[0] if ok else None)
    if shapes is None:
        return None
    return [a.astype(np.float32) if a.dtype.kind == "f" else a
            for a in TABLE._inputs(row, shapes)]


TABLE_CASES = [pytest.param(r, id=r.name) for r in TABLE.ROWS if _table_case(r) is not None]


@pytest.mark.parametrize("row", TABLE_CASES)
def test_op_table_row_matches_onnxruntime(row):
    why = _untraceable(row.name)
    if why:
        pytest.skip(f"not traceable: {why}")
    arrays = _table_case(row)
    try:
        with em.no_grad():
            out = row.fn(*[em.from_numpy(a) for a in arrays])
    except Exception as e:  # noqa: BLE001 - the row's case is for NumPy dtypes ember refuses
        pytest.skip(f"ember refuses this float32 case: {e}")
    outs = out if isinstance(out, (tuple, list)) else [out]
    if not all(isinstance(o, em.Tensor) for o in outs):
        pytest.skip("returns a Python value, not tensors")
    want, got = _run(row.fn, arrays)
    _check(want, got)


# ----- the other families ---------------------------------------------------------------------

def _gen(spec, rng):
    shape, kind = spec
    if kind == "f":
        return rng.standard_normal(shape).astype(np.float32)
    if kind == "pos":
        return rng.uniform(0.1, 0.9, shape).astype(np.float32)
    if kind == "bool":
        return rng.random(shape) < 0.5
    if kind.startswith("int"):
        return rng.integers(0, int(kind[3:]), shape).astype(np.int64)
    raise ValueError(kind)


def _params(*shapes):
    """Fixed weights for the rows (captured tensors: initializers in the file)."""
    rng = np.random.default_rng(7)
    return [em.from_numpy(rng.standard_normal(s).astype(np.float32) * 0.5) for s in shapes]


W2, B2, W1D, W3D, WT2 = _params((4, 3, 3, 3), (4,), (4, 3, 3), (2, 3, 2, 2, 2), (3, 2, 3, 3))
LIN_W, LIN_B = _params((5, 6), (5,))
EMB = _params((10, 4))[0]
LN_W, LN_B = _params((6,), (6,))
GN_W, GN_B = _params((4,), (4,))
CE_W = em.from_numpy(np.array([0.5, 1.0, 2.0, 1.5], np.float32))


def _lstm(**kw):
    em.manual_seed(3)
    return em.nn.LSTM(4, 3, **kw).eval()


LSTM_H0 = _lstm(num_layers=1)
GRU = em.nn.GRU(4, 3, batch_first=True).eval()
RNN_TANH = em.nn.RNN(4, 3).eval()
MHA = em.nn.MultiheadAttention(8, 2).eval()


def _setitem(x, v):
    y = x.clone()
    y[1:, ::2] = v
    return y


def _setitem_repeated(x):
    y = x.clone()
    y[em.tensor([0, 2, 0])] = em.tensor(5.0)
    return y


FAMILY_ROWS = [
    # conv
    ("conv2d", lambda x: F.conv2d(x, W2, B2, padding=1), [((2, 3, 5, 6), "f")]),
    ("conv2d-stride-dilation", lambda x: F.conv2d(x, W2, None, stride=2, dilation=2),
     [((2, 3, 9, 8), "f")]),
    ("conv2d-groups-same", lambda x: F.conv2d(x, W2[:, :1], B2, padding="same", groups=4),
     [((1, 4, 5, 5), "f")]),
    ("conv1d", lambda x: F.conv1d(x, W1D, padding=2), [((2, 3, 7), "f")]),
    ("conv3d", lambda x: F.conv3d(x, W3D), [((1, 3, 4, 4, 3), "f")]),
    ("conv_transpose2d", lambda x: F.conv_transpose2d(x, WT2, stride=2, padding=1,
                                                      output_padding=1), [((1, 3, 4, 4), "f")]),
    ("conv_transpose2d-output-padding-past-stride", lambda x: F.conv_transpose2d(
        x, WT2, B2[:2], stride=1, padding=1, output_padding=1, dilation=2),
     [((1, 3, 4, 4), "f")]),
    ("unfold", lambda x: F.unfold(x, 2, padding=1, stride=2), [((2, 3, 4, 5), "f")]),
    ("fold", lambda x: F.fold(x, (4, 5), 2, stride=1), [((2, 12, 12), "f")]),
    # pooling
    ("max_pool2d", lambda x: F.max_pool2d(x, 2), [((2, 3, 6, 7), "f")]),
    ("max_pool2d-pad-ceil", lambda x: F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True),
     [((1, 2, 8, 7), "f")]),
    ("max_pool2d-ceil-drops-window", lambda x: F.max_pool2d(x, 2, 3, ceil_mode=True),
     [((1, 2, 6, 7), "f")]),
    ("avg_pool2d-ceil-drops-window", lambda x: F.avg_pool2d(x, 2, 3, ceil_mode=True),
     [((1, 2, 6, 7), "f")]),
    ("max_pool1d-dilation", lambda x: F.max_pool1d(x, 2, dilation=2), [((2, 3, 9), "f")]),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 2), [((2, 3, 6, 6), "f")]),
    ("avg_pool2d-pad-exclude", lambda x: F.avg_pool2d(x, 3, 2, padding=1,
                                                      count_include_pad=False),
     [((1, 2, 7, 6), "f")]),
    ("avg_pool2d-pad-include", lambda x: F.avg_pool2d(x, 3, 2, padding=1),
     [((1, 2, 7, 6), "f")]),
    ("avg_pool2d-divisor", lambda x: F.avg_pool2d(x, 2, divisor_override=3),
     [((1, 2, 4, 6), "f")]),
    ("avg_pool1d-ceil", lambda x: F.avg_pool1d(x, 3, 2, ceil_mode=True), [((1, 2, 8), "f")]),
    ("adaptive_avg_pool2d-even", lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
     [((2, 3, 4, 6), "f")]),
    ("adaptive_avg_pool2d-uneven", lambda x: F.adaptive_avg_pool2d(x, (3, 4)),
     [((2, 3, 5, 7), "f")]),
    ("adaptive_max_pool2d-uneven", lambda x: F.adaptive_max_pool2d(x, (3, 2)),
     [((2, 3, 5, 7), "f")]),
    ("adaptive_max_pool1d-even", lambda x: F.adaptive_max_pool1d(x, 2), [((2, 3, 6), "f")]),
    ("max_unpool2d", lambda x, i: F.max_unpool2d(x, i, 2, output_size=(4, 4)),
     [((1, 2, 2, 2), "f"), ((1, 2, 2, 2), "int16")]),
    # normalization
    ("batch_norm-training", lambda x: F.batch_norm(x, None, None, GN_W, GN_B, training=True),
     [((3, 4, 5), "f")]),
    ("batch_norm-eval", lambda x: F.batch_norm(x, GN_W.abs(), GN_B.abs() + 0.5, GN_W, GN_B),
     [((3, 4, 2, 2), "f")]),
    ("layer_norm", lambda x: F.layer_norm(x, (6,), LN_W, LN_B), [((2, 3, 6), "f")]),
    ("layer_norm-no-affine-2d", lambda x: F.layer_norm(x, (3, 6)), [((2, 3, 6), "f")]),
    ("group_norm", lambda x: F.group_norm(x, 2, GN_W, GN_B), [((2, 4, 3, 3), "f")]),
    ("instance_norm", lambda x: F.instance_norm(x), [((2, 4, 5), "f")]),
    ("rms_norm", lambda x: F.rms_norm(x, (6,), LN_W), [((2, 6), "f")]),
    # embedding, linear
    ("embedding", lambda i: F.embedding(i, EMB), [((2, 5), "int10")]),
    ("embedding-padding_idx", lambda i: F.embedding(i, EMB, padding_idx=0),
     [((7,), "int10")]),
    ("linear-2d", lambda x: F.linear(x, LIN_W, LIN_B), [((3, 6), "f")]),
    ("linear-3d-no-bias", lambda x: F.linear(x, LIN_W), [((2, 3, 6), "f")]),
    ("linear-computed-weight", lambda x, w: F.linear(x, w * 2.0), [((2, 3, 6), "f"),
                                                                   ((5, 6), "f")]),
    # recurrent
    ("lstm-h0-c0", lambda x, h, c: LSTM_H0(x, (h, c))[0],
     [((5, 2, 4), "f"), ((1, 2, 3), "f"), ((1, 2, 3), "f")]),
    ("lstm-h_n-c_n", lambda x: LSTM_H0(x)[1], [((5, 2, 4), "f")]),
    ("gru-batch-first-h_n", lambda x: GRU(x), [((2, 5, 4), "f")]),
    ("rnn-tanh", lambda x: RNN_TANH(x)[0], [((5, 2, 4), "f")]),
    # attention
    ("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
     [((2, 3, 4, 8), "f"), ((2, 3, 6, 8), "f"), ((2, 3, 6, 8), "f")]),
    ("sdpa-causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     [((2, 5, 8), "f"), ((2, 5, 8), "f"), ((2, 5, 8), "f")]),
    ("sdpa-float-mask", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m),
     [((2, 4, 8), "f"), ((2, 6, 8), "f"), ((2, 6, 8), "f"), ((4, 6), "f")]),
    ("sdpa-masked-rows", lambda q, k, v, m: F.scaled_dot_product_attention(
        q, k, v, em.zeros_like(m).masked_fill(m > 0.5, float("-inf"))),
     [((2, 4, 8), "f"), ((2, 6, 8), "f"), ((2, 6, 8), "f"), ((4, 6), "pos")]),
    ("mha-with-weights", lambda q: MHA(q, q, q),
     [((4, 2, 8), "f")]),
    # losses
    ("cross_entropy", lambda x, t: F.cross_entropy(x, t), [((5, 4), "f"), ((5,), "int4")]),
    ("cross_entropy-weight-ignore", lambda x, t: F.cross_entropy(
        x, t, weight=CE_W, ignore_index=1), [((6, 4), "f"), ((6,), "int4")]),
    ("cross_entropy-smoothing-sum", lambda x, t: F.cross_entropy(
        x, t, label_smoothing=0.1, reduction="sum"), [((5, 4), "f"), ((5,), "int4")]),
    ("cross_entropy-smoothing-weight-none", lambda x, t: F.cross_entropy(
        x, t, weight=CE_W, label_smoothing=0.2, reduction="none"),
     [((2, 4, 3), "f"), ((2, 3), "int4")]),
    ("cross_entropy-probs", lambda x, p: F.cross_entropy(x, p.softmax(1)),
     [((5, 4), "f"), ((5, 4), "f")]),
    ("nll_loss", lambda x, t: F.nll_loss(x.log_softmax(1), t, weight=CE_W),
     [((5, 4), "f"), ((5,), "int4")]),
    ("binary_cross_entropy", lambda x, y: F.binary_cross_entropy(x, y),
     [((3, 4), "pos"), ((3, 4), "pos")]),
    ("mse_loss", lambda x, y: F.mse_loss(x, y), [((3, 4), "f"), ((3, 4), "f")]),
    # indexing
    ("getitem-basic", lambda x: x[1, ::2, None, -3:], [((3, 5, 4), "f")]),
    ("getitem-negative-step", lambda x: x[::-2, 1:], [((5, 4), "f")]),
    ("getitem-ellipsis", lambda x: x[..., 0], [((2, 3, 4), "f")]),
    ("getitem-index-list", lambda x: x[:, [2, 0, -1]], [((3, 4), "f")]),
    ("getitem-two-arrays", lambda x: x[[0, 2], :, [1, -1]], [((3, 4, 5), "f")]),
    ("getitem-adjacent-arrays", lambda x: x[:, [0, 2], [1, 3]], [((2, 3, 4), "f")]),
    ("getitem-bool-mask-const", lambda x: x[em.tensor([True, False, True])],
     [((3, 4), "f")]),
    ("getitem-int-then-array", lambda x: x[1, [0, 2]], [((3, 4), "f")]),
    ("getitem-none-between-arrays", lambda x: x[None, [0, 2], :, [1, 1]], [((3, 4, 5), "f")]),
    ("setitem", _setitem, [((3, 4), "f"), ((), "f")]),
    ("setitem-repeated-index", _setitem_repeated, [((3, 2), "f")]),
    ("index_add", lambda x, s: x.index_add(0, em.tensor([0, 2, 0]), s),
     [((3, 2), "f"), ((3, 2), "f")]),
    ("gather", lambda x, i: x.gather(1, i), [((3, 4), "f"), ((3, 2), "int4")]),
    ("scatter", lambda x, s: x.scatter(1, em.tensor([[0, 1], [2, 3], [1, 0]]), s),
     [((3, 4), "f"), ((3, 2), "f")]),
    ("scatter-reduce-multiply", lambda x, s: x.scatter(1, em.tensor([[0, 1], [2, 3], [1, 0]]),
                                                       s, reduce="multiply"),
     [((3, 4), "f"), ((3, 2), "f")]),
    ("scatter_add", lambda x, i, s: x.scatter_add(0, i, s),
     [((3, 4), "f"), ((2, 4), "int3"), ((2, 4), "f")]),
    ("index_select", lambda x: x.index_select(1, em.tensor([3, 0])), [((2, 4), "f")]),
    ("masked_fill", lambda x, m: x.masked_fill(m, -1.0), [((3, 4), "f"), ((3, 4), "bool")]),
    ("nonzero", lambda m: em.nonzero(m), [((3, 4), "bool")]),
    # composites over several families
    ("interpolate-nearest", lambda x: F.interpolate(x, scale_factor=2), [((1, 2, 3, 3), "f")]),
    ("pixel_shuffle", lambda x: F.pixel_shuffle(x, 2), [((1, 8, 2, 3), "f")]),
    ("glu-hardswish-elu", lambda x: F.elu(F.hardswish(F.glu(x, -1))), [((3, 8), "f")]),
    ("dropout-eval", lambda x: F.dropout(x, 0.5, training=False) * 2, [((3, 4), "f")]),
]


@pytest.mark.parametrize("name, fn, specs", [pytest.param(*r, id=r[0]) for r in FAMILY_ROWS])
def test_family_row_matches_onnxruntime(name, fn, specs):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    arrays = [_gen(s, rng) for s in specs]
    if name == "max_unpool2d":  # valid flat indices: one per 2x2 window of the 4x4 output
        arrays[1] = np.array([[[[0, 3], [9, 14]], [[5, 2], [12, 15]]]], np.int64)
    want, got = _run(fn, arrays)
    _check(want, got)


# ----- opset versions: the rules that change with the opset -------------------------------

OPSET_ROWS = ["sum", "mean-dims-keepdim", "amax-dims", "logsumexp", "prod-dim1", "gelu",
              "gelu-tanh", "cumsum", "argmax-dim"]


@pytest.mark.parametrize("opset", [17, 19, 20, 21])
@pytest.mark.parametrize("name", OPSET_ROWS + ["layer_norm", "fold", "group_norm"])
def test_rules_hold_at_every_supported_opset(name, opset):
    rows = {r.name: r for r in TABLE.ROWS}
    if name in rows:
        fn, arrays = rows[name].fn, _table_case(rows[name])
    else:
        _, fn, specs = next(r for r in FAMILY_ROWS if r[0] == name)
        arrays = [_gen(s, np.random.default_rng(0)) for s in specs]
    if name == "fold" and opset < 18:
        with pytest.raises(ExportError, match="Col2Im.*opset_version >= 18"):
            export(fn, tuple(em.from_numpy(a) for a in arrays), None, opset_version=opset)
        return
    want, got = _run(fn, arrays, opset)
    _check(want, got)


def test_opset_rows_exist():
    names = {r.name for r in TABLE.ROWS}
    assert set(OPSET_ROWS) <= names, sorted(set(OPSET_ROWS) - names)


# ----- coverage of the registry ---------------------------------------------------------------

def test_every_inference_op_has_a_rule_or_a_reason():
    """Each registry op that can appear in an inference graph has an export rule, or is
    declared not exportable with the reason shown to users."""
    missing = sorted(name for name, op in OPS.items()
                     if op.onnx is None and not is_training_only(name)
                     and name not in NOT_EXPORTABLE)
    assert not missing, f"ops without an ONNX rule or a reason: {missing}"
    for name, why in NOT_EXPORTABLE.items():
        assert OPS[name].onnx is None and len(why) > 20, name


def test_not_exportable_op_fails_with_reason_and_line():
    def f(a):
        return em.linalg.inv(a) + 1  # the line the error must name

    with pytest.raises(ExportError) as e:
        export(f, em.eye(3) * 2.0, None)
    msg = str(e.value)
    assert "linalg_inv" in msg and "matrix inverse" in msg
    assert "test_export_ops.py" in msg and "em.linalg.inv(a)" in msg
