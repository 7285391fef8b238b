"""ITA heterogeneous target (docs/ita.md): the accelerator's functional model
equals microtrain's integer golden model of the same heads; the cycle model's
closed forms; the device rejects invalid descriptors (error status, no write)
and the co-simulation raises ItaDeviceError; the BERT-style encoder is
bit-exact with the integer golden model on rv32imc+ita and rv32imc."""
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import microtrain
from microtrain.accel.ita import ITA_CONFIG, ItaConfig, head_cost
from microtrain.accel.ita.cost import matmul_cycles, plan_tiles
from microtrain.accel.ita.model import MAX_DOT_LENGTH, finish_output, jobs_from_qmhsa, run_head
from microtrain.accel.ita.registers import (ERROR, REG, START, STATUS, STATUS_DONE, STATUS_ERROR,
                                            TABLE_FIELDS, ItaDevice, ItaDeviceError)
from microtrain.errors import MicrotrainError
from microtrain.quantization import quantize_inputs

warnings.filterwarnings("ignore", category=UserWarning)
torch.set_num_threads(1)
RUNTIME = Path(microtrain.__file__).parent / "runtime"


@pytest.fixture(scope="module")
def block():
    """A quantized 2-head attention block (S=20, E=16, P=16) and its mt.QMHSA node."""
    from microtrain.compiler import lower_to_graph
    from microtrain.models import mhsa
    from microtrain.passes.depth_first_attention import depth_first_attention
    fmodel = mhsa.export(tokens=20, dim=16, heads=2, head_dim=16)
    calib = np.random.default_rng(0).standard_normal((6, 20, 16)).astype(np.float32)
    qmodel = microtrain.quantize(fmodel, calib, softmax="ita", progress=False)
    g = depth_first_attention(lower_to_graph(qmodel), always_fuse_blocks=True)
    node = next(n for n in g.nodes if n.op == "mt.QMHSA")
    return qmodel, node


def test_functional_model_equals_the_integer_golden_model(block):
    from microtrain.ops.registry import get_op
    _, node = block
    jobs = jobs_from_qmhsa(node.attrs)
    assert len(jobs) == 2
    for seed in range(3):
        x = np.random.default_rng(seed).integers(-128, 128, (20, 16)).astype(np.int8)
        acc = sum(run_head(j, x).astype(np.int64) for j in jobs)
        np.testing.assert_array_equal(finish_output(node.attrs, acc), get_op(node).reference(node, [x])[0])


def test_cycle_and_energy_model_closed_forms():
    assert ITA_CONFIG.macs_per_cycle == 16 * 64
    # (64 x 128) . (128 x 32): 128 groups of 16 outputs, 2 passes of 64 lanes, + pipeline fill
    assert matmul_cycles(64, 128, 32) == 128 * 2 + ITA_CONFIG.pipeline_fill
    assert matmul_cycles(64, 32, 128) == 512 * 1 + ITA_CONFIG.pipeline_fill
    c = head_cost(64, 128, 32, 32, 128)
    assert c.macs == 64 * (128 * 96 + 64 * 64 + 32 * 128)
    assert c.energy_j == pytest.approx(2 * c.macs / 16.9e12)
    assert c.cycles >= c.compute_cycles and c.cycles >= c.dma_bytes / ITA_CONFIG.dma_bytes_per_cycle
    assert 0 < c.utilization() < 1
    # tile rows: resident part + two tiles must fit the memory
    rows = plan_tiles(64, 128, 32, 32, 128)
    resident = 128 * 96 + 32 * 128 + 64 * 64 + 12 * 96
    assert resident + 2 * rows * (128 + 32 + 64 + 32 + 4 * 128) <= 64 * 1024
    assert resident + 2 * (rows + 1) * (128 + 32 + 64 + 32 + 4 * 128) > 64 * 1024
    with pytest.raises(MicrotrainError, match="does not fit"):
        plan_tiles(64, 128, 32, 32, 128, ItaConfig(memory_bytes=16 * 1024))
    # 26-bit accumulators: the longest supported dot product of shifted int8 cannot overflow
    assert MAX_DOT_LENGTH * 255 * 255 < 2 ** 25


def test_driver_header_matches_the_register_map():
    h = (RUNTIME / "mt_ita.h").read_text()
    val = lambda name: int(re.search(rf"#define {name} (\w+)", h).group(1).rstrip("u"), 0)
    assert val("MT_ITA_TABLE_WORDS") == len(TABLE_FIELDS)
    assert (val("MT_ITA_START"), val("MT_ITA_STATUS"), val("MT_ITA_ERROR")) == (START, STATUS, ERROR)
    assert (val("MT_ITA_REG_X"), val("MT_ITA_REG_ACC"), val("MT_ITA_REG_TABLE")) == (REG["X"], REG["ACC"], REG["S"])


