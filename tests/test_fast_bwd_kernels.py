"""The fused multiply-add conv kernels of training steps (runtime/mt_conv_fma.c)
against the reference kernels and PyTorch (float64), over randomized shapes;
then whole training steps: fast vs reference kernels, and rv32imfc vs host.

The FMA kernels round once per multiply-add, so they match the reference
kernels within the float tolerance, not bit for bit (docs/training.md)."""
from __future__ import annotations

import ctypes
import os
import subprocess

import numpy as np
import pytest
import torch

import microtrain
from microtrain.build import RUNTIME_DIR, cache_dir
from microtrain.ir import Node
from microtrain.ops.conv import conv_geometry
from microtrain.ops.conv_transpose import transpose_geometry
from suite_target import TEST_TARGET

RTOL, ATOL = 1e-4, 1e-5
F32P = ctypes.POINTER(ctypes.c_float)


@pytest.fixture(scope="module")
def lib():
    """The kernel library as a shared object (host gcc, the library's flags)."""
    out = cache_dir() / "test_fast_bwd_kernels"
    out.mkdir(parents=True, exist_ok=True)
    so = out / "libmt_conv.so"
    srcs = [RUNTIME_DIR / "mt_conv.c", RUNTIME_DIR / "mt_conv_fma.c", RUNTIME_DIR / "mt_matmul.c"]
    newest = max(p.stat().st_mtime for p in RUNTIME_DIR.iterdir())
    if not so.exists() or so.stat().st_mtime < newest:
        tmp = out / f"libmt_conv.{os.getpid()}.so"     # built apart, then renamed: xdist workers race
        subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Werror", "-ffp-contract=off", "-fPIC", "-shared",
                        "-I", str(RUNTIME_DIR), *map(str, srcs), "-lm", "-o", str(tmp)], check=True)
        os.replace(tmp, so)
    return ctypes.CDLL(str(so))


def ptr(a):
    return a.ctypes.data_as(F32P) if a is not None else None


def table(geo):
    return np.ascontiguousarray(geo.table(), dtype=np.int32).ctypes.data_as(ctypes.POINTER(ctypes.c_int32))


def random_case(rng, nsp, depthwise=False, stride1=False):
    """(attrs, x shape, w shape) of a random 1-D/2-D conv: odd sizes, strides 1-3,
    dilation 1-2, asymmetric pads, groups, depthwise with multipliers, batch 1-2."""
    group = int(rng.integers(1, 4))
    cg = 1 if depthwise else int(rng.integers(1, 4))
    mg = int(rng.choice([1, 2, 3, 4, 5, 8]))
    k = [int(rng.integers(1, 6)) for _ in range(nsp)]
    if nsp == 1 and rng.random() < 0.5:
        k = [int(rng.integers(6, 18))]                       # long temporal kernels (EEGNet)
    d = [1 if rng.random() < 0.6 else 2 for _ in range(nsp)]
    s = [1] * nsp if stride1 else [int(rng.integers(1, 4)) for _ in range(nsp)]
    pads = [int(rng.integers(0, (k[a] - 1) * d[a] + 2)) for a in range(nsp)] + \
           [int(rng.integers(0, (k[a] - 1) * d[a] + 2)) for a in range(nsp)]
    # inputs from smaller than the kernel (padding makes up the rest) to ~20 wider
    span = [(k[a] - 1) * d[a] + 1 for a in range(nsp)]
    size = [int(rng.integers(max(1, span[a] - pads[a] - pads[a + nsp]), span[a] + 20)) for a in range(nsp)]
    attrs = dict(strides=s, dilations=d, pads=pads, group=group)
    batch = int(rng.integers(1, 3))
    return attrs, (batch, cg * group, *size), (mg * group, cg, *k)


def torch_conv(x, w, b, attrs, nsp):
    f = torch.nn.functional.conv1d if nsp == 1 else torch.nn.functional.conv2d
    pads = attrs["pads"]
    xt = torch.nn.functional.pad(torch.tensor(x, dtype=torch.float64),
                                 [p for a in reversed(range(nsp)) for p in (pads[a], pads[a + nsp])])
    return f(xt, torch.tensor(w, dtype=torch.float64), None if b is None else torch.tensor(b, dtype=torch.float64),
             stride=attrs["strides"], dilation=attrs["dilations"], groups=attrs["group"]).numpy()


def close(got, want, label):
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * scale, err_msg=label)


