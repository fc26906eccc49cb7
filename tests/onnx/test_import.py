"""ember.onnx.load: reading protos, the OnnxModule contract (parameters, inputs, outputs,
errors), shape subgraphs, fine-tuning and ember.jit on imported graphs.

The first tests need no onnx package: they import proto-like objects (what ember.runtime's
own protobuf reader produces) through ``from_model_proto``. The rest build models with
``onnx.helper`` and check values against NumPy (and onnxruntime where installed)."""
import io
import sys
import warnings
from types import SimpleNamespace as NS

import numpy as np
import pytest

import ember as em
from ember.onnx.load import _attr_value, _tensor_to_array, from_model_proto
from finite_differences import numeric_grads  # noqa: E402

# ----- proto-like objects: no onnx package needed ---------------------------------------------

_CODE = {np.float32: 1, np.uint8: 2, np.int8: 3, np.int16: 5, np.int32: 6, np.int64: 7,
         np.bool_: 9, np.float16: 10, np.float64: 11}


def _tensor(name, arr, raw=True):
    arr = np.asarray(arr)
    code = _CODE[arr.dtype.type]
    t = NS(name=name, data_type=code, dims=list(arr.shape), raw_data=b"", float_data=[],
           double_data=[], int32_data=[], int64_data=[], uint64_data=[], data_location=0,
           external_data=[])
    if raw:
        t.raw_data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    elif code == 1:
        t.float_data = arr.ravel().tolist()
    elif code == 11:
        t.double_data = arr.ravel().tolist()
    elif code == 7:
        t.int64_data = arr.ravel().tolist()
    elif code == 10:
        t.int32_data = arr.ravel().view(np.uint16).tolist()
    else:
        t.int32_data = arr.ravel().astype(np.int64).tolist()
    return t


def _attr(name, value):
    a = NS(name=name, type=0, i=0, f=0.0, s=b"", t=None, g=None, ints=[], floats=[],
           strings=[])
    if isinstance(value, int):
        a.type, a.i = 2, value
    elif isinstance(value, float):
        a.type, a.f = 1, value
    elif isinstance(value, str):
        a.type, a.s = 3, value.encode()
    elif isinstance(value, np.ndarray):
        a.type, a.t = 4, _tensor("", value)
    elif all(isinstance(v, int) for v in value):
        a.type, a.ints = 7, list(value)
    else:
        a.type, a.floats = 6, [float(v) for v in value]
    return a


def _node(op, inputs, outputs, **attrs):
    return NS(op_type=op, domain="", name="", input=inputs, output=outputs,
              attribute=[_attr(k, v) for k, v in attrs.items()])


