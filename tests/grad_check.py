"""Gradient-rule checks against PyTorch autograd, through the whole training
pipeline: the tensors under test are made trainable parameters, one plain SGD
step runs in the generated C (and in the golden model), and the parameter
change divided by the learning rate is the gradient. A large learning rate
keeps the fp32 subtraction exact enough (the change dwarfs the parameter)."""
from __future__ import annotations

import numpy as np

import microtrain
from onnx_check import make_model

LR = 1.0e3


def check_grads(nodes, inputs: dict, params: dict, torch_fn, consts: dict | None = None, opset: int = 17,
                rtol: float = 1e-4, atol: float = 1e-5, output: str = "y"):
    """inputs: run-time inputs (batch first); params: trainable initializers;
    torch_fn(**tensors) -> y, called with torch tensors for inputs and params."""
    import torch
    rng = np.random.default_rng(7)
    model = make_model(nodes, inputs, [output], {**params, **(consts or {})}, opset=opset)
    batch = next(iter(inputs.values())).shape[0]
    trainer = microtrain.compile_training(model, params=list(params), loss="mse",
                                          optimizer="sgd", lr=LR, batch=batch)
    assert sorted(trainer.program.trainable) == sorted(params), trainer.program.trainable
    y_shape = trainer.program.infer.type_of(trainer.program.infer.outputs[0]).shape
    target = rng.standard_normal(y_shape).astype(np.float32)
    x = inputs if len(inputs) > 1 else next(iter(inputs.values()))

    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    ti = {k: torch.tensor(v if v.dtype != np.float32 else v.astype(np.float64)) for k, v in inputs.items()}
    tc = {k: torch.tensor(v if v.dtype != np.float32 else v.astype(np.float64)) for k, v in (consts or {}).items()}
    y = torch_fn(**ti, **tp, **tc)
    loss = ((y - torch.tensor(target, dtype=torch.float64)) ** 2).mean()
    loss.backward()

    c_loss = trainer.step(x, target)
    ref_loss, ref_state = trainer.reference_step(x, target)
    got = trainer.parameters()
    np.testing.assert_allclose(c_loss, loss.item(), rtol=1e-4, atol=1e-6, err_msg="C loss vs torch")
    np.testing.assert_allclose(ref_loss, loss.item(), rtol=1e-4, atol=1e-6, err_msg="golden loss vs torch")
    for k, v in params.items():
        want = tp[k].grad.numpy()
        scale = max(1.0, float(np.abs(want).max()))
        for name, new in (("C", got[k]), ("golden", ref_state[k])):
            grad = (v.astype(np.float64) - new.astype(np.float64)) / LR
            np.testing.assert_allclose(grad, want, rtol=rtol, atol=atol * scale,
                                       err_msg=f"{name} gradient of {k} vs torch autograd")
    return trainer
