"""Which pairs to send to annotators next (active selection; docs/select.md).

- `interval` (arenas: pairs with model names): the expected reduction of rank-interval width.
  The current Bradley–Terry fit (`prefkit.rank`) gives strengths theta and, from its Fisher
  information H = sum p(1-p) u u^T (+ a small ridge), the covariance C = H^-1. One more battle
  between models i and j adds w = p_ij (1 - p_ij) along u = e_i - e_j; by Sherman–Morrison the
  variance of every difference theta_a - theta_b drops by w (d^T C u)^2 / (1 + w u^T C u). The
  score of (i, j) is the sum over model pairs (a, b) of that drop converted to standard error
  (divided by 2 sd_ab), weighted by how fast the chance that the two are ordered wrongly,
  Phi(-x) with x = |theta_a - theta_b| / sd_ab, falls as sd_ab shrinks: phi(x) (x + 0.5) / sd_ab
  (the 0.5 keeps pairs the fit believes tied in play): the pairs whose intervals overlap are
  the ones whose ranks are uncertain. A batch of N battles is chosen greedily, updating C after each pick.
- `uncertainty`: 1 - |2p - 1| with p = P(a wins) under the current model (BT for arenas, a
  feature reward model fitted on the votes so far for text pairs; 1 without votes).
- `disagreement`: share of judge votes on the pair that disagree with the judges' majority.
- `diversity`: facility location over prompt embeddings (as for training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

RIDGE = 0.05
# added to |theta_a - theta_b| / sd in the misorder weight: without it a pair the current fit
# believes exactly tied gets no weight, although that belief is itself uncertain
OMEGA_FLOOR = 0.5  # prior precision on log-strengths: keeps H invertible before every model played


def bt_scores(
    model_a: Sequence[str],
    model_b: Sequence[str],
    outcomes: Sequence[str],
    names: Sequence[str],
    prior: float | None = None,
) -> F64:
    """Bradley–Terry log-strengths of `names` from battles (`outcomes`: a, b, tie, both_bad)
    by `prefkit.rank` with its defaults (or an L2 `prior` precision), on the largest connected
    part of the comparison graph. Models without a usable battle, or outside that part, get 0
    (the average)."""
    from prefkit.rank.bt import RankConfig, fit
    from prefkit.rank.data import RankInputError, aggregate, battles

    out = np.zeros(len(names))
    if not outcomes:
        return out
    try:
        b = battles(list(model_a), list(model_b), list(outcomes), items=list(names))
        f = fit(aggregate(b), RankConfig(prior=prior, components="largest"))
    except RankInputError:  # fewer than two models with a battle: nothing to rank yet
        return out
    index = {m: i for i, m in enumerate(names)}
    for name, theta in zip(f.items, f.theta.tolist(), strict=True):
        out[index[name]] = theta
    return out


def uncertainty(pair_a: I64, pair_b: I64, scores: F64) -> F64:
    """1 − |2p − 1| where p = P(a beats b) under the scores: 1 = coin flip, 0 = certain."""
    pr = 1.0 / (1.0 + np.exp(-(scores[pair_a] - scores[pair_b])))
    return np.asarray(1.0 - np.abs(2.0 * pr - 1.0), dtype=np.float64)


def _sig(x: F64) -> F64:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def fisher(theta: F64, ia: I64, ib: I64, ridge: float = RIDGE) -> F64:
    """Fisher information of BT log-strengths from battles (ia, ib): sum p(1-p) u u^T."""
    k = theta.size
    p = _sig(theta[ia] - theta[ib])
    w = p * (1 - p)
    h = np.zeros((k, k))
    np.add.at(h, (ia, ia), w)
    np.add.at(h, (ib, ib), w)
    np.add.at(h, (ia, ib), -w)
    np.add.at(h, (ib, ia), -w)
    return h + ridge * np.eye(k)


@dataclass(frozen=True)
class IntervalPlan:
    """Chosen battles (model index pairs, in order) and the score each had when picked."""

    a: I64
    b: I64
    gain: F64


def interval_gains(theta: F64, cov: F64, ca: I64, cb: I64) -> F64:
    """Expected reduction of the summed standard errors of theta_a − theta_b, weighted by
    the chance each pair is misordered, from one battle on each candidate (ca, cb)."""
    from scipy.stats import norm

    k = theta.size
    ta, tb = np.triu_indices(k, 1)
    var = cov[ta, ta] + cov[tb, tb] - 2 * cov[ta, tb]
    sd = np.sqrt(np.maximum(var, 1e-12))
    x = np.abs(theta[ta] - theta[tb]) / sd
    # d/d sd of P(misordered) = Phi(-x): the misorder chance a smaller sd removes
    omega = norm.pdf(x) * (x + OMEGA_FLOOR) / sd / (2 * sd)
    m = cov[ta, :] - cov[tb, :]  # (pairs, k): d^T C
    mu = m[:, ca] - m[:, cb]  # (pairs, cand): d^T C u
    uu = cov[ca, ca] + cov[cb, cb] - 2 * cov[ca, cb]
    w = _sig(theta[ca] - theta[cb])
    w = w * (1 - w)
    return np.asarray((omega[:, None] * mu**2).sum(axis=0) * w / (1 + w * uu), dtype=np.float64)


def plan_battles(
    theta: F64, info: F64, n: int, ca: I64, cb: I64, rng: np.random.Generator
) -> IntervalPlan:
    """Greedy batch of `n` battles among candidate model pairs (ca, cb) (repeats allowed),
    by `interval_gains`, updating the covariance after each pick (Sherman–Morrison)."""
    cov = np.asarray(np.linalg.inv(info), dtype=np.float64)
    out_a, out_b, gains = [], [], []
    jitter = rng.random(ca.size) * 1e-12
    for _ in range(n):
        g = interval_gains(theta, cov, ca, cb) + jitter
        j = int(np.argmax(g))
        i1, i2 = int(ca[j]), int(cb[j])
        out_a.append(i1)
        out_b.append(i2)
        gains.append(float(g[j]))
        u = np.zeros(theta.size)
        u[i1], u[i2] = 1.0, -1.0
        p = float(_sig(np.array([theta[i1] - theta[i2]]))[0])
        w = p * (1 - p)
        cu = cov @ u
        cov = cov - np.outer(cu, cu) * (w / (1 + w * float(u @ cu)))
    return IntervalPlan(np.array(out_a, np.int64), np.array(out_b, np.int64), np.array(gains))


def arena_item_gains(
    names: Sequence[str],
    model_a: Sequence[str],
    model_b: Sequence[str],
    outcomes: Sequence[str],
    cand_a: I64,
    cand_b: I64,
) -> tuple[F64, F64]:
    """(interval gain, outcome uncertainty) of one more battle on each candidate pair, given
    the battles so far — what `prefkit serve` uses for live assignment in arena campaigns."""
    theta = bt_scores(model_a, model_b, outcomes, names)
    idx = {m: i for i, m in enumerate(names)}
    ia = np.array([idx[m] for m in model_a], dtype=np.int64)
    ib = np.array([idx[m] for m in model_b], dtype=np.int64)
    keep = ia != ib
    cov = np.asarray(np.linalg.inv(fisher(theta, ia[keep], ib[keep])), dtype=np.float64)
    return interval_gains(theta, cov, cand_a, cand_b), uncertainty(cand_a, cand_b, theta)


def uniform_plan(k: int, n: int, rng: np.random.Generator) -> tuple[I64, I64]:
    """`n` battles between model pairs drawn uniformly (the baseline assignment)."""
    a = rng.integers(0, k, size=n)
    b = (a + rng.integers(1, k, size=n)) % k
    return a.astype(np.int64), b.astype(np.int64)


def head_info_plan(
    d_lab: F64, beta: F64, d_cand: F64, n: int, lam: float = 1e-2
) -> tuple[I64, F64]:
    """Greedy batch of `n` candidate pairs for a linear BT reward head (feature differences
    `d_cand`): each pick maximises the information it adds about the head,
    w x^T C x / (1 + w x^T C x) with w = p(1 - p) under the current head `beta` and C the
    inverse Fisher information of the labelled rows `d_lab` (+ the fit's L2), updated after
    each pick (Sherman–Morrison). Pure outcome uncertainty (1 − |2p − 1|) prefers near-ties,
    which under label noise are the noisiest pairs; this prefers pairs that are both
    uncertain and informative about the model. Returns (candidate indices, gains)."""
    k = d_cand.shape[1]
    p = _sig(d_lab @ beta)
    w = p * (1 - p)
    h = (d_lab * w[:, None]).T @ d_lab + (lam * max(1, d_lab.shape[0]) + 1e-6) * np.eye(k)
    cov = np.asarray(np.linalg.inv(h), dtype=np.float64)
    pc = _sig(d_cand @ beta)
    wc = pc * (1 - pc)
    free = np.ones(d_cand.shape[0], dtype=bool)
    out: list[int] = []
    gains: list[float] = []
    for _ in range(min(n, d_cand.shape[0])):
        q = np.einsum("ij,jk,ik->i", d_cand, cov, d_cand)
        g = np.where(free, wc * q / (1 + wc * q), -np.inf)
        j = int(np.argmax(g))
        out.append(j)
        gains.append(float(g[j]))
        free[j] = False
        cx = cov @ d_cand[j]
        cov = cov - np.outer(cx, cx) * (wc[j] / (1 + wc[j] * float(d_cand[j] @ cx)))
    return np.array(out, dtype=np.int64), np.array(gains)
