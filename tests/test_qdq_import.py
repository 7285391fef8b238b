"""Import of onnxruntime-quantized models (QDQ and operator form): the int8 C
is bit-exact with the golden model and agrees with onnxruntime's own
execution of the same quantized model within the documented LSBs
(docs/quantization.md: onnxruntime requantizes with a float multiplier and
round-half-even, microtrain with a fixed-point multiplier and half-up)."""
import numpy as np
import onnx
import pytest
import torch
from torch import nn

import microtrain
from microtrain.errors import MicrotrainError
from microtrain.quantization import dequantize_outputs, io_params, quantize_inputs

ort_quant = pytest.importorskip("onnxruntime.quantization")

torch.set_num_threads(1)


def ort_run(model, inputs):
    """onnxruntime with graph optimizations off, so a QDQ model runs as written
    (DQ -> float op -> Q). With them on, x86 onnxruntime fuses it into u8s8
    kernels whose VPMADDUBSW pairs saturate at int16 (its documented caveat;
    `reduce_range=True` below keeps the operator form clear of it)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, inputs)))


def _ort_quantize(tmp_path, net, shape, fmt, per_channel, name):
    fpath, qpath = tmp_path / f"{name}.onnx", tmp_path / f"{name}_q.onnx"
    microtrain.from_torch(net.eval(), torch.zeros(*shape), fpath)
    rng = np.random.default_rng(0)
    samples = [{"input": rng.random(shape).astype(np.float32)} for _ in range(16)]

    class Reader(ort_quant.CalibrationDataReader):
        def __init__(self):
            self.it = iter(samples)

        def get_next(self):
            return next(self.it, None)

    ort_quant.quantize_static(str(fpath), str(qpath), Reader(), per_channel=per_channel,
                              quant_format=getattr(ort_quant.QuantFormat, fmt),
                              activation_type=ort_quant.QuantType.QUInt8,
                              weight_type=ort_quant.QuantType.QInt8, reduce_range=True)
    return onnx.load(qpath)


def _lsb_diffs(q, shape, runs=10):
    cm = microtrain.compile(q)
    assert {n.op for n in cm.graph.nodes} <= {"mt.QConv", "mt.QMatMul", "mt.QMaxPool", "mt.QAdd", "Flatten"}
    rng = np.random.default_rng(1)
    scale = io_params(q)["output"][0]
    diffs = []
    for _ in range(runs):
        x = rng.random(shape).astype(np.float32)
        xq = quantize_inputs(q, {"input": x})
        got = cm.run(xq)
        np.testing.assert_array_equal(got["output"], cm.reference(xq)["output"])
        y = dequantize_outputs(q, got)["output"]
        diffs.append(np.round(np.abs(y - ort_run(q, {"input": x})["output"]) / scale))
    return np.concatenate([d.reshape(-1) for d in diffs])


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_single_conv_within_one_lsb(tmp_path, fmt, per_channel):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 5, 3, padding=1), nn.ReLU())
    q = _ort_quantize(tmp_path, net, (1, 2, 6, 6), fmt, per_channel, "conv")
    d = _lsb_diffs(q, (1, 2, 6, 6))
    assert d.max() <= 1
    assert np.mean(d > 0) < 0.05           # rounding ties and float-multiplier edges only


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_cnn_close_to_onnxruntime(tmp_path, fmt):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 6, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(6, 3))
    q = _ort_quantize(tmp_path, net, (1, 1, 6, 6), fmt, True, "cnn")
    d = _lsb_diffs(q, (1, 1, 6, 6))
    assert d.max() <= 1                    # measured: 0 (docs/quantization.md)
    assert np.mean(d > 0) < 0.05


def test_dequantize_of_integer_input_is_refused():
    from onnx import helper, numpy_helper
    node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.UINT8, (2,))],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, (2,))],
                          [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
                           numpy_helper.from_array(np.array(3, np.uint8), "z")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(MicrotrainError, match=r"node '.*' \(DequantizeLinear\)"):
        microtrain.compile(m)


class _AddNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 4, 3, padding=1)
        self.b = nn.Conv2d(2, 4, 1)

    def forward(self, x):
        return torch.relu(self.a(x)) + self.b(x)


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
def test_residual_add_close_to_onnxruntime(tmp_path, fmt):
    torch.manual_seed(0)
    q = _ort_quantize(tmp_path, _AddNet(), (1, 2, 5, 5), fmt, True, "add")
    if fmt == "QOperator":
        assert "QLinearAdd" in {n.op_type for n in q.graph.node}
    d = _lsb_diffs(q, (1, 2, 5, 5))
    assert d.max() <= 1 and np.mean(d > 0) < 0.05
