"""ConvTranspose over 1, 2 or 3 spatial dims: strides, dilations, pads,
output_padding, output_shape (pads then derived), auto_pad, groups, optional
bias. Lowered to `mt_conv_transpose_f32` (a scatter-accumulate kernel that
shares its geometry table with Conv, see conv.py); in a training step a
stride-1 one runs the gather kernel `mt_conv2d_f32_bwd_input` (fused
multiply-adds, runtime/mt_conv_fma.c)."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .conv import ConvGeometry, _ints, check_bias, common_attrs, fma_kernels
from .registry import register, unsupported_attr


def transpose_geometry(node, x_shape, w_shape) -> ConvGeometry:
    a = common_attrs(node, x_shape, w_shape)
    nsp, group = a["nsp"], a["group"]
    n, c = int(x_shape[0]), int(x_shape[1])
    if int(w_shape[0]) != c or c % group:
        raise ShapeError(f"{node_label(node)}: input has {c} channels but the weight {tuple(w_shape)} "
                         f"expects {int(w_shape[0])} (divisible by group={group})")
    out_padding = _ints(node, "output_padding", 0, nsp)
    if min(out_padding) < 0:
        raise unsupported_attr(node, "output_padding", out_padding, "values must be >= 0")
    output_shape = node.attr("output_shape")
    if output_shape is not None:
        output_shape = _ints(node, "output_shape", 0, nsp)
    in_size = [int(d) for d in x_shape[2:]]
    begin, out_size = [], []
    for ax in range(nsp):
        span = (a["kernel"][ax] - 1) * a["dilations"][ax] + 1
        # Output length before any padding is removed.
        full = a["strides"][ax] * (in_size[ax] - 1) + out_padding[ax] + span
        b, out = _pads_and_size(node, a, ax, in_size[ax], full, out_padding, output_shape)
        if out < 1:
            raise ShapeError(f"{node_label(node)}: pads leave an empty output on spatial axis {ax}")
        begin.append(b)
        out_size.append(out)
    return ConvGeometry(n, c, int(w_shape[1]) * group, group, in_size, out_size, a["kernel"],
                        a["strides"], a["dilations"], begin)


def _pads_and_size(node, a, ax, in_len, full, out_padding, output_shape) -> tuple[int, int]:
    """(begin pad, output length) of one spatial axis. With output_shape, or
    SAME_* auto_pad (target length in_len * stride), the total padding is
    `full - target`, split per the ONNX formulas (the odd pad goes to the end
    for SAME_UPPER, to the begin otherwise). A longer target gets no padding,
    as in onnxruntime: an explicit output_shape may then exceed the scattered
    extent by up to stride - 1 (the tail holds only the bias, like
    output_padding); a SAME_* output stays `full` long."""
    mode, stride = a["auto_pad"], a["strides"][ax]
    if output_shape is None and mode not in ("SAME_UPPER", "SAME_LOWER"):
        if mode == "VALID":
            return 0, full
        begin, end = a["pads"][ax], a["pads"][ax + a["nsp"]]
        return begin, full - begin - end
    target = output_shape[ax] if output_shape is not None else in_len * stride
    total = max(0, full - target)
    small = total // 2
    begin = small if mode == "SAME_UPPER" else total - small
    if output_shape is None:
        return begin, full - total
    longest = full - out_padding[ax] + stride - 1
    if target > longest:
        raise ShapeError(f"{node_label(node)}: output_shape {output_shape} does not match the input: "
                         f"spatial axis {ax} can be at most {longest} long")
    return begin, target


def _infer(node, ins):
    geo = transpose_geometry(node, ins[0].shape, ins[1].shape)
    check_bias(node, ins, geo.out_channels)
    return [TensorType((geo.batch, geo.out_channels, *geo.out_size), ins[0].dtype)]


def _reference(node, args):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    geo = transpose_geometry(node, x.shape, w.shape)
    nsp = len(geo.in_size)
    g, cg, mg = geo.group, geo.in_channels // geo.group, geo.out_channels // geo.group
    # Scatter into the unpadded output, then cut the window [begin, begin + out).
    full = [(geo.in_size[ax] - 1) * geo.strides[ax] + (geo.kernel[ax] - 1) * geo.dilations[ax] + 1
            for ax in range(nsp)]
    y = np.zeros((geo.batch, geo.out_channels, *full))
    xs = x.astype(np.float64).reshape(geo.batch, g, cg, -1)
    wf = w.astype(np.float64)
    for k in np.ndindex(*geo.kernel):
        taps = (slice(None), slice(None)) + tuple(
            slice(k[ax] * geo.dilations[ax], k[ax] * geo.dilations[ax] + full[ax] - (geo.kernel[ax] - 1)
                  * geo.dilations[ax], geo.strides[ax]) for ax in range(nsp))
        wk = wf[(slice(None), slice(None)) + k].reshape(g, cg, mg)
        y[taps] += np.einsum("gcm,ngcp->ngmp", wk, xs).reshape(geo.batch, geo.out_channels, *geo.in_size)
    grow = [(max(0, -geo.pad_begin[ax]), max(0, geo.pad_begin[ax] + geo.out_size[ax] - full[ax]))
            for ax in range(nsp)]
    y = np.pad(y, [(0, 0), (0, 0)] + grow)
    y = y[(slice(None), slice(None)) + tuple(
        slice(max(0, geo.pad_begin[ax]), max(0, geo.pad_begin[ax]) + geo.out_size[ax]) for ax in range(nsp))]
    if b is not None:
        y = y + b.astype(np.float64).reshape((1, -1) + (1,) * nsp)
    return [y.astype(x.dtype)]


def _lower(node, ctx):
    require_float(node, ctx.ins, 0)
    require_float(node, ctx.ins, 1)
    if ctx.has_input(2):
        require_float(node, ctx.ins, 2)
    geo = transpose_geometry(node, ctx.ins[0].shape, ctx.ins[1].shape)
    # In a training step (the input gradient of a conv) a stride-1 transposed
    # conv runs as a gather with fused multiply-adds (runtime/mt_conv_fma.c).
    kernel = ("mt_conv2d_f32_bwd_input" if ctx.fma and fma_kernels(geo) and set(geo.strides) == {1}
              else "mt_conv_transpose_f32")
    return (f"{kernel}({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, {ctx.out(0)}, "
            f"{ctx.table(geo.table())});")


def _macs(node, ins, outs):
    w = ins[1].shape
    return size(ins[0].shape) * int(w[1]) * math.prod(w[2:])


# ---- gradients -------------------------------------------------------------
# ConvTranspose is the input-gradient of a Conv, so its own gradients are a
# Conv of dY with the same weight (dX) and a Conv weight gradient with the
# roles of input and output swapped (dW = mt.ConvGradW(dY, X)); dB sums dY.

def _vjp(node, gb, dys):
    (dy,) = dys
    x, w = node.inputs[0], node.inputs[1]
    geo = transpose_geometry(node, gb.shape(x), gb.shape(w))
    nsp = len(geo.in_size)
    # End pads of the equivalent forward conv (dY -> X): any value making the
    # conv output exactly X's length; the smallest non-negative one.
    ends = [max(0, geo.strides[ax] * (geo.in_size[ax] - 1) + (geo.kernel[ax] - 1) * geo.dilations[ax] + 1
                - geo.out_size[ax] - geo.pad_begin[ax]) for ax in range(nsp)]
    attrs = dict(strides=geo.strides, dilations=geo.dilations, group=geo.group, pads=geo.pad_begin + ends)
    grads = [None] * len(node.inputs)
    if gb.needs(0):
        grads[0] = gb.emit("Conv", [dy, w], attrs)
    if gb.needs(1):
        grads[1] = gb.emit("mt.ConvGradW", [dy, x], {**attrs, "kernel_shape": geo.kernel})
    if len(node.inputs) > 2 and node.inputs[2] and gb.needs(2):
        axes = gb.const(np.array([0, *range(2, 2 + nsp)], np.int64), np.int64)
        grads[2] = gb.emit("ReduceSum", [dy, axes], {"keepdims": 0})
    return grads


register("ConvTranspose", infer=_infer, reference=_reference, lower=_lower, macs=_macs, vjp=_vjp)
