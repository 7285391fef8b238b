"""Depth-first multi-head self-attention. For every attention core
(MatMul -> [scalar scale] -> Softmax(last axis) -> MatMul, attention_pattern.py):

* when the Q, K, V projections and the output projection are per-token affine
  maps of one token tensor X (found and checked by probing, as in fwsa.py),
  the whole block becomes one mt.MHSA node: per head, K_h and V_h in scratch,
  then per block of query rows Q -> scores -> softmax -> . V -> accumulated
  output projection. Neither the heads x S x S map nor Q, K, V exist in RAM.
* otherwise the core alone becomes mt.Attention (per head and row block;
  the map does not exist, Q, K, V do).

On a quantized model the integer core (mt.QMatMul -> [mt.QMul] -> ITA/I-BERT
softmax -> mt.QMatMul) becomes mt.QAttention, bit-exact with the chain it
replaces (one query row at a time; the map does not exist, Q, K, V do).

Pure Graph -> Graph; opt-in (`microtrain.compile(..., depth_first=True)`):
these ops have no gradient rule."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import Graph, Node
from ..ops.registry import INTERNAL_DOMAIN
from .attention_pattern import AttentionCore, _only_user, find_attention_cores
from .fwsa import AFFINE_CONST_OPS, AFFINE_VIEW_OPS, Chain, _run_chain, affine_chain, token_affine
from .infer import infer_and_fold

DEFAULT_BLOCK_ROWS = 4


def _output_chain(g: Graph, start: str) -> Optional[tuple[Chain, str]]:
    """The per-token affine ops after the attention context (Transpose,
    Reshape, the output projection...), up to the first other op."""
    users = g.consumers()
    nodes, cur = [], start
    while True:
        node = _only_user(users, g, cur)
        runtime = [i for i in node.inputs if i and i not in g.constants] if node else []
        if node is None or len(node.outputs) != 1 or runtime != [cur] or not (
                node.op in AFFINE_VIEW_OPS - {"Split"} or
                (node.op in AFFINE_CONST_OPS and (node.op not in ("MatMul", "Gemm", "Div")
                                                  or node.inputs[0] == cur))):
            break
        nodes.append(node)
        cur = node.outputs[0]
    return (Chain(start, nodes), cur) if nodes else None


def _output_affine(g: Graph, chain: Chain, z: str, heads: int, s: int, pv: int):
    """(Wo (heads, pv, eo), bo (eo,)) with z[token t] = sum_h ctx[h, t] Wo_h + bo, or None."""
    cshape, zshape = g.types[chain.source].shape, g.types[z].shape
    if len(zshape) < 2 or zshape[-2] != s or int(np.prod(zshape[:-2], dtype=np.int64)) != 1:
        return None

    def run(ctx):   # (heads, s, pv) -> (s, eo)
        return _run_chain(g, chain, z, ctx.reshape(cshape)).reshape(s, zshape[-1])

    zero = run(np.zeros((heads, s, pv)))
    if not np.allclose(zero, zero[:1], rtol=1e-6, atol=1e-6):
        return None
    bo, width = zero[0], heads * pv
    wo = np.zeros((width, zshape[-1]))
    for start in range(0, width, s):
        idx = np.arange(start, min(start + s, width))
        ctx = np.zeros((s, width))
        ctx[np.arange(idx.size), idx] = 1.0
        wo[idx] = run(np.transpose(ctx.reshape(s, heads, pv), (1, 0, 2)))[:idx.size] - bo
    wo = wo.reshape(heads, pv, -1)
    rand = np.random.default_rng(1).standard_normal((heads, s, pv))
    want = run(rand)
    got = np.einsum("hsp,hpo->so", rand, wo) + bo
    return (wo, bo) if np.max(np.abs(got - want)) <= 1e-4 * max(1.0, float(np.max(np.abs(want)))) else None


def _fuse_block(g: Graph, core: AttentionCore, block_rows: int) -> Optional[list[Node]]:
    a, b = core.scores.inputs
    v = core.context.inputs[1]
    lead = g.types[a].shape[:-2]
    heads = int(np.prod(lead, dtype=np.int64))
    chains = [affine_chain(g, t) for t in (a, b, v)]
    out = _output_chain(g, core.context.outputs[0])
    if any(c is None for c in chains) or out is None or len({c.source for c in chains}) != 1:
        return None
    x = chains[0].source
    if len(g.types[x].shape) < 2:
        return None
    s, e = g.types[x].shape[-2:]
    pv = g.types[v].shape[-1]
    maps = []
    for c, t, axis in zip(chains, (a, b, v), (-2, -1, -2)):
        own = int(np.prod(g.types[t].shape[:-2], dtype=np.int64))   # 1: shared by all heads (FWSA's X^T)
        if own not in (1, heads):
            return None
        m = token_affine(g, c, t, axis, own)
        maps.append(None if m is None else tuple(np.repeat(w, heads // own, axis=0) for w in m))
    q, k, vv = maps
    o = _output_affine(g, out[0], out[1], heads, s, pv)
    if q is None or k is None or vv is None or o is None:
        return None
    keys_are_x = k[0].shape == (heads, e, e) and np.allclose(k[0], np.eye(e)) and not np.any(k[1])
    prefix = core.scores.name + "/mhsa"
    consts = {"wq": q[0], "bq": q[1], "wk": k[0], "bk": k[1], "wv": vv[0], "bv": vv[1], "wo": o[0], "bo": o[1]}
    names = {}
    for key, val in consts.items():
        if keys_are_x and key in ("wk", "bk"):
            names[key] = ""
            continue
        names[key] = f"{prefix}/{key}"
        g.constants[names[key]] = np.ascontiguousarray(val, dtype=np.float32)
    shape2 = f"{prefix}/x_shape"
    g.constants[shape2] = np.array([s, e], np.int64)
    g.constants[f"{prefix}/y_shape"] = np.array(g.types[out[1]].shape, np.int64)
    x2, y2 = f"{prefix}/x", f"{prefix}/y"
    return [Node("Reshape", f"{prefix}/reshape_x", [x, shape2], [x2], opset=g.opset),
            Node("mt.MHSA", prefix, [x2] + [names[k] for k in consts], [y2],
                 {"scale": core.scale, "block_rows": int(block_rows), "keys_are_input": int(keys_are_x)},
                 domain=INTERNAL_DOMAIN),
            Node("Reshape", f"{prefix}/reshape_y", [y2, f"{prefix}/y_shape"], [out[1]], opset=g.opset)]


INT_SOFTMAX = ("mt.ITASoftmax", "mt.IBertSoftmax")


def _int8_cores(g: Graph):
    """mt.QMatMul(q, kt) -> [mt.QMul by a scalar constant] -> integer softmax
    -> mt.QMatMul(probs, v), each intermediate read once."""
    users = g.consumers()
    for mm in g.nodes:
        if mm.op != "mt.QMatMul" or mm.inputs[0] in g.constants or mm.inputs[1] in g.constants:
            continue
        chain, node = [mm], _only_user(users, g, mm.outputs[0])
        if node is not None and node.op == "mt.QMul" and node.inputs[0] == mm.outputs[0] \
                and node.inputs[1] in g.constants and g.constants[node.inputs[1]].size == 1:
            chain.append(node)
            node = _only_user(users, g, node.outputs[0])
        if node is None or node.op not in INT_SOFTMAX or not node.attr("signed_output", 0):
            continue
        chain.append(node)
        ctx = _only_user(users, g, node.outputs[0])
        if ctx is None or ctx.op != "mt.QMatMul" or ctx.inputs[0] != node.outputs[0] or ctx.inputs[1] in g.constants:
            continue
        yield chain + [ctx]


def _fuse_int8(g: Graph, chain: list[Node]) -> Node:
    mm, *mid, ctx = chain
    scale = mid[0] if len(mid) == 2 else None
    soft = mid[-1]
    attrs = {f"s_{k}": v for k, v in mm.attrs.items()}
    attrs.update({f"c_{k}": v for k, v in ctx.attrs.items()})
    attrs.update({f"p_{k}": v for k, v in soft.attrs.items()})
    attrs["p_op"] = soft.op
    if scale is not None:
        attrs.update({f"m_{k}": v for k, v in scale.attrs.items()})
    inputs = [mm.inputs[0], mm.inputs[1], ctx.inputs[1], mm.inputs[2], mm.inputs[3],
              scale.inputs[1] if scale is not None else "", ctx.inputs[2], ctx.inputs[3]]
    return Node("mt.QAttention", mm.name + "/depth_first", inputs, [ctx.outputs[0]], attrs,
                domain=INTERNAL_DOMAIN)


def depth_first_attention(graph: Graph, *, block_rows: int = DEFAULT_BLOCK_ROWS,
                          fuse_projections: bool = True) -> Graph:
    g = graph.copy()
    for chain in list(_int8_cores(g)):     # quantized models: the integer core
        fused = _fuse_int8(g, chain)
        drop = {id(n) for n in chain}
        g.nodes[g.nodes.index(chain[-1])] = fused
        g.nodes = [n for n in g.nodes if id(n) not in drop or n is fused]
    for core in find_attention_cores(g):
        block = _fuse_block(g, core, block_rows) if fuse_projections else None
        if block is not None:
            last = _output_chain(g, core.context.outputs[0])[0].nodes[-1]
            at = g.nodes.index(last)
            g.nodes[at:at + 1] = block
            continue
        q, kt = core.scores.inputs
        fused = Node("mt.Attention", core.scores.name + "/depth_first",
                     [q, kt, core.context.inputs[1]], [core.context.outputs[0]],
                     {"scale": core.scale, "block_rows": int(block_rows)}, domain=INTERNAL_DOMAIN)
        drop = {id(n) for n in core.nodes}
        g.nodes[g.nodes.index(core.context)] = fused
        g.nodes = [n for n in g.nodes if id(n) not in drop or n is fused]
    from .cleanup import eliminate_dead
    return infer_and_fold(eliminate_dead(g))
