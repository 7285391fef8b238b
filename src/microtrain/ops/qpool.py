"""Integer pooling with the ONNX pool attributes (kernel_shape, strides, pads,
auto_pad, dilations, ceil_mode; geometry from ops/maxpool.py):
* mt.QMaxPool(x): max of the window's taps inside the input (int8 in, same
  scale out; padding never wins). GlobalMaxPool is a window = the input.
* mt.QAvgPool(x): with acc = sum of (x - x_zero_point) over the taps inside the
  input and count the divisor (taps inside the input, or inside input +
  padding with count_include_pad),
      y = clamp(floor((2*acc*mul + den) / (2*den)) + y_zero_point, lo, hi),
      den = count * 2^shift,
  i.e. acc * (mul / 2^shift) / count rounded half up; mul/2^shift = s_x/s_y.
Kernels: mt_maxpool_s8 / mt_avgpool_s8 (runtime/mt_int8_pool.c); multi-core
builds split the planes over the cores (ctx.split_planes)."""
from __future__ import annotations

import math

import numpy as np

from ..ir import TensorType
from ._quant import check_int8, requant_params
from .maxpool import check_spatial_dims, pool_geometry, pool_macs, pool_windows
from .registry import register


def _infer(node, ins):
    check_int8(node, ins, (0,))
    requant_params(node)
    geom = pool_geometry(node, ins[0].shape)
    return [TensorType(tuple(ins[0].shape[:2]) + tuple(geom.out_sp), np.int8)]


def _reference(node, args):
    x = args[0]
    geom = pool_geometry(node, x.shape)
    n, c = x.shape[:2]
    shift, lo, hi = requant_params(node)
    include_pad = int(node.attr("count_include_pad", 0))
    zx, zy, mul = int(node.attr("x_zero_point", 0)), int(node.attr("y_zero_point", 0)), int(node.attr("mul", 1))
    y = np.empty((n, c, *geom.out_sp), dtype=np.int8)
    for pos, taps, inside, padded in pool_windows(geom):
        valid = [t[m] for t, m in zip(taps, inside)]
        window = x[(slice(None), slice(None)) + np.ix_(*valid)].astype(np.int64).reshape(n, c, -1)
        if node.op == "mt.QMaxPool":
            value = window.max(axis=2)
        else:
            count = int(np.prod([m.sum() for m in (padded if include_pad else inside)]))
            acc = (window - zx).sum(axis=2)
            den = count << shift
            value = np.clip((2 * acc * mul + den) // (2 * den) + zy if count else zy, lo, hi)
        y[(slice(None), slice(None)) + pos] = value
    return [y]


def _lower(node, ctx):
    shape = ctx.ins[0].shape
    check_spatial_dims(node, shape)
    geom = ctx.table(pool_geometry(node, shape).table())
    planes, in_plane, out_plane = shape[0] * shape[1], math.prod(shape[2:]), math.prod(ctx.outs[0].shape[2:])
    if node.op == "mt.QMaxPool":   # planes are independent: multi-core builds split them
        return ctx.split_planes(planes, in_plane, out_plane,
                                lambda x, y, nc: f"mt_maxpool_s8({x}, {y}, {nc}, {geom});")
    shift, lo, hi = requant_params(node)
    rest = (f"{int(node.attr('count_include_pad', 0))}, {int(node.attr('x_zero_point', 0))}, "
            f"{int(node.attr('y_zero_point', 0))}, {int(node.attr('mul', 1))}, {shift}, {lo}, {hi}")
    return ctx.split_planes(planes, in_plane, out_plane,
                            lambda x, y, nc: f"mt_avgpool_s8({x}, {y}, {nc}, {geom}, {rest});")


for _name in ("mt.QMaxPool", "mt.QAvgPool"):
    register(_name, infer=_infer, reference=_reference, lower=_lower, macs=pool_macs)
