"""Shape/dtype inference with constant folding, in one forward walk: a node
whose inputs are all constants is evaluated with its numpy reference and
becomes a constant (this is what resolves Shape->Gather->Concat->Reshape
chains from PyTorch exports); every other node gets its outputs' types from
its op's `infer` rule."""
from __future__ import annotations

import warnings

import numpy as np

from ..errors import MicrotrainError, ShapeError, node_label
from ..ir import Graph, TensorType
from ..ops.registry import Value, get_op

# Don't materialize huge folded constants (e.g. a broadcast of a big tensor):
# those stay as run-time nodes when they have a C lowering.
MAX_FOLD_ELEMENTS = 1 << 22


def value_of(g: Graph, name: str) -> Value:
    if not name:
        return Value(None)
    if name in g.constants:
        c = g.constants[name]
        return Value(TensorType(c.shape, c.dtype), c)
    return Value(g.types[name])


def infer_and_fold(graph: Graph, protect: frozenset = frozenset()) -> Graph:
    """`protect`: constants that must stay inputs of run-time nodes (weights a
    training step may update), so nothing computed from them is folded."""
    g = graph.copy()
    kept = []
    for node in g.nodes:
        op = get_op(node)
        for i in node.inputs:
            if i and i not in g.constants and i not in g.types:
                raise ShapeError(f"{node_label(node)}: input '{i}' has no known shape")
        ins = [value_of(g, i) for i in node.inputs]
        if op.types_only and all(v.present for v in ins):
            # Shape/Size only read the static type: stand in a zero-copy placeholder.
            ins = [v if v.const is not None else
                   Value(v.type, np.broadcast_to(np.zeros((), v.dtype), v.shape)) for v in ins]
        if op.foldable and not any(i in protect for i in node.inputs) and \
                all(v.const is not None for v in ins if v.present) and \
                (op.lower is None or _small(ins)):
            outs = _evaluate(node, op, ins)
            for name, arr in zip(node.outputs, outs):
                if name:
                    g.constants[name] = np.require(arr, requirements="C")
                    g.types[name] = TensorType(arr.shape, arr.dtype)
            continue
        try:
            out_types = op.infer(node, ins)
        except MicrotrainError:
            raise
        except Exception as exc:  # a rule tripping on odd input is still the node's fault
            raise ShapeError(f"{node_label(node)}: cannot infer output shape "
                             f"({type(exc).__name__}: {exc})") from None
        for name, t in zip(node.outputs, out_types):
            if name:
                if any(d < 0 for d in t.shape):
                    raise ShapeError(f"{node_label(node)}: inferred negative dimension {t.shape}")
                g.types[name] = t
        kept.append(node)
    g.nodes = kept
    return g


def _small(ins) -> bool:
    return sum(v.const.size for v in ins if v.present) <= MAX_FOLD_ELEMENTS


def _evaluate(node, op, ins):
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return op.reference(node, [v.const if v.present else None for v in ins])
    except MicrotrainError:
        raise
    except Exception as exc:
        raise ShapeError(f"{node_label(node)}: constant folding failed "
                         f"({type(exc).__name__}: {exc})") from None
