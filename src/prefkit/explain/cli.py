"""`prefkit explain` (light imports only at module level)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from prefkit._cli import check_output, console, fail, print_json, report_rejects


def explain_cmd(
    src: Path = typer.Argument(..., metavar="IN", help="Comparisons in any format prefkit reads."),
    out: Path = typer.Option(
        ..., "--out", help="Write report.html, effects.parquet, summary.json."
    ),
    by: str | None = typer.Option(
        None, "--by", help="annotator | source | aspect | group: effects per group and a test."
    ),
    group_key: str = typer.Option(
        "group", "--group-key", help="meta key that --by group reads (default: group)."
    ),
    rounds: int = typer.Option(100, "--rounds", help="Cluster-bootstrap rounds for intervals."),
    level: float = typer.Option(0.95, "--level", help="Confidence level of the intervals."),
    min_votes: int = typer.Option(
        20, "--min-votes", help="Votes a group needs for per-group effects and the basis."
    ),
    directions: int = typer.Option(
        32, "--directions", help="Learned directions in the sparse dictionary (0 = skip)."
    ),
    method: str = typer.Option("sae", "--method", help="sae | dictionary (learned directions)."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Embedding cache (default ~/.cache/prefkit/embeddings)."
    ),
    principles: Path | None = typer.Option(
        None, "--principles", help="File of candidate principles, one per line."
    ),
    propose: int = typer.Option(
        0, "--propose", help="Let the LLM propose N principles from samples of the votes."
    ),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="OpenAI-compatible base URL (principles, direction names)."
    ),
    model: str | None = typer.Option(None, "--model", help="Model name at --endpoint."),
    judge_cache: Path | None = typer.Option(
        None, "--judge-cache", help="LLM answer cache (default ~/.cache/prefkit/judge)."
    ),
    concurrency: int = typer.Option(8, "--concurrency", help="LLM requests in flight at once."),
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY", "--api-key-env", help="Environment variable holding the API key."
    ),
    max_calls: int | None = typer.Option(
        None, "--max-calls", help="Stop before more than N paid LLM calls."
    ),
    context: int = typer.Option(
        0,
        "--context",
        min=0,
        help="Annotator basis: N leading components of the prompts' MiniLM embeddings; the "
        "--context-features' effects may depend on them (0 = off).",
    ),
    context_features: str = typer.Option(
        "refusal",
        "--context-features",
        help="With --context: comma-separated features (or all) whose effect may depend on "
        "the prompt.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of folds, bootstrap and dictionary."),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """What a preference data set rewards, for whom, and how sure we are: feature effects
    (sparse Bradley–Terry/Davidson, length-controlled, bootstrap intervals, stability
    selection), learned directions, principles tested by an LLM, how annotators differ."""
    from prefkit.explain.data import BY_CHOICES

    if by is not None and by not in BY_CHOICES:
        fail(f"--by must be one of {', '.join(BY_CHOICES)}, got {by!r}", code=2)
    if rounds < 2:
        fail("--rounds must be >= 2", code=2)
    if not 0.0 < level < 1.0:
        fail("--level must be between 0 and 1", code=2)
    if min_votes < 1:
        fail("--min-votes must be >= 1", code=2)
    if directions < 0:
        fail("--directions must be >= 0", code=2)
    if method not in ("sae", "dictionary"):
        fail(f"--method must be sae or dictionary, got {method!r}", code=2)
    if propose < 0:
        fail("--propose must be >= 0", code=2)
    if concurrency < 1:
        fail("--concurrency must be >= 1", code=2)
    if max_calls is not None and max_calls < 1:
        fail("--max-calls must be >= 1", code=2)
    wants_llm = principles is not None or propose > 0
    if wants_llm and (endpoint is None or model is None):
        fail("--principles and --propose need an LLM: give --endpoint URL and --model M", code=2)
    if (endpoint is None) != (model is None):
        fail("give --endpoint URL and --model M together", code=2)
    cands: list[str] | None = None
    if principles is not None:
        from prefkit.explain.principles import read_principles

        if not principles.is_file():
            fail(f"--principles {principles}: no such file")
        try:
            cands = read_principles(principles)
        except (OSError, UnicodeDecodeError) as e:
            fail(f"--principles {principles}: cannot read ({e})")
        if not cands:
            fail(f"--principles {principles}: no principle in the file (one per line)")

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from prefkit.explain.data import ExplainInputError, table_batches
    from prefkit.explain.effects import EffectOptions
    from prefkit.explain.llm import LLMError
    from prefkit.explain.run import ExplainOptions, JudgeSpec, explain_batches, write_outputs
    from prefkit.io.canonical import iter_canonical, single_canonical
    from prefkit.io.detect import read
    from prefkit.judge.cache import default_cache_dir
    from prefkit.schema import Kind

    feats = tuple(f.strip() for f in context_features.split(",") if f.strip())
    if not feats:
        fail("--context-features must name at least one feature (or all)", code=2)
    check_output(out, src, "dir")
    one = single_canonical(src) if fmt in (None, "canonical") else None
    if one is not None:  # one canonical Parquet file: the feature pass reads it batch by batch
        console.print(
            f"read [bold]{src}[/bold] as [cyan]canonical[/cyan]: Parquet file with prefkit "
            "schema metadata (streamed)"
        )
        if one is not Kind.COMPARISONS:
            fail(f"{src}: explain needs pairwise comparisons, the file holds {one.value}")
        rejected = 0
        batches: Any = iter_canonical(src, one)
    else:
        result = read(src, fmt)
        console.print(f"read [bold]{src}[/bold] as [cyan]{result.reader}[/cyan]: {result.why}")
        report_rejects(src, result.rejects)
        if Kind.COMPARISONS not in result.tables:
            kinds = ", ".join(k.value for k in result.tables) or "nothing"
            fail(f"{src}: explain needs pairwise comparisons, the file holds {kinds}")
        rejected = len(result.rejects)
        batches = table_batches(result.tables[Kind.COMPARISONS])
        del result
    judge = None
    if endpoint is not None and model is not None:
        judge = JudgeSpec(
            endpoint, model, judge_cache or default_cache_dir(), concurrency, api_key_env,
            max_calls,
        )  # fmt: skip
    opts = ExplainOptions(
        by=by,
        group_key=group_key,
        effects=EffectOptions(rounds=rounds, level=level, min_votes=min_votes, seed=seed),
        directions=directions,
        method=method,
        embed_cache=cache_dir or (default_cache_dir().parent / "embeddings"),
        principles=cands,
        propose=propose,
        judge=judge,
        context=context,
        context_features=feats,
    )
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
        transient=True,
    ) as progress:  # fmt: skip

        def status(desc: str, total: int) -> Callable[[int], None]:
            task = progress.add_task(desc, total=max(total, 1))
            return lambda k: progress.advance(task, k)

        try:
            res = explain_batches(batches, opts, status)
        except ExplainInputError as e:
            fail(f"{src}: {e}")
        except LLMError as e:
            fail(str(e))
    summary = res.summary
    summary["rejected_rows"] = rejected
    paths = write_outputs(out, res, str(src))
    summary["files"] = [str(p) for p in paths]
    for note in summary["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
    if as_json:
        print_json(summary)
        return
    _print(summary)
    console.print(f"wrote {out}/report.html, effects.parquet, summary.json")


def _print(summary: dict[str, Any]) -> None:
    from rich.table import Table

    f = summary["features"]
    t = Table(title=f"what the votes reward ({f['votes']} votes, {f['model']})")
    for c in ("feature", "effect per SD", "interval", "without length", "selected"):
        t.add_column(c, justify="left" if c == "feature" else "right")
    for r in summary["top_effects"]:
        nl = r["coef_no_length"]
        t.add_row(
            r["label"],
            f"{r['coef']:+.3f}",
            f"{r['ci_low']:+.3f} .. {r['ci_high']:+.3f}",
            "—" if nl is None or nl != nl else f"{nl:+.3f}",
            f"{'yes' if r['selected'] else 'no'} ({r['selection_freq']:.2f})",
        )
    console.print(t)
    p = summary.get("principles") or {}
    if p.get("set"):
        s = p["set"]
        console.print(
            f"principles: {len(s['principles'])} reconstruct {s['reconstructed']} of "
            f"{s['decisive_votes']} decisive votes: " + "; ".join(s["principles"]),
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_cmd)
