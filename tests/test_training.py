"""Training end to end vs PyTorch: one step per strategy and optimizer, a
20-step loss curve, accumulation equivalence, LoRA, export, errors."""
import numpy as np
import onnx
import pytest
import torch

import microtrain
from microtrain.errors import InputError, MicrotrainError

torch.manual_seed(0)


def mlp(seed=0, d_in=12, hidden=16, classes=4):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                               torch.nn.Tanh(), torch.nn.Linear(hidden, classes))


def data(n=16, d_in=12, classes=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d_in)).astype(np.float32), rng.integers(0, classes, n)


def torch_steps(module, X, Y, steps, optimizer, lr, momentum=0.0, weight_decay=0.0, trainable=None,
                loss="cross_entropy", batch=None):
    params = [p for n, p in module.named_parameters() if trainable is None or n in trainable]
    for n, p in module.named_parameters():
        p.requires_grad_(trainable is None or n in trainable)
    opt = (torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay) if optimizer == "sgd"
           else torch.optim.Adam(params, lr=lr, weight_decay=weight_decay))
    losses = []
    batch = batch or len(X)
    for s in range(steps):
        xb = torch.tensor(X[(s * batch) % len(X):][:batch])
        yb = torch.tensor(Y[(s * batch) % len(X):][:batch])
        opt.zero_grad()
        out = module(xb)
        l = torch.nn.functional.cross_entropy(out, yb.long()) if loss == "cross_entropy" else \
            torch.nn.functional.mse_loss(out, yb)
        l.backward()
        opt.step()
        losses.append(l.item())
    return losses, {n: p.detach().numpy().copy() for n, p in module.named_parameters()}


STRATEGIES = [("full", None), ("last-layer", {"4.weight", "4.bias"}), ("bias-only", {"0.bias", "2.bias", "4.bias"}),
              ("layers", {"2.weight", "2.bias"})]


@pytest.mark.parametrize("strategy,trainable", STRATEGIES, ids=[s for s, _ in STRATEGIES])
@pytest.mark.parametrize("optimizer,kw", [("sgd", {"momentum": 0.9, "weight_decay": 1e-3}), ("adam", {})])
def test_one_step_matches_pytorch(strategy, trainable, optimizer, kw):
    X, Y = data(8)
    model = microtrain.from_torch(mlp(), torch.zeros(1, 12))
    layers = "2*" if strategy == "layers" else None
    tr = microtrain.compile_training(model, strategy=strategy, layers=layers, optimizer=optimizer, lr=0.05,
                                     batch=8, **kw)
    _, want = torch_steps(mlp(), X, Y, 1, optimizer, 0.05, trainable=trainable, **kw)
    loss = tr.step(X, Y)
    got = tr.parameters()
    assert set(got) == (trainable or set(want))
    for name, value in got.items():
        np.testing.assert_allclose(value, want[name], rtol=1e-4, atol=1e-6, err_msg=name)
    assert np.isfinite(loss)


def test_twenty_steps_follow_pytorch_loss_curve():
    X, Y = data(40)
    model = microtrain.from_torch(mlp(), torch.zeros(1, 12))
    tr = microtrain.compile_training(model, optimizer="sgd", lr=0.1, momentum=0.9, batch=4)
    want, _ = torch_steps(mlp(), X, Y, 20, "sgd", 0.1, momentum=0.9, batch=4)
    hist = tr.fit(X[:80], Y[:80], epochs=2, shuffle=False)
    got = hist["step_loss"]
    np.testing.assert_allclose(got, want, rtol=1e-3)
    assert got[-1] < got[0]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_accumulation_equals_full_batch(optimizer):
    X, Y = data(8)
    model = microtrain.from_torch(mlp(), torch.zeros(1, 12))
    full = microtrain.compile_training(model, optimizer=optimizer, lr=0.05, batch=8)
    acc = microtrain.compile_training(model, optimizer=optimizer, lr=0.05, batch=8, micro_batch=2)
    for _ in range(2):
        lf, la = full.step(X, Y), acc.step(X, Y)
        np.testing.assert_allclose(la, lf, rtol=1e-5)
    for k, v in full.parameters().items():
        np.testing.assert_allclose(acc.parameters()[k], v, rtol=1e-5, atol=1e-7)
    # accumulation needs less activation memory per pass
    assert acc.report.breakdown["activations"] < full.report.breakdown["activations"]


