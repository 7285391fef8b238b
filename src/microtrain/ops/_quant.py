"""Shared integer semantics of the quantized ops (`mt.Requant`, `mt.QConv`,
`mt.QMatMul`, `mt.QAdd`, `mt.QMul`, `mt.QAvgPool`, `mt.QMaxPool`); the
contract is written out in docs/quantization.md.

Requantization, one rule for every op: an integer accumulator `acc` becomes
    y = clamp((acc * mul + add + 2^(shift-1)) >> shift, lo, hi)
evaluated in int64, `>>` an arithmetic (floor) shift, so the rounding is
half up (towards +inf); for shift == 0 there is no rounding term. `mul` and
`add` are per channel along `axis` (or one value for the tensor). This is
PULP's RequantShift with div = 2^shift and the PTQ fixed-point multiplier:
the real multiplier M = s_in / s_out is mul / 2^shift."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedOpError, node_label

INT8_MIN, INT8_MAX = -128, 127
MAX_SHIFT = 62


def requant_params(node) -> tuple[int, int, int]:
    """(shift, lo, hi) of a node, validated."""
    shift = int(node.attr("shift", 0))
    lo, hi = int(node.attr("lo", INT8_MIN)), int(node.attr("hi", INT8_MAX))
    if not 0 <= shift <= MAX_SHIFT:
        raise UnsupportedOpError(f"{node_label(node)}: shift={shift} must be in 0..{MAX_SHIFT}")
    if not INT8_MIN <= lo <= hi <= INT8_MAX:
        raise UnsupportedOpError(f"{node_label(node)}: clamp range lo={lo}, hi={hi} must satisfy "
                                 f"{INT8_MIN} <= lo <= hi <= {INT8_MAX}")
    return shift, lo, hi


def check_channel_vector(node, name: str, value, channels: int) -> None:
    """mul/add inputs: one value, or one per channel of the requant axis."""
    if value is None:
        raise UnsupportedOpError(f"{node_label(node)}: {name} must be a constant input")
    want = np.int32 if name == "mul" else np.int64
    if value.dtype != want:
        raise UnsupportedOpError(f"{node_label(node)}: {name} is {value.dtype}, must be {np.dtype(want).name}")
    if value.ndim > 1 or value.size not in (1, channels):
        raise ShapeError(f"{node_label(node)}: {name} has shape {tuple(value.shape)}; "
                         f"expected (1,) or ({channels},) (one per channel)")


def requantize(acc: np.ndarray, mul, add, shift: int, lo: int, hi: int, axis: int) -> np.ndarray:
    """The golden requantization (numpy int64; inputs exact integers)."""
    acc = np.asarray(acc, dtype=np.int64)
    shape = [1] * acc.ndim
    mul, add = np.asarray(mul, np.int64).reshape(-1), np.asarray(add, np.int64).reshape(-1)
    if acc.ndim:
        shape[axis] = -1
    mul = mul.reshape(shape) if mul.size > 1 else mul.reshape(())
    add = add.reshape(shape) if add.size > 1 else add.reshape(())
    rounding = np.int64(1 << (shift - 1)) if shift > 0 else np.int64(0)
    y = (acc * mul + add + rounding) >> np.int64(shift)
    return np.clip(y, lo, hi).astype(np.int8)


def check_int8(node, ins, indices) -> None:
    for i in indices:
        if ins[i].dtype != np.int8:
            raise UnsupportedOpError(f"{node_label(node)}: input {i} is {ins[i].dtype}, this quantized "
                                     "op takes int8 (quantize the model with microtrain.quantize)")


def requant_c_args(ctx, mul_index: int, add_index: int) -> str:
    """`mul, nmul, add, nadd, shift, lo, hi` as the C kernels take them."""
    node = ctx.node
    shift, lo, hi = requant_params(node)
    nmul, nadd = ctx.ins[mul_index].const.size, ctx.ins[add_index].const.size
    return (f"{ctx.inp(mul_index)}, {nmul}, {ctx.inp(add_index)}, {nadd}, {shift}, {lo}, {hi}")


def s8_panel_bytes(k: int) -> int:
    """Scratch of the int8 GEMM kernels (runtime/mt_int8_gemm.c,
    mt_s8_panel_bytes): the widest panel, 5 columns of int16 (rv32im), k
    rounded up to a multiple of 4."""
    return (int(k) + 3) // 4 * 4 * 5 * 2


def s8_dw3x3_scratch_bytes(out_h: int, out_w: int) -> int:
    """Scratch of the depthwise 3x3 kernel (runtime/mt_int8_dw.c,
    mt_s8_dw3x3_scratch_bytes): one zero-padded input channel as int16, rows
    out_h + 2 of (out_w rounded up to 4) + 2 values."""
    return (int(out_h) + 2) * ((int(out_w) + 3) // 4 * 4 + 2) * 2


def s8_rows_layout(rows: np.ndarray) -> np.ndarray:
    """The int8 row operand of the GEMM kernels (runtime/mt_int8_gemm.c),
    re-laid out at compile time: rows (R, K) padded with zeros to multiples of
    4, blocks of 4 rows, inside a block per group of 4 k the 4 rows' 4 bytes
    side by side, each in the order k0 k2 k1 k3 (so that __sxtb16 yields
    the pairs (k0, k1) and (k2, k3)). Flat int8."""
    r, k = rows.shape
    rp, kp = (r + 3) // 4 * 4, (k + 3) // 4 * 4
    padded = np.zeros((rp, kp), np.int8)
    padded[:r, :k] = rows
    blocks = padded.reshape(rp // 4, 4, kp // 4, 4)[..., [0, 2, 1, 3]]
    return blocks.transpose(0, 2, 1, 3).reshape(-1)


def s8_rows_table(ctx, layouts) -> str:
    """The concatenated s8_rows_layout blocks as a C expression of type
    `const int8_t *`, emitted as little-endian int32 words so that the table
    is word-aligned (the Cortex-M kernel reads it with LDRD, which faults on
    unaligned addresses). Every layout is a multiple of 16 bytes."""
    flat = np.ascontiguousarray(np.concatenate(list(layouts)), dtype=np.int8)
    return f"(const int8_t *){ctx.table(flat.view('<i4'), 'int32_t')}"
