"""Shape family: views (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
Dropout), Transpose, Concat, Split, Slice, Pad, Expand. C vs golden vs
onnxruntime over ranks, axes (negative too) and opset variants."""
import numpy as np
import pytest
from onnx import helper

import microtrain
from microtrain.errors import MicrotrainError, ShapeError, UnsupportedOpError
from onnx_check import check_model, make_model

rng = np.random.default_rng(1)
I64 = np.int64


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def run_single(op, x, attrs=None, consts=None, opset=17, n_out=1, extra_inputs=None):
    """One `op` node on run-time input x (plus constant operands), checked."""
    consts = consts or {}
    names = ["x"] + [k if v is not None else "" for k, v in consts.items()]
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, name="n0", **(attrs or {}))
    inits = {k: v for k, v in consts.items() if v is not None}
    inputs = {"x": x, **(extra_inputs or {})}
    m = make_model([node], inputs, outs, inits, opset=opset,
                   output_dtypes={o: x.dtype for o in outs})
    return check_model(m, inputs)


# ---- views --------------------------------------------------------------------

@pytest.mark.parametrize("shape,target", [
    ((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((2, 3, 4), (0, -1)), ((2, 3, 4), (4, 0, 2)),
    ((24,), (2, 3, 4)), ((1, 6), (3, -1, 1)), ((2, 3, 4, 5), (0, 0, -1))])
@pytest.mark.parametrize("opset", [13, 14, 21])
def test_reshape(shape, target, opset):
    cm, _ = run_single("Reshape", rand(*shape), consts={"shape": np.array(target, I64)}, opset=opset)
    assert cm.graph.nodes[0].op == "Reshape"


def test_reshape_allowzero():
    run_single("Reshape", rand(2, 3), attrs={"allowzero": 1}, consts={"shape": np.array([3, 2], I64)},
               opset=14)


@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), (2, 1, 3, 2)])
@pytest.mark.parametrize("axis", [0, 1, -1, "rank"])
def test_flatten(shape, axis):
    axis = len(shape) if axis == "rank" else axis
    run_single("Flatten", rand(*shape), attrs={"axis": axis})


def test_flatten_default_axis():
    run_single("Flatten", rand(3, 2, 2))


@pytest.mark.parametrize("shape,axes", [((1, 3, 1, 4), [0]), ((1, 3, 1, 4), [-2]), ((1, 3, 1, 4), [0, 2]),
                                        ((1, 3, 1, 4), None), ((2, 1), [-1]), ((1, 1, 1), None)])
@pytest.mark.parametrize("opset", [11, 13, 21])
def test_squeeze(shape, axes, opset):
    if opset < 13:
        attrs, consts = ({"axes": axes} if axes is not None else {}), {}
    else:
        attrs, consts = {}, ({"axes": np.array(axes, I64)} if axes is not None else {})
    run_single("Squeeze", rand(*shape), attrs=attrs, consts=consts, opset=opset)


@pytest.mark.parametrize("shape,axes", [((3, 4), [0]), ((3, 4), [-1]), ((3, 4), [1, 3]), ((5,), [0, -1]),
                                        ((2, 3, 4), [2]), ((), [0])])
@pytest.mark.parametrize("opset", [11, 13, 21])
def test_unsqueeze(shape, axes, opset):
    x = rng.standard_normal(shape).astype(np.float32)
    if opset < 13:
        run_single("Unsqueeze", x, attrs={"axes": axes}, opset=opset)
    else:
        run_single("Unsqueeze", x, consts={"axes": np.array(axes, I64)}, opset=opset)


@pytest.mark.parametrize("op", ["Identity", "Dropout"])
def test_noop_views_as_graph_output(op):
    """The view's output is a graph output: the C must copy into it."""
    cm, _ = run_single(op, rand(2, 5))
    assert "memcpy(outputs[0]" in (cm.project_dir / "network.c").read_text()


def test_dropout_with_ratio_and_training_false():
    x = rand(3, 4)
    node = helper.make_node("Dropout", ["x", "r", "t"], ["y"], name="d")
    m = make_model([node], {"x": x}, ["y"], {"r": np.array(0.5, np.float32), "t": np.array(False)}, opset=13)
    check_model(m, {"x": x})


