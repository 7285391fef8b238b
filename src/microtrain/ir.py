"""The graph IR: tensors with static shapes and dtypes, nodes in execution
order, constants as numpy arrays. Deliberately plain dataclasses so passes can
walk and rewrite them with ordinary Python (in the spirit of torch.fx)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

C_TYPES = {
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
    np.dtype(np.int64): "int64_t",
    np.dtype(np.int32): "int32_t",
    np.dtype(np.int16): "int16_t",
    np.dtype(np.int8): "int8_t",
    np.dtype(np.uint8): "uint8_t",
    np.dtype(np.bool_): "uint8_t",
}


@dataclass
class TensorType:
    shape: tuple[int, ...]
    dtype: np.dtype

    def __post_init__(self):
        self.shape = tuple(int(d) for d in self.shape)
        self.dtype = np.dtype(self.dtype)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def ctype(self) -> str:
        return C_TYPES[self.dtype]

    def __str__(self) -> str:
        dims = "x".join(str(d) for d in self.shape) or "scalar"
        return f"{self.dtype.name}[{dims}]"


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]          # "" marks an omitted optional input
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    opset: int = 17
    domain: str = ""

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def __str__(self) -> str:
        attrs = ", ".join(f"{k}={_short(v)}" for k, v in self.attrs.items())
        return (f"{', '.join(self.outputs)} = {self.op}"
                f"({', '.join(i or '<none>' for i in self.inputs)})"
                + (f"  {{{attrs}}}" if attrs else "") + f"  # {self.name}")


def _short(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"tensor{list(v.shape)}"
    return repr(v)


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    inputs: list[str]                       # run-time inputs, in order
    outputs: list[str]                      # graph outputs, in order
    types: dict[str, TensorType]            # every tensor, once inferred
    constants: dict[str, np.ndarray]        # initializers and folded values
    opset: int = 17
    source: str = "<memory>"                # file the graph came from
    # Persistent mutable tensors (trainable weights, optimizer state, gradient
    # accumulators): static RAM arrays initialized from these values, written
    # in place by ops that declare `mutates` (training step graphs only).
    state: dict[str, np.ndarray] = field(default_factory=dict)

    def copy(self) -> "Graph":
        """Copy of the structure; constant arrays are shared (never mutated)."""
        g = copy.copy(self)
        g.nodes = [copy.copy(n) for n in self.nodes]
        for n in g.nodes:
            n.inputs, n.outputs, n.attrs = list(n.inputs), list(n.outputs), dict(n.attrs)
        g.inputs, g.outputs = list(self.inputs), list(self.outputs)
        g.types, g.constants = dict(self.types), dict(self.constants)
        g.state = dict(self.state)
        return g

    def is_const(self, name: str) -> bool:
        return name in self.constants

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    users.setdefault(i, []).append(n)
        return users

    def type_of(self, name: str) -> TensorType:
        """Type of any tensor: activation, constant or state."""
        if name in self.types:
            return self.types[name]
        arr = self.constants[name] if name in self.constants else self.state[name]
        return TensorType(arr.shape, arr.dtype)

    def __str__(self) -> str:
        lines = [f"graph {self.name} (opset {self.opset})"]
        for i in self.inputs:
            lines.append(f"  input  {i}: {self.types.get(i, '?')}")
        for c, v in self.constants.items():
            lines.append(f"  const  {c}: {TensorType(v.shape, v.dtype)}")
        for c, v in self.state.items():
            lines.append(f"  state  {c}: {TensorType(v.shape, v.dtype)}")
        for n in self.nodes:
            outs = ", ".join(f"{o}: {self.types.get(o, '?')}" for o in n.outputs)
            lines.append(f"  {n.name:<24} {n.op:<20} -> {outs}")
        for o in self.outputs:
            lines.append(f"  output {o}: {self.types.get(o, '?')}")
        return "\n".join(lines)
