"""Depth-first attention: mt.Attention's C matches its golden model and the
unfused graph; the pass removes every heads x S x S tensor from the plan."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from int_graph import compile_ir
from onnx_check import assert_close, ort_run
from test_fwsa import _case
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


@pytest.mark.parametrize("name, fwsa", [("mhsa_small", False), ("mhsa_small", True),
                                        ("attention_manual", False), ("encoder_pre_norm", False)])
def test_pass_keeps_outputs_and_drops_the_attention_map(name, fwsa):
    proto, x = _case(name)
    base = lower_to_graph(proto, fwsa=fwsa)
    g = depth_first_attention(base)
    assert "Softmax" not in [n.op for n in g.nodes] and "mt.Attention" in [n.op for n in g.nodes]
    assert_close(interpret(g, {"input": x})["output"], ort_run(proto, {"input": x})["output"],
                 what="depth-first golden vs onnxruntime")
    cm = compile_graph(g)
    assert_close(cm.run({"input": x})["output"], interpret(g, {"input": x})["output"], what="C vs golden")
    # no tensor of the rewritten graph has the S x S map's shape; scratch is one block
    soft = [n for n in base.nodes if n.op == "Softmax"][0]
    s = base.types[soft.outputs[0]].shape[-1]
    assert all(g.types[o].shape[-2:] != (s, s) for n in g.nodes for o in n.outputs)
    att = [n for n in g.nodes if n.op == "mt.Attention"][0]
    assert cm.plan.buffers[cm.plan.scratch[att.name]].size == 4 * min(4, s) * s
    from microtrain.planner import plan_memory
    layer = plan_memory(base)
    assert cm.plan.arena_bytes <= layer.arena_bytes
    if name == "mhsa_small":   # the block is attention only, so the map sets the peak
        assert cm.plan.arena_bytes < layer.arena_bytes
