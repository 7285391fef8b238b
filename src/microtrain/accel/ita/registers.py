"""ITA's memory-mapped register window and the device behind it.

Word registers at MMIO_BASE (4 bytes each):
  0 START   write 1: run the programmed job          3 CYCLES  cycles of the last job
  1 STATUS  0 idle, 1 done, 2 error                  4 JOBS    jobs run so far
  2 ERROR   error code of the last job (ERRORS)
  8 ...     the job: JOB_FIELDS in this order (addresses, sizes S/E/P/Pv/Eo,
            per stage zero points, requant mul/add/shift/clamp or the
            addresses of their per-column tables)
The C driver (runtime/mt_ita.c) writes X and ACC itself and copies the rest
from a constant table the compiler emits in this order (ops/ita_mhsa.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import MicrotrainError
from .cost import ITA_CONFIG, ItaConfig, head_cost, plan_tiles
from .model import MAX_DOT_LENGTH, HeadJob, Projection, Stage, run_head

MMIO_BASE = 0x40000000
MMIO_SIZE = 0x1000
START, STATUS, ERROR, CYCLES, JOBS = 0, 1, 2, 3, 4
FIRST_JOB_REG = 8
STATUS_IDLE, STATUS_DONE, STATUS_ERROR = 0, 1, 2

_PROJ = ("W", "AZP", "BZP", "MUL", "ADD", "SHIFT", "LO", "HI", "HAS_BIAS", "BZ", "BM", "BCONST",
         "BSHIFT", "BLO", "BHI")
_MM = ("AZP", "BZP", "MUL", "NMUL", "ADD", "NADD", "SHIFT", "LO", "HI")
JOB_FIELDS = (("X", "ACC", "S", "E", "P", "PV", "EO")
              + tuple(f"{j}_{f}" for j in "QKV" for f in _PROJ)
              + tuple(f"S_{f}" for f in _MM)
              + ("HAS_SCALE", "M_AZP", "M_BZP", "M_B", "M_MUL", "M_ADD_LO", "M_ADD_HI", "M_SHIFT", "M_LO", "M_HI",
                 "TO_SIGNED")
              + tuple(f"C_{f}" for f in _MM)
              + ("O_W", "O_AZP", "O_BZP"))
REG = {name: FIRST_JOB_REG + i for i, name in enumerate(JOB_FIELDS)}
# the compiler's table starts after X and ACC
TABLE_FIELDS = JOB_FIELDS[2:]

ERRORS = {
    1: "an address is outside RAM/flash (or a buffer runs past its end)",
    2: "a size is zero or larger than the hardware supports (S, E, P, Pv, Eo <= 512)",
    3: "a shift is outside 0..62 or a clamp range outside int8",
    4: "the head does not fit the accelerator memory even one query row at a time",
}


class ItaDeviceError(MicrotrainError):
    """The accelerator rejected a job descriptor (error status set)."""


class DescriptorError(Exception):
    def __init__(self, code: int, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass
class ItaDevice:
    """The device: registers, and on START the functional model on guest
    memory through `read(addr, n) -> bytes` / `write(addr, data)` and
    `valid(addr, n) -> bool`."""
    read: object
    write: object
    valid: object
    config: ItaConfig = ITA_CONFIG
    regs: list = field(default_factory=lambda: [0] * (MMIO_SIZE // 4))
    total_cycles: int = 0
    jobs: list = field(default_factory=list)       # HeadCost of every job run
    errors: list = field(default_factory=list)     # (code, detail)
    job_marks: list = field(default_factory=list)  # set by the co-simulation: CPU count at START

    def reg_read(self, index: int) -> int:
        return self.regs[index] if 0 <= index < len(self.regs) else 0

    def reg_write(self, index: int, value: int) -> None:
        if not 0 <= index < len(self.regs):
            return
        self.regs[index] = value & 0xFFFFFFFF
        if index == START and value & 1:
            self._start()

    def _start(self) -> None:
        try:
            job, x, acc_addr, dims = self._decode()
            cost = head_cost(*dims, self.config)
            partial = run_head(job, x)
            s, eo = dims[0], dims[4]
            acc = np.frombuffer(self.read(acc_addr, 4 * s * eo), "<i4").reshape(s, eo).astype(np.int64)
            self.write(acc_addr, (acc + partial).astype("<i4").tobytes())
        except DescriptorError as exc:
            self.regs[STATUS], self.regs[ERROR] = STATUS_ERROR, exc.code
            self.errors.append((exc.code, exc.detail))
            return
        self.jobs.append(cost)
        self.total_cycles += cost.cycles
        self.regs[CYCLES] = cost.cycles
        self.regs[JOBS] += 1
        self.regs[STATUS], self.regs[ERROR] = STATUS_DONE, 0

    # ---- descriptor decoding, with the checks the hardware makes -------------
    def _signed(self, name: str) -> int:
        v = self.regs[REG[name]]
        return v - (1 << 32) if v & 0x80000000 else v

    def _array(self, name: str, n: int, dtype: str) -> np.ndarray:
        addr, size = self.regs[REG[name]], n * np.dtype(dtype).itemsize
        if not self.valid(addr, size):
            raise DescriptorError(1, f"{name}=0x{addr:08x} ({size} B)")
        return np.frombuffer(self.read(addr, size), dtype).astype(np.int64)

    def _shift_clamp(self, pre: str, shift="SHIFT", lo="LO", hi="HI") -> tuple[int, int, int]:
        sh, l, h = self._signed(f"{pre}{shift}"), self._signed(f"{pre}{lo}"), self._signed(f"{pre}{hi}")
        if not (0 <= sh <= 62 and -128 <= l <= h <= 127):
            raise DescriptorError(3, f"{pre}shift={sh}, clamp [{l}, {h}]")
        return sh, l, h

    def _proj(self, j: str, e: int, n: int) -> Projection:
        pre = f"{j}_"
        w = self._array(pre + "W", e * n, "<i1").reshape(e, n)
        sh, lo, hi = self._shift_clamp(pre)
        extra = {}
        if self.regs[REG[pre + "HAS_BIAS"]]:
            bsh, blo, bhi = self._shift_clamp(pre, "BSHIFT", "BLO", "BHI")
            extra = dict(has_bias=1, bz=self._signed(pre + "BZ"), bm=self._signed(pre + "BM"),
                         bconst=self._array(pre + "BCONST", n, "<i8"), bshift=bsh, blo=blo, bhi=bhi)
        return Projection(w, self._signed(pre + "AZP"), self._signed(pre + "BZP"),
                          self._array(pre + "MUL", n, "<i4"), self._array(pre + "ADD", n, "<i8"),
                          sh, lo, hi, **extra)

    def _stage(self, pre: str, cols: int) -> Stage:
        nm, na = self._signed(pre + "NMUL"), self._signed(pre + "NADD")
        if nm not in (1, cols) or na not in (1, cols):
            raise DescriptorError(2, f"{pre}NMUL={nm}, {pre}NADD={na} (must be 1 or {cols})")
        sh, lo, hi = self._shift_clamp(pre)
        return Stage(self._signed(pre + "AZP"), self._signed(pre + "BZP"), self._array(pre + "MUL", nm, "<i4"),
                     self._array(pre + "ADD", na, "<i8"), sh, lo, hi)

    def _decode(self):
        dims = tuple(self._signed(n) for n in ("S", "E", "P", "PV", "EO"))
        if any(not 1 <= d <= MAX_DOT_LENGTH for d in dims):
            raise DescriptorError(2, "S, E, P, Pv, Eo = " + ", ".join(map(str, dims)))
        s, e, p, pv, eo = dims
        try:
            plan_tiles(s, e, p, pv, eo, self.config)
        except MicrotrainError as exc:
            raise DescriptorError(4, str(exc)) from None
        x = self._array("X", s * e, "<i1").reshape(s, e)
        acc_addr = self.regs[REG["ACC"]]
        if not self.valid(acc_addr, 4 * s * eo):
            raise DescriptorError(1, f"ACC=0x{acc_addr:08x} ({4 * s * eo} B)")
        scale = None
        if self.regs[REG["HAS_SCALE"]]:
            sh, lo, hi = self._shift_clamp("M_")
            add = self.regs[REG["M_ADD_LO"]] | (self.regs[REG["M_ADD_HI"]] << 32)
            add = add - (1 << 64) if add & (1 << 63) else add
            scale = (self._signed("M_AZP"), self._signed("M_BZP"), self._signed("M_B"), self._signed("M_MUL"),
                     add, sh, lo, hi)
        job = HeadJob(self._proj("Q", e, p), self._proj("K", e, p), self._proj("V", e, pv),
                      self._stage("S_", s), self._stage("C_", pv),
                      self._array("O_W", pv * eo, "<i1").reshape(pv, eo),
                      self._signed("O_AZP"), self._signed("O_BZP"), self.regs[REG["TO_SIGNED"]] & 1, scale)
        return job, x, acc_addr, dims
