"""`prefkit rm train|score|eval`: reward models from the command line (see docs/reward.md)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, NoReturn

import typer

from prefkit._cli import check_output, console, print_json, report_rejects
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


@rm_app.command("train")
def train_cmd(
    data: Path = typer.Argument(..., help="Comparisons or build pairs (any format prefkit reads)."),
    out_dir: Path = typer.Argument(..., help="Model directory to write (model.json + weights)."),
    backend: str = typer.Option("features", "--backend", help="features | embed | trl"),
    base: str | None = typer.Option(None, "--base", help="trl: local causal LM checkpoint."),
    val: Path | None = typer.Option(None, "--val", help="Validation file (else 20% of prompts)."),
    seed: int = typer.Option(0, "--seed", min=0),
    epochs: int | None = typer.Option(
        None, "--epochs", help="Max epochs (embed: early stopping, default 100; trl: default 1)."
    ),
    lora: bool = typer.Option(False, "--lora", help="trl: train LoRA adapters (peft)."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Embedding cache folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the model card as JSON."),
) -> None:
    """Train a reward model; split by prompt, early stopping, saved with a model.json card."""
    from prefkit.reward.train import save, train

    if backend not in ("features", "embed", "trl"):
        fail(f"--backend must be features, embed or trl, got {backend!r}", code=2)
    if backend == "trl" and base is None:
        fail("--backend trl needs --base PATH (a local causal LM checkpoint)", code=2)
    if backend != "trl" and (base is not None or lora):
        fail("--base and --lora only apply to --backend trl", code=2)
    if epochs is not None and epochs < 1:
        fail("--epochs must be >= 1", code=2)
    if base is not None and not Path(base).is_dir():
        fail(f"--base {base}: not a directory (a local checkpoint is needed; no hub downloads)")
    check_output(out_dir, [data, val], "dir")
    table = _read(data)
    vtable = _read(val) if val is not None else None
    console.print(f"training {backend} reward model on {table.num_rows} rows")
    try:
        with (
            warnings.catch_warnings(),
            console.status(f"training {backend} (embedding, fitting, validating)"),
        ):
            warnings.simplefilter("ignore", UserWarning)  # truncation: counted in the card
            res = train(
                table,
                backend,
                val_table=vtable,
                seed=seed,
                epochs=epochs,
                base=base,
                lora=lora,
                cache_dir=str(cache_dir) if cache_dir else None,
            )
    except _user_errors() as e:
        fail(str(e))
    except ValueError as e:
        fail(f"{data}: {e}")
    card_path = save(res, out_dir, data)
    _report_counts(res.card["data"], str(data))
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
    m = res.card.get("metrics", {})
    if m and m["model"]["accuracy"]["accuracy"] is not None:
        acc = m["model"]["accuracy"]["accuracy"]
        lacc = m["length_baseline"]["accuracy"]["accuracy"]
        console.print(f"validation accuracy {acc:.3f} (length baseline {lacc:.3f})")
    console.print(f"wrote {card_path}")
    if as_json:
        print_json(res.card)


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
) -> None:
    """Add `reward_a`/`reward_b` (comparisons) or `reward` (ratings, binary) columns."""
    import numpy as np
    import pyarrow as pa

    from prefkit.schema import messages_text

    check_output(out, data, "file")
    table = _read(data, ("comparisons", "ratings", "binary"))
    scorer = _scorer(model, judge, judge_model)
    prompts = [messages_text(p) for p in table.column("prompt").to_pylist()]
    sides = ["a", "b"] if "response_a" in table.column_names else [""]
    try:
        for side in sides:
            col = f"response_{side}" if side else "response"
            raw = table.column(col).to_pylist()
            have = [i for i, r in enumerate(raw) if r is not None]
            resp = [messages_text(raw[i]) for i in have]
            if len(have) < len(raw):
                console.print(
                    f"[yellow]{len(raw) - len(have)} rows have no {col} text: "
                    f"reward left null[/yellow]"
                )
            empty = sum(1 for r in resp if not r.strip())
            if empty:
                console.print(f"[yellow]{empty} empty {col} values (scored)[/yellow]")
            s = _score_batched(scorer, [prompts[i] for i in have], resp, col)
            full = np.full(len(raw), np.nan)
            full[have] = s
            name = f"reward_{side}" if side else "reward"
            table = table.append_column(name, pa.array(full, pa.float64(), mask=np.isnan(full)))
    except _user_errors() as e:
        fail(str(e))
    _report_truncated(int(getattr(scorer, "truncated", 0)))
    _write(table, out)
    console.print(f"wrote {table.num_rows} rows to {out}")


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
) -> None:
    """Accuracy (ties excluded and tie-aware), per source, length-controlled, ECE, best-of-N,
    with the length-only and random baselines on the same rows."""
    from prefkit.reward.data import pairs_from_table
    from prefkit.reward.evaluate import evaluate_model, position_consistency
    from prefkit.reward.model_dir import read_card

    if tie_threshold is not None and tie_threshold < 0:
        fail("--tie-threshold must be >= 0", code=2)
    table = _read(data)
    try:
        pairs = pairs_from_table(table)
    except ValueError as e:
        fail(f"{data}: {e}")
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
            scorer = _load(model)
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
            res = evaluate_model(
                scorer, pairs, threshold, scores=(sa, sb), baseline_thresholds=base_thr
            )
            res["model_name"] = model
            if getattr(scorer, "truncated", 0):
                extra["truncated_texts"] = int(scorer.truncated)
    except _user_errors() as e:
        fail(str(e))
    res.update(extra)
    _report_counts(res, str(data))
    _report_truncated(int(extra.get("truncated_texts", 0)))
    if as_json:
        print_json(res)
        return
    _print_table(res)


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
    if "position_swap" in res:
        out.print(f"position-swap consistency {res['position_swap']['consistency']:.3f}")


def register(app: typer.Typer) -> None:
    app.add_typer(rm_app, name="rm")
