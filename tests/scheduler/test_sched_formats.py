"""Our YAML, ZigZag's YAML (inline examples; zigzag itself not needed) and ONNX input."""
import numpy as np
import pytest
import yaml

from microtrain.scheduler.errors import SchedulerError
from microtrain.scheduler.hardware import hardware_from_dict, hardware_to_dict, load_hardware, shipped_names
from microtrain.scheduler.layer import conv_layer
from microtrain.scheduler.zigzag_format import (
    hardware_from_zigzag, hardware_to_zigzag, layer_to_zigzag, layers_from_zigzag_workload,
    mapping_to_zigzag, spatial_from_zigzag_mapping)

ZZ_HW = yaml.safe_load("""
name: tiny_zz
memories:
  rf_w:
    size: 64
    r_cost: 0.5
    w_cost: 0.7
    area: 0
    latency: 1
    operands: [I2]
    ports:
      - {name: r_port_1, type: read, bandwidth_min: 8, bandwidth_max: 8, allocation: [I2, tl]}
      - {name: w_port_1, type: write, bandwidth_min: 8, bandwidth_max: 8, allocation: [I2, fh]}
    served_dimensions: []
  sram:
    size: 65536
    r_cost: 10
    w_cost: 12
    area: 0
    latency: 1
    operands: [I1, O]
    ports:
      - name: rw_port_1
        type: read_write
        bandwidth_min: 32
        bandwidth_max: 128
        allocation: [I1, fh, I1, tl, O, fh, O, tl, O, fl, O, th]
    served_dimensions: [D1, D2]
  dram:
    size: 10000000000
    r_cost: 100
    w_cost: 100
    area: 0
    latency: 1
    operands: [I1, I2, O]
    ports:
      - {name: rw_port_1, type: read_write, bandwidth_min: 64, bandwidth_max: 64,
         allocation: [I1, fh, I1, tl, I2, fh, I2, tl, O, fh, O, tl, O, fl, O, th]}
    served_dimensions: [D1, D2]
operational_array:
  unit_energy: 0.3
  unit_area: 1
  dimensions: [D1, D2]
  sizes: [4, 2]
""")
# ZigZag writes allocations as "I2, tl" strings; the inline list above is split: rejoin pairs
for mem in ZZ_HW["memories"].values():
    for port in mem["ports"]:
        a = port["allocation"]
        port["allocation"] = [f"{a[i]}, {a[i + 1]}" for i in range(0, len(a), 2)]

ZZ_MAP = yaml.safe_load("""
- name: default
  spatial_mapping:
    D1: ["K, 4"]
    D2: [C, 2]
  memory_operand_links: {O: O, W: I2, I: I1}
""")

ZZ_WL = yaml.safe_load("""
- id: 0
  name: conv_a
  operator_type: Conv
  equation: O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]
  dimension_relations: [ix=2*ox+1*fx, iy=2*oy+1*fy]
  loop_dims: [B, K, C, OY, OX, FY, FX]
  loop_sizes: [1, 8, 4, 5, 5, 3, 3]
  operand_precision: {W: 4, I: 8, O: 24, O_final: 8}
  operand_source: {I: 0}
  pr_loop_dims: [IX, IY]
  padding: [[1, 1], [1, 1]]
- id: 1
  name: pool
  operator_type: Pooling
  equation: O[b][g][oy][ox]+=W[fx][fy]*I[b][g][iy][ix]
  loop_dims: [B, G, OY, OX, FX, FY]
  loop_sizes: [1, 8, 2, 2, 2, 2]
  operand_precision: {I: 8, W: 0, O: 16, O_final: 8}
- id: 2
  name: fc
  operator_type: Gemm
  equation: O[b][k]+=W[k][c]*I[b][c]
  loop_dims: [B, K, C]
  loop_sizes: [2, 10, 16]
  operand_precision: {W: 8, I: 8, O: 16, O_final: 8}
""")


def test_zigzag_hardware_is_read():
    hw = hardware_from_zigzag(ZZ_HW, mapping=ZZ_MAP)
    assert [m.name for m in hw.memories] == ["rf_w", "sram", "dram"]
    assert hw.memories[0].operands == ("W",) and hw.memories[1].operands == ("I", "O")
    sram = hw.memories[1]
    assert (sram.read_bw, sram.rbw_min, sram.rw_shared, sram.served_dims) == (128, 32, True, ("D1", "D2"))
    assert hw.array == {"D1": 4, "D2": 2} and hw.unroll == {"D1": "K", "D2": "C"}
    assert hw.unroll_limit == {"D1": 4, "D2": 2} and hw.mac_energy == 0.3


def test_zigzag_hardware_round_trip():
    hw = hardware_from_zigzag(ZZ_HW, mapping=ZZ_MAP)
    again = hardware_from_zigzag(hardware_to_zigzag(hw), mapping=ZZ_MAP)
    assert again.memories == hw.memories and again.array == hw.array


def test_own_yaml_round_trip_for_shipped():
    for name in shipped_names():
        hw = load_hardware(name)
        assert hardware_from_dict(hardware_to_dict(hw)) == hw


