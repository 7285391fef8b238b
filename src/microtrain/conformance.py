"""ONNX conformance harness: run the `onnx` package's own backend node test
cases through microtrain's C path and classify each one.

Scope. A case is *in scope* when every node is one of the foundation ops
(`FOUNDATION_OPS`, plus the compile-time helpers `HELPER_OPS`) and every graph
input/output is float32 — except integer index/shape inputs (int64/int32).

Static graphs. microtrain compiles static graphs, so operands that only say
*how* to compute (a Reshape's shape, Slice's starts/ends, Clip's min/max, a
Dropout ratio, ...) must be compile-time constants. The ONNX cases feed them as
graph inputs; the harness turns such an input into an initializer holding the
case's own test value before compiling (`freeze_parameter_inputs`). Data
inputs — including Conv/Gemm weights and Gather indices — stay run-time inputs.

Outcome of a case (`CaseResult.status`):
* ``pass``  — every output matches within tolerance;
* ``fail``  — the C ran but produced wrong numbers or a wrong shape;
* ``error`` — a `MicrotrainError` (an unsupported feature, reported with its message);
* ``crash`` — any other exception, or a `BuildError`/`PlanError` (generated
  C that does not compile, a broken memory plan): a bug in microtrain.

Tolerance: the case's own rtol/atol, or microtrain's float tolerance when that
is looser (rtol 1e-4, atol 1e-5 scaled by max(1, max|expected|)) — the C runs
float32 kernels with a different summation order than numpy's reference."""
from __future__ import annotations

import os
import pickle
import re
import tempfile
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

FOUNDATION_OPS = frozenset("""
    Conv ConvTranspose Gemm MatMul Add Sub Mul Div Pow Sqrt Exp Erf Relu LeakyRelu
    Clip Sigmoid Tanh HardSigmoid HardSwish Elu Gelu Softmax LogSoftmax
    BatchNormalization LayerNormalization InstanceNormalization GroupNormalization
    MaxPool AveragePool GlobalAveragePool GlobalMaxPool Flatten Reshape Transpose
    Squeeze Unsqueeze Concat Split Slice Pad ReduceMean ReduceSum ReduceMax
    Identity Dropout Gather""".split())
# Evaluated at compile time only (constant folding), never lowered to C.
HELPER_OPS = frozenset({"Constant", "Shape"})

# Operand positions that are parameters of the computation, not data: on a
# static graph they must be constants, so graph inputs feeding them are frozen.
PARAMETER_OPERANDS = {
    "Reshape": {1}, "Slice": {1, 2, 3, 4}, "Split": {1}, "Squeeze": {1}, "Unsqueeze": {1},
    "Pad": {1, 2, 3}, "Clip": {1, 2}, "Dropout": {1, 2},
    "ReduceMean": {1}, "ReduceSum": {1}, "ReduceMax": {1},
}
# Integer operands that stay run-time tensors (the C path supports them).
RUNTIME_INDEX_OPERANDS = {"Gather": {1}}

# microtrain's float tolerance (tests/onnx_check.py, docs/architecture.md).
MT_RTOL, MT_ATOL = 1e-4, 1e-5

STATUSES = ("pass", "fail", "error", "crash")


@dataclass
class ConformanceCase:
    """One in-scope ONNX node test, in a picklable form."""
    name: str
    op: str                     # the row of the per-op table it counts in
    model_bytes: bytes
    data_sets: list             # [(inputs list, outputs list)] of numpy arrays
    rtol: float
    atol: float

    @property
    def model(self):
        import onnx
        return onnx.load_from_string(self.model_bytes)


@dataclass
class CaseResult:
    name: str
    op: str
    status: str                 # one of STATUSES
    detail: str = ""            # error message / mismatch description
    max_abs_err: Optional[float] = None


# ---- scope -----------------------------------------------------------------

def _elem_type(vi) -> int:
    return vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else -1


def scope_reason(model) -> Optional[str]:
    """None when the model is in scope, else why it is not."""
    from onnx import TensorProto
    ops = {n.op_type for n in model.graph.node}
    if any(n.domain not in ("", "ai.onnx") for n in model.graph.node):
        return "custom domain"
    other = ops - FOUNDATION_OPS - HELPER_OPS
    if other:
        return "ops " + ",".join(sorted(other))
    if any(_elem_type(o) != TensorProto.FLOAT for o in model.graph.output):
        return "non-float32 output"
    int_types = (TensorProto.INT64, TensorProto.INT32)
    for vi in model.graph.input:
        t = _elem_type(vi)
        if t == TensorProto.FLOAT:
            continue
        if t not in int_types or not _integer_input_is_index_or_shape(model, vi.name):
            return f"input '{vi.name}' is not float32 (elem type {t})"
    return None


def _consumers(model, tensor: str) -> list[tuple[str, int]]:
    return [(n.op_type, k) for n in model.graph.node for k, i in enumerate(n.input) if i == tensor]


