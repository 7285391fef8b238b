"""The public compile entry point and the CompiledModel it returns."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from .build import build_host, run_exe
from .errors import MicrotrainError
from .codegen.emit import generate, write_project
from .frontend import InputShapes, ModelLike, onnx_to_ir
from .ir import Graph, TensorType
from .passes import run_passes
from .planner import MemoryPlan, plan_memory
from .golden import check_inputs, interpret
from .report import Report, make_report
from .targets import Footprint, Profile, Target, get_target


def lower_to_graph(model: ModelLike, input_shapes: InputShapes = None) -> Graph:
    """ONNX -> IR -> inference passes. The graph both the C and the golden model run."""
    return run_passes(onnx_to_ir(model, input_shapes))


@dataclass
class TargetReport(Report):
    """The compile report plus, on MCU targets, the firmware's memory footprint."""
    footprint: Optional[Footprint] = None

    def table(self) -> str:
        base = super().table()
        return base if self.footprint is None else base + "\n" + str(self.footprint)


class CompiledModel:
    """A model compiled to a C project. For `host` it is built on first run;
    for an MCU target the firmware is built (and checked to fit) at compile time."""

    def __init__(self, graph: Graph, plan: MemoryPlan, project_dir: Path, target: "str | Target",
                 keep: object = None, prefix: str = "mt_network", cores: int = 1):
        self.graph = graph
        self.cores = cores
        self.plan = plan
        self.project_dir = Path(project_dir)
        self.prefix = prefix
        self.target_info: Target = get_target(target)
        self.target = self.target_info.name
        self._base_report: Report = make_report(graph, plan)
        self._exe: Optional[Path] = None
        self._debug_exe: Optional[Path] = None
        self._keep = keep  # holds a TemporaryDirectory alive with the model
        self._program = None
        if not self.target_info.is_host:
            from .targets.program import TargetProgram
            self._program = TargetProgram(graph, plan, self._base_report, self.project_dir,
                                          self.target_info, prefix, cores)

    @property
    def report(self) -> TargetReport:
        """Per-layer table and memory; on MCU targets also flash/RAM/stack
        (the measured stack peak appears once the model has run)."""
        fp = self._program.footprint if self._program is not None else None
        return TargetReport(**vars(self._base_report), footprint=fp)

    @property
    def footprint(self) -> Optional[Footprint]:
        """Flash/RAM/stack use on the target (None for host)."""
        return self._program.footprint if self._program is not None else None

    @property
    def input_names(self) -> list[str]:
        return list(self.graph.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.graph.outputs)

    def build(self) -> Path:
        """The host executable or, on an MCU target, the firmware ELF."""
        if self._program is not None:
            return self._program.firmware.elf
        if self._exe is None:
            self._exe = build_host(self.project_dir)
        return self._exe

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Execute the generated C on `inputs`; returns outputs by ONNX name."""
        if self._program is not None:
            return self._split_outputs(self._program.run(self._input_bytes(inputs)))
        exe = self.build()
        with tempfile.TemporaryDirectory(prefix="mt-run-") as tmp:
            fin, fout = os.path.join(tmp, "in.bin"), os.path.join(tmp, "out.bin")
            Path(fin).write_bytes(self._input_bytes(inputs))
            run_exe([str(exe), fin, fout], f"running {self.project_dir / 'network'}")
            raw = Path(fout).read_bytes()
        return self._split_outputs(raw)

    def profile(self, inputs: Mapping[str, np.ndarray]) -> Profile:
        """Executed instructions (not cycles) of one run: total and per layer,
        counted by QEMU on an emulated target. Deterministic run to run."""
        if self._program is None:
            if self.cores > 1:
                raise MicrotrainError(
                    f"profile on host counts one thread; compile with cores=1 for host counts, or for "
                    f"an emulated target (e.g. rv32imfc) to get per-core counts of a {self.cores}-core build")
            from .targets.hostprofile import profile_host
            return profile_host(self, self._input_bytes(inputs))
        prof, _ = self._program.profile(self._input_bytes(inputs))
        return prof

    def memory_timeline(self):
        """Arena occupancy per schedule step (microtrain.timeline.MemoryTimeline)."""
        from .timeline import memory_timeline
        return memory_timeline(self)

    def _input_bytes(self, inputs: Mapping[str, np.ndarray]) -> bytes:
        arrays = check_inputs(self.graph, inputs)
        return b"".join(arrays[name].tobytes() for name in self.graph.inputs)

    def _split_outputs(self, raw: bytes) -> dict[str, np.ndarray]:
        outs, pos = {}, 0
        for name in self.graph.outputs:
            t = self._out_type(name)
            outs[name] = np.frombuffer(raw, dtype=t.dtype, count=t.size, offset=pos).reshape(t.shape).copy()
            pos += t.nbytes
        return outs

    def layer_outputs(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every layer's output tensor as computed by the C (a debug build that
        dumps each layer), keyed by tensor name."""
        raw = self._layer_dump(self._input_bytes(inputs))
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

    def _layer_dump(self, input_bytes: bytes) -> bytes:
        if self._program is not None:
            return self._program.layer_outputs_raw(input_bytes)
        if self._debug_exe is None:
            self._debug_exe = build_host(self.project_dir, "network_debug", debug_dump=True)
        with tempfile.TemporaryDirectory(prefix="mt-dbg-") as tmp:
            fin, fout, fdump = (os.path.join(tmp, n) for n in ("in.bin", "out.bin", "dump.bin"))
            Path(fin).write_bytes(input_bytes)
            env = dict(os.environ, MT_DUMP_FILE=fdump)
            run_exe([str(self._debug_exe), fin, fout], "running the debug build", env=env)
            return Path(fdump).read_bytes() if os.path.exists(fdump) else b""

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


def compile(model: ModelLike, target: "str | Target" = "host", *, out_dir=None,
            input_shapes: InputShapes = None, prefix: str = "mt_network", cores: int = 1) -> CompiledModel:
    """Compile an ONNX model (path or ModelProto) to a C project in `out_dir`
    (a temporary directory when None) for `target` (a name from
    microtrain.targets.TARGETS or a Target description). MCU targets are
    cross-compiled here and checked to fit (TargetFitError otherwise).

    cores > 1 splits the Conv/Gemm/MatMul kernels' outputs over that many
    cores (results bit-identical to one core): on host they run on pthreads;
    on an emulated target each core's share runs in turn on the one emulated
    core, so `profile` gives per-core counts and an N-core estimate."""
    target = get_target(target)
    if not isinstance(cores, int) or not 1 <= cores <= target.cores:
        raise MicrotrainError(f"cores={cores!r}: target {target.name} has {target.cores} core(s); "
                              f"pass cores between 1 and {target.cores} (rv32imfc models an 8-core cluster)")
    graph = lower_to_graph(model, input_shapes)
    plan = plan_memory(graph, cores=cores)
    sources = generate(graph, plan, prefix, cores, "threads" if target.is_host else "sequential")
    keep = None
    if out_dir is None:
        keep = tempfile.TemporaryDirectory(prefix="microtrain-")
        out_dir = keep.name
    project = write_project(sources, Path(out_dir))
    return CompiledModel(graph, plan, project, target, keep, prefix, cores)


def reference(model: ModelLike, inputs: Mapping[str, np.ndarray], *,
              input_shapes: InputShapes = None) -> dict[str, np.ndarray]:
    """Run the numpy golden model on `inputs` (the contract the C must meet)."""
    graph = lower_to_graph(model, input_shapes)
    return interpret(graph, inputs)
