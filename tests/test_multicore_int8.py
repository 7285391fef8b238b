"""Multi-core int8 kernels (mt_conv_s8_gemm_par, mt_matmul_s8_gemm_par,
mt_conv_s8_dw3x3_par): with cores = 2, 3, 8 every core computes its own
blocks of output pixels / rows of A / channels with its own scratch panel,
so the outputs equal the golden model and the 1-core build bit for bit, on
host pthreads (also under ThreadSanitizer) and on rv32imfc (the rv32
assembly and sliding-window kernels; rv32imc is a single-core target, the
cluster target runs the same int8 kernels), where the per-core instruction
counts add up to about the 1-core count and the N-core estimate drops."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

import microtrain
import test_int8_dw
import test_int8_gemm
from int8_check import rand_requant, rand_s8
from test_multicore import _tsan_run, assert_bit_equal, get_barrier

PAR_CALLS = ("mt_conv_s8_gemm_par(", "mt_matmul_s8_gemm_par(", "mt_conv_s8_dw3x3_par(", "mt_par_range(")


def _par_calls(cm) -> int:
    src = (cm.project_dir / "network.c").read_text()
    return sum(src.count(c) for c in PAR_CALLS)


def _pool_model():
    """The int8 pooling cases of test_int8_kernels (planes split by ctx.split_planes)."""
    from test_int8_kernels import POOL_CASES
    rng = np.random.default_rng(30)
    nodes, inputs, outputs, feeds = [], [], [], {}
    for i, (op, shape, attrs) in enumerate(POOL_CASES):
        if op == "mt.QAvgPool":
            attrs = dict(attrs, x_zero_point=-11, y_zero_point=4, mul=int(rng.integers(1 << 13, 1 << 15)),
                         shift=14, lo=-120, hi=120)
        feeds[f"x{i}"] = rand_s8(rng, shape)
        inputs.append(helper.make_tensor_value_info(f"x{i}", onnx.TensorProto.INT8, shape))
        nodes.append(helper.make_node(op, [f"x{i}"], [f"y{i}"], domain="microtrain", **attrs))
        outputs.append(helper.make_tensor_value_info(f"y{i}", onnx.TensorProto.INT8, None))
    g = helper.make_graph(nodes, "int8_pools", inputs, outputs)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("microtrain", 1)])
    m.ir_version = 8
    return m, feeds


def _cases():
    yield "gemm cases", test_int8_gemm._model()
    yield "slide cases", test_int8_gemm._slide_model()
    yield "dw3x3 cases", test_int8_dw._model()
    yield "pool cases", _pool_model()


def test_int8_n_cores_bit_identical_on_host():
    for what, (model, feeds) in _cases():
        one_cm = microtrain.compile(model)
        one, want = one_cm.run(feeds), one_cm.reference(feeds)
        assert_bit_equal(one, want, f"{what}: 1 core vs golden")
        nodes = len(model.graph.node)
        for cores in (2, 3, 8):
            cm = microtrain.compile(model, cores=cores)
            assert _par_calls(cm) == nodes, f"{what}: every node takes its _par kernel"
            got = cm.run(feeds)
            assert_bit_equal(got, one, f"{what}, {cores} cores")
            assert_bit_equal(got, want, f"{what}, {cores} cores vs golden")


def test_int8_single_core_build_unchanged():
    """cores=1 calls the plain kernels with one panel of scratch."""
    model, _ = test_int8_gemm._model()
    cm = microtrain.compile(model)
    src = (cm.project_dir / "network.c").read_text()
    assert "_par(" not in src and "core_id" not in src


def _all_cases_model():
    """The gemm, depthwise and pool cases as one model (names prefixed)."""
    from onnx import compose
    nodes, inputs, outputs, inits, feeds = [], [], [], [], {}
    for j, (what, (model, f)) in enumerate(_cases()):
        if what == "slide cases":   # the sliding window is rv32-only; on host these are gemm cases again
            continue
        m = compose.add_prefix(model, f"m{j}_")
        nodes += m.graph.node
        inputs += m.graph.input
        outputs += m.graph.output
        inits += m.graph.initializer
        feeds.update({f"m{j}_{k}": v for k, v in f.items()})
    g = helper.make_graph(nodes, "int8_all", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("microtrain", 1)])
    m.ir_version = 8
    return m, feeds


def test_int8_no_data_race_under_thread_sanitizer():
    model, feeds = _all_cases_model()
    cm = microtrain.compile(model, cores=3)
    assert _par_calls(cm) == len(model.graph.node) > 25
    ok = _tsan_run(cm, feeds, (cm.project_dir / "network.c").read_text())
    assert ok.returncode == 0 and b"ThreadSanitizer" not in ok.stderr, ok.stderr.decode()[-2000:]
    # All cores writing into one shared panel must be reported (the check can fail).
    src = (cm.project_dir / "network.c").read_text()
    shared = src.replace("+ par.core_id * ", "+ 0 * ")
    assert shared != src
    bad = _tsan_run(cm, feeds, shared)
    assert b"WARNING: ThreadSanitizer: data race" in bad.stderr


def _layer_model():
    """One layer per kernel path on rv32: conv 3x3 stride 1 (sliding window),
    conv 3x3 stride 2 (4x5 / 4x4 GEMM blocks), matmul, depthwise 3x3; then a
    conv and a matmul with a single block of pixels / rows of A."""
    rng = np.random.default_rng(11)
    nodes, inputs, outputs, inits, feeds = [], [], [], [], {}

    def add(op, x, w, taps, channels, **attrs):
        i = len(nodes)
        names = [f"x{i}", f"w{i}", f"m{i}", f"a{i}"]
        mul, add_, shift = rand_requant(rng, channels, taps=taps)
        feeds[names[0]] = x
        inputs.append(helper.make_tensor_value_info(names[0], onnx.TensorProto.INT8, x.shape))
        inits.extend(numpy_helper.from_array(np.asarray(v), n) for v, n in zip((w, mul, add_), names[1:]))
        nodes.append(helper.make_node(op, names, [f"y{i}"], domain="microtrain", shift=shift, **attrs))
        outputs.append(helper.make_tensor_value_info(f"y{i}", onnx.TensorProto.INT8, None))

    add("mt.QConv", rand_s8(rng, (1, 16, 12, 12)), rand_s8(rng, (16, 16, 3, 3)), 144, 16, x_zero_point=3,
        pads=[1, 1, 1, 1])
    add("mt.QConv", rand_s8(rng, (1, 12, 15, 15)), rand_s8(rng, (16, 12, 3, 3)), 108, 16, x_zero_point=-5,
        strides=[2, 2], pads=[1, 1, 1, 1])
    add("mt.QMatMul", rand_s8(rng, (80, 40)), rand_s8(rng, (40, 24)), 40, 24, a_zero_point=2, b_zero_point=-3)
    add("mt.QConv", rand_s8(rng, (1, 16, 10, 10)), rand_s8(rng, (16, 1, 3, 3)), 9, 16, x_zero_point=1,
        group=16, pads=[1, 1, 1, 1])
    # fewer pixel blocks / rows of A than cores: also split by blocks of 4 output channels / columns
    add("mt.QConv", rand_s8(rng, (1, 32, 2, 2)), rand_s8(rng, (48, 32, 1, 1)), 32, 48, x_zero_point=4)
    add("mt.QMatMul", rand_s8(rng, (4, 64)), rand_s8(rng, (64, 40)), 64, 40, a_zero_point=-1, b_zero_point=2)
    g = helper.make_graph(nodes, "int8_layers", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("microtrain", 1)])
    m.ir_version = 8
    return m, feeds


def test_int8_per_core_counts_and_estimate_on_rv32imfc():
    model, feeds = _layer_model()
    one_cm = microtrain.compile(model, "rv32imfc")
    one, want = one_cm.profile(feeds), one_cm.reference(feeds)
    assert_bit_equal(one_cm.run(feeds), want, "rv32imfc 1 core vs golden")
    barrier = get_barrier("rv32imfc")
    for cores in (3, 8):
        cm = microtrain.compile(model, "rv32imfc", cores=cores)
        assert _par_calls(cm) == len(model.graph.node)
        assert_bit_equal(cm.run(feeds), want, f"rv32imfc {cores} cores vs golden")
        prof = cm.profile(feeds)
        for i, (r1, rn) in enumerate(zip(one.layers, prof.layers)):
            shares = rn.core_instructions
            assert len(shares) == cores and sum(shares) == rn.instructions
            if i < 4:
                # all cores' work: the 1-core count plus per-core setup and block skipping ...
                assert r1.instructions <= rn.instructions < 1.03 * r1.instructions, (rn.name, cores)
                # ... and the slowest core does about its 1/cores share (items are whole blocks)
                assert max(shares) < 1.3 * r1.instructions / cores, (rn.name, cores, shares)
            else:
                # one block of pixels / rows of A: every core with a run of its output channels /
                # columns of B packs the same panel (repeated work), still a speedup
                assert r1.instructions < rn.instructions < 1.7 * r1.instructions, (rn.name, cores)
                assert max(shares) < 0.5 * r1.instructions, (rn.name, cores, shares)
        assert prof.estimate_instructions == sum(max(r.core_instructions) + barrier for r in prof.layers)
        assert prof.estimate_instructions < 1.6 * one.estimate_instructions / cores


def test_int8_dsp_kernels_split_bit_exact_on_a_multicore_cortex_m4():
    """Cortex-M targets allow one core; a description with 3 cores (targets
    are data) runs the SMLAD GEMM and depthwise kernels' _par paths."""
    import dataclasses
    from microtrain.targets import get_target
    board = dataclasses.replace(get_target("cortex-m4"), name="cortex-m4x3", cores=3, barrier_instructions=20)
    model, feeds = _layer_model()
    cm = microtrain.compile(model, board, cores=3)
    assert _par_calls(cm) == len(model.graph.node)
    assert_bit_equal(cm.run(feeds), cm.reference(feeds), "cortex-m4, 3 cores vs golden")
