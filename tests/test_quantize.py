"""Post-training quantization: calibration observers, fixed-point
multipliers, graph-level integer models vs float, errors, and the done-when
accuracy on scikit-learn's digits (int8 vs fp32 top-1 within 1 point)."""
import numpy as np
import onnx
import pytest
import torch
from torch import nn

import microtrain
from microtrain.errors import MicrotrainError
from microtrain.quantization import dequantize_outputs, io_params, quantize_inputs
from microtrain.quantization.calibration import Observer, fake_quant, mse_range, scale_zero_point
from microtrain.quantization.rewrite import fixed_point
from microtrain.ir import Node

torch.set_num_threads(1)


# ---- calibration ------------------------------------------------------------

def test_scale_zero_point_maps_range_ends():
    s, z = scale_zero_point(-1.0, 3.0)
    assert s == pytest.approx(4.0 / 255)
    assert round(-1.0 / s) + z == -128 and round(3.0 / s) + z == 127
    assert scale_zero_point(0.0, 2.0) == (pytest.approx(2.0 / 255), -128)   # post-ReLU
    assert scale_zero_point(0.5, 2.0)[1] == -128                            # range always holds 0


def test_observers_minmax_percentile_mse():
    rng = np.random.default_rng(0)
    data = rng.standard_normal(50_000)
    data[:5] = [40.0, -35.0, 30.0, 25.0, -20.0]      # rare outliers
    obs = Observer(rng)
    for chunk in np.split(data, 10):
        obs.update(chunk)
    assert obs.range("minmax", 99.99) == (-35.0, 40.0)
    plo, phi = obs.range("percentile", 99.9)
    assert -4.5 < plo < -2.5 and 2.5 < phi < 4.5      # N(0,1) 0.1% tails are ~ +-3.1
    mlo, mhi = obs.range("mse", 99.99)
    assert -35.0 < mlo < 0 < mhi < 40.0
    samples = obs.samples()

    def err(r):
        return np.mean((fake_quant(samples, *scale_zero_point(*r)) - samples) ** 2)
    assert err((mlo, mhi)) < 0.5 * err((-35.0, 40.0))          # clipping pays off here
    assert err((mlo, mhi)) <= err((plo, phi)) * 1.0001


def test_mse_keeps_full_range_for_uniform_data():
    u = np.random.default_rng(1).uniform(-1, 1, 20_000)
    lo, hi = mse_range(u, u.min(), u.max())
    assert hi > 0.9 and lo < -0.9


@pytest.mark.parametrize("m", [[0.75], [1e-3, 3e-5, 0.0], [0.9999999], [2.5, 1.0]])
def test_fixed_point_multiplier(m):
    mul, shift = fixed_point(m, Node("Conv", "n", [], []))
    assert mul.dtype == np.int32 and 0 <= shift <= 62
    assert (1 << 30) <= mul.max() < (1 << 31)
    np.testing.assert_allclose(mul / 2.0 ** shift, m, rtol=2 ** -29, atol=2.0 ** -shift)


# ---- graph-level models -------------------------------------------------------

class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 6, 3, padding=1)
        self.c = nn.Conv1d(12, 4, 3, stride=2)
        self.fc = nn.Linear(4 * 7, 5)

    def forward(self, x):
        h = torch.relu(self.a(x))
        r = torch.clamp(self.b(h), 0, 6) + h                  # residual add, ReLU6
        r = torch.cat([r, nn.functional.avg_pool2d(h, 3, 1, 1)], dim=1)   # concat of 2 scales
        r = r.reshape(r.shape[0], 12, -1)                     # (N, 12, 16)
        y = torch.relu(self.c(r))
        return self.fc(y.flatten(1)) - 0.5 * self.fc(y.flatten(1))


def test_residual_concat_model_int8_close_to_float():
    torch.manual_seed(0)
    net = Residual().eval()
    fmodel = microtrain.from_torch(net, torch.zeros(4, 3, 4, 4))
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((64, 3, 4, 4)).astype(np.float32)
    qmodel = microtrain.quantize(fmodel, calib, progress=False)
    ops = {n.op_type for n in qmodel.graph.node}
    assert {"mt.QConv", "mt.QAdd", "mt.QAvgPool", "mt.QMatMul", "Concat"} <= ops
    qmodel = onnx.load_from_string(qmodel.SerializeToString())   # survives a file round trip
    x = rng.standard_normal((4, 3, 4, 4)).astype(np.float32)
    cm = microtrain.compile(qmodel)
    xq = quantize_inputs(qmodel, {"input": x})
    got = cm.run(xq)["output"]
    np.testing.assert_array_equal(got, cm.reference(xq)["output"])
    y = dequantize_outputs(qmodel, {"output": got})["output"]
    want = net(torch.from_numpy(x)).detach().numpy()
    scale = io_params(qmodel)["output"][0]
    err = np.abs(y - want)
    assert err.max() < 8 * scale and err.mean() < 2 * scale, (err.max() / scale, err.mean() / scale)


def test_unsupported_op_names_the_node():
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh()).eval()
    fmodel = microtrain.from_torch(net, torch.zeros(1, 4))
    with pytest.raises(MicrotrainError, match=r"node '.*' \(Tanh\).*no integer form of Tanh"):
        microtrain.quantize(fmodel, np.zeros((2, 4), np.float32), progress=False)


