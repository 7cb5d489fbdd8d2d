"""Which item an annotator judges next: round-robin, least-judged first, or active.

Active assignment is `prefkit select --for annotate`'s selector (`prefkit.select.active`, one
code path): in arena campaigns the pair whose next battle most reduces the width of the rank
intervals (Fisher information of `prefkit.rank`'s Bradley–Terry fit), ties broken by outcome
uncertainty; elsewhere the pair whose own votes are most split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prefkit.select.active import bt_scores, uncertainty

__all__ = ["POLICIES", "bt_scores", "choose", "uncertainty"]

POLICIES = ("round_robin", "least_judged", "active")


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
