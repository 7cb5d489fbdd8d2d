"""`prefkit pairs` and `prefkit split`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import typer

from prefkit._cli import check_output, console, fail, print_json, report_rejects

_STRATEGY_HELP = (
    "Strategy: majority|mean-strength|dawid-skene|mace|glad|noisy-bt (votes), "
    "best-vs-worst|best-vs-random|all-pairs|sweet-spot (ratings), all|adjacent|best-vs-rest (rankings), binary (thumbs). "
    "Default: from the input kind."
)


def pairs_cmd(
    src: Path = typer.Argument(
        ..., metavar="IN", help="Any file prefkit reads (format autodetected)."
    ),
    out: Path = typer.Argument(..., metavar="OUT", help="Output .parquet or .jsonl."),
    strategy: str | None = typer.Option(None, "--strategy", help=_STRATEGY_HELP),
    from_votes: str | None = typer.Option(
        None,
        "--from-votes",
        help="Pairwise votes: majority | mean-strength | dawid-skene | mace | glad | noisy-bt.",
    ),
    from_ratings: str | None = typer.Option(
        None,
        "--from-ratings",
        help="Ratings: best-vs-worst | best-vs-random | all-pairs | sweet-spot.",
    ),
    from_rankings: str | None = typer.Option(
        None, "--from-rankings", help="Rankings: all | adjacent | best-vs-rest."
    ),
    from_binary: bool = typer.Option(False, "--from-binary", help="Thumbs up/down."),
    ties: str = typer.Option("drop", "--ties", help="Tie policy: drop | half | keep."),
    min_margin: float | None = typer.Option(
        None, "--min-margin", help="Drop pairs whose margin is below X."
    ),
    min_agreement: float = typer.Option(
        0.0, "--min-agreement", help="Votes: drop pairs whose winning share is below X."
    ),
    aspect_weights: str | None = typer.Option(
        None,
        "--aspect-weights",
        help="Ratings: aspect=weight,... (e.g. helpfulness=0.7,honesty=0.3).",
    ),
    curriculum: bool = typer.Option(
        False, "--curriculum", help="Order pairs from easy (large margin/rank gap) to hard."
    ),
    to: str = typer.Option("canonical", "--to", help="Output format: trl | kto | canonical."),
    conversational: bool = typer.Option(
        False,
        "--conversational",
        help="trl/kto: write message lists (default: match the input).",
    ),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed for best-vs-random."),
    margin: str = typer.Option(
        "votes",
        "--margin",
        help="Votes: margin from the vote counts (votes) or from meta score_a/score_b (scores).",
    ),
    condition: str | None = typer.Option(
        None,
        "--condition",
        help="Build pairs within each group (group = meta.group, annotator, or a meta key) "
        "with the group's description as the system message.",
    ),
    personas: Path | None = typer.Option(
        None,
        "--personas",
        help="--condition: JSON {group: description} or CSV/JSONL with group,description.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Build training pairs (chosen/rejected) from votes, ratings, rankings or thumbs, with a
    stated tie policy; writes OUT and OUT.build.json (every dropped row counted)."""
    import numpy as np

    from prefkit.build.export import to_kto, to_trl, write_table
    from prefkit.build.pairs import (
        BUILDER_OF_STRATEGY,
        DEFAULT_STRATEGY,
        MARGIN_FROM,
        build_pairs,
        unpaired_from_binary,
        unpaired_from_pairs,
    )
    from prefkit.build.result import TIE_POLICIES
    from prefkit.io.detect import read

    if ties not in TIE_POLICIES:
        fail(f"--ties must be one of {', '.join(TIE_POLICIES)}, got {ties!r}", code=2)
    if to not in ("trl", "kto", "canonical"):
        fail(f"--to must be trl, kto or canonical, got {to!r}", code=2)
    if out.suffix not in (".parquet", ".jsonl"):
        fail(f"{out}: output must end in .parquet or .jsonl", code=2)
    if not 0.0 <= min_agreement <= 1.0:
        fail(f"--min-agreement must be a share in [0, 1], got {min_agreement}", code=2)
    if min_margin is not None and min_margin < 0:
        fail(f"--min-margin must be >= 0, got {min_margin}", code=2)
    if personas is not None and condition is None:
        fail("--personas needs --condition", code=2)
    if condition is not None and not condition.strip():
        fail("--condition needs a column or meta key name", code=2)
    if margin not in MARGIN_FROM:
        fail(f"--margin must be one of {', '.join(MARGIN_FROM)}, got {margin!r}", code=2)
    check_output(out, src, "file")
    check_output(Path(str(out) + ".build.json"), src, "file")
    chosen = [
        s
        for s in (
            strategy,
            from_votes,
            from_ratings,
            from_rankings,
            "binary" if from_binary else None,
        )
        if s is not None
    ]
    if len(set(chosen)) > 1:
        fail(f"give one strategy, got {', '.join(chosen)}", code=2)
    strat = chosen[0] if chosen else None
    if strat is not None and strat not in BUILDER_OF_STRATEGY:
        fail(f"unknown strategy {strat!r}; known: {', '.join(BUILDER_OF_STRATEGY)}", code=2)
    for flag, value, kind in (
        ("--from-votes", from_votes, "comparisons"),
        ("--from-ratings", from_ratings, "ratings"),
        ("--from-rankings", from_rankings, "rankings"),
    ):
        if value is not None and BUILDER_OF_STRATEGY[value].value != kind:
            fail(f"{flag} does not take {value!r}", code=2)

    if aspect_weights is not None:
        from prefkit.build.weights import parse_aspect_weights

        try:
            parse_aspect_weights(aspect_weights)
        except ValueError as e:
            fail(f"--aspect-weights: {e}", code=2)

    def run_build(t: Any) -> Any:
        return build_pairs(
            t,
            strat,
            ties,  # type: ignore[arg-type]
            min_margin,
            min_agreement,
            aspect_weights,
            curriculum,
            np.random.default_rng(seed),
            margin,  # type: ignore[arg-type]
        )

    from prefkit.build.stream import STREAMED
    from prefkit.io.canonical import single_canonical

    one = single_canonical(src) if fmt in (None, "canonical") else None
    if (
        one in STREAMED
        and condition is None
        and not curriculum
        and to != "kto"
        and (strat is None or BUILDER_OF_STRATEGY[strat] is one)
    ):
        assert one is not None
        _note_unused(one, min_agreement, aspect_weights)
        streamed = _pairs_streamed(src, out, one, run_build, to, conversational)
        if as_json:
            print_json(streamed)
            return
        _print_report(streamed, out, Path(str(out) + ".build.json"))
        return
    with console.status(f"reading {src}"):
        result = read(src, fmt)
    console.print(f"read [bold]{src}[/bold] as [cyan]{result.reader}[/cyan]: {result.why}")
    report_rejects(src, result.rejects)
    if not result.tables:
        fail(f"{src}: no valid row ({len(result.rejects)} rejected)")
    if strat is not None:
        want = BUILDER_OF_STRATEGY[strat]
        if want not in result.tables:
            have = ", ".join(k.value for k in result.tables)
            fail(f"{src}: strategy {strat!r} needs {want.value}, the input has {have}")
        table = result.tables[want]
    else:
        usable = [k for k in result.tables if k in DEFAULT_STRATEGY]
        if not usable:
            fail(f"{src}: no table pairs can be built from ({', '.join(result.tables)})")
        table = result.tables[usable[0]]
    from prefkit.schema import kind_of

    _note_unused(kind_of(table), min_agreement, aspect_weights)
    described = None
    if personas is not None:
        from prefkit.build.groups import read_personas

        try:
            described = read_personas(personas)
        except ValueError as e:
            fail(str(e))
    try:
        if condition is not None:
            from prefkit.build.groups import conditioned_pairs

            built = conditioned_pairs(table, condition, run_build, described)
        else:
            built = run_build(table)
    except ValueError as e:
        fail(f"{src}: {e}" if condition is not None else str(e))
    report: dict[str, Any] = dict(built.report)
    report.update(
        {
            "input": str(src),
            "reader": result.reader,
            "rejected_on_read": len(result.rejects),
            "output": str(out),
            "to": to,
        }
    )
    n_tie = built.table.column("tie").to_pylist().count(True)
    _warn(report, to, ties, n_tie)
    report_path = Path(str(out) + ".build.json")
    conv = True if conversational else None
    unpaired = None
    if to == "kto":
        unpaired = (
            unpaired_from_binary(table)
            if report["builder"] == "binary"
            else unpaired_from_pairs(built.table)
        )
        report["unpaired"] = unpaired.report
    report["rows_written"] = report["unpaired"]["rows_out"] if to == "kto" else report["rows_out"]
    if report["rows_written"] == 0:
        _fail_nothing_written(src, report, report_path)
    if to == "canonical":
        written = write_table(built.table, out)
    elif to == "trl":
        written = write_table(to_trl(built.table, conv), out)
    else:
        assert unpaired is not None
        written = write_table(to_kto(unpaired.table, conv), out)
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    if as_json:
        print_json(report)
        return
    _print_report(report, written, report_path)


