"""PULP convention (QuantLib / Deeploy) integer Softmax / GELU / LayerNorm nodes:
hand-built ONNX graphs compiled to C must equal, bit for bit, a literal
evaluation of the nodes' rules written below from Deeploy's Generic kernels
(plain Python-int loops with C99 division; docs/quantization.md, Import)."""
import math

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import microtrain
from microtrain.errors import MicrotrainError

# ---------------------------------------------------------------- the literal rules


def c_div(a, b):
    """C99 integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def ita_max_row(row, n_levels):
    mx = max(row)
    sh = [(mx - v + 16) >> 5 for v in row]
    total = sum(256 >> s for s in sh)
    inv = (n_levels - 1) * 256 // total
    return [inv >> s for s in sh]


def ita_partial_max_row(row, n_levels, width):
    mx, total = -128, 0
    for g in range(len(row) // width):
        group = row[g * width:(g + 1) * width]
        gmax = max(group)
        if gmax > mx:
            total >>= (gmax - mx + 16) >> 5
            mx = gmax
        total += sum(256 >> ((mx - v + 16) >> 5) for v in group)
    inv = (n_levels // 2 - 1) * 256 // total
    return [inv >> ((mx - v + 16) >> 5) for v in row]


def isoftmax_row(row, a, b, c, log2, n_levels):
    mx = max(row)
    exps = []
    for v in row:
        xt = v - mx
        z = min(max(-c_div(xt, log2), 0), 31)
        p = xt + z * log2
        exps.append((a * (p + b) * (p + b) + c) >> z)
    return [e * (n_levels - 1) // sum(exps) for e in exps]


def igelu(v, b, one):
    sign = (v > 0) - (v < 0)
    q = -b if abs(v) > -b else abs(v)
    ell = sign * (one - (q + b) * (q + b))
    return v * ((one + ell) >> 1)


def ilayernorm_row(row, w, bias, d, n_levels):
    n = len(row)
    mean = c_div(sum(row), n)
    var = c_div(sum((v - mean) ** 2 for v in row), n) + 1
    std = math.isqrt(var)
    log2d = d.bit_length() - 1
    out = [(c_div((v - mean) * int(w[j]), std) + int(bias[j])) >> log2d for j, v in enumerate(row)]
    return [min(max(o, -(n_levels // 2)), n_levels // 2 - 1) for o in out]


def rows_apply(x, f):
    flat = x.reshape(-1, x.shape[-1])
    return np.array([f([int(v) for v in r]) for r in flat], dtype=np.int64).reshape(x.shape)


def evaluate(model, feeds):
    """The convention, literally: integer-valued tensors, one node at a time."""
    env = {i.name: numpy_helper.to_array(i).astype(np.int64) for i in model.graph.initializer}
    env.update({k: v.astype(np.int64) for k, v in feeds.items()})
    for n in model.graph.node:
        a = {at.name: helper.get_attribute_value(at) for at in n.attribute}
        ins = [env[i] for i in n.input]
        if n.op_type in ("MatMul", "Gemm"):
            w = ins[1].T if a.get("transB", 0) else ins[1]
            y = ins[0] @ w + (ins[2] if len(ins) > 2 else 0)
        elif n.op_type == "RequantShift":
            div, levels = a["div"], a["n_levels"]
            lo, hi = (-(levels // 2), levels // 2 - 1) if a["signed"] else (0, levels - 1)
            y = np.clip((ins[0] * ins[1] + ins[2] + div // 2) // div, lo, hi)
        elif n.op_type == "Transpose":
            y = ins[0].transpose(a["perm"])
        elif n.op_type == "Add":
            y = ins[0] + ins[1]
        elif n.op_type == "Pad":                 # constant mode, pads and value as inputs (opset 11+)
            p = ins[1].reshape(2, -1).T
            y = np.pad(ins[0], [tuple(r) for r in p], constant_values=int(ins[2]))
        elif n.op_type == "ITAMax":
            y = rows_apply(ins[0], lambda r: ita_max_row(r, a["n_levels"]))
        elif n.op_type == "ITAPartialMax":
            y = rows_apply(ins[0], lambda r: ita_partial_max_row(r, a["n_levels"], a["group_width"]))
        elif n.op_type == "iSoftmax":
            y = rows_apply(ins[0], lambda r: isoftmax_row(r, a["coeffA"], a["coeffB"], a["coeffC"], a["log2"],
                                                          a["n_levels"]))
        elif n.op_type == "iGELU":
            y = np.vectorize(lambda v: igelu(int(v), a["b"], a["one"]), otypes=[np.int64])(ins[0])
        elif n.op_type == "iLayerNorm":
            y = rows_apply(ins[0], lambda r: ilayernorm_row(r, ins[1], ins[2], a["D"], a["n_levels"]))
        elif n.op_type == "IntegerMean":
            axes, keep = tuple(a["axes"]), a.get("keepdims", 1)
            length = int(np.prod([ins[0].shape[i] for i in axes]))
            acc = ins[0].sum(axis=axes, keepdims=bool(keep))
            if not keep and length & (length - 1) == 0:
                y = (acc + length // 2) // length
            else:
                y = np.vectorize(lambda t: c_div(int(t) + (1 if t >= 0 else -1) * (length // 2), length),
                                 otypes=[np.int64])(acc)
        else:
            raise AssertionError(n.op_type)
        env[n.output[0]] = y
    return env

# ---------------------------------------------------------------- graph builders


class Builder:
    def __init__(self, rng):
        self.rng, self.nodes, self.inits = rng, [], {}

    def init(self, name, value):
        self.inits[name] = np.asarray(value, np.float32)
        return name

    def node(self, op, ins, out, **attrs):
        self.nodes.append(helper.make_node(op, ins, [out], name=out + "_" + op, **attrs))
        return out

    def rq(self, x, out, mul, add, div, signed=1, n_levels=256):
        return self.node("RequantShift", [x, self.init(out + "_mul", mul), self.init(out + "_add", add)], out,
                         div=div, n_levels=n_levels, signed=signed)

    def linear(self, x, out, k, n, div, bias=True):
        w = self.init(out + "_w", self.rng.integers(-40, 41, (k, n)))
        ins = [x, w] + ([self.init(out + "_b", self.rng.integers(-800, 800, n))] if bias else [])
        acc = self.node("Gemm" if bias else "MatMul", ins, out + "_acc")
        return self.rq(acc, out, self.rng.integers(20, 60, n), self.rng.integers(-2000, 2000, n), div)

    def model(self, inputs, output):
        g = helper.make_graph(self.nodes, "pulp",
                              [helper.make_tensor_value_info(k, onnx.TensorProto.FLOAT, s) for k, s in inputs],
                              [helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in self.inits.items()])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return m


ISOFTMAX = dict(coeffA=1, coeffB=27, coeffC=384, log2=13, n_levels=256)   # I-BERT at 0.05 per LSB


def attention_model(softmax, s, attrs, seed=0):
    """x -> Q, K, V projections -> MatMul(Q, K^T) -> RequantShift -> softmax -> MatMul(P, V) -> RequantShift."""
    b = Builder(np.random.default_rng(seed))
    e = 8
    q = b.linear("x", "q", e, e, 1 << 12)
    k = b.linear("x", "k", e, e, 1 << 12)
    v = b.linear("x", "v", e, e, 1 << 12)
    kt = b.node("Transpose", [k], "kt", perm=[1, 0])
    scores = b.node("MatMul", [q, kt], "scores_acc")
    logits = b.rq(scores, "logits", np.array(3), np.array(0), 1 << 8)
    probs = b.node(softmax, [logits], "probs", **attrs)
    ctx = b.node("MatMul", [probs, v], "ctx_acc")
    b.rq(ctx, "y", np.array(5), np.array(0), 1 << 10)
    return b.model([("x", (s, e))], "y")


def block_model(seed=0):
    """x -> iLayerNorm -> Linear -> RequantShift -> iGELU -> RequantShift -> Linear -> + x -> RequantShift."""
    b = Builder(np.random.default_rng(seed))
    e, hidden = 16, 32
    w = b.init("ln_w", b.rng.integers(200, 900, e))
    bias = b.init("ln_b", b.rng.integers(-3000, 3000, e))
    ln = b.node("iLayerNorm", ["x", w, bias], "ln", D=1 << 5, n_levels=256)
    h = b.linear(ln, "h", e, hidden, 1 << 12)
    gelu = b.node("iGELU", [h], "gelu", b=-50, one=2600)
    act = b.rq(gelu, "act", np.array(7), np.array(100), 1 << 12)
    out = b.linear(act, "o", hidden, e, 1 << 13)
    res = b.node("Add", ["x", out], "res")
    b.rq(res, "y", np.array(3), np.array(0), 4)
    return b.model([("x", (2, 6, e))], "y")

# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("softmax,s,attrs,op", [
    ("ITAMax", 20, dict(n_levels=256), "mt.PulpITAMax"),
    ("ITAPartialMax", 32, dict(n_levels=256, group_width=16), "mt.PulpITAMax"),
    ("ITAPartialMax", 24, dict(n_levels=256, group_width=8), "mt.PulpITAMax"),
    ("iSoftmax", 20, ISOFTMAX, "mt.PulpISoftmax"),
])
def test_attention_block_matches_the_rules(softmax, s, attrs, op):
    model = attention_model(softmax, s, attrs)
    cm = microtrain.compile(model)
    assert op in [n.op for n in cm.graph.nodes]
    assert [n.op for n in cm.graph.nodes].count("mt.QMatMul") == 5
    for seed in range(2):
        x = np.random.default_rng(seed + 10).integers(-128, 128, (s, 8)).astype(np.int8)
        got = cm.run({"x": x})
        np.testing.assert_array_equal(got["y"], cm.reference({"x": x})["y"])
        env = evaluate(model, {"x": x})
        assert len(np.unique(env["probs"])) > 10 and len(np.unique(env["y"])) > 10
        np.testing.assert_array_equal(got["y"].astype(np.int64), env["y"])   # signed output: offset 0


def test_transformer_block_with_ilayernorm_and_igelu():
    model = block_model()
    cm = microtrain.compile(model)
    ops = [n.op for n in cm.graph.nodes]
    assert "mt.PulpILayerNorm" in ops and "mt.PulpIGelu" in ops and "mt.Requant" in ops
    for seed in range(3):
        x = np.random.default_rng(seed).integers(-128, 128, (2, 6, 16)).astype(np.int8)
        got = cm.run({"x": x})["y"]
        np.testing.assert_array_equal(got, cm.reference({"x": x})["y"])
        env = evaluate(model, {"x": x})
        assert len(np.unique(env["ln"])) > 30 and len(np.unique(env["act"])) > 20
        assert (env["gelu"] < 0).any() and np.abs(env["gelu"]).max() > 1 << 16
        np.testing.assert_array_equal(got.astype(np.int64), env["y"])


def mean_model():
    """x -> RequantShift -> IntegerMean over 6 tokens -> Gemm -> RequantShift."""
    b = Builder(np.random.default_rng(11))
    x = b.rq("x", "xq", np.array(1), np.array(0), 1)
    pooled = b.node("IntegerMean", [x], "pooled", axes=[1], keepdims=0)
    b.linear(pooled, "y", 16, 5, 1 << 11)
    return b.model([("x", (4, 6, 16))], "y")


def single_node_model(op, shape, attrs, signed=1):
    b = Builder(np.random.default_rng(0))
    x = b.rq("x", "xq", np.array(1), np.array(0), 1, signed=signed)
    b.node(op, [x], "y", **attrs)
    return b.model([("x", shape)], "y")


@pytest.mark.parametrize("op,n,attrs", [
    ("ITAMax", 1, dict(n_levels=256)), ("ITAMax", 33, dict(n_levels=128)),
    ("ITAPartialMax", 48, dict(n_levels=256, group_width=16)), ("iSoftmax", 37, ISOFTMAX),
])
def test_softmax_nodes_on_extreme_rows(op, n, attrs):
    """Rows of all -128, all 127, one spike and rising values through C and the rule."""
    rows = [np.full(n, -128), np.full(n, 127), np.where(np.arange(n) == n - 1, 127, -128),
            np.linspace(-128, 127, n).round(), np.random.default_rng(n).integers(-128, 128, n)]
    x = np.stack(rows).astype(np.int8)
    model = single_node_model(op, x.shape, attrs)
    got = microtrain.compile(model).run({"x": x})["y"].astype(np.int64)
    np.testing.assert_array_equal(got + attrs["n_levels"] // 2, evaluate(model, {"x": x})["y"])


def test_unmappable_nodes_are_refused():
    with pytest.raises(MicrotrainError, match=r"rows of 20 are not a multiple of group_width=16"):
        microtrain.compile(attention_model("ITAPartialMax", 20, dict(n_levels=256, group_width=16)))
    with pytest.raises(MicrotrainError, match=r"'y_ITAMax'.*signed int8 logits"):
        microtrain.compile(single_node_model("ITAMax", (2, 4), dict(n_levels=256), signed=0))
    with pytest.raises(MicrotrainError, match=r"'y_iSoftmax'.*overflows uint32"):
        microtrain.compile(single_node_model("iSoftmax", (2, 300), dict(ISOFTMAX, coeffA=1 << 15)))
    with pytest.raises(MicrotrainError, match=r"'y_iGELU'.*followed by exactly one RequantShift"):
        microtrain.compile(single_node_model("iGELU", (2, 4), dict(b=-50, one=2600)))
    with pytest.raises(MicrotrainError, match=r"'y_iLayerNorm'.*D=6 must be a power of two"):
        b = Builder(np.random.default_rng(0))
        x = b.rq("x", "xq", np.array(1), np.array(0), 1)
        b.node("iLayerNorm", [x, b.init("w", np.ones(4)), b.init("b", np.zeros(4))], "y", D=6, n_levels=256)
        microtrain.compile(b.model([("x", (2, 4))], "y"))


def test_igelu_int32_output_over_all_inputs():
    """The int32 iGELU before its RequantShift (below an output LSB, so the block test cannot see it)."""
    from int_graph import compile_ir, single_op_graph
    attrs = {"a": dict(b=-50, one=2600, x_offset=0), "u": dict(b=-23, one=601, x_offset=128)}
    g = single_op_graph("mt.PulpIGelu", {k: ((2, 128), np.int8) for k in attrs}, attrs)
    x = np.arange(-128, 128).astype(np.int8).reshape(2, 128)
    got = compile_ir(g).run({"a": x, "u": x})
    for k, a in attrs.items():
        want = [igelu(int(v) + a["x_offset"], a["b"], a["one"]) for v in x.reshape(-1)]
        np.testing.assert_array_equal(got[f"y_{k}"].reshape(-1).astype(np.int64), want)


def test_pulp_transformer_firmware_has_no_float():
    """rv32imc firmware (no FPU) of the hand-built blocks reaches no soft-float routine, and runs
    under QEMU bit-exact with the golden model."""
    from microtrain.quantization.nofloat import float_functions_reachable
    from microtrain.targets import get_target
    from microtrain.targets.toolchain import require_tool
    target = get_target("rv32imc")
    objdump = require_tool(target.tool_prefix + "objdump", target)
    for model, shape in ((block_model(), (2, 6, 16)), (attention_model("iSoftmax", 20, ISOFTMAX), (20, 8)),
                         (attention_model("ITAPartialMax", 32, dict(n_levels=256, group_width=16)), (32, 8)),
                         (mean_model(), (4, 6, 16))):
        cm = microtrain.compile(model, "rv32imc")
        assert float_functions_reachable(cm.build(), objdump, "mt_network_run") == []
        x = np.random.default_rng(3).integers(-128, 128, shape).astype(np.int8)
        np.testing.assert_array_equal(cm.run({"x": x})["y"], cm.reference({"x": x})["y"])


def pad_model(value, signed):
    """x -> RequantShift -> Pad(integer value) -> Gemm -> RequantShift."""
    b = Builder(np.random.default_rng(4))
    x = b.rq("x", "xq", np.array(1), np.array(0 if signed else 128), 1, signed=signed)
    pads = b.init("pads", np.array([0, 1, 0, 2]))
    b.inits["pads"] = b.inits["pads"].astype(np.int64)
    padded = b.node("Pad", [x, pads, b.init("value", np.array(value))], "padded", mode="constant")
    b.linear(padded, "y", 9, 5, 1 << 11)
    return b.model([("x", (4, 6))], "y")


@pytest.mark.parametrize("value,signed", [(5, 0), (200, 0), (-7, 1)])
def test_pad_with_an_integer_value(value, signed):
    model = pad_model(value, signed)
    cm = microtrain.compile(model)
    x = np.random.default_rng(5).integers(-128, 128, (4, 6)).astype(np.int8)
    got = cm.run({"x": x})["y"]
    env = evaluate(model, {"x": x})
    assert (env["padded"][:, 0] == value).all() and (env["padded"][:, -2:] == value).all()
    np.testing.assert_array_equal(got.astype(np.int64), env["y"])
    with pytest.raises(MicrotrainError, match=r"'padded_Pad'.*pad value 300 is not an integer of the input"):
        microtrain.compile(pad_model(300, signed))


def as_exported(model):
    """QuantLib's exporter form: the custom nodes in domain PACTOps, attributes as 0-d tensors."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for n in m.graph.node:
        if n.op_type in ("RequantShift", "ITAMax", "ITAPartialMax", "iSoftmax", "iGELU", "iLayerNorm"):
            n.domain = "PACTOps"
            attrs = [(a.name, helper.get_attribute_value(a)) for a in n.attribute]
            del n.attribute[:]
            n.attribute.extend(helper.make_attribute(k, numpy_helper.from_array(np.array(v, np.int64)))
                               for k, v in attrs)
    m.opset_import.append(helper.make_opsetid("PACTOps", 1))
    return m


