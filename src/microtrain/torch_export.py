"""PyTorch -> ONNX, the way microtrain wants it: fixed shapes, eval mode,
predictable tensor names. PyTorch is an optional dependency, imported only
when `from_torch` is called."""
from __future__ import annotations

import io
import os
import warnings
from typing import Optional, Sequence, Union

from .errors import MicrotrainError

TORCH_PIN = "2.13.0"


def _import_torch():
    try:
        import torch
    except ImportError:
        raise MicrotrainError(
            f"PyTorch is not installed; pip install torch=={TORCH_PIN} (or pip install "
            "'microtrain[torch]') to export PyTorch modules, or export to ONNX yourself") from None
    return torch


def _default_names(prefix: str, count: int) -> list[str]:
    return [prefix] if count == 1 else [f"{prefix}_{i}" for i in range(count)]


_WRAPPED = "wrapped"


def _positional_only(torch, module):
    """`module` behind a `forward(*inputs)`. The TorchScript exporter appends
    the defaults of unpassed forward() parameters to the traced inputs, turning
    e.g. TransformerEncoderLayer's `is_causal=False` into a tensor that then
    breaks tracing; a *inputs signature has no defaults to append."""
    class PositionalOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            setattr(self, _WRAPPED, module)

        def forward(self, *inputs):
            return getattr(self, _WRAPPED)(*inputs)

    return PositionalOnly()


def _strip_name_prefix(model, prefix: str) -> None:
    """Give parameters and nodes back their own names (`conv1.weight`, `/conv1/Conv`)."""
    # Node/tensor scopes nest module paths: /wrapped/wrapped.layer1/wrapped.layer1.0/Conv.
    def fix(name: str) -> str:
        if name.startswith(prefix):
            return name[len(prefix):]
        if not name.startswith("/"):
            return name
        parts = [p[len(prefix):] if p.startswith(prefix) else p for p in name.split("/")]
        if len(parts) > 2 and parts[1] == prefix.rstrip("."):
            del parts[1]
        return "/".join(parts)
    g = model.graph
    for t in g.initializer:
        t.name = fix(t.name)
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        vi.name = fix(vi.name)
    for n in g.node:
        n.input[:] = [fix(i) for i in n.input]
        n.output[:] = [fix(o) for o in n.output]
        n.name = fix(n.name)


# Folding static shape arithmetic: only nodes whose inputs are this small (the
# weights were already folded by PyTorch; this is Shape->Gather->Concat math).
FOLD_MAX_ELEMENTS = 4096


def _static_shapes(model) -> dict[str, list[int]]:
    from onnx import shape_inference
    inferred = shape_inference.infer_shapes(model)
    shapes = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            shapes[vi.name] = [int(d.dim_value) for d in tt.shape.dim]
    return shapes


def _shape_value(node, shape: list[int]):
    import numpy as np
    rank = len(shape)
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", rank)
    start, end = (start + rank if start < 0 else start), (end + rank if end < 0 else end)
    start, end = min(max(start, 0), rank), min(max(end, 0), rank)
    return np.array(shape[start:max(start, end)], dtype=np.int64)


def _evaluate_node(node, inputs: dict, opset_imports):
    from onnx import helper
    from onnx.reference import ReferenceEvaluator
    names = [i for i in node.input if i]
    graph = helper.make_graph([node], "fold", [helper.make_value_info(i, helper.TypeProto()) for i in names],
                              [helper.make_value_info(o, helper.TypeProto()) for o in node.output if o])
    model = helper.make_model(graph, opset_imports=opset_imports)
    return ReferenceEvaluator(model).run(None, {i: inputs[i] for i in names})


def _is_weight(value) -> bool:
    """Float tensors of more than one element are weights: folding a node that
    reads one (an Unsqueeze of a norm's gamma) would rename the parameter."""
    return value.dtype.kind == "f" and value.size > 1


