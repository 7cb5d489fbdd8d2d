"""`prefkit align train|eval|losses`: preference optimization on TRL (see docs/align.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from prefkit._cli import check_output, console, fail, parse_mapping, print_json

align_app = typer.Typer(
    help="Learn a policy from preferences: DPO-family losses, prefix-shared batches, eval.",
    no_args_is_help=True,
)


def _data(path: Path, ties: str) -> Any:
    from prefkit.align.data import load_pairs
    from prefkit.io.base import InputError

    if ties not in ("drop", "half", "keep"):
        fail(f"--ties must be drop, half or keep, got {ties!r}", code=2)
    try:
        data = load_pairs(path, ties=ties)
    except InputError:
        raise
    except ValueError as e:
        fail(f"{path}: {e}")
    for reason, n in sorted(data.skipped.items()):
        console.print(f"[yellow]skipped {n} pairs: {reason}[/yellow]")
    if len(data) == 0:
        fail(f"{path}: no trainable pairs (skipped: {data.skipped or 'none read'})")
    return data


def _progress_callback(progress: Any) -> Any:
    """A transformers TrainerCallback driving a rich progress bar (stderr)."""
    from transformers import TrainerCallback

    class _Bar(TrainerCallback):
        task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.task = progress.add_task("training", total=state.max_steps)

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            progress.update(self.task, completed=state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                progress.update(self.task, description=f"training (loss {float(logs['loss']):.4f})")

    return _Bar()


def _plain_if_no_template(pairs: Any, model_dir: str) -> Any:
    """Message-list pairs need a chat template; without one they are rendered as text."""
    if not pairs.conversational:
        return pairs
    from prefkit.align.data import as_text
    from prefkit.align.train import AlignError, load_tokenizer

    try:
        tok = load_tokenizer(model_dir)
    except AlignError as e:
        fail(str(e))
    if getattr(tok, "chat_template", None):
        return pairs
    console.print("the tokenizer has no chat template: messages are rendered as plain text")
    return as_text(pairs)


@align_app.command("train")
def train_cmd(
    data: Path = typer.Argument(
        ..., help="Pairs: TRL preference format, canonical pairs, or comparisons."
    ),
    base: str = typer.Option(..., "--base", help="Local causal LM checkpoint (policy init)."),
    loss: str = typer.Option("dpo", "--loss", help="A loss from `prefkit align losses`."),
    ref: str | None = typer.Option(
        None, "--ref", help="Reference model (default: a frozen copy of --base)."
    ),
    lora: bool = typer.Option(
        False, "--lora", help="Train LoRA adapters (peft); reference = adapters off."
    ),
    out: Path = typer.Option(
        Path("align-out"), "--out", help="Output directory (model + align.json)."
    ),
    beta: float = typer.Option(0.1, "--beta"),
    param: list[str] = typer.Option([], "--param", help="Loss parameter name=value (repeatable)."),
    batching: str = typer.Option("shared", "--batching", help="shared | packed | standard"),
    pack_tokens: int | None = typer.Option(
        None, "--pack-tokens", help="Row budget for --batching packed."
    ),
    max_length: int = typer.Option(
        512, "--max-length", min=1, help="Max tokens of prompt + response."
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    epochs: float = typer.Option(1.0, "--epochs"),
    max_steps: int = typer.Option(-1, "--max-steps"),
    lr: float = typer.Option(5e-4, "--lr"),
    seed: int = typer.Option(0, "--seed", min=0),
    ties: str = typer.Option("keep", "--ties", help="Comparisons input: build tie policy."),
    use_weights: bool = typer.Option(
        False, "--use-weights", help="Weight each pair's loss by `weight`."
    ),
    use_margins: bool = typer.Option(False, "--use-margins", help="Subtract each pair's `margin`."),
    as_json: bool = typer.Option(False, "--json", help="Print the training card as JSON."),
) -> None:
    """Train a policy with TRL's DPOTrainer (KTOTrainer for kto), a prefkit loss and batching."""
    from prefkit.align.losses import LossInputError, get_loss, loss_params
    from prefkit.align.train import BATCHINGS, AlignError, TrainConfig, train

    if batching not in BATCHINGS:
        fail(f"--batching must be one of {', '.join(BATCHINGS)}, got {batching!r}", code=2)
    try:
        spec = get_loss(loss)
        params = loss_params(
            loss, {k: float(v) for k, v in parse_mapping(param, "--param").items()}
        )
    except (LossInputError, ValueError) as e:
        fail(str(e), code=2)
    if spec.kind == "list":
        fail(
            f"--loss {loss} is listwise; `align train` trains pairs (use the library for lists)",
            code=2,
        )
    check_output(out, [data, Path(ref) if ref else None], "dir")
    pairs = _data(data, ties)
    n_ties = sum(1 for r in pairs.rows if r["tie"])
    if n_ties and loss not in ("dpo_davidson", "dpo_rao_kupper", "dpo_soft", "kto"):
        console.print(
            f"[yellow]{n_ties} pairs are ties; loss {loss} treats them as chosen ≻ rejected "
            "(use dpo_davidson, dpo_rao_kupper or dpo_soft, or --ties drop)[/yellow]"
        )
    if spec.needs_ref and ref is None:
        console.print(
            f"reference model: {'the base with LoRA off' if lora else f'a frozen copy of {base}'}"
        )
    cfg = TrainConfig(
        loss=loss,
        beta=beta,
        params=params,
        batching=batching,  # type: ignore[arg-type]
        pack_tokens=pack_tokens,
        max_length=max_length,
        batch_size=batch_size,
        epochs=epochs,
        max_steps=max_steps,
        learning_rate=lr,
        seed=seed,
        lora=lora,
        use_weights=use_weights,
        use_margins=use_margins,
    )
    pairs = _plain_if_no_template(pairs, base)
    console.print(f"training {loss} on {len(pairs)} pairs ({batching} batching)")
    from rich.progress import Progress

    try:
        with Progress(console=console, transient=True) as progress:
            card = train(pairs, base, out, cfg, ref=ref, callbacks=[_progress_callback(progress)])
    except (AlignError, LossInputError) as e:
        fail(str(e))
    for name, t in card["truncation"].items():
        if isinstance(t, dict) and (t.get("prompt_truncated") or t.get("response_truncated")):
            console.print(
                f"[yellow]{name}: {t['prompt_truncated']} prompts and {t['response_truncated']} "
                f"responses truncated to --max-length {max_length} (of {t['pairs']} pairs)[/yellow]"
            )
    tr = card["training"]
    console.print(f"{tr['steps']} steps, mean loss {tr['loss']:.4f}; wrote {out}")
    if as_json:
        print_json(card)


