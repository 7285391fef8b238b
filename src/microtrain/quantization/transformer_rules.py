"""Integer forms of Softmax, Gelu and LayerNormalization (registered into
rewrite.QUANTIZERS, replacing op_rules' placeholders), chosen by the
quantize options softmax="ita"|"ibert", gelu="ibert", layernorm="ibert"
(docs/quantization_transformer.md).

Probabilities leave the softmax as int8 at scale 1/255, zero point -128
(`signed_output`), the int8 path's activation form, so the P.V MatMul is an
ordinary mt.QMatMul. ITA needs its logits at the fixed scale 8/(256 log2 e):
`force_ita_logit_scales` sets the calibrated scale of the op that computes
them (Q.K^T or the scale Mul after it) before the rewrite, so no extra
requantization is needed; if a logit tensor still arrives at another scale
(e.g. its producer is not quantized by a rule that reads the calibration),
an mt.Requant brings it there."""
from __future__ import annotations

import numpy as np

from ..errors import node_label
from ..ir import Graph
from ..ops.ibert_gelu import ibert_gelu_params
from ..ops.ibert_layernorm import ibert_layernorm_params
from ..ops.ibert_softmax import ibert_softmax_params
from ..ops.ita_softmax import ITA_LOGIT_SCALE
from .rewrite import QuantCtx, QuantizationError, fixed_point, quantizer

PROBS = (1.0 / 255.0, -128)
SCALE_PRESERVING = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity")


def force_ita_logit_scales(graph: Graph, calib: dict, options: dict) -> None:
    """Before the rewrite: the tensor feeding each ITA softmax (through views)
    is calibrated to ITA's fixed logit scale, zero point 0."""
    if options.get("softmax", "ita") != "ita":
        return
    producers = graph.producers()
    for node in graph.nodes:
        if node.op != "Softmax":
            continue
        t = node.inputs[0]
        while t in producers and producers[t].op in SCALE_PRESERVING:
            t = producers[t].inputs[0]
        calib[t] = (ITA_LOGIT_SCALE, 0)


def _requant(ctx: QuantCtx, node, x: str, to) -> str:
    """mt.Requant of int8 x to params `to`; returns the new tensor."""
    sx, zx = ctx.q(x)
    sy, zy = to
    mul, shift = fixed_point(np.array([sx / sy]), node)
    add = np.array([-zx * int(mul[0]) + (zy << shift)], np.int64)
    out = x + "/at_ita_scale"
    ctx.emit("mt.Requant", node.name + "/to_ita_scale",
             [x, ctx.const(node.name + "_rq_mul", mul), ctx.const(node.name + "_rq_add", add)],
             out, to, axis=0, shift=shift, lo=-128, hi=127)
    return out


def _last_axis_perm(node, ctx: QuantCtx):
    rank = len(ctx.graph.types[node.inputs[0]].shape)
    default = 1 if node.opset < 13 else -1
    axis = int(node.attr("axis", default)) % rank
    if node.opset < 13 and axis != rank - 1:
        raise QuantizationError(f"{node_label(node)}: opset < 13 Softmax over axes {axis}.. is not supported; "
                                "export with opset >= 13")
    if axis == rank - 1:
        return None
    perm = [a for a in range(rank) if a != axis] + [axis]
    return perm, [int(i) for i in np.argsort(perm)]


@quantizer("Softmax")
def _softmax(node, act, ctx: QuantCtx):
    choice = ctx.options.get("softmax", "ita")
    if choice not in ("ita", "ibert"):
        raise QuantizationError(f"{node_label(node)}: softmax={choice!r} keeps a float softmax, which the "
                                "integer-only code cannot run; use softmax='ita' or 'ibert'")
    x, out = node.inputs[0], node.outputs[0]
    perms = _last_axis_perm(node, ctx)
    if perms is not None:   # move the softmax axis last and back (int8 data movement)
        moved = x + "/softmax_axis_last"
        ctx.nodes.append(type(node)("Transpose", node.name + "/to_last", [x], [moved], {"perm": perms[0]},
                                    node.opset))
        ctx.qparams[moved] = ctx.q(x)
        x = moved
    if choice == "ita":
        sx, zx = ctx.q(x)
        if zx != 0 or abs(sx - ITA_LOGIT_SCALE) > 1e-9 * ITA_LOGIT_SCALE:
            x = _requant(ctx, node, x, (ITA_LOGIT_SCALE, 0))
        op, attrs = "mt.ITASoftmax", {}
    else:
        op, attrs = "mt.IBertSoftmax", ibert_softmax_params(ctx.q(x)[0])
    y = out if perms is None else out + "/softmax_last"
    ctx.emit(op, node.name, [x], y, PROBS, signed_output=1, **attrs)
    if perms is not None:
        ctx.nodes.append(type(node)("Transpose", node.name + "/back", [y], [out], {"perm": perms[1]},
                                    node.opset))
        ctx.qparams[out] = PROBS


@quantizer("Gelu")
def _gelu(node, act, ctx: QuantCtx):
    if node.attr("approximate", "none") != "none":
        raise QuantizationError(f"{node_label(node)}: tanh-approximate GELU has no I-BERT form; "
                                "export GELU with approximate='none'")
    x, out = node.inputs[0], node.outputs[0]
    (sx, zx), (sy, zy) = ctx.q(x), ctx.out_params(out)
    ctx.emit("mt.IBertGelu", node.name, [x], out, (sy, zy), x_zero_point=int(zx), y_zero_point=int(zy),
             **ibert_gelu_params(sx, sy))


@quantizer("LayerNormalization")
def _layernorm(node, act, ctx: QuantCtx):
    g = ctx.graph
    x, out = node.inputs[0], node.outputs[0]
    rank = len(g.types[x].shape)
    if int(node.attr("axis", -1)) % rank != rank - 1 or len([o for o in node.outputs if o]) != 1:
        raise QuantizationError(f"{node_label(node)}: only LayerNormalization over the last axis with one "
                                "output has an integer form")
    n = g.types[x].shape[-1]
    params = []
    for i in (1, 2):
        name = node.inputs[i] if i < len(node.inputs) else ""
        if name and name not in g.constants:
            raise QuantizationError(f"{node_label(node)}: scale/bias must be constants to quantize")
        params.append(np.broadcast_to(g.constants[name], (n,)) if name else None)
    gamma = params[0] if params[0] is not None else np.ones(n)
    (sx, _), (sy, zy) = ctx.q(x), ctx.out_params(out)
    ctx.emit("mt.IBertLayerNorm", node.name, [x], out, (sy, zy),
             **ibert_layernorm_params(gamma, params[1], sx, sy, node.attr("epsilon", 1e-5), zy))


def _register_slice():
    """Slice (CCT's fused qkv split) is data movement: int8 values and scale pass through."""
    from .op_rules import _same_scale
    quantizer("Slice")(_same_scale)


_register_slice()


def _register_constant_gather():
    """Gather with constant indices (nn.MultiheadAttention's split of its fused
    in_proj output) is data movement too: mt_gather copies bytes of any dtype."""
    from .op_rules import _same_scale

    @quantizer("Gather")
    def _gather(node, act, ctx: QuantCtx):
        if node.inputs[1] not in ctx.graph.constants:
            raise QuantizationError(f"{node_label(node)}: only a Gather with constant indices has an "
                                    "integer form; make the indices a constant")
        _same_scale(node, act, ctx)


_register_constant_gather()
