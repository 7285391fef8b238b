"""AveragePool over 1-3 spatial dims: kernel_shape, strides, pads, auto_pad,
dilations (opset 19), ceil_mode, count_include_pad. Geometry shared with
MaxPool. With count_include_pad the divisor counts explicit/auto padding but
never the extra positions a ceil_mode window reaches past the padding.
Also LpPool (same attributes plus p): (sum |x|^p)^(1/p) over each window."""
from __future__ import annotations

import math

import numpy as np

from ..codegen.context import float_literal
from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .maxpool import check_spatial_dims, pool_geometry, pool_macs, pool_windows
from .registry import register


def _infer(node, ins):
    if node.op == "LpPool":
        lp_order(node)
    geom = pool_geometry(node, ins[0].shape)
    return [TensorType(tuple(ins[0].shape[:2]) + tuple(geom.out_sp), ins[0].dtype)]


def _reference(node, args):
    x = args[0]
    geom = pool_geometry(node, x.shape)
    n, c = x.shape[:2]
    include_pad = int(node.attr("count_include_pad", 0))
    y = np.empty((n, c, *geom.out_sp), dtype=x.dtype)
    p = lp_order(node) if node.op == "LpPool" else None
    for pos, taps, inside, padded in pool_windows(geom):
        valid = [t[m] for t, m in zip(taps, inside)]
        window = x[(slice(None), slice(None)) + np.ix_(*valid)].astype(np.float64).reshape(n, c, -1)
        if p is not None:
            value = (np.abs(window) ** p).sum(axis=2) ** (1.0 / p)
        else:
            value = window.sum(axis=2) / np.prod([m.sum() for m in (padded if include_pad else inside)])
        y[(slice(None), slice(None)) + pos] = value
    return [y]


def lp_order(node) -> int:
    """The p of LpPool / GlobalLpPool (default 2)."""
    p = int(node.attr("p", 2))
    if p < 1:
        raise ShapeError(f"{node_label(node)}: p={p} must be >= 1")
    return p


def _lower(node, ctx):
    require_float(node, ctx.ins)
    shape = ctx.ins[0].shape
    check_spatial_dims(node, shape)
    geom = pool_geometry(node, shape)
    table = ctx.table(geom.table())
    planes, in_plane, out_plane = shape[0] * shape[1], math.prod(shape[2:]), math.prod(ctx.outs[0].shape[2:])
    if node.op == "LpPool":
        p = float_literal(lp_order(node))
        return ctx.split_planes(planes, in_plane, out_plane,
                                lambda x, y, nc: f"mt_lppool_f32({x}, {y}, {nc}, {table}, {p});")
    pad = int(node.attr('count_include_pad', 0))
    return ctx.split_planes(planes, in_plane, out_plane,
                            lambda x, y, nc: f"mt_avgpool_f32({x}, {y}, {nc}, {table}, {pad});")


for _name in ("AveragePool", "LpPool"):
    register(_name, infer=_infer, reference=_reference, lower=_lower, macs=pool_macs,
             vjp=(lambda node, gb, dys: _vjp(node, gb, dys)) if _name == "AveragePool" else None)


# ---- gradient ------------------------------------------------------------------
# mt.AvgPoolGrad(dy): each dy / count spread over its window's taps inside the
# input (the forward's divisor); needs nothing from the forward but shapes.

def _grad_reference(node, args):
    from .maxpool import geometry_of
    (dy,) = args
    geom = geometry_of(node)
    include_pad = int(node.attr("count_include_pad", 0))
    dx = np.zeros(dy.shape[:2] + tuple(geom.in_sp), np.float64)
    for pos, taps, inside, padded in pool_windows(geom):
        valid = [t[m] for t, m in zip(taps, inside)]
        count = np.prod([m.sum() for m in (padded if include_pad else inside)])
        region = (slice(None), slice(None)) + np.ix_(*valid)
        share = dy[(slice(None), slice(None)) + pos].astype(np.float64) / count
        dx[region] += share.reshape(share.shape + (1,) * len(valid))
    return [dx.astype(np.float32)]


def _grad_lower(node, ctx):
    from .maxpool import geometry_of
    shape = ctx.outs[0].shape
    return (f"mt_avgpool_f32_bwd({ctx.inp(0)}, {ctx.out(0)}, {shape[0] * shape[1]}, "
            f"{ctx.table(geometry_of(node).table())}, {int(node.attr('count_include_pad', 0))});")


def _vjp(node, gb, dys):
    from .maxpool import geometry_attrs
    attrs = geometry_attrs(node, gb.shape(node.inputs[0]))
    attrs["count_include_pad"] = int(node.attr("count_include_pad", 0))
    return [gb.emit("mt.AvgPoolGrad", [dys[0]], attrs)]


def _register_grad():
    from .maxpool import pool_grad_infer
    register("mt.AvgPoolGrad", infer=pool_grad_infer, reference=_grad_reference, lower=_grad_lower,
             macs=lambda node, ins, outs: size(outs[0].shape))


_register_grad()
