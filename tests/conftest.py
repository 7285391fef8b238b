import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

# MICROTRAIN_TEST_TARGET=cortex-m4|rv32imc|rv32imfc|... runs the suite's models on
# that emulated core: every compile / compile_graph / compile_training call that
# does not name a target builds for it (the same assertions and tolerances then
# check the firmware's results under QEMU). Tests that name a target keep it;
# tests that only make sense on the host are marked `host_only` (docs/targets.md).
from suite_target import TEST_TARGET  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "host_only(reason): needs the host build (skipped under MICROTRAIN_TEST_TARGET)")
    if TEST_TARGET == "host":
        return
    from microtrain import compiler
    from microtrain.targets import TARGETS
    from microtrain.training import trainer
    if TEST_TARGET not in TARGETS:
        raise pytest.UsageError(f"MICROTRAIN_TEST_TARGET={TEST_TARGET!r}: use one of {', '.join(TARGETS)}")
    # `target` is the first defaulted parameter of compile / compile_graph and a
    # keyword-only one of compile_training: change the defaults in place, so every
    # reference to these functions (imported before or after this) sees them.
    for fn in (compiler.compile, compiler.compile_graph):
        assert fn.__code__.co_varnames[1] == "target", fn
        fn.__defaults__ = (TEST_TARGET,) + fn.__defaults__[1:]
    assert "target" in trainer.compile_training.__kwdefaults__
    trainer.compile_training.__kwdefaults__["target"] = TEST_TARGET
    TARGETS[TEST_TARGET] = _suite_board(TARGETS[TEST_TARGET])
    # A soft-float CCT training step on rv32imc runs longer than the default 60 s
    # emulator timeout on a loaded 2-core machine.
    os.environ.setdefault("MICROTRAIN_RUN_TIMEOUT", "600")


# Memory of the board the suite runs on: the test models are sized for the
# host (the digits CNN/transformer batches and the EEGNet/CCT training steps of
# test_training_models need up to 3.8 MB of RAM and 1.2 MB of flash), so the
# target's flash and data memory are raised to the emulated machine's (4 MB
# each on QEMU's mps2 and virt boards, what the firmware is linked for). Same
# core, flags and emulator.
def _suite_board(target):
    from dataclasses import replace
    emulated = {"data": target.emulator.ram.size, "code+const": target.emulator.flash.size}
    memory = tuple(replace(m, size=max(m.size, emulated[m.holds]), note=f"enlarged for the test suite (was {m.size} B)")
                   if m.holds in emulated else m for m in target.memory)
    return replace(target, memory=memory)


def pytest_report_header(config):
    return f"microtrain test target: {TEST_TARGET}"


def pytest_collection_modifyitems(config, items):
    if TEST_TARGET == "host":
        return
    for item in items:
        mark = item.get_closest_marker("host_only")
        if mark is not None:
            reason = mark.args[0] if mark.args else mark.kwargs.get("reason", "host only")
            item.add_marker(pytest.mark.skip(reason=f"host only: {reason}"))
