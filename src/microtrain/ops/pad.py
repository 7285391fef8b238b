"""Pad: modes constant, reflect, edge and wrap; pads/constant_value/axes as
inputs (opset 11+, axes from 18) or attributes (older). Negative pads crop
(constant mode). Lowered to `mt_pad`."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import C_TYPES, TensorType
from ._common import require_float
from .registry import norm_axis, register, require_const, unsupported_attr
from .slice import MAX_RANK, constant_operands

# Kernel mode codes; keep in sync with runtime/mt_shape.h.
MODES = {"constant": 0, "reflect": 1, "edge": 2, "wrap": 3}


def _mode(node) -> str:
    mode = node.attr("mode", "constant")
    if mode not in MODES:
        raise unsupported_attr(node, "mode", mode, "use constant, reflect, edge or wrap")
    return mode


def _operands(node, get):
    """(pads, constant value or None, axes or None)."""
    if node.opset < 11:
        return node.attr("pads"), node.attr("value", 0.0), None
    return get(1, "pads"), get(2, "constant_value"), get(3, "axes")


def _pads(node, shape, pads, axes) -> tuple[list[int], list[int]]:
    """Per-axis (begin, end) pads over all axes of the input."""
    rank = len(shape)
    if pads is None:
        raise ShapeError(f"{node_label(node)}: Pad needs pads")
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = list(range(rank)) if axes is None else \
        [norm_axis(int(a), rank, node) for a in np.asarray(axes).reshape(-1)]
    if len(pads) != 2 * len(axes) or len(set(axes)) != len(axes):
        raise ShapeError(f"{node_label(node)}: {len(pads)} pads do not match axes {axes}")
    begin, end = [0] * rank, [0] * rank
    for k, a in enumerate(axes):
        begin[a], end[a] = pads[k], pads[k + len(axes)]
    mode = _mode(node)
    if mode != "constant":
        if min(begin + end, default=0) < 0:
            raise UnsupportedOpError(f"{node_label(node)}: negative pads are only supported in "
                                     f"constant mode, not '{mode}'")
        if any(d == 0 and (b or e) for d, b, e in zip(shape, begin, end)):
            raise ShapeError(f"{node_label(node)}: cannot pad an empty axis in '{mode}' mode")
    out = [d + b + e for d, b, e in zip(shape, begin, end)]
    if min(out, default=0) < 0:
        raise ShapeError(f"{node_label(node)}: pads {pads} crop more than shape {tuple(shape)}")
    return begin, end


def _value(value, dtype) -> np.ndarray:
    if value is None or np.asarray(value).size == 0:
        return np.zeros((), dtype)
    return np.asarray(value).reshape(-1)[:1].astype(dtype).reshape(())


def _infer(node, ins):
    shape = ins[0].shape
    pads, _, axes = _operands(node, lambda i, w: require_const(node, ins, i, w))
    begin, end = _pads(node, shape, pads, axes)
    return [TensorType(tuple(d + b + e for d, b, e in zip(shape, begin, end)), ins[0].dtype)]


def _reference(node, args):
    x = args[0]
    pads, value, axes = _operands(node, lambda i, w: args[i] if i < len(args) else None)
    begin, end = _pads(node, x.shape, pads, axes)
    return [_pad_array(x, begin, end, _mode(node), _value(value, x.dtype))]


def _pad_array(x, begin, end, mode: str, value) -> np.ndarray:
    # Crop negative pads first (numpy.pad only grows), then pad.
    x = x[tuple(slice(max(-b, 0), d - max(-e, 0)) for d, b, e in zip(x.shape, begin, end))]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end)]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=mode)


def _lower(node, ctx):
    x = ctx.ins[0]
    pads, _, axes = _operands(node, lambda i, w: require_const(node, ctx.ins, i, w))
    begin, _ = _pads(node, x.shape, pads, axes)
    in_shape, out_shape = list(x.shape) or [1], list(ctx.outs[0].shape) or [1]
    begin = begin or [0]
    if len(in_shape) > MAX_RANK:
        raise UnsupportedOpError(f"{node_label(node)}: rank {len(in_shape)} exceeds the kernels' "
                                 f"maximum rank {MAX_RANK}")
    value = ctx.table([_value(_constant_value(node, ctx), x.dtype)], C_TYPES[x.dtype])
    return (f"mt_pad({ctx.inp(0)}, {ctx.out(0)}, {x.dtype.itemsize}, {len(in_shape)}, "
            f"{ctx.table(in_shape)}, {ctx.table(out_shape)}, {ctx.table(begin)}, "
            f"{MODES[_mode(node)]}, {value});")


def _constant_value(node, ctx):
    if node.opset < 11:
        return node.attr("value", 0.0)
    if _mode(node) != "constant":
        return None
    return require_const(node, ctx.ins, 2, "constant_value")


def _macs(node, ins, outs):
    return 0


# ---- gradient ----------------------------------------------------------------
# Constant mode with no cropping: dx is the Slice of dy that the input landed
# in (a strided copy). Cropping or reflect/edge/wrap: mt.PadGrad, which adds
# every output position's gradient into the input position it was read from.

def _vjp(node, gb, dys):
    x_shape = gb.shape(node.inputs[0])
    pads, _, axes = _operands(node, constant_operands(gb, node))
    begin, end = _pads(node, x_shape, pads, axes)
    mode = _mode(node)
    grads = [None] * len(node.inputs)
    if not any(begin + end):
        grads[0] = dys[0]
    elif mode == "constant" and min(begin + end) >= 0:
        padded = [a for a in range(len(x_shape)) if begin[a] or end[a]]
        grads[0] = gb.emit("Slice", [dys[0], gb.const([begin[a] for a in padded], np.int64),
                                     gb.const([begin[a] + x_shape[a] for a in padded], np.int64),
                                     gb.const(padded, np.int64)])
    else:
        grads[0] = gb.emit("mt.PadGrad", [dys[0]], {"shape": list(x_shape), "begin": begin, "mode": mode})
    return grads


def _grad_pads(node, dy_shape) -> tuple[list[int], list[int], list[int]]:
    shape, begin = [int(d) for d in node.attr("shape")], [int(b) for b in node.attr("begin")]
    end = [o - d - b for o, d, b in zip(dy_shape, shape, begin)]
    if len(dy_shape) != len(shape) or len(begin) != len(shape):
        raise ShapeError(f"{node_label(node)}: gradient of shape {tuple(dy_shape)} does not match "
                         f"an input of shape {tuple(shape)}")
    return shape, begin, end


def _grad_infer(node, ins):
    shape, _, _ = _grad_pads(node, ins[0].shape)
    return [TensorType(tuple(shape), ins[0].dtype)]


def _grad_reference(node, args):
    dy = args[0]
    shape, begin, end = _grad_pads(node, dy.shape)
    # Pad an array of input positions the way the forward pads x: each output
    # then names the input it copied (-1: the constant), and dx sums over them.
    n = int(np.prod(shape, dtype=np.int64))
    source = _pad_array(np.arange(n).reshape(shape), begin, end, node.attr("mode"), -1).reshape(-1)
    read = source >= 0
    dx = np.bincount(source[read], weights=dy.reshape(-1)[read].astype(np.float64), minlength=n)
    return [dx.reshape(shape).astype(dy.dtype)]


def _grad_lower(node, ctx):
    require_float(node, ctx.ins, 0)
    shape, begin, _ = _grad_pads(node, ctx.ins[0].shape)
    out_shape = list(ctx.ins[0].shape)
    if len(shape) > MAX_RANK:
        raise UnsupportedOpError(f"{node_label(node)}: rank {len(shape)} exceeds the kernels' "
                                 f"maximum rank {MAX_RANK}")
    if not shape:
        shape, out_shape, begin = [1], [1], [0]
    return (f"mt_pad_bwd_f32({ctx.inp(0)}, {ctx.out(0)}, {len(shape)}, {ctx.table(shape)}, "
            f"{ctx.table(out_shape)}, {ctx.table(begin)}, {MODES[node.attr('mode')]});")


register("Pad", infer=_infer, reference=_reference, lower=_lower, macs=_macs, vjp=_vjp)
register("mt.PadGrad", infer=_grad_infer, reference=_grad_reference, lower=_grad_lower, macs=_macs)
