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
from prefkit.reward.head import fit_adam_select, fit_lbfgs, log_loss
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


FEATURE_LAMBDAS: tuple[float, ...] = (1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


def train_features(
    train: Pairs, val: Pairs | None = None, lam: float | None = None
) -> tuple[FeatureModel, dict[str, Any]]:
    """Standardize features on the training responses and fit the BT head by L-BFGS (with
    Wald CIs). The L2 strength is `lam`, else the one of `FEATURE_LAMBDAS` with the lowest
    validation log-loss (1e-3 without validation rows)."""
    from prefkit.reward.features import response_features

    xa, names = response_features(train.prompts, train.a)
    xb, _ = response_features(train.prompts, train.b)
    both = np.vstack([xa, xb])
    mean = both.mean(axis=0)
    std = both.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    d = (xa - xb) / std
    path: list[dict[str, float]] = []
    if lam is None and val is not None and len(val):
        va, _ = response_features(val.prompts, val.a)
        vb, _ = response_features(val.prompts, val.b)
        dv = (va - vb) / std
        for cand in FEATURE_LAMBDAS:
            b, _ = fit_lbfgs(d, train.y, train.weight, cand)
            path.append({"l2": cand, "val_log_loss": log_loss(b, dv, val.y, val.weight)})
        lam = min(path, key=lambda r: r["val_log_loss"])["l2"]
    lam = 1e-3 if lam is None else lam
    beta, se = fit_lbfgs(d, train.y, train.weight, lam)
    fm = FeatureModel(names, mean, std, beta, se)
    info: dict[str, Any] = {
        "head": "L-BFGS, L2 strength picked on validation log-loss" if path else "L-BFGS",
        "l2": lam,
        "l2_path": path,
        "coefficients": fm.coefficients(),
        "train_log_loss": log_loss(beta, d, train.y, train.weight),
    }
    return fm, info


def train_embed(
    train: Pairs,
    val: Pairs | None,
    seed: int,
    epochs: int,
    with_features: bool = True,
    cache_dir: str | None = None,
) -> tuple[EmbedModel, dict[str, Any]]:
    """BT head on MiniLM embedding differences (+ standardized feature differences): mini-batch
    Adam with early stopping on validation log-loss, for each L2 strength of a small grid (the
    best validation loss wins). Ties and strength enter as soft labels; weights respected."""
    fm = train_features(train, val)[0] if with_features else None
    em = EmbedModel(np.zeros(0), fm, None, cache_dir=cache_dir)

    def design(p: Pairs) -> F64:
        d = em.embed(p.prompts, p.a) - em.embed(p.prompts, p.b)
        if fm is not None:
            d = np.hstack([d, diff_features(fm, p)])
        return d

    d = design(train)
    has_val = val is not None and len(val) > 0
    dv = design(val) if val is not None and has_val else None
    fit = fit_adam_select(
        d,
        train.y,
        train.weight,
        dv,
        val.y if val is not None and has_val else None,
        val.weight if val is not None and has_val else None,
        epochs,
        seed,
    )
    dim = d.shape[1] - (0 if fm is None else len(fm.names))
    em.w_emb = fit.beta[:dim]
    em.w_feat = fit.beta[dim:] if fm is not None else None
    info = {
        "head": "Adam, early stopping on validation log-loss, L2 strength picked on validation",
        "l2": fit.lam,
        "best_epoch": fit.epochs,
        "train_log_loss": fit.train_loss,
        "val_log_loss": fit.val_loss,
        "l2_path": [{"l2": lam, "val_log_loss": vl, "best_epoch": ep} for lam, vl, ep in fit.path],
        "with_features": with_features,
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
    epochs: int | None = None,
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
        fm, info = train_features(tr, va)
        model = fm
        if len(va):
            info["val_log_loss"] = log_loss(fm.beta, diff_features(fm, va), va.y, va.weight)
    elif backend == "embed":
        epochs = 100 if epochs is None else epochs
        model, info = train_embed(tr, va, seed, epochs, cache_dir=cache_dir)
    elif backend == "trl":
        if base is None:
            raise ValueError("--backend trl needs --base PATH (a local causal LM checkpoint)")
        from prefkit.reward.trl_backend import train_trl

        epochs = 1 if epochs is None else epochs
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
        metrics["note"] = (
            "validation split: also used for early stopping and the tie thresholds; "
            "use `prefkit rm eval` on held-out data for unbiased numbers"
        )
    card = {
        "backend": backend,
        "base": base,
        "lora": lora,
        "seed": seed,
        "epochs": epochs,
        "tie_threshold": threshold,
        "baseline_tie_thresholds": {
            k: v
            for k, v in metrics.get("baseline_tie_thresholds", {}).items()
            if k in ("length", "random")
        },
        "cache_dir": cache_dir,
        "data": {
            "rows": table.num_rows,
            "train_rows": len(tr),
            "val_rows": len(va),
            "train_prompts": len(set(tr.prompt_ids)),
            "val_prompts": len(set(va.prompt_ids)),
            "excluded": {
                "both_bad": (len(tr_all) - len(tr)) + (len(va_all) - len(va)),
                "missing_text": tr_all.skipped.get("missing_text", 0)
                + va_all.skipped.get("missing_text", 0),
            },
            "empty_responses": tr.empty_responses() + va.empty_responses(),
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