def _vi(name, code=1, dims=None):
    shape = NS(dim=[NS(dim_value=d or 0) for d in dims]) if dims is not None else None
    return NS(name=name, type=NS(tensor_type=NS(elem_type=code, shape=shape)))


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = NS(name="g", node=nodes, initializer=list(inits), input=inputs, output=outputs)
    return NS(graph=graph, opset_import=[NS(domain="", version=opset)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int8, np.uint8,
                                   np.int16, np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("raw", [True, False])
def test_tensor_fields_decode_to_the_same_array(dtype, raw):
    arr = (np.arange(6).reshape(2, 3) % 3).astype(dtype)
    out = _tensor_to_array(_tensor("w", arr, raw=raw))
    assert out.dtype == arr.dtype and out.shape == (2, 3)
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("value,expected", [
    (3, 3), (0.5, 0.5), ("SAME_UPPER", "SAME_UPPER"), ([1, 2, 3], [1, 2, 3]),
    ([0.5, 1.5], [0.5, 1.5])])
def test_attribute_values_are_python_values(value, expected):
    assert _attr_value(_attr("a", value)) == expected


def test_proto_like_mlp_runs_without_the_onnx_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # ember.runtime's situation
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal((3, 5)).astype(np.float32), np.ones(5, np.float32)
    w2 = rng.standard_normal((5, 2)).astype(np.float32)
    nodes = [_node("MatMul", ["x", "w1"], ["h"]), _node("Add", ["h", "b1"], ["a"]),
             _node("Relu", ["a"], ["r"]), _node("MatMul", ["r", "w2"], ["y"]),
             _node("Softmax", ["y"], ["p"], axis=-1)]
    model = _model(nodes, [_vi("x", 1, [None, 3])], [_vi("p")],
                   [_tensor("w1", w1), _tensor("b1", b1, raw=False), _tensor("w2", w2)])
    m = from_model_proto(model)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    z = np.maximum(x @ w1 + b1, 0) @ w2
    ref = np.exp(z - z.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(m(x).detach().numpy(), ref, rtol=1e-5, atol=1e-6)


# ----- models built with onnx.helper ------------------------------------------------------------

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import ember.onnx  # noqa: E402


def _build(nodes, inputs, outputs, inits=(), opset=17, name="g"):
    g = helper.make_graph(nodes, name, inputs, outputs,
                          [numpy_helper.from_array(v, k) for k, v in dict(inits).items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _inp(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def _mlp_model(rng):
    inits = {"fc1.weight": rng.standard_normal((6, 3)).astype(np.float32),
             "fc1.bias": rng.standard_normal(6).astype(np.float32),
             "fc2.weight": rng.standard_normal((2, 6)).astype(np.float32),
             "fc2.bias": rng.standard_normal(2).astype(np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "fc1.weight", "fc1.bias"], ["h"], transB=1),
             helper.make_node("Tanh", ["h"], ["t"]),
             helper.make_node("Gemm", ["t", "fc2.weight", "fc2.bias"], ["y"], transB=1)]
    return _build(nodes, [_inp("x", ["N", 3])], [_inp("y", ["N", 2])], inits), inits


def _np_mlp(x, p):
    return np.tanh(x @ p["fc1.weight"].T + p["fc1.bias"]) @ p["fc2.weight"].T + p["fc2.bias"]


@pytest.mark.parametrize("source", ["bytes", "path", "file", "proto"])
def test_load_accepts_path_bytes_file_and_proto(source, tmp_path):
    model, p = _mlp_model(np.random.default_rng(0))
    data = model.SerializeToString()
    if source == "path":
        path = tmp_path / "mlp.onnx"
        path.write_bytes(data)
        arg = str(path)
    else:
        arg = {"bytes": data, "file": io.BytesIO(data), "proto": model}[source]
    m = ember.onnx.load(arg)
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(m(x).detach().numpy(), _np_mlp(x, p), rtol=1e-5, atol=1e-6)


def test_initializers_become_named_parameters_and_buffers():
    model, p = _mlp_model(np.random.default_rng(0))
    model.graph.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64),
                                                           "onnx::Shape_7"))
    m = ember.onnx.load(model)
    params = dict(m.named_parameters())
    assert sorted(params) == sorted(p)     # dots become submodules: PyTorch's names
    assert all(t.requires_grad for t in params.values())
    np.testing.assert_array_equal(params["fc1.weight"].detach().numpy(), p["fc1.weight"])
    buffers = dict(m.named_buffers())
    assert list(buffers) == ["onnx__Shape_7"] and buffers["onnx__Shape_7"].dtype == em.int64
    assert m.initializer_names["onnx__Shape_7"] == "onnx::Shape_7"
    assert m.initializer_names["fc2.bias"] == "fc2.bias"
    assert m.input_names == ["x"] and m.output_names == ["y"]


def test_inputs_by_keyword_several_outputs_in_graph_order():
    nodes = [helper.make_node("Sub", ["a", "b"], ["d"]), helper.make_node("Mul", ["a", "b"],
                                                                          ["p"])]
    m = ember.onnx.load(_build(nodes, [_inp("a", [2]), _inp("b", [2])],
                               [_inp("p", [2]), _inp("d", [2])]))
    a, b = np.array([3.0, 4.0], np.float32), np.array([1.0, 5.0], np.float32)
    p, d = m(b=b, a=em.tensor(a))
    np.testing.assert_array_equal(p.numpy(), a * b)
    np.testing.assert_array_equal(d.numpy(), a - b)


@pytest.mark.parametrize("call,error,words", [
    (lambda m: m(np.ones((2, 3), np.float64)), TypeError, ["'x'", "float32", "float64"]),
    (lambda m: m(np.ones((2, 4), np.float32)), ValueError, ["'x'", "(2, 4)", "'?', 3"]),
    (lambda m: m(), TypeError, ["missing", "'x'"]),
    (lambda m: m(np.ones((2, 3), np.float32), np.ones(1)), TypeError, ["1 input", "2"]),
    (lambda m: m(z=np.ones((2, 3), np.float32)), TypeError, ["unknown input name 'z'"]),
])
def test_bad_inputs_name_the_input_and_the_expectation(call, error, words):
    m = ember.onnx.load(_mlp_model(np.random.default_rng(0))[0])
    with pytest.raises(error) as e:
        call(m)
    for w in words:
        assert w in str(e.value)


def test_every_unsupported_op_is_listed_in_one_error():
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("FooOp", ["a"], ["b"], name="foo_1"),
             helper.make_node("FooOp", ["b"], ["c"], name="foo_2"),
             helper.make_node("SequenceInsert", ["c"], ["d"], name="seq"),
             helper.make_node("Bar", ["d"], ["e"], domain="com.example", name="bar")]
    model = _build(nodes, [_inp("x", [2])], [_inp("e", [2])])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(NotImplementedError) as e:
        ember.onnx.load(model)
    msg = str(e.value)
    assert "3 op type(s)" in msg
    assert "FooOp (domain 'ai.onnx', opset 17): 2 node(s), e.g. 'foo_1', 'foo_2'" in msg
    assert "SequenceInsert" in msg and "'seq'" in msg
    assert "Bar (domain 'com.example', opset 1): 1 node(s)" in msg


def test_unsupported_attribute_values_fail_at_load():
    node = helper.make_node("Pad", ["x", "p"], ["y"], mode="mirror_please")
    model = _build([node], [_inp("x", [2])], [_inp("y", [4])],
                   {"p": np.array([1, 1], np.int64)})
    with pytest.raises(NotImplementedError, match="Pad node .*mode='mirror_please'"):
        ember.onnx.load(model)


def test_old_opsets_are_refused_with_the_conversion_to_use():
    model = _build([helper.make_node("Relu", ["x"], ["y"])], [_inp("x", [2])],
                   [_inp("y", [2])], opset=11)
    with pytest.raises(ValueError, match=r"opset 11.*version_converter.convert_version"):
        ember.onnx.load(model)


def test_missing_onnx_package_names_the_extra(monkeypatch):
    data = _mlp_model(np.random.default_rng(0))[0].SerializeToString()
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install ember\[onnx\]"):
        ember.onnx.load(data)


def test_a_failing_node_is_named_in_the_error():
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="bad_reshape")]
    model = _build(nodes, [_inp("x", [2, 3])], [_inp("y", None)],
                   {"s": np.array([4, -1], np.int64)})
    m = ember.onnx.load(model)
    with pytest.raises(ValueError, match=r"Reshape node 'bad_reshape'.*\(2, 3\).*\[4, -1\]"):
        m(np.ones((2, 3), np.float32))


