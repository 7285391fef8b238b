"""MCU targets: models cross-compiled and run under QEMU (semihosting) against
the golden model; instruction-count profiles; memory fit; emulator timeouts.
These run for real: a missing toolchain or emulator is a test failure with
the apt-get line to fix it, never a skip."""
from __future__ import annotations

import dataclasses
import re
import shutil

import numpy as np
import pytest
from onnx import helper

import microtrain
from microtrain.errors import BuildError, MicrotrainError
from microtrain.targets import APT_PACKAGES, TARGETS, TargetFitError, get_target
from microtrain.targets.emulator import run_guest
from microtrain.targets.toolchain import build_firmware, symbol_address
from onnx_check import assert_close, make_model

MCU_TARGETS = ["cortex-m4", "cortex-m7", "rv32imc", "rv32imfc"]


@pytest.fixture(scope="module", autouse=True)
def toolchains_installed():
    missing = sorted({t.cc for t in TARGETS.values() if not t.is_host} |
                     {t.emulator.binary for t in TARGETS.values() if not t.is_host})
    missing = [b for b in missing if shutil.which(b) is None]
    if missing:
        pytest.fail(f"cross toolchains/emulators missing: {', '.join(missing)}; install with: "
                    f"apt-get install -y --no-install-recommends {APT_PACKAGES}")


def eltwise_model():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    z = rng.standard_normal((3, 5)).astype(np.float32)
    c = rng.uniform(0.5, 2.0, (1, 5)).astype(np.float32)
    nodes = [helper.make_node("Mul", ["x", "c"], ["m"], name="mul"),
             helper.make_node("Add", ["m", "z"], ["a"], name="add"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Sub", ["r", "x"], ["s"], name="sub"),
             helper.make_node("Div", ["s", "c"], ["y"], name="div")]
    return make_model(nodes, {"x": x, "z": z}, ["y", "r"], {"c": c}), {"x": x, "z": z}


def transcendental_model():
    x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(4, 6)
    nodes = [helper.make_node("Exp", ["x"], ["e"], name="exp"),
             helper.make_node("Tanh", ["x"], ["t"], name="tanh"),
             helper.make_node("Sigmoid", ["x"], ["s"], name="sigmoid"),
             helper.make_node("Add", ["e", "t"], ["a"], name="add"),
             helper.make_node("Mul", ["a", "s"], ["y"], name="mul")]
    return make_model(nodes, {"x": x}, ["y"]), {"x": x}


def cnn_model():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    init = {"w1": rng.standard_normal((4, 2, 3, 3)).astype(np.float32) * 0.3,
            "b1": rng.standard_normal(4).astype(np.float32) * 0.1,
            "w2": rng.standard_normal((4 * 6 * 6, 5)).astype(np.float32) * 0.05,
            "b2": rng.standard_normal(5).astype(np.float32) * 0.1}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="conv", kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], name="fc")]
    return make_model(nodes, {"x": x}, ["y"], init), {"x": x}


def check_against_golden_and_host(model, inputs, target, bit_exact_with_host: bool):
    cm = microtrain.compile(model, target)
    got = cm.run(inputs)
    want = cm.reference(inputs)
    host = microtrain.compile(model).run(inputs)
    for name in cm.output_names:
        assert_close(got[name], want[name], what=f"{target} vs golden, output {name}")
        if bit_exact_with_host:
            # Same C, IEEE float32, no FMA contraction (-ffp-contract=off): identical bits.
            assert np.array_equal(got[name], host[name]), f"{target} vs host differ on {name}"
    return cm


@pytest.mark.parametrize("target", MCU_TARGETS)
def test_eltwise_matches_golden_and_host_bit_exact(target):
    m, inputs = eltwise_model()
    check_against_golden_and_host(m, inputs, target, bit_exact_with_host=True)


