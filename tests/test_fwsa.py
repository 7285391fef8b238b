"""FWSA pass: the rewritten float graph gives the original's outputs (golden
model vs onnxruntime on the original; C vs golden), only where it pays off,
with the MAC/parameter change the closed-form cost model predicts."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from onnx_check import assert_close, ort_run
from test_models import build as build_test_model
from microtrain import from_torch
from microtrain.compiler import compile_graph, lower_to_graph
from microtrain.golden import interpret
from microtrain.models import mhsa
from microtrain.passes.fwsa import fwsa, fwsa_beneficial, macs_and_params

warnings.filterwarnings("ignore", category=UserWarning)

SMALL = dict(tokens=20, dim=16, heads=2, head_dim=16)      # E(E+S) = 576 < P(2E+S) = 832


def _small_mhsa(seed=0):
    module = mhsa.build(seed, **SMALL)
    with torch.no_grad():   # non-zero biases: the b_q term must survive, the b_k terms drop
        for lin in (module.q, module.k, module.v):
            lin.bias.normal_(0, 0.5)
    x = np.random.default_rng(seed).standard_normal(mhsa.input_shape(**SMALL)).astype(np.float32)
    return from_torch(module, torch.from_numpy(x)), x


def _case(name):
    if name == "mhsa_small":
        return _small_mhsa()
    _, proto, x = build_test_model(name)
    return proto, x


def _fused_constants(g):
    return [c for c in g.constants if "/fwsa/" in c]


@pytest.mark.parametrize("name", ["mhsa_small", "attention_manual", "encoder_pre_norm", "encoder_post_norm"])
def test_rewrite_matches_the_original(name):
    proto, x = _case(name)
    g = lower_to_graph(proto)
    g2 = fwsa(g, only_when_cheaper=False)
    assert _fused_constants(g2), "no attention layer was rewritten"
    want = ort_run(proto, {"input": x})["output"]
    assert_close(interpret(g2, {"input": x})["output"], want, 1e-4, 1e-5, "FWSA golden vs onnxruntime")


def test_scores_change_but_probabilities_do_not():
    """The dropped b_k terms shift whole softmax rows: scores differ, softmax does not."""
    proto, x = _small_mhsa()
    g = lower_to_graph(proto)
    g2 = fwsa(g)
    soft = [n for n in g.nodes if n.op == "Softmax"][0]
    before = interpret(g, {"input": x}, keep_all=True)
    after = interpret(g2, {"input": x}, keep_all=True)
    assert not np.allclose(before[soft.inputs[0]], after[soft.inputs[0]], atol=1e-3)
    assert_close(after[soft.outputs[0]], before[soft.outputs[0]], 1e-4, 1e-5, "softmax")


def test_c_of_the_rewritten_graph_matches_golden():
    proto, x = _small_mhsa(1)
    g2 = fwsa(lower_to_graph(proto))
    assert _fused_constants(g2)
    cm = compile_graph(g2)
    assert_close(cm.run({"input": x})["output"], interpret(g2, {"input": x})["output"], what="C vs golden")


def test_macs_and_params_follow_the_cost_model():
    s, e, h, p = (SMALL[k] for k in ("tokens", "dim", "heads", "head_dim"))
    g = lower_to_graph(_small_mhsa()[0])
    (m0, p0), (m1, p1) = macs_and_params(g), macs_and_params(fwsa(g))
    # per head: Q and K projections 2 S E P -> fused S E^2; biases: 2 S P adds -> S E
    assert m0 - m1 == h * (2 * s * e * p - s * e * e) + h * (2 * s * p - s * e)
    # weights 2 E P + 2 P (b_q, b_k) per head -> E^2 + E (W_h, B_h)
    assert p0 - p1 == h * (2 * e * p + 2 * p - e * e - e)


@pytest.mark.parametrize("s, e, p, want", [(81, 32, 32, True), (16, 32, 8, False), (64, 128, 64, False),
                                           (20, 16, 16, True)])
def test_benefit_condition(s, e, p, want):
    assert fwsa_beneficial(s, e, p) is want


def test_left_alone_where_it_does_not_pay():
    proto, _ = _case("attention_manual")        # S=16, E=32, P=8: fused would cost more
    g = lower_to_graph(proto)
    assert [n.op for n in fwsa(g).nodes] == [n.op for n in g.nodes]


class _TokenMixingKeys(torch.nn.Module):
    """k mixes tokens (a constant S x S matrix over the token axis): affine in X
    but not per token, so FWSA must not touch it."""
    def __init__(self, s=20, e=16):
        super().__init__()
        self.q, self.k = torch.nn.Linear(e, e), torch.nn.Linear(e, e)
        self.mix = torch.nn.Parameter(torch.randn(s, s))

    def forward(self, x):
        k = (self.k(x).transpose(1, 2) @ self.mix).transpose(1, 2)
        return torch.softmax(self.q(x) @ k.transpose(1, 2), dim=-1) @ x


def test_token_mixing_projection_is_not_rewritten():
    torch.manual_seed(0)
    x = torch.randn(1, 20, 16)
    g = lower_to_graph(from_torch(_TokenMixingKeys(), x))
    assert not _fused_constants(fwsa(g, only_when_cheaper=False))
