"""A compiled model on an emulated target: build the firmware once, check it
fits, run it on inputs, count its instructions. CompiledModel delegates here
for every target except `host`."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Optional

from ..errors import BuildError
from ..ir import Graph
from ..planner import MemoryPlan
from ..report import Report
from .descriptions import Target
from .emulator import run_guest, write_run_script
from .footprint import Footprint, check_fit, measure, precheck
from .harness import MARKER_SYMBOL, main_c
from .profile import Profile, profile_from_marks
from .toolchain import (Firmware, build_firmware, bytes_by_part, read_sections, static_stack_estimate,
                        symbol_address)


class TargetProgram:
    def __init__(self, graph: Graph, plan: MemoryPlan, report: Report, project: Path,
                 target: Target, prefix: str, cores: int = 1):
        self.cores = cores
        self.graph, self.plan, self.report = graph, plan, report
        self.project, self.target, self.prefix = Path(project), target, prefix
        io_bytes = report.io_bytes
        precheck(target, plan, report.weight_bytes, io_bytes)
        self._main_c = main_c(graph, prefix)
        self.firmware = build_firmware(self.project, target, prefix, self._main_c)
        self.footprint: Footprint = measure(
            target, read_sections(self.firmware), plan, report.weight_bytes, io_bytes,
            static_stack_estimate(self.firmware, prefix), bytes_by_part(self.firmware))
        check_fit(self.footprint, target)
        self._dump_firmware: Optional[Firmware] = None
        write_run_script(self.firmware)

    def run(self, input_bytes: bytes, timeout: Optional[float] = None) -> bytes:
        """Output bytes (all outputs back to back) for one run on `input_bytes`."""
        got = run_guest(self.firmware, {"in.bin": input_bytes}, want=("out.bin", "stats.bin"),
                        timeout=timeout, what=f"running {self.project}")
        self._record_stack(got.files)
        return self._output(got.files)

    def layer_outputs_raw(self, input_bytes: bytes, timeout: Optional[float] = None) -> bytes:
        """The per-layer dump records of a debug firmware (same format as host)."""
        if self._dump_firmware is None:
            self._dump_firmware = build_firmware(self.project, self.target, self.prefix, self._main_c,
                                                 name="firmware_dump", dump_layers=True)
        got = run_guest(self._dump_firmware, {"in.bin": input_bytes}, want=("dump.bin",),
                        timeout=timeout, what="running the layer-dump firmware")
        return got.files.get("dump.bin", b"")

    def profile(self, input_bytes: bytes, timeout: Optional[float] = None) -> tuple[Profile, bytes]:
        """Instruction counts of one run (and its output bytes)."""
        marker = symbol_address(self.firmware, MARKER_SYMBOL)
        got = run_guest(self.firmware, {"in.bin": input_bytes}, want=("out.bin", "stats.bin"),
                        count=True, marker=marker, timeout=timeout, what=f"profiling {self.project}")
        self._record_stack(got.files)
        prof = profile_from_marks(self.target.name, self.report, got.total_instructions, got.marks,
                                  self.cores, self.target.barrier_instructions)
        return prof, self._output(got.files)

    def _output(self, files: dict[str, bytes]) -> bytes:
        if "out.bin" not in files:
            raise BuildError(f"target {self.target.name}: the firmware exited without writing its outputs")
        return files["out.bin"]

    def _record_stack(self, files: dict[str, bytes]) -> None:
        raw = files.get("stats.bin", b"")
        if len(raw) >= 16:
            magic, peak, _reserved, _ = struct.unpack("<4I", raw[:16])
            if magic == 0x4D545354:
                self.footprint.stack_measured = peak
                if peak >= self.target.stack_bytes:
                    raise BuildError(
                        f"target {self.target.name}: the stack overflowed its {self.target.stack_bytes:,} B "
                        "reservation during the run (results are unreliable); raise Target.stack_bytes")
