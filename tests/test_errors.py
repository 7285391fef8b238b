"""Bad input: one clear line, a MicrotrainError subclass, CLI exit code 2."""
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper, TensorProto

import microtrain
from microtrain.errors import InputError, ModelLoadError, ShapeError, UnsupportedOpError
from onnx_check import make_model


def relu_model(shape=(1, 4)):
    return make_model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                      {"x": np.zeros(shape, np.float32)}, ["y"])


def dynamic_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_missing_file():
    with pytest.raises(ModelLoadError, match="no such file"):
        microtrain.compile("/nonexistent/model.onnx")


def test_corrupt_file(tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(ModelLoadError, match="bad.onnx"):
        microtrain.compile(str(p))


def test_unsupported_op_names_node():
    x = np.zeros((2, 2), np.float32)
    m = make_model([helper.make_node("Det", ["x"], ["y"], name="my_det")], {"x": x}, ["y"])
    with pytest.raises(UnsupportedOpError, match="my_det.*Det"):
        microtrain.compile(m)


def test_custom_domain_names_node():
    x = np.zeros((2, 2), np.float32)
    m = make_model([helper.make_node("Foo", ["x"], ["y"], name="n1", domain="com.acme")], {"x": x}, ["y"])
    m.opset_import.append(helper.make_opsetid("com.acme", 1))
    with pytest.raises(UnsupportedOpError, match="n1.*com.acme"):
        microtrain.compile(m)


def test_dynamic_dim_says_how_to_fix():
    with pytest.raises(ShapeError, match=r"input 'x'.*batch.*--input-shape x="):
        microtrain.compile(dynamic_model())


def test_dynamic_dim_fixed_by_input_shape():
    cm = microtrain.compile(dynamic_model(), input_shapes={"x": "2x3"})
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    np.testing.assert_array_equal(cm.run({"x": x})["y"], np.maximum(x, 0))


def test_input_shape_unknown_name():
    with pytest.raises(ShapeError, match="unknown input"):
        microtrain.compile(relu_model(), input_shapes={"nope": "1x4"})


@pytest.mark.parametrize("inputs,match", [
    ({}, "missing input"),
    ({"x": np.zeros((1, 4), np.float32), "z": np.zeros(1)}, "unknown input"),
    ({"x": np.zeros((2, 4), np.float32)}, "shape"),
    ({"x": np.zeros((1, 4), np.complex64)}, "dtype"),
])
def test_run_time_input_errors(inputs, match):
    cm = microtrain.compile(relu_model())
    with pytest.raises(InputError, match=match):
        cm.run(inputs)


def test_inputs_not_modified():
    cm = microtrain.compile(relu_model())
    x = np.array([[-1, 2, -3, 4]], np.float32)
    before = x.copy()
    cm.run({"x": x})
    np.testing.assert_array_equal(x, before)


def test_errors_are_one_line():
    try:
        microtrain.compile(dynamic_model())
    except microtrain.MicrotrainError as exc:
        assert "\n" not in str(exc)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "microtrain.cli", *args], capture_output=True, text=True)


def test_cli_bad_inputs_exit_2_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    dyn = tmp_path / "dyn.onnx"
    onnx.save(dynamic_model(), dyn)
    det = tmp_path / "det.onnx"
    onnx.save(make_model([helper.make_node("Det", ["x"], ["y"], name="d")],
                         {"x": np.zeros((2, 2), np.float32)}, ["y"]), det)
    for args in (["inspect", str(tmp_path / "missing.onnx")], ["run", str(bad)], ["compile", str(dyn), "-o", str(tmp_path / "o")],
                 ["run", str(det)], ["inspect", str(dyn), "--input-shape", "x=axb"]):
        r = _cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith("microtrain: error:")


def test_cli_compile_refuses_foreign_directory(tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(relu_model(), model)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    r = _cli("compile", str(model), "-o", str(out))
    assert r.returncode == 2
    assert (out / "notes.txt").read_text() == "precious"


def test_cli_compile_project_builds_with_make(tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(relu_model(), model)
    out = tmp_path / "proj"
    assert _cli("compile", str(model), "-o", str(out)).returncode == 0
    subprocess.run(["make", "-s", "-C", str(out)], check=True, capture_output=True)
    x = np.array([[-1, 2, -3, 4]], np.float32)
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    subprocess.run([str(out / "network"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], check=True)
    y = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.float32)
    np.testing.assert_array_equal(y, [0, 2, 0, 4])
