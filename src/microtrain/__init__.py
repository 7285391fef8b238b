"""microtrain: compile small neural networks into static, verified C for
microcontrollers — inference and on-device training.

Public API (names kept stable): compile, reference, from_torch, MicrotrainError.
Heavy modules load on first use so `import microtrain` stays cheap."""
from .errors import MicrotrainError

__version__ = "0.1.0"

__all__ = ["compile", "reference", "from_torch", "compile_training", "schedule", "MicrotrainError",
           "CompiledModel", "CompiledTrainer", "memory_timeline", "plot_memory_timeline"]


def __getattr__(name):
    if name in ("compile", "reference", "CompiledModel"):
        from . import compiler
        return getattr(compiler, name)
    if name in ("compile_training", "CompiledTrainer"):
        from . import training
        return getattr(training, name)
    if name in ("memory_timeline", "plot_memory_timeline"):
        from . import timeline
        return getattr(timeline, name)
    if name == "schedule":
        from .scheduler import schedule
        return schedule
    if name == "from_torch":
        from .torch_export import from_torch
        return from_torch
    raise AttributeError(f"module 'microtrain' has no attribute {name!r}")
