"""`prefkit audit`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from prefkit._cli import ENGINE_HELP, console, engine_of, fail, print_json, report_rejects


def audit_cmd(
    src: Path = typer.Argument(
        ..., metavar="IN", help="Any comparisons (or rankings) file prefkit reads."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Directory for report.html, findings.parquet, summary.json."
    ),
    fix: Path | None = typer.Option(
        None, "--fix", help="Write the cleaned dataset here (plus removed.parquet, changelog.json)."
    ),
    policy: str | None = typer.Option(
        None,
        "--policy",
        help="issue=action,... on top of the default (actions: drop, flip, annotate, keep; "
        "'none' clears the default). Default: drop exact_duplicate, identical_responses, "
        "empty_response; annotate noisy_label.",
    ),
    against: Path | None = typer.Option(
        None, "--against", help="Evaluation file: flag prompts that leak into it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
    threshold: float = typer.Option(
        0.8, "--near-dup-threshold", help="Estimated Jaccard similarity for near duplicates."
    ),
    checks: str | None = typer.Option(
        None, "--checks", help="Comma-separated subset of checks (default: all)."
    ),
    embeddings: bool = typer.Option(
        False, "--embeddings", help="Add MiniLM embeddings to the noise model ([train] extra)."
    ),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    engine: str | None = typer.Option(None, "--engine", help=ENGINE_HELP),
) -> None:
    """What is wrong with this feedback data, and what should be dropped or fixed."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from prefkit.audit.fix import apply_fix, parse_policy, write_fix
    from prefkit.audit.run import CHECKS, run_audit
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    if not 0.0 < threshold <= 1.0:
        fail("--near-dup-threshold must be in (0, 1]", code=2)
    from prefkit._cli import check_output

    if fix is not None:
        check_output(fix, src, "file")
    if out is not None:
        check_output(out, src, "dir")
    try:
        pol = parse_policy(policy)
    except ValueError as e:
        fail(f"--policy: {e}", code=2)
    chosen = tuple(c.strip() for c in checks.split(",")) if checks else CHECKS
    bad = [c for c in chosen if c not in CHECKS]
    if bad:
        fail(f"--checks: unknown {bad}; known: {', '.join(CHECKS)}", code=2)
    from prefkit.io.canonical import canonical_files

    eng = engine_of(engine)

    # canonical comparisons Parquet is read batch by batch by the audit itself (bounded
    # memory); --fix rewrites the table, so it reads it whole
    files = canonical_files(src, Kind.COMPARISONS) if fmt in (None, "canonical") else None
    if files is not None and fix is None:
        import pyarrow.parquet as pq

        table: Any = files
        n_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        if n_rows == 0:
            fail(f"{src}: no valid row (0 rejected)")
    else:
        table = _read_table(src, fmt, eng)
        n_rows = table.num_rows
    eval_table = None
    if against is not None:
        eval_table = read(against).table
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("audit", total=len(chosen) + 3)

        def progress(step: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"audit: {step}")

        res = run_audit(
            table,
            out,
            checks=chosen,
            against=eval_table,
            progress=progress,
            near_dup_threshold=threshold,
            embeddings=embeddings,
            source_name=src.name,
            engine=eng,
        )
    if fix is not None:
        fixed = apply_fix(table, res, pol)
        paths = write_fix(fixed, fix, pol)
        c = fixed.counts
        console.print(
            f"fix: {c['rows_in']} rows in, {c['rows_out']} out, {c['rows_removed']} removed "
            f"({', '.join(f'{k} {v}' for k, v in c.items() if ':' in k) or 'no change'}); "
            f"wrote {paths['out']}, {paths['removed']}, {paths['changelog']}"
        )
        res.summary["fix"] = fixed.counts
    if as_json:
        print_json(res.summary)
        return
    fl = res.summary["flagged"]
    info = fl["by_severity"].get("info", 0)
    console.print(
        f"[bold]{src}[/bold]: {n_rows} comparisons, {fl['rows']} rows with errors or "
        f"warnings ({100 * fl['share']:.1f}%), {info} more worth a look (info)"
    )
    console.print(res.summary["health"]["headline"], markup=False)
    for sev in ("error", "warning", "info"):
        for issue, n in sorted(fl["by_issue_default"][sev].items(), key=lambda kv: -kv[1]):
            console.print(f"  {sev:<7} {issue}: {n}")
    if out is not None:
        console.print(f"report: {out / 'report.html'}")


def _read_table(src: Path, fmt: str | None, eng: str) -> Any:
    """Comparisons from any reader (rankings become the comparisons they imply)."""
    from prefkit.io.base import ReadOptions
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    result = read(src, fmt, ReadOptions(engine=eng))
    report_rejects(src, result.rejects)
    if Kind.COMPARISONS in result.tables:
        table = result.tables[Kind.COMPARISONS]
    elif Kind.RANKINGS in result.tables:
        from prefkit.audit.frame import comparisons_from_rankings

        ranked = result.tables[Kind.RANKINGS]
        table = comparisons_from_rankings(ranked)
        console.print(
            f"{src}: {ranked.num_rows} rankings, audited as the {table.num_rows} comparisons "
            "they imply (every pair of a ranking)"
        )
    else:
        fail(
            f"{src}: the audit reads comparisons (or rankings); this file holds {result.kind.value}"
        )
    if table.num_rows == 0:
        fail(f"{src}: no valid row ({len(result.rejects)} rejected)")
    return table


def register(app: typer.Typer) -> None:
    app.command("audit")(audit_cmd)
