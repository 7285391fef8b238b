"""The quantization pass: a float inference Graph plus calibrated
(scale, zero_point) per tensor -> an integer Graph of mt.Q* ops
(docs/quantization.md). Each float op maps through QUANTIZERS[op]; an op with
no entry is an error naming the node. Relu / Clip right after a Conv, Gemm,
MatMul or Add are fused into that op's clamp range."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import MicrotrainError, UnsupportedOpError, node_label
from ..ir import Graph, Node, TensorType
from ..ops._quant import INT8_MAX, INT8_MIN, MAX_SHIFT

QParams = tuple[float, int]       # (scale, zero_point) of an int8 tensor


class QuantizationError(MicrotrainError):
    """A model (or one of its nodes) that the quantizer cannot turn integer."""


@dataclass
class QuantCtx:
    """What a per-op quantizer sees and how it emits integer nodes."""
    graph: Graph                       # the float graph
    calib: dict[str, QParams]          # calibrated output params per float tensor
    options: dict
    qparams: dict[str, QParams] = field(default_factory=dict)   # of the int8 tensors emitted
    bias_add: Node | None = None       # Add of a constant bias fused into the current MatMul
    nodes: list[Node] = field(default_factory=list)
    constants: dict[str, np.ndarray] = field(default_factory=dict)

    def const(self, base: str, value: np.ndarray) -> str:
        name = base
        i = 1
        while name in self.constants or name in self.graph.constants or name in self.graph.types:
            name, i = f"{base}_{i}", i + 1
        self.constants[name] = np.require(value, requirements="C")
        return name

    def emit(self, op: str, name: str, inputs: list[str], output: str, qp: QParams, **attrs) -> None:
        attrs = {**attrs, "y_scale": float(qp[0]), "y_zero_point": int(qp[1])}
        self.nodes.append(Node(op, name, inputs, [output], attrs, domain="microtrain"))
        self.qparams[output] = qp

    def q(self, tensor: str) -> QParams:
        """Params of an int8 input of the node being quantized."""
        if tensor not in self.qparams:
            raise QuantizationError(f"tensor '{tensor}' has no int8 form (it is not computed by a "
                                    "quantized op); quantize the ops producing it first")
        return self.qparams[tensor]

    def out_params(self, tensor: str) -> QParams:
        if tensor not in self.calib:
            raise QuantizationError(f"tensor '{tensor}' was not seen during calibration")
        return self.calib[tensor]


def fixed_point(multipliers, node: Node) -> tuple[np.ndarray, int]:
    """Real multipliers (>= 0) -> (int32 mul, shift) with mul/2^shift ~ M and
    the largest mul in [2^30, 2^31) (or shift capped at MAX_SHIFT)."""
    m = np.asarray(multipliers, np.float64).reshape(-1)
    top = float(m.max()) if m.size else 0.0
    if top <= 0:
        return np.zeros(m.size, np.int32), 0
    shift = 30 - int(np.floor(np.log2(top)))
    if shift < 0:
        raise QuantizationError(f"{node_label(node)}: requantization multiplier {top:.3g} is too large "
                                "(>= 2^31); the calibration ranges are inconsistent")
    shift = min(shift, MAX_SHIFT)
    mul = np.minimum(np.round(m * 2.0 ** shift), 2 ** 31 - 1).astype(np.int64)
    return mul.astype(np.int32), shift


def clamp_range(act: Node | None, qp: QParams, graph: Graph) -> tuple[int, int]:
    """lo/hi of a fused Relu / Clip in the output's integer domain."""
    scale, zp = qp
    lo, hi = INT8_MIN, INT8_MAX
    if act is None:
        return lo, hi
    if act.op == "Relu":
        return max(lo, zp), hi
    cmin, cmax = clip_bounds(act, graph)
    if cmin is not None:
        lo = max(lo, int(np.round(cmin / scale)) + zp)
    if cmax is not None:
        hi = min(hi, int(np.round(cmax / scale)) + zp)
    return lo, max(lo, hi)


