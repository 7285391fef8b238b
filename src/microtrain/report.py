"""Compile reports: per-layer table and memory summary."""
from __future__ import annotations

from dataclasses import dataclass, field

from .ir import Graph, TensorType
from .ops.registry import Value, get_op
from .planner import MemoryPlan


@dataclass
class LayerRow:
    name: str
    op: str
    macs: int
    output_bytes: int
    output_shapes: list[tuple[int, ...]]
    params: int

    @property
    def ran_on(self) -> str:
        """Where the layer runs: "ita" for blocks mapped to the accelerator."""
        return "ita" if self.op == "mt.ITAMHSA" else "cpu"


@dataclass
class Report:
    arena_bytes: int
    weight_bytes: int
    lower_bound_bytes: int
    io_bytes: int
    layers: list[LayerRow] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.layers)

    @property
    def arena_over_lower_bound(self) -> float:
        return self.arena_bytes / self.lower_bound_bytes if self.lower_bound_bytes else 1.0

    def table(self) -> str:
        where = any(r.ran_on != "cpu" for r in self.layers)   # heterogeneous target: a "ran on" column
        lines = [f"{'layer':<28} {'op':<20} {'output':<20} {'MACs':>12} {'params':>9} {'out bytes':>10}"
                 + (f" {'ran on':>7}" if where else "")]
        for r in self.layers:
            shp = ",".join("x".join(map(str, s)) for s in r.output_shapes)
            lines.append(f"{r.name[:28]:<28} {r.op:<20} {shp[:20]:<20} {r.macs:>12,} {r.params:>9,} {r.output_bytes:>10,}"
                         + (f" {r.ran_on:>7}" if where else ""))
        lines.append(
            f"total MACs {self.macs:,}; weights {self.weight_bytes:,} B (const); "
            f"arena {self.arena_bytes:,} B; lower bound {self.lower_bound_bytes:,} B "
            f"(arena/bound {self.arena_over_lower_bound:.3f}); I/O buffers {self.io_bytes:,} B")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _value(graph: Graph, name: str) -> Value:
    if not name:
        return Value(None)
    if name in graph.constants:
        c = graph.constants[name]
        return Value(TensorType(c.shape, c.dtype), c)
    return Value(graph.types[name])


def make_report(graph: Graph, plan: MemoryPlan) -> Report:
    rows = []
    for node in graph.nodes:
        op = get_op(node)
        ins = [_value(graph, i) for i in node.inputs]
        outs = [graph.types[o] for o in node.outputs if o]
        macs = int(op.macs(node, ins, outs)) if op.macs else 0
        params = sum(v.const.size for v in ins if v.present and v.const is not None)
        rows.append(LayerRow(node.name, node.op, macs, sum(t.nbytes for t in outs),
                             [t.shape for t in outs], params))
    io = sum(graph.types[i].nbytes for i in graph.inputs) + sum(
        (graph.types[o].nbytes if o in graph.types else graph.constants[o].nbytes) for o in graph.outputs)
    return Report(plan.arena_bytes, sum(c.nbytes for c in graph.constants.values()),
                  plan.lower_bound_bytes, io, rows)
