"""Model properties checked against closed forms, independent fits and each other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

from prefkit.io.detect import read
from prefkit.rank import bt, ci
from prefkit.rank.data import aggregate, battles, battles_from_table
from prefkit.rank.leaderboard import ELO_PER_LOGIT, leaderboard

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LLMFAO = DATA / "llmfao" / "llmfao.csv"


@pytest.fixture(scope="module")
def llmfao_counts() -> object:
    return aggregate(battles_from_table(read(LLMFAO).table))


def test_two_items_closed_form() -> None:
    # BT MLE for two items: theta_a - theta_b = log(wins_a / wins_b), ties half a win each
    a = ["A"] * 7 + ["B"] * 3 + ["A"] * 4
    b = ["B"] * 7 + ["A"] * 3 + ["B"] * 4
    o = ["a"] * 5 + ["b"] * 2 + ["b"] * 3 + ["tie"] * 4  # A: 5 + 3 wins, B: 2 wins, 4 ties
    f = bt.fit(aggregate(battles(a, b, o)))
    d = f.theta[f.items.index("A")] - f.theta[f.items.index("B")]
    assert abs(d - np.log((8 + 2) / (2 + 2))) < 1e-10
    fd = bt.fit(aggregate(battles(a, b, o)), bt.RankConfig(ties="drop"))
    assert abs(fd.theta[0] - fd.theta[1] - np.log(8 / 2)) < 1e-10


def test_weighted_votes_equal_repeated_votes() -> None:
    rng = np.random.default_rng(3)
    n = 400
    a = rng.integers(0, 6, n)
    b = (a + rng.integers(1, 6, n)) % 6
    o = rng.choice(["a", "b", "tie"], n, p=[0.45, 0.35, 0.2])
    w = rng.integers(1, 4, n).astype(float)
    names = np.array(list("ABCDEF"), dtype=object)
    weighted = bt.fit(aggregate(battles(names[a], names[b], o, w)))
    rep = np.repeat(np.arange(n), w.astype(int))
    repeated = bt.fit(aggregate(battles(names[a][rep], names[b][rep], o[rep])))
    assert np.abs(weighted.theta - repeated.theta).max() < 1e-9


def test_l2_prior_matches_direct_map_fit(llmfao_counts: object) -> None:
    c = llmfao_counts
    lam = 2.0
    f = bt.fit(c, bt.RankConfig(prior=lam))  # type: ignore[arg-type]
    i, j = c.i, c.j  # type: ignore[attr-defined]
    w = c.wins + 0.5 * c.ties  # type: ignore[attr-defined]
    lo = c.losses + 0.5 * c.ties  # type: ignore[attr-defined]
    k = c.n_items  # type: ignore[attr-defined]

    def obj(th: np.ndarray) -> tuple[float, np.ndarray]:
        d = th[i] - th[j]
        p = 1 / (1 + np.exp(-d))
        val = -(w * np.log(p) + lo * np.log(1 - p)).sum() + 0.5 * lam * (th @ th)
        r = w - (w + lo) * p
        g = -(np.bincount(i, r, k) - np.bincount(j, r, k)) + lam * th
        return float(val), g

    ref = minimize(obj, np.zeros(k), jac=True, method="BFGS", options={"gtol": 1e-11}).x
    # with a prior the strengths are not shift invariant: compare the raw parameter vectors
    assert np.abs(f.x[:k] - ref).max() < 1e-6


def test_sandwich_hessian_and_bootstrap_agree_on_well_specified_data() -> None:
    rng = np.random.default_rng(11)
    k, n = 12, 6000
    th = np.linspace(-1.5, 1.5, k)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    win = rng.random(n) < 1 / (1 + np.exp(-(th[a] - th[b])))
    names = np.array([f"m{q:02d}" for q in range(k)], dtype=object)
    c = aggregate(battles(names[a], names[b], np.where(win, "a", "b")))
    p = bt.problem(c, bt.RankConfig(ties="drop"))
    f = bt.fit_problem(p)
    s = ci.normal_intervals(p, f, "sandwich")
    h = ci.normal_intervals(p, f, "hessian")
    bo = ci.bootstrap(p, f, 600, rng=np.random.default_rng(0))
    assert s.se is not None and h.se is not None and bo.se is not None
    assert np.allclose(s.se, h.se, rtol=0.1)
    assert np.allclose(bo.se, s.se, rtol=0.15)
    assert ((s.low <= f.theta) & (f.theta <= s.high)).all()
    assert (bo.rank_low <= bo.rank).all() and (bo.rank <= bo.rank_high).all()


def test_batched_and_sequential_bootstrap_agree(llmfao_counts: object) -> None:
    p = bt.problem(llmfao_counts, bt.RankConfig(model="davidson"))  # type: ignore[arg-type]
    f = bt.fit_problem(p)
    a = ci.bootstrap_draws(p, f, 6, np.random.default_rng(5))
    old = ci.BATCH_MAX_PARAMS
    try:
        ci.BATCH_MAX_PARAMS = 0  # force the one-round-at-a-time sparse path
        b = ci.bootstrap_draws(p, f, 6, np.random.default_rng(5))
    finally:
        ci.BATCH_MAX_PARAMS = old
    assert np.abs(a - b).max() < 1e-7


def test_bootstrap_resamples_battles_not_reweights_them(llmfao_counts: object) -> None:
    p = bt.problem(llmfao_counts)  # type: ignore[arg-type]
    f = bt.fit_problem(p)
    d = ci.bootstrap_draws(p, f, 50, np.random.default_rng(1))
    assert d.shape == (50, p.k) and np.abs(d.mean(axis=1)).max() < 1e-9
    assert (d.std(axis=0) > 0.02).all()  # every item's strength varies between rounds


def test_anchor_shifts_without_widening(llmfao_counts: object) -> None:
    c = llmfao_counts
    p = bt.problem(c)  # type: ignore[arg-type]
    f = bt.fit_problem(p)
    iv = ci.normal_intervals(p, f, "sandwich")
    plain = {r["item"]: r for r in leaderboard(f, iv, c, "elo").rows}  # type: ignore[arg-type]
    anch = {r["item"]: r for r in leaderboard(f, iv, c, "elo", ("GPT 4", 1500.0)).rows}  # type: ignore[arg-type]
    assert anch["GPT 4"]["score"] == pytest.approx(1500.0)
    for m, r in plain.items():
        assert anch[m]["ci_high"] - anch[m]["ci_low"] == pytest.approx(r["ci_high"] - r["ci_low"])
        assert anch[m]["rank_low"] == r["rank_low"] and anch[m]["rank_high"] == r["rank_high"]
    logit = {r["item"]: r for r in leaderboard(f, iv, c, "logit").rows}  # type: ignore[arg-type]
    assert abs(sum(r["score"] for r in logit.values())) < 1e-9
    m = "GPT 4"
    assert plain[m]["score"] - 1000 == pytest.approx(ELO_PER_LOGIT * logit[m]["score"])


def test_win_probabilities_are_consistent(llmfao_counts: object) -> None:
    for model in ("bt", "davidson", "rao-kupper"):
        f = bt.fit(llmfao_counts, bt.RankConfig(model=model))  # type: ignore[arg-type]
        pw, pt = bt.win_probabilities(f)
        off = ~np.eye(len(f.items), dtype=bool)
        assert np.allclose((pw + pw.T + pt)[off], 1.0)
        assert ((pw[off] > 0) & (pw[off] < 1)).all()


def test_rank_intervals_contain_the_point_rank(llmfao_counts: object) -> None:
    p = bt.problem(llmfao_counts)  # type: ignore[arg-type]
    f = bt.fit_problem(p)
    for iv in (
        ci.bootstrap(p, f, 200, rng=np.random.default_rng(2)),
        ci.normal_intervals(p, f, "sandwich"),
    ):
        assert (iv.rank_low <= iv.rank).all() and (iv.rank <= iv.rank_high).all()
        assert iv.rank_low.min() == 1 and iv.rank_high.max() <= p.k
