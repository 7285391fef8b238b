import numpy as np
import pytest
from onnx import helper

from onnx_check import check_model, make_model

rng = np.random.default_rng(0)

BCAST = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 1)), ((1, 3, 1), (2, 1, 5)),
         ((5,), ()), ((2, 1, 4, 1), (3, 1, 6))]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Pow"])
@pytest.mark.parametrize("sa,sb", BCAST)
@pytest.mark.parametrize("b_const", [False, True])
def test_binary(op, sa, sb, b_const):
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    if op == "Pow":
        a = np.asarray(np.abs(a) + 0.1, dtype=np.float32)
    if op == "Div":
        b = np.asarray(np.sign(b) * (np.abs(b) + 0.5), dtype=np.float32)
    node = helper.make_node(op, ["a", "b"], ["y"])
    if b_const:
        m = make_model([node], {"a": a}, ["y"], {"b": b})
        check_model(m, {"a": a})
    else:
        m = make_model([node], {"a": a, "b": b}, ["y"])
        check_model(m, {"a": a, "b": b})


UNARY = [("Sqrt", {}), ("Exp", {}), ("Erf", {}), ("Relu", {}), ("LeakyRelu", {"alpha": 0.2}),
         ("LeakyRelu", {}), ("Sigmoid", {}), ("Tanh", {}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
         ("HardSwish", {}), ("Elu", {"alpha": 0.7}), ("Neg", {}), ("Abs", {}), ("Softplus", {})]


@pytest.mark.parametrize("op,attrs", UNARY)
@pytest.mark.parametrize("shape", [(7,), (2, 3, 5)])
def test_unary(op, attrs, shape):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    if op == "Sqrt":
        x = np.abs(x)
    m = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": x}, ["y"])
    check_model(m, {"x": x})


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_op(approximate):
    x = (rng.standard_normal((3, 8)) * 3).astype(np.float32)
    m = make_model([helper.make_node("Gelu", ["x"], ["y"], approximate=approximate)], {"x": x}, ["y"], opset=20)
    check_model(m, {"x": x})


@pytest.mark.parametrize("lo,hi", [(-1.0, 1.0), (None, 0.5), (-0.5, None), (None, None)])
def test_clip(lo, hi):
    x = (rng.standard_normal((4, 6)) * 2).astype(np.float32)
    inits, ins = {}, ["x"]
    ins.append("lo" if lo is not None else "")
    if lo is not None:
        inits["lo"] = np.array(lo, dtype=np.float32)
    if hi is not None:
        ins.append("hi")
        inits["hi"] = np.array(hi, dtype=np.float32)
    m = make_model([helper.make_node("Clip", ins, ["y"])], {"x": x}, ["y"], inits, opset=13)
    check_model(m, {"x": x})


def test_gelu_erf_pattern_is_fused():
    x = (rng.standard_normal((2, 16)) * 2).astype(np.float32)
    nodes = [helper.make_node("Div", ["x", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["s"]), helper.make_node("Mul", ["x", "s"], ["m"]),
             helper.make_node("Mul", ["m", "half"], ["y"])]
    inits = {"sqrt2": np.array(np.sqrt(2), np.float32), "one": np.array(1, np.float32),
             "half": np.array(0.5, np.float32)}
    m = make_model(nodes, {"x": x}, ["y"], inits)
    cm, _ = check_model(m, {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Gelu"]
