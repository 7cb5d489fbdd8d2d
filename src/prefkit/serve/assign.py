"""Which item an annotator judges next: round-robin, least-judged first, or active (the pairs
whose outcome is most uncertain under a Bradley–Terry fit of the votes so far)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

POLICIES = ("round_robin", "least_judged", "active")


def bt_scores(
    winners: Sequence[int], losers: Sequence[int], n: int, iters: int = 200, prior: float = 1.0
) -> NDArray[np.float64]:
    """Bradley–Terry log-strengths by the MM algorithm (Hunter 2004), with a weak prior
    (`prior` virtual wins and losses against an average player) so every score is finite."""
    w = np.asarray(winners, dtype=np.int64)
    lo = np.asarray(losers, dtype=np.int64)
    p = np.ones(n)
    wins = np.bincount(w, minlength=n).astype(float) + prior
    for _ in range(iters):
        denom = 2.0 * prior / (p + 1.0)
        if w.size:
            inv = 1.0 / (p[w] + p[lo])
            denom += np.bincount(w, inv, minlength=n) + np.bincount(lo, inv, minlength=n)
        new = wins / denom
        new /= np.exp(np.mean(np.log(new)))
        if np.max(np.abs(new - p)) < 1e-9:
            p = new
            break
        p = new
    return np.asarray(np.log(p), dtype=np.float64)


def uncertainty(
    pair_a: NDArray[np.int64], pair_b: NDArray[np.int64], scores: NDArray[np.float64]
) -> NDArray[np.float64]:
    """1 − |2p − 1| where p = P(a beats b) under the scores: 1 = coin flip, 0 = certain."""
    pr = 1.0 / (1.0 + np.exp(-(scores[pair_a] - scores[pair_b])))
    return np.asarray(1.0 - np.abs(2.0 * pr - 1.0), dtype=np.float64)


def choose(
    policy: str,
    candidates: Sequence[int],
    positions: Sequence[int],
    judged: Sequence[int],
    annotator_index: int,
    n_items: int,
    uncertain: Sequence[float] | None = None,
) -> int | None:
    """Pick one of `candidates` (item ids not yet given to this annotator and under the overlap
    cap). `positions` are their order in the campaign, `judged` how often each was assigned,
    `uncertain` their outcome uncertainty (active policy). Returns the chosen index or None."""
    if not candidates:
        return None
    pos = np.asarray(positions, dtype=np.int64)
    cnt = np.asarray(judged, dtype=np.int64)
    if policy == "round_robin":
        start = (annotator_index * max(1, n_items // 7 + 1)) % max(1, n_items)
        key = (pos - start) % max(1, n_items)
        return int(np.argmin(key))
    if policy == "active" and uncertain is not None:
        u = np.asarray(uncertain, dtype=np.float64)
        order = np.lexsort((pos, cnt, -u))
        return int(order[0])
    order = np.lexsort((pos, cnt))
    return int(order[0])
