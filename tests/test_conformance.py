"""The ONNX backend node tests in microtrain's scope (see
microtrain/conformance.py and docs/conformance.md), one pytest case each.
Known failures are listed, with the reason, in conformance_known_failures.txt
and marked xfail(strict=True): fixing one makes its test fail until the line is
removed, so the list stays honest."""
from pathlib import Path

import pytest

from microtrain import conformance

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


def test_scope_is_not_empty_and_covers_every_foundation_op():
    ops = {c.op for c in CASES.values()}
    missing = sorted(op for op in conformance.FOUNDATION_OPS if op not in ops)
    assert len(CASES) > 250
    # ONNX ships no float32 node test for these ops alone (covered by op unit tests).
    assert set(missing) <= {"Gather"} or not missing, missing


@pytest.mark.parametrize("name", _params())
def test_onnx_node_case(name):
    result = conformance.run_case(CASES[name])
    assert result.status == "pass", f"{name}: {result.status}: {result.detail}"
