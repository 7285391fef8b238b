"""`microtrain schedule MODEL --hw HW`: per-layer best mapping table."""
from __future__ import annotations

import click

from ..errors import MicrotrainError
from .api import ENGINES
from .score import OBJECTIVES


@click.command("schedule")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--hw", "hw", required=True, multiple=True,
              help="Hardware YAML (ours or ZigZag's) or a shipped name: eyeriss_like, edge_tpu_like, gap9_like. Repeat for a sweep.")
@click.option("--engine", type=click.Choice(ENGINES), default="auto", show_default=True)
@click.option("--objective", type=click.Choice(OBJECTIVES), default="energy", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Annealing seed.")
@click.option("--ray-address", default=None, help="Run the layers on this Ray cluster (default: local Ray if installed).")
@click.option("--no-ray", is_flag=True, help="Run serially in this process.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), default=None, help="Also write the table as CSV.")
@click.option("--markdown", is_flag=True, help="Print a markdown table instead of plain text.")
def schedule_command(model, hw, engine, objective, seed, ray_address, no_ray, csv_path, markdown):
    """Find the best loop order and memory allocation of every Conv/Gemm/MatMul
    layer of MODEL (ONNX, or ZigZag workload YAML) on the hardware."""
    from .api import as_layers
    from .sweep import sweep, to_markdown, write_csv
    try:
        layers = as_layers(model)
        rows = sweep(layers, list(hw), objective=objective, engine=engine, seed=seed,
                     ray_address=ray_address, use_ray=not no_ray, progress=True)
    except MicrotrainError as exc:
        raise click.ClickException(str(exc)) from None
    if csv_path:
        write_csv(rows, csv_path)
    if markdown:
        click.echo(to_markdown(rows))
        return
    click.echo(f"{'hardware':<14} {'layer':<28} {'engine':<10} {'energy(pJ)':>12} {'latency':>12} {'util':>6}  loop order (inner->outer)")
    for r in rows:
        click.echo(f"{r['hardware']:<14} {r['layer'][:28]:<28} {r['engine']:<10} {r['energy_pJ']:>12.4g} "
                   f"{r['latency_cycles']:>12.4g} {r['utilization']:>6.1%}  {r['loop_order']}")
