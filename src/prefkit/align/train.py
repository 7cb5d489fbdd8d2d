"""TRL glue: `DPOTrainer` with a prefkit loss and prefix-shared batching plugged in.

``PrefkitDPOTrainer`` is TRL's ``DPOTrainer`` (its dataset preparation, tokenization,
optimizer, logging, PEFT handling, saving) with three seams replaced: the truncation policy
(``prefkit.align.data.truncate``, counted), the collator (prefix-shared, packed, or the
standard unshared layout) and the loss (any pairwise entry of ``LOSSES``, with the per-pair
``tie``, ``weight``, ``margin`` and ``strength`` columns). KTO runs on TRL's ``KTOTrainer``
(unpaired data made by the build stage).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from prefkit.align.data import AlignData

Batching = Literal["shared", "packed", "standard"]
BATCHINGS: tuple[str, ...] = ("shared", "packed", "standard")


class AlignError(ValueError):
    """A user-facing training/evaluation problem (missing model, unusable loss, no data)."""


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; defaults suit a quick CPU run on a small model."""

    loss: str = "dpo"
    beta: float = 0.1
    params: dict[str, float] = field(default_factory=dict)
    batching: Batching = "shared"
    pack_tokens: int | None = None
    max_length: int | None = 512
    batch_size: int = 8
    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 5e-4
    seed: int = 0
    lora: bool = False
    lora_r: int = 8
    logging_steps: int = 1
    use_weights: bool = False  # multiply each pair's loss by its `weight` column
    use_margins: bool = False  # subtract each pair's `margin` column (DPO-family, hinge)


def _counter() -> Counter[str]:
    return Counter()


def make_collator(pad_id: int, batching: str, pack_tokens: int | None) -> Callable[..., Any]:
    """A collator turning TRL-tokenized examples into a prefix-shared / packed / standard
    `Batch` plus the per-pair label tensors."""
    import torch

    from prefkit.align.batching import Group, shared_batch, standard_batch

    if batching not in BATCHINGS:
        raise AlignError(f"batching must be one of {', '.join(BATCHINGS)}, got {batching!r}")

    def collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
        groups = [Group(e["prompt_ids"], [e["chosen_ids"], e["rejected_ids"]]) for e in examples]
        if batching == "standard":
            batch = standard_batch(groups, pad_id)
        else:
            batch = shared_batch(groups, pad_id, pack=batching == "packed", max_tokens=pack_tokens)
        out: dict[str, Any] = {"batch": batch}
        for k, default in (("tie", False), ("weight", 1.0), ("margin", 0.0), ("strength", 1.0)):
            vals = [e.get(k, default) for e in examples]
            dtype = torch.bool if k == "tie" else torch.float32
            out[k] = torch.tensor([default if v is None else v for v in vals], dtype=dtype)
        return out

    return collate


def _trl(name: str) -> Any:
    import importlib

    return getattr(importlib.import_module("trl"), name)