def test_dropout_mask_output_rejected():
    node = helper.make_node("Dropout", ["x"], ["y", "mask"], name="drop_mask")
    m = make_model([node], {"x": rand(2, 3)}, ["y", "mask"], output_dtypes={"mask": np.bool_}, opset=13)
    with pytest.raises(UnsupportedOpError, match="drop_mask.*mask"):
        microtrain.compile(m)


def test_view_of_input_feeds_compute_and_view_is_output():
    """x -> Reshape (view of a graph input) -> Relu -> Flatten (graph output)."""
    x = rand(2, 3, 4)
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"], name="reshape"),
             helper.make_node("Relu", ["r"], ["a"], name="relu"),
             helper.make_node("Flatten", ["a"], ["y"], name="flat", axis=0),
             helper.make_node("Unsqueeze", ["a", "ax"], ["u"], name="unsq"),
             helper.make_node("Sigmoid", ["u"], ["z"], name="sig")]
    m = make_model(nodes, {"x": x}, ["y", "z"], {"s": np.array([6, 4], I64), "ax": np.array([1], I64)})
    cm, _ = check_model(m, {"x": x})
    src = (cm.project_dir / "network.c").read_text()
    assert "view: shares its input's memory" in src  # reshape and unsqueeze emit no code
    assert "memcpy(outputs[0]" in src                 # flatten is an output: copied


def test_reshape_non_constant_shape_names_node():
    x = rand(2, 6)
    shape = np.array([3, 4], I64)
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="my_reshape")
    m = make_model([node], {"x": x, "shape": shape}, ["y"])
    with pytest.raises(UnsupportedOpError, match="my_reshape.*Reshape.*must be a constant"):
        microtrain.compile(m)


def test_reshape_bad_size_names_node():
    node = helper.make_node("Reshape", ["x", "s"], ["y"], name="bad_reshape")
    m = make_model([node], {"x": rand(2, 6)}, ["y"], {"s": np.array([5, -1], I64)})
    with pytest.raises(ShapeError, match="bad_reshape"):
        microtrain.compile(m)


def test_squeeze_non_unit_axis_names_node():
    node = helper.make_node("Squeeze", ["x", "a"], ["y"], name="sq")
    m = make_model([node], {"x": rand(2, 3)}, ["y"], {"a": np.array([0], I64)}, opset=13)
    with pytest.raises(ShapeError, match="sq.*axis 0 of size 2"):
        microtrain.compile(m)


def test_dropout_training_mode_rejected():
    node = helper.make_node("Dropout", ["x", "", "t"], ["y"], name="drop")
    m = make_model([node], {"x": rand(2, 3)}, ["y"], {"t": np.array(True)}, opset=13)
    with pytest.raises(UnsupportedOpError, match="drop.*training"):
        microtrain.compile(m)


# ---- Transpose -------------------------------------------------------------------

@pytest.mark.parametrize("shape,perm", [
    ((3, 4), None), ((3, 4), [1, 0]), ((2, 3, 4), [0, 2, 1]), ((2, 3, 4), [2, 0, 1]), ((2, 3, 4), None),
    ((2, 3, 4, 5), [0, 2, 3, 1]), ((2, 3, 4, 5), [0, 3, 1, 2]), ((1, 3, 1, 5), [3, 1, 2, 0]),
    ((2, 3, 4, 5), [0, 1, 2, 3]), ((2, 1, 3, 2, 2), [4, 2, 0, 3, 1]), ((7,), None)])
def test_transpose(shape, perm):
    run_single("Transpose", rand(*shape), attrs={"perm": perm} if perm is not None else {})


def test_transpose_int64_runtime():
    x = rng.integers(-100, 100, (3, 2, 4)).astype(I64)
    run_single("Transpose", x, attrs={"perm": [2, 0, 1]})


def test_transpose_bad_perm_names_node():
    node = helper.make_node("Transpose", ["x"], ["y"], name="tp", perm=[0, 0])
    m = make_model([node], {"x": rand(2, 3)}, ["y"])
    with pytest.raises(MicrotrainError, match="tp.*perm"):
        microtrain.compile(m)


# ---- Concat ----------------------------------------------------------------------

