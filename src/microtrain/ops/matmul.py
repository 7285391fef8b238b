"""MatMul with numpy semantics: 1-D operands (a 1 prepended to A / appended
to B, then removed from the result) and batched operands whose batch dims
broadcast, e.g. (2, 1, M, K) @ (3, K, N) -> (2, 3, M, N). Lowered to
`mt_matmul_f32` with per-batch element-offset tables, which express any
broadcast without copies; `mt_matmul_f32_blocked` (register-blocked, 4*K-float
scratch panel) unless MICROTRAIN_KERNELS=reference."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import require_float
from .gemm import fast_kernels, panel_bytes, value_shape
from .registry import broadcast_shape, register


def _layout(node, a_shape, b_shape):
    """(batch shape, a batch shape, b batch shape, M, K, N, output shape)."""
    a_shape, b_shape = tuple(a_shape), tuple(b_shape)
    if not a_shape or not b_shape:
        raise ShapeError(f"{node_label(node)}: MatMul operands must have rank >= 1, got "
                         f"{a_shape} and {b_shape}")
    a2 = a_shape if len(a_shape) > 1 else (1,) + a_shape
    b2 = b_shape if len(b_shape) > 1 else b_shape + (1,)
    m, k = a2[-2:]
    k2, n = b2[-2:]
    if k != k2:
        raise ShapeError(f"{node_label(node)}: inner dimensions differ: {a_shape} @ {b_shape}")
    batch = broadcast_shape(node, a2[:-2], b2[:-2])
    out = batch + ((m,) if len(a_shape) > 1 else ()) + ((n,) if len(b_shape) > 1 else ())
    return batch, a2[:-2], b2[:-2], int(m), int(k), int(n), out


def _infer(node, ins):
    *_, out = _layout(node, ins[0].shape, ins[1].shape)
    return [TensorType(out, ins[0].dtype)]


def _reference(node, args):
    a, b = args
    if np.issubdtype(a.dtype, np.floating):
        return [np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(a.dtype)]
    return [np.matmul(a, b).astype(a.dtype)]


def _batch_offsets(own_batch, batch, matrix_size) -> np.ndarray:
    """Element offset of each output batch's matrix in an operand with batch
    dims `own_batch` broadcast to `batch`."""
    index = np.arange(math.prod(own_batch), dtype=np.int64).reshape(own_batch)
    index = np.broadcast_to(index.reshape((1,) * (len(batch) - len(own_batch)) + own_batch), batch)
    return index.reshape(-1) * matrix_size


def _lower(node, ctx):
    require_float(node, ctx.ins, 0)
    require_float(node, ctx.ins, 1)
    batch, a_batch, b_batch, m, k, n, _ = _layout(node, ctx.ins[0].shape, ctx.ins[1].shape)
    a_off = _batch_offsets(a_batch, batch, m * k)
    b_off = _batch_offsets(b_batch, batch, k * n)
    args = (f"{ctx.inp(0)}, {ctx.inp(1)}, {ctx.out(0)}, {math.prod(batch)}, {m}, {k}, {n}, "
            f"{ctx.table(a_off)}, {ctx.table(b_off)}")
    par = ctx.par()   # multi-core: this core's share (the _par variant)
    suffix, par_arg = ("_par", f", {par}") if par else ("", "")
    if fast_kernels():
        return f"mt_matmul_f32_blocked{suffix}({args}, (float *){ctx.core_scratch}{par_arg});"
    return f"mt_matmul_f32{suffix}({args}{par_arg});"


def _scratch(node, ins, outs):
    if not fast_kernels():
        return 0
    return panel_bytes(_layout(node, value_shape(ins[0]), value_shape(ins[1]))[4])


def _macs(node, ins, outs):
    batch, _, _, m, k, n, _ = _layout(node, ins[0].shape, ins[1].shape)
    return math.prod(batch) * m * k * n


def _vjp(node, gb, dys):
    """dA = dY @ B^T and dB = A^T @ dY on the operands promoted to >= 2-D,
    summed over the batch axes each operand was broadcast along, then
    reshaped back (1-D operands)."""
    (dy,) = dys
    a, b = node.inputs
    a_shape, b_shape = gb.shape(a), gb.shape(b)
    batch, _, _, m, k, n, _ = _layout(node, a_shape, b_shape)
    a2_shape = a_shape if len(a_shape) > 1 else (1, k)
    b2_shape = b_shape if len(b_shape) > 1 else (k, 1)

    def reshape(name, shape):
        if tuple(gb.shape(name)) == tuple(shape):
            return name
        return gb.emit("Reshape", [name, gb.const(np.array(shape, np.int64), np.int64)])

    def swap_last(name):
        rank = len(gb.shape(name))
        return gb.emit("Transpose", [name], {"perm": [*range(rank - 2), rank - 1, rank - 2]})

    dy2 = reshape(dy, batch + (m, n))
    grads = [None, None]
    if gb.needs(0):
        da = gb.emit("MatMul", [dy2, swap_last(reshape(b, b2_shape))])
        grads[0] = reshape(gb.unbroadcast(da, a2_shape), a_shape)
    if gb.needs(1):
        db = gb.emit("MatMul", [swap_last(reshape(a, a2_shape)), dy2])
        grads[1] = reshape(gb.unbroadcast(db, b2_shape), b_shape)
    return grads


register("MatMul", infer=_infer, reference=_reference, lower=_lower, macs=_macs, vjp=_vjp,
         scratch=_scratch)
