"""`prefkit demo [OUT_DIR]`: simulate `noisy` -> inspect -> audit -> pairs -> rank, offline.

Every step runs the registered CLI command in-process with its documented arguments, so the
demo exercises exactly what a user types. Steps whose command is not registered are skipped;
a failing downstream step (audit, pairs, rank) is reported and the demo goes on. The demo
exits non-zero only when simulate or inspect fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from prefkit._cli import console, fail

REQUIRED = ("simulate", "inspect")


def _steps(out: Path, size: int, seed: int) -> list[tuple[str, str, list[str]]]:
    data = out / "data"
    comparisons = str(data / "comparisons.parquet")
    return [
        ("simulate", "simulate the noisy scenario", ["simulate", "noisy", str(data), "--seed", str(seed), "--size", str(size)]),
        ("inspect", "inspect what is in the file", ["inspect", comparisons, "--json"]),
        ("audit", "audit: flips, spammers, biases, duplicates", ["audit", comparisons, "--out", str(out / "audit"), "--json"]),
        ("pairs", "build training pairs (majority vote, ties dropped)", ["pairs", comparisons, str(out / "pairs.jsonl"), "--from-votes", "majority", "--ties", "drop", "--to", "trl"]),
        ("rank", "rank the models (Bradley-Terry)", ["rank", comparisons, "--out", str(out / "rank"), "--json"]),
    ]  # fmt: skip


def _run(group: Any, args: list[str]) -> tuple[bool, str, dict[str, Any] | None]:
    """Run one command in-process; (ok, message, parsed --json output or None)."""
    import contextlib
    import io
    import json

    import click

    from prefkit._cli import CLIError

    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            rc = group.main(args, prog_name="prefkit", standalone_mode=False)
    except CLIError as e:
        return False, str(e), None
    except click.exceptions.ClickException as e:
        return False, e.format_message(), None
    except (click.exceptions.Exit, SystemExit) as e:
        code = getattr(e, "exit_code", getattr(e, "code", 1))
        if code not in (0, None):
            return False, f"exited with code {code}", None
        rc = 0
    except Exception as e:  # a downstream stage's bug must not stop the demo
        return False, f"{type(e).__name__}: {e}", None
    if isinstance(rc, int) and rc != 0:
        return False, f"exited with code {rc}", None
    parsed: dict[str, Any] | None = None
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    if lines:
        try:
            obj = json.loads(lines[-1])
            parsed = obj if isinstance(obj, dict) else {"value": obj}
        except json.JSONDecodeError:
            parsed = None
    return True, "ok", parsed


def demo_cmd(
    out_dir: Path = typer.Argument(Path("demo-out"), help="Output folder (default demo-out)."),
    size: int = typer.Option(5000, "--size", help="Comparisons to simulate."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
) -> None:
    """Run the whole pipeline offline on simulated data: simulate, inspect, audit, pairs, rank."""
    import json
    import time

    import typer.main

    from prefkit.cli import app

    group = typer.main.get_command(app)
    commands: dict[str, Any] = getattr(group, "commands", {})
    steps = _steps(out_dir, size, seed)
    results: list[tuple[str, str, float]] = []
    outputs: dict[str, dict[str, Any] | None] = {}
    t_all = time.perf_counter()
    for i, (name, what, args) in enumerate(steps, 1):
        head = f"[bold][{i}/{len(steps)}][/bold] {name}: {what}"
        if name not in commands:
            console.print(f"{head} [yellow]skipped[/yellow] (command not available)")
            results.append((name, "skipped", 0.0))
            continue
        console.print(f"{head}\n    $ prefkit {' '.join(args)}")
        t0 = time.perf_counter()
        ok, msg, parsed = _run(group, args)
        dt = time.perf_counter() - t0
        outputs[name] = parsed
        if ok:
            console.print(f"    [green]done[/green] in {dt:.1f} s")
            results.append((name, "ok", dt))
        else:
            console.print(f"    [red]failed[/red]: {msg}")
            results.append((name, f"failed: {msg}", dt))
            if name in REQUIRED:
                break

    console.rule("summary")
    truth_path = out_dir / "data" / "truth.json"
    if truth_path.exists():
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        console.print(
            f"simulated {truth.get('size')} votes (seed {truth.get('seed')}): "
            f"{len(truth.get('flipped_ids', []))} flipped labels, "
            f"{len(truth.get('spammers', []))} spammers of {len(truth.get('annotators', {}))} "
            f"annotators, position bias {truth.get('position_bias')}, length bias "
            f"{truth.get('length_bias')} log-odds/100 chars, "
            f"{len(truth.get('duplicate_groups', []))} duplicate groups  (truth: {truth_path})"
        )
        strength = truth.get("model_strength", {})
        if strength:
            top = sorted(strength, key=lambda m: -strength[m])[:3]
            console.print(f"true model order (top 3): {', '.join(top)}")
    insp = outputs.get("inspect")
    if insp:
        console.print(
            f"inspect: {insp.get('rows')} rows, outcomes {insp.get('outcomes')}, "
            f"{insp.get('annotators')} annotators, {insp.get('models')} models"
        )
    for name, status, dt in results:
        colour = "green" if status == "ok" else ("yellow" if status == "skipped" else "red")
        console.print(f"  {name:<9} [{colour}]{status}[/{colour}] ({dt:.1f} s)")
    report = out_dir / "audit" / "report.html"
    if report.exists():
        console.print(f"HTML report: [bold]{report.resolve()}[/bold]")
    else:
        console.print("HTML report: not produced (audit unavailable or failed)")
    console.print(f"all outputs under {out_dir.resolve()} ({time.perf_counter() - t_all:.1f} s)")
    failed_required = [n for n, s, _ in results if n in REQUIRED and s != "ok"]
    if failed_required:
        fail(f"demo failed at: {', '.join(failed_required)}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
