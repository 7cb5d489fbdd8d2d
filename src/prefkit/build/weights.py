"""Labels, weights and margins: vote aggregation (majority, mean strength, a fitted annotator
model through the `VoteModel` seam), aspect weights, KTO class weights, curriculum order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from prefkit.build.result import BuildResult

# Column order of vote counts and posteriors everywhere in this module.
OUTCOME_ORDER: tuple[str, ...] = ("a", "b", "tie", "both_bad")


@runtime_checkable
class VoteModel(Protocol):
    """Seam for a fitted annotator model (Dawid–Skene, MACE, ... from `prefkit.rank.aggregate`).

    `posteriors(votes, group)` gets the comparison rows *oriented* so that within a group
    `response_a` is always the same response (outcomes and strengths flipped accordingly) and
    `group[i]` = the group index (0..n_groups-1) of row i. It returns an array of shape
    (n_groups, 4): the posterior probability of each outcome in `OUTCOME_ORDER` per group.
    """

    def posteriors(self, votes: pa.Table, group: NDArray[np.int64]) -> NDArray[np.float64]: ...


@dataclass(frozen=True)
class Decision:
    """What aggregation decided for one group of votes."""

    label: str  # a, b, tie, both_bad, or "none" (no strict majority)
    agreement: float  # share of votes (or posterior mass) behind the label
    margin: float  # (winner - loser) share, in [0, 1]
    weight: float  # training weight


def majority(counts: NDArray[np.float64]) -> Decision:
    """Strict majority of the votes (a, b, tie, both_bad counts); no majority -> label none.

    weight = agreement (share of votes behind the label); margin = (n_win - n_lose) / n.
    """
    n = float(counts.sum())
    k = int(np.argmax(counts))
    top = float(counts[k])
    if n <= 0 or top * 2 <= n:
        return Decision("none", top / n if n else 0.0, 0.0, 0.0)
    label = OUTCOME_ORDER[k]
    agreement = top / n
    if label in ("a", "b"):
        lose = float(counts[1 - k])
        return Decision(label, agreement, (top - lose) / n, agreement)
    return Decision(label, agreement, 0.0, agreement)


def mean_strength(strengths: NDArray[np.float64], eps: float = 1e-9) -> Decision:
    """Mean graded preference (1 = strongly a, 0 = strongly b, 0.5 = tie) over the votes.

    label a/b/tie from the mean's side of 0.5; margin = |2·mean − 1| (0..1); agreement = share
    of votes on the winning side (ties count half); weight = 1.
    """
    if strengths.size == 0:
        return Decision("both_bad", 1.0, 0.0, 0.0)
    m = float(strengths.mean())
    if abs(m - 0.5) <= eps:
        return Decision("tie", float(np.mean(np.abs(strengths - 0.5) <= eps)), 0.0, 1.0)
    win_a = m > 0.5
    side = strengths > 0.5 + eps if win_a else strengths < 0.5 - eps
    ties = np.abs(strengths - 0.5) <= eps
    agreement = float((side.sum() + 0.5 * ties.sum()) / strengths.size)
    return Decision("a" if win_a else "b", agreement, abs(2 * m - 1), 1.0)


def from_posterior(p: NDArray[np.float64]) -> Decision:
    """Decision from a posterior over OUTCOME_ORDER: argmax label, weight = its probability.

    No mass, or two outcomes sharing the maximum, is no decision (label `none`)."""
    if not np.isfinite(p).all() or p.sum() <= 0 or int((p == p.max()).sum()) > 1:
        return Decision("none", float(p.max()) if p.size else 0.0, 0.0, 0.0)
    k = int(np.argmax(p))
    label = OUTCOME_ORDER[k]
    top = float(p[k])
    margin = float(abs(p[0] - p[1])) if label in ("a", "b") else 0.0
    return Decision(label, top, margin, top)


@dataclass(frozen=True)
class AnnotatorWeights:
    """A simple `VoteModel`: weighted vote with per-annotator reliabilities in (0, 1].

    Posterior ∝ sum of the weights of the annotators who gave each outcome (unknown annotators
    get `default`). Plug the output of any annotator-quality estimate in here; the full
    Dawid–Skene model lives in `prefkit.rank.aggregate`.
    """

    weights: Mapping[str, float]
    default: float = 1.0

    def posteriors(self, votes: pa.Table, group: NDArray[np.int64]) -> NDArray[np.float64]:
        n_groups = int(group.max()) + 1 if group.size else 0
        out = np.zeros((n_groups, len(OUTCOME_ORDER)))
        annot = votes.column("annotator").to_pylist()
        outcomes = votes.column("outcome").to_pylist()
        for g, a, o in zip(group.tolist(), annot, outcomes, strict=True):
            w = self.weights.get(a, self.default) if a is not None else self.default
            out[g, OUTCOME_ORDER.index(o)] += w
        tot = out.sum(axis=1, keepdims=True)
        return np.asarray(np.divide(out, tot, out=np.zeros_like(out), where=tot > 0))


def parse_aspect_weights(spec: str | Mapping[str, float] | None) -> dict[str, float] | None:
    """`helpfulness=0.7,honesty=0.3` (or a mapping) -> {aspect: weight}; weights must be >= 0."""
    if spec is None:
        return None
    if isinstance(spec, Mapping):
        items = dict(spec)
    else:
        items = {}
        for part in spec.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ValueError(f"aspect weights are aspect=weight, got {part!r}")
            k, v = part.split("=", 1)
            items[k.strip()] = float(v)
    if not items or any(w < 0 for w in items.values()) or sum(items.values()) <= 0:
        raise ValueError("aspect weights must be >= 0 and not all zero")
    return {k: float(v) for k, v in items.items()}


def combine_aspects(
    scores: Mapping[str | None, float], aspect_weights: Mapping[str, float] | None
) -> float | None:
    """One score for a response from its per-aspect scores (aspect None = overall).

    With weights: Σ w·s / Σ w over the weighted aspects; None if one with w > 0 is missing.
    Without: the overall score when there is one, else the plain mean of the aspects.
    """
    if aspect_weights:
        need = {a: w for a, w in aspect_weights.items() if w > 0}
        if any(a not in scores for a in need):
            return None
        return sum(w * scores[a] for a, w in need.items()) / sum(need.values())
    if None in scores:
        return scores[None]
    return float(np.mean(list(scores.values())))


def kto_weights(n_desirable: int, n_undesirable: int) -> dict[str, Any]:
    """Desirable:undesirable ratio and KTO class weights.

    KTO (Ethayarajh et al., 2024, §4) recommends λ_D·n_D / (λ_U·n_U) ∈ [1, 4/3]; we down-weight
    the majority class so the ratio is 1 (TRL's `desirable_weight` / `undesirable_weight`).
    """
    d, u = int(n_desirable), int(n_undesirable)
    out: dict[str, Any] = {
        "desirable": d,
        "undesirable": u,
        "ratio": f"{d}:{u}",
        "desirable_fraction": d / (d + u) if d + u else None,
    }
    if d and u:
        if d >= u:
            out["desirable_weight"], out["undesirable_weight"] = u / d, 1.0
        else:
            out["desirable_weight"], out["undesirable_weight"] = 1.0, d / u
    else:
        out["desirable_weight"] = out["undesirable_weight"] = None
    return out


def curriculum(result: BuildResult) -> BuildResult:
    """Order pairs from easy (large margin: rank gap, score difference, vote margin) to hard.

    Stable: pairs with equal margin keep their order; null margins go last.
    """
    t = result.table
    if t.num_rows == 0:
        return result
    margin = pc.fill_null(t.column("margin"), -np.inf).to_numpy()
    order = np.argsort(-np.asarray(margin, dtype=np.float64), kind="stable")
    report = dict(result.report)
    report["order"] = "curriculum: margin descending (easy to hard)"
    return BuildResult(t.take(pa.array(order)), report)


def vote_counts(outcomes: Sequence[str]) -> NDArray[np.float64]:
    c = np.zeros(len(OUTCOME_ORDER))
    for o in outcomes:
        c[OUTCOME_ORDER.index(o)] += 1
    return c
