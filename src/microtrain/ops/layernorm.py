"""LayerNormalization (opset 17): normalize over dims [axis, rank), then
y = xhat * scale + bias (bias optional; both broadcast to the normalized
shape). Optional outputs Mean and InvStdDev (shape x.shape[:axis] + 1s)."""
from __future__ import annotations

import numpy as np

from ..codegen.context import float_literal
from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .registry import norm_axis, register


def _axis(node, rank):
    return norm_axis(int(node.attr("axis", -1)), rank, node)


def _stat_shape(shape, axis):
    return tuple(shape[:axis]) + (1,) * (len(shape) - axis)


def _check_affine(node, ins, axis):
    """scale/bias must broadcast to the normalized shape without growing it."""
    norm_shape = tuple(ins[0].shape[axis:])
    for i, what in ((1, "scale"), (2, "bias")):
        if i < len(ins) and ins[i].present:
            try:
                ok = np.broadcast_shapes(ins[i].shape, norm_shape) == norm_shape
            except ValueError:
                ok = False
            if not ok:
                raise ShapeError(f"{node_label(node)}: {what} shape {ins[i].shape} does not "
                                 f"broadcast to the normalized shape {norm_shape}")


def _infer(node, ins):
    shape = ins[0].shape
    axis = _axis(node, len(shape))
    _check_affine(node, ins, axis)
    stat = TensorType(_stat_shape(shape, axis), np.float32)
    return [TensorType(shape, ins[0].dtype), stat, stat][:len(node.outputs)]


def _reference(node, args):
    x = args[0]
    axis = _axis(node, x.ndim)
    eps = node.attr("epsilon", 1e-5)
    dims = tuple(range(axis, x.ndim))
    xf = x.astype(np.float64)
    mean = xf.mean(axis=dims, keepdims=True)
    invstd = 1.0 / np.sqrt(((xf - mean) ** 2).mean(axis=dims, keepdims=True) + eps)
    y = (xf - mean) * invstd * args[1]
    if len(args) > 2 and args[2] is not None:
        y = y + args[2]
    return [y.astype(x.dtype), mean.astype(np.float32), invstd.astype(np.float32)][:len(node.outputs)]


def _affine_operand(ctx, i, norm_shape):
    """Pointer to `inner` scale/bias values: the input itself when it already
    has that many, else a constant table broadcast at compile time."""
    if not ctx.has_input(i):
        return "NULL"
    require_float(ctx.node, ctx.ins, i)
    v = ctx.ins[i]
    if size(v.shape) == size(norm_shape):
        return ctx.inp(i)
    if v.const is None:
        raise UnsupportedOpError(
            f"{node_label(ctx.node)}: a broadcast {('scale', 'bias')[i - 1]} (shape {v.shape}) must "
            f"be a constant; give it the full normalized shape {tuple(norm_shape)}")
    return ctx.table(np.broadcast_to(v.const, norm_shape).astype(np.float32), "float")


def _lower(node, ctx):
    require_float(node, ctx.ins)
    shape = ctx.ins[0].shape
    axis = _axis(node, len(shape))
    norm_shape = tuple(shape[axis:])
    # ctx.out(k) counts only present outputs: map ONNX output slots to them.
    ptrs, k = [], 0
    for slot in range(3):
        if slot < len(node.outputs) and node.outputs[slot]:
            ptrs.append(ctx.out(k))
            k += 1
        else:
            ptrs.append("NULL")
    eps = float_literal(node.attr("epsilon", 1e-5))
    return (f"mt_layernorm_f32({ctx.inp(0)}, {_affine_operand(ctx, 1, norm_shape)}, "
            f"{_affine_operand(ctx, 2, norm_shape)}, {ptrs[0]}, {ptrs[1]}, {ptrs[2]}, "
            f"{size(shape[:axis])}, {size(norm_shape)}, {eps});")


def _macs(node, ins, outs):
    return 2 * size(outs[0].shape)


register("LayerNormalization", infer=_infer, reference=_reference, lower=_lower, macs=_macs,
         inplace=True, vjp=lambda node, gb, dys: _vjp(node, gb, dys))


# ---- gradient ------------------------------------------------------------------
# mt.LayerNormGrad(dy, x, scale) -> the wanted subset of (dx, dscale, dbias),
# attribute `want` = [dx?, dscale?, dbias?]. The row statistics are recomputed
# from x rather than saved: x is kept alive anyway (xhat needs it), so saving
# mean/invstd would only add 2 * outer floats to the live set.

