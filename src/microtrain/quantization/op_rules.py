"""Integer forms of the CNN ops (registered into rewrite.QUANTIZERS).
Weights: int8 symmetric, per output channel (per_channel=True) or per tensor;
bias: int32-range integers at scale s_x * s_w, folded into the requant add."""
from __future__ import annotations

import numpy as np

from ..errors import node_label
from ..ops._quant import INT8_MAX
from .calibration import scale_zero_point
from .rewrite import QuantCtx, QuantizationError, clamp_range, fixed_point, quantizer

# Largest shift the quantizer uses: keeps |zero_point * 2^shift| and
# |acc * mul| far inside int64 (docs/quantization.md).
QUANT_MAX_SHIFT = 48
ACC_LIMIT = 1 << 62

CONV_ATTRS = ("strides", "pads", "dilations", "group", "auto_pad", "kernel_shape")
POOL_ATTRS = ("kernel_shape", "strides", "pads", "auto_pad", "dilations", "ceil_mode", "count_include_pad")


def requant_params(node, multipliers, bias_q, zy, taps: int):
    """(mul int32[C], add int64[C], shift) for real multipliers M[c], integer
    bias (in accumulator units) and output zero point."""
    mul, shift = fixed_point(np.asarray(multipliers) * 1.0, node)
    if shift > QUANT_MAX_SHIFT:
        mul = np.round(np.asarray(multipliers, np.float64) * 2.0 ** QUANT_MAX_SHIFT).astype(np.int32)
        shift = QUANT_MAX_SHIFT
    add = np.asarray(bias_q, np.int64) * mul.astype(np.int64) + (np.int64(zy) << np.int64(shift))
    worst = float(taps) * 255 * 128 * float(mul.max(initial=0)) + float(np.abs(add).max(initial=0))
    if worst >= ACC_LIMIT:
        raise QuantizationError(f"{node_label(node)}: the integer accumulator could overflow int64 "
                                "(bias or scales out of range); check the calibration data")
    return mul, add, shift


def quantize_weight(w: np.ndarray, axis: int, per_channel: bool):
    """Symmetric int8 weights (values in [-127, 127]) and their scales."""
    w = np.asarray(w, np.float64)
    if per_channel:
        red = tuple(a for a in range(w.ndim) if a != axis)
        amax = np.abs(w).max(axis=red) if w.size else np.zeros(w.shape[axis])
    else:
        amax = np.full(w.shape[axis], np.abs(w).max() if w.size else 0.0)
    scale = np.where(amax > 0, amax / INT8_MAX, 1.0)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -INT8_MAX, INT8_MAX).astype(np.int8)
    return q, scale


def given_weight(ctx: QuantCtx, node, name: str, axis: int, transpose: bool = False):
    """The integer form an imported model gave this weight (QDQ / QLinear):
    (int8 values, per-channel scales along `axis` after the optional
    transpose), or None to quantize the float weight here."""
    given = ctx.options.get("given", {}).get(name)
    if given is None:
        return None
    q, scale, q_axis = given
    if q.dtype != np.int8:
        raise QuantizationError(f"{node_label(node)}: weight '{name}' is {q.dtype}; int8/uint8 weights only")
    if transpose:
        q, q_axis = q.T, (1 - q_axis if q.ndim == 2 else q_axis)
    channels = q.shape[axis]
    if scale.size == 1:
        scale = np.full(channels, float(scale[0]))
    elif q_axis != axis or scale.size != channels:
        raise QuantizationError(f"{node_label(node)}: weight '{name}' is quantized per channel along axis "
                                f"{q_axis}; microtrain takes per-output-channel scales (axis {axis})")
    return q, scale.astype(np.float64)


def _const(ctx: QuantCtx, node, index, what):
    name = node.inputs[index] if index < len(node.inputs) else ""
    if not name:
        return None
    if name not in ctx.graph.constants:
        raise QuantizationError(f"{node_label(node)}: {what} must be a constant to quantize this op")
    return ctx.graph.constants[name].astype(np.float64)


def _out(node, act, ctx=None):
    tail = ctx.bias_add if ctx is not None and ctx.bias_add is not None else node
    return (act or tail).outputs[0]


@quantizer("Conv")
def _conv(node, act, ctx: QuantCtx):
    x = node.inputs[0]
    w = _const(ctx, node, 1, "the weight")
    b = _const(ctx, node, 2, "the bias")
    sx, zx = ctx.q(x)
    out = _out(node, act)
    sy, zy = ctx.out_params(out)
    wq, sw = given_weight(ctx, node, node.inputs[1], 0) or quantize_weight(w, 0, ctx.options["per_channel"])
    bias = np.zeros(w.shape[0]) if b is None else b
    bias_q = np.round(bias / (sx * sw)).astype(np.int64)
    mul, add, shift = requant_params(node, sx * sw / sy, bias_q, zy, int(np.prod(w.shape[1:])))
    lo, hi = clamp_range(act, (sy, zy), ctx.graph)
    attrs = {k: node.attrs[k] for k in CONV_ATTRS if k in node.attrs}
    ctx.emit("mt.QConv", node.name, [x, ctx.const(node.inputs[1] + "_q", wq),
                                     ctx.const(node.name + "_mul", mul), ctx.const(node.name + "_add", add)],
             out, (sy, zy), x_zero_point=zx, shift=shift, lo=lo, hi=hi, **attrs)


