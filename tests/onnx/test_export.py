"""``ember.onnx.export``: the model zoo round trip (ember eager == onnxruntime on the exported
file, at batch and sequence sizes other than the example's), the shape of the exported graph,
the PyTorch-style arguments, and the errors for models ONNX can't hold."""
from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest

import ember as em
import ember.nn as nn
import ember.nn.functional as F

onnx = pytest.importorskip("onnx")

from ember.onnx import ExportError, export  # noqa: E402


def _ort():
    return pytest.importorskip("onnxruntime")


def _run_ort(model_bytes: bytes, feeds: dict) -> list:
    return _ort().InferenceSession(model_bytes).run(None, feeds)


def _eager(model, *xs) -> list:
    with em.no_grad():
        out = model(*xs)
    out = out if isinstance(out, (tuple, list)) else (out,)
    return [o.numpy() for o in out if isinstance(o, em.Tensor)]


def _export(model, args, **kw) -> bytes:
    buf = io.BytesIO()
    export(model, args, buf, **kw)
    return buf.getvalue()


def _close(got, want, tol=2e-5):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


# ----- the zoo --------------------------------------------------------------------------------


def _mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(16, 4), nn.LogSoftmax(dim=1))


def _cnn():
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6), nn.ReLU(),
                      nn.AvgPool2d(2, ceil_mode=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(6, 3))
    for bn in (m[1], m[5]):  # statistics that make eval mode differ from training mode
        bn.running_mean.copy_(em.randn(bn.num_features) * 0.3)
        bn.running_var.copy_(em.rand(bn.num_features) + 0.5)
        bn.weight.data.copy_(em.rand(bn.num_features) + 0.5)
    return m


class Tagger(nn.Module):
    """Token ids -> per-token class scores."""

    def __init__(self, rnn_cls, **kw):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.rnn = rnn_cls(8, 6, batch_first=True, **kw)
        self.out = nn.Linear(6 * (2 if kw.get("bidirectional") else 1), 5)

    def forward(self, tokens):
        return self.out(self.rnn(self.emb(tokens))[0])


class Encoder(nn.Module):
    """Token ids -> encoded sequence: positions from ``arange(seq)``, two encoder layers."""

    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(20, 16)
        self.pos = nn.Parameter(em.randn(32, 16) * 0.1)
        layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True,
                                           activation="gelu", norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(16, 3)

    def forward(self, tokens):
        seq = tokens.shape[1]
        h = self.tok(tokens) + self.pos[:seq]
        return self.head(self.encoder(h).mean(1))


class CausalLM(nn.Module):
    """A decoder-only block: a causal mask built from the sequence length in forward."""

    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(20, 16)
        self.block = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
        self.head = nn.Linear(16, 20)

    def forward(self, tokens):
        mask = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1])
        return self.head(self.block(self.tok(tokens), src_mask=mask, is_causal=True))


_W = em.randn(12, 5)
_B = em.randn(5)


def plain_function(x):
    """A function over module-level tensors (they become initializers named W and B)."""
    return F.gelu(x.reshape(x.shape[0], -1) @ _W + _B).softmax(-1)


def _tokens(b, t):
    return em.randint(0, 20, (b, t))


BATCH = {"input": {0: "batch"}, "output": {0: "batch"}}
BATCH_SEQ = {"input": {0: "batch", 1: "seq"}, "output": {0: "batch", 1: "seq"}}

ZOO = {
    "mlp": (_mlp, lambda b, t: em.randn(b, 3, 4), BATCH),
    "cnn_batchnorm": (_cnn, lambda b, t: em.randn(b, 1, 10, 10), BATCH),
    "lstm_tagger": (lambda: Tagger(nn.LSTM), _tokens, BATCH_SEQ),
    "lstm_tagger_bidirectional_2layer": (
        lambda: Tagger(nn.LSTM, bidirectional=True, num_layers=2), _tokens, BATCH_SEQ),
    "gru_tagger": (lambda: Tagger(nn.GRU), _tokens, BATCH_SEQ),
    "gru_tagger_bidirectional_2layer": (
        lambda: Tagger(nn.GRU, bidirectional=True, num_layers=2), _tokens, BATCH_SEQ),
    "transformer_encoder": (Encoder, _tokens,
                            {"input": {0: "batch", 1: "seq"}, "output": {0: "batch"}}),
    "causal_transformer": (CausalLM, _tokens, BATCH_SEQ),
    "jitted_module": (lambda: em.jit(_mlp()), lambda b, t: em.randn(b, 3, 4), BATCH),
    "jitted_function": (lambda: em.jit(plain_function), lambda b, t: em.randn(b, 3, 4),
                        BATCH),
    "plain_function": (lambda: plain_function, lambda b, t: em.randn(b, 3, 4), BATCH),
}


