"""`prefkit rm train|score|eval`: reward models from the command line (see docs/reward.md)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand

from prefkit._cli import ENGINE_HELP, check_output, console, engine_of, print_json, report_rejects
from prefkit._cli import fail as _fail


def fail(message: str, code: int = 1) -> NoReturn:
    """`prefkit._cli.fail` (`prefkit.cli.main` escapes rich markup, so `prefkit[train]`
    prints as is)."""
    _fail(message, code)


rm_app = typer.Typer(
    help="Reward models: train (features | embed | trl), score a dataset, evaluate honestly.",
    no_args_is_help=True,
)


def _read(path: Path, kinds: tuple[str, ...] = ("comparisons",)) -> Any:
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    res = read(path)
    report_rejects(path, res.rejects)
    for k in kinds:
        if Kind(k) in res.tables:
            return res.tables[Kind(k)]
    fail(f"{path}: needs a {' or '.join(kinds)} table; the {res.reader} reader gave {res.kind}")


def _user_errors() -> tuple[type[Exception], ...]:
    """Library errors that are the user's to fix: printed as one line, exit 1."""
    from prefkit.reward.embed import MissingExtraError
    from prefkit.reward.judge import JudgeError
    from prefkit.reward.model_dir import ModelDirError

    return (MissingExtraError, JudgeError, ModelDirError)


def _report_counts(counts: dict[str, Any], where: str) -> None:
    """Say what was left out or looks suspicious: nothing is dropped silently."""
    for reason, n in (counts.get("excluded") or counts.get("skipped") or {}).items():
        if n:
            console.print(f"[yellow]{where}: {n} rows left out ({reason})[/yellow]")
    empty = counts.get("empty_responses", 0)
    if empty:
        console.print(f"[yellow]{where}: {empty} empty responses (scored as empty text)[/yellow]")


def _report_truncated(n: int, total: int | None = None) -> None:
    if n:
        of = f" of {total}" if total else ""
        console.print(
            f"[yellow]{n}{of} texts exceed the model's token limit and were truncated[/yellow]"
        )


def _load(model: str) -> Any:
    from prefkit.reward.models import load_model

    try:
        return load_model(model)
    except _user_errors() as e:
        fail(str(e))


def _load_sources(paths: list[Path]) -> list[Any]:
    """Expand inputs into sources (`prefkit.reward.sources`), read each, say what was built."""
    from prefkit.reward.sources import SourceError, expand_all, load

    def on_read(path: Path, res: Any) -> None:
        report_rejects(path, res.rejects)

    try:
        loaded = [load(s, on_read) for s in expand_all(paths)]
    except SourceError as e:
        fail(str(e))
    for s in loaded:
        for note in s.notes:
            console.print(note, soft_wrap=True)
    return loaded


def _check_disentangle(spec: str, backend: str) -> None:
    from prefkit.reward.disentangle import parse_spec

    try:
        groups = parse_spec(spec)
    except ValueError as e:
        fail(str(e), code=2)
    if backend == "trl" and groups:
        fail("--disentangle applies to --backend features and embed", code=2)


