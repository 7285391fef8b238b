"""Recognize GroupNorm as PyTorch exports it,
    Reshape(x, [N, G, -1]) -> InstanceNormalization(unit scale, zero bias)
    -> Reshape(back to x's shape) -> Mul(gamma[C,1..]) -> Add(beta[C,1..]),
and replace it by one GroupNormalization (opset-21 per-channel affine).
One kernel instead of five, and in training the normalized tensor is no
longer kept alive for gamma's gradient (the GroupNorm rule recomputes it)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node


def fuse_groupnorm(graph: Graph) -> Graph:
    g = graph.copy()
    users = g.consumers()
    producers = g.producers()
    drop: set[int] = set()
    for inorm in g.nodes:
        if inorm.op != "InstanceNormalization":
            continue
        match = _match(g, inorm, users, producers)
        if match is None:
            continue
        r1, r2, mul, add, gamma, beta, x, groups = match
        chain = [r1, inorm, r2, mul, add]
        inner = {o for n in chain for o in n.outputs} - {add.outputs[0]}
        if any(o in g.outputs for o in inner):
            continue
        fused = Node("GroupNormalization", inorm.name, [x, gamma, beta], [add.outputs[0]],
                     {"num_groups": groups, "epsilon": inorm.attr("epsilon", 1e-5)}, opset=21)
        g.nodes[g.nodes.index(add)] = fused
        drop.update(id(n) for n in chain if n is not add)
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    return g


def _only_user(users, name):
    u = users.get(name, [])
    return u[0] if len(u) == 1 else None


def _match(g: Graph, inorm: Node, users, producers):
    r1 = producers.get(inorm.inputs[0])
    if r1 is None or r1.op != "Reshape" or len(users.get(r1.outputs[0], [])) != 1:
        return None
    x = r1.inputs[0]
    xs, ys = g.type_of(x).shape, g.type_of(inorm.inputs[0]).shape
    if len(xs) < 3 or len(ys) != 3 or ys[0] != xs[0] or xs[1] % ys[1]:
        return None
    groups = ys[1]
    scale, bias = (g.constants.get(i) for i in inorm.inputs[1:3])
    if scale is None or bias is None or not np.all(scale == 1) or not np.all(bias == 0):
        return None
    r2 = _only_user(users, inorm.outputs[0])
    if r2 is None or r2.op != "Reshape" or g.type_of(r2.outputs[0]).shape != xs:
        return None
    mul = _only_user(users, r2.outputs[0])
    if mul is None or mul.op != "Mul":
        return None
    add = _only_user(users, mul.outputs[0])
    if add is None or add.op != "Add":
        return None
    gamma = _per_channel(g, mul, r2.outputs[0], xs)
    beta = _per_channel(g, add, mul.outputs[0], xs)
    if gamma is None or beta is None:
        return None
    return r1, r2, mul, add, gamma, beta, x, groups


def _per_channel(g: Graph, node: Node, data: str, xs) -> str | None:
    """The other operand when it holds one value per channel laid out as
    (C, 1, ..., 1), broadcasting over the spatial axes. It may be a run-time
    tensor (a trainable gamma seen through an Unsqueeze): GroupNormalization
    reads its scale and bias from any buffer."""
    others = [i for i in node.inputs if i != data]
    if len(others) != 1 or others[0] in g.inputs:
        return None
    want = (xs[1],) + (1,) * (len(xs) - 2)
    return others[0] if g.type_of(others[0]).shape in (want, (1,) + want) else None
