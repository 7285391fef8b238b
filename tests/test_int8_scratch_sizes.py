"""The int8 kernels' scratch sizes are computed twice: in Python, where the
planner reserves the op's scratch in the arena (ops/_quant.py), and in C,
where the kernel documents what it uses (mt_s8_panel_bytes,
mt_s8_dw3x3_scratch_bytes). A Python formula smaller than the C one would let
a kernel write past its scratch, silently, so the two are compared here over
a grid of shapes through a host shared library of the kernel sources."""
from __future__ import annotations

import ctypes
import os
import subprocess

import pytest

from microtrain.build import RUNTIME_DIR, cache_dir
from microtrain.ops._quant import s8_dw3x3_scratch_bytes, s8_panel_bytes

SOURCES = ("mt_int8_gemm.c", "mt_int8_dw.c", "mt_int8_slide.c", "mt_int8_rv32.c")


@pytest.fixture(scope="module")
def lib():
    out = cache_dir() / "test_int8_scratch_sizes"
    out.mkdir(parents=True, exist_ok=True)
    so = out / "libmt_int8.so"
    newest = max(p.stat().st_mtime for p in RUNTIME_DIR.iterdir())
    if not so.exists() or so.stat().st_mtime < newest:
        tmp = out / f"libmt_int8.{os.getpid()}.so"     # built apart, then renamed: xdist workers race
        # every kernel source: the int8 files call helpers from the rest of the library
        srcs = sorted(str(p) for p in RUNTIME_DIR.glob("mt_*.c"))
        subprocess.run(["gcc", "-O2", "-std=c99", "-fPIC", "-shared", "-I", str(RUNTIME_DIR), *srcs,
                        "-lm", "-lpthread", "-o", str(tmp)], check=True)
        os.replace(tmp, so)
    dll = ctypes.CDLL(str(so))
    dll.mt_s8_panel_bytes.restype = ctypes.c_size_t
    dll.mt_s8_panel_bytes.argtypes = [ctypes.c_int32]
    dll.mt_s8_dw3x3_scratch_bytes.restype = ctypes.c_size_t
    dll.mt_s8_dw3x3_scratch_bytes.argtypes = [ctypes.c_int32, ctypes.c_int32]
    return dll


def test_the_sources_exist():
    assert all((RUNTIME_DIR / s).exists() for s in SOURCES)


@pytest.mark.host_only("calls the kernels through ctypes in a host shared library")
def test_gemm_panel_bytes_match_c(lib):
    for k in [*range(1, 70), 127, 128, 129, 576, 577, 4096]:
        assert s8_panel_bytes(k) == lib.mt_s8_panel_bytes(k), k


@pytest.mark.host_only("calls the kernels through ctypes in a host shared library")
def test_dw3x3_scratch_bytes_match_c(lib):
    for oh in (1, 2, 3, 7, 16, 33):
        for ow in (1, 2, 3, 4, 5, 8, 15, 16, 17, 100):
            assert s8_dw3x3_scratch_bytes(oh, ow) == lib.mt_s8_dw3x3_scratch_bytes(oh, ow), (oh, ow)
