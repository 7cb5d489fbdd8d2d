"""The selection experiments of benchmarks/bench_select.py at a small size (known truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prefkit.schema import Kind
from prefkit.simulate import simulate


def _neighbour_misorder(theta: np.ndarray, cov: np.ndarray) -> float:
    """Summed posterior chance that the fit orders two neighbours (in the true order) wrongly,
    Phi(-|theta_a - theta_b| / sd_ab), computed directly."""
    from scipy.stats import norm

    o = np.argsort(-theta)
    a, b = o[:-1], o[1:]
    sd = np.sqrt(cov[a, a] + cov[b, b] - 2 * cov[a, b])
    return float(norm.cdf(-np.abs(theta[a] - theta[b]) / sd).sum())


def test_planned_batch_resolves_neighbours_better_than_uniform() -> None:
    """After 100 uniform battles among 12 models, 60 more planned by `plan_battles` (Thompson
    sampling of the ranking) leave a smaller chance of misordering neighbours than each of 20
    uniform batches of 60, and they go to closer pairs than uniform ones do."""
    from prefkit.select.active import fisher, plan_battles, uniform_plan

    rng = np.random.default_rng(0)
    k = 12
    theta = np.linspace(-1.2, 1.2, k)
    ia, ib = uniform_plan(k, 100, rng)
    h = fisher(theta, ia, ib, 1.0)
    ca, cb = np.triu_indices(k, 1)
    plan = plan_battles(theta, h, 60, ca.astype(np.int64), cb.astype(np.int64), rng)
    cov = np.linalg.inv(fisher(theta, np.r_[ia, plan.a], np.r_[ib, plan.b], 1.0))
    planned = _neighbour_misorder(theta, cov)
    uniform = []
    for _ in range(20):
        ua, ub = uniform_plan(k, 60, rng)
        uniform.append(
            _neighbour_misorder(
                theta, np.linalg.inv(fisher(theta, np.r_[ia, ua], np.r_[ib, ub], 1.0))
            )
        )
    assert planned < min(uniform)
    gap = np.abs(theta[plan.a] - theta[plan.b]).mean()
    assert gap < 0.6 * np.abs(theta[ca] - theta[cb]).mean()


@pytest.mark.slow
def test_arena_active_and_uniform_reach_the_target() -> None:
    from prefkit.select.evaluate import arena_votes_to_target

    for policy in ("uniform", "active"):
        r = arena_votes_to_target(0, policy, target=0.9, batch=20, size=6000)
        assert r["reached"] and r["spearman"] >= 0.9 and r["votes"] <= 2000


def test_fixed_allocation_votes_only_where_its_weights_are() -> None:
    """Policy `fixed` draws battles from the given allocation over model pairs: with all the
    weight on the first pair only two models are ever compared, so the other 14 keep the
    same (average) strength and Spearman with the true order stays far below 0.9; without
    weights it refuses."""
    from prefkit.select.evaluate import arena_votes_to_target

    k = 16
    w = np.zeros(k * (k - 1) // 2)
    w[0] = 1.0
    r = arena_votes_to_target(0, "fixed", batch=20, size=3000, run_to=100, pair_weights=w)
    assert not r["reached"] and max(r["curve"]) < 0.5
    with pytest.raises(ValueError, match="pair_weights"):
        arena_votes_to_target(0, "fixed", batch=20, size=3000, run_to=40)


def test_balanced_plan_spreads_votes_evenly_over_model_pairs() -> None:
    """The `balanced` arena policy: after any number of votes the counts per model pair
    differ by at most one (uniform draws of 240 votes over 120 pairs leave some pairs with
    none and others with 5 or more), and the run reaches the target like the others."""
    from prefkit.select.evaluate import arena_votes_to_target, balanced_plan

    rng = np.random.default_rng(0)
    votes = np.zeros(120, dtype=np.int64)
    for n in (7, 113, 120):
        balanced_plan(votes, n, rng)
        assert votes.max() - votes.min() <= 1 and votes.sum() in (7, 120, 240)
    drawn = np.bincount(rng.integers(0, 120, size=240), minlength=120)
    assert drawn.max() - drawn.min() >= 4
    r = arena_votes_to_target(0, "balanced", target=0.9, batch=20, size=6000)
    assert r["reached"] and r["spearman"] >= 0.9


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


def test_head_info_plan_adds_more_information_than_random_batches() -> None:
    """For a linear BT head, the greedy batch raises log det of the Fisher information more
    than each of 20 random batches of the same size (computed directly)."""
    from prefkit.select.active import _sig, head_info_plan

    rng = np.random.default_rng(1)
    k = 6
    beta = rng.normal(size=k)
    d_lab = rng.normal(size=(40, k))
    d_cand = rng.normal(size=(400, k)) * rng.uniform(0.2, 2.0, size=(400, 1))

    def logdet(rows: np.ndarray) -> float:
        x = np.vstack([d_lab, d_cand[rows]])
        p = _sig(x @ beta)
        h = (x * (p * (1 - p))[:, None]).T @ x + (1e-2 * d_lab.shape[0] + 1e-6) * np.eye(k)
        return float(np.linalg.slogdet(h)[1])

    pick, gains = head_info_plan(d_lab, beta, d_cand, 30)
    assert len(set(pick.tolist())) == 30 and np.all(np.diff(gains) <= 1e-12)
    planned = logdet(pick)
    assert all(planned > logdet(rng.choice(400, 30, replace=False)) for _ in range(20))


def test_annotate_text_pairs_uses_a_reward_model_of_the_votes(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    import pyarrow.parquet as pq

    t = simulate("noisy", size=600, seed=4).tables[Kind.COMPARISONS]
    votes, cand = t.slice(0, 400), t.slice(400, 200)
    pq.write_table(votes, tmp_path / "votes.parquet")
    pq.write_table(cand, tmp_path / "cand.parquet")
    out = tmp_path / "next.jsonl"
    r = subprocess.run(
        [sys.executable, "-m", "prefkit.cli", "select", str(tmp_path / "cand.parquet"), str(out),
         "--budget", "20", "--for", "annotate", "--by", "uncertainty",
         "--votes", str(tmp_path / "votes.parquet")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 20 and len({x["id"] for x in rows}) == 20
    s = json.loads(Path(str(out) + ".select.json").read_text())
    assert (
        "information about a feature reward model fitted on"
        in s["criteria"]["uncertainty"]["basis"]
    )
