"""Ops whose output is their input reinterpreted: Reshape, Flatten, Squeeze,
Unsqueeze, Identity, Dropout (inference). They are `view=True`: the planner
gives the output the input's buffer and the codegen emits no code (a memcpy
when the output is a graph output). Their `lower` is that memcpy, kept for
completeness; the codegen normally does not call it."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import size
from .registry import norm_axis, register, require_const


def _ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


# ---- Reshape ----------------------------------------------------------------

def _reshape_target(node, in_shape, shape) -> tuple[int, ...]:
    allow_zero = int(node.attr("allowzero", 0))
    dims = _ints(shape)
    if allow_zero and 0 in dims and -1 in dims:
        raise ShapeError(f"{node_label(node)}: shape {dims} has both 0 and -1 with allowzero=1")
    if not allow_zero:
        for i, d in enumerate(dims):
            if d == 0:
                if i >= len(in_shape):
                    raise ShapeError(f"{node_label(node)}: shape {dims} copies dim {i} (0) "
                                     f"but the input has rank {len(in_shape)}")
                dims[i] = in_shape[i]
    if dims.count(-1) > 1:
        raise ShapeError(f"{node_label(node)}: shape {dims} has more than one -1")
    total = size(in_shape)
    if -1 in dims:
        known = size(d for d in dims if d != -1)
        if known == 0 or total % known:
            raise ShapeError(f"{node_label(node)}: cannot reshape {tuple(in_shape)} to {dims}")
        dims[dims.index(-1)] = total // known
    if any(d < 0 for d in dims) or size(dims) != total:
        raise ShapeError(f"{node_label(node)}: cannot reshape {tuple(in_shape)} "
                         f"({total} elements) to {dims}")
    return tuple(dims)


def _reshape_shape_operand(node, ins):
    if node.opset < 5:
        return node.attr("shape")
    return require_const(node, ins, 1, "the target shape")


def _reshape_infer(node, ins):
    return [TensorType(_reshape_target(node, ins[0].shape, _reshape_shape_operand(node, ins)),
                       ins[0].dtype)]


def _reshape_reference(node, args):
    shape = node.attr("shape") if node.opset < 5 else args[1]
    return [args[0].reshape(_reshape_target(node, args[0].shape, shape))]


# ---- Flatten ----------------------------------------------------------------

def _flatten_shape(node, shape) -> tuple[int, int]:
    rank = len(shape)
    axis = int(node.attr("axis", 1))
    if not -rank <= axis <= rank:
        raise UnsupportedOpError(f"{node_label(node)}: axis {axis} out of range for rank {rank}")
    if axis < 0:
        axis += rank
    return size(shape[:axis]), size(shape[axis:])


def _flatten_infer(node, ins):
    return [TensorType(_flatten_shape(node, ins[0].shape), ins[0].dtype)]


def _flatten_reference(node, args):
    return [args[0].reshape(_flatten_shape(node, args[0].shape))]


# ---- Squeeze / Unsqueeze ------------------------------------------------------

def _axes_operand(node, ins_or_args, const: bool):
    """Axes: an attribute before opset 13, the optional input 1 from 13 on."""
    if node.opset < 13:
        axes = node.attr("axes")
        return None if axes is None else _ints(axes)
    if const:
        axes = require_const(node, ins_or_args, 1, "axes")
    else:
        axes = ins_or_args[1] if len(ins_or_args) > 1 else None
    return None if axes is None else _ints(axes)


def _squeeze_shape(node, shape, axes) -> tuple[int, ...]:
    if axes is None:
        return tuple(d for d in shape if d != 1)
    rank = len(shape)
    drop = {norm_axis(a, rank, node) for a in axes}
    for a in drop:
        if shape[a] != 1:
            raise ShapeError(f"{node_label(node)}: cannot squeeze axis {a} of size {shape[a]} "
                             f"(input shape {tuple(shape)})")
    return tuple(d for i, d in enumerate(shape) if i not in drop)


def _unsqueeze_shape(node, shape, axes) -> tuple[int, ...]:
    if axes is None:
        raise UnsupportedOpError(f"{node_label(node)}: Unsqueeze needs axes")
    rank = len(shape) + len(axes)
    new = sorted(norm_axis(a, rank, node) for a in axes)
    if len(set(new)) != len(new):
        raise ShapeError(f"{node_label(node)}: repeated axis in {axes}")
    dims = iter(shape)
    return tuple(1 if i in new else next(dims) for i in range(rank))


def _squeeze_infer(node, ins):
    return [TensorType(_squeeze_shape(node, ins[0].shape, _axes_operand(node, ins, True)), ins[0].dtype)]


def _squeeze_reference(node, args):
    return [args[0].reshape(_squeeze_shape(node, args[0].shape, _axes_operand(node, args, False)))]


def _unsqueeze_infer(node, ins):
    return [TensorType(_unsqueeze_shape(node, ins[0].shape, _axes_operand(node, ins, True)), ins[0].dtype)]


def _unsqueeze_reference(node, args):
    return [args[0].reshape(_unsqueeze_shape(node, args[0].shape, _axes_operand(node, args, False)))]


# ---- Identity / Dropout -------------------------------------------------------

def _identity_infer(node, ins):
    return [TensorType(ins[0].shape, ins[0].dtype)]


def _identity_reference(node, args):
    return [args[0]]


def _dropout_check(node, ins):
    if len(node.outputs) > 1 and node.outputs[1]:
        raise UnsupportedOpError(f"{node_label(node)}: the Dropout mask output is not supported; "
                                 "export the model in eval mode")
    training = node.attr("is_test", 1) == 0 if node.opset < 7 else False
    if node.opset >= 12 and len(ins) > 2 and ins[2].present:
        training = bool(np.asarray(require_const(node, ins, 2, "training_mode")).reshape(-1)[0])
    if training:
        raise UnsupportedOpError(f"{node_label(node)}: Dropout in training mode is not supported; "
                                 "export the model in eval mode")


def _dropout_infer(node, ins):
    _dropout_check(node, ins)
    return [TensorType(ins[0].shape, ins[0].dtype)]


def _lower_copy(node, ctx):
    """The view as an explicit copy (used only if the planner did not alias)."""
    return f"memcpy({ctx.out(0)}, {ctx.inp(0)}, {ctx.outs[0].nbytes});"


def _no_macs(node, ins, outs):
    return 0


VIEWS = {
    "Reshape": (_reshape_infer, _reshape_reference),
    "Flatten": (_flatten_infer, _flatten_reference),
    "Squeeze": (_squeeze_infer, _squeeze_reference),
    "Unsqueeze": (_unsqueeze_infer, _unsqueeze_reference),
    "Identity": (_identity_infer, _identity_reference),
    "Dropout": (_dropout_infer, _identity_reference),
}


def _vjp(node, gb, dys):
    """The gradient of a view is dy viewed back in the input's shape: a
    Reshape, itself a view, so it costs no code and no memory."""
    x_shape = gb.shape(node.inputs[0])
    dx = dys[0]
    if gb.shape(dx) != x_shape:
        # allowzero keeps a 0-sized dim a real 0 instead of "copy dim from dy"
        dx = gb.emit("Reshape", [dx, gb.const(np.array(x_shape, np.int64), np.int64)],
                     {"allowzero": int(0 in x_shape)})
    return [dx] + [None] * (len(node.inputs) - 1)


for _name, (_infer, _reference) in VIEWS.items():
    register(_name, infer=_infer, reference=_reference, lower=_lower_copy, macs=_no_macs, view=True,
             vjp=_vjp)
