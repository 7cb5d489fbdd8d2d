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
from prefkit.reward.head import LAMBDAS, fit_adam, fit_lbfgs, log_loss
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


EMBED_FOLDS = 5


def prompt_folds(prompt_ids: list[str], k: int, seed: int) -> NDArray[np.int64]:
    """Fold 0..k-1 of each row, by a hash of its prompt id and the seed (no prompt in two)."""
    return np.array(
        [
            int(hashlib.blake2b(f"{seed}\0{p}".encode(), digest_size=4).hexdigest(), 16) % k
            for p in prompt_ids
        ],
        dtype=np.int64,
    )


FEATURE_LAMBDAS: tuple[float, ...] = (1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


def train_features(
    train: Pairs, val: Pairs | None = None, lam: float | None = None, seed: int = 0
) -> tuple[FeatureModel, dict[str, Any]]:
    """Standardize features on the training responses and fit the BT head by L-BFGS (with
    Wald CIs). The L2 strength is `lam`, else the one of `FEATURE_LAMBDAS` with the lowest
    held-out log-loss in 5-fold prompt-grouped cross-validation on the training rows (folds by
    `seed`); with fewer than two training prompts, the lowest log-loss on `val`; else 1e-3.
    One validation split of a few hundred pairs made the choice noisy (see RESULTS.md)."""
    from prefkit.reward.features import response_features

    xa, names = response_features(train.prompts, train.a)
    xb, _ = response_features(train.prompts, train.b)
    both = np.vstack([xa, xb])
    mean = both.mean(axis=0)
    std = both.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    d = (xa - xb) / std
    path: list[dict[str, float]] = []
    how = "L-BFGS"
    k = min(EMBED_FOLDS, len(set(train.prompt_ids)))
    fold = prompt_folds(train.prompt_ids, k, seed) if k >= 2 else None
    if lam is None and fold is not None and len(set(fold.tolist())) >= 2:
        parts = sorted(set(fold.tolist()))
        sizes = [float(train.weight[fold == f].sum()) for f in parts]
        for cand in FEATURE_LAMBDAS:
            losses = []
            for f in parts:
                tr_m, va_m = fold != f, fold == f
                b, _ = fit_lbfgs(d[tr_m], train.y[tr_m], train.weight[tr_m], cand)
                losses.append(log_loss(b, d[va_m], train.y[va_m], train.weight[va_m]))
            mean_loss = float(np.average(losses, weights=sizes)) if sum(sizes) > 0 else 0.0
            path.append({"l2": cand, "val_log_loss": mean_loss})
        lam = min(path, key=lambda r: r["val_log_loss"])["l2"]
        how = f"L-BFGS, L2 strength picked by {len(parts)}-fold prompt-grouped cross-validation"
    elif lam is None and val is not None and len(val):
        va, _ = response_features(val.prompts, val.a)
        vb, _ = response_features(val.prompts, val.b)
        dv = (va - vb) / std
        for cand in FEATURE_LAMBDAS:
            b, _ = fit_lbfgs(d, train.y, train.weight, cand)
            path.append({"l2": cand, "val_log_loss": log_loss(b, dv, val.y, val.weight)})
        lam = min(path, key=lambda r: r["val_log_loss"])["l2"]
        how = "L-BFGS, L2 strength picked on validation log-loss"
    lam = 1e-3 if lam is None else lam
    beta, se = fit_lbfgs(d, train.y, train.weight, lam)
    fm = FeatureModel(names, mean, std, beta, se)
    info: dict[str, Any] = {
        "head": how,
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
    folds: int = EMBED_FOLDS,
) -> tuple[EmbedModel, dict[str, Any]]:
    """BT head on MiniLM embedding differences (+ the feature RM's score difference), fitted as a
    cross-validated ensemble. Ties and strength enter as soft labels; weights respected.

    The training rows are cut into `folds` prompt-grouped folds. For each fold and each L2
    strength of a small grid, mini-batch Adam fits the head on the other folds with early
    stopping on that fold's log-loss; the L2 strength with the lowest mean held-out log-loss
    wins, and the model is the average of its `folds` heads (a linear head, so the average of
    the scores). With one validation split of a few hundred pairs, the choice of L2 strength
    was noise and a 384-wide head overfitted in some splits; see benchmarks/RESULTS.md.

    With features, the feature RM is fitted first (L-BFGS, its L2 picked on `val`); in each fold
    it is refitted on that fold's training part (so the held-out fold does not see itself) and
    its score enters the head as one column with a learned scale: the embedding block learns
    what the features miss, and the head's L2 penalty does not shrink the interpretable part."""
    fm, fm_info = train_features(train, val, seed=seed) if with_features else (None, {})
    em = EmbedModel(np.zeros(0), fm, None, cache_dir=cache_dir)
    de = em.embed(train.prompts, train.a) - em.embed(train.prompts, train.b)
    dim = de.shape[1]
    dfeat = diff_features(fm, train) if fm is not None else None
    n_prompts = len(set(train.prompt_ids))
    k = min(folds, n_prompts)
    fold = prompt_folds(train.prompt_ids, k, seed) if k >= 2 else np.zeros(len(train), np.int64)
    if k >= 2 and len(set(fold.tolist())) < 2:
        k = 1
    parts = range(k) if k >= 2 else [-1]  # -1: no held-out rows, one head on everything
    designs: list[tuple[F64, F64 | None]] = []
    for f in parts:
        tr_m = fold != f
        beta_f = None
        if fm is not None and dfeat is not None:
            beta_f = fit_lbfgs(dfeat[tr_m], train.y[tr_m], train.weight[tr_m], fm_info["l2"])[0]
            d = np.hstack([de, (dfeat @ beta_f)[:, None]])
        else:
            d = de
        designs.append((d, beta_f))
    path = []
    fits_by_lam = []
    for lam in LAMBDAS if k >= 2 else (1e-3,):
        fits = []
        for f, (d, _) in zip(parts, designs, strict=True):
            tr_m, va_m = fold != f, fold == f
            has_va = bool(va_m.any())
            fits.append(
                fit_adam(
                    d[tr_m],
                    train.y[tr_m],
                    train.weight[tr_m],
                    d[va_m] if has_va else None,
                    train.y[va_m] if has_va else None,
                    train.weight[va_m] if has_va else None,
                    lam,
                    epochs,
                    seed + max(f, 0),
                )
            )
        vls = [x.val_loss for x in fits if x.val_loss is not None]
        # mean held-out log-loss weighted by fold size (each held-out row counts once)
        sizes = [float(train.weight[fold == f].sum()) for f in parts]
        mean_vl = (
            float(np.average([x.val_loss for x in fits], weights=sizes))
            if len(vls) == len(fits) and sum(sizes) > 0
            else float("nan")
        )
        path.append(
            {
                "l2": lam,
                "val_log_loss": mean_vl,
                "best_epoch": int(np.median([x.epochs for x in fits])),
            }
        )
        fits_by_lam.append(fits)
    best_i = int(np.nanargmin([r["val_log_loss"] for r in path])) if k >= 2 else 0
    fits = fits_by_lam[best_i]
    em.w_emb = np.mean([x.beta[:dim] for x in fits], axis=0)
    scales: list[float] = []
    if fm is not None:
        w_feat = np.zeros_like(fm.beta)
        for x, (_, beta_f) in zip(fits, designs, strict=True):
            assert beta_f is not None
            scales.append(float(x.beta[dim]))
            w_feat += x.beta[dim] * beta_f / len(fits)
        em.w_feat = w_feat
    chosen = path[best_i]
    info = {
        "head": (
            f"Adam, early stopping on held-out log-loss; L2 strength picked by {k}-fold "
            "prompt-grouped cross-validation; the model averages the folds' heads"
            if k >= 2
            else "Adam, no held-out rows (one prompt): default L2 strength, all epochs"
        ),
        "folds": k,
        "l2": chosen["l2"],
        "best_epoch": chosen["best_epoch"],
        "train_log_loss": float(
            np.mean(
                [
                    log_loss(x.beta, d, train.y, train.weight)
                    for x, (d, _) in zip(fits, designs, strict=True)
                ]
            )
        ),
        "val_log_loss": chosen["val_log_loss"] if k >= 2 else None,
        "l2_path": path,
        "with_features": with_features,
        "feature_score_scale": scales or None,
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
        fm, info = train_features(tr, va, seed=seed)
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
