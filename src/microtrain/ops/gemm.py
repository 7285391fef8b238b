"""Gemm: Y = alpha * op(A) @ op(B) + beta * C with transA/transB and an
optional C broadcast unidirectionally to (M, N) (scalar, (N,), (1, N),
(M, 1), (M, N)). A constant C is pre-scaled by beta at compile time. Lowered
to the register-blocked `mt_gemm_f32_blocked` (B packed 4 columns at a time
into a 4*K-float scratch panel), or to the plain reference `mt_gemm_f32` when
MICROTRAIN_KERNELS=reference (see `fast_kernels`)."""
from __future__ import annotations

import os

import numpy as np

from ..errors import MicrotrainError, ShapeError, node_label
from ..ir import TensorType
from ._common import broadcast_strides, require_float
from .registry import register, unsupported_attr


KERNELS_ENV = "MICROTRAIN_KERNELS"


def fast_kernels() -> bool:
    """Whether Conv/Gemm/MatMul lower to the fast fp32 kernels (default) or to
    the plain reference ones (MICROTRAIN_KERNELS=reference, read at compile
    time, e.g. to check one against the other)."""
    mode = os.environ.get(KERNELS_ENV, "fast").strip().lower()
    if mode not in ("fast", "reference"):
        raise MicrotrainError(f"{KERNELS_ENV}={mode!r} is not a kernel set; use 'fast' or 'reference'")
    return mode == "fast"


def panel_bytes(k: int) -> int:
    """Scratch of the blocked GEMM: one packed panel of 4 columns of B."""
    return 4 * 4 * int(k)


def value_shape(v) -> tuple[int, ...]:
    """Shape of an input as `scratch` sees it: the planner passes constants
    (weights) with no type, only their value."""
    return tuple(v.const.shape) if v.type is None and v.const is not None else tuple(v.shape)


def _dims(node, a_shape, b_shape) -> tuple[int, int, int]:
    """(M, K, N) after transposition, validated."""
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise ShapeError(f"{node_label(node)}: Gemm needs 2-D A and B, got {tuple(a_shape)} and "
                         f"{tuple(b_shape)}; use MatMul for other ranks")
    for key in ("transA", "transB"):
        if node.attr(key, 0) not in (0, 1):
            raise unsupported_attr(node, key, node.attr(key), "use 0 or 1")
    m, k = a_shape[::-1] if node.attr("transA", 0) else a_shape
    k2, n = b_shape[::-1] if node.attr("transB", 0) else b_shape
    if k != k2:
        raise ShapeError(f"{node_label(node)}: inner dimensions differ: op(A) is {(m, k)}, op(B) is {(k2, n)}")
    return int(m), int(k), int(n)


def _check_c(node, c_shape, m, n) -> None:
    c_shape = tuple(c_shape)
    padded = (1,) * (2 - len(c_shape)) + c_shape
    if len(c_shape) > 2 or any(d not in (1, want) for d, want in zip(padded, (m, n))):
        raise ShapeError(f"{node_label(node)}: C of shape {c_shape} does not broadcast to the output {(m, n)}")


def _has_c(args_or_ins) -> bool:
    if len(args_or_ins) < 3:
        return False
    c = args_or_ins[2]
    return c is not None and getattr(c, "present", True)


def _infer(node, ins):
    m, _, n = _dims(node, ins[0].shape, ins[1].shape)
    if _has_c(ins):
        _check_c(node, ins[2].shape, m, n)
    return [TensorType((m, n), ins[0].dtype)]


def _reference(node, args):
    a, b = args[0], args[1]
    m, _, n = _dims(node, a.shape, b.shape)
    if node.attr("transA", 0):
        a = a.T
    if node.attr("transB", 0):
        b = b.T
    alpha, beta = node.attr("alpha", 1.0), node.attr("beta", 1.0)
    if np.issubdtype(a.dtype, np.floating):
        a, b = a.astype(np.float64), b.astype(np.float64)
    y = alpha * (a @ b)
    if _has_c(args):
        _check_c(node, args[2].shape, m, n)
        y = y + beta * args[2]
    return [np.asarray(y).astype(args[0].dtype)]


def _lower(node, ctx):
    require_float(node, ctx.ins, 0)
    require_float(node, ctx.ins, 1)
    m, k, n = _dims(node, ctx.ins[0].shape, ctx.ins[1].shape)
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    c_ptr, c_strides = "NULL", [0, 0]
    if _has_c(ctx.ins):
        c_strides = broadcast_strides(ctx.ins[2].shape, (m, n))
        if ctx.ins[2].const is not None:
            # Fold beta into the constant: one multiply less per output.
            scaled = (beta * ctx.ins[2].const.astype(np.float64)).astype(np.float32)
            c_ptr, beta = ctx.table(scaled, "float"), 1.0
        else:
            require_float(node, ctx.ins, 2)
            c_ptr = ctx.inp(2)
    from ..codegen.context import float_literal
    args = (f"{ctx.inp(0)}, {ctx.inp(1)}, {c_ptr}, {ctx.out(0)}, {m}, {k}, {n}, "
            f"{int(node.attr('transA', 0))}, {int(node.attr('transB', 0))}, {float_literal(alpha)}, "
            f"{float_literal(beta)}, {c_strides[0]}, {c_strides[1]}")
    par = ctx.par()   # multi-core: this core's share (the _par variant)
    suffix, par_arg = ("_par", f", {par}") if par else ("", "")
    if fast_kernels():
        return f"mt_gemm_f32_blocked{suffix}({args}, (float *){ctx.core_scratch}{par_arg});"
    return f"mt_gemm_f32{suffix}({args}{par_arg});"


def _scratch(node, ins, outs):
    if not fast_kernels():
        return 0
    _, k, _ = _dims(node, value_shape(ins[0]), value_shape(ins[1]))
    return panel_bytes(k)


def _macs(node, ins, outs):
    m, k, n = _dims(node, ins[0].shape, ins[1].shape)
    return m * k * n


def _vjp(node, gb, dys):
    """With P = op(A) @ op(B): dop(A) = alpha dY op(B)^T, dop(B) = alpha op(A)^T dY,
    each written as one Gemm whose trans flags undo the forward's; dC = beta
    dY summed over C's broadcast axes."""
    (dy,) = dys
    a, b = node.inputs[0], node.inputs[1]
    ta, tb = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    grads = [None] * len(node.inputs)
    if gb.needs(0):
        grads[0] = (gb.emit("Gemm", [b, dy], {"transA": tb, "transB": 1, "alpha": alpha}) if ta else
                    gb.emit("Gemm", [dy, b], {"transA": 0, "transB": 1 - tb, "alpha": alpha}))
    if gb.needs(1):
        grads[1] = (gb.emit("Gemm", [dy, a], {"transA": 1, "transB": ta, "alpha": alpha}) if tb else
                    gb.emit("Gemm", [a, dy], {"transA": 1 - ta, "transB": 0, "alpha": alpha}))
    if len(node.inputs) > 2 and node.inputs[2] and gb.needs(2):
        dc = dy if beta == 1.0 else gb.emit("Mul", [dy, gb.const(beta)])
        grads[2] = gb.unbroadcast(dc, gb.shape(node.inputs[2]))
    return grads


register("Gemm", infer=_infer, reference=_reference, lower=_lower, macs=_macs, vjp=_vjp,
         scratch=_scratch)
