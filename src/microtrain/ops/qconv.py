"""mt.QConv(x, w, mul, add): integer convolution over 1-3 spatial dims with
the Conv attributes (strides, pads, dilations, group incl. depthwise) and a
fused requantization epilogue:
    acc[n,m,o] = sum_{c,k} (x[n,c,o*s-p+k*d] - x_zero_point) * w[m,c,k]
(taps in the padding contribute 0, i.e. padding holds the zero point), then
y = requant(acc) per output channel (ops/_quant.py). x, w int8; mul int32 and
add int64 per output channel (bias and the output zero point live in add).
Kernel: mt_conv_s8 (runtime/mt_int8_conv.c), no int32 buffer."""
from __future__ import annotations

import math

import numpy as np

from ..ir import TensorType
from ._common import size
from ._quant import check_channel_vector, check_int8, requant_c_args, requant_params, requantize
from .conv import conv_geometry, tap_windows
from .registry import register


def _infer(node, ins):
    check_int8(node, ins, (0, 1))
    geo = conv_geometry(node, ins[0].shape, ins[1].shape)
    check_channel_vector(node, "mul", ins[2].const, geo.out_channels)
    check_channel_vector(node, "add", ins[3].const, geo.out_channels)
    requant_params(node)
    return [TensorType((geo.batch, geo.out_channels, *geo.out_size), np.int8)]


def accumulate(node, x, w) -> np.ndarray:
    """The int64 accumulator (before requantization), exact."""
    geo = conv_geometry(node, x.shape, w.shape)
    g, cg, mg = geo.group, geo.in_channels // geo.group, geo.out_channels // geo.group
    xs = x.astype(np.int64) - int(node.attr("x_zero_point", 0))
    acc = np.zeros((geo.batch, geo.out_channels, size(geo.out_size)), np.int64)
    wi = w.astype(np.int64)
    for k, win in tap_windows(xs, geo):   # float64 windows of exact small integers
        wk = wi[(slice(None), slice(None)) + k].reshape(g, mg, cg)
        acc += np.einsum("gmc,ngcp->ngmp", wk, win.astype(np.int64)).reshape(acc.shape)
    return acc.reshape(geo.batch, geo.out_channels, *geo.out_size)


def _reference(node, args):
    x, w, mul, add = args
    shift, lo, hi = requant_params(node)
    return [requantize(accumulate(node, x, w), mul, add, shift, lo, hi, axis=1)]


def _lower(node, ctx):
    geo = conv_geometry(node, ctx.ins[0].shape, ctx.ins[1].shape)
    return (f"mt_conv_s8({ctx.inp(0)}, {ctx.inp(1)}, {ctx.out(0)}, {ctx.table(geo.table())}, "
            f"{int(node.attr('x_zero_point', 0))}, {requant_c_args(ctx, 2, 3)});")


def _macs(node, ins, outs):
    w = ins[1].shape
    return size(outs[0].shape) * int(w[1]) * math.prod(w[2:])


register("mt.QConv", infer=_infer, reference=_reference, lower=_lower, macs=_macs)