@pytest.mark.parametrize("target", MCU_TARGETS)
def test_cnn_matches_golden_and_host_bit_exact(target):
    m, inputs = cnn_model()
    cm = check_against_golden_and_host(m, inputs, target, bit_exact_with_host=True)
    assert cm.report.footprint.stack_measured is not None


@pytest.mark.parametrize("target", ["cortex-m4", "rv32imc"])
def test_libm_functions_within_tolerance(target):
    # picolibc's expf/tanhf may differ from glibc's in the last bit: tolerance only.
    m, inputs = transcendental_model()
    check_against_golden_and_host(m, inputs, target, bit_exact_with_host=False)


@pytest.mark.parametrize("target", ["cortex-m7", "rv32imfc"])
def test_layer_outputs_on_target_match_golden(target):
    m, inputs = cnn_model()
    cm = microtrain.compile(m, target)
    rows = cm.compare_layers(inputs)
    assert [r[0] for r in rows] == ["conv", "relu", "flatten", "fc"]
    assert all(err < 1e-5 for _, _, err in rows), rows


@pytest.mark.parametrize("target", ["cortex-m4", "rv32imfc"])
def test_profile_deterministic_with_layers_and_macs(target):
    m, inputs = cnn_model()
    cm = microtrain.compile(m, target)
    p1, p2 = cm.profile(inputs), cm.profile(inputs)
    assert p1 == p2                                  # exact counts, run to run
    assert [r.name for r in p1.layers] == ["conv", "relu", "flatten", "fc"]
    assert sum(r.instructions for r in p1.layers) <= p1.instructions < p1.program_instructions
    conv, fc = p1.layers[0], p1.layers[3]
    assert conv.macs == 4 * 6 * 6 * 2 * 3 * 3 and fc.macs == 144 * 5
    assert p1.macs == cm.report.macs
    # every MAC costs at least a load, a multiply and an add
    assert conv.instructions > 3 * conv.macs and fc.instructions > 3 * fc.macs
    assert "instructions (not cycles)" in p1.table()


def test_soft_float_core_executes_more_instructions():
    m, inputs = cnn_model()
    soft = microtrain.compile(m, "rv32imc").profile(inputs)
    hard = microtrain.compile(m, "rv32imfc").profile(inputs)
    # rv32imc calls libgcc for every float add/multiply
    assert soft.layers[0].instructions > 5 * hard.layers[0].instructions


def test_footprint_weights_in_flash_and_sizes_reported():
    m, inputs = cnn_model()
    cm = microtrain.compile(m, "cortex-m4")
    fp = cm.footprint
    weights = 4 * (4 * 2 * 9 + 4 + 144 * 5 + 5)
    assert fp.weight_bytes == weights
    assert fp.text >= weights                          # const weights are in flash (.text/.rodata)
    assert fp.bss >= cm.report.arena_bytes + cm.report.io_bytes
    assert fp.flash_capacity == 1024 * 1024 and fp.ram_capacity == 256 * 1024
    assert fp.ram_bytes >= fp.stack_reserved + fp.bss
    emu = get_target("cortex-m4").emulator
    for sym in ("mt_w_w1", "mt_w_w2"):
        addr = symbol_address(cm._program.firmware, sym)
        assert emu.flash.origin <= addr < emu.flash.origin + emu.flash.size, sym
    assert fp.stack_static and fp.stack_static > 0
    model_flash, model_ram = fp.by_part["model"]
    assert model_flash >= weights and model_ram >= cm.report.arena_bytes  # arena: .bss of network.c
    assert fp.by_part["kernels"][0] > 0 and fp.by_part["harness"][1] >= cm.report.io_bytes
    cm.run(inputs)
    assert 0 < fp.stack_measured < fp.stack_reserved
    text = str(cm.report)
    assert "flash" in text and "RAM" in text and "measured peak" in text