@align_app.command("eval")
def eval_cmd(
    data: Path = typer.Argument(..., help="Held-out pairs (same formats as train)."),
    policy: str = typer.Option(..., "--policy", help="Trained policy directory."),
    ref: str | None = typer.Option(None, "--ref", help="Reference model directory (required)."),
    rm: str | None = typer.Option(
        None, "--rm", help="Reward model (prefkit rm dir, or `length`) for win rate."
    ),
    beta: float = typer.Option(0.1, "--beta"),
    max_length: int = typer.Option(512, "--max-length"),
    n_generate: int = typer.Option(32, "--n-generate", help="Prompts to generate for win rate."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens"),
    ties: str = typer.Option("keep", "--ties"),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Implicit-reward accuracy, ranking and idealized ranking accuracy, win rate, length drift."""
    from prefkit.align.evaluate import evaluate
    from prefkit.align.train import AlignError, load_causal_lm, load_tokenizer

    if ref is None:
        fail(
            "align eval needs --ref PATH: the reference model the policy was trained against",
            code=2,
        )
    pairs = _plain_if_no_template(_data(data, ties), policy)
    try:
        pol = load_causal_lm(policy, "--policy")
        reference = load_causal_lm(ref, "--ref")
        tok = load_tokenizer(policy)
    except AlignError as e:
        fail(str(e))
    scorer = None
    if rm is not None:
        from prefkit.reward.model_dir import ModelDirError
        from prefkit.reward.models import load_model

        try:
            scorer = load_model(rm)
        except (ModelDirError, ValueError, OSError) as e:
            fail(f"--rm {rm}: {e}")
    res = evaluate(
        pol, reference, tok, pairs.rows, beta, max_length, scorer, n_generate, max_new_tokens
    )
    res["skipped"] = pairs.skipped

    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    console.print(
        f"{res['pairs']} pairs ({res['ties']} ties): reward accuracy {f(res['reward_accuracy'])}, "
        f"ranking accuracy ref {f(res['ranking_accuracy_ref'])} / policy "
        f"{f(res['ranking_accuracy_policy'])}, idealized {f(res['idealized_ranking_accuracy_ref'])}"
    )
    if "generation" in res:
        g = res["generation"]
        console.print(
            f"win rate vs reference {f(g['win_rate'])}, length drift {f(g['length_drift'])} tokens"
        )
    if as_json:
        print_json(res)


@align_app.command("losses")
def losses_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """List the registered losses: kind, reference model, TRL equivalent, parameters."""
    from prefkit.align.losses import SPECS

    rows = [
        {
            "name": s.name,
            "kind": s.kind,
            "needs_ref": s.needs_ref,
            "trl": "/".join(s.trl) if s.trl else None,
            "params": s.defaults,
            "paper": s.paper,
        }
        for s in SPECS.values()
    ]
    if as_json:
        print_json({"losses": rows})
        return
    for r in rows:
        console.print(
            f"{r['name']:<16} {r['kind']:<9} ref={'yes' if r['needs_ref'] else 'no ':<4} "
            f"trl={r['trl'] or '-':<18} {r['params'] or ''}  {r['paper']}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(align_app, name="align")
