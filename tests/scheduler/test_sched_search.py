"""Search engines: exhaustive vs brute force, the auto switch, annealing."""
import itertools

import numpy as np
import pytest

from microtrain.scheduler.annealing import AnnealingSchedule, anneal
from microtrain.scheduler.api import schedule_layer, select_engine
from microtrain.scheduler.exhaustive import exhaustive, multiset_permutations
from microtrain.scheduler.hardware import load_hardware
from microtrain.scheduler.layer import conv_layer, matmul_layer
from microtrain.scheduler.problem import build_problem, space_size
from microtrain.scheduler.score import score

TINY = [
    (conv_layer("t1", k=16, c=12, oy=2, ox=4, fy=3, fx=3), "eyeriss_like"),  # temporal K2 OY2 OX2 OX2 FY3 FX3
    (matmul_layer("t2", m=12, n=24, k=16), "gap9_like"),
    (conv_layer("t3", k=16, c=16, oy=6, ox=4, fy=1, fx=1), "edge_tpu_like"),
]


@pytest.mark.parametrize("items", [[0, 0, 1], [0, 1, 1, 2, 2], [3, 1, 2, 0], [1, 1, 1]])
def test_multiset_permutations_are_all_distinct_orderings(items):
    got = [tuple(r) for X in multiset_permutations(np.array(items), batch=3) for r in X]
    want = set(itertools.permutations(items))
    assert len(got) == len(set(got)) == len(want) == space_size(np.bincount(items))
    assert set(got) == want


@pytest.mark.parametrize("layer,hw_name", TINY, ids=lambda v: getattr(v, "name", v))
@pytest.mark.parametrize("objective", ["energy", "latency", "edp"])
def test_exhaustive_equals_brute_force(layer, hw_name, objective):
    pb = build_problem(layer, load_hardware(hw_name))
    assert space_size(pb.type_count) <= 5000
    perms = np.array(sorted(set(itertools.permutations(pb.canonical().tolist()))))
    brute = score(pb, perms, objective).objective  # itertools enumeration, independent of ours
    res = exhaustive(pb, objective, batch=97)
    assert res.evaluated == len(perms)
    assert res.objective == pytest.approx(min(brute), rel=1e-12)


@pytest.mark.parametrize("layer,hw_name", TINY, ids=lambda v: getattr(v, "name", v))
def test_auto_picks_exhaustive_below_threshold_and_matches_it(layer, hw_name):
    hw = load_hardware(hw_name)
    pb = build_problem(layer, hw)
    size = space_size(pb.type_count)
    assert select_engine(pb, "auto", limit=size) == "exhaustive"
    assert select_engine(pb, "auto", limit=size - 1) == "annealing"
    auto = schedule_layer(layer, hw, engine="auto", exhaustive_limit=size)
    assert auto.engine == "exhaustive"
    assert auto.energy == pytest.approx(exhaustive(pb).objective, rel=1e-12)


@pytest.mark.parametrize("layer,hw_name", TINY, ids=lambda v: getattr(v, "name", v))
def test_annealing_finds_the_exhaustive_optimum_on_small_spaces(layer, hw_name):
    pb = build_problem(layer, load_hardware(hw_name))
    best = exhaustive(pb).objective
    got = anneal(pb, seed=3, schedule=AnnealingSchedule(chains=16, iterations=60)).objective
    assert got == pytest.approx(best, rel=1e-9)


def test_annealing_is_reproducible_by_seed():
    layer = conv_layer("big", k=64, c=64, oy=28, ox=28, fy=3, fx=3)
    pb = build_problem(layer, load_hardware("eyeriss_like"))
    sched = AnnealingSchedule(chains=8, iterations=40, polish_rounds=2)
    a = anneal(pb, seed=11, schedule=sched)
    b = anneal(pb, seed=11, schedule=sched)
    assert np.array_equal(a.ordering, b.ordering) and a.objective == b.objective


def test_annealing_beats_random_sampling_of_same_budget():
    layer = conv_layer("big", k=64, c=64, oy=28, ox=28, fy=3, fx=3)
    pb = build_problem(layer, load_hardware("eyeriss_like"))
    res = anneal(pb, seed=0, schedule=AnnealingSchedule(chains=16, iterations=60))
    rng = np.random.default_rng(0)
    X = rng.permuted(np.tile(pb.canonical(), (res.evaluated, 1)), axis=1)
    assert res.objective < np.min(score(pb, X).objective)
