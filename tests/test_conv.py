"""Conv and ConvTranspose: C and golden model vs onnxruntime over kernel sizes,
strides, dilations, pads, auto_pad, groups, bias, batch, 1-D/2-D/3-D, and
run-time weights; plus the error paths."""
import itertools

import numpy as np
import pytest
from onnx import helper

import microtrain
from microtrain.errors import MicrotrainError, ShapeError, UnsupportedOpError
from onnx.reference import ReferenceEvaluator

from onnx_check import assert_close, check_model, make_model

rng = np.random.default_rng(0)


def rand(shape):
    return rng.standard_normal(shape).astype(np.float32)


def case(x_shape, w_shape, bias=True, weight_runtime=False, **attrs) -> dict:
    return dict(x_shape=x_shape, w_shape=w_shape, bias=bias, weight_runtime=weight_runtime, attrs=attrs)


def check_convs(op, cases: dict, opset=17, oracle="ort") -> dict:
    """One model holding one `op` node per case (tag -> case(...)), compiled
    once: C and golden vs the oracle, per output `y_<tag>`. oracle="onnx" uses
    onnx's reference evaluator, for attributes onnxruntime does not implement.
    Returns the C outputs by tag."""
    nodes, inputs, inits = [], {}, {}
    for tag, c in cases.items():
        w_shape, attrs = c["w_shape"], c["attrs"]
        out_ch = w_shape[0] if op == "Conv" else w_shape[1] * attrs.get("group", 1)
        inputs[f"x_{tag}"] = rand(c["x_shape"])
        (inputs if c["weight_runtime"] else inits)[f"w_{tag}"] = rand(w_shape)
        names = [f"x_{tag}", f"w_{tag}"]
        if c["bias"]:
            inits[f"b_{tag}"] = rand((out_ch,))
            names.append(f"b_{tag}")
        nodes.append(helper.make_node(op, names, [f"y_{tag}"], name=f"{op}_{tag}", **attrs))
    outputs = [f"y_{tag}" for tag in cases]
    m = make_model(nodes, inputs, outputs, inits, opset=opset)
    if oracle == "ort":
        _, got = check_model(m, inputs)
    else:
        cm, got = check_model(m, inputs, compare_ort=False)
        want = dict(zip(outputs, ReferenceEvaluator(m).run(None, inputs)))
        ref = cm.reference(inputs)
        for name in outputs:
            assert_close(ref[name], want[name], what=f"golden vs onnx reference, {name}")
    return {tag: got[f"y_{tag}"] for tag in cases}


def run(op, x_shape, w_shape, attrs, bias=True, weight_runtime=False, opset=17, oracle="ort"):
    """Check a single node; returns its C output."""
    return check_convs(op, {"0": case(x_shape, w_shape, bias, weight_runtime, **attrs)}, opset, oracle)["0"]


def pads_for(kind, nsp, k):
    """Symmetric or asymmetric explicit pads (begin..., end...) for kernel k."""
    half = k // 2
    if kind == "sym":
        return [half] * (2 * nsp)
    return [half + 1] * nsp + [max(half - 1, 0)] * nsp if k > 1 else [1] * nsp + [0] * nsp


# ---- Conv --------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
def test_conv_geometry(k, stride, dilation):
    """Symmetric and asymmetric pads, 1-D and 2-D, in one model."""
    cases = {}
    for pads, nsp in itertools.product(["sym", "asym"], [1, 2]):
        cases[f"{pads}_{nsp}d"] = case((1, 3, *(11, 9)[:nsp]), (4, 3, *(k,) * nsp), strides=[stride] * nsp,
                                       dilations=[dilation] * nsp, pads=pads_for(pads, nsp, k))
    check_convs("Conv", cases)