def test_zigzag_workload_is_read():
    layers = layers_from_zigzag_workload(ZZ_WL)
    assert [l.name for l in layers] == ["conv_a", "fc"]  # pooling has no weights: skipped
    conv, fc = layers
    assert conv.sizes["K"] == 8 and conv.precision["O"] == 24 and conv.precision["W"] == 4
    ix = [t for t in conv.partial["I"] if t.name == "IX"][0]
    assert (ix.dim_a, ix.coef_a, ix.dim_b, ix.coef_b) == ("OX", 2, "FX", 1)
    assert ix.limit == 2 * 4 + 2 + 1 - 2  # window span minus padding
    assert conv.is_relevant("I", "FX") and not conv.is_relevant("W", "OX")
    assert fc.relevant == {"O": ("B", "K"), "W": ("K", "C"), "I": ("B", "C")}


def test_zigzag_workload_round_trip():
    layer = conv_layer("x", k=8, c=4, oy=7, ox=7, fy=3, fx=3, stride=2, iy=14, ix=14)
    back = layers_from_zigzag_workload([layer_to_zigzag(layer)])[0]
    assert back.sizes == layer.sizes
    assert {t.name: t.limit for t in back.partial["I"]} == {t.name: t.limit for t in layer.partial["I"]}
    ext = {"OY": 3, "FY": 3, "OX": 2, "FX": 3, "C": 2}
    assert back.tensor_size("I", ext) == layer.tensor_size("I", ext)


def test_mapping_export_has_temporal_ordering_innermost_first():
    entry = mapping_to_zigzag("conv_a", {"D1": ("K", 4), "D2": ("C", 2)}, [("OX", 5), ("K", 2)])
    assert entry["temporal_ordering"] == [["OX", 5], ["K", 2]]
    assert entry["spatial_mapping"] == {"D1": ["K, 4"], "D2": ["C, 2"]}
    assert spatial_from_zigzag_mapping([entry], "conv_a") == ({"D1": "K", "D2": "C"}, {"D1": 4, "D2": 2})


@pytest.mark.parametrize("bad,msg", [
    ([{"id": 0, "operator_type": "Conv", "equation": "O[k]+=W[k]*I[q]", "loop_dims": ["K"], "loop_sizes": [4],
       "operand_precision": {"O": 16, "O_final": 8}}], "index Q"),
    ([{"id": 0, "operator_type": "Conv", "loop_dims": ["K"], "loop_sizes": [4]}], "missing key"),
    ({"not": "a list"}, "YAML list"),
    ([{"id": 0, "operator_type": "Pooling"}], "no conv/matmul"),
])
def test_zigzag_workload_errors(bad, msg):
    with pytest.raises(SchedulerError, match=msg):
        layers_from_zigzag_workload(bad)


def test_hardware_errors(tmp_path):
    with pytest.raises(SchedulerError, match="neither a file nor a shipped"):
        load_hardware("no_such_hw")
    p = tmp_path / "bad.yaml"
    p.write_text("memories: [\n")
    with pytest.raises(SchedulerError, match="not valid YAML"):
        load_hardware(p)
    d = hardware_to_dict(load_hardware("gap9_like"))
    d["memories"][0]["operands"] = ["X"]
    with pytest.raises(SchedulerError, match="unknown operand"):
        hardware_from_dict(d)
    d = hardware_to_dict(load_hardware("gap9_like"))
    d["memories"] = [m for m in d["memories"] if "W" not in m["operands"]]
    with pytest.raises(SchedulerError, match="no memory holds operand W"):
        hardware_from_dict(d)
    d = hardware_to_dict(load_hardware("gap9_like"))
    del d["mac_array"]
    with pytest.raises(SchedulerError, match="lacks key"):
        hardware_from_dict(d)


# ------------------------------------------------------------------ ONNX

def _onnx_model(dynamic: bool = False):
    from onnx import TensorProto, helper
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["y1"], name="conv", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["y1", "w2"], ["y2"], name="dw", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["y2"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w3"], ["y3"], name="fc", transB=1),
        helper.make_node("MatMul", ["y3", "w4"], ["y4"], name="mm"),
    ]
    inits = [helper.make_tensor(n, TensorProto.FLOAT, s, np.zeros(int(np.prod(s)), np.float32))
             for n, s in (("w1", [8, 3, 3, 3]), ("w2", [8, 1, 3, 3]), ("w3", [10, 8 * 8 * 8]), ("w4", [10, 6]))]
    batch = "N" if dynamic else 1
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, 16])],
                              [helper.make_tensor_value_info("y4", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_onnx_layers():
    from microtrain.scheduler.workload import layers_from_onnx
    conv, dw, fc, mm = layers_from_onnx(_onnx_model())
    assert conv.sizes == {"B": 1, "G": 1, "K": 8, "C": 3, "OY": 8, "OX": 8, "FY": 3, "FX": 3}
    assert {t.name: (t.coef_a, t.limit) for t in conv.partial["I"]} == {"IY": (2, 16), "IX": (2, 16)}
    assert (dw.sizes["G"], dw.sizes["K"], dw.sizes["C"]) == (8, 1, 1)
    assert fc.sizes == {"B": 1, "K": 10, "C": 512} and mm.sizes == {"B": 1, "K": 6, "C": 10}


def test_onnx_errors(tmp_path):
    from microtrain.scheduler.workload import layers_from_onnx
    with pytest.raises(SchedulerError, match="does not exist"):
        layers_from_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not onnx at all")
    with pytest.raises(SchedulerError, match="not a valid ONNX model"):
        layers_from_onnx(junk)
    with pytest.raises(SchedulerError, match="unknown or dynamic"):
        layers_from_onnx(_onnx_model(dynamic=True))
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    with pytest.raises(SchedulerError, match="no Conv, Gemm or MatMul"):
        layers_from_onnx(helper.make_model(g))
