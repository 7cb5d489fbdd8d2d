"""Honest reward-model metrics: ties, length confounding, calibration, best-of-N, baselines."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

from prefkit.build.groups import NO_LABEL
from prefkit.reward.data import Pairs

F64 = NDArray[np.float64]


def accuracy_ci(correct: F64) -> dict[str, float | int | None]:
    """Mean of 0/1 (or 0.5) outcomes with a Wilson 95% interval."""
    n = int(correct.size)
    if n == 0:
        return {"n": 0, "accuracy": None, "ci_low": None, "ci_high": None}
    p = float(correct.mean())
    z = 1.96
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return {"n": n, "accuracy": p, "ci_low": float(c - h), "ci_high": float(c + h)}


def decisive_correct(delta: F64, outcome: list[str]) -> tuple[F64, NDArray[np.bool_]]:
    """Per-row correctness on a/b rows (Δ = 0 counts 0.5) and the mask of a/b rows."""
    o = np.array(outcome)
    mask = (o == "a") | (o == "b")
    sign = np.where(o == "a", 1.0, -1.0)
    c = np.where(delta * sign > 0, 1.0, np.where(delta == 0, 0.5, 0.0))
    return c, mask


def tie_aware_correct(delta: F64, outcome: list[str], threshold: float) -> F64:
    """A tie is correct when |Δ| < threshold; a/b when Δ is beyond the threshold their way."""
    o = np.array(outcome)
    ad = np.abs(delta)
    c = np.where(
        o == "tie",
        ad < threshold if threshold > 0 else ad == 0,
        np.where(o == "a", delta > 0, delta < 0) & (ad >= threshold),
    )
    return np.asarray(c, dtype=np.float64)


def fit_tie_threshold(delta: F64, outcome: list[str]) -> float:
    """Threshold on |Δ| under which a pair is called a tie, maximizing tie-aware accuracy on
    validation rows (0 when there are no ties)."""
    o = np.array(outcome)
    keep = np.isin(o, ["a", "b", "tie"])
    if not (o == "tie").any() or not keep.any():
        return 0.0
    d, oo = delta[keep], [str(x) for x in o[keep]]
    cands = np.unique(np.quantile(np.abs(d), np.linspace(0, 0.9, 46)))
    best = (-1.0, 0.0)
    for t in cands:
        a = float(tie_aware_correct(d, oo, float(t)).mean())
        if a > best[0] + 1e-12:
            best = (a, float(t))
    return best[1]


def ece(delta: F64, outcome: list[str], bins: int = 10) -> float | None:
    """Expected calibration error of σ(Δ) on decisive rows, orientation-free (top-label):
    confidence = σ(|Δ|) that the higher-scored response is preferred, accuracy = whether it is
    (Δ = 0 counts one half); equal-width bins on [0.5, 1]. Which response is stored as `a` does
    not matter (HH stores the chosen one as `a` in every row)."""
    o = np.array(outcome)
    m = (o == "a") | (o == "b")
    if not m.any():
        return None
    d = delta[m]
    conf = expit(np.abs(d))
    c, _ = decisive_correct(d, [str(x) for x in o[m]])
    idx = np.minimum(((conf - 0.5) * 2 * bins).astype(int), bins - 1)
    e = 0.0
    for b in range(bins):
        s = idx == b
        if s.any():
            e += float(s.mean()) * abs(float(conf[s].mean()) - float(c[s].mean()))
    return e


def best_of_n(pairs: Pairs, sa: F64, sb: F64) -> dict[str, Any]:
    """RewardBench-2 style best-of-N: every (prompt, chosen response) that beat at least two
    distinct rejected responses of the same prompt is one item; it is correct when the chosen
    response scores above every one of them (a response's score is its mean over rows)."""
    score: dict[tuple[str, str], list[float]] = defaultdict(list)
    beaten: dict[tuple[str, str], set[str]] = defaultdict(set)
    for i, (pid, o) in enumerate(zip(pairs.prompt_ids, pairs.outcome, strict=True)):
        score[(pid, pairs.a[i])].append(float(sa[i]))
        score[(pid, pairs.b[i])].append(float(sb[i]))
        if o == "a":
            beaten[(pid, pairs.a[i])].add(pairs.b[i])
        elif o == "b":
            beaten[(pid, pairs.b[i])].add(pairs.a[i])
    mean = {k: float(np.mean(v)) for k, v in score.items()}
    correct = [
        float(mean[(pid, c)] > max(mean[(pid, r)] for r in rej))
        for (pid, c), rej in beaten.items()
        if len(rej - {c}) >= 2
    ]
    return accuracy_ci(np.array(correct, dtype=np.float64))


def _lengths(texts: list[str]) -> F64:
    return np.array([len(t) for t in texts], dtype=np.float64)


def metrics(pairs: Pairs, sa: F64, sb: F64, tie_threshold: float = 0.0) -> dict[str, Any]:
    """All metrics of one scorer on these rows."""
    delta = sa - sb
    c, mask = decisive_correct(delta, pairs.outcome)
    la, lb = _lengths(pairs.a), _lengths(pairs.b)
    o = np.array(pairs.outcome)
    chosen_len = np.where(o == "a", la, lb)
    rejected_len = np.where(o == "a", lb, la)
    shorter = mask & (chosen_len < rejected_len)
    matched = mask & (np.abs(la - lb) <= 0.1 * np.maximum(np.maximum(la, lb), 1))
    tie_rows = np.isin(o, ["a", "b", "tie"])
    out: dict[str, Any] = {
        "accuracy": accuracy_ci(c[mask]),
        "tie_aware": {
            "threshold": tie_threshold,
            **accuracy_ci(tie_aware_correct(delta, pairs.outcome, tie_threshold)[tie_rows]),
        },
        "chosen_shorter": accuracy_ci(c[shorter]),
        "length_matched": accuracy_ci(c[matched]),
        "ece": ece(delta, pairs.outcome),
        "best_of_n": best_of_n(pairs, sa, sb),
    }
    for key, labels in (("per_source", pairs.source), ("per_category", pairs.category)):
        lab = np.array(labels)
        vals = sorted({str(v) for v in lab[mask]})
        if len(vals) > 1 or (vals and vals[0]):
            out[key] = {v: accuracy_ci(c[mask & (lab == v)]) for v in vals}
    return out


def evaluate_model(
    model: Any,
    pairs: Pairs,
    tie_threshold: float = 0.0,
    scores: tuple[F64, F64] | None = None,
    seed: int = 0,
    batch_size: int = 64,
    baseline_thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Metrics of `model` and, on the same rows, of the length-only and random baselines.

    `tie_threshold` is the model's |Δ| tie threshold (fitted on validation data at training
    time). `baseline_thresholds` (`length`, `random`) likewise; when not given they are fitted
    on these rows, which flatters the baselines' tie-aware accuracy (the output says so).
    """
    if scores is None:
        sa = model.score(pairs.prompts, pairs.a, batch_size=batch_size)
        sb = model.score(pairs.prompts, pairs.b, batch_size=batch_size)
    else:
        sa, sb = scores
    rng = np.random.default_rng(seed)
    la, lb = np.log1p(_lengths(pairs.a)), np.log1p(_lengths(pairs.b))
    ra, rb = rng.normal(size=len(pairs)), rng.normal(size=len(pairs))
    o = np.array(pairs.outcome)
    fitted_here = baseline_thresholds is None
    if baseline_thresholds is None:
        baseline_thresholds = {
            "length": fit_tie_threshold(la - lb, pairs.outcome),
            "random": fit_tie_threshold(ra - rb, pairs.outcome),
        }
    return {
        "rows": len(pairs),
        "outcomes": {k: int((o == k).sum()) for k in ("a", "b", "tie", "both_bad")},
        "skipped": dict(pairs.skipped),
        "empty_responses": pairs.empty_responses(),
        "model": metrics(pairs, sa, sb, tie_threshold),
        "length_baseline": metrics(pairs, la, lb, baseline_thresholds["length"]),
        "random_baseline": metrics(pairs, ra, rb, baseline_thresholds["random"]),
        "baseline_tie_thresholds": {
            **baseline_thresholds,
            "fitted_on": "these rows" if fitted_here else "validation data",
        },
    }


def position_consistency(delta_ab: F64, delta_ba: F64) -> dict[str, float | int]:
    """Judges: share of pairs whose verdict survives swapping the order (Δ_ab and −Δ_ba agree)."""
    same = np.sign(delta_ab) == -np.sign(delta_ba)
    return {"n": int(delta_ab.size), "consistency": float(same.mean()) if delta_ab.size else 0.0}


NO_GROUP = NO_LABEL  # rows without a label under the grouping


def group_accuracy(
    delta: F64, outcome: list[str], labels: list[str], min_votes: int
) -> dict[str, Any]:
    """Accuracy (ties excluded) per group label and the worst group's: the group with the
    lowest accuracy among those with at least `min_votes` decisive rows and a label; the
    others are listed under `small_groups` (rows without a label under `unlabelled`)."""
    c, mask = decisive_correct(delta, outcome)
    lab = np.array(labels, dtype=object)
    per: dict[str, Any] = {}
    small: dict[str, int] = {}
    for g in sorted({str(v) for v in lab[mask]}):
        sel = mask & (lab == g)
        acc = accuracy_ci(c[sel])
        if g == NO_GROUP:
            continue
        per[g] = acc
        if int(acc["n"] or 0) < min_votes:
            small[g] = int(acc["n"] or 0)
    ranked = [g for g in per if g not in small]
    worst = min(ranked, key=lambda g: (float(per[g]["accuracy"]), g)) if ranked else None
    out: dict[str, Any] = {
        "per_group": per,
        "worst_group": {"group": worst, **per[worst]} if worst is not None else None,
        "small_groups": small,
    }
    none = mask & (lab == NO_GROUP)
    if none.any():
        out["unlabelled"] = accuracy_ci(c[none])
    return out


def vote_split(pairs: Pairs, p_a: F64, bins: int = 10) -> dict[str, Any] | None:
    """How well predicted preference probabilities match the split of votes on pairs that
    several people voted on. A pair is a prompt and an unordered pair of responses; each of
    its decisive votes counts for one side. The predicted split is the mean over the pair's
    votes of each vote's P(side) (`p_a` per row: P(response a preferred), e.g. σ(Δ) under the
    voter's own head for a personalised model). Reports the cross-entropy per vote (the
    observed split against the predicted one), its floor (the observed split's own entropy:
    a perfect predictor of the split), the constant 0.5 predictor's (log 2), the mean
    absolute split error and a calibration error over equal-width bins of the prediction
    (weighted by votes). None when no pair has two decisive votes."""
    key_of: dict[tuple[str, str, str], int] = {}
    idx: list[int] = []
    p_lo: list[float] = []
    for_lo: list[float] = []
    for i, o in enumerate(pairs.outcome):
        if o not in ("a", "b"):
            continue
        a, b = pairs.a[i], pairs.b[i]
        lo_is_a = a <= b
        k = (pairs.prompt_ids[i], a if lo_is_a else b, b if lo_is_a else a)
        idx.append(key_of.setdefault(k, len(key_of)))
        p_lo.append(float(p_a[i]) if lo_is_a else 1.0 - float(p_a[i]))
        for_lo.append(1.0 if (o == "a") == lo_is_a else 0.0)
    if not idx:
        return None
    u = np.asarray(idx, dtype=np.int64)
    n = np.bincount(u)
    multi = n[u] >= 2
    if not multi.any():
        return None
    u, pl, yl = u[multi], np.asarray(p_lo)[multi], np.asarray(for_lo)[multi]
    _, u = np.unique(u, return_inverse=True)
    votes = np.bincount(u).astype(np.float64)
    pred = np.clip(np.bincount(u, weights=pl) / votes, 1e-12, 1 - 1e-12)
    obs = np.bincount(u, weights=yl) / votes

    def xent(s: F64, q: F64) -> F64:
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = np.where(s > 0, s * np.log(q), 0.0)
            t2 = np.where(s < 1, (1 - s) * np.log1p(-q), 0.0)
        return np.asarray(-(t1 + t2), dtype=np.float64)

    w = votes / votes.sum()
    floor_q = np.clip(obs, 1e-12, 1 - 1e-12)
    b = np.minimum((pred * bins).astype(int), bins - 1)
    cal = 0.0
    for j in range(bins):
        s = b == j
        if s.any():
            cal += float(w[s].sum()) * abs(
                float(np.average(pred[s], weights=w[s])) - float(np.average(obs[s], weights=w[s]))
            )
    return {
        "pairs": int(votes.size),
        "votes": int(votes.sum()),
        "log_loss": float((w * xent(obs, pred)).sum()),
        "log_loss_floor": float((w * xent(obs, floor_q)).sum()),
        "log_loss_constant": float(np.log(2.0)),
        "mean_abs_split_error": float((w * np.abs(obs - pred)).sum()),
        "calibration_error": cal,
        "split_unanimous": float(w[(obs == 0) | (obs == 1)].sum()),
    }
