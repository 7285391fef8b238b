"""Targets as data. A target says how to compile for it (compiler, flags),
what memory it has (levels and sizes), how to run it (an emulator command
line and the memory map the firmware is linked for) and how to count
instructions on it (a QEMU TCG plugin). Adding a board is adding an entry to
TARGETS below (or passing your own `Target` to `microtrain.compile`)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

from ..errors import MicrotrainError

KB = 1024
MB = 1024 * 1024

# Flags every target shares. -ffp-contract=off stops GCC fusing a*b+c into one
# FMA, so float32 results match the host's bit for bit.
COMMON_CFLAGS = ("-O2", "-std=c99", "-Wall", "-ffp-contract=off", "-fno-strict-aliasing",
                 "-ffunction-sections", "-fdata-sections")

# The Debian packages providing the cross toolchains and emulators.
APT_PACKAGES = ("gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf gcc-arm-none-eabi "
                "picolibc-arm-none-eabi qemu-system-misc qemu-system-arm")


@dataclass(frozen=True)
class MemoryLevel:
    """One memory of the real part. `holds` says what microtrain puts there:
    "code+const" (flash: code, weights) or "data" (RAM: arena, I/O buffers,
    .data/.bss, stack); "unused" levels are listed for the planner to come."""
    name: str
    size: int
    holds: str
    note: str = ""


@dataclass(frozen=True)
class Region:
    origin: int
    size: int


@dataclass(frozen=True)
class Emulator:
    """How to run firmware for this target under QEMU with semihosting. The
    firmware is linked for the emulated board's memory map (`flash`, `ram`),
    which is larger than the real part's; fit is checked against the real
    sizes in `Target.memory` instead, with a clear error."""
    binary: str
    machine: str
    flash: Region
    ram: Region
    extra_args: tuple[str, ...] = ()
    timeout_s: float = 60.0


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    cc: str = "gcc"
    cflags: tuple[str, ...] = ()            # ISA/ABI flags, added to COMMON_CFLAGS
    memory: tuple[MemoryLevel, ...] = ()
    stack_bytes: int = 8 * KB               # reserved for the stack (counted as RAM)
    emulator: Optional[Emulator] = None     # None: runs natively (host)
    float_abi: str = "native"
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Multi-core: how many cores a model may be compiled for (compile(cores=N))
    # and the instructions one barrier is assumed to cost in the N-core
    # estimate (emulators run one core; see docs/targets.md "Multi-core").
    cores: int = 1
    barrier_instructions: int = 0
    # fmaf() is one instruction (FPU with fused multiply-add, or the host's
    # libm): training steps then use the FMA conv kernels (runtime/mt_conv_fma.c).
    # Without an FPU it is a long software routine, so they keep the others.
    hardware_fma: bool = True

    @property
    def is_host(self) -> bool:
        return self.emulator is None

    @property
    def tool_prefix(self) -> str:
        """`arm-none-eabi-` for `arm-none-eabi-gcc`: binutils share the prefix."""
        return self.cc[: -len("gcc")] if self.cc.endswith("gcc") else ""

    @property
    def all_cflags(self) -> list[str]:
        return [*COMMON_CFLAGS, *self.cflags]

    def level(self, holds: str) -> MemoryLevel:
        for m in self.memory:
            if m.holds == holds:
                return m
        raise MicrotrainError(f"target '{self.name}' has no memory level holding {holds}")

    @property
    def flash(self) -> MemoryLevel:
        return self.level("code+const")

    @property
    def ram(self) -> MemoryLevel:
        return self.level("data")


PICOLIBC_FLAGS = ("--specs=picolibc.specs", "--oslib=semihost", "--crt0=semihost")

_MPS2_FLASH = Region(0x0, 4 * MB)
_MPS2_RAM = Region(0x20000000, 4 * MB)
_VIRT_FLASH = Region(0x80000000, 4 * MB)
_VIRT_RAM = Region(0x80400000, 4 * MB)


def _arm(name: str, description: str, cpu: str, fpu: str, machine: str, flash: int, ram: int,
         notes: tuple[str, ...]) -> Target:
    return Target(
        name=name, description=description, cc="arm-none-eabi-gcc",
        cflags=(f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=hard", f"-mfpu={fpu}", *PICOLIBC_FLAGS),
        memory=(MemoryLevel("flash", flash, "code+const"), MemoryLevel("sram", ram, "data")),
        emulator=Emulator("qemu-system-arm", machine, _MPS2_FLASH, _MPS2_RAM),
        float_abi=f"hard ({fpu})", notes=notes)


def _riscv(name: str, description: str, march: str, mabi: str, cpu: str,
           memory: tuple[MemoryLevel, ...], float_abi: str, notes: tuple[str, ...]) -> Target:
    return Target(
        name=name, description=description, cc="riscv64-unknown-elf-gcc",
        cflags=(f"-march={march}", f"-mabi={mabi}", *PICOLIBC_FLAGS),
        memory=memory,
        emulator=Emulator("qemu-system-riscv32", "virt", _VIRT_FLASH, _VIRT_RAM,
                          extra_args=("-bios", "none", "-cpu", cpu)),
        float_abi=float_abi, notes=notes, hardware_fma="f" in march[len("rv32"):])


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("host", "this machine, native gcc (no memory limits, no instruction counts "
           "unless valgrind is installed); cores > 1 run on pthreads", cores=64),
    _arm("cortex-m4", "Arm Cortex-M4F, STM32L4-class: 1 MB flash, 256 KB SRAM; "
         "emulated on QEMU mps2-an386", "cortex-m4", "fpv4-sp-d16", "mps2-an386",
         1 * MB, 256 * KB, ("single-precision FPU; float32 in hardware, float64 in software",)),
    _arm("cortex-m7", "Arm Cortex-M7, 2 MB flash, 1 MB SRAM; emulated on QEMU mps2-an500",
         "cortex-m7", "fpv5-d16", "mps2-an500", 2 * MB, 1 * MB,
         ("double-precision FPU (fpv5-d16)",)),
    _riscv("rv32imc", "integer-only RISC-V MCU core (RV32IMC), 1 MB flash, 256 KB SRAM; floats "
           "run in software (libgcc soft-float); emulated on QEMU virt", "rv32imc", "ilp32",
           "rv32,f=false,d=false,a=false",
           (MemoryLevel("flash", 1 * MB, "code+const"), MemoryLevel("sram", 256 * KB, "data")),
           "soft (ilp32, libgcc)", ("no FPU: every float operation is a libgcc call",)),
    _riscv("rv32imfc", "GAP9-class RISC-V core with a single-precision FPU (RV32IMFC, ilp32f): "
           "2 MB MRAM for code and weights, 1.5 MB L2, 128 KB L1; emulated on QEMU virt",
           "rv32imfc", "ilp32f", "rv32,d=false,a=false",
           (MemoryLevel("mram", 2 * MB, "code+const", "non-volatile; code and const weights"),
            MemoryLevel("l2", 1536 * KB, "data", "arena, I/O buffers, .data/.bss, stack"),
            MemoryLevel("l1", 128 * KB, "unused", "cluster TCDM; tiling into L1 is not done yet")),
           "hard single (ilp32f)",
           ("the cluster's 8 cores: compile(cores=N) runs each core's share in turn on the one "
            "emulated core; Profile.estimate_instructions is the N-core estimate",
            "on a real GAP9 code runs from L2; here it is counted against MRAM")),
)}
# GAP9's compute cluster: 8 cores; a barrier through the cluster's hardware
# event unit is a few instructions per core (assumed 20 for the estimate).
TARGETS["rv32imfc"] = replace(TARGETS["rv32imfc"], cores=8, barrier_instructions=20)


def get_target(target: "str | Target") -> Target:
    if isinstance(target, Target):
        return target
    try:
        return TARGETS[target]
    except KeyError:
        raise MicrotrainError(f"unknown target '{target}'; available: {', '.join(TARGETS)} "
                              "(or pass a microtrain.targets.Target description)") from None