def _note_unused(kind: Any, min_agreement: float, aspect_weights: str | None) -> None:
    from prefkit.schema import Kind

    for flag, given, applies in (
        ("--min-agreement", min_agreement > 0, kind is Kind.COMPARISONS),
        ("--aspect-weights", aspect_weights is not None, kind is Kind.RATINGS),
    ):
        if given and not applies:
            console.print(f"[yellow]note:[/yellow] {flag} does not apply to {kind.value}; ignored")


def _warn(report: dict[str, Any], to: str, ties: str, n_tie: int) -> None:
    warnings = []
    if to == "trl" and ties == "keep" and n_tie:
        warnings.append(
            f"{n_tie} pair(s) are ties (tie = true): a plain DPOTrainer reads every row as chosen "
            "preferred over rejected; train them with a tie-aware loss (prefkit align train "
            "--loss dpo_davidson or dpo_rao_kupper) or build with --ties drop|half"
        )
    report["warnings"] = warnings
    for w in warnings:
        console.print(f"[yellow]warning:[/yellow] {w}", soft_wrap=True)


def _pairs_streamed(
    src: Path, out: Path, kind: Any, run_build: Any, to: str, conversational: bool
) -> dict[str, Any]:
    """`pairs` on one canonical Parquet file, batch by batch (build/stream.py): the same
    OUT and report as the whole-table path, without holding the file's text."""
    from rich.progress import Progress

    from prefkit.build.export import TableWriter, is_conversational, to_trl
    from prefkit.build.result import PAIRS_SCHEMA
    from prefkit.build.stream import light_table, rankings_batches, restore
    from prefkit.io.canonical import canonical_rows
    from prefkit.schema import Kind

    console.print(
        f"read [bold]{src}[/bold] as [cyan]canonical[/cyan]: Parquet file with prefkit schema "
        "metadata (streamed)"
    )
    total = canonical_rows(src)
    report_path = Path(str(out) + ".build.json")
    # canonical pairs first; --to trl converts them afterwards (its string/messages choice
    # depends on every pair)
    pairs_out = out if to == "canonical" else out.with_name(f".{out.name}.pairs.parquet")
    writer = TableWriter(pairs_out)
    try:
        with Progress(console=console, transient=True) as prog:
            if kind is Kind.RANKINGS:
                task = prog.add_task("building pairs", total=total)
                batches, rep = rankings_batches(src, run_build, lambda k: prog.advance(task, k))
            else:
                task = prog.add_task("reading (ids and response hashes)", total=total)
                light = light_table(src, kind, lambda k: prog.advance(task, k))
                built = run_build(light.table)
                rep = built.report
                task = prog.add_task("writing pairs", total=total)
                batches = restore(src, kind, light, built, lambda k: prog.advance(task, k))
            n_tie = 0
            for b in batches:
                n_tie += b.column("tie").to_pylist().count(True)
                if b.num_rows:
                    writer.write(b)
    except ValueError as e:
        writer.abort()
        fail(str(e))
    except BaseException:
        writer.abort()
        raise
    report: dict[str, Any] = dict(rep)
    report.update(
        {"input": str(src), "reader": "canonical", "rejected_on_read": 0, "output": str(out),
         "to": to}
    )  # fmt: skip
    _warn(report, to, report["ties"], n_tie)
    report["rows_written"] = report["rows_out"]
    if report["rows_written"] == 0:
        writer.abort()
        _fail_nothing_written(src, report, report_path)
    writer.close(PAIRS_SCHEMA)
    if to == "trl":
        try:
            conv = True if conversational else None
            if conv is None:
                conv = any(
                    is_conversational(b, ("prompt", "chosen", "rejected"))
                    for b in _batches(pairs_out)
                )
            trl = TableWriter(out)
            try:
                for b in _batches(pairs_out):
                    trl.write(to_trl(b, conv))
            except BaseException:
                trl.abort()
                raise
            trl.close(to_trl(PAIRS_SCHEMA.empty_table(), conv).schema)
        finally:
            pairs_out.unlink(missing_ok=True)
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return report


