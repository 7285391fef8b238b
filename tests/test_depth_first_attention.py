"""Depth-first attention: mt.Attention's C matches its golden model and the
unfused graph; the pass removes every heads x S x S tensor from the plan."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from int_graph import compile_ir
from onnx_check import assert_close, ort_run
from test_fwsa import SMALL, _case
from microtrain.compiler import compile_graph, lower_to_graph
from microtrain.golden import interpret
from microtrain.ir import Graph, Node, TensorType
from microtrain.ops.registry import INTERNAL_DOMAIN
from microtrain.passes.depth_first_attention import depth_first_attention
from microtrain.passes.infer import infer_and_fold

warnings.filterwarnings("ignore", category=UserWarning)

# (Q shape, Kt shape, V shape): heads, ragged S vs block, broadcast Kt (FWSA's X^T), S != T
SHAPES = [((2, 9, 4), (2, 4, 9), (2, 9, 5)),
          ((1, 3, 7, 6), (6, 7), (1, 3, 7, 2)),
          ((2, 5, 3), (2, 3, 11), (1, 11, 4))]


def _attention_graph(qs, ks, vs, block_rows):
    types = {"q": TensorType(qs, np.float32), "k": TensorType(ks, np.float32), "v": TensorType(vs, np.float32)}
    node = Node("mt.Attention", "att", ["q", "k", "v"], ["y"], {"scale": 0.37, "block_rows": block_rows},
                domain=INTERNAL_DOMAIN)
    return infer_and_fold(Graph("att", [node], ["q", "k", "v"], ["y"], types, {}))


@pytest.mark.parametrize("block_rows", [1, 3, 64])
@pytest.mark.parametrize("shapes", SHAPES)
def test_attention_kernel_matches_the_unfused_math(shapes, block_rows):
    rng = np.random.default_rng(block_rows)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    g = _attention_graph(*shapes, block_rows)
    scores = 0.37 * np.matmul(q.astype(np.float64), k)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    want = np.matmul(p / p.sum(-1, keepdims=True), v)
    ref = interpret(g, {"q": q, "k": k, "v": v})["y"]
    assert_close(ref, want, what="golden vs numpy")
    got = compile_ir(g).run({"q": q, "k": k, "v": v})["y"]
    assert_close(got, ref, what="C vs golden")


def _mhsa_graph(s, e, h, p, pv, eo, keys_are_input, block_rows, rng):
    w = {"wq": (h, e, p), "bq": (h, p), "wk": (h, e, p), "bk": (h, p), "wv": (h, e, pv), "bv": (h, pv),
         "wo": (h, pv, eo), "bo": (eo,)}
    consts = {k: (0.3 * rng.standard_normal(shape)).astype(np.float32) for k, shape in w.items()}
    names = [("" if keys_are_input and k in ("wk", "bk") else k) for k in w]
    node = Node("mt.MHSA", "mhsa", ["x"] + names, ["y"],
                {"scale": 0.5, "block_rows": block_rows, "keys_are_input": int(keys_are_input)},
                domain=INTERNAL_DOMAIN)
    g = Graph("mhsa", [node], ["x"], ["y"], {"x": TensorType((s, e), np.float32)},
              {k: v for k, v in consts.items() if k in names})
    return infer_and_fold(g), consts


@pytest.mark.parametrize("keys_are_input", [0, 1])
@pytest.mark.parametrize("block_rows", [1, 4, 32])
def test_mhsa_kernel_matches_per_head_attention(keys_are_input, block_rows):
    s, e, h, pv, eo = 9, 6, 3, 4, 5
    p = e if keys_are_input else 7
    rng = np.random.default_rng(block_rows + keys_are_input)
    g, w = _mhsa_graph(s, e, h, p, pv, eo, keys_are_input, block_rows, rng)
    x = rng.standard_normal((s, e)).astype(np.float32)
    want = w["bo"].astype(np.float64)
    for hd in range(h):   # one head at a time, written out
        q = x @ w["wq"][hd].astype(np.float64) + w["bq"][hd]
        k = x.astype(np.float64) if keys_are_input else x @ w["wk"][hd].astype(np.float64) + w["bk"][hd]
        v = x @ w["wv"][hd].astype(np.float64) + w["bv"][hd]
        sc = 0.5 * q @ k.T
        pr = np.exp(sc - sc.max(1, keepdims=True))
        want = want + (pr / pr.sum(1, keepdims=True)) @ v @ w["wo"][hd]
    ref = interpret(g, {"x": x})["y"]
    assert_close(ref, want, what="golden vs per-head numpy")
    cm = compile_ir(g)
    assert_close(cm.run({"x": x})["y"], ref, what="C vs golden")
    r = min(block_rows, s)
    want_scratch = 4 * ((0 if keys_are_input else s * p) + s * pv + r * (p + s + pv))
    assert 0 <= cm.plan.buffers[cm.plan.scratch["mhsa"]].size - want_scratch < 16   # 16-byte aligned


@pytest.mark.parametrize("name, fwsa", [("mhsa_small", False), ("mhsa_small", True),
                                        ("attention_manual", False), ("encoder_pre_norm", False),
                                        ("encoder_pre_norm", True)])
def test_pass_fuses_the_block_and_keeps_outputs(name, fwsa):
    from microtrain.passes.fwsa import fwsa as fwsa_pass
    proto, x = _case(name)
    base = lower_to_graph(proto)
    if fwsa:
        base = fwsa_pass(base, only_when_cheaper=False)
    g = depth_first_attention(base)
    ops = [n.op for n in g.nodes]
    assert "Softmax" not in ops and ops.count("mt.MHSA") == 1, ops
    assert [n.attr("keys_are_input") for n in g.nodes if n.op == "mt.MHSA"] == [int(fwsa)]
    assert_close(interpret(g, {"input": x})["output"], ort_run(proto, {"input": x})["output"],
                 what="depth-first golden vs onnxruntime")
    cm = compile_graph(g)
    assert_close(cm.run({"input": x})["output"], interpret(g, {"input": x})["output"], what="C vs golden")
    # no tensor holds the S x S map; in the attention-only block none holds all heads' Q
    soft = [n for n in base.nodes if n.op == "Softmax"][0]
    s = base.types[soft.outputs[0]].shape[-1]
    assert all(g.types[o].shape[-2:] != (s, s) for n in g.nodes for o in n.outputs)
    if name == "mhsa_small":
        q_size = base.types[soft.outputs[0]].size // s * SMALL["head_dim"]
        assert max(g.types[o].size for n in g.nodes for o in n.outputs) < q_size
    from microtrain.planner import plan_memory
    layer = plan_memory(base)
    assert cm.plan.arena_bytes <= layer.arena_bytes
    if name == "mhsa_small":   # the block is attention only, so attention sets the peak
        assert cm.plan.arena_bytes < layer.arena_bytes / 2


@pytest.mark.parametrize("name", ["mhsa_small", "encoder_pre_norm"])
def test_without_projection_fusion_the_core_becomes_mt_attention(name):
    proto, x = _case(name)
    base = lower_to_graph(proto)
    g = depth_first_attention(base, fuse_projections=False)
    assert "mt.Attention" in [n.op for n in g.nodes] and "Softmax" not in [n.op for n in g.nodes]
    assert_close(interpret(g, {"input": x})["output"], ort_run(proto, {"input": x})["output"],
                 what="golden vs onnxruntime")
    cm = compile_graph(g)
    assert_close(cm.run({"input": x})["output"], interpret(g, {"input": x})["output"], what="C vs golden")
    soft = [n for n in base.nodes if n.op == "Softmax"][0]
    s = base.types[soft.outputs[0]].shape[-1]
    att = [n for n in g.nodes if n.op == "mt.Attention"][0]
    assert cm.plan.buffers[cm.plan.scratch[att.name]].size == 4 * min(4, s) * s
