"""Conv over 1, 2 or 3 spatial dims (N, C, *spatial layout): strides,
dilations, explicit begin/end pads or auto_pad, groups (incl. depthwise),
optional bias, run-time or constant weights. The reference kernel,
`mt_conv_f32`, is a direct convolution generic over 3 spatial dims (1D/2D run
as 3D with unit leading dims); 1-D/2-D convs lower to a fast path chosen from
the geometry (`conv_kernel`): `mt_conv_pointwise_f32` (1x1, a GEMM),
`mt_dwconv2d_f32` (depthwise) or `mt_conv2d_f32_fast` (the rest), all
bit-identical to the reference; MICROTRAIN_KERNELS=reference forces it. In a
training step (LowerCtx.fma) 1-D/2-D convs and their weight gradients run the
fused multiply-add kernels of runtime/mt_conv_fma.c instead (within tolerance
of the reference, not bit-identical). The geometry helpers here are shared
with ConvTranspose (conv_transpose.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .gemm import fast_kernels, panel_bytes, value_shape
from .registry import register, unsupported_attr

MAX_SPATIAL = 3
AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclass
class ConvGeometry:
    """Everything the kernels need, in ONNX terms (spatial lists per axis)."""
    batch: int
    in_channels: int
    out_channels: int
    group: int
    in_size: list[int]
    out_size: list[int]
    kernel: list[int]
    strides: list[int]
    dilations: list[int]
    pad_begin: list[int]
    pad_end: list[int] = None     # as given (may exceed what the last window uses)

    def table(self) -> list[int]:
        """The int32 table `mt_conv_f32`/`mt_conv_transpose_f32` read (layout
        in runtime/mt_conv.h): spatial lists padded in front to 3 axes."""
        def three(vals, fill):
            return [fill] * (MAX_SPATIAL - len(vals)) + list(vals)
        return ([self.batch, self.in_channels, self.out_channels, self.group]
                + three(self.in_size, 1) + three(self.out_size, 1) + three(self.kernel, 1)
                + three(self.strides, 1) + three(self.dilations, 1) + three(self.pad_begin, 0))


def _ints(node, key, default, count) -> list[int]:
    vals = node.attr(key)
    if vals is None:
        return [default] * count
    vals = [int(v) for v in vals]
    if len(vals) != count:
        raise ShapeError(f"{node_label(node)}: {key} has {len(vals)} values, expected {count} "
                         "for this input rank")
    return vals


def common_attrs(node, x_shape, w_shape) -> dict:
    """Validated attributes shared by Conv and ConvTranspose."""
    rank = len(x_shape)
    if rank < 3:
        raise ShapeError(f"{node_label(node)}: input must be (N, C, spatial...), got shape {tuple(x_shape)}")
    nsp = rank - 2
    if nsp > MAX_SPATIAL:
        raise UnsupportedOpError(f"{node_label(node)}: {nsp}-D convolution is not supported "
                                 f"(1 to {MAX_SPATIAL} spatial dims); reshape the model to at most 3-D")
    if len(w_shape) != rank:
        raise ShapeError(f"{node_label(node)}: weight shape {tuple(w_shape)} does not match input rank {rank}")
    kernel = [int(k) for k in w_shape[2:]]
    if node.attr("kernel_shape") is not None and _ints(node, "kernel_shape", 1, nsp) != kernel:
        raise ShapeError(f"{node_label(node)}: kernel_shape {list(node.attr('kernel_shape'))} does not "
                         f"match the weight's spatial shape {kernel}")
    strides = _ints(node, "strides", 1, nsp)
    dilations = _ints(node, "dilations", 1, nsp)
    for key, vals in (("strides", strides), ("dilations", dilations)):
        if min(vals) < 1:
            raise unsupported_attr(node, key, vals, "values must be >= 1")
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad not in AUTO_PADS:
        raise unsupported_attr(node, "auto_pad", auto_pad, "use NOTSET, SAME_UPPER, SAME_LOWER or VALID")
    pads = _ints(node, "pads", 0, 2 * nsp)
    if min(pads) < 0:
        raise unsupported_attr(node, "pads", pads, "negative pads are not supported; crop with Slice first")
    group = int(node.attr("group", 1))
    if group < 1:
        raise unsupported_attr(node, "group", group, "group must be >= 1")
    return dict(nsp=nsp, kernel=kernel, strides=strides, dilations=dilations, auto_pad=auto_pad,
                group=group, pads=pads)


def conv_geometry(node, x_shape, w_shape) -> ConvGeometry:
    a = common_attrs(node, x_shape, w_shape)
    nsp, group = a["nsp"], a["group"]
    n, c = int(x_shape[0]), int(x_shape[1])
    m, c_per_group = int(w_shape[0]), int(w_shape[1])
    if c % group or m % group or c_per_group * group != c:
        raise ShapeError(f"{node_label(node)}: input has {c} channels, weight {tuple(w_shape)} with "
                         f"group={group} expects {c_per_group * group} (and output channels divisible by group)")
    in_size = [int(d) for d in x_shape[2:]]
    begin, end, out_size = [], [], []
    for ax in range(nsp):
        span = (a["kernel"][ax] - 1) * a["dilations"][ax] + 1      # dilated kernel extent
        b, e = _conv_pads(a, ax, in_size[ax], span)
        out = (in_size[ax] + b + e - span) // a["strides"][ax] + 1
        if in_size[ax] + b + e < span or out < 1:
            raise ShapeError(f"{node_label(node)}: kernel extent {span} is larger than padded input "
                             f"{in_size[ax] + b + e} on spatial axis {ax}")
        begin.append(b)
        end.append(e)
        out_size.append(out)
    return ConvGeometry(n, c, m, group, in_size, out_size, a["kernel"], a["strides"], a["dilations"], begin, end)


def _conv_pads(a, ax, in_len, span) -> tuple[int, int]:
    """(begin, end) pads of one spatial axis per auto_pad."""
    mode, stride = a["auto_pad"], a["strides"][ax]
    if mode == "NOTSET":
        return a["pads"][ax], a["pads"][ax + a["nsp"]]
    if mode == "VALID":
        return 0, 0
    out = -(-in_len // stride)
    total = max(0, (out - 1) * stride + span - in_len)
    small = total // 2
    return (small, total - small) if mode == "SAME_UPPER" else (total - small, small)


def check_bias(node, ins, channels) -> None:
    if len(ins) > 2 and ins[2].present and tuple(ins[2].shape) != (channels,):
        raise ShapeError(f"{node_label(node)}: bias shape {tuple(ins[2].shape)} must be ({channels},)")


# ---- Conv ------------------------------------------------------------------

def _infer(node, ins):
    geo = conv_geometry(node, ins[0].shape, ins[1].shape)
    check_bias(node, ins, geo.out_channels)
    return [TensorType((geo.batch, geo.out_channels, *geo.out_size), ins[0].dtype)]


def tap_windows(x, geo):
    """For each kernel tap k: (k, the input samples it meets at every output
    position, as (N, G, C/G, P) float64), zeros where it falls in the padding."""
    nsp = len(geo.in_size)
    # Pad the input only as far as the last window reaches.
    need = [(geo.out_size[ax] - 1) * geo.strides[ax] + (geo.kernel[ax] - 1) * geo.dilations[ax] + 1
            for ax in range(nsp)]
    ends = [max(0, need[ax] - geo.in_size[ax] - geo.pad_begin[ax]) for ax in range(nsp)]
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + list(zip(geo.pad_begin, ends)))
    for k in np.ndindex(*geo.kernel):
        window = (slice(None), slice(None)) + tuple(
            slice(k[ax] * geo.dilations[ax],
                  k[ax] * geo.dilations[ax] + (geo.out_size[ax] - 1) * geo.strides[ax] + 1,
                  geo.strides[ax]) for ax in range(nsp))
        yield k, xp[window].reshape(geo.batch, geo.group, geo.in_channels // geo.group, -1)


def _reference(node, args):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    geo = conv_geometry(node, x.shape, w.shape)
    nsp = len(geo.in_size)
    g, cg, mg = geo.group, geo.in_channels // geo.group, geo.out_channels // geo.group
    y = np.zeros((geo.batch, geo.out_channels, *geo.out_size))
    wf = w.astype(np.float64)
    for k, xs in tap_windows(x, geo):
        wk = wf[(slice(None), slice(None)) + k].reshape(g, mg, cg)  # (G, M/G, C/G)
        y += np.einsum("gmc,ngcp->ngmp", wk, xs).reshape(y.shape)
    if b is not None:
        y += b.astype(np.float64).reshape((1, -1) + (1,) * nsp)
    return [y.astype(x.dtype)]


def conv_kernel(geo: ConvGeometry) -> str:
    """The C kernel a Conv of this geometry runs (all take the same table)."""
    if not fast_kernels() or len(geo.in_size) > 2:
        return "mt_conv_f32"
    if (geo.group == 1 and set(geo.kernel) == {1} and set(geo.strides) == {1}
            and not any(geo.pad_begin) and geo.out_size == geo.in_size):
        return "mt_conv_pointwise_f32"
    if geo.in_channels == geo.group:
        return "mt_dwconv2d_f32"
    return "mt_conv2d_f32_fast"


def fma_kernels(geo: ConvGeometry) -> bool:
    """Whether a training step's conv kernels of this geometry are the fused
    multiply-add ones (runtime/mt_conv_fma.c: 1-D/2-D, fast kernel set)."""
    return fast_kernels() and len(geo.in_size) <= 2


def _lower(node, ctx):
    require_float(node, ctx.ins, 0)
    require_float(node, ctx.ins, 1)
    if ctx.has_input(2):
        require_float(node, ctx.ins, 2)
    geo = conv_geometry(node, ctx.ins[0].shape, ctx.ins[1].shape)
    kernel = conv_kernel(geo)
    par = ctx.par()   # multi-core: this core's share (the _par variant)
    if ctx.fma and not par and fma_kernels(geo) and kernel != "mt_conv_pointwise_f32":
        kernel = "mt_conv2d_f32_fwd_fma"   # pointwise keeps its GEMM (and its declared scratch)
    scratch = ", (float *)" + ctx.core_scratch if kernel == "mt_conv_pointwise_f32" else ""
    return (f"{kernel}{'_par' if par else ''}({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, {ctx.out(0)}, "
            f"{ctx.table(geo.table())}{scratch}{', ' + par if par else ''});")


def _scratch(node, ins, outs):
    geo = conv_geometry(node, value_shape(ins[0]), value_shape(ins[1]))
    return panel_bytes(geo.in_channels) if conv_kernel(geo) == "mt_conv_pointwise_f32" else 0


def _macs(node, ins, outs):
    w = ins[1].shape
    return size(outs[0].shape) * int(w[1]) * math.prod(w[2:])


# ---- gradients -------------------------------------------------------------
# dX is a ConvTranspose of dY with the same weight (output_padding restores the
# input rows the forward's floor division dropped); dW is its own op and
# kernel (mt.ConvGradW); dB sums dY over batch and space.

def _vjp(node, gb, dys):
    (dy,) = dys
    x, w = node.inputs[0], node.inputs[1]
    geo = conv_geometry(node, gb.shape(x), gb.shape(w))
    nsp = len(geo.in_size)
    pads = geo.pad_begin + geo.pad_end
    common = dict(strides=geo.strides, dilations=geo.dilations, group=geo.group)
    grads = [None] * len(node.inputs)
    if gb.needs(0):
        rows_dropped = [geo.in_size[ax] + pads[ax] + pads[ax + nsp]
                        - (geo.kernel[ax] - 1) * geo.dilations[ax] - 1
                        - (geo.out_size[ax] - 1) * geo.strides[ax] for ax in range(nsp)]
        grads[0] = gb.emit("ConvTranspose", [dy, w], {**common, "pads": pads, "output_padding": rows_dropped})
    if gb.needs(1):
        grads[1] = gb.emit("mt.ConvGradW", [x, dy], {**common, "pads": pads, "kernel_shape": geo.kernel})
    if len(node.inputs) > 2 and node.inputs[2] and gb.needs(2):
        axes = gb.const(np.array([0, *range(2, 2 + nsp)], np.int64), np.int64)
        grads[2] = gb.emit("ReduceSum", [dy, axes], {"keepdims": 0})
    return grads


def _grad_w_geometry(node, x_shape, dy_shape) -> ConvGeometry:
    group = int(node.attr("group", 1))
    w_shape = (int(dy_shape[1]), int(x_shape[1]) // group, *node.attr("kernel_shape"))
    geo = conv_geometry(node, x_shape, w_shape)
    if (geo.batch, geo.out_channels, *geo.out_size) != tuple(dy_shape):
        raise ShapeError(f"{node_label(node)}: output gradient shape {tuple(dy_shape)} does not match "
                         f"the convolution's output {(geo.batch, geo.out_channels, *geo.out_size)}")
    return geo


def _grad_w_infer(node, ins):
    geo = _grad_w_geometry(node, ins[0].shape, ins[1].shape)
    return [TensorType((geo.out_channels, geo.in_channels // geo.group, *geo.kernel), ins[0].dtype)]


def _grad_w_reference(node, args):
    x, dy = args
    geo = _grad_w_geometry(node, x.shape, dy.shape)
    g, cg, mg = geo.group, geo.in_channels // geo.group, geo.out_channels // geo.group
    dys = dy.astype(np.float64).reshape(geo.batch, g, mg, -1)
    dw = np.zeros((geo.out_channels, cg, *geo.kernel))
    for k, xs in tap_windows(x, geo):
        dw[(slice(None), slice(None)) + k] = np.einsum("ngcp,ngmp->gmc", xs, dys).reshape(geo.out_channels, cg)
    return [dw.astype(x.dtype)]


def _grad_w_lower(node, ctx):
    require_float(node, ctx.ins, 0)
    require_float(node, ctx.ins, 1)
    geo = _grad_w_geometry(node, ctx.ins[0].shape, ctx.ins[1].shape)
    # the FMA kernel only where fmaf is one instruction (LowerCtx.fma; not rv32imc)
    kernel = "mt_conv2d_f32_bwd_weight" if ctx.fma and fma_kernels(geo) else "mt_conv_grad_weight_f32"
    return f"{kernel}({ctx.inp(0)}, {ctx.inp(1)}, {ctx.out(0)}, {ctx.table(geo.table())});"


def _grad_w_macs(node, ins, outs):
    return size(ins[1].shape) * int(outs[0].shape[1]) * math.prod(outs[0].shape[2:])


register("Conv", infer=_infer, reference=_reference, lower=_lower, macs=_macs, vjp=_vjp,
         scratch=_scratch)
register("mt.ConvGradW", infer=_grad_w_infer, reference=_grad_w_reference, lower=_grad_w_lower,
         macs=_grad_w_macs)
