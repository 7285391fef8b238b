"""Gradient rules of the data-movement ops vs PyTorch autograd (see grad_check.py):
views, Transpose, Concat, Split, Slice, Pad, Gather, Expand.

Outputs keep the batch first (the trainer's labels are [batch, ...]). To test the
gradient w.r.t. a run-time tensor, a full-shape trainable p is added first
(h = x + p: dp = dh). An op that moves the batch axis is followed by one that
brings it back. (Ops reading only initializers are folded before training, so
parameters cannot go straight into the op under test.)
Index maps for the torch oracles come from Python slices / numpy.pad of aranges,
never from microtrain."""
import numpy as np
import pytest
import torch
from onnx import helper

import microtrain
from grad_check import check_grads
from onnx_check import make_model

rng = np.random.default_rng(11)
F = torch.nn.functional
I64 = np.int64


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def add_then(op_node, shape, torch_fn, consts=None, opset=17):
    """y = op(x + p) with x, p of `shape`; checks dp."""
    x, p = rand(*shape), rand(*shape)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), op_node]
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p, **c: torch_fn(x + p, **c), consts=consts, opset=opset)


# ---- views ------------------------------------------------------------------
# (id, op, attrs, consts, opset, in_shape, out_shape)
VIEWS_ON_ACTIVATIONS = [
    ("reshape_0_-1", "Reshape", {}, {"s": np.array([0, -1], I64)}, 17, (2, 3, 4), (2, 12)),
    ("reshape_split", "Reshape", {}, {"s": np.array([2, 2, -1, 3], I64)}, 17, (2, 3, 4), (2, 2, 2, 3)),
    ("flatten_1", "Flatten", {"axis": 1}, {}, 17, (2, 3, 2, 2), (2, 12)),
    ("flatten_-2", "Flatten", {"axis": -2}, {}, 17, (2, 1, 3, 4), (2, 12)),
    ("squeeze_axes", "Squeeze", {}, {"s": np.array([1], I64)}, 17, (2, 1, 3), (2, 3)),
    ("squeeze_all", "Squeeze", {}, {}, 17, (2, 1, 3, 1), (2, 3)),
    ("squeeze_attr_opset11", "Squeeze", {"axes": [-1]}, {}, 11, (2, 3, 1), (2, 3)),
    ("unsqueeze", "Unsqueeze", {}, {"s": np.array([1, -1], I64)}, 17, (2, 3), (2, 1, 3, 1)),
    ("unsqueeze_attr_opset11", "Unsqueeze", {"axes": [2]}, {}, 11, (2, 3), (2, 3, 1)),
    ("identity", "Identity", {}, {}, 17, (2, 3), (2, 3)),
    ("dropout_eval", "Dropout", {}, {}, 17, (2, 5), (2, 5)),
]


@pytest.mark.parametrize("case", VIEWS_ON_ACTIVATIONS, ids=[c[0] for c in VIEWS_ON_ACTIVATIONS])
def test_view_grads_on_activations(case):
    _, op, attrs, consts, opset, in_shape, out_shape = case
    node = helper.make_node(op, ["h", *consts], ["y"], **attrs)
    add_then(node, in_shape, lambda h, **c: h.reshape(out_shape), consts=consts, opset=opset)


# Views that move the batch axis, followed by a Reshape back to batch-first:
# (id, op, attrs, consts, in_shape, view shape, final shape)
BATCH_MOVING_VIEWS = [
    ("flatten_0", "Flatten", {"axis": 0}, {}, (2, 3, 4), (1, 24), (2, 12)),
    ("flatten_2", "Flatten", {"axis": 2}, {}, (2, 3, 4), (6, 4), (2, 3, 4)),
    ("reshape_-1", "Reshape", {}, {"s": np.array([-1], I64)}, (2, 3, 2), (12,), (2, 6)),
    ("unsqueeze_front", "Unsqueeze", {}, {"s": np.array([0], I64)}, (2, 3), (1, 2, 3), (2, 3)),
]


@pytest.mark.parametrize("case", BATCH_MOVING_VIEWS, ids=[c[0] for c in BATCH_MOVING_VIEWS])
def test_view_grads_moving_the_batch_axis(case):
    _, op, attrs, consts, in_shape, view_shape, final = case
    nodes = [helper.make_node(op, ["h", *consts], ["v"], **attrs),
             helper.make_node("Reshape", ["v", "back"], ["y"])]
    consts = {**consts, "back": np.array(final, I64)}
    x, p = rand(*in_shape), rand(*in_shape)
    check_grads([helper.make_node("Add", ["x", "p"], ["h"]), *nodes], {"x": x}, {"p": p},
                lambda x, p, **c: (x + p).reshape(view_shape).reshape(final), consts=consts)


