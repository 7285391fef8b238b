"""Co-simulation of a heterogeneous target: the RISC-V firmware on Unicorn
(QEMU's CPU emulation as a library), ITA as an MMIO device.

QEMU's TCG plugins can observe but not write guest memory, so the device
could not deliver its results there; Unicorn can: `mmio_map` routes loads
and stores in the register window to ItaDevice, whose START runs the
functional model on the emulated memory. What QEMU gave the other targets
is rebuilt here: ELF loading, ARM-style RISC-V semihosting (the
`slli x0,x0,0x1f; ebreak; srai x0,x0,7` sequence; the calls picolibc's
semihost crt0 and stdio make) and instruction counting (a block hook adds
each translated block's instruction count; a block starting at the layer
marker records a timestamp, like targets/plugin/mt_icount.c)."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Mapping, Optional

from ...errors import BuildError, MicrotrainError
from .cost import ITA_CONFIG, ItaConfig
from .registers import ERRORS, MMIO_BASE, MMIO_SIZE, START, ItaDevice, ItaDeviceError

SEMIHOST_PRE, SEMIHOST_POST = 0x01F01013, 0x40705013     # slli x0,x0,0x1f / srai x0,x0,7
EBREAK = 0x00100073
ADP_STOPPED_APPLICATION_EXIT = 0x20026
FEATURES = b"SHFB\x01"          # semihosting extensions: SYS_EXIT_EXTENDED


def _unicorn():
    try:
        import unicorn
        from unicorn import riscv_const
    except ImportError:
        raise MicrotrainError("the rv32imc+ita co-simulation needs Unicorn: pip install 'microtrain[ita]' "
                              "(unicorn==2.1.1)") from None
    return unicorn, riscv_const


def load_segments(elf: bytes) -> tuple[int, list[tuple[int, bytes, int]]]:
    """(entry, [(address, file bytes, memory size)]) of an ELF32 little-endian's PT_LOAD segments."""
    if elf[:4] != b"\x7fELF" or elf[4] != 1:
        raise BuildError("co-simulation: the firmware is not a 32-bit ELF")
    entry, phoff = struct.unpack_from("<II", elf, 24)
    phentsize, phnum = struct.unpack_from("<HH", elf, 42)
    segs = []
    for i in range(phnum):
        p_type, off, vaddr, paddr, filesz, memsz, _, _ = struct.unpack_from("<8I", elf, phoff + i * phentsize)
        if p_type == 1 and memsz:
            # at the load address: .data sits in flash and crt0 copies it to RAM
            segs.append((paddr, elf[off:off + filesz], memsz))
    return entry, segs


def semihost_sites(segs) -> list[int]:
    """Addresses of the ebreak of every slli/ebreak/srai semihosting sequence."""
    pattern = struct.pack("<3I", SEMIHOST_PRE, EBREAK, SEMIHOST_POST)
    sites = []
    for addr, data, _ in segs:
        at = data.find(pattern)
        while at >= 0:
            if at % 2 == 0:
                sites.append(addr + at + 4)
            at = data.find(pattern, at + 2)
    return sites