def test_weights_too_big_for_flash_raise_fit_error_with_numbers():
    w = np.zeros((300, 1000), np.float32)                # 1.2 MB of weights, M4 has 1 MB flash
    x = np.zeros((300, 1000), np.float32)
    m = make_model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], {"x": x}, ["y"], {"w": w})
    with pytest.raises(TargetFitError) as e:
        microtrain.compile(m, "cortex-m4")
    msg = str(e.value)
    assert "cortex-m4" in msg and "1,200,000" in msg and "1,048,576" in msg
    assert "int8" in msg and "micro-batch" in msg and "LoRA" in msg and "bigger target" in msg


def test_activations_too_big_for_ram_raise_fit_error_with_numbers():
    x = np.zeros((100, 1000), np.float32)                # 400 KB in, 400 KB out, 400 KB arena
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r"), helper.make_node("Exp", ["a"], ["y"], name="e")]
    m = make_model(nodes, {"x": x}, ["y"])
    with pytest.raises(TargetFitError, match=r"activations need [\d,]+ B .* 262,144 B"):
        microtrain.compile(m, "cortex-m4")


def test_linked_size_checked_against_a_custom_board():
    # A new board is just a description; this one's flash is smaller than the runtime itself.
    tiny = dataclasses.replace(get_target("cortex-m4"), name="tiny-m4",
                               memory=(dataclasses.replace(get_target("cortex-m4").flash, size=8 * 1024),
                                       get_target("cortex-m4").ram))
    m, _ = eltwise_model()
    with pytest.raises(TargetFitError, match=r"tiny-m4: flash needs [\d,]+ B .* of 8,192 B"):
        microtrain.compile(m, tiny)


def test_custom_board_description_runs():
    big_stack = dataclasses.replace(get_target("rv32imfc"), name="my-board", stack_bytes=4096)
    m, inputs = eltwise_model()
    cm = microtrain.compile(m, big_stack)
    assert cm.target == "my-board" and cm.footprint.stack_reserved == 4096
    assert_close(cm.run(inputs)["y"], cm.reference(inputs)["y"])


def _hand_written_project(tmp_path, main_body: str):
    (tmp_path / "network.c").write_text("int mt_unused_network;\n")
    (tmp_path / "weights.c").write_text("const int mt_unused_weights = 1;\n")
    return f"#include <stdio.h>\nint main(void)\n{{\n{main_body}\n}}\n"


def test_hung_guest_is_killed_by_the_timeout(tmp_path):
    main = _hand_written_project(tmp_path, "  for (;;) { __asm__ volatile(\"\"); }\n  return 0;")
    fw = build_firmware(tmp_path, get_target("rv32imc"), "mt_network", main)
    with pytest.raises(BuildError, match=r"killed after 2 s .*hung"):
        run_guest(fw, {}, timeout=2)


@pytest.mark.parametrize("target", ["cortex-m4", "rv32imc"])
def test_guest_exit_status_and_files_come_back(tmp_path, target):
    main = _hand_written_project(tmp_path, """
  FILE *f = fopen("in.bin", "rb"); char b[4] = {0};
  if (!f || fread(b, 1, 4, f) != 4) return 9;
  fclose(f);
  f = fopen("out.bin", "wb"); b[0]++; fwrite(b, 1, 4, f); fclose(f);
  return b[1] == 'x' ? 5 : 0;""")
    fw = build_firmware(tmp_path, get_target(target), "mt_network", main)
    got = run_guest(fw, {"in.bin": b"abcd"}, want=("out.bin",))
    assert got.files["out.bin"] == b"bbcd"
    with pytest.raises(BuildError, match=f"on target {target} exited with status 5"):
        run_guest(fw, {"in.bin": b"axcd"})
    with pytest.raises(BuildError, match="exited with status 9"):
        run_guest(fw, {})


