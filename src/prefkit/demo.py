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


def _say(message: str) -> None:
    """One line on stderr; never wrapped, so paths stay copyable."""
    console.print(message, soft_wrap=True)


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


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _model_scores(obj: Any, models: set[str]) -> dict[str, float] | None:
    """Find model -> score in a rank summary of unknown shape (a dict keyed by the models, or
    a list of records naming them)."""
    if isinstance(obj, dict):
        if models and models <= set(obj):
            out: dict[str, float] = {}
            for m in models:
                v = obj[m]
                v = v.get("score", v.get("rating")) if isinstance(v, dict) else v
                if not isinstance(v, int | float):
                    break
                out[m] = float(v)
            else:
                return out
        for v in obj.values():
            found = _model_scores(v, models)
            if found:
                return found
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        key = next((k for k in ("model", "name", "item") if k in obj[0]), None)
        val = next((k for k in ("score", "rating", "strength") if k in obj[0]), None)
        if key and val:
            rec = {str(r[key]): r[val] for r in obj if isinstance(r.get(val), int | float)}
            if models and models <= set(rec):
                return {m: float(rec[m]) for m in models}
    return None


def _truth_vs_found(
    truth: dict[str, Any], audit: dict[str, Any] | None, rank: dict[str, Any] | None
) -> list[str]:
    """A few lines comparing what was injected with what audit/rank reported."""
    lines: list[str] = []
    if audit:
        found = set(_get(audit, "annotators", "spammers") or [])
        true = set(truth.get("spammers", []))
        if true or found:
            lines.append(
                f"spammers: audit found {len(found & true)} of {len(true)} "
                f"({len(found - true)} false alarms)"
            )
        flagged = _get(audit, "noise", "rows_flagged")
        if flagged is not None:
            lines.append(
                f"flipped labels: {len(truth.get('flipped_ids', []))} injected, audit flagged "
                f"{flagged} rows as likely wrong"
            )
        pos = _get(audit, "bias", "position", "p_first_wins", "p")
        if isinstance(pos, int | float) and "position_bias_overall" in truth:
            lines.append(
                f"position bias (P(first wins) - 0.5, all votes): true "
                f"{truth['position_bias_overall']:+.3f}, audit {pos - 0.5:+.3f}"
            )
        ln = _get(audit, "bias", "length", "logit_per_100_chars", "coef")
        if isinstance(ln, int | float) and "length_bias_marginal" in truth:
            lines.append(
                f"length bias (log-odds per 100 chars, quality-blind): true "
                f"{truth['length_bias_marginal']:+.3f}, audit {ln:+.3f}"
            )
    strength = truth.get("model_strength", {})
    scores = _model_scores(rank, set(strength)) if rank else None
    if scores and len(strength) > 2:
        from scipy.stats import spearmanr

        rho = spearmanr([scores[m] for m in strength], [strength[m] for m in strength]).statistic
        lines.append(f"model ranking: Spearman {rho:.2f} with the true order")
    return lines


def demo_cmd(
    out_dir: Path = typer.Argument(Path("demo-out"), help="Output folder (default demo-out)."),
    size: int = typer.Option(5000, "--size", min=1, help="Comparisons to simulate."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed."),
) -> None:
    """Run the whole pipeline offline on simulated data: simulate, inspect, audit, pairs, rank."""
    from prefkit._cli import check_output
    from prefkit.cli import app

    check_output(out_dir, None, "dir")
    status = run_demo(app, out_dir, size=size, seed=seed)
    failed_required = [n for n in REQUIRED if status.get(n) != "ok"]
    if failed_required:
        fail(f"demo failed at: {', '.join(failed_required)}")


def run_demo(app: typer.Typer, out_dir: Path, size: int = 5000, seed: int = 0) -> dict[str, str]:
    """Run the demo steps with the commands registered in `app`; returns step -> status
    ("ok", "skipped" or "failed: <reason>"). Prints progress and the summary on stderr."""
    import json
    import time

    import typer.main

    group = typer.main.get_command(app)
    commands: dict[str, Any] = getattr(group, "commands", {})
    steps = _steps(out_dir, size, seed)
    results: list[tuple[str, str, float]] = []
    outputs: dict[str, dict[str, Any] | None] = {}
    t_all = time.perf_counter()
    for i, (name, what, args) in enumerate(steps, 1):
        head = f"[bold][{i}/{len(steps)}][/bold] {name}: {what}"
        if name not in commands:
            _say(f"{head} [yellow]skipped[/yellow] (command not available)")
            results.append((name, "skipped", 0.0))
            continue
        _say(f"{head}\n    $ prefkit {' '.join(args)}")
        t0 = time.perf_counter()
        ok, msg, parsed = _run(group, args)
        dt = time.perf_counter() - t0
        outputs[name] = parsed
        if ok:
            _say(f"    [green]done[/green] in {dt:.1f} s")
            results.append((name, "ok", dt))
        else:
            _say(f"    [red]failed[/red]: {msg}")
            results.append((name, f"failed: {msg}", dt))
            if name in REQUIRED:
                break

    console.rule("summary")
    truth_path = out_dir / "data" / "truth.json"
    truth: dict[str, Any] = {}
    if truth_path.exists():
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
        _say(
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
            _say(f"true model order (top 3): {', '.join(top)}")
    insp = outputs.get("inspect")
    if insp:
        _say(
            f"inspect: {insp.get('rows')} rows, outcomes {insp.get('outcomes')}, "
            f"{insp.get('annotators')} annotators, {insp.get('models')} models"
        )
    if truth_path.exists():
        for line in _truth_vs_found(truth, outputs.get("audit"), outputs.get("rank")):
            _say(line)
    for name, status, dt in results:
        colour = "green" if status == "ok" else ("yellow" if status == "skipped" else "red")
        _say(f"  {name:<9} [{colour}]{status}[/{colour}] ({dt:.1f} s)")
    report = out_dir / "audit" / "report.html"
    if report.exists():
        _say(f"HTML report: [bold]{report.resolve()}[/bold]")
    else:
        _say("HTML report: not produced (audit unavailable or failed)")
    _say(f"all outputs under {out_dir.resolve()} ({time.perf_counter() - t_all:.1f} s)")
    if "serve" in commands:
        _say(
            "collect new votes: [bold]prefkit serve --demo[/bold] (or [bold]make demo SERVE=1[/bold])"
            " starts the annotation app on a simulated campaign and prints an invite link"
        )
    return {name: status for name, status, _ in results}


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)