def _matmul_const_b(node, act, ctx, a, w_kn, bias, given=None):
    """a @ W (+ bias) with W float (K, N) constant -> mt.QMatMul."""
    sa, za = ctx.q(a)
    out = _out(node, act, ctx)
    sy, zy = ctx.out_params(out)
    wq, sw = given or quantize_weight(w_kn, 1, ctx.options["per_channel"])
    bias_q = np.round(bias / (sa * sw)).astype(np.int64)
    mul, add, shift = requant_params(node, sa * sw / sy, bias_q, zy, w_kn.shape[0])
    lo, hi = clamp_range(act, (sy, zy), ctx.graph)
    ctx.emit("mt.QMatMul", node.name, [a, ctx.const(node.name + "_w_q", wq),
                                       ctx.const(node.name + "_mul", mul), ctx.const(node.name + "_add", add)],
             out, (sy, zy), a_zero_point=za, b_zero_point=0, shift=shift, lo=lo, hi=hi)


@quantizer("Gemm")
def _gemm(node, act, ctx: QuantCtx):
    if node.attr("transA", 0):
        raise QuantizationError(f"{node_label(node)}: transA=1 is not supported by the quantizer; "
                                "export the model without transposing the activation")
    b = _const(ctx, node, 1, "B (the weight)")
    w = (b.T if node.attr("transB", 0) else b) * float(node.attr("alpha", 1.0))
    n = w.shape[1]
    c = _const(ctx, node, 2, "C (the bias)")
    bias = np.zeros(n)
    if c is not None:
        if c.size not in (1, n) or (c.ndim == 2 and c.shape[0] != 1):
            raise QuantizationError(f"{node_label(node)}: a bias C of shape {c.shape} is not supported; "
                                    f"use shape ({n},)")
        bias = np.broadcast_to(c.reshape(-1), (n,)) * float(node.attr("beta", 1.0))
    given = (given_weight(ctx, node, node.inputs[1], 1, transpose=bool(node.attr("transB", 0)))
             if float(node.attr("alpha", 1.0)) == 1.0 else None)
    _matmul_const_b(node, act, ctx, node.inputs[0], w, bias, given)


@quantizer("MatMul")
def _matmul(node, act, ctx: QuantCtx):
    a, b = node.inputs
    g = ctx.graph
    if a in g.constants:
        raise QuantizationError(f"{node_label(node)}: a constant left operand is not supported; "
                                "write the product with the weight on the right")
    if b in g.constants:
        w = g.constants[b].astype(np.float64)
        if w.ndim != 2:
            raise QuantizationError(f"{node_label(node)}: a constant right operand must be 2-D, got {w.shape}")
        bias = np.zeros(w.shape[1])
        if ctx.bias_add is not None:        # Linear on a 3-D input: MatMul + Add(bias)
            b_name = next(i for i in ctx.bias_add.inputs if i != node.outputs[0])
            bias = g.constants[b_name].astype(np.float64).reshape(-1)
        _matmul_const_b(node, act, ctx, a, w, bias, given_weight(ctx, node, b, 1))
        return
    (sa, za), (sb, zb) = ctx.q(a), ctx.q(b)
    out = _out(node, act)
    sy, zy = ctx.out_params(out)
    k = g.types[a].shape[-1]
    mul, add, shift = requant_params(node, [sa * sb / sy], [0], zy, k)
    lo, hi = clamp_range(act, (sy, zy), g)
    ctx.emit("mt.QMatMul", node.name, [a, b, ctx.const(node.name + "_mul", mul),
                                       ctx.const(node.name + "_add", add)],
             out, (sy, zy), a_zero_point=za, b_zero_point=zb, shift=shift, lo=lo, hi=hi)


def _int8_operand(ctx: QuantCtx, node, name: str) -> str:
    """A run-time int8 tensor as is; a float constant quantized per tensor."""
    if name in ctx.graph.constants:
        v = ctx.graph.constants[name].astype(np.float64)
        s, z = scale_zero_point(v.min(initial=0.0), v.max(initial=0.0))
        q = np.clip(np.round(v / s) + z, -128, 127).astype(np.int8)
        qname = ctx.const(name + "_q", q)
        ctx.qparams[qname] = (s, z)
        return qname
    ctx.q(name)
    return name