def test_reshaped_weight_in_matmul():
    # the common case: a weight stored in one shape, used in another
    x, w = rand(2, 6), rand(3, 2, 4)
    nodes = [helper.make_node("Reshape", ["w", "s"], ["w2"]), helper.make_node("MatMul", ["x", "w2"], ["y"])]
    check_grads(nodes, {"x": x}, {"w": w}, lambda x, w, s: x @ w.reshape(6, 4), consts={"s": np.array([6, -1], I64)})


# ---- Transpose --------------------------------------------------------------

@pytest.mark.parametrize("shape,perm", [((2, 3, 4), [0, 2, 1]), ((2, 3, 4, 5), [0, 3, 1, 2]),
                                        ((2, 3, 4, 5), [0, 2, 3, 1]), ((2, 1, 4, 3), [0, 3, 2, 1]),
                                        ((2, 3), [0, 1])])
def test_transpose_grads_on_activations(shape, perm):
    add_then(helper.make_node("Transpose", ["h"], ["y"], perm=perm), shape, lambda h: h.permute(*perm))


@pytest.mark.parametrize("shape,perm,back", [((2, 3, 4), [2, 0, 1], [1, 0, 2]), ((2, 3, 4), None, [2, 1, 0]),
                                             ((2, 3, 4, 5), [1, 3, 0, 2], [2, 1, 3, 0])])
def test_transpose_grads_moving_the_batch_axis(shape, perm, back):
    # the first Transpose moves the batch axis, the second brings it back in front
    first = perm or list(range(len(shape)))[::-1]
    attrs = {} if perm is None else {"perm": perm}
    x, p = rand(*shape), rand(*shape)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node("Transpose", ["h"], ["t"], **attrs),
             helper.make_node("Transpose", ["t"], ["y"], perm=back)]
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p: (x + p).permute(*first).permute(*back))


# ---- Concat -----------------------------------------------------------------

@pytest.mark.parametrize("shapes,axis", [([(2, 3, 4), (2, 2, 4)], 1), ([(2, 3, 1), (2, 3, 4), (2, 3, 2)], -1),
                                         ([(2, 5), (2, 1)], 1), ([(2, 3, 2, 2), (2, 1, 2, 2)], -3)])
def test_concat_grads_all_inputs(shapes, axis):
    # every input needs a gradient: one Split of dy
    xs = {f"x{k}": rand(*s) for k, s in enumerate(shapes)}
    ps = {f"p{k}": rand(*s) for k, s in enumerate(shapes)}
    nodes = [helper.make_node("Add", [f"x{k}", f"p{k}"], [f"h{k}"]) for k in range(len(shapes))]
    nodes.append(helper.make_node("Concat", [f"h{k}" for k in range(len(shapes))], ["y"], axis=axis))

    def fn(**t):
        return torch.cat([t[f"x{k}"] + t[f"p{k}"] for k in range(len(shapes))], dim=axis)
    check_grads(nodes, xs, ps, fn)


@pytest.mark.parametrize("order", [["x", "p"], ["p", "x"], ["x", "p", "x"], ["p", "x", "q"]])
def test_concat_grads_some_inputs(order):
    # frozen/run-time inputs get no gradient: only the trainable blocks are sliced out of dy
    widths = {"x": 3, "p": 2, "q": 4}
    x = rand(2, 3, 5)
    params = {n: rand(2, widths[n], 5) for n in order if n != "x"}
    node = helper.make_node("Concat", order, ["y"], axis=1)
    check_grads([node], {"x": x}, params, lambda **t: torch.cat([t[n] for n in order], dim=1))


def test_concat_same_tensor_twice():
    add_then(helper.make_node("Concat", ["h", "h"], ["y"], axis=2), (2, 3, 4),
             lambda h: torch.cat([h, h], dim=2))


def test_concat_on_the_batch_axis():
    x, p, q = rand(2, 3), rand(2, 3), rand(2, 3)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node("Concat", ["h", "q"], ["c"], axis=0),
             helper.make_node("Reshape", ["c", "s"], ["y"])]
    check_grads(nodes, {"x": x}, {"p": p, "q": q}, lambda x, p, q, s: torch.cat([x + p, q], dim=0).reshape(2, 6),
                consts={"s": np.array([2, 6], I64)})


