"""compile_training and CompiledTrainer: the training step as generated C,
driven from Python (host now; the same runner protocol works on emulated MCUs)."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import BuildError, InputError, MicrotrainError
from ..frontend import ModelLike, onnx_to_ir
from ..golden import interpret
from ..ir import Graph
from ..passes.cleanup import eliminate_dead, remove_identity
from ..passes.fuse_gelu import fuse_gelu
from ..passes.fuse_groupnorm import fuse_groupnorm
from ..passes.fuse_pad_conv import fuse_pad_into_conv
from ..passes.infer import infer_and_fold
from .codegen import generate_training, plan_program, write_training_project
from .memory import TrainingReport, training_report
from .norms import rewrite_batchnorm
from .program import TrainSpec, build_program
from .rebatch import rebatch
from .strategies import select_trainable

TRAINING_PIPELINE = [infer_and_fold, remove_identity, eliminate_dead, fuse_gelu, fuse_groupnorm,
                     fuse_pad_into_conv, eliminate_dead, infer_and_fold]


def training_forward_graph(model: ModelLike, micro_batch: int, batchnorm: str = "frozen",
                           batchnorm_groups: int = 1, protect: frozenset = frozenset()) -> Graph:
    """The forward graph at the micro-batch size. BatchNorm is never folded
    into trainable weights; `batchnorm` chooses what it becomes (norms.py).
    Nothing computed from a `protect`ed initializer is folded (it will train)."""
    graph = rebatch(onnx_to_ir_unresolved(model), micro_batch)
    for p in TRAINING_PIPELINE:
        graph = p(graph, protect) if p is infer_and_fold else p(graph)
    return infer_and_fold(rewrite_batchnorm(graph, batchnorm, batchnorm_groups), protect)


def _float_initializers(proto) -> frozenset:
    from onnx import helper
    return frozenset(i.name for i in proto.graph.initializer
                     if helper.tensor_dtype_to_np_dtype(i.data_type) == np.float32 and
                     int(np.prod(i.dims, dtype=np.int64)) > 1)


def onnx_to_ir_unresolved(model: ModelLike) -> Graph:
    """Like onnx_to_ir, but a dynamic batch axis is allowed (rebatch fixes it)."""
    from ..frontend import load_model
    proto, _ = load_model(model)
    shapes = {}
    for vi in proto.graph.input:
        if vi.name in {i.name for i in proto.graph.initializer}:
            continue
        dims = vi.type.tensor_type.shape.dim
        if dims and not (dims[0].HasField("dim_value") and dims[0].dim_value > 0):
            rest = [d.dim_value for d in dims[1:]]
            if all(r > 0 for r in rest):
                shapes[vi.name] = (1, *rest)
    return onnx_to_ir(proto, shapes or None)


class CompiledTrainer:
    def __init__(self, program, plans, project: Path, keep=None, source_proto=None, batchnorm="frozen",
                 target: str = "host"):
        self.program = program
        self.target = target
        self._firmware = None
        self.batchnorm = batchnorm
        self.source_proto = source_proto
        self.plans = plans
        self.project_dir = Path(project)
        self.report: TrainingReport = training_report(program, plans)
        self._state = {k: v.copy() for k, v in program.state_init.items()}
        self._exe: Optional[Path] = None
        self._keep = keep

    # -- public API ---------------------------------------------------------
    @property
    def batch(self) -> int:
        return self.program.spec.batch

    def reset(self) -> None:
        """Back to the compiled initial state: the model's weights, zero optimizer
        moments and step count (to retrain from the deployed model without recompiling)."""
        self._state = {k: v.copy() for k, v in self.program.state_init.items()}

    def step(self, x, y) -> float:
        """One optimizer step on a batch (`x`: array or dict of arrays with
        `batch` samples; `y`: int class labels or float targets). Returns the loss."""
        return self._run_steps([(x, y)])[0]

    def fit(self, X, Y, epochs: int = 1, shuffle: bool = True, seed: int = 0, progress: bool = False) -> dict:
        xs = self._as_inputs(X, allow_any_batch=True)
        n = len(Y)
        if n < self.batch:
            raise InputError(f"fit needs at least batch={self.batch} samples, got {n}")
        rng = np.random.default_rng(seed)
        history = {"loss": [], "step_loss": []}
        epoch_iter = range(epochs)
        if progress:
            from tqdm import tqdm
            epoch_iter = tqdm(epoch_iter, desc="epochs", unit="epoch")
        for _ in epoch_iter:
            order = rng.permutation(n) if shuffle else np.arange(n)
            batches = []
            for s in range(0, n - self.batch + 1, self.batch):   # incomplete last batch dropped
                idx = order[s:s + self.batch]
                batches.append(({k: v[idx] for k, v in xs.items()}, np.asarray(Y)[idx]))
            losses = self._run_steps(batches)
            history["step_loss"].extend(losses)
            history["loss"].append(float(np.mean(losses)))
        return history

    def predict(self, X) -> np.ndarray:
        xs = self._as_inputs(X, allow_any_batch=True)
        n = len(next(iter(xs.values())))
        b = self.program.spec.micro_batch
        chunks, cmds = [], bytearray()
        pad = (-n) % b
        for s in range(0, n + pad, b):
            cmds += np.int32(2).tobytes()
            for name in self.program.input_names:
                arr = xs[name][s:s + b]
                if len(arr) < b:
                    arr = np.concatenate([arr, np.repeat(arr[-1:], b - len(arr), axis=0)])
                cmds += np.ascontiguousarray(arr, self.program.micro.types[name].dtype).tobytes()
        raw = self._exec(cmds)
        out_t = self.program.infer.type_of(self.program.infer.outputs[0])
        per = out_t.nbytes
        for k in range(len(raw) // per):
            chunks.append(np.frombuffer(raw, out_t.dtype, out_t.size, k * per).reshape(out_t.shape))
        return np.concatenate(chunks)[:n] if chunks else np.zeros((0,) + out_t.shape[1:], out_t.dtype)

    def evaluate(self, X, Y) -> dict:
        logits = self.predict(X).astype(np.float64)
        Y = np.asarray(Y)
        if self.program.spec.loss == "cross_entropy":
            z = logits - logits.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            loss = float(-logp[np.arange(len(Y)), Y.astype(np.int64)].mean())
            return {"loss": loss, "accuracy": float((logits.argmax(axis=1) == Y).mean())}
        return {"loss": float(((logits - Y.reshape(logits.shape)) ** 2).mean())}

    def parameters(self) -> dict[str, np.ndarray]:
        """Current trainable weights by ONNX initializer name."""
        return {p: self._state[p].copy() for p in self.program.trainable}

    def export_onnx(self, path=None):
        """The inference model (original ONNX structure) with the trained weights."""
        from .export import export_trained
        return export_trained(self, path)

    # -- golden model ---------------------------------------------------------
    def reference_step(self, x, y, state: Optional[dict] = None) -> tuple[float, dict]:
        """The numpy golden model of one step; returns (loss, new state)."""
        state = {k: v.copy() for k, v in (state or self.program.state_init).items()}
        xs = self._as_inputs(x)
        y = np.asarray(y)
        spec = self.program.spec
        b = spec.micro_batch
        total = 0.0
        for m in range(spec.batch // b):
            feeds = {k: v[m * b:(m + 1) * b] for k, v in xs.items()}
            feeds[self.program.labels] = y[m * b:(m + 1) * b].astype(self.program.micro.types[self.program.labels].dtype)
            out = interpret(self.program.micro, feeds, state=state)
            total += float(out[self.program.micro.outputs[0]][0])
        if self.program.apply is not None:
            interpret(self.program.apply, {}, state=state)
        return total, state

    # -- machinery ------------------------------------------------------------
    def _as_inputs(self, x, allow_any_batch=False) -> dict[str, np.ndarray]:
        names = self.program.input_names
        xs = dict(x) if isinstance(x, dict) else {names[0]: x}
        if set(xs) != set(names):
            raise InputError(f"inputs {sorted(xs)} do not match the model's inputs {names}")
        out = {}
        for n in names:
            t = self.program.micro.types[n]
            arr = np.asarray(xs[n])
            if arr.shape[1:] != t.shape[1:] or (not allow_any_batch and arr.shape[0] != self.batch):
                want = (self.batch,) + t.shape[1:]
                raise InputError(f"input '{n}' has shape {arr.shape}; expected {want if not allow_any_batch else ('N',) + t.shape[1:]}")
            out[n] = np.ascontiguousarray(arr, dtype=t.dtype)
        return out

    def _run_steps(self, batches: Sequence) -> list[float]:
        cmds = bytearray()
        lt = self.program.micro.types[self.program.labels]
        for x, y in batches:
            xs = self._as_inputs(x)
            y = np.asarray(y)
            if y.shape[0] != self.batch or y.shape[1:] != lt.shape[1:]:
                raise InputError(f"labels have shape {y.shape}; expected ({self.batch},) + {lt.shape[1:]}")
            if lt.dtype == np.int32:
                n_classes = self.program.infer.type_of(self.program.infer.outputs[0]).shape[1]
                if np.any(y < 0) or np.any(y >= n_classes) or not np.all(np.equal(np.mod(y, 1), 0)):
                    raise InputError(f"labels must be integer class indices in [0, {n_classes})")
            cmds += np.int32(1).tobytes()
            for n in self.program.input_names:
                cmds += xs[n].tobytes()
            cmds += np.ascontiguousarray(y, dtype=lt.dtype).tobytes()
        cmds += np.int32(3).tobytes()
        raw = self._exec(cmds)
        n = len(batches)
        losses = np.frombuffer(raw, np.float32, n).astype(float).tolist()
        self._load_state(raw[4 * n:])
        return losses

    def _load_state(self, raw: bytes) -> None:
        pos = 0
        for name in self._state_order():
            arr = self._state[name]
            self._state[name] = np.frombuffer(raw, arr.dtype, arr.size, pos).reshape(arr.shape).copy()
            pos += arr.nbytes

    def _state_order(self) -> list[str]:
        return list(self.program.state_init)

    @property
    def footprint(self):
        """Flash/RAM of the training firmware (targets.Footprint); None on the host."""
        return None if self.target == "host" else self._build().footprint

    def profile(self, x, y):
        """Exact executed-instruction count (not cycles) of one optimizer step on
        (`x`, `y`) under QEMU, with per-node rows (a node's micro-batches summed).
        Does not change the trainer's state. Emulated targets only."""
        if self.target == "host":
            raise MicrotrainError("profile() counts instructions under QEMU; compile with an MCU target, "
                                  "e.g. target='cortex-m4'")
        from .firmware import profile_step
        xs = self._as_inputs(x)
        cmds = np.int32(1).tobytes() + b"".join(xs[n].tobytes() for n in self.program.input_names)
        lt = self.program.micro.types[self.program.labels]
        cmds += np.ascontiguousarray(np.asarray(y), dtype=lt.dtype).tobytes()
        got = self._build().run(self._state_bytes(), cmds, count=True)
        return profile_step(self.program, self.target, got.total_instructions, got.marks)

    def _state_bytes(self) -> bytes:
        return b"".join(self._state[name].tobytes() for name in self._state_order())

    def _exec(self, cmds: bytes) -> bytes:
        if self.target != "host":
            return self._build().run(self._state_bytes(), bytes(cmds)).files["out.bin"]
        exe = self._build()
        with tempfile.TemporaryDirectory(prefix="mt-train-") as tmp:
            fs, fc, fo = (os.path.join(tmp, n) for n in ("state.bin", "cmds.bin", "out.bin"))
            with open(fs, "wb") as f:
                for name in self._state_order():
                    f.write(self._state[name].tobytes())
            Path(fc).write_bytes(bytes(cmds))
            from ..build import run_exe
            run_exe([str(exe), fs, fc, fo], f"running {exe}", timeout=1800)
            return Path(fo).read_bytes()

    def _build(self):
        """The host runner executable, or the TrainingFirmware for an MCU target."""
        if self.target != "host":
            if self._firmware is None:
                from .firmware import TrainingFirmware
                self._firmware = TrainingFirmware.build(self.program, self.plans, self.project_dir, self.target)
            return self._firmware
        if self._exe is None:
            from ..build import HOST_CC, HOST_CFLAGS, RUNTIME_DIR, runtime_library
            lib = runtime_library()
            exe = self.project_dir / "trainer"
            cmd = [HOST_CC, *HOST_CFLAGS, "-I", str(RUNTIME_DIR), "-I", str(self.project_dir),
                   *(str(self.project_dir / f) for f in ("train.c", "train_weights.c", "train_main.c")),
                   str(lib), "-lm", "-o", str(exe)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                first = next((l for l in proc.stderr.splitlines() if "error" in l), proc.stderr[:300])
                raise BuildError(f"building the training step failed: {first}")
            self._exe = exe
        return self._exe


def compile_training(model: ModelLike, *, strategy: str = "full", loss: str = "cross_entropy",
                     optimizer: str = "sgd", lr: float = 0.01, momentum: float = 0.0,
                     weight_decay: float = 0.0, batch: int = 1, micro_batch: Optional[int] = None,
                     layers=None, lora_rank: int = 4, lora_alpha: float = 8.0, target: str = "host",
                     out_dir=None, lora_targets=None, params: Optional[Sequence[str]] = None,
                     batchnorm: str = "frozen", batchnorm_groups: int = 1,
                     recompute: Optional[Sequence[str]] = None) -> CompiledTrainer:
    """Compile a training step for `model` (ONNX path or ModelProto). See
    docs/training.md for strategies, memory planning and the C interface.
    `params` names float initializers to train explicitly (overrides `strategy`).
    `batchnorm`: "frozen" | "train" | "group" | "layer" (training/norms.py).
    `recompute`: op types or node-name globs whose outputs are recomputed for
    the backward instead of kept (training/recompute.py)."""
    hardware_fma = True                  # the host's libm fmaf
    if target != "host":
        from .firmware import training_target
        hardware_fma = training_target(target).hardware_fma   # an unknown name fails here
    spec = TrainSpec(loss=loss, optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay,
                     batch=batch, micro_batch=micro_batch or batch)
    from ..frontend import load_model
    proto, _ = load_model(model)
    lora_plan = None
    if strategy == "lora" and params is None:
        forward = training_forward_graph(proto, spec.micro_batch, batchnorm, batchnorm_groups)
        from .lora import add_lora
        forward, trainable, lora_plan = add_lora(forward, rank=lora_rank, alpha=lora_alpha, targets=lora_targets)
    else:
        # Choose on a graph where no weight is folded into another constant, so
        # the choice names the model's own initializers; then fold what stays frozen.
        unfolded = training_forward_graph(proto, spec.micro_batch, batchnorm, batchnorm_groups,
                                          protect=_float_initializers(proto))
        trainable = (_explicit_params(unfolded, params) if params is not None
                     else select_trainable(unfolded, strategy, layers))
        forward = training_forward_graph(proto, spec.micro_batch, batchnorm, batchnorm_groups,
                                         protect=frozenset(trainable))
    if isinstance(recompute, str):
        recompute = [r.strip() for r in recompute.split(",") if r.strip()]
    program = build_program(forward, trainable, spec, recompute or ())
    program.lora = lora_plan
    plans = plan_program(program)
    files = generate_training(program, plans, fma=hardware_fma)
    keep = None
    if out_dir is None:
        keep = tempfile.TemporaryDirectory(prefix="microtrain-train-")
        out_dir = keep.name
    project = write_training_project(files, Path(out_dir))
    trainer = CompiledTrainer(program, plans, project, keep, proto, batchnorm, target)
    if target != "host":
        trainer._build()                 # build errors surface here, like the host compile
    return trainer


def _explicit_params(forward: Graph, params: Sequence[str]) -> list[str]:
    bad = [p for p in params if p not in forward.constants or forward.constants[p].dtype != np.float32]
    if bad:
        raise MicrotrainError(f"params {bad} are not float initializers of the model")
    return list(dict.fromkeys(params))
