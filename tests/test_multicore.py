"""Multi-core builds (compile(cores=N)): every core computes a disjoint slice
of each Conv/Gemm/MatMul output with the same sums in the same order, so the
N-core C must equal the 1-core C bit for bit. On host the cores are pthreads
(a ThreadSanitizer build checks there is no race, and that removing the
barriers makes one); on rv32imfc each core's share runs in turn and the
per-core instruction counts give the N-core estimate."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from onnx import helper

import microtrain
from microtrain.build import HOST_CC
from microtrain.codegen.emit import RUNTIME_DIR
from microtrain.errors import MicrotrainError
from microtrain.ops.gemm import KERNELS_ENV
from onnx_check import make_model
from test_fast_kernels import EDGE_CONVS, DW_EDGES, MATMULS, conv_model, random_conv, small_mixed_model


def assert_bit_equal(got: dict, want: dict, what: str) -> None:
    for name in want:
        assert got[name].shape == want[name].shape, f"{what}: shape of {name}"
        assert np.array_equal(got[name].view(np.uint8), want[name].view(np.uint8)), \
            f"{what}: output {name} differs in bits from the 1-core build"


def gemm_model(rng):
    nodes, inputs, inits = [], {}, {}
    for i, (ta, tb, c) in enumerate([(0, 0, "row"), (1, 0, None), (0, 1, "full"), (1, 1, "col")]):
        m, k, n = (int(v) for v in rng.integers(1, 23, 3))
        inputs[f"a{i}"] = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
        inits[f"b{i}"] = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
        names = [f"a{i}", f"b{i}"]
        if c:
            inits[f"c{i}"] = rng.standard_normal({"row": (n,), "full": (m, n), "col": (m, 1)}[c]).astype(np.float32)
            names.append(f"c{i}")
        nodes.append(helper.make_node("Gemm", names, [f"y{i}"], name=f"gemm{i}", transA=ta, transB=tb,
                                      alpha=0.5 if i % 2 else 1.0))
    for j, (sa, sb) in enumerate(MATMULS):
        inputs[f"p{j}"] = rng.standard_normal(sa).astype(np.float32)
        inputs[f"q{j}"] = rng.standard_normal(sb).astype(np.float32)
        nodes.append(helper.make_node("MatMul", [f"p{j}", f"q{j}"], [f"z{j}"], name=f"mm{j}"))
    outs = [o for n in nodes for o in n.output]
    return make_model(nodes, inputs, outs, inits), inputs


def pool_model(rng):
    x = rng.standard_normal((2, 5, 11, 9)).astype(np.float32)
    nodes = [helper.make_node("MaxPool", ["x"], ["a"], name="max", kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("AveragePool", ["a"], ["b"], name="avg", kernel_shape=[2, 2], pads=[1, 0, 1, 0],
                              count_include_pad=1),
             helper.make_node("LpPool", ["b"], ["c"], name="lp", kernel_shape=[2, 2], p=2),
             helper.make_node("MaxPool", ["x"], ["m", "idx"], name="max_idx", kernel_shape=[2, 2])]
    return make_model(nodes, {"x": x}, ["c", "m", "idx"]), {"x": x}


def norm_model(rng):
    x = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)
    f = lambda *shape: rng.standard_normal(shape).astype(np.float32)
    nodes = [helper.make_node("InstanceNormalization", ["x", "s1", "b1"], ["a"], name="inorm"),
             helper.make_node("GroupNormalization", ["a", "s2", "b2"], ["y"], name="gnorm", num_groups=3)]
    return make_model(nodes, {"x": x}, ["y", "a"], {"s1": f(6), "b1": f(6), "s2": f(6), "b2": f(6)},
                      opset=21), {"x": x}


def models():
    rng = np.random.default_rng(77)
    specs = [random_conv(rng, kind, nsp) for kind in ("general", "depthwise", "pointwise")
             for nsp in (1, 2) for _ in range(3)]
    yield "random convs", conv_model(rng, specs)
    yield "edge convs", conv_model(rng, EDGE_CONVS + DW_EDGES)
    yield "gemm+matmul", gemm_model(rng)
    yield "mixed", small_mixed_model()
    yield "pools", pool_model(rng)
    yield "norms", norm_model(rng)


@pytest.mark.parametrize("kernels", ["fast", "reference"])
def test_n_cores_bit_identical_to_one_core_on_host(kernels, monkeypatch):
    monkeypatch.setenv(KERNELS_ENV, kernels)
    for what, (model, inputs) in models():
        one = microtrain.compile(model).run(inputs)
        for cores in (2, 3, 8):
            cm = microtrain.compile(model, cores=cores)
            assert "pthread_create" in (cm.project_dir / "network.c").read_text()
            assert_bit_equal(cm.run(inputs), one, f"{what}, {kernels} kernels, {cores} cores")


def test_more_cores_than_work_items_and_layer_outputs():
    """13 cores on layers with fewer rows/blocks than cores (some cores idle),
    and the debug dump of every layer (read after the layer's barrier)."""
    model, inputs = small_mixed_model()
    cm = microtrain.compile(model, cores=13)
    assert_bit_equal(cm.run(inputs), microtrain.compile(model).run(inputs), "13 cores")
    for name, op, err in cm.compare_layers(inputs):
        assert err < 1e-4, f"layer {name} ({op}) off by {err}"


def _tsan_run(cm, inputs, network_c: str) -> subprocess.CompletedProcess:
    """Build the project (network.c given, kernels from source) with
    -fsanitize=thread and run it once."""
    proj = cm.project_dir
    (proj / "network_tsan.c").write_text(network_c)
    exe = proj / "network_tsan"
    runtime = sorted(str(p) for p in RUNTIME_DIR.glob("*.c"))
    subprocess.run([HOST_CC, "-std=c99", "-O1", "-g", "-ffp-contract=off", "-fsanitize=thread",
                    "-I", str(RUNTIME_DIR), "-I", str(proj), str(proj / "network_tsan.c"),
                    str(proj / "weights.c"), str(proj / "main.c"), *runtime, "-lm", "-pthread",
                    "-o", str(exe)], check=True, capture_output=True, timeout=300)
    fin = proj / "in.bin"
    fin.write_bytes(b"".join(inputs[n].tobytes() for n in cm.input_names))
    return subprocess.run([str(exe), str(fin), str(proj / "out.bin")], capture_output=True, timeout=120,
                          env={"TSAN_OPTIONS": "halt_on_error=0 exitcode=66"})


def test_no_data_race_under_thread_sanitizer():
    """Odd sizes so the slices of neighbouring cores meet inside rows, blocks
    and panels. The same build with the barriers removed must be reported,
    so the check itself can fail."""
    model, inputs = small_mixed_model()
    cm = microtrain.compile(model, cores=3)
    src = (cm.project_dir / "network.c").read_text()
    ok = _tsan_run(cm, inputs, src)
    assert ok.returncode == 0 and b"ThreadSanitizer" not in ok.stderr, ok.stderr.decode()[-2000:]
    racy = re.sub(r"mt_par_barrier\(\);", "(void)0;", src)
    assert racy != src
    bad = _tsan_run(cm, inputs, racy)
    assert b"WARNING: ThreadSanitizer: data race" in bad.stderr
    rng = np.random.default_rng(3)
    for what, (model, inputs) in (("pools", pool_model(rng)), ("norms", norm_model(rng))):
        cm = microtrain.compile(model, cores=4)
        ok = _tsan_run(cm, inputs, (cm.project_dir / "network.c").read_text())
        assert ok.returncode == 0 and b"ThreadSanitizer" not in ok.stderr, f"{what}: " + ok.stderr.decode()[-2000:]


def test_cores_option_checked_against_the_target():
    model, _ = small_mixed_model()
    with pytest.raises(MicrotrainError, match="cortex-m4 has 1 core"):
        microtrain.compile(model, "cortex-m4", cores=2)
    with pytest.raises(MicrotrainError, match="rv32imfc has 8 core"):
        microtrain.compile(model, "rv32imfc", cores=9)
    with pytest.raises(MicrotrainError, match="cores=0"):
        microtrain.compile(model, cores=0)


def big_conv():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 16, 12, 12)).astype(np.float32)
    w = (rng.standard_normal((32, 16, 3, 3)) * 0.2).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "s"], ["y"], name="shift")]
    s = np.array([0.5], np.float32)
    return make_model(nodes, {"x": x}, ["y"], {"w": w, "b": b, "s": s}), {"x": x}


