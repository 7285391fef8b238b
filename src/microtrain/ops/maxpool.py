"""MaxPool over 1-3 spatial dims (NC + spatial layout): kernel_shape, strides,
pads, auto_pad, dilations, ceil_mode, and the optional Indices output
(storage_order picks row- or column-major indices). The window geometry
(`pool_geometry`) and the numpy window walk are shared with AveragePool."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .registry import register, unsupported_attr

MAX_SPATIAL_DIMS = 3  # the C kernels pad every pool to 3 spatial dims


@dataclass
class PoolGeometry:
    in_sp: list[int]
    out_sp: list[int]
    kernel: list[int]
    strides: list[int]
    pad_begin: list[int]
    pad_end: list[int]
    dilations: list[int]

    def table(self) -> list[int]:
        """The kernels' geometry table (runtime/mt_pool.h), padded to 3 dims."""
        lead = MAX_SPATIAL_DIMS - len(self.in_sp)
        rows = []
        for values, fill in ((self.in_sp, 1), (self.out_sp, 1), (self.kernel, 1),
                             (self.strides, 1), (self.pad_begin, 0), (self.pad_end, 0),
                             (self.dilations, 1)):
            rows += [fill] * lead + list(values)
        return rows


def _ints(node, name, default, n):
    v = node.attr(name)
    if v is None:
        return [default] * n
    v = [int(a) for a in v]
    if len(v) != n:
        raise ShapeError(f"{node_label(node)}: {name}={v} must have {n} values")
    return v


def _output_size(in_size, k_eff, stride, pad_b, pad_e, ceil_mode):
    span = in_size + pad_b + pad_e - k_eff
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    # ONNX drops a last window that would start entirely in the right padding.
    if (out - 1) * stride >= in_size + pad_b:
        out -= 1
    return out