@pytest.mark.parametrize("build,shape", [(block_model, (2, 6, 16)),
                                         (lambda: attention_model("iSoftmax", 20, ISOFTMAX), (20, 8))])
def test_exporter_form_pactops_domain_and_tensor_attributes(build, shape):
    model = build()
    x = np.random.default_rng(6).integers(-128, 128, shape).astype(np.int8)
    got = microtrain.compile(as_exported(model)).run({"x": x})["y"]
    np.testing.assert_array_equal(got.astype(np.int64), evaluate(model, {"x": x})["y"])


@pytest.mark.parametrize("w_lo,w_hi,d", [(200, 900, 1 << 5), (1 << 28, 1 << 30, 1 << 24)])
def test_ilayernorm_on_extreme_rows(w_lo, w_hi, d):
    """Constant rows (var = 1), +-128 alternating (largest variance), negative sums (trunc mean), and
    weights whose (x - mean) * w leaves int32 (the kernel's 64-bit path)."""
    n = 24
    rng = np.random.default_rng(7)
    b = Builder(rng)
    x = b.rq("x", "xq", np.array(1), np.array(0), 1)
    w = b.init("w", rng.integers(w_lo, w_hi, n) * rng.choice([-1, 1], n))
    bias = b.init("b", rng.integers(-1000, 1000, n) * min(d, 1 << 18))
    b.node("iLayerNorm", [x, w, bias], "y", D=d, n_levels=256)
    model = b.model([("x", (5, n))], "y")
    x = np.stack([np.full(n, -128), np.full(n, 127), np.where(np.arange(n) % 2, 127, -128),
                  np.arange(n) - 100, rng.integers(-128, 128, n)]).astype(np.int8)
    got = microtrain.compile(model).run({"x": x})["y"].astype(np.int64)
    want = evaluate(model, {"x": x})["y"]
    assert len(np.unique(want)) > 20
    np.testing.assert_array_equal(got, want)


