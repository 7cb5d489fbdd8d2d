"""`prefkit rm train|score|eval`: reward models from the command line (see docs/reward.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from prefkit._cli import console, fail, print_json

rm_app = typer.Typer(
    help="Reward models: train (features | embed | trl), score a dataset, evaluate honestly.",
    no_args_is_help=True,
)


def _read(path: Path, kinds: tuple[str, ...] = ("comparisons",)) -> Any:
    from prefkit.io.detect import read
    from prefkit.schema import Kind

    res = read(path)
    for k in kinds:
        if Kind(k) in res.tables:
            return res.tables[Kind(k)]
    fail(f"{path}: needs a {' or '.join(kinds)} table; the {res.reader} reader gave {res.kind}")


def _load(model: str) -> Any:
    from prefkit.reward.embed import MissingExtraError
    from prefkit.reward.model_dir import ModelDirError
    from prefkit.reward.models import load_model

    try:
        return load_model(model)
    except (ModelDirError, MissingExtraError) as e:
        fail(str(e))


@rm_app.command("train")
def train_cmd(
    data: Path = typer.Argument(..., help="Comparisons (any format prefkit reads)."),
    out_dir: Path = typer.Argument(..., help="Model directory to write (model.json + weights)."),
    backend: str = typer.Option("features", "--backend", help="features | embed | trl"),
    base: str | None = typer.Option(None, "--base", help="trl: local causal LM checkpoint."),
    val: Path | None = typer.Option(None, "--val", help="Validation file (else 20% of prompts)."),
    seed: int = typer.Option(0, "--seed"),
    epochs: int = typer.Option(50, "--epochs", help="Max epochs (early stopping on val loss)."),
    lora: bool = typer.Option(False, "--lora", help="trl: train LoRA adapters (peft)."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Embedding cache folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the model card as JSON."),
) -> None:
    """Train a reward model; split by prompt, early stopping, saved with a model.json card."""
    from prefkit.reward.embed import MissingExtraError
    from prefkit.reward.train import save, train

    if backend not in ("features", "embed", "trl"):
        fail(f"--backend must be features, embed or trl, got {backend!r}", code=2)
    if backend == "trl" and base is None:
        fail("--backend trl needs --base PATH (a local causal LM checkpoint)", code=2)
    table = _read(data)
    vtable = _read(val) if val is not None else None
    console.print(f"training {backend} reward model on {table.num_rows} rows")
    try:
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
    except MissingExtraError as e:
        fail(str(e))
    except ValueError as e:
        fail(f"{data}: {e}")
    card_path = save(res, out_dir, data)
    m = res.card.get("metrics", {})
    if m:
        acc = m["model"]["accuracy"]["accuracy"]
        lacc = m["length_baseline"]["accuracy"]["accuracy"]
        console.print(f"validation accuracy {acc:.3f} (length baseline {lacc:.3f})")
    trunc = res.card.get("training", {}).get("truncated_texts")
    if trunc:
        console.print(f"[yellow]{trunc} texts were truncated to the encoder limit[/yellow]")
    console.print(f"wrote {card_path}")
    if as_json:
        print_json(res.card)


def _score_batched(model: Any, prompts: list[str], responses: list[str], label: str) -> Any:
    import numpy as np
    from rich.progress import Progress

    out = []
    step = 512
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"scoring {label}", total=len(responses))
        for i in range(0, len(responses), step):
            out.append(model.score(prompts[i : i + step], responses[i : i + step]))
            prog.advance(task, len(responses[i : i + step]))
    return np.concatenate(out) if out else np.zeros(0)


@rm_app.command("score")
def score_cmd(
    model: str = typer.Argument(..., help="Model directory, or `length` for the baseline."),
    data: Path = typer.Argument(..., help="Comparisons, ratings or binary feedback."),
    out: Path = typer.Argument(..., help="Output Parquet/JSONL/CSV with reward columns added."),
    judge: str | None = typer.Option(None, "--judge", help="OpenAI-compatible base URL."),
    judge_model: str = typer.Option("judge", "--judge-model", help="Model name for the judge."),
) -> None:
    """Add `reward_a`/`reward_b` (comparisons) or `reward` (ratings, binary) columns."""
    import pyarrow as pa

    from prefkit.schema import messages_text

    table = _read(data, ("comparisons", "ratings", "binary"))
    scorer: Any
    if judge is not None:
        from prefkit.reward.judge import JudgeScorer

        scorer = JudgeScorer(judge, model=judge_model)
    else:
        scorer = _load(model)
    prompts = [messages_text(p) for p in table.column("prompt").to_pylist()]
    if "response_a" in table.column_names:
        for side in ("a", "b"):
            resp = [messages_text(r) for r in table.column(f"response_{side}").to_pylist()]
            empty = sum(1 for r in resp if not r.strip())
            if empty:
                console.print(f"[yellow]{empty} empty response_{side} values (scored)[/yellow]")
            s = _score_batched(scorer, prompts, resp, f"response_{side}")
            table = table.append_column(f"reward_{side}", pa.array(s, pa.float64()))
    else:
        resp = [messages_text(r) for r in table.column("response").to_pylist()]
        s = _score_batched(scorer, prompts, resp, "response")
        table = table.append_column("reward", pa.array(s, pa.float64()))
    trunc = getattr(scorer, "truncated", 0)
    if trunc:
        console.print(f"[yellow]{trunc} texts were truncated to the encoder limit[/yellow]")
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
    model: str = typer.Argument(..., help="Model directory, or `length` for the baseline."),
    data: Path = typer.Argument(..., help="Comparisons with outcomes."),
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

    table = _read(data)
    pairs = pairs_from_table(table)
    threshold = 0.0
    extra: dict[str, Any] = {}
    if judge is not None:
        from prefkit.reward.judge import JudgeScorer

        js = JudgeScorer(judge, model=judge_model)
        d_ab, d_ba = js.compare(pairs.prompts, pairs.a, pairs.b)
        extra["position_swap"] = position_consistency(d_ab, d_ba)
        d = (d_ab - d_ba) / 2
        res = evaluate_model(js, pairs, 0.0, scores=(d / 2, -d / 2))
        res["model_name"] = f"judge:{judge}"
    else:
        scorer = _load(model)
        if model != "length":
            threshold = float(read_card(Path(model)).get("tie_threshold", 0.0))
        if tie_threshold is not None:
            threshold = tie_threshold
        res = evaluate_model(scorer, pairs, threshold)
        res["model_name"] = model
        if getattr(scorer, "truncated", 0):
            extra["truncated_texts"] = scorer.truncated
    res.update(extra)
    if as_json:
        print_json(res)
        return
    _print_table(res)


def _fmt(m: dict[str, Any]) -> str:
    if m.get("accuracy") is None:
        return "—"
    return f"{m['accuracy']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] n={m['n']}"


def _print_table(res: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title=f"{res['model_name']} on {res['rows']} rows")
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
    from rich.console import Console

    Console().print(t)
    if "position_swap" in res:
        Console().print(f"position-swap consistency {res['position_swap']['consistency']:.3f}")


def register(app: typer.Typer) -> None:
    app.add_typer(rm_app, name="rm")
