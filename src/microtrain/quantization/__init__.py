"""Post-training quantization to integer-only models (docs/quantization.md).

    qmodel = microtrain.quantize(model, calibration, method="minmax")
    microtrain.compile(qmodel)              # integer-only C
    microtrain.reference(qmodel, inputs)    # the integer golden model

The quantized model's inputs/outputs are int8; `quantize_inputs` /
`dequantize_outputs` convert with the scales stored in the model."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import onnx

from ..errors import InputError, MicrotrainError
from ..frontend import InputShapes, ModelLike, load_model
from .calibration import METHODS, Calibration, calibrate, calibration_batches
from .export import graph_to_onnx, io_params
from .rewrite import QUANTIZERS, QuantizationError, quantize_graph, quantizer

__all__ = ["quantize", "quantize_inputs", "dequantize_outputs", "io_params", "QuantizationError",
           "QUANTIZERS", "quantizer"]

SOFTMAX = ("ita", "ibert", "float")
GELU = LAYERNORM = ("ibert",)


def quantize(model: ModelLike, calibration: Calibration, *, method: str = "minmax",
             per_channel: bool = True, softmax: str = "ita", gelu: str = "ibert",
             layernorm: str = "ibert", percentile: float = 99.99, progress: bool = True,
             input_shapes: InputShapes = None, fwsa: bool = False) -> onnx.ModelProto:
    """Quantize a float ONNX model (path or ModelProto) from calibration data
    (a numpy array of samples for a one-input model, a dict of arrays, or an
    iterable of input dicts). Returns an ONNX model of microtrain integer ops
    with int8 inputs/outputs whose scales are in its metadata (`io_params`).
    `fwsa=True` first rewrites attention to fused-weight form where it lowers
    MACs (passes/fwsa.py), so the fused E x E matrices are calibrated and
    quantized as weights of their own."""
    from ..compiler import lower_to_graph
    from ..passes.commute_qk_scale import commute_qk_scale
    from ..passes.infer import infer_and_fold
    if method not in METHODS:
        raise MicrotrainError(f"method={method!r} is not a calibration method; use one of {', '.join(METHODS)}")
    for key, value, allowed in (("softmax", softmax, SOFTMAX), ("gelu", gelu, GELU),
                                ("layernorm", layernorm, LAYERNORM)):
        if value not in allowed:
            raise MicrotrainError(f"{key}={value!r} is not supported; use one of {', '.join(allowed)}")
    if not 50.0 < percentile <= 100.0:
        raise MicrotrainError(f"percentile={percentile} must be in (50, 100]")
    # nn.MultiheadAttention scales q and k apart: one scores scale instead
    graph = infer_and_fold(commute_qk_scale(lower_to_graph(model, input_shapes, fwsa=fwsa)))
    batches = calibration_batches(graph, calibration)
    calib = calibrate(graph, batches, method, percentile, progress)
    qgraph, params = quantize_graph(graph, calib, dict(per_channel=per_channel, softmax=softmax,
                                                       gelu=gelu, layernorm=layernorm, method=method))
    return graph_to_onnx(qgraph, params)


def quantize_inputs(qmodel: ModelLike, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float inputs -> the int8 the quantized model takes (round half to even, clamp)."""
    params = io_params(load_model(qmodel)[0])
    out = {}
    for name, x in inputs.items():
        if name not in params:
            raise InputError(f"'{name}' is not an input of the quantized model (it has {sorted(params)})")
        scale, zp = params[name]
        out[name] = np.clip(np.round(np.asarray(x, np.float64) / scale) + zp, -128, 127).astype(np.int8)
    return out


def dequantize_outputs(qmodel: ModelLike, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """int8 outputs -> float32 real values, scale * (q - zero_point)."""
    params = io_params(load_model(qmodel)[0])
    return {name: (params[name][0] * (np.asarray(q, np.float64) - params[name][1])).astype(np.float32)
            for name, q in outputs.items()}