@rm_app.command("train")
def train_cmd(
    paths: list[Path] = typer.Argument(
        ...,
        metavar="IN... OUT_DIR",
        help="One or more inputs (any format prefkit reads; a folder stands for the data files "
        "in it; each file is a source), then the model directory to write.",
    ),
    backend: str = typer.Option("features", "--backend", help="features | embed | trl"),
    base: str | None = typer.Option(None, "--base", help="trl: local causal LM checkpoint."),
    val: Path | None = typer.Option(None, "--val", help="Validation file (else 20% of prompts)."),
    seed: int = typer.Option(0, "--seed", min=0),
    epochs: int | None = typer.Option(
        None, "--epochs", help="Max epochs (embed: early stopping, default 100; trl: default 1)."
    ),
    lora: bool = typer.Option(False, "--lora", help="trl: train LoRA adapters (peft)."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Embedding cache folder."),
    disentangle: str = typer.Option(
        "auto",
        "--disentangle",
        help="Nuisance heads fitted in training and dropped at scoring: auto | none | length | "
        "style | length,style (auto: picked by leave-one-source-out accuracy with several "
        "sources, length,style with one; docs/reward.md).",
    ),
    balance: str = typer.Option(
        "sources",
        "--balance",
        help="sources: every source carries the same total weight; rows: every row its own.",
    ),
    personalize: str | None = typer.Option(
        None,
        "--personalize",
        help="features, embed: per-group offsets from the pooled head, shrunk to it (group | "
        "annotator | a column or meta key; docs/pluralistic.md).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the model card as JSON."),
) -> None:
    """Train a reward model on one or more sources; split by prompt, early stopping, saved with
    a model.json card."""
    from prefkit.reward.train import save, train

    if len(paths) < 2:
        fail("give one or more inputs and then OUT_DIR: prefkit rm train IN... OUT_DIR", code=2)
    *inputs, out_dir = paths
    if backend not in ("features", "embed", "trl"):
        fail(f"--backend must be features, embed or trl, got {backend!r}", code=2)
    if backend == "trl" and base is None:
        fail("--backend trl needs --base PATH (a local causal LM checkpoint)", code=2)
    if backend != "trl" and (base is not None or lora):
        fail("--base and --lora only apply to --backend trl", code=2)
    if epochs is not None and epochs < 1:
        fail("--epochs must be >= 1", code=2)
    if balance not in ("sources", "rows"):
        fail(f"--balance must be sources or rows, got {balance!r}", code=2)
    _check_disentangle(disentangle, backend)
    if personalize is not None and (backend == "trl" or not personalize.strip()):
        fail("--personalize needs --backend features or embed and a grouping (group, "
             "annotator, a column or meta key)", code=2)  # fmt: skip
    if base is not None and not Path(base).is_dir():
        fail(f"--base {base}: not a directory (a local checkpoint is needed; no hub downloads)")
    check_output(out_dir, [*inputs, val], "dir")
    sources = _load_sources(inputs)
    vtable = _read(val) if val is not None else None
    rows = sum(s.table.num_rows for s in sources)
    console.print(f"training {backend} reward model on {rows} rows from {len(sources)} source(s)")
    try:
        with (
            warnings.catch_warnings(),
            console.status(f"training {backend} (embedding, fitting, validating)"),
        ):
            warnings.simplefilter("ignore", UserWarning)  # truncation: counted in the card
            res = train(
                [(s.name, s.table) for s in sources],
                backend,
                val_table=vtable,
                seed=seed,
                epochs=epochs,
                base=base,
                lora=lora,
                cache_dir=str(cache_dir) if cache_dir else None,
                disentangle=disentangle,
                balance=balance == "sources",
                personalize=personalize.strip() if personalize else None,
            )
    except _user_errors() as e:
        fail(str(e))
    except ValueError as e:
        fail(f"{', '.join(str(p) for p in inputs)}: {e}")
    card_path = save(res, out_dir, {s.name: s.files for s in sources})
    _report_counts(res.card["data"], ", ".join(str(p) for p in inputs))
    tr_info = res.card.get("training", {})
    _report_truncated(int(tr_info.get("truncated_texts") or 0))
    if tr_info.get("dropped_too_long"):
        console.print(
            f"[yellow]{tr_info['dropped_too_long']} training pairs longer than "
            f"{tr_info['max_length']} tokens were filtered by TRL[/yellow]"
        )
    if tr_info.get("dropped_ties"):
        console.print(
            f"[yellow]{tr_info['dropped_ties']} tie rows not used by TRL (no soft labels)[/yellow]"
        )
    _print_training(res.card)
    m = res.card.get("metrics", {})
    if m and m["model"]["accuracy"]["accuracy"] is not None:
        acc = m["model"]["accuracy"]["accuracy"]
        lacc = m["length_baseline"]["accuracy"]["accuracy"]
        plain = res.card["disentangle"].get("without_disentangling", {}).get("val_accuracy")
        than = f"; without disentangling {plain:.3f}" if plain is not None else ""
        console.print(f"validation accuracy {acc:.3f} (length baseline {lacc:.3f}{than})")
    if "personalize" in res.card:
        _print_personal(res.card["personalize"])
    console.print(f"wrote {card_path}")
    if as_json:
        print_json(res.card)


def _print_personal(pc: dict[str, Any]) -> None:
    """Groups, their sizes, the prior strength and per-group validation accuracy."""
    val = {v["group"]: v for v in pc.get("validation", [])}

    def acc(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    console.print(
        f"personalised by {pc['by']}: {len(pc['groups'])} groups, prior tau {pc['tau']:g} "
        f"({pc['tau_chosen_by']})"
    )
    for g in pc["groups"]:
        v = val.get(g["name"], {})
        console.print(
            f"  {g['name']}: {g['rows']} training votes; validation accuracy pooled "
            f"{acc(v.get('pooled_accuracy'))}, personalised {acc(v.get('personal_accuracy'))}",
            markup=False,
        )
    for g in pc.get("pooled_only", []):
        console.print(f"  {g['group']}: {g['rows']} votes, {g['reason']}", markup=False)


def _load_group(model: str, group: str | None) -> Any:
    """The model of `model`; with `group`, that group's personalised head (an unknown group, or
    a model without groups, falls back to the pooled head and says so on stderr)."""
    scorer = _load(model)
    if group is None:
        return scorer
    if model == "length":
        fail("--group needs a personalised model directory, not the length baseline", code=2)
    from prefkit.reward.model_dir import read_card
    from prefkit.reward.personal import group_model

    card = read_card(Path(model))
    own = group_model(scorer, card, group) if card["backend"] in ("features", "embed") else None
    if own is None:
        known = [g["name"] for g in (card.get("personalize") or {}).get("groups", [])]
        why = f"known groups: {', '.join(known)}" if known else "the model is not personalised"
        console.print(
            f"[yellow]group {group!r} is not in {model} ({why}): scoring with the pooled "
            "head[/yellow]",
            soft_wrap=True,
        )
        return scorer
    return own


def _print_training(card: dict[str, Any]) -> None:
    """Sources and their weights, the disentangling choice and the nuisance coefficients."""
    from rich.markup import escape

    srcs = card["data"].get("sources", [])
    if len(srcs) > 1:
        console.print(f"sources (--balance {card['data']['balance'].split(':')[0]}):")
        for s in srcs:
            console.print(
                f"  {escape(s['name'])}: {s['train_rows']} training rows, "
                f"weight ×{s['weight']:.3g} ({s['share']:.0%} of the total)",
                soft_wrap=True,
            )
    dis = card.get("disentangle", {})
    groups = dis.get("groups") or []
    console.print(
        f"disentangle: {','.join(groups) or 'none'} ({escape(str(dis.get('chosen_by', '')))})",
        soft_wrap=True,
    )
    for c in card.get("training", {}).get("disentangle", {}).get("nuisance", []):
        lo, hi = c.get("ci_low"), c.get("ci_high")
        if lo is None:
            lo, hi = c.get("fold_min"), c.get("fold_max")
        ci = f" [{lo:+.3f}, {hi:+.3f}]" if lo is not None and hi is not None else ""
        console.print(
            f"  nuisance {escape(c['source'])} · {c['feature']}: {c['coef']:+.3f}{ci}",
            soft_wrap=True,
        )


def _score_batched(
    model: Any, prompts: list[str], responses: list[str], label: str, step: int = 256
) -> Any:
    """Score in batches with a progress bar on stderr."""
    import numpy as np
    from rich.progress import Progress

    out = []
    with (
        Progress(console=console, transient=True) as prog,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", UserWarning)  # truncation: counted by the model
        task = prog.add_task(f"scoring {label}", total=len(responses))
        for i in range(0, len(responses), step):
            out.append(model.score(prompts[i : i + step], responses[i : i + step]))
            prog.advance(task, len(responses[i : i + step]))
    return np.concatenate(out) if out else np.zeros(0)


def _scorer(model: str, judge: str | None, judge_model: str) -> Any:
    if judge is not None:
        from prefkit.reward.judge import JudgeScorer

        return JudgeScorer(judge, model=judge_model)
    return _load(model)


@rm_app.command("score")
def score_cmd(
    model: str = typer.Argument(
        ..., help="Model directory, `length` for the baseline (ignored with --judge)."
    ),
    data: Path = typer.Argument(..., help="Comparisons, ratings or binary feedback."),
    out: Path = typer.Argument(..., help="Output Parquet/JSONL/CSV with reward columns added."),
    judge: str | None = typer.Option(None, "--judge", help="OpenAI-compatible base URL."),
    judge_model: str = typer.Option("judge", "--judge-model", help="Model name for the judge."),
    group: str | None = typer.Option(
        None, "--group", help="Score with this group's personalised head (rm train --personalize)."
    ),
    engine: str | None = typer.Option(None, "--engine", help=ENGINE_HELP),
) -> None:
    """Add `reward_a`/`reward_b` (comparisons) or `reward` (ratings, binary) columns."""
    from rich.progress import Progress

    from prefkit.engine import cluster_gpus, map_batches
    from prefkit.io.canonical import canonical_files
    from prefkit.reward.score import BOOKKEEPING, EMPTY, TRUNCATED, BatchScorer, sides, wants_gpu
    from prefkit.schema import Kind

    check_output(out, data, "file")
    if group is not None and judge is not None:
        fail("--group does not combine with --judge", code=2)
    eng = engine_of(engine, connect=False)
    if eng == "ray" and (judge is not None or group is not None):
        fail("--engine ray scores with a model directory or `length`; --judge and --group "
             "run with --engine local", code=2)  # fmt: skip
    engine_of(engine)
    kinds = (Kind.COMPARISONS, Kind.RATINGS, Kind.BINARY)
    files = next((f for k in kinds if (f := canonical_files(data, k)) is not None), None)
    source: Any = files if files is not None else _read(data, tuple(k.value for k in kinds))
    if eng == "ray":
        scorer: Any = BatchScorer
        args: tuple[Any, ...] = (model,)
        try:
            gpu = 1.0 if wants_gpu(model) and cluster_gpus() else 0.0
        except _user_errors() as e:
            fail(str(e))
    else:
        scorer = BatchScorer(_scorer(model, judge, judge_model) if group is None
                             else _load_group(model, group))  # fmt: skip
        args, gpu = (), 0.0
    total = _rows(source)
    counts = {"rows": 0, "empty": 0, "truncated": 0}
    no_text: dict[str, int] = {}
    writer = _BatchWriter(out)
    try:
        with Progress(console=console, transient=True) as prog:
            task = prog.add_task(f"scoring ({eng})", total=total)
            for b in map_batches(source, scorer, eng, fn_args=args, num_gpus=gpu,
                                 progress=lambda k: prog.advance(task, k)):  # fmt: skip
                counts["rows"] += b.num_rows
                counts["empty"] += int(pc_sum(b.column(EMPTY)))
                counts["truncated"] += int(pc_sum(b.column(TRUNCATED)))
                for side in sides(b.schema):
                    name = f"reward_{side}" if side else "reward"
                    col = f"response_{side}" if side else "response"
                    no_text[col] = no_text.get(col, 0) + b.column(name).null_count
                writer.write(b.drop_columns(list(BOOKKEEPING)))
    except _user_errors() as e:
        writer.abort()
        fail(str(e))
    except BaseException:
        writer.abort()
        raise
    if counts["rows"] == 0:  # no row: OUT still gets the columns (and reward columns)
        import pyarrow.parquet as pq

        from prefkit.reward.models import LengthModel

        empty = source.slice(0, 0) if not isinstance(source, list) else (
            pq.read_schema(source[0]).empty_table())  # fmt: skip
        writer.write(BatchScorer(LengthModel())(empty).drop_columns(list(BOOKKEEPING)))
    writer.close()
    for col, k in no_text.items():
        if k:
            console.print(f"[yellow]{k} rows have no {col} text: reward left null[/yellow]")
    if counts["empty"]:
        console.print(f"[yellow]{counts['empty']} empty response values (scored)[/yellow]")
    _report_truncated(int(counts["truncated"]))
    console.print(f"wrote {counts['rows']} rows to {out}")


def pc_sum(col: Any) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(col).as_py() or 0)


def _rows(source: Any) -> int:
    if isinstance(source, list):
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in source)
    return int(source.num_rows)


class _BatchWriter:
    """Scored batches to `out`: Parquet row group by row group through a partial file that
    replaces `out` at the end (memory: one batch); JSONL/CSV collect the table first."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.parquet = out.suffix not in (".jsonl", ".json", ".csv")
        self.partial = out.with_name(f".{out.name}.partial")
        self.writer: Any = None
        self.held: list[Any] = []

    def write(self, batch: Any) -> None:
        if not self.parquet:
            self.held.append(batch)
            return
        import pyarrow.parquet as pq

        if self.writer is None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.partial, batch.schema, compression="zstd")
        self.writer.write_table(batch.cast(self.writer.schema))

    def close(self) -> None:
        import pyarrow as pa

        if not self.parquet:
            _write(pa.concat_tables(self.held) if self.held else pa.table({}), self.out)
            return
        if self.writer is None:
            _write(pa.table({}), self.out)
            return
        self.writer.close()
        self.partial.replace(self.out)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.partial.unlink(missing_ok=True)


def _write(table: Any, out: Path) -> None:
    import json

    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix in (".jsonl", ".json"):
        with out.open("w", encoding="utf-8") as fh:
            for row in table.to_pylist():
                if isinstance(row.get("meta"), list):
                    row["meta"] = dict(row["meta"])
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif out.suffix == ".csv":
        import pyarrow as pa
        import pyarrow.csv as pcsv

        flat = {
            n: pa.array([json.dumps(v) if isinstance(v, list) else v for v in c.to_pylist()])
            for n, c in zip(table.column_names, table.columns, strict=True)
        }
        pcsv.write_csv(pa.table(flat), out)
    else:
        pq.write_table(table, out, compression="zstd")


@rm_app.command("eval")
def eval_cmd(
    model: str = typer.Argument(
        ..., help="Model directory, `length` for the baseline (ignored with --judge)."
    ),
    data: Path = typer.Argument(..., help="Comparisons with outcomes (or build pairs)."),
    judge: str | None = typer.Option(None, "--judge", help="OpenAI-compatible base URL."),
    judge_model: str = typer.Option("judge", "--judge-model"),
    tie_threshold: float | None = typer.Option(
        None, "--tie-threshold", help="|Δ| under which a pair is a tie (default: from the card)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print all metrics as one JSON object."),
    group: str | None = typer.Option(
        None, "--group", help="Evaluate this group's personalised head (rm train --personalize)."
    ),
    by: str | None = typer.Option(
        None,
        "--by",
        help="Per-group and worst-group accuracy by annotator, group, source or a meta key; a "
        "personalised model scores each row with its group's head (and the pooled head is "
        "reported beside it).",
    ),
    min_votes: int = typer.Option(
        10, "--min-votes", help="Groups with fewer decisive votes are listed, not ranked (--by)."
    ),
) -> None:
    """Accuracy (ties excluded and tie-aware), per source, length-controlled, ECE, best-of-N,
    with the length-only and random baselines on the same rows; how well the predicted
    probabilities match the split of votes on pairs voted on by several people; with --by,
    per-group and worst-group accuracy."""
    from prefkit.reward.data import Pairs, pairs_from_table
    from prefkit.reward.evaluate import evaluate_model, position_consistency
    from prefkit.reward.model_dir import read_card

    if tie_threshold is not None and tie_threshold < 0:
        fail("--tie-threshold must be >= 0", code=2)
    if group is not None and judge is not None:
        fail("--group does not combine with --judge", code=2)
    if min_votes < 1:
        fail("--min-votes must be >= 1", code=2)
    loaded = _load_sources([data])
    try:
        parts = [pairs_from_table(s.table) for s in loaded]
        pairs = Pairs.concat(parts)
    except ValueError as e:
        fail(f"{data}: {e}")
    labels = None
    if by is not None:
        from prefkit.reward.evaluate import NO_GROUP
        from prefkit.reward.train import _group_labels

        try:
            lab = _group_labels([(s.name, s.table) for s in loaded], by, flag="--by")
        except ValueError as e:
            fail(f"{data}: {e}")
        labels = [
            lab.get((s.name, i), NO_GROUP)
            for s, p in zip(loaded, parts, strict=True)
            for i in p.ids
        ]
    if not len(pairs):
        fail(f"{data}: no pair has both response texts ({pairs.skipped})")
    extra: dict[str, Any] = {}
    try:
        if judge is not None:
            from prefkit.reward.judge import JudgeScorer

            js = JudgeScorer(judge, model=judge_model)
            with console.status(f"judging {len(pairs)} pairs in both orders"):
                d_ab, d_ba = js.compare(pairs.prompts, pairs.a, pairs.b)
            extra["position_swap"] = position_consistency(d_ab, d_ba)
            d = (d_ab - d_ba) / 2
            thr = 0.5 if tie_threshold is None else tie_threshold  # verdicts are -1, 0, 1
            res = evaluate_model(js, pairs, thr, scores=(d / 2, -d / 2))
            res["model_name"] = f"judge:{judge}"
        else:
            scorer = _load_group(model, group)
            threshold = 0.0
            base_thr = None
            if model != "length":
                card = read_card(Path(model))
                threshold = float(card.get("tie_threshold", 0.0))
                base_thr = card.get("baseline_tie_thresholds") or None
            if tie_threshold is not None:
                threshold = tie_threshold
            sa = _score_batched(scorer, pairs.prompts, pairs.a, "response_a")
            sb = _score_batched(scorer, pairs.prompts, pairs.b, "response_b")
            pooled = None
            if labels is not None and group is None and model != "length":
                own = _per_group_scores(Path(model), scorer, pairs, labels)
                if own is not None:
                    pooled = (sa, sb)
                    sa, sb = own
            res = evaluate_model(
                scorer, pairs, threshold, scores=(sa, sb), baseline_thresholds=base_thr
            )
            res["model_name"] = model
            if group is not None:
                res["group"] = group
            _split_and_groups(res, pairs, (sa, sb), pooled, labels, by, min_votes, threshold)
            if getattr(scorer, "truncated", 0):
                extra["truncated_texts"] = int(scorer.truncated)
    except _user_errors() as e:
        fail(str(e))
    res.update(extra)
    seen = _in_sample(model, loaded) if judge is None and model != "length" else []
    res["in_sample"] = bool(seen)
    if seen:
        res["in_sample_sources"] = seen
        console.print(
            f"[yellow]warning: {', '.join(seen)} is data {model} was trained on (same digest as "
            "in its model.json): these numbers are in-sample, not held-out[/yellow]",
            soft_wrap=True,
        )
    _report_counts(res, str(data))
    _report_truncated(int(extra.get("truncated_texts", 0)))
    if as_json:
        print_json(res)
        return
    _print_table(res)


def _per_group_scores(model: Path, scorer: Any, pairs: Any, labels: list[str]) -> Any:
    """Scores of every row under its own group's personalised head (rows of groups the model
    does not know keep the pooled head), or None for a model that is not personalised."""
    import numpy as np

    from prefkit.reward.model_dir import read_card
    from prefkit.reward.personal import group_model

    card = read_card(model)
    if card.get("backend") not in ("features", "embed") or not (card.get("personalize") or {}).get(
        "groups"
    ):
        return None
    lab = np.array(labels, dtype=object)
    sa = np.full(len(pairs), np.nan)
    sb = np.full(len(pairs), np.nan)
    for g in sorted(set(labels)):
        rows = np.flatnonzero(lab == g)
        head = group_model(scorer, card, g) or scorer
        ps = [pairs.prompts[i] for i in rows.tolist()]
        sa[rows] = head.score(ps, [pairs.a[i] for i in rows.tolist()])
        sb[rows] = head.score(ps, [pairs.b[i] for i in rows.tolist()])
    return sa, sb


def _split_and_groups(
    res: dict[str, Any],
    pairs: Any,
    scores: tuple[Any, Any],
    pooled: tuple[Any, Any] | None,
    labels: list[str] | None,
    by: str | None,
    min_votes: int,
    threshold: float,
) -> None:
    """`vote_split` (model, and the pooled head when rows were scored per group), `groups`
    (--by: per-group and worst-group accuracy of the model, the pooled head and the length
    baseline) and `pooled_model` (all metrics of the pooled head)."""
    import numpy as np
    from scipy.special import expit

    from prefkit.reward.evaluate import group_accuracy, metrics, vote_split

    split = {"model": vote_split(pairs, expit(scores[0] - scores[1]))}
    if pooled is not None:
        split["pooled_model"] = vote_split(pairs, expit(pooled[0] - pooled[1]))
        res["pooled_model"] = metrics(pairs, pooled[0], pooled[1], threshold)
    if split["model"] is not None:
        res["vote_split"] = split
    if labels is None:
        return
    lengths = [np.log1p(np.array([len(t) for t in side], dtype=np.float64))
               for side in (pairs.a, pairs.b)]  # fmt: skip
    g = {
        "by": by,
        "min_votes": min_votes,
        "model": group_accuracy(scores[0] - scores[1], pairs.outcome, labels, min_votes),
        "length_baseline": group_accuracy(
            lengths[0] - lengths[1], pairs.outcome, labels, min_votes
        ),  # fmt: skip
        "personalised": pooled is not None,
    }
    if pooled is not None:
        g["pooled_model"] = group_accuracy(pooled[0] - pooled[1], pairs.outcome, labels, min_votes)
    res["groups"] = g


def _in_sample(model: str, loaded: list[Any]) -> list[str]:
    """Sources of the evaluated data whose digest is one the model was trained on."""
    from prefkit.reward.model_dir import read_card
    from prefkit.reward.sources import source_digest

    data = read_card(Path(model)).get("data", {})
    trained = {data.get("digest")} | {s.get("digest") for s in data.get("sources", [])}
    trained.discard(None)
    return [s.name for s in loaded if source_digest(s.files) in trained]


def _fmt(m: dict[str, Any]) -> str:
    if m.get("accuracy") is None:
        return "—"
    return f"{m['accuracy']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] n={m['n']}"


def _print_table(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{res['model_name']} on {res['rows']} rows (accuracy [Wilson 95% CI])")
    t.add_column("metric")
    for c in ("model", "length", "random"):
        t.add_column(c)
    cols = [res["model"], res["length_baseline"], res["random_baseline"]]
    for key in ("accuracy", "tie_aware", "chosen_shorter", "length_matched", "best_of_n"):
        t.add_row(key, *(_fmt(c[key]) for c in cols))
    t.add_row("ece", *(f"{c['ece']:.3f}" if c["ece"] is not None else "—" for c in cols))
    for key in ("per_source", "per_category"):
        for name in res["model"].get(key, {}):
            t.add_row(f"{key}:{name}", *(_fmt(c.get(key, {}).get(name, {})) for c in cols))
    import shutil

    out = Console(width=max(120, shutil.get_terminal_size().columns))
    out.print(t)
    for who, vs in (res.get("vote_split") or {}).items():
        if vs is not None:
            out.print(
                f"vote split ({who}): {vs['pairs']} pairs with {vs['votes']} votes; log-loss "
                f"{vs['log_loss']:.3f} per vote (floor {vs['log_loss_floor']:.3f}, constant "
                f"0.5 {vs['log_loss_constant']:.3f}), calibration error "
                f"{vs['calibration_error']:.3f}"
            )
    g = res.get("groups")
    if g:
        gt = Table(title=f"accuracy by {g['by']} (ties excluded)")
        gt.add_column("group")
        heads = [k for k in ("model", "pooled_model", "length_baseline") if k in g]
        for k in heads:
            gt.add_column(k)
        for name in g["model"]["per_group"]:
            gt.add_row(name, *(_fmt(g[k]["per_group"].get(name, {})) for k in heads))
        gt.add_row("worst group", *(
            f"{w['group']}: {_fmt(w)}" if (w := g[k]["worst_group"]) else "—" for k in heads
        ))  # fmt: skip
        out.print(gt)
    if "position_swap" in res:
        out.print(f"position-swap consistency {res['position_swap']['consistency']:.3f}")


class _ListOptions(TyperCommand):
    """`--train A B C --eval X Y`: the values after a list option, up to the next option, all
    belong to it (rewritten to `--train A --train B ...` before click parses)."""

    list_options = ("--train", "--eval")

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        out: list[str] = []
        current: str | None = None
        rest = list(args)
        while rest:
            tok = rest.pop(0)
            if tok == "--":
                out += [tok, *rest]
                break
            if tok in self.list_options:
                current = tok
                out.append(tok)
                if rest:
                    out.append(rest.pop(0))
            elif tok.startswith("-"):
                current = (
                    tok.split("=", 1)[0] if tok.split("=", 1)[0] in self.list_options else None
                )
                out.append(tok)
            elif current is not None:
                out += [current, tok]
            else:
                out.append(tok)
        return super().parse_args(ctx, out)


@rm_app.command("eval-matrix", cls=_ListOptions)
def eval_matrix_cmd(
    train_sets: list[Path] = typer.Option(
        ...,
        "--train",
        help="Training sets: --train A B C (a folder is one set made of the files in it).",
    ),
    eval_sets: list[Path] | None = typer.Option(
        None, "--eval", help="Evaluation sets (default: the training sets)."
    ),
    models: str = typer.Option(
        "features,disentangled",
        "--models",
        help="Comma list of features, disentangled, embed, embed-disentangled (the length "
        "baseline is always there).",
    ),
    disentangle: str = typer.Option(
        "length,style", "--disentangle", help="Nuisance groups of the disentangled models."
    ),
    folds: int = typer.Option(
        5, "--folds", help="Prompt-grouped CV folds for the diagonal (0: leave it out)."
    ),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap replicates."),
    seed: int = typer.Option(0, "--seed"),
    epochs: int = typer.Option(100, "--epochs", help="MiniLM models: max epochs."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Embedding cache folder."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for eval_matrix.html and eval_matrix.json."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the whole matrix as JSON."),
) -> None:
    """Train on each set, evaluate on every other (and leave one set out): accuracy off the
    training set with intervals, the length baseline in every cell."""
    from rich.progress import Progress

    from prefkit.reward.disentangle import parse_spec
    from prefkit.reward.matrix import MODELS, prepare_set, run_matrix
    from prefkit.reward.matrix_report import short_labels, write_html

    names = [m.strip() for m in models.split(",") if m.strip()]
    bad = [m for m in names if m not in MODELS]
    if bad or not names:
        fail(f"--models takes a comma list of {', '.join(MODELS)}; got {models!r}", code=2)
    try:
        groups = parse_spec(disentangle)
    except ValueError as e:
        fail(str(e), code=2)
    if not groups:
        fail("--disentangle for eval-matrix names the nuisance groups, e.g. length,style", code=2)
    if folds < 0 or folds == 1:
        fail("--folds must be 0 (no diagonal) or >= 2", code=2)
    if bootstrap < 100:
        fail("--bootstrap must be >= 100", code=2)
    if epochs < 1:
        fail("--epochs must be >= 1", code=2)
    if out is not None:
        check_output(out, [*train_sets, *(eval_sets or [])], "dir")
    evals = list(eval_sets) if eval_sets else list(train_sets)
    paths = list(dict.fromkeys(str(p) for p in [*train_sets, *evals]))
    if len(train_sets) != len({str(p) for p in train_sets}):
        fail("a --train set is given twice", code=2)
    embed = any(MODELS[m][0] == "embed" for m in names)
    sets = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # truncation: MiniLM's 256-token limit
        for p in paths:
            loaded = _load_sources([Path(p)])
            with console.status(f"reading {p}" + (" (embedding)" if embed else "")):
                try:
                    sets[p] = prepare_set(p, loaded, embed, str(cache_dir) if cache_dir else None)
                except _user_errors() as e:
                    fail(str(e))
            if not any(o in ("a", "b") for o in sets[p].pairs.outcome):
                fail(f"{p}: no pair with a preference (a or b) and both response texts to score")
        labels = short_labels(paths)
        with Progress(console=console, transient=True) as prog:
            task = prog.add_task("eval-matrix", total=None)

            def step(msg: str) -> None:
                prog.update(task, description=msg)
                prog.advance(task)

            try:
                res = run_matrix(
                    [sets[str(p)] for p in train_sets],
                    [sets[str(p)] for p in evals],
                    names,
                    groups,
                    folds,
                    seed,
                    epochs,
                    bootstrap,
                    step,
                )
            except ValueError as e:
                fail(str(e))
    res["labels"] = labels
    if out is not None:
        import json

        out.mkdir(parents=True, exist_ok=True)
        (out / "eval_matrix.json").write_text(json.dumps(res, indent=1) + "\n")
        write_html(res, labels, out / "eval_matrix.html")
        console.print(f"wrote {out / 'eval_matrix.html'} and {out / 'eval_matrix.json'}")
    if as_json:
        print_json(res)
        return
    _print_matrix(res, labels)


def _print_matrix(res: dict[str, Any], labels: dict[str, str]) -> None:
    import shutil

    from rich.console import Console
    from rich.table import Table

    out = Console(width=max(120, shutil.get_terminal_size().columns))
    cell = {(c["train"], c["eval"]): c for c in res["cells"]}
    for m in res["models"]:
        t = Table(
            title=f"{m}: accuracy [Wilson 95% CI] · len = length baseline "
            "(rows: trained on; columns: evaluated on; diagonal: prompt-grouped CV)"
        )
        t.add_column("train \\ eval")
        for e in res["eval"]:
            t.add_column(labels[e])
        for r in res["rows"]:
            vals = []
            for e in res["eval"]:
                c = cell.get((r, e))
                if c is None:
                    vals.append("—")
                    continue
                a = c["models"][m]
                vals.append(
                    f"{a['accuracy']:.3f} [{a['ci_low']:.2f}, {a['ci_high']:.2f}]\n"
                    f"len {c['length']['accuracy']:.3f}"
                )
            t.add_row(labels.get(r, r), *vals)
        out.print(t)
    for m, by_kind in res["summary"].items():
        for kind, s in by_kind.items():
            if not s["cells"]:
                continue
            d = s["minus_length"]
            out.print(
                f"{m}, {kind.replace('_', ' ')} ({s['cells']} cells): mean accuracy "
                f"{s['mean_accuracy']:.3f}, length {s['mean_length_baseline']:.3f}, "
                f"difference {d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]; "
                f"{len(s['below_chance'])} below chance "
                f"({len(s['significantly_below_chance'])} significantly)"
            )
    for c in res["comparisons"]:
        d = c["minus_plain"]
        also = c["disentangled_also_below_chance"]
        out.print(
            f"{c['disentangled']} − {c['plain']}, {c['kind'].replace('_', ' ')}: "
            f"{d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]; {c['plain']} below "
            f"chance in {c['plain_below_chance']} cells, {c['disentangled']} also in {len(also)}"
        )


@rm_app.command("adapt")
def adapt_cmd(
    model: Path = typer.Argument(..., help="A features model directory (personalised or not)."),
    votes: Path = typer.Argument(..., help="The new user's comparisons (a few votes suffice)."),
    out_dir: Path = typer.Argument(..., help="Model directory to write (the model + the group)."),
    group: str | None = typer.Option(
        None,
        "--group",
        help="Name of the new group (default: the votes' single annotator, else the file stem).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the new group's entry as JSON."),
) -> None:
    """Fit a new user's offset from their votes, with the prior centred on the pooled head;
    score with it by `rm score/eval --group NAME`."""
    from prefkit.reward.data import pairs_from_table
    from prefkit.reward.model_dir import read_card, write_card
    from prefkit.reward.personal import adapt_card
    from prefkit.reward.train import usable

    if group is not None and not group.strip():
        fail("--group needs a name", code=2)
    check_output(out_dir, [model, votes], "dir")
    try:
        from prefkit.reward.model_dir import ModelDirError

        card = read_card(model)
        if card["backend"] not in ("features", "embed"):
            raise ModelDirError(
                f"{model}: model backend is {card['backend']!r}; rm adapt needs a features or "
                "embed model (a linear head)"
            )
    except _user_errors() as e:
        fail(str(e))
    fm = _load(str(model))
    table = _read(votes)
    try:
        allp = pairs_from_table(table)
    except ValueError as e:
        fail(f"{votes}: {e}")
    p = allp.take(usable(allp))
    if not len(p):
        fail(f"{votes}: no usable vote (rows with both texts and an a/b/tie outcome): "
             f"{table.num_rows} rows, {allp.skipped.get('missing_text', 0)} without text")  # fmt: skip
    if group is None:
        anns = (
            {a for a in table.column("annotator").to_pylist() if a}
            if "annotator" in table.column_names
            else set()
        )
        group = next(iter(anns)) if len(anns) == 1 else votes.name.split(".")[0]
    try:
        new, off = adapt_card(fm, card, p, group.strip(), str(votes))
    except _user_errors() as e:
        fail(str(e))
    fm.save(out_dir)
    write_card(out_dir, {k: v for k, v in new.items() if k not in ("format", "format_version",
                                                                   "prefkit_version")})  # fmt: skip
    left = table.num_rows - len(p)
    if left:
        console.print(f"[yellow]{left} rows not used (no text or both_bad)[/yellow]")
    console.print(
        f"adapted group {group!r} from {len(p)} votes (prior tau "
        f"{new['personalize']['tau']:g}, offset norm {float((off**2).sum()) ** 0.5:.3f}); wrote "
        f"{out_dir}",
        markup=False,
    )
    if as_json:
        print_json(next(g for g in new["personalize"]["groups"] if g["name"] == group.strip()))


def register(app: typer.Typer) -> None:
    app.add_typer(rm_app, name="rm")
