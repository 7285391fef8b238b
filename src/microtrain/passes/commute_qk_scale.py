"""Move constant scalar scales of the queries and/or keys past Q·Kᵀ:

    MatMul(Mul(q, a), Mul(k, b))  ->  Mul(MatMul(q, k), a*b)

as nn.MultiheadAttention exports its 1/sqrt(sqrt(d)) on q and on k. A scalar
commutes with the matmul, so the float model is unchanged, and the attention
core then has the one scores scale the int8 quantizer and the block
recognizers (depth_first_attention.py, map_to_ita.py) expect. Only when the
scores feed a last-axis Softmax and each Mul is read by the MatMul alone.
Pure Graph -> Graph."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .attention_pattern import _only_user, _scalar_scale, _softmax_over_last_axis


def commute_qk_scale(graph: Graph) -> Graph:
    g = graph.copy()
    producers, users = g.producers(), g.consumers()
    for mm in list(g.nodes):
        if mm.op != "MatMul" or len(mm.inputs) != 2 or any(i in g.constants for i in mm.inputs):
            continue
        soft = _only_user(users, g, mm.outputs[0])
        if soft is None or not _softmax_over_last_axis(soft, g):
            continue
        factor, drop, new_inputs = 1.0, [], []
        for t in mm.inputs:
            p = producers.get(t)
            data = None
            if p is not None and _only_user(users, g, t) is mm and len(p.inputs) == 2:
                data = next((i for i in p.inputs if i not in g.constants), None)
            c = _scalar_scale(p, g, data) if data is not None else None
            if c is None:
                new_inputs.append(t)
                continue
            factor *= c
            drop.append(p)
            new_inputs.append(data)
        if not drop:
            continue
        raw, const = mm.outputs[0] + "/unscaled", mm.name + "/qk_scale"
        g.constants[const] = np.array(factor, np.float32)
        g.types[raw] = g.types[mm.outputs[0]]
        matmul = Node("MatMul", mm.name, new_inputs, [raw], dict(mm.attrs), mm.opset, mm.domain)
        scale = Node("Mul", mm.name + "/scale", [raw, const], [mm.outputs[0]], opset=mm.opset)
        at = g.nodes.index(mm)
        g.nodes[at:at + 1] = [matmul, scale]
        ids = {id(n) for n in drop}
        g.nodes = [n for n in g.nodes if id(n) not in ids]
    return g
