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
                          fuse_projections: bool = True, always_fuse_blocks: bool = False) -> Graph:
    """`always_fuse_blocks`: make mt.QMHSA even where its CPU scratch is not
    smaller (an accelerator target runs the block, passes/map_to_ita.py)."""
    g = graph.copy()
    for chain in list(_int8_cores(g)):     # quantized models: the integer core
        fused = _fuse_int8(g, chain)
        drop = {id(n) for n in chain}
        g.nodes[g.nodes.index(chain[-1])] = fused
        g.nodes = [n for n in g.nodes if id(n) not in drop or n is fused]
        if fuse_projections:               # ... and with its projections, when they are recognized
            block = _fuse_int8_block(g, fused, always_fuse_blocks)
            if block is not None:
                drop_nodes, new = block
                last = max(g.nodes.index(n) for n in drop_nodes)
                g.nodes[last:last + 1] = new
                ids = {id(n) for n in drop_nodes}
                g.nodes = [n for n in g.nodes if id(n) not in ids]
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


# ---- int8: the whole block (projections + core) -> mt.QMHSA -----------------------

VIEWS = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity")
# Backwards from q/k/v to their projection, constant Slices and Gathers too (a
# fused qkv Linear: CCT slices it, nn.MultiheadAttention gathers from it):
# probing finds each head's columns of the fused W.
SPLITS = ("Slice", "Gather")
PROJECTION_VIEWS = VIEWS + SPLITS


def _run_views(g: Graph, views: list[Node], x: np.ndarray) -> np.ndarray:
    from ..ops.registry import get_op
    for v in views:
        x = get_op(v).reference(v, [x] + [g.constants.get(i) for i in v.inputs[1:]])[0]
    return x


def _int8_projection(g: Graph, t: str):
    """Back from t through single-use views to QMatMul(X, W const) [-> QAdd(const bias)]:
    (views in order, qmatmul, qadd or None, projection output)."""
    producers, users = g.producers(), g.consumers()
    views, cur = [], t
    while cur in producers and producers[cur].op in PROJECTION_VIEWS:
        step = producers[cur]
        views.insert(0, step)
        cur = step.inputs[0]
        # a fused qkv projection feeds three splits (checked to be this block's in _fuse_int8_block)
        shared_by_slices = step.op in SPLITS and all(u.op == step.op for u in users.get(cur, []))
        if (len(users.get(cur, [])) != 1 and not shared_by_slices) or cur in g.outputs:
            return None
    node = producers.get(cur)
    qadd = None
    if node is not None and node.op == "mt.QAdd":
        consts = [i for i in node.inputs if i in g.constants]
        runtime = [i for i in node.inputs if i not in g.constants]
        if len(consts) != 1 or len(runtime) != 1 or len(users.get(runtime[0], [])) != 1:
            return None
        qadd, node = node, producers.get(runtime[0])
    if node is None or node.op != "mt.QMatMul" or node.inputs[1] not in g.constants \
            or node.inputs[0] in g.constants:
        return None
    return views, node, qadd, cur


