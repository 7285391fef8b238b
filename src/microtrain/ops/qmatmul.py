"""mt.QMatMul(a, b, mul, add): integer (batched) matrix product with a fused
requantization epilogue, numpy MatMul broadcasting over leading dims:
    acc[..., i, j] = sum_k (a[..., i, k] - a_zero_point) * (b[..., k, j] - b_zero_point)
then y = requant(acc) per output column j (the channel axis is the last).
Gemm with a constant weight becomes QMatMul with b = W^T as (K, N) and the bias
in add; attention's Q.K^T and P.V are QMatMul of two run-time tensors.
Kernels (bit-identical): mt_matmul_s8_gemm (runtime/mt_int8_gemm.c: 4 columns
of B packed in the op's scratch, register-blocked, __smlad on Cortex-M4/M7) for
m >= 4; mt_matmul_s8_fast (runtime/mt_int8_matmul.c, 4 columns per pass) for
fewer rows; or the plain mt_matmul_s8 with MICROTRAIN_KERNELS=reference (bit-identical);
the batch broadcast is a table of per-batch element offsets. Multi-core
builds split the GEMM kernel's blocks of rows of A over the cores
(mt_matmul_s8_gemm_par, one panel per core); the others run on core 0."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import size
from ._quant import (check_channel_vector, check_int8, requant_c_args, requant_params, requantize,
                     s8_panel_bytes, s8_rows_layout, s8_rows_table)
from .gemm import fast_kernels, value_shape
from .registry import broadcast_shape, register


def _dims(node, a_shape, b_shape):
    if len(a_shape) < 2 or len(b_shape) < 2:
        raise ShapeError(f"{node_label(node)}: mt.QMatMul needs inputs of rank >= 2, got "
                         f"{tuple(a_shape)} and {tuple(b_shape)}")
    m, k = a_shape[-2:]
    k2, n = b_shape[-2:]
    if k != k2:
        raise ShapeError(f"{node_label(node)}: inner dimensions differ: {tuple(a_shape)} @ {tuple(b_shape)}")
    batch = broadcast_shape(node, tuple(a_shape[:-2]), tuple(b_shape[:-2]))
    return tuple(batch), int(m), int(k), int(n)


def _infer(node, ins):
    check_int8(node, ins, (0, 1))
    batch, m, _, n = _dims(node, ins[0].shape, ins[1].shape)
    check_channel_vector(node, "mul", ins[2].const, n)
    check_channel_vector(node, "add", ins[3].const, n)
    requant_params(node)
    return [TensorType((*batch, m, n), np.int8)]


def _reference(node, args):
    a, b, mul, add = args
    shift, lo, hi = requant_params(node)
    acc = np.matmul(a.astype(np.int64) - int(node.attr("a_zero_point", 0)),
                    b.astype(np.int64) - int(node.attr("b_zero_point", 0)))
    return [requantize(acc, mul, add, shift, lo, hi, axis=-1)]


def batch_offsets(shape, batch, m_or_k_rows: int, cols: int) -> list[int]:
    """Element offset of each output batch's matrix inside an operand of
    `shape` (broadcast dims repeat the same matrix)."""
    lead = tuple(shape[:-2])
    padded = (1,) * (len(batch) - len(lead)) + lead
    offs = np.arange(size(padded), dtype=np.int64).reshape(padded) * (m_or_k_rows * cols)
    return np.broadcast_to(offs, batch).reshape(-1).tolist() if batch else [0]


def _lower(node, ctx):
    a_shape, b_shape = ctx.ins[0].shape, ctx.ins[1].shape
    batch, m, k, n = _dims(node, a_shape, b_shape)
    a_off = batch_offsets(a_shape, batch, m, k)
    b_off = batch_offsets(b_shape, batch, k, n)
    kernel = _kernel(m, ctx.ins[1])
    b, panel = ctx.inp(1), ""
    if kernel == "mt_matmul_s8_gemm":   # B^T re-laid out for the kernel (a const copy)
        mats = np.asarray(ctx.ins[1].const).reshape(-1, k, n)
        b = s8_rows_table(ctx, [s8_rows_layout(mt.T) for mt in mats])
        packed = (n + 3) // 4 * 4 * ((k + 3) // 4 * 4)
        b_off = [off // (k * n) * packed for off in b_off]
        par = ctx.par()   # multi-core: this core's blocks of rows of A, its own panel
        panel = f", (int16_t *){ctx.core_scratch}{', ' + par if par else ''}"
        kernel += "_par" if par else ""
    return (f"{kernel}({ctx.inp(0)}, {b}, {ctx.out(0)}, {len(a_off)}, "
            f"{ctx.table(a_off)}, {ctx.table(b_off)}, {m}, {k}, {n}, "
            f"{int(node.attr('a_zero_point', 0))}, {int(node.attr('b_zero_point', 0))}, "
            f"{requant_c_args(ctx, 2, 3)}{panel});")


def _kernel(m: int, b) -> str:
    """The blocked GEMM kernel (rows of A packed in scratch, constant B
    re-laid out) when B is constant and A has enough rows to amortize the
    packing; 4 columns per pass otherwise."""
    if not fast_kernels():
        return "mt_matmul_s8"
    gemm = m >= 3 and getattr(b, "const", None) is not None
    return "mt_matmul_s8_gemm" if gemm else "mt_matmul_s8_fast"


def _scratch(node, ins, outs):
    batch, m, k, n = _dims(node, value_shape(ins[0]), value_shape(ins[1]))
    return s8_panel_bytes(k) if _kernel(m, ins[1]) == "mt_matmul_s8_gemm" else 0


def _macs(node, ins, outs):
    _, _, k, _ = _dims(node, ins[0].shape, ins[1].shape)
    return size(outs[0].shape) * k


register("mt.QMatMul", infer=_infer, reference=_reference, lower=_lower, macs=_macs, scratch=_scratch)
