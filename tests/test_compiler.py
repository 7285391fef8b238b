"""CompiledModel API: run, per-layer dumps, report fields."""
import numpy as np
from onnx import helper

import microtrain
from onnx_check import make_model


def model():
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="L0"), helper.make_node("Exp", ["a"], ["b"], name="L1"),
             helper.make_node("Add", ["b", "x"], ["y"], name="L2")]
    return make_model(nodes, {"x": x}, ["y"]), x


def test_layer_outputs_match_golden_per_layer():
    m, x = model()
    cm = microtrain.compile(m)
    got = cm.layer_outputs({"x": x})
    a = np.maximum(x, 0)
    np.testing.assert_allclose(got["a"], a)
    np.testing.assert_allclose(got["b"], np.exp(a), rtol=1e-6)
    rows = cm.compare_layers({"x": x})
    assert [r[0] for r in rows] == ["L0", "L1", "L2"]
    assert all(err < 1e-5 for _, _, err in rows)


def test_report_fields():
    m, x = model()
    cm = microtrain.compile(m)
    r = cm.report
    assert r.arena_bytes >= r.lower_bound_bytes > 0
    assert r.weight_bytes == 0
    assert [(l.name, l.op, l.output_bytes) for l in r.layers] == [("L0", "Relu", 48), ("L1", "Exp", 48), ("L2", "Add", 48)]
    assert r.layers[2].macs == 12


def test_out_dir_is_a_buildable_project(tmp_path):
    m, x = model()
    cm = microtrain.compile(m, out_dir=tmp_path / "proj")
    for f in ("network.c", "network.h", "weights.c", "main.c", "Makefile", "runtime/mt_kernels.h"):
        assert (tmp_path / "proj" / f).exists(), f
    assert "malloc" not in (tmp_path / "proj" / "network.c").read_text()
    np.testing.assert_allclose(cm.run({"x": x})["y"], np.exp(np.maximum(x, 0)) + x, rtol=1e-6)