# ---- Split ------------------------------------------------------------------

def _split_model(split_attrs, split_const, n_out, combine):
    """h = x + p; outputs o0..; y = combine node over them."""
    inputs = ["h"] + (["sp"] if split_const is not None else [])
    outs = [f"o{k}" for k in range(n_out)]
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node("Split", inputs, outs, **split_attrs)]
    nodes.append(combine)
    return nodes, ({"sp": split_const} if split_const is not None else {})


def _torch_split(h, sizes, axis):
    return list(torch.split(h, sizes, dim=axis))


SPLITS = [  # (id, attrs, split input, opset, sizes along axis, axis)
    ("input_sizes", {"axis": 1}, np.array([2, 1, 3], I64), 17, [2, 1, 3], 1),
    ("equal_parts", {"axis": -1}, None, 17, [2, 2, 2], 2),
    ("num_outputs_uneven", {"axis": 1, "num_outputs": 3}, None, 18, [2, 2, 2], 1),
    ("attr_opset11", {"axis": 2, "split": [1, 4, 1]}, None, 11, [1, 4, 1], 2),
]


@pytest.mark.parametrize("case", SPLITS, ids=[c[0] for c in SPLITS])
def test_split_grads_all_outputs(case):
    # every output reaches the loss (in a new order): dx = Concat of the dys
    _, attrs, split, opset, sizes, axis = case
    shape = (2, 6, 6)
    combine = helper.make_node("Concat", ["o2", "o0", "o1"], ["y"], axis=axis)
    nodes, consts = _split_model(attrs, split, 3, combine)

    def fn(h, **c):
        parts = _torch_split(h, sizes, axis)
        return torch.cat([parts[2], parts[0], parts[1]], dim=axis)
    x, p = rand(*shape), rand(*shape)
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p, **c: fn(x + p, **c), consts=consts, opset=opset)


def test_split_num_outputs_last_chunk_smaller():
    shape, sizes = (2, 7, 3), [3, 3, 1]
    combine = helper.make_node("Concat", ["o1", "o2", "o0"], ["y"], axis=1)
    nodes, _ = _split_model({"axis": 1, "num_outputs": 3}, None, 3, combine)
    x, p = rand(*shape), rand(*shape)

    def fn(x, p):
        a, b, c = _torch_split(x + p, sizes, 1)
        return torch.cat([b, c, a], dim=1)
    check_grads(nodes, {"x": x}, {"p": p}, fn, opset=18)


@pytest.mark.parametrize("used", [(0, 2), (1, 2), (0, 1), (1,)])
def test_split_grads_unused_outputs(used):
    # outputs without a gradient count as zeros (mt.SplitGrad, no zero tensor)
    sizes = [2, 2, 2]
    shape = (2, 6, 3)
    if len(used) == 2:
        combine = helper.make_node("Mul", [f"o{used[0]}", f"o{used[1]}"], ["y"])
    else:
        combine = helper.make_node("Neg", [f"o{used[0]}"], ["y"])
    nodes, consts = _split_model({"axis": 1}, np.array(sizes, I64), 3, combine)
    x, p = rand(*shape), rand(*shape)

    def fn(x, p, sp):
        parts = _torch_split(x + p, sizes, 1)
        return parts[used[0]] * parts[used[1]] if len(used) == 2 else -parts[used[0]]
    check_grads(nodes, {"x": x}, {"p": p}, fn, consts=consts)


def test_split_unused_output_without_workaround():
    nodes, consts = _split_model({"axis": 1}, np.array([2, 2, 2], I64), 3, helper.make_node("Neg", ["o1"], ["y"]))
    x, p = rand(2, 6, 3), rand(2, 6, 3)
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p, sp: -(x + p)[:, 2:4], consts=consts)


def test_split_on_the_batch_axis():
    x, p = rand(2, 3, 4), rand(2, 3, 4)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node("Split", ["h"], ["a", "b"], axis=0),
             helper.make_node("Mul", ["b", "b"], ["bb"]), helper.make_node("Concat", ["bb", "a"], ["y"], axis=0)]

    def fn(x, p):
        a, b = torch.split(x + p, [1, 1], dim=0)
        return torch.cat([b * b, a], dim=0)
    check_grads(nodes, {"x": x}, {"p": p}, fn)


# ---- Slice ------------------------------------------------------------------

