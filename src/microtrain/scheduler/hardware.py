"""Accelerator description: a MAC array with spatial unrolling and a
bottom-up memory hierarchy; loading from our YAML, ZigZag's YAML, or a shipped name."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import SchedulerError
from .layer import OPERANDS, Layer

SHIPPED_DIR = "hardware"


@dataclass(frozen=True)
class MemoryLevel:
    """One memory (all its instances). Energies are pJ per word access,
    where a word is the port bandwidth (bits/cycle); sizes are per instance."""
    name: str
    size_bits: int
    read_energy: float
    write_energy: float
    read_bw: int
    write_bw: int
    operands: tuple[str, ...]
    served_dims: tuple[str, ...] = ()
    read_bw_min: int | None = None
    write_bw_min: int | None = None
    rw_shared: bool = False  # one port carries reads and writes
    double_buffer: bool = False

    @property
    def rbw_min(self) -> int:
        return self.read_bw_min or self.read_bw

    @property
    def wbw_min(self) -> int:
        return self.write_bw_min or self.write_bw


@dataclass
class Hardware:
    name: str
    array: dict[str, int]          # array dim -> number of MAC units along it
    unroll: dict[str, str]         # array dim -> layer dim unrolled on it
    mac_energy: float              # pJ per MAC
    memories: tuple[MemoryLevel, ...]  # bottom-up
    unroll_limit: dict[str, int] = field(default_factory=dict)  # cap below the array size

    def __post_init__(self) -> None:
        if not self.memories:
            raise SchedulerError(f"hardware '{self.name}': no memories")
        for dim, n in self.array.items():
            if not isinstance(n, int) or n < 1:
                raise SchedulerError(f"hardware '{self.name}': array dimension {dim} has size {n!r}")
        for dim in self.unroll:
            if dim not in self.array:
                raise SchedulerError(f"hardware '{self.name}': unroll names unknown array dimension {dim}")
        for mem in self.memories:
            if mem.size_bits <= 0 or mem.read_bw <= 0 or mem.write_bw <= 0:
                raise SchedulerError(f"hardware '{self.name}': memory '{mem.name}' needs positive size and bandwidths")
            bad = set(mem.operands) - set(OPERANDS)
            if bad:
                raise SchedulerError(f"hardware '{self.name}': memory '{mem.name}' serves unknown operand(s) {sorted(bad)}; use I, W, O")
            unknown = set(mem.served_dims) - set(self.array)
            if unknown:
                raise SchedulerError(f"hardware '{self.name}': memory '{mem.name}' serves unknown array dims {sorted(unknown)}")
        for op in OPERANDS:
            if not self.chain(op):
                raise SchedulerError(f"hardware '{self.name}': no memory holds operand {op}")

    @property
    def num_macs(self) -> int:
        n = 1
        for v in self.array.values():
            n *= v
        return n

    def chain(self, op: str) -> list[int]:
        """Indices (bottom-up) of the memories that hold operand `op`."""
        return [i for i, m in enumerate(self.memories) if op in m.operands]


def spatial_factors(layer: Layer, hw: Hardware) -> dict[str, tuple[str, int]]:
    """Per array dim: (layer dim, unroll factor). The factor is the largest
    divisor of what is left of the layer dim that fits the array dim, so
    temporal loops stay exact integers (no partially used array rows)."""
    left = dict(layer.sizes)
    out: dict[str, tuple[str, int]] = {}
    for adim, n in hw.array.items():
        ldim = hw.unroll.get(adim)
        if ldim is None or ldim not in left:
            out[adim] = (ldim or "-", 1)
            continue
        cap = min(n, hw.unroll_limit.get(adim, n), left[ldim])
        f = max(d for d in range(1, cap + 1) if left[ldim] % d == 0)
        left[ldim] //= f
        out[adim] = (ldim, f)
    return out


def shipped_names() -> list[str]:
    folder = resources.files(__package__).joinpath(SHIPPED_DIR)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_hardware(spec: "str | Path | dict | Hardware", mapping: "str | Path | None" = None) -> Hardware:
    """Hardware from an object, a dict, a YAML path, or a shipped name.

    ZigZag-format files are recognized by their `operational_array` key; their
    spatial unrolling comes from `mapping` (a ZigZag mapping YAML) if given."""
    if isinstance(spec, Hardware):
        return spec
    if isinstance(spec, dict):
        return hardware_from_dict(spec, mapping=mapping, source="<dict>")
    text = str(spec)
    if text in shipped_names():
        data = yaml.safe_load(resources.files(__package__).joinpath(SHIPPED_DIR).joinpath(text + ".yaml").read_text())
        return hardware_from_dict(data, source=text)
    path = Path(text)
    if not path.is_file():
        raise SchedulerError(f"hardware '{text}' is neither a file nor a shipped description ({', '.join(shipped_names())})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SchedulerError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return hardware_from_dict(data, mapping=mapping, source=str(path))


def hardware_from_dict(data: Any, mapping: "str | Path | dict | None" = None, source: str = "<dict>") -> Hardware:
    if not isinstance(data, dict):
        raise SchedulerError(f"{source}: hardware description must be a YAML mapping")
    if "operational_array" in data:
        from .zigzag_format import hardware_from_zigzag
        return hardware_from_zigzag(data, mapping=mapping, source=source)
    try:
        arr = data["mac_array"]
        mems = [
            MemoryLevel(
                name=str(m["name"]),
                size_bits=int(m["size_bits"]),
                read_energy=float(m["read_energy"]),
                write_energy=float(m["write_energy"]),
                read_bw=int(m["read_bw"]),
                write_bw=int(m["write_bw"]),
                operands=tuple(m["operands"]),
                served_dims=tuple(m.get("served_dims") or ()),
                read_bw_min=m.get("read_bw_min"),
                write_bw_min=m.get("write_bw_min"),
                rw_shared=bool(m.get("rw_shared", False)),
                double_buffer=bool(m.get("double_buffer", False)),
            )
            for m in data["memories"]
        ]
        return Hardware(
            name=str(data.get("name", source)),
            array={str(k): int(v) for k, v in arr["dims"].items()},
            unroll={str(k): str(v) for k, v in (arr.get("unroll") or {}).items()},
            unroll_limit={str(k): int(v) for k, v in (arr.get("unroll_limit") or {}).items()},
            mac_energy=float(arr["unit_energy"]),
            memories=tuple(mems),
        )
    except KeyError as exc:
        raise SchedulerError(f"{source}: hardware description lacks key {exc}") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SchedulerError):
            raise
        raise SchedulerError(f"{source}: malformed hardware description ({exc})") from None


def hardware_to_dict(hw: Hardware) -> dict:
    """Our YAML format (inverse of hardware_from_dict)."""
    return {
        "name": hw.name,
        "mac_array": {"unit_energy": hw.mac_energy, "dims": dict(hw.array), "unroll": dict(hw.unroll),
                      "unroll_limit": dict(hw.unroll_limit)},
        "memories": [
            {k: v for k, v in {
                "name": m.name, "size_bits": m.size_bits, "read_energy": m.read_energy,
                "write_energy": m.write_energy, "read_bw": m.read_bw, "write_bw": m.write_bw,
                "read_bw_min": m.read_bw_min, "write_bw_min": m.write_bw_min,
                "operands": list(m.operands), "served_dims": list(m.served_dims),
                "rw_shared": m.rw_shared, "double_buffer": m.double_buffer}.items() if v is not None}
            for m in hw.memories
        ],
    }
