"""Uncertainty: bootstrap (multinomial reweighting of the count table), the one-step
bootstrap for large leaderboards, Hessian and sandwich intervals, and rank intervals (the ranks
each item takes at the confidence level).

The bootstrap resamples battles: each round draws new counts for every (unit, outcome) cell
from a multinomial with the observed cell shares and N = number of battles, which is exactly
resampling battles with replacement, without touching the raw rows. Rounds are refitted by
Newton from the full-data estimate; for up to a few hundred items all rounds of a chunk are
solved at once as a batch of small dense systems.

The one-step bootstrap (`one_step_draws`) replaces each refit by a single Newton step from the
full-data optimum with the full-data Hessian: a round is theta_hat - H^-1 g*, where g* is the
score of a perturbed data set. The perturbation is a wild (multiplier) bootstrap: every
(unit, outcome) cell's per-battle score, scaled by the square root of its summed squared
weights, gets an independent random sign (Rademacher multipliers), so the draws have exactly
the sandwich covariance H^-1 J H^-1. One round costs one sparse solve (all rounds of a chunk
are solved together by block conjugate gradients), and the draws are symmetric about
theta_hat, so every round is used twice (+ and -).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from prefkit.rank.bt import (
    DENSE_MAX,
    Fit,
    Problem,
    _dense_h,
    _grad_hess_parts,
    _ops_cache,
    _split,
    derivs,
    laplacian_solver,
    newton,
    schur_solve,
    tie_counts,
    with_counts,
)
from prefkit.rank.data import RankInputError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

BATCH_MAX_PARAMS = 400  # batched dense bootstrap up to this many parameters
SANDWICH_MAX_ITEMS = 5000
AUTO_BOOTSTRAP_MAX_PARAMS = 100  # --ci auto: full bootstrap up to this many parameters
ONE_STEP_RTOL = 1e-3  # relative residual of the conjugate-gradient solves of the one-step draws
MAX_THREADS = 4  # threads for chunks of one-step rounds and for ranking draws


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


def point_ranks(theta: NDArray[np.floating]) -> I64:
    """Competition ranks (1 = best; equal scores share the best rank)."""
    if theta.dtype == np.float32:
        return _ranks_f32(theta)
    k = theta.size
    order = np.argsort(-theta)
    s = theta[order]
    first = np.zeros(k, dtype=np.int64)
    if k:
        new = np.ones(k, dtype=bool)
        new[1:] = s[1:] != s[:-1]
        first = np.maximum.accumulate(np.where(new, np.arange(k), 0))
    ranks = np.empty(k, dtype=np.int64)
    ranks[order] = first + 1
    return ranks


def _ranks_f32(x: NDArray[np.float32]) -> I64:
    """`point_ranks` of float32 values by one sort of 64-bit keys (the value's bits mapped to
    an order-preserving integer, above the item's index): numpy sorts plain integers several
    times faster than it argsorts floats, and ranking every draw is a large share of the
    intervals' cost at 100,000 items."""
    k = x.size
    bits = (x + np.float32(0.0)).view(np.int32)  # + 0.0 turns -0.0 into +0.0
    mono = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))  # signed order = float order
    key = (mono.astype(np.int64) + (1 << 31)).astype(np.uint64) << np.uint64(32)
    key |= np.arange(k, dtype=np.uint64)
    key.sort()
    order = (key & np.uint64(0xFFFFFFFF)).astype(np.intp)
    value = key >> np.uint64(32)
    pos = np.arange(k)
    is_end = np.append(value[1:] != value[:-1], True)
    if not is_end.all():  # ties: each takes the position of the last of its run
        pos = np.minimum.accumulate(np.where(is_end, pos, k)[::-1])[::-1]
    ranks = np.empty(k, dtype=np.int64)
    ranks[order] = k - pos
    return ranks


def _column_quantiles(block: NDArray[np.floating], qs: list[float], methods: list[str]) -> F64:
    """Quantiles of every row of `block` (items x rounds): numpy's `linear`, `lower` and
    `higher` definitions, by one partial sort of the rows."""
    n = block.shape[1]
    pos = [q * (n - 1) for q in qs]
    kth = sorted({int(np.floor(x)) for x in pos} | {min(int(np.floor(x)) + 1, n - 1) for x in pos})
    part = np.partition(block, kth, axis=1)
    out = np.empty((len(qs), block.shape[0]))
    for t, (x, method) in enumerate(zip(pos, methods, strict=True)):
        lo = int(np.floor(x))
        hi = min(lo + 1, n - 1)
        if method == "lower":
            out[t] = part[:, lo]
        elif method == "higher":
            out[t] = part[:, hi if x > lo else lo]
        else:
            frac = x - lo
            out[t] = part[:, lo] + frac * (part[:, hi].astype(np.float64) - part[:, lo])
    return out