def test_external_data_is_read_from_the_model_folder(tmp_path):
    model, p = _mlp_model(np.random.default_rng(0))
    path = tmp_path / "big.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").exists()
    m = ember.onnx.load(str(path))
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(m(x).detach().numpy(), _np_mlp(x, p), rtol=1e-5, atol=1e-6)


# ----- shape subgraphs, jit -------------------------------------------------------------------


def _dynamic_reshape_model():
    """(N, 4, 3) -> Shape -> Gather(0) -> Concat([N, -1]) -> Reshape: flatten per sample."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["y"])]
    w = np.random.default_rng(3).standard_normal((12, 2)).astype(np.float32)
    inits = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64), "w": w}
    return _build(nodes, [_inp("x", ["N", 4, 3])], [_inp("y", ["N", 2])], inits), w


@pytest.mark.parametrize("batch", [1, 5])
def test_shape_gather_concat_reshape_follows_the_batch(batch):
    model, w = _dynamic_reshape_model()
    m = ember.onnx.load(model)
    x = np.random.default_rng(batch).standard_normal((batch, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(m(x).detach().numpy(), x.reshape(batch, -1) @ w, rtol=1e-5)


def test_jit_folds_shape_arithmetic_and_matches_eager():
    model, w = _dynamic_reshape_model()
    m = ember.onnx.load(model)
    fast = em.jit(m)
    with warnings.catch_warnings(), em.no_grad():
        warnings.simplefilter("error")          # no eager fallback allowed
        for batch in (2, 3):
            x = em.tensor(np.random.default_rng(batch).standard_normal((batch, 4, 3))
                          .astype(np.float32))
            np.testing.assert_allclose(fast(x).numpy(), m(x).numpy(), rtol=1e-6)
            np.testing.assert_allclose(fast(x).numpy(), x.numpy().reshape(batch, -1) @ w,
                                       rtol=1e-5)
    ops = [n.op.name for n in fast.graph.nodes]
    assert "matmul" in ops and not any("gather" in o or o == "cat" for o in ops)
    assert fast.retraces == 1   # a new batch size is a new signature


def _cnn_model(rng):
    c = rng.standard_normal((4, 2, 3, 3)).astype(np.float32) * 0.5
    inits = {"conv.weight": c, "conv.bias": rng.standard_normal(4).astype(np.float32),
             "bn.weight": rng.uniform(0.5, 1.5, 4).astype(np.float32),
             "bn.bias": rng.standard_normal(4).astype(np.float32),
             "bn.running_mean": rng.standard_normal(4).astype(np.float32),
             "bn.running_var": rng.uniform(0.5, 2, 4).astype(np.float32),
             "fc.weight": rng.standard_normal((3, 4)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"],
                              pads=[1, 1, 1, 1], strides=[1, 1]),
             helper.make_node("BatchNormalization", ["c", "bn.weight", "bn.bias",
                                                     "bn.running_mean", "bn.running_var"],
                              ["b"], epsilon=1e-5),
             helper.make_node("Relu", ["b"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["p"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc.weight"], ["y"], transB=1)]
    return _build(nodes, [_inp("x", ["N", 2, 6, 6])], [_inp("y", ["N", 3])], inits), inits


def _np_cnn(x, p):
    n, _, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    k = p["conv.weight"]
    c = np.zeros((n, 4, h, w))
    for i in range(3):
        for j in range(3):
            c += np.einsum("nchw,oc->nohw", xp[:, :, i:i + h, j:j + w], k[:, :, i, j])
    c += p["conv.bias"][:, None, None]
    bn = (c - p["bn.running_mean"][:, None, None]) / np.sqrt(
        p["bn.running_var"][:, None, None] + 1e-5)
    r = np.maximum(bn * p["bn.weight"][:, None, None] + p["bn.bias"][:, None, None], 0)
    pooled = r.reshape(n, 4, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    return pooled.mean(axis=(2, 3)) @ p["fc.weight"].T


def test_cnn_matches_numpy_eager_and_jitted():
    rng = np.random.default_rng(0)
    model, p = _cnn_model(rng)
    m = ember.onnx.load(model)
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    ref = _np_cnn(x.astype(np.float64), p)
    eager = m(x).detach().numpy()
    np.testing.assert_allclose(eager, ref, rtol=1e-4, atol=1e-5)
    fast = em.jit(m)
    with em.no_grad():
        xt = em.tensor(x)
        fast(xt)
        np.testing.assert_allclose(fast(xt).numpy(), eager, rtol=1e-6, atol=1e-7)
    assert {"conv", "max_pool"} <= {n.op.name for n in fast.graph.nodes}


def test_cnn_matches_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(1)
    model, _ = _cnn_model(rng)
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"x": x})[0]
    np.testing.assert_allclose(ember.onnx.load(model)(x).detach().numpy(), ref, rtol=1e-4,
                               atol=1e-5)


# ----- fine-tuning ----------------------------------------------------------------------------


def test_imported_parameters_get_exact_gradients():
    rng = np.random.default_rng(0)
    model, p = _mlp_model(rng)
    m = ember.onnx.load(model).double()
    x = rng.standard_normal((4, 3))
    target = rng.standard_normal((4, 2))
    loss = ((m(em.tensor(x)) - em.tensor(target)) ** 2).mean()
    loss.backward()
    names = list(p)
    params = dict(m.named_parameters())

    def f(*arrays):
        q = dict(zip(names, arrays))
        return float(((_np_mlp(x, q) - target) ** 2).mean())

    expected = numeric_grads(f, *[p[k] for k in names])
    for k, g in zip(names, expected):
        np.testing.assert_allclose(params[k].grad.numpy(), g, rtol=1e-5, atol=1e-8)


def test_sgd_fine_tuning_lowers_the_loss():
    rng = np.random.default_rng(0)
    m = ember.onnx.load(_mlp_model(rng)[0])
    x = em.tensor(rng.standard_normal((16, 3)).astype(np.float32))
    y = em.tensor(rng.standard_normal((16, 2)).astype(np.float32))
    opt = em.optim.SGD(m.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    # the trained weights are what the module runs with, and what state_dict saves
    assert "fc1.weight" in m.state_dict()


def test_initializer_names_that_would_clash_stay_usable():
    names = {"fc.weight": np.ones((2, 2), np.float32), "fc": np.ones(2, np.float32),
             "training": np.full(2, 2.0, np.float32), "a/b:0": np.full(2, 3.0, np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "fc.weight"], ["h"]),
             helper.make_node("Add", ["h", "fc"], ["h2"]),
             helper.make_node("Mul", ["h2", "training"], ["h3"]),
             helper.make_node("Add", ["h3", "a/b:0"], ["y"])]
    m = ember.onnx.load(_build(nodes, [_inp("x", [1, 2])], [_inp("y", [1, 2])], names))
    assert m.training is True                       # the Module flag is untouched
    assert sorted(m.initializer_names.values()) == sorted(names)
    assert set(dict(m.named_parameters())) == set(m.initializer_names)
    assert m.initializer_names["training_"] == "training"
    assert m.initializer_names["a_b_0"] == "a/b:0"
    x = np.array([[1.0, 2.0]], np.float32)
    np.testing.assert_allclose(m(x).detach().numpy(), ((x @ np.ones((2, 2)) + 1) * 2 + 3))
