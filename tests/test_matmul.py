"""Gemm and MatMul: C and golden model vs onnxruntime over transposes,
alpha/beta, every C broadcast shape, constant and run-time operands, 1-D,
batched and broadcast MatMul shapes; plus the error paths."""
import numpy as np
import pytest
from onnx import helper

import microtrain
from microtrain.errors import MicrotrainError, ShapeError, UnsupportedOpError
from microtrain.ops.registry import Value, get_op
from onnx_check import check_model, make_model, ort_run

rng = np.random.default_rng(0)
M, K, N = 3, 4, 5
C_SHAPES = {"scalar": (), "n": (N,), "1n": (1, N), "m1": (M, 1), "mn": (M, N), "scalar1": (1,)}


def rand(shape):
    return rng.standard_normal(shape).astype(np.float32)


def gemm_operands(trans_a, trans_b):
    return rand((K, M) if trans_a else (M, K)), rand((N, K) if trans_b else (K, N))


# ---- Gemm --------------------------------------------------------------------

@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("alpha_beta", [None, (0.5, -2.0), (2.0, 0.0)])
def test_gemm_constant_c(trans_a, trans_b, alpha_beta):
    """Constant B and C (pre-scaled by beta at compile time), every C shape and
    no C, in one model."""
    a, b = gemm_operands(trans_a, trans_b)
    attrs = dict(transA=trans_a, transB=trans_b)
    if alpha_beta:
        attrs.update(alpha=alpha_beta[0], beta=alpha_beta[1])
    nodes, inits = [helper.make_node("Gemm", ["a", "b"], ["y_none"], **attrs)], {"b": b}
    for tag, shape in C_SHAPES.items():
        inits[f"c_{tag}"] = rand(shape)
        nodes.append(helper.make_node("Gemm", ["a", "b", f"c_{tag}"], [f"y_{tag}"], **attrs))
    outputs = ["y_none"] + [f"y_{t}" for t in C_SHAPES]
    check_model(make_model(nodes, {"a": a}, outputs, inits), {"a": a})


@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_runtime_operands(trans_a, trans_b):
    """A, B and C all run-time tensors (beta applied by the kernel)."""
    a, b = gemm_operands(trans_a, trans_b)
    inputs, nodes = {"a": a, "b": b}, []
    for tag, shape in C_SHAPES.items():
        inputs[f"c_{tag}"] = rand(shape)
        nodes.append(helper.make_node("Gemm", ["a", "b", f"c_{tag}"], [f"y_{tag}"], transA=trans_a,
                                      transB=trans_b, alpha=-0.75, beta=1.5))
    check_model(make_model(nodes, inputs, [f"y_{t}" for t in C_SHAPES]), inputs)


@pytest.mark.parametrize("opset", [13, 21])
def test_gemm_opsets_and_omitted_c(opset):
    a, b = gemm_operands(0, 1)
    nodes = [helper.make_node("Gemm", ["a", "b", ""], ["y"], transB=1, alpha=3.0)]
    check_model(make_model(nodes, {"a": a}, ["y"], {"b": b}, opset=opset), {"a": a})


def test_gemm_shapes_vector_like():
    """M = 1 and N = 1 and K = 1 edge shapes."""
    inputs = {"a1": rand((1, 7)), "a2": rand((6, 7)), "a3": rand((6, 1))}
    inits = {"b1": rand((7, 9)), "b2": rand((1, 7)), "b3": rand((1, 9)), "c": rand((1,))}
    nodes = [helper.make_node("Gemm", ["a1", "b1", "c"], ["y1"]),
             helper.make_node("Gemm", ["a2", "b2", "c"], ["y2"], transB=1),
             helper.make_node("Gemm", ["a3", "b3"], ["y3"])]
    check_model(make_model(nodes, inputs, ["y1", "y2", "y3"], inits), inputs)


def test_gemm_hand_checked():
    a = np.array([[1, 2], [3, 4]], np.float32)
    b = np.array([[1, 0, 2], [0, 1, 3]], np.float32)
    c = np.array([10, 20, 30], np.float32)
    m = make_model([helper.make_node("Gemm", ["a", "b", "c"], ["y"], alpha=2.0, beta=0.5)], {"a": a}, ["y"],
                   {"b": b, "c": c})
    _, got = check_model(m, {"a": a})
    np.testing.assert_allclose(got["y"], [[7, 14, 31], [11, 18, 51]])


# ---- MatMul ------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((1, 1), (1, 1)),
    ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((1, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (3, 4, 5)), ((2, 1, 3, 4), (1, 3, 4, 5)), ((5,), (2, 5, 3)), ((2, 3, 5), (5,)),
    ((1, 1, 4), (4, 1)), ((2, 1, 1, 3, 4), (1, 3, 1, 4, 2)), ((3, 1, 6), (1, 6, 7)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul(sa, sb):
    """B as a run-time tensor and as a constant (a weight), in one model."""
    a, b = rand(sa), rand(sb)
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"]), helper.make_node("MatMul", ["a", "w"], ["y_w"])]
    check_model(make_model(nodes, {"a": a, "b": b}, ["y", "y_w"], {"w": rand(sb)}), {"a": a, "b": b})


@pytest.mark.parametrize("opset", [13, 21])
def test_matmul_opsets(opset):
    a, b = rand((2, 3, 4)), rand((4, 6))
    check_model(make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], {"a": a, "b": b}, ["y"],
                           opset=opset), {"a": a, "b": b})


