"""`prefkit rank --level/--prior/--weight` through the real command, against closed forms and
an independent scipy fit."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from scipy.optimize import minimize

from prefkit.io import save
from prefkit.schema import Kind, from_rows
from tests.rank._data import invoke

# (model_a, model_b, outcome, weight): a small connected tournament where every item wins
# and loses (the MLE exists), ties included
BATTLES = [
    ("m1", "m2", "a", 1.0), ("m1", "m2", "b", 2.0), ("m1", "m2", "a", 1.0),
    ("m2", "m3", "a", 3.0), ("m2", "m3", "tie", 1.0), ("m3", "m2", "a", 1.0),
    ("m3", "m4", "a", 2.0), ("m4", "m3", "a", 1.0), ("m1", "m4", "a", 1.0),
    ("m4", "m1", "a", 1.0), ("m1", "m3", "tie", 2.0), ("m3", "m1", "b", 1.0),
    ("m2", "m4", "a", 1.0), ("m4", "m2", "tie", 1.0), ("m4", "m2", "b", 1.0),
]  # fmt: skip


def _file(path: Path, battles: list[tuple[str, str, str, float]], weights: bool) -> Path:
    rows = [
        {
            "model_a": a,
            "model_b": b,
            "outcome": o,
            "meta": {"w": str(w)} if weights else {},
            "source": "test",
        }
        for a, b, o, w in battles
    ]
    return save(from_rows(rows, Kind.COMPARISONS), path)


def _rank(*args: str) -> dict[str, Any]:
    code, err, stdout = invoke("rank", *args, "--scale", "logit", "--json")
    assert code == 0, err
    out: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return out


def _scores(res: dict[str, Any]) -> dict[str, float]:
    return {r["item"]: r["score"] for r in res["leaderboard"]}


def _map_fit(battles: list[tuple[str, str, str, float]], prior: float) -> dict[str, float]:
    """Independent reference: the weighted Bradley–Terry log-likelihood (a tie = half a win
    each way) plus (prior/2)·|θ|², minimised by scipy; centred at mean 0."""
    items = sorted({x for a, b, _, _ in battles for x in (a, b)})
    ix = {m: k for k, m in enumerate(items)}

    def nll(theta: np.ndarray) -> float:
        total = 0.5 * prior * float(theta @ theta)
        for a, b, o, w in battles:
            d = theta[ix[a]] - theta[ix[b]]
            y = {"a": 1.0, "b": 0.0, "tie": 0.5}[o]
            total -= w * (y * -np.logaddexp(0, -d) + (1 - y) * -np.logaddexp(0, d))
        return total

    res = minimize(nll, np.zeros(len(items)), method="BFGS", options={"gtol": 1e-10})
    theta = res.x - res.x.mean()
    return {m: float(theta[ix[m]]) for m in items}


def test_prior_gives_the_map_estimate(tmp_path: Path) -> None:
    src = _file(tmp_path / "b.parquet", BATTLES, weights=False)
    plain = [(a, b, o, 1.0) for a, b, o, _ in BATTLES]
    for prior in (0.5, 3.0):
        res = _rank(str(src), "--ci", "none", "--prior", str(prior))
        assert res["prior"] == prior
        ref = _map_fit(plain, prior)
        got = _scores(res)
        assert got == pytest.approx(ref, abs=1e-6)
    mle = _scores(_rank(str(src), "--ci", "none"))
    assert mle == pytest.approx(_map_fit(plain, 0.0), abs=1e-5)
    assert max(abs(v) for v in got.values()) < max(abs(v) for v in mle.values())  # shrunk
    code, err, _ = invoke("rank", str(src), "--prior", "-1")
    assert code == 2 and "--prior" in err


def test_weight_key_equals_repeating_battles(tmp_path: Path) -> None:
    """`--weight w` with integer weights in meta.w equals the file with each battle repeated
    that many times, and the weighted scipy fit."""
    weighted = _file(tmp_path / "w.parquet", BATTLES, weights=True)
    repeated = [(a, b, o, 1.0) for a, b, o, w in BATTLES for _ in range(int(w))]
    rep = _file(tmp_path / "r.parquet", repeated, weights=False)
    got = _scores(_rank(str(weighted), "--ci", "none", "--weight", "w"))
    assert got == pytest.approx(_scores(_rank(str(rep), "--ci", "none")), abs=1e-8)
    assert got == pytest.approx(_map_fit(BATTLES, 0.0), abs=1e-5)
    unweighted = _scores(_rank(str(weighted), "--ci", "none"))
    assert max(abs(got[m] - unweighted[m]) for m in got) > 0.05  # the weights matter
    code, err, _ = invoke("rank", str(weighted), "--weight", "missing_key", "--json")
    assert code == 1 and "missing_key" in err


def test_level_sets_the_interval_width(tmp_path: Path) -> None:
    """Sandwich intervals are score ± z·se: at `--level 0.8` each half-width is
    z(0.90)/z(0.975) of the 95% one, for every item."""
    src = _file(tmp_path / "b.parquet", BATTLES, weights=False)
    wide = {r["item"]: r for r in _rank(str(src), "--ci", "sandwich")["leaderboard"]}
    narrow = {
        r["item"]: r for r in _rank(str(src), "--ci", "sandwich", "--level", "0.8")["leaderboard"]
    }
    ratio = NormalDist().inv_cdf(0.90) / NormalDist().inv_cdf(0.975)
    for m, r in wide.items():
        n = narrow[m]
        assert n["score"] == pytest.approx(r["score"], abs=1e-12)
        assert n["ci_high"] - n["score"] == pytest.approx(
            ratio * (r["ci_high"] - r["score"]), rel=1e-9
        )
        assert n["score"] - n["ci_low"] == pytest.approx(
            ratio * (r["score"] - r["ci_low"]), rel=1e-9
        )
    code, err, _ = invoke("rank", str(src), "--level", "1.5")
    assert code == 2 and "--level" in err
