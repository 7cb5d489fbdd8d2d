"""Train reward models: prompt-grouped split, BT head, early stopping, saved model directory.

Several sources train one model: each input is a source; rows are weighted so every source
carries the same total weight, and the disentangled heads (`prefkit.reward.disentangle`) get
one nuisance term per source.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.reward.data import Pairs, pairs_from_table
from prefkit.reward.disentangle import (
    balanced_weights,
    decorrelate,
    nuisance_names,
    parse_spec,
    source_blocks,
    spec_name,
)
from prefkit.reward.head import (
    LAMBDAS,
    fit_adam,
    fit_lbfgs,
    fit_lbfgs_cov,
    log_loss,
    one_blas_thread,
)
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


def source_index(p: Pairs) -> tuple[NDArray[np.int64], list[str]]:
    """Each row's source as 0..S-1 (in order of first appearance) and the source names."""
    names = list(dict.fromkeys(p.source))
    pos = {n: i for i, n in enumerate(names)}
    return np.array([pos[s] for s in p.source], dtype=np.int64), names


def _interval(name: str, coef: float, se: float, **extra: Any) -> dict[str, Any]:
    ok = bool(np.isfinite(se))
    return {
        **extra,
        "feature": name,
        "coef": float(coef),
        "se": float(se) if ok else None,
        "ci_low": float(coef - 1.96 * se) if ok else None,
        "ci_high": float(coef + 1.96 * se) if ok else None,
    }


def cv_lambda(
    d: F64,
    y: F64,
    w: F64,
    prompt_ids: list[str],
    seed: int,
    lams: tuple[float, ...] = FEATURE_LAMBDAS,
) -> tuple[float | None, list[dict[str, float]]]:
    """L2 strength of `lams` with the lowest held-out log-loss in 5-fold prompt-grouped
    cross-validation (folds by `seed`, fold losses weighted by fold weight); None when the rows
    have fewer than two prompts."""
    k = min(EMBED_FOLDS, len(set(prompt_ids)))
    if k < 2:
        return None, []
    fold = prompt_folds(prompt_ids, k, seed)
    parts = sorted(set(fold.tolist()))
    if len(parts) < 2:
        return None, []
    sizes = [float(w[fold == f].sum()) for f in parts]
    path: list[dict[str, float]] = []
    for cand in lams:
        losses = []
        for f in parts:
            tr_m, va_m = fold != f, fold == f
            b, _ = fit_lbfgs(d[tr_m], y[tr_m], w[tr_m], cand)
            losses.append(log_loss(b, d[va_m], y[va_m], w[va_m]))
        mean_loss = float(np.average(losses, weights=sizes)) if sum(sizes) > 0 else 0.0
        path.append({"l2": cand, "val_log_loss": mean_loss})
    return min(path, key=lambda r: r["val_log_loss"])["l2"], path


@dataclass(frozen=True)
class FeatureFit:
    """A fitted feature RM and what the MiniLM head needs to build on it: the training design
    (quality columns first, then the per-source nuisance blocks), how design coefficients map
    to the model's feature weights (nuisance head dropped), and the training weights."""

    model: FeatureModel
    info: dict[str, Any]
    design: F64
    n_quality: int
    to_beta: Callable[[F64], F64]
    weight: F64
    lam: float
    za: F64  # standardized features of the training rows' a and b responses
    zb: F64


def row_weights(train: Pairs, balance: bool) -> tuple[F64, list[dict[str, Any]]]:
    """Training weights (source-balanced unless `balance` is False) and, per source, its rows
    and weight multiplier — what the card lists under `data.sources`."""
    src, names = source_index(train)
    w, mult = balanced_weights(src, train.weight) if balance else (train.weight, {})
    total = float(w.sum()) or 1.0
    return w, [
        {
            "name": n,
            "train_rows": int((src == i).sum()),
            "weight": float(mult.get(i, 1.0)),
            "share": float(w[src == i].sum()) / total,
        }
        for i, n in enumerate(names)
    ]


