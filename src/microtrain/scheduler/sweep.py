"""Sweeps of many layers x hardware variants, in parallel on Ray (a local
Ray by default, a cluster when an address is given), with a progress bar
and a CSV / markdown result table. Without Ray installed it runs serially."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from .api import schedule_layer
from .errors import SchedulerError
from .hardware import Hardware, load_hardware
from .layer import Layer

COLUMNS = ["hardware", "layer", "engine", "energy_pJ", "latency_cycles", "utilization", "seconds", "loop_order"]


@dataclass(frozen=True)
class Job:
    layer: Layer
    hw: Hardware
    objective: str
    engine: str
    seed: int


def _run(job: Job) -> dict[str, Any]:
    m = schedule_layer(job.layer, job.hw, objective=job.objective, engine=job.engine, seed=job.seed)
    return {"hardware": job.hw.name, "layer": m.layer, "engine": m.engine, "energy_pJ": m.energy,
            "latency_cycles": m.latency, "utilization": round(m.utilization, 4), "seconds": round(m.seconds, 3),
            "loop_order": " ".join(f"{d}{s}" for d, s in m.loop_order)}


def sweep(layers: Sequence[Layer], hardware: Sequence[Any], *, objective: str = "energy", engine: str = "auto",
          seed: int = 0, ray_address: str | None = None, use_ray: bool = True, progress: bool = True) -> list[dict]:
    """One result row per (hardware, layer), in input order."""
    hws = [load_hardware(h) for h in hardware]
    jobs = [Job(l, h, objective, engine, seed) for h in hws for l in layers]
    if not jobs:
        raise SchedulerError("sweep: no layers or no hardware given")
    ray = _ray(ray_address) if use_ray else None
    if ray is None:
        return [_run(j) for j in tqdm(jobs, disable=not progress, desc="schedule")]
    remote = ray.remote(_run)
    refs = [remote.remote(j) for j in jobs]
    index = {r: i for i, r in enumerate(refs)}
    rows: list[dict | None] = [None] * len(refs)
    pending = list(refs)
    with tqdm(total=len(refs), disable=not progress, desc="schedule (ray)") as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                rows[index[ref]] = ray.get(ref)
                bar.update(1)
    return [r for r in rows if r is not None]


def _ray(address: str | None):
    if address and address != "auto":
        _check_reachable(address)
    try:
        import ray
    except ImportError:
        if address:
            raise SchedulerError("--ray-address needs Ray: pip install 'microtrain[scale]'") from None
        return None
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     ignore_reinit_error=True) if address else ray.init(include_dashboard=False,
                                                                        log_to_driver=False)
        except Exception as exc:
            raise SchedulerError(f"cannot start or reach Ray{' at ' + address if address else ''}: {exc}") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when nothing listens at a host:port address
    (Ray itself waits a long time for an unreachable head node)."""
    import socket
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise SchedulerError(f"--ray-address must look like HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise SchedulerError(f"cannot reach Ray at {address}: {exc.strerror or exc}") from None


def write_csv(rows: list[dict], path: str | Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def to_markdown(rows: list[dict]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    return head + "".join("| " + " | ".join(fmt(r[c]) for c in COLUMNS) + " |\n" for r in rows)
