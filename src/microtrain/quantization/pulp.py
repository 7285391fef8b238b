"""Import of the PULP integer ONNX convention (QuantLib / Deeploy exports):
Conv / Gemm / MatMul / Add on integer-valued float tensors, each followed by
a custom `RequantShift(x, mul, add)` with attributes `div` (a power of two),
`n_levels` and `signed`, meaning clip(floor((x*mul + add + div/2) / div)) to
[-n/2, n/2-1] (signed) or [0, n-1] (unsigned). That is microtrain's requant
rule with shift = log2(div), so each op + RequantShift becomes one fused
mt.Q* op. Tensors are stored as int8; an unsigned one holds value - 128
(zero point -128), which the consumer's zero point undoes. Graph inputs are
int8 (their float values must be integers in [-128, 127]); I/O params are
scale 1 so `dequantize_outputs` returns the integer values.
The integer Softmax / GELU / LayerNorm nodes (ITAMax, ITAPartialMax,
iSoftmax, iGELU, iLayerNorm, IntegerMean) become the mt.Pulp* ops with Deeploy's kernel
arithmetic (ops/pulp_*.py); their outputs carry offset n_levels/2 (softmaxes)
or 0. A constant-mode Pad stores its integer pad value as value - offset.
Rules and sources: docs/quantization.md, Import."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError, node_label
from ..ir import Graph, Node, TensorType
from .rewrite import QuantizationError

REQUANT_OP = "RequantShift"
PASS_THROUGH = ("MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity")
CONV_ATTRS = ("strides", "pads", "dilations", "group", "auto_pad", "kernel_shape")
INTEGER_NODES = ("ITAMax", "ITAPartialMax", "iSoftmax", "iGELU", "iLayerNorm", "IntegerMean")


def is_pulp_onnx(graph: Graph) -> bool:
    return any(n.op == REQUANT_OP or n.op in INTEGER_NODES for n in graph.nodes)


def _int_const(graph, node, name, what, lo, hi, dtype):
    if name not in graph.constants:
        raise UnsupportedOpError(f"{node_label(node)}: {what} must be a constant")
    v = np.asarray(graph.constants[name], np.float64)
    if not np.all(v == np.round(v)) or v.min(initial=lo) < lo or v.max(initial=hi) > hi:
        raise QuantizationError(f"{node_label(node)}: {what} must hold integers in [{lo}, {hi}]")
    return v.astype(dtype)


def _channel_vector(graph, node, name, what, channels):
    v = _int_const(graph, node, name, what, -(1 << 62), 1 << 62, np.int64).reshape(-1)
    if v.size not in (1, channels):
        raise QuantizationError(f"{node_label(node)}: {what} has {v.size} values; expected 1 or {channels}")
    return np.broadcast_to(v, (channels,)).copy()


def _requant_params(graph, rq: Node, channels: int):
    """(mul int64[C], add int64[C], shift, lo, hi, output offset)."""
    div = int(rq.attr("div", 1))
    shift = div.bit_length() - 1
    if div < 1 or (1 << shift) != div:
        raise QuantizationError(f"{node_label(rq)}: div={div} must be a power of two")
    n_levels, signed = int(rq.attr("n_levels", 256)), bool(rq.attr("signed", 1))
    if not 2 <= n_levels <= 256:
        raise QuantizationError(f"{node_label(rq)}: n_levels={n_levels} must be in 2..256 (8-bit)")
    mul = _channel_vector(graph, rq, rq.inputs[1], "mul", channels)
    add = _channel_vector(graph, rq, rq.inputs[2], "add", channels)
    if np.abs(mul).max() >= (1 << 31):
        raise QuantizationError(f"{node_label(rq)}: mul does not fit int32")
    if signed:
        return mul, add, shift, -(n_levels // 2), n_levels // 2 - 1, 0
    # unsigned [0, n-1] stored as value - 128
    return mul, add - (128 << shift), shift, -128, n_levels - 1 - 128, 128


def _int_attr(node, key):
    """An integer attribute (exporters write some as 0-d tensors)."""
    v = node.attr(key)
    if v is None:
        raise QuantizationError(f"{node_label(node)}: attribute {key} is missing")
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if v.size != 1 or v[0] != np.round(v[0]):
        raise QuantizationError(f"{node_label(node)}: attribute {key} must be one integer")
    return int(v[0])


def _levels(node):
    n_levels = _int_attr(node, "n_levels")
    if not 2 <= n_levels <= 256:
        raise QuantizationError(f"{node_label(node)}: n_levels={n_levels} must be in 2..256 (8-bit)")
    return n_levels


def _output_offset(node) -> int:
    """Softmax outputs are value - n_levels/2 in int8 (docs/quantization.md)."""
    return _levels(node) // 2 if node.op in ("ITAMax", "ITAPartialMax", "iSoftmax") else 0


def _integer_mean(g, node, x_off) -> Node:
    """IntegerMean (Deeploy's ReduceMean rounding): the mean keeps the input's offset."""
    axes = node.attr("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1] in g.constants:
        axes = g.constants[node.inputs[1]]
    if axes is None:
        raise QuantizationError(f"{node_label(node)}: axes must be given (attribute or constant input)")
    attrs = dict(axes=[int(a) for a in np.asarray(axes).reshape(-1)], keepdims=int(node.attr("keepdims", 1)),
                 x_offset=x_off, y_offset=x_off)
    return Node("mt.PulpIntegerMean", node.name, [node.inputs[0]], list(node.outputs), attrs, domain="microtrain")


def _integer_node(g, node, x_off, rq, const) -> Node:
    """The PULP integer Softmax / GELU / LayerNorm nodes as mt.Pulp* ops (ops/pulp_*.py)."""
    x, y = node.inputs[0], node.outputs[0]
    if node.op in ("ITAMax", "ITAPartialMax"):
        if x_off != 0:
            raise QuantizationError(f"{node_label(node)}: ITA's softmax reads signed int8 logits; its input "
                                    "comes from an unsigned RequantShift (signed=0)")
        width = _int_attr(node, "group_width") if node.op == "ITAPartialMax" else 0
        if node.op == "ITAPartialMax" and width < 1:
            raise QuantizationError(f"{node_label(node)}: group_width={width} must be >= 1")
        return Node("mt.PulpITAMax", node.name, [x], [y], dict(n_levels=_levels(node), group_width=width),
                    domain="microtrain")
    if node.op == "iSoftmax":                  # x - max: the input offset cancels
        attrs = {k: _int_attr(node, k) for k in ("coeffA", "coeffB", "coeffC", "log2")}
        return Node("mt.PulpISoftmax", node.name, [x], [y], dict(attrs, n_levels=_levels(node)),
                    domain="microtrain")
    if node.op == "iGELU":
        if rq is None:
            raise QuantizationError(f"{node_label(node)}: iGELU's int32 output must be followed by exactly one "
                                    "RequantShift")
        return Node("mt.PulpIGelu", node.name, [x], [y], dict(b=_int_attr(node, "b"), one=_int_attr(node, "one"),
                                                               x_offset=x_off), domain="microtrain")
    # iLayerNorm(x, weight, bias), D a power of two, signed output of n_levels
    d = _int_attr(node, "D")
    log2d = d.bit_length() - 1
    if d < 1 or (1 << log2d) != d:
        raise QuantizationError(f"{node_label(node)}: D={d} must be a power of two")
    w = _int_const(g, node, node.inputs[1], "the weight", -(1 << 31), (1 << 31) - 1, np.int64).reshape(-1)
    n = w.size                             # the row length; mt.PulpILayerNorm checks it against x
    b = _channel_vector(g, node, node.inputs[2], "the bias", n)
    if np.abs(w).max() >= 1 << 31 or np.abs(b).max() >= 1 << 31:
        raise QuantizationError(f"{node_label(node)}: weight and bias must fit int32 (Deeploy's int32_t arrays)")
    n_levels = _levels(node)
    return Node("mt.PulpILayerNorm", node.name, [x, const(node.name + "_w", w.astype(np.int32)),
                                                  const(node.name + "_b", b.astype(np.int32))], [y],
                dict(log2D=log2d, x_offset=x_off, lo=-(n_levels // 2), hi=n_levels // 2 - 1), domain="microtrain")


def _integer_pad(g, node, x_off, const) -> Node:
    """Pad of an integer tensor: a constant value is given as an integer value, stored as value - offset."""
    if node.attr("mode", "constant") != "constant":
        return node                        # reflect / edge copy stored values: the offset is unchanged
    if node.opset < 11:
        value = node.attr("value", 0.0)
    else:
        name = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        if name is not None and name not in g.constants:
            raise QuantizationError(f"{node_label(node)}: constant_value must be a constant")
        value = g.constants[name] if name is not None else 0.0
    value = float(np.asarray(value, dtype=np.float64).reshape(-1)[0]) if np.size(value) else 0.0
    stored = value - x_off
    if value != round(value) or not -128 <= stored <= 127:
        raise QuantizationError(f"{node_label(node)}: pad value {value:g} is not an integer of the input's "
                                f"range [{-128 + x_off}, {127 + x_off}]")
    if node.opset < 11:
        return Node("Pad", node.name, list(node.inputs), list(node.outputs), dict(node.attrs, value=stored),
                    node.opset, node.domain)
    ins = list(node.inputs) + [""] * (3 - len(node.inputs))
    ins[2] = const(node.name + "_value", np.array(int(stored), np.int8))
    return Node("Pad", node.name, ins, list(node.outputs), dict(node.attrs), node.opset, node.domain)


def import_pulp(graph: Graph) -> tuple[Graph, dict]:
    g = graph
    consumers = g.consumers()
    offset: dict[str, int] = {}            # stored int8 + offset = the integer value
    nodes: list[Node] = []
    consts: dict[str, np.ndarray] = {}
    done: set[str] = set()

    def const(name, value):
        consts[name] = np.require(value, requirements="C")
        return name

    def off(t, node):
        if t not in offset:
            raise QuantizationError(f"{node_label(node)}: input '{t}' is not an integer tensor of the "
                                    "network (only RequantShift outputs and graph inputs are)")
        return offset[t]

    for i in g.inputs:
        offset[i] = 0
    for node in g.nodes:
        if node.name in done:
            continue
        users = consumers.get(node.outputs[0], []) if node.outputs else []
        rq = users[0] if len(users) == 1 and users[0].op == REQUANT_OP else None
        if node.op in ("Conv", "Gemm", "MatMul", "Add") and rq is None:
            raise QuantizationError(f"{node_label(node)}: must be followed by exactly one RequantShift "
                                    "in the PULP integer convention")
        if node.op == "Conv":
            w = _int_const(g, node, node.inputs[1], "the weight", -128, 127, np.int8)
            m = w.shape[0]
            mul, add, shift, lo, hi, out_off = _requant_params(g, rq, m)
            if len(node.inputs) > 2 and node.inputs[2]:
                add = add + _channel_vector(g, node, node.inputs[2], "the bias", m) * mul
            attrs = {k: node.attrs[k] for k in CONV_ATTRS if k in node.attrs}
            nodes.append(Node("mt.QConv", node.name, [node.inputs[0], const(node.name + "_w", w),
                                                      const(node.name + "_mul", mul.astype(np.int32)),
                                                      const(node.name + "_add", add)],
                              [rq.outputs[0]], dict(attrs, x_zero_point=-off(node.inputs[0], node), shift=shift,
                                                    lo=lo, hi=hi), domain="microtrain"))
        elif node.op in ("Gemm", "MatMul"):
            if node.attr("transA", 0) or float(node.attr("alpha", 1.0)) != 1.0:
                raise QuantizationError(f"{node_label(node)}: transA / alpha are not supported here")
            if node.op == "MatMul" and node.inputs[1] not in g.constants:     # e.g. Q.K^T, P.V
                mul, add, shift, lo, hi, out_off = _requant_params(g, rq, 1)
                a, b = node.inputs
                nodes.append(Node("mt.QMatMul", node.name, [a, b, const(node.name + "_mul", mul.astype(np.int32)),
                                                            const(node.name + "_add", add)],
                                  [rq.outputs[0]], dict(a_zero_point=-off(a, node), b_zero_point=-off(b, node),
                                                        shift=shift, lo=lo, hi=hi), domain="microtrain"))
                done.add(rq.name)
                offset[rq.outputs[0]] = out_off
                continue
            w = _int_const(g, node, node.inputs[1], "the weight", -128, 127, np.int8)
            if node.attr("transB", 0):
                w = np.ascontiguousarray(w.T)
            n = w.shape[1]
            mul, add, shift, lo, hi, out_off = _requant_params(g, rq, n)
            if node.op == "Gemm" and len(node.inputs) > 2 and node.inputs[2]:
                add = add + _channel_vector(g, node, node.inputs[2], "the bias", n) * mul \
                    * int(round(float(node.attr("beta", 1.0))))
            nodes.append(Node("mt.QMatMul", node.name, [node.inputs[0], const(node.name + "_w", w),
                                                        const(node.name + "_mul", mul.astype(np.int32)),
                                                        const(node.name + "_add", add)],
                              [rq.outputs[0]], dict(a_zero_point=-off(node.inputs[0], node), b_zero_point=0,
                                                    shift=shift, lo=lo, hi=hi), domain="microtrain"))
        elif node.op == "Add":
            mul, add, shift, lo, hi, out_off = _requant_params(g, rq, 1)
            a, b = node.inputs
            nodes.append(Node("mt.QAdd", node.name, [a, b], [rq.outputs[0]],
                              dict(a_zero_point=-off(a, node), b_zero_point=-off(b, node), a_mul=int(mul[0]),
                                   b_mul=int(mul[0]), add=int(add[0]), shift=shift, lo=lo, hi=hi),
                              domain="microtrain"))
        elif node.op == REQUANT_OP:        # on its own: after a pass-through op or an input
            x = node.inputs[0]
            mul, add, shift, lo, hi, out_off = _requant_params(g, node, 1)
            add = add + off(x, node) * mul
            nodes.append(Node("mt.Requant", node.name, [x, const(node.name + "_mul", mul.astype(np.int32)),
                                                        const(node.name + "_add", add)],
                              [node.outputs[0]], dict(axis=0, shift=shift, lo=lo, hi=hi), domain="microtrain"))
            offset[node.outputs[0]] = out_off     # its consumer is not fused with it
            continue
        elif node.op == "IntegerMean":
            nodes.append(_integer_mean(g, node, off(node.inputs[0], node)))
            offset[node.outputs[0]] = off(node.inputs[0], node)
            continue
        elif node.op in INTEGER_NODES:
            nodes.append(_integer_node(g, node, off(node.inputs[0], node), rq, const))
            offset[node.outputs[0]] = _output_offset(node)
            continue
        elif node.op == "Pad":
            nodes.append(_integer_pad(g, node, off(node.inputs[0], node), const))
            offset[node.outputs[0]] = off(node.inputs[0], node)
            continue
        elif node.op in PASS_THROUGH:
            if node.op == "MaxPool" and len(node.outputs) > 1 and node.outputs[1]:
                raise QuantizationError(f"{node_label(node)}: the Indices output has no integer form")
            out_off = off(node.inputs[0], node)
            if node.op == "MaxPool":
                attrs = {k: v for k, v in node.attrs.items() if k != "storage_order"}
                nodes.append(Node("mt.QMaxPool", node.name, [node.inputs[0]], [node.outputs[0]], attrs,
                                  domain="microtrain"))
            else:
                nodes.append(node)
            offset[node.outputs[0]] = out_off
            continue
        else:
            raise UnsupportedOpError(f"{node_label(node)}: {node.op} has no integer form in the PULP "
                                     "convention import (Conv, Gemm, MatMul, Add + RequantShift, MaxPool, "
                                     "Pad, ITAMax, ITAPartialMax, iSoftmax, iGELU, iLayerNorm, IntegerMean, shape ops)")
        if rq is not None:
            done.add(rq.name)
            offset[rq.outputs[0]] = out_off
    for o in g.outputs:
        if o not in offset:
            raise QuantizationError(f"output '{o}' is not an integer tensor of the network")
    used = {i for n in nodes for i in n.inputs}
    constants = {k: v for k, v in g.constants.items() if k in used}
    constants.update(consts)
    types = {i: TensorType(g.types[i].shape, np.int8) for i in g.inputs}
    q = Graph(g.name, nodes, list(g.inputs), list(g.outputs), types, constants, g.opset, g.source)
    return q, {t: (1.0, -offset[t]) for t in [*g.inputs, *g.outputs]}
