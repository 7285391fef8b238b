"""Host build and run. The kernel library is compiled once per (compiler,
flags, kernel sources) into a cache directory and linked into each model, so a
test suite compiling hundreds of models only compiles each network.c."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .codegen.emit import RUNTIME_DIR
from .errors import BuildError

HOST_CC = os.environ.get("CC", "gcc")
HOST_CFLAGS = ["-O2", "-std=c99", "-Wall", "-ffp-contract=off", "-fno-strict-aliasing"]
RUN_TIMEOUT_S = 120


def cache_dir() -> Path:
    base = os.environ.get("MICROTRAIN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "microtrain")
    return Path(base)


def _runtime_sources() -> list[Path]:
    return sorted(p for p in RUNTIME_DIR.iterdir() if p.suffix in (".c", ".h"))


def runtime_library(cc: str = HOST_CC, cflags: list[str] = HOST_CFLAGS, ar: str = "ar") -> Path:
    """Path to libmt.a for this compiler and flags, building it if needed.
    Cross builds pass their own `ar`; with `-fstack-usage` in `cflags` the
    per-function stack sizes (*.su) are kept next to the library."""
    h = hashlib.sha256()
    h.update(cc.encode() + b"\0" + " ".join(cflags).encode() + b"\0" + ar.encode())
    for p in _runtime_sources():
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    target = cache_dir() / f"runtime-{h.hexdigest()[:16]}"
    lib = target / "libmt.a"
    if lib.exists():
        return lib
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".build-"))
    try:
        objs = []
        for src in _runtime_sources():
            if src.suffix != ".c":
                continue
            obj = tmp / (src.stem + ".o")
            _run([cc, *cflags, "-I", str(RUNTIME_DIR), "-c", str(src), "-o", str(obj)], f"kernel {src.name}")
            objs.append(str(obj))
        _run([ar, "rcs", str(tmp / "libmt.a"), *objs], "kernel library")
        try:
            os.rename(tmp, target)      # atomic: concurrent builders race harmlessly
        except OSError:
            pass                        # another process won; use its copy
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return lib


DEBUG_DUMP_FLAG = "-DMT_LAYER_OUTPUT(i,p,n)=mt_debug_dump((i),(p),(n))"


def build_host(project: Path, exe_name: str = "network", *, debug_dump: bool = False) -> Path:
    """Build the host runner. With debug_dump, every layer's output is written
    to $MT_DUMP_FILE while it runs (for per-layer comparisons)."""
    lib = runtime_library()
    exe = project / exe_name
    extra = ["-DMT_DEBUG_DUMP_DECL", DEBUG_DUMP_FLAG] if debug_dump else []
    _run([HOST_CC, *HOST_CFLAGS, *extra, "-I", str(RUNTIME_DIR), "-I", str(project),
          str(project / "network.c"), str(project / "weights.c"), str(project / "main.c"),
          str(lib), "-lm", "-pthread", "-o", str(exe)], f"generated project in {project}")
    return exe


def run_exe(cmd: list[str], what: str, timeout: float = RUN_TIMEOUT_S, env=None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what}: timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise BuildError(f"{what}: exited with status {proc.returncode}"
                         + (f": {err[-1]}" if err else ""))
    return proc


def _run(cmd: list[str], what: str, missing_hint: str = "install gcc (or set CC)") -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=600)
    except FileNotFoundError:
        raise BuildError(f"'{cmd[0]}' not found; {missing_hint}") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace")
        lines = [l for l in msg.splitlines() if "collect2" not in l]   # "ld returned 1" says nothing
        first = next((l for l in lines if re.search(r"error|overflowed|undefined reference", l)),
                     msg.strip()[:300])
        raise BuildError(f"building {what} failed: {first}")
