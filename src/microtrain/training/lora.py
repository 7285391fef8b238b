"""LoRA: low-rank adapters beside frozen weights. For a layer y = f(x; W) with
a constant W the graph becomes y = f(x; W) + (alpha / r) * B(A(x)), where only
A and B train (A: small random init, B: zeros, so training starts from the
pretrained function). W stays const data (flash on an MCU); adapters, their
gradients and optimizer state are the only training RAM besides activations.

* MatMul(x, W[K, N]):        A[K, r], B[r, N]           (MatMul x@A@B)
* Gemm(x, W, transB):        the same, merged into W or Wᵀ
* Conv(x, W[O, I, k...]):    A = Conv(I -> r, same kernel/stride/pads/dilations),
                             B = 1x1 Conv(r -> O)       (groups must be 1)
`merge_weights` folds W + (alpha/r)·(A·B) back for inference export."""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import MicrotrainError
from ..ir import Graph, Node


@dataclass
class Adapter:
    layer: str          # node name
    op: str
    weight: str         # base weight initializer
    a: str
    b: str
    scale: float
    trans_b: bool = False


@dataclass
class LoraPlan:
    rank: int
    alpha: float
    adapters: list[Adapter] = field(default_factory=list)
    base: dict[str, np.ndarray] = field(default_factory=dict)


def _targets(graph: Graph, patterns) -> list[Node]:
    cands = []
    for n in graph.nodes:
        if n.op in ("MatMul", "Gemm") and len(n.inputs) > 1 and n.inputs[1] in graph.constants \
                and graph.constants[n.inputs[1]].ndim == 2 and n.inputs[0] not in graph.constants:
            if n.op == "Gemm" and n.attr("transA", 0):
                continue
            cands.append(n)
        elif n.op == "Conv" and n.inputs[1] in graph.constants and n.attr("group", 1) == 1:
            cands.append(n)
    if patterns:
        pats = [p.strip() for p in (patterns.split(",") if isinstance(patterns, str) else patterns) if p.strip()]
        cands = [n for n in cands if any(fnmatch.fnmatchcase(n.name, p) or fnmatch.fnmatchcase(n.inputs[1], p)
                                         for p in pats)]
    elif any(n.op in ("MatMul", "Gemm") for n in cands):
        cands = [n for n in cands if n.op in ("MatMul", "Gemm")]   # default: the linear layers
    return cands


def add_lora(graph: Graph, *, rank: int = 4, alpha: float = 8.0, targets=None, seed: int = 0):
    if rank < 1:
        raise MicrotrainError(f"lora_rank={rank} must be >= 1")
    g = graph.copy()
    nodes = _targets(g, targets)
    if not nodes:
        raise MicrotrainError("strategy 'lora' found no Gemm/MatMul/Conv with a constant weight"
                              + (f" matching {targets}" if targets else ""))
    rng = np.random.default_rng(seed)
    plan = LoraPlan(rank, alpha)
    scale = alpha / rank
    new_nodes: list[Node] = []
    targets_ids = {id(n) for n in nodes}
    for n in g.nodes:
        if id(n) not in targets_ids:
            new_nodes.append(n)
            continue
        w_name = n.inputs[1]
        w = g.constants[w_name]
        x = n.inputs[0]
        y = n.outputs[0]
        base_out = f"{y}__base"
        n.outputs = [base_out] + n.outputs[1:]
        new_nodes.append(n)
        a_name, b_name = f"{n.name}.lora_A", f"{n.name}.lora_B"
        pre = f"{n.name}/lora"
        if n.op == "Conv":
            o, i = w.shape[0], w.shape[1]
            fan_in = i * int(np.prod(w.shape[2:]))
            g.constants[a_name] = _kaiming_uniform(rng, (rank, i, *w.shape[2:]), fan_in)
            g.constants[b_name] = np.zeros((o, rank) + (1,) * (w.ndim - 2), np.float32)
            conv_attrs = {k: v for k, v in n.attrs.items() if k != "group"}
            new_nodes += [Node("Conv", f"{pre}_A", [x, a_name], [f"{pre}_a"], conv_attrs, n.opset),
                          Node("Conv", f"{pre}_B", [f"{pre}_a", b_name], [f"{pre}_b"], {}, n.opset)]
            trans_b = False
        else:
            trans_b = n.op == "Gemm" and bool(n.attr("transB", 0))
            k, out = (w.shape[1], w.shape[0]) if trans_b else w.shape
            g.constants[a_name] = _kaiming_uniform(rng, (k, rank), k)
            g.constants[b_name] = np.zeros((rank, out), np.float32)
            new_nodes += [Node("MatMul", f"{pre}_A", [x, a_name], [f"{pre}_a"], {}, n.opset),
                          Node("MatMul", f"{pre}_B", [f"{pre}_a", b_name], [f"{pre}_b"], {}, n.opset)]
        s_name = f"{pre}_scale"
        g.constants[s_name] = np.array(scale, np.float32)
        new_nodes += [Node("Mul", f"{pre}_scaled", [f"{pre}_b", s_name], [f"{pre}_s"], {}, n.opset),
                      Node("Add", f"{pre}_add", [base_out, f"{pre}_s"], [y], {}, n.opset)]
        plan.adapters.append(Adapter(n.name, n.op, w_name, a_name, b_name, scale, trans_b))
        plan.base[w_name] = w
    g.nodes = new_nodes
    from ..passes.infer import infer_and_fold
    g = infer_and_fold(g)
    trainable = [n for a in plan.adapters for n in (a.a, a.b)]
    return g, trainable, plan


def _kaiming_uniform(rng, shape, fan_in) -> np.ndarray:
    # PyTorch's default Linear/Conv init (kaiming_uniform with a = sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def merge_weights(plan: LoraPlan, trained: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Base weights with the adapters folded in: W + scale · (A·B) in W's layout."""
    merged = {}
    for ad in plan.adapters:
        w = plan.base[ad.weight].astype(np.float64)
        a, b = trained[ad.a].astype(np.float64), trained[ad.b].astype(np.float64)
        if ad.op == "Conv":
            delta = np.einsum("or,ri...->oi...", b.reshape(b.shape[0], b.shape[1]), a)
        else:
            delta = a @ b
            if ad.trans_b:
                delta = delta.T
        merged[ad.weight] = (w + ad.scale * delta).astype(np.float32)
    return merged
