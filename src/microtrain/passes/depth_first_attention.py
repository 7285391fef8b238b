"""Depth-first multi-head self-attention: every attention core
(MatMul -> [scalar scale] -> Softmax(last axis) -> MatMul, see
attention_pattern.py) becomes one mt.Attention node, whose kernel computes a
block of query rows of one head at a time, so the heads x S x S scores and
probabilities are never stored. Pure Graph -> Graph; opt-in
(`microtrain.compile(..., depth_first=True)`): it has no gradient rule."""
from __future__ import annotations

from ..ir import Graph, Node
from ..ops.registry import INTERNAL_DOMAIN
from .attention_pattern import find_attention_cores
from .infer import infer_and_fold

DEFAULT_BLOCK_ROWS = 4


def depth_first_attention(graph: Graph, *, block_rows: int = DEFAULT_BLOCK_ROWS) -> Graph:
    g = graph.copy()
    for core in find_attention_cores(g):
        q, kt = core.scores.inputs
        fused = Node("mt.Attention", core.scores.name + "/depth_first",
                     [q, kt, core.context.inputs[1]], [core.context.outputs[0]],
                     {"scale": core.scale, "block_rows": int(block_rows)}, domain=INTERNAL_DOMAIN)
        drop = {id(n) for n in core.nodes}
        at = g.nodes.index(core.context)
        g.nodes[at] = fused
        g.nodes = [n for n in g.nodes if id(n) not in drop or n is fused]
    return infer_and_fold(g)
