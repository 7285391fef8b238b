"""Integer-only Transformers through microtrain.quantize: the done-when
accuracy on scikit-learn's digits (int8 vs fp32 top-1 within 1 point, for
softmax="ita" and "ibert"), C bit-exact with the integer golden model, ITA's
fixed logit scale forced at the logits' producer, and no float in the
firmware of a quantized Transformer."""
import warnings

import numpy as np
import pytest
import torch

import microtrain
from microtrain.ops.ita_softmax import ITA_LOGIT_SCALE
from microtrain.quantization import quantize_inputs

warnings.filterwarnings("ignore", category=UserWarning)
torch.set_num_threads(1)

INTEGER_DATA_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Concat"}


@pytest.fixture(scope="module")
def digits():
    from digits_cnn import digits_split
    from digits_transformer import train_digits_transformer
    xtr, ytr, xte, yte = digits_split()
    net = train_digits_transformer(xtr, ytr)
    fmodel = microtrain.from_torch(net, torch.zeros(len(yte), 1, 8, 8))
    with torch.no_grad():
        fp32 = float((net(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    return fmodel, fp32, xtr, xte, yte


@pytest.mark.parametrize("softmax", ["ita", "ibert"])
def test_digits_transformer_int8_within_one_point(digits, softmax):
    fmodel, fp32, xtr, xte, yte = digits
    qmodel = microtrain.quantize(fmodel, xtr[:2 * len(yte)], softmax=softmax, progress=False)
    ops = [n.op_type for n in qmodel.graph.node]
    want = {"ita": "mt.ITASoftmax", "ibert": "mt.IBertSoftmax"}[softmax]
    assert want in ops and "mt.IBertGelu" in ops and ops.count("mt.IBertLayerNorm") == 3
    assert all(op.startswith("mt.") or op in INTEGER_DATA_OPS for op in ops), ops
    cm = microtrain.compile(qmodel)
    xq = quantize_inputs(qmodel, {"input": xte})
    logits = cm.run(xq)["output"]
    np.testing.assert_array_equal(logits, cm.reference(xq)["output"])
    int8 = float((logits.argmax(1) == yte).mean())
    print(f"digits transformer: fp32 {fp32:.4f}, int8 ({softmax}) {int8:.4f}")
    assert fp32 > 0.9
    assert abs(int8 - fp32) <= 0.01, (softmax, fp32, int8)


def test_ita_logits_are_computed_at_the_fixed_scale(digits):
    """The scale Mul after Q.K^T is calibrated to 8/(256 log2 e) itself: no
    extra requantization before the softmax."""
    fmodel, _, xtr, _, yte = digits
    qmodel = microtrain.quantize(fmodel, xtr[:len(yte)], softmax="ita", progress=False)
    nodes = {o: n for n in qmodel.graph.node for o in n.output}
    soft = [n for n in qmodel.graph.node if n.op_type == "mt.ITASoftmax"][0]
    producer = nodes[soft.input[0]]
    attrs = {a.name: a for a in producer.attribute}
    assert producer.op_type != "mt.Requant"
    assert attrs["y_scale"].f == pytest.approx(ITA_LOGIT_SCALE, rel=1e-6) and attrs["y_zero_point"].i == 0


def test_quantized_transformer_firmware_has_no_float():
    from digits_transformer import build_digits_transformer
    from microtrain.quantization.nofloat import float_functions_reachable
    from microtrain.targets import get_target
    from microtrain.targets.toolchain import require_tool
    net = build_digits_transformer().eval()
    fmodel = microtrain.from_torch(net, torch.zeros(2, 1, 8, 8))
    calib = np.random.default_rng(0).random((16, 1, 8, 8)).astype(np.float32)
    objdump = require_tool(get_target("rv32imc").tool_prefix + "objdump", get_target("rv32imc"))
    for softmax in ("ita", "ibert"):
        cm = microtrain.compile(microtrain.quantize(fmodel, calib, softmax=softmax, progress=False), "rv32imc")
        assert float_functions_reachable(cm.build(), objdump, "mt_network_run") == [], softmax
        x = np.random.default_rng(1).integers(-128, 128, (2, 1, 8, 8)).astype(np.int8)
        np.testing.assert_array_equal(cm.run({"input": x})["output"], cm.reference({"input": x})["output"])


def test_fwsa_fused_matrix_is_quantized_as_its_own_weight():
    """quantize(fwsa=True) on a model where FWSA pays off (P = E): the E x E
    per-head fused matrices are re-calibrated and stored as int8 weights;
    accuracy stays within 1 point of fp32; C bit-exact on a few samples."""
    from digits_cnn import digits_split
    from digits_transformer import train_digits_transformer
    from microtrain.compiler import lower_to_graph
    from microtrain.golden import interpret
    xtr, ytr, xte, yte = digits_split()
    net = train_digits_transformer(xtr, ytr, attention="mhsa")
    with torch.no_grad():
        fp32 = float((net(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    fmodel = microtrain.from_torch(net, torch.zeros(1, 1, 8, 8))   # FWSA probes batch-1 graphs
    qmodel = microtrain.quantize(fmodel, xtr[:512], softmax="ita", progress=False, fwsa=True)
    inits = {i.name: i for i in qmodel.graph.initializer}
    fused = [i for n, i in inits.items() if "/fwsa/" in n and tuple(i.dims) == (16, 2 * 16)]
    assert len(fused) == 1 and fused[0].data_type == 3           # int8 (TensorProto.INT8)
    assert all(i.data_type != 1 for i in inits.values())         # no float32 constant left
    g = lower_to_graph(qmodel)
    xq = quantize_inputs(qmodel, {"input": xte})["input"]
    pred = np.array([int(interpret(g, {"input": xq[i:i + 1]})["output"].argmax()) for i in range(len(yte))])
    int8 = float((pred == yte).mean())
    print(f"digits transformer (P = E) + FWSA: fp32 {fp32:.4f}, int8 (ita) {int8:.4f}")
    assert abs(int8 - fp32) <= 0.01, (fp32, int8)
    cm = microtrain.compile(qmodel)
    for i in range(3):
        np.testing.assert_array_equal(cm.run({"input": xq[i:i + 1]})["output"],
                                      cm.reference({"input": xq[i:i + 1]})["output"])


@pytest.mark.parametrize("softmax", ["ita", "ibert"])
def test_cct_quantizes_to_integer_only_and_c_is_bit_exact(softmax):
    """CCT-2/3x2 (16 x 16 input to stay small): fused qkv (Slice), the sequence
    pool's softmax over tokens (axis 1, transposed around the integer op)."""
    from microtrain.models import cct
    fmodel = cct.export(img_size=16)
    calib = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    qmodel = microtrain.quantize(fmodel, calib, softmax=softmax, progress=False)
    ops = [n.op_type for n in qmodel.graph.node]
    assert all(op.startswith("mt.") or op in INTEGER_DATA_OPS | {"Slice"} for op in ops), ops
    assert ops.count({"ita": "mt.ITASoftmax", "ibert": "mt.IBertSoftmax"}[softmax]) == 3
    cm = microtrain.compile(qmodel)
    x = quantize_inputs(qmodel, {"input": calib[:1]})
    np.testing.assert_array_equal(cm.run(x)["output"], cm.reference(x)["output"])


@pytest.mark.parametrize("softmax", ["ita", "ibert"])
@pytest.mark.parametrize("fuse_projections", [False, True])
def test_int8_depth_first_is_bit_exact_with_the_unfused_chain(softmax, fuse_projections):
    """depth_first on a quantized model: the integer core (QMatMul -> QMul ->
    softmax -> QMatMul) becomes mt.QAttention, and with its projections
    (QMatMul + bias QAdd for q, k, v, out) mt.QMHSA; the C equals the
    *unfused* integer golden model and no S x S tensor is left."""
    from microtrain.compiler import compile_graph, lower_to_graph
    from microtrain.models import mhsa
    from microtrain.passes.depth_first_attention import depth_first_attention
    from microtrain.planner import plan_memory
    shape = dict(tokens=20, dim=16, heads=2, head_dim=16)
    fmodel = mhsa.export(**shape)
    calib = np.random.default_rng(0).standard_normal((6, 20, 16)).astype(np.float32)
    qmodel = microtrain.quantize(fmodel, calib, softmax=softmax, progress=False)
    unfused = lower_to_graph(qmodel)
    fused = depth_first_attention(unfused, fuse_projections=fuse_projections)
    ops = [n.op for n in fused.nodes]
    if fuse_projections:
        assert ops == ["Reshape", "mt.QMHSA", "Reshape"], ops
        # nothing but the block's input/output-sized tensors: no Q/K/V, no map
        assert max(fused.types[o].size for n in fused.nodes for o in n.outputs) == 20 * 16
    else:
        assert "mt.QAttention" in ops and "mt.QMul" not in ops and not any("Softmax" in op for op in ops)
    assert all(fused.types[o].shape[-2:] != (20, 20) for n in fused.nodes for o in n.outputs)
    assert plan_memory(fused).arena_bytes < plan_memory(unfused).arena_bytes
    cm = compile_graph(fused)
    for seed in range(3):
        x = np.random.default_rng(seed).integers(-128, 128, (1, 20, 16)).astype(np.int8)
        want = microtrain.reference(qmodel, {"input": x})["output"]
        np.testing.assert_array_equal(cm.reference({"input": x})["output"], want)
        np.testing.assert_array_equal(cm.run({"input": x})["output"], want)


def test_int8_block_fusion_is_declined_when_its_scratch_is_larger():
    """The digits model's block (S=8, E=16, 2 heads of 8): the int32 output
    accumulator (512 B) + one head's K/V would outweigh the int8 Q, K, V and
    scores it removes (512 B), so only the core is fused; C still bit-exact."""
    from digits_transformer import build_digits_transformer
    from microtrain.compiler import lower_to_graph
    fmodel = microtrain.from_torch(build_digits_transformer().eval(), torch.zeros(1, 1, 8, 8))
    calib = np.random.default_rng(0).random((16, 1, 8, 8)).astype(np.float32)
    qmodel = microtrain.quantize(fmodel, calib, softmax="ita", progress=False)
    ops = [n.op for n in lower_to_graph(qmodel, depth_first=True).nodes]
    assert "mt.QMHSA" not in ops and "mt.QAttention" in ops
    cm = microtrain.compile(qmodel, depth_first=True)
    for i in range(3):
        x = quantize_inputs(qmodel, {"input": calib[i:i + 1]})
        np.testing.assert_array_equal(cm.run(x)["output"], microtrain.reference(qmodel, x)["output"])
