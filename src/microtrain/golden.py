"""The numpy golden model: interprets the IR node by node with each op's
`reference` rule. The generated C is checked against this."""
from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np

from .errors import InputError
from .ir import Graph
from .ops.registry import get_op


def check_inputs(graph: Graph, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Validate run-time inputs against the graph; returns contiguous arrays of the right dtype."""
    missing = [n for n in graph.inputs if n not in inputs]
    if missing:
        raise InputError(f"missing input(s) {missing}; the model's inputs are {graph.inputs}")
    extra = [n for n in inputs if n not in graph.inputs]
    if extra:
        raise InputError(f"unknown input(s) {extra}; the model's inputs are {graph.inputs}")
    out = {}
    for name in graph.inputs:
        t = graph.types[name]
        arr = np.asarray(inputs[name])
        if tuple(arr.shape) != t.shape:
            raise InputError(f"input '{name}' has shape {tuple(arr.shape)}, the model was compiled for {t.shape}")
        if arr.dtype != t.dtype:
            if not np.can_cast(arr.dtype, t.dtype, casting="same_kind"):
                raise InputError(f"input '{name}' has dtype {arr.dtype}, expected {t.dtype}")
            arr = arr.astype(t.dtype)
        out[name] = np.require(arr, requirements="C")
    return out


def interpret(graph: Graph, inputs: Mapping[str, np.ndarray], *, keep_all: bool = False,
              state: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Run the graph. `state` (name -> array) supplies persistent tensors and is
    updated in place by mutating ops (defaults to a copy of graph.state)."""
    env: dict[str, np.ndarray] = dict(graph.constants)
    if state is None:
        state = {k: v.copy() for k, v in graph.state.items()}
    env.update(state)
    env.update(check_inputs(graph, inputs))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for node in graph.nodes:
            op = get_op(node)
            args = [env[i] if i else None for i in node.inputs]
            results = op.reference(node, args)
            for idx, new in zip(op.mutates, results[:len(op.mutates)]):
                name = node.inputs[idx] if idx < len(node.inputs) else ""
                if not name or new is None:
                    continue
                state[name][...] = new
                env[name] = state[name]
            results = results[len(op.mutates):]
            for name, arr in zip(node.outputs, results):
                if name:
                    t = graph.types.get(name)
                    arr = np.asarray(arr)
                    if t is not None:
                        arr = arr.astype(t.dtype, copy=False).reshape(t.shape)
                    env[name] = arr
    if keep_all:
        return env
    return {o: env[o] for o in graph.outputs}
