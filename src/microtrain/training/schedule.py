"""Memory-aware order of the backward pass. Reverse-mode autodiff emits each
rule's nodes in a fixed order (e.g. a Conv's input gradient before its weight
gradient); any topological order is valid, and the order decides which
tensors are alive together. A greedy list scheduler picks, among the ready
nodes, the one that frees the most bytes net of what it allocates (a weight
gradient and its update free the layer's input activation before the input
gradient is allocated). The new order is kept only if the planned peak drops.

State updates stay after every node that reads the state they update."""
from __future__ import annotations

from ..ir import Graph
from ..ops.registry import get_op


def reorder_backward(graph: Graph, n_forward: int) -> Graph:
    nodes = graph.nodes[n_forward:]
    if len(nodes) < 3:
        return graph
    producer = {o: k for k, n in enumerate(nodes) for o in n.outputs if o}
    deps: list[set[int]] = [set() for _ in nodes]
    for k, n in enumerate(nodes):
        deps[k].update(producer[i] for i in n.inputs if i in producer and producer[i] != k)
    # a state update waits for every earlier reader of that state; later readers wait for it
    for k, n in enumerate(nodes):
        for idx in get_op(n).mutates:
            s = n.inputs[idx] if idx < len(n.inputs) else ""
            if not s:
                continue
            for j, m in enumerate(nodes):
                if j != k and s in m.inputs:
                    (deps[k] if j < k else deps[j]).add(j if j < k else k)
    users: dict[str, int] = {}
    for n in nodes:
        for i in set(n.inputs):
            if i:
                users[i] = users.get(i, 0) + 1
    keep = set(graph.outputs) | set(graph.state) | set(graph.constants) | set(graph.inputs)
    order: list[int] = []
    done: set[int] = set()
    remaining = dict(users)
    while len(order) < len(nodes):
        ready = [k for k in range(len(nodes)) if k not in done and deps[k] <= done]
        best = min(ready, key=lambda k: (_net_bytes(graph, nodes[k], remaining, keep), k))
        order.append(best)
        done.add(best)
        for i in set(nodes[best].inputs):
            if i:
                remaining[i] -= 1
    g = graph.copy()
    g.nodes = graph.nodes[:n_forward] + [g.nodes[n_forward + k] for k in order]
    return g


def _net_bytes(graph: Graph, node, remaining: dict, keep: set) -> int:
    op = get_op(node)
    alloc = 0 if op.view else sum(graph.types[o].nbytes for o in node.outputs if o and o in graph.types)
    freed = sum(graph.type_of(i).nbytes for i in set(node.inputs)
                if i and i not in keep and remaining.get(i) == 1)
    return alloc - freed
