"""mt.ITAMHSA: an mt.QMHSA block (ops/qmhsa.py) offloaded to the ITA
accelerator, one job per head (heterogeneous targets, docs/ita.md).

Same attributes, type rule and golden model as mt.QMHSA (the device's
functional model, accel/ita/model.py, is tested equal to it). The lowering
emits one constant job table per head in the register order of
accel/ita/registers.TABLE_FIELDS and calls the driver mt_ita_mhsa_s8
(runtime/mt_ita.c): the device adds each head's output-projection share to
an int32 (S, Eo) accumulator in scratch; the CPU requantizes it at the end.
Made by passes/map_to_ita.py only for targets with an ITA."""
from __future__ import annotations

import numpy as np

from .qmhsa import _dims, _infer, _macs, _proj_initializer, _reference
from .registry import register


def _words(node, ctx) -> list[str]:
    """C initializers of every head's job words (union mt_ita_word_t)."""
    from ..accel.ita.registers import TABLE_FIELDS   # (accel imports ops: not at module level)
    a = node.attrs
    s = ctx.ins[0].shape[0]
    _, e, h, p, pv, eo = _dims(node, s)
    i32 = lambda v: f"{{.i = {int(v)}}}"
    ptr = lambda name, off=0: f"{{.p = {name} + {int(off)}}}"
    tab = {}
    for j in "qkvo":
        tab[j + "_w"] = ctx.table(np.asarray(a[f"{j}_w"]).reshape(-1), "int8_t")
    for j in "qkv":
        tab[j + "_mul"] = ctx.table(np.asarray(a[f"{j}_mul"]).reshape(-1))
        tab[j + "_add"] = ctx.table(np.asarray(a[f"{j}_add"]).reshape(-1), "int64_t")
        if a[f"{j}_has_bias"]:
            tab[j + "_bconst"] = ctx.table(np.asarray(a[f"{j}_bconst"]).reshape(-1), "int64_t")
    core = {}
    for pre in "sc":
        mul = np.asarray(a[f"core_{pre}_mul"]).reshape(-1)
        add = np.asarray(a[f"core_{pre}_add"]).reshape(-1)
        core[pre] = (ctx.table(mul), mul.size, ctx.table(add, "int64_t"), add.size)
    out = []
    for hd in range(h):
        v = {"S": i32(s), "E": i32(e), "P": i32(p), "PV": i32(pv), "EO": i32(eo)}
        for j, n in (("q", p), ("k", p), ("v", pv)):
            J = j.upper()
            v[f"{J}_W"] = ptr(tab[j + "_w"], hd * e * n)
            v[f"{J}_MUL"], v[f"{J}_ADD"] = ptr(tab[j + "_mul"], hd * n), ptr(tab[j + "_add"], hd * n)
            for f in ("AZP", "BZP", "SHIFT", "LO", "HI"):
                v[f"{J}_{f}"] = i32(a[f"{j}_{f.lower()}"])
            has = int(a[f"{j}_has_bias"])
            v[f"{J}_HAS_BIAS"] = i32(has)
            v[f"{J}_BCONST"] = ptr(tab[j + "_bconst"], hd * n) if has else i32(0)
            for f in ("BZ", "BM", "BSHIFT", "BLO", "BHI"):
                v[f"{J}_{f}"] = i32(a[f"{j}_{f.lower()}"]) if has else i32({"BM": 1, "BLO": -128, "BHI": 127}.get(f, 0))
        for pre in "sc":
            P = pre.upper()
            mul, nmul, add, nadd = core[pre]
            v.update({f"{P}_AZP": i32(a.get(f"{pre}_a_zero_point", 0)), f"{P}_BZP": i32(a.get(f"{pre}_b_zero_point", 0)),
                      f"{P}_MUL": ptr(mul), f"{P}_NMUL": i32(nmul), f"{P}_ADD": ptr(add), f"{P}_NADD": i32(nadd),
                      f"{P}_SHIFT": i32(a.get(f"{pre}_shift", 0)), f"{P}_LO": i32(a.get(f"{pre}_lo", -128)),
                      f"{P}_HI": i32(a.get(f"{pre}_hi", 127))})
        has_scale = a.get("core_m_b") is not None
        m_add = int(a.get("m_add", 0)) & 0xFFFFFFFFFFFFFFFF
        v.update({"HAS_SCALE": i32(has_scale), "M_AZP": i32(a.get("m_a_zero_point", 0)),
                  "M_BZP": i32(a.get("m_b_zero_point", 0)),
                  "M_B": i32(np.asarray(a["core_m_b"]).reshape(-1)[0] if has_scale else 0),
                  "M_MUL": i32(a.get("m_mul", 1)), "M_ADD_LO": i32(np.int32(np.uint32(m_add & 0xFFFFFFFF))),
                  "M_ADD_HI": i32(np.int32(np.uint32(m_add >> 32))), "M_SHIFT": i32(a.get("m_shift", 0)),
                  "M_LO": i32(a.get("m_lo", -128)), "M_HI": i32(a.get("m_hi", 127)),
                  "TO_SIGNED": i32(a.get("p_signed_output", 0)),
                  "O_W": ptr(tab["o_w"], hd * pv * eo), "O_AZP": i32(a["o_azp"]), "O_BZP": i32(a["o_bzp"])})
        out += [v[f] for f in TABLE_FIELDS]
    return out


def _lower(node, ctx):
    s, e, h, p, pv, eo = _dims(node, ctx.ins[0].shape[0])
    words = _words(node, ctx)
    rows = ",\n    ".join(", ".join(words[i:i + 8]) for i in range(0, len(words), 8))
    return (f"{{\n  static const mt_qproj_t po = {_proj_initializer(node, ctx, 'o')};\n"
            f"  static const mt_ita_word_t jobs[{len(words)}] = {{\n    {rows}}};\n"
            f"  (void)mt_ita_mhsa_s8({ctx.inp(0)}, {ctx.out(0)}, (int32_t *){ctx.scratch}, {s}, {eo}, {h}, "
            f"jobs, &po); }}")


def _scratch(node, ins, outs):
    s, e, h, p, pv, eo = _dims(node, ins[0].shape[0])
    return 4 * s * eo


register("mt.ITAMHSA", infer=_infer, reference=_reference, lower=_lower, macs=_macs, scratch=_scratch)
