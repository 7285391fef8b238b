"""Recognize GELU written out with Erf, as PyTorch exports it before opset 20:
    y = (x * 0.5) * (1 + erf(x / sqrt(2)))   (operands in any order, and the
    0.5 multiply on either side) and replace it by one Gelu node."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node


def fuse_gelu(graph: Graph) -> Graph:
    g = graph.copy()
    producers = g.producers()
    users = g.consumers()
    drop: set[int] = set()
    for erf in g.nodes:
        if erf.op != "Erf":
            continue
        div = producers.get(erf.inputs[0])
        if div is None or id(div) in drop:
            continue
        x = _scaled_input(div, g, {"Div": np.sqrt(2.0), "Mul": 1 / np.sqrt(2.0)})
        if x is None:
            continue
        add = _single_user(users, erf.outputs[0])
        if add is None or add.op != "Add" or _other_const(add, erf.outputs[0], g) != 1.0:
            continue
        chain = _match_tail(g, users, add.outputs[0], x)
        if chain is None:
            continue
        tail_nodes, y = chain
        inner = [div, erf, add] + tail_nodes
        # Only fuse when the intermediates are not read elsewhere.
        inter = {o for n in inner for o in n.outputs} - {y}
        if any(o in g.outputs for o in inter) or any(
                u not in inner for o in inter for u in users.get(o, [])):
            continue
        gelu = Node("Gelu", f"{erf.name}_gelu", [x], [y], {"approximate": "none"}, opset=max(g.opset, 20))
        g.nodes[g.nodes.index(tail_nodes[-1])] = gelu
        drop.update(id(n) for n in inner if n is not tail_nodes[-1])
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    return g


def _single_user(users, name):
    u = users.get(name, [])
    return u[0] if len(u) == 1 else None


def _const_scalar(g: Graph, name: str):
    c = g.constants.get(name)
    if c is None or c.size != 1:
        return None
    return float(c.reshape(-1)[0])


def _other_const(node: Node, name: str, g: Graph):
    others = [i for i in node.inputs if i != name]
    return _const_scalar(g, others[0]) if len(others) == 1 else None


def _scaled_input(node: Node, g: Graph, want: dict):
    if node.op not in want or len(node.inputs) != 2:
        return None
    c = _const_scalar(g, node.inputs[1])
    if c is None or not np.isclose(c, want[node.op], rtol=1e-4):
        return None
    return node.inputs[0]


def _match_tail(g: Graph, users, s: str, x: str):
    """After `s = 1 + erf(..)`: either Mul(x, s) then Mul(., 0.5), or
    Mul(Mul(x, 0.5), s), or Mul(s, 0.5) then Mul(x, .)."""
    m1 = _single_user(users, s)
    if m1 is None or m1.op != "Mul":
        return None
    other = [i for i in m1.inputs if i != s]
    if len(other) != 1:
        return None
    o = other[0]
    if o == x:  # x * s, then * 0.5
        m2 = _single_user(users, m1.outputs[0])
        if m2 is not None and m2.op == "Mul" and _other_const(m2, m1.outputs[0], g) == 0.5:
            return [m1, m2], m2.outputs[0]
        return None
    if _const_scalar(g, o) == 0.5:  # s * 0.5, then * x
        m2 = _single_user(users, m1.outputs[0])
        if m2 is not None and m2.op == "Mul" and x in m2.inputs:
            return [m1, m2], m2.outputs[0]
        return None
    half = g.producers().get(o)  # (x * 0.5) * s
    if half is not None and half.op == "Mul" and x in half.inputs and _other_const(half, x, g) == 0.5 \
            and len(users.get(half.outputs[0], [])) == 1:
        return [half, m1], m1.outputs[0]
    return None
