"""Test helpers: build single-op ONNX models and check microtrain's C and its
numpy golden model against onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

import microtrain

# Float C vs reference tolerance used throughout the suite (docs/architecture.md).
RTOL, ATOL = 1e-4, 1e-5


def make_model(nodes, inputs: dict, outputs: list[str], initializers: dict | None = None,
               opset: int = 17, output_dtypes: dict | None = None) -> onnx.ModelProto:
    """inputs: name -> np.ndarray example (shape/dtype taken from it)."""
    vi_in = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
             for k, v in inputs.items()]
    vi_out = [helper.make_tensor_value_info(
        o, helper.np_dtype_to_tensor_dtype(np.dtype((output_dtypes or {}).get(o, np.float32))), None)
        for o in outputs]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()]
    g = helper.make_graph(nodes, "test", vi_in, vi_out, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def ort_run(model: onnx.ModelProto, inputs: dict) -> dict:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, inputs)))


def assert_close(got, want, rtol=RTOL, atol=ATOL, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=what)


def check_model(model: onnx.ModelProto, inputs: dict, rtol=RTOL, atol=ATOL, compare_ort=True):
    """Compile to C, run; compare C with the golden model and both with onnxruntime."""
    cm = microtrain.compile(model)
    got = cm.run(inputs)
    ref = cm.reference(inputs)
    want = ort_run(model, inputs) if compare_ort else ref
    for name in cm.output_names:
        assert_close(ref[name], want[name], rtol, atol, f"golden vs onnxruntime, output {name}")
        assert_close(got[name], ref[name], rtol, atol, f"C vs golden, output {name}")
    return cm, got