class _Semihost:
    def __init__(self, files: Mapping[str, bytes]):
        self.files = dict(files)
        self.open: dict[int, list] = {}       # fd -> [name, bytearray, position, writable]
        self.next_fd = 3
        self.console: list[str] = []
        self.exit_code: Optional[int] = None

    def call(self, uc, rc, op: int, arg: int) -> int:
        word = lambda i: struct.unpack("<I", uc.mem_read(arg + 4 * i, 4))[0]
        if op == 0x01:                                        # SYS_OPEN
            name = bytes(uc.mem_read(word(0), word(2))).decode()
            mode = word(1)
            if name == ":semihosting-features":
                data, writable = bytearray(FEATURES), False
            elif name == ":tt":
                data, writable = bytearray(), True
            elif mode < 4:
                if name not in self.files:
                    return 0xFFFFFFFF
                data, writable = bytearray(self.files[name]), False
            else:
                data, writable = bytearray(self.files.get(name, b"") if mode >= 8 else b""), True
            fd, self.next_fd = self.next_fd, self.next_fd + 1
            self.open[fd] = [name, data, 0, writable]
            return fd
        if op == 0x02:                                        # SYS_CLOSE
            f = self.open.pop(word(0), None)
            if f and f[3] and f[0] != ":tt":
                self.files[f[0]] = bytes(f[1])
            return 0 if f else 0xFFFFFFFF
        if op == 0x03:                                        # SYS_WRITEC
            self.console.append(chr(uc.mem_read(arg, 1)[0]))
            return 0
        if op == 0x04:                                        # SYS_WRITE0
            s, a = bytearray(), arg
            while (c := uc.mem_read(a, 1)[0]) != 0:
                s.append(c)
                a += 1
            self.console.append(s.decode(errors="replace"))
            return 0
        if op == 0x05:                                        # SYS_WRITE: returns bytes not written
            fd, buf, n = word(0), word(1), word(2)
            data = bytes(uc.mem_read(buf, n))
            if fd in (1, 2) or (fd in self.open and self.open[fd][0] == ":tt"):
                self.console.append(data.decode(errors="replace"))
                return 0
            f = self.open.get(fd)
            if not f or not f[3]:
                return n
            f[1][f[2]:f[2] + n] = data
            f[2] += n
            return 0
        if op == 0x06:                                        # SYS_READ: returns bytes not read
            fd, buf, n = word(0), word(1), word(2)
            f = self.open.get(fd)
            if not f:
                return n
            chunk = bytes(f[1][f[2]:f[2] + n])
            uc.mem_write(buf, chunk)
            f[2] += len(chunk)
            return n - len(chunk)
        if op == 0x09:                                        # SYS_ISTTY
            f = self.open.get(word(0))
            return 1 if word(0) in (0, 1, 2) or (f and f[0] == ":tt") else 0
        if op == 0x0A:                                        # SYS_SEEK
            f = self.open.get(word(0))
            if not f:
                return 0xFFFFFFFF
            f[2] = word(1)
            return 0
        if op == 0x0C:                                        # SYS_FLEN
            f = self.open.get(word(0))
            return len(f[1]) if f else 0xFFFFFFFF
        if op in (0x10, 0x11, 0x13):                          # SYS_CLOCK, SYS_TIME, SYS_ERRNO
            return 0
        if op == 0x15:                                        # SYS_GET_CMDLINE: empty
            uc.mem_write(word(0), b"\0")
            uc.mem_write(arg + 4, struct.pack("<I", 0))
            return 0
        if op == 0x18:                                        # SYS_EXIT
            self.exit_code = 0 if arg == ADP_STOPPED_APPLICATION_EXIT else 1
            uc.emu_stop()
            return 0
        if op == 0x20:                                        # SYS_EXIT_EXTENDED
            reason, code = word(0), word(1)
            self.exit_code = code if reason == ADP_STOPPED_APPLICATION_EXIT else 1
            uc.emu_stop()
            return 0
        raise BuildError(f"co-simulation: semihosting call 0x{op:x} is not implemented")


class CosimRun:
    def __init__(self, files, console, exit_code, total, marks, device):
        self.files, self.stdout, self.exit_code = files, console, exit_code
        self.total_instructions, self.marks, self.device = total, marks, device


