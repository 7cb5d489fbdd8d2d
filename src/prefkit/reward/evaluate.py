"""Honest reward-model metrics: ties, length confounding, calibration, best-of-N, baselines."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

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