@pytest.mark.host_only("calls the kernels through ctypes in a host shared library")
@pytest.mark.parametrize("nsp", [1, 2])
@pytest.mark.parametrize("depthwise", [False, True])
def test_forward_fma_matches_reference_and_torch(lib, nsp, depthwise):
    rng = np.random.default_rng(10 * nsp + depthwise)
    for case in range(25):
        attrs, xs, ws = random_case(rng, nsp, depthwise)
        node = Node("Conv", "conv", ["x", "w", "b"], ["y"], attrs)
        geo = conv_geometry(node, xs, ws)
        x = rng.standard_normal(xs).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32)
        b = rng.standard_normal(ws[0]).astype(np.float32) if case % 2 else None
        shape = (geo.batch, geo.out_channels, *geo.out_size)
        ref, fma = np.full(shape, np.nan, np.float32), np.full(shape, np.nan, np.float32)
        lib.mt_conv_f32(ptr(x), ptr(w), ptr(b), ptr(ref), table(geo))
        lib.mt_conv2d_f32_fwd_fma(ptr(x), ptr(w), ptr(b), ptr(fma), table(geo))
        label = f"case {case}: x {xs} w {ws} {attrs}"
        assert np.isfinite(fma).all(), label               # every output written
        close(fma, ref, label)
        close(fma, torch_conv(x, w, b, attrs, nsp), label)


@pytest.mark.host_only("calls the kernels through ctypes in a host shared library")
@pytest.mark.parametrize("nsp", [1, 2])
@pytest.mark.parametrize("depthwise", [False, True])
def test_weight_gradient_fma_matches_reference_and_torch(lib, nsp, depthwise):
    rng = np.random.default_rng(20 + 10 * nsp + depthwise)
    for case in range(25):
        attrs, xs, ws = random_case(rng, nsp, depthwise)
        node = Node("mt.ConvGradW", "gw", ["x", "dy"], ["dw"], {**attrs, "kernel_shape": list(ws[2:])})
        geo = conv_geometry(node, xs, ws)
        x = rng.standard_normal(xs).astype(np.float32)
        dy = rng.standard_normal((geo.batch, geo.out_channels, *geo.out_size)).astype(np.float32)
        ref, fma = np.full(ws, np.nan, np.float32), np.full(ws, np.nan, np.float32)
        lib.mt_conv_grad_weight_f32(ptr(x), ptr(dy), ptr(ref), table(geo))
        lib.mt_conv2d_f32_bwd_weight(ptr(x), ptr(dy), ptr(fma), table(geo))
        label = f"case {case}: x {xs} w {ws} {attrs}"
        assert np.isfinite(fma).all(), label
        close(fma, ref, label)
        # PyTorch: d(sum(conv(x, w) * dy)) / dw
        wt = torch.zeros(ws, dtype=torch.float64, requires_grad=True)
        f = torch.nn.functional.conv1d if nsp == 1 else torch.nn.functional.conv2d
        pads = attrs["pads"]
        xt = torch.nn.functional.pad(torch.tensor(x, dtype=torch.float64),
                                     [p for a in reversed(range(nsp)) for p in (pads[a], pads[a + nsp])])
        y = f(xt, wt, stride=attrs["strides"], dilation=attrs["dilations"], groups=attrs["group"])
        (y * torch.tensor(dy, dtype=torch.float64)).sum().backward()
        close(fma, wt.grad.numpy(), label)


