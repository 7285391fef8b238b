"""What training does with BatchNormalization (the `batchnorm=` option):

* "frozen"  (default) running statistics, inference form; gamma/beta may train
* "train"   batch statistics of each micro-batch (conventional backprop; with
            micro-batch 1 this is what breaks, hence the per-sample options)
* "group"   replaced per sample by GroupNorm(num_groups=groups, C)
* "layer"   replaced per sample by GroupNorm(1, C): one mean/variance over
            (C, spatial) per sample, one scale/shift per channel

The replacements change the network's function: a model rewritten here must
be (re)trained in PyTorch with the same norm before deployment —
`microtrain.models.norm_swap.swap_batchnorm` does that module swap. The
rewrite keeps gamma/beta as the new norm's per-channel scale/shift."""
from __future__ import annotations

from ..errors import MicrotrainError
from ..ir import Graph, Node

BATCHNORM_MODES = ("frozen", "train", "group", "layer")


def rewrite_batchnorm(graph: Graph, mode: str, groups: int = 1) -> Graph:
    if mode not in BATCHNORM_MODES:
        raise MicrotrainError(f"batchnorm='{mode}' is not one of {', '.join(BATCHNORM_MODES)}")
    if mode == "frozen":
        return graph
    g = graph.copy()
    for i, n in enumerate(g.nodes):
        if n.op != "BatchNormalization":
            continue
        if mode == "train":
            g.nodes[i] = Node("mt.BatchNormTrain", n.name, list(n.inputs[:5]), [n.outputs[0]],
                              {"epsilon": n.attr("epsilon", 1e-5), "momentum": n.attr("momentum", 0.9)},
                              n.opset, "microtrain")
            continue
        channels = g.type_of(n.inputs[0]).shape[1]
        num_groups = 1 if mode == "layer" else groups
        if channels % num_groups:
            raise MicrotrainError(f"node '{n.name}' (BatchNormalization): {channels} channels are not "
                                  f"divisible into batchnorm_groups={num_groups}")
        g.nodes[i] = Node("GroupNormalization", n.name, [n.inputs[0], n.inputs[1], n.inputs[2]],
                          [n.outputs[0]], {"num_groups": num_groups, "epsilon": n.attr("epsilon", 1e-5)},
                          opset=21)
    return g
