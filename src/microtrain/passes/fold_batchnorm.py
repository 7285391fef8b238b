"""Fold inference BatchNormalization into the preceding Conv/ConvTranspose/Gemm:
W' = W * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps).
Only when the conv output feeds nothing but the BN and all BN operands are
constants; otherwise the BN stays and runs as its own kernel."""
from __future__ import annotations

import numpy as np

from ..ir import Graph

FOLDABLE = {"Conv", "ConvTranspose", "Gemm"}


def fold_batchnorm(graph: Graph) -> Graph:
    g = graph.copy()
    producers = g.producers()
    users = g.consumers()
    drop = set()
    for bn in g.nodes:
        if bn.op != "BatchNormalization" or len([o for o in bn.outputs if o]) != 1:
            continue
        prev = producers.get(bn.inputs[0])
        if prev is None or prev.op not in FOLDABLE or len(users.get(prev.outputs[0], [])) != 1 \
                or prev.outputs[0] in g.outputs:
            continue
        if not all(i in g.constants for i in bn.inputs[1:5]):
            continue
        if not all(i in g.constants for i in prev.inputs[1:] if i):
            continue
        if prev.op == "Gemm" and (prev.attr("transB", 0) == 0 or len(g.type_of(prev.outputs[0]).shape) != 2):
            w_axis = 1  # W is (K, N): output channels on axis 1
        elif prev.op == "ConvTranspose":
            w_axis = 1
        else:
            w_axis = 0
        gamma, beta, mean, var = (g.constants[i].astype(np.float64) for i in bn.inputs[1:5])
        scale = gamma / np.sqrt(var + bn.attr("epsilon", 1e-5))
        w = g.constants[prev.inputs[1]].astype(np.float64)
        if prev.op == "ConvTranspose":
            groups = prev.attr("group", 1)
            cin, cout_g = w.shape[0], w.shape[1]
            wg = w.reshape(groups, cin // groups, cout_g, *w.shape[2:])
            s = scale.reshape(groups, 1, cout_g, *([1] * (w.ndim - 2)))
            new_w = (wg * s).reshape(w.shape)
        else:
            shape = [1] * w.ndim
            shape[w_axis] = -1
            new_w = w * scale.reshape(shape)
        n_out = scale.shape[0]
        if prev.op == "Gemm" and len(prev.inputs) > 2 and prev.inputs[2]:
            bias = np.broadcast_to(g.constants[prev.inputs[2]], (n_out,)).astype(np.float64) * prev.attr("beta", 1.0)
        elif len(prev.inputs) > 2 and prev.inputs[2]:
            bias = g.constants[prev.inputs[2]].astype(np.float64)
        else:
            bias = np.zeros(n_out)
        if prev.op == "Gemm":
            new_w = new_w * prev.attr("alpha", 1.0)
            prev.attrs["alpha"], prev.attrs["beta"] = 1.0, 1.0
        new_b = (bias - mean) * scale + beta
        wname, bname = f"{prev.name}_bnfold_w", f"{prev.name}_bnfold_b"
        g.constants[wname] = new_w.astype(np.float32)
        g.constants[bname] = new_b.astype(np.float32)
        prev.inputs = [prev.inputs[0], wname, bname]
        # The conv now writes the BN's output tensor directly.
        prev.outputs = [bn.outputs[0]]
        drop.add(id(bn))
    g.nodes = [n for n in g.nodes if id(n) not in drop]
    return g
