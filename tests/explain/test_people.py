"""How people differ, on data where the truth is known: the simulator's `pluralistic` groups
(helpful, safe, concise, verbose annotators) and the `planted` scenario (everyone the same)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

from prefkit.explain.run import ExplainOptions, explain_table
from prefkit.io import save
from prefkit.schema import Kind
from prefkit.simulate import Simulation, simulate
from tests.judge.conftest import cli


@pytest.fixture(scope="module")
def plural() -> Simulation:
    # 24 annotators: ~420 votes each (the scenario's automatic count gives ~150 each; see
    # docs/explain.md for the ARI at that density)
    return simulate("pluralistic", size=10_000, seed=0, annotators=24)


def test_pluralistic_basis_separates_the_true_groups(plural: Simulation) -> None:
    res = explain_table(plural.tables[Kind.COMPARISONS], ExplainOptions(directions=0))
    p = res.summary["people"]
    assert p["by"] == "annotator" and p["groups"] == 24
    labels = [m["cluster"] for m in p["members"]]
    truth = [plural.truth["annotators"][m["group"]]["params"]["group"] for m in p["members"]]
    assert adjusted_rand_score(truth, labels) >= 0.8
    assert p["n_clusters"] == 4
    # the first axis is length: concise annotators at one end, verbose at the other
    ax = p["axes"][0]
    assert ax["top"][0]["feature"] == "log_chars"
    first = {m["group"]: m["coords"][0] for m in p["members"]}
    grp = {g: [first[a] for a, t in zip(first, truth, strict=True) if t == g] for g in set(truth)}
    assert abs(np.mean(grp["concise"]) - np.mean(grp["verbose"])) > 2 * max(
        np.std(grp["concise"]), np.std(grp["verbose"])
    )
    # shrunk per-annotator length weights order the groups as planted (concise < verbose)
    w = {m["group"]: m["weights"]["log_chars"] for m in p["members"]}
    mean = {g: np.mean([w[a] for a, t in zip(w, truth, strict=True) if t == g]) for g in grp}
    assert mean["concise"] < min(mean["helpful"], mean["safe"]) < mean["verbose"]


def test_identical_annotators_form_one_cluster(planted: Simulation) -> None:
    res = explain_table(planted.tables[Kind.COMPARISONS], ExplainOptions(directions=0))
    p = res.summary["people"]
    assert p["n_clusters"] == 1
    assert min(p["aic"].values()) == p["aic"]["1"]


def test_by_annotator_tests_whether_groups_differ(
    plural: Simulation, planted: Simulation, tmp_path: Path
) -> None:
    src = save(plural.tables[Kind.COMPARISONS], tmp_path / "plural.parquet")
    out = tmp_path / "out"
    p = cli("explain", str(src), "--out", str(out), "--by", "annotator", "--directions", "0",
            "--rounds", "20", "--min-votes", "50", "--json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    g = json.loads(p.stdout)["groups"]
    assert g["by"] == "annotator" and len(g["groups"]) == 24
    assert g["heterogeneity"]["tested"] and g["heterogeneity"]["p_value"] < 1e-6
    per = {r["feature"]: r for r in g["heterogeneity"]["per_feature"]}
    assert per["log_chars"]["p_bh"] < 1e-6
    rows = pq.read_table(out / "effects.parquet").to_pylist()
    scopes = {r["scope"] for r in rows}
    assert "all" in scopes and len(scopes) == 25
    # identical annotators: no evidence that they differ
    res = explain_table(
        planted.tables[Kind.COMPARISONS], ExplainOptions(by="annotator", directions=0)
    )
    het = res.summary["groups"]["heterogeneity"]
    assert het["tested"] and het["p_value"] > 0.01


def test_by_group_reads_a_meta_key(tmp_path: Path) -> None:
    """--by group with --group-key: two halves of a planted file with opposite length taste."""
    import pyarrow as pa

    a = simulate("planted", size=1500, seed=5, planted={"log_chars": 1.5}).tables[Kind.COMPARISONS]
    b = simulate("planted", size=1500, seed=6, planted={"log_chars": -1.5}).tables[Kind.COMPARISONS]
    rows = []
    for t, name in ((a, "long"), (b, "short")):
        for r in t.to_pylist():
            r["meta"] = list(dict(r["meta"]).items()) + [("cohort", name)]
            r["id"] = f"{name}-{r['id']}"
            rows.append(r)
    table = pa.Table.from_pylist(rows, schema=a.schema)
    src = save(table, tmp_path / "two.parquet")
    out = tmp_path / "out"
    p = cli("explain", str(src), "--out", str(out), "--by", "group", "--group-key", "cohort",
            "--directions", "0", "--rounds", "20", "--json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["groups"]["groups"] == ["long", "short"]
    eff = {r["scope"]: r for r in pq.read_table(out / "effects.parquet").to_pylist()
           if r["feature"] == "log_chars"}  # fmt: skip
    assert eff["group=long"]["ci_low"] > 0 > eff["group=short"]["ci_high"]
    assert s["groups"]["heterogeneity"]["p_value"] < 1e-6
