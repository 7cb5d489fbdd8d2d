"""Intervals that scale: the one-step bootstrap against the dense sandwich, the automatic
choice of method, block conjugate gradients, Arrow battle conversion, and large leaderboards
through the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from prefkit.io.detect import read
from prefkit.rank import bt, ci
from prefkit.rank.data import aggregate, battles, battles_from_table
from prefkit.rank.run import RankOptions, rank_table
from prefkit.rank.style import style_problem
from prefkit.schema import Kind
from prefkit.simulate import simulate
from tests.rank._data import invoke, run_cli

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LLMFAO = DATA / "llmfao" / "llmfao.csv"


@pytest.fixture(scope="module")
def llmfao() -> pa.Table:
    return read(LLMFAO).table


def _synthetic(k: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Davidson battles (nu 0.5) between k items with N(0, 1) strengths."""
    rng = np.random.default_rng(seed)
    th = rng.normal(0.0, 1.0, k)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    d = th[a] - th[b]
    z = np.exp(d / 2) + np.exp(-d / 2) + 0.5
    u = rng.random(n)
    out = np.where(u < np.exp(d / 2) / z, "a", np.where(u < (np.exp(d / 2) + 0.5) / z, "tie", "b"))
    names = np.array([f"item-{q:05d}" for q in range(k)], dtype=object)
    return names[a], names[b], out


@pytest.mark.parametrize("model", ["bt", "davidson"])
def test_one_step_draws_have_the_sandwich_covariance(llmfao: pa.Table, model: str) -> None:
    """The one-step draws are theta_hat - H^-1 g* with Var(g*) = J, so their standard
    deviations equal the dense sandwich's sqrt(diag(H^-1 J H^-1)) up to Monte Carlo error
    (4,000 draws: ~1.1% per item), whichever solver (dense Cholesky or block CG)."""
    c = aggregate(battles_from_table(llmfao))
    p = bt.problem(c, bt.RankConfig(model=model))  # type: ignore[arg-type]
    f = bt.fit_problem(p)
    s = ci.normal_intervals(p, f, "sandwich")
    h = ci.normal_intervals(p, f, "hessian")
    o = ci.one_step(p, f, 4000, rng=np.random.default_rng(0))
    assert s.se is not None and o.se is not None and h.se is not None
    ratio = o.se / s.se
    assert np.abs(ratio - 1).max() < 0.06 and abs(float(np.median(ratio)) - 1) < 0.015
    if model == "bt":
        # ties counted as half a win make the sandwich differ from the model-based Hessian
        # (LLMFAO has 39% ties): the draws follow the sandwich
        assert abs(float(np.median(s.se / h.se)) - 1) > 3 * abs(float(np.median(ratio)) - 1)
    assert o.method == "one-step" and o.rounds == 4000
    assert ((o.low <= f.theta) & (f.theta <= o.high)).all()
    assert (o.rank_low <= o.rank).all() and (o.rank <= o.rank_high).all()
    old = ci.DENSE_MAX
    try:
        ci.DENSE_MAX = 0  # force the sparse block conjugate-gradient path
        sparse = ci.one_step(p, f, 4000, rng=np.random.default_rng(0))
    finally:
        ci.DENSE_MAX = old
    assert sparse.se is not None
    assert np.abs(sparse.se / o.se - 1).max() < 1e-3
    assert np.abs(sparse.low - o.low).max() < 1e-3


def test_one_step_with_style_covariates_matches_the_sandwich() -> None:
    """Extra parameters (style coefficients) go through the Schur complement, densely and
    with block conjugate gradients."""
    sim = simulate("arena", size=4000, seed=5)
    t = sim.tables[Kind.COMPARISONS]
    from prefkit.rank.style import style_features, texts_from_table

    b = battles_from_table(t)
    z = style_features(*texts_from_table(t, b.rows.tolist()))
    p = style_problem(b, z, bt.RankConfig())
    f = bt.fit_problem(p)
    s = ci.normal_intervals(p, f, "sandwich")
    assert s.se is not None
    for dense_max in (ci.DENSE_MAX, 0):
        old = ci.DENSE_MAX
        try:
            ci.DENSE_MAX = dense_max
            o = ci.one_step(p, f, 4000, rng=np.random.default_rng(1))
        finally:
            ci.DENSE_MAX = old
        assert o.se is not None
        assert np.abs(o.se / s.se - 1).max() < 0.08


def test_block_conjugate_gradients_equal_one_column_at_a_time() -> None:
    a, b, o = _synthetic(300, 6000, 2)
    p = bt.problem(aggregate(battles(a, b, o)))
    f = bt.fit_problem(p)
    ops = bt._ops_cache(p)
    _, _, d_pair, diag, _, _ = bt._grad_hess_parts(p, ops, f.x, p.y)
    solve = bt.laplacian_solver(p, ops, d_pair, diag, 1e-12)
    rhs = np.random.default_rng(0).standard_normal((p.k, 5))
    rhs -= rhs.mean(axis=0)
    block = solve(rhs)
    cols = np.stack([solve(rhs[:, q]) for q in range(5)], axis=1)
    assert np.abs(block - cols).max() < 1e-9
    h = bt.hessian(p, f.x)  # dense, gauge-fixed the same way
    assert np.abs(h @ block - rhs).max() < 1e-8


