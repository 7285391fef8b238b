"""Helpers shared by op modules (shapes, strides, C tables)."""
from __future__ import annotations

import math

import numpy as np

from ..ir import Node, TensorType
from .registry import Value


def same_as_input(node: Node, ins: list[Value]) -> list[TensorType]:
    return [TensorType(ins[0].shape, ins[0].dtype)]


def broadcast_strides(in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[int]:
    """Element strides of `in_shape` viewed as `out_shape` (0 on broadcast axes)."""
    nd = len(out_shape)
    padded = (1,) * (nd - len(in_shape)) + tuple(in_shape)
    strides, acc = [0] * nd, 1
    for ax in range(nd - 1, -1, -1):
        strides[ax] = 0 if padded[ax] == 1 and out_shape[ax] != 1 else acc
        acc *= padded[ax]
    return strides


def size(shape) -> int:
    return int(math.prod(shape))


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorized erf (numpy has none; scipy is not a dependency)."""
    return np.vectorize(math.erf, otypes=[np.float64])(np.asarray(x, dtype=np.float64))


def require_float(node: Node, ins: list[Value], index: int = 0) -> None:
    from ..errors import UnsupportedOpError, node_label
    if ins[index].dtype != np.float32:
        raise UnsupportedOpError(
            f"{node_label(node)}: run-time {ins[index].dtype} tensors are not supported by this "
            "kernel (float32 only for now); cast the model to float32")