def _select(t, axis_positions):
    """t indexed by one position array per axis (torch index_select: its
    autograd scatters the gradient back)."""
    for axis, pos in enumerate(axis_positions):
        t = t.index_select(axis, torch.tensor(np.array(pos), dtype=torch.long))
    return t


def _slice_positions(shape, starts, ends, axes, steps):
    """Python slice semantics on aranges = ONNX Slice clamping rules."""
    pos = [np.arange(d) for d in shape]
    axes = range(len(starts)) if axes is None else axes
    steps = steps or [1] * len(starts)
    for a, s, e, st in zip(axes, starts, ends, steps):
        pos[a] = pos[a][slice(s, e, st)]
    return pos


BIG = 2 ** 62
SLICES = [  # (starts, ends, axes, steps) on (2, 5, 6)
    ([1], [4], [1], None),
    ([0, 1], [BIG, -1], [1, 2], [2, 1]),
    ([-1], [-BIG], [2], [-1]),
    ([4, 0], [0, 6], [1, 2], [-2, 3]),
    ([1], [BIG], [-1], [2]),
    ([1, 3, 5], [-BIG, 0, -7], [0, 1, 2], [-1, -1, -2]),
    ([-3, -100], [100, -2], [-2, -1], [1, 1]),
    ([0, 2], [2, 3], [0, 1], None),
    ([0], [BIG], [1], None),                         # the whole tensor: dx = dy
]


@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
def test_slice_grads(starts, ends, axes, steps):
    shape = (2, 5, 6)
    ins, consts = ["h", "st", "en"], {"st": np.array(starts, I64), "en": np.array(ends, I64)}
    if axes is not None:
        ins.append("ax")
        consts["ax"] = np.array(axes, I64)
    if steps is not None:
        ins.append("sp")
        consts["sp"] = np.array(steps, I64)
    pos = _slice_positions(shape, starts, ends, [a % 3 for a in axes] if axes else None, steps)
    add_then(helper.make_node("Slice", ins, ["y"]), shape, lambda h, **c: _select(h, pos), consts=consts)


def test_empty_slice_gives_zero_gradient():
    # an empty slice beside the whole tensor: its part of dx is all zeros
    x, p = rand(2, 4, 3), rand(2, 4, 3)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node("Slice", ["h", "s", "e", "a"], ["z"]),
             helper.make_node("Concat", ["z", "h"], ["y"], axis=1)]
    consts = {"s": np.array([3], I64), "e": np.array([1], I64), "a": np.array([1], I64)}
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p, **c: torch.cat([(x + p)[:, 3:1], x + p], dim=1),
                consts=consts)


def test_slice_grads_attrs_opset9():
    shape = (2, 4, 5)
    node = helper.make_node("Slice", ["h"], ["y"], starts=[1, -3], ends=[3, BIG], axes=[1, 2])
    pos = _slice_positions(shape, [1, -3], [3, BIG], [1, 2], None)
    add_then(node, shape, lambda h: _select(h, pos), opset=9)


# ---- Pad --------------------------------------------------------------------

def _pad_positions(shape, begin, end, mode):
    """Per axis, the input position each output reads (numpy.pad of an arange:
    the ONNX reference semantics of reflect/edge/wrap)."""
    return [np.pad(np.arange(d), (b, e), mode={"edge": "edge", "reflect": "reflect", "wrap": "wrap"}[mode])
            for d, b, e in zip(shape, begin, end)]


PADS = [  # (mode, begin, end) over (2, 3, 4, 5): the batch axis is never padded
    ("reflect", [0, 1, 2, 3], [0, 2, 1, 3]),
    ("reflect", [0, 0, 5, 0], [0, 0, 7, 9]),     # pads beyond the axis: reflected again
    ("edge", [0, 2, 0, 4], [0, 1, 3, 0]),
    ("wrap", [0, 1, 3, 2], [0, 2, 0, 1]),
    ("wrap", [0, 4, 9, 0], [0, 3, 0, 11]),       # more than one period
    ("reflect", [0, 1, 0, 0], [0, 0, 0, 0]),
]


@pytest.mark.parametrize("mode,begin,end", PADS)
def test_pad_grads_index_modes(mode, begin, end):
    shape = (2, 3, 4, 5)
    pos = _pad_positions(shape, begin, end, mode)
    node = helper.make_node("Pad", ["h", "pads"], ["y"], mode=mode)
    add_then(node, shape, lambda h, pads: _select(h, pos), consts={"pads": np.array(begin + end, I64)})


