"""On the simulator's `planted` scenario (annotators who judge by style alone) explain finds
what was planted: right signs, intervals that cover the true weights, nothing unplanted
selected. The coverage claim itself (>= 100 data sets) is benchmarks/bench_explain_coverage.py;
the slow test below is its small version."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from prefkit.explain.data import votes_from_table
from prefkit.explain.effects import EffectOptions, design, feature_effects
from prefkit.explain.features import FEATURE_NAMES, text_features
from prefkit.schema import Kind
from prefkit.simulate import Simulation, simulate
from tests.conftest import REPO


def test_truth_holds_the_weights_in_explains_units(planted: Simulation) -> None:
    t = planted.truth["planted"]
    assert t["weights"] == {"bullets": 0.8, "hedging": -1.0, "log_chars": 0.6}
    assert t["features"] == list(FEATURE_NAMES)
    # per-SD weights use the SD of each feature over every response of the file (ddof 0)
    table = planted.tables[Kind.COMPARISONS]
    v = votes_from_table(table)
    xa, _ = text_features(v.prompt, v.a)
    xb, _ = text_features(v.prompt, v.b)
    sd = np.vstack([xa, xb]).std(axis=0)
    for f, w in t["weights"].items():
        j = FEATURE_NAMES.index(f)
        assert t["sd"][f] == pytest.approx(sd[j], abs=1e-6)
        assert t["weights_per_sd"][f] == pytest.approx(w * sd[j], abs=1e-5)
    # every annotator carries the planted preferences and nothing else
    for a in planted.truth["annotators"].values():
        assert a["persona"] == "planted" and a["params"]["feature_weights"] == t["weights"]
        assert a["params"]["beta"] == 0.0


def test_votes_follow_the_planted_logit(planted: Simulation) -> None:
    """Independent check of the simulator: the share of votes for a among decisive ones,
    binned by the planted logit computed here, matches the Davidson probability."""
    table = planted.tables[Kind.COMPARISONS]
    v = votes_from_table(table)
    xa, names = text_features(v.prompt, v.a)
    xb, _ = text_features(v.prompt, v.b)
    w = planted.truth["planted"]["weights"]
    eta = sum(wf * (xa[:, names.index(f)] - xb[:, names.index(f)]) for f, wf in w.items())
    dec = v.y[:, 2] == 0
    bins = np.quantile(eta[dec], [0, 0.25, 0.5, 0.75, 1.0])
    idx = np.clip(np.searchsorted(bins, eta[dec], side="right") - 1, 0, 3)
    for b in range(4):
        sel = idx == b
        want = float(np.mean(1 / (1 + np.exp(-eta[dec][sel]))))
        got = float(v.y[dec][sel, 0].mean())
        assert abs(got - want) < 4 * np.sqrt(want * (1 - want) / sel.sum()) + 0.01


def test_effects_recover_the_planted_preferences(planted: Simulation) -> None:
    v = votes_from_table(planted.tables[Kind.COMPARISONS])
    d = design(v)
    eff = feature_effects(v, d, EffectOptions(rounds=60, stability_pairs=20, seed=1))
    truth = planted.truth["planted"]["weights_per_sd"]
    by = {r["feature"]: r for r in eff.rows}
    for f, t in truth.items():
        r = by[f]
        assert np.sign(r["coef"]) == np.sign(t)
        assert r["ci_low"] <= t <= r["ci_high"], (f, t, r["ci_low"], r["ci_high"])
        assert (r["ci_low"] > 0) if t > 0 else (r["ci_high"] < 0)
        assert r["selected"], f
        assert r["coef_raw"] == pytest.approx(r["coef"] / r["sd"])
    assert not [f for f, r in by.items() if f not in truth and r["selected"]]
    assert eff.summary["model"] == "davidson"
    assert eff.summary["tie_nu"] == pytest.approx(0.25, rel=0.25)


def test_simulate_plant_flag_replaces_the_weights(tmp_path: Path) -> None:
    code = "from prefkit.cli import main; main()"
    out = tmp_path / "sim"
    p = subprocess.run(
        [sys.executable, "-c", code, "simulate", "planted", str(out), "--size", "300",
         "--plant", "bold=1.5", "--plant", "numbers=-0.5", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    truth = json.loads((out / "truth.json").read_text())
    assert truth["planted"]["weights"] == {"bold": 1.5, "numbers": -0.5}
    bad = subprocess.run(
        [sys.executable, "-c", code, "simulate", "clean", str(out), "--plant", "bold=1"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2 and "--plant applies to scenario 'planted'" in bad.stderr


def test_other_scenarios_have_no_planted_truth() -> None:
    for name in ("clean", "noisy", "pluralistic"):
        assert "planted" not in simulate(name, size=200, seed=0).truth


@pytest.mark.slow
def test_coverage_small_version() -> None:
    """benchmarks/bench_explain_coverage.py on 12 data sets: intervals cover the truth at
    about the stated rate, planted signs always recovered, unplanted features not selected."""
    cover, selected_unplanted, signs = [], [], []
    for k in range(12):
        sim = simulate("planted", size=3000, seed=900 + k)
        truth = sim.truth["planted"]["weights_per_sd"]
        v = votes_from_table(sim.tables[Kind.COMPARISONS])
        eff = feature_effects(v, design(v), EffectOptions(seed=k))
        for r in eff.rows:
            t = truth.get(r["feature"], 0.0)
            cover.append(r["ci_low"] <= t <= r["ci_high"])
            if t:
                signs.append((r["ci_low"] > 0) if t > 0 else (r["ci_high"] < 0))
            else:
                selected_unplanted.append(r["selected"])
    assert np.mean(cover) >= 0.9  # nominal 0.95; ~180 intervals, 2 SE below = 0.92
    assert all(signs)
    assert np.mean(selected_unplanted) <= 0.05


def test_effects_file_columns(planted_dir: Path, tmp_path: Path) -> None:
    from tests.judge.conftest import cli

    out = tmp_path / "out"
    p = cli("explain", str(planted_dir / "comparisons.parquet"), "--out", str(out),
            "--directions", "0", "--rounds", "20", "--json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    t = pq.read_table(out / "effects.parquet")
    for c in ("type", "scope", "feature", "coef", "ci_low", "ci_high", "coef_no_length",
              "ci_low_no_length", "ci_high_no_length", "coef_sparse", "selection_freq",
              "selected", "coef_raw"):  # fmt: skip
        assert c in t.column_names
    rows = t.to_pylist()
    assert {r["scope"] for r in rows} == {"all"}
    length = next(r for r in rows if r["feature"] == "log_chars")
    assert length["coef_no_length"] is None  # the length feature has no no-length version
    s = json.loads(p.stdout)
    assert set(s) >= {"input", "features", "top_effects", "directions", "people",
                      "principles", "notes", "timings_s", "files"}  # fmt: skip
    assert s["features"]["bootstrap_rounds"] == 20
