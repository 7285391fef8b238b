"""Layer-mapping scheduler: the best loop order and memory allocation of each
conv/matmul layer on an accelerator or MCU memory hierarchy (exhaustive search
for small ordering spaces, simulated annealing for large ones)."""
from .annealing import AnnealingSchedule
from .api import ENGINES, Mapping, schedule, schedule_layer, select_engine
from .errors import SchedulerError
from .hardware import Hardware, MemoryLevel, load_hardware, shipped_names
from .layer import Layer, conv_layer, matmul_layer
from .tiling import TilePlan, tile_for_levels

__all__ = [
    "AnnealingSchedule", "ENGINES", "Hardware", "Layer", "Mapping", "MemoryLevel", "SchedulerError",
    "TilePlan", "conv_layer", "load_hardware", "matmul_layer", "schedule", "schedule_layer",
    "select_engine", "shipped_names", "tile_for_levels",
]