def fold_static_shape_arithmetic(model) -> None:
    """With fixed input shapes, the Shape -> Gather -> Mod -> Concat chains the
    TorchScript exporter records (e.g. inside nn.MultiheadAttention) compute
    constants. Replace them by initializers so the graph is static: Shape of a
    tensor with an inferred static shape, and any small node whose inputs are
    all constants (evaluated with ONNX's reference implementation)."""
    import numpy as np
    from onnx import numpy_helper
    g = model.graph
    shapes = _static_shapes(model)
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    graph_outputs = {o.name for o in g.output}
    kept, folded = [], {}
    for node in g.node:
        values = None
        standard = node.domain in ("", "ai.onnx")
        if not standard or graph_outputs.intersection(node.output):
            pass
        elif node.op_type == "Shape" and node.input[0] in shapes:
            values = [_shape_value(node, shapes[node.input[0]])]
        elif node.op_type == "Constant" or (
                node.input and all(i in consts for i in node.input if i)
                and sum(consts[i].size for i in node.input if i) <= FOLD_MAX_ELEMENTS
                and not any(_is_weight(consts[i]) for i in node.input if i)):
            values = _evaluate_node(node, consts, model.opset_import)
        if values is None:
            kept.append(node)
            continue
        for name, value in zip(node.output, values):
            if name:
                consts[name] = folded[name] = np.asarray(value)
    if not folded:
        return
    used = {i for n in kept for i in n.input} | graph_outputs
    del g.node[:]
    g.node.extend(kept)
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in folded.items() if k in used)


def from_torch(module, example_inputs, path: Union[str, os.PathLike, None] = None, *,
               input_names: Optional[Sequence[str]] = None,
               output_names: Optional[Sequence[str]] = None,
               opset: int = 17, for_training: bool = False):
    """Export a PyTorch module to an ONNX `ModelProto` that microtrain compiles.

    * `example_inputs`: a tensor or a tuple/list of tensors. Their shapes become
      the model's fixed input shapes (no dynamic axes: microtrain compiles
      static graphs).
    * The module is exported in eval mode (Dropout off, BatchNorm uses its
      running statistics); its previous train/eval mode is restored afterwards.
    * Names: inputs are called `input` (one input) or `input_0`, `input_1`, ...;
      outputs `output` or `output_0`, `output_1`, ...; unless `input_names` /
      `output_names` are given.
    * Shape arithmetic recorded by the tracer (Shape -> Gather -> Concat ->
      Reshape chains) is folded into constants, since the shapes are fixed.
    * `path`: when given, the model is also written there.
    * `for_training`: export for `compile_training`: BatchNormalization stays
      its own node (the exporter's constant folding would merge it into the
      preceding Conv — a different parametrization to train; compile_training's
      `batchnorm=` then freezes, trains or replaces it), and parameters with
      equal values (fresh norm weights are all ones) are not merged into one
      shared initializer. For inference microtrain folds BatchNorm itself.

    Uses PyTorch's TorchScript-based exporter (`dynamo=False`): the default
    dynamo exporter of torch 2.x needs the `onnxscript` package and produces
    graphs with more indirection; the TorchScript exporter gives plain opset-17
    graphs with constant-folded shapes.
    """
    torch = _import_torch()
    import onnx

    if not isinstance(module, torch.nn.Module):
        raise MicrotrainError(f"from_torch needs a torch.nn.Module, got {type(module).__name__}")
    args = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    if not args or not all(isinstance(a, torch.Tensor) for a in args):
        raise MicrotrainError("from_torch: example_inputs must be a tensor or a tuple of tensors")
    in_names = list(input_names) if input_names is not None else _default_names("input", len(args))
    if len(in_names) != len(args):
        raise MicrotrainError(f"from_torch: {len(in_names)} input_names for {len(args)} example inputs")

    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            outs = module(*args)
        n_out = len(outs) if isinstance(outs, (tuple, list)) else 1
        out_names = list(output_names) if output_names is not None else _default_names("output", n_out)
        if len(out_names) != n_out:
            raise MicrotrainError(f"from_torch: {len(out_names)} output_names for {n_out} outputs")
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            try:
                torch.onnx.export(_positional_only(torch, module), args, buf, dynamo=False, opset_version=opset,
                                  input_names=in_names, output_names=out_names,
                                  do_constant_folding=True, export_params=True,
                                  # for training: no Conv+BatchNorm merge (the eval-mode peephole),
                                  # no merging of equal-valued parameters
                                  training=(torch.onnx.TrainingMode.PRESERVE if for_training
                                            else torch.onnx.TrainingMode.EVAL),
                                  keep_initializers_as_inputs=True if for_training else None)
            except MicrotrainError:
                raise
            except Exception as exc:
                msg = " ".join(str(exc).split())[:400]
                raise MicrotrainError(f"PyTorch could not export {type(module).__name__} to ONNX "
                                      f"({type(exc).__name__}: {msg})") from None
    finally:
        module.train(was_training)

    model = onnx.load_from_string(buf.getvalue())
    _strip_name_prefix(model, _WRAPPED + ".")
    fold_static_shape_arithmetic(model)
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model
