"""`microtrain demo`: real-EEG on-device adaptation, end to end.

Pretrain an EEGNet in PyTorch on SelfRegulationSCP1, export it to ONNX,
then adapt it in microtrain's generated C with every strategy on the same
splits, replay each adaptation in PyTorch (same init, optimizer, data
order) as a cross-check, measure training RAM and MCU instruction counts,
and write a markdown report with PNG plots.

* `config`      presets (short / full), model size, learning rates
* `protocols`   data preparation and the splits (longitudinal drift, simulated shift)
* `pretraining` the PyTorch side: seeded pretraining, export, evaluation
* `strategies`  the strategies, run in the generated C
* `torch_twin`  the same adaptation replayed in PyTorch
* `hardware`    RAM breakdown, memory timeline of the step, MCU profiles
* `report`, `plots`  markdown, terminal summary, PNGs (matplotlib, Agg)
* `runner`      `run_demo`: the whole thing with progress bars

Nothing here is imported by `import microtrain`."""
from .config import FULL, SHORT, DemoConfig
from .runner import check_requirements, run_demo

__all__ = ["DemoConfig", "SHORT", "FULL", "run_demo", "check_requirements"]