def test_auto_picks_the_bootstrap_for_small_boards_and_one_step_beyond(
    llmfao: pa.Table,
) -> None:
    small = rank_table(llmfao, RankOptions(rounds=50)).summary
    assert small["ci"] == "bootstrap" and small["ci_requested"] == "auto"
    assert "59 parameters <= 100" in small["ci_method_reason"]
    a, b, o = _synthetic(150, 8000, 3)
    t = pa.table({"model_a": list(a), "model_b": list(b), "outcome": list(o)})
    big = rank_table(t, RankOptions(rounds=50)).summary
    assert big["ci"] == "one-step" and big["rounds"] == 50
    assert "150 parameters > 100" in big["ci_method_reason"]
    forced = rank_table(t, RankOptions(ci="bootstrap", rounds=5)).summary
    assert forced["ci"] == "bootstrap" and forced["ci_method_reason"] == "requested explicitly"
    none = rank_table(t, RankOptions(ci="none")).summary
    assert none["ci"] == "none" and none["rounds"] == 0


def test_arrow_battles_equal_the_python_path(llmfao: pa.Table) -> None:
    """`battles_from_table` (Arrow compute) against `battles` on Python lists, with nulls,
    self-battles and both_bad mixed in."""
    t = simulate("arena", size=3000, seed=9, text=False).tables[Kind.COMPARISONS]
    ma = t.column("model_a").to_pylist()
    mb = t.column("model_b").to_pylist()
    for r in range(0, 3000, 97):
        ma[r] = None
    for r in range(5, 3000, 89):
        mb[r] = ma[r]
    t = t.set_column(t.schema.get_field_index("model_a"), "model_a", pa.array(ma, pa.string()))
    t = t.set_column(t.schema.get_field_index("model_b"), "model_b", pa.array(mb, pa.string()))
    for table in (t, llmfao):
        fast = battles_from_table(table)
        ref = battles(
            np.asarray(table.column("model_a").to_pylist(), dtype=object),
            np.asarray(table.column("model_b").to_pylist(), dtype=object),
            np.asarray(table.column("outcome").to_pylist(), dtype=object),
        )
        assert fast.items == ref.items and fast.skipped == ref.skipped
        for key in ("a", "b", "outcome", "weight", "rows"):
            assert np.array_equal(getattr(fast, key), getattr(ref, key)), key
    assert battles_from_table(t).skipped["missing_item"] == len(range(0, 3000, 97))


def test_ci_none_prints_no_interval(tmp_path: Path) -> None:
    code, err, stdout = invoke(
        "rank", str(LLMFAO), "--ci", "none", "--json", "--out", str(tmp_path)
    )
    assert code == 0, err
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["ci"] == "none" and out["rounds"] == 0
    for r in out["leaderboard"]:
        assert r["ci_low"] is r["ci_high"] is r["rank_low"] is r["rank_high"] is None
    with (tmp_path / "leaderboard.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert all(r["ci_low"] == r["ci_high"] == "" for r in rows)
    code, err, human = invoke("rank", str(LLMFAO), "--ci", "none")
    assert code == 0, err
    header = human.splitlines()[0].split()
    assert header == ["rank", "item", "score", "wins", "losses", "ties", "n"]
    assert ".." not in human


def test_ci_one_step_on_request() -> None:
    code, err, stdout = invoke("rank", str(LLMFAO), "--ci", "one-step", "--rounds", "400", "--json")
    assert code == 0, err
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["ci"] == out["ci_requested"] == "one-step" and out["rounds"] == 400
    assert all(r["ci_low"] < r["score"] < r["ci_high"] for r in out["leaderboard"])


def test_pipe_keeps_long_names_and_top_limits_rows(tmp_path: Path) -> None:
    """In a pipe the leaderboard is plain text on stdout, one line per item, never cut to
    80 columns; --top N prints the N best and says how many were left out."""
    long = "an-extremely-long-model-name-" + "x" * 90
    sim = simulate("arena", size=1500, seed=2, text=False)
    t = sim.tables[Kind.COMPARISONS]
    first = t.column("model_a")[0].as_py()
    ma = [long if m == first else m for m in t.column("model_a").to_pylist()]
    mb = [long if m == first else m for m in t.column("model_b").to_pylist()]
    path = tmp_path / "battles.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model_a", "model_b", "winner"])
        code = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
        for x, y, o in zip(ma, mb, t.column("outcome").to_pylist(), strict=True):
            w.writerow([x, y, code[o]])
    res = run_cli("rank", str(path), "--rounds", "50")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["rank", "item", "score"]
    assert len(lines) == 1 + 16
    assert any(long in ln for ln in lines)
    assert "intervals: bootstrap" in res.stderr
    top = run_cli("rank", str(path), "--rounds", "50", "--top", "3")
    assert top.returncode == 0, top.stderr
    assert len(top.stdout.strip().splitlines()) == 1 + 3
    assert "13 more item(s) not shown" in top.stderr
    bad = run_cli("rank", str(path), "--top", "-1")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_large_board_skips_the_items_by_items_matrix(tmp_path: Path) -> None:
    a, b, o = _synthetic(1200, 30000, 4)
    path = tmp_path / "big.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model_a", "model_b", "winner"])
        code = {"a": "model_a", "b": "model_b", "tie": "tie"}
        w.writerows([x, y, code[v]] for x, y, v in zip(a, b, o, strict=True))
    res = run_cli("rank", str(path), "--out", str(tmp_path / "o"), "--rounds", "100", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["ci"] == "one-step" and out["items"] == 1200
    assert {Path(f).name for f in out["files"]} == {"leaderboard.csv", "index.html"}
    assert any("win_probability.csv not written" in n for n in out["notes"])
    html = (tmp_path / "o" / "index.html").read_text()
    assert "the plot shows the top 100 of 1200 items" in html
    assert "the table lists the top 1000 of 1200 items" in html
    with (tmp_path / "o" / "leaderboard.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 1200