def _build(name):
    make, inputs, dyn = ZOO[name]
    model = make()
    if hasattr(model, "eval"):  # a Module, or a jitted one (attributes fall through)
        model.eval()
    return model, inputs, dyn


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_matches_onnxruntime_at_other_batch_and_sequence_sizes(name):
    model, inputs, dyn = _build(name)
    data = _export(model, inputs(2, 5), dynamic_axes=dyn)
    for b, t in ((7, 3), (1, 8)):
        x = inputs(b, t)
        _close(_run_ort(data, {"input": x.numpy()}), _eager(model, x))


def _keras_model():
    keras = pytest.importorskip("ember.keras")
    if not hasattr(keras, "Sequential") or not hasattr(keras.layers, "Conv2D"):
        pytest.skip("ember.keras has no Sequential / Conv2D yet")
    layers = keras.layers
    return keras.Sequential([keras.Input(shape=(8, 8, 1)),
                             layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(2),
                             layers.Flatten(), layers.Dense(10, activation="softmax")])


def test_keras_built_model_matches_onnxruntime():
    model = _keras_model()
    data = _export(model, em.randn(2, 8, 8, 1), dynamic_axes=BATCH)
    x = em.randn(5, 8, 8, 1)
    _close(_run_ort(data, {"input": x.numpy()}), _eager(model, x))


@pytest.mark.parametrize("name", ["mlp", "cnn_batchnorm", "lstm_tagger"])
def test_zoo_runs_on_the_onnx_reference_evaluator(name):
    """The same files run by onnx's own reference implementation (no onnxruntime)."""
    from onnx.reference import ReferenceEvaluator
    model, inputs, dyn = _build(name)
    proto = export(model, inputs(2, 5), None, dynamic_axes=dyn)
    x = inputs(3, 4)
    got = ReferenceEvaluator(proto).run(None, {"input": x.numpy()})
    _close([np.asarray(g) for g in got], _eager(model, x), tol=1e-4)


def test_mlp_file_computes_the_published_formula():
    """The exported MLP against the formula in NumPy with the model's weights."""
    from onnx.reference import ReferenceEvaluator
    m = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    proto = export(m, em.randn(2, 4), None, dynamic_axes=BATCH)
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    w1, b1, w2, b2 = (p.detach().numpy() for p in m.parameters())
    want = np.tanh(x @ w1.T + b1) @ w2.T + b2
    got = ReferenceEvaluator(proto).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ----- the exported graph ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cnn_batchnorm", "lstm_tagger_bidirectional_2layer",
                                  "transformer_encoder"])
def test_graph_is_clean(name):
    model, inputs, dyn = _build(name)
    proto = onnx.load_from_string(_export(model, inputs(2, 5), dynamic_axes=dyn))
    onnx.checker.check_model(proto, full_check=True)
    g = proto.graph
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    assert "Identity" not in {n.op_type for n in g.node}
    assert all(t.name in used for t in g.initializer), "unused initializers"
    assert all(any(o in used for o in n.output) for n in g.node), "dead nodes"
    names = [n.name for n in g.node]
    assert len(set(names)) == len(names) and all(n.startswith("/") for n in names)
    # constants folded: no node computes only from initializers
    inits = {t.name for t in g.initializer}
    assert not [n.name for n in g.node if n.input and all(i in inits for i in n.input if i)]


def test_weights_are_initializers_named_by_state_dict():
    m = _mlp().eval()
    g = export(m, em.randn(2, 3, 4), None).graph
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    for key, value in m.state_dict().items():
        np.testing.assert_array_equal(inits[key], value.numpy())
    assert [n.name for n in g.node][:2] == ["/0/Reshape", "/1/Gemm"]