def _integer_input_is_index_or_shape(model, name: str) -> bool:
    uses = _consumers(model, name)
    return bool(uses) and all(
        k in PARAMETER_OPERANDS.get(op, ()) or k in RUNTIME_INDEX_OPERANDS.get(op, ())
        for op, k in uses)


def _is_parameter_input(model, name: str) -> bool:
    uses = _consumers(model, name)
    return bool(uses) and all(k in PARAMETER_OPERANDS.get(op, ()) for op, k in uses)


def _table_row(case, by_name: dict) -> str:
    """The op a case counts under: its single op, or for an expanded function
    test `<Op> (expanded)` where <Op> is the op of the unexpanded case."""
    ops = [n.op_type for n in case.model.graph.node if n.op_type not in HELPER_OPS]
    m = re.match(r"(.*)_expanded(_ver\d+)?$", case.name)
    if m:
        base = by_name.get(m.group(1))
        base_op = base.model.graph.node[0].op_type if base is not None and base.model.graph.node else None
        return f"{base_op or m.group(1)} (expanded)"
    if len(set(ops)) == 1:
        return ops[0]
    if not ops:
        return "Constant"
    return Counter(ops).most_common(1)[0][0]


def collect_in_scope() -> list[ConformanceCase]:
    """Scan every ONNX node test (slow: ~6 s) and keep the in-scope ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case.node import collect_testcases
        cases = collect_testcases(None)
    by_name = {c.name: c for c in cases}
    keep = []
    for c in cases:
        if scope_reason(c.model) is None:
            keep.append(ConformanceCase(c.name, _table_row(c, by_name), c.model.SerializeToString(),
                                        [(list(i), list(o)) for i, o in c.data_sets],
                                        float(c.rtol), float(c.atol)))
    return sorted(keep, key=lambda c: c.name)


def _cache_path() -> str:
    """Keyed by the onnx version and the scope rules, so a change to either
    re-collects."""
    import hashlib
    import onnx
    from .build import cache_dir
    rules = repr((sorted(FOUNDATION_OPS), sorted(HELPER_OPS), sorted(PARAMETER_OPERANDS.items()),
                  sorted(RUNTIME_INDEX_OPERANDS.items()), CACHE_FORMAT))
    key = hashlib.sha256(rules.encode()).hexdigest()[:12]
    return os.path.join(str(cache_dir()), f"conformance-cases-onnx-{onnx.__version__}-{key}.pkl")


CACHE_FORMAT = 1   # bump when ConformanceCase or the row attribution changes
_CASES: Optional[dict[str, ConformanceCase]] = None


def in_scope_cases() -> dict[str, ConformanceCase]:
    """In-scope cases by name; cached on disk per onnx version so test
    collection and worker start-up stay fast."""
    global _CASES
    if _CASES is not None:
        return _CASES
    path = _cache_path()
    try:
        with open(path, "rb") as f:
            cases = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        cases = collect_in_scope()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".cases-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(cases, f)
        os.replace(tmp, path)       # atomic: concurrent writers race harmlessly
    _CASES = {c.name: c for c in cases}
    return _CASES


# ---- running one case --------------------------------------------------------

def freeze_parameter_inputs(model, inputs: dict[str, np.ndarray]):
    """Turn graph inputs that feed only parameter operands (or are integer
    shape/axes inputs) into initializers holding the test's values. Returns
    (new model, remaining run-time inputs)."""
    import onnx
    from onnx import numpy_helper
    frozen = {name for name in inputs
              if _is_parameter_input(model, name)
              or (inputs[name].dtype.kind in "iu" and not _feeds_runtime_index(model, name))}
    if not frozen:
        return model, inputs
    m = onnx.ModelProto()
    m.CopyFrom(model)
    kept = [vi for vi in m.graph.input if vi.name not in frozen]
    del m.graph.input[:]
    m.graph.input.extend(kept)
    m.graph.initializer.extend(numpy_helper.from_array(np.asarray(inputs[n]), n) for n in sorted(frozen))
    return m, {k: v for k, v in inputs.items() if k not in frozen}


def _feeds_runtime_index(model, name: str) -> bool:
    uses = _consumers(model, name)
    return bool(uses) and all(k in RUNTIME_INDEX_OPERANDS.get(op, ()) for op, k in uses)


def _compare(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> Optional[str]:
    """None when close enough, else a one-line description of the mismatch."""
    if got.shape != want.shape:
        return f"shape {got.shape} != expected {want.shape}"
    if not want.size:
        return None
    scale = max(1.0, float(np.nanmax(np.abs(want))) if np.isfinite(want).any() else 1.0)
    rtol, atol = max(rtol, MT_RTOL), max(atol, MT_ATOL * scale)
    g, w = got.astype(np.float64), want.astype(np.float64)
    same_special = (np.isnan(g) & np.isnan(w)) | (np.isinf(w) & (g == w))
    with np.errstate(invalid="ignore"):        # inf - inf where both are the same inf
        err = np.where(same_special, 0.0, np.abs(g - w))
    bad = ~same_special & ~(err <= atol + rtol * np.abs(w))
    if not bad.any():
        return None
    idx = np.unravel_index(int(np.nanargmax(np.where(bad, err, -1.0))), w.shape)
    return (f"{int(bad.sum())}/{w.size} elements off; worst at {tuple(int(i) for i in idx)}: "
            f"got {g[idx]:.7g}, expected {w[idx]:.7g} (rtol {rtol:g}, atol {atol:g})")


def run_case(case: ConformanceCase) -> CaseResult:
    """Compile `case` with microtrain, run the C on each data set, compare."""
    import microtrain
    from .errors import BuildError, MicrotrainError
    from .planner import PlanError
    model = case.model
    names_in = [vi.name for vi in model.graph.input
                if vi.name not in {i.name for i in model.graph.initializer}]
    names_out = [vo.name for vo in model.graph.output]
    worst = 0.0
    try:
        for ds_in, ds_out in case.data_sets:
            m, inputs = freeze_parameter_inputs(model, dict(zip(names_in, ds_in)))
            # The data fixes every input shape (some cases declare dims as unknown).
            shapes = {k: np.asarray(v).shape for k, v in inputs.items()}
            cm = microtrain.compile(m, input_shapes=shapes)
            got = cm.run(inputs)
            for name, want in zip(names_out, ds_out):
                want = np.asarray(want)
                out = np.asarray(got[name])
                problem = _compare(out, want, case.rtol, case.atol)
                if problem is not None:
                    return CaseResult(case.name, case.op, "fail", f"output '{name}': {problem}")
                if want.size and out.shape == want.shape:
                    with np.errstate(invalid="ignore"):
                        diff = np.abs(out.astype(np.float64) - want)
                    worst = max(worst, float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0)
    except (BuildError, PlanError) as exc:
        return CaseResult(case.name, case.op, "crash", f"{type(exc).__name__}: {exc}")
    except MicrotrainError as exc:
        return CaseResult(case.name, case.op, "error", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # anything else is a microtrain bug
        msg = " ".join(str(exc).split())[:300]
        return CaseResult(case.name, case.op, "crash", f"{type(exc).__name__}: {msg}")
    return CaseResult(case.name, case.op, "pass", "", worst)


def run_case_by_name(name: str) -> CaseResult:
    return run_case(in_scope_cases()[name])


def run_cases(names: Optional[Sequence[str]] = None, workers: int = 2,
              on_result: Optional[Callable[[CaseResult], None]] = None) -> list[CaseResult]:
    """Run cases (all in scope when `names` is None) in `workers` processes."""
    cases = in_scope_cases()
    names = sorted(cases) if names is None else list(names)
    results = []
    if workers <= 1:
        for n in names:
            results.append(run_case(cases[n]))
            if on_result:
                on_result(results[-1])
        return results
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for res in pool.map(run_case_by_name, names, chunksize=4):
            results.append(res)
            if on_result:
                on_result(res)
    return results


# ---- reporting ---------------------------------------------------------------

@dataclass
class OpSummary:
    op: str
    counts: Counter = field(default_factory=Counter)

    @property
    def cases(self) -> int:
        return sum(self.counts.values())


def summarize(results: Iterable[CaseResult]) -> list[OpSummary]:
    rows: dict[str, OpSummary] = {}
    for r in results:
        rows.setdefault(r.op, OpSummary(r.op)).counts[r.status] += 1
    return [rows[k] for k in sorted(rows)]


def pass_rate(results: Sequence[CaseResult]) -> float:
    return sum(r.status == "pass" for r in results) / len(results) if results else 0.0


def markdown_table(results: Sequence[CaseResult]) -> str:
    lines = ["| op | cases | passed | failed (wrong numbers) | errors (unsupported) | crashes (bugs) |",
             "|---|---:|---:|---:|---:|---:|"]
    for s in summarize(results):
        c = s.counts
        lines.append(f"| {s.op} | {s.cases} | {c['pass']} | {c['fail']} | {c['error']} | {c['crash']} |")
    total = Counter(r.status for r in results)
    lines.append(f"| **total** | **{len(results)}** | **{total['pass']}** | **{total['fail']}** | "
                 f"**{total['error']}** | **{total['crash']}** |")
    return "\n".join(lines)


def failure_list(results: Sequence[CaseResult]) -> str:
    bad = [r for r in results if r.status != "pass"]
    if not bad:
        return "None."
    return "\n".join(f"- `{r.name}` ({r.op}, {r.status}): {r.detail}" for r in sorted(bad, key=lambda r: r.name))
