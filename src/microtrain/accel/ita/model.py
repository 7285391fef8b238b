"""Bit-exact functional model of one ITA attention head, in integer numpy.

One job = one head h of an mt.QMHSA block (ops/qmhsa.py):

    Q, K, V = requant(x W_j + ...) [then the bias stage]   for j in q, k, v
    A       = requant(Q K^T) [then the optional scalar QMul]   at ITA's logit scale
    P       = ITA streaming softmax(A)          (ops/ita_softmax.ita_softmax)
    C       = requant(P V)
    partial = (C - o_azp) (W_o,h - o_bzp)       int32, added to the output accumulator

The CPU zeroes the accumulator before head 0 and applies the output
projection's requant (and bias stage) after the last head, exactly as
mt_qmhsa_s8 does, so the sum over heads equals mt.QMHSA's golden model.
Every requant is the int8 path's rule (`requant`, = mt_requant1 in C).

Accumulators: ITA's are 26 bits. Every dot product here multiplies two
zero-point-shifted int8 values, |a|, |b| <= 255, so |sum| <= K * 255^2;
K <= MAX_DOT_LENGTH = 512 keeps that below 2^25 (checked in
registers.validate and asserted here on the actual values)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...ops._intmath import floor_shift
from ...ops.ita_softmax import ita_softmax

ACC_BITS = 26
MAX_DOT_LENGTH = 512        # 512 * 255^2 < 2^25: no 26-bit accumulator overflow


def requant(acc, mul, add, shift, lo, hi) -> np.ndarray:
    """clip(floor((acc * mul + add + 2^(shift-1)) / 2^shift), lo, hi): mt_requant1."""
    acc = np.asarray(acc, np.int64)
    rounding = (1 << (shift - 1)) if shift else 0
    return np.clip(floor_shift(acc * np.asarray(mul, np.int64) + np.asarray(add, np.int64) + rounding, shift), lo, hi)


def _dot(a: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    acc = np.asarray(a, np.int64) @ np.asarray(b, np.int64)
    bound = 1 << (ACC_BITS - 1)
    assert np.all(np.abs(acc) < bound), f"ITA {what}: 26-bit accumulator overflow"
    return acc


@dataclass
class Projection:
    """One head's slice of a projection: w (E, n) int8 and per-column tables."""
    w: np.ndarray
    azp: int
    bzp: int
    mul: np.ndarray          # (n,) int32
    add: np.ndarray          # (n,) int64
    shift: int
    lo: int = -128
    hi: int = 127
    has_bias: int = 0
    bz: int = 0
    bm: int = 1
    bconst: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    bshift: int = 0
    blo: int = -128
    bhi: int = 127

    def __call__(self, x: np.ndarray, what: str) -> np.ndarray:
        acc = _dot(np.asarray(x, np.int64) - self.azp, np.asarray(self.w, np.int64) - self.bzp, what)
        v = requant(acc, self.mul, self.add, self.shift, self.lo, self.hi)
        if self.has_bias:
            v = requant(v - self.bz, self.bm, self.bconst, self.bshift, self.blo, self.bhi)
        return v


@dataclass
class Stage:
    """A matmul stage's requant: zero points, per-column (or one) mul/add."""
    azp: int
    bzp: int
    mul: np.ndarray
    add: np.ndarray
    shift: int
    lo: int
    hi: int


@dataclass
class HeadJob:
    q: Projection
    k: Projection
    v: Projection
    scores: Stage
    context: Stage
    o_w: np.ndarray          # (Pv, Eo) int8: this head's rows of the output projection
    o_azp: int
    o_bzp: int
    to_signed: int = 1
    # optional scalar QMul after the scores: (azp, bzp, b, mul, add, shift, lo, hi)
    scale: tuple | None = None