@pytest.mark.host_only("calls the kernels through ctypes in a host shared library")
@pytest.mark.parametrize("nsp", [1, 2])
@pytest.mark.parametrize("depthwise", [False, True])
def test_input_gradient_fma_matches_reference_and_torch(lib, nsp, depthwise):
    """mt_conv2d_f32_bwd_input (stride 1) = the conv's input gradient = ConvTranspose."""
    rng = np.random.default_rng(40 + 10 * nsp + depthwise)
    for case in range(25):
        attrs, xs, ws = random_case(rng, nsp, depthwise, stride1=True)
        conv = Node("Conv", "conv", ["x", "w"], ["y"], attrs)
        cgeo = conv_geometry(conv, xs, ws)
        dy = rng.standard_normal((cgeo.batch, cgeo.out_channels, *cgeo.out_size)).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32)
        b = rng.standard_normal(xs[1]).astype(np.float32) if case % 2 else None
        tnode = Node("ConvTranspose", "ct", ["dy", "w"], ["dx"], attrs)
        geo = transpose_geometry(tnode, dy.shape, ws)
        shape = (geo.batch, geo.out_channels, *geo.out_size)
        assert shape == tuple(xs)
        ref, fma = np.full(shape, np.nan, np.float32), np.full(shape, np.nan, np.float32)
        lib.mt_conv_transpose_f32(ptr(dy), ptr(w), ptr(b), ptr(ref), table(geo))
        lib.mt_conv2d_f32_bwd_input(ptr(dy), ptr(w), ptr(b), ptr(fma), table(geo))
        label = f"case {case}: x {xs} w {ws} {attrs}"
        assert np.isfinite(fma).all(), label
        close(fma, ref, label)
        xt = torch.zeros(xs, dtype=torch.float64, requires_grad=True)
        y = torch_conv_t(xt, w, attrs, nsp)
        (y * torch.tensor(dy, dtype=torch.float64)).sum().backward()
        want = xt.grad.numpy() + (0 if b is None else b.reshape((1, -1) + (1,) * nsp))
        close(fma, want, label)


def torch_conv_t(xt, w, attrs, nsp):
    f = torch.nn.functional.conv1d if nsp == 1 else torch.nn.functional.conv2d
    pads = attrs["pads"]
    xp = torch.nn.functional.pad(xt, [p for a in reversed(range(nsp)) for p in (pads[a], pads[a + nsp])])
    return f(xp, torch.tensor(w, dtype=torch.float64), stride=1, dilation=attrs["dilations"],
             groups=attrs["group"])


def small_eegnet():
    from microtrain.models import eegnet
    return eegnet.export(norm="layer", chans=4, samples=128, classes=3, kernel=16, sep_kernel=8, pool1=4,
                         pool2=4)


def eeg_batch(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 4, 128)).astype(np.float32), rng.integers(0, 3, n)


def test_training_step_uses_fma_kernels_and_matches_reference_kernels(monkeypatch):
    from microtrain.targets import get_target
    proto = small_eegnet()
    fast = microtrain.compile_training(proto, strategy="full", optimizer="sgd", lr=0.05, batch=2)
    code = (fast.project_dir / "train.c").read_text()
    if get_target(TEST_TARGET).hardware_fma:
        for kernel in ("mt_conv2d_f32_fwd_fma", "mt_conv2d_f32_bwd_weight", "mt_conv2d_f32_bwd_input"):
            assert kernel in code, kernel
    else:   # rv32imc: no FMA instruction, so every conv of the step keeps the plain kernels
        assert "mt_conv2d_f32_fwd_fma" not in code and "mt_conv2d_f32_bwd" not in code
    monkeypatch.setenv("MICROTRAIN_KERNELS", "reference")
    ref = microtrain.compile_training(proto, strategy="full", optimizer="sgd", lr=0.05, batch=2)
    ref_code = (ref.project_dir / "train.c").read_text()
    assert "_fma(" not in ref_code and "mt_conv2d_f32_bwd" not in ref_code
    x, y = eeg_batch(2)
    losses = [(fast.step(x, y), ref.step(x, y)) for _ in range(2)]
    np.testing.assert_allclose(*zip(*losses), rtol=1e-5)
    fp, rp = fast.parameters(), ref.parameters()
    for name in rp:
        np.testing.assert_allclose(fp[name], rp[name], rtol=1e-4, atol=1e-6, err_msg=name)
        # the weights moved (the comparison is not between two initial states)
    assert any(not np.array_equal(fp[k], fast.program.state_init[k]) for k in fp)


@pytest.mark.parametrize("target", ["rv32imfc", "cortex-m4"])
def test_training_step_on_target_equals_host(target):
    proto = small_eegnet()
    host = microtrain.compile_training(proto, strategy="full", optimizer="sgd", lr=0.05, batch=1, target="host")
    dev = microtrain.compile_training(proto, strategy="full", optimizer="sgd", lr=0.05, batch=1, target=target)
    x, y = eeg_batch(1, seed=3)
    np.testing.assert_allclose(dev.step(x, y), host.step(x, y), rtol=1e-6)
    hp, dp = host.parameters(), dev.parameters()
    for name in hp:
        # fmaf is exact everywhere (fmadd.s / vfma.f32 / glibc); only expf/logf differ by ulps
        np.testing.assert_allclose(dp[name], hp[name], rtol=1e-5, atol=1e-7, err_msg=name)
