"""How much of ONNX ``ember.onnx.load`` runs: the ONNX backend node test cases, per op.

The cases are the ones the ``onnx`` package ships as Python code
(``onnx.backend.test.case.node``: each builds a one-node model and computes its expected
outputs with NumPy / onnx's reference implementation); they are generated in-process, no
files or network needed. For every case whose op ember claims (has an import rule), the
model is loaded with :func:`ember.onnx.load`, run on the case's inputs, and compared with
the expected outputs as onnx's own backend tests do (same dtype and shape, values within
rtol=1e-3, atol=1e-7). Cases made for opsets older than 13 are first converted with
``onnx.version_converter`` — what ember's opset error tells users to do. "_expanded" cases
(the op's ONNX function body spelled out in primitive ops) run when ember claims every op in
them.

    python -m ember.onnx.coverage --out docs/onnx_coverage.md      # the table
    python -m ember.onnx.coverage --ops Conv,Gemm -v               # a few ops, with reasons
"""
from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

RTOL, ATOL = 1e-3, 1e-7


@dataclass
class NodeCase:
    """One backend test case: its model, data and the op it tests."""
    name: str
    op: str
    domain: str
    expanded: bool
    model: object
    inputs: list
    outputs: list
    ops: frozenset      # (domain, op_type) of every node in the model


@dataclass
class CaseResult:
    name: str
    op: str
    expanded: bool
    status: str         # "pass" | "fail" | "unsupported" | "unclaimed"
    reason: str = ""
    seconds: float = 0.0


def _import_onnx():
    try:
        import onnx  # noqa: F401
        import onnx.backend.test.case.node as node_cases
    except ImportError as e:
        raise ImportError("ember.onnx.coverage needs the 'onnx' package: "
                          "pip install ember[onnx]") from e
    return node_cases


_CASES: list | None = None


def node_cases() -> list:
    """Every node test case of the installed onnx package, as :class:`NodeCase` objects."""
    global _CASES
    if _CASES is not None:
        return _CASES
    node_mod = _import_onnx()
    state = np.random.get_state()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        raw = node_mod.collect_testcases()
    np.random.set_state(state)  # collecting seeds NumPy's global generator
    direct = {}
    for c in raw:
        if "_expanded" not in c.name:
            n = c.model.graph.node[0]
            direct[c.name] = (n.op_type, n.domain if n.domain != "ai.onnx" else "")
    out = []
    for c in raw:
        expanded = "_expanded" in c.name
        base = c.name.split("_expanded")[0] if expanded else c.name
        op, domain = direct.get(base, ("?", ""))
        ops = frozenset((n.domain if n.domain != "ai.onnx" else "", n.op_type)
                        for n in c.model.graph.node)
        inputs, outputs = c.data_sets[0]
        out.append(NodeCase(c.name, op, domain, expanded, c.model, list(inputs),
                            list(outputs), ops))
    _CASES = out
    return out


def claimed(case: NodeCase) -> bool:
    """Whether ember claims the case: its op (and, expanded, every op in it) has a rule."""
    from .import_ops import RULES
    if case.expanded:
        return all(k in RULES for k in case.ops)
    return (case.domain, case.op) in RULES


def _as_array(v):
    if isinstance(v, (np.ndarray, np.generic)):
        return np.asarray(v)
    if isinstance(v, (list, dict)) or v is None:
        raise TypeError(f"a {type(v).__name__} value (sequences, maps and optionals are not "
                        f"tensors; ember imports tensor graphs only)")
    from .load import _tensor_to_array
    return _tensor_to_array(v)


def _expected(v):
    if isinstance(v, (np.ndarray, np.generic)):
        return np.asarray(v)
    import onnx.numpy_helper
    return onnx.numpy_helper.to_array(v)