def fit_features(
    train: Pairs,
    val: Pairs | None = None,
    lam: float | None = None,
    seed: int = 0,
    groups: Sequence[str] = (),
    balance: bool = True,
    features: tuple[F64, F64] | None = None,
) -> FeatureFit:
    """Standardize features on the training responses and fit the BT head by L-BFGS (with
    Wald CIs). The L2 strength is `lam`, else the one of `FEATURE_LAMBDAS` with the lowest
    held-out log-loss in 5-fold prompt-grouped cross-validation on the training rows (folds by
    `seed`); with fewer than two training prompts, the lowest log-loss on `val`; else 1e-3.
    One validation split of a few hundred pairs made the choice noisy (see RESULTS.md).

    `groups` (e.g. `("length", "style")`) makes the head disentangled: quality features
    decorrelated from the nuisance features, one nuisance term per source, nuisance dropped at
    scoring (`prefkit.reward.disentangle`). Rows are source-balanced unless `balance` is False.
    `features`: the rows' precomputed `response_features` of a and b (they are the slow part).
    """
    with one_blas_thread():
        return _fit_features(train, val, lam, seed, groups, balance, features)


def _fit_features(
    train: Pairs,
    val: Pairs | None,
    lam: float | None,
    seed: int,
    groups: Sequence[str],
    balance: bool,
    features: tuple[F64, F64] | None,
) -> FeatureFit:
    from prefkit.reward.features import FEATURE_NAMES, response_features

    if features is None:
        xa, names = response_features(train.prompts, train.a)
        xb, _ = response_features(train.prompts, train.b)
    else:
        (xa, xb), names = features, list(FEATURE_NAMES)
    both = np.vstack([xa, xb])
    mean = both.mean(axis=0)
    std = both.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    src, src_names = source_index(train)
    w, _ = row_weights(train, balance)
    nuis = nuisance_names(groups)
    ni = [names.index(n) for n in nuis]
    qi = [i for i in range(len(names)) if i not in ni]
    za, zb = (xa - mean) / std, (xb - mean) / std
    dz = za - zb
    dec = decorrelate(dz[:, qi], dz[:, ni], w) if ni else None

    def design(dz: F64, rows_src: NDArray[np.int64]) -> F64:
        if dec is None:
            return dz
        dq = dec.residual(dz[:, qi], dz[:, ni])
        return np.hstack([dq, source_blocks(dz[:, ni], rows_src, len(src_names))])

    def to_beta(b: F64) -> F64:
        if dec is None:
            return b
        full = np.zeros(len(names))
        full[qi] = b[: len(qi)]
        full[ni] = dec.back_projection(b[: len(qi)])
        return full

    d = design(dz, src)
    path: list[dict[str, float]] = []
    how = "L-BFGS"
    if lam is None:
        lam, path = cv_lambda(d, train.y, w, train.prompt_ids, seed)
        if lam is not None:
            how = "L-BFGS, L2 strength picked by 5-fold prompt-grouped cross-validation"
    if lam is None and val is not None and len(val):
        va, _ = response_features(val.prompts, val.a)
        vb, _ = response_features(val.prompts, val.b)
        pos = {n: i for i, n in enumerate(src_names)}
        vsrc = np.array([pos.get(s, -1) for s in val.source], dtype=np.int64)
        dv = design((va - vb) / std, vsrc)
        for cand in FEATURE_LAMBDAS:
            b, _ = fit_lbfgs(d, train.y, w, cand)
            path.append({"l2": cand, "val_log_loss": log_loss(b, dv, val.y, val.weight)})
        lam = min(path, key=lambda r: r["val_log_loss"])["l2"]
        how = "L-BFGS, L2 strength picked on validation log-loss"
    lam = 1e-3 if lam is None else lam
    b, cov = fit_lbfgs_cov(d, train.y, w, lam)
    se_d = np.sqrt(np.clip(np.diag(cov), 0, None))
    beta = to_beta(b)
    if dec is None:
        se = se_d
    else:
        nq = len(qi)
        se = np.full(len(names), np.nan)
        se[qi] = se_d[:nq]
        a1 = dec.coef  # (m, k): the back-projection's covariance by the delta method
        se[ni] = np.sqrt(np.clip(np.diag(a1 @ cov[:nq, :nq] @ a1.T), 0, None))
    fm = FeatureModel(names, mean, std, beta, se)
    info: dict[str, Any] = {
        "head": how,
        "l2": lam,
        "l2_path": path,
        "coefficients": fm.coefficients(),
        "train_log_loss": log_loss(b, d, train.y, w),
    }
    if dec is not None:
        nq = len(qi)
        info["disentangle"] = {
            "groups": list(groups),
            "nuisance_features": nuis,
            "method": (
                "quality features decorrelated from the nuisance features within the "
                "training pairs (weighted least squares of pair differences); one nuisance term "
                "per source and nuisance feature in the Bradley-Terry objective; nuisance head "
                "dropped at scoring"
            ),
            "quality_head": [_interval(names[i], b[j], se_d[j]) for j, i in enumerate(qi)],
            "nuisance": [
                _interval(nuis[f], b[nq + s * len(ni) + f], se_d[nq + s * len(ni) + f], source=sn)
                for s, sn in enumerate(src_names)
                for f in range(len(ni))
            ],
            "score_nuisance_correlation": nuisance_correlation(
                dz @ beta, (xa - xb)[:, ni], nuis, w
            ),
        }
    return FeatureFit(fm, info, d, len(qi), to_beta, w, lam, za, zb)


