"""Instruction counts on the host, with valgrind's callgrind (if installed).
The same harness and layer markers as on emulated targets: callgrind dumps
its counters before every marker call, so part k holds the instructions
executed between marker k-1 and marker k. Counts are x86-64 instructions
(not cycles) and depend on the host's gcc and libm."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..build import HOST_CC, HOST_CFLAGS, _run, runtime_library
from ..codegen.emit import RUNTIME_DIR
from ..errors import BuildError
from .harness import HOOKS_H, MARKER_SYMBOL, main_c
from .profile import Profile, profile_from_marks

CALLGRIND_TIMEOUT_S = 600


def build_host_profiler(cm) -> Path:
    out = cm.project_dir / "build-host-profile"
    out.mkdir(exist_ok=True)
    (out / "mt_target_hooks.h").write_text(HOOKS_H)
    (out / "mt_target_main.c").write_text(main_c(cm.graph, cm.prefix, paint_stack=False))
    exe = out / "network_profile"
    inc = ["-I", str(RUNTIME_DIR), "-I", str(cm.project_dir), "-I", str(out)]
    _run([HOST_CC, *HOST_CFLAGS, *inc, "-include", "mt_target_hooks.h", "-c",
          str(cm.project_dir / "network.c"), "-o", str(out / "network.o")], "network.c (host profile)")
    _run([HOST_CC, *HOST_CFLAGS, *inc, str(out / "network.o"), str(cm.project_dir / "weights.c"),
          str(out / "mt_target_main.c"), str(runtime_library()), "-lm", "-static", "-o", str(exe)],
         "host profiling build")
    return exe


def profile_host(cm, input_bytes: bytes) -> Profile:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise BuildError("profiling on target 'host' needs valgrind (apt-get install valgrind); "
                         "or profile on an emulated target, e.g. compile(model, target='cortex-m4')")
    exe = build_host_profiler(cm)
    with tempfile.TemporaryDirectory(prefix="mt-cg-") as tmp:
        Path(tmp, "in.bin").write_bytes(input_bytes)
        cmd = [valgrind, "--tool=callgrind", f"--dump-before={MARKER_SYMBOL}",
               "--callgrind-out-file=cg.out", str(exe)]
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, timeout=CALLGRIND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise BuildError(f"profiling on host: callgrind killed after {CALLGRIND_TIMEOUT_S} s") from None
        if proc.returncode != 0:
            raise BuildError(f"profiling on host: exited with status {proc.returncode}: "
                             f"{proc.stderr.decode(errors='replace').strip().splitlines()[-1:]}")
        parts = {}
        for f in Path(tmp).glob("cg.out*"):
            text = f.read_text(errors="replace")
            part = re.search(r"^part: (\d+)", text, re.M)
            total = re.search(r"^summary: (\d+)", text, re.M)
            if part and total:
                parts[int(part.group(1))] = int(total.group(1))
    ordered = [parts[k] for k in sorted(parts)]
    marks, acc = [], 0
    for n in ordered[:-1]:          # the last part runs from the last marker to exit
        acc += n
        marks.append(acc)
    return profile_from_marks("host", cm._base_report, sum(ordered), marks)
