"""Element-wise unary math and activations: Sqrt, Exp, Erf, Relu, LeakyRelu,
Clip, Sigmoid, Tanh, HardSigmoid, HardSwish, Elu, Gelu (+ Neg, Abs,
Reciprocal, Log, Softplus). All run in place when their input dies."""
from __future__ import annotations

import math

import numpy as np

from ..errors import UnsupportedOpError, node_label
from ._common import erf, require_float, same_as_input, size
from .registry import register, require_const

# Kernel op codes; keep in sync with runtime/mt_eltwise.h.
CODES = {"Sqrt": 0, "Exp": 1, "Erf": 2, "Relu": 3, "LeakyRelu": 4, "Clip": 5, "Sigmoid": 6,
         "Tanh": 7, "HardSigmoid": 8, "HardSwish": 9, "Elu": 10, "Gelu": 11, "GeluTanh": 12,
         "Neg": 13, "Abs": 14, "Reciprocal": 15, "Log": 16, "Softplus": 17}


def _params(node, ins) -> tuple[float, float]:
    """(alpha, beta) passed to the kernel, per op."""
    op = node.op
    if op == "LeakyRelu":
        return node.attr("alpha", 0.01), 0.0
    if op == "Elu":
        return node.attr("alpha", 1.0), 0.0
    if op == "HardSigmoid":
        return node.attr("alpha", 0.2), node.attr("beta", 0.5)
    if op == "Clip":
        return _clip_bounds(node, ins)
    return 0.0, 0.0


def _clip_bounds(node, ins) -> tuple[float, float]:
    if node.opset < 11:
        return node.attr("min", -math.inf), node.attr("max", math.inf)
    lo = require_const(node, ins, 1, "min") if len(ins) > 1 else None
    hi = require_const(node, ins, 2, "max") if len(ins) > 2 else None
    def scalar(v, default):
        if v is None:
            return default
        if np.asarray(v).size != 1:
            raise UnsupportedOpError(f"{node_label(node)}: min/max must be scalars")
        return float(np.asarray(v).reshape(-1)[0])
    return scalar(lo, -math.inf), scalar(hi, math.inf)


def _kernel_name(node) -> str:
    if node.op == "Gelu":
        approx = node.attr("approximate", "none")
        if approx not in ("none", "tanh"):
            raise UnsupportedOpError(f"{node_label(node)}: approximate='{approx}' is not a Gelu mode")
        return "GeluTanh" if approx == "tanh" else "Gelu"
    return node.op


def _reference(node, args):
    x = args[0]
    op = _kernel_name(node)
    if op == "Clip":
        lo = node.attr("min", None) if node.opset < 11 else (args[1] if len(args) > 1 else None)
        hi = node.attr("max", None) if node.opset < 11 else (args[2] if len(args) > 2 else None)
        y = x
        if lo is not None:
            y = np.maximum(y, np.asarray(lo, dtype=x.dtype))
        if hi is not None:
            y = np.minimum(y, np.asarray(hi, dtype=x.dtype))
        return [y.astype(x.dtype)]
    xf = x.astype(np.float64)
    a, b = _params(node, [])  # Clip returned above; the others ignore ins
    if op == "Sqrt":
        y = np.sqrt(xf)
    elif op == "Exp":
        y = np.exp(xf)
    elif op == "Erf":
        y = erf(xf)
    elif op == "Relu":
        y = np.maximum(xf, 0)
    elif op == "LeakyRelu":
        y = np.where(xf >= 0, xf, a * xf)
    elif op == "Sigmoid":
        y = 1.0 / (1.0 + np.exp(-xf))
    elif op == "Tanh":
        y = np.tanh(xf)
    elif op == "HardSigmoid":
        y = np.clip(a * xf + b, 0, 1)
    elif op == "HardSwish":
        y = xf * np.clip(xf / 6.0 + 0.5, 0, 1)
    elif op == "Elu":
        y = np.where(xf > 0, xf, a * (np.exp(xf) - 1))
    elif op == "Gelu":
        y = 0.5 * xf * (1 + erf(xf / math.sqrt(2)))
    elif op == "GeluTanh":
        y = 0.5 * xf * (1 + np.tanh(math.sqrt(2 / math.pi) * (xf + 0.044715 * xf ** 3)))
    elif op == "Neg":
        y = -xf
    elif op == "Abs":
        y = np.abs(xf)
    elif op == "Reciprocal":
        y = 1.0 / xf
    elif op == "Log":
        y = np.log(xf)
    elif op == "Softplus":
        y = np.logaddexp(0, xf)
    return [y.astype(x.dtype)]


