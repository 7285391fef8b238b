"""Set the batch dimension of a forward graph to the micro-batch size.
Models come exported with batch 1 (or a dynamic batch axis resolved to 1);
constant Reshape targets that spell the old batch in their first entry are
rewritten to copy it (0), which is what a batch-generic export would say."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..ir import Graph, TensorType


def rebatch(graph: Graph, batch: int) -> Graph:
    g = graph.copy()
    if not g.inputs:
        raise ShapeError("the model has no inputs to train on")
    old = {g.types[i].shape[0] if g.types[i].shape else None for i in g.inputs}
    if len(old) != 1 or None in old:
        raise ShapeError("every model input needs the batch as its first axis for training")
    (old_batch,) = old
    if old_batch == batch:
        return g
    for i in g.inputs:
        t = g.types[i]
        g.types[i] = TensorType((batch,) + t.shape[1:], t.dtype)
    for n in g.nodes:
        if n.op == "Reshape" and len(n.inputs) > 1 and n.inputs[1] in g.constants:
            shape = g.constants[n.inputs[1]]
            if shape.ndim == 1 and shape.size >= 1 and shape[0] == old_batch and not n.attr("allowzero", 0):
                new = shape.copy()
                new[0] = 0
                name = f"{n.inputs[1]}__rebatched"
                g.constants[name] = new.astype(np.int64)
                n.inputs = [n.inputs[0], name] + n.inputs[2:]
    # folded shapes computed for the old batch are recomputed by infer_and_fold
    g.types = {k: v for k, v in g.types.items() if k in g.inputs}
    return g