def wanted_outputs(node, ctx) -> list[str]:
    """C pointers for the (dx, dscale, dbias) slots of a grad op with a `want`
    attribute: the present outputs in order, NULL for the others."""
    ptrs, k = [], 0
    for w in node.attr("want"):
        if w:
            ptrs.append(ctx.out(k))
            k += 1
        else:
            ptrs.append("NULL")
    return ptrs


def emit_affine_grad(gb, op, inputs, attrs, shapes) -> list:
    """Emit one norm-grad node computing only the wanted of (dx, dscale, dbias);
    shapes: (x, scale, bias) shapes the grads are reduced back to. Returns the
    three grad names (None where not wanted)."""
    want = [int(gb.needs(0)), int(gb.needs(1)), int(gb.needs(2))]
    if not any(want):
        return [None, None, None]
    if not want[0]:
        op += "Params"   # the not-in-place twin: dscale must never overwrite dy
    outs = gb.emit(op, inputs, {**attrs, "want": want}, n_out=sum(want))
    outs = [outs] if isinstance(outs, str) else list(outs)
    grads = [outs.pop(0) if w else None for w in want]
    return [gb.unbroadcast(g, shape) if g is not None else None for g, shape in zip(grads, shapes)]


def _grad_infer(node, ins):
    shape = ins[1].shape
    norm_shape = tuple(shape[_axis(node, len(shape)):])
    types = (TensorType(shape, np.float32), TensorType(norm_shape, np.float32),
             TensorType(norm_shape, np.float32))
    return [t for t, w in zip(types, node.attr("want")) if w]


def _grad_reference(node, args):
    dy, x, scale = (a.astype(np.float64) for a in args[:3])
    axis = _axis(node, x.ndim)
    dims = tuple(range(axis, x.ndim))
    lead = tuple(range(axis))
    mean = x.mean(axis=dims, keepdims=True)
    invstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=dims, keepdims=True) + node.attr("epsilon", 1e-5))
    xhat = (x - mean) * invstd
    g = dy * np.broadcast_to(scale, x.shape[axis:])
    dx = invstd * (g - g.mean(axis=dims, keepdims=True) - xhat * (g * xhat).mean(axis=dims, keepdims=True))
    results = (dx, (dy * xhat).sum(axis=lead), dy.sum(axis=lead))
    return [r.astype(np.float32) for r, w in zip(results, node.attr("want")) if w]


def _grad_lower(node, ctx):
    shape = ctx.ins[1].shape
    axis = _axis(node, len(shape))
    norm_shape = tuple(shape[axis:])
    dx, dscale, dbias = wanted_outputs(node, ctx)
    return (f"mt_layernorm_f32_bwd({ctx.inp(0)}, {ctx.inp(1)}, {_scale_operand(ctx, norm_shape)}, "
            f"{dx}, {dscale}, {dbias}, {size(shape[:axis])}, {size(norm_shape)}, "
            f"{float_literal(node.attr('epsilon', 1e-5))});")


def _grad_macs(node, ins, outs):
    return 4 * size(ins[1].shape)


def register_affine_grad(name, **fields):
    """`name` computes dx in place of dy (output 0); `name`Params, the same op
    when dx is not wanted, is not in place (its output 0 is a parameter grad)."""
    register(name, inplace=True, **fields)
    register(name + "Params", inplace=False, **fields)


def _scale_operand(ctx, norm_shape):
    require_float(ctx.node, ctx.ins, 2)
    v = ctx.ins[2]
    if size(v.shape) == size(norm_shape):
        return ctx.inp(2)
    if v.const is None:
        raise UnsupportedOpError(
            f"{node_label(ctx.node)}: training through a broadcast scale (shape {v.shape}) needs it "
            f"constant; give it the full normalized shape {tuple(norm_shape)}")
    return ctx.table(np.broadcast_to(v.const, norm_shape).astype(np.float32), "float")


register_affine_grad("mt.LayerNormGrad", infer=_grad_infer, reference=_grad_reference, lower=_grad_lower,
                     macs=_grad_macs)


def _vjp(node, gb, dys):
    if any(d is not None for d in dys[1:]):
        raise UnsupportedOpError(f"{node_label(node)}: gradients through the Mean/InvStdDev "
                                 "outputs are not supported; train through Y only")
    x, scale = node.inputs[0], node.inputs[1]
    bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
    shapes = (gb.shape(x), gb.shape(scale), gb.shape(bias) if bias else None)
    attrs = {"axis": _axis(node, len(gb.shape(x))), "epsilon": float(node.attr("epsilon", 1e-5))}
    return emit_affine_grad(gb, "mt.LayerNormGrad", [dys[0], x, scale], attrs, shapes)
