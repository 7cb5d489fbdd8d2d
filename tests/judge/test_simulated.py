"""The simulator's `judges` scenario: judge personas with known biases in truth.json."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.judge.conftest import cli

from prefkit.io.canonical import load
from prefkit.schema import Kind
from prefkit.simulate import simulate, write_simulation


def test_judges_scenario_cli_truth_and_determinism(tmp_path: Path) -> None:
    out = tmp_path / "j"
    p = cli("simulate", "judges", str(out), "--size", "3000", "--seed", "4", "--json")
    assert p.returncode == 0, p.stderr
    t = load(out / "comparisons.parquet")
    truth = json.loads((out / "truth.json").read_text())
    assert t.num_rows == 3000
    judges = truth["judges"]
    personas = {v["persona"] for v in judges.values()}
    assert personas == {"position", "verbose", "self_preferring", "noisy"}
    own = truth["self_preferring_model"]
    assert f"judge:{own}" in judges and own in truth["model_strength"]
    ann = Counter(t.column("annotator").to_pylist())
    for name in judges:  # both orders of every pair (the last pair may be cut by --size)
        assert abs(ann[name] - 2 * truth["pairs"]) <= 2
    humans = [a for a in ann if not a.startswith("judge:")]
    assert humans and all(truth["annotators"][h]["persona"] == "careful" for h in humans)
    rows = t.to_pylist()
    first = Counter((r["annotator"], r["shown_first"]) for r in rows if r["annotator"] in judges)
    assert all(abs(first[(j, "a")] - first[(j, "b")]) <= 1 for j in judges)
    by = {v["persona"]: v["expected"] for v in judges.values()}
    assert by["position"]["p_first_wins"] > 0.55 and abs(by["verbose"]["p_first_wins"] - 0.5) < 1e-9
    assert by["verbose"]["length_slope"] > by["position"]["length_slope"] + 0.1
    assert by["self_preferring"]["self_preference"]["vs_other_judges"] > 0.05
    assert by["noisy"]["consistency"] < min(by[p]["consistency"] for p in ("position", "verbose"))
    # same seed: byte-identical files; another seed: different
    a = write_simulation(simulate("judges", size=2000, seed=7), tmp_path / "a")
    b = write_simulation(simulate("judges", size=2000, seed=7), tmp_path / "b")
    c = write_simulation(simulate("judges", size=2000, seed=8), tmp_path / "c")
    for x, y, z in zip(a, b, c, strict=True):
        assert x.read_bytes() == y.read_bytes() and x.read_bytes() != z.read_bytes()


def test_human_share_option() -> None:
    all_h = simulate("judges", size=2400, seed=1, human_share=1.0)
    assert all_h.truth["pairs_with_humans"] >= all_h.truth["pairs"] - 1  # last pair: cut by size
    none = simulate("judges", size=800, seed=1, human_share=0.0)
    t = none.tables[Kind.COMPARISONS]
    assert all(a.startswith("judge:") for a in t.column("annotator").to_pylist())
    assert none.truth["pairs_with_humans"] == 0