def test_per_core_counts_and_estimate_on_rv32imfc():
    model, inputs = big_conv()
    one_cm = microtrain.compile(model, "rv32imfc")
    one = one_cm.profile(inputs)
    cm = microtrain.compile(model, "rv32imfc", cores=4)
    prof = cm.profile(inputs)
    assert_bit_equal(cm.run(inputs), one_cm.run(inputs), "rv32imfc 4 cores")
    conv1, conv4 = one.layers[0], prof.layers[0]
    assert len(conv4.core_instructions) == 4 and sum(conv4.core_instructions) == conv4.instructions
    # The shares add up to about the 1-core count (per-core setup is repeated) ...
    assert conv1.instructions <= conv4.instructions < 1.03 * conv1.instructions
    # ... and are balanced: 32 channels x 12 rows split 4 ways.
    assert max(conv4.core_instructions) < 1.02 * min(conv4.core_instructions)
    # Relu is split by elements; Add (binary) has no parallel kernel: core 0
    # does it, the others only pass the marker.
    relu = prof.layers[1].core_instructions
    assert max(relu) < 1.02 * min(relu) and sum(relu) < 1.05 * one.layers[1].instructions
    pool = prof.layers[2].core_instructions
    assert pool[0] > 1000 and max(pool[1:]) < 20
    barrier = get_barrier("rv32imfc")
    assert prof.cores == 4 and prof.barrier_instructions == barrier
    assert prof.estimate_instructions == sum(max(r.core_instructions) + barrier for r in prof.layers)
    assert prof.estimate_instructions < 0.4 * one.estimate_instructions
    assert one.estimate_instructions == sum(r.instructions for r in one.layers)
    assert "4-core estimate" in prof.table()


def get_barrier(target: str) -> int:
    from microtrain.targets import get_target
    return get_target(target).barrier_instructions


def test_host_profile_of_multicore_build_is_a_clear_error():
    model, inputs = small_mixed_model()
    with pytest.raises(MicrotrainError, match="profile on host"):
        microtrain.compile(model, cores=2).profile(inputs)


def test_cli_run_with_cores_prints_the_estimate(capsys):
    from microtrain.cli import main
    main(["run", "--example", "--target", "rv32imfc", "--cores", "4", "--profile"])
    out = capsys.readouterr().out
    assert "MISMATCH" not in out and "4-core estimate" in out
    with pytest.raises(SystemExit) as exc:
        main(["run", "--example", "--target", "cortex-m4", "--cores", "2"])
    assert exc.value.code == 2
    assert "cortex-m4 has 1 core" in capsys.readouterr().err
