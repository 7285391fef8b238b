"""mt.PulpITAMax: the ITAMax / ITAPartialMax integer softmax of the PULP
convention (Deeploy TargetLibraries/Generic/src/Softmax_s8.c), over the last
axis of int8 logits at ITA's scale (exp is a power of two). Rows of n values:

    shift_j = (max - x_j + 16) >> 5          (round half up of d / 32)
    ITAMax (group_width = 0): max over the whole row first;
        sum = sum_j 256 >> shift_j;  inv = floor((n_levels - 1) * 256 / sum)
    ITAPartialMax (group_width = G, n % G == 0): running max from -128,
        per group of G: if the group max m > max: sum >>= (m - max + 16) >> 5,
        max = m; sum += sum_group 256 >> shift_j;
        inv = floor((n_levels / 2 - 1) * 256 / sum)
    out_j = (inv >> shift_j) - n_levels / 2            (int8)

The two differ from mt.ITASoftmax: ITAMax takes the row max before summing
(no streaming loss); ITAPartialMax scales to n_levels/2 - 1 (127), not 255."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import size
from ._intmath import rows_view
from .ita_softmax import require_int8
from .registry import register


def _row(node, ins):
    n = ins[0].shape[-1] if ins[0].shape else 1
    g = int(node.attr("group_width", 0))
    if g < 0 or (g and n % g):
        raise ShapeError(f"{node_label(node)}: rows of {n} are not a multiple of group_width={g}")
    return n, g


def _infer(node, ins):
    require_int8(node, ins, "the logits")
    _row(node, ins)
    return [TensorType(ins[0].shape, np.int8)]


def _shift(d):
    return (d + 16) >> 5


def pulp_itamax(x: np.ndarray, n_levels: int, group_width: int = 0) -> np.ndarray:
    rows = rows_view(x)
    r, n = rows.shape
    if group_width == 0:
        mx = rows.max(axis=1)
        total = (256 >> _shift(mx[:, None] - rows)).sum(axis=1)
        numerator = (n_levels - 1) * 256
    else:
        mx = np.full(r, -128, dtype=np.int64)
        total = np.zeros(r, dtype=np.int64)
        for g in range(0, n, group_width):
            block = rows[:, g:g + group_width]
            gmax = block.max(axis=1)
            total = np.where(gmax > mx, total >> _shift(np.maximum(gmax - mx, 0)), total)
            mx = np.maximum(mx, gmax)
            total = total + (256 >> _shift(mx[:, None] - block)).sum(axis=1)
        numerator = (n_levels // 2 - 1) * 256
    inv = numerator // total
    y = (inv[:, None] >> _shift(mx[:, None] - rows)) - n_levels // 2
    return y.astype(np.int8).reshape(np.shape(x))


def _reference(node, args):
    return [pulp_itamax(args[0], int(node.attr("n_levels", 256)), int(node.attr("group_width", 0)))]


def _lower(node, ctx):
    n, g = _row(node, ctx.ins)
    return (f"mt_pulp_itamax_i8({ctx.inp(0)}, {ctx.out(0)}, {size(ctx.ins[0].shape) // n}, {n}, {g}, "
            f"{int(node.attr('n_levels', 256))});")


register("mt.PulpITAMax", infer=_infer, reference=_reference, lower=_lower,
         macs=lambda node, ins, outs: 2 * size(outs[0].shape))
