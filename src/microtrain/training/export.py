"""Write the trained weights back into the user's ONNX model (a copy: the
original file is never touched). LoRA adapters are merged into their base
weights first (lora.merge_weights)."""
from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import MicrotrainError


def export_trained(trainer, path=None) -> onnx.ModelProto:
    if trainer.batchnorm in ("group", "layer"):
        raise MicrotrainError(
            f"this trainer replaced BatchNorm by a per-sample norm (batchnorm='{trainer.batchnorm}'), which the "
            "source ONNX cannot express; swap the norm in PyTorch (microtrain.models.norm_swap), retrain, "
            "export that model and train it with batchnorm='frozen'")
    proto = copy.deepcopy(trainer.source_proto)
    weights = trainer.parameters()
    if trainer.program.lora is not None:
        from .lora import merge_weights
        weights = merge_weights(trainer.program.lora, weights)
    inits = {init.name: init for init in proto.graph.initializer}
    for name, value in weights.items():
        if name not in inits:
            raise MicrotrainError(f"trained tensor '{name}' has no initializer in the source model")
        old = numpy_helper.to_array(inits[name])
        new = numpy_helper.from_array(np.asarray(value, dtype=old.dtype).reshape(old.shape), name)
        inits[name].CopyFrom(new)
    if path is not None:
        onnx.save(proto, str(path))
    return proto
