"""`microtrain run` on a quantized model: the int8 C against the integer
golden model (must be bit-exact) and, given the fp32 model, the dequantized
int8 outputs against the float outputs (error, argmax agreement, top-1 vs
labels)."""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from ..errors import InputError
from ..frontend import load_model
from .export import io_params


def random_float_inputs(qmodel, graph, seed: int) -> dict[str, np.ndarray]:
    """Uniform inputs over each int8 input's representable real range."""
    params = io_params(load_model(qmodel)[0])
    rng = np.random.default_rng(seed)
    out = {}
    for name in graph.inputs:
        scale, zp = params[name]
        out[name] = rng.uniform(scale * (-128 - zp), scale * (127 - zp), graph.types[name].shape).astype(np.float32)
    return out


def compare_quantized(cm, qmodel, float_inputs: Mapping[str, np.ndarray], float_model=None,
                      labels: Optional[np.ndarray] = None) -> tuple[list[str], bool]:
    """Report lines and whether the C matched the golden model exactly."""
    from . import dequantize_outputs, quantize_inputs
    params = io_params(load_model(qmodel)[0])
    missing = [n for n in cm.input_names if n not in float_inputs]
    if missing:
        raise InputError(f"inputs lack {missing}; the model's inputs are {cm.input_names}")
    xq = quantize_inputs(qmodel, {n: float_inputs[n] for n in cm.input_names})
    got, want = cm.run(xq), cm.reference(xq)
    lines, ok = ["int8 C vs the integer golden model:"], True
    for name in cm.output_names:
        same = np.array_equal(got[name], want[name])
        ok &= same
        lines.append(f"  {name:<24} shape {str(tuple(got[name].shape)):<16} "
                     + ("bit-exact" if same else f"MISMATCH ({int(np.sum(got[name] != want[name]))} elements)"))
    deq = dequantize_outputs(qmodel, got)
    ref = None
    if float_model is not None:
        from ..compiler import reference
        ref = reference(float_model, {n: np.asarray(float_inputs[n], np.float32) for n in cm.input_names})
        lines.append("int8 (dequantized) vs the fp32 model (golden model):")
        for name in cm.output_names:
            d, f = deq[name].astype(np.float64), np.asarray(ref[name], np.float64)
            if d.shape != f.shape:
                raise InputError(f"output '{name}': the float model gives shape {f.shape}, the int8 one {d.shape}; "
                                 "give the float model this int8 model was quantized from")
            err = np.abs(d - f)
            line = (f"  {name:<24} max abs error {err.max():.4g}  mean {err.mean():.4g}  "
                    f"({err.max() / params[name][0]:.1f} LSB max)")
            if d.ndim == 2 and d.shape[1] > 1:
                line += f"  argmax agreement {100 * np.mean(d.argmax(1) == f.argmax(1)):.2f}%"
            lines.append(line)
    if labels is not None:
        name = cm.output_names[0]
        labels = np.asarray(labels).reshape(-1)
        top1 = np.mean(got[name].argmax(1) == labels)
        text = f"top-1 accuracy vs labels: int8 {100 * top1:.2f}%"
        if ref is not None:
            text += f", fp32 {100 * np.mean(np.asarray(ref[name]).argmax(1) == labels):.2f}%"
        lines.append(text)
    return lines, ok
