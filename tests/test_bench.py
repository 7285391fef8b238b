"""`microtrain bench` (benchmark.run_bench and the CLI command) and the memory
timeline (timeline.py), on tiny models so each test takes seconds."""
from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from onnx import helper

import microtrain
from microtrain.benchmark import CALIBRATION_SAMPLES, COLUMNS, run_bench
from microtrain.cli import main
from microtrain.models import get_model
from microtrain.quantization import quantize_inputs
from microtrain.targets import MemoryLevel, get_target
from onnx_check import make_model

TINY_EEGNET = {"eegnet": dict(kwargs=dict(chans=2, samples=64, f1=2, d=1, f2=4, kernel=8, sep_kernel=4,
                                          norm="layer"), classes=3)}
TINY_EPIDENET = {"epidenet": dict(kwargs=dict(chans=1, samples=480, norm="layer"), classes=3,
                                  int8_kwargs=dict(chans=1, samples=480, norm="batch"))}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_bench_tiny_model_one_target_writes_csv_and_markdown(tmp_path):
    modes = ["inference fp32", "inference int8", "train last-layer"]
    res = run_bench(["eegnet"], ["rv32imfc"], modes, configs=TINY_EEGNET, progress=False)
    md, cs = res.write(tmp_path)
    with cs.open() as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == COLUMNS
    assert [r[2] for r in rows[1:]] == modes
    by_mode = {r[2]: dict(zip(COLUMNS, r)) for r in rows[1:]}
    inf, int8, train = by_mode["inference fp32"], by_mode["inference int8"], by_mode["train last-layer"]
    assert inf["status"] == "ok" and train["status"] == "ok"
    assert int8["status"].startswith("n/a: ") and "no integer form" in int8["status"] and int8["instructions"] == ""
    # The inference row's numbers are the compiled model's own profile and footprint.
    proto = get_model("eegnet").export(**TINY_EEGNET["eegnet"]["kwargs"])
    cm = microtrain.compile(proto, "rv32imfc")
    x = np.random.default_rng(0).standard_normal(cm.graph.types[cm.input_names[0]].shape).astype(np.float32)
    prof = cm.profile({cm.input_names[0]: x})
    assert int(inf["macs"]) == cm.report.macs > 0
    assert int(inf["instructions"]) == prof.instructions
    assert float(inf["instructions_per_mac"]) == pytest.approx(prof.instructions / cm.report.macs, abs=1e-3)
    assert int(inf["flash_bytes"]) == cm.footprint.flash_bytes and int(inf["ram_bytes"]) == cm.footprint.ram_bytes
    # A training step does at least the forward's MACs and more instructions than inference.
    assert int(train["macs"]) >= int(inf["macs"]) and int(train["instructions"]) > int(inf["instructions"])
    text = md.read_text()
    assert "| model | target | mode | instructions | MACs | instr/MAC | flash B | RAM B | note |" in text
    assert "| eegnet | rv32imfc | inference int8 | n/a: " in text
    assert f"| {int(inf['instructions']):,} |" in text


def test_bench_int8_row_is_the_quantized_models_profile():
    """The int8 row: the model (its int8 export) quantized from seeded N(0, 1)
    calibration samples, compiled with the integer kernels, profiled."""
    res = run_bench(["epidenet"], ["rv32imfc"], ["inference int8"], configs=TINY_EPIDENET, progress=False)
    (row,) = res.rows
    assert row.status == "ok" and "int8 export: norm=batch" in row.note
    proto = get_model("epidenet").export(**TINY_EPIDENET["epidenet"]["int8_kwargs"])
    rng = np.random.default_rng(0)
    name = proto.graph.input[0].name
    shape = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    calib = [{name: rng.standard_normal(shape).astype(np.float32)} for _ in range(CALIBRATION_SAMPLES)]
    qproto = microtrain.quantize(proto, calib, progress=False)
    qx = quantize_inputs(qproto, {name: rng.standard_normal(shape).astype(np.float32)})
    qcm = microtrain.compile(qproto, "rv32imfc")
    assert "mt_conv_s8" in (qcm.project_dir / "network.c").read_text()   # really the integer kernels
    assert row.instructions == qcm.profile(qx).instructions
    assert row.macs == qcm.report.macs > 0
    assert (row.flash_bytes, row.ram_bytes) == (qcm.footprint.flash_bytes, qcm.footprint.ram_bytes)
    assert f"| epidenet | rv32imfc | inference int8 | {row.instructions:,} |" in res.markdown()


def test_bench_row_says_does_not_fit_with_numbers():
    board = dataclasses.replace(get_target("cortex-m4"), name="tiny-m4",
                                memory=(MemoryLevel("flash", 64 * 1024, "code+const"),
                                        MemoryLevel("sram", 2 * 1024, "data")))
    res = run_bench(["eegnet"], [board], ["inference fp32"], configs=TINY_EEGNET, progress=False)
    (row,) = res.rows
    assert row.target == "tiny-m4"
    assert row.status.startswith("does not fit: ") and "2,048 B" in row.status, row.status
    assert row.instructions is None


def test_bench_cli_writes_files_and_rejects_unknown_names(tmp_path, capsys):
    main(["bench", "--models", "cct", "--targets", "cortex-m4", "--modes", "inference int8",
          "-o", str(tmp_path)])
    assert (tmp_path / "bench.csv").read_text().splitlines()[0] == ",".join(COLUMNS)
    assert "| cct | cortex-m4 | inference int8 | " in (tmp_path / "bench.md").read_text()
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--models", "alexnet", "-o", str(tmp_path)])
    assert exc.value.code == 2
    assert "--models 'alexnet'" in capsys.readouterr().err


def chain_model():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 12, 12)).astype(np.float32)
    init = {"w1": rng.standard_normal((8, 2, 3, 3)).astype(np.float32),
            "w2": rng.standard_normal((4, 8, 3, 3)).astype(np.float32),
            "w3": rng.standard_normal((4 * 12 * 12, 5)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["c2"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "w3"], ["y"], name="fc")]
    return make_model(nodes, {"x": x}, ["y"], init)


def test_timeline_peak_is_the_planner_lower_bound_and_png_is_written(tmp_path):
    cm = microtrain.compile(chain_model())
    tl = cm.memory_timeline()
    assert tl.steps == [n.name for n in cm.graph.nodes]
    assert tl.live_bytes[tl.peak_step] == cm.plan.lower_bound_bytes == max(tl.live_bytes)
    assert max(tl.arena_top) == cm.plan.arena_bytes
    assert all(top >= live for live, top in zip(tl.live_bytes, tl.arena_top))
    # conv1's output (8x12x12 floats) is alive at relu1 (in place) and at conv2.
    assert tl.live_bytes[tl.steps.index("relu1")] >= 8 * 12 * 12 * 4
    path = microtrain.plot_memory_timeline(cm, tmp_path / "sub" / "mem.png")
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5000


def test_timeline_of_a_training_step_and_cli(tmp_path, capsys):
    proto = get_model("eegnet").export(**TINY_EEGNET["eegnet"]["kwargs"])
    tr = microtrain.compile_training(proto, strategy="full", batch=1)
    tl = microtrain.memory_timeline(tr)
    assert max(tl.live_bytes) == tr.plans.micro.lower_bound_bytes
    assert len(tl.steps) == len(tr.program.micro.nodes)
    onnx_path = tmp_path / "m.onnx"
    import onnx
    onnx.save(chain_model(), onnx_path)
    main(["inspect", str(onnx_path), "--timeline", str(tmp_path / "t.png")])
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG_MAGIC
    assert "wrote" in capsys.readouterr().out
