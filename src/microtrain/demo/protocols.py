"""The evaluation protocols as splits of SCP1 (see docs/eeg.md).

* longitudinal (real drift): pretrain on TRAIN; adapt on the first N % of
  TEST in recording order; test on the rest.
* simulated shift: TRAIN split (seeded, stratified) into originals (2/3,
  pretraining) and held-out trials (1/3); each pseudo-subject is a seeded
  transform of the held-out trials (`data.make_pseudo_subject`); calibrate on
  a stratified half, test on the other half. Uses TRAIN only, so the real
  session drift does not mix into the simulated one.

A `Group` is one pretraining (data, seed) and the splits that share it.
Arrays are raw (resampled, not normalized): x[n, channels, time]."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from ..data import fit_zscore, load_eeg, make_pseudo_subject, resample, zscore
from .config import DATASET, FS, DemoConfig


@dataclass
class Split:
    protocol: str
    run: str
    x_adapt: np.ndarray
    y_adapt: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_test_clean: np.ndarray | None = None   # simulated shift: the test trials before the transform


@dataclass
class Group:
    family: str
    seed: int
    x_pre: np.ndarray
    y_pre: np.ndarray
    splits: list = field(default_factory=list)

    @property
    def stats(self):
        """Per-channel z-score statistics of the pretraining data (what the device is deployed with)."""
        return fit_zscore(self.x_pre)


def model_input(x: np.ndarray, stats) -> np.ndarray:
    """z-scored with `stats`, as the model's (n, 1, channels, time) float32 input."""
    return np.ascontiguousarray(zscore(x, stats)[:, None], np.float32)


def prepared(split: str):
    """SCP1 `split` resampled to FS: (x[n, 6, 448], y, EEGSet)."""
    s = load_eeg(DATASET, split)
    return resample(s.x, s.fs, FS), s.y, s


def stratified_halves(y, seed: int, first_share: float = 0.5):
    """Index arrays (first, second) splitting every class by `first_share`, seeded."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cut = int(round(first_share * len(idx)))
        first += list(idx[:cut])
        second += list(idx[cut:])
    return np.sort(first), np.sort(second)


def longitudinal_name(fraction: float) -> str:
    return f"longitudinal N={int(round(fraction * 100))}% (real drift)"


SHIFT_NAME = "simulated shift (pseudo-subjects)"


def longitudinal_groups(seeds, fractions) -> Iterator[Group]:
    x_tr, y_tr, _ = prepared("train")
    x_te, y_te, test = prepared("test")
    for seed in seeds:
        group = Group("longitudinal", seed, x_tr, y_tr)
        for f in fractions:
            first, rest = test.split_by_order(f)
            group.splits.append(Split(longitudinal_name(f), f"seed {seed}", x_te[first.order], y_te[first.order],
                                      x_te[rest.order], y_te[rest.order]))
        yield group


def shift_groups(seeds, subjects: int) -> Iterator[Group]:
    x_all, y_all, _ = prepared("train")
    for seed in seeds:
        orig, held = stratified_halves(y_all, seed, first_share=2 / 3)
        group = Group("shift", seed, x_all[orig], y_all[orig])
        for subject in range(subjects):
            subject_seed = 100 * seed + subject
            x_subj, _ = make_pseudo_subject(x_all[held], FS, subject_seed)
            y_subj = y_all[held]
            cal, test = stratified_halves(y_subj, subject_seed)
            group.splits.append(Split(SHIFT_NAME, f"seed {seed} / pseudo-subject {subject_seed}", x_subj[cal],
                                      y_subj[cal], x_subj[test], y_subj[test], x_test_clean=x_all[held][test]))
        yield group


def groups(cfg: DemoConfig) -> list[Group]:
    out = []
    if "longitudinal" in cfg.protocols:
        out += list(longitudinal_groups(cfg.seeds, cfg.fractions))
    if "shift" in cfg.protocols:
        out += list(shift_groups(cfg.shift_seeds, cfg.subjects))
    return out
