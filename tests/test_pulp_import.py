"""Import of the PULP integer ONNX convention (Conv/Gemm/Add with integer
weights + RequantShift): the compiled int8 C equals an independent float64
evaluation of the convention's definition, and the golden model."""
import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

import microtrain
from microtrain.errors import MicrotrainError


def _rq(name, x, y, mul, add, div, n_levels, signed):
    return helper.make_node("RequantShift", [x, f"{name}_mul", f"{name}_add"], [y], name=name,
                            div=div, n_levels=n_levels, signed=signed), {f"{name}_mul": mul, f"{name}_add": add}


def pulp_model(rng):
    w1 = rng.integers(-20, 21, (4, 3, 3, 3)).astype(np.float32)
    b1 = rng.integers(-500, 500, 4).astype(np.float32)
    w2 = rng.integers(-30, 31, (4, 4, 1, 1)).astype(np.float32)
    w3 = rng.integers(-25, 26, (6, 4, 3, 3)).astype(np.float32)
    w4 = rng.integers(-40, 41, (5, 24)).astype(np.float32)
    b4 = rng.integers(-1000, 1000, 5).astype(np.float32)
    inits = dict(w1=w1, b1=b1, w2=w2, w3=w3, w4=w4, b4=b4)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1])]
    for name, x, y, mul, add, div, n, signed in (
            ("rq1", "c1", "r1", rng.integers(1, 60, (1, 4, 1, 1)), rng.integers(-3000, 3000, (1, 4, 1, 1)),
             1 << 12, 256, 0),
            ("rq2", "c2", "r2", rng.integers(20, 200, (1, 4, 1, 1)), np.zeros((1, 4, 1, 1)), 1 << 12, 256, 1),
            ("rq3", "s3", "r3", np.array(3.0), np.array(-10.0), 4, 256, 0),
            ("rq4", "c4", "r4", rng.integers(1, 40, (1, 6, 1, 1)), rng.integers(-500, 500, (1, 6, 1, 1)),
             1 << 11, 256, 1),
            ("rq5", "g5", "y", rng.integers(100, 300, (5,)), np.zeros(5), 1 << 14, 128, 1)):
        if name == "rq2":
            nodes.append(helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"))
        if name == "rq3":
            nodes.append(helper.make_node("Add", ["r1", "r2"], ["s3"], name="add"))
        if name == "rq4":
            nodes.append(helper.make_node("MaxPool", ["r3"], ["p3"], name="pool", kernel_shape=[2, 2], strides=[2, 2]))
            nodes.append(helper.make_node("Conv", ["p3", "w3"], ["c4"], name="conv3"))
        if name == "rq5":
            nodes.append(helper.make_node("Flatten", ["r4"], ["f4"], name="flat"))
            nodes.append(helper.make_node("Gemm", ["f4", "w4", "b4"], ["g5"], name="fc", transB=1))
        node, params = _rq(name, x, y, np.asarray(mul, np.float32), np.asarray(add, np.float32), div, n, signed)
        nodes.append(node)
        inits.update(params)
    g = helper.make_graph(nodes, "pulp", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, (2, 3, 8, 8))],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def evaluate_convention(model, x):
    """The PULP convention, literally, in float64 (independent of microtrain)."""
    env = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    env["x"] = x.astype(np.float64)
    t = torch.from_numpy
    for n in model.graph.node:
        a = {at.name: helper.get_attribute_value(at) for at in n.attribute}
        ins = [env[i] for i in n.input]
        if n.op_type == "Conv":
            p = a.get("pads", [0, 0, 0, 0])
            y = torch.nn.functional.conv2d(t(ins[0]), t(ins[1]), t(ins[2]) if len(ins) > 2 else None,
                                           padding=(p[0], p[1])).numpy()
        elif n.op_type == "RequantShift":
            x_, mul, add = ins
            div = a["div"]
            lo, hi = ((-a["n_levels"] // 2, a["n_levels"] // 2 - 1) if a["signed"] else (0, a["n_levels"] - 1))
            y = np.clip(np.floor((x_ * mul + add + div / 2) / div), lo, hi)
        elif n.op_type == "Add":
            y = ins[0] + ins[1]
        elif n.op_type == "MaxPool":
            y = torch.nn.functional.max_pool2d(t(ins[0]), 2).numpy()
        elif n.op_type == "Flatten":
            y = ins[0].reshape(ins[0].shape[0], -1)
        elif n.op_type == "Gemm":
            y = ins[0] @ ins[1].T + ins[2]
        env[n.output[0]] = y
    return env["y"]


def test_pulp_network_matches_the_convention():
    rng = np.random.default_rng(0)
    model = pulp_model(rng)
    cm = microtrain.compile(model)
    assert [n.op for n in cm.graph.nodes] == ["mt.QConv", "mt.QConv", "mt.QAdd", "mt.QMaxPool", "mt.QConv",
                                              "Flatten", "mt.QMatMul"]
    for seed in range(3):
        x = np.random.default_rng(seed).integers(-128, 128, (2, 3, 8, 8)).astype(np.int8)
        got = cm.run({"x": x})["y"]
        np.testing.assert_array_equal(got, cm.reference({"x": x})["y"])
        want = evaluate_convention(model, x)
        assert len(np.unique(want)) > 5
        np.testing.assert_array_equal(got.astype(np.float64), want)   # signed output: offset 0


def test_pulp_unsigned_output_offset_and_errors():
    from microtrain.quantization import dequantize_outputs, io_params
    rng = np.random.default_rng(1)
    node, params = _rq("rq", "c", "y", np.array([5.0], np.float32), np.array([7.0], np.float32), 8, 256, 0)
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv")
    w = rng.integers(-10, 11, (2, 2, 1, 1)).astype(np.float32)
    g = helper.make_graph([conv, node], "u", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, (1, 2, 3, 3))],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w")] + [numpy_helper.from_array(v, k) for k, v in params.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.integers(-128, 128, (1, 2, 3, 3)).astype(np.int8)
    got = microtrain.compile(m).run({"x": x})
    assert io_params(m)["y"] == (1.0, -128)
    np.testing.assert_array_equal(dequantize_outputs(m, got)["y"], evaluate_convention(m, x))
    m.graph.node[1].attribute[0].i = 6          # div = 6: not a power of two
    with pytest.raises(MicrotrainError, match=r"node 'rq' \(RequantShift\): div=6 must be a power of two"):
        microtrain.compile(m)