def test_unknown_target_and_missing_toolchain_are_clear_errors():
    m, _ = eltwise_model()
    with pytest.raises(MicrotrainError, match="unknown target 'nope'; available: host, cortex-m4"):
        microtrain.compile(m, "nope")
    ghost = dataclasses.replace(get_target("cortex-m4"), name="ghost", cc="ghost-none-eabi-gcc")
    with pytest.raises(BuildError, match=re.escape("needs 'ghost-none-eabi-gcc', which is not installed")
                       + ".*apt-get install"):
        microtrain.compile(m, ghost)


def test_host_profile_with_callgrind():
    m, inputs = cnn_model()
    cm = microtrain.compile(m)
    if shutil.which("valgrind") is None:
        with pytest.raises(BuildError, match="needs valgrind"):
            cm.profile(inputs)
        pytest.fail("valgrind is not installed: apt-get install valgrind")
    p = cm.profile(inputs)
    assert [r.name for r in p.layers] == ["conv", "relu", "flatten", "fc"]
    assert sum(r.instructions for r in p.layers) <= p.instructions < p.program_instructions
    assert p.layers[0].instructions > 3 * p.layers[0].macs


@pytest.mark.parametrize("target,call,link_reg", [("rv32imc", "jal ra, mt_layer_marker", "ra"),
                                                  ("cortex-m4", "bl mt_layer_marker", "lr")])
def test_plugin_counts_a_known_instruction_sequence_exactly(tmp_path, target, call, link_reg):
    # Between the two marker hits: the marker's return (1), 100 nops, the call (1).
    main = _hand_written_project(tmp_path, f"""
  __asm__ volatile("{call}\\n .rept 100\\n nop\\n .endr\\n {call}" ::: "memory", "{link_reg}");
  return 0;""")
    main = "__attribute__((noinline, noipa)) void mt_layer_marker(void) { __asm__ volatile(\"\"); }\n" + main
    fw = build_firmware(tmp_path, get_target(target), "mt_network", main)
    got = run_guest(fw, {}, count=True, marker=symbol_address(fw, "mt_layer_marker"))
    assert len(got.marks) == 2 and got.marks[1] - got.marks[0] == 102
    assert got.total_instructions > got.marks[1]


@pytest.mark.parametrize("target,fault,shown", [
    ("cortex-m4", "*(volatile int *)0xFFFFFFF0u = 1;", "PC: 0x"),      # bus fault -> HardFault
    ("rv32imc", "__asm__ volatile(\".word 0\");", "mcause: 0x00000002")])  # illegal instruction
def test_guest_fault_is_a_clear_build_error(tmp_path, target, fault, shown):
    main = _hand_written_project(tmp_path, f"  {fault}\n  return 0;")
    fw = build_firmware(tmp_path, get_target(target), "mt_network", main)
    with pytest.raises(BuildError, match=f"on target {target} exited with status 1: guest output: .*{shown}") as e:
        run_guest(fw, {}, timeout=10)
    assert "warning" not in str(e.value)


def test_cli_compile_for_a_target_prints_the_footprint(tmp_path):
    import onnx
    from click.testing import CliRunner
    from microtrain.cli import cli
    m, _ = cnn_model()
    onnx.save(m, tmp_path / "cnn.onnx")
    res = CliRunner().invoke(cli, ["compile", str(tmp_path / "cnn.onnx"), "--target", "cortex-m7",
                                   "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "target cortex-m7: flash" in res.output and "/ 2,097,152 B" in res.output
    assert (tmp_path / "out" / "build-cortex-m7" / "firmware.elf").exists()


def test_relative_out_dir_and_run_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m, inputs = eltwise_model()
    cm = microtrain.compile(m, "rv32imfc", out_dir="proj")    # the emulator runs elsewhere
    assert_close(cm.run(inputs)["y"], cm.reference(inputs)["y"])
    script = (tmp_path / "proj" / "build-rv32imfc" / "run.sh").read_text()
    assert "qemu-system-riscv32" in script and str(tmp_path / "proj") in script and "timeout" in script