def nuisance_correlation(delta: F64, dn: F64, names: list[str], w: F64) -> dict[str, float]:
    """Weighted correlation of the reward differences with each nuisance feature's difference
    over the training pairs, uncentered (swapping a and b flips both signs, so a difference has
    no meaningful mean): ≈ 0 for a disentangled head, the card's check that the decorrelation
    held."""
    out: dict[str, float] = {}
    for j, n in enumerate(names):
        x = dn[:, j]
        den = np.sqrt(float(np.sum(w * x * x)) * float(np.sum(w * delta * delta)))
        out[n] = float(np.sum(w * x * delta) / den) if den > 0 else 0.0
    return out


def train_features(
    train: Pairs,
    val: Pairs | None = None,
    lam: float | None = None,
    seed: int = 0,
    groups: Sequence[str] = (),
    balance: bool = True,
) -> tuple[FeatureModel, dict[str, Any]]:
    """`fit_features`, returning the model and its training log."""
    ff = fit_features(train, val, lam, seed, groups, balance)
    return ff.model, ff.info


DEFAULT_GROUPS: tuple[str, ...] = ("length", "style")
CANDIDATE_GROUPS: tuple[tuple[str, ...], ...] = ((), ("length",), ("length", "style"))


def decisive_accuracy(delta: F64, outcome: list[str]) -> float | None:
    """Accuracy on the a/b rows (Δ = 0 counts one half); None without such rows."""
    from prefkit.reward.evaluate import decisive_correct

    c, mask = decisive_correct(delta, outcome)
    return float(c[mask].mean()) if mask.any() else None


