"""`prefkit rank` and `prefkit aggregate` (light imports only at module level)."""

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
    print_json,
    report_rejects,
)


def _choice(value: str | None, option: str, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        fail(f"{option} must be one of {', '.join(allowed)}, got {value!r}", code=2)


def _read_comparisons(src: Path, fmt: str | None) -> Any:
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    result = read(src, fmt)
    console.print(
        f"read [bold]{src}[/bold] as [cyan]{result.reader}[/cyan]: {result.why}", soft_wrap=True
    )
    report_rejects(src, result.rejects)
    if Kind.COMPARISONS not in result.tables:
        kinds = ", ".join(k.value for k in result.tables) or "nothing"
        fail(f"{src}: rank needs pairwise comparisons, the file holds {kinds}")
    return result.tables[Kind.COMPARISONS], len(result.rejects)


def _count_ray(src: Path, fmt: str | None) -> Any:
    """Battle counts with Ray Data: canonical Parquet is read by the workers (only the three
    columns counting needs), any other format is read here and handed to Ray."""
    from prefkit.engine import map_table
    from prefkit.io.canonical import canonical_files
    from prefkit.rank.data import BATTLE_KEYS, count_batch, counts_from_partials
    from prefkit.schema import Kind

    files = canonical_files(src, Kind.COMPARISONS) if fmt in (None, "canonical") else None
    rejected = 0
    source: Any = files
    if files is None:
        source, rejected = _read_comparisons(src, fmt)
    else:
        console.print(
            f"read [bold]{src}[/bold] with Ray Data: {len(files)} canonical Parquet file(s)",
            soft_wrap=True,
        )
    parts = map_table(source, count_batch, "ray", columns=BATTLE_KEYS)
    return counts_from_partials(parts), rejected


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
        "auto",
        "--ci",
        help="auto | bootstrap | one-step | sandwich | hessian | none (intervals; auto: "
        "bootstrap up to 100 parameters, one-step beyond).",
    ),
    rounds: int = typer.Option(1000, "--rounds", help="Bootstrap rounds (bootstrap, one-step)."),
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
    by: str | None = typer.Option(
        None,
        "--by",
        help="One leaderboard per group and a heterogeneity test: annotator | group (meta.group)"
        " | source | aspect | any meta key.",
    ),
    min_votes: int = typer.Option(
        30, "--min-votes", help="--by: battles a group needs for its own leaderboard."
    ),
    permutations: int = typer.Option(
        1000,
        "--permutations",
        help="--by: permutations for the heterogeneity test's p-value (0 = chi-square only).",
    ),
    fmt: str | None = typer.Option(None, "--from", help="Reader to use instead of detection."),
    top: int | None = typer.Option(
        None,
        "--top",
        help="Print only the N best rows (0 = all; default: all in a pipe, 50 on a terminal).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the leaderboard as JSON."),
    engine: str | None = typer.Option(None, "--engine", help=ENGINE_HELP),
) -> None:
    """Leaderboard from pairwise battles: Bradley–Terry / Davidson / Rao–Kupper, exact sparse
    Newton fit, bootstrap, one-step or sandwich intervals, rank intervals, optional style
    control."""
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
    if top is not None and top < 0:
        fail("--top must be >= 0", code=2)
    if by is not None and style_control:
        fail("--by does not combine with --style-control", code=2)
    if min_votes < 1:
        fail("--min-votes must be >= 1", code=2)
    if permutations < 0:
        fail("--permutations must be >= 0", code=2)
    if by is not None and not by.strip():
        fail("--by needs a column or meta key name", code=2)

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from prefkit.rank.data import RankInputError
    from prefkit.rank.leaderboard import parse_anchor, write_outputs
    from prefkit.rank.run import RAY_UNSUPPORTED, RankOptions, rank_counted, rank_table

    try:
        anchor_spec = parse_anchor(anchor)
    except RankInputError as e:
        fail(str(e), code=2)
    if out is not None:
        check_output(out, src, "dir")
    used = [
        f
        for f, on in zip(RAY_UNSUPPORTED, (by, style_control, baselines, weight), strict=True)
        if on
    ]
    eng = engine_of(engine, connect=False)
    if eng == "ray" and used:
        fail(
            f"--engine ray counts battles per pair; {', '.join(used)} need every single "
            "battle: use --engine local",
            code=2,
        )
    engine_of(engine)
    table, rejected = (None, 0) if eng == "ray" else _read_comparisons(src, fmt)
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
        by=by,
        min_votes=min_votes,
        permutations=permutations,
    )
    total = rounds * (2 if style_control else 1) if ci in ("auto", "bootstrap", "one-step") else 0
    if by is not None:
        total = 0  # the number of groups is known only after reading: an indeterminate bar
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
        transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("fit and interval rounds", total=total or None)
        try:
            if eng == "ray":
                counted, rejected = _count_ray(src, fmt)
                res = rank_counted(counted, opts, progress=lambda n: progress.advance(task, n))
            else:
                res = rank_table(table, opts, progress=lambda n: progress.advance(task, n))
        except RankInputError as e:
            fail(f"{src}: {e}")
    summary = res.summary
    summary["rejected_rows"] = rejected
    if out is not None:
        if res.groups is not None:
            summary["notes"].append("group leaderboards and the heterogeneity test: groups.html")
        paths = write_outputs(out, res.board, res.fit, summary, res.raw_board)
        if res.groups is not None:
            from prefkit.rank.group_report import write_group_outputs

            paths += write_group_outputs(out, summary)
        summary["files"] = [str(p) for p in paths]
    console.print(f"intervals: [cyan]{summary['ci']}[/cyan] ({summary['ci_method_reason']})")
    for note in summary["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
    if as_json:
        print_json(summary)
        return
    _print_board(summary, top)
    if res.groups is not None:
        _print_groups(summary)
    if out is not None:
        console.print(f"wrote {', '.join(summary['files'])}", soft_wrap=True)


def _board_cells(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Column names and formatted cells of the leaderboard (no interval columns without
    intervals)."""
    has_ci = summary["ci"] != "none"
    cols = ["rank", "item", "score"] + (["ci", "ranks"] if has_ci else [])
    cols += ["wins", "losses", "ties", "n"]
    rows = []
    for r in summary["leaderboard"]:
        cells = [str(r["rank"]), r["item"], f"{r['score']:.2f}"]
        if has_ci:
            cells += [
                f"{r['ci_low']:.2f} .. {r['ci_high']:.2f}",
                f"{r['rank_low']}-{r['rank_high']}",
            ]
        cells += [f"{r['wins']:g}", f"{r['losses']:g}", f"{r['ties']:g}", str(r["n"])]
        rows.append(cells)
    return cols, rows


def _print_board(summary: dict[str, Any], top: int | None) -> None:
    """The leaderboard on stdout: a rich table on a terminal (the best 50 rows unless --top
    says otherwise), plain aligned text in a pipe or file (every row, never cut to the
    terminal width, so long model names survive `| grep`, `| less`, `> board.txt`)."""
    import sys

    from rich.console import Console
    from rich.table import Table

    cols, rows = _board_cells(summary)
    tty = sys.stdout.isatty()
    limit = top if top is not None else (50 if tty else 0)
    shown = rows[:limit] if limit else rows
    title = (
        f"{summary['model']} (ties {summary['ties']}), "
        + ("no intervals" if summary["ci"] == "none" else f"{summary['ci']} intervals")
        + f", {summary['battles']} battles, {summary['items']} items"
    )
    if tty:
        t = Table(title=title)
        for c in cols:
            t.add_column(c, justify="left" if c == "item" else "right", overflow="fold")
        for cells in shown:
            t.add_row(*cells)
        Console(highlight=False).print(t)
    else:
        widths = [max([len(c)] + [len(r[q]) for r in shown]) for q, c in enumerate(cols)]

        def line(cells: list[str]) -> str:
            return "  ".join(
                v.ljust(w) if c == "item" else v.rjust(w)
                for c, v, w in zip(cols, cells, widths, strict=True)
            ).rstrip()

        console.print(title)
        out = [line(cols)] + [line(r) for r in shown]
        sys.stdout.write("\n".join(out) + "\n")
    if len(shown) < len(rows):
        console.print(
            f"{len(rows) - len(shown)} more item(s) not shown: --top 0 prints all, --out DIR "
            "writes leaderboard.csv",
            soft_wrap=True,
        )


def _print_groups(summary: dict[str, Any]) -> None:
    """Per group: battles, its top items and its contribution to the test; then the test
    (stdout, after the pooled leaderboard)."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"[bold]groups by {escape(summary['group_field'])}[/bold]: "
        f"{len(summary['groups'])} with a leaderboard", soft_wrap=True
    )  # fmt: skip
    h = summary["heterogeneity"]
    dev = h["deviance"] if h else {}
    for g in summary["groups"]:
        top = ", ".join(r["item"] for r in g["leaderboard"][:3])
        d = f", deviance {dev[g['group']]:.1f}" if g["group"] in dev else ""
        console.print(
            f"  {escape(g['group'])}: {g['battles']} battles{d}; top {escape(top)}", soft_wrap=True
        )
    for g in summary["pooled_groups"]:
        console.print(f"  {escape(g['group'])}: {g['battles']} battles, {escape(g['reason'])}",
                      soft_wrap=True)  # fmt: skip
    if h:
        verdict = "the groups rank the items differently" if h["reject"] else "no evidence"
        pp = h["p_value_permutation"]
        perm = f"permutation p = {pp:.4f}, " if pp is not None else ""
        console.print(
            f"heterogeneity: LR = {h['statistic']:.1f} on {h['df']} df, {perm}"
            f"chi-square p = {h['p_value_chi2']:.3g}: {verdict} (alpha {h['alpha']:.2f})",
            soft_wrap=True,
        )
    sig = [d for d in summary["group_differences"] if d.get("significant")]
    if sig:
        shown = "; ".join(
            f"{escape(d['item'])} in {escape(d['group'])} {d['difference']:+.1f}" for d in sig[:5]
        )
        console.print(
            f"{len(sig)} item x group difference(s) whose interval excludes 0: {shown}"
            + (" ..." if len(sig) > 5 else ""),
            soft_wrap=True,
        )


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
        "dawid-skene",
        "--method",
        help="majority | dawid-skene | mace | glad | noisy-bt | bt-mixture (latent groups).",
    ),
    groups: str = typer.Option(
        "auto",
        "--groups",
        help="bt-mixture: number of latent groups K, or auto (held-out likelihood).",
    ),
    items: str = typer.Option(
        "auto",
        "--items",
        help="bt-mixture: model (votes alone) | response (text features) | auto.",
    ),
    max_groups: int = typer.Option(
        6, "--max-groups", help="bt-mixture --groups auto: largest K tried."
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, help="bt-mixture: seed of the EM starts and folds."
    ),
    context: str = typer.Option(
        "0",
        "--context",
        help="bt-mixture with text: N leading components of the prompts' MiniLM embeddings; "
        "the --context-features' effects may depend on them (0 = off; auto: 0, 4 or 8 by "
        "held-out likelihood).",
    ),
    context_features: str = typer.Option(
        "refusal",
        "--context-features",
        help="bt-mixture --context: comma-separated response features (or all) whose effect "
        "may depend on the prompt.",
    ),
    cache_dir: Path | None = typer.Option(
        None,
        "--cache-dir",
        help="bt-mixture --context: embedding cache (default ~/.cache/prefkit/embeddings).",
    ),
    feature_prior: str = typer.Option(
        "fixed",
        "--feature-prior",
        help="bt-mixture with text: fixed (1.0) | evidence (the feature coefficients' prior "
        "precision chosen per fit by empirical Bayes; opt-in, no measured gain).",
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

    _choice(method, "--method", (*METHODS, "bt-mixture"))
    if dst.suffix != ".parquet":
        fail(f"{dst}: OUT must end in .parquet", code=2)
    check_output(dst, [src, gold], "file")
    if method == "bt-mixture":
        feats = tuple(f.strip() for f in context_features.split(",") if f.strip())
        n_ctx: int | str = context
        if context != "auto":
            try:
                n_ctx = int(context)
            except ValueError:
                fail(f"--context must be a number or auto, not {context!r}", code=2)
            if int(n_ctx) < 0:
                fail("--context must be >= 0", code=2)
        if not feats:
            fail("--context-features must name at least one feature (or all)", code=2)
        _choice(feature_prior, "--feature-prior", ("evidence", "fixed"))
        ctx = (n_ctx, feats, cache_dir)
        _mixture(src, dst, groups, items, max_groups, seed, fmt, as_json, ctx, feature_prior)
        return
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


def _mixture(
    src: Path,
    dst: Path,
    groups: str,
    items: str,
    max_groups: int,
    seed: int,
    fmt: str | None,
    as_json: bool,
    ctx: tuple[int | str, tuple[str, ...], Path | None],
    feature_prior: str = "fixed",
) -> None:
    """`aggregate --method bt-mixture`: OUT keeps every vote with meta.group added;
    annotators.parquet (posterior group per annotator) and group_scores.parquet next to it."""
    k: int | None = None
    if groups != "auto":
        try:
            k = int(groups)
        except ValueError:
            fail(f"--groups must be a number or auto, not {groups!r}", code=2)
        if k < 1:
            fail("--groups must be >= 1", code=2)
    _choice(items, "--items", ("auto", "model", "response"))
    if max_groups < 1:
        fail("--max-groups must be >= 1", code=2)
    import pyarrow.parquet as pq
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from prefkit.io import save
    from prefkit.judge.cache import default_cache_dir
    from prefkit.rank.data import RankInputError
    from prefkit.rank.mixture import mixture_table

    cache = ctx[2] or (default_cache_dir().parent / "embeddings")
    table, rejected = _read_comparisons(src, fmt)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("mixture fits", total=None)
        try:
            out, ann, scores, summary = mixture_table(
                table, k, items, seed=seed, max_groups=max_groups,  # type: ignore[arg-type]
                progress=lambda m: bar.console.print(f"[dim]{m}[/dim]"),
                steps=lambda done, total: bar.update(task, completed=done, total=total),
                context=ctx[0], context_features=ctx[1], embed_cache=cache,  # type: ignore[arg-type]
                prior=feature_prior,  # type: ignore[arg-type]
            )  # fmt: skip
        except RankInputError as e:
            bar.stop()
            fail(f"{src}: {e}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    save(out, dst)
    ann_path = dst.parent / "annotators.parquet"
    scores_path = dst.parent / "group_scores.parquet"
    pq.write_table(ann, ann_path)
    pq.write_table(scores, scores_path)
    summary.update(
        {"rejected_rows": rejected, "files": [str(dst), str(ann_path), str(scores_path)]}
    )
    if as_json:
        print_json(summary)
        return
    console.print(
        f"bt-mixture: {summary['groups']} group(s) from {summary['votes_used']} votes by "
        f"{summary['annotators']} annotators (items: {summary['items']}); sizes "
        + ", ".join(f"{g} {n}" for g, n in summary["group_sizes"].items())
        + f" -> {dst}, {ann_path}, {scores_path}"
    )


def register(app: typer.Typer) -> None:
    app.command("rank")(rank_cmd)
    app.command("aggregate")(aggregate_cmd)