def trainer_class() -> Any:
    """``PrefkitDPOTrainer`` (built lazily: TRL is a heavy import)."""
    import torch

    DPOTrainer: Any = _trl("DPOTrainer")

    from prefkit.align.batching import response_logps
    from prefkit.align.data import truncate
    from prefkit.align.losses import PairLogps, get_loss

    class PrefkitDPOTrainer(DPOTrainer):  # type: ignore[misc]
        def __init__(
            self,
            *args: Any,
            prefkit_loss: str = "dpo",
            loss_params: dict[str, float] | None = None,
            batching: str = "shared",
            pack_tokens: int | None = None,
            truncate_to: int | None = None,
            use_weights: bool = False,
            use_margins: bool = False,
            **kwargs: Any,
        ) -> None:
            self.use_weights, self.use_margins = use_weights, use_margins
            spec = get_loss(prefkit_loss)
            if spec.kind != "pair":
                raise AlignError(
                    f"loss {prefkit_loss!r} is {spec.kind}; DPOTrainer trains pairwise losses"
                )
            self.prefkit_spec = spec
            self.prefkit_params = dict(loss_params or {})
            self.truncate_to = truncate_to
            self.truncation: dict[str, Counter[str]] = {}
            # what the training batches held: rows, token slots (rows x length), real tokens
            self.layout: Counter[str] = Counter()
            tok = kwargs.get("processing_class")
            pad = getattr(tok, "pad_token_id", None)
            if pad is None:
                pad = getattr(tok, "eos_token_id", None) or 0
            kwargs.setdefault("data_collator", make_collator(int(pad), batching, pack_tokens))
            super().__init__(*args, **kwargs)

        def _prepare_dataset(
            self, dataset: Any, processing_class: Any, args: Any, name: str
        ) -> Any:
            saved = args.max_length
            args.max_length = None  # prefkit's truncation policy, counted below
            try:
                ds = super()._prepare_dataset(dataset, processing_class, args, name)
            finally:
                args.max_length = saved
            counts = self.truncation.setdefault(name, _counter())
            limit = self.truncate_to

            def cut(ex: dict[str, Any]) -> dict[str, Any]:
                p, (c, r), pc, rc = truncate(
                    ex["prompt_ids"], [ex["chosen_ids"], ex["rejected_ids"]], limit
                )
                counts["pairs"] += 1
                counts["prompt_truncated"] += int(pc)
                counts["response_truncated"] += int(rc)
                return {"prompt_ids": p, "chosen_ids": c, "rejected_ids": r}

            return ds.map(cut, load_from_cache_file=False, desc=f"Truncating {name}")

        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            extra = ["tie", "weight", "margin", "strength"]
            cols: list[str] = list(getattr(self, "_signature_columns", None) or [])
            self._signature_columns = cols + extra

        def _ref_logps(self, model: Any, batch: Any) -> Any:
            with torch.no_grad():
                if self.ref_model is not None:
                    return response_logps(self.ref_model, batch)[0]
                unwrapped = self.accelerator.unwrap_model(model)
                if hasattr(unwrapped, "disable_adapter"):
                    with unwrapped.disable_adapter():
                        return response_logps(model, batch)[0]
            raise AlignError(
                f"loss {self.prefkit_spec.name!r} needs a reference model: pass one (or use LoRA)"
            )

        def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
            mode = "train" if self.model.training else "eval"
            batch = inputs["batch"]
            n = batch.n_responses // 2
            logps, counts = response_logps(model, batch)
            pol, cnt = logps.view(n, 2), counts.view(n, 2)
            ref = None
            if self.prefkit_spec.needs_ref:
                ref = self._ref_logps(model, batch).view(n, 2)
            dev = logps.device
            lp = PairLogps(
                pol[:, 0],
                pol[:, 1],
                None if ref is None else ref[:, 0],
                None if ref is None else ref[:, 1],
                cnt[:, 0],
                cnt[:, 1],
                tie=inputs["tie"].to(dev),
                strength=inputs["strength"].to(dev, logps.dtype),
                weight=inputs["weight"].to(dev, logps.dtype) if self.use_weights else None,
                margin=inputs["margin"].to(dev, logps.dtype) if self.use_margins else None,
            )
            out = self.prefkit_spec.fn(lp, beta=self.beta, **self.prefkit_params)
            loss = out.losses.mean()
            m = self._metrics[mode]
            clear = ~lp.tie if lp.tie is not None else torch.ones(n, dtype=torch.bool)
            cr, rr = out.chosen_rewards, out.rejected_rewards
            m["rewards/chosen"].append(cr.mean().item())
            m["rewards/rejected"].append(rr.mean().item())
            if bool(clear.any()):
                m["rewards/accuracies"].append((cr > rr)[clear].float().mean().item())
            m["rewards/margins"].append((cr - rr).mean().item())
            m["logps/chosen"].append(pol[:, 0].mean().item())
            m["logps/rejected"].append(pol[:, 1].mean().item())
            if mode == "train":
                self._total_train_tokens += int(batch.real_tokens)
                rows, length = batch.shape
                self.layout.update(
                    rows=rows, token_slots=rows * length, real_tokens=batch.real_tokens
                )
            m["num_tokens"] = [self._total_train_tokens]
            if return_outputs:
                return loss, {"rewards": out.rewards}
            return loss

    return PrefkitDPOTrainer