@pytest.mark.parametrize("group", [1, 2, "depthwise", "depthwise_x2"])
@pytest.mark.parametrize("batch", [1, 2])
def test_conv_groups_bias_batch(group, batch):
    """With and without bias, 1-D and 2-D, in one model."""
    c = 4
    if group == "depthwise":
        g, m = c, c
    elif group == "depthwise_x2":  # channel multiplier 2
        g, m = c, 2 * c
    else:
        g, m = group, 6
    cases = {}
    for bias, nsp in itertools.product([True, False], [1, 2]):
        cases[f"bias{int(bias)}_{nsp}d"] = case((batch, c, *(7, 6)[:nsp]), (m, c // g, *(3,) * nsp), bias=bias,
                                                group=g, pads=[1] * (2 * nsp))
    check_convs("Conv", cases)


@pytest.mark.parametrize("auto_pad", ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (3, 1), (2, 2)])
def test_conv_auto_pad(auto_pad, stride, dilation):
    """Even and odd kernels (odd total SAME padding), 1-D and 2-D, in one model."""
    cases = {}
    for k, nsp in itertools.product([2, 3, 5], [1, 2]):
        cases[f"k{k}_{nsp}d"] = case((1, 2, *(10, 9)[:nsp]), (3, 2, *(k,) * nsp), auto_pad=auto_pad,
                                     strides=[stride] * nsp, dilations=[dilation] * nsp)
    # onnxruntime refuses SAME_* with dilation; onnx's reference evaluator is the oracle there.
    oracle = "onnx" if auto_pad.startswith("SAME") and dilation > 1 else "ort"
    check_convs("Conv", cases, oracle=oracle)


@pytest.mark.parametrize("attrs", [
    dict(), dict(strides=[2, 1, 2], pads=[1, 0, 2, 0, 1, 1]), dict(dilations=[1, 2, 1], group=2),
    dict(auto_pad="SAME_LOWER", strides=[1, 2, 2])])
def test_conv3d(attrs):
    w_in = 4 // attrs.get("group", 1)
    run("Conv", (2, 4, 5, 6, 7), (2, w_in, 3, 2, 3), attrs)


def test_conv_mixed_per_axis_attributes():
    attrs = dict(kernel_shape=[3, 2], strides=[2, 1], dilations=[1, 3], pads=[0, 2, 1, 1])
    run("Conv", (1, 2, 9, 8), (5, 2, 3, 2), attrs)


@pytest.mark.parametrize("opset", [13, 21])
def test_conv_opsets(opset):
    run("Conv", (1, 3, 6, 6), (2, 3, 3, 3), dict(pads=[1, 1, 1, 1]), opset=opset)


@pytest.mark.parametrize("group", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_runtime_weight(group, bias):
    run("Conv", (2, 4, 6, 5), (4, 4 // group, 3, 3), dict(group=group, strides=[2, 1]), bias=bias,
        weight_runtime=True)


def test_conv_kernel_hand_checked():
    """A 1x1-channel 3x3 box filter over a ramp: independent of any oracle."""
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 3, 3), np.float32)
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"])], {"x": x}, ["y"], {"w": w})
    _, got = check_model(m, {"x": x})
    np.testing.assert_allclose(got["y"], [[[[45, 54], [81, 90]]]])


def conv_error(attrs, x_shape=(1, 2, 6, 6), w_shape=(3, 2, 3, 3), op="Conv", x_dtype=np.float32):
    x = np.zeros(x_shape, x_dtype)
    w = np.zeros(w_shape, x_dtype)
    m = make_model([helper.make_node(op, ["x", "w"], ["y"], name="bad_conv", **attrs)], {"x": x}, ["y"], {"w": w})
    return lambda: microtrain.compile(m)


@pytest.mark.parametrize("attrs,x_shape,w_shape,err", [
    (dict(auto_pad="SAME"), (1, 2, 6, 6), (3, 2, 3, 3), UnsupportedOpError),
    (dict(pads=[-1, 0, 0, 0]), (1, 2, 6, 6), (3, 2, 3, 3), UnsupportedOpError),
    (dict(kernel_shape=[2, 2]), (1, 2, 6, 6), (3, 2, 3, 3), ShapeError),
    (dict(strides=[1, 1, 1]), (1, 2, 6, 6), (3, 2, 3, 3), ShapeError),
    (dict(group=2), (1, 2, 6, 6), (3, 2, 3, 3), ShapeError),
    (dict(), (1, 2, 2, 6), (3, 2, 3, 3), ShapeError),                 # kernel larger than input
    (dict(), (1, 1, 3, 3, 3, 3), (1, 1, 1, 1, 1, 1), UnsupportedOpError),  # 4 spatial dims
])
def test_conv_errors(attrs, x_shape, w_shape, err):
    with pytest.raises(err, match="bad_conv"):
        conv_error(attrs, x_shape, w_shape)()


