"""Reverse-mode autodiff on the IR. From a forward graph, the set of
trainable tensors and a loss, emit the backward nodes into the same node list,
so one graph holds forward + loss + backward (+ optimizer updates, added by
the caller through `on_grad_ready`).

Pruning falls out of two sets: a tensor gets a gradient only if it depends on a
trainable tensor (so back-propagation stops where nothing upstream trains), and
an op's rule is asked only for the inputs that need one (so frozen weights get
no weight-gradient computation)."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..errors import UnsupportedOpError, node_label
from ..ir import Graph, Node, TensorType
from ..ops.registry import INTERNAL_DOMAIN, Value, get_op


class GradBuilder:
    """What a gradient rule uses to emit backward nodes."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.node: Optional[Node] = None
        self._needs: list[bool] = []
        self._count = 0

    # -- queried by rules ---------------------------------------------------
    def needs(self, i: int) -> bool:
        """Does input i of the current node need a gradient?"""
        return i < len(self._needs) and self._needs[i]

    def type(self, name: str) -> TensorType:
        g = self.graph
        if name in g.types:
            return g.types[name]
        arr = g.constants.get(name, g.state.get(name))
        return TensorType(arr.shape, arr.dtype)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.type(name).shape

    # -- emitting -------------------------------------------------------------
    def const(self, value, dtype=np.float32) -> str:
        self._count += 1
        name = f"{self._prefix()}c{self._count}"
        self.graph.constants[name] = np.require(np.asarray(value, dtype=dtype), requirements="C")
        return name

    def emit(self, op: str, inputs: list[str], attrs: Optional[dict] = None, n_out: int = 1):
        """Append a node; returns its output name (or list when n_out > 1).
        Ops named `mt.*` are microtrain's own (internal domain)."""
        self._count += 1
        base = f"{self._prefix()}{op.replace('mt.', '').lower()}{self._count}"
        outs = [base] if n_out == 1 else [f"{base}_{k}" for k in range(n_out)]
        node = Node(op, base, list(inputs), outs, dict(attrs or {}), opset=max(self.graph.opset, 18),
                    domain=INTERNAL_DOMAIN if op.startswith("mt.") else "")
        self.append(node)
        if not node.outputs:
            return None
        return outs[0] if n_out == 1 else outs

    def append(self, node: Node) -> None:
        """Append a node and infer its output types right away."""
        op = get_op(node)
        ins = [Value(None) if not i else Value(self.type(i), self.graph.constants.get(i)) for i in node.inputs]
        outs = op.infer(node, ins)
        node.outputs = node.outputs[:len(outs)]   # state-updating ops have none
        for name, t in zip(node.outputs, outs):
            if name:
                self.graph.types[name] = t
        self.graph.nodes.append(node)

    def unbroadcast(self, grad: str, shape: tuple[int, ...]) -> str:
        """Sum `grad` over the axes numpy broadcasting added or stretched to reach its shape."""
        gshape = self.shape(grad)
        if gshape == tuple(shape):
            return grad
        if int(np.prod(gshape)) == int(np.prod(shape)) and len(gshape) <= len(shape):
            # same values, another layout (a per-channel C vs C x 1 x 1 parameter)
            return self.emit("Reshape", [grad, self.const(np.array(shape, np.int64), np.int64)])
        lead = len(gshape) - len(shape)
        axes = list(range(lead)) + [lead + i for i, d in enumerate(shape) if d == 1 and gshape[lead + i] != 1]
        if axes:
            grad = self.emit("ReduceSum", [grad, self.const(np.array(axes, np.int64), np.int64)], {"keepdims": 1})
        if self.shape(grad) != tuple(shape):
            grad = self.emit("Reshape", [grad, self.const(np.array(shape, np.int64), np.int64)])
        return grad

    def add(self, a: str, b: str) -> str:
        return self.emit("Add", [a, b])

    def _prefix(self) -> str:
        return f"grad/{self.node.name}/" if self.node is not None else "grad/"


def tensors_depending_on(graph: Graph, sources: set[str]) -> set[str]:
    dep = set(sources)
    for n in graph.nodes:
        if any(i in dep for i in n.inputs if i):
            dep.update(o for o in n.outputs if o)
    return dep


def build_backward(graph: Graph, forward_nodes: list[Node], seeds: dict[str, str], trainable: list[str],
                   on_grad_ready: Callable[[str, str], None]) -> dict[str, str]:
    """Emit backward nodes for `forward_nodes` (in reverse) into `graph.nodes`.

    seeds: forward tensor -> name of its incoming gradient (e.g. dlogits).
    on_grad_ready(param, grad): called as soon as a trainable tensor's gradient is
    complete, so its update can run at once and the gradient buffer die early.
    Returns param -> gradient tensor name."""
    needs_grad = tensors_depending_on(graph, set(trainable))
    grads: dict[str, str] = dict(seeds)
    # how many forward consumers still have to contribute to each tensor's gradient
    pending: dict[str, int] = {}
    for n in forward_nodes:
        for i in set(n.inputs):
            if i in needs_grad:
                pending[i] = pending.get(i, 0) + 1
    gb = GradBuilder(graph)
    done: dict[str, str] = {}

    def contribute(name: str, g: Optional[str]) -> None:
        if g is not None:
            grads[name] = gb.add(grads[name], g) if name in grads else g
        pending[name] -= 1
        if pending[name] == 0 and name in trainable:
            if name not in grads:
                raise UnsupportedOpError(f"trainable tensor '{name}' gets no gradient from the loss")
            done[name] = grads[name]
            on_grad_ready(name, grads[name])

    for node in reversed(forward_nodes):
        dys = [grads.get(o) if o else None for o in node.outputs]
        wants = [bool(i) and i in needs_grad for i in node.inputs]
        if not any(wants):
            continue
        if all(d is None for d in dys):
            for i, w in zip(node.inputs, wants):
                if w:
                    contribute(i, None)
            continue
        op = get_op(node)
        if op.vjp is None:
            raise UnsupportedOpError(f"{node_label(node)}: no gradient rule for {node.op} yet; "
                                     "freeze the layers before it (strategy last-layer or layers=...)")
        gb.node, gb._needs = node, wants
        dxs = op.vjp(node, gb, dys)
        gb.node = None
        # A tensor read twice by one node (Mul(x, x)) gets its parts summed first.
        per_input: dict[str, Optional[str]] = {}
        for i, (name, w) in enumerate(zip(node.inputs, wants)):
            if not w:
                continue
            g = dxs[i] if i < len(dxs) else None
            prev = per_input.get(name)
            per_input[name] = g if prev is None else (prev if g is None else gb.add(prev, g))
        for name, g in per_input.items():
            contribute(name, g)
    missing = [p for p in trainable if p not in done]
    if missing:
        raise UnsupportedOpError(f"trainable tensor(s) {missing} do not influence the loss; "
                                 "choose other layers to train")
    return done
