"""Experiments with known truth for selection (benchmarks/bench_select.py runs them at full
size; tests at a small one).

- `arena_votes_to_target`: on the simulator's `arena` scenario, votes until the BT fit's
  Spearman correlation with the true model order reaches a target, with battles assigned
  uniformly or by `prefkit.select.active` (outcomes drawn from the scenario's own battles of
  the chosen model pair).
- `train_subset_accuracy`: a feature reward model trained on a selected share vs a random
  share vs all rows, held-out accuracy.
- `rm_label_curve`: a feature reward model trained from scratch, labels added by uncertainty
  vs at random, held-out accuracy after each batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.select.active import bt_scores, fisher, plan_battles, uniform_plan

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def _spearman(x: F64, y: F64) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def arena_votes_to_target(
    seed: int,
    policy: str,
    target: float = 0.9,
    batch: int = 20,
    max_votes: int = 6000,
    size: int = 30000,
    plan_prior: float = 1.0,
    run_to: int | None = None,
    pair_weights: F64 | None = None,
) -> dict[str, Any]:
    """Votes needed (in batches of `batch`) until Spearman(BT fit, true strength) ≥ target
    (`votes`: the first time). `policy`: `uniform`, `active` (`plan_battles`), `balanced`
    (`balanced_plan`: the model pair with the fewest votes so far next), or `fixed`:
    battles drawn from `pair_weights`, a fixed allocation over the model pairs
    `np.triu_indices(k, 1)` of the sorted model names (e.g. the best design with the true
    strengths known, `benchmarks/bench_select.py --only oracle`). With `run_to`, voting goes on to that many votes and the result
    also has the Spearman after every batch (`curve`) and `sustained_votes`: the votes from
    which Spearman stays ≥ target up to `run_to` (None when it is below at the end) — a
    first crossing can be a lucky excursion of a noisy fit."""
    from prefkit.simulate import simulate

    sim = simulate("arena", size=size, seed=seed, text=False)
    t = sim.tables[next(iter(sim.tables))]
    names = sorted(sim.truth["model_strength"])
    true = np.array([sim.truth["model_strength"][m] for m in names])
    idx = {m: i for i, m in enumerate(names)}
    k = len(names)
    pool: dict[tuple[int, int], list[str]] = {}
    for a, b, o in zip(t.column("model_a").to_pylist(), t.column("model_b").to_pylist(),
                       t.column("outcome").to_pylist(), strict=True):  # fmt: skip
        i, j = idx[a], idx[b]
        if i > j:
            i, j = j, i
            o = {"a": "b", "b": "a"}.get(o, o)
        pool.setdefault((i, j), []).append(o)
    used: dict[tuple[int, int], int] = {}
    rng = np.random.default_rng([seed, {"active": 11, "fixed": 17, "balanced": 19}.get(policy, 13)])
    ma: list[str] = []
    mb: list[str] = []
    out: list[str] = []
    ca, cb = np.triu_indices(k, 1)
    ca, cb = ca.astype(np.int64), cb.astype(np.int64)
    theta = np.zeros(k)
    pair_votes = np.zeros(ca.size, dtype=np.int64)  # policy balanced: votes per model pair
    reused = 0
    curve: list[float] = []
    first: int | None = None
    limit = max_votes if run_to is None else run_to
    while len(out) < limit:
        if policy == "active":
            ia = np.array([idx[m] for m in ma], dtype=np.int64)
            ib = np.array([idx[m] for m in mb], dtype=np.int64)
            th = bt_scores(ma, mb, out, names, prior=plan_prior) if out else theta
            plan = plan_battles(th, fisher(th, ia, ib, plan_prior), batch, ca, cb, rng)
            pa_, pb_ = plan.a, plan.b
        elif policy == "fixed":
            if pair_weights is None or pair_weights.size != ca.size:
                raise ValueError("policy 'fixed' needs pair_weights over every model pair")
            pick = rng.choice(ca.size, size=batch, p=pair_weights / pair_weights.sum())
            pa_, pb_ = ca[pick], cb[pick]
        elif policy == "balanced":
            pick = balanced_plan(pair_votes, batch, rng)
            pa_, pb_ = ca[pick], cb[pick]
        else:
            pa_, pb_ = uniform_plan(k, batch, rng)
        for i, j in zip(pa_.tolist(), pb_.tolist(), strict=True):
            key = (min(i, j), max(i, j))
            votes = pool[key]
            n_used = used.get(key, 0)
            if n_used < len(votes):
                o = votes[n_used]
            else:  # the scenario's battles of this pair are used up: draw one again
                o = votes[int(rng.integers(0, len(votes)))]
                reused += 1
            used[key] = n_used + 1
            ma.append(names[key[0]])
            mb.append(names[key[1]])
            out.append(o)
        theta = bt_scores(ma, mb, out, names)
        rho = _spearman(theta, true)
        curve.append(rho)
        if rho >= target and first is None:
            first = len(out)
            if run_to is None:
                break
    res: dict[str, Any] = {
        "seed": seed, "policy": policy, "votes": first if first is not None else len(out),
        "spearman": curve[-1], "reused_battles": reused, "reached": first is not None,
    }  # fmt: skip
    if run_to is not None:
        below = [n for n, r in enumerate(curve) if r < target]
        last = below[-1] + 1 if below else 0
        res["curve"] = [round(r, 4) for r in curve]
        res["sustained_votes"] = (last + 1) * batch if last < len(curve) else None
    return res


def balanced_plan(pair_votes: I64, n: int, rng: np.random.Generator) -> I64:
    """`n` battles, each on a model pair with the fewest votes so far (ties by a seeded
    draw); `pair_votes` (votes per pair) is updated in place. Uniform assignment without its
    multinomial spread: after m rounds of every pair the counts differ by at most one."""
    out = np.empty(n, dtype=np.int64)
    for t in range(n):
        low = np.flatnonzero(pair_votes == pair_votes.min())
        j = int(low[rng.integers(0, low.size)])
        pair_votes[j] += 1
        out[t] = j
    return out


def feature_diffs(table: pa.Table) -> tuple[F64, F64, list[str]]:
    """Standardised feature differences a − b of every row, the row's label P(a preferred)
    and its prompt id (rows without text are not expected here)."""
    from prefkit.reward.data import pairs_from_table
    from prefkit.reward.features import response_features

    p = pairs_from_table(table)
    if len(p) != table.num_rows:
        raise ValueError(f"{table.num_rows - len(p)} rows have no response text")
    xa, _ = response_features(p.prompts, p.a)
    xb, _ = response_features(p.prompts, p.b)
    both = np.vstack([xa, xb])
    mu, sd = both.mean(axis=0), both.std(axis=0) + 1e-9
    return (xa - mu) / sd - (xb - mu) / sd, p.y, p.prompt_ids


def fit_head(d: F64, y: F64, lam: float = 1e-2) -> F64:
    """The feature reward model's BT head (`prefkit.reward.head.fit_lbfgs`), ties as ½."""
    from prefkit.reward.head import fit_lbfgs

    beta, _ = fit_lbfgs(d, y, np.ones(y.size), lam)
    return beta


