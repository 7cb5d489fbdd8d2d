"""Recovery of known truth: the simulator's arena scenario and a style-controlled world."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import spearmanr

from prefkit.rank import bt, ci
from prefkit.rank.data import aggregate, battles, battles_from_table
from prefkit.rank.run import RankOptions, rank_table
from prefkit.rank.style import style_coefficients, style_features, style_problem
from prefkit.schema import Kind
from prefkit.simulate import simulate


@pytest.fixture(scope="module")
def arena() -> tuple[pa.Table, dict[str, float]]:
    sim = simulate("arena", size=8000, seed=7)
    return sim.tables[Kind.COMPARISONS], sim.truth["model_strength"]


@pytest.mark.parametrize("model", ["bt", "davidson", "rao-kupper"])
def test_arena_true_order_recovered(arena: tuple[pa.Table, dict[str, float]], model: str) -> None:
    table, truth = arena
    res = rank_table(table, RankOptions(model=model, ci="sandwich"))  # type: ignore[arg-type]
    score = {r["item"]: r["score"] for r in res.summary["leaderboard"]}
    models = sorted(truth)
    assert set(score) == set(models)
    rho = spearmanr([score[m] for m in models], [truth[m] for m in models]).statistic
    assert rho >= 0.95


def test_style_control_recovers_a_known_length_effect() -> None:
    """Votes follow theta_a - theta_b + gamma * z_length; the better models write *shorter*
    answers, so the raw leaderboard is distorted and the controlled one is not."""
    rng = np.random.default_rng(4)
    k, n, gamma = 8, 20000, 0.8
    theta = np.linspace(-1.0, 1.0, k)
    mean_len = np.linspace(900, 150, k)  # strong models are terse
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    la = rng.poisson(mean_len[a]) + 1
    lb = rng.poisson(mean_len[b]) + 1
    ta = ["x" * int(v) for v in la]
    tb = ["x" * int(v) for v in lb]
    z = style_features(ta, tb)
    eta = theta[a] - theta[b] + gamma * z[:, 0]
    out = np.where(rng.random(n) < 1 / (1 + np.exp(-eta)), "a", "b")
    names = np.array([f"m{q}" for q in range(k)], dtype=object)
    bb = battles(names[a], names[b], out)
    p = style_problem(bb, z, bt.RankConfig())
    f = bt.fit_problem(p)
    iv = ci.normal_intervals(p, f, "sandwich")
    coef = style_coefficients(p, f.gamma)
    assert abs(coef["length"] - gamma) < 0.1
    assert coef["headers"] == coef["lists"] == coef["bold"] == 0.0  # no markdown: not fitted
    assert any("not used: headers, lists, bold" in note for note in p.notes)
    assert ((iv.low <= theta - theta.mean()) & (theta - theta.mean() <= iv.high)).mean() >= 0.75
    raw = bt.fit(aggregate(bb))
    err_raw = np.abs(raw.theta - (theta - theta.mean())).max()
    err_ctl = np.abs(f.theta - (theta - theta.mean())).max()
    assert err_ctl < 0.1 < err_raw


def test_style_control_leaderboards_in_summary(arena: tuple[pa.Table, dict[str, float]]) -> None:
    table, truth = arena
    res = rank_table(table, RankOptions(ci="sandwich", style_control=True))
    s = res.summary
    assert set(s["style_coefficients"]) == {"length", "headers", "lists", "bold"}
    assert {r["item"] for r in s["leaderboard"]} == {r["item"] for r in s["leaderboard_raw"]}
    assert s["leaderboard"] != s["leaderboard_raw"]


@pytest.mark.slow
def test_interval_coverage_over_200_arena_datasets() -> None:
    """95% sandwich and bootstrap intervals cover the simulator's true BT strengths
    (`model_bt_strength`, decisive votes) at 93-97% over 200 arena datasets of 1500
    battles (16 models each: 3200 intervals per method). Ties are dropped: the truth is
    defined on decisive outcomes. See benchmarks/bench_rank_coverage.py for more sizes."""
    cover_s, cover_b = [], []
    for seed in range(200):
        sim = simulate("arena", size=1500, seed=1000 + seed, text=False)
        truth = sim.truth["model_bt_strength"]
        c = aggregate(battles_from_table(sim.tables[Kind.COMPARISONS]))
        p = bt.problem(c, bt.RankConfig(ties="drop"))
        f = bt.fit_problem(p)
        tv = np.array([truth[m] for m in f.items])
        tv -= tv.mean()
        s = ci.normal_intervals(p, f, "sandwich", draws=10)
        b = ci.bootstrap(p, f, 200, rng=np.random.default_rng(seed))
        cover_s.append(((s.low <= tv) & (tv <= s.high)).mean())
        cover_b.append(((b.low <= tv) & (tv <= b.high)).mean())
    assert 0.93 <= float(np.mean(cover_s)) <= 0.97
    assert 0.93 <= float(np.mean(cover_b)) <= 0.97
