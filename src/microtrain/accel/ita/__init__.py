"""ITA, an integer Transformer attention accelerator (Islamoglu et al. 2023):
functional model of one head (model.py), cycle and energy model (cost.py),
register interface (registers.py) and Unicorn co-simulation (cosim.py).
See docs/ita.md."""
from .model import HeadJob, run_head
from .cost import ITA_CONFIG, ItaConfig, head_cost, HeadCost

__all__ = ["HeadJob", "run_head", "ITA_CONFIG", "ItaConfig", "head_cost", "HeadCost"]