def run_case(case: NodeCase) -> CaseResult:
    """Load, run and compare one case."""
    from .load import MIN_OPSET, from_model_proto
    t0 = time.perf_counter()

    def result(status, reason=""):
        return CaseResult(case.name, case.op, case.expanded, status, reason,
                          time.perf_counter() - t0)

    if not claimed(case):
        from .import_ops import RULES
        missing = sorted(op for d, op in case.ops if (d, op) not in RULES)
        return result("unclaimed", "no rule for " + ", ".join(missing))
    model = case.model
    version = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                  default=0)
    converted = bool(version and version < MIN_OPSET)
    if converted:
        try:
            import onnx.version_converter
            model = onnx.version_converter.convert_version(model, MIN_OPSET)
        except Exception as e:  # noqa: BLE001 - the converter raises many kinds
            return result("unsupported", f"opset {version} model; the version converter "
                                         f"failed: {_first_line(e)}")
    try:
        module = from_model_proto(model)
    except NotImplementedError as e:
        return result("unsupported", _reason(e))
    except TypeError as e:
        return result("unsupported" if "not supported" in str(e) or "string" in str(e)
                      else "fail", _first_line(e))
    except Exception as e:  # noqa: BLE001 - every failure is recorded, not raised
        return result("fail", f"load: {type(e).__name__}: {_first_line(e)}")
    try:
        feeds = [_as_array(v) for v in case.inputs]
    except TypeError as e:
        return result("unsupported", f"input {_first_line(e)}")
    try:
        expected = [_expected(v) for v in case.outputs]
    except Exception as e:  # noqa: BLE001
        return result("unsupported", f"expected output: {_first_line(e)}")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            got = module(*feeds)
    except TypeError as e:
        msg = _first_line(e)
        return result("unsupported" if "has no ember tensor type" in msg or "ember takes bool"
                      in msg else "fail",
                      f"run: {msg}")
    except Exception as e:  # noqa: BLE001
        if converted and "the model's declared shape" in str(e):
            return result("unsupported", f"opset {version} case: after conversion to opset "
                                         f"{MIN_OPSET} its data no longer fits the model "
                                         f"({_first_line(e)})")
        return result("fail", f"run: {type(e).__name__}: {_first_line(e)}")
    got = list(got) if isinstance(got, tuple) else [got]
    for i, (g, want) in enumerate(zip(got, expected)):
        problem = _compare(g.detach().numpy(), want)
        if problem:
            return result("fail", f"output {i}: {problem}")
    return result("pass")


def _compare(got: np.ndarray, want: np.ndarray) -> str:
    if got.dtype != want.dtype:
        return f"dtype {got.dtype}, expected {want.dtype}"
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    if want.dtype.kind in "biu":
        bad = int((got != want).sum())
        return f"{bad} of {want.size} values differ" if bad else ""
    try:
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=RTOL, atol=ATOL, equal_nan=True)
    except AssertionError:
        g, w = got.astype(np.float64), want.astype(np.float64)
        with np.errstate(all="ignore"):
            diff = np.nanmax(np.abs(g - w)) if g.size else 0.0
        return f"values differ (max abs diff {diff:.3g})"
    return ""


def _first_line(e) -> str:
    s = str(e).strip().splitlines()
    return s[0][:200] if s else type(e).__name__


def _reason(e) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return "; ".join(lines[1:] or lines)[:200]


def run(ops: list | None = None, include_expanded: bool = True) -> list:
    """Results for every case (of ``ops`` only, when given)."""
    out = []
    for case in node_cases():
        if ops is not None and case.op not in ops:
            continue
        if case.expanded and not include_expanded:
            continue
        out.append(run_case(case))
    return out