def load_causal_lm(path: str, what: str) -> Any:
    """A local causal LM checkpoint; AlignError naming `what` and the path otherwise."""
    from transformers import AutoModelForCausalLM

    p = Path(path)
    if not p.is_dir() or not (p / "config.json").exists():
        raise AlignError(f"{what} {path}: not a model directory (no config.json)")
    try:
        return AutoModelForCausalLM.from_pretrained(str(p))
    except (OSError, ValueError) as e:
        raise AlignError(f"{what} {path}: cannot load a causal LM ({e})") from e


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise AlignError(f"base {path}: cannot load its tokenizer ({e})") from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if tok.eos_token is None:
        raise AlignError(f"base {path}: the tokenizer has no EOS token")
    return tok


def _dataset(data: AlignData) -> Any:
    from datasets import Dataset

    return Dataset.from_list(data.rows)


def _common_args(cfg: TrainConfig, out: Path) -> dict[str, Any]:
    """Arguments every TRL trainer config here gets (DPOConfig, KTOConfig)."""
    return {
        "output_dir": str(out / "checkpoints"),
        "per_device_train_batch_size": cfg.batch_size,
        "num_train_epochs": cfg.epochs,
        "max_steps": cfg.max_steps,
        "learning_rate": cfg.learning_rate,
        "beta": cfg.beta,
        "report_to": [],
        "logging_steps": cfg.logging_steps,
        "save_strategy": "no",
        "seed": cfg.seed,
        "use_cpu": not _cuda(),
        "bf16": _cuda(),  # TRL defaults to bf16 autocast; on CPU it is slow and imprecise
        "disable_tqdm": True,
    }


def _dpo_args(cfg: TrainConfig, out: Path) -> Any:
    return _trl("DPOConfig")(**_common_args(cfg, out), max_length=None, remove_unused_columns=True)


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _lora(cfg: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=2 * cfg.lora_r,
        target_modules="all-linear",
        exclude_modules=["lm_head"],
        task_type="CAUSAL_LM",
    )


