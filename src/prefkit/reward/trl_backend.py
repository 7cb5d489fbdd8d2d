"""Transformer reward model via TRL's `RewardTrainer` on a local checkpoint (`[train]` extra).

The pairs become TRL's implicit-prompt preference format (`chosen`, `rejected` texts that
include the prompt, plus `margin` when the data has one). TRL's loss has no soft labels:
ties are dropped (counted in the card), `a`/`b` rows become chosen/rejected, `strength` and
`weight` are not used; pairs longer than `max_length` tokens are filtered by TRL (counted).
A fixed number of epochs (no early stopping); the validation split gives the card's metrics.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from prefkit.reward.data import Pairs
from prefkit.reward.embed import EXTRA_HINT, MissingExtraError
from prefkit.reward.model_dir import ModelDirError


def _text(prompt: str, response: str) -> str:
    return f"User: {prompt}\n\nAssistant: {response}"


def _dataset(p: Pairs) -> Any:
    from datasets import Dataset

    rows: dict[str, list[Any]] = {"chosen": [], "rejected": []}
    has_margin = bool(np.isfinite(p.margin).any())
    if has_margin:
        rows["margin"] = []
    for i in range(len(p)):
        if p.outcome[i] not in ("a", "b"):
            continue
        a, b = _text(p.prompts[i], p.a[i]), _text(p.prompts[i], p.b[i])
        c, r = (a, b) if p.outcome[i] == "a" else (b, a)
        rows["chosen"].append(c)
        rows["rejected"].append(r)
        if has_margin:
            m = float(p.margin[i])
            rows["margin"].append(m if np.isfinite(m) else 0.0)
    return Dataset.from_dict(rows)


class TrlModel:
    backend = "trl"

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 512) -> None:
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length
        self.truncated = 0

    def score(
        self, prompts: list[str], responses: list[str], batch_size: int = 16
    ) -> NDArray[np.float64]:
        import torch

        texts = [_text(p, r) for p, r in zip(prompts, responses, strict=True)]
        out: list[float] = []
        if torch.cuda.is_available() and self.model.device.type != "cuda":
            self.model.to("cuda")  # a GPU worker (rm score --engine ray on a GPU cluster)
        self.model.eval()
        for i in range(0, len(texts), batch_size):
            chunk = texts[i : i + batch_size]
            full = self.tokenizer(chunk, truncation=False, verbose=False)["input_ids"]
            self.truncated += sum(len(x) > self.max_length for x in full)
            enc = self.tokenizer(
                chunk,
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            enc = enc.to(self.model.device)
            with torch.no_grad():
                logits = self.model(**enc).logits[:, 0]
            out.extend(float(x) for x in logits)
        return np.array(out, dtype=np.float64)

    def save(self, out: Path) -> None:
        self.model.save_pretrained(out / "hf")
        self.tokenizer.save_pretrained(out / "hf")
        (out / "trl.json").write_text(json.dumps({"max_length": self.max_length}) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrlModel:
        if not (path / "hf").is_dir():
            raise ModelDirError(f"{path}: trl model directory has no hf/ weights")
        model, tok = _load(str(path / "hf"))
        cfg = path / "trl.json"
        max_length = int(json.loads(cfg.read_text())["max_length"]) if cfg.exists() else 512
        return cls(model, tok, max_length)


def _load(base: str) -> tuple[Any, Any]:
    try:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as e:
        raise MissingExtraError(f"transformers is missing; {EXTRA_HINT}") from e
    tok = AutoTokenizer.from_pretrained(base)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    return model, tok


def train_trl(
    train: Pairs,
    val: Pairs | None,
    base: str,
    seed: int = 0,
    epochs: int = 1,
    lora: bool = False,
    lr: float = 1e-3,
    batch_size: int = 8,
    max_length: int = 256,
) -> tuple[TrlModel, dict[str, Any]]:
    """Fine-tune `base` as a reward model with `trl.RewardTrainer`; returns the model and a log
    (loss per logging step, dropped ties)."""
    try:
        from trl import RewardConfig, RewardTrainer  # type: ignore[attr-defined]
    except ImportError as e:
        raise MissingExtraError(f"trl is missing; {EXTRA_HINT}") from e
    model, tok = _load(base)
    ds = _dataset(train)
    peft_config = None
    if lora:
        from peft import LoraConfig

        peft_config = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        args = RewardConfig(
            output_dir=tmp,
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=lr,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            seed=seed,
            max_length=max_length,
            use_cpu=True,
            disable_tqdm=True,
            # TRL's defaults (bf16 autocast, gradient checkpointing) are for GPUs; on CPU they
            # make a tiny model ~10x slower
            bf16=False,
            gradient_checkpointing=False,
        )
        trainer = RewardTrainer(
            model=model,
            args=args,
            train_dataset=ds,
            processing_class=tok,
            peft_config=peft_config,
        )
        processed: Any = trainer.train_dataset
        kept = len(processed)
        if kept == 0:
            raise ValueError(
                f"all {len(ds)} training pairs are longer than max_length={max_length} tokens"
            )
        trainer.train()
        losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    m: Any = trainer.model
    if lora:
        m = m.merge_and_unload()
    info = {
        "losses": losses,
        "train_pairs": len(ds),
        "dropped_ties": sum(o not in ("a", "b") for o in train.outcome),
        "dropped_too_long": len(ds) - kept,
        "max_length": max_length,
        "batch_size": batch_size,
        "epochs": epochs,
        "margin": "margin" in ds.column_names,
    }
    return TrlModel(m, tok, max_length), info