def _columns(g: Graph, views, proj_out: str, token_axis: int):
    """For the tensor the views make from proj_out (1, S, N): col[h, p] of
    each head element, checking tokens map to tokens; None otherwise."""
    shape = g.types[proj_out].shape     # tokens: every row, (S, 1, N) as well as (1, S, N)
    if len(shape) < 2:
        return None
    s, n = int(np.prod(shape[:-1], dtype=np.int64)), shape[-1]
    idx = _run_views(g, views, np.arange(s * n, dtype=np.float64).reshape(shape)).astype(np.int64)
    idx = np.moveaxis(idx, token_axis, -2)
    idx = idx.reshape(-1, idx.shape[-2], idx.shape[-1])          # (H, S, P)
    if idx.shape[1] != s or np.any(idx // n != np.arange(s)[None, :, None]):
        return None
    cols = idx % n
    return cols[:, 0, :] if np.all(cols == cols[:, :1, :]) else None


def _proj_attrs(g: Graph, j: str, mm: Node, qadd, cols: np.ndarray, rows_of_w=None) -> dict:
    w = g.constants[mm.inputs[1]].astype(np.int8)
    n = w.shape[-1]
    full = lambda v, dt: np.broadcast_to(np.asarray(v).reshape(-1), (n,)).astype(dt)
    mul, add = full(g.constants[mm.inputs[2]], np.int32), full(g.constants[mm.inputs[3]], np.int64)
    a = {f"{j}_azp": int(mm.attr("a_zero_point", 0)), f"{j}_bzp": int(mm.attr("b_zero_point", 0)),
         f"{j}_shift": int(mm.attr("shift", 0)), f"{j}_lo": int(mm.attr("lo", -128)), f"{j}_hi": int(mm.attr("hi", 127))}
    if rows_of_w is None:       # q, k, v: head columns of W
        a[f"{j}_w"] = np.ascontiguousarray(np.transpose(w[:, cols], (1, 0, 2)))      # (H, E, P)
        sel = cols.reshape(-1)
    else:                       # o: head rows of W, every column
        a[f"{j}_w"] = np.ascontiguousarray(w[rows_of_w])                             # (H, Pv, Eo)
        sel = np.arange(n)
    a[f"{j}_mul"], a[f"{j}_add"] = mul[sel], add[sel]
    a[f"{j}_has_bias"] = int(qadd is not None)
    if qadd is not None:
        bias_is_a = qadd.inputs[0] in g.constants
        bias = full(g.constants[qadd.inputs[0 if bias_is_a else 1]], np.int64)
        zb = int(qadd.attr("a_zero_point" if bias_is_a else "b_zero_point", 0))
        mb = int(qadd.attr("a_mul" if bias_is_a else "b_mul", 1))
        a.update({f"{j}_bz": int(qadd.attr("b_zero_point" if bias_is_a else "a_zero_point", 0)),
                  f"{j}_bm": int(qadd.attr("b_mul" if bias_is_a else "a_mul", 1)),
                  f"{j}_bconst": ((bias - zb) * mb + int(qadd.attr("add", 0)))[sel],
                  f"{j}_bshift": int(qadd.attr("shift", 0)), f"{j}_blo": int(qadd.attr("lo", -128)),
                  f"{j}_bhi": int(qadd.attr("hi", 127))})
    return a


def _fuse_int8_block(g: Graph, att: Node, always: bool = False):
    """mt.QAttention with its projections -> (nodes to drop, new nodes), or None."""
    users = g.consumers()
    parts = [_int8_projection(g, t) for t in att.inputs[:3]]
    if any(p is None for p in parts) or len({p[1].inputs[0] for p in parts}) != 1:
        return None
    in_block = {id(v) for p in parts for v in p[0]}
    if any(id(u) not in in_block for p in parts for v in p[0] for u in users.get(v.inputs[0], [])):
        return None                 # a shared (fused) projection read outside this block
    if any(v.op in SPLITS and any(i and i not in g.constants for i in v.inputs[1:])
           for p in parts for v in p[0]):
        return None
    x = parts[0][1].inputs[0]
    xshape = g.types[x].shape          # the projections are per row: all leading axes are tokens
    if len(xshape) < 2:
        return None
    s, e = int(np.prod(xshape[:-1], dtype=np.int64)), xshape[-1]
    cols = [_columns(g, p[0], p[3], axis) for p, axis in zip(parts, (-2, -1, -2))]
    if any(c is None for c in cols):
        return None
    # forward: context -> views -> QMatMul(., Wo) [-> QAdd bias]
    views, cur = [], att.outputs[0]
    while True:
        u = users.get(cur, [])
        if len(u) != 1 or cur in g.outputs:
            return None
        if u[0].op not in VIEWS:
            break
        views.append(u[0])
        cur = u[0].outputs[0]
    out_mm = users[cur][0]
    if out_mm.op != "mt.QMatMul" or out_mm.inputs[0] != cur or out_mm.inputs[1] not in g.constants:
        return None
    end, out_add = out_mm.outputs[0], None
    u = users.get(end, [])
    if len(u) == 1 and u[0].op == "mt.QAdd" and end not in g.outputs and \
            sum(i in g.constants for i in u[0].inputs) == 1:
        out_add, end = u[0], u[0].outputs[0]
    cshape = g.types[att.outputs[0]].shape                    # (..., H, S, Pv)
    h, pv = int(np.prod(cshape[:-2], dtype=np.int64)), cshape[-1]
    flat = _run_views(g, views, np.arange(h * s * pv, dtype=np.float64).reshape(cshape)).astype(np.int64)
    k_in = g.constants[out_mm.inputs[1]].shape[0]
    flat = flat.reshape(-1, k_in)
    if flat.shape[0] != s or np.any((flat // pv) % s != np.arange(s)[:, None]):
        return None
    hc = flat[0] - 0                                           # element index of token 0
    heads_of, ch_of = hc // (s * pv), hc % pv
    rows = np.zeros((h, pv), np.int64)
    rows[heads_of, ch_of] = np.arange(k_in)
    if sorted(rows.reshape(-1).tolist()) != list(range(k_in)):
        return None
    # Worth it only if the kernel's scratch (int32 output accumulator, one head's
    # K/V) is smaller than the int8 Q, K, V and scores it removes (not for CCT's
    # E = 128, 2 heads: the S x E int32 accumulator outweighs them).
    p_dim, eo = cols[0].shape[1], g.constants[out_mm.inputs[1]].shape[-1]
    scratch = 4 * s * eo + s * p_dim + s * pv + p_dim + s + pv
    removed = sum(g.types[t].size for t in att.inputs[:3]) + h * s * s
    if scratch >= removed and not always:
        return None
    attrs = {k: v for k, v in att.attrs.items()}
    for j, (views_j, mm, qadd, _), c in zip("qkv", parts, cols):
        attrs.update(_proj_attrs(g, j, mm, qadd, c))
    attrs.update(_proj_attrs(g, "o", out_mm, out_add, None, rows_of_w=rows))
    attrs.update({"core_s_mul": g.constants[att.inputs[3]], "core_s_add": g.constants[att.inputs[4]],
                  "core_c_mul": g.constants[att.inputs[6]], "core_c_add": g.constants[att.inputs[7]]})
    if att.inputs[5]:
        attrs["core_m_b"] = g.constants[att.inputs[5]]
    prefix = att.name + "/qmhsa"
    g.constants[prefix + "/x_shape"] = np.array([s, e], np.int64)
    g.constants[prefix + "/y_shape"] = np.array(g.types[end].shape, np.int64)
    new = [Node("Reshape", prefix + "/reshape_x", [x, prefix + "/x_shape"], [prefix + "/x"], opset=g.opset),
           Node("mt.QMHSA", prefix, [prefix + "/x"], [prefix + "/y"], attrs, domain=INTERNAL_DOMAIN),
           Node("Reshape", prefix + "/reshape_y", [prefix + "/y", prefix + "/y_shape"], [end], opset=g.opset)]
    drop = [n for p in parts for n in (*p[0], p[1], p[2]) if n is not None] + [att, *views, out_mm]
    if out_add is not None:
        drop.append(out_add)
    return drop, new
