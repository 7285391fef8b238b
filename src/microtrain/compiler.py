"""The public compile entry point and the CompiledModel it returns."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from .build import build_host, run_exe
from .codegen.emit import generate, write_project
from .errors import MicrotrainError
from .frontend import InputShapes, ModelLike, onnx_to_ir
from .ir import Graph, TensorType
from .passes import run_passes
from .planner import MemoryPlan, plan_memory
from .golden import check_inputs, interpret
from .report import Report, make_report

TARGETS = ("host",)


def lower_to_graph(model: ModelLike, input_shapes: InputShapes = None) -> Graph:
    """ONNX -> IR -> inference passes. The graph both the C and the golden model run."""
    return run_passes(onnx_to_ir(model, input_shapes))


class CompiledModel:
    """A model compiled to a C project (and, for `host`, built)."""

    def __init__(self, graph: Graph, plan: MemoryPlan, project_dir: Path, target: str, keep: object = None):
        self.graph = graph
        self.plan = plan
        self.project_dir = Path(project_dir)
        self.target = target
        self.report: Report = make_report(graph, plan)
        self._exe: Optional[Path] = None
        self._debug_exe: Optional[Path] = None
        self._keep = keep  # holds a TemporaryDirectory alive with the model

    @property
    def input_names(self) -> list[str]:
        return list(self.graph.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.graph.outputs)

    def build(self) -> Path:
        if self._exe is None:
            self._exe = build_host(self.project_dir)
        return self._exe

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Execute the generated C on `inputs`; returns outputs by ONNX name."""
        arrays = check_inputs(self.graph, inputs)
        exe = self.build()
        with tempfile.TemporaryDirectory(prefix="mt-run-") as tmp:
            fin, fout = os.path.join(tmp, "in.bin"), os.path.join(tmp, "out.bin")
            with open(fin, "wb") as f:
                for name in self.graph.inputs:
                    f.write(arrays[name].tobytes())
            run_exe([str(exe), fin, fout], f"running {self.project_dir / 'network'}")
            raw = Path(fout).read_bytes()
        outs, pos = {}, 0
        for name in self.graph.outputs:
            t = self._out_type(name)
            outs[name] = np.frombuffer(raw, dtype=t.dtype, count=t.size, offset=pos).reshape(t.shape).copy()
            pos += t.nbytes
        return outs

    def layer_outputs(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every layer's output tensor as computed by the C (a debug build that
        dumps each layer), keyed by tensor name."""
        arrays = check_inputs(self.graph, inputs)
        if self._debug_exe is None:
            self._debug_exe = build_host(self.project_dir, "network_debug", debug_dump=True)
        with tempfile.TemporaryDirectory(prefix="mt-dbg-") as tmp:
            fin, fout, fdump = (os.path.join(tmp, n) for n in ("in.bin", "out.bin", "dump.bin"))
            with open(fin, "wb") as f:
                for name in self.graph.inputs:
                    f.write(arrays[name].tobytes())
            env = dict(os.environ, MT_DUMP_FILE=fdump)
            run_exe([str(self._debug_exe), fin, fout], "running the debug build", env=env)
            raw = Path(fdump).read_bytes()
        outs, pos = {}, 0
        while pos < len(raw):
            layer, nbytes = np.frombuffer(raw, np.int32, 2, pos)
            pos += 8
            node = self.graph.nodes[int(layer)]
            name = next(o for o in node.outputs if o and o not in outs)
            t = self.graph.types[name]
            outs[name] = np.frombuffer(raw, t.dtype, t.size, pos).reshape(t.shape).copy()
            pos += int(nbytes)
        return outs

    def compare_layers(self, inputs: Mapping[str, np.ndarray]) -> list[tuple[str, str, float]]:
        """(layer, op, max abs error of the C vs the golden model) per layer."""
        got = self.layer_outputs(inputs)
        want = interpret(self.graph, inputs, keep_all=True)
        rows = []
        for node in self.graph.nodes:
            errs = [float(np.max(np.abs(got[o].astype(np.float64) - want[o]))) if got[o].size else 0.0
                    for o in node.outputs if o in got]
            rows.append((node.name, node.op, max(errs) if errs else 0.0))
        return rows

    def reference(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return interpret(self.graph, inputs)

    def _out_type(self, name: str) -> TensorType:
        if name in self.graph.types:
            return self.graph.types[name]
        c = self.graph.constants[name]
        return TensorType(c.shape, c.dtype)


def compile(model: ModelLike, target: str = "host", *, out_dir=None,
            input_shapes: InputShapes = None, prefix: str = "mt_network") -> CompiledModel:
    """Compile an ONNX model (path or ModelProto) to a C project in `out_dir`
    (a temporary directory when None) and build it for `target`."""
    if target not in TARGETS:
        raise MicrotrainError(f"unknown target '{target}'; available: {', '.join(TARGETS)}")
    graph = lower_to_graph(model, input_shapes)
    plan = plan_memory(graph)
    sources = generate(graph, plan, prefix)
    keep = None
    if out_dir is None:
        keep = tempfile.TemporaryDirectory(prefix="microtrain-")
        out_dir = keep.name
    project = write_project(sources, Path(out_dir))
    return CompiledModel(graph, plan, project, target, keep)


def reference(model: ModelLike, inputs: Mapping[str, np.ndarray], *,
              input_shapes: InputShapes = None) -> dict[str, np.ndarray]:
    """Run the numpy golden model on `inputs` (the contract the C must meet)."""
    if input_shapes is None:
        input_shapes = None
    graph = lower_to_graph(model, input_shapes)
    return interpret(graph, inputs)
