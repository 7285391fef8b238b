"""Map recognized int8 attention blocks (mt.QMHSA with the ITA softmax) to
the ITA accelerator: mt.QMHSA -> mt.ITAMHSA, for targets with an ITA.

A block stays on the CPU when its softmax is not ITA's (the device has only
the streaming softmax) or a head cannot be tiled into the accelerator
memory (accel/ita/cost.plan_tiles). Pure Graph -> Graph."""
from __future__ import annotations

import numpy as np

from ..accel.ita.cost import ITA_CONFIG, ItaConfig, plan_tiles
from ..accel.ita.model import MAX_DOT_LENGTH
from ..errors import MicrotrainError
from ..ir import Graph, Node


def ita_fits(node: Node, s: int, config: ItaConfig = ITA_CONFIG) -> bool:
    h, e, p = np.asarray(node.attr("q_w")).shape
    pv, eo = np.asarray(node.attr("v_w")).shape[-1], np.asarray(node.attr("o_w")).shape[-1]
    if node.attr("p_op") != "mt.ITASoftmax" or max(s, e, p, pv, eo) > MAX_DOT_LENGTH:
        return False
    try:
        plan_tiles(s, e, p, pv, eo, config)
    except MicrotrainError:
        return False
    return True


def map_to_ita(graph: Graph, config: ItaConfig = ITA_CONFIG) -> Graph:
    g = graph.copy()
    for i, n in enumerate(g.nodes):
        if n.op == "mt.QMHSA" and ita_fits(n, g.types[n.inputs[0]].shape[0], config):
            g.nodes[i] = Node("mt.ITAMHSA", n.name, list(n.inputs), list(n.outputs), dict(n.attrs),
                              domain=n.domain)
    return g