def run_head(job: HeadJob, x: np.ndarray) -> np.ndarray:
    """int32 (S, Eo): this head's share of the output projection accumulator."""
    x = np.asarray(x, np.int64)
    q, k, v = job.q(x, "Q projection"), job.k(x, "K projection"), job.v(x, "V projection")
    st = job.scores
    a = requant(_dot(q - st.azp, (k - st.bzp).T, "Q.K^T"), st.mul, st.add, st.shift, st.lo, st.hi)
    if job.scale is not None:
        azp, bzp, b, mul, add, shift, lo, hi = job.scale
        a = requant((a - azp) * (b - bzp), mul, add, shift, lo, hi)
    p = ita_softmax(a.astype(np.int8)).astype(np.int64)
    if job.to_signed:
        p = p - 128
    ct = job.context
    c = requant(_dot(p - ct.azp, v - ct.bzp, "A.V"), ct.mul, ct.add, ct.shift, ct.lo, ct.hi)
    return _dot(c - job.o_azp, np.asarray(job.o_w, np.int64) - job.o_bzp, "output projection").astype(np.int32)


def jobs_from_qmhsa(attrs: dict) -> list[HeadJob]:
    """One HeadJob per head of an mt.QMHSA node's attributes (ITA softmax only)."""
    a = attrs
    h, _, p = np.asarray(a["q_w"]).shape
    pv = np.asarray(a["v_w"]).shape[-1]

    def proj(j, hd, n):
        cols = slice(hd * n, (hd + 1) * n)
        col = lambda t: np.asarray(t, np.int64).reshape(-1)[cols]
        extra = {}
        if a[f"{j}_has_bias"]:
            extra = dict(has_bias=1, bz=int(a[f"{j}_bz"]), bm=int(a[f"{j}_bm"]), bconst=col(a[f"{j}_bconst"]),
                         bshift=int(a[f"{j}_bshift"]), blo=int(a[f"{j}_blo"]), bhi=int(a[f"{j}_bhi"]))
        return Projection(np.asarray(a[f"{j}_w"])[hd], int(a[f"{j}_azp"]), int(a[f"{j}_bzp"]),
                          col(a[f"{j}_mul"]), col(a[f"{j}_add"]), int(a[f"{j}_shift"]),
                          int(a[f"{j}_lo"]), int(a[f"{j}_hi"]), **extra)

    def stage(pre):
        g = lambda k, d=0: int(a.get(f"{pre}_{k}", d))
        return Stage(g("a_zero_point"), g("b_zero_point"), np.asarray(a[f"core_{pre}_mul"], np.int64).reshape(-1),
                     np.asarray(a[f"core_{pre}_add"], np.int64).reshape(-1), g("shift"), g("lo", -128), g("hi", 127))

    scale = None
    if a.get("core_m_b") is not None:
        g = lambda k, d=0: int(a.get(f"m_{k}", d))
        scale = (g("a_zero_point"), g("b_zero_point"), int(np.asarray(a["core_m_b"]).reshape(-1)[0]),
                 g("mul", 1), g("add"), g("shift"), g("lo", -128), g("hi", 127))
    ow = np.asarray(a["o_w"])
    return [HeadJob(proj("q", hd, p), proj("k", hd, p), proj("v", hd, pv), stage("s"), stage("c"),
                    ow.reshape(h, pv, -1)[hd], int(a["o_azp"]), int(a["o_bzp"]),
                    int(a.get("p_signed_output", 0)), scale) for hd in range(h)]


def finish_output(attrs: dict, acc: np.ndarray) -> np.ndarray:
    """The CPU's epilogue: requant of the summed accumulator (and the bias stage)."""
    a = attrs
    y = requant(acc, np.asarray(a["o_mul"], np.int64).reshape(-1), np.asarray(a["o_add"], np.int64).reshape(-1),
                int(a["o_shift"]), int(a["o_lo"]), int(a["o_hi"]))
    if a["o_has_bias"]:
        y = requant(y - a["o_bz"], a["o_bm"], np.asarray(a["o_bconst"], np.int64).reshape(-1),
                    a["o_bshift"], a["o_blo"], a["o_bhi"])
    return y.astype(np.int8)