class _Memory:
    """A flat guest RAM for driving the device directly."""
    def __init__(self, origin=0x1000, size=1 << 16):
        self.origin, self.data = origin, bytearray(size)
        self.writes = 0

    def valid(self, a, n):
        return self.origin <= a and a + n <= self.origin + len(self.data)

    def read(self, a, n):
        return bytes(self.data[a - self.origin:a - self.origin + n])

    def write(self, a, d):
        self.writes += 1
        self.data[a - self.origin:a - self.origin + len(d)] = d


def _program(dev, mem, node, x):
    """Lay head 0's job out in `mem` and write the registers as the driver does."""
    job = jobs_from_qmhsa(node.attrs)[0]
    top = [mem.origin]

    def put(arr, dtype):
        b = np.ascontiguousarray(arr, dtype).tobytes()
        a = top[0]
        mem.write(a, b)
        top[0] += (len(b) + 15) // 16 * 16
        return a
    s, e = x.shape
    eo = job.o_w.shape[1]
    regs = {"X": put(x, "<i1"), "ACC": put(np.zeros((s, eo)), "<i4"), "S": s, "E": e, "P": job.q.w.shape[1],
            "PV": job.v.w.shape[1], "EO": eo, "TO_SIGNED": job.to_signed, "O_W": put(job.o_w, "<i1"),
            "O_AZP": job.o_azp, "O_BZP": job.o_bzp}
    for j in "qkv":
        p = getattr(job, j)
        J = j.upper()
        regs.update({f"{J}_W": put(p.w, "<i1"), f"{J}_AZP": p.azp, f"{J}_BZP": p.bzp, f"{J}_MUL": put(p.mul, "<i4"),
                     f"{J}_ADD": put(p.add, "<i8"), f"{J}_SHIFT": p.shift, f"{J}_LO": p.lo, f"{J}_HI": p.hi,
                     f"{J}_HAS_BIAS": p.has_bias, f"{J}_BZ": p.bz, f"{J}_BM": p.bm,
                     f"{J}_BCONST": put(p.bconst, "<i8"), f"{J}_BSHIFT": p.bshift, f"{J}_BLO": p.blo,
                     f"{J}_BHI": p.bhi})
    for pre, st in (("S", job.scores), ("C", job.context)):
        regs.update({f"{pre}_AZP": st.azp, f"{pre}_BZP": st.bzp, f"{pre}_MUL": put(st.mul, "<i4"),
                     f"{pre}_NMUL": st.mul.size, f"{pre}_ADD": put(st.add, "<i8"), f"{pre}_NADD": st.add.size,
                     f"{pre}_SHIFT": st.shift, f"{pre}_LO": st.lo, f"{pre}_HI": st.hi})
    if job.scale is not None:
        azp, bzp, b, mul, add, shift, lo, hi = job.scale
        regs.update({"HAS_SCALE": 1, "M_AZP": azp, "M_BZP": bzp, "M_B": b, "M_MUL": mul,
                     "M_ADD_LO": add & 0xFFFFFFFF, "M_ADD_HI": (add >> 32) & 0xFFFFFFFF, "M_SHIFT": shift,
                     "M_LO": lo, "M_HI": hi})
    for k, v in regs.items():
        dev.reg_write(REG[k], int(v))
    return job, regs


@pytest.mark.parametrize("field,value,code", [("X", 0x90000000, 1), ("ACC", 0x1000 + (1 << 16) - 64, 1),
                                              ("S", 600, 2), ("P", 0, 2), ("Q_SHIFT", 70, 3),
                                              ("S_NMUL", 7, 2)])
def test_device_rejects_invalid_descriptors(block, field, value, code):
    _, node = block
    mem = _Memory()
    dev = ItaDevice(mem.read, mem.write, mem.valid)
    x = np.random.default_rng(0).integers(-128, 128, (20, 16)).astype(np.int8)
    job, regs = _program(dev, mem, node, x)
    dev.reg_write(START, 1)                          # the valid job runs and adds into ACC
    assert dev.regs[STATUS] == STATUS_DONE and dev.regs[ERROR] == 0
    acc = np.frombuffer(mem.read(regs["ACC"], 4 * 20 * 16), "<i4").reshape(20, 16)
    np.testing.assert_array_equal(acc, run_head(job, x))
    before, writes = bytes(mem.data), mem.writes
    dev.reg_write(REG[field], value)
    dev.reg_write(START, 1)
    assert dev.regs[STATUS] == STATUS_ERROR and dev.regs[ERROR] == code
    assert mem.writes == writes and bytes(mem.data) == before      # nothing written
    assert len(dev.jobs) == 1 and dev.errors[-1][0] == code