@pytest.mark.parametrize("shapes,axis", [
    ([(2, 3), (2, 5)], 1), ([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 2)], -1),
    ([(1, 2, 3, 4), (1, 3, 3, 4)], 1), ([(2, 2, 3), (2, 2, 3), (2, 2, 3)], -2),
    ([(5,), (3,)], 0), ([(2, 3, 4), (2, 3, 1)], 2)])
@pytest.mark.parametrize("const_mask", [(0, 0, 0), (0, 1, 0), (1, 0, 1)])
def test_concat(shapes, axis, const_mask):
    arrays = [rand(*s) for s in shapes]
    names = [f"x{i}" for i in range(len(shapes))]
    is_const = [bool(const_mask[i]) for i in range(len(shapes))]
    inputs = {n: a for n, a, c in zip(names, arrays, is_const) if not c}
    inits = {n: a for n, a, c in zip(names, arrays, is_const) if c}
    m = make_model([helper.make_node("Concat", names, ["y"], axis=axis)], inputs, ["y"], inits)
    check_model(m, inputs)


def test_concat_mismatch_names_node():
    node = helper.make_node("Concat", ["a", "b"], ["y"], name="cat", axis=1)
    m = make_model([node], {"a": rand(2, 3), "b": rand(3, 3)}, ["y"])
    with pytest.raises(ShapeError, match="cat"):
        microtrain.compile(m)


# ---- Split -----------------------------------------------------------------------

@pytest.mark.parametrize("shape,axis,split,n_out", [
    ((6, 4), 0, None, 2), ((6, 4), 1, None, 4), ((2, 6, 3), -2, [1, 2, 3], 3), ((2, 6, 3), 2, [2, 1], 2),
    ((10,), 0, [7, 3], 2), ((1, 4, 2, 2), 1, [1, 1, 2], 3)])
@pytest.mark.parametrize("opset", [11, 13, 18])
def test_split(shape, axis, split, n_out, opset):
    attrs, consts = {"axis": axis}, {}
    if split is not None:
        if opset < 13:
            attrs["split"] = split
        else:
            consts["split"] = np.array(split, I64)
    elif opset >= 18:
        attrs["num_outputs"] = n_out
    run_single("Split", rand(*shape), attrs=attrs, consts=consts, opset=opset, n_out=n_out)


@pytest.mark.parametrize("dim,n_out", [(7, 3), (5, 2), (10, 4), (3, 3)])
def test_split_num_outputs_uneven(dim, n_out):
    run_single("Split", rand(2, dim), attrs={"axis": 1, "num_outputs": n_out}, opset=18, n_out=n_out)


def test_split_uneven_without_sizes_names_node():
    node = helper.make_node("Split", ["x"], ["a", "b"], name="spl", axis=0)
    m = make_model([node], {"x": rand(5, 2)}, ["a", "b"], opset=13)
    with pytest.raises(ShapeError, match="spl.*evenly"):
        microtrain.compile(m)


# ---- Slice -----------------------------------------------------------------------

INT64_MAX, INT64_MIN = np.iinfo(I64).max, np.iinfo(I64).min

SLICES = [  # shape, starts, ends, axes, steps
    ((10,), [2], [8], None, None),
    ((10,), [-3], [INT64_MAX], [0], [1]),
    ((10,), [8], [1], [0], [-2]),
    ((10,), [-1], [INT64_MIN], [0], [-1]),
    ((10,), [20], [-20], [0], [-3]),
    ((10,), [0], [100], None, [3]),
    ((4, 6), [1, 2], [3, 5], None, None),
    ((4, 6), [0], [-1], [-1], None),
    ((4, 6), [3, 5], [0, 0], [0, 1], [-1, -2]),
    ((3, 4, 5), [1], [2], [1], None),
    ((3, 4, 5), [0, 4, 1], [3, -100, 5], [0, -1, 1], [2, -1, 2]),
    ((2, 3, 4, 5), [0, 0], [1, 3], [0, 3], None),
    ((2, 3, 4, 5), [-1, 1], [INT64_MIN, 3], [2, 3], [-1, 1]),
    ((4, 6), [2], [2], [1], None),  # empty result
]


@pytest.mark.parametrize("shape,starts,ends,axes,steps", SLICES)
def test_slice(shape, starts, ends, axes, steps):
    consts = {"starts": np.array(starts, I64), "ends": np.array(ends, I64)}
    if axes is not None or steps is not None:
        consts["axes"] = np.array(axes if axes is not None else list(range(len(starts))), I64)
    if steps is not None:
        consts["steps"] = np.array(steps, I64)
    run_single("Slice", rand(*shape), consts=consts, opset=13)