def _summarise(
    method: str, draws: NDArray[np.floating], theta: F64, level: float, rounds: int
) -> Intervals:
    """Score intervals (quantiles of `draws`, rounds x items), standard errors and rank
    intervals (quantiles of the ranks each item takes in each draw). Works column block by
    column block and turns `draws` into ranks in place, so a large leaderboard needs no
    second rounds x items array."""
    a = (1.0 - level) / 2.0
    k = theta.size
    lo, hi, se = np.empty(k), np.empty(k), np.empty(k)
    step = max(1, 4_000_000 // max(draws.shape[0], 1))
    for c in range(0, k, step):
        block = np.ascontiguousarray(draws[:, c : c + step].T)
        lo[c : c + step], hi[c : c + step] = _column_quantiles(
            block, [a, 1.0 - a], ["linear", "linear"]
        )
        se[c : c + step] = block.std(axis=1, dtype=np.float64)
    blocks = range(0, draws.shape[0], 64)

    def rank_rows(r0: int) -> int:
        for r in range(r0, min(r0 + 64, draws.shape[0])):
            draws[r] = point_ranks(draws[r])
        return 0

    for _ in parallel_map(rank_rows, blocks):
        pass
    rlo, rhi = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.int64)
    for c in range(0, k, step):
        block = np.ascontiguousarray(draws[:, c : c + step].T)
        q = _column_quantiles(block, [a, 1.0 - a], ["lower", "higher"])
        rlo[c : c + step], rhi[c : c + step] = q[0], q[1]
    return Intervals(method, level, lo, hi, point_ranks(theta), rlo, rhi, rounds, se)


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
    return _summarise(f"bootstrap-{kind}", draws, f.theta, level, rounds)


def cell_scores(p: Problem, x: F64) -> tuple[F64, F64]:
    """Score of one battle in each (unit, outcome) cell at parameters `x`, with respect to
    the unit's linear predictor eta and to the tie parameter: two (units, 3) arrays (columns
    i wins, j wins, tie; after the tie policy, so a dropped tie scores 0)."""
    theta, t, gamma = _split(p, x)
    eta = theta[p.i] - theta[p.j]
    if p.z is not None:
        eta = eta + p.z @ gamma
    u = p.i.size
    fe, ft = np.zeros((u, 3)), np.zeros((u, 3))
    for o in range(3):
        y1 = np.zeros((u, 3))
        y1[:, o] = 1.0
        g = derivs(p.model, eta, t, tie_counts(y1, p.model, p.ties))
        fe[:, o], ft[:, o] = g.fe, g.ft
    return fe, ft