def pool_geometry(node, shape) -> PoolGeometry:
    """Output size and effective padding from the pool attributes."""
    if len(shape) < 3:
        raise ShapeError(f"{node_label(node)}: input must be (N, C, D1, ...), got {tuple(shape)}")
    in_sp = list(shape[2:])
    n = len(in_sp)
    kernel = node.attr("kernel_shape")
    if kernel is None or len(kernel) != n:
        raise ShapeError(f"{node_label(node)}: kernel_shape={kernel} must give {n} sizes "
                         f"for input shape {tuple(shape)}")
    kernel = [int(k) for k in kernel]
    strides = _ints(node, "strides", 1, n)
    dilations = _ints(node, "dilations", 1, n)
    pads = _ints(node, "pads", 0, 2 * n)
    if min(kernel + strides + dilations) < 1 or min(pads) < 0:
        raise ShapeError(f"{node_label(node)}: kernel_shape, strides and dilations must be "
                         "positive and pads non-negative")
    ceil_mode = int(node.attr("ceil_mode", 0))
    auto_pad = node.attr("auto_pad", "NOTSET")
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if auto_pad in ("NOTSET", "VALID"):
        pb, pe = (pads[:n], pads[n:]) if auto_pad == "NOTSET" else ([0] * n, [0] * n)
        out = [_output_size(i, k, s, b, e, ceil_mode)
               for i, k, s, b, e in zip(in_sp, k_eff, strides, pb, pe)]
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if max(dilations) > 1:
            # The ONNX spec, its reference implementation and onnxruntime
            # each size this case differently: refuse rather than guess.
            raise unsupported_attr(node, "dilations", dilations,
                                   f"with auto_pad={auto_pad} the output size is ambiguous across "
                                   "ONNX implementations; export with explicit pads")
        out = [-(-i // s) for i, s in zip(in_sp, strides)]
        total = [max(0, (o - 1) * s + k - i) for o, s, k, i in zip(out, strides, k_eff, in_sp)]
        pb = [t // 2 if auto_pad == "SAME_UPPER" else (t + 1) // 2 for t in total]
        pe = [t - b for t, b in zip(total, pb)]
    else:
        raise unsupported_attr(node, "auto_pad", auto_pad,
                               "use NOTSET, VALID, SAME_UPPER or SAME_LOWER")
    if min(out) < 1:
        raise ShapeError(f"{node_label(node)}: the pooling window {kernel} (dilations "
                         f"{dilations}) does not fit the padded input {tuple(shape)}")
    return PoolGeometry(in_sp, out, kernel, strides, list(pb), list(pe), dilations)


def pool_windows(geom: PoolGeometry):
    """Yield (output position, per-dim input index arrays of its taps, per-dim
    mask of taps inside the input, per-dim mask inside input + padding)."""
    for pos in itertools.product(*(range(o) for o in geom.out_sp)):
        taps, inside, padded = [], [], []
        for o, k, s, d, b, e, i in zip(pos, geom.kernel, geom.strides, geom.dilations,
                                       geom.pad_begin, geom.pad_end, geom.in_sp):
            coords = o * s - b + d * np.arange(k)
            taps.append(coords)
            inside.append((coords >= 0) & (coords < i))
            padded.append((coords >= -b) & (coords < i + e))
        yield pos, taps, inside, padded


def _flat_index(coords, in_sp, col_major):
    """Flat spatial index of one input position, row- or column-major."""
    dims = list(range(len(in_sp)))
    order = dims if col_major else dims[::-1]
    flat, step = 0, 1
    for ax in order:
        flat += coords[ax] * step
        step *= in_sp[ax]
    return flat


def _reference(node, args):
    x = args[0]
    geom = pool_geometry(node, x.shape)
    n, c = x.shape[:2]
    y = np.empty((n, c, *geom.out_sp), dtype=x.dtype)
    want_indices = len(node.outputs) > 1 and node.outputs[1]
    idx = np.empty(y.shape, dtype=np.int64) if want_indices else None
    col_major = int(node.attr("storage_order", 0)) == 1
    plane = size(geom.in_sp)
    base = (np.arange(n * c, dtype=np.int64) * plane).reshape(n, c)
    for pos, taps, inside, _ in pool_windows(geom):
        valid = [t[m] for t, m in zip(taps, inside)]
        window = x[(slice(None), slice(None)) + np.ix_(*valid)].reshape(n, c, -1)
        best = window.argmax(axis=2)
        y[(slice(None), slice(None)) + pos] = np.take_along_axis(window, best[..., None], 2)[..., 0]
        if idx is not None:
            shape_w = [len(v) for v in valid]
            for nc in np.ndindex(n, c):
                coords = [v[j] for v, j in zip(valid, np.unravel_index(best[nc], shape_w))]
                idx[nc + pos] = base[nc] + _flat_index(coords, geom.in_sp, col_major)
    return [y, idx] if idx is not None else [y]


def _infer(node, ins):
    geom = pool_geometry(node, ins[0].shape)
    out_shape = tuple(ins[0].shape[:2]) + tuple(geom.out_sp)
    outs = [TensorType(out_shape, ins[0].dtype)]
    if len(node.outputs) > 1:
        outs.append(TensorType(out_shape, np.int64))
    return outs


def check_spatial_dims(node, shape):
    if len(shape) - 2 > MAX_SPATIAL_DIMS:
        raise UnsupportedOpError(f"{node_label(node)}: {len(shape) - 2} spatial dims; the C "
                                 f"kernel handles at most {MAX_SPATIAL_DIMS}")


def _lower(node, ctx):
    require_float(node, ctx.ins)
    shape = ctx.ins[0].shape
    check_spatial_dims(node, shape)
    geom = pool_geometry(node, shape)
    if not node.outputs[0]:
        raise UnsupportedOpError(f"{node_label(node)}: an omitted Y output is not supported")
    indices = ctx.out(1) if len(node.outputs) > 1 and node.outputs[1] else "NULL"
    col_major = int(node.attr("storage_order", 0))
    table = ctx.table(geom.table())
    if indices == "NULL":   # planes are independent: multi-core builds split them
        return ctx.split_planes(shape[0] * shape[1], math.prod(shape[2:]), math.prod(ctx.outs[0].shape[2:]),
                                lambda x, y, nc: f"mt_maxpool_f32({x}, {y}, NULL, {nc}, {table}, {col_major});")
    return (f"mt_maxpool_f32({ctx.inp(0)}, {ctx.out(0)}, {indices}, {shape[0] * shape[1]}, "
            f"{table}, {col_major});")


def pool_macs(node, ins, outs):
    return size(outs[0].shape) * math.prod(node.attr("kernel_shape") or [1])


register("MaxPool", infer=_infer, reference=_reference, lower=_lower, macs=pool_macs,
         vjp=lambda node, gb, dys: _vjp(node, gb, dys))


# ---- gradient ------------------------------------------------------------------
# mt.MaxPoolGrad(dy, x): the argmax of each window is recomputed from x instead
# of saving int32 indices: in the usual Conv -> Relu -> MaxPool the pool input
# is the Relu output, which Relu's own gradient keeps alive anyway, so the
# recompute costs no RAM, while indices would add one int per pooled output.
# Ties go to the first maximum, as PyTorch's max_pool does.

GEOMETRY_ATTRS = ("in_sp", "out_sp", "kernel", "strides", "pad_begin", "pad_end", "dilations")


def geometry_attrs(node, shape) -> dict:
    geom = pool_geometry(node, shape)
    return {k: [int(v) for v in getattr(geom, k)] for k in GEOMETRY_ATTRS}


def geometry_of(node) -> PoolGeometry:
    return PoolGeometry(*(list(node.attr(k)) for k in GEOMETRY_ATTRS))


def pool_grad_infer(node, ins):
    n, c = ins[0].shape[:2]
    return [TensorType((n, c, *node.attr("in_sp")), np.float32)]


def _grad_reference(node, args):
    dy, x = args
    geom = geometry_of(node)
    n, c = x.shape[:2]
    dx = np.zeros(x.shape, np.float64)
    for pos, taps, inside, _ in pool_windows(geom):
        valid = [t[m] for t, m in zip(taps, inside)]
        region = (slice(None), slice(None)) + np.ix_(*valid)
        window = x[region].reshape(n, c, -1)
        onehot = np.zeros(window.shape)
        np.put_along_axis(onehot, window.argmax(axis=2)[..., None], 1.0, axis=2)
        g = dy[(slice(None), slice(None)) + pos].astype(np.float64)[..., None]
        dx[region] += (onehot * g).reshape(dx[region].shape)
    return [dx.astype(np.float32)]


def _grad_lower(node, ctx):
    shape = ctx.ins[1].shape
    return (f"mt_maxpool_f32_bwd({ctx.inp(0)}, {ctx.inp(1)}, {ctx.out(0)}, {shape[0] * shape[1]}, "
            f"{ctx.table(geometry_of(node).table())});")


def _vjp(node, gb, dys):
    x = node.inputs[0]
    return [gb.emit("mt.MaxPoolGrad", [dys[0], x], geometry_attrs(node, gb.shape(x)))]


register("mt.MaxPoolGrad", infer=pool_grad_infer, reference=_grad_reference, lower=_grad_lower,
         macs=lambda node, ins, outs: size(ins[0].shape) * math.prod(node.attr("kernel")))