def test_conv_integer_runtime_input_is_rejected():
    x = np.zeros((1, 2, 6, 6), np.int64)
    w = np.zeros((3, 2, 3, 3), np.int64)
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="int_conv")], {"x": x}, ["y"], {"w": w},
                   output_dtypes={"y": np.int64})
    with pytest.raises(MicrotrainError, match="int_conv"):
        microtrain.compile(m)


def test_conv_macs():
    x = np.zeros((2, 4, 8, 8), np.float32)
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"], group=2, strides=[2, 2])], {"x": x}, ["y"],
                   {"w": np.zeros((6, 2, 3, 3), np.float32)})
    cm = microtrain.compile(m)
    from microtrain.ops.registry import Value, get_op
    node = cm.graph.nodes[0]
    ins = [Value(cm.graph.type_of(i), cm.graph.constants.get(i)) for i in node.inputs]
    # out (2, 6, 3, 3) = 108 elements, each (4/2) * 3 * 3 = 18 MACs
    assert get_op(node).macs(node, ins, [cm.graph.type_of(node.outputs[0])]) == 108 * 18


# ---- ConvTranspose -----------------------------------------------------------

@pytest.mark.parametrize("k", [1, 3, 4])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_transpose_geometry(k, stride):
    """Dilations 1/2 with zero, symmetric and asymmetric pads, in one model."""
    cases = {}
    for dilation, pads in itertools.product([1, 2], ["zero", "sym", "asym"]):
        p = {"zero": [0] * 4, "sym": [(k - 1) // 2] * 4, "asym": [1, 0, 0, 1]}[pads]
        cases[f"d{dilation}_{pads}"] = case((1, 3, 5, 4), (3, 2, k, k), strides=[stride] * 2,
                                            dilations=[dilation] * 2, pads=p)
    check_convs("ConvTranspose", cases)


def test_conv_transpose_output_padding():
    cases = {}
    for i, (stride, output_padding, pads) in enumerate([
            ([2], [1], [0, 0]), ([3], [2], [1, 1]), ([3], [1], [0, 2]), ([2, 2], [1, 0], [1, 0, 0, 1]),
            ([3, 2], [2, 1], [1, 1, 1, 1]), ([2, 3], [0, 2], [0, 0, 0, 0])]):
        nsp = len(stride)
        cases[str(i)] = case((2, 2, *(5, 4)[:nsp]), (2, 3, *(3,) * nsp), strides=stride,
                             output_padding=output_padding, pads=pads)
    check_convs("ConvTranspose", cases)


@pytest.mark.parametrize("auto_pad", [None, "NOTSET", "SAME_UPPER", "SAME_LOWER"])
def test_conv_transpose_output_shape(auto_pad):
    """Pads derived from output_shape (the odd one at begin or end per auto_pad);
    12 exceeds the scattered extent (11) by less than the stride: a bias-only tail."""
    shapes = [[10, 9], [9, 10], [11, 11], [12, 12], [7, 6]]
    cases = {}
    for i, output_shape in enumerate(shapes):
        attrs = dict(strides=[2, 2], output_shape=output_shape)
        if auto_pad:
            attrs["auto_pad"] = auto_pad
        if auto_pad in (None, "NOTSET"):
            attrs["pads"] = [1, 1, 1, 1]  # ignored when output_shape is given
        cases[str(i)] = case((1, 2, 5, 5), (2, 3, 3, 3), **attrs)
    got = check_convs("ConvTranspose", cases)
    assert [got[str(i)].shape[2:] for i in range(len(shapes))] == [tuple(s) for s in shapes]


def test_conv_transpose_output_shape_with_output_padding():
    check_convs("ConvTranspose", {
        "a": case((1, 2, 5), (2, 2, 3), strides=[3], output_shape=[10], output_padding=[1]),
        "b": case((1, 2, 5), (2, 2, 3), strides=[3], output_shape=[13], output_padding=[2])})


@pytest.mark.parametrize("auto_pad", ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_transpose_auto_pad(auto_pad, stride):
    """Kernels 1-3 (incl. SAME targets beyond the scattered extent), 1-D and 2-D."""
    cases = {}
    for k, nsp in itertools.product([1, 2, 3], [1, 2]):
        cases[f"k{k}_{nsp}d"] = case((1, 2, *(5, 4)[:nsp]), (2, 2, *(k,) * nsp), auto_pad=auto_pad,
                                     strides=[stride] * nsp, dilations=[2, 1][-nsp:])
    check_convs("ConvTranspose", cases)


@pytest.mark.parametrize("group", [1, 2, "depthwise"])
def test_conv_transpose_groups_bias_batch(group):
    c = 4
    g = c if group == "depthwise" else group
    mg = 1 if group == "depthwise" else 3
    cases = {f"bias{int(bias)}_n{batch}": case((batch, c, 4, 5), (c, mg, 3, 3), bias=bias, group=g,
                                                strides=[2, 2], pads=[1, 0, 1, 0])
             for bias, batch in itertools.product([True, False], [1, 2])}
    check_convs("ConvTranspose", cases)


@pytest.mark.parametrize("attrs", [dict(), dict(strides=[2, 1, 2], pads=[1, 0, 0, 0, 1, 1], output_padding=[1, 0, 0]),
                                   dict(group=2, dilations=[2, 1, 1])])
def test_conv_transpose_3d(attrs):
    run("ConvTranspose", (1, 4, 3, 4, 3), (4, 2, 2, 3, 2), attrs)


@pytest.mark.parametrize("opset", [13, 21])
def test_conv_transpose_runtime_weight_and_opsets(opset):
    run("ConvTranspose", (2, 4, 3, 5), (4, 2, 3, 3), dict(group=2, strides=[2, 2]), weight_runtime=True,
        opset=opset)


def test_conv_transpose_hand_checked():
    """Stride-2 scatter of ones by a ones kernel: overlaps add up to 2 and 4."""
    x = np.ones((1, 1, 2, 2), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    m = make_model([helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])], {"x": x}, ["y"],
                   {"w": w})
    _, got = check_model(m, {"x": x})
    row_a, row_b = [1, 1, 2, 1, 1], [2, 2, 4, 2, 2]
    np.testing.assert_allclose(got["y"][0, 0], [row_a, row_a, row_b, row_a, row_a])


@pytest.mark.parametrize("attrs,x_shape,w_shape,err", [
    (dict(strides=[2, 2], output_shape=[13, 13]), (1, 2, 5, 5), (2, 3, 3, 3), ShapeError),
    (dict(output_padding=[1]), (1, 2, 5, 5), (2, 3, 3, 3), ShapeError),
    (dict(group=2), (1, 3, 5, 5), (3, 3, 3, 3), ShapeError),
    (dict(pads=[2, 2, 2, 2]), (1, 2, 2, 2), (2, 3, 3, 3), ShapeError),    # empty output
    (dict(auto_pad="FULL"), (1, 2, 5, 5), (2, 3, 3, 3), UnsupportedOpError),
])
def test_conv_transpose_errors(attrs, x_shape, w_shape, err):
    with pytest.raises(err, match="bad_conv"):
        conv_error(attrs, x_shape, w_shape, op="ConvTranspose")()


# ---- gradients (training) ------------------------------------------------------

@pytest.mark.parametrize("nsp,attrs", [
    (2, dict()),
    (2, dict(strides=[2, 2], pads=[1, 0, 0, 1])),            # odd input: the stride drops a row and a column
    (2, dict(dilations=[2, 1], pads=[2, 1, 2, 1], group=2)),
    (2, dict(auto_pad="SAME_UPPER", strides=[2, 1])),
    (1, dict(strides=[3], pads=[1, 2], group=4)),             # depthwise
])
def test_conv_grads(nsp, attrs):
    """dX (through a trainable offset on the input), dW and dB vs torch autograd."""
    import torch
    from grad_check import check_grads
    c, g = 4, attrs.get("group", 1)
    x = rand((2, c, *(7, 6)[:nsp]))
    params = {"p": rand(x.shape), "w": rand((4, c // g, *(3,) * nsp)), "b": rand((4,))}
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node("Conv", ["h", "w", "b"], ["y"], **attrs)]
    geo_attrs = dict(attrs)
    if geo_attrs.pop("auto_pad", None):
        geo_attrs["pads"] = [1, 1, 1, 1]  # SAME_UPPER with stride (2, 1) on 7x6 and k=3
    pads = geo_attrs.get("pads", [0] * (2 * nsp))
    conv = torch.nn.functional.conv2d if nsp == 2 else torch.nn.functional.conv1d

    def torch_fn(x, p, w, b):
        h = x + p
        # torch pads symmetrically: pad explicitly (last axis first), then convolve unpadded
        h = torch.nn.functional.pad(h, [v for ax in reversed(range(nsp)) for v in (pads[ax], pads[ax + nsp])])
        return conv(h, w, b, stride=geo_attrs.get("strides", 1), dilation=geo_attrs.get("dilations", 1), groups=g)
    check_grads(nodes, {"x": x}, params, torch_fn)


def test_conv_grad_weight_op_errors_on_mismatched_gradient():
    from microtrain.ir import Node, TensorType
    from microtrain.ops.registry import Value, get_op
    node = Node("mt.ConvGradW", "gw", ["x", "dy"], ["dw"], dict(kernel_shape=[3, 3]), domain="microtrain")
    ins = [Value(TensorType((1, 2, 6, 6), np.float32)), Value(TensorType((1, 3, 5, 5), np.float32))]
    with pytest.raises(ShapeError, match="gw"):
        get_op(node).infer(node, ins)


@pytest.mark.parametrize("nsp,attrs", [
    (2, dict()),
    (2, dict(strides=[2, 2], pads=[1, 0, 0, 1], output_padding=[1, 0])),
    (2, dict(strides=[2, 3], dilations=[1, 2], group=2, pads=[1, 1, 0, 2])),
    (2, dict(strides=[2, 2], output_shape=[12, 8])),        # pads derived; a bias-only tail row
    (1, dict(strides=[3], pads=[2, 1], group=4)),
])
def test_conv_transpose_grads(nsp, attrs):
    import torch
    from grad_check import check_grads
    c, g = 4, attrs.get("group", 1)
    x = rand((2, c, *(5, 4)[:nsp]))
    out_per_group = 1 if g == c else 6 // g
    params = {"p": rand(x.shape), "w": rand((c, out_per_group, *(3,) * nsp)), "b": rand((out_per_group * g,))}
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]),
             helper.make_node("ConvTranspose", ["h", "w", "b"], ["y"], **attrs)]
    # onnxruntime's forward output fixes the output size (and checks the forward)
    out_size = check_convs("ConvTranspose", {"0": case(x.shape, params["w"].shape, **attrs)})["0"].shape[2:]
    conv_t = torch.nn.functional.conv_transpose2d if nsp == 2 else torch.nn.functional.conv_transpose1d
    begin = attrs.get("pads", [0] * nsp)[:nsp]
    if "output_shape" in attrs:  # [12, 8] from an 11 x 9 scatter: begin pads 0 and 1 per ONNX
        begin = [0, 1]

    def torch_fn(x, p, w, b):
        # full unpadded scatter, zero-extended at the end, then ONNX's window [begin, begin + out)
        y = conv_t(x + p, w, None, stride=attrs.get("strides", 1), dilation=attrs.get("dilations", 1), groups=g)
        y = torch.nn.functional.pad(y, [0, max(out_size)] * nsp)
        y = y[(slice(None), slice(None)) + tuple(slice(b0, b0 + o) for b0, o in zip(begin, out_size))]
        return y + b.reshape(1, -1, *[1] * nsp)
    check_grads(nodes, {"x": x}, params, torch_fn)