def test_rnn_gates_are_reordered_for_onnx():
    """ONNX's LSTM wants gates i, o, f, c; PyTorch's weight stacks i, f, g, o."""
    m = Tagger(nn.LSTM).eval()
    g = export(m, _tokens(2, 5), None).graph
    w = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}["rnn.weight_ih_l0.iofc"]
    i, f, c, o = np.split(m.rnn.weight_ih_l0.detach().numpy(), 4)
    np.testing.assert_array_equal(w[0], np.concatenate([i, o, f, c]))
    (lstm,) = [n for n in g.node if n.op_type == "LSTM"]
    assert lstm.input[5:] == [] or not any(lstm.input[5:]), "zero initial states are omitted"


def test_dynamic_axes_become_dim_params():
    model, inputs, dyn = _build("transformer_encoder")
    g = export(model, inputs(2, 5), None, dynamic_axes=dyn).graph

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
    assert dims(g.input[0]) == ["batch", "seq"]
    assert dims(g.output[0]) == ["batch", 3]


def test_undeclared_dynamic_output_dims_are_named_after_their_input_axis():
    m = nn.Linear(4, 2)
    g = export(m, em.randn(3, 4), None, dynamic_axes={"input": [0]}).graph
    assert g.output[0].type.tensor_type.shape.dim[0].dim_param == "input_dynamic_axes_1"


def test_without_dynamic_axes_shapes_are_fixed():
    g = export(_mlp().eval(), em.randn(2, 3, 4), None).graph
    assert [d.dim_value for d in g.input[0].type.tensor_type.shape.dim] == [2, 3, 4]


def test_model_metadata():
    proto = export(_mlp().eval(), em.randn(2, 3, 4), None, input_names=["pixels"],
                   output_names=["log_probs"], dynamic_axes={"pixels": {0: "n"}})
    assert proto.producer_name == "ember" and proto.producer_version == em.__version__
    assert proto.opset_import[0].version == 18 and proto.graph.name == "Sequential"
    assert "Sequential" in proto.doc_string
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["input_names"] == '["pixels"]' and props["output_names"] == '["log_probs"]'
    assert props["dynamic_axes"] == '{"pixels": {"0": "n"}, "log_probs": {"0": "n"}}'
    assert [i.name for i in proto.graph.input] == ["pixels"]
    assert [o.name for o in proto.graph.output] == ["log_probs"]


@pytest.mark.parametrize("opset", [17, 18, 19, 20, 21])
def test_opset_versions(opset):
    model, inputs, dyn = _build("transformer_encoder")
    data = _export(model, inputs(2, 5), dynamic_axes=dyn, opset_version=opset)
    assert onnx.load_from_string(data).opset_import[0].version == opset
    x = inputs(3, 4)
    _close(_run_ort(data, {"input": x.numpy()}), _eager(model, x))


# ----- arguments ------------------------------------------------------------------------------


class TwoInTwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, y, scale=1.0):
        h = self.fc(x) * scale
        return {"sum": h + y, "max": h.amax(-1)}


