"""Assemble the graphs of one training program from a forward graph:

* micro  — forward + loss + backward for one micro-batch; weight updates run
           as soon as each gradient is complete (no accumulation), or the
           gradients are added into accumulators (accumulation)
* apply  — only with accumulation: optimizer update from the accumulators, then
           zero them
* infer  — the forward pass with the current (trained) weights

All three share the state tensors (trainable weights, optimizer state,
accumulators), which live in static RAM; frozen weights stay const."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import MicrotrainError, ShapeError
from ..ir import Graph, Node, TensorType
from ..passes.cleanup import eliminate_dead
from .autodiff import GradBuilder, build_backward

LOSSES = ("cross_entropy", "mse")
OPTIMIZERS = ("sgd", "adam")
STEP_COUNTER = "optimizer.step"


@dataclass
class TrainSpec:
    loss: str = "cross_entropy"
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    batch: int = 1
    micro_batch: int = 1

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise MicrotrainError(f"unknown loss '{self.loss}'; choose one of {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            raise MicrotrainError(f"unknown optimizer '{self.optimizer}'; choose one of {', '.join(OPTIMIZERS)}")
        if self.batch < 1 or self.micro_batch < 1 or self.batch % self.micro_batch:
            raise MicrotrainError(f"batch={self.batch} must be a positive multiple of micro_batch={self.micro_batch}")
        if self.lr <= 0:
            raise MicrotrainError(f"lr={self.lr} must be positive")

    @property
    def accumulate(self) -> bool:
        return self.micro_batch < self.batch


@dataclass
class TrainingProgram:
    micro: Graph
    apply: Optional[Graph]
    infer: Graph
    trainable: list[str]
    spec: TrainSpec
    state_init: dict[str, np.ndarray] = field(default_factory=dict)
    labels: str = "labels"
    lora: Optional[object] = None       # lora.LoraPlan when strategy == "lora"
    model_state: list[str] = field(default_factory=list)   # BatchNorm running statistics (train mode)
    n_forward: int = 0                  # micro.nodes[:n_forward] is the forward pass (+ step counter)

    @property
    def input_names(self) -> list[str]:
        return [i for i in self.micro.inputs if i != self.labels]

    def state_category(self, name: str) -> str:
        if name in self.trainable:
            return "trainable_weights"
        if name.endswith(".grad_acc"):
            return "gradients"
        if name in self.model_state:
            return "norm_statistics"
        return "optimizer_state"


def build_program(forward: Graph, trainable: list[str], spec: TrainSpec,
                  recompute: Sequence[str] = ()) -> TrainingProgram:
    if len(forward.outputs) < 1:
        raise MicrotrainError("the model has no output to train")
    state: dict[str, np.ndarray] = {p: forward.constants[p].copy() for p in trainable}
    # Constants a forward op updates in place (BatchNorm running statistics in
    # train mode) are state too: RAM, saved with the weights, never trained.
    from ..ops.registry import get_op
    for node in forward.nodes:
        for idx in get_op(node).mutates:
            name = node.inputs[idx] if idx < len(node.inputs) else ""
            if name in forward.constants and name not in state:
                state[name] = forward.constants[name].copy()
    mutable = [n for n in state if n not in trainable]

    def state_tensor(name: str, like: np.ndarray) -> str:
        state[name] = np.zeros_like(like)
        return name

    infer = _inference_form(_with_state(forward, trainable + mutable, state))
    micro = _with_state(forward, trainable + mutable, state)
    logits = micro.outputs[0]
    lt = micro.types[logits]
    labels = "labels"
    if spec.loss == "cross_entropy":
        if len(lt.shape) != 2:
            raise ShapeError(f"cross_entropy needs logits of shape [batch, classes]; output '{logits}' "
                             f"has shape {lt.shape} — flatten it in the model or use loss='mse'")
        micro.types[labels] = TensorType((lt.shape[0],), np.int32)
        scale = 1.0 / spec.batch
        loss_op = "mt.SoftmaxCrossEntropy"
    else:
        micro.types[labels] = TensorType(lt.shape, np.float32)
        scale = 1.0 / (spec.batch * int(np.prod(lt.shape[1:], dtype=np.int64)))
        loss_op = "mt.MSELoss"
    micro.inputs = micro.inputs + [labels]
    forward_nodes = list(micro.nodes)
    gb = GradBuilder(micro)
    if spec.optimizer == "adam" and not spec.accumulate:
        state[STEP_COUNTER] = np.zeros(1, np.float32)
        gb.emit("mt.Increment", [STEP_COUNTER])
        micro.nodes.insert(0, micro.nodes.pop())   # count before the first update
    loss, dlogits = gb.emit(loss_op, [logits, labels], {"scale": scale}, n_out=2)
    micro.outputs = [loss]

    def on_grad_ready(param: str, grad: str) -> None:
        if spec.accumulate:
            gb.emit("mt.Accumulate", [state_tensor(f"{param}.grad_acc", state[param]), grad])
        else:
            _emit_update(gb, spec, param, grad, state, state_tensor)

    micro.state = state      # shared dict: tensors created below land in every graph
    build_backward(micro, forward_nodes, {logits: dlogits}, trainable, on_grad_ready)
    if recompute:
        from .recompute import apply_recompute
        micro, _ = apply_recompute(micro, len(forward_nodes) + (1 if micro.nodes[0].op == "mt.Increment" else 0),
                                   recompute)
    micro = eliminate_dead(micro)
    micro.state = state
    # the forward nodes (and Adam's step counter) come first in micro.nodes
    forward_names = {n.name for n in forward_nodes}
    n_forward = next((k for k, n in enumerate(micro.nodes)
                      if n.name not in forward_names and n.op != "mt.Increment"), len(micro.nodes))

    apply = None
    if spec.accumulate:
        apply = Graph("apply", [], [], [], {}, {}, forward.opset, forward.source, state)
        agb = GradBuilder(apply)
        if spec.optimizer == "adam":
            state[STEP_COUNTER] = np.zeros(1, np.float32)
            agb.emit("mt.Increment", [STEP_COUNTER])
        for p in trainable:
            _emit_update(agb, spec, p, f"{p}.grad_acc", state, state_tensor)
            agb.emit("mt.Zero", [f"{p}.grad_acc"])
    infer.state = state
    return TrainingProgram(micro, apply, infer, list(trainable), spec, state, labels, model_state=mutable,
                           n_forward=n_forward)


def _inference_form(g: Graph) -> Graph:
    """Inference reads BatchNorm's running statistics; it never updates them."""
    for i, n in enumerate(g.nodes):
        if n.op == "mt.BatchNormTrain":
            g.nodes[i] = Node("BatchNormalization", n.name, list(n.inputs), list(n.outputs),
                              {"epsilon": n.attr("epsilon", 1e-5)}, n.opset)
    return g


def _with_state(forward: Graph, trainable: list[str], state: dict) -> Graph:
    g = forward.copy()
    for p in trainable:
        g.constants.pop(p, None)
    g.state = state
    return g


def _emit_update(gb: GradBuilder, spec: TrainSpec, param: str, grad: str, state: dict, state_tensor) -> None:
    like = state[param]
    if spec.optimizer == "sgd":
        ins = [param, grad]
        if spec.momentum > 0:
            ins.append(state_tensor(f"{param}.momentum", like))
        gb.emit("mt.SGDUpdate", ins, {"lr": spec.lr, "momentum": spec.momentum,
                                       "weight_decay": spec.weight_decay})
    else:
        m = state_tensor(f"{param}.adam_m", like)
        v = state_tensor(f"{param}.adam_v", like)
        gb.emit("mt.AdamUpdate", [param, grad, m, v, STEP_COUNTER],
                {"lr": spec.lr, "beta1": spec.betas[0], "beta2": spec.betas[1], "eps": spec.eps,
                 "weight_decay": spec.weight_decay})
