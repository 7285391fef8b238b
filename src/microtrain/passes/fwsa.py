"""Fused-Weight Self-Attention (Tiny Transformers on MCUs, Jung et al. 2024).

Per head h, the scores Q_h K_h^T with Q_h = X W_q,h + b_q,h, K_h = X W_k,h + b_k,h
expand to  X W_q W_k^T X^T + b_q W_k^T X^T + (terms constant along a softmax row).
The softmax over a row is invariant to adding a constant to the row, so

    scores_h ~ (X W_h + B_h) X^T,   W_h = W_q,h W_k,h^T (E x E),  B_h = W_k,h b_q,h

gives the same probabilities with one E x E matrix per head instead of two
E x P projections. Per head it costs S E^2 + S^2 E MACs instead of
2 S E P + S^2 P, so the pass rewrites a layer only where E(E+S) < P(2E+S).

The projections are recognized by what they compute, not by node names: the
chain from the token tensor X (the nearest tensor that is not an affine
function of one other run-time tensor: a LayerNorm output, a graph input) to
A and B is evaluated with the golden model on basis inputs, which gives W and
b, and then checked on a random X (so anything that mixes tokens or is not
affine is left alone). This covers nn.MultiheadAttention's fused in_proj +
Gather export as well as separate q/k Linears + Reshape/Transpose and fused
qkv + Slice. When V shares a projection with Q/K (fused qkv), V gets its own
X W_v + b_v so the old projection dies."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..golden import interpret
from ..ir import Graph, Node, TensorType
from .attention_pattern import AttentionCore, find_attention_cores
from .cleanup import eliminate_dead
from .infer import infer_and_fold

AFFINE_VIEW_OPS = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity",
                   "Gather", "Slice", "Split"}
AFFINE_CONST_OPS = {"Mul", "Div", "Add", "Sub", "MatMul", "Gemm"}


def fwsa_beneficial(s: int, e: int, p: int) -> bool:
    """E(E+S) < P(2E+S): the fused form needs fewer MACs per head."""
    return e * (e + s) < p * (2 * e + s)


@dataclass
class Chain:
    source: str            # the token tensor X
    nodes: list[Node]      # X -> target, in graph order


def affine_chain(g: Graph, target: str) -> Optional[Chain]:
    producers = g.producers()
    chain, frontier, source = [], [target], None
    while frontier:
        name = frontier.pop()
        node = producers.get(name)
        runtime = [i for i in node.inputs if i and i not in g.constants] if node else []
        ok = node is not None and len(runtime) == 1 and (
            node.op in AFFINE_VIEW_OPS or
            (node.op in AFFINE_CONST_OPS and (node.op not in ("MatMul", "Gemm", "Div") or
                                              node.inputs[0] == runtime[0])))
        if not ok:
            if source not in (None, name):
                return None
            source = name
            continue
        if node not in chain:
            chain.append(node)
            frontier.append(runtime[0])
    if source is None or source == target:
        return None
    order = {id(n): k for k, n in enumerate(g.nodes)}
    return Chain(source, sorted(chain, key=lambda n: order[id(n)]))


def _run_chain(g: Graph, chain: Chain, target: str, x: np.ndarray) -> np.ndarray:
    sub = Graph("fwsa_probe", chain.nodes, [chain.source], [target],
                {k: v for k, v in g.types.items()}, g.constants, g.opset)
    return interpret(sub, {chain.source: x.astype(np.float32)})[target].astype(np.float64)


def token_affine(g: Graph, chain: Chain, target: str, token_axis: int, heads: int):
    """(W (heads, E, P), c (heads, P)) with target[h, token s] = X[s] W_h + c_h,
    or None when the chain is not that per-token affine map."""
    xshape = g.types[chain.source].shape
    s, e = xshape[-2], xshape[-1]
    if int(np.prod(xshape[:-2], dtype=np.int64)) != 1:
        return None

    def rows(x):   # target as (heads, S, P)
        t = _run_chain(g, chain, target, x)
        t = np.moveaxis(t, token_axis, -2)
        return t.reshape(heads, t.shape[-2], t.shape[-1]) if t.shape[-2] == s else None

    zero = rows(np.zeros(xshape))
    if zero is None or not np.allclose(zero, zero[:, :1], rtol=1e-6, atol=1e-6):
        return None                        # the offset differs between tokens
    c = zero[:, 0]
    w = np.zeros((heads, e, zero.shape[-1]))
    for start in range(0, e, s):           # S basis vectors per evaluation, one per token
        x = np.zeros((s, e))
        idx = np.arange(start, min(start + s, e))
        x[np.arange(idx.size), idx] = 1.0
        probe = rows(x.reshape(xshape))
        w[:, idx] = probe[:, :idx.size] - c[:, None]
    xr = np.random.default_rng(0).standard_normal((s, e))
    want = rows(xr.reshape(xshape))
    got = np.einsum("se,hep->hsp", xr, w) + c[:, None]
    tol = 1e-4 * max(1.0, float(np.max(np.abs(want))))
    return (w, c) if np.max(np.abs(got - want)) <= tol else None


class _Builder:
    def __init__(self, g: Graph, prefix: str):
        self.g, self.prefix, self.nodes, self.k = g, prefix, [], 0

    def const(self, value: np.ndarray) -> str:
        name = f"{self.prefix}/c{self.k}"
        self.k += 1
        self.g.constants[name] = value
        return name

    def node(self, op: str, inputs: list[str], attrs=None, out: Optional[str] = None) -> str:
        out = out or f"{self.prefix}/{op}{self.k}"
        self.k += 1
        self.nodes.append(Node(op, f"{self.prefix}/{op}{self.k}", inputs, [out], attrs or {},
                               opset=self.g.opset))
        return out

    def reshape(self, x: str, shape) -> str:
        return self.node("Reshape", [x, self.const(np.asarray(shape, dtype=np.int64))])

    def heads_of(self, x2: str, w: np.ndarray, c: np.ndarray, lead: tuple) -> str:
        """X (S, E) -> per-head X W_h + c_h, shaped lead + (S, width)."""
        heads, e, width = w.shape
        wcat = np.ascontiguousarray(np.transpose(w, (1, 0, 2)).reshape(e, heads * width), np.float32)
        y = self.node("MatMul", [x2, self.const(wcat)])
        if np.any(c):
            y = self.node("Add", [y, self.const(c.reshape(-1).astype(np.float32))])
        s = self.g.types[x2].shape[0]
        y = self.node("Transpose", [self.reshape(y, (s, heads, width))], {"perm": [1, 0, 2]})
        return self.reshape(y, tuple(lead) + (s, width))


def _rewrite(g: Graph, core: AttentionCore, only_when_cheaper: bool) -> Optional[list[Node]]:
    a, b = core.scores.inputs
    v = core.context.inputs[1]
    ashape, bshape = g.types[a].shape, g.types[b].shape
    lead = ashape[:-2]
    heads = int(np.prod(lead, dtype=np.int64))
    ca, cb = affine_chain(g, a), affine_chain(g, b)
    if ca is None or cb is None or ca.source != cb.source or bshape[:-2] != lead:
        return None
    s, e = g.types[ca.source].shape[-2:]
    p = ashape[-1]
    if ashape[-2] != s or bshape[-1] != s or (only_when_cheaper and not fwsa_beneficial(s, e, p)):
        return None
    qa, kb = token_affine(g, ca, a, -2, heads), token_affine(g, cb, b, -1, heads)
    if qa is None or kb is None:
        return None
    (wq, bq), (wk, _) = qa, kb      # b_k only adds row constants: dropped
    fused = np.einsum("hep,hfp->hef", wq, wk)          # W_q,h W_k,h^T
    bias = np.einsum("hfp,hp->hf", wk, bq)             # W_k,h b_q,h
    bld = _Builder(g, core.scores.name + "/fwsa")
    x2 = bld.reshape(ca.source, (s, e))
    g.types[x2] = TensorType((s, e), np.float32)
    xt = bld.node("Transpose", [x2], {"perm": [1, 0]})
    y = bld.heads_of(x2, fused, bias, lead)
    bld.node("MatMul", [y, xt], out=core.scores.outputs[0])
    # V keeps its own projection unless it shares nodes with the Q/K chains.
    cv = affine_chain(g, v)
    shared = cv is not None and any(n in ca.nodes or n in cb.nodes for n in cv.nodes)
    if shared:
        vv = token_affine(g, cv, v, -2, int(np.prod(g.types[v].shape[:-2], dtype=np.int64)))
        if cv.source != ca.source or vv is None:
            return None
        core.context.inputs[1] = bld.heads_of(x2, vv[0], vv[1], g.types[v].shape[:-2])
    return bld.nodes


def fwsa(graph: Graph, *, only_when_cheaper: bool = True) -> Graph:
    """Rewrite every recognized attention layer to fused-weight form (where it
    lowers MACs, unless only_when_cheaper=False). Softmax probabilities are
    unchanged up to float rounding; the pre-softmax scores are not."""
    g = graph.copy()
    for core in find_attention_cores(g):
        new = _rewrite(g, core, only_when_cheaper)
        if new is None:
            continue
        at = g.nodes.index(core.scores)
        g.nodes[at:at + 1] = new
    return infer_and_fold(eliminate_dead(g))


def macs_and_params(graph: Graph) -> tuple[int, int]:
    """(MACs of all nodes, elements of the float constants they read): the
    before/after numbers of an FWSA rewrite."""
    from ..ops.registry import get_op
    from .infer import value_of
    macs, weights = 0, set()
    for node in graph.nodes:
        op = get_op(node)
        ins = [value_of(graph, i) for i in node.inputs]
        if op.macs:
            macs += int(op.macs(node, ins, [graph.types[o] for o in node.outputs if o]))
        weights.update(i for i in node.inputs
                       if i in graph.constants and graph.constants[i].dtype.kind == "f")
    return macs, sum(graph.constants[w].size for w in weights)