def choose_disentangle(
    train: Pairs, seed: int = 0, balance: bool = True
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """`--disentangle auto`. With two or more sources: the candidate (none, length,
    length+style) with the best mean leave-one-source-out accuracy of the feature RM — trained
    on the other sources, scored on the one left out, so what is chosen is what transfers.
    With one source there is nothing held out to measure transfer on (in-source held-out rows
    reward that source's own length rule): `DEFAULT_GROUPS`, the choice measured on the
    off-diagonal cells of `prefkit rm eval-matrix` over six public sets (docs/reward.md)."""
    src, names = source_index(train)
    if len(names) < 2:
        return DEFAULT_GROUPS, {
            "chosen_by": (
                "auto, one source: nothing held out to measure transfer on; the default "
                f"{spec_name(DEFAULT_GROUPS)} (off-diagonal eval-matrix results, docs/reward.md)"
            )
        }
    with one_blas_thread():
        return _choose_loso(train, src, names, seed, balance)


def _choose_loso(
    train: Pairs, src: NDArray[np.int64], names: list[str], seed: int, balance: bool
) -> tuple[tuple[str, ...], dict[str, Any]]:
    from prefkit.reward.features import response_features

    xa, _ = response_features(train.prompts, train.a)
    xb, _ = response_features(train.prompts, train.b)
    rows = []
    for groups in CANDIDATE_GROUPS:
        lam = fit_features(train, seed=seed, groups=groups, balance=balance, features=(xa, xb)).lam
        per: dict[str, float | None] = {}
        for s, name in enumerate(names):
            tr_i, te_i = np.flatnonzero(src != s), np.flatnonzero(src == s)
            fm = fit_features(
                train.take(tr_i),
                lam=lam,
                seed=seed,
                groups=groups,
                balance=balance,
                features=(xa[tr_i], xb[tr_i]),
            ).model
            delta = ((xa[te_i] - xb[te_i]) / fm.std) @ fm.beta
            per[name] = decisive_accuracy(delta, [train.outcome[i] for i in te_i.tolist()])
        vals = [v for v in per.values() if v is not None]
        rows.append(
            {
                "disentangle": spec_name(groups),
                "loso_accuracy": float(np.mean(vals)) if vals else None,
                "per_source": per,
            }
        )
    scored = [
        (r["loso_accuracy"] if r["loso_accuracy"] is not None else -1.0, i)
        for i, r in enumerate(rows)
    ]
    best = max(scored)[1]
    return CANDIDATE_GROUPS[best], {
        "chosen_by": (
            "auto: best mean leave-one-source-out accuracy of the feature RM (trained on the "
            "other sources, scored on the one left out)"
        ),
        "candidates": rows,
    }


def train_embed(
    train: Pairs,
    val: Pairs | None,
    seed: int,
    epochs: int,
    with_features: bool = True,
    cache_dir: str | None = None,
    folds: int = EMBED_FOLDS,
    groups: Sequence[str] = (),
    balance: bool = True,
    features: tuple[F64, F64] | None = None,
    embeddings: tuple[F64, F64] | None = None,
) -> tuple[EmbedModel, dict[str, Any]]:
    """BT head on MiniLM embedding differences (+ the feature RM's score difference), fitted as a
    cross-validated ensemble. Ties and strength enter as soft labels; weights respected.

    The training rows are cut into `folds` prompt-grouped folds. For each fold and each L2
    strength of a small grid, mini-batch Adam fits the head on the other folds with early
    stopping on that fold's log-loss; the L2 strength with the lowest mean held-out log-loss
    wins, and the model is the average of its `folds` heads (a linear head, so the average of
    the scores). With one validation split of a few hundred pairs, the choice of L2 strength
    was noise and a 384-wide head overfitted in some splits; see benchmarks/RESULTS.md.

    With features, the feature RM is fitted first (L-BFGS, its L2 picked by cross-validation);
    in each fold it is refitted on that fold's training part (so the held-out fold does not see
    itself) and its score enters the head as one column with a learned scale: the embedding
    block learns what the features miss, and the head's L2 penalty does not shrink the
    interpretable part.

    With `groups`, the head is disentangled like the feature RM: the embedding is decorrelated
    from the nuisance features, the feature RM is the disentangled one, per-source nuisance
    columns enter the head and are dropped at scoring. `features`, `embeddings`: precomputed
    for the training rows' a and b responses (else computed; embeddings from the cache)."""
    if groups and not with_features:
        raise ValueError("a disentangled MiniLM head needs the feature RM (with_features)")
    ff = (
        fit_features(train, val, seed=seed, groups=groups, balance=balance, features=features)
        if with_features
        else None
    )
    fm = ff.model if ff is not None else None
    w = ff.weight if ff is not None else row_weights(train, balance)[0]
    em = EmbedModel(np.zeros(0), fm, None, cache_dir=cache_dir)
    if embeddings is None:
        ea, eb = em.embed(train.prompts, train.a), em.embed(train.prompts, train.b)
    else:
        ea, eb = embeddings
    with one_blas_thread():
        return _fit_embed_head(train, ff, em, ea, eb, w, seed, epochs, folds, groups)


def _fit_embed_head(
    train: Pairs,
    ff: FeatureFit | None,
    em: EmbedModel,
    ea: F64,
    eb: F64,
    w: F64,
    seed: int,
    epochs: int,
    folds: int,
    groups: Sequence[str],
) -> tuple[EmbedModel, dict[str, Any]]:
    fm = em.features
    with_features = fm is not None
    de = ea - eb
    dim = de.shape[1]
    nuis = nuisance_names(groups)
    extra = np.zeros((len(train), 0))
    dec = None
    ni: list[int] = []
    if nuis and ff is not None:
        za, zb = ff.za, ff.zb
        ni = [ff.model.names.index(n) for n in nuis]
        dec = decorrelate(de, (za - zb)[:, ni], w)
        de = dec.residual(de, (za - zb)[:, ni])
        src, src_names = source_index(train)
        extra = source_blocks((za - zb)[:, ni], src, len(src_names))
    n_prompts = len(set(train.prompt_ids))
    k = min(folds, n_prompts)
    fold = prompt_folds(train.prompt_ids, k, seed) if k >= 2 else np.zeros(len(train), np.int64)
    # folds that hold rows: with few prompts, hashing can leave some of the k folds empty
    present = sorted(set(fold.tolist())) if k >= 2 else []
    k = len(present) if len(present) >= 2 else 1
    parts = present if k >= 2 else [-1]  # -1: no held-out rows, one head on everything
    designs: list[tuple[F64, F64 | None]] = []
    for f in parts:
        tr_m = fold != f
        beta_f = None
        cols = [de]
        if ff is not None:
            b_f = fit_lbfgs(ff.design[tr_m], train.y[tr_m], w[tr_m], ff.lam)[0]
            beta_f = ff.to_beta(b_f)
            cols.append((ff.design[:, : ff.n_quality] @ b_f[: ff.n_quality])[:, None])
        designs.append((np.hstack([*cols, extra]), beta_f))
    path = []
    fits_by_lam = []
    sizes = [float(w[fold == f].sum()) for f in parts]
    for lam in LAMBDAS if k >= 2 else (1e-3,):
        fits = []
        for f, (d, _) in zip(parts, designs, strict=True):
            tr_m, va_m = fold != f, fold == f
            has_va = bool(va_m.any())
            fits.append(
                fit_adam(
                    d[tr_m],
                    train.y[tr_m],
                    w[tr_m],
                    d[va_m] if has_va else None,
                    train.y[va_m] if has_va else None,
                    w[va_m] if has_va else None,
                    lam,
                    epochs,
                    seed + max(f, 0),
                )
            )
        vls = [x.val_loss for x in fits if x.val_loss is not None]
        # mean held-out log-loss weighted by fold size (each held-out row counts once)
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
        if dec is not None:
            w_feat[ni] += dec.back_projection(em.w_emb)
        em.w_feat = w_feat
    chosen = path[best_i]
    info: dict[str, Any] = {
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
                [log_loss(x.beta, d, train.y, w) for x, (d, _) in zip(fits, designs, strict=True)]
            )
        ),
        "val_log_loss": chosen["val_log_loss"] if k >= 2 else None,
        "l2_path": path,
        "with_features": with_features,
        "feature_score_scale": scales or None,
        "truncated_texts": em.truncated,
    }
    if ff is not None and "disentangle" in ff.info:
        dis = dict(ff.info["disentangle"])
        dis["feature_rm_nuisance"] = dis.pop("nuisance")
        dis["feature_rm_quality_head"] = dis.pop("quality_head")
        off = dim + 1
        heads = np.array([x.beta[off:] for x in fits])  # (folds, S·m)
        src_names = source_index(train)[1]
        dis["nuisance"] = [
            {
                "source": sn,
                "feature": nuis[f],
                "coef": float(heads[:, s * len(nuis) + f].mean()),
                "fold_min": float(heads[:, s * len(nuis) + f].min()),
                "fold_max": float(heads[:, s * len(nuis) + f].max()),
            }
            for s, sn in enumerate(src_names)
            for f in range(len(nuis))
        ]
        assert fm is not None and em.w_feat is not None
        dz = ff.za - ff.zb
        delta = (ea - eb) @ em.w_emb + dz @ em.w_feat
        dis["score_nuisance_correlation"] = nuisance_correlation(
            delta, dz[:, ni] * fm.std[ni], nuis, w
        )
        info["disentangle"] = dis
    return em, info


