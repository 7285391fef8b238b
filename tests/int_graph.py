"""Test helper: compile IR graphs of microtrain-internal ops (mt.*), which an
ONNX file cannot name, straight through `compile_graph`."""
from __future__ import annotations

import numpy as np

from microtrain.compiler import compile_graph
from microtrain.ir import Graph, Node, TensorType
from microtrain.ops.registry import INTERNAL_DOMAIN
from microtrain.passes.infer import infer_and_fold


def single_op_graph(op: str, inputs: dict[str, tuple], attrs_per_input=None) -> Graph:
    """One `op` node per input (name -> (shape, dtype)); output of input k is `y_k`."""
    nodes, types = [], {}
    for k, (name, (shape, dtype)) in enumerate(inputs.items()):
        types[name] = TensorType(shape, dtype)
        attrs = (attrs_per_input or {}).get(name, {})
        nodes.append(Node(op, f"{op}_{k}", [name], [f"y_{name}"], dict(attrs), domain=INTERNAL_DOMAIN))
    g = Graph("test", nodes, list(inputs), [f"y_{n}" for n in inputs], types, {})
    return infer_and_fold(g)


def compile_ir(graph: Graph):
    return compile_graph(graph)


def random_int8(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape).astype(np.int8)
