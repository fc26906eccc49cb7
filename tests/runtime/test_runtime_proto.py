"""ember.runtime._proto: the NumPy-only ONNX protobuf reader, against the fixture files'
known contents and (where installed) against the onnx package's own parser."""
import os

import numpy as np
import pytest

from ember.runtime._proto import DecodeError, parse_model

DATA = os.path.join(os.path.dirname(__file__), "data")


def read(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def test_reads_the_fixture_fields_written_by_onnx_helper():
    m = parse_model(read("mlp.onnx"))
    assert (m.ir_version, m.producer_name, m.producer_version) == (8, "fixture", "1")
    assert [(o.domain, o.version) for o in m.opset_import] == [("", 17)]
    assert {e.key: e.value for e in m.metadata_props} == {"purpose": "ember.runtime tests"}
    g = m.graph
    assert g.name == "mlp"
    assert [n.op_type for n in g.node] == ["MatMul", "Add", "Relu", "Gemm", "Softmax"]
    assert list(g.node[3].input) == ["r", "W2", "b2"]
    attrs = {a.name: a for a in g.node[3].attribute}
    assert attrs["transB"].i == 1 and attrs["transB"].type == 2   # INT
    assert {a.name: a.i for a in g.node[4].attribute} == {"axis": -1}  # a negative varint
    shapes = {t.name: list(t.dims) for t in g.initializer}
    assert shapes == {"W1": [6, 16], "b1": [16], "W2": [3, 16], "b2": [3]}
    w1 = next(t for t in g.initializer if t.name == "W1")
    assert w1.data_type == 1 and len(w1.raw_data) == 6 * 16 * 4
    x = g.input[0]
    dims = x.type.tensor_type.shape.dim
    assert x.type.tensor_type.elem_type == 1
    assert [(d.dim_param, d.dim_value) for d in dims] == [("batch", 0), ("", 6)]
    assert [o.name for o in g.output] == ["probs", "logits"]


@pytest.mark.parametrize("cut", [7, 100, 500, -3])
def test_truncated_files_raise_decode_error(cut):
    data = read("mlp.onnx")
    # cutting inside a length-delimited field leaves a length that runs past the end
    with pytest.raises(DecodeError, match="not a valid ONNX model"):
        parse_model(data[:cut])


def test_garbage_and_empty_input():
    with pytest.raises(DecodeError):
        parse_model(b"\xff" * 20)
    with pytest.raises(DecodeError, match="no graph"):
        parse_model(b"")


# ----- against the onnx package ----------------------------------------------------------------


def _rich_model(onnx, tmp_path):
    """Every field kind the reader handles: attributes of each type, tensors stored in
    raw_data and in each typed field, a subgraph, symbolic dims, external data."""
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh
    rng = np.random.default_rng(0)
    typed = [h.make_tensor("f", T.FLOAT, [2, 2], [1.5, -2.0, 3.25, 0.0]),
             h.make_tensor("d", T.DOUBLE, [3], [1e300, -1.0, 2.5]),
             h.make_tensor("i64", T.INT64, [4], [-1, 2 ** 40, -(2 ** 62), 7]),
             h.make_tensor("i32", T.INT32, [3], [-5, 0, 2 ** 30]),
             h.make_tensor("i8", T.INT8, [3], [-128, 5, 127]),
             h.make_tensor("u64", T.UINT64, [2], [2 ** 63 + 5, 1]),
             h.make_tensor("h", T.FLOAT16, [2], np.array([1.5, -2], np.float16).view(np.uint16)),
             nh.from_array(rng.standard_normal((3, 4)).astype(np.float32), "raw"),
             nh.from_array(np.float32(2.5), "scalar")]
    sub = h.make_graph([h.make_node("Identity", ["raw"], ["o"])], "then",
                       [], [h.make_tensor_value_info("o", T.FLOAT, [3, 4])])
    nodes = [h.make_node("Foo", ["x", "raw"], ["y"], domain="my.domain", name="foo",
                         i=-7, f=0.25, s=b"text", ints=[-1, 0, 300, -(2 ** 40)],
                         floats=[1.5, -0.5], strings=[b"a", b"bc"],
                         t=nh.from_array(np.arange(5, dtype=np.int64)), g=sub,
                         doc_string="a node")]
    big = rng.standard_normal((64, 64)).astype(np.float32)
    g = h.make_graph(nodes, "rich", [h.make_tensor_value_info("x", T.FLOAT, ["n", None, 3])],
                     [h.make_tensor_value_info("y", T.FLOAT, None)],
                     initializer=typed + [nh.from_array(big, "big")])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 18), h.make_opsetid("my.domain", 2)],
                     producer_name="tester", doc_string="doc")
    path = tmp_path / "rich.onnx"
    onnx.save(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="rich.data", size_threshold=1024)
    return path


def _same(ours, theirs, where="model"):
    """Compare every field our message declares with the onnx message's field."""
    for name, kind, repeated, sub in ours._FIELDS.values():
        a, b = getattr(ours, name), getattr(theirs, name)
        w = f"{where}.{name}"
        if sub is not None and repeated:
            assert len(a) == len(b), w
            for i, (x, y) in enumerate(zip(a, b)):
                _same(x, y, f"{w}[{i}]")
        elif sub is not None:
            if a is None:
                assert not theirs.HasField(name), w
            else:
                _same(a, b, w)
        elif repeated:
            np.testing.assert_array_equal(np.asarray(list(a)), np.asarray(list(b)), err_msg=w)
        elif isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-7), w
        else:
            assert a == b, w


def test_matches_onnx_parser_field_by_field(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = _rich_model(onnx, tmp_path)
    data = path.read_bytes()
    theirs = onnx.ModelProto()
    theirs.ParseFromString(data)
    ours = parse_model(data)
    _same(ours, theirs)
    big = next(t for t in ours.graph.initializer if t.name == "big")
    assert big.data_location == 1 and {e.key for e in big.external_data} >= {"location"}


def test_imported_through_the_reader_values_match_onnx_numpy_helper(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from ember.onnx.load import _tensor_to_array
    path = _rich_model(onnx, tmp_path)
    ours = parse_model(path.read_bytes())
    theirs = onnx.load(str(path))
    for a, b in zip(ours.graph.initializer, theirs.graph.initializer):
        if a.data_type == 13 or a.name == "big":  # uint64 has no ember dtype; big is external
            continue
        np.testing.assert_array_equal(_tensor_to_array(a), numpy_helper.to_array(b))
    got = _tensor_to_array(next(t for t in ours.graph.initializer if t.name == "big"),
                           str(tmp_path))
    np.testing.assert_array_equal(got, numpy_helper.to_array(theirs.graph.initializer[-1]))
