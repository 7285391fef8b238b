"""What an op's `lower` function sees: C expressions for its buffers and a way
to emit small constant tables (shapes, strides) next to the network code."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..ir import Node, TensorType
from ..ops.registry import Value


class LowerCtx:
    def __init__(self, node: Node, ins: list[Value], outs: list[TensorType],
                 in_ptrs: list[Optional[str]], out_ptrs: list[str],
                 scratch_ptr: Optional[str], tables: "TableSink", cores: int = 1,
                 scratch_bytes: int = 0, fma: bool = False):
        self.node = node
        # Whether kernels may accumulate with fused multiply-adds (training
        # steps): not bit-identical to the reference kernels, within tolerance.
        self.fma = fma
        self.ins = ins
        self.outs = outs
        self._in_ptrs = in_ptrs
        self._out_ptrs = out_ptrs
        self._scratch = scratch_ptr
        self._tables = tables
        self.cores = cores
        self._scratch_bytes = scratch_bytes   # all cores' scratch together
        self.used_par = False

    def par(self) -> Optional[str]:
        """On a multi-core build, the C name of this core's `mt_par_t` (the op
        then calls a kernel that does only this core's share and the layer
        runs on every core); None on one core. Ops that do not ask run on
        core 0 only."""
        if self.cores == 1:
            return None
        self.used_par = True
        return "par"

    def split_planes(self, planes: int, in_plane: int, out_plane: int, call) -> str:
        """`call(x, y, count)` -> the C call of a kernel over `count` planes
        of input 0 / output 0. On one core: all planes; multi-core: this
        core's contiguous run of planes (input/output pointers offset)."""
        par = self.par()
        if par is None:
            return call(self.inp(0), self.out(0), str(planes))
        return (f"{{ int32_t lo, hi; mt_par_range({planes}, {par}, &lo, &hi);\n"
                f"  {call(f'{self.inp(0)} + lo * {in_plane}', f'{self.out(0)} + lo * {out_plane}', 'hi - lo')} }}")

    @property
    def core_scratch(self) -> str:
        """This core's slice of the scratch (the planner reserves one per core)."""
        if self.cores == 1:
            return self.scratch
        return f"({self.scratch} + par.core_id * {self._scratch_bytes // self.cores})"

    def inp(self, i: int) -> str:
        """Typed const pointer to input i, or NULL when the input is omitted."""
        if i >= len(self._in_ptrs) or self._in_ptrs[i] is None:
            return "NULL"
        return f"((const {self.ins[i].type.ctype} *){self._in_ptrs[i]})"

    def out(self, i: int = 0) -> str:
        return f"(({self.outs[i].ctype} *){self._out_ptrs[i]})"

    def has_input(self, i: int) -> bool:
        return i < len(self.ins) and self.ins[i].present

    @property
    def scratch(self) -> str:
        if self._scratch is None:
            raise RuntimeError(f"{self.node.name}: kernel asked for scratch it did not declare")
        return self._scratch

    def table(self, values: Sequence, ctype: str = "int32_t") -> str:
        """Emit `static const ctype name[] = {...}` and return its name."""
        return self._tables.add(np.asarray(values).reshape(-1), ctype)


class TableSink:
    """Collects small constant tables; identical tables are emitted once."""

    def __init__(self, prefix: str = "mt_tab"):
        self.prefix = prefix
        self.items: list[tuple[str, str, str]] = []
        self._seen: dict[tuple[str, str], str] = {}

    def add(self, values: np.ndarray, ctype: str) -> str:
        if values.size == 0:
            values = np.zeros(1, dtype=np.int64)
        body = ", ".join(_literal(v, ctype) for v in values.tolist())
        key = (ctype, body)
        if key not in self._seen:
            name = f"{self.prefix}{len(self.items)}"
            self._seen[key] = name
            self.items.append((name, ctype, body))
        return self._seen[key]

    def c_source(self) -> str:
        return "\n".join(f"static const {t} {n}[] = {{{b}}};" for n, t, b in self.items)


def _literal(v, ctype: str) -> str:
    if ctype in ("float", "double"):
        return float_literal(v)
    if ctype == "int64_t":
        return f"INT64_C({int(v)})"
    return str(int(v))


def float_literal(v: float) -> str:
    """A C float literal that round-trips float32 exactly."""
    f = float(np.float32(v))
    if np.isnan(f):
        return "NAN"
    if np.isinf(f):
        return "INFINITY" if f > 0 else "-INFINITY"
    return f"{f:.9g}f" if "e" in f"{f:.9g}" or "." in f"{f:.9g}" else f"{f:.9g}.0f"