def test_float_softmax_is_refused_in_integer_models():
    net = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)).eval()
    fmodel = microtrain.from_torch(net, torch.zeros(1, 4))
    with pytest.raises(MicrotrainError, match=r"node '.*' \(Softmax\).*softmax='ita' or 'ibert'"):
        microtrain.quantize(fmodel, np.zeros((2, 4), np.float32), softmax="float", progress=False)


def test_bad_calibration_and_options():
    fmodel = microtrain.from_torch(nn.Linear(4, 3).eval(), torch.zeros(2, 4))
    with pytest.raises(MicrotrainError, match="calibration input 'input' has shape"):
        microtrain.quantize(fmodel, np.zeros((3, 5), np.float32), progress=False)
    with pytest.raises(MicrotrainError, match="method='kl'"):
        microtrain.quantize(fmodel, np.zeros((2, 4), np.float32), method="kl")
    q = microtrain.quantize(fmodel, [{"input": np.ones((2, 4), np.float32)}], progress=False)
    assert set(io_params(q)) == {"input", "output"}
    q2 = microtrain.quantize(fmodel, (np.full((4, 4), v, np.float32) for v in (-1.0, 3.0)), progress=False)
    assert io_params(q2)["input"] == (pytest.approx(4.0 / 255), -128 + round(1.0 / (4.0 / 255)))


# ---- done-when: digits ---------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    from digits_cnn import digits_split, export, train_digits_cnn
    xtr, ytr, xte, yte = digits_split()
    net = train_digits_cnn(xtr, ytr)
    return net, export(net, len(yte)), xtr, xte, yte


@pytest.mark.parametrize("method", ["minmax", "percentile", "mse"])
def test_digits_cnn_int8_within_one_point(digits, method):
    net, fmodel, xtr, xte, yte = digits
    fp32 = float((net(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    qmodel = microtrain.quantize(fmodel, xtr[:2 * len(yte)], method=method, progress=False)
    cm = microtrain.compile(qmodel)
    xq = quantize_inputs(qmodel, {"input": xte})
    logits = cm.run(xq)["output"]
    np.testing.assert_array_equal(logits, cm.reference(xq)["output"])
    int8 = float((logits.argmax(1) == yte).mean())
    assert fp32 > 0.9
    assert abs(int8 - fp32) <= 0.01, (method, fp32, int8)


def test_linear_on_3d_input_fuses_its_bias():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4)).eval()
    fmodel = microtrain.from_torch(net, torch.zeros(2, 5, 6))
    assert "MatMul" in {n.op_type for n in fmodel.graph.node}
    rng = np.random.default_rng(0)
    qmodel = microtrain.quantize(fmodel, 1.5 * rng.standard_normal((200, 5, 6)).astype(np.float32), progress=False)
    assert [n.op_type for n in qmodel.graph.node] == ["mt.QMatMul", "mt.QMatMul"]
    x = rng.standard_normal((2, 5, 6)).astype(np.float32)
    cm = microtrain.compile(qmodel)
    xq = quantize_inputs(qmodel, {"input": x})
    got = cm.run(xq)["output"]
    np.testing.assert_array_equal(got, cm.reference(xq)["output"])
    err = np.abs(dequantize_outputs(qmodel, {"output": got})["output"] - net(torch.from_numpy(x)).detach().numpy())
    assert np.all((got > -128) & (got < 127))          # inside the calibrated range
    assert err.max() < 6 * io_params(qmodel)["output"][0]


class _Coverage(nn.Module):
    """The remaining CNN rules: standalone Relu (after a pool), Transpose,
    Mul of two activations, Sub, GlobalMaxPool, per-tensor weights."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = torch.relu(nn.functional.max_pool2d(self.conv(x), 2))      # Relu not fusable
        t = h.transpose(2, 3)
        m = t * torch.relu(t - 0.1) - h.transpose(2, 3)                # Mul, Sub
        g = nn.functional.adaptive_max_pool2d(m, 1).flatten(1)          # GlobalMaxPool
        return self.fc(g)


@pytest.mark.parametrize("per_channel", [True, False])
def test_remaining_rules_int8_close_to_float(per_channel):
    torch.manual_seed(0)
    net = _Coverage().eval()
    fmodel = microtrain.from_torch(net, torch.zeros(2, 2, 6, 6))
    rng = np.random.default_rng(0)
    qmodel = microtrain.quantize(fmodel, rng.standard_normal((64, 2, 6, 6)).astype(np.float32),
                                 per_channel=per_channel, progress=False)
    ops = [n.op_type for n in qmodel.graph.node]
    assert {"mt.Requant", "Transpose", "mt.QMul", "mt.QAdd", "mt.QMaxPool"} <= set(ops), ops
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    cm = microtrain.compile(qmodel)
    xq = quantize_inputs(qmodel, {"input": x})
    got = cm.run(xq)["output"]
    np.testing.assert_array_equal(got, cm.reference(xq)["output"])
    err = np.abs(dequantize_outputs(qmodel, {"output": got})["output"] - net(torch.from_numpy(x)).detach().numpy())
    scale = io_params(qmodel)["output"][0]
    assert err.max() < 8 * scale, err.max() / scale