def run_firmware(elf_path: Path, flash, ram, files: Mapping[str, bytes], *, count: bool = True,
                 marker: Optional[int] = None,
                 config: ItaConfig = ITA_CONFIG, max_instructions: int = 2_000_000_000,
                 timeout_s: float = 600.0, what: str = "firmware") -> CosimRun:
    """Run an rv32 firmware with the ITA device mapped at MMIO_BASE; count
    instructions when `count` (a Python hook per block: several times slower),
    with marker timestamps when `marker` is given."""
    unicorn, rv = _unicorn()
    uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV32)
    for region in (flash, ram):
        uc.mem_map(region.origin, region.size)
    entry, segs = load_segments(Path(elf_path).read_bytes())
    for addr, data, _ in segs:
        if data:
            uc.mem_write(addr, data)

    def valid(addr, n):
        return any(r.origin <= addr and addr + n <= r.origin + r.size for r in (flash, ram)) and n >= 0

    device = ItaDevice(read=lambda a, n: bytes(uc.mem_read(a, n)), write=lambda a, d: uc.mem_write(a, d),
                       valid=valid, config=config)
    state = {"count": 0, "fault": None}

    def mmio_write(_uc, off, size, value, _d):
        if off // 4 == START and value & 1:
            device.job_marks.append(state["count"])     # instruction count when the job started
        device.reg_write(off // 4, value)

    uc.mmio_map(MMIO_BASE, MMIO_SIZE, lambda _uc, off, size, _d: device.reg_read(off // 4), None,
                mmio_write, None)
    semi = _Semihost(files)
    marks: list[int] = []
    sizes: dict[int, int] = {}

    def on_block(_uc, address, size, _d):
        n = sizes.get(address)
        if n is None:
            code, n, i = bytes(uc.mem_read(address, size)), 0, 0
            while i < size:
                i += 4 if code[i] & 3 == 3 else 2
                n += 1
            sizes[address] = n
        if address == marker:
            marks.append(state["count"])
        state["count"] += n
        if state["count"] > max_instructions:
            state["fault"] = f"more than {max_instructions:,} instructions (hung?)"
            uc.emu_stop()

    def on_semihost(_uc, address, _size, _d):
        try:
            result = semi.call(uc, rv, uc.reg_read(rv.UC_RISCV_REG_A0), uc.reg_read(rv.UC_RISCV_REG_A1))
        except Exception as exc:              # surfaced after emu_start returns
            state["fault"] = str(exc)
            uc.emu_stop()
            return
        uc.reg_write(rv.UC_RISCV_REG_A0, result & 0xFFFFFFFF)
        uc.reg_write(rv.UC_RISCV_REG_PC, address + 4)      # resume after the ebreak

    def on_intr(_uc, intno, _d):
        state["fault"] = f"guest exception {intno} at pc 0x{uc.reg_read(rv.UC_RISCV_REG_PC):08x}"
        uc.emu_stop()

    if count:
        uc.hook_add(unicorn.UC_HOOK_BLOCK, on_block)
    uc.hook_add(unicorn.UC_HOOK_INTR, on_intr)
    # Unicorn raises ebreak as an invalid instruction, so each semihosting
    # ebreak (found by its marker sequence) gets a code hook that does the call.
    for addr in semihost_sites(segs):
        uc.hook_add(unicorn.UC_HOOK_CODE, on_semihost, begin=addr, end=addr)
    try:
        uc.emu_start(entry, 0, timeout=int(timeout_s * 1e6))
    except unicorn.UcError as exc:
        pc = uc.reg_read(rv.UC_RISCV_REG_PC)
        raise BuildError(f"{what} on rv32imc+ita faulted at pc 0x{pc:08x}: {exc}") from None
    if device.errors:
        code, detail = device.errors[0]
        raise ItaDeviceError(f"{what}: ITA rejected job {len(device.jobs) + 1} with error {code} "
                             f"({ERRORS[code]}): {detail}; the compiled descriptor does not match this "
                             "device configuration")
    if state["fault"]:
        raise BuildError(f"{what} on rv32imc+ita: {state['fault']}")
    if semi.exit_code is None:
        raise BuildError(f"{what} on rv32imc+ita: stopped without exiting (timeout {timeout_s:g} s?)")
    return CosimRun(semi.files, "".join(semi.console), semi.exit_code, state["count"], marks, device)


def write_cosim_script(fw) -> Path:
    """build-<target>/run.sh for a heterogeneous target: the co-simulation
    (QEMU alone has no ITA; the firmware would fault at the register window)."""
    import shlex
    import sys
    script = fw.build_dir / "run.sh"
    script.write_text("#!/bin/sh\n# Generated by microtrain. Run in a directory holding in.bin; writes out.bin and\n"
                      "# stats.bin there. Co-simulation (Unicorn + the ITA model), docs/ita.md.\n"
                      f"exec {shlex.quote(sys.executable)} -m microtrain.accel.ita.cosim "
                      f"{shlex.quote(str(fw.elf))} {shlex.quote(fw.target.name)}\n")
    script.chmod(0o755)
    return script


def main(argv=None) -> int:
    """python -m microtrain.accel.ita.cosim FIRMWARE.elf [TARGET]: run it in the
    current directory (reads in.bin, writes the files the guest writes)."""
    import sys
    from ...targets import get_target
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m microtrain.accel.ita.cosim FIRMWARE.elf [TARGET]", file=sys.stderr)
        return 2
    target = get_target(args[1] if len(args) > 1 else "rv32imc+ita")
    files = {p.name: p.read_bytes() for p in Path(".").iterdir() if p.is_file() and p.suffix == ".bin"}
    try:
        run = run_firmware(Path(args[0]), target.emulator.flash, target.emulator.ram, files, count=False)
    except MicrotrainError as exc:
        print(f"microtrain: error: {exc}", file=sys.stderr)
        return 2
    for name, data in run.files.items():
        if files.get(name) != data:
            Path(name).write_bytes(data)
    sys.stdout.write(run.stdout)
    return run.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
