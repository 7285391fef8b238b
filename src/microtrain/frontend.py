"""ONNX -> IR. Reads the file, resolves input shapes (overrides first, then the
file's own static dims), turns initializers and Constant nodes into constants.
Shapes of the other tensors come from `passes.infer` (microtrain's own rules,
with constant folding), so a file without value_info still compiles."""
from __future__ import annotations

import os
import re
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .errors import ModelLoadError, ShapeError, UnsupportedOpError
from .ir import Graph, Node, TensorType

ModelLike = Union[str, os.PathLike, onnx.ModelProto]
InputShapes = Optional[Mapping[str, Union[str, Sequence[int]]]]


def load_model(model: ModelLike) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        return model, "<memory>"
    path = os.fspath(model)
    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: no such file; give the path of an .onnx model")
    try:
        proto = onnx.load(path)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError...
        raise ModelLoadError(f"{path}: not a readable ONNX model ({type(exc).__name__}); "
                             "re-export it or check the file is complete") from None
    if not proto.graph.node and not proto.graph.output:
        raise ModelLoadError(f"{path}: the ONNX graph is empty; re-export the model")
    return proto, path


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x3x32x32' or '1,3,32,32' -> (1, 3, 32, 32)."""
    parts = [p for p in re.split(r"[x,\s]+", text.strip()) if p]
    if not parts or not all(p.isdigit() for p in parts):
        raise ShapeError(f"bad shape '{text}': write it like 1x3x32x32")
    return tuple(int(p) for p in parts)


def onnx_to_ir(model: ModelLike, input_shapes: InputShapes = None) -> Graph:
    proto, source = load_model(model)
    opset = _default_opset(proto)
    g = proto.graph
    constants: dict[str, np.ndarray] = {}
    for init in g.initializer:
        constants[init.name] = _to_array(init, source)
    for sp in g.sparse_initializer:
        raise UnsupportedOpError(f"{source}: sparse initializer '{sp.values.name}' is not supported; "
                                 "densify it before export")

    overrides = {k: (parse_shape(v) if isinstance(v, str) else tuple(int(d) for d in v))
                 for k, v in (input_shapes or {}).items()}
    inputs, types = [], {}
    for vi in g.input:
        if vi.name in constants:
            continue  # old IR versions list initializers as inputs
        types[vi.name] = _input_type(vi, overrides.get(vi.name), source)
        inputs.append(vi.name)
    unknown = set(overrides) - set(inputs)
    if unknown:
        raise ShapeError(f"--input-shape names unknown input(s) {sorted(unknown)}; "
                         f"the model's inputs are {inputs}")

    nodes: list[Node] = []
    used_names: set[str] = set()
    for idx, n in enumerate(g.node):
        name = n.name or f"{n.op_type.lower()}_{idx}"
        while name in used_names:
            name = f"{name}_{idx}"
        used_names.add(name)
        attrs = {a.name: _attr_value(a) for a in n.attribute}
        node = Node(op=n.op_type, name=name, inputs=list(n.input), outputs=list(n.output),
                    attrs=attrs, opset=opset, domain=n.domain)
        if any(isinstance(v, onnx.GraphProto) for v in attrs.values()):
            raise UnsupportedOpError(f"node '{name}' ({n.op_type}): control flow with subgraphs "
                                     "is not supported; unroll it before export")
        if node.op == "Constant" and node.domain in ("", "ai.onnx"):
            constants[node.outputs[0]] = _constant_value(node, source)
            continue
        nodes.append(node)

    outputs = [o.name for o in g.output]
    graph_name = g.name or os.path.splitext(os.path.basename(source))[0] or "network"
    return Graph(name=graph_name, nodes=_topo_sort(nodes, inputs, constants, source),
                 inputs=inputs, outputs=outputs, types=types, constants=constants,
                 opset=opset, source=source)


def _default_opset(proto: onnx.ModelProto) -> int:
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 13


def _to_array(init: onnx.TensorProto, source: str) -> np.ndarray:
    try:
        arr = numpy_helper.to_array(init, base_dir=os.path.dirname(source) if source != "<memory>" else "")
    except Exception as exc:
        raise ModelLoadError(f"{source}: cannot read initializer '{init.name}' ({exc}); "
                             "keep external data files next to the model") from None
    return np.require(arr, requirements="C")  # keeps 0-d scalars 0-d


def _input_type(vi: onnx.ValueInfoProto, override, source: str) -> TensorType:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise UnsupportedOpError(f"{source}: input '{vi.name}' is not a tensor; only tensor inputs are supported")
    dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type)
    if override is not None:
        if tt.HasField("shape") and len(tt.shape.dim) not in (0, len(override)):
            raise ShapeError(f"input '{vi.name}': --input-shape gives rank {len(override)} "
                             f"but the model declares rank {len(tt.shape.dim)}")
        return TensorType(override, dtype)
    if not tt.HasField("shape"):
        raise ShapeError(f"input '{vi.name}' has no shape in the model; give one, "
                         f"e.g. --input-shape {vi.name}=1x3x32x32")
    dims = []
    for i, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(d.dim_value)
        else:
            label = d.dim_param or "?"
            raise ShapeError(
                f"input '{vi.name}' has dynamic dimension '{label}' (axis {i}); give a fixed shape, "
                f"e.g. --input-shape {vi.name}=" + "x".join(
                    str(x.dim_value) if x.HasField('dim_value') and x.dim_value > 0 else "1"
                    for x in tt.shape.dim)
                + f" (each dynamic dimension replaced by its size; API: input_shapes={{'{vi.name}': (...)}})")
    return TensorType(tuple(dims), dtype)


def _attr_value(a: onnx.AttributeProto):
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [s.decode("utf-8") for s in v]
    return v


def _constant_value(node: Node, source: str) -> np.ndarray:
    a = node.attrs
    if "value" in a:
        return np.require(a["value"], requirements="C")
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in a:
            return np.asarray(a[key], dtype=dtype)
    raise UnsupportedOpError(f"node '{node.name}' (Constant): only tensor, float(s) and int(s) "
                             "values are supported")


def _topo_sort(nodes: list[Node], inputs, constants, source: str) -> list[Node]:
    """ONNX requires topological order but not every exporter honours it."""
    available = set(inputs) | set(constants) | {""}
    pending, ordered = list(nodes), []
    while pending:
        progressed = False
        rest = []
        for n in pending:
            if all(i in available for i in n.inputs):
                ordered.append(n)
                available.update(n.outputs)
                progressed = True
            else:
                rest.append(n)
        if not progressed:
            n = rest[0]
            missing = [i for i in n.inputs if i not in available]
            raise ModelLoadError(f"{source}: node '{n.name}' ({n.op}) reads {missing}, which no node, "
                                 "input or initializer provides (or the graph has a cycle)")
        pending = rest
    return ordered
