"""Import of already-quantized ONNX into microtrain's integer ops:
* QDQ models (QuantizeLinear/DequantizeLinear around float ops, as written by
  onnxruntime.quantization.quantize_static),
* the operator form: QLinearConv, QLinearMatMul (ONNX) and QLinearAdd
  (com.microsoft), expanded here into the equivalent DQ -> op -> Q.
Every Q -> DQ pair on a run-time tensor becomes a (scale, zero_point) on the
float tensor; DQ of a constant gives the float weight plus its given integer
form (used as is, not re-quantized). The float graph and those parameters then
go through the same rewrite as PTQ (rewrite.quantize_graph), so an imported
model compiles to the same mt.Q* ops. uint8 tensors map to int8 with
zero_point - 128 (same scale)."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError, node_label
from ..ir import Graph, Node, TensorType
from .rewrite import QuantizationError

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
QLINEAR_OPS = ("QLinearConv", "QLinearMatMul", "QLinearAdd", "QGemm")
# Ops that onnxruntime's operator-form models apply to quantized tensors
# directly: the scale passes through.
SCALE_PRESERVING = ("MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity")
MS_DOMAIN = "com.microsoft"


def is_quantized_onnx(graph: Graph) -> bool:
    return any(n.op in QDQ_OPS + QLINEAR_OPS for n in graph.nodes)


def _scalar_params(node, graph, s_name, z_name, per_tensor: bool):
    for name in (s_name, z_name):
        if name and name not in graph.constants:
            raise UnsupportedOpError(f"{node_label(node)}: scale and zero point must be constants")
    s = np.asarray(graph.constants[s_name], np.float64)
    z = np.asarray(graph.constants[z_name]) if z_name else np.zeros((), np.uint8)
    if per_tensor and (s.size != 1 or z.size != 1):
        raise UnsupportedOpError(f"{node_label(node)}: per-channel quantization of an activation is not "
                                 "supported; quantize activations per tensor")
    return s, z


def _to_int8(q: np.ndarray, zp: np.ndarray):
    """uint8/int8 values and zero point -> int8 values and zero point."""
    if q.dtype == np.uint8:
        return (q.astype(np.int16) - 128).astype(np.int8), zp.astype(np.int64) - 128
    if q.dtype == np.int8:
        return q, zp.astype(np.int64)
    return q, zp.astype(np.int64)      # int32 bias


def _expand_qlinear(graph: Graph) -> list[Node]:
    """QLinear* -> DequantizeLinear inputs, the float op, QuantizeLinear output."""
    nodes = []
    for n in graph.nodes:
        if n.op not in QLINEAR_OPS:
            nodes.append(n)
            continue
        if n.op in ("QLinearAdd", "QGemm") and n.domain != MS_DOMAIN:
            raise UnsupportedOpError(f"{node_label(n)}: {n.op} is a com.microsoft op")
        ins = n.inputs
        if n.op == "QLinearConv":      # x, xs, xz, w, ws, wz, ys, yz, [B]
            pairs, (ys, yz) = [(0, 1, 2), (3, 4, 5)], ins[6:8]
            bias = ins[8] if len(ins) > 8 and ins[8] else None
        elif n.op == "QGemm":          # a, as, az, b, bs, bz, [C], [ys, yz]
            if len(ins) < 8 or not ins[7]:
                raise UnsupportedOpError(f"{node_label(n)}: QGemm with a float output is not supported")
            pairs, (ys, yz) = [(0, 1, 2), (3, 4, 5)], (ins[7], ins[8] if len(ins) > 8 else "")
            bias = ins[6] if ins[6] else None
        else:                          # a, as, az, b, bs, bz, ys, yz
            pairs, (ys, yz), bias = [(0, 1, 2), (3, 4, 5)], ins[6:8], None
        floats = []
        for k, (v, s, z) in enumerate(pairs):
            name = f"{n.name}_dq{k}"
            attrs = {"axis": 0} if n.op == "QLinearConv" and k == 1 else (
                {"axis": 1} if n.op == "QLinearMatMul" and k == 1 else (
                    {"axis": 0 if n.attr("transB", 0) else 1} if n.op == "QGemm" and k == 1 else {}))
            nodes.append(Node("DequantizeLinear", name, [ins[v], ins[s], ins[z]], [name], attrs))
            floats.append(name)
        if bias is not None:
            # QLinearConv's int32 bias is at scale x_scale * w_scale, zero point 0.
            sx = np.asarray(graph.constants[ins[1]], np.float64)
            sw = np.asarray(graph.constants[ins[4]], np.float64).reshape(-1)
            sb = f"{n.name}_bias_scale"
            graph.constants[sb] = (sx * sw).astype(np.float32)
            name = f"{n.name}_dqb"
            nodes.append(Node("DequantizeLinear", name, [bias, sb], [name], {"axis": 0}))
            floats.append(name)
        op = {"QLinearConv": "Conv", "QLinearMatMul": "MatMul", "QLinearAdd": "Add", "QGemm": "Gemm"}[n.op]
        f_out = f"{n.name}_float"
        attrs = dict(n.attrs) if op in ("Conv", "Gemm") else {}
        nodes.append(Node(op, n.name, floats, [f_out], attrs, n.opset))
        nodes.append(Node("QuantizeLinear", f"{n.name}_q", [f_out, ys, yz], list(n.outputs)))
    return nodes


def split_qdq(graph: Graph) -> tuple[Graph, dict, dict]:
    """The float graph without Q/DQ, the (scale, int8 zero point) of its
    quantized tensors, and the given integer form of its DQ'd constants:
    name -> (int values, scale per channel, axis)."""
    nodes = _expand_qlinear(graph)
    consts = dict(graph.constants)
    qout: dict[str, str] = {}          # Q output -> the float tensor it quantizes
    alias: dict[str, str] = {}         # DQ output -> float tensor it stands for
    params: dict[str, tuple[float, int]] = {}
    given: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    kept: list[Node] = []
    for n in nodes:
        ins = [alias.get(i, i) for i in n.inputs]
        if n.op == "QuantizeLinear":
            s, z = _scalar_params(n, graph, ins[1], ins[2] if len(ins) > 2 else "", True)
            if n.attr("saturate", 1) != 1 or z.dtype not in (np.uint8, np.int8):
                raise UnsupportedOpError(f"{node_label(n)}: only int8/uint8 QuantizeLinear is supported")
            zp = int(_to_int8(np.zeros(1, z.dtype), z.reshape(-1))[1][0])
            x = ins[0]
            if x in consts:
                raise UnsupportedOpError(f"{node_label(n)}: QuantizeLinear of a constant; store the "
                                         "quantized constant instead")
            if x in params and params[x] != (float(s.reshape(())), zp):
                raise QuantizationError(f"{node_label(n)}: tensor '{x}' is quantized twice with different "
                                        "parameters")
            params[x] = (float(s.reshape(())), zp)
            qout[n.outputs[0]] = x
            continue
        if n.op == "DequantizeLinear":
            src = ins[0]
            if src in qout:
                alias[n.outputs[0]] = qout[src]
                continue
            if src not in consts:
                raise UnsupportedOpError(f"{node_label(n)}: DequantizeLinear of a run-time tensor that no "
                                         "QuantizeLinear produces (an integer model input) is not supported")
            s, z = _scalar_params(n, graph, ins[1], ins[2] if len(ins) > 2 else "", False)
            q, zp = _to_int8(np.asarray(consts[src]), z)
            axis = int(n.attr("axis", 1))
            shape = [1] * q.ndim
            if s.size > 1:
                shape[axis % q.ndim] = -1
            values = (q.astype(np.int64) - zp.reshape(shape if zp.size > 1 else ())) \
                * s.reshape(shape if s.size > 1 else ())
            consts[n.outputs[0]] = values.astype(np.float32)
            if np.any(zp != 0) and q.dtype != np.int32:
                raise UnsupportedOpError(f"{node_label(n)}: asymmetric weights (zero point != 0) are not "
                                         "supported; quantize weights symmetrically")
            given[n.outputs[0]] = (q, s.reshape(-1), axis % max(q.ndim, 1))
            continue
        if n.op in SCALE_PRESERVING and ins and ins[0] in qout:
            # applied to the quantized tensor itself: read the float tensor it
            # stands for; the output is quantized with the same parameters.
            ins[0] = qout[ins[0]]
            params[n.outputs[0]] = params[ins[0]]
            qout[n.outputs[0]] = n.outputs[0]
        kept.append(Node(n.op, n.name, ins, list(n.outputs), dict(n.attrs), n.opset, n.domain))
    # A graph output read through a final DQ keeps its ONNX name.
    rename = {alias[o]: o for o in graph.outputs if o in alias}
    for n in kept:
        n.inputs = [rename.get(i, i) for i in n.inputs]
        n.outputs = [rename.get(o, o) for o in n.outputs]
    params = {rename.get(k, k): v for k, v in params.items()}
    outputs = [alias.get(o, o) if o not in rename.values() else o for o in graph.outputs]
    for o in outputs:
        if o not in params:
            raise QuantizationError(f"output '{o}' is not quantized in the model (no QuantizeLinear "
                                    "before it); export the quantized model with quantized outputs")
    used = {i for n in kept for i in n.inputs}
    types = {i: graph.types[i] for i in graph.inputs}
    g = Graph(graph.name, kept, list(graph.inputs), outputs, types,
              {k: v for k, v in consts.items() if k in used}, graph.opset, graph.source)
    return g, params, given


def import_quantized(graph: Graph) -> tuple[Graph, dict]:
    """A QDQ / QLinear graph (straight from the frontend) -> the integer graph
    and its I/O params."""
    from ..passes import run_passes
    from .rewrite import quantize_graph
    float_graph, params, given = split_qdq(graph)
    for i in float_graph.inputs:
        if i not in params:
            raise QuantizationError(f"input '{i}' is not quantized (no QuantizeLinear after it)")
        float_graph.types[i] = TensorType(float_graph.types[i].shape, np.float32)
    float_graph = run_passes(float_graph)
    return quantize_graph(float_graph, params, dict(per_channel=True, given=given))
