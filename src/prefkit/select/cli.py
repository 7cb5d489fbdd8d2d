"""`prefkit select IN OUT --budget N|P% --for train|annotate [--by ...]` (docs/select.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from prefkit._cli import check_output, console, fail, json_default, print_json, report_rejects

PURPOSES = ("train", "annotate")


def summary_path(out: Path) -> Path:
    """Where the selection's summary goes: OUT.select.json next to OUT."""
    return Path(str(out) + ".select.json")


def _progress() -> Any:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=console, transient=True)  # fmt: skip


def _read_table(src: Path, fmt: str | None, what: str) -> Any:
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    if not src.exists():
        fail(f"{src}: file not found")
    result = read(src, fmt)
    console.print(f"read [bold]{src}[/bold] as [cyan]{result.reader}[/cyan]: {result.why}",
                  soft_wrap=True)  # fmt: skip
    report_rejects(src, result.rejects)
    if Kind.COMPARISONS not in result.tables:
        kinds = ", ".join(k.value for k in result.tables) or "nothing"
        fail(f"{src}: {what} needs pairwise comparisons, the file holds {kinds}")
    return result.tables[Kind.COMPARISONS], len(result.rejects)


def select_cmd(
    src: Path = typer.Argument(..., metavar="IN", help="Pairs to choose from (any format prefkit reads)."),
    out: Path = typer.Argument(..., metavar="OUT", help="The subset (train) or a `prefkit serve` campaign file (annotate, .jsonl)."),
    budget: str = typer.Option(..., "--budget", help="Rows to keep: N or P% of IN."),
    purpose: str = typer.Option(..., "--for", help="train | annotate."),
    by: str | None = typer.Option(None, "--by", help="Criteria with weights, e.g. audit,margin=2,diversity (see docs/select.md)."),
    seed: int = typer.Option(0, "--seed", help="Seed for ties and sampling (a run is deterministic for a seed)."),
    findings: Path | None = typer.Option(None, "--findings", help="findings.parquet of an earlier `prefkit audit` (else the audit runs)."),
    rm: str | None = typer.Option(None, "--rm", help="Reward model directory for the margin criterion (else reward_a/reward_b columns or the audit's model)."),
    band: str = typer.Option("0.25:0.95", "--band", help="Margin sweet spot as quantiles LO:HI."),
    balance: str | None = typer.Option(None, "--balance", help="Source proportions: equal (default) or name=share,..."),
    embeddings: Path | None = typer.Option(None, "--embeddings", help="Cached prompt embeddings (Parquet: prompt_id, embedding)."),
    cache: Path | None = typer.Option(None, "--cache", help="Folder of the MiniLM embedding cache."),
    votes: list[Path] = typer.Option([], "--votes", help="Labels so far (annotate; repeatable): battles, human or judge votes."),
    judges: str | None = typer.Option(None, "--judges", help="Comma-separated annotators that are judges (default: names starting with judge)."),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:  # fmt: skip
    """Choose which pairs to train on, or which to send to annotators next, under a budget;
    writes the subset and OUT.select.json (why each row was kept, counts per criterion)."""
    from prefkit.select.criteria import DEFAULT_BY, SelectError, parse_by

    if purpose not in PURPOSES:
        fail(f"--for must be one of {', '.join(PURPOSES)}, got {purpose!r}", code=2)
    try:
        weights = parse_by(by or DEFAULT_BY[purpose], purpose)
    except ValueError as e:
        fail(f"--by: {e}", code=2)
    try:
        lo_s, _, hi_s = band.partition(":")
        lo, hi = float(lo_s), float(hi_s)
        if not 0 <= lo < hi <= 1:
            raise ValueError
    except ValueError:
        fail(f"--band must be LO:HI quantiles with 0 <= LO < HI <= 1, got {band!r}", code=2)
    if purpose == "annotate" and out.suffix not in (".jsonl", ".json"):
        fail(f"{out}: a campaign file for `prefkit serve` is written as JSONL; name it *.jsonl",
             code=2)  # fmt: skip
    if purpose == "train":
        from prefkit.io.writers import guess_format

        try:
            guess_format(out)
        except Exception as e:  # noqa: BLE001 - InputError/OptionError with the reason
            fail(str(e), code=2)
    for p in (src, findings, embeddings, *votes):
        if p is not None and not p.exists():
            fail(f"{p}: file not found")
    check_output(out, [src, *votes])
    check_output(summary_path(out), [src])
    try:
        with _progress() as prog:
            task = prog.add_task("reading", total=None)

            def step(name: str) -> None:
                prog.update(task, description=name)

            if purpose == "train":
                sel, table, n_rej = _train(src, fmt, budget, weights, seed, findings, rm,
                                           (lo, hi), balance, embeddings, cache, step)  # fmt: skip
            else:
                sel, table, n_rej = _annotate(src, budget, weights, votes, fmt, judges, seed,
                                              embeddings, cache, step)  # fmt: skip
    except SelectError as e:
        fail(str(e))
    except ValueError as e:
        fail(f"{src}: {e}")
    _write(sel, table, out, purpose)
    s = sel.summary | {"out": str(out), "reader_rejects": n_rej,
                       "budget": sel.summary.get("budget", budget)}  # fmt: skip
    sp = summary_path(out)
    s["kept_rows"] = [
        {"rank": r + 1, "id": i, "reason": why}
        for r, (i, why) in enumerate(zip(_ids(table, sel.rows), sel.reasons, strict=True))
    ]
    sp.write_text(json.dumps(s, indent=2, ensure_ascii=False, default=json_default) + "\n",
                  encoding="utf-8")  # fmt: skip
    if as_json:
        print_json({k: v for k, v in s.items() if k != "kept_rows"})
        return
    for note in s.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
    n_in = s.get("input_rows", s.get("candidates"))
    console.print(f"kept {s['kept']} of {n_in} rows for {purpose}; wrote {out} and {sp}",
                  soft_wrap=True)  # fmt: skip


def _ids(table: Any, rows: Any) -> list[str]:
    col = table.column("id").to_pylist() if "id" in table.column_names else None
    return [str(col[i]) if col is not None else str(i) for i in rows.tolist()]


def _budget_of(budget: str, n: int, notes: list[str]) -> tuple[int, dict[str, Any]]:
    from prefkit.select.criteria import parse_budget

    try:
        k, asked = parse_budget(budget, n)
    except ValueError as e:
        fail(f"--budget: {e} (use N or P%, e.g. 1000 or 25%)", code=2)
    if asked > n:
        notes.append(f"the budget {asked} is larger than the data ({n} rows): keeping all {n}")
    return k, {"asked": budget, "rows": k}


def _train(
    src: Path, fmt: str | None, budget: str, weights: dict[str, float], seed: int,
    findings: Path | None, rm: str | None, band: tuple[float, float], balance: str | None,
    embeddings: Path | None, cache: Path | None, step: Any,
) -> tuple[Any, Any, int]:  # fmt: skip
    import pyarrow.parquet as pq

    from prefkit.select.criteria import SelectError
    from prefkit.select.train import select_train

    table, n_rej = _read_table(src, fmt, "select --for train")
    notes: list[str] = []
    k, b = _budget_of(budget, table.num_rows, notes)
    ft = None
    if findings is not None:
        try:
            ft = pq.read_table(findings)
        except Exception as e:  # noqa: BLE001 - any unreadable file: one line
            raise SelectError(f"{findings}: cannot read findings ({e})") from None
        if not {"row_id", "severity", "issue"} <= set(ft.column_names):
            raise SelectError(
                f"{findings}: not an audit findings file (needs row_id, severity, issue)"
            )
    if rm is not None and rm != "length" and not Path(rm).exists():
        raise SelectError(f"--rm {rm}: no such reward model directory")
    sel = select_train(table, k, weights, seed, ft, rm, embeddings, cache, band, balance, step)
    sel.summary["notes"] = notes + sel.summary["notes"]
    sel.summary["budget"] = b
    return sel, table, n_rej


def _annotate(
    src: Path, budget: str, weights: dict[str, float], votes: list[Path], fmt: str | None,
    judges: str | None, seed: int, embeddings: Path | None, cache: Path | None, step: Any,
) -> tuple[Any, Any, int]:  # fmt: skip
    import pyarrow as pa

    from prefkit.select.annotate import select_annotate
    from prefkit.serve.items import read_items

    items = read_items(src)
    report_rejects(src, items.rejects)
    t = items.table
    two = [i for i, r in enumerate(t.column("responses").to_pylist()) if len(r) == 2]
    notes: list[str] = []
    if len(two) < t.num_rows:
        notes.append(f"{t.num_rows - len(two)} candidate(s) with more than two responses left out "
                     "(select chooses pairs)")  # fmt: skip
        t = t.take(pa.array(two, pa.int64()))
    k, b = _budget_of(budget, t.num_rows, notes)
    vt = None
    if votes:
        parts = [_read_table(v, fmt, "--votes")[0] for v in votes]
        from prefkit.schema import Kind, conform

        vt = pa.concat_tables([conform(p, Kind.COMPARISONS) for p in parts])
    jl = [j.strip() for j in judges.split(",") if j.strip()] if judges else None
    sel = select_annotate(t, k, weights, vt, jl, seed, embeddings, cache, step)
    sel.summary["notes"] = notes + sel.summary["notes"]
    sel.summary["budget"] = b
    sel.summary["reader_rejects_items"] = len(items.rejects)
    return sel, t, len(items.rejects)


def _write(sel: Any, table: Any, out: Path, purpose: str) -> None:
    import pyarrow as pa

    out.parent.mkdir(parents=True, exist_ok=True)
    rows = sel.rows
    if purpose == "train":
        from prefkit.io.base import ReadResult
        from prefkit.io.writers import write
        from prefkit.schema import Kind
        from prefkit.select.train import selected_table

        sub = selected_table(table, sel)
        metas = sub.column("meta").to_pylist() if "meta" in sub.column_names else [None] * len(rows)
        new = []
        for r, (m, why) in enumerate(zip(metas, sel.reasons, strict=True)):
            d = dict(m or [])
            d["select_rank"] = str(r + 1)
            d["select_reason"] = why
            if sel.votes is not None:
                d["select_votes"] = str(int(sel.votes.count[rows[r]]))
            new.append(list(d.items()))
        if "meta" in sub.column_names:
            pos = sub.column_names.index("meta")
            sub = sub.set_column(pos, "meta", pa.array(new, type=sub.schema.field("meta").type))
        write(ReadResult({Kind.COMPARISONS: sub}), out)
        return
    from prefkit.schema import messages_text

    _ = messages_text
    with out.open("w", encoding="utf-8") as fh:
        for r, (i, why) in enumerate(zip(rows.tolist(), sel.reasons, strict=True)):
            row = table.slice(i, 1).to_pylist()[0]
            meta = dict(row.get("meta") or [])
            meta |= {"select_rank": str(r + 1), "select_reason": why}
            models = list(row.get("models") or [None, None])
            rec = {
                "id": row["id"],
                "prompt": row["prompt"],
                "prompt_id": row["prompt_id"],
                "response_a": row["responses"][0],
                "response_b": row["responses"][1],
                "model_a": models[0],
                "model_b": models[1],
                "source": row.get("source"),
                "meta": meta,
            }
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def register(app: typer.Typer) -> None:
    app.command("select")(select_cmd)
