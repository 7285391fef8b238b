"""from_torch: names, fixed shapes, eval mode, file output, errors; the
exported model agrees with PyTorch (onnxruntime) and compiles to C."""
import sys

import numpy as np
import onnx
import pytest

import microtrain
from microtrain import MicrotrainError
from onnx_check import assert_close, ort_run

torch = pytest.importorskip("torch")


class TwoInTwoOut(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, a, b):
        h = self.fc(a) + b
        return torch.relu(h), torch.sigmoid(h)


class WithDefaults(torch.nn.Module):
    """A forward() with a defaulted bool, which the TorchScript exporter would
    otherwise trace as a tensor input."""
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(5, 3)

    def forward(self, x, flip: bool = False):
        y = self.fc(x)
        return -y if flip else y


def _shape(vi):
    return tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)


def test_single_input_output_names_and_static_shapes():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten())
    proto = microtrain.from_torch(m, torch.randn(2, 1, 8, 8))
    assert isinstance(proto, onnx.ModelProto)
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["output"]
    assert _shape(proto.graph.input[0]) == (2, 1, 8, 8)       # no dynamic axes
    assert proto.opset_import[0].version == 17
    assert {t.name for t in proto.graph.initializer} == {"0.weight", "0.bias"}
    assert not any("wrapped" in n.name or "wrapped" in o for n in proto.graph.node for o in n.output)


def test_multiple_inputs_outputs_default_and_custom_names():
    m = TwoInTwoOut()
    args = (torch.randn(3, 6), torch.randn(3, 4))
    proto = microtrain.from_torch(m, args)
    assert [i.name for i in proto.graph.input] == ["input_0", "input_1"]
    assert [o.name for o in proto.graph.output] == ["output_0", "output_1"]
    proto = microtrain.from_torch(m, list(args), input_names=["a", "b"], output_names=["r", "s"])
    assert [i.name for i in proto.graph.input] == ["a", "b"]
    assert [o.name for o in proto.graph.output] == ["r", "s"]


def test_exported_model_matches_torch_and_compiles():
    torch.manual_seed(1)
    m = TwoInTwoOut()
    a, b = torch.randn(3, 6), torch.randn(3, 4)
    proto = microtrain.from_torch(m, (a, b))
    with torch.no_grad():
        want = [t.numpy() for t in m(a, b)]
    feeds = {"input_0": a.numpy(), "input_1": b.numpy()}
    ort = ort_run(proto, feeds)
    got = microtrain.compile(proto).run(feeds)
    for k, name in enumerate(["output_0", "output_1"]):
        assert_close(ort[name], want[k], what=f"onnxruntime vs torch, {name}")
        assert_close(got[name], ort[name], what=f"C vs onnxruntime, {name}")


def test_eval_mode_used_and_training_mode_restored():
    torch.manual_seed(2)
    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(4))
    m.train()
    x = torch.randn(8, 4)
    proto = microtrain.from_torch(m, x)
    assert m.training
    m.eval()
    with torch.no_grad():
        want = m(x).numpy()
    assert_close(ort_run(proto, {"input": x.numpy()})["output"], want, what="eval-mode export")


def test_defaulted_forward_arguments_are_not_traced_as_inputs():
    proto = microtrain.from_torch(WithDefaults(), torch.randn(2, 5))
    assert [i.name for i in proto.graph.input] == ["input"]


def test_writes_path(tmp_path):
    path = tmp_path / "m.onnx"
    proto = microtrain.from_torch(torch.nn.Linear(3, 2), torch.randn(1, 3), path)
    assert onnx.load(str(path)) == proto
    onnx.checker.check_model(str(path))


def test_opset_is_configurable():
    proto = microtrain.from_torch(torch.nn.Linear(3, 2), torch.randn(1, 3), opset=18)
    assert proto.opset_import[0].version == 18


@pytest.mark.parametrize("bad_args, match", [
    (lambda: (torch.nn.Linear(3, 2), [1.0, 2.0]), "example_inputs"),
    (lambda: (lambda x: x, torch.randn(1, 3)), "torch.nn.Module"),
])
def test_bad_arguments_raise_microtrain_error(bad_args, match):
    with pytest.raises(MicrotrainError, match=match):
        microtrain.from_torch(*bad_args())


def test_name_count_mismatch_raises():
    with pytest.raises(MicrotrainError, match="input_names"):
        microtrain.from_torch(torch.nn.Linear(3, 2), torch.randn(1, 3), input_names=["a", "b"])
    with pytest.raises(MicrotrainError, match="output_names"):
        microtrain.from_torch(torch.nn.Linear(3, 2), torch.randn(1, 3), output_names=["a", "b"])


def test_unexportable_module_raises_microtrain_error():
    class DataDependent(torch.nn.Module):
        def forward(self, x):
            return torch.nonzero(x).float().sum() * torch.linalg.eigvals(x).real.sum()
    with pytest.raises(MicrotrainError, match="could not export DataDependent"):
        microtrain.from_torch(DataDependent(), torch.randn(3, 3))


def test_missing_torch_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)     # makes `import torch` raise ImportError
    with pytest.raises(MicrotrainError, match=r"pip install torch==2\.13\.0"):
        microtrain.from_torch(object(), np.zeros(1))


def test_shape_arithmetic_is_folded_to_constants():
    """nn.MultiheadAttention traces Shape->Gather->Mod->Concat chains; with
    fixed shapes they become constants (and the result still matches torch)."""
    torch.manual_seed(3)
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
    x = torch.randn(1, 5, 16)
    proto = microtrain.from_torch(layer, x)
    ops = {n.op_type for n in proto.graph.node}
    assert not ops & {"Shape", "Constant", "Mod", "Cast", "Concat"}, ops
    onnx.checker.check_model(proto)
    with torch.no_grad():
        want = layer.eval()(x).numpy()
    assert_close(ort_run(proto, {"input": x.numpy()})["output"], want, 1e-4, 1e-4, "folded export vs torch")
