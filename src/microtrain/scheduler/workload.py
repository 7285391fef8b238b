"""Conv / Gemm / MatMul layers read straight from an ONNX model (shapes from
onnx.shape_inference), until the compiler IR offers the same."""
from __future__ import annotations

from math import prod
from pathlib import Path
from typing import Any

from .errors import SchedulerError
from .layer import Layer, conv_layer, matmul_layer


def _load_model(model: Any):
    import onnx
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(str(model))
    if not path.is_file():
        raise SchedulerError(f"model file '{path}' does not exist")
    try:
        return onnx.load(str(path), load_external_data=False)  # shapes are all we need
    except Exception as exc:  # onnx raises several unrelated types for a bad file
        raise SchedulerError(f"{path}: not a valid ONNX model ({type(exc).__name__})") from None


def _shapes(model) -> dict[str, list[int]]:
    import onnx
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:
        raise SchedulerError(f"ONNX shape inference failed ({str(exc).splitlines()[0][:120]})") from None
    shapes: dict[str, list[int]] = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _attrs(node) -> dict[str, Any]:
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _need(shapes, name: str, node, rank: int | None = None) -> list[int]:
    shape = shapes.get(name)
    label = f"node '{node.name or node.output[0]}' ({node.op_type})"
    if shape is None or any(d <= 0 for d in shape):
        raise SchedulerError(f"{label}: shape of '{name}' is unknown or dynamic; export the model with fixed shapes")
    if rank is not None and len(shape) != rank:
        raise SchedulerError(f"{label}: expected a rank-{rank} tensor for '{name}', got shape {shape}")
    return shape


def layers_from_onnx(model: Any) -> list[Layer]:
    """Every Conv (2-D), Gemm and MatMul of the model as a Layer, in graph order."""
    m = _load_model(model)
    shapes = _shapes(m)
    layers: list[Layer] = []
    for n, node in enumerate(m.graph.node):
        name = node.name or f"{node.op_type.lower()}_{n}"
        if node.op_type == "Conv":
            x = _need(shapes, node.input[0], node, 4)
            w = _need(shapes, node.input[1], node, 4)
            y = _need(shapes, node.output[0], node, 4)
            a = _attrs(node)
            group = int(a.get("group", 1))
            strides = a.get("strides", [1, 1])
            dil = a.get("dilations", [1, 1])
            k_per_g = y[1] // group
            c_per_g = w[1]
            if group > 1 and k_per_g == 1 and c_per_g == 1:
                layers.append(conv_layer(name, k=1, c=1, g=group, b=y[0], oy=y[2], ox=y[3], fy=w[2], fx=w[3],
                                         stride=tuple(strides), dilation=tuple(dil), iy=x[2], ix=x[3]))
            else:
                layers.append(conv_layer(name, k=k_per_g, c=c_per_g, g=group, b=y[0], oy=y[2], ox=y[3],
                                         fy=w[2], fx=w[3], stride=tuple(strides), dilation=tuple(dil),
                                         iy=x[2], ix=x[3]))
        elif node.op_type == "Gemm":
            a = _attrs(node)
            x = _need(shapes, node.input[0], node, 2)
            w = _need(shapes, node.input[1], node, 2)
            mrows = x[1] if a.get("transA", 0) else x[0]
            kdim = x[0] if a.get("transA", 0) else x[1]
            ncols = w[0] if a.get("transB", 0) else w[1]
            layers.append(matmul_layer(name, m=mrows, n=ncols, k=kdim))
        elif node.op_type == "MatMul":
            x = _need(shapes, node.input[0], node)
            w = _need(shapes, node.input[1], node)
            if len(x) < 2 or len(w) < 2:
                raise SchedulerError(f"node '{name}' (MatMul): 1-D operands are not supported")
            if len(w) > 2 and prod(w[:-2]) > 1:
                raise SchedulerError(f"node '{name}' (MatMul): batched right operand is not supported")
            layers.append(matmul_layer(name, m=prod(x[:-1]), n=w[-1], k=x[-1]))
    if not layers:
        raise SchedulerError("the model has no Conv, Gemm or MatMul node to schedule")
    return layers
