"""ZigZag (PyPI `zigzag-dse`) file formats: read its hardware, workload and
mapping YAML so existing user inputs work, and write ours back in its format
so ZigZag's cost model can score our mappings. ZigZag itself is never imported."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import SchedulerError
from .hardware import Hardware, MemoryLevel
from .layer import Layer, PrTerm, distinct_sums

# ZigZag names memory operands I1/I2/O and links them per layer; this is its default link.
DEFAULT_LINKS = {"I": "I1", "W": "I2", "O": "O"}
CONV_LIKE = {"Conv", "Conv_downsample", "Gemm", "MatMul"}
_OPERAND_RE = re.compile(r"([A-Za-z_]\w*?)((?:\[\w*\])+)")
_RELATION_RE = re.compile(r"^\s*(\w+)\s*=\s*(?:(\d+)\s*\*\s*)?(\w+)\s*\+\s*(?:(\d+)\s*\*\s*)?(\w+)\s*$")


def _load(spec: "str | Path | Any", what: str) -> Any:
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.is_file():
            raise SchedulerError(f"{what} file '{path}' does not exist")
        try:
            return yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise SchedulerError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return spec


# ---------------------------------------------------------------- hardware

def spatial_from_zigzag_mapping(mapping: Any, layer_name: str = "default") -> tuple[dict[str, str], dict[str, int]]:
    """(array dim -> layer dim, array dim -> factor) from a ZigZag mapping's
    `spatial_mapping`; the entry named `layer_name`, else `default`, else the first."""
    entries = _load(mapping, "mapping")
    if not isinstance(entries, list) or not entries:
        raise SchedulerError("ZigZag mapping must be a non-empty YAML list of entries")
    by_name = {e.get("name"): e for e in entries if isinstance(e, dict)}
    entry = by_name.get(layer_name) or by_name.get("default") or entries[0]
    unroll: dict[str, str] = {}
    limit: dict[str, int] = {}
    for adim, items in (entry.get("spatial_mapping") or {}).items():
        if isinstance(items, list) and len(items) == 2 and isinstance(items[1], int):
            items = [f"{items[0]}, {items[1]}"]  # [K, 4] written as a YAML list
        first = items[0] if isinstance(items, list) else items
        dim, _, factor = str(first).partition(",")
        unroll[str(adim)] = dim.strip()
        if factor.strip():
            limit[str(adim)] = int(factor)
    return unroll, limit


def hardware_from_zigzag(data: dict, mapping: Any = None, source: str = "<zigzag>") -> Hardware:
    """Parse ZigZag's accelerator YAML. Memories are listed bottom-up there."""
    try:
        oa = data["operational_array"]
        dims = [str(d) for d in oa["dimensions"]]
        array = {d: int(s) for d, s in zip(dims, oa["sizes"])}
        inv_links = {v: k for k, v in DEFAULT_LINKS.items()}
        mems = []
        for name, m in data["memories"].items():
            ops = tuple(inv_links.get(str(o), str(o)) for o in m["operands"])
            rd = wr = None
            rw_shared = False
            for port in m["ports"]:
                alloc = [str(a).replace(" ", "") for a in port.get("allocation") or []]
                reads = any(a.endswith(",tl") or a.endswith(",th") for a in alloc)
                writes = any(a.endswith(",fh") or a.endswith(",fl") for a in alloc)
                bw = (int(port["bandwidth_min"]), int(port["bandwidth_max"]))
                if reads and rd is None:
                    rd = bw
                if writes and wr is None:
                    wr = bw
                if reads and writes:
                    rw_shared = True
            if rd is None or wr is None:
                raise SchedulerError(f"{source}: memory '{name}' needs a read and a write port")
            mems.append(MemoryLevel(
                name=str(name), size_bits=int(m["size"]),
                read_energy=float(m.get("r_cost") or 0.0), write_energy=float(m.get("w_cost") or 0.0),
                read_bw=rd[1], write_bw=wr[1], read_bw_min=rd[0], write_bw_min=wr[0],
                operands=ops, served_dims=tuple(str(d) for d in m.get("served_dimensions") or ()),
                rw_shared=rw_shared, double_buffer=bool(m.get("force_double_buffering", False)),
            ))
    except KeyError as exc:
        raise SchedulerError(f"{source}: ZigZag hardware description lacks key {exc}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, SchedulerError):
            raise
        raise SchedulerError(f"{source}: malformed ZigZag hardware description ({exc})") from None
    unroll, limit = spatial_from_zigzag_mapping(mapping) if mapping is not None else ({}, {})
    if not unroll:  # no mapping given: weights' output and input channels first, like ZigZag's default
        unroll = dict(zip(dims, ["K", "C", "OX", "OY"]))
    return Hardware(name=str(data.get("name", source)), array=array, unroll=unroll,
                    mac_energy=float(oa.get("unit_energy", 0.0)), memories=tuple(mems), unroll_limit=limit)


def hardware_to_zigzag(hw: Hardware) -> dict:
    """Our hardware in ZigZag's accelerator YAML schema."""
    mems: dict[str, Any] = {}
    for m in hw.memories:
        ops = [DEFAULT_LINKS[o] for o in m.operands]
        rd = [f"{DEFAULT_LINKS[o]}, tl" for o in m.operands] + (["O, th"] if "O" in m.operands else [])
        wr = [f"{DEFAULT_LINKS[o]}, fh" for o in m.operands] + (["O, fl"] if "O" in m.operands else [])
        if m.rw_shared:
            ports = [{"name": "rw_port_1", "type": "read_write", "bandwidth_min": m.rbw_min,
                      "bandwidth_max": m.read_bw, "allocation": wr + rd}]
        else:
            ports = [{"name": "r_port_1", "type": "read", "bandwidth_min": m.rbw_min,
                      "bandwidth_max": m.read_bw, "allocation": rd},
                     {"name": "w_port_1", "type": "write", "bandwidth_min": m.wbw_min,
                      "bandwidth_max": m.write_bw, "allocation": wr}]
        mems[m.name] = {"size": int(m.size_bits), "r_cost": m.read_energy, "w_cost": m.write_energy,
                        "area": 0, "latency": 1, "operands": ops, "ports": ports,
                        "served_dimensions": list(m.served_dims)}
        if m.double_buffer:
            mems[m.name]["force_double_buffering"] = True
    return {"name": hw.name, "memories": mems,
            "operational_array": {"unit_energy": hw.mac_energy, "unit_area": 1,
                                  "dimensions": list(hw.array), "sizes": list(hw.array.values())}}


# ---------------------------------------------------------------- workload

def _parse_equation(eq: str) -> dict[str, list[str]]:
    lhs, _, rhs = eq.replace(" ", "").partition("=")
    found = {}
    for name, idx in _OPERAND_RE.findall(lhs.rstrip("+") + "*" + rhs):
        found[name] = [i for i in re.findall(r"\[(\w*)\]", idx) if i]
    return found


def layers_from_zigzag_workload(spec: Any, *, skip_other_ops: bool = True) -> list[Layer]:
    """Conv/Gemm-like layers from a ZigZag workload YAML (path or parsed list).
    Layers of other operator types (pooling, add) are skipped: they have no weights."""
    entries = _load(spec, "workload")
    if not isinstance(entries, list):
        raise SchedulerError("ZigZag workload must be a YAML list of layers")
    layers = []
    for n, e in enumerate(entries):
        label = f"workload layer #{n}"
        try:
            name = str(e.get("name") or f"layer{e.get('id', n)}")
            if e.get("operator_type") not in CONV_LIKE:
                if skip_other_ops:
                    continue
                raise SchedulerError(f"{label} '{name}': operator_type {e.get('operator_type')!r} is not conv/matmul-like")
            operands = _parse_equation(e["equation"])
            sizes = {str(d).upper(): int(s) for d, s in zip(e["loop_dims"], e["loop_sizes"])}
            relations = {}
            for rel in e.get("dimension_relations") or []:
                mt = _RELATION_RE.match(rel)
                if not mt:
                    raise SchedulerError(f"{label} '{name}': cannot read dimension relation {rel!r}")
                tgt, ca, a, cb, b = mt.groups()
                relations[tgt.upper()] = (a.upper(), int(ca or 1), b.upper(), int(cb or 1))
            limits = dict(zip([str(d).upper() for d in e.get("pr_loop_dims") or []], e.get("pr_loop_sizes") or []))
            pads = dict(zip([str(d).upper() for d in e.get("pr_loop_dims") or []], e.get("padding") or []))
            out, w, inp = _pick_operands(operands, label, name)
            relevant = {"O": tuple(d.upper() for d in out), "W": (), "I": ()}
            partial: dict[str, tuple[PrTerm, ...]] = {}
            for op, idx in (("W", w), ("I", inp)):
                direct, prs = [], []
                for d in (x.upper() for x in idx):
                    if d in sizes:
                        direct.append(d)
                    elif d in relations:
                        a, ca, b, cb = relations[d]
                        full = int(distinct_sums(ca, sizes[a], cb, sizes[b]))
                        lim = int(limits.get(d, full - sum(pads.get(d, (0, 0)))))
                        prs.append(PrTerm(d, a, ca, b, cb, lim))
                    else:
                        raise SchedulerError(f"{label} '{name}': index {d} is neither a loop dim nor defined by a dimension relation")
                relevant[op] = tuple(direct)
                partial[op] = tuple(prs)
            prec = {str(k): int(v) for k, v in e["operand_precision"].items()}
            prec.setdefault("I", 8)
            prec.setdefault("W", 8)
            layers.append(Layer(name=name, sizes=sizes, relevant=relevant, partial=partial,
                                precision=prec, op_type=str(e.get("operator_type"))))
        except KeyError as exc:
            raise SchedulerError(f"{label}: missing key {exc}") from None
        except (TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, SchedulerError):
                raise
            raise SchedulerError(f"{label}: malformed entry ({exc})") from None
    if not layers:
        raise SchedulerError("workload has no conv/matmul-like layer")
    return layers


def _pick_operands(operands: dict[str, list[str]], label: str, name: str):
    if "O" not in operands or len(operands) != 3:
        raise SchedulerError(f"{label} '{name}': equation must read O[...] += W[...] * I[...]")
    others = [k for k in operands if k != "O"]
    w = "W" if "W" in operands else others[0]
    i = "I" if "I" in operands else [k for k in others if k != w][0]
    return operands["O"], operands[w], operands[i]


def layer_to_zigzag(layer: Layer, layer_id: int = 0) -> dict:
    """One layer in ZigZag's workload YAML schema (padding folded into pr_loop_sizes)."""
    def idx(op: str) -> str:
        names = list(layer.relevant.get(op, ())) + [t.name for t in layer.partial.get(op, ())]
        return "".join(f"[{n.lower()}]" for n in names)
    prs = [t for op in ("I", "W") for t in layer.partial.get(op, ())]
    entry: dict[str, Any] = {
        "id": layer_id, "name": layer.name,
        "operator_type": "Gemm" if layer.op_type in ("Gemm", "MatMul") else "Conv",
        "equation": f"O{idx('O')}+=W{idx('W')}*I{idx('I')}",
        "loop_dims": list(layer.sizes), "loop_sizes": [int(v) for v in layer.sizes.values()],
        "operand_precision": {k: int(layer.precision[k]) for k in ("W", "I", "O", "O_final")},
        "operand_source": {"I": layer_id},
    }
    if prs:
        entry["dimension_relations"] = [f"{t.name.lower()}={t.coef_a}*{t.dim_a.lower()}+{t.coef_b}*{t.dim_b.lower()}" for t in prs]
        entry["pr_loop_dims"] = [t.name for t in prs]
        entry["pr_loop_sizes"] = [int(t.limit) for t in prs]
    return entry


def mapping_to_zigzag(layer_name: str, spatial: dict[str, tuple[str, int]],
                      loop_order: list[tuple[str, int]] | None, layer_dims: tuple[str, ...] = ()) -> dict:
    """A ZigZag mapping entry; `temporal_ordering` lists loops innermost first.

    Every array dim is given (factor 1 where unused, on a dim the layer has):
    ZigZag generates its own unrolling for array dims a mapping leaves out."""
    filler = next((d for d in ("K", "C", "B") if d in layer_dims), layer_dims[0] if layer_dims else "K")
    sm = {}
    for adim, (d, f) in spatial.items():
        if f > 1 or d in layer_dims:
            sm[adim] = [f"{d}, {f}"]
        else:
            sm[adim] = [f"{filler}, 1"]
    entry: dict[str, Any] = {
        "name": layer_name,
        "spatial_mapping": sm,
        "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"},
    }
    if loop_order is not None:
        entry["temporal_ordering"] = [[d, int(s)] for d, s in loop_order]
    return entry
