"""Graph passes: small pure functions `Graph -> Graph`, listed in `pipeline`."""
from .pipeline import inference_pipeline, run_passes  # noqa: F401
