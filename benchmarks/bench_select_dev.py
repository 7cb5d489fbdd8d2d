"""Where a training selection's gain can come from (issue 24), on development seeds (never the
reported seeds 0–4 of `bench_select --only train`): the simulator's `noisy` scenario (3 votes
per pair), a prompt-grouped 80/20 split per seed, the feature reward model of
`prefkit.reward.train.fit_features`, held-out accuracy against the latent quality; a budget of
25% of the training rows.

- `strategies`: ways to spend the budget, each against a random 25% of the rows (the mean of
  `--draws` draws, as in `bench_select`): one random row per pair (distinct pairs, the row's own
  vote); distinct pairs labelled by the mean of their votes (soft), by the majority (hard),
  the majority weighted by agreement, the mean weighted by the number of votes; and among the
  merged pairs: greedy D-optimal design of the standardised feature differences (the
  information a pair adds about a linear head, Sherman–Morrison), D-optimal weighted towards
  unanimous pairs, greedy k-center in feature-difference space, the pairs with most votes, the
  largest feature differences; and every merged pair, and all rows.
- `configs`: `prefkit.select.evaluate.train_subset_accuracy` (what `bench_select --only train`
  runs) with other `--by` criteria sets, paired difference selected − random.
- `arena`: votes to Spearman 0.9 on the `arena` scenario (`arena_votes_to_target`, batch 10,
  to 600 votes) for the assignment arms `--arms` (uniform, active = the `interval` default,
  balanced = the least-voted model pair next), on seeds 20 and above (`bench_select --only
  arena` reports seeds 0–19): first crossing, sustained crossing, Spearman at 200 and 300.

    python -m benchmarks.bench_select_dev [--only strategies,configs,arena] [--seeds 10-19]
        [--data noisy|pandalm] [--configs "audit,pairs;pairs,agreement"] [--draws 5]
        [--arms uniform,balanced,active]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_select import PANDALM, _emit, _t_interval


def _seeds(spec: str) -> list[int]:
    lo, _, hi = spec.partition("-")
    return list(range(int(lo), int(hi) + 1)) if hi else [int(x) for x in spec.split(",")]


def _summary(part: str, rows: list[dict[str, Any]], keys: list[str]) -> None:
    out: dict[str, Any] = {"bench": f"{part}_summary", "seeds": [r["seed"] for r in rows]}
    for k in keys:
        d = [r[k] - r["random"] for r in rows]
        out[k] = {"mean": float(np.mean([r[k] for r in rows])),
                  "minus_random": {"mean": float(np.mean(d)), "ci95": _t_interval(d),
                                   "sd": float(np.std(d, ddof=1))}}  # fmt: skip
    out["random"] = {"mean": float(np.mean([r["random"] for r in rows]))}
    _emit(out)


def _d_optimal(d: np.ndarray, k: int, w: np.ndarray | None = None, lam: float = 1e-3) -> np.ndarray:
    """Greedy maximiser of log det(lam I + sum_S w_i d_i d_i^T) (rank-one updates)."""
    n, f = d.shape
    w = np.ones(n) if w is None else w
    cov = np.eye(f) / lam
    q = np.einsum("ij,jk,ik->i", d, cov, d)
    free = np.ones(n, dtype=bool)
    out: list[int] = []
    for _ in range(k):
        g = np.where(free, w * q / (1 + w * q), -np.inf)
        j = int(np.argmax(g))
        out.append(j)
        free[j] = False
        cx = cov @ d[j]
        den = 1 + w[j] * float(d[j] @ cx)
        q = q - w[j] * (d @ cx) ** 2 / den
        cov = cov - np.outer(cx, cx) * (w[j] / den)
    return np.array(out, dtype=np.int64)


def _k_center(d: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    first = int(rng.integers(len(d)))
    out = [first]
    dist = np.linalg.norm(d - d[first], axis=1)
    for _ in range(k - 1):
        j = int(np.argmax(dist))
        out.append(j)
        dist = np.minimum(dist, np.linalg.norm(d - d[j], axis=1))
    return np.array(out, dtype=np.int64)


def bench_strategies(seeds: list[int], size: int, draws: int) -> None:
    from prefkit.build.pairs import vote_groups
    from prefkit.reward.train import fit_features, split_by_prompt, usable
    from prefkit.select.evaluate import feature_split
    from prefkit.simulate import simulate

    rows = []
    for s in seeds:
        t0 = time.perf_counter()
        sim = simulate("noisy", size=size, seed=s)
        train, test = split_by_prompt(sim.tables[next(iter(sim.tables))], val=0.2, seed=s)
        p, xa, xb, ta, tb, truth = feature_split(train, test)
        ok = truth != 0.5
        gidx, flip, groups = vote_groups(train)

        def acc(idx: np.ndarray, y: Any = None, w: Any = None, s: int = s, p: Any = p,
                xa: Any = xa, xb: Any = xb, ta: Any = ta, tb: Any = tb, truth: Any = truth,
                ok: Any = ok) -> float:  # fmt: skip
            idx = np.asarray(idx, dtype=np.int64)
            sub = p.take(idx)
            if y is not None:
                sub = dataclasses.replace(sub, y=np.asarray(y, dtype=np.float64))
            if w is not None:
                sub = dataclasses.replace(sub, weight=np.asarray(w, dtype=np.float64))
            u = usable(sub)
            m = fit_features(sub.take(u), seed=s, features=(xa[idx][u], xb[idx][u])).model
            sc = ((ta - m.mean) / m.std - (tb - m.mean) / m.std) @ m.beta
            return float(np.mean((sc[ok] > 0) == (truth[ok] > 0.5)))

        n = train.num_rows
        k = round(0.25 * n)
        # each pair's votes merged: the mean soft label in its first usable row's orientation
        use = np.array([o != "both_bad" for o in p.outcome])
        yg = np.where(flip, 1 - p.y, p.y)
        ng = len(groups)
        tot, cnt = np.zeros(ng), np.zeros(ng)
        np.add.at(tot, gidx[use], yg[use])
        np.add.at(cnt, gidx[use], 1)
        first = np.full(ng, -1)
        for i in range(n - 1, -1, -1):
            if use[i]:
                first[gidx[i]] = i
        has = cnt > 0
        rep = first[has]
        mean = (tot / np.maximum(cnt, 1))[has]
        ysoft = np.where(flip[rep], 1 - mean, mean)
        yhard = np.where(ysoft > 0.5, 1.0, np.where(ysoft < 0.5, 0.0, 0.5))
        c = cnt[has]
        rng = np.random.default_rng([s, 3])
        r: dict[str, Any] = {"seed": s, "rows": n, "kept": k, "pairs": int(rep.size)}
        r["random"] = float(np.mean([acc(np.sort(rng.choice(n, k, replace=False)))
                                     for _ in range(draws)]))  # fmt: skip
        r["random_rows_distinct_pairs"] = float(np.mean(
            [len(set(gidx[rng.choice(n, k, replace=False)].tolist())) for _ in range(draws)]))  # fmt: skip
        one = []
        for _ in range(draws):
            perm = rng.permutation(n)
            pick: dict[int, int] = {}
            for i in perm.tolist():
                pick.setdefault(int(gidx[i]), i)
            one.append(acc(np.sort(rng.choice(np.array(list(pick.values())), k, replace=False))))
        r["distinct_own_vote"] = float(np.mean(one))
        sels = [rng.choice(rep.size, k, replace=False) for _ in range(draws)]
        r["merged_mean"] = float(np.mean([acc(rep[x], ysoft[x]) for x in sels]))
        r["merged_majority"] = float(np.mean([acc(rep[x], yhard[x]) for x in sels]))
        r["merged_majority_w_agreement"] = float(np.mean(
            [acc(rep[x], yhard[x], np.abs(2 * ysoft[x] - 1) + 0.1) for x in sels]))  # fmt: skip
        r["merged_mean_w_votes"] = float(np.mean([acc(rep[x], ysoft[x], c[x]) for x in sels]))
        both = np.vstack([xa, xb])
        mu, sd = both.mean(axis=0), both.std(axis=0)
        sd = np.where(sd > 1e-9, sd, 1.0)
        d = (xa[rep] - mu) / sd - (xb[rep] - mu) / sd
        x = _d_optimal(d, k)
        r["d_optimal"] = acc(rep[x], ysoft[x])
        x = _d_optimal(d, k, w=0.25 + np.abs(2 * ysoft - 1))
        r["d_optimal_agreement"] = acc(rep[x], ysoft[x])
        x = _k_center(d, k, rng)
        r["k_center"] = acc(rep[x], ysoft[x])
        x = np.lexsort((rng.random(rep.size), -c))[:k]
        r["most_votes"] = acc(rep[x], ysoft[x])
        x = np.argsort(-np.linalg.norm(d, axis=1))[:k]
        r["largest_difference"] = acc(rep[x], ysoft[x])
        r["every_merged_pair"] = acc(rep, ysoft)
        r["all"] = acc(np.arange(n))
        r["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(r)
        _emit({"bench": "strategies"} | r)
    keys = [k for k in rows[0] if isinstance(rows[0][k], float) and k not in
            ("random", "seconds", "random_rows_distinct_pairs")]  # fmt: skip
    _summary("strategies", rows, keys)


def bench_configs(seeds: list[int], data: str, size: int, configs: list[str], draws: int,
                  cache: str) -> None:  # fmt: skip
    import prefkit
    import prefkit.audit.run as audit_run
    from prefkit.reward.train import split_by_prompt
    from prefkit.select.criteria import parse_by
    from prefkit.select.evaluate import train_subset_accuracy
    from prefkit.simulate import simulate

    # one audit per split, shared by the criteria sets (the audit does not depend on them)
    orig = audit_run.run_audit
    memo: dict[tuple[int, str], Any] = {}

    def run_audit(table: Any, *a: Any, **kw: Any) -> Any:
        key = (id(table), repr((a, sorted(kw.items()))))
        if key not in memo:
            memo[key] = orig(table, *a, **kw)
        return memo[key]

    audit_run.run_audit = run_audit  # type: ignore[assignment]
    per: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    try:
        for s in seeds:
            memo.clear()
            if data == "noisy":
                sim = simulate("noisy", size=size, seed=s)
                table = sim.tables[next(iter(sim.tables))]
            else:
                table = prefkit.read(PANDALM).table
            train, test = split_by_prompt(table, val=0.2, seed=s)
            for c in configs:
                r = train_subset_accuracy(train, test, 0.25, s, weights=parse_by(c, "train"),
                                          cache_dir=cache, random_draws=draws)  # fmt: skip
                r = {k: v for k, v in r.items() if k != "random_each"}
                per[c].append(r)
                _emit({"bench": "configs", "data": data, "by": c} | r)
    finally:
        audit_run.run_audit = orig
    for c, rows in per.items():
        d = [r["selected"] - r["random"] for r in rows]
        a = [r["all"] - r["random"] for r in rows]
        _emit({"bench": "configs_summary", "data": data, "by": c, "seeds": seeds,
               "selected": float(np.mean([r["selected"] for r in rows])),
               "random": float(np.mean([r["random"] for r in rows])),
               "all": float(np.mean([r["all"] for r in rows])),
               "selected_minus_random": {"mean": float(np.mean(d)), "ci95": _t_interval(d),
                                         "sd": float(np.std(d, ddof=1))},
               "all_minus_random": {"mean": float(np.mean(a)), "ci95": _t_interval(a)}})  # fmt: skip


def bench_arena(seeds: list[int], arms: list[str]) -> None:
    from prefkit.select.evaluate import arena_votes_to_target

    res: dict[str, dict[str, list[float]]] = {a: {"first": [], "sustained": []} for a in arms}
    for s in seeds:
        for arm in arms:
            r = arena_votes_to_target(s, arm, target=0.9, batch=10, run_to=600)
            c = r.pop("curve")
            first = float(r["votes"] if r["reached"] else 610)
            sus = float(610 if r["sustained_votes"] is None else r["sustained_votes"])
            res[arm]["first"].append(first)
            res[arm]["sustained"].append(sus)
            _emit({"bench": "arena", "seed": s, "arm": arm, "first": first, "sustained": sus,
                   "spearman_200": c[19], "spearman_300": c[29]})  # fmt: skip
    out: dict[str, Any] = {"bench": "arena_summary", "seeds": seeds, "not_reached_counts_as": 610}
    for arm in arms:
        out[arm] = {k: float(np.mean(v)) for k, v in res[arm].items()}
        if arm != "uniform" and "uniform" in res:
            out[arm] |= {f"ratio_uniform_over_{arm}_{k}":
                         float(np.mean(res["uniform"][k]) / np.mean(res[arm][k]))
                         for k in ("first", "sustained")}  # fmt: skip
    _emit(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="strategies,configs")  # arena: with --seeds 20 or above
    ap.add_argument("--seeds", default="10-19")
    ap.add_argument("--data", default="noisy", choices=("noisy", "pandalm"))
    ap.add_argument("--sim-size", type=int, default=6000)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--configs", default="audit,margin,agreement,diversity,balance;"
                    "audit,pairs,margin,agreement,diversity,balance;audit,pairs;pairs,agreement")  # fmt: skip
    ap.add_argument("--arms", default="uniform,balanced,active")
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "prefkit-select-cache"))
    a = ap.parse_args()
    seeds = _seeds(a.seeds)
    if set(seeds) & set(range(5)):
        raise SystemExit("seeds 0-4 are the reported seeds of bench_select; develop on others")
    only = set(a.only.split(","))
    if "strategies" in only:
        bench_strategies(seeds, a.sim_size, a.draws)
    if "configs" in only:
        bench_configs(seeds, a.data, a.sim_size, a.configs.split(";"), a.draws, a.cache)
    if "arena" in only:
        if min(seeds) < 20:
            raise SystemExit("bench_select --only arena reports seeds 0-19; develop on 20+")
        bench_arena(seeds, a.arms.split(","))


if __name__ == "__main__":
    main()