def _batches(path: Path) -> Any:
    import pyarrow as pa

    from prefkit.io.base import parquet_batches

    for b in parquet_batches(path, 1 << 14):
        yield pa.Table.from_batches([b])


def _print_report(report: dict[str, Any], written: Path, report_path: Path) -> None:
    from rich.table import Table

    t = Table(title=f"prefkit pairs ({report['builder']})", show_header=False, box=None)
    for key in ("rows_in", "candidates", "pairs_out", "rows_written"):
        t.add_row(key, str(report[key]))
    for reason, n in report["dropped"].items():
        if n:
            t.add_row(f"dropped: {reason}", str(n))
    for reason, n in report["rows_unused"].items():
        t.add_row(f"rows unused: {reason}", str(n))
    if "kto" in report:
        t.add_row("desirable:undesirable", report["kto"]["ratio"])
    console.print(t)
    console.print(f"wrote {written} and {report_path}")


def split_cmd(
    src: Path = typer.Argument(
        ..., metavar="IN", help="Any file prefkit reads, or a pairs Parquet file."
    ),
    out_dir: Path = typer.Argument(
        ..., metavar="OUT_DIR", help="Directory for train/test(/val) Parquet."
    ),
    by: str = typer.Option("prompt", "--by", help="Group by: prompt | source | annotator."),
    test: float = typer.Option(0.1, "--test", help="Test fraction (of rows)."),
    val: float = typer.Option(0.0, "--val", help="Validation fraction (of rows)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed: same input + seed = same split."),
    near_dup: bool = typer.Option(
        False, "--near-dup", help="Also keep near-duplicate prompts (MinHash/LSH) together."
    ),
    threshold: float = typer.Option(
        0.7, "--threshold", help="Near-duplicate Jaccard threshold (character 5-grams)."
    ),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    allow_empty: bool = typer.Option(
        False, "--allow-empty", help="Write the split even when one of its parts has no row."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the split report as JSON."),
) -> None:
    """Split into train/test(/val) with no prompt (or source/annotator) in two splits,
    stratified by source, deterministic for a seed; writes split.json. A `prefkit pairs`
    output (pairs table, TRL or KTO export) is split as is: every column kept."""
    import pyarrow.parquet as pq

    from prefkit.build.export import read_build_output
    from prefkit.build.splits import SPLIT_BY, split
    from prefkit.io.canonical import save
    from prefkit.io.detect import read

    if by not in SPLIT_BY:
        fail(f"--by must be one of {', '.join(SPLIT_BY)}, got {by!r}", code=2)
    if not (0 < test < 1 and 0 <= val < 1 and test + val < 1):
        fail("--test and --val are fractions in (0, 1) with test + val < 1", code=2)
    if not 0 < threshold <= 1:
        fail(f"--threshold must be in (0, 1], got {threshold}", code=2)
    check_output(out_dir, src, "dir")
    with console.status(f"reading {src}"):
        result = read(src, fmt)
    console.print(f"read [bold]{src}[/bold] as [cyan]{result.reader}[/cyan]: {result.why}")
    report_rejects(src, result.rejects)
    own = read_build_output(src) if fmt is None else None
    kind = None if own is not None else result.kind
    table = own if own is not None else result.table
    try:
        res = split(table, by, test, val, seed, near_dup, threshold)  # type: ignore[arg-type]
    except ValueError as e:
        fail(str(e))
    report = dict(res.report)
    report["input"] = str(src)
    report["layout"] = "as input" if own is not None else f"canonical {result.kind.value}"
    empty = [name for name, e in report["splits"].items() if e["rows"] == 0]
    if empty and not allow_empty:
        counts = ", ".join(f"{n} {e['rows']} rows" for n, e in report["splits"].items())
        fail(
            f"{src}: split {', '.join(empty)} would be empty ({counts}; {report['groups']} "
            f"group(s) by {by}); use more groups, another --by, or --allow-empty"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, t in res.tables.items():
        path = out_dir / f"{name}.parquet"
        if kind is not None:
            save(t, path, kind)
        else:
            pq.write_table(t, path, compression="zstd")
    (out_dir / "split.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    if as_json:
        print_json(report)
        return
    for name, entry in report["splits"].items():
        console.print(f"{name}: {entry['rows']} rows, {entry['groups']} groups")
    console.print(
        f"shared prompt_ids across splits: {report['shared_prompt_ids']}; "
        f"near-duplicate merges: {report['near_duplicate_merges']}; wrote {out_dir}"
    )


def register(app: typer.Typer) -> None:
    app.command("pairs")(pairs_cmd)
    app.command("split")(split_cmd)


def _fail_nothing_written(src: Any, report: dict[str, Any], report_path: Path) -> NoReturn:
    """No pair to write: the report is saved, and the error names why rows were not used."""
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    reasons = {k: v for k, v in report["dropped"].items() if v}
    reasons.update({f"unused: {k}": v for k, v in report["rows_unused"].items() if v})
    why = ", ".join(f"{k} {v}" for k, v in reasons.items()) or "no candidate pair"
    fail(
        f"{src}: no pair to write ({report['rows_in']} rows in, {report['candidates']} "
        f"candidates; {why}); nothing written but {report_path}"
    )