def _torch_pads(begin, end):
    """F.pad order: last axis first, (begin, end) pairs."""
    out = []
    for b, e in zip(begin[::-1], end[::-1]):
        out += [b, e]
    return out


CONSTANT_PADS = [  # (begin, end, value) over (2, 3, 4, 5)
    ([0, 1, 0, 2], [0, 0, 3, 1], None),
    ([0, 2, 1, 0], [0, 1, 1, 4], 1.5),
    ([0, -1, 2, 0], [0, 1, -2, -3], None),        # crops: the cropped inputs get zero gradient
    ([0, 0, -1, -2], [0, -2, 0, 0], 0.25),
    ([0, 0, 0, 0], [0, 0, 0, 0], None),
]


@pytest.mark.parametrize("begin,end,value", CONSTANT_PADS)
def test_pad_grads_constant(begin, end, value):
    ins, consts = ["h", "pads"], {"pads": np.array(begin + end, I64)}
    if value is not None:
        ins.append("v")
        consts["v"] = np.array(value, np.float32)
    node = helper.make_node("Pad", ins, ["y"], mode="constant")
    add_then(node, (2, 3, 4, 5), lambda h, **c: F.pad(h, _torch_pads(begin, end), value=value or 0.0),
             consts=consts)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_grads_axes_input_opset18(mode):
    shape, axes, pads = (2, 4, 5), [-1, 1], [2, 1, 3, 2]   # axis 2: (2, 3), axis 1: (1, 2)
    begin, end = [0, 1, 2], [0, 2, 3]
    node = helper.make_node("Pad", ["h", "pads", "", "axes"], ["y"], mode=mode)
    consts = {"pads": np.array(pads, I64), "axes": np.array(axes, I64)}
    if mode == "constant":
        fn = lambda h, **c: F.pad(h, _torch_pads(begin, end))
    else:
        pos = _pad_positions(shape, begin, end, mode)
        fn = lambda h, **c: _select(h, pos)
    add_then(node, shape, fn, consts=consts, opset=18)


def test_pad_grads_attrs_opset10():
    begin, end = [0, 1, 0], [0, -1, 2]
    node = helper.make_node("Pad", ["h"], ["y"], pads=begin + end, value=2.0)
    add_then(node, (2, 3, 4), lambda h: F.pad(h, _torch_pads(begin, end), value=2.0), opset=10)


def test_pad_reflect_matches_torch():
    # cross-check of the index-map oracle with torch's own reflect pad
    shape, begin, end = (2, 3, 4, 5), [0, 0, 2, 1], [0, 0, 3, 4]
    node = helper.make_node("Pad", ["h", "pads"], ["y"], mode="reflect")
    add_then(node, shape, lambda h, pads: F.pad(h, _torch_pads(begin, end)[:4], mode="reflect"),
             consts={"pads": np.array(begin + end, I64)})


# ---- Gather -----------------------------------------------------------------

