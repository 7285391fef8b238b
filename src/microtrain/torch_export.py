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


def from_torch(module, example_inputs, path: Union[str, os.PathLike, None] = None, *,
               input_names: Optional[Sequence[str]] = None,
               output_names: Optional[Sequence[str]] = None,
               opset: int = 17):
    """Export a PyTorch module to an ONNX `ModelProto` that microtrain compiles.

    * `example_inputs`: a tensor or a tuple/list of tensors. Their shapes become
      the model's fixed input shapes (no dynamic axes: microtrain compiles
      static graphs).
    * The module is exported in eval mode (Dropout off, BatchNorm uses its
      running statistics); its previous train/eval mode is restored afterwards.
    * Names: inputs are called `input` (one input) or `input_0`, `input_1`, ...;
      outputs `output` or `output_0`, `output_1`, ...; unless `input_names` /
      `output_names` are given.
    * `path`: when given, the model is also written there.

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
                                  do_constant_folding=True, export_params=True)
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
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model
