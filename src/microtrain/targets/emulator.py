"""Running firmware under QEMU with semihosting, with a timeout on every run,
and the instruction-count plugin (built with the host gcc on first use and
cached like the kernel library)."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from ..build import HOST_CC, _run, cache_dir
from ..errors import BuildError
from .harness import EXIT_MESSAGES
from .toolchain import Firmware, require_tool

PLUGIN_SOURCE = Path(__file__).resolve().parent / "plugin" / "mt_icount.c"
TIMEOUT_ENV = "MICROTRAIN_RUN_TIMEOUT"


def count_plugin() -> Path:
    """Path to the instruction-count plugin (.so), building it if needed."""
    src = PLUGIN_SOURCE.read_bytes()
    digest = hashlib.sha256(HOST_CC.encode() + b"\0" + src).hexdigest()[:16]
    lib = cache_dir() / f"qemu-plugin-{digest}" / "libmt_icount.so"
    if lib.exists():
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=lib.parent, suffix=".so")
    os.close(fd)
    try:
        _run([HOST_CC, "-shared", "-fPIC", "-O2", "-Wall", "-fvisibility=hidden",
              str(PLUGIN_SOURCE), "-o", tmp], "the QEMU instruction-count plugin")
        os.replace(tmp, lib)        # atomic: concurrent builders race harmlessly
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


@dataclass
class GuestRun:
    """What one emulator run left behind: files the guest wrote (by name) and,
    when counting, the plugin's total and marker timestamps."""
    files: dict[str, bytes]
    stdout: str
    total_instructions: Optional[int] = None
    marks: Optional[list[int]] = None


def run_timeout(fw: Firmware, timeout: Optional[float]) -> float:
    if timeout is not None:
        return float(timeout)
    env = os.environ.get(TIMEOUT_ENV)
    return float(env) if env else fw.target.emulator.timeout_s


def qemu_command(fw: Firmware, plugin_args: Optional[str] = None) -> list[str]:
    emu = fw.target.emulator
    cmd = [require_tool(emu.binary, fw.target), "-M", emu.machine, *emu.extra_args,
           "-display", "none", "-monitor", "none", "-serial", "none", "-nodefaults",
           "-chardev", "stdio,id=mtsh", "-semihosting-config", "enable=on,target=native,chardev=mtsh"]
    if plugin_args:
        cmd += ["-plugin", plugin_args]
    return cmd + ["-kernel", str(fw.elf)]


def run_guest(fw: Firmware, files: Mapping[str, bytes], *, want: tuple[str, ...] = (),
              count: bool = False, marker: Optional[int] = None,
              timeout: Optional[float] = None, what: str = "firmware") -> GuestRun:
    """Run `fw` once in a fresh directory holding `files`; return the files
    named in `want` (missing ones are omitted). Raises BuildError on a
    non-zero exit, a guest fault or a timeout."""
    limit = run_timeout(fw, timeout)
    with tempfile.TemporaryDirectory(prefix="mt-qemu-") as tmp:
        for name, data in files.items():
            Path(tmp, name).write_bytes(data)
        plugin_args = None
        if count:
            plugin_args = f"{count_plugin()},marker=0x{(marker if marker is not None else 0):x},out=counts.txt"
        cmd = qemu_command(fw, plugin_args)
        try:
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, timeout=limit,
                                  stdin=subprocess.DEVNULL)  # semihosting console: no tty games
        except subprocess.TimeoutExpired:
            raise BuildError(
                f"{what} on target {fw.target.name}: the emulator was killed after {limit:g} s "
                f"(the guest hung or is too slow); raise the limit with {TIMEOUT_ENV}=<seconds>") from None
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        if proc.returncode != 0:
            raise BuildError(_failure_message(fw, what, proc.returncode, out + err))
        got = {n: Path(tmp, n).read_bytes() for n in want if Path(tmp, n).exists()}
        run = GuestRun(got, out)
        if count:
            run.total_instructions, run.marks = _read_counts(Path(tmp, "counts.txt"), what)
        return run


def _failure_message(fw: Firmware, what: str, code: int, output: str) -> str:
    reason = EXIT_MESSAGES.get(code, "")
    lines = [l.strip() for l in output.strip().splitlines()
             if l.strip() and not re.match(r"^qemu-system-\S+: warning:", l)]
    if not reason and lines:                   # e.g. picolibc's fault register dump
        reason = "guest output: " + "; ".join(lines[-4:])[:300]
    return (f"{what} on target {fw.target.name} exited with status {code}"
            + (f": {reason}" if reason else " (the guest faulted or returned an error)"))


def _read_counts(path: Path, what: str) -> tuple[int, list[int]]:
    if not path.exists():
        raise BuildError(f"{what}: the instruction-count plugin wrote no results")
    total, marks = None, []
    for line in path.read_text().splitlines():
        key, value = line.split()
        if key == "total":
            total = int(value)
        elif key == "mark":
            marks.append(int(value))
    if total is None:
        raise BuildError(f"{what}: the instruction-count plugin's results are incomplete")
    return total, marks

