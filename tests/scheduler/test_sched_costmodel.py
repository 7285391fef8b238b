"""The cost model against an independent brute-force walk of the loop nest."""
import itertools

import numpy as np
import pytest

from microtrain.scheduler.costmodel import evaluate, prefix_tables
from microtrain.scheduler.hardware import Hardware, MemoryLevel
from microtrain.scheduler.layer import conv_layer, distinct_sums, matmul_layer
from microtrain.scheduler.problem import build_problem


@pytest.mark.parametrize("sa,a,sb,b", [(1, 3, 1, 3), (2, 3, 1, 3), (2, 1, 1, 3), (2, 4, 1, 1), (3, 2, 2, 5), (1, 5, 2, 2), (2, 2, 2, 3)])
def test_distinct_sums_matches_enumeration(sa, a, sb, b):
    brute = len({sa * i + sb * j for i in range(a) for j in range(b)})
    assert distinct_sums(sa, a, sb, b) == brute


def _hw(bits_per_word: int = 8) -> Hardware:
    # one word = one element, so word accesses equal element moves
    def mem(name, ops, size=1 << 30):
        return MemoryLevel(name=name, size_bits=size, read_energy=1.0, write_energy=1.0,
                           read_bw=bits_per_word, write_bw=bits_per_word, operands=ops)
    return Hardware(name="t", array={"D1": 1}, unroll={}, mac_energy=0.0,
                    memories=(mem("r_i", ("I",)), mem("r_w", ("W",)), mem("r_o", ("O",)),
                              mem("buf", ("I", "W", "O")), mem("top", ("I", "W", "O"))))


def _coords(layer, op, idx):
    """Element of `op` touched at loop indices `idx` (dim -> index)."""
    g = lambda d: idx.get(d, 0)  # noqa: E731
    if op == "W":
        return (g("G"), g("K"), g("C"), g("FY"), g("FX"))
    if op == "O":
        return (g("B"), g("G"), g("K"), g("OY"), g("OX"))
    if not layer.partial.get("I"):
        return (g("B"), g("C"))
    t = {p.name: p for p in layer.partial["I"]}
    iy = t["IY"].coef_a * g("OY") + t["IY"].coef_b * g("FY")
    ix = t["IX"].coef_a * g("OX") + t["IX"].coef_b * g("FX")
    return (g("B"), g("G"), g("C"), iy, ix)


def _dim_indices(order, pos_idx):
    """Loop positions (innermost first) -> per-dim index (mixed radix)."""
    out, stride = {}, {}
    for p, (d, s) in enumerate(order):
        out[d] = out.get(d, 0) + pos_idx[p] * stride.get(d, 1)
        stride[d] = stride.get(d, 1) * s
    return out


def _simulate(layer, order, cut, op):
    """Refills of a tile holding loops [0, cut): times the indices of the
    operand-relevant loops above the cut change while walking the nest."""
    sizes = [s for _, s in order]
    changes, prev = 0, None
    for rev in itertools.product(*[range(s) for s in reversed(sizes)]):
        idx = rev[::-1]
        key = tuple(idx[p] for p in range(cut, len(order)) if layer.is_relevant(op, order[p][0]))
        if key != prev:
            changes, prev = changes + 1, key
    inner = [range(s) for _, s in order[:cut]]
    tile = {_coords(layer, op, _dim_indices(order[:cut], i[::-1])) for i in itertools.product(*reversed(inner))}
    return changes, len(tile)


LAYERS = [
    conv_layer("s1", k=2, c=2, oy=3, ox=2, fy=2, fx=2),
    conv_layer("s2", k=2, c=3, oy=2, ox=2, fy=3, fx=1, stride=2),
    matmul_layer("mm", m=4, n=3, k=2),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: l.name)
@pytest.mark.parametrize("seed", range(4))
def test_fills_match_loop_nest_walk(layer, seed):
    pb = build_problem(layer, _hw())
    rng = np.random.default_rng(seed)
    x = rng.permutation(pb.canonical())
    order = pb.loops(x)
    L = len(order)
    cuts = {}
    for op in ("I", "W", "O"):
        a, b = sorted(rng.integers(0, L + 1, 2))
        cuts[op] = [np.array([a]), np.array([b]), np.array([L])]
    pre = prefix_tables(pb, x[None])
    costs = evaluate(pb, pre, cuts)
    for op in ("I", "W"):
        for lvl in (0, 1):
            refills, tile = _simulate(layer, order, int(cuts[op][lvl][0]), op)
            assert costs.fills[(op, lvl)][0] == refills * tile, (op, lvl, order)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: l.name)
