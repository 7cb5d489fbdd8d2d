"""Baselines for comparison with the likelihood models: online Elo and average win rate.

Conventions follow evalica (and so its LLMFAO reference scores): Elo starts every item at
`initial`, expected score 1 / (1 + base^((r_j - r_i) / scale)), update `k`·(s - e) per
battle in input order with s = 1, 0 or `tie_weight` (0.5); the average win rate of i is the
mean over the opponents j that i met of (wins_ij + tie_weight·ties_ij) / (same + reverse).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from prefkit.rank.data import TIE, WIN_A, Battles, Counts

F64 = NDArray[np.float64]


def elo(
    b: Battles,
    initial: float = 1000.0,
    k: float = 4.0,
    base: float = 10.0,
    scale: float = 400.0,
    tie_weight: float = 0.5,
) -> F64:
    """Online Elo ratings after one pass over the battles in order (weights scale `k`)."""
    r = np.full(len(b.items), float(initial))
    a_idx, b_idx = b.a.tolist(), b.b.tolist()
    out, w = b.outcome.tolist(), b.weight.tolist()
    for ia, ib, o, wt in zip(a_idx, b_idx, out, w, strict=True):
        ra, rb = r[ia], r[ib]
        ea = 1.0 / (1.0 + base ** ((rb - ra) / scale))
        eb = 1.0 / (1.0 + base ** ((ra - rb) / scale))
        sa = 1.0 if o == WIN_A else (tie_weight if o == TIE else 0.0)
        sb = 1.0 - sa if o != TIE else tie_weight
        r[ia] = ra + k * wt * (sa - ea)
        r[ib] = rb + k * wt * (sb - eb)
    return r


def average_win_rate(c: Counts, tie_weight: float = 0.5) -> F64:
    """Mean over met opponents of the (tie-weighted) share of battles won."""
    k = c.n_items
    wi = c.wins + tie_weight * c.ties
    wj = c.losses + tie_weight * c.ties
    tot = wi + wj
    ok = tot > 0
    ri = np.divide(wi, tot, out=np.zeros_like(tot), where=ok)
    rj = np.divide(wj, tot, out=np.zeros_like(tot), where=ok)
    s = np.bincount(c.i[ok], ri[ok], k) + np.bincount(c.j[ok], rj[ok], k)
    n = np.bincount(c.i[ok], minlength=k) + np.bincount(c.j[ok], minlength=k)
    return np.asarray(np.divide(s, n, out=np.zeros(k), where=n > 0), dtype=np.float64)
