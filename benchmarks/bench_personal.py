"""Personalised feature reward model on the simulator (issue 23): `rm train --personalize
group` vs the pooled model, and `rm adapt` for new users.

Per scenario (`pluralistic3`, `pluralistic`) and seed: a few annotators per group are held out
entirely (the new users); the rest are split by prompt 80/20. On the held-out prompts: each
true group's accuracy (decisive votes) under the pooled head and under its personalised head,
95% percentile-bootstrap intervals (rows resampled within each group, the same draws for both
models), and the worst-group margin (worst personalised minus worst pooled group accuracy) with
its interval (and the mean margin over seeds, its interval from the seeds' bootstrap draws
averaged). New users: a quarter of their votes is their test set; from the rest, the first
5/10/20/50 votes fit their offset (`prefkit.reward.personal.adapt_card`'s fit, the prior of the
trained model); the reference is a feature RM trained on all of that user's other votes alone
(5-fold CV of its L2 strength, as `rm train`), and the offset fitted from all of them. Prints
one JSON line per scenario and seed, then a summary line per scenario.

    python -m benchmarks.bench_personal [--annotators 36] [--votes-per-annotator 200]
        [--holdout-per-group 2] [--seeds 3] [--bootstrap 1000]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.bench_pluralistic import ensure_group_members, with_true_group
from prefkit.reward.data import Pairs, pairs_from_table
from prefkit.reward.evaluate import decisive_correct
from prefkit.reward.models import FeatureModel
from prefkit.reward.personal import fit_offset, fit_personal
from prefkit.reward.train import fit_features, split_by_prompt, usable
from prefkit.simulate import simulate

F64 = np.ndarray[Any, np.dtype[np.float64]]
SIZES = (5, 10, 20, 50)


def _pairs(t: pa.Table) -> tuple[Pairs, list[str]]:
    p = pairs_from_table(t)
    u = usable(p)
    labels = [str(dict(m)["group"]) for m in t.column("meta").to_pylist()]
    return p.take(u), [labels[i] for i in u.tolist()]


def _correct(fm: FeatureModel, beta: F64, p: Pairs) -> F64:
    """1/0 (½ for a zero difference) per decisive row of `p` under the head `beta`."""
    d = fm.design(p.prompts, p.a) - fm.design(p.prompts, p.b)
    c, mask = decisive_correct(d @ beta, p.outcome)
    return np.asarray(c[mask], dtype=np.float64)


def _ci(x: F64) -> list[float]:
    return [float(np.quantile(x, 0.025)), float(np.quantile(x, 0.975))]


def groups_vs_pooled(
    fm: FeatureModel, offsets: dict[str, F64], test: Pairs, labels: list[str], b: int, seed: int
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    rows: dict[str, Any] = {}
    boot_pool, boot_pers = [], []
    for g, off in offsets.items():
        idx = np.array([i for i, lab in enumerate(labels) if lab == g], dtype=np.int64)
        sub = test.take(idx)
        cp, cq = _correct(fm, fm.beta, sub), _correct(fm, fm.beta + off, sub)
        draws = rng.integers(0, len(cp), size=(b, len(cp)))
        bp, bq = cp[draws].mean(axis=1), cq[draws].mean(axis=1)
        boot_pool.append(bp)
        boot_pers.append(bq)
        rows[g] = {
            "n": len(cp), "pooled": float(cp.mean()), "pooled_ci": _ci(bp),
            "personal": float(cq.mean()), "personal_ci": _ci(bq),
            "gain": float(cq.mean() - cp.mean()), "gain_ci": _ci(bq - bp),
        }  # fmt: skip
    worst_pool = min(r["pooled"] for r in rows.values())
    worst_pers = min(r["personal"] for r in rows.values())
    worst_bp, worst_bq = np.min(np.vstack(boot_pool), axis=0), np.min(np.vstack(boot_pers), axis=0)
    margin = worst_bq - worst_bp
    return {
        "_margin_draws": margin,
        "worst_pooled_ci": _ci(worst_bp),
        "worst_personal_ci": _ci(worst_bq),
        "groups": rows,
        "worst_pooled": worst_pool,
        "worst_pooled_group": min(rows, key=lambda g: rows[g]["pooled"]),
        "worst_personal": worst_pers,
        "worst_personal_group": min(rows, key=lambda g: rows[g]["personal"]),
        "worst_group_margin": worst_pers - worst_pool,
        "worst_group_margin_ci": _ci(margin),
    }


def adapt_curve(fm: FeatureModel, tau: float, user: Pairs, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(user))
    n_test = len(user) // 4
    test, pool = user.take(order[:n_test]), user.take(order[n_test:])
    dp = fm.design(pool.prompts, pool.a) - fm.design(pool.prompts, pool.b)
    out: dict[str, Any] = {"test_n": len(_correct(fm, fm.beta, test)), "train_n": len(pool)}
    out["pooled"] = float(_correct(fm, fm.beta, test).mean())
    for n in SIZES:
        if n <= len(pool):
            off = fit_offset(dp[:n], pool.y[:n], pool.weight[:n], fm.beta, tau)
            out[f"adapt_{n}"] = float(_correct(fm, fm.beta + off, test).mean())
    off = fit_offset(dp, pool.y, pool.weight, fm.beta, tau)
    out["adapt_all"] = float(_correct(fm, fm.beta + off, test).mean())
    own = fit_features(pool, None, seed=seed).model  # the user's votes alone, CV'd L2
    out["own_model"] = float(_correct(own, own.beta, test).mean())
    return out


def run(scen: str, seed: int, a: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    size = a.annotators * a.votes_per_annotator
    sim = ensure_group_members(simulate(scen, size=size, seed=seed, annotators=a.annotators))
    table = with_true_group(sim)
    rng = np.random.default_rng(seed)
    held = [
        str(x)
        for g, m in sorted(sim.truth["group_members"].items())
        for x in rng.choice(sorted(m), size=min(a.holdout_per_group, len(m) - 1), replace=False)
    ]
    is_held = pc.is_in(table.column("annotator"), pa.array(held))
    train_t, test_t = split_by_prompt(table.filter(pc.invert(is_held)), 0.2, seed)
    tr, tr_lab = _pairs(train_t)
    te, te_lab = _pairs(test_t)
    ff = fit_features(tr, None, seed=seed)
    pf = fit_personal(ff.model, tr, tr_lab, ff.lam, seed)
    res: dict[str, Any] = {"scenario": scen, "seed": seed, "votes": size,
                           "train_rows": len(tr), "test_rows": len(te), "tau": pf.tau,
                           "group_train_rows": pf.rows}  # fmt: skip
    res |= groups_vs_pooled(ff.model, pf.offsets, te, te_lab, a.bootstrap, seed)
    users = {}
    held_t = table.filter(is_held)
    for u in held:
        up, ul = _pairs(held_t.filter(pc.equal(held_t.column("annotator"), u)))
        users[u] = {"group": ul[0], **adapt_curve(ff.model, pf.tau, up, seed)}
    res["new_users"] = users
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def summarize(scen: str, runs: list[dict[str, Any]], b: int) -> dict[str, Any]:
    users = [u for r in runs for u in r["new_users"].values()]
    own = np.array([u["own_model"] for u in users])
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(users), size=(b, len(users)))
    curve: dict[str, Any] = {}
    for key in [f"adapt_{n}" for n in SIZES] + ["adapt_all", "pooled"]:
        acc = np.array([u.get(key, np.nan) for u in users])
        ok = np.isfinite(acc)
        if not ok.any():
            continue
        ratio = acc[ok].mean() / own[ok].mean()
        boot = np.nanmean(acc[draws], axis=1) / own[draws].mean(axis=1)
        curve[key] = {"accuracy": float(acc[ok].mean()), "ratio_to_own_model": float(ratio),
                      "ratio_ci": _ci(boot), "users": int(ok.sum())}  # fmt: skip
    margins = [r["worst_group_margin"] for r in runs]
    mean_draws = np.mean(np.vstack([r["_margin_draws"] for r in runs]), axis=0)
    return {
        "worst_group_margin_mean": float(np.mean(margins)),
        "worst_group_margin_mean_ci": _ci(mean_draws),
        "worst_group_intervals_disjoint_in": sum(
            r["worst_personal_ci"][0] > r["worst_pooled_ci"][1] for r in runs
        ),
        "scenario": scen, "seeds": len(runs), "new_users": len(users),
        "own_model_accuracy": float(own.mean()),
        "worst_group_margin_per_seed": margins,
        "worst_group_margin_ci_per_seed": [r["worst_group_margin_ci"] for r in runs],
        "margin_outside_interval_in": sum(r["worst_group_margin_ci"][0] > 0 for r in runs),
        "adaptation": curve,
        "target_20_votes_ratio_ge_0.9": bool(curve.get("adapt_20", {}).get(
            "ratio_to_own_model", 0) >= 0.9),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--annotators", type=int, default=36)
    ap.add_argument("--votes-per-annotator", type=int, default=200)
    ap.add_argument("--holdout-per-group", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--scenarios", nargs="+", default=["pluralistic3", "pluralistic"])
    a = ap.parse_args()
    for scen in a.scenarios:
        runs = []
        for seed in range(a.seeds):
            r = run(scen, seed, a)
            runs.append(r)
            print(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}), flush=True)
        print(json.dumps(summarize(scen, runs, a.bootstrap)), flush=True)


if __name__ == "__main__":
    main()