def held_out_accuracy(beta: F64, d: F64, truth: F64) -> float:
    """Share of held-out pairs where the model prefers the truly better response
    (`truth` = 1 when a is better, 0 when b; 0.5 rows are left out)."""
    s = d @ beta
    ok = truth != 0.5
    return float(np.mean((s[ok] > 0) == (truth[ok] > 0.5)))


def rm_label_curve(
    d_pool: F64,
    y_pool: F64,
    d_test: F64,
    truth_test: F64,
    seed: int,
    policy: str,
    start: int = 50,
    batch: int = 50,
    steps: int = 10,
) -> list[dict[str, float]]:
    """Labels added from the pool by `policy` (`active`: `head_info_plan`, what
    `select --for annotate` uses for text pairs; `uncertainty`: 1 − |2p − 1| alone; `random`);
    held-out accuracy after each batch."""
    from prefkit.select.active import _sig, head_info_plan

    rng = np.random.default_rng([seed, 5])
    n = y_pool.size
    taken = np.zeros(n, dtype=bool)
    taken[rng.choice(n, size=min(start, n), replace=False)] = True
    curve = []
    for step in range(steps + 1):
        beta = fit_head(d_pool[taken], y_pool[taken])
        curve.append({"labels": int(taken.sum()),
                      "accuracy": held_out_accuracy(beta, d_test, truth_test)})  # fmt: skip
        if step == steps:
            break
        free = np.flatnonzero(~taken)
        if free.size == 0:
            break
        m = min(batch, free.size)
        if policy == "active":
            loc, _ = head_info_plan(d_pool[taken], beta, d_pool[free], m)
            pick = free[loc]
        elif policy == "uncertainty":
            p = _sig(d_pool[free] @ beta)
            u = 1 - np.abs(2 * p - 1) + rng.random(free.size) * 1e-9
            pick = free[np.argsort(-u)[:m]]
        else:
            pick = rng.choice(free, size=m, replace=False)
        taken[pick] = True
    return curve


def feature_split(train: pa.Table, test: pa.Table) -> tuple[Any, F64, F64, F64, F64, F64]:
    """What the training-selection measurements share: the train pairs (`pairs_from_table`)
    with both responses' reward features, the test pairs' features, and the test truth
    (`_truth_of`): `(p, xa, xb, ta, tb, truth)`."""
    from prefkit.reward.data import pairs_from_table
    from prefkit.reward.features import response_features

    p = pairs_from_table(train)
    xa, _ = response_features(p.prompts, p.a)
    xb, _ = response_features(p.prompts, p.b)
    pt = pairs_from_table(test)
    ta, _ = response_features(pt.prompts, pt.a)
    tb, _ = response_features(pt.prompts, pt.b)
    return p, xa, xb, ta, tb, _truth_of(test)