def test_matmul_chain_with_gemm():
    """MatMul feeding Gemm: buffers wired through the memory plan."""
    x = rand((4, 6))
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]),
             helper.make_node("Gemm", ["h", "w2", "c"], ["y"], transB=1)]
    inits = {"w1": rand((6, 8)), "w2": rand((3, 8)), "c": rand((3,))}
    check_model(make_model(nodes, {"x": x}, ["y"], inits), {"x": x})


@pytest.mark.parametrize("op,sa,sb", [("MatMul", (2, 3), (3, 4)), ("MatMul", (2, 2, 3), (3,)),
                                      ("Gemm", (2, 3), (3, 4))])
def test_integer_reference_matches_onnxruntime(op, sa, sb):
    """The golden model also folds int64 products (shape arithmetic)."""
    a = rng.integers(-5, 5, sa).astype(np.int64)
    b = rng.integers(-5, 5, sb).astype(np.int64)
    m = make_model([helper.make_node(op, ["a", "b"], ["y"])], {"a": a, "b": b}, ["y"], opset=17,
                   output_dtypes={"y": np.int64})
    if op == "Gemm":  # onnxruntime has no int64 Gemm: onnx's reference evaluator is the oracle
        from onnx.reference import ReferenceEvaluator
        want = ReferenceEvaluator(m).run(None, {"a": a, "b": b})[0]
    else:
        want = ort_run(m, {"a": a, "b": b})["y"]
    from microtrain.ir import Node
    node = Node(op, "n", ["a", "b"], ["y"])
    got = get_op(node).reference(node, [a, b])[0]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_macs():
    x = rand((2, 3, 4))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Reshape", ["h", "s"], ["h2"]),
             helper.make_node("Gemm", ["h2", "w2"], ["y"], transB=1)]
    inits = {"w": rand((4, 5)), "s": np.array([6, 5], np.int64), "w2": rand((7, 5))}
    cm = microtrain.compile(make_model(nodes, {"x": x}, ["y"], inits))
    macs = {}
    for node in cm.graph.nodes:
        ins = [Value(cm.graph.type_of(i), cm.graph.constants.get(i)) for i in node.inputs]
        op = get_op(node)
        if op.macs:
            macs[node.op] = op.macs(node, ins, [cm.graph.type_of(o) for o in node.outputs])
    assert macs["MatMul"] == 2 * 3 * 4 * 5 and macs["Gemm"] == 6 * 5 * 7


# ---- errors ------------------------------------------------------------------

def compile_one(op, inputs, inits, name="bad_mm", **attrs):
    m = make_model([helper.make_node(op, list(inputs) + list(inits), ["y"], name=name, **attrs)],
                   inputs, ["y"], inits)
    return microtrain.compile(m)


@pytest.mark.parametrize("op,sa,sb,attrs", [
    ("Gemm", (2, 3, 4), (4, 5), {}),           # A must be 2-D
    ("Gemm", (3, 4), (5, 4), {}),              # K mismatch without transB
    ("Gemm", (3, 4), (4, 5), {"transA": 1}),   # K mismatch with transA
    ("MatMul", (3, 4), (5, 6), {}),
    ("MatMul", (2, 3, 4), (3, 4, 5), {}),      # batch dims do not broadcast
])
def test_shape_errors(op, sa, sb, attrs):
    with pytest.raises(MicrotrainError, match="bad_mm"):
        compile_one(op, {"a": rand(sa)}, {"b": rand(sb)}, **attrs)


def test_gemm_c_not_broadcastable():
    with pytest.raises(ShapeError, match="bad_mm"):
        compile_one("Gemm", {"a": rand((M, K))}, {"b": rand((K, N)), "c": rand((M, 2))})


@pytest.mark.parametrize("op", ["MatMul", "Gemm"])
def test_runtime_integer_operands_rejected(op):
    a = np.ones((2, 3), np.int64)
    m = make_model([helper.make_node(op, ["a", "b"], ["y"], name="int_mm")], {"a": a}, ["y"],
                   {"b": np.ones((3, 2), np.int64)}, output_dtypes={"y": np.int64})
    with pytest.raises(UnsupportedOpError, match="int_mm"):
        microtrain.compile(m)


# ---- gradients (training) ------------------------------------------------------

@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape,alpha,beta", [((N,), 1.0, 1.0), ((M, 1), 0.5, -2.0), ((M, N), 1.5, 0.25)])
def test_gemm_grads(trans_a, trans_b, c_shape, alpha, beta):
    """dA (through a trainable offset on the input), dB and dC vs torch
    autograd. A is square so the transposed one still has the batch first,
    as the training harness wants."""
    from grad_check import check_grads
    m = k = 4
    x = rand((m, k))
    c_shape = tuple(m if d == M else d for d in c_shape)
    params = {"p": rand((m, k)), "b": rand((N, k) if trans_b else (k, N)), "c": rand(c_shape)}
    nodes = [helper.make_node("Add", ["x", "p"], ["a"]),
             helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=trans_a, transB=trans_b, alpha=alpha, beta=beta)]

    def torch_fn(x, p, b, c):
        a = x + p
        return alpha * ((a.T if trans_a else a) @ (b.T if trans_b else b)) + beta * c
    check_grads(nodes, {"x": x}, params, torch_fn)


@pytest.mark.parametrize("sa,sb", [((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (3, 4, 5)),
                                   ((3, 4), (4,)), ((2, 3, 4), (1, 4, 3)), ((5, 4), (4, 1))])
def test_matmul_grads(sa, sb):
    from grad_check import check_grads
    x = rand(sa)
    params = {"p": rand(sa), "w": rand(sb)}
    nodes = [helper.make_node("Add", ["x", "p"], ["a"]), helper.make_node("MatMul", ["a", "w"], ["y"])]
    check_grads(nodes, {"x": x}, params, lambda x, p, w: (x + p) @ w)
