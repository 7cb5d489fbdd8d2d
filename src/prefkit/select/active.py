"""Which pairs to send to annotators next (active selection; docs/select.md).

- `interval` (arenas: pairs with model names): shrink the uncertainty of the leaderboard's
  order where it is in doubt, by Thompson sampling of the ranking. The current Bradley–Terry
  fit (`prefkit.rank`) gives strengths theta and, from its Fisher information
  H = sum p(1-p) u u^T (+ a prior precision), the covariance C = H^-1. One draw
  z ~ N(theta, C) is a plausible ranking; the pairs of models adjacent in it are the pairs
  whose order decides that ranking, and among them a vote goes where the posterior chance
  that the fit orders the two wrongly, Phi(-|theta_a - theta_b| / sd_ab), is largest. Early
  on the draws are near random orders, so votes spread like uniform assignment; as the fit
  firms up they go to neighbours whose intervals overlap (Chatbot Arena's aim of shrinking
  the overlap of neighbours' intervals), not to pairs whose order is already certain. A
  batch of N battles is chosen greedily: after each pick C is updated (Sherman–Morrison) and
  a new ranking drawn. (Greedy expected reduction of misordering over all pairs, tried on
  other seeds, kept re-voting the same near-ties and did worse than uniform.)
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

RIDGE = 0.05  # prior precision on log-strengths: keeps H invertible before every model played
PLAN_PRIOR = 1.0  # the prior precision of the fit that plans battles (select, serve, benchmark)


def bt_scores(
    model_a: Sequence[str],
    model_b: Sequence[str],
    outcomes: Sequence[str],
    names: Sequence[str],
    prior: float | None = None,
) -> F64:
    """Bradley–Terry log-strengths of `names` from battles (`outcomes`: a, b, tie, both_bad)
    by `prefkit.rank`. With its defaults (`prior` None): the largest connected part of the
    comparison graph; models outside it, or without a usable battle, get 0 (the average).
    With an L2 `prior` precision > 0: the posterior mode of every model, each connected part
    fitted on its own (with a Gaussian prior the joint posterior factorises over the parts,
    so this is the exact joint fit); a model without battles keeps the prior mean 0."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from prefkit.rank.bt import RankConfig, fit
    from prefkit.rank.data import RankInputError, aggregate, battles

    out = np.zeros(len(names))
    if not outcomes:
        return out
    index = {m: i for i, m in enumerate(names)}
    ma, mb, oc = list(model_a), list(model_b), list(outcomes)
    if prior:
        ia = np.array([index[m] for m in ma])
        ib = np.array([index[m] for m in mb])
        g = coo_matrix((np.ones(ia.size), (ia, ib)), shape=(len(names), len(names)))
        _, label = connected_components(g, directed=False)
        parts = [np.flatnonzero(label[ia] == c) for c in np.unique(label[ia])]
    else:
        parts = [np.arange(len(oc))]
    for rows in parts:
        try:
            b = battles([ma[r] for r in rows], [mb[r] for r in rows], [oc[r] for r in rows],
                        items=list(names))  # fmt: skip
            f = fit(aggregate(b), RankConfig(prior=prior, components="largest"))
        except RankInputError:  # fewer than two models with a battle: nothing to rank yet
            continue
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


def neighbour_gains(theta: F64, cov: F64, ca: I64, cb: I64, rng: np.random.Generator) -> F64:
    """Value of one more battle on each candidate model pair (ca, cb): for the pairs adjacent
    in one ranking drawn from the posterior N(theta, cov), the chance the fit misorders them,
    Phi(-|theta_a - theta_b| / sd_ab) (plus 1e-9 sd_ab^2, so equal chances go to the pair
    known least); 0 for every other pair (module doc)."""
    from scipy.stats import norm

    k = theta.size
    lo = np.linalg.cholesky(cov + 1e-12 * np.eye(k))
    z = theta + lo @ rng.standard_normal(k)
    pos = np.empty(k, dtype=np.int64)
    pos[np.argsort(-z, kind="stable")] = np.arange(k)
    adjacent = np.abs(pos[ca] - pos[cb]) == 1
    var = cov[ca, ca] + cov[cb, cb] - 2 * cov[ca, cb]
    sd = np.sqrt(np.maximum(var, 1e-12))
    # equal chances (e.g. before any vote, when every chance is 1/2) go to the pair known least
    mis = norm.cdf(-np.abs(theta[ca] - theta[cb]) / sd) + 1e-9 * var
    return np.asarray(np.where(adjacent & (ca != cb), mis, 0.0), dtype=np.float64)


def vote_update(theta: F64, cov: F64, i: int, j: int) -> F64:
    """The covariance after one more battle between models i and j (Sherman–Morrison)."""
    u = np.zeros(theta.size)
    u[i], u[j] = 1.0, -1.0
    p = float(_sig(np.array([theta[i] - theta[j]]))[0])
    w = p * (1 - p)
    cu = cov @ u
    return np.asarray(cov - np.outer(cu, cu) * (w / (1 + w * float(u @ cu))), dtype=np.float64)


def plan_battles(
    theta: F64, info: F64, n: int, ca: I64, cb: I64, rng: np.random.Generator
) -> IntervalPlan:
    """Greedy batch of `n` battles among candidate model pairs (ca, cb) (repeats allowed),
    by `neighbour_gains`, updating the covariance (and drawing a new ranking) after each
    pick."""
    cov = np.asarray(np.linalg.inv(info), dtype=np.float64)
    out_a, out_b, gains = [], [], []
    jitter = rng.random(ca.size) * 1e-12
    for _ in range(n):
        g = neighbour_gains(theta, cov, ca, cb, rng) + jitter
        j = int(np.argmax(g))
        i1, i2 = int(ca[j]), int(cb[j])
        out_a.append(i1)
        out_b.append(i2)
        gains.append(float(g[j]))
        cov = vote_update(theta, cov, i1, i2)
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
    the battles so far — what `prefkit serve` uses for live assignment in arena campaigns.
    The ranking is drawn with a seed set by the number of battles, so the same votes give
    the same gains."""
    theta = bt_scores(model_a, model_b, outcomes, names, prior=PLAN_PRIOR)
    idx = {m: i for i, m in enumerate(names)}
    ia = np.array([idx[m] for m in model_a], dtype=np.int64)
    ib = np.array([idx[m] for m in model_b], dtype=np.int64)
    keep = ia != ib
    cov = np.asarray(np.linalg.inv(fisher(theta, ia[keep], ib[keep], PLAN_PRIOR)), dtype=np.float64)
    rng = np.random.default_rng([len(outcomes), 24])
    gains = neighbour_gains(theta, cov, cand_a, cand_b, rng)
    return gains, uncertainty(cand_a, cand_b, theta)


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