@quantizer("Add", "Sub")
def _add(node, act, ctx: QuantCtx):
    a, b = (_int8_operand(ctx, node, t) for t in node.inputs)
    (sa, za), (sb, zb) = ctx.q(a), ctx.q(b)
    out = _out(node, act)
    sy, zy = ctx.out_params(out)
    mul, add, shift = requant_params(node, [sa / sy, sb / sy], [0, 0], zy, 2)
    lo, hi = clamp_range(act, (sy, zy), ctx.graph)
    sign = -1 if node.op == "Sub" else 1
    ctx.emit("mt.QAdd", node.name, [a, b], out, (sy, zy), a_zero_point=za, b_zero_point=zb,
             a_mul=int(mul[0]), b_mul=sign * int(mul[1]), add=int(add[0]), shift=shift, lo=lo, hi=hi)


@quantizer("Mul")
def _mul(node, act, ctx: QuantCtx):
    a, b = (_int8_operand(ctx, node, t) for t in node.inputs)
    (sa, za), (sb, zb) = ctx.q(a), ctx.q(b)
    out = node.outputs[0]
    sy, zy = ctx.out_params(out)
    mul, add, shift = requant_params(node, [sa * sb / sy], [0], zy, 256)
    ctx.emit("mt.QMul", node.name, [a, b], out, (sy, zy), a_zero_point=za, b_zero_point=zb,
             mul=int(mul[0]), add=int(add[0]), shift=shift)


@quantizer("Relu", "Clip")
def _activation(node, act, ctx: QuantCtx):
    """A Relu / Clip that could not be fused: an int8 -> int8 clamp at the input's scale."""
    x = node.inputs[0]
    qp = ctx.q(x)
    lo, hi = clamp_range(node, qp, ctx.graph)
    ctx.emit("mt.Requant", node.name, [x, ctx.const(node.name + "_mul", np.ones(1, np.int32)),
                                       ctx.const(node.name + "_add", np.zeros(1, np.int64))],
             node.outputs[0], qp, axis=0, shift=0, lo=lo, hi=hi)


def _pool_attrs(node, ctx, x):
    if node.op.startswith("Global"):
        return {"kernel_shape": list(ctx.graph.types[x].shape[2:])}
    return {k: node.attrs[k] for k in POOL_ATTRS if k in node.attrs}


@quantizer("MaxPool", "GlobalMaxPool")
def _maxpool(node, act, ctx: QuantCtx):
    if len(node.outputs) > 1 and node.outputs[1]:
        raise QuantizationError(f"{node_label(node)}: the Indices output has no integer form")
    x = node.inputs[0]
    attrs = _pool_attrs(node, ctx, x)
    attrs.pop("count_include_pad", None)
    ctx.emit("mt.QMaxPool", node.name, [x], node.outputs[0], ctx.q(x), **attrs)


@quantizer("AveragePool", "GlobalAveragePool")
def _avgpool(node, act, ctx: QuantCtx):
    x = node.inputs[0]
    sx, zx = ctx.q(x)
    out = node.outputs[0]
    sy, zy = ctx.out_params(out)
    mul, shift = fixed_point([sx / sy], node)
    shift = min(shift, 40)
    mul = np.round(np.array([sx / sy]) * 2.0 ** shift).astype(np.int64)
    ctx.emit("mt.QAvgPool", node.name, [x], out, (sy, zy), x_zero_point=zx, y_zero_point=zy,
             mul=int(min(mul[0], 2 ** 31 - 1)), shift=shift, **_pool_attrs(node, ctx, x))


@quantizer("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity")
def _same_scale(node, act, ctx: QuantCtx):
    """Data movement: the int8 values and their scale pass through unchanged."""
    qp = ctx.q(node.inputs[0])
    ctx.nodes.append(type(node)(node.op, node.name, list(node.inputs), list(node.outputs),
                                dict(node.attrs), node.opset, node.domain))
    ctx.qparams[node.outputs[0]] = qp


@quantizer("Concat")
def _concat(node, act, ctx: QuantCtx):
    out = node.outputs[0]
    sy, zy = ctx.out_params(out)
    parts = []
    for i, t in enumerate(node.inputs):
        t = _int8_operand(ctx, node, t)
        sx, zx = ctx.q(t)
        if (sx, zx) != (sy, zy):
            mul, add, shift = requant_params(node, [sx / sy], [-zx], zy, 1)
            name = f"{node.name}_in{i}_rq"
            ctx.emit("mt.Requant", name, [t, ctx.const(name + "_mul", mul), ctx.const(name + "_add", add)],
                     name, (sy, zy), axis=0, shift=shift)
            t = name
        parts.append(t)
    ctx.nodes.append(type(node)(node.op, node.name, parts, [out], dict(node.attrs), node.opset, node.domain))
    ctx.qparams[out] = (sy, zy)


# Softmax / Gelu / LayerNormalization: integer Transformer ops (transformer_rules.py)
from . import transformer_rules  # noqa: E402,F401
