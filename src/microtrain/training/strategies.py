"""Which tensors train. Parameters are float constants a layer reads as
weights; a strategy picks a subset of them.

* full        every parameter (BatchNorm running statistics never train)
* last-layer  the parameters of the last parametric layer
* layers      layers/parameters whose node or initializer name matches a glob
* bias-only   biases (Conv/Gemm bias, bias Adds after MatMul, norm shifts)
* lora        none of the base weights: low-rank adapters are added (lora.py)"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import numpy as np

from ..errors import MicrotrainError
from ..ir import Graph, Node

STRATEGIES = ("full", "last-layer", "layers", "bias-only", "lora")

# op -> input positions that hold parameters / biases
WEIGHT_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (0, 1, 2), "MatMul": (0, 1),
                 "LayerNormalization": (1, 2), "GroupNormalization": (1, 2),
                 "InstanceNormalization": (1, 2), "BatchNormalization": (1, 2), "Gather": (0,),
                 "Add": (0, 1), "Mul": (0, 1), "Sub": (0, 1)}
BIAS_INPUTS = {"Conv": (2,), "ConvTranspose": (2,), "Gemm": (2,), "LayerNormalization": (2,),
               "GroupNormalization": (2,), "InstanceNormalization": (2,), "BatchNormalization": (2,)}
MAIN_LAYERS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}


@dataclass
class Layer:
    name: str            # the node name
    op: str
    params: list[str]    # initializer names
    biases: list[str]


# Ops through which a weight may reach its layer unchanged in value (a weight
# stored in one shape and used in another).
WEIGHT_VIEWS = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity"}


def resolve_param(graph: Graph, name: str, producers: dict, allow_scalar: bool = False) -> str | None:
    """The float initializer behind `name` (itself, or through weight views).
    Scalars count only where a layer reads a weight or bias (`allow_scalar`):
    elsewhere a one-element constant is a fixed coefficient (0.5 in GELU...)."""
    while name not in graph.constants:
        node = producers.get(name)
        if node is None or node.op not in WEIGHT_VIEWS or \
                any(i and i not in graph.constants for i in node.inputs[1:]):
            return None
        name = node.inputs[0]
    return name if _is_param(graph, name, allow_scalar) else None


def parametric_layers(graph: Graph) -> list[Layer]:
    """Layers in execution order, each with its parameters. A bias Add right
    after a MatMul (how PyTorch exports nn.Linear on 3-D inputs) joins it."""
    producers = graph.producers()
    layers: list[Layer] = []
    by_node: dict[int, Layer] = {}
    users = graph.consumers()
    for node in graph.nodes:
        positions = WEIGHT_INPUTS.get(node.op, ())
        if node.op == "InstanceNormalization" and _is_groupnorm_export(node, users):
            continue   # its scale/bias are the exporter's fixed ones/zeros
        after_layer = node.op == "Add" and any(
            producers.get(i) is not None and producers[i].op in MAIN_LAYERS for i in node.inputs)
        scalar_ok = node.op in MAIN_LAYERS or after_layer   # e.g. Linear(128 -> 1)'s bias
        resolved = {i: resolve_param(graph, node.inputs[i], producers, scalar_ok) for i in positions
                    if i < len(node.inputs) and node.inputs[i]}
        params = [p for p in resolved.values() if p]
        if not params:
            continue
        biases = [resolved[i] for i in BIAS_INPUTS.get(node.op, ()) if resolved.get(i)]
        if node.op in ("Add", "Sub", "Mul"):
            src = next((i for k, i in enumerate(node.inputs) if not resolved.get(k)), None)
            prev = producers.get(src)
            if prev is not None and id(prev) in by_node and node.op == "Add":
                by_node[id(prev)].params += params
                by_node[id(prev)].biases += params
                continue
            if node.op == "Add":
                biases = list(params)
        layer = Layer(node.name, node.op, params, biases)
        by_node[id(node)] = layer
        layers.append(layer)
    return layers


def _is_groupnorm_export(node: Node, users: dict) -> bool:
    """PyTorch exports GroupNorm as Reshape -> InstanceNormalization (constant
    unit scale, zero bias) -> Reshape -> Mul(gamma) -> Add(beta): only gamma and
    beta are the module's parameters."""
    after = users.get(node.outputs[0], [])
    if len(after) != 1 or after[0].op != "Reshape":
        return False
    nxt = users.get(after[0].outputs[0], [])
    return len(nxt) == 1 and nxt[0].op == "Mul"


def _is_param(graph: Graph, name: str, allow_scalar: bool = False) -> bool:
    arr = graph.constants.get(name)
    return arr is not None and arr.dtype == np.float32 and (arr.size > 1 or (allow_scalar and arr.size == 1))


def select_trainable(graph: Graph, strategy: str, layers: list[str] | str | None = None) -> list[str]:
    if strategy not in STRATEGIES:
        raise MicrotrainError(f"unknown strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}")
    all_layers = parametric_layers(graph)
    if not all_layers and strategy != "lora":
        raise MicrotrainError("the model has no trainable parameters (no float initializers)")
    if strategy == "full":
        chosen = [p for l in all_layers for p in l.params]
    elif strategy == "last-layer":
        main = [l for l in all_layers if l.op in MAIN_LAYERS] or all_layers
        chosen = list(main[-1].params)
    elif strategy == "bias-only":
        chosen = [b for l in all_layers for b in l.biases]
        if not chosen:
            raise MicrotrainError("strategy bias-only: the model has no bias parameters")
    elif strategy == "layers":
        patterns = [p.strip() for p in (layers.split(",") if isinstance(layers, str) else (layers or [])) if p.strip()]
        if not patterns:
            raise MicrotrainError("strategy 'layers' needs layers=<names or glob patterns>, e.g. layers='fc*,conv3*'")
        chosen = []
        for l in all_layers:
            if any(fnmatch.fnmatchcase(l.name, pat) for pat in patterns):
                chosen += l.params
            else:
                chosen += [p for p in l.params if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]
        if not chosen:
            names = ", ".join(l.name for l in all_layers[:8])
            raise MicrotrainError(f"layers={patterns} match no layer or parameter; layers are: {names}...")
    else:
        chosen = []
    # keep order, drop duplicates (a tensor read by two layers)
    return list(dict.fromkeys(chosen))