def test_weight_reads_at_mac_level_skip_stationary_loops(layer):
    """Reads from the innermost weight memory = times the weight index changes."""
    pb = build_problem(layer, _hw())
    x = pb.canonical()
    for perm in [x, x[::-1].copy(), np.random.default_rng(7).permutation(x)]:
        order = pb.loops(perm)
        L = len(order)
        cuts = {op: [np.array([L // 2]), np.array([L]), np.array([L])] for op in ("I", "W", "O")}
        costs = evaluate(pb, prefix_tables(pb, perm[None]), cuts)
        changes, _ = _simulate(layer, order, 0, "W")
        w_rf = [m.name for m in pb.hw.memories].index("r_w")
        assert costs.reads[w_rf][0] == changes


def test_reduction_right_above_register_stays_in_register():
    layer = matmul_layer("mm", m=2, n=2, k=4)
    pb = build_problem(layer, _hw())
    x = pb.ordering_from_loops([("C", 2), ("K", 2), ("C", 2), ("B", 2)])
    cuts = {op: [np.array([2]), np.array([4]), np.array([4])] for op in ("I", "W", "O")}
    costs = evaluate(pb, prefix_tables(pb, x[None]), cuts)
    assert costs.fills[("O", 0)][0] == 0  # no partial sum ever leaves the register


def test_output_spill_traffic_counts_partial_sums_both_ways():
    """A reduction loop above the output register: every refill writes the tile up and reads it back."""
    layer = matmul_layer("mm", m=2, n=2, k=4)
    pb = build_problem(layer, _hw())
    # register holds K; the C loop right above is stationary (no spill), the outer C is not
    order = [("K", 2), ("C", 2), ("B", 2), ("C", 2)]
    x = pb.ordering_from_loops(order)
    cuts = {op: [np.array([1]), np.array([4]), np.array([4])] for op in ("I", "W", "O")}
    costs = evaluate(pb, prefix_tables(pb, x[None]), cuts)
    refills, tile = _simulate(layer, order, 1, "O")
    assert (refills, tile) == (4, 2)
    # fills: psums read back from the level above
    assert costs.fills[("O", 0)][0] == refills * tile
    r_o = [m.name for m in pb.hw.memories].index("r_o")
    # register: MAC writes every cycle + reads back (psum), + spill reads up; 16-bit psums = 2 words
    cycles = 16
    assert costs.writes[r_o][0] == 2 * cycles + 2 * refills * tile
    assert costs.reads[r_o][0] == 2 * cycles + 2 * refills * tile


def test_energy_is_access_weighted_sum_and_word_rounding():
    layer = conv_layer("s1", k=2, c=2, oy=2, ox=2, fy=1, fx=1)
    wide = _hw(bits_per_word=64)
    pb = build_problem(layer, wide)
    x = pb.canonical()[None]
    L = pb.n_loops
    cuts = {op: [np.array([1]), np.array([L]), np.array([L])] for op in ("I", "W", "O")}
    c = evaluate(pb, prefix_tables(pb, x), cuts)
    total = sum(r[0] * m.read_energy + w[0] * m.write_energy for r, w, m in zip(c.reads, c.writes, wide.memories))
    assert c.energy[0] == pytest.approx(total + wide.mac_energy * layer.macs)
    # a 64-bit port moves a 1-element 8-bit tile in one whole access: no fractional words
    assert all(float(v).is_integer() for r in c.reads for v in r)


def test_vectorized_equals_one_by_one():
    layer = LAYERS[0]
    pb = build_problem(layer, _hw())
    rng = np.random.default_rng(3)
    X = np.stack([rng.permutation(pb.canonical()) for _ in range(20)])
    L = pb.n_loops
    cuts = {op: [np.full(20, 2), np.full(20, 5), np.full(20, L)] for op in ("I", "W", "O")}
    many = evaluate(pb, prefix_tables(pb, X), cuts).energy
    one = [evaluate(pb, prefix_tables(pb, X[i:i + 1]), {op: [c[i:i + 1] for c in v] for op, v in cuts.items()}).energy[0]
           for i in range(20)]
    np.testing.assert_allclose(many, one)