def test_slice_omitted_axes_with_steps():
    consts = {"starts": np.array([3], I64), "ends": np.array([0], I64), "axes": None,
              "steps": np.array([-1], I64)}
    run_single("Slice", rand(5, 2), consts=consts)


def test_slice_int32_operands_and_int64_data():
    x = rng.integers(0, 50, (6, 4)).astype(I64)
    consts = {"starts": np.array([5, 1], np.int32), "ends": np.array([0, 4], np.int32),
              "axes": np.array([0, 1], np.int32), "steps": np.array([-2, 2], np.int32)}
    run_single("Slice", x, consts=consts)


def test_slice_runtime_starts_names_node():
    node = helper.make_node("Slice", ["x", "s", "e"], ["y"], name="slc")
    m = make_model([node], {"x": rand(4), "s": np.array([1], I64)}, ["y"], {"e": np.array([3], I64)})
    with pytest.raises(UnsupportedOpError, match="slc.*starts.*must be a constant"):
        microtrain.compile(m)


# ---- Pad -------------------------------------------------------------------------

PADS = [  # shape, pads
    ((5,), [2, 3]),
    ((3, 4), [1, 2, 2, 1]),
    ((3, 4), [0, 3, 0, 0]),
    ((2, 3, 4), [0, 1, 2, 1, 0, 3]),
    ((1, 2, 4, 5), [0, 0, 1, 2, 0, 0, 2, 1]),
    ((2, 3, 4), [0, 0, 0, 0, 0, 0]),
]


@pytest.mark.parametrize("shape,pads", PADS)
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_modes(shape, pads, mode):
    consts = {"pads": np.array(pads, I64)}
    if mode == "constant":
        consts["value"] = np.array(1.5, np.float32)
    run_single("Pad", rand(*shape), attrs={"mode": mode}, consts=consts, opset=19)


@pytest.mark.parametrize("pads", [[-1, 2, 1, -2], [1, -1, -1, 1], [-2, -1, 0, 0]])
def test_pad_negative_crops(pads):
    run_single("Pad", rand(4, 5), consts={"pads": np.array(pads, I64)}, opset=13)


@pytest.mark.parametrize("axes,pads,mode", [([1], [2, 1], "constant"), ([-1, 0], [1, 0, 2, 1], "reflect"),
                                            ([0], [1, 1], "edge"), ([-2], [2, 3], "wrap")])
def test_pad_axes_input(axes, pads, mode):
    consts = {"pads": np.array(pads, I64), "value": None, "axes": np.array(axes, I64)}
    run_single("Pad", rand(3, 4, 5), attrs={"mode": mode}, consts=consts, opset=19)


def test_pad_no_constant_value_defaults_to_zero():
    run_single("Pad", rand(2, 3), consts={"pads": np.array([1, 1, 1, 1], I64)}, opset=13)


def test_pad_int64_data():
    x = rng.integers(-9, 9, (3, 3)).astype(I64)
    run_single("Pad", x, attrs={"mode": "constant"},
               consts={"pads": np.array([1, 0, 0, 2], I64), "value": np.array(7, I64)}, opset=13)


def test_pad_opset2_attributes():
    x = rand(3, 4)
    node = helper.make_node("Pad", ["x"], ["y"], pads=[1, 0, 0, 2], value=2.5)
    m = make_model([node], {"x": x}, ["y"], opset=10)
    check_model(m, {"x": x})


def test_pad_unknown_mode_names_node():
    node = helper.make_node("Pad", ["x", "p"], ["y"], name="pad1", mode="mirror")
    m = make_model([node], {"x": rand(3)}, ["y"], {"p": np.array([1, 1], I64)}, opset=13)
    with pytest.raises(UnsupportedOpError, match="pad1.*mode"):
        microtrain.compile(m)


def test_pad_negative_reflect_rejected():
    node = helper.make_node("Pad", ["x", "p"], ["y"], name="pad2", mode="reflect")
    m = make_model([node], {"x": rand(5)}, ["y"], {"p": np.array([-1, 1], I64)}, opset=13)
    with pytest.raises(UnsupportedOpError, match="pad2.*negative"):
        microtrain.compile(m)


