"""Compile-time-only ops (Shape, Size, ConstantOfShape, Range, Where,
comparisons, logic, Floor/Ceil, variadic Max/Min/Sum/Mean) fold into
constants that feed run-time ops; Cast also runs in C. PyTorch-style
Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains must fold."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import microtrain
from microtrain.errors import MicrotrainError, UnsupportedOpError
from onnx_check import check_model, make_model

rng = np.random.default_rng(3)
I64 = np.int64

# Shared-code bugs (reported), marked strict so their fix shows up as XPASS:
# * passes/infer.py folds a node only when all its inputs are constants, so
#   Shape/Size of a run-time tensor (whose result depends only on the static
#   type) never fold.
# * frontend.py/infer.py store constants with np.ascontiguousarray, which turns 0-d arrays into shape (1,).


def folded_then_add(nodes, consts, folded="c", shape=(2, 3)):
    """x + <value computed by `nodes` from constants>; checks it folded away."""
    c = helper.make_node("Cast", [folded], ["cf"], to=TensorProto.FLOAT)
    add = helper.make_node("Add", ["x", "cf"], ["y"])
    x = rng.standard_normal(shape).astype(np.float32)
    m = make_model(nodes + [c, add], {"x": x}, ["y"], consts)
    cm, _ = check_model(m, {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Add"], [n.op for n in cm.graph.nodes]
    return cm


def shape_chain(scalar_index: bool, opset=17):
    """y = x.view(x.size(0), -1) as PyTorch exports it."""
    idx = np.array(0, I64) if scalar_index else np.array([0], I64)
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "i0"], ["n"], name="gather", axis=0)]
    if scalar_index:
        nodes.append(helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsq"))
    else:
        nodes.append(helper.make_node("Identity", ["n"], ["n1"], name="ident"))
    nodes += [helper.make_node("Concat", ["n1", "minus1"], ["shp"], name="concat", axis=0),
              helper.make_node("Reshape", ["x", "shp"], ["r"], name="reshape"),
              helper.make_node("Relu", ["r"], ["y"], name="relu")]
    consts = {"i0": idx, "ax0": np.array([0], I64), "minus1": np.array([-1], I64)}
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    return make_model(nodes, {"x": x}, ["y"], consts, opset=opset), x


@pytest.mark.parametrize("scalar_index", [
    False, True])
def test_pytorch_shape_chain_folds(scalar_index):
    m, x = shape_chain(scalar_index)
    cm, _ = check_model(m, {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Reshape", "Relu"]


@pytest.mark.parametrize("scalar_index", [False, True])
def test_shape_chain_from_constant_folds(scalar_index):
    """The same arithmetic starting from a constant's Shape (no run-time Shape)."""
    idx = np.array(1, I64) if scalar_index else np.array([1], I64)
    nodes = [helper.make_node("Shape", ["w"], ["s"]),
             helper.make_node("Gather", ["s", "i"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]) if scalar_index else
             helper.make_node("Identity", ["n"], ["n1"]),
             helper.make_node("Concat", ["minus1", "n1"], ["shp"], axis=0),
             helper.make_node("Reshape", ["x", "shp"], ["y"])]
    consts = {"w": np.zeros((5, 4, 3), np.float32), "i": idx, "ax": np.array([0], I64),
              "minus1": np.array([-1], I64)}
    x = rng.standard_normal((6, 4)).astype(np.float32)
    cm, _ = check_model(make_model(nodes, {"x": x}, ["y"], consts, opset=13), {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Reshape"]
    assert cm.graph.types["y"].shape == (6, 4)


@pytest.mark.parametrize("start,end", [(None, None), (1, None), (-2, None), (0, 2), (-3, -1), (2, 100), (3, 1)])
def test_shape_start_end(start, end):
    """y = concat(x, float(shape(w)[start:end])): the folded vector reaches the output."""
    attrs = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    nodes = [helper.make_node("Shape", ["w"], ["c"], **attrs),
             helper.make_node("Cast", ["c"], ["cf"], to=TensorProto.FLOAT),
             helper.make_node("Concat", ["x", "cf"], ["y"], axis=0)]
    x = rng.standard_normal(3).astype(np.float32)
    m = make_model(nodes, {"x": x}, ["y"], {"w": np.zeros((2, 3, 4, 5), np.float32)}, opset=15)
    cm, _ = check_model(m, {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Concat"]


def test_size_folds():
    nodes = [helper.make_node("Size", ["w"], ["c"])]
    folded_then_add(nodes, {"w": np.zeros((3, 7), np.float32)})


@pytest.mark.parametrize("value", [None, np.array([2.5], np.float32), np.array([3], I64)])
@pytest.mark.parametrize("shape", [[2, 3], [3], [1, 1]])
def test_constant_of_shape(value, shape):
    attrs = {} if value is None else {"value": helper.make_tensor(
        "v", helper.np_dtype_to_tensor_dtype(value.dtype), [1], value.tolist())}
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["c"], **attrs)]
    folded_then_add(nodes, {"s": np.array(shape, I64)})


@pytest.mark.parametrize("start,limit,delta,dtype", [
    (0, 6, 1, I64), (1, 10, 3, I64), (5, -1, -2, I64), (0, 3, 1, np.int32),
    (0.5, 3.0, 0.5, np.float32), (2.0, 0.1, -0.7, np.float32), (3, 3, 1, I64)])
def test_range(start, limit, delta, dtype):
    consts = {"a": np.array(start, dtype), "b": np.array(limit, dtype), "d": np.array(delta, dtype)}
    nodes = [helper.make_node("Range", ["a", "b", "d"], ["r"]),
             helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
             helper.make_node("Concat", ["x", "rf"], ["y"], axis=0)]
    x = rng.standard_normal(2).astype(np.float32)
    m = make_model(nodes, {"x": x}, ["y"], consts, opset=13)
    cm, _ = check_model(m, {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Concat"]


@pytest.mark.parametrize("dtype", [np.float32, I64])
@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
def test_comparisons_fold_into_where(op, dtype):
    a = rng.integers(-3, 3, (2, 3)).astype(dtype)
    b = rng.integers(-3, 3, (3,)).astype(dtype)
    nodes = [helper.make_node(op, ["a", "b"], ["m"]),
             helper.make_node("Where", ["m", "one", "zero"], ["c"])]
    consts = {"a": a, "b": b, "one": np.array([1.0], np.float32), "zero": np.zeros((2, 1), np.float32)}
    folded_then_add(nodes, consts)


@pytest.mark.parametrize("op", ["And", "Or", "Xor", "Not"])
def test_logic_ops(op):
    p = np.array([[True, False, True], [False, False, True]])
    q = np.array([True, True, False])
    ins = ["p"] if op == "Not" else ["p", "q"]
    nodes = [helper.make_node(op, ins, ["m"]),
             helper.make_node("Where", ["m", "a", "b"], ["c"])]
    consts = {"p": p, "q": q, "a": np.arange(6, dtype=I64).reshape(2, 3), "b": np.array(-4, I64)}
    folded_then_add(nodes, consts)


@pytest.mark.parametrize("op", ["Floor", "Ceil"])
def test_floor_ceil(op):
    v = np.array([-2.5, -1.0, -0.2, 0.0, 0.3, 1.7], np.float32).reshape(2, 3)
    folded_then_add([helper.make_node(op, ["v"], ["c"])], {"v": v})


@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
@pytest.mark.parametrize("shapes", [[(2, 3)], [(2, 3), (3,)], [(1, 3), (2, 1), ()]])
def test_variadic(op, shapes):
    names = [f"v{i}" for i in range(len(shapes))]
    consts = {n: rng.standard_normal(s).astype(np.float32) for n, s in zip(names, shapes)}
    folded_then_add([helper.make_node(op, names, ["c"])], consts)


def test_variadic_int64():
    consts = {"a": np.array([3, -7, 2], I64), "b": np.array([[1], [5]], I64)}
    nodes = [helper.make_node("Max", ["a", "b"], ["m"]), helper.make_node("Min", ["m", "a"], ["n"]),
             helper.make_node("Max", ["n", "b", "a"], ["c"])]
    folded_then_add(nodes, consts)


# ---- Cast at run time ----------------------------------------------------------------

@pytest.mark.parametrize("src,dst", [(np.float32, I64), (np.float32, np.int32), (I64, np.float32),
                                     (np.int32, np.float32), (I64, np.int32), (np.int32, I64),
                                     (np.float32, np.float32)])
def test_cast_runtime(src, dst):
    if np.dtype(src).kind == "f":
        x = (rng.standard_normal((3, 4)) * 50).astype(src)
    else:
        x = rng.integers(-1000, 1000, (3, 4)).astype(src)
    node = helper.make_node("Cast", ["x"], ["y"], to=helper.np_dtype_to_tensor_dtype(np.dtype(dst)))
    m = make_model([node], {"x": x}, ["y"], output_dtypes={"y": dst})
    check_model(m, {"x": x})


def test_cast_runtime_to_bool_rejected():
    node = helper.make_node("Cast", ["x"], ["y"], name="c_bool", to=TensorProto.BOOL)
    m = make_model([node], {"x": np.zeros(3, np.float32)}, ["y"], output_dtypes={"y": np.bool_})
    with pytest.raises(UnsupportedOpError, match="c_bool.*Cast"):
        microtrain.compile(m)


def test_cast_int_ids_into_gather():
    """Float ids from the host, cast to int64, then an embedding lookup."""
    table = rng.standard_normal((9, 4)).astype(np.float32)
    ids = np.array([[0, 8, 3]], np.float32)
    nodes = [helper.make_node("Cast", ["ids"], ["i"], to=TensorProto.INT64),
             helper.make_node("Gather", ["table", "i"], ["y"])]
    check_model(make_model(nodes, {"ids": ids}, ["y"], {"table": table}), {"ids": ids})


# ---- errors ------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Floor", "Not"])
def test_compile_time_op_on_runtime_input_names_node(op):
    dtype = np.bool_ if op == "Not" else np.float32
    node = helper.make_node(op, ["x"], ["y"], name="needs_fold")
    m = make_model([node], {"x": np.zeros((2, 2), dtype)}, ["y"], output_dtypes={"y": dtype})
    with pytest.raises(UnsupportedOpError, match="needs_fold.*only supported when all its inputs are constants"):
        microtrain.compile(m)


def test_constant_of_shape_runtime_shape_names_node():
    node = helper.make_node("ConstantOfShape", ["s"], ["y"], name="cos")
    m = make_model([node], {"s": np.array([2, 2], I64)}, ["y"])
    with pytest.raises(MicrotrainError, match="cos.*must be a constant"):
        microtrain.compile(m)


def test_torch_export_with_dynamic_batch_folds():
    """A real TorchScript export with a dynamic batch axis: x.size(0) becomes
    Shape->Gather->Unsqueeze->Concat->Reshape, expand(-1, 2, -1) becomes
    ConstantOfShape/Equal/Where->Expand. Fixing the batch must fold them all."""
    import io
    import warnings
    torch = pytest.importorskip("torch")
    import onnx

    class Net(torch.nn.Module):
        def forward(self, x):
            y = x.transpose(1, 2)
            y = y.reshape(y.size(0), -1)
            z = y.unsqueeze(1).expand(-1, 2, -1)
            return torch.cat([y, y[:, :3]], dim=1), z.flatten(1)

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Net(), (torch.randn(2, 3, 4),), buf, dynamo=False, opset_version=17,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    model = onnx.load_from_string(buf.getvalue())
    assert "Shape" in [n.op_type for n in model.graph.node]
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    cm = microtrain.compile(model, input_shapes={"x": (2, 3, 4)})
    assert {n.op for n in cm.graph.nodes} <= {"Transpose", "Reshape", "Unsqueeze", "Expand", "Slice",
                                                 "Concat", "Flatten"}
    from onnx_check import assert_close, ort_run
    got, want = cm.run({"x": x}), ort_run(model, {"x": x})
    for name in cm.output_names:
        assert_close(got[name], want[name], what=name)


def test_int64_shape_arithmetic_through_data_movement_ops():
    """Slice, Unsqueeze, Squeeze, Concat, Transpose, Expand, Split and Cast folded on int64."""
    nodes = [helper.make_node("Shape", ["w"], ["s"]),                        # [5, 4, 3]
             helper.make_node("Slice", ["s", "one", "big"], ["t"]),          # [4, 3]
             helper.make_node("Unsqueeze", ["t", "ax0"], ["u"]),             # [[4, 3]]
             helper.make_node("Transpose", ["u"], ["ut"]),                   # [[4], [3]]
             helper.make_node("Squeeze", ["ut", "ax1"], ["q"]),              # [4, 3]
             helper.make_node("Split", ["q"], ["q0", "q1"], axis=0),        # [4], [3]
             helper.make_node("Mul", ["q0", "q1"], ["p"]),                   # [12]
             helper.make_node("Expand", ["p", "one"], ["pe"]),               # [12]
             helper.make_node("Concat", ["minus1", "pe"], ["shp"], axis=0),  # [-1, 12]
             helper.make_node("Reshape", ["x", "shp"], ["y"])]
    consts = {"w": np.zeros((5, 4, 3), np.float32), "one": np.array([1], I64),
              "big": np.array([np.iinfo(I64).max], I64), "ax0": np.array([0], I64),
              "ax1": np.array([1], I64), "minus1": np.array([-1], I64)}
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    cm, _ = check_model(make_model(nodes, {"x": x}, ["y"], consts, opset=13), {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Reshape"]
    assert cm.graph.types["y"].shape == (2, 12)