def test_cosim_raises_a_device_error_for_a_head_the_device_cannot_hold(block):
    from microtrain.accel.ita.cosim import run_firmware
    qmodel, _ = block
    cm = microtrain.compile(qmodel, "rv32imc+ita")
    fw, emu = cm._program.firmware, cm._program.target.emulator
    x = np.random.default_rng(0).integers(-128, 128, (1, 20, 16)).astype(np.int8)
    with pytest.raises(ItaDeviceError, match="error 4"):
        run_firmware(fw.elf, emu.flash, emu.ram, {"in.bin": x.tobytes()}, count=False,
                     config=ItaConfig(memory_bytes=1024))
    # run.sh is the co-simulation (QEMU alone has no ITA)
    assert "microtrain.accel.ita.cosim" in (fw.build_dir / "run.sh").read_text()
    # the same firmware on the configured device: bit-exact
    np.testing.assert_array_equal(cm.run({"input": x})["output"],
                                  microtrain.reference(qmodel, {"input": x})["output"])


@pytest.fixture(scope="module")
def encoder_qmodel():
    from digits_cnn import digits_split
    from microtrain.models import encoder
    xtr, ytr, xte, _ = digits_split()
    net = encoder.train(xtr[:400], ytr[:400], epochs=2, **encoder.SMALL)
    qmodel = microtrain.quantize(encoder.export(model=net), xtr[:128], softmax="ita", progress=False)
    return qmodel, xte


def test_encoder_is_bit_exact_on_rv32imc_ita_and_cpu_only(encoder_qmodel):
    qmodel, xte = encoder_qmodel
    layers = microtrain.models.encoder.SMALL["layers"]
    results = {}
    for target in ("rv32imc+ita", "rv32imc"):
        cm = microtrain.compile(qmodel, target)
        ops = [n.op for n in cm.graph.nodes]
        assert ops.count("mt.ITAMHSA") == (layers if target == "rv32imc+ita" else 0), ops
        for i in range(2):
            x = quantize_inputs(qmodel, {"input": xte[i:i + 1]})
            np.testing.assert_array_equal(cm.run(x)["output"], microtrain.reference(qmodel, x)["output"])
        results[target] = cm.profile(x)
    ita, cpu = results["rv32imc+ita"], results["rv32imc"]
    on_ita = [r for r in ita.layers if r.ran_on == "ita"]
    assert len(on_ita) == layers and all(r.op == "mt.ITAMHSA" and r.accel_cycles > 0 for r in on_ita)
    assert ita.accel_cycles == sum(r.accel_cycles for r in on_ita)
    assert "ran on" in ita.table() and all(r.ran_on == "cpu" for r in cpu.layers)
    att = lambda p: sum(r.instructions + r.accel_cycles for r in p.layers if "/attn/" in r.name)
    assert att(cpu) > 10 * att(ita)          # the done-when, at the test size


def test_cpu_only_targets_keep_cpu_kernels(block):
    qmodel, _ = block
    from microtrain.compiler import lower_to_graph
    assert "mt.ITAMHSA" not in [n.op for n in lower_to_graph(qmodel).nodes]
    offloaded = lower_to_graph(qmodel, accelerator="ita")
    assert "mt.ITAMHSA" in [n.op for n in offloaded.nodes]
    from microtrain.compiler import compile_graph
    with pytest.raises(MicrotrainError, match="does not have"):
        compile_graph(offloaded, "host")


@pytest.mark.parametrize("qkv", ["separate", "fused"])
def test_hand_written_attention_without_qkv_bias_runs_on_ita_bit_exact(qkv):
    """CCT's Attention (q/k/v Linears without bias — separate, or one fused
    Linear + three Slices —, scale Mul, proj with bias): recognized,
    offloaded, bit-exact; the bias-free projection path of the device."""
    from microtrain.models.cct import Attention
    torch.manual_seed(0)
    fmodel = microtrain.from_torch(Attention(16, 2, qkv=qkv).eval(), torch.zeros(1, 20, 16))
    calib = np.random.default_rng(0).standard_normal((6, 20, 16)).astype(np.float32)
    qmodel = microtrain.quantize(fmodel, calib, softmax="ita", progress=False)
    cm = microtrain.compile(qmodel, "rv32imc+ita")
    assert [n.op for n in cm.graph.nodes] == ["Reshape", "mt.ITAMHSA", "Reshape"]
    table = cm.report.table().splitlines()
    assert table[0].endswith("ran on") and table[2].endswith(" ita") and table[1].endswith(" cpu")
    x = np.random.default_rng(3).integers(-128, 128, (1, 20, 16)).astype(np.int8)
    np.testing.assert_array_equal(cm.run({"input": x})["output"],
                                  microtrain.reference(qmodel, {"input": x})["output"])


