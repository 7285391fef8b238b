"""The demo's settings: one dataclass, two presets."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

FS = 128.0            # SCP1 resampled 256 -> 128 Hz: slow cortical potentials live below a few Hz
DATASET = "SelfRegulationSCP1"
# The reference models sized for SCP1 at 128 Hz (6 x 448), both with per-sample GroupNorm (4 groups).
MODELS = {
    "eegnet": dict(chans=6, samples=448, classes=2, f1=8, d=2, f2=16, kernel=32, sep_kernel=8, pool1=4, pool2=8,
                   norm="group", groups=4, dropout=0.25),
    # EpiDeNet's published pools (8, 4, 4) are for 1000 samples at 500 Hz and need >= 475 samples;
    # (4, 4, 2) leaves 8 time steps for its spatial and 1x1 blocks at 448.
    "epidenet": dict(chans=6, samples=448, classes=2, pools=(4, 4, 2), norm="group", groups=4, dropout=0.25),
}
MODEL_LABELS = {"eegnet": "EEGNet", "epidenet": "EpiDeNet-like"}
MODEL = MODELS["eegnet"]
# Adam learning rates of the adaptation strategies (pretraining: PRETRAIN_LR).
LR = {"last-layer": 1e-3, "bias-only": 3e-3, "full": 3e-4, "lora": 1e-3}
PRETRAIN_LR, PRETRAIN_BATCH = 1e-3, 16
BATCH, MICRO_BATCH = 8, 1          # the device step: 8 samples as 8 micro-batches of 1
LORA_RANK, LORA_ALPHA = 4, 8.0
TARGETS = ("cortex-m4", "cortex-m7", "rv32imfc", "rv32imc")


@dataclass(frozen=True)
class DemoConfig:
    name: str
    model: str = "eegnet"                  # a key of MODELS
    seeds: tuple = (0, 1, 2)
    fractions: tuple = (0.3, 0.5)          # longitudinal: share of TEST used for adaptation
    shift_seeds: tuple = (0, 1)            # simulated shift: pretraining seeds ...
    subjects: int = 1                      # ... times pseudo-subjects per seed
    pretrain_epochs: int = 20
    adapt_epochs: int = 15
    protocols: tuple = ("longitudinal", "shift")
    targets: tuple = ("cortex-m4", "cortex-m7")     # MCU targets profiled
    profile_strategies: tuple = ("last-layer", "bias-only", "full", "lora")
    lr: dict = field(default_factory=lambda: dict(LR))
    select: bool = False      # lr x {1/3, 1, 3} and epochs chosen on the slice's last 25 % (demo/selection.py)
    replay: bool = False      # also "full + replay": full on the slice + a rehearsal buffer (demo/rehearsal.py)

    def __post_init__(self):
        if self.model not in MODELS:
            from ..errors import MicrotrainError
            raise MicrotrainError(f"demo model {self.model!r}: choose one of {', '.join(MODELS)}")

    @property
    def model_args(self) -> dict:
        return MODELS[self.model]

    def with_(self, **changes) -> "DemoConfig":
        return replace(self, **changes)


SHORT = DemoConfig("short")
FULL = DemoConfig("full", seeds=(0, 1, 2, 3, 4), shift_seeds=(0, 1, 2, 3, 4), subjects=3, pretrain_epochs=60,
                  adapt_epochs=30, targets=TARGETS)
