"""Memory planner: plans verified, lower bound respected, and the C run on
random DAGs (in-place and aliasing) agrees with the golden model."""
import numpy as np
import pytest
from onnx import helper

from microtrain.compiler import lower_to_graph
from microtrain.planner import ALIGN, Buffer, MemoryPlan, PlanError, check_plan, plan_memory
from onnx_check import check_model, make_model


def random_dag_model(seed: int, n_nodes: int = 12):
    """A random DAG of element-wise ops over tensors of a few sizes."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 8, 5)).astype(np.float32)
    avail = ["x"]
    nodes = []
    for i in range(n_nodes):
        kind = rng.choice(["Relu", "Sigmoid", "Add", "Mul", "Reduce"])
        out = f"t{i}"
        if kind in ("Relu", "Sigmoid"):
            nodes.append(helper.make_node(kind, [rng.choice(avail)], [out]))
        else:
            a, b = rng.choice(avail), rng.choice(avail)
            nodes.append(helper.make_node("Add" if kind == "Reduce" else kind, [a, b], [out]))
        avail.append(out)
    # every tensor nobody reads becomes an output, so nothing is dead
    read = {i for n in nodes for i in n.input}
    outs = [t for t in avail[1:] if t not in read] or [avail[-1]]
    return make_model(nodes, {"x": x}, outs), {"x": x}


@pytest.mark.parametrize("seed", range(8))
def test_random_dag_plan_and_run(seed):
    model, inputs = random_dag_model(seed)
    cm, _ = check_model(model, inputs)
    check_plan(cm.plan)
    assert cm.report.lower_bound_bytes <= cm.report.arena_bytes


def test_chain_reaches_lower_bound_and_runs_in_place():
    x = np.ones((4, 64), np.float32)
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["a"], ["b"]),
             helper.make_node("Tanh", ["b"], ["c"]), helper.make_node("Exp", ["c"], ["y"])]
    g = lower_to_graph(make_model(nodes, {"x": x}, ["y"]))
    plan = plan_memory(g)
    # a, b, c share one buffer (in place); y is the caller's output buffer.
    assert len(plan.buffers) == 1
    assert plan.arena_bytes == plan.lower_bound_bytes == 4 * 64 * 4
    assert plan_memory(g, inplace=False).arena_bytes == 2 * 4 * 64 * 4


def test_residual_block_lower_bound_not_above_arena():
    x = np.ones((1, 16), np.float32)
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["a"], ["b"]),
             helper.make_node("Tanh", ["b"], ["c"]), helper.make_node("Add", ["a", "c"], ["y"])]
    g = lower_to_graph(make_model(nodes, {"x": x}, ["y"]))
    plan = plan_memory(g)
    assert plan.lower_bound_bytes <= plan.arena_bytes <= 1.10 * plan.lower_bound_bytes
    # a must stay alive across b and c: it cannot share their buffer
    off = {t: plan.offset_of(t) for t in ("a", "b", "c")}
    assert off["a"] != off["c"]


def _plan(bufs, arena):
    return MemoryPlan({}, bufs, {}, {}, arena, 0)


def test_checker_rejects_overlap_of_live_buffers():
    a = Buffer(0, 32, 0, 2, 0, ["a"])
    b = Buffer(1, 32, 1, 3, 16, ["b"])
    with pytest.raises(PlanError):
        check_plan(_plan([a, b], 64))


def test_checker_accepts_disjoint_lifetimes_sharing_memory():
    a = Buffer(0, 32, 0, 1, 0, ["a"])
    b = Buffer(1, 32, 2, 3, 0, ["b"])
    check_plan(_plan([a, b], 32))


@pytest.mark.parametrize("bad", [dict(offset=8), dict(offset=48)])
def test_checker_rejects_misaligned_or_outside(bad):
    b = Buffer(0, 32, 0, 1, tensors=["a"], **bad)
    with pytest.raises(PlanError):
        check_plan(_plan([b], 64))
    assert ALIGN == 16
