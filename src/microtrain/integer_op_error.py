"""How far the integer-only Transformer ops are from float on a model's real
activations: for every Softmax, Gelu and LayerNormalization of a float graph,
capture its input from the golden model, quantize it as the integer op would
see it, run the integer golden op and compare with the float op's output.

    rows = integer_op_errors(model_or_graph, inputs)     # list[OpError]
    print(format_errors(rows))

Scales are min/max over the captured activations (symmetric int8), except
ITA's logits, which are at its fixed scale 8/(256 log2 e) (larger logits
clip, as they would after the quantizer forces that scale). Errors are in
the float op's units: probabilities for softmax, activations otherwise."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

import numpy as np

from .golden import interpret
from .ir import Graph
from .ops._common import erf
from .ops.ibert_gelu import ibert_gelu, ibert_gelu_params
from .ops.ibert_layernorm import ibert_layernorm, ibert_layernorm_params
from .ops.ibert_softmax import ibert_softmax, ibert_softmax_params
from .ops.ita_softmax import ITA_LOGIT_SCALE, ita_softmax
from .ops.softmax import _geometry


@dataclass
class OpError:
    node: str
    op: str           # Softmax | Gelu | LayerNormalization
    method: str       # ita | ibert
    max_abs: float
    mean_abs: float
    ref_max_abs: float   # max |float output|, for scale


def _int8(x: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.round(x / scale), -128, 127).astype(np.int8)


def _symmetric_scale(x: np.ndarray) -> float:
    return max(float(np.max(np.abs(x))), 1e-8) / 127.0


def _softmax_rows(node, x: np.ndarray) -> np.ndarray:
    """x as (rows, n) with the softmax axis last."""
    outer, n, inner = _geometry(node, x.shape)
    return np.moveaxis(x.reshape(outer, n, inner), 1, 2).reshape(-1, n).astype(np.float64)


def _softmax_errors(node, x):
    rows = _softmax_rows(node, x)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)
    out = {"ita": ita_softmax(_int8(rows, ITA_LOGIT_SCALE)) / 255.0}
    scale = _symmetric_scale(rows)
    out["ibert"] = ibert_softmax(_int8(rows, scale), **ibert_softmax_params(scale)) / 255.0
    return want, out


def _gelu_errors(x):
    x = x.astype(np.float64)
    want = x * 0.5 * (1.0 + erf(x / np.sqrt(2.0)))
    s_in, s_out = _symmetric_scale(x), _symmetric_scale(want)
    return want, {"ibert": ibert_gelu(_int8(x, s_in), **ibert_gelu_params(s_in, s_out)) * s_out}


def _layernorm_errors(node, g: Graph, env, x):
    if int(node.attr("axis", -1)) % x.ndim != x.ndim - 1:
        return None
    n = x.shape[-1]
    gamma = np.broadcast_to(env[node.inputs[1]], (n,))
    beta = np.broadcast_to(env[node.inputs[2]], (n,)) if len(node.inputs) > 2 and node.inputs[2] else None
    want = env[node.outputs[0]].astype(np.float64)
    s_in, s_out = _symmetric_scale(x), _symmetric_scale(want)
    attrs = ibert_layernorm_params(gamma, beta, s_in, s_out, node.attr("epsilon", 1e-5))
    return want, {"ibert": ibert_layernorm(_int8(x, s_in), **attrs) * s_out}


def integer_op_errors(model: Union[Graph, object], inputs: Mapping[str, np.ndarray]) -> list[OpError]:
    """Per Softmax / Gelu / LayerNormalization node and integer method: the
    max and mean absolute error against the float op on these inputs."""
    if isinstance(model, Graph):
        g = model
    else:
        from .compiler import lower_to_graph
        g = lower_to_graph(model)
    env = interpret(g, inputs, keep_all=True)
    rows = []
    for node in g.nodes:
        x = env.get(node.inputs[0]) if node.inputs else None
        if x is None:
            continue
        if node.op == "Softmax":
            got = _softmax_errors(node, x)
        elif node.op == "Gelu":
            got = _gelu_errors(x)
        elif node.op == "LayerNormalization":
            got = _layernorm_errors(node, g, env, x.astype(np.float64))
        else:
            continue
        if got is None:
            continue
        want, outs = got
        for method, y in outs.items():
            err = np.abs(np.asarray(y, dtype=np.float64).reshape(want.shape) - want)
            rows.append(OpError(node.name, node.op, method, float(err.max()), float(err.mean()),
                                float(np.max(np.abs(want)))))
    return rows


def format_errors(rows: list[OpError]) -> str:
    lines = [f"{'node':<40} {'op':<20} {'method':<6} {'max abs':>9} {'mean abs':>9} {'max |ref|':>9}"]
    lines += [f"{r.node[:40]:<40} {r.op:<20} {r.method:<6} {r.max_abs:>9.4f} {r.mean_abs:>9.5f} "
              f"{r.ref_max_abs:>9.3f}" for r in rows]
    return "\n".join(lines)
