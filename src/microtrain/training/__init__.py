"""On-device training: autodiff on the IR, strategies, training-step C."""
from .trainer import CompiledTrainer, compile_training  # noqa: F401