@dataclass
class TrainResult:
    model: Any
    card: dict[str, Any]


Sources: TypeAlias = pa.Table | Sequence[tuple[str, pa.Table]]


def _split_sources(
    sources: list[tuple[str, pa.Table]], val_table: pa.Table | None, val_frac: float, seed: int
) -> tuple[Pairs, Pairs, dict[str, Any]]:
    """Each source split by prompt on its own (or the given validation table), labelled with
    its name, and concatenated."""
    tr_parts, va_parts = [], []
    for name, t in sources:
        if val_table is None:
            tr_t, va_t = split_by_prompt(t, val_frac, seed)
            va_parts.append(pairs_from_table(va_t).with_source(name))
        else:
            tr_t = t
        tr_parts.append(pairs_from_table(tr_t).with_source(name))
    if val_table is not None:
        va_parts = [pairs_from_table(val_table).with_source("validation")]
        split_info: dict[str, Any] = {"split": "given validation file"}
    else:
        split_info = {"split": "by prompt (prefkit.build.splits), per source", "val": val_frac}
    return Pairs.concat(tr_parts), Pairs.concat(va_parts), split_info


def train(
    table: Sources,
    backend: str = "features",
    val_table: pa.Table | None = None,
    val_frac: float = 0.2,
    seed: int = 0,
    epochs: int | None = None,
    base: str | None = None,
    lora: bool = False,
    cache_dir: str | None = None,
    disentangle: str = "auto",
    balance: bool = True,
    personalize: str | None = None,
) -> TrainResult:
    """Train a reward model of `backend` (features | embed | trl) and build its card.

    `table` is one table or a list of `(source name, table)`: each source is split by prompt
    on its own, rows are weighted so every source carries the same total weight (`balance`),
    and disentangled heads get one nuisance term per source. `disentangle` is `auto`, `none`
    or a comma list of nuisance groups (`length`, `style`); see `choose_disentangle`.
    `personalize` (features and embed backends): a grouping (`group`, `annotator` or a meta key) that
    gets per-group offsets from the pooled head (`prefkit.reward.personal`); `auto`
    disentangling then means none (a group's taste for length or formatting is what the
    offsets are for).
    """
    from prefkit.reward.evaluate import evaluate_model, fit_tie_threshold

    sources = [("data", table)] if isinstance(table, pa.Table) else list(table)
    if not sources:
        raise ValueError("no training data")
    tr_all, va_all, split_info = _split_sources(sources, val_table, val_frac, seed)
    tr, va = tr_all.take(usable(tr_all)), va_all.take(usable(va_all))
    if len(tr) < 2:
        raise ValueError(f"need at least 2 usable training pairs, got {len(tr)}")
    groups = parse_spec(disentangle)
    choice: dict[str, Any]
    labels: dict[tuple[str, str], str] = {}
    if personalize is not None:
        if backend not in ("features", "embed"):
            raise ValueError("--personalize applies to --backend features and embed")
        vsrc = [] if val_table is None else [("validation", val_table)]
        labels = _group_labels(sources + vsrc, personalize)
        if groups is None:
            groups = ()
            choice = {"chosen_by": "auto with --personalize: no nuisance heads (the per-group "
                      "offsets model each group's taste, length and formatting included)"}  # fmt: skip
    if backend == "trl":
        if groups:
            raise ValueError("--disentangle applies to the features and embed backends")
        groups, choice = (), {"chosen_by": "the trl backend has no nuisance head"}
    elif groups is None:
        groups, choice = choose_disentangle(tr, seed, balance)
    elif personalize is None or disentangle != "auto":
        choice = {"chosen_by": "given (--disentangle)"}
    info: dict[str, Any] = {}
    model: Any
    if backend == "features":
        fm, info = train_features(tr, va, seed=seed, groups=groups, balance=balance)
        model = fm
        if len(va):
            info["val_log_loss"] = log_loss(fm.beta, diff_features(fm, va), va.y, va.weight)
        if personalize is not None:
            personal = _personalize(fm, tr, va, labels, float(info["l2"]), seed)
    elif backend == "embed":
        epochs = 100 if epochs is None else epochs
        model, info = train_embed(
            tr, va, seed, epochs, cache_dir=cache_dir, groups=groups, balance=balance
        )
        if personalize is not None:
            personal = _personalize(model, tr, va, labels, float(info["l2"]), seed)
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
        if backend == "features" and groups:
            # what disentangling costs in-distribution: the same fit without nuisance heads
            plain, _ = train_features(tr, va, seed=seed, balance=balance)
            choice["without_disentangling"] = {
                "val_accuracy": decisive_accuracy(
                    diff_features(plain, va_all) @ plain.beta, va_all.outcome
                ),
                "note": "the feature RM without nuisance heads, same training and validation "
                "rows: in-distribution, length is often information; off the training set it "
                "is the length rule of the training set (see `prefkit rm eval-matrix`)",
            }
    _, src_rows = row_weights(tr, balance and backend != "trl")
    va_src = source_index(va_all)[0] if len(va_all) else np.zeros(0, np.int64)
    va_names = source_index(va_all)[1] if len(va_all) else []
    for r in src_rows:
        r["val_rows"] = (
            int((va_src == va_names.index(r["name"])).sum()) if r["name"] in va_names else 0
        )
    card = {
        "backend": backend,
        "base": base,
        "lora": lora,
        "seed": seed,
        "epochs": epochs,
        "disentangle": {"spec": disentangle, "groups": list(groups), **choice},
        "tie_threshold": threshold,
        "baseline_tie_thresholds": {
            k: v
            for k, v in metrics.get("baseline_tie_thresholds", {}).items()
            if k in ("length", "random")
        },
        "cache_dir": cache_dir,
        "data": {
            "rows": sum(t.num_rows for _, t in sources),
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
            "balance": (
                "sources: every source carries the same total weight (the expectation of "
                "source-balanced sampling)"
                if balance and backend != "trl"
                else "rows: every row counts by its own weight"
            ),
            "sources": src_rows,
            **split_info,
        },
        "training": info,
        "metrics": metrics,
    }
    if personalize is not None:
        card["personalize"] = {"by": personalize, **personal}
    return TrainResult(model, card)


