"""`prefkit rank` and `prefkit aggregate` (light imports only at module level)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from prefkit._cli import check_output, console, fail, print_json, report_rejects


def _choice(value: str | None, option: str, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        fail(f"{option} must be one of {', '.join(allowed)}, got {value!r}", code=2)


def _read_comparisons(src: Path, fmt: str | None) -> Any:
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    result = read(src, fmt)
    console.print(f"read [bold]{src}[/bold] as [cyan]{result.reader}[/cyan]: {result.why}")
    report_rejects(src, result.rejects)
    if Kind.COMPARISONS not in result.tables:
        kinds = ", ".join(k.value for k in result.tables) or "nothing"
        fail(f"{src}: rank needs pairwise comparisons, the file holds {kinds}")
    return result.tables[Kind.COMPARISONS], len(result.rejects)


def rank_cmd(
    src: Path = typer.Argument(..., metavar="IN", help="Comparisons in any format prefkit reads."),
    out: Path | None = typer.Option(
        None, "--out", help="Write leaderboard.csv, win_probability.csv and index.html here."
    ),
    model: str = typer.Option("bt", "--model", help="bt | davidson | rao-kupper."),
    ties: str | None = typer.Option(
        None, "--ties", help="half | drop (bt) | model (davidson, rao-kupper; their default)."
    ),
    ci: str = typer.Option(
        "bootstrap", "--ci", help="bootstrap | sandwich | hessian | none (intervals)."
    ),
    rounds: int = typer.Option(1000, "--rounds", help="Bootstrap rounds."),
    level: float = typer.Option(0.95, "--level", help="Confidence level of the intervals."),
    scale: str = typer.Option("elo", "--scale", help="elo (1000 + 400/ln10 per logit) | logit."),
    anchor: str | None = typer.Option(
        None, "--anchor", help="ITEM=SCORE: shift the scale so ITEM scores SCORE."
    ),
    style_control: bool = typer.Option(
        False, "--style-control", help="Control for length and markdown (needs response text)."
    ),
    prior: float | None = typer.Option(
        None, "--prior", help="L2 precision on log-strengths (default: 0 when the MLE exists)."
    ),
    components: str = typer.Option(
        "refuse", "--components", help="Disconnected graph: refuse | largest."
    ),
    weight: str | None = typer.Option(
        None, "--weight", help="Weight each battle by the number in meta[KEY]."
    ),
    baselines: bool = typer.Option(
        False, "--baselines", help="Add online Elo and average win rate to the JSON."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the bootstrap."),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    as_json: bool = typer.Option(False, "--json", help="Print the leaderboard as JSON."),
) -> None:
    """Leaderboard from pairwise battles: Bradley–Terry / Davidson / Rao–Kupper, exact sparse
    Newton fit, bootstrap or sandwich intervals, rank intervals, optional style control."""
    from prefkit.rank.bt import MODELS, TIE_POLICIES
    from prefkit.rank.run import CI_KINDS

    _choice(model, "--model", MODELS)
    _choice(ties, "--ties", TIE_POLICIES)
    _choice(ci, "--ci", CI_KINDS)
    _choice(scale, "--scale", ("elo", "logit"))
    _choice(components, "--components", ("refuse", "largest"))
    if model == "bt" and ties == "model":
        fail("--ties model needs --model davidson or rao-kupper", code=2)
    if model != "bt" and ties not in (None, "model"):
        fail(f"--model {model} models ties itself: drop --ties or use --ties model", code=2)
    if rounds < 1:
        fail("--rounds must be >= 1", code=2)
    if not 0.0 < level < 1.0:
        fail("--level must be between 0 and 1", code=2)
    if prior is not None and prior < 0:
        fail("--prior must be >= 0", code=2)

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from prefkit.rank.data import RankInputError
    from prefkit.rank.leaderboard import parse_anchor, write_outputs
    from prefkit.rank.run import RankOptions, rank_table

    try:
        anchor_spec = parse_anchor(anchor)
    except RankInputError as e:
        fail(str(e), code=2)
    if out is not None:
        check_output(out, src, "dir")
    table, rejected = _read_comparisons(src, fmt)
    opts = RankOptions(
        model=model,  # type: ignore[arg-type]
        ties=ties,  # type: ignore[arg-type]
        ci=ci,  # type: ignore[arg-type]
        rounds=rounds,
        level=level,
        scale=scale,  # type: ignore[arg-type]
        anchor=anchor_spec,
        style_control=style_control,
        prior=prior,
        components=components,  # type: ignore[arg-type]
        weight_key=weight,
        baselines=baselines,
        seed=seed,
    )
    total = rounds * (2 if style_control else 1) if ci == "bootstrap" else 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
        transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("bootstrap rounds", total=total or None, visible=total > 0)
        try:
            res = rank_table(table, opts, progress=lambda n: progress.advance(task, n))
        except RankInputError as e:
            fail(f"{src}: {e}")
    summary = res.summary
    summary["rejected_rows"] = rejected
    if out is not None:
        paths = write_outputs(out, res.board, res.fit, summary, res.raw_board)
        summary["files"] = [str(p) for p in paths]
    for note in summary["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
    if as_json:
        print_json(summary)
        return
    _print_board(summary)
    if out is not None:
        console.print(f"wrote {out}/leaderboard.csv, win_probability.csv, index.html")


def _print_board(summary: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(
        title=f"{summary['model']} (ties {summary['ties']}), {summary['ci']} intervals, "
        f"{summary['battles']} battles"
    )
    for c in ("rank", "item", "score", "ci", "ranks", "wins", "losses", "ties", "n"):
        t.add_column(c, justify="left" if c == "item" else "right")
    for r in summary["leaderboard"]:
        t.add_row(
            str(r["rank"]),
            r["item"],
            f"{r['score']:.2f}",
            f"{r['ci_low']:.2f} .. {r['ci_high']:.2f}",
            f"{r['rank_low']}-{r['rank_high']}",
            f"{r['wins']:g}",
            f"{r['losses']:g}",
            f"{r['ties']:g}",
            str(r["n"]),
        )
    console.print(t)


def _read_gold(path: Path) -> dict[str, str]:
    import csv
    import json

    if not path.exists():
        fail(f"{path}: gold file not found")
    out: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        if path.suffix in (".jsonl", ".json"):
            rows = [json.loads(line) for line in fh if line.strip()]
        else:
            rows = list(csv.DictReader(fh))
    for n, r in enumerate(rows, start=1):
        if not isinstance(r, dict) or "pair_id" not in r or "outcome" not in r:
            fail(f"{path}: record {n}: gold needs fields pair_id and outcome")
        out[str(r["pair_id"])] = str(r["outcome"]).strip()
    return out


def aggregate_cmd(
    src: Path = typer.Argument(..., metavar="IN", help="Comparisons with several votes per pair."),
    dst: Path = typer.Argument(..., metavar="OUT", help="Aggregated comparisons (.parquet)."),
    method: str = typer.Option(
        "dawid-skene", "--method", help="majority | dawid-skene | mace | glad | noisy-bt."
    ),
    gold: Path | None = typer.Option(
        None, "--gold", help="CSV/JSONL with pair_id,outcome of pairs whose answer is known."
    ),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Combine annotators' votes per pair: posterior over a/b/tie per pair (written as
    canonical comparisons, strength = P(a) + P(tie)/2) and annotators.parquet (skill,
    confusion, position bias) next to OUT."""
    from prefkit.rank.aggregate import METHODS

    _choice(method, "--method", METHODS)
    if dst.suffix != ".parquet":
        fail(f"{dst}: OUT must end in .parquet", code=2)
    check_output(dst, [src, gold], "file")
    gold_map = _read_gold(gold) if gold is not None else None
    import pyarrow.parquet as pq

    from prefkit.io import save
    from prefkit.rank.aggregate import aggregate_table
    from prefkit.rank.data import RankInputError

    table, rejected = _read_comparisons(src, fmt)
    try:
        out, ann, summary = aggregate_table(table, method, gold_map)  # type: ignore[arg-type]
    except RankInputError as e:
        fail(f"{src}: {e}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    save(out, dst)
    ann_path = dst.parent / "annotators.parquet"
    pq.write_table(ann, ann_path)
    summary.update(
        {"rejected_rows": rejected, "files": [str(dst), str(ann_path)]},
    )
    if summary["gold_unmatched"]:
        console.print(
            f"[yellow]{len(summary['gold_unmatched'])} gold pair id(s) not in the data[/yellow]"
        )
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{method}: {summary['votes']} votes on {summary['pairs']} pairs by "
        f"{summary['annotators']} annotators -> {dst}, {ann_path}"
    )


def register(app: typer.Typer) -> None:
    app.command("rank")(rank_cmd)
    app.command("aggregate")(aggregate_cmd)