def test_cosim_counts_equal_qemu_counts_on_the_same_firmware(block):
    """The Unicorn block-hook count and marker timestamps against QEMU's
    plugin on one rv32imc firmware: the network's instructions and every
    layer's agree exactly."""
    from microtrain.accel.ita.cosim import run_firmware
    from microtrain.targets.harness import MARKER_SYMBOL
    from microtrain.targets.toolchain import symbol_address
    qmodel, _ = block
    cm = microtrain.compile(qmodel, "rv32imc")
    x = np.random.default_rng(1).integers(-128, 128, (1, 20, 16)).astype(np.int8)
    prof = cm.profile({"input": x})
    fw, emu = cm._program.firmware, cm._program.target.emulator
    run = run_firmware(fw.elf, emu.flash, emu.ram, {"in.bin": x.tobytes()},
                       marker=symbol_address(fw, MARKER_SYMBOL))
    m = run.marks
    assert m[-1] - m[0] == prof.instructions
    assert [m[2 + 2 * i] - m[1 + 2 * i] for i in range(len(prof.layers))] == [r.instructions for r in prof.layers]
    assert run.exit_code == 0 and run.files["out.bin"] == cm.run({"input": x})["output"].tobytes()


class _TorchMHA(torch.nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


@pytest.fixture(scope="module", params=[2, 4], ids=["2heads", "4heads"])
def torch_mha(request):
    torch.manual_seed(0)
    net = _TorchMHA(32, request.param).eval()
    fmodel = microtrain.from_torch(net, torch.zeros(1, 16, 32))
    calib = np.random.default_rng(0).standard_normal((8, 16, 32)).astype(np.float32)
    return net, fmodel, microtrain.quantize(fmodel, calib, softmax="ita", progress=False)


def test_commuting_the_q_and_k_scales_keeps_the_float_model(torch_mha):
    """nn.MultiheadAttention's Mul on q and on k become one Mul on the scores;
    the float golden model (checked against torch here) does not change."""
    from microtrain.compiler import lower_to_graph
    from microtrain.golden import interpret
    from microtrain.passes.commute_qk_scale import commute_qk_scale
    net, fmodel, _ = torch_mha
    g = lower_to_graph(fmodel)
    moved = commute_qk_scale(g)
    ops = lambda graph: [n.op for n in graph.nodes]
    assert ops(g).count("Mul") == 2 and ops(moved).count("Mul") == 1
    scale = next(n for n in moved.nodes if n.op == "Mul")
    assert scale.inputs[0] == next(n for n in moved.nodes if n.op == "MatMul" and
                                   not any(i in moved.constants for i in n.inputs)).outputs[0]
    x = np.random.default_rng(1).standard_normal((1, 16, 32)).astype(np.float32)
    want = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(interpret(moved, {"input": x})["output"], want, rtol=1e-4, atol=1e-5)


def test_multihead_attention_runs_on_ita_and_on_cpu_bit_exact(torch_mha):
    """nn.MultiheadAttention (batch_first, fused in_proj split by Gather, q and
    k scaled apart): quantizes (int8 close to torch), is one block, offloaded
    on rv32imc+ita and CPU kernels on rv32imc, both bit-exact."""
    from microtrain.quantization import dequantize_outputs
    net, _, qmodel = torch_mha
    xf = np.random.default_rng(2).standard_normal((1, 16, 32)).astype(np.float32)
    x = quantize_inputs(qmodel, {"input": xf})
    want = net(torch.from_numpy(xf)).detach().numpy()
    got = dequantize_outputs(qmodel, microtrain.reference(qmodel, x))["output"]
    # ITA's fixed logit scale limits accuracy here (max error ~20% of the peak, as without the commute)
    assert np.mean(np.abs(got - want)) < 0.1 * np.max(np.abs(want))
    for target in ("rv32imc+ita", "rv32imc"):
        cm = microtrain.compile(qmodel, target)
        ops = [n.op for n in cm.graph.nodes]
        rows = cm.report.table().splitlines()[1:]
        if target == "rv32imc+ita":   # the whole block, Gather split included, is one ITA job list
            assert ops.count("mt.ITAMHSA") == 1 and "Gather" not in ops and "mt.QMatMul" not in ops, ops
            assert [r.endswith(" ita") for r in rows].count(True) == 1, rows
        else:                          # CPU kernels: the int8 ops as quantized (Gather, QMatMul, ITASoftmax)
            assert "mt.ITAMHSA" not in ops and {"Gather", "mt.QMatMul", "mt.ITASoftmax"} <= set(ops), ops
            assert not any(r.endswith(" ita") for r in rows), rows
        for seed in (2, 3):
            xi = np.random.default_rng(seed).integers(-128, 128, (1, 16, 32)).astype(np.int8)
            np.testing.assert_array_equal(cm.run({"input": xi})["output"],
                                          microtrain.reference(qmodel, {"input": xi})["output"])
