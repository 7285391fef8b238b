"""The pass pipeline for inference compilation."""
from __future__ import annotations

from typing import Callable

from ..ir import Graph
from .cleanup import eliminate_dead, remove_identity
from .fold_batchnorm import fold_batchnorm
from .fuse_gelu import fuse_gelu
from .fuse_groupnorm import fuse_groupnorm
from .fuse_pad_conv import fuse_pad_into_conv
from .infer import infer_and_fold

Pass = Callable[[Graph], Graph]

inference_pipeline: list[Pass] = [
    infer_and_fold,
    remove_identity,
    eliminate_dead,
    fold_batchnorm,
    fuse_gelu,
    fuse_groupnorm,
    fuse_pad_into_conv,
    eliminate_dead,
    infer_and_fold,   # re-derive types of rewritten nodes
]


def run_passes(graph: Graph, passes: list[Pass] = None) -> Graph:
    for p in passes if passes is not None else inference_pipeline:
        graph = p(graph)
    return graph
