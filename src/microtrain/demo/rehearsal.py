"""The rehearsal (replay) buffer of the "full + replay" strategy: a few
pretraining trials kept in the device's flash and trained on together with
the adaptation slice, so a small slice does not pull the model away from
what it learned before (the usual on-device continual-learning remedy).

The buffer is drawn once per pretraining group, before any adaptation, from
the pretraining data only (SCP1 TRAIN on the drift protocol, never TEST):
`PER_CLASS` trials of every class, chosen with `np.random.default_rng(seed)`.
It is normalized like every deployed input (the pretraining z-score stats)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PER_CLASS = 16          # 16 + 16 = 32 trials of 6 x 448 values


@dataclass(frozen=True)
class Rehearsal:
    x: np.ndarray       # raw trials x[n, channels, time] (not normalized)
    y: np.ndarray
    index: np.ndarray   # their rows in the pretraining arrays


def rehearsal_buffer(x_pre: np.ndarray, y_pre: np.ndarray, seed: int, per_class: int = PER_CLASS) -> Rehearsal:
    """`per_class` trials of every class of the pretraining data, seeded, in class order."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(y_pre):
        rows = np.flatnonzero(y_pre == c)
        if len(rows) < per_class:
            from ..errors import MicrotrainError
            raise MicrotrainError(f"rehearsal buffer: class {c} has {len(rows)} pretraining trials, "
                                  f"fewer than the {per_class} kept per class; lower per_class")
        picked.append(np.sort(rng.choice(rows, per_class, replace=False)))
    index = np.concatenate(picked)
    return Rehearsal(x_pre[index], np.asarray(y_pre)[index], index)


def with_rehearsal(x_adapt: np.ndarray, y_adapt: np.ndarray, buffer: Rehearsal):
    """(x, y) the strategy trains on: the slice, then the buffer (fit shuffles them together)."""
    return np.concatenate([x_adapt, buffer.x]), np.concatenate([np.asarray(y_adapt), buffer.y])


def flash_bytes(buffer: Rehearsal) -> dict:
    """The buffer's storage: its values as fp32 and as int8 (one byte each), labels not counted."""
    return {"values": int(buffer.x.size), "fp32": int(4 * buffer.x.size), "int8": int(buffer.x.size)}