@pytest.mark.parametrize("ids_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("ids_shape", [(2, 7), (2,), (2, 3, 2)])
def test_gather_embedding_grads(ids_shape, ids_dtype):
    # trainable table, run-time ids with repeats and negative indices
    vocab, dim = 6, 4
    table = rand(vocab, dim)
    ids = rng.integers(-vocab, vocab, ids_shape).astype(ids_dtype)
    first = [2, 2, -4][:ids.size]    # a row read several times, once by a negative index
    ids.reshape(-1)[:len(first)] = first
    node = helper.make_node("Gather", ["table", "ids"], ["y"])
    check_grads([node], {"ids": ids}, {"table": table},
                lambda ids, table: F.embedding(torch.remainder(ids.long(), vocab), table))


def test_gather_embedding_then_linear():
    # embedding -> linear: both the table and the weight train
    vocab, dim = 8, 3
    table, w = rand(vocab, dim), rand(dim, 5)
    ids = np.array([[1, 7, 1, 0], [7, 7, 3, -1]], I64)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"]), helper.make_node("MatMul", ["e", "w"], ["y"])]
    check_grads(nodes, {"ids": ids}, {"table": table, "w": w},
                lambda ids, table, w: F.embedding(torch.remainder(ids, vocab), table) @ w)


@pytest.mark.parametrize("shape,axis,indices", [
    ((2, 5, 3), 1, np.array([[4, 0], [4, -1]], I64)),
    ((2, 5, 3), -1, np.array([2, 2, 0, -3], I64)),
    ((2, 4, 3, 2), 2, np.array(1, I64)),           # scalar index drops the axis
    ((2, 6), 1, np.array([5, -6, 5], np.int32)),
])
def test_gather_grads_on_activations(shape, axis, indices):
    dim = shape[axis]
    flat = torch.tensor(np.remainder(indices.astype(np.int64), dim).reshape(-1), dtype=torch.long)

    def fn(h, idx):
        picked = h.index_select(axis % len(shape), flat)
        a = axis % len(shape)
        return picked.reshape(shape[:a] + indices.shape + shape[a + 1:])
    node = helper.make_node("Gather", ["h", "idx"], ["y"], axis=axis)
    add_then(node, shape, fn, consts={"idx": indices})


def test_frozen_table_costs_nothing():
    # only the layer after the embedding trains: no gradient flows into the table
    table, w = rand(8, 3), rand(3, 5)
    ids = np.array([[1, 2], [3, 4]], I64)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"]), helper.make_node("MatMul", ["e", "w"], ["y"])]
    model = make_model(nodes, {"ids": ids}, ["y"], {"table": table, "w": w})
    trainer = microtrain.compile_training(model, params=["w"], loss="mse", optimizer="sgd", lr=0.1, batch=2)
    ops = [n.op for n in trainer.program.micro.nodes]
    assert "mt.GatherGrad" not in ops and "MatMul" in ops, ops


def test_concat_gradient_skips_frozen_inputs():
    # Concat(x, p): only p's block of dy is copied out (a Slice), never a full Split
    x, p = rand(2, 3, 4), rand(2, 2, 4)
    model = make_model([helper.make_node("Concat", ["x", "p"], ["y"], axis=1)], {"x": x}, ["y"], {"p": p})
    trainer = microtrain.compile_training(model, params=["p"], loss="mse", optimizer="sgd", lr=0.1, batch=2)
    ops = [n.op for n in trainer.program.micro.nodes]
    assert "Slice" in ops and "Split" not in ops, ops


# ---- Expand -----------------------------------------------------------------

@pytest.mark.parametrize("in_shape,target,out_shape", [
    ((2, 1, 4), [2, 3, 4], (2, 3, 4)),
    ((2, 1, 4), [3, 1], (2, 3, 4)),                  # target of lower rank
    ((2, 4), [2, 1, 1, 4], (2, 1, 2, 4)),            # rank grows
    ((2, 3, 1), [1, 1, 5], (2, 3, 5)),
    ((2, 1), [2, 1, 1, 6], (2, 1, 2, 6)),           # rank grows, batch axis broadcast too
])
def test_expand_grads(in_shape, target, out_shape):
    node = helper.make_node("Expand", ["h", "shape"], ["y"])
    add_then(node, in_shape, lambda h, shape: h.expand(*out_shape), consts={"shape": np.array(target, I64)})


# ---- a small model over several steps ---------------------------------------

def test_embedding_classifier_follows_pytorch_with_adam():
    # ids -> embedding -> flatten -> Gemm -> cross-entropy, 8 Adam steps in C vs torch
    vocab, dim, length, classes, batch = 7, 3, 5, 3, 4
    table, w, b = rand(vocab, dim), rand(classes, length * dim) * 0.5, rand(classes)
    ids = rng.integers(-vocab, vocab, (batch, length)).astype(I64)
    labels = np.array([0, 2, 1, 2], np.int32)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"]), helper.make_node("Flatten", ["e"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1)]
    model = make_model(nodes, {"ids": ids}, ["y"], {"table": table, "w": w, "b": b})
    trainer = microtrain.compile_training(model, params=["table", "w", "b"], loss="cross_entropy",
                                          optimizer="adam", lr=0.05, batch=batch)
    tp = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (table, w, b)]
    opt = torch.optim.Adam(tp, lr=0.05)
    tids, tlabels = torch.remainder(torch.tensor(ids), vocab), torch.tensor(labels, dtype=torch.long)
    for _ in range(8):
        opt.zero_grad()
        logits = F.embedding(tids, tp[0]).reshape(batch, -1) @ tp[1].T + tp[2]
        loss = F.cross_entropy(logits, tlabels)
        loss.backward()
        opt.step()
        np.testing.assert_allclose(trainer.step(ids, labels), loss.item(), rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(trainer.parameters()["table"], tp[0].detach().numpy(), rtol=1e-3, atol=1e-4)