def clip_bounds(node: Node, graph: Graph):
    vals = []
    for i, key in ((1, "min"), (2, "max")):
        if len(node.inputs) > i and node.inputs[i]:
            if node.inputs[i] not in graph.constants:
                raise QuantizationError(f"{node_label(node)}: Clip bounds must be constants")
            vals.append(float(np.asarray(graph.constants[node.inputs[i]]).reshape(())))
        else:
            vals.append(node.attr(key))
    return vals[0], vals[1]


FUSABLE = ("Conv", "Gemm", "MatMul", "Add", "Sub")
ACTIVATIONS = ("Relu", "Clip")

QUANTIZERS: dict[str, Callable] = {}


def quantizer(*ops: str):
    """Register `fn(node, act, ctx)` as the integer form of float `ops`; `act`
    is a fused Relu/Clip node or None. Other modules (integer Transformer
    ops) register theirs the same way."""
    def deco(fn):
        for op in ops:
            QUANTIZERS[op] = fn
        return fn
    return deco


def _bias_add(node: Node, graph: Graph, consumers) -> Node | None:
    """MatMul(x, W const) followed only by Add(., b const of N values): the
    Linear of a 3-D input as PyTorch exports it; the bias joins the MatMul."""
    if node.op != "MatMul" or node.inputs[1] not in graph.constants or node.outputs[0] in graph.outputs:
        return None
    users = consumers.get(node.outputs[0], [])
    if len(users) != 1 or users[0].op != "Add":
        return None
    other = [i for i in users[0].inputs if i != node.outputs[0]]
    n = graph.constants[node.inputs[1]].shape[-1]
    if len(other) != 1 or other[0] not in graph.constants:
        return None
    b = graph.constants[other[0]]
    return users[0] if b.size == n and b.shape[-1] == n else None


def quantize_graph(graph: Graph, calib: dict[str, QParams], options: dict) -> tuple[Graph, dict[str, QParams]]:
    """The integer graph and the (scale, zero_point) of its inputs/outputs."""
    from . import op_rules  # noqa: F401  (registers the CNN quantizers)
    from .transformer_rules import force_ita_logit_scales
    calib = dict(calib)
    force_ita_logit_scales(graph, calib, options)   # ITA's fixed logit scale, before any rule reads it
    ctx = QuantCtx(graph, calib, options)
    for name in graph.inputs:
        if graph.types[name].dtype != np.float32:
            raise QuantizationError(f"input '{name}' is {graph.types[name].dtype}; quantize takes a float32 model")
        ctx.qparams[name] = calib[name]
    consumers = graph.consumers()
    fused: set[str] = set()
    for node in graph.nodes:
        if node.name in fused:
            continue
        act, tail = None, node
        ctx.bias_add = _bias_add(node, graph, consumers)
        if ctx.bias_add is not None:
            tail = ctx.bias_add
            fused.add(tail.name)
        if node.op in FUSABLE and len(tail.outputs) == 1 and tail.outputs[0] not in graph.outputs:
            users = consumers.get(tail.outputs[0], [])
            if len(users) == 1 and users[0].op in ACTIVATIONS:
                act = users[0]
                fused.add(act.name)
        rule = QUANTIZERS.get(node.op)
        if rule is None:
            raise UnsupportedOpError(f"{node_label(node)}: no integer form of {node.op} yet; "
                                     "quantize supports Conv, Gemm, MatMul, Add, Sub, Mul, Relu, Clip, "
                                     "MaxPool, AveragePool, global pools, Concat and shape ops")
        rule(node, act, ctx)
    types = {n: TensorType(graph.types[n].shape, np.int8) for n in graph.inputs}
    constants = {k: v for k, v in graph.constants.items()
                 if any(k in n.inputs for n in ctx.nodes)}
    constants.update(ctx.constants)
    q = Graph(name=graph.name, nodes=ctx.nodes, inputs=list(graph.inputs), outputs=list(graph.outputs),
              types=types, constants=constants, opset=graph.opset, source=graph.source)
    for o in q.outputs:
        if o not in ctx.qparams:
            raise QuantizationError(f"output '{o}' is not produced by a quantized op")
    io = {t: ctx.qparams[t] for t in [*q.inputs, *q.outputs]}
    return q, io