def _truth_of(test: pa.Table) -> F64:
    """Per test row, 1 when a is truly better, 0 when b: the simulator's `quality_a` /
    `quality_b` when present, else the majority of the recorded votes on the pair
    (`prefkit.build.pairs.vote_groups`; an even split gives 0.5 and is left out)."""
    from prefkit.build.pairs import vote_groups

    meta = [dict(m or []) for m in test.column("meta").to_pylist()]
    if meta and all("quality_a" in m and "quality_b" in m for m in meta):
        qa = np.array([float(m["quality_a"]) for m in meta])
        qb = np.array([float(m["quality_b"]) for m in meta])
        return np.where(qa > qb, 1.0, np.where(qa < qb, 0.0, 0.5))
    gidx, flip, groups = vote_groups(test)
    o = test.column("outcome").to_pylist()
    v = np.array([1.0 if x == "a" else -1.0 if x == "b" else 0.0 for x in o])
    v = np.where(flip, -v, v)
    tot = np.zeros(len(groups))
    np.add.at(tot, gidx, v)
    g = tot[gidx] * np.where(flip, -1.0, 1.0)
    return np.where(g > 0, 1.0, np.where(g < 0, 0.0, 0.5))


def train_subset_accuracy(
    train: pa.Table,
    test: pa.Table,
    share: float,
    seed: int,
    weights: dict[str, float] | None = None,
    cache_dir: str | None = None,
    band: tuple[float, float] | None = None,
    random_draws: int = 1,
) -> dict[str, Any]:
    """Held-out accuracy (against `_truth_of(test)`) of a feature reward model
    (`prefkit.reward.train.fit_features`, its default L2 by cross-validation) trained on the
    rows `select_train` keeps (default criteria), on as many rows drawn at random (`random`:
    the mean over `random_draws` independent draws, each in `random_each`, so the paired
    difference selected − random is not dominated by the luck of one draw), and on all.
    With the `pairs` criterion the selected rows are trained with their pair's merged votes
    (`selected_table`); `distinct_pairs` counts the pairs each side reaches."""
    from pathlib import Path

    from prefkit.reward.data import pairs_from_table
    from prefkit.reward.train import fit_features, usable
    from prefkit.select.criteria import DEFAULT_BY, parse_by
    from prefkit.select.train import DEFAULT_BAND, select_train, selected_table

    w = weights or parse_by(DEFAULT_BY["train"], "train")
    k = int(round(share * train.num_rows))
    sel = select_train(
        train, k, w, seed=seed, cache_dir=None if cache_dir is None else Path(cache_dir),
        band=DEFAULT_BAND if band is None else band,
    )  # fmt: skip
    rng = np.random.default_rng([seed, 3])
    rands = [rng.choice(train.num_rows, size=k, replace=False) for _ in range(random_draws)]
    p, xa, xb, ta, tb, truth = feature_split(train, test)
    ok = truth != 0.5

    def acc(rows: I64, sub: Any = None) -> float:
        sub = p.take(rows) if sub is None else sub
        u = usable(sub)
        ff = fit_features(sub.take(u), seed=seed, features=(xa[rows][u], xb[rows][u]))
        m = ff.model
        s = ((ta - m.mean) / m.std - (tb - m.mean) / m.std) @ m.beta
        return float(np.mean((s[ok] > 0) == (truth[ok] > 0.5)))

    return {
        "seed": seed,
        "rows": train.num_rows,
        "kept": k,
        "test_pairs": int(ok.sum()),
        # with the `pairs` criterion the kept rows carry their pair's merged label
        "selected": acc(sel.rows, pairs_from_table(selected_table(train, sel))),
        "random": float(np.mean(each := [acc(np.sort(r.astype(np.int64))) for r in rands])),
        "random_each": each,
        "all": acc(np.arange(train.num_rows, dtype=np.int64)),
        "audit_dropped": sel.summary["criteria"].get("audit", {}).get("dropped_rows"),
        "distinct_pairs": {"selected": _distinct(train, sel.rows),
                           "random": float(np.mean([_distinct(train, r) for r in rands]))},
    }  # fmt: skip


def _distinct(table: pa.Table, rows: I64) -> int:
    """Distinct pairs (`prefkit.build.pairs.vote_groups`) among `rows`."""
    from prefkit.build.pairs import vote_groups

    g, _, _ = vote_groups(table)
    return len(set(g[np.asarray(rows, dtype=np.int64)].tolist()))
