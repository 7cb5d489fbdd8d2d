"""Estimates against independent references: evalica's LLMFAO golden scores, a direct
scipy.optimize maximum-likelihood fit, crowd-kit's Dawid–Skene."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

from prefkit.io.detect import read
from prefkit.rank import baselines, bt
from prefkit.rank.aggregate import aggregate_table
from prefkit.rank.data import aggregate, battles_from_table
from tests.raw import llmfao_counts

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LLMFAO = DATA / "llmfao" / "llmfao.csv"
GOLDEN = DATA / "llmfao" / "llmfao-golden.csv"
PANDALM = DATA / "pandalm_testset" / "data" / "testset-v1.json"


def _golden(algorithm: str) -> dict[str, float]:
    import csv

    with GOLDEN.open() as fh:
        return {
            r["item"]: float(r["score"]) for r in csv.DictReader(fh) if r["algorithm"] == algorithm
        }


@pytest.fixture(scope="module")
def llmfao() -> tuple[object, object]:
    b = battles_from_table(read(LLMFAO).table)
    return b, aggregate(b)


def test_llmfao_reader_gives_every_battle(llmfao: tuple[object, object]) -> None:
    b, c = llmfao
    raw = llmfao_counts()  # plain csv over the published file
    assert len(b) == raw.rows  # type: ignore[arg-type]
    assert int((b.outcome == 2).sum()) == raw.ties  # type: ignore[attr-defined]
    assert c.n_items == raw.models  # type: ignore[attr-defined]


def test_bt_half_ties_equals_golden(llmfao: tuple[object, object]) -> None:
    _, c = llmfao
    f = bt.fit(c, bt.RankConfig(model="bt", ties="half"))  # type: ignore[arg-type]
    gold = _golden("bradley_terry")
    assert set(gold) == set(f.items)
    ours = f.theta - np.log(np.exp(f.theta).sum())  # strengths normalized to sum 1, in logs
    ref = np.log([gold[m] for m in f.items])
    assert np.abs(ours - ref).max() <= 1e-6
    assert f.prior == 0.0 and not f.notes


def test_sparse_solver_equals_dense(llmfao: tuple[object, object]) -> None:
    _, c = llmfao
    for model in ("bt", "davidson", "rao-kupper"):
        p = bt.problem(c, bt.RankConfig(model=model))  # type: ignore[arg-type]
        xd, _, _ = bt.newton(p, dense=True)
        xs, _, _ = bt.newton(p, dense=False)
        assert np.abs(xd - xs).max() < 1e-8, model


def test_elo_and_average_win_rate_equal_golden(llmfao: tuple[object, object]) -> None:
    b, c = llmfao
    elo = baselines.elo(b)  # type: ignore[arg-type]
    awr = baselines.average_win_rate(c)  # type: ignore[arg-type]
    items = c.items  # type: ignore[attr-defined]
    ge, ga = _golden("elo"), _golden("average_win_rate")
    assert np.abs(elo - np.array([ge[m] for m in items])).max() < 1e-6
    assert np.abs(awr - np.array([ga[m] for m in items])).max() < 1e-9


def _direct_mle(c: object, model: str) -> tuple[np.ndarray, float]:
    """Independent fit: scipy BFGS on the per-pair likelihood written from the papers'
    formulas (strengths pi = e^theta, item 0 fixed at 0), with its own analytic gradient."""
    i, j = c.i, c.j  # type: ignore[attr-defined]
    w, lo, t = c.wins, c.losses, c.ties  # type: ignore[attr-defined]
    k = c.n_items  # type: ignore[attr-defined]
    n = w + lo + t

    def nll(x: np.ndarray) -> tuple[float, np.ndarray]:
        th = np.concatenate([[0.0], x[: k - 1]])
        d = th[i] - th[j]
        if model == "davidson":  # P(i) = pi_i / (pi_i + pi_j + nu sqrt(pi_i pi_j))
            nu = np.exp(x[-1])
            z = np.exp(d / 2) + np.exp(-d / 2) + nu
            ll = w * (d / 2 - np.log(z)) + lo * (-d / 2 - np.log(z)) + t * (np.log(nu) - np.log(z))
            gd = (w - lo) / 2 - n * (np.exp(d / 2) - np.exp(-d / 2)) / (2 * z)
            gx = float((t - n * nu / z).sum())
        else:  # Rao-Kupper: P(i) = pi_i / (pi_i + kappa pi_j), kappa = 1 + e^x
            kappa = 1.0 + np.exp(x[-1])
            a = np.log(kappa)
            pa = 1 / (1 + kappa * np.exp(-d))
            pb = 1 / (1 + kappa * np.exp(d))
            pt = 1 - pa - pb
            ll = w * np.log(pa) + lo * np.log(pb) + t * np.log(pt)
            va, vb = pa * (1 - pa), pb * (1 - pb)
            gd = w * (1 - pa) - lo * (1 - pb) + t * (vb - va) / pt
            ga = -w * (1 - pa) - lo * (1 - pb) + t * (va + vb) / pt
            gx = float((ga * np.exp(x[-1]) / kappa).sum())
            del a
        g = np.bincount(i, gd, k) - np.bincount(j, gd, k)
        return float(-ll.sum()), -np.concatenate([g[1:], [gx]])

    res = minimize(
        nll, np.zeros(k), jac=True, method="BFGS", options={"gtol": 1e-11, "maxiter": 50000}
    )
    th = np.concatenate([[0.0], res.x[: k - 1]])
    tie = float(np.exp(res.x[-1])) if model == "davidson" else float(1.0 + np.exp(res.x[-1]))
    return th - th.mean(), tie


@pytest.mark.parametrize("model", ["davidson", "rao-kupper"])
def test_tie_models_match_direct_scipy_mle(llmfao: tuple[object, object], model: str) -> None:
    _, c = llmfao
    f = bt.fit(c, bt.RankConfig(model=model))  # type: ignore[arg-type]
    ref, tie = _direct_mle(c, model)
    assert np.abs(f.theta - ref).max() <= 1e-6
    assert f.tie is not None and abs(f.tie - tie) <= 1e-6


def test_dawid_skene_agrees_with_crowdkit_on_pandalm() -> None:
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    raw = json.loads(PANDALM.read_text())
    rows = [
        {"task": r["idx"], "worker": a, "label": r[a]}
        for r in raw
        for a in ("annotator1", "annotator2", "annotator3")
    ]
    ck = DawidSkene(n_iter=100).fit_predict(pd.DataFrame(rows))
    out, ann, summary = aggregate_table(read(PANDALM).table, "dawid-skene")
    assert summary["pairs"] == len(raw) == out.num_rows
    ours = {
        dict(m)["idx"]: o
        for m, o in zip(
            out.column("meta").to_pylist(), out.column("outcome").to_pylist(), strict=True
        )
    }
    code = {0: "tie", 1: "a", 2: "b"}
    agree = np.mean([code[int(ck[k])] == ours[str(k)] for k in ck.index])
    assert agree >= 0.99
    assert ann.num_rows == 3 and all(0.5 < s <= 1.0 for s in ann.column("skill").to_pylist())
