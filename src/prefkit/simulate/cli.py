"""`prefkit simulate`: write a simulated scenario (canonical Parquet + truth.json)."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

from prefkit._cli import console, print_json


def _usage(message: str) -> NoReturn:
    """A usage error: one line and exit code 2 (through click, so it works in every runner)."""
    import click

    raise click.UsageError(message)


def simulate_cmd(
    scenario: str | None = typer.Argument(
        None,
        help="Scenario name (see --list): clean, noisy, arena, ratings, rankings, pluralistic.",
    ),
    out_dir: Path | None = typer.Argument(None, help="Output folder (created)."),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Random seed; same seed gives identical files."
    ),
    size: int | None = typer.Option(
        None, "--size", help="Rows of the scenario's main table (default per scenario)."
    ),
    votes: int | None = typer.Option(
        None, "--votes", help="Votes per pair (pairwise scenarios: clean, noisy, pluralistic)."
    ),
    list_: bool = typer.Option(False, "--list", help="Describe every scenario and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Simulate preference data with known ground truth: <kind>.parquet files and truth.json."""
    from prefkit.simulate import SCENARIOS

    if list_:
        if as_json:
            print_json(
                {
                    name: {
                        "description": s.description,
                        "default_size": s.default_size,
                        "files": [f"{k.value}.parquet" for k in s.kinds] + ["truth.json"],
                    }
                    for name, s in SCENARIOS.items()
                }
            )
            return
        from rich.table import Table

        t = Table(title="prefkit simulate scenarios", show_lines=True)
        for col in ("scenario", "default size", "files", "description"):
            t.add_column(col)
        for name, s in SCENARIOS.items():
            files = ", ".join([f"{k.value}.parquet" for k in s.kinds] + ["truth.json"])
            t.add_row(name, str(s.default_size), files, s.description)
        console.print(t)
        return
    if scenario is None or out_dir is None:
        _usage("usage: prefkit simulate SCENARIO OUT_DIR [--seed N] [--size N] (or --list)")
    if scenario not in SCENARIOS:
        _usage(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if size is not None and size < 1:
        _usage("--size must be >= 1")
    from prefkit._cli import check_output

    check_output(out_dir, None, "dir")
    overrides: dict[str, int] = {}
    if votes is not None:
        if "votes_per_pair" not in SCENARIOS[scenario].options:
            _usage(f"--votes does not apply to scenario {scenario!r}")
        if votes < 1:
            _usage("--votes must be >= 1")
        overrides["votes_per_pair"] = votes

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from prefkit.simulate import simulate, write_simulation

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task(f"simulating {scenario}", total=2)
        try:
            sim = simulate(scenario, size=size, seed=seed, **overrides)
        except ValueError as e:
            _usage(str(e))
        progress.update(task, advance=1, description=f"writing {out_dir}")
        paths = write_simulation(sim, out_dir)
        progress.update(task, advance=1, description="done")
    rows = {k.value: t.num_rows for k, t in sim.tables.items()}
    if as_json:
        print_json(
            {"scenario": scenario, "seed": seed, "rows": rows, "files": [str(p) for p in paths]}
        )
        return
    for p in paths:
        console.print(f"wrote {p}")
    console.print(f"{scenario} (seed {seed}): " + ", ".join(f"{v} {k}" for k, v in rows.items()))


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_cmd)
