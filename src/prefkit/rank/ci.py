"""Uncertainty: bootstrap (multinomial reweighting of the count table), Hessian and sandwich
intervals, and rank intervals (the ranks each item takes at the confidence level).

The bootstrap resamples battles: each round draws new counts for every (unit, outcome) cell
from a multinomial with the observed cell shares and N = number of battles, which is exactly
resampling battles with replacement, without touching the raw rows. Rounds are refitted by
Newton from the full-data estimate; for up to a few hundred items all rounds of a chunk are
solved at once as a batch of small dense systems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from prefkit.rank.bt import (
    Fit,
    Problem,
    _ops_cache,
    _split,
    derivs,
    newton,
    tie_counts,
    with_counts,
)
from prefkit.rank.data import RankInputError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

BATCH_MAX_PARAMS = 400  # batched dense bootstrap up to this many parameters
SANDWICH_MAX_ITEMS = 5000


@dataclass(frozen=True)
class Intervals:
    """Intervals on the centred natural-log scale of `Fit.theta`, and rank intervals.

    `rank`: 1 + number of items with a strictly higher point estimate; `rank_low`/`rank_high`:
    best and worst rank at the confidence level."""

    method: str
    level: float
    low: F64
    high: F64
    rank: I64
    rank_low: I64
    rank_high: I64
    rounds: int = 0
    se: F64 | None = None


def point_ranks(theta: F64) -> I64:
    """Competition ranks (1 = best; equal scores share the best rank)."""
    s = np.sort(theta)
    return np.asarray(theta.size - np.searchsorted(s, theta, side="right") + 1, dtype=np.int64)


def _rank_draws(draws: F64) -> I64:
    """Ranks of every row of `draws` (rounds x items)."""
    out = np.empty(draws.shape, dtype=np.int64)
    for r in range(draws.shape[0]):
        out[r] = point_ranks(draws[r])
    return out


def _rank_interval(ranks: I64, level: float) -> tuple[I64, I64]:
    a = (1.0 - level) / 2.0
    lo = np.quantile(ranks, a, axis=0, method="lower")
    hi = np.quantile(ranks, 1.0 - a, axis=0, method="higher")
    return np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)


def bootstrap_draws(
    p: Problem,
    f: Fit,
    rounds: int,
    rng: np.random.Generator,
    chunk_cells: int = 4_000_000,
    progress: Callable[[int], None] | None = None,
) -> F64:
    """Centred log-strengths for `rounds` bootstrap resamples: (rounds, items);
    `progress(n)` is called with the number of rounds finished after each chunk."""
    if rounds < 1:
        raise RankInputError("bootstrap needs at least one round")
    n = p.n.astype(np.float64)
    total = int(p.n.sum())
    flat = n.ravel()
    probs = flat / flat.sum()
    mean_w = np.divide(p.y3, n, out=np.zeros_like(n), where=n > 0)
    k = p.k
    out = np.empty((rounds, k))
    n_params = k + p.n_extra
    batched = n_params <= BATCH_MAX_PARAMS
    per_round = max(flat.size, n_params * n_params)
    size = max(1, min(rounds, chunk_cells // max(per_round, 1)))
    done = 0
    while done < rounds:
        r = min(size, rounds - done)
        m = rng.multinomial(total, probs, size=r).astype(np.float64)
        y3 = m.reshape(r, *n.shape) * mean_w[None]
        if batched:
            xs = _batched_newton(p, f.x, y3)
        else:
            xs = np.stack([newton(with_counts(p, y3[q]), x0=f.x, dense=False)[0] for q in range(r)])
        theta = xs[:, :k]
        out[done : done + r] = theta - theta.mean(axis=1, keepdims=True)
        done += r
        if progress is not None:
            progress(r)
    return out


def _batched_newton(p: Problem, x0: F64, y3: F64) -> F64:
    """Newton on R problems sharing one structure: (R, units, 3) counts -> (R, params)."""
    ops = _ops_cache(p)
    r = y3.shape[0]
    k, m = p.k, p.n_extra
    y = np.stack([tie_counts(y3[q], p.model, p.ties) for q in range(r)])
    x = np.repeat(x0[None, :], r, axis=0)
    ar = np.arange(k)
    f = _batched_obj(p, x, y)
    active = np.ones(r, dtype=bool)
    for _ in range(p.max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        xa, ya = x[idx], y[idx]
        theta, t, gamma = xa[:, :k], xa[:, k : k + int(p.has_tie)], xa[:, k + int(p.has_tie) :]
        eta = theta[:, p.i] - theta[:, p.j]
        if p.z is not None:
            eta = eta + gamma @ p.z.T
        tt = t if p.has_tie else np.zeros((idx.size, 1))
        d = derivs(p.model, eta, tt, ya)
        g = np.zeros((idx.size, k + m))
        g[:, :k] = (ops.xt @ d.fe.T).T + p.prior * theta
        h = np.zeros((idx.size, k + m, k + m))
        d_pair = d.fee if ops.qt is None else (ops.qt @ d.fee.T).T
        h[:, p.pi, p.pj] = -d_pair
        h[:, p.pj, p.pi] = -d_pair
        diag = (ops.st @ d_pair.T).T + p.prior
        h[:, ar, ar] = diag
        if p.prior == 0:
            h[:, :k, :k] += (diag.mean(axis=1) / k)[:, None, None]
        c = k
        if p.has_tie:
            g[:, c] = d.ft.sum(axis=1)
            col = (ops.xt @ d.fet.T).T
            h[:, :k, c] = col
            h[:, c, :k] = col
            h[:, c, c] = d.ftt.sum(axis=1)
            if p.z is not None:
                v = d.fet @ p.z
                h[:, c, c + 1 :] = v
                h[:, c + 1 :, c] = v
            c += 1
        if p.z is not None:
            z = p.z
            g[:, c:] = d.fe @ z
            for q in range(z.shape[1]):
                col = (ops.xt @ (d.fee * z[:, q]).T).T
                h[:, :k, c + q] = col
                h[:, c + q, :k] = col
            h[:, c:, c:] = np.einsum("ru,uc,ud->rcd", d.fee, z, z)
        try:
            step = np.linalg.solve(h, g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = g / np.maximum(np.abs(np.diagonal(h, axis1=1, axis2=2)), 1e-12)
        if p.prior == 0:
            step[:, :k] -= step[:, :k].mean(axis=1, keepdims=True)
        s = np.ones(idx.size)
        fa = f[idx]
        xn = xa - step
        fn = _batched_obj(p, xn, ya)
        for _ in range(40):
            bad = ~(np.isfinite(fn) & (fn <= fa + 1e-12 * np.abs(fa)))
            if not bad.any():
                break
            s[bad] *= 0.5
            xn[bad] = xa[bad] - s[bad, None] * step[bad]
            fn[bad] = _batched_obj(p, xn[bad], ya[bad])
        x[idx] = xn
        f[idx] = fn
        conv = np.abs(s[:, None] * step).max(axis=1) < p.tol
        active[idx[conv]] = False
    if active.any():
        raise RankInputError(
            f"{int(active.sum())} bootstrap round(s) did not converge; try a prior (--prior 0.1)"
        )
    return x


def _batched_obj(p: Problem, x: F64, y: F64) -> F64:
    k = p.k
    theta = x[:, :k]
    eta = theta[:, p.i] - theta[:, p.j]
    nt = int(p.has_tie)
    if p.z is not None:
        eta = eta + x[:, k + nt :] @ p.z.T
    t = x[:, k : k + 1] if p.has_tie else np.zeros((x.shape[0], 1))
    d = derivs(p.model, eta, t, y)
    return np.asarray(d.f.sum(axis=1) + 0.5 * p.prior * (theta * theta).sum(axis=1))


def bootstrap(
    p: Problem,
    f: Fit,
    rounds: int = 1000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
    progress: Callable[[int], None] | None = None,
    kind: str = "basic",
) -> Intervals:
    """Bootstrap intervals for scores and ranks.

    `kind="basic"` (default, the reverse-percentile interval [2·theta - q_hi, 2·theta - q_lo]):
    the maximum-likelihood strengths are biased away from 0 in finite samples and the
    bootstrap repeats that bias, which the reflection cancels; `"percentile"` = [q_lo, q_hi]
    as in Chatbot Arena's notebooks. Rank intervals come from the ranks of the same
    (reflected) draws."""
    if kind not in ("basic", "percentile"):
        raise RankInputError(f"unknown bootstrap interval {kind!r}: basic or percentile")
    gen = rng if rng is not None else np.random.default_rng(0)
    draws = bootstrap_draws(p, f, rounds, gen, progress=progress)
    if kind == "basic":
        draws = 2.0 * f.theta[None, :] - draws
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(draws, [a, 1.0 - a], axis=0)
    rlo, rhi = _rank_interval(_rank_draws(draws), level)
    return Intervals(
        f"bootstrap-{kind}", level, lo, hi, point_ranks(f.theta), rlo, rhi, rounds,
        draws.std(axis=0),
    )  # fmt: skip


def _assemble(p: Problem, ee: F64, et: F64, tt: F64, prior: float, gauge: bool) -> F64:
    """Dense (params x params) matrix with the structure of the Hessian from per-unit second
    moments in (eta, tie): `ee`, `et`, `tt`."""
    ops = _ops_cache(p)
    k, m = p.k, p.n_extra
    h = np.zeros((k + m, k + m))
    d_pair = ee if ops.qt is None else ops.qt @ ee
    h[p.pi, p.pj] -= d_pair
    h[p.pj, p.pi] -= d_pair
    diag = ops.st @ d_pair + prior
    h[np.arange(k), np.arange(k)] += diag
    if gauge:
        h[:k, :k] += float(diag.mean()) / k
    c = k
    if p.has_tie:
        col = ops.xt @ et
        h[:k, c] = col
        h[c, :k] = col
        h[c, c] = float(tt.sum())
        if p.z is not None:
            v = et @ p.z
            h[c, c + 1 :] = v
            h[c + 1 :, c] = v
        c += 1
    if p.z is not None:
        for q in range(p.z.shape[1]):
            col = ops.xt @ (ee * p.z[:, q])
            h[:k, c + q] = col
            h[c + q, :k] = col
        h[c:, c:] = (p.z * ee[:, None]).T @ p.z
    return h


def covariance(p: Problem, f: Fit, kind: str = "sandwich") -> F64:
    """Covariance of all parameters: inverse Hessian (`hessian`) or the robust sandwich
    H^-1 J H^-1 with J the sum of per-battle score outer products (`sandwich`). The theta
    block is that of the centred (mean 0) strengths."""
    if p.k > SANDWICH_MAX_ITEMS:
        raise RankInputError(
            f"{kind} intervals need a dense {p.k} x {p.k} inverse (limit "
            f"{SANDWICH_MAX_ITEMS} items); use the bootstrap (--ci bootstrap)"
        )
    ops = _ops_cache(p)
    theta, t, gamma = _split(p, f.x)
    eta = theta[p.i] - theta[p.j]
    if p.z is not None:
        eta = eta + p.z @ gamma
    d = derivs(p.model, eta, t, p.y)
    h = _assemble(p, d.fee, d.fet, d.ftt, p.prior, gauge=p.prior == 0)
    hinv = np.linalg.inv(h)
    if kind == "hessian":
        v = hinv
    elif kind == "sandwich":
        u = p.i.size
        ee, et, tt = np.zeros(u), np.zeros(u), np.zeros(u)
        for o in range(3):
            y1 = np.zeros((u, 3))
            y1[:, o] = 1.0
            y1 = tie_counts(y1, p.model, p.ties)
            g = derivs(p.model, eta, t, y1)
            w2 = p.w2[:, o]
            ee += w2 * g.fe * g.fe
            et += w2 * g.fe * g.ft
            tt += w2 * g.ft * g.ft
        j = _assemble(p, ee, et, tt, 0.0, gauge=False)
        v = hinv @ j @ hinv
    else:
        raise RankInputError(f"unknown interval kind {kind!r}: hessian or sandwich")
    del ops
    k = p.k
    proj = np.eye(k) - 1.0 / k
    out = v.copy()
    out[:k, :k] = proj @ v[:k, :k] @ proj
    out[:k, k:] = proj @ v[:k, k:]
    out[k:, :k] = out[:k, k:].T
    return np.asarray(out)


def normal_intervals(
    p: Problem,
    f: Fit,
    kind: str = "sandwich",
    level: float = 0.95,
    draws: int = 4000,
    rng: np.random.Generator | None = None,
) -> Intervals:
    """Wald intervals theta ± z·se from `covariance`; rank intervals from `draws` normal
    draws of the strengths."""
    from scipy.stats import norm

    gen = rng if rng is not None else np.random.default_rng(0)
    v = covariance(p, f, kind)[: p.k, : p.k]
    se = np.sqrt(np.clip(np.diag(v), 0.0, None))
    zq = float(norm.ppf(0.5 + level / 2.0))
    w, q = np.linalg.eigh(v)
    root = q * np.sqrt(np.clip(w, 0.0, None))
    sim = f.theta[None, :] + gen.standard_normal((draws, p.k)) @ root.T
    rlo, rhi = _rank_interval(_rank_draws(sim), level)
    return Intervals(
        kind, level, f.theta - zq * se, f.theta + zq * se, point_ranks(f.theta), rlo, rhi, 0, se
    )


def no_intervals(f: Fit) -> Intervals:
    r = point_ranks(f.theta)
    return Intervals("none", 0.0, f.theta.copy(), f.theta.copy(), r, r.copy(), r.copy())