def test_several_inputs_outputs_and_keyword_arguments():
    m = TwoInTwoOut().eval()
    x, y = em.randn(2, 4), em.randn(2, 3)
    data = _export(m, (x, {"y": y, "scale": 2.0}), input_names=["x", "y"],
                   output_names=["sum", "max"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    x5, y5 = em.randn(5, 4), em.randn(5, 3)
    with em.no_grad():
        want = m(x5, y=y5, scale=2.0)
    _close(_run_ort(data, {"x": x5.numpy(), "y": y5.numpy()}),
           [want["sum"].numpy(), want["max"].numpy()])


def test_writes_the_file_atomically(tmp_path):
    path = tmp_path / "net.onnx"
    proto = export(_mlp().eval(), em.randn(2, 3, 4), str(path))
    assert onnx.load(str(path)) == proto
    assert os.listdir(tmp_path) == ["net.onnx"]  # no temporary file left behind
    export(_mlp().eval(), em.randn(2, 3, 4), path)  # a PathLike replaces it
    assert os.listdir(tmp_path) == ["net.onnx"]


def test_export_params_false_makes_weights_inputs():
    m = nn.Linear(4, 2).eval()
    data = _export(m, em.randn(3, 4), export_params=False)
    g = onnx.load_from_string(data).graph
    assert [i.name for i in g.input] == ["input", "weight", "bias"] and not g.initializer
    x = em.randn(3, 4)
    feeds = {"input": x.numpy(), "weight": m.weight.detach().numpy(),
             "bias": m.bias.detach().numpy()}
    _close(_run_ort(data, feeds), _eager(m, x))


def test_keep_initializers_as_inputs():
    g = export(nn.Linear(4, 2), em.randn(3, 4), None, keep_initializers_as_inputs=True).graph
    assert [i.name for i in g.input] == ["input", "weight", "bias"]
    assert {t.name for t in g.initializer} == {"weight", "bias"}


def test_without_constant_folding_batchnorm_keeps_its_statistics():
    m = _cnn().eval()
    data = _export(m, em.randn(2, 1, 10, 10), do_constant_folding=False)
    inits = {t.name for t in onnx.load_from_string(data).graph.initializer}
    assert {"1.running_mean", "1.running_var", "1.weight", "1.bias"} <= inits
    x = em.randn(2, 1, 10, 10)
    _close(_run_ort(data, {"input": x.numpy()}), _eager(m, x))


def test_train_mode_model_is_exported_in_eval_mode_and_restored():
    m = _cnn().train()
    data = _export(m, em.randn(2, 1, 10, 10))
    assert all(mod.training for mod in m.modules())
    x = em.randn(2, 1, 10, 10)
    m.eval()
    _close(_run_ort(data, {"input": x.numpy()}), _eager(m, x))


def test_training_mode_export_uses_batch_statistics_and_leaves_buffers_alone():
    m = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    x = em.randn(4, 1, 6, 6)
    data = _export(m, x, training="train")
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
    _close(_run_ort(data, {"input": x.numpy()}), _eager(m.train(), x), tol=1e-4)


def test_training_mode_dropout_is_refused():
    with pytest.raises(ExportError, match="dropout.*eval mode"):
        export(_mlp(), em.randn(2, 3, 4), None, training="train")


def test_bad_arguments():
    with pytest.raises(ValueError, match="opset_version must be between 17 and 21"):
        export(_mlp(), em.randn(2, 3, 4), None, opset_version=13)
    with pytest.raises(ValueError, match="'tokens'.*neither inputs"):
        export(_mlp(), em.randn(2, 3, 4), None, dynamic_axes={"tokens": {0: "b"}})
    with pytest.raises(ValueError, match="dynamic axis 5 of input 'input' is out of range"):
        export(_mlp(), em.randn(2, 3, 4), None, dynamic_axes={"input": {5: "b"}})
    with pytest.raises(TypeError, match="args must be a Tensor or a tuple"):
        export(_mlp(), 3.0, None)
    with pytest.raises(ValueError, match="args hold no tensors"):
        export(_mlp(), (3.0,), None)
    with pytest.raises(TypeError, match="expected an ember Module"):
        export(42, em.randn(2), None)


def test_missing_onnx_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install ember\[onnx\]"):
        export(_mlp(), em.randn(2, 3, 4), None)


# ----- sizes that follow a dynamic axis -----------------------------------------------------


class Sizes(nn.Module):
    """Python code reading sizes: zeros(batch, ...), arange(seq), a view, a sliced table."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(em.randn(16, 4))

    def forward(self, x):  # x: (batch, seq, 4)
        b, t = x.shape[0], x.shape[1]
        state = em.zeros(b, 1, 4) + 1.5
        pos = em.arange(t, dtype=em.float32).reshape(1, t, 1)
        h = x + self.table[:t] * pos + state
        flat = h.view(b, -1)
        half = h[:, : t // 2].sum(1)  # a slice bound computed from the size
        tiled = half.reshape(b, 1, 4).repeat(1, t, 1)  # a count that is a dynamic size
        return flat.sum(1, keepdim=True) + half.expand(b, 4) + tiled.sum(1)


def test_python_sizes_of_dynamic_axes_are_computed_at_run_time():
    m = Sizes().eval()
    data = _export(m, em.randn(2, 6, 4), dynamic_axes={"input": {0: "batch", 1: "seq"}})
    ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
    assert {"ConstantOfShape", "Range", "Shape"} <= ops
    for b, t in ((3, 8), (1, 2)):
        x = em.randn(b, t, 4)
        _close(_run_ort(data, {"input": x.numpy()}), _eager(m, x))


def test_shape_dependent_python_value_is_refused():
    def f(x):
        return x * (1.0 / x.shape[1])  # a number computed from the size: baked in

    with pytest.raises(ExportError, match="depend on a dynamic axis") as e:
        export(f, em.randn(2, 5), None, dynamic_axes={"input": {1: "seq"}})
    assert "test_export.py" in str(e.value) and "x * (1.0 / x.shape[1])" in str(e.value)


def test_attribute_that_follows_a_dynamic_axis_is_refused_where_onnx_cannot_follow():
    def f(x):
        return x.unfold(1, x.shape[0], 1)  # the window size is the batch size

    with pytest.raises(ExportError, match=r"attribute size=2 changes with a dynamic axis"):
        export(f, em.randn(2, 12), None, dynamic_axes={"input": {0: "batch"}})


def test_loop_over_a_dynamic_axis_is_refused():
    def f(x):
        return sum(x[:, i] for i in range(x.shape[1]))  # unrolled: one add per step

    with pytest.raises(ExportError, match="changes when dynamic axis 'seq' changes size"):
        export(f, em.randn(2, 5), None, dynamic_axes={"input": {1: "seq"}})


# ----- models ONNX can't hold -----------------------------------------------------------------


def test_item_inside_forward_is_refused_with_the_source_line():
    def f(x):
        if x.sum().item() > 0:  # data-dependent branch
            return x * 2
        return x

    with pytest.raises(ExportError, match=r"item\(\)") as e:
        export(f, em.randn(3), None)
    assert "test_export.py" in str(e.value) and "if x.sum().item() > 0" in str(e.value)


def test_numpy_round_trip_inside_forward_is_refused():
    def f(x):
        return em.tensor(np.tanh(x.numpy())) + x

    with pytest.raises(ExportError, match=r"numpy\(\)") as e:
        export(f, em.randn(3), None)
    assert "np.tanh(x.numpy())" in str(e.value)


def test_all_unsupported_ops_are_listed_in_one_error():
    def f(a, b):
        x = em.linalg.inv(a)
        y = em.linalg.solve(a, b)
        return x.sum() + y.sum()

    with pytest.raises(ExportError) as e:
        export(f, (em.eye(3) * 2.0, em.randn(3, 2)), None)
    msg = str(e.value)
    assert "2 op(s)" in msg and "linalg_inv" in msg and "linalg_solve" in msg
    assert {p[0] for p in e.value.problems} == {"linalg_inv", "linalg_solve"}


def test_rules_registered_from_other_files():
    """Another subsystem's op exports through the rule it registers with onnx_rule."""
    from ember.onnx.export_ops import onnx_rule
    from ember.ops.registry import OPS, apply, register
    name = "test_export_scaled_tanh"
    op = OPS.get(name) or register(name)(lambda xp, x, scale: xp.tanh(x) * scale)

    @onnx_rule(name)
    def _(b, node):
        s = b.scalar(node.attrs["scale"], node.outputs[0].dtype)
        return b.op("Mul", [b.op("Tanh", [b.x(0)]), s])

    def f(x):
        return apply(op, (x,), {"scale": 3.0})

    x = em.randn(4)
    _close(_run_ort(_export(f, x), {"input": x.numpy()}), [np.tanh(x.numpy()) * 3.0])


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool_indices_match_onnxruntime(tmp_path, ceil_mode):
    ort = pytest.importorskip("onnxruntime")
    import ember.nn.functional as F
    x = em.randn(2, 3, 7, 7)
    fn = lambda t: F.max_pool2d(t, 2, stride=2, padding=1, ceil_mode=ceil_mode,  # noqa: E731
                                return_indices=True)
    path = str(tmp_path / "pool.onnx")
    em.onnx.export(fn, (x,), path, input_names=["x"], output_names=["y", "i"])
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y, i = sess.run(None, {"x": x.numpy()})
    want_y, want_i = fn(x)
    np.testing.assert_allclose(y, want_y.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(i, want_i.numpy())


def test_multi_input_keras_model_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from ember import keras
    from ember.keras import layers
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    h = layers.Concatenate()([layers.Dense(5, activation="relu")(a), layers.Dense(5)(b)])
    model = keras.Model([a, b], [layers.Dense(2, activation="softmax")(h), layers.Dense(1)(h)])
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((2, 4), np.float32), rng.standard_normal((2, 3), np.float32)
    path = str(tmp_path / "two.onnx")
    export(model, (em.from_numpy(xa), em.from_numpy(xb)), path, input_names=["a", "b"],
           dynamic_axes={"a": {0: "n"}, "b": {0: "n"}})
    xa, xb = rng.standard_normal((7, 4), np.float32), rng.standard_normal((7, 3), np.float32)
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
        None, {"a": xa, "b": xb})
    want = model.predict([xa, xb], verbose=0)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
