"""IR Graph -> ONNX ModelProto (used to write quantized models; microtrain
ops keep their `microtrain` domain so the file loads back through
microtrain's frontend)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..ir import Graph
from ..ops.registry import INTERNAL_DOMAIN

QUANT_META_PREFIX = "microtrain.quant."


def graph_to_onnx(graph: Graph, io_params: dict[str, tuple[float, int]]) -> onnx.ModelProto:
    nodes = [helper.make_node(n.op, n.inputs, n.outputs, name=n.name, domain=n.domain or None,
                              **{k: _attr(v) for k, v in n.attrs.items()}) for n in graph.nodes]
    def vi(name):
        t = graph.type_of(name)
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(t.dtype), t.shape)
    out_types = {}
    for o in graph.outputs:
        out_types[o] = vi(o) if (o in graph.types or o in graph.constants) else \
            helper.make_tensor_value_info(o, onnx.TensorProto.INT8, None)
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in graph.constants.items()]
    g = helper.make_graph(nodes, graph.name, [vi(i) for i in graph.inputs],
                          [out_types[o] for o in graph.outputs], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", graph.opset),
                                                helper.make_opsetid(INTERNAL_DOMAIN, 1)],
                              producer_name="microtrain.quantize")
    model.ir_version = 8
    for name, (scale, zp) in io_params.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = QUANT_META_PREFIX + name, f"{float(scale)!r} {int(zp)}"
    return model


def _attr(v):
    if isinstance(v, np.ndarray):
        return numpy_helper.from_array(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def io_params(model: onnx.ModelProto) -> dict[str, tuple[float, int]]:
    """(scale, zero_point) of the int8 graph inputs/outputs of a quantized model."""
    out = {}
    for entry in model.metadata_props:
        if entry.key.startswith(QUANT_META_PREFIX):
            scale, zp = entry.value.split()
            out[entry.key[len(QUANT_META_PREFIX):]] = (float(scale), int(zp))
    return out
