"""Recomputation (checkpointing): instead of keeping a forward activation
alive until its backward use, run its producer again right before that use.

Applied to forward nodes chosen by the user (`recompute=` op types or node-name
globs) when it is free of side costs: every run-time input of the node is kept
alive for the backward anyway, so re-running it extends no other lifetime. The
classic case: a norm's output, re-derived from its input that the norm's own
gradient keeps — the output's buffer is then free during the rest of the
forward pass and the start of the backward."""
from __future__ import annotations

import copy
import fnmatch
from typing import Sequence

from ..ir import Graph
from ..ops.registry import get_op


def apply_recompute(graph: Graph, n_forward: int, choose: Sequence[str]) -> tuple[Graph, list[str]]:
    """`n_forward`: the first n nodes are the forward pass. Returns the graph
    and the names of the forward nodes that are recomputed."""
    g = graph.copy()
    chosen = []
    for i in range(n_forward):
        node = g.nodes[i]
        if not _matches(node, choose) or get_op(node).mutates or get_op(node).view:
            continue
        backward = g.nodes[n_forward + len(chosen):]
        users = [k for k, b in enumerate(backward) if any(o in b.inputs for o in node.outputs if o)]
        if not users:
            continue
        first = users[0]
        runtime_inputs = [x for x in node.inputs if x and x not in g.constants and x not in g.state]
        kept = all(any(x in b.inputs for b in backward[first:]) or x in g.inputs for x in runtime_inputs)
        if not kept:
            continue
        clone = copy.copy(node)
        clone.name = f"{node.name}@recompute"
        rename = {o: f"{o}@recompute" for o in node.outputs if o}
        clone.outputs = [rename.get(o, o) for o in node.outputs]
        clone.attrs, clone.inputs = dict(node.attrs), list(node.inputs)
        for o, r in rename.items():
            g.types[r] = g.types[o]
        for b in backward[first:]:
            b.inputs = [rename.get(x, x) for x in b.inputs]
        g.nodes.insert(n_forward + len(chosen) + first, clone)
        chosen.append(node.name)
    return g, chosen


def _matches(node, choose: Sequence[str]) -> bool:
    return any(node.op == c or fnmatch.fnmatchcase(node.name, c) for c in choose)
