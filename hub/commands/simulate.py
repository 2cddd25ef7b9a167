"""``netral simulate``: a realistic election wave through the agencies' connectors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from connectors.sim_runner import publish_wave, write_truth
from connectors.simulator import SimConfig, simulate
from schemas.models import Election

from ..bootstrap import kafka
from ..settings import get_settings

console = Console()
ELECTIONS = {"pemilu2024": Election.PEMILU_2024, "pilkada2024": Election.PILKADA_2024}


def simulate_cmd(
    election: str = typer.Option("pilkada2024", help="pemilu2024 or pilkada2024."),
    cases: int = typer.Option(200, min=1, max=1_000_000, help="True cases to generate."),
    duplicate_rate: float = typer.Option(0.2, min=0, max=1, help="Share of cases reported twice."),
    name_only_rate: float = typer.Option(0.1, min=0, max=1, help="Share of name-only reports."),
    rate: float = typer.Option(0.0, min=0, help="Events per second (0: as fast as possible)."),
    seed: int = typer.Option(2024, help="Same seed, same wave."),
    truth: Path | None = typer.Option(None, help="Ground-truth file (JSON lines)."),
) -> None:
    """Generate a wave with a ground truth and publish it through the agency outboxes."""
    if election not in ELECTIONS:
        raise typer.BadParameter(f"{election!r}: use pemilu2024 or pilkada2024",
                                 param_hint="--election")
    settings = get_settings()
    sim = simulate(SimConfig(election=ELECTIONS[election], cases=cases,
                             duplicate_rate=duplicate_rate, name_only_rate=name_only_rate,
                             seed=seed))
    truth_path = truth or settings.state_dir() / "simulations" / f"{election}-{seed}.truth.jsonl"
    write_truth(sim, truth_path)
    with Progress(console=console) as progress:
        queued = progress.add_task("queued in agency outboxes", total=len(sim.events))
        sent = progress.add_task("acknowledged by Kafka", total=len(sim.events))
        tasks = {"queued": queued, "sent": sent}
        report = asyncio.run(publish_wave(
            sim, kafka(settings, "netral-simulator"), settings.state_dir() / "connectors",
            rate=rate, progress=lambda what, n: progress.advance(tasks[what], n)))
    by_agency = ", ".join(f"{a} {n}" for a, n in sorted(report.queued.items()))
    console.print(f"{cases} true cases, {len(sim.events)} events ({by_agency}) sent in "
                  f"{report.seconds:.1f}s; {len(report.rejected_at_connector)} bad rows "
                  f"rejected at the connector; ground truth: {truth_path}")
