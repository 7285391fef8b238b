"""The ONNX backend node tests in microtrain's scope (see
microtrain/conformance.py and docs/conformance.md), one pytest case each.
Known failures are listed, with the reason, in conformance_known_failures.txt
and marked xfail(strict=True): fixing one makes its test fail until the line is
removed, so the list stays honest."""
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from microtrain import conformance
from onnx_check import make_model

KNOWN_FAILURES_FILE = Path(__file__).with_name("conformance_known_failures.txt")


def load_known_failures(path: Path = KNOWN_FAILURES_FILE) -> dict[str, str]:
    """`case_name  reason` per line; blank lines and # comments ignored."""
    known = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        known[name] = reason.strip() or "known failure"
    return known


CASES = conformance.in_scope_cases()
KNOWN = load_known_failures()


def _params():
    for name in sorted(CASES):
        marks = [pytest.mark.xfail(reason=KNOWN[name], strict=True)] if name in KNOWN else []
        yield pytest.param(name, id=name, marks=marks)


def test_known_failures_are_in_scope_cases():
    stale = sorted(set(KNOWN) - set(CASES))
    assert not stale, f"conformance_known_failures.txt names cases that are not in scope: {stale}"


def test_scope_covers_every_foundation_op():
    ops = {c.op for c in CASES.values()}
    missing = sorted(conformance.FOUNDATION_OPS - ops)
    assert not missing, f"no in-scope ONNX case for {missing}"
    assert len(CASES) > 250


# ---- the harness itself ----------------------------------------------------------

def _case(model, inputs, outputs, name="t"):
    return conformance.ConformanceCase(name, "Op", model.SerializeToString(), [(inputs, outputs)], 1e-3, 1e-7)


def _relu_model():
    x = np.array([[-1.0, 2.0, -3.0]], np.float32)
    return make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": x}, ["y"]), x


def test_harness_passes_right_numbers_and_fails_wrong_ones():
    model, x = _relu_model()
    assert conformance.run_case(_case(model, [x], [np.maximum(x, 0)])).status == "pass"
    res = conformance.run_case(_case(model, [x], [np.maximum(x, 0) + np.float32(0.01)]))
    assert res.status == "fail" and "elements off" in res.detail
    res = conformance.run_case(_case(model, [x], [np.zeros((3,), np.float32)]))
    assert res.status == "fail" and "shape" in res.detail


def test_harness_reports_unsupported_as_error():
    x = np.ones((2, 3), np.float32)
    model = make_model([helper.make_node("Hardmax", ["x"], ["y"])], {"x": x}, ["y"])
    res = conformance.run_case(_case(model, [x], [x]))
    assert res.status == "error" and "Hardmax" in res.detail


def test_compare_handles_nan_and_inf():
    inf_nan = np.array([np.inf, -np.inf, np.nan], np.float32)
    assert conformance._compare(inf_nan, inf_nan, 1e-3, 1e-7) is None
    assert conformance._compare(np.array([np.inf, -np.inf, 0], np.float32), inf_nan, 1e-3, 1e-7)


def test_shape_operands_are_frozen_and_data_stays_an_input():
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    shape = np.array([3, 2], np.int64)
    model = make_model([helper.make_node("Reshape", ["data", "shape"], ["y"])],
                       {"data": data, "shape": shape}, ["y"])
    assert conformance.scope_reason(model) is None
    frozen, runtime = conformance.freeze_parameter_inputs(model, {"data": data, "shape": shape})
    assert [i.name for i in frozen.graph.input] == ["data"] and list(runtime) == ["data"]
    assert [t.name for t in frozen.graph.initializer] == ["shape"]
    assert conformance.run_case(_case(model, [data, shape], [data.reshape(3, 2)])).status == "pass"


def test_out_of_scope_models_are_recognized():
    h = np.ones((2,), np.float16)
    assert "float32" in conformance.scope_reason(
        make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": h}, ["y"], output_dtypes={"y": np.float16}))
    x = np.ones((2,), np.float32)
    assert "is not float32" in conformance.scope_reason(make_model(
        [helper.make_node("Add", ["x", "h"], ["y"])], {"x": x, "h": h}, ["y"]))
    assert "Abs" in conformance.scope_reason(make_model([helper.make_node("Abs", ["x"], ["y"])], {"x": x}, ["y"]))


@pytest.mark.parametrize("name", _params())
def test_onnx_node_case(name):
    result = conformance.run_case(CASES[name])
    assert result.status == "pass", f"{name}: {result.status}: {result.detail}"