def _group_labels(
    sources: list[tuple[str, pa.Table]], by: str, flag: str = "--personalize"
) -> dict[tuple[str, str], str]:
    """(source, row id) → label under the grouping `by` (`prefkit.build.groups`); a grouping
    missing from every source or with one value over all of them is an error."""
    from prefkit.build.groups import NO_LABEL, GroupingError, group_labels

    out: dict[tuple[str, str], str] = {}
    errors: list[str] = []
    for name, t in sources:
        try:
            g = group_labels(t, by, min_groups=1)
        except GroupingError as e:
            errors.append(f"{name}: {e}" if len(sources) > 1 else str(e))
            continue
        for i, lab in zip(t.column("id").to_pylist(), g.labels, strict=True):
            key = (name, str(i))
            if out.get(key, lab) != lab:
                raise ValueError(f"{name}: row id {i!r} appears twice with groups "
                                 f"{out[key]!r} and {lab!r}; ids must be unique")  # fmt: skip
            out[key] = lab
    if not out:
        raise ValueError(f"{flag} {by}: " + "; ".join(errors))
    distinct = set(out.values()) - {NO_LABEL}
    if len(distinct) < 2:
        raise ValueError(
            f"{flag} {by}: {len(distinct)} group(s) ({', '.join(sorted(distinct))}) "
            + (
                "in the training data: there is nothing to personalise"
                if flag == "--personalize"
                else "in the data: there is nothing to compare"
            )
        )
    return out


