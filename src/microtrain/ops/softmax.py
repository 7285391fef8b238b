"""Softmax and LogSoftmax. Opset >= 13: over one axis (default -1). Before 13:
the input is coerced to 2-D at `axis` (default 1) and normalized over the
flattened trailing dims. Both are (outer, n, inner) for the kernel."""
from __future__ import annotations

import numpy as np

from ._common import require_float, same_as_input, size
from .registry import norm_axis, register


def _geometry(node, shape) -> tuple[int, int, int]:
    """(outer, n, inner) of the normalized axis (or flattened block)."""
    rank = len(shape)
    if node.opset < 13:
        axis = norm_axis(int(node.attr("axis", 1)), rank, node) if rank else 0
        return size(shape[:axis]), size(shape[axis:]), 1
    axis = norm_axis(int(node.attr("axis", -1)), rank, node) if rank else 0
    if rank == 0:
        return 1, 1, 1
    return size(shape[:axis]), shape[axis], size(shape[axis + 1:])


def _infer(node, ins):
    _geometry(node, ins[0].shape)  # validates the axis
    return same_as_input(node, ins)


def _reference(node, args):
    x = args[0]
    outer, n, inner = _geometry(node, x.shape)
    xf = x.astype(np.float64).reshape(outer, n, inner)
    shifted = xf - xf.max(axis=1, keepdims=True)
    logsum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    y = shifted - logsum if node.op == "LogSoftmax" else np.exp(shifted - logsum)
    return [y.reshape(x.shape).astype(x.dtype)]


def _lower(node, ctx):
    require_float(node, ctx.ins)
    outer, n, inner = _geometry(node, ctx.ins[0].shape)
    return (f"mt_softmax_f32({ctx.inp(0)}, {ctx.out(0)}, {outer}, {n}, {inner}, "
            f"{int(node.op == 'LogSoftmax')});")


def _macs(node, ins, outs):
    return 2 * size(outs[0].shape)


# ---- gradient ------------------------------------------------------------------
# mt.SoftmaxGrad(dy, y): dx from the output alone (x need not stay alive), over
# the forward's (outer, n, inner) view, stored as attribute `geometry`.

def _grad_reference(node, args):
    dy, y = (a.astype(np.float64).reshape(node.attr("geometry")) for a in args)
    if node.attr("log_softmax"):
        dx = dy - np.exp(y) * dy.sum(axis=1, keepdims=True)
    else:
        dx = y * (dy - (dy * y).sum(axis=1, keepdims=True))
    return [dx.reshape(args[0].shape).astype(np.float32)]


def _grad_lower(node, ctx):
    outer, n, inner = node.attr("geometry")
    return (f"mt_softmax_f32_bwd({ctx.inp(0)}, {ctx.inp(1)}, {ctx.out(0)}, {outer}, {n}, {inner}, "
            f"{int(node.attr('log_softmax'))});")


def _vjp(node, gb, dys):
    geometry = [int(v) for v in _geometry(node, gb.shape(node.inputs[0]))]
    return [gb.emit("mt.SoftmaxGrad", [dys[0], node.outputs[0]],
                    {"geometry": geometry, "log_softmax": int(node.op == "LogSoftmax")})]


register("mt.SoftmaxGrad", infer=same_as_input, reference=_grad_reference, lower=_grad_lower,
         macs=_macs, inplace=True)

for _name in ("Softmax", "LogSoftmax"):
    register(_name, infer=_infer, reference=_reference, lower=_lower, macs=_macs,
             inplace=True, vjp=_vjp)
