"""`prefkit convert` and `prefkit inspect`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from prefkit._cli import (
    ENGINE_HELP,
    check_output,
    console,
    engine_of,
    fail,
    parse_mapping,
    parse_value_maps,
    print_json,
    report_rejects,
)


def inspect_cmd(
    path: Path = typer.Argument(..., help="Any file prefkit reads (format autodetected)."),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    mapping: list[str] | None = typer.Option(None, "--map", help="column=field, repeatable."),
    value_map: list[str] | None = typer.Option(
        None, "--value-map", help="field:raw=value, e.g. outcome:left=a. Repeatable."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """What is in a feedback file: kind, rows, outcomes, prompts, annotators, models, lengths."""
    from prefkit.io.base import ReadOptions
    from prefkit.io.detect import read
    from prefkit.io.stats import describe

    opts = ReadOptions(mapping=parse_mapping(mapping), value_maps=parse_value_maps(value_map))
    streamed = fmt in (None, "canonical") and not mapping and not value_map
    if streamed and (summary := _describe_canonical(path)) is not None:
        if as_json:
            print_json(summary)
            return
        from rich.markup import escape

        console.print(
            f"[bold]{escape(str(path))}[/bold]  read as [cyan]canonical[/cyan] "
            f"({escape(CANONICAL_WHY)}; streamed)",
            soft_wrap=True,
        )
        console.print(summary_table(summary))
        return
    with console.status(f"reading {path}"):
        result = read(path, fmt, opts)
    if not result.tables or all(t.num_rows == 0 for t in result.tables.values()):
        report_rejects(path, result.rejects)
        fail(f"{path}: no valid row ({len(result.rejects)} rejected)")
    summary = describe(result.table)
    summary["reader"] = result.reader
    summary["rejected"] = len(result.rejects)
    if result.notes:
        summary["notes"] = result.notes
    if len(result.tables) > 1:
        summary["other_tables"] = {k.value: t.num_rows for k, t in result.tables.items()}
    if as_json:
        print_json(summary)
        return
    from rich.markup import escape

    console.print(
        f"[bold]{escape(str(path))}[/bold]  read as [cyan]{result.reader}[/cyan] "
        f"({escape(result.why)})",
        soft_wrap=True,
    )
    console.print(summary_table(summary))
    report_rejects(path, result.rejects)


CANONICAL_WHY = "Parquet file with prefkit schema metadata"


def _describe_canonical(path: Path) -> dict[str, Any] | None:
    """`inspect`'s summary of one canonical Parquet file, read batch by batch (memory: one
    batch plus the summary's statistics, docs/scale.md); None when `path` is not one."""
    from rich.progress import Progress

    from prefkit.io.canonical import canonical_rows, iter_canonical, single_canonical
    from prefkit.io.stats import Describer

    kind = single_canonical(path)
    if kind is None:
        return None
    d = Describer(kind)
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"reading {path.name}", total=canonical_rows(path))
        for batch in iter_canonical(path, kind):
            d.add(batch)
            prog.advance(task, batch.num_rows)
    if d.rows == 0:
        fail(f"{path}: no valid row (0 rejected)")
    summary = d.result()
    summary["reader"] = "canonical"
    summary["rejected"] = 0
    return summary


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def summary_table(summary: dict[str, Any]) -> Any:
    """`inspect`'s summary as a table a person reads: counts with separators, floats rounded,
    outcome shares, length quantiles in columns, score histograms as bars."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    n = max(int(summary.get("rows") or 0), 1)
    for key in ("kind", "rows", "prompts", "annotators", "models"):
        t.add_row(key, _num(summary[key]))
    if summary.get("outcomes"):
        t.add_row(
            "outcomes",
            "  ".join(
                f"{k} {_num(v)} ({100 * v / n:.0f}%)" for k, v in summary["outcomes"].items()
            ),
        )
    if "labels" in summary:
        up, down = summary["labels"]["true"], summary["labels"]["false"]
        t.add_row(
            "labels",
            f"👍 {_num(up)} ({100 * up / n:.0f}%)  👎 {_num(down)} ({100 * down / n:.0f}%)",
        )
    if "scores" in summary:
        h = summary["scores"]
        labels = (
            [_num(float(v)) for v in h["values"]]
            if "values" in h
            else [
                f"{_num(a)}–{_num(b)}" for a, b in zip(h["edges"][:-1], h["edges"][1:], strict=True)
            ]
        )
        top = max(h["counts"] or [1])
        bars = [
            f"{lab:>9} {'█' * max(1, round(24 * c / top)) if c else ''} {_num(c)}"
            for lab, c in zip(labels, h["counts"], strict=True)
        ]
        t.add_row("scores", "\n".join(bars))
    for key in ("sources", "aspects"):
        vals = summary.get(key) or []
        shown = ", ".join(escape(str(v)) for v in vals[:8]) + (
            f", … ({len(vals)})" if len(vals) > 8 else ""
        )
        t.add_row(key, shown or "-")
    lengths = {k: v for k, v in (summary.get("text_length_chars") or {}).items() if v}
    if lengths:
        q = Table(box=None, pad_edge=False, header_style="dim")
        q.add_column("chars")
        for name in ("min", "p25", "p50", "p75", "p95", "max"):
            q.add_column(name, justify="right")
        for col, quant in lengths.items():
            q.add_row(
                col, *(_num(float(quant[k])) for k in ("min", "p25", "p50", "p75", "p95", "max"))
            )
        t.add_row("text length", q)
    if "identical_responses" in summary:
        t.add_row("identical responses", _num(summary["identical_responses"]))
    t.add_row("rejected", _num(summary["rejected"]))
    for k, v in (summary.get("notes") or {}).items():
        t.add_row("note", f"{escape(k)}: {_num(v)}")
    if "other_tables" in summary:
        t.add_row("tables", ", ".join(f"{k} {_num(v)}" for k, v in summary["other_tables"].items()))
    return t


def convert_cmd(
    src: Path | None = typer.Argument(None, help="Input file or folder (format autodetected)."),
    out: Path | None = typer.Argument(None, help="Output; format from --to or the extension."),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    to: str | None = typer.Option(
        None,
        "--to",
        help="Writer: canonical, trl, trl-unpaired, hf, csv, jsonl (default from the extension).",
    ),
    mapping: list[str] | None = typer.Option(
        None, "--map", help="column=field (generic reader), repeatable."
    ),
    value_map: list[str] | None = typer.Option(
        None, "--value-map", help="field:raw=value, e.g. outcome:left=a. Repeatable."
    ),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first bad row (exit 1)."),
    conversational: bool = typer.Option(
        False, "--conversational", help="TRL writers: write message lists instead of strings."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="--to hf: replace the contents of a non-empty OUT folder."
    ),
    list_formats: bool = typer.Option(
        False, "--list-formats", help="List the readers (detection order) and writers, then exit."
    ),
    engine: str | None = typer.Option(None, "--engine", help=ENGINE_HELP),
) -> None:
    """Convert any supported feedback file to canonical Parquet or a trainer format."""
    from prefkit.io.base import ReadOptions, write_rejects
    from prefkit.io.convert import convert
    from prefkit.io.writers import FORMATS, guess_format

    if list_formats:
        _print_formats()
        return
    if src is None or out is None:
        fail("convert needs IN and OUT (or --list-formats)", code=2)
    if to is not None and to not in FORMATS:
        fail(f"--to {to}: unknown format; known: {', '.join(FORMATS)}", code=2)
    target = to or guess_format(out)
    if target == "hf":
        check_output(out, src, "dir", empty=True, overwrite=overwrite)
    else:
        check_output(out, src, "file")
    opts = ReadOptions(
        strict=strict,
        mapping=parse_mapping(mapping),
        value_maps=parse_value_maps(value_map),
        engine=engine_of(engine),
    )
    with console.status(f"converting {src} -> {out}"):
        done = convert(src, out, fmt, target, opts, conversational=conversational)
    console.print(f"read [bold]{src}[/bold] as [cyan]{done.reader}[/cyan]: {done.why}")
    rejects_path = Path(str(out).rstrip("/") + ".rejects.jsonl")
    if done.rejects:
        write_rejects(done.rejects, rejects_path)
        console.print(
            f"[yellow]{len(done.rejects)} rejected row(s)[/yellow] written to {rejects_path} "
            f"(first: {done.rejects[0].message()})"
        )
    for k, v in done.notes.items():
        console.print(f"note: {k}: {v:,}")
    if not done.rows:
        fail(f"{src}: no valid row ({len(done.rejects)} rejected)")
    kinds = ", ".join(f"{n} {k.value}" for k, n in done.rows.items())
    console.print(f"wrote {done.written} row(s) to {out} ({kinds}); {len(done.rejects)} rejected")


def _print_formats() -> None:
    import prefkit.io.readers  # noqa: F401
    from prefkit.io.base import READERS
    from prefkit.io.writers import FORMATS

    typer.echo("readers (tried in this order; name one with --from):")
    for name, r in READERS.items():
        typer.echo(f"  {name:<22} {r.description}")
    typer.echo("writers (--to, else from the extension of OUT):")
    for name, d in FORMATS.items():
        typer.echo(f"  {name:<22} {d}")


def register(app: typer.Typer) -> None:
    app.command("convert")(convert_cmd)
    app.command("inspect")(inspect_cmd)
