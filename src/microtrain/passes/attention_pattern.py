"""Find attention cores in a float graph, as PyTorch exports them:

    scores = MatMul(A, B)            A (..., S, P) queries, B (..., P, S') keys^T
    scores = scores * c | / c        zero or more scalar constant scales
    probs  = Softmax(scores, last axis)
    ctx    = MatMul(probs, V)        V (..., S', P_v)

with every intermediate read only by the next node. Shared by the FWSA and
depth-first attention passes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Node


@dataclass
class AttentionCore:
    scores: Node
    scale_nodes: list[Node]
    scale: float            # product of the scalar scales between scores and softmax
    softmax: Node
    context: Node

    @property
    def nodes(self) -> list[Node]:
        return [self.scores, *self.scale_nodes, self.softmax, self.context]


def _only_user(users, g: Graph, name: str):
    u = users.get(name, [])
    return u[0] if len(u) == 1 and name not in g.outputs else None


def _scalar_scale(node: Node, g: Graph, data: str):
    """The factor a Mul/Div by a scalar constant applies to `data`, else None."""
    if node.op not in ("Mul", "Div") or len(node.inputs) != 2:
        return None
    other = node.inputs[1] if node.inputs[0] == data else node.inputs[0]
    if other == data or other not in g.constants or g.constants[other].size != 1:
        return None
    if node.op == "Div" and node.inputs[0] != data:
        return None
    c = float(np.asarray(g.constants[other]).reshape(-1)[0])
    return c if node.op == "Mul" else 1.0 / c


def _softmax_over_last_axis(node: Node, g: Graph) -> bool:
    rank = len(g.types[node.inputs[0]].shape)
    default = 1 if node.opset < 13 else -1
    return node.op == "Softmax" and int(node.attr("axis", default)) % rank == rank - 1


def find_attention_cores(g: Graph) -> list[AttentionCore]:
    users = g.consumers()
    cores = []
    for mm in g.nodes:
        if mm.op != "MatMul" or any(i in g.constants for i in mm.inputs):
            continue
        if len(g.types[mm.outputs[0]].shape) < 2:
            continue
        node, scale, scales = _only_user(users, g, mm.outputs[0]), 1.0, []
        data = mm.outputs[0]
        while node is not None and _scalar_scale(node, g, data) is not None:
            scale *= _scalar_scale(node, g, data)
            scales.append(node)
            data = node.outputs[0]
            node = _only_user(users, g, data)
        if node is None or not _softmax_over_last_axis(node, g):
            continue
        ctx = _only_user(users, g, node.outputs[0])
        if ctx is None or ctx.op != "MatMul" or ctx.inputs[0] != node.outputs[0] \
                or ctx.inputs[1] in g.constants:
            continue
        cores.append(AttentionCore(mm, scales, scale, node, ctx))
    return cores