def test_mse_loss_matches_pytorch():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, 12)).astype(np.float32)
    T = rng.standard_normal((4, 4)).astype(np.float32)
    model = microtrain.from_torch(mlp(), torch.zeros(1, 12))
    tr = microtrain.compile_training(model, loss="mse", optimizer="sgd", lr=0.1, batch=4)
    want_losses, want = torch_steps(mlp(), X, T, 1, "sgd", 0.1, loss="mse")
    np.testing.assert_allclose(tr.step(X, T), want_losses[0], rtol=1e-5)
    for k, v in tr.parameters().items():
        np.testing.assert_allclose(v, want[k], rtol=1e-4, atol=1e-6)


def test_lora_trains_adapters_only_and_merges(tmp_path):
    X, Y = data(8)
    model = microtrain.from_torch(mlp(), torch.zeros(1, 12))
    tr = microtrain.compile_training(model, strategy="lora", lora_rank=2, lora_alpha=4.0, optimizer="adam",
                                     lr=0.01, batch=8)
    names = set(tr.parameters())
    assert names and all(".lora_" in n for n in names)
    full = microtrain.compile_training(model, strategy="full", batch=8)
    assert tr.report.trainable_params < full.report.trainable_params
    before = tr.predict(X)
    for _ in range(5):
        tr.step(X, Y)
    after = tr.predict(X)
    assert not np.allclose(before, after)
    merged = tr.export_onnx(tmp_path / "merged.onnx")
    cm = microtrain.compile(merged)
    np.testing.assert_allclose(cm.run({cm.input_names[0]: X[:1]})[cm.output_names[0]], after[:1],
                               rtol=1e-4, atol=1e-5)


def test_export_keeps_source_untouched(tmp_path):
    X, Y = data(8)
    path = tmp_path / "m.onnx"
    onnx.save(microtrain.from_torch(mlp(), torch.zeros(1, 12)), path)
    before = path.read_bytes()
    tr = microtrain.compile_training(str(path), batch=8, lr=0.5)
    tr.step(X, Y)
    out = tr.export_onnx(tmp_path / "trained.onnx")
    assert path.read_bytes() == before
    cm = microtrain.compile(out)
    np.testing.assert_allclose(cm.run({cm.input_names[0]: X[:1]})[cm.output_names[0]], tr.predict(X[:1]),
                               rtol=1e-5, atol=1e-6)


def test_training_errors():
    model = microtrain.from_torch(mlp(), torch.zeros(1, 12))
    with pytest.raises(MicrotrainError, match="strategy"):
        microtrain.compile_training(model, strategy="nope")
    with pytest.raises(MicrotrainError, match="multiple of micro_batch"):
        microtrain.compile_training(model, batch=6, micro_batch=4)
    with pytest.raises(MicrotrainError, match="match no layer"):
        microtrain.compile_training(model, strategy="layers", layers="zzz*")
    tr = microtrain.compile_training(model, batch=2)
    X, Y = data(2)
    with pytest.raises(InputError, match="class indices"):
        tr.step(X, np.array([0, 9]))
    with pytest.raises(InputError, match="shape"):
        tr.step(X[:, :5], Y)


