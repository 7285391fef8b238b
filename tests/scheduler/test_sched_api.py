"""Public API, CLI command, sweep and the tiling hook."""
import os
from math import prod

import pytest
from click.testing import CliRunner

from microtrain.scheduler import schedule, tile_for_levels
from microtrain.scheduler.api import Mapping
from microtrain.scheduler.cli import schedule_command
from microtrain.scheduler.errors import SchedulerError
from microtrain.scheduler.hardware import load_hardware
from microtrain.scheduler.layer import conv_layer, matmul_layer
from microtrain.scheduler.problem import build_problem
from microtrain.scheduler.sweep import sweep, to_markdown, write_csv
from microtrain.scheduler.zigzag_format import layer_to_zigzag

SMALL = conv_layer("small", k=16, c=8, oy=2, ox=4, fy=3, fx=3)  # small spaces: auto searches exhaustively
FC = matmul_layer("fc", m=1, n=40, k=64)


@pytest.mark.parametrize("objective", ["energy", "latency", "edp"])
def test_schedule_returns_consistent_mappings(objective):
    hw = load_hardware("gap9_like")
    maps = schedule([SMALL, FC], hw, objective=objective)
    assert [m.layer for m in maps] == ["small", "fc"]
    for m, layer in zip(maps, [SMALL, FC]):
        assert isinstance(m, Mapping) and m.energy > 0 and m.latency > 0 and 0 < m.utilization <= 1
        pb = build_problem(layer, hw)
        for d, size in pb.temporal.items():
            assert prod(s for dd, s in m.loop_order if dd == d) == size
        for op, levels in m.allocation.items():
            assert [name for name, _ in levels] == [hw.memories[i].name for i in hw.chain(op)]
            assert sum((loops for _, loops in levels), []) == m.loop_order
        assert m.to_zigzag()["temporal_ordering"] == [[d, s] for d, s in m.loop_order]


def test_latency_objective_does_not_lose_to_energy_objective_on_latency():
    hw = load_hardware("edge_tpu_like")
    e = schedule(SMALL, hw, objective="energy", engine="exhaustive" if False else "auto")[0]
    lat = schedule(SMALL, hw, objective="latency")[0]
    assert lat.latency <= e.latency * (1 + 1e-9)


@pytest.mark.parametrize("kwargs,msg", [
    ({"engine": "magic"}, "engine must be"),
    ({"objective": "area"}, "objective must be"),
    ({"allocation": "odd"}, "allocation must be"),
])
def test_schedule_rejects_bad_options(kwargs, msg):
    with pytest.raises(SchedulerError, match=msg):
        schedule(SMALL, "gap9_like", **kwargs)


def test_layer_too_big_for_hardware():
    from dataclasses import replace
    hw = load_hardware("gap9_like")
    hw2 = replace(hw, memories=hw.memories[:-1] + (replace(hw.memories[-1], size_bits=4096),))
    with pytest.raises(SchedulerError, match="does not fit"):
        schedule(SMALL, hw2)


def test_cli_prints_table_and_reports_errors_in_one_line(tmp_path):
    import yaml
    wl = tmp_path / "wl.yaml"
    wl.write_text(yaml.safe_dump([layer_to_zigzag(SMALL, 0), layer_to_zigzag(FC, 1)]))
    out_csv = tmp_path / "out.csv"
    r = CliRunner().invoke(schedule_command, [str(wl), "--hw", "gap9_like", "--no-ray", "--csv", str(out_csv)])
    assert r.exit_code == 0, r.output
    assert "small" in r.output and "fc" in r.output and "gap9_like" in r.output
    assert out_csv.read_text().count("\n") == 3
    bad = CliRunner().invoke(schedule_command, [str(wl), "--hw", "nope", "--no-ray"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert "nope" in bad.output and len(bad.output.strip().splitlines()) == 1
    missing = CliRunner().invoke(schedule_command, [str(tmp_path / "m.onnx"), "--hw", "gap9_like", "--no-ray"])
    assert missing.exit_code != 0 and "does not exist" in missing.output and "Traceback" not in missing.output
    noray = CliRunner().invoke(schedule_command, [str(wl), "--hw", "gap9_like", "--ray-address", "127.0.0.1:1"])
    assert noray.exit_code == 1 and "cannot reach Ray at 127.0.0.1:1" in noray.output
    assert len(noray.output.strip().splitlines()) == 1
    badeng = CliRunner().invoke(schedule_command, [str(wl), "--hw", "gap9_like", "--engine", "x"])
    assert badeng.exit_code == 2


def test_sweep_serial_table(tmp_path):
    rows = sweep([SMALL, FC], ["gap9_like", "edge_tpu_like"], use_ray=False, progress=False)
    assert [(r["hardware"], r["layer"]) for r in rows] == [
        ("gap9_like", "small"), ("gap9_like", "fc"), ("edge_tpu_like", "small"), ("edge_tpu_like", "fc")]
    md = to_markdown(rows)
    assert md.count("\n") == 2 + len(rows)
    write_csv(rows, tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text().startswith("hardware,layer")


@pytest.mark.skipif(not os.environ.get("MICROTRAIN_RAY_TESTS"),
                    reason="starting Ray takes 10-40 s; set MICROTRAIN_RAY_TESTS=1 to run")
def test_sweep_on_local_ray_matches_serial():
    ray = pytest.importorskip("ray")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        par = sweep([SMALL, FC], ["gap9_like"], progress=False)
    finally:
        ray.shutdown()
    ser = sweep([SMALL, FC], ["gap9_like"], use_ray=False, progress=False)
    assert [(r["layer"], r["energy_pJ"]) for r in par] == [(r["layer"], r["energy_pJ"]) for r in ser]


def test_tile_for_levels_tiles_fit_their_levels():
    levels = [("L1", 4 * 1024), ("L2", 256 * 1024)]
    plan = tile_for_levels(SMALL, levels)
    for name, size in levels:
        bits = 0
        for op, ext in plan.tiles[name].items():
            n = SMALL.tensor_size(op, ext)
            prec = SMALL.precision[op] if op != "O" else SMALL.precision["O"]
            bits += n * prec
        assert bits <= size * 8 * 1.0001 or name == "L2"
    assert plan.tiles["L2"]["W"]["K"] == 16  # the top level holds everything
    assert plan.mapping.engine in ("exhaustive", "annealing")
    with pytest.raises(SchedulerError):
        tile_for_levels(SMALL, [])
