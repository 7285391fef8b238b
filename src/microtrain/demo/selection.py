"""Learning rate and epochs chosen on the device's own data: an inner,
chronological validation split of the adaptation slice.

The slice (in recording order) is cut into its first 75 % (inner training)
and its last 25 % (validation: the trials closest in time to what follows).
For each learning rate of a small grid (the strategy's base lr x 1/3, 1, 3)
one C run trains on the inner part with the final run's data order
(`CompiledTrainer.fit(shuffle=True, seed)`'s permutations) and is evaluated
on the validation trials at checkpoints (every 5 epochs and the last one).
The setting with the highest validation accuracy wins; ties go to the lower
validation loss, then to fewer epochs, then to the smaller lr. The final run
then retrains from the deployed weights on the whole slice with that lr and
number of epochs. Nothing here sees the test part of a split: the caller
passes the slice only."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LR_FACTORS = (1 / 3, 1.0, 3.0)
VALIDATION_SHARE = 0.25
CHECKPOINT_EVERY = 5


@dataclass(frozen=True)
class Candidate:
    lr: float
    epochs: int
    val_accuracy: float
    val_loss: float


@dataclass
class Selection:
    chosen: Candidate
    candidates: list = field(default_factory=list)     # every (lr, epochs) measured, in run order
    n_train: int = 0
    n_val: int = 0


def inner_split(n: int, share: float = VALIDATION_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """(first indices, last indices) of a slice of n trials in recording order;
    the last round(share * n) trials validate."""
    n_val = int(round(share * n))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(f"an inner validation split needs a slice of at least 2 trials, got {n}")
    return np.arange(n - n_val), np.arange(n - n_val, n)


def checkpoints(epochs: int, every: int = CHECKPOINT_EVERY) -> tuple[int, ...]:
    """The epochs after which the validation trials are evaluated."""
    return tuple(sorted(set(range(every, epochs + 1, every)) | {epochs}))


def best(candidates) -> Candidate:
    """Highest validation accuracy; then lower loss, fewer epochs, smaller lr."""
    return min(candidates, key=lambda c: (-c.val_accuracy, c.val_loss, c.epochs, c.lr))


def epochs_with_checkpoints(trainer, x, y, epochs: int, seed: int, at: tuple, evaluate) -> list:
    """Train `epochs` epochs in the data order of `trainer.fit(x, y, epochs,
    shuffle=True, seed)` (one permutation per epoch from default_rng(seed)),
    calling evaluate() after each epoch in `at`; returns its results."""
    rng = np.random.default_rng(seed)
    out = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(y))
        trainer.fit(x[order], y[order], epochs=1, shuffle=False)
        if epoch in at:
            out.append((epoch, evaluate()))
    return out


def select(build, base_lr: float, x_slice: np.ndarray, y_slice: np.ndarray, epochs: int, seed: int) -> Selection:
    """`build(lr)` -> a fresh CompiledTrainer at its initial (deployed) state.
    Returns the chosen (lr, epochs) and every candidate's validation score."""
    first, last = inner_split(len(y_slice))
    x_tr, y_tr, x_val, y_val = x_slice[first], y_slice[first], x_slice[last], y_slice[last]
    at = checkpoints(epochs)
    candidates = []
    for factor in LR_FACTORS:
        lr = base_lr * factor
        tr = build(lr)
        for epoch, ev in epochs_with_checkpoints(tr, x_tr, y_tr, epochs, seed, at, lambda: tr.evaluate(x_val, y_val)):
            candidates.append(Candidate(lr, epoch, ev["accuracy"], ev["loss"]))
    return Selection(best(candidates), candidates, len(first), len(last))


def selection_fields(result) -> dict:
    """A CResult's chosen setting for results.json / JSON lines ({} without selection)."""
    sel = getattr(result, "selection", None)
    if sel is None:
        return {}
    return dict(lr=sel.chosen.lr, epochs=sel.chosen.epochs, val_accuracy=sel.chosen.val_accuracy,
                n_inner_train=sel.n_train, n_val=sel.n_val)