def test_a_graph_without_requantshift_is_recognized_by_its_integer_nodes():
    b = Builder(np.random.default_rng(0))
    b.node("ITAMax", ["x"], "y", n_levels=256)
    model = b.model([("x", (3, 20))], "y")
    x = np.random.default_rng(8).integers(-128, 128, (3, 20)).astype(np.int8)
    got = microtrain.compile(model).run({"x": x})["y"].astype(np.int64)
    np.testing.assert_array_equal(got + 128, evaluate(model, {"x": x})["y"])


@pytest.mark.parametrize("shape,axes,keepdims,signed", [
    ((4, 6, 16), [1], 0, 1),            # mean over 6 tokens: half away from zero
    ((4, 8, 16), [1], 0, 1),            # a power of two without keepdims: half up
    ((2, 4, 4, 4), [2, 3], 1, 0),       # global average pool of an unsigned NCHW map, keepdims
    ((2, 4, 2, 4), [-2, -1], 0, 1),     # 8 values, negative axes
])
def test_integer_mean_rounding(shape, axes, keepdims, signed):
    b = Builder(np.random.default_rng(9))
    x = b.rq("x", "xq", np.array(1), np.array(0 if signed else 128), 1, signed=signed)
    b.node("IntegerMean", [x], "y", axes=axes, keepdims=keepdims)
    model = b.model([("x", shape)], "y")
    length = int(np.prod([shape[a] for a in axes]))
    for seed in range(200):             # an input with exact halves (negative ones when signed)
        x = np.random.default_rng(seed).integers(-128, 128, shape).astype(np.int8)
        env = evaluate(model, {"x": x})
        acc = env["xq"].sum(axis=tuple(axes))
        halves = acc % length == length // 2
        if halves.sum() >= 2 and (not signed or (halves & (acc < 0)).any()):
            break
    else:
        raise AssertionError("no input with exact halves found")
    got = microtrain.compile(model).run({"x": x})["y"].astype(np.int64)
    np.testing.assert_array_equal(got + (0 if signed else 128), env["y"])
