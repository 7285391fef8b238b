"""GroupNormalization: statistics per (sample, group of C/num_groups
channels), then a per-group (opset 18) or per-channel (opset 21) affine.
Shares its kernel with InstanceNormalization (groups = channels)."""
from __future__ import annotations

import numpy as np

from ..codegen.context import float_literal
from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .registry import register


def _groups(node, shape) -> int:
    g = int(node.attr("num_groups", 0))
    if len(shape) < 2 or g <= 0 or shape[1] % g:
        raise ShapeError(f"{node_label(node)}: num_groups={g} must divide the channel count "
                         f"(axis 1 of input shape {tuple(shape)})")
    return g


def affine_per_channel(node) -> bool:
    """Opset 21 made scale/bias per channel; opset 18 had them per group."""
    return node.opset >= 21


def _infer(node, ins):
    shape = ins[0].shape
    g = _groups(node, shape)
    want = shape[1] if affine_per_channel(node) else g
    for i, what in ((1, "scale"), (2, "bias")):
        if i >= len(ins) or not ins[i].present or size(ins[i].shape) != want:
            raise ShapeError(f"{node_label(node)}: {what} (input {i}) must hold {want} values "
                             f"({'one per channel' if affine_per_channel(node) else 'one per group'}"
                             f" at opset {node.opset})")
    return [TensorType(shape, ins[0].dtype)]


def _reference(node, args):
    x, scale, bias = args[:3]
    n, c = x.shape[:2]
    g = _groups(node, x.shape)
    eps = node.attr("epsilon", 1e-5)
    xg = x.astype(np.float64).reshape(n, g, -1)
    mean = xg.mean(axis=2, keepdims=True)
    xhat = (xg - mean) / np.sqrt(((xg - mean) ** 2).mean(axis=2, keepdims=True) + eps)
    if affine_per_channel(node):
        y = xhat.reshape(n, c, -1) * scale.reshape(1, c, 1) + bias.reshape(1, c, 1)
    else:
        y = xhat * scale.reshape(1, g, 1) + bias.reshape(1, g, 1)
    return [y.reshape(x.shape).astype(x.dtype)]


def _lower(node, ctx):
    for i in range(3):
        require_float(node, ctx.ins, i)
    shape = ctx.ins[0].shape
    g = _groups(node, shape)
    eps = float_literal(node.attr("epsilon", 1e-5))
    par = ctx.par()   # multi-core: this core's (sample, group) blocks
    return (f"mt_groupnorm_f32{'_par' if par else ''}({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, {ctx.out(0)}, "
            f"{shape[0]}, {g}, {shape[1] // g}, {size(shape[2:])}, "
            f"{int(affine_per_channel(node))}, {eps}{', ' + par if par else ''});")


def _macs(node, ins, outs):
    return 2 * size(outs[0].shape)


register("GroupNormalization", infer=_infer, reference=_reference, lower=_lower, macs=_macs,
         inplace=True, vjp=lambda node, gb, dys: _vjp(node, gb, dys))


# ---- gradient ------------------------------------------------------------------
# mt.GroupNormGrad(dy, x, scale) -> the wanted subset of (dx, dscale, dbias);
# attributes groups, per_channel, epsilon, want. InstanceNormalization uses it
# with groups = channels. Statistics are recomputed from x (kept alive anyway
# for xhat), so nothing extra is saved by the forward.

def _grad_infer(node, ins):
    shape = ins[1].shape
    nparams = shape[1] if node.attr("per_channel") else node.attr("groups")
    types = (TensorType(shape, np.float32), TensorType((nparams,), np.float32),
             TensorType((nparams,), np.float32))
    return [t for t, w in zip(types, node.attr("want")) if w]


def _grad_reference(node, args):
    dy, x, scale = (a.astype(np.float64) for a in args[:3])
    n, c = x.shape[:2]
    g = node.attr("groups")
    per_channel = node.attr("per_channel")
    xg = x.reshape(n, g, -1)
    mean = xg.mean(axis=2, keepdims=True)
    invstd = 1.0 / np.sqrt(((xg - mean) ** 2).mean(axis=2, keepdims=True) + node.attr("epsilon"))
    xhat = ((xg - mean) * invstd).reshape(n, c, -1)
    dyc = dy.reshape(n, c, -1)
    scale_c = scale.reshape(-1) if per_channel else np.repeat(scale.reshape(-1), c // g)
    gsc = (dyc * scale_c.reshape(1, c, 1)).reshape(n, g, -1)
    xh_g = xhat.reshape(n, g, -1)
    dx = invstd * (gsc - gsc.mean(axis=2, keepdims=True) - xh_g * (gsc * xh_g).mean(axis=2, keepdims=True))
    dscale_c = (dyc * xhat).sum(axis=(0, 2))
    dbias_c = dyc.sum(axis=(0, 2))
    if not per_channel:
        dscale_c, dbias_c = dscale_c.reshape(g, -1).sum(axis=1), dbias_c.reshape(g, -1).sum(axis=1)
    results = (dx.reshape(x.shape), dscale_c, dbias_c)
    return [r.astype(np.float32) for r, w in zip(results, node.attr("want")) if w]


def _grad_lower(node, ctx):
    from .layernorm import wanted_outputs
    shape = ctx.ins[1].shape
    g = node.attr("groups")
    dx, dscale, dbias = wanted_outputs(node, ctx)
    return (f"mt_groupnorm_f32_bwd({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, {dx}, {dscale}, {dbias}, "
            f"{shape[0]}, {g}, {shape[1] // g}, {size(shape[2:])}, {int(node.attr('per_channel'))}, "
            f"{float_literal(node.attr('epsilon'))});")


def _grad_macs(node, ins, outs):
    return 4 * size(ins[1].shape)


def emit_groupnorm_grad(node, gb, dys, groups: int, per_channel: bool):
    """Shared by GroupNormalization and InstanceNormalization."""
    from .layernorm import emit_affine_grad
    x, scale, bias = node.inputs[:3]
    attrs = {"groups": int(groups), "per_channel": int(per_channel),
             "epsilon": float(node.attr("epsilon", 1e-5))}
    shapes = (gb.shape(x), gb.shape(scale), gb.shape(bias))
    return emit_affine_grad(gb, "mt.GroupNormGrad", [dys[0], x, scale], attrs, shapes)


def _vjp(node, gb, dys):
    return emit_groupnorm_grad(node, gb, dys, _groups(node, gb.shape(node.inputs[0])),
                               affine_per_channel(node))


def _register_grad():
    from .layernorm import register_affine_grad
    register_affine_grad("mt.GroupNormGrad", infer=_grad_infer, reference=_grad_reference,
                         lower=_grad_lower, macs=_grad_macs)


_register_grad()
