"""The selection experiments of benchmarks/bench_select.py at a small size (known truth)."""

from __future__ import annotations

import numpy as np
import pytest

from prefkit.schema import Kind
from prefkit.simulate import simulate


def _objective(theta: np.ndarray, cov: np.ndarray) -> float:
    """Misorder-weighted sum of the standard errors of all differences (what `interval`
    lowers), computed directly."""
    from scipy.stats import norm

    from prefkit.select.active import OMEGA_FLOOR

    ta, tb = np.triu_indices(theta.size, 1)
    sd = np.sqrt(cov[ta, ta] + cov[tb, tb] - 2 * cov[ta, tb])
    x = np.abs(theta[ta] - theta[tb]) / sd
    return float((norm.pdf(x) * (x + OMEGA_FLOOR) / sd * sd).sum())


def test_planned_batch_lowers_interval_width_more_than_uniform() -> None:
    """After 100 uniform battles among 12 models, 60 more planned by `plan_battles` leave
    smaller misorder-weighted standard errors than 60 more drawn uniformly (20 draws)."""
    from prefkit.select.active import fisher, plan_battles, uniform_plan

    rng = np.random.default_rng(0)
    k = 12
    theta = np.linspace(-1.2, 1.2, k)
    ia, ib = uniform_plan(k, 100, rng)
    h = fisher(theta, ia, ib)
    ca, cb = np.triu_indices(k, 1)
    plan = plan_battles(theta, h, 60, ca.astype(np.int64), cb.astype(np.int64), rng)
    planned = _objective(theta, np.linalg.inv(fisher(theta, np.r_[ia, plan.a], np.r_[ib, plan.b])))
    uniform = []
    for _ in range(20):
        ua, ub = uniform_plan(k, 60, rng)
        uniform.append(
            _objective(theta, np.linalg.inv(fisher(theta, np.r_[ia, ua], np.r_[ib, ub])))
        )
    assert planned < min(uniform)


@pytest.mark.slow
def test_arena_active_and_uniform_reach_the_target() -> None:
    from prefkit.select.evaluate import arena_votes_to_target

    for policy in ("uniform", "active"):
        r = arena_votes_to_target(0, policy, target=0.9, batch=20, size=6000)
        assert r["reached"] and r["spearman"] >= 0.9 and r["votes"] <= 2000


@pytest.mark.slow
def test_selected_quarter_has_cleaner_labels_than_a_random_quarter_on_noisy() -> None:
    """Simulator `noisy` (flipped labels, spammers): the 25% `select` keeps (audit, margin,
    agreement) agrees with the latent truth far more often than a random 25% and than all
    rows; the reward model trained on it is at least as accurate as one trained on a random
    quarter within the noise of one small split (the 5-seed comparison is benchmarked)."""
    from prefkit.reward.train import split_by_prompt
    from prefkit.select.evaluate import train_subset_accuracy
    from prefkit.select.train import select_train

    t = simulate("noisy", size=3000, seed=1).tables[Kind.COMPARISONS]
    w = {"audit": 1.0, "margin": 1.0, "agreement": 1.0}
    k = t.num_rows // 4
    sel = select_train(t, k, w, seed=0)
    meta = [dict(m) for m in t.column("meta").to_pylist()]
    out = t.column("outcome").to_pylist()
    right = np.array([
        (float(m["quality_a"]) > float(m["quality_b"])) == (o == "a") if o in ("a", "b") else np.nan
        for m, o in zip(meta, out, strict=True)
    ])  # fmt: skip
    rand = np.random.default_rng(0).choice(t.num_rows, k, replace=False)
    kept = float(np.nanmean(right[sel.rows]))
    assert kept > float(np.nanmean(right[rand])) + 0.1
    assert kept > float(np.nanmean(right)) + 0.1
    train, test = split_by_prompt(t, val=0.25, seed=1)
    r = train_subset_accuracy(train, test, 0.25, 1, w)
    assert r["kept"] == round(0.25 * train.num_rows) and r["test_pairs"] > 300
    assert r["selected"] > r["random"] - 0.05


@pytest.mark.slow
def test_label_curve_learns_from_both_policies() -> None:
    from prefkit.reward.train import split_by_prompt
    from prefkit.select.evaluate import _truth_of, feature_diffs, rm_label_curve

    t = simulate("noisy", size=1500, seed=2).tables[Kind.COMPARISONS]
    train, test = split_by_prompt(t, val=0.25, seed=2)
    d, y, _ = feature_diffs(train)
    dt, _, _ = feature_diffs(test)
    truth = _truth_of(test)
    for policy in ("active", "random"):
        c = rm_label_curve(d, y, dt, truth, 0, policy, start=20, batch=40, steps=4)
        assert [p["labels"] for p in c] == [20, 60, 100, 140, 180]
        assert c[-1]["accuracy"] > 0.6
