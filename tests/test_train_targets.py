"""The training step as firmware under QEMU: same losses and weights as the
host trainer, micro-batch accumulation, instruction-count profiles."""
import numpy as np
import pytest
import torch

import microtrain
from microtrain.errors import MicrotrainError


def mlp_model(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    return microtrain.from_torch(net, torch.zeros(1, 12))


def data(n=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 12)).astype(np.float32), rng.integers(0, 4, n)


def host_and_target(target, **options):
    model = mlp_model()
    host = microtrain.compile_training(model, **options)
    dev = microtrain.compile_training(model, target=target, **options)
    return host, dev


def run_two_steps(host, dev):
    x, y = data(host.batch)
    host_losses = [host.step(x, y) for _ in range(2)]
    dev_losses = [dev.step(x, y) for _ in range(2)]
    return host_losses, dev_losses


@pytest.mark.parametrize("target", ["cortex-m4", "rv32imfc"])
def test_sgd_matches_host(target):
    # + and * are identical in fp32, but the softmax's expf/logf come from each
    # target's libm (picolibc vs glibc): results differ by a few ulp, not more
    host, dev = host_and_target(target, optimizer="sgd", lr=0.1, momentum=0.9, batch=4)
    host_losses, dev_losses = run_two_steps(host, dev)
    np.testing.assert_allclose(dev_losses, host_losses, rtol=1e-6)
    hp, dp = host.parameters(), dev.parameters()
    assert set(hp) == set(dp)
    for name in hp:
        np.testing.assert_allclose(dp[name], hp[name], rtol=1e-5, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(dev.predict(data(3)[0]), host.predict(data(3)[0]), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("target", ["cortex-m4", "rv32imfc"])
@pytest.mark.parametrize("micro_batch", [4, 2])
def test_adam_matches_host(target, micro_batch):
    # Adam's sqrtf/division go through each libm: a few ulp apart at most
    host, dev = host_and_target(target, optimizer="adam", lr=0.01, batch=4, micro_batch=micro_batch)
    host_losses, dev_losses = run_two_steps(host, dev)
    np.testing.assert_allclose(dev_losses, host_losses, rtol=1e-6)
    for name, value in host.parameters().items():
        np.testing.assert_allclose(dev.parameters()[name], value, rtol=1e-5, atol=1e-7, err_msg=name)
    # the weights really moved
    assert any(not np.array_equal(v, host.program.state_init[k]) for k, v in dev.parameters().items())


def test_fit_on_target_matches_host():
    host, dev = host_and_target("cortex-m4", optimizer="sgd", lr=0.05, batch=2)
    X, Y = data(8, seed=3)
    hh = host.fit(X, Y, epochs=2, seed=5)
    dh = dev.fit(X, Y, epochs=2, seed=5)
    np.testing.assert_allclose(dh["step_loss"], hh["step_loss"], rtol=1e-5)
    assert len(dh["step_loss"]) == 8


@pytest.mark.parametrize("target", ["cortex-m4", "rv32imfc"])
def test_profile_is_deterministic_and_per_node(target):
    dev = microtrain.compile_training(mlp_model(), target=target, optimizer="sgd", lr=0.1,
                                      batch=4, micro_batch=2)
    x, y = data(4)
    before = dev.parameters()
    p1, p2 = dev.profile(x, y), dev.profile(x, y)
    assert p1.instructions == p2.instructions > 0
    assert p1.program_instructions > p1.instructions
    assert [r.instructions for r in p1.layers] == [r.instructions for r in p2.layers]
    names = [r.name for r in p1.layers]
    assert len(names) == len(dev.program.micro.nodes) + len(dev.program.apply.nodes)
    assert sum(r.instructions for r in p1.layers) < p1.instructions
    gemms = [r.instructions for r in p1.layers if r.op == "Gemm"]
    assert gemms and min(gemms) > 100
    for name, value in before.items():         # profiling does not train
        np.testing.assert_array_equal(dev.parameters()[name], value)
    assert "instructions (not cycles)" in p1.table()


def test_soft_float_target_runs_a_step():
    host, dev = host_and_target("rv32imc", optimizer="sgd", lr=0.1, batch=2)
    x, y = data(2)
    loss_host, loss_dev = host.step(x, y), dev.step(x, y)
    assert np.isfinite(loss_dev)
    np.testing.assert_allclose(loss_dev, loss_host, rtol=1e-6)
    for name, value in host.parameters().items():
        np.testing.assert_allclose(dev.parameters()[name], value, rtol=1e-5, atol=1e-7, err_msg=name)


def test_soft_float_costs_more_instructions():
    x, y = data(2)
    counts = {t: microtrain.compile_training(mlp_model(), target=t, batch=2).profile(x, y).instructions
              for t in ("rv32imfc", "rv32imc")}
    assert counts["rv32imc"] > 3 * counts["rv32imfc"]


@pytest.mark.parametrize("target", ["cortex-m99", "riscv", ""])
def test_unknown_target_is_a_clear_error(target):
    with pytest.raises(MicrotrainError, match="unknown training target.*cortex-m4"):
        microtrain.compile_training(mlp_model(), target=target)


def test_profile_needs_an_emulated_target():
    host = microtrain.compile_training(mlp_model())
    with pytest.raises(MicrotrainError, match="target='cortex-m4'"):
        host.profile(*data(1))


def test_footprint_counts_the_state_in_ram():
    dev = microtrain.compile_training(mlp_model(), target="cortex-m4", optimizer="adam", batch=4)
    fp = dev.footprint
    state_bytes = sum(a.nbytes for a in dev.program.state_init.values())   # weights + Adam moments
    assert fp.target == "cortex-m4"
    assert fp.ram_bytes >= state_bytes + fp.arena_bytes + fp.stack_reserved
    assert fp.flash_bytes > state_bytes          # the initial state is stored in flash too
    assert fp.stack_measured is None
    dev.step(*data(4))
    assert 64 < fp.stack_measured < fp.stack_reserved   # painted-stack peak of the run
    assert microtrain.compile_training(mlp_model()).footprint is None


def test_too_big_for_the_target_is_a_fit_error():
    from microtrain.targets import TargetFitError
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 4))
    model = microtrain.from_torch(net, torch.zeros(1, 256))
    with pytest.raises(TargetFitError, match="cortex-m4.*optimizer state"):
        microtrain.compile_training(model, target="cortex-m4", optimizer="adam", batch=4)
