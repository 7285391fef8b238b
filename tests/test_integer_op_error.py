"""microtrain.integer_op_error: error of ITA / I-BERT ops vs float on the
activations of a float graph."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx import helper

from onnx_check import make_model
from microtrain.integer_op_error import format_errors, integer_op_errors

warnings.filterwarnings("ignore", category=UserWarning)


def test_hand_computed_softmax_error():
    """Four equal logits: float 1/4; ITA gives 65280 // 1024 = 63 -> 63/255."""
    m = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], {"x": np.zeros((1, 4), np.float32)}, ["y"])
    rows = {r.method: r for r in integer_op_errors(m, {"x": np.full((1, 4), 0.5, np.float32)})}
    assert set(rows) == {"ita", "ibert"}
    assert rows["ita"].max_abs == pytest.approx(0.25 - 63 / 255, abs=1e-12)
    assert rows["ibert"].max_abs <= 1 / 255


def test_softmax_over_a_middle_axis_is_compared_along_that_axis():
    """CCT's sequence pooling: softmax over tokens of (N, tokens, 1)."""
    m = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], {"x": np.zeros((1, 16, 1), np.float32)}, ["y"])
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 16, 1)
    rows = integer_op_errors(m, {"x": x})
    # along the wrong (size-1) axis every output would be 1.0, an error near 0.86
    assert all(r.ref_max_abs > 0.1 and r.max_abs < 0.05 for r in rows), format_errors(rows)


def test_tiny_transformer_report_covers_every_op():
    from microtrain.models import tiny_transformer
    x = np.random.default_rng(0).standard_normal(tiny_transformer.input_shape()).astype(np.float32)
    rows = integer_op_errors(tiny_transformer.export(), {"input": x})
    kinds = {(r.op, r.method) for r in rows}
    assert kinds == {("Softmax", "ita"), ("Softmax", "ibert"), ("Gelu", "ibert"), ("LayerNormalization", "ibert")}
    for r in rows:
        lsb = r.ref_max_abs / 127            # the int8 output step of GELU / LayerNorm
        bound = {"Softmax": 0.05, "Gelu": 2 * lsb, "LayerNormalization": 2 * lsb}[r.op]
        assert 0 < r.max_abs < bound, format_errors(rows)
        assert r.mean_abs <= r.max_abs
