"""The operator registry. Everything about one operator lives in one module of
`microtrain.ops` and is registered here as an `OpDef`:

* `infer(node, ins) -> [TensorType]` — shape/dtype rule. `ins[i]` is a `Value`
  (type plus the constant array when the input is a constant, else None).
* `reference(node, arrays) -> [np.ndarray]` — the numpy golden model.
* `lower(node, ctx) -> str` — the C statements that call the kernel library;
  None for ops that are only evaluated at compile time (constant folding).
* `macs(node, ins, outs) -> int` — multiply-accumulates, for reports.
* `scratch(node, ins, outs) -> int` — bytes of scratch the kernel needs.
* `view` — output 0 is input 0 reinterpreted (Reshape...): no code, no copy.
* `inplace` — output 0 may overwrite input 0 when that input dies here.
* `mutates` — indices of inputs (state tensors) the op updates in place; its
  `reference` returns their new values first, then its outputs.
* `vjp(node, grad_builder, dys) -> [grad name or None per input]` — the
  gradient rule (training/autodiff.py), emitting backward nodes.
* `types_only` — the result depends only on input shapes/dtypes (Shape,
  Size), so it folds even when the input is a run-time tensor.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..errors import UnsupportedOpError, node_label
from ..ir import Node, TensorType


@dataclass
class Value:
    """What an op rule sees of one input: its type and, if known, its value."""
    type: Optional[TensorType]
    const: Optional[np.ndarray] = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> np.dtype:
        return self.type.dtype

    @property
    def present(self) -> bool:
        return self.type is not None


@dataclass
class OpDef:
    name: str
    infer: Callable
    reference: Callable
    lower: Optional[Callable] = None
    macs: Optional[Callable] = None
    scratch: Optional[Callable] = None
    view: bool = False
    inplace: bool = False
    foldable: bool = True
    mutates: tuple = ()
    vjp: Optional[Callable] = None
    types_only: bool = False


_REGISTRY: dict[str, OpDef] = {}

# Ops microtrain adds itself (gradients, losses, optimizer updates) carry this
# domain in the IR; they never come from a user's file.
INTERNAL_DOMAIN = "microtrain"


def register(name: str, **fields) -> OpDef:
    """Registration: `register("Relu", infer=..., reference=...)`."""
    if name in _REGISTRY:
        raise RuntimeError(f"op {name} registered twice")
    _REGISTRY[name] = OpDef(name=name, **fields)
    return _REGISTRY[name]


def get_op(node: Node) -> OpDef:
    _load_all()
    if node.domain not in ("", "ai.onnx", INTERNAL_DOMAIN):
        raise UnsupportedOpError(
            f"{node_label(node)}: custom domain '{node.domain}' is not supported; "
            "export the model with standard ONNX operators")
    op = _REGISTRY.get(node.op)
    if op is not None and op.name.startswith("mt.") and node.domain != INTERNAL_DOMAIN:
        op = None  # internal ops cannot be named by a user's model
    if op is None:
        raise UnsupportedOpError(
            f"{node_label(node)}: operator '{node.op}' is not supported by microtrain; "
            "run `microtrain ops` for the supported list or rewrite the model with supported ops")
    return op


def supported_ops() -> list[str]:
    _load_all()
    return sorted(n for n in _REGISTRY if not n.startswith("mt."))



def compiled_ops() -> list[str]:
    """Ops that have a C lowering (the others only fold at compile time)."""
    _load_all()
    return sorted(n for n, o in _REGISTRY.items() if o.lower is not None and not n.startswith("mt."))


_LOADED = False


def _load_all() -> None:
    # Op modules register themselves on import; import them lazily so that
    # `import microtrain` stays cheap.
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from . import ALL_OP_MODULES  # noqa: F401


# ---- helpers shared by op modules ----------------------------------------

def norm_axis(axis: int, rank: int, node: Node) -> int:
    if not -rank <= axis < max(rank, 1):
        raise UnsupportedOpError(f"{node_label(node)}: axis {axis} out of range for rank {rank}")
    return axis % max(rank, 1)


def require_const(node: Node, ins: list[Value], index: int, what: str) -> np.ndarray:
    """Shape-like operands must be compile-time constants on a static graph."""
    if index >= len(ins) or not ins[index].present:
        return None
    if ins[index].const is None:
        raise UnsupportedOpError(
            f"{node_label(node)}: {what} (input {index}) must be a constant; "
            "microtrain compiles static graphs — fix the input shapes with --input-shape "
            "so it can be folded, or export the model with constant shapes")
    return ins[index].const


def broadcast_shape(node: Node, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise UnsupportedOpError(
            f"{node_label(node)}: shapes {' and '.join(map(str, shapes))} do not broadcast") from None


def unsupported_attr(node: Node, attr: str, value, hint: str = "") -> UnsupportedOpError:
    return UnsupportedOpError(
        f"{node_label(node)}: {attr}={value!r} is not supported" + (f"; {hint}" if hint else ""))
