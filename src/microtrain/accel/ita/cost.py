"""Cycle and energy model of ITA running one attention head (docs/ita.md).

Every number here is a stated assumption or comes from the published design
(Islamoglu et al. 2023, /work/shared/REFERENCES.md "ITA"):

* published: 16 processing elements, each a 64-wide int8 dot product per
  cycle (1024 MACs/cycle); 26-bit accumulators; the integer streaming
  softmax; 16.9 TOPS/W.
* assumed: clock 500 MHz (the SoC's single clock domain, CPU included);
  accelerator-side memory 64 KiB; DMA between SoC RAM and that memory
  16 B/cycle (one 128-bit bus beat), double buffered; softmax normalization
  16 elements/cycle after the streamed max/sum (which rides along Q.K^T);
  requant 16 outputs/cycle, pipelined behind the dot products; a fixed
  pipeline fill of PIPELINE_FILL cycles per matmul stage and JOB_OVERHEAD
  cycles per job; energy = ops x (1 / 16.9 TOPS/W) (an op is a multiply or an
  add: 2 per MAC), i.e. peak efficiency, memory traffic not charged.

A matmul stage (M x K) . (K x N) takes ceil(M*N / 16) * ceil(K / 64) cycles:
a PE produces one output per ceil(K/64) cycles, so K < 64 leaves lanes idle
(this is what the utilization column shows)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...errors import MicrotrainError


@dataclass(frozen=True)
class ItaConfig:
    pes: int = 16
    dot_width: int = 64
    acc_bits: int = 26
    clock_hz: float = 500e6
    memory_bytes: int = 64 * 1024
    dma_bytes_per_cycle: int = 16
    softmax_per_cycle: int = 16
    pipeline_fill: int = 8
    job_overhead: int = 32
    tops_per_watt: float = 16.9

    @property
    def macs_per_cycle(self) -> int:
        return self.pes * self.dot_width

    @property
    def joules_per_op(self) -> float:
        return 1.0 / (self.tops_per_watt * 1e12)


ITA_CONFIG = ItaConfig()


@dataclass
class HeadCost:
    cycles: int
    compute_cycles: int
    dma_bytes: int
    macs: int
    tiles: int
    tile_rows: int
    energy_j: float
    stages: dict = field(default_factory=dict)

    def utilization(self, cfg: ItaConfig = ITA_CONFIG) -> float:
        return self.macs / (self.cycles * cfg.macs_per_cycle) if self.cycles else 0.0


def matmul_cycles(m: int, k: int, n: int, cfg: ItaConfig = ITA_CONFIG) -> int:
    return math.ceil(m * n / cfg.pes) * math.ceil(k / cfg.dot_width) + cfg.pipeline_fill


def resident_bytes(s: int, e: int, p: int, pv: int, eo: int) -> int:
    """Kept for the whole head: its four weight slices, K_h and V_h, and the
    per-column requant tables (int32 mul + int64 add, 12 B a column)."""
    return e * (2 * p + pv) + pv * eo + s * (p + pv) + 12 * (2 * p + pv)


def tile_bytes(rows: int, s: int, e: int, p: int, pv: int, eo: int) -> int:
    """One tile of query rows: x rows, Q rows, scores, context, int32 accumulator rows."""
    return rows * (e + p + s + pv + 4 * eo)


def plan_tiles(s: int, e: int, p: int, pv: int, eo: int, cfg: ItaConfig = ITA_CONFIG) -> int:
    """Largest number of query rows per tile such that the resident part plus
    two tiles (double buffering) fit the accelerator memory."""
    free = cfg.memory_bytes - resident_bytes(s, e, p, pv, eo)
    rows = min(s, free // (2 * tile_bytes(1, s, e, p, pv, eo))) if free > 0 else 0
    if rows < 1:
        raise MicrotrainError(
            f"attention head S={s}, E={e}, P={p}, Pv={pv}, Eo={eo} does not fit ITA's "
            f"{cfg.memory_bytes:,} B memory even one query row at a time; compile for the CPU-only target")
    return int(rows)


def head_cost(s: int, e: int, p: int, pv: int, eo: int, cfg: ItaConfig = ITA_CONFIG) -> HeadCost:
    """Cycles of one head: K/V phase (x streamed in tiles, K_h, V_h computed),
    then per tile of query rows Q, Q.K^T, softmax, A.V, output slice; DMA
    of tile i+1 (and write-back of tile i-1) overlaps compute of tile i."""
    rows = plan_tiles(s, e, p, pv, eo, cfg)
    bw = cfg.dma_bytes_per_cycle
    weights = e * (2 * p + pv) + pv * eo + 12 * (2 * p + pv)
    tiles = []          # (load bytes, compute cycles, store bytes)
    starts = list(range(0, s, rows))
    for r0 in starts:   # phase 1: K_h and V_h
        r = min(rows, s - r0)
        tiles.append((r * e, matmul_cycles(r, e, p, cfg) + matmul_cycles(r, e, pv, cfg), 0))
    stages = {"qkv": 0, "qk": 0, "softmax": 0, "av": 0, "out": 0}
    for r0 in starts:   # phase 2: query tiles; accumulator rows read and written back
        r = min(rows, s - r0)
        c = {"qkv": matmul_cycles(r, e, p, cfg), "qk": matmul_cycles(r, p, s, cfg),
             "softmax": math.ceil(r * s / cfg.softmax_per_cycle), "av": matmul_cycles(r, s, pv, cfg),
             "out": matmul_cycles(r, pv, eo, cfg)}
        for k in c:
            stages[k] += c[k]
        tiles.append((r * e + 4 * r * eo, sum(c.values()), 4 * r * eo))
    stages["qkv"] += sum(t[1] for t in tiles[:len(starts)])
    cycles = cfg.job_overhead + math.ceil((weights + tiles[0][0]) / bw)
    for i, (_, comp, _) in enumerate(tiles):
        nxt = tiles[i + 1][0] if i + 1 < len(tiles) else 0
        prev_store = tiles[i - 1][2] if i > 0 else 0
        cycles += max(comp, math.ceil((nxt + prev_store) / bw))
    cycles += math.ceil(tiles[-1][2] / bw)
    macs = s * (e * (2 * p + pv) + s * (p + pv) + pv * eo)
    dma = weights + sum(t[0] + t[2] for t in tiles)
    return HeadCost(int(cycles), int(sum(t[1] for t in tiles)), int(dma), int(macs), len(tiles), rows,
                    2 * macs * cfg.joules_per_op, stages)