@pytest.mark.host_only("builds the host C project with its Makefile and train_main.c")
def test_training_project_builds_with_make(tmp_path):
    import subprocess
    model = microtrain.from_torch(mlp(), torch.zeros(1, 12))
    microtrain.compile_training(model, batch=2, out_dir=tmp_path / "train")
    for f in ("train.c", "train.h", "train_weights.c", "train_main.c", "Makefile", "runtime/mt_kernels.h"):
        assert (tmp_path / "train" / f).exists(), f
    assert "malloc" not in (tmp_path / "train" / "train.c").read_text()
    subprocess.run(["make", "-s", "-C", str(tmp_path / "train")], check=True, capture_output=True)
    assert (tmp_path / "train" / "trainer").exists()


def test_recompute_gives_identical_training_and_frees_the_activation():
    """Recomputing a norm's output for the backward: same numbers, and the
    kept output's lifetime ends with its forward use."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.LayerNorm(32), torch.nn.Linear(32, 32),
                              torch.nn.Tanh(), torch.nn.Linear(32, 4))
    model = microtrain.from_torch(net, torch.zeros(1, 12))
    X, Y = data(4)
    plain = microtrain.compile_training(model, batch=4, lr=0.1)
    rec = microtrain.compile_training(model, batch=4, lr=0.1, recompute="LayerNormalization")
    assert any(n.name.endswith("@recompute") for n in rec.program.micro.nodes)
    for _ in range(2):
        np.testing.assert_array_equal(rec.step(X, Y), plain.step(X, Y))
    for k, v in plain.parameters().items():
        np.testing.assert_array_equal(rec.parameters()[k], v)

    def ln_output_end(tr):
        g, plan = tr.program.micro, tr.plans.micro
        ln = next(n for n in g.nodes if n.op == "LayerNormalization")
        return plan.buffers[plan.storage[ln.outputs[0]].index].end
    assert ln_output_end(rec) < ln_output_end(plain)


@pytest.mark.host_only("CLI output format; `microtrain train` runs the host build")
def test_cli_train_prints_table_and_exports(tmp_path):
    import subprocess
    import sys
    X, Y = data(16)
    model = tmp_path / "m.onnx"
    onnx.save(microtrain.from_torch(mlp(), torch.zeros(1, 12)), model)
    np.savez(tmp_path / "d.npz", x=X, y=Y)
    r = subprocess.run([sys.executable, "-m", "microtrain.cli", "train", str(model), "--data", str(tmp_path / "d.npz"),
                        "--epochs", "2", "--batch", "4", "--micro-batch", "2", "--lr", "0.1",
                        "-o", str(tmp_path / "out.onnx")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "eval acc" in r.stdout and "peak RAM" in r.stdout
    assert (tmp_path / "out.onnx").exists()
    bad = subprocess.run([sys.executable, "-m", "microtrain.cli", "train", str(model), "--data", str(tmp_path / "nope.npz")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_memory_aware_backward_order_lowers_peak_and_keeps_results():
    from microtrain.golden import interpret
    from microtrain.planner import plan_memory
    from microtrain.training.program import TrainSpec, build_program
    from microtrain.training.schedule import reorder_backward
    from microtrain.training.strategies import select_trainable
    from microtrain.training.trainer import training_forward_graph
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1),
                              torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 16 * 16, 4))
    forward = training_forward_graph(microtrain.from_torch(net, torch.zeros(1, 1, 16, 16)), 2)
    prog = build_program(forward, select_trainable(forward, "full"), TrainSpec(lr=0.1, batch=2, micro_batch=2))
    again = reorder_backward(prog.micro, prog.n_forward)
    assert plan_memory(again).arena_bytes < plan_memory(prog.micro).arena_bytes
    rng = np.random.default_rng(0)
    feeds = {prog.input_names[0]: rng.standard_normal((2, 1, 16, 16)).astype(np.float32),
             prog.labels: np.array([1, 3], np.int32)}
    s1 = {k: v.copy() for k, v in prog.state_init.items()}
    s2 = {k: v.copy() for k, v in prog.state_init.items()}
    interpret(prog.micro, feeds, state=s1)
    interpret(again, feeds, state=s2)
    for k in s1:
        np.testing.assert_array_equal(s1[k], s2[k])
