"""Run ZigZag (benchmark-only dependency) on our layers/hardware: score a
given temporal ordering in its cost model, or let LOMA / SALSA search."""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import yaml

from microtrain.scheduler.hardware import Hardware, spatial_factors
from microtrain.scheduler.layer import Layer
from microtrain.scheduler.zigzag_format import hardware_to_zigzag, layer_to_zigzag, mapping_to_zigzag

logging.basicConfig(level=logging.ERROR)
logging.getLogger().setLevel(logging.ERROR)


def _files(tmp: Path, layer: Layer, hw: Hardware, loop_order):
    (tmp / "hw.yaml").write_text(yaml.safe_dump(hardware_to_zigzag(hw), sort_keys=False))
    (tmp / "wl.yaml").write_text(yaml.safe_dump([layer_to_zigzag(layer, 0)], sort_keys=False))
    entry = mapping_to_zigzag(layer.name, spatial_factors(layer, hw), loop_order, layer.dims)
    default = dict(entry, name="default")
    (tmp / "map.yaml").write_text(yaml.safe_dump([entry, default], sort_keys=False))
    return str(tmp / "wl.yaml"), str(tmp / "hw.yaml"), str(tmp / "map.yaml")


def run_zigzag(layer: Layer, hw: Hardware, *, engine: str = "loma", loop_order=None, lpf_limit: int = 6,
               opt: str = "energy", mapping_type: str = "uneven") -> dict:
    """Energy/latency of ZigZag's best mapping (or of `loop_order` if given)."""
    from zigzag.api import get_hardware_performance_zigzag
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        wl, hwp, mp = _files(tmp, layer, hw, loop_order)
        t0 = time.perf_counter()
        energy, latency, cmes = get_hardware_performance_zigzag(
            wl, hwp, mp, temporal_mapping_search_engine=engine, temporal_mapping_type=mapping_type,
            opt=opt, dump_folder=str(tmp / "out"), lpf_limit=lpf_limit, loma_show_progress_bar=False)
        secs = time.perf_counter() - t0
    cme = cmes[0][1][0][0]
    tm = cme.temporal_mapping.mapping_dic_origin
    return {"energy": float(energy), "latency": float(latency), "seconds": secs,
            "temporal_mapping": {str(k): [[(str(d), float(s)) for d, s in lvl] for lvl in v] for k, v in tm.items()},
            "mem_energy_breakdown": {str(k): [float(x) for x in v] for k, v in cme.mem_energy_breakdown.items()},
            "mac_energy": float(cme.mac_energy)}
