"""`prefkit convert` and `prefkit inspect`."""

from __future__ import annotations

from pathlib import Path

import typer

from prefkit._cli import console, fail, parse_mapping, print_json


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

    vmaps: dict[str, dict[str, str]] = {}
    for item in value_map or []:
        if ":" not in item or "=" not in item:
            fail(f"--value-map expects field:raw=value, got {item!r}", code=2)
        field, rest = item.split(":", 1)
        raw, val = rest.rsplit("=", 1)
        vmaps.setdefault(field, {})[raw] = val
    result = read(path, fmt, ReadOptions(mapping=parse_mapping(mapping), value_maps=vmaps))
    if not result.tables or all(t.num_rows == 0 for t in result.tables.values()):
        fail(f"{path}: no valid row ({len(result.rejects)} rejected)")
    summary = describe(result.table)
    summary["reader"] = result.reader
    summary["rejected"] = len(result.rejects)
    if len(result.tables) > 1:
        summary["other_tables"] = {k.value: t.num_rows for k, t in result.tables.items()}
    if as_json:
        print_json(summary)
        return
    from rich.table import Table

    console.print(f"[bold]{path}[/bold]  read as [cyan]{result.reader}[/cyan] ({result.why})")
    t = Table(show_header=False, box=None)
    for k, v in summary.items():
        if k in ("reader",):
            continue
        t.add_row(str(k), str(v))
    console.print(t)


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
    list_formats: bool = typer.Option(
        False, "--list-formats", help="List the readers (detection order) and writers, then exit."
    ),
) -> None:
    """Convert any supported feedback file to canonical Parquet or a trainer format."""
    from prefkit.io.base import ReadOptions, write_rejects
    from prefkit.io.convert import convert

    if list_formats:
        _print_formats()
        return
    if src is None or out is None:
        fail("convert needs IN and OUT (or --list-formats)", code=2)
    vmaps: dict[str, dict[str, str]] = {}
    for item in value_map or []:
        if ":" not in item or "=" not in item:
            fail(f"--value-map expects field:raw=value, got {item!r}", code=2)
        field, rest = item.split(":", 1)
        raw, val = rest.rsplit("=", 1)
        vmaps.setdefault(field, {})[raw] = val
    opts = ReadOptions(strict=strict, mapping=parse_mapping(mapping), value_maps=vmaps)
    done = convert(src, out, fmt, to, opts, conversational=conversational)
    console.print(f"read [bold]{src}[/bold] as [cyan]{done.reader}[/cyan]: {done.why}")
    rejects_path = Path(str(out).rstrip("/") + ".rejects.jsonl")
    if done.rejects:
        write_rejects(done.rejects, rejects_path)
        console.print(
            f"[yellow]{len(done.rejects)} rejected row(s)[/yellow] written to {rejects_path} "
            f"(first: {done.rejects[0].message()})"
        )
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
