"""Train reward models: prompt-grouped split, BT head, early stopping, saved model directory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.reward.data import Pairs, pairs_from_table
from prefkit.reward.head import fit_adam, fit_lbfgs, log_loss
from prefkit.reward.model_dir import write_card
from prefkit.reward.models import EmbedModel, FeatureModel

F64 = NDArray[np.float64]


def split_by_prompt(table: pa.Table, val: float = 0.2, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """Train/validation split with no prompt in both (`prefkit.build.splits.split`, by prompt)."""
    from prefkit.build.splits import split

    res = split(table, by="prompt", test=val, seed=seed)
    return res.tables["train"], res.tables["test"]


def usable(p: Pairs) -> NDArray[np.int64]:
    """Rows that carry a preference or a tie (`both_bad` says nothing about a vs b)."""
    return np.array([i for i, o in enumerate(p.outcome) if o != "both_bad"], dtype=np.int64)


def diff_features(fm: FeatureModel, p: Pairs) -> F64:
    return fm.design(p.prompts, p.a) - fm.design(p.prompts, p.b)


def train_features(train: Pairs, lam: float = 1e-3) -> FeatureModel:
    """Standardize features on the training responses, fit the BT head by L-BFGS (with CIs)."""
    from prefkit.reward.features import response_features

    xa, names = response_features(train.prompts, train.a)
    xb, _ = response_features(train.prompts, train.b)
    both = np.vstack([xa, xb])
    mean = both.mean(axis=0)
    std = both.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    d = (xa - xb) / std
    beta, se = fit_lbfgs(d, train.y, train.weight, lam)
    return FeatureModel(names, mean, std, beta, se)


def train_embed(
    train: Pairs,
    val: Pairs | None,
    seed: int,
    epochs: int,
    with_features: bool = True,
    lam: float = 1e-4,
    cache_dir: str | None = None,
) -> tuple[EmbedModel, dict[str, Any]]:
    """BT head on embedding differences (+ standardized feature differences), Adam with early
    stopping on validation log-loss. Ties and strength enter as soft labels; weights respected."""
    fm = train_features(train) if with_features else None
    em = EmbedModel(np.zeros(0), fm, None, cache_dir=cache_dir)

    def design(p: Pairs) -> F64:
        d = em.embed(p.prompts, p.a) - em.embed(p.prompts, p.b)
        if fm is not None:
            d = np.hstack([d, diff_features(fm, p)])
        return d

    d = design(train)
    has_val = val is not None and len(val) > 0
    dv = design(val) if val is not None and has_val else None
    fit = fit_adam(
        d,
        train.y,
        train.weight,
        dv,
        val.y if val is not None and has_val else None,
        val.weight if val is not None and has_val else None,
        lam,
        epochs,
        seed,
    )
    dim = d.shape[1] - (0 if fm is None else len(fm.names))
    em.w_emb = fit.beta[:dim]
    em.w_feat = fit.beta[dim:] if fm is not None else None
    info = {
        "best_epoch": fit.epochs,
        "train_log_loss": fit.train_loss,
        "val_log_loss": fit.val_loss,
        "truncated_texts": em.truncated,
    }
    return em, info


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=12)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class TrainResult:
    model: Any
    card: dict[str, Any]


def train(
    table: pa.Table,
    backend: str = "features",
    val_table: pa.Table | None = None,
    val_frac: float = 0.2,
    seed: int = 0,
    epochs: int = 50,
    base: str | None = None,
    lora: bool = False,
    cache_dir: str | None = None,
) -> TrainResult:
    """Train a reward model of `backend` (features | embed | trl) and build its card."""
    from prefkit.reward.evaluate import evaluate_model, fit_tie_threshold

    if val_table is None:
        tr_t, va_t = split_by_prompt(table, val_frac, seed)
        split_info: dict[str, Any] = {"split": "by prompt (prefkit.build.splits)", "val": val_frac}
    else:
        tr_t, va_t = table, val_table
        split_info = {"split": "given validation file"}
    tr_all, va_all = pairs_from_table(tr_t), pairs_from_table(va_t)
    tr, va = tr_all.take(usable(tr_all)), va_all.take(usable(va_all))
    if len(tr) < 2:
        raise ValueError(f"need at least 2 usable training pairs, got {len(tr)}")
    info: dict[str, Any] = {}
    model: Any
    if backend == "features":
        fm = train_features(tr)
        model = fm
        info["coefficients"] = fm.coefficients()
        info["train_log_loss"] = log_loss(fm.beta, diff_features(fm, tr), tr.y, tr.weight)
        if len(va):
            info["val_log_loss"] = log_loss(fm.beta, diff_features(fm, va), va.y, va.weight)
    elif backend == "embed":
        model, info = train_embed(tr, va, seed, epochs, cache_dir=cache_dir)
    elif backend == "trl":
        if base is None:
            raise ValueError("--backend trl needs --base PATH (a local causal LM checkpoint)")
        from prefkit.reward.trl_backend import train_trl

        model, info = train_trl(tr, va, base, seed=seed, epochs=epochs, lora=lora)
    else:
        raise ValueError(f"unknown backend {backend!r}; use features, embed or trl")
    threshold = 0.0
    metrics: dict[str, Any] = {}
    if len(va_all):
        sa = model.score(va_all.prompts, va_all.a)
        sb = model.score(va_all.prompts, va_all.b)
        threshold = fit_tie_threshold(sa - sb, va_all.outcome)
        metrics = evaluate_model(model, va_all, tie_threshold=threshold, scores=(sa, sb))
    card = {
        "backend": backend,
        "base": base,
        "lora": lora,
        "seed": seed,
        "epochs": epochs,
        "tie_threshold": threshold,
        "cache_dir": cache_dir,
        "data": {
            "train_rows": len(tr),
            "val_rows": len(va),
            "train_prompts": len(set(tr.prompt_ids)),
            "val_prompts": len(set(va.prompt_ids)),
            **split_info,
        },
        "training": info,
        "metrics": metrics,
    }
    return TrainResult(model, card)


def save(result: TrainResult, out: Path, data_path: Path | None = None) -> Path:
    """Write the model weights and `model.json` (data, metrics, version, backend)."""
    result.model.save(out)
    card = dict(result.card)
    if data_path is not None and data_path.is_file():
        card["data"] = {**card["data"], "path": str(data_path), "digest": file_digest(data_path)}
    return write_card(out, card)
