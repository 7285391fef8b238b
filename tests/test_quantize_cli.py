"""`microtrain quantize` and `microtrain run` on a quantized model."""
import subprocess
import sys

import numpy as np
import onnx
import torch
from torch import nn

import microtrain


def cli(*args):
    return subprocess.run([sys.executable, "-m", "microtrain.cli", *args], capture_output=True, text=True)


def test_quantize_then_run_against_float(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3)).eval()
    fpath = tmp_path / "f.onnx"
    microtrain.from_torch(net, torch.zeros(8, 1, 6, 6), fpath)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", input=rng.random((32, 1, 6, 6)).astype(np.float32))
    x = rng.random((8, 1, 6, 6)).astype(np.float32)
    labels = net(torch.from_numpy(x)).argmax(1).numpy()
    np.savez(tmp_path / "test.npz", input=x, y=labels)
    r = cli("quantize", str(fpath), "--calib", str(tmp_path / "calib.npz"), "-o", str(tmp_path / "q.onnx"),
            "--method", "percentile")
    assert r.returncode == 0, r.stderr
    assert "zero point" in r.stdout
    q = onnx.load(tmp_path / "q.onnx")
    assert {n.domain for n in q.graph.node} <= {"microtrain", ""}
    r = cli("run", str(tmp_path / "q.onnx"), "--inputs", str(tmp_path / "test.npz"), "--float-model", str(fpath))
    assert r.returncode == 0, r.stderr
    assert "bit-exact" in r.stdout and "argmax agreement" in r.stdout and "top-1 accuracy" in r.stdout
    agree = float(r.stdout.split("argmax agreement ")[1].split("%")[0])
    assert agree >= 75.0


def test_cli_errors_are_one_line(tmp_path):
    fpath = tmp_path / "f.onnx"
    microtrain.from_torch(nn.Linear(4, 2).eval(), torch.zeros(1, 4), fpath)
    np.savez(tmp_path / "bad.npz", input=np.zeros((3, 5), np.float32))
    r = cli("quantize", str(fpath), "--calib", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "q.onnx"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "calibration input 'input'" in r.stderr
    r = cli("run", str(fpath), "--float-model", str(fpath))
    assert r.returncode == 2 and "--float-model is for quantized models" in r.stderr


def test_quantize_a_transformer_with_ibert_softmax(tmp_path):
    from digits_transformer import build_digits_transformer
    fpath = tmp_path / "t.onnx"
    microtrain.from_torch(build_digits_transformer().eval(), torch.zeros(4, 1, 8, 8), fpath)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "calib.npz", input=rng.random((16, 1, 8, 8)).astype(np.float32))
    r = cli("quantize", str(fpath), "--calib", str(tmp_path / "calib.npz"), "-o", str(tmp_path / "q.onnx"),
            "--softmax", "ibert")
    assert r.returncode == 0, r.stderr
    ops = {n.op_type for n in onnx.load(tmp_path / "q.onnx").graph.node}
    assert {"mt.IBertSoftmax", "mt.IBertGelu", "mt.IBertLayerNorm"} <= ops and "mt.ITASoftmax" not in ops
    np.savez(tmp_path / "x.npz", input=rng.random((4, 1, 8, 8)).astype(np.float32))
    r = cli("run", str(tmp_path / "q.onnx"), "--inputs", str(tmp_path / "x.npz"), "--float-model", str(fpath))
    assert r.returncode == 0, r.stderr
    assert "bit-exact" in r.stdout