# ---- Expand ----------------------------------------------------------------------

@pytest.mark.parametrize("shape,target", [
    ((3, 1), (3, 4)), ((1,), (2, 3)), ((4,), (2, 3, 4)), ((2, 1, 3), (2, 5, 3)), ((1, 1), (3, 1, 2)),
    ((3, 4), (1, 1)), ((2, 1, 1, 3), (2, 2, 4, 3)), ((), (2, 2))])
def test_expand(shape, target):
    x = rng.standard_normal(shape).astype(np.float32)
    run_single("Expand", x, consts={"shape": np.array(target, I64)})


def test_expand_bad_shape_names_node():
    node = helper.make_node("Expand", ["x", "s"], ["y"], name="exp")
    m = make_model([node], {"x": rand(3, 2)}, ["y"], {"s": np.array([4, 3], I64)})
    with pytest.raises(MicrotrainError, match="exp.*broadcast"):
        microtrain.compile(m)


# ---- other element sizes: the kernels move bytes, not floats -------------------------

# onnxruntime (the oracle) has no int16 Pad kernel.
MOVEMENT_CASES = [(c, d) for c in ["transpose", "slice", "expand", "pad", "concat", "split"]
                  for d in [np.int8, np.uint8, np.int16, np.int32, np.int64, np.float64]
                  if (c, d) != ("pad", np.int16)]


@pytest.mark.parametrize("case,dtype", MOVEMENT_CASES)
def test_data_movement_other_dtypes(dtype, case):
    x = rng.integers(-100, 100, (3, 4, 2)).astype(dtype)
    if case == "transpose":
        run_single("Transpose", x, attrs={"perm": [2, 0, 1]})
    elif case == "slice":
        run_single("Slice", x, consts={"starts": np.array([3, 1], I64), "ends": np.array([0, 4], I64),
                                       "axes": np.array([1, 0], I64), "steps": np.array([-2, 1], I64)})
    elif case == "expand":
        run_single("Expand", x[:, :1], consts={"shape": np.array([2, 3, 5, 2], I64)})
    elif case == "pad":
        run_single("Pad", x, attrs={"mode": "reflect"}, consts={"pads": np.array([1, 2, 0, 0, 1, 1], I64)},
                   opset=13)
    elif case == "concat":
        inputs = {"x": x, "b": x[:, :1].copy()}
        m = make_model([helper.make_node("Concat", ["x", "b"], ["y"], axis=1)], inputs, ["y"],
                       output_dtypes={"y": dtype})
        check_model(m, inputs)
    else:
        run_single("Split", x, attrs={"axis": 1}, consts={"split": np.array([1, 3], I64)}, n_out=2)


def test_slice_opset9_attributes():
    x = rand(5, 6)
    node = helper.make_node("Slice", ["x"], ["y"], starts=[1, -4], ends=[4, 1000], axes=[0, 1])
    m = make_model([node], {"x": x}, ["y"], opset=9)
    check_model(m, {"x": x})


def test_collapse_helpers_preserve_meaning():
    """The axis-merging done before calling the kernels, checked against numpy
    on random shapes (size-1 axes included), without compiling."""
    from numpy.lib.stride_tricks import as_strided
    from microtrain.ops.slice import collapse_strided, dense_strides
    from microtrain.ops.transpose import collapse_transpose
    for _ in range(300):
        rank = int(rng.integers(1, 6))
        shape = tuple(int(d) for d in rng.choice([1, 1, 2, 3], rank))
        x = np.arange(int(np.prod(shape))).reshape(shape)
        perm = [int(p) for p in rng.permutation(rank)]
        in_shape, new_perm = collapse_transpose(shape, perm)
        got = x.reshape(in_shape).transpose(new_perm).reshape(-1)
        np.testing.assert_array_equal(got, x.transpose(perm).reshape(-1))
        strides = [dense_strides(shape)[p] for p in perm]
        out_shape = [shape[p] for p in perm]
        cs, cst = collapse_strided(out_shape, strides)
        flat = x.reshape(-1)
        view = as_strided(flat, cs, [s * flat.itemsize for s in cst])
        np.testing.assert_array_equal(view.reshape(-1), x.transpose(perm).reshape(-1))