def build_trainer(
    data: AlignData,
    base: str,
    out: Path,
    cfg: TrainConfig,
    ref: str | None = None,
    policy: Any = None,
    tokenizer: Any = None,
    callbacks: list[Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The configured ``PrefkitDPOTrainer`` and notes on the reference model used."""
    import torch

    from prefkit.align.losses import get_loss, loss_params

    spec = get_loss(cfg.loss)
    params = loss_params(cfg.loss, cfg.params)
    if len(data) == 0:
        raise AlignError("no trainable pairs left after the checks")
    torch.manual_seed(cfg.seed)
    tok = tokenizer if tokenizer is not None else load_tokenizer(base)
    model = policy if policy is not None else load_causal_lm(base, "base")
    notes: dict[str, Any] = {"needs_ref": spec.needs_ref}
    ref_model = None
    peft_config = _lora(cfg) if cfg.lora else None
    if spec.needs_ref:
        if ref is not None:
            ref_model = load_causal_lm(ref, "--ref")
            notes["reference"] = str(ref)
        elif peft_config is not None:
            notes["reference"] = "base with the LoRA adapter disabled"
        else:
            ref_model = copy.deepcopy(model)
            notes["reference"] = f"a frozen copy of the base ({base})"
    else:
        notes["reference"] = None  # reference-free: TRL still wants one; it is never run
        ref_model = copy.deepcopy(model) if peft_config is None else None
    cls = trainer_class()
    trainer = cls(
        model=model,
        ref_model=ref_model,
        args=_dpo_args(cfg, out),
        train_dataset=_dataset(data),
        processing_class=tok,
        peft_config=peft_config,
        prefkit_loss=cfg.loss,
        loss_params=params,
        batching=cfg.batching,
        pack_tokens=cfg.pack_tokens,
        truncate_to=cfg.max_length,
        use_weights=cfg.use_weights,
        use_margins=cfg.use_margins,
        callbacks=callbacks,
    )
    return trainer, notes


def train_kto(
    data: AlignData,
    base: str,
    out: Path,
    cfg: TrainConfig,
    ref: str | None = None,
    callbacks: list[Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """KTO on TRL's ``KTOTrainer``: pairs become unpaired rows (chosen desirable, rejected
    undesirable) with the build stage's class weights."""
    from datasets import Dataset

    KTOConfig, KTOTrainer = _trl("KTOConfig"), _trl("KTOTrainer")

    from prefkit.build.weights import kto_weights

    rows = []
    for r in data.rows:
        if r["tie"]:
            continue
        rows.append({"prompt": r["prompt"], "completion": r["chosen"], "label": True})
        rows.append({"prompt": r["prompt"], "completion": r["rejected"], "label": False})
    if not rows:
        raise AlignError("no non-tie pairs for KTO")
    n = len(rows) // 2
    w = kto_weights(n, n)
    params = dict(cfg.params)
    tok = load_tokenizer(base)
    model = load_causal_lm(base, "base")
    ref_model = load_causal_lm(ref, "--ref") if ref is not None else copy.deepcopy(model)
    trainer = KTOTrainer(
        model=model,
        ref_model=None if cfg.lora else ref_model,
        args=KTOConfig(
            **_common_args(cfg, out),
            max_length=cfg.max_length,
            desirable_weight=params.get("desirable_weight", w["desirable_weight"]),
            undesirable_weight=params.get("undesirable_weight", w["undesirable_weight"]),
        ),
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        peft_config=_lora(cfg) if cfg.lora else None,
        callbacks=callbacks,
    )
    return trainer, {"reference": str(ref) if ref else f"a frozen copy of the base ({base})"}


def train(
    data: AlignData,
    base: str,
    out: str | Path,
    cfg: TrainConfig,
    ref: str | None = None,
    policy: Any = None,
    tokenizer: Any = None,
    callbacks: list[Any] | None = None,
) -> dict[str, Any]:
    """Train, save the policy (or adapter) and tokenizer to `out`, write ``align.json``
    (config, data checks, truncation counts, loss history) and return that card."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.loss == "kto":
        trainer, notes = train_kto(data, base, out, cfg, ref, callbacks)
        truncation: dict[str, Any] = {"policy": "TRL KTOTrainer keep_start"}
    else:
        trainer, notes = build_trainer(data, base, out, cfg, ref, policy, tokenizer, callbacks)
    result = trainer.train()
    layout: dict[str, Any] | None = None
    if cfg.loss != "kto":
        truncation = {k: dict(v) for k, v in trainer.truncation.items()}
        lay = trainer.layout
        layout = {
            **{k: int(lay[k]) for k in ("rows", "token_slots", "real_tokens")},
            "padding_share": 1 - lay["real_tokens"] / lay["token_slots"]
            if lay["token_slots"]
            else None,
        }
    hist = trainer.state.log_history
    card: dict[str, Any] = {
        "stage": "align",
        "base": str(base),
        "config": asdict(cfg),
        "data": {"pairs": len(data), "skipped": data.skipped, "source": data.source},
        "truncation": truncation,
        "notes": notes,
        "training": {
            "steps": int(trainer.state.global_step),
            "loss": float(result.training_loss),
            "losses": [float(h["loss"]) for h in hist if "loss" in h],
            "reward_accuracy": [
                float(h["rewards/accuracies"]) for h in hist if "rewards/accuracies" in h
            ],
            "layout": layout,
        },
    }
    trainer.save_model(str(out))
    trainer.processing_class.save_pretrained(str(out))
    (out / "align.json").write_text(json.dumps(card, indent=2, default=str), encoding="utf-8")
    return card
