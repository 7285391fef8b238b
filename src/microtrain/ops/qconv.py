"""mt.QConv(x, w, mul, add): integer convolution over 1-3 spatial dims with
the Conv attributes (strides, pads, dilations, group incl. depthwise) and a
fused requantization epilogue:
    acc[n,m,o] = sum_{c,k} (x[n,c,o*s-p+k*d] - x_zero_point) * w[m,c,k]
(taps in the padding contribute 0, i.e. padding holds the zero point), then
y = requant(acc) per output channel (ops/_quant.py). x, w int8; mul int32 and
add int64 per output channel (bias and the output zero point live in add).
Kernels (bit-identical): mt_conv_s8_gemm (runtime/mt_int8_gemm.c: im2col panel
of 4 pixels in the op's scratch, register-blocked, __smlad on Cortex-M4/M7);
depthwise 3x3 stride 1 mt_conv_s8_dw3x3 (mt_int8_dw.c: zero-padded int16 plane
in the op's scratch); other depthwise (one output channel per group)
mt_conv_s8_fast (mt_int8_conv.c);
the plain mt_conv_s8 with MICROTRAIN_KERNELS=reference. Multi-core builds
split the GEMM kernel's pixel blocks and the 3x3 depthwise kernel's channels
over the cores (`_par` variants, one panel per core); the other two run on
core 0."""
from __future__ import annotations

import math

import numpy as np

from ..ir import TensorType
from ._common import size
from ._quant import (check_channel_vector, check_int8, requant_c_args, requant_params, requantize,
                     s8_dw3x3_scratch_bytes, s8_panel_bytes, s8_rows_layout, s8_rows_table)
from .conv import conv_geometry, tap_windows
from .gemm import fast_kernels, value_shape
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
    kernel = _kernel(geo, ctx.ins[1])
    w, panel, par = ctx.inp(1), "", None
    if kernel == "mt_conv_s8_gemm":   # weights re-laid out for the kernel (a const copy)
        wc = np.asarray(ctx.ins[1].const)
        # reduction order (tap, input channel), as the kernel's im2col panel
        wt = wc.reshape(wc.shape[0], wc.shape[1], -1).transpose(0, 2, 1)
        rows = wt.reshape(geo.group, geo.out_channels // geo.group, -1)
        w = s8_rows_table(ctx, [s8_rows_layout(g) for g in rows])
    if kernel in ("mt_conv_s8_gemm", "mt_conv_s8_dw3x3"):
        par = ctx.par()   # multi-core: this core's share (the _par variant), its own panel
        panel = f", (int16_t *){ctx.core_scratch}"
    return (f"{kernel}{'_par' if par else ''}({ctx.inp(0)}, {w}, {ctx.out(0)}, {ctx.table(geo.table())}, "
            f"{int(node.attr('x_zero_point', 0))}, {requant_c_args(ctx, 2, 3)}{panel}{', ' + par if par else ''});")


def _dw3x3(geo) -> bool:
    """Depthwise 3x3, stride 1, dilation 1, 2-D: mt_conv_s8_dw3x3."""
    return (geo.group == geo.in_channels == geo.out_channels and geo.kernel == [3, 3]
            and geo.strides == [1, 1] and geo.dilations == [1, 1])


def _kernel(geo, w) -> str:
    """The blocked GEMM kernel (im2col panel of a few pixels in scratch,
    constant weights re-laid out) unless a group has a single output channel
    (depthwise: the 3x3 stride-1 kernel on a padded int16 plane, else the
    row-wise kernel) or the weights are computed at run time."""
    if not fast_kernels():
        return "mt_conv_s8"
    if _dw3x3(geo):
        return "mt_conv_s8_dw3x3"
    gemm = geo.out_channels // geo.group >= 2 and getattr(w, "const", None) is not None
    return "mt_conv_s8_gemm" if gemm else "mt_conv_s8_fast"


def _scratch(node, ins, outs):
    geo = conv_geometry(node, value_shape(ins[0]), value_shape(ins[1]))
    kernel = _kernel(geo, ins[1])
    if kernel == "mt_conv_s8_dw3x3":
        return s8_dw3x3_scratch_bytes(*geo.out_size)
    if kernel != "mt_conv_s8_gemm":
        return 0
    return s8_panel_bytes(geo.in_channels // geo.group * math.prod(geo.kernel))


def _macs(node, ins, outs):
    w = ins[1].shape
    return size(outs[0].shape) * int(w[1]) * math.prod(w[2:])


register("mt.QConv", infer=_infer, reference=_reference, lower=_lower, macs=_macs, scratch=_scratch)
