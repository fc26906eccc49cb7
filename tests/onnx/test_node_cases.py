"""ONNX's backend node test cases for every op ember claims: each case must pass, or be
unsupported for a stated reason outside the tensor types ember has (float8/int4/uint16+
element types, strings, sequences) or an old-opset case whose data the version converter's
output no longer accepts. The whole sweep runs in a few seconds (the cases are
generated in-process by the onnx package); docs/onnx_coverage.md is its table."""
import os

import pytest

pytest.importorskip("onnx")
from ember.onnx import coverage  # noqa: E402
from ember.onnx.import_ops import supported_ops  # noqa: E402

# the only reasons a claimed op's case may be skipped: data ember has no tensor type for
ALLOWED_UNSUPPORTED = ("element type", "has no ember tensor type", "ember takes bool",
                       "sequences, maps and optionals", "its data no longer fits",
                       "SequenceConstruct", "SequenceInsert", "Optional")  # non-tensor values


@pytest.fixture(scope="module")
def cases():
    return coverage.node_cases()


@pytest.mark.parametrize("op", supported_ops())
def test_every_case_of_a_claimed_op_passes(op, cases):
    mine = [c for c in cases if c.op == op]
    if not mine:
        pytest.skip(f"onnx {pytest.importorskip('onnx').__version__} has no node case for {op}")
    results = [coverage.run_case(c) for c in mine]
    failed = [f"{r.name}: {r.reason}" for r in results if r.status == "fail"]
    assert not failed, "\n".join(failed)
    odd = [f"{r.name}: {r.reason}" for r in results if r.status == "unsupported"
           and not any(k in r.reason for k in ALLOWED_UNSUPPORTED)]
    assert not odd, "\n".join(odd)
    direct = [r for r in results if not r.expanded]
    assert any(r.status == "pass" for r in direct) or all(
        r.status == "unsupported" for r in direct)


def test_a_wrong_result_is_reported_as_a_failure(cases):
    """The runner itself can fail: a case whose expected output is altered does not pass."""
    case = next(c for c in cases if c.name == "test_relu")
    bad = coverage.NodeCase(case.name, case.op, case.domain, False, case.model, case.inputs,
                            [case.outputs[0] + 1.0], case.ops)
    result = coverage.run_case(bad)
    assert result.status == "fail" and "values differ" in result.reason
    wrong_type = coverage.NodeCase(case.name, case.op, case.domain, False, case.model,
                                   case.inputs, [case.outputs[0].astype("float64")], case.ops)
    assert "dtype" in coverage.run_case(wrong_type).reason


def test_unclaimed_ops_are_reported_not_run(cases):
    case = next(c for c in cases if c.op == "TfIdfVectorizer")
    result = coverage.run_case(case)
    assert result.status == "unclaimed" and "TfIdfVectorizer" in result.reason


def test_the_coverage_table_lists_every_claimed_op(cases):
    results = coverage.run(["Relu", "Conv"])
    text = coverage.to_markdown(results)
    assert "| Relu | 1 / 1 |" in text and "| Conv |" in text
    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "onnx_coverage.md")
    with open(path) as f:
        doc = f.read()
    missing = [op for op in supported_ops() if f"| {op} |" not in doc
               and any(c.op == op for c in cases)]
    assert not missing, f"docs/onnx_coverage.md is stale; regenerate it (missing {missing})"
