"""Which item an annotator judges next: round-robin, least-judged first, or active (the pairs
whose outcome is most uncertain under a Bradley–Terry fit of the votes so far).

The Bradley–Terry fit is `prefkit.rank`'s (one code path with `prefkit rank`): exact maximum
likelihood, ties half a win each way, an automatic L2 prior only where the estimate would be
infinite."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

POLICIES = ("round_robin", "least_judged", "active")


def bt_scores(
    model_a: Sequence[str], model_b: Sequence[str], outcomes: Sequence[str], names: Sequence[str]
) -> NDArray[np.float64]:
    """Bradley–Terry log-strengths of `names` from battles (`outcomes`: a, b, tie, both_bad)
    by `prefkit.rank` with its defaults, on the largest connected part of the comparison
    graph. Models without a usable battle, or outside that part, get 0 (the average)."""
    from prefkit.rank.bt import RankConfig, fit
    from prefkit.rank.data import RankInputError, aggregate, battles

    out = np.zeros(len(names))
    if not outcomes:
        return out
    try:
        b = battles(list(model_a), list(model_b), list(outcomes), items=list(names))
        f = fit(aggregate(b), RankConfig(components="largest"))
    except RankInputError:  # fewer than two models with a battle: nothing to rank yet
        return out
    index = {m: i for i, m in enumerate(names)}
    for name, theta in zip(f.items, f.theta.tolist(), strict=True):
        out[index[name]] = theta
    return out


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
