"""Removal passes: no-op nodes (Identity, inference-mode Dropout) and dead code."""
from __future__ import annotations

from ..ir import Graph

NO_OP = {"Identity", "Dropout"}


def remove_identity(graph: Graph) -> Graph:
    """Rewire readers of Identity/Dropout outputs to the op's input. When the
    no-op's output is a graph output, it stays (the C must write that buffer)."""
    g = graph.copy()
    rename: dict[str, str] = {}
    kept = []
    for n in g.nodes:
        n.inputs = [rename.get(i, i) for i in n.inputs]
        if n.op in NO_OP and n.outputs[0] not in g.outputs and \
                (n.op == "Identity" or not _dropout_in_training(n, g)):
            rename[n.outputs[0]] = n.inputs[0]
            continue
        kept.append(n)
    g.nodes = kept
    return g


def _dropout_in_training(n, g: Graph) -> bool:
    tm = n.inputs[2] if len(n.inputs) > 2 else ""
    return bool(tm) and tm in g.constants and bool(g.constants[tm])


def eliminate_dead(graph: Graph) -> Graph:
    """Drop nodes whose outputs nobody reads, and unused constants."""
    g = graph.copy()
    live = set(g.outputs)
    kept = []
    from ..ops.registry import get_op
    for n in reversed(g.nodes):
        if any(o in live for o in n.outputs if o) or get_op(n).mutates:
            kept.append(n)
            live.update(i for i in n.inputs if i)
    g.nodes = kept[::-1]
    g.constants = {k: v for k, v in g.constants.items() if k in live}
    g.state = {k: v for k, v in g.state.items() if k in live}
    produced = {o for n in g.nodes for o in n.outputs if o}   # incl. unread outputs of live nodes
    g.types = {k: v for k, v in g.types.items() if k in live or k in produced or k in g.inputs}
    return g
