"""Fold a zero constant-mode Pad of the spatial axes into the Conv that reads
it (Conv pads += Pad pads): no padded copy of the activation, and in training
the Conv's weight gradient reads the unpadded tensor."""
from __future__ import annotations

import numpy as np

from ..ir import Graph


def fuse_pad_into_conv(graph: Graph) -> Graph:
    g = graph.copy()
    users = g.consumers()
    producers = g.producers()
    drop = set()
    for conv in g.nodes:
        if conv.op != "Conv" or conv.attr("auto_pad", "NOTSET") not in ("NOTSET", ""):
            continue
        pad = producers.get(conv.inputs[0])
        if pad is None or pad.op != "Pad" or len(users.get(pad.outputs[0], [])) != 1 \
                or pad.outputs[0] in g.outputs:
            continue
        extra = _spatial_zero_pads(g, pad)
        if extra is None:
            continue
        begin, end = extra
        k = len(begin)
        pads = list(conv.attr("pads", [0] * (2 * k)))
        conv.attrs["pads"] = [pads[i] + begin[i] for i in range(k)] + [pads[k + i] + end[i] for i in range(k)]
        conv.inputs = [pad.inputs[0]] + conv.inputs[1:]
        drop.add(id(pad))
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    return g


def _spatial_zero_pads(g: Graph, pad):
    """(begin, end) over the spatial axes when the Pad is constant mode, value 0,
    non-negative, and leaves batch and channel axes alone; else None."""
    if pad.attr("mode", "constant") != "constant" or pad.opset < 11:
        return None
    ins = pad.inputs + ["", "", ""]
    if ins[1] not in g.constants or (ins[2] and ins[2] not in g.constants) or (ins[3] and ins[3] not in g.constants):
        return None
    if ins[2] and np.any(g.constants[ins[2]] != 0):
        return None
    rank = len(g.type_of(pad.inputs[0]).shape)
    p = [int(v) for v in g.constants[ins[1]].reshape(-1)]
    axes = list(range(rank)) if not ins[3] else [int(a) % rank for a in g.constants[ins[3]].reshape(-1)]
    if len(p) != 2 * len(axes):
        return None
    begin, end = [0] * rank, [0] * rank
    for j, a in enumerate(axes):
        begin[a], end[a] = p[j], p[j + len(axes)]
    if min(begin + end) < 0 or begin[0] or end[0] or begin[1] or end[1]:
        return None
    return begin[2:], end[2:]