def to_markdown(results: list) -> str:
    """The coverage table: per claimed op, cases passed / total and why the others fail."""
    import onnx
    by_op = defaultdict(list)
    for r in results:
        by_op[r.op].append(r)
    claimed_ops = sorted(op for op, rs in by_op.items()
                         if any(not r.expanded and r.status != "unclaimed" for r in rs))
    direct = [r for r in results if not r.expanded and r.status != "unclaimed"]
    expanded = [r for r in results if r.expanded and r.status != "unclaimed"]
    n_pass = sum(r.status == "pass" for r in direct)
    n_exp = sum(r.status == "pass" for r in expanded)
    n_fail = sum(r.status == "fail" for r in direct + expanded)
    n_unsup = sum(r.status == "unsupported" for r in direct + expanded)
    lines = [
        "# ONNX import coverage",
        "",
        f"Generated by `python -m ember.onnx.coverage --out docs/onnx_coverage.md` against the "
        f"backend node test cases of onnx {onnx.__version__} (in-process from "
        f"`onnx.backend.test.case.node`; the `generate-data` command of this onnx wheel "
        f"writes only model cases). A case passes when `ember.onnx.load` runs it and every "
        f"output has the expected dtype, shape and values (rtol {RTOL}, atol {ATOL}, as "
        f"onnx's backend tests). Models for opsets below 13 are converted with "
        f"`onnx.version_converter` first. *Expanded* cases are the op's ONNX function body "
        f"in primitive ops; they run when ember has a rule for every op in them.",
        "",
        f"**{len(claimed_ops)} ops claimed: {n_pass} of {len(direct)} of their cases pass; "
        f"{n_exp} of {len(expanded)} runnable expanded cases pass. {n_fail} fail; "
        f"{n_unsup} are unsupported, each for a reason listed below: an element type ember has "
        f"no tensors for (float8, int4/int2, uint16/32/64, strings), sequence/optional values, "
        f"or an old-opset case whose data no longer fits after conversion.**",
        "",
        "| Op | cases passed | expanded passed | not passing (reason) |",
        "|---|---|---|---|",
    ]
    for op in claimed_ops:
        rs = by_op[op]
        d = [r for r in rs if not r.expanded]
        e = [r for r in rs if r.expanded and r.status != "unclaimed"]
        bad = [r for r in rs if r.status in ("fail", "unsupported")]
        notes = "; ".join(f"`{r.name}`: {r.status}, {_short(r.reason)}".replace("|", "\\|")
                          for r in bad)
        exp = f"{sum(r.status == 'pass' for r in e)} / {len(e)}" if e else "-"
        lines.append(f"| {op} | {sum(r.status == 'pass' for r in d)} / {len(d)} | {exp} | "
                     f"{notes} |")
    unclaimed = sorted((op, len([r for r in rs if not r.expanded]))
                       for op, rs in by_op.items() if op not in claimed_ops)
    lines += ["", "## Ops ember does not import", "",
              "Loading a model with any of these fails at once with one error listing them "
              "all (op type, domain, count, first node names).", "",
              ", ".join(f"{op} ({n})" for op, n in unclaimed), ""]
    return "\n".join(lines)


_SHORTER = [
    (re.compile(r"run: OnnxModule: NumPy dtype (\w+) has no ember tensor type"),
     r"no \1 tensors"),
    (re.compile(r"input ember\.onnx: tensor '[^']*' has element type (\w+), which ember does "
                r"not support"), r"no \1 tensors"),
    (re.compile(r"\w+ node '[^']*': element type (\w+) is not supported \(.*"),
     r"no \1 tensors"),
]


def _short(reason: str) -> str:
    for pattern, repl in _SHORTER:
        reason = pattern.sub(repl, reason)
    return reason


def main(argv: list | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ember.onnx.coverage",
                                description="Run ONNX's backend node test cases through "
                                            "ember.onnx.load and report coverage per op.")
    p.add_argument("--out", help="write the markdown table here")
    p.add_argument("--ops", help="comma-separated op types to run (default: all)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every non-passing case")
    args = p.parse_args(argv)
    ops = args.ops.split(",") if args.ops else None
    t0 = time.perf_counter()
    results = run(ops)
    ran = [r for r in results if r.status != "unclaimed"]
    if args.verbose:
        for r in ran:
            if r.status != "pass":
                print(f"{r.status:11s} {r.name}: {r.reason}")
    n = sum(r.status == "pass" for r in ran)
    print(f"{n} of {len(ran)} claimed cases pass ({time.perf_counter() - t0:.1f} s)")
    if args.out:
        text = to_markdown(results)
        from ..serialization import write_atomic
        write_atomic(args.out, text.encode())
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