def one_step_draws(
    p: Problem,
    f: Fit,
    rounds: int,
    rng: np.random.Generator,
    progress: Callable[[int], None] | None = None,
) -> NDArray[np.float32]:
    """Centred log-strengths of `rounds` one-step wild-bootstrap draws (rounds, items),
    float32: theta_hat - H^-1 g* with g* = sum over cells of sign * sqrt(w2) * score (see the
    module docstring; without tie or style parameters one multiplier per unit suffices).
    Draws come in mirrored pairs (theta_hat + d, theta_hat - d): with
    symmetric multipliers both have the same distribution, so each solve gives two rounds.
    The Hessian is factorised densely up to `DENSE_MAX` items, else every chunk of rounds is
    solved at once by block conjugate gradients (relative residual `ONE_STEP_RTOL`)."""
    import scipy.sparse as sp
    from scipy.linalg import cho_factor, cho_solve

    if rounds < 1:
        raise RankInputError("bootstrap needs at least one round")
    ops = _ops_cache(p)
    k, m = p.k, p.n_extra
    _, _, d_pair, diag, h_te, h_ee = _grad_hess_parts(p, ops, f.x, p.y)
    fe, ft = cell_scores(p, f.x)
    sw = np.sqrt(p.w2)
    ae, at = sw * fe, sw * ft
    if m == 0:
        # one parameter block: every battle of a unit scores along the same direction, so
        # one multiplier per unit with the summed variance gives the same covariance
        ae = np.sqrt((ae * ae).sum(axis=1, keepdims=True))
        at = np.zeros_like(ae)
    cu, co = np.nonzero((ae != 0) | (at != 0))
    n_cells = cu.size
    ae_c, at_c = ae[cu, co], at[cu, co]
    cells = np.arange(n_cells)
    score_theta = sp.csr_matrix(
        (
            np.concatenate([ae_c, -ae_c]).astype(np.float32),
            (np.concatenate([p.i[cu], p.j[cu]]), np.concatenate([cells, cells])),
        ),
        shape=(k, n_cells),
    )
    extra: list[F64] = []
    if p.has_tie:
        extra.append(at_c)
    if p.z is not None:
        extra += [ae_c * p.z[cu, q] for q in range(p.z.shape[1])]
    score2_theta = score_theta * np.float32(2.0)
    sum_theta = np.asarray(score_theta.sum(axis=1), dtype=np.float32).ravel()
    score2_extra, sum_extra = None, np.zeros(0, dtype=np.float32)
    if extra:
        score_extra = np.stack(extra).astype(np.float32)
        score2_extra, sum_extra = 2.0 * score_extra, score_extra.sum(axis=1)
    if k <= DENSE_MAX:
        factor = cho_factor(_dense_h(p, d_pair, diag, h_te, h_ee))

        def solve(b: NDArray[np.floating]) -> NDArray[np.floating]:
            return np.asarray(cho_solve(factor, b.astype(np.float64)))
    else:
        theta_solve = laplacian_solver(p, ops, d_pair, diag, ONE_STEP_RTOL, np.float32)

        def solve(b: NDArray[np.floating]) -> NDArray[np.floating]:
            return schur_solve(theta_solve, b, h_te, h_ee, k)

    theta = f.theta.astype(np.float32)
    out = np.empty((rounds, k), dtype=np.float32)
    per = int(np.clip(16_000_000 // max(n_cells, 1), 8, 256))
    chunks: list[tuple[int, int, int]] = []  # (first row, solves, rows)
    row = 0
    while row < rounds:
        r = min(per, (rounds - row + 1) // 2)
        chunks.append((row, r, min(2 * r, rounds - row)))
        row += chunks[-1][2]
    gens = rng.spawn(len(chunks))

    def run(q: int) -> int:
        start, r, n_rows = chunks[q]
        bits = gens[q].integers(0, 256, size=(n_cells, (r + 7) // 8), dtype=np.uint8)
        ones = np.unpackbits(bits, axis=1, count=r).astype(np.float32)
        # sign = 2 * bit - 1, folded into the (doubled) score matrices
        b = score2_theta @ ones - sum_theta[:, None]
        if score2_extra is not None:
            b = np.vstack([b, score2_extra @ ones - sum_extra[:, None]])
        d = np.asarray(solve(b)[:k], dtype=np.float32)
        d -= d.mean(axis=0)
        n1 = min(r, n_rows)
        out[start : start + n1] = theta + d[:, :n1].T
        out[start + n1 : start + n_rows] = theta - d[:, : n_rows - n1].T
        return n_rows

    for n_rows in parallel_map(run, range(len(chunks))):
        if progress is not None:
            progress(n_rows)
    return out


def parallel_map(fn: Callable[[int], int], items: range) -> Iterator[int]:
    """`fn` over `items` in a few threads (numpy and scipy's sparse products release the GIL,
    so chunks of rounds run on every core); results in completion order."""
    import os
    from concurrent.futures import ThreadPoolExecutor, as_completed

    workers = max(1, min(os.cpu_count() or 1, MAX_THREADS, len(items)))
    if workers == 1:
        yield from (fn(q) for q in items)
        return
    with ThreadPoolExecutor(workers) as ex:
        for fut in as_completed([ex.submit(fn, q) for q in items]):
            yield fut.result()


def one_step(
    p: Problem,
    f: Fit,
    rounds: int = 1000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
    progress: Callable[[int], None] | None = None,
) -> Intervals:
    """One-step bootstrap intervals for scores and ranks (see `one_step_draws`); the draws
    are symmetric about the estimate, so the percentile and basic intervals coincide."""
    gen = rng if rng is not None else np.random.default_rng(0)
    draws = one_step_draws(p, f, rounds, gen, progress=progress)
    return _summarise("one-step", draws, f.theta, level, rounds)


def auto_method(p: Problem) -> tuple[str, str]:
    """The interval method `--ci auto` uses for this problem, and why (a sentence)."""
    n = p.k + p.n_extra
    if n <= AUTO_BOOTSTRAP_MAX_PARAMS:
        return "bootstrap", (
            f"{n} parameters <= {AUTO_BOOTSTRAP_MAX_PARAMS}: bootstrap, every round refitted"
        )
    return "one-step", (
        f"{n} parameters > {AUTO_BOOTSTRAP_MAX_PARAMS}: one-step bootstrap (every round one "
        "Newton step from the fit, one sparse solve) instead of refitting every round"
    )


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
            f"{SANDWICH_MAX_ITEMS} items); --ci one-step draws from the same sandwich "
            "covariance with sparse solves"
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
        fe, ft = cell_scores(p, f.x)
        ee = (p.w2 * fe * fe).sum(axis=1)
        et = (p.w2 * fe * ft).sum(axis=1)
        tt = (p.w2 * ft * ft).sum(axis=1)
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
    r = _summarise(kind, sim, f.theta, level, 0)
    return Intervals(
        kind, level, f.theta - zq * se, f.theta + zq * se, r.rank, r.rank_low, r.rank_high, 0, se
    )


def no_intervals(f: Fit) -> Intervals:
    r = point_ranks(f.theta)
    return Intervals("none", 0.0, f.theta.copy(), f.theta.copy(), r, r.copy(), r.copy())