def _lower(node, ctx):
    require_float(node, ctx.ins)
    a, b = _params(node, ctx.ins)
    from ..codegen.context import float_literal
    par = ctx.par()
    if par:   # multi-core: each core maps its own contiguous range of elements
        return (f"{{ int32_t lo, hi; mt_par_range({size(ctx.outs[0].shape)}, {par}, &lo, &hi);\n"
                f"  mt_unary_f32({CODES[_kernel_name(node)]}, {ctx.inp(0)} + lo, {ctx.out(0)} + lo, hi - lo, "
                f"{float_literal(a)}, {float_literal(b)}); }}")
    return (f"mt_unary_f32({CODES[_kernel_name(node)]}, {ctx.inp(0)}, {ctx.out(0)}, "
            f"{size(ctx.outs[0].shape)}, {float_literal(a)}, {float_literal(b)});")


def _macs(node, ins, outs):
    return 0


# ---- gradients -------------------------------------------------------------
# dx = dy * f'(x), computed by one kernel from x and/or y. Rules that can use
# the output y instead of x do, so x may be overwritten in place in the forward.
USES_Y = {"Sqrt", "Exp", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Reciprocal"}


def _grad_reference(node, args):
    dy, x, y = args
    op = node.attr("op")
    a, b = node.attr("alpha", 0.0), node.attr("beta", 0.0)
    dy64 = dy.astype(np.float64)
    xf = None if x is None else x.astype(np.float64)
    yf = None if y is None else y.astype(np.float64)
    if op == "Sqrt":
        d = 0.5 / yf
    elif op == "Exp":
        d = yf
    elif op == "Erf":
        d = 2 / math.sqrt(math.pi) * np.exp(-xf * xf)
    elif op == "Relu":
        d = (yf > 0).astype(np.float64)
    elif op == "LeakyRelu":
        d = np.where(yf > 0, 1.0, a)
    elif op == "Clip":   # torch.clamp semantics: gradient passes where min <= x <= max
        d = ((xf >= a) & (xf <= b)).astype(np.float64)
    elif op == "Sigmoid":
        d = yf * (1 - yf)
    elif op == "Tanh":
        d = 1 - yf * yf
    elif op == "HardSigmoid":
        t = a * xf + b
        d = np.where((t > 0) & (t < 1), a, 0.0)
    elif op == "HardSwish":
        d = np.where(xf < -3, 0.0, np.where(xf <= 3, xf / 3 + 0.5, 1.0))
    elif op == "Elu":
        d = np.where(yf > 0, 1.0, yf + a)
    elif op == "Gelu":
        d = 0.5 * (1 + erf(xf / math.sqrt(2))) + xf * np.exp(-0.5 * xf * xf) / math.sqrt(2 * math.pi)
    elif op == "GeluTanh":
        k = math.sqrt(2 / math.pi)
        t = np.tanh(k * (xf + 0.044715 * xf ** 3))
        d = 0.5 * (1 + t) + 0.5 * xf * (1 - t * t) * k * (1 + 3 * 0.044715 * xf * xf)
    elif op == "Neg":
        d = -np.ones_like(dy64)
    elif op == "Abs":
        d = np.sign(xf)
    elif op == "Reciprocal":
        d = -yf * yf
    elif op == "Log":
        d = 1 / xf
    elif op == "Softplus":
        d = 1 / (1 + np.exp(-xf))
    else:
        raise UnsupportedOpError(f"{node_label(node)}: no gradient for {op}")
    return [(dy64 * d).astype(dy.dtype)]


def _grad_lower(node, ctx):
    from ..codegen.context import float_literal
    return (f"mt_unary_grad_f32({CODES[node.attr('op')]}, {ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, "
            f"{ctx.out(0)}, {size(ctx.outs[0].shape)}, {float_literal(node.attr('alpha', 0.0))}, "
            f"{float_literal(node.attr('beta', 0.0))});")


register("mt.UnaryGrad", infer=same_as_input, reference=_grad_reference, lower=_grad_lower, inplace=True)


def _vjp(node, gb, dys):
    op = _kernel_name(node)
    if op == "Clip":
        lo, hi = _clip_bounds(node, [gb_value(gb, i) for i in node.inputs])
    else:
        lo, hi = _params(node, [])
    x, y = node.inputs[0], node.outputs[0]
    dx = gb.emit("mt.UnaryGrad", [dys[0], "" if op in USES_Y else x, y if op in USES_Y else ""],
                 {"op": op, "alpha": float(lo), "beta": float(hi)})
    return [dx]


def gb_value(gb, name):
    from .registry import Value
    if not name:
        return Value(None)
    return Value(gb.type(name), gb.graph.constants.get(name))


for _name in CODES:
    if _name != "GeluTanh":
        register(_name, infer=same_as_input, reference=_reference, lower=_lower, macs=_macs, inplace=True,
                 vjp=_vjp)
