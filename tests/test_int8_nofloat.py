"""No float in the generated integer inference code: a quantized CNN built
as rv32imc firmware (no FPU: every float operation would be a libgcc
soft-float call) reaches no soft-float routine from its entry point, and as
Cortex-M4 firmware (hard float) no function with a VFP instruction; the same
CNN in fp32 does (the check can fail). The firmware also runs under QEMU
bit-exact with the golden model."""
import numpy as np
import pytest
import torch
from torch import nn

import microtrain
from microtrain.quantization.nofloat import float_functions_reachable
from microtrain.targets.toolchain import require_tool


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 4, 3, groups=4, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()


@pytest.fixture(scope="module")
def models():
    fmodel = microtrain.from_torch(_cnn(), torch.zeros(2, 1, 8, 8))
    calib = np.random.default_rng(0).random((16, 1, 8, 8)).astype(np.float32)
    return fmodel, microtrain.quantize(fmodel, calib, progress=False)


def _reachable(cm):
    target = cm.target_info
    objdump = require_tool(target.tool_prefix + "objdump", target)
    return float_functions_reachable(cm.build(), objdump, "mt_network_run")


@pytest.mark.parametrize("target", ["rv32imc", "cortex-m4"])
def test_integer_firmware_has_no_float(models, target):
    fmodel, qmodel = models
    cm = microtrain.compile(qmodel, target)
    assert _reachable(cm) == []
    x = np.random.default_rng(1).integers(-128, 128, (2, 1, 8, 8)).astype(np.int8)
    np.testing.assert_array_equal(cm.run({"input": x})["output"], cm.reference({"input": x})["output"])


def test_float_firmware_is_detected(models):
    fmodel, _ = models
    found = _reachable(microtrain.compile(fmodel, "rv32imc"))     # soft-float calls
    assert "__mulsf3" in found and "__addsf3" in found
    found = _reachable(microtrain.compile(fmodel, "cortex-m4"))   # VFP instructions
    # the float kernels (or their multi-core `_par` bodies) use VFP instructions
    assert any(f.startswith("mt_dwconv2d_f32") for f in found), found
    assert any(f.startswith("mt_gemm_f32_blocked") for f in found), found