def _personalize(
    fm: FeatureModel | EmbedModel,
    tr: Pairs,
    va: Pairs,
    labels: dict[tuple[str, str], str],
    lam: float,
    seed: int,
) -> dict[str, Any]:
    """Per-group offsets on the training rows and, per group, validation accuracy of the pooled
    and the personalised head (the card's `personalize` section). `lam`: the L2 strength of
    the pooled head refitted on each fold while τ is chosen."""
    from prefkit.build.groups import NO_LABEL
    from prefkit.reward.personal import fit_personal, head_design

    def labs(p: Pairs) -> list[str]:
        return [labels.get((s, i), NO_LABEL) for s, i in zip(p.source, p.ids, strict=True)]

    pf = fit_personal(fm, tr, labs(tr), lam, seed)
    by_group: list[dict[str, Any]] = []
    if len(va):
        d, beta, _ = head_design(fm, va, np.ones(1))
        lv = labs(va)
        for g, off in pf.offsets.items():
            m = np.array([x == g for x in lv])
            outc = [o for o, k in zip(va.outcome, m, strict=True) if k]
            by_group.append({
                "group": g, "val_rows": int(m.sum()),
                "pooled_accuracy": decisive_accuracy(d[m] @ beta, outc),
                "personal_accuracy": decisive_accuracy(d[m] @ (beta + off), outc),
            })  # fmt: skip
    return {**pf.info, "validation": by_group}


def save(
    result: TrainResult,
    out: Path,
    data_path: Path | Sequence[Path] | Mapping[str, Sequence[Path]] | None = None,
) -> Path:
    """Write the model weights and `model.json` (data, metrics, version, backend). The digest of
    every training source goes in the card (`rm eval` uses it to say a set is in-sample);
    `data_path` is one file, a list of files (each a source, named by its path) or a mapping
    source name → its files. With one source, also `data.path` / `data.digest`."""
    from prefkit.reward.sources import source_digest

    result.model.save(out)
    card = dict(result.card)
    if isinstance(data_path, Path):
        files: dict[str, list[Path]] = {str(data_path): [data_path]}
    elif isinstance(data_path, Mapping):
        files = {k: list(v) for k, v in data_path.items()}
    else:
        files = {str(p): [p] for p in data_path or []}
    files = {k: v for k, v in files.items() if all(p.exists() for p in v)}
    digests = {k: source_digest(v) for k, v in files.items()}
    data = dict(card["data"])
    srcs = [dict(s) for s in data.get("sources", [])]
    if len(srcs) == 1 and len(digests) == 1 and srcs[0]["name"] not in digests:
        srcs[0]["name"] = next(iter(digests))  # a bare table trained as source "data"
    for s in srcs:
        if s["name"] in digests:
            s.update(files=[str(p) for p in files[s["name"]]], digest=digests[s["name"]])
    if len(digests) == 1:
        name = next(iter(digests))
        data.update(path=name, digest=digests[name])
    data["sources"] = srcs
    card["data"] = data
    return write_card(out, card)
