"""Annotator aggregation on simulated crowd votes with known faults (spammers, always-a
spammers, position-biased and tie-prone annotators) and known per-pair truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefkit.rank.aggregate import Aggregator, aggregate_table
from prefkit.schema import Kind, validate
from prefkit.simulate import simulate
from tests.rank._data import invoke
from tests.raw import pandalm_items


@pytest.fixture(scope="module")
def noisy() -> tuple[pa.Table, set[str]]:
    sim = simulate("noisy", size=6000, seed=2)
    return sim.tables[Kind.COMPARISONS], set(sim.truth["spammers"])


def _truth(out: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    meta = [dict(m) for m in out.column("meta").to_pylist()]
    tp = np.array([float(d["true_pref"]) for d in meta])
    return tp, np.array(out.column("outcome").to_pylist())


def _decisive_accuracy(out: pa.Table) -> float:
    tp, lab = _truth(out)
    m = (np.abs(tp - 0.5) > 0.25) & (lab != "tie")
    return float(np.mean(np.where(tp[m] > 0.5, "a", "b") == lab[m]))


@pytest.fixture(scope="module")
def results(
    noisy: tuple[pa.Table, set[str]],
) -> dict[str, tuple[pa.Table, pa.Table, dict[str, object]]]:
    table, _ = noisy
    return {
        m: aggregate_table(table, m)
        for m in ("majority", "dawid-skene", "mace", "glad", "noisy-bt")
    }  # type: ignore[arg-type]


def test_outputs_are_canonical_with_posteriors(
    results: dict[str, tuple[pa.Table, pa.Table, dict[str, object]]],
) -> None:
    for method, (out, ann, summary) in results.items():
        assert validate(out) is Kind.COMPARISONS
        assert out.num_rows == summary["pairs"]
        meta = [dict(m) for m in out.column("meta").to_pylist()]
        post = np.array([[float(d[f"posterior_{x}"]) for x in ("a", "b", "tie")] for d in meta])
        assert np.allclose(post.sum(axis=1), 1.0, atol=1e-5), method
        strength = np.array(out.column("strength").to_pylist())
        assert np.allclose(strength, post[:, 0] + 0.5 * post[:, 2], atol=1e-5)
        assert set(ann.column_names) >= {
            "annotator",
            "n_votes",
            "skill",
            "agreement",
            "position_bias",
        }
        assert sum(ann.column("n_votes").to_pylist()) == summary["votes"]


def test_spammers_get_low_skill(
    noisy: tuple[pa.Table, set[str]],
    results: dict[str, tuple[pa.Table, pa.Table, dict[str, object]]],
) -> None:
    _, spammers = noisy
    assert spammers
    for method in ("dawid-skene", "mace", "glad", "noisy-bt"):
        ann = results[method][1]
        skill = dict(
            zip(ann.column("annotator").to_pylist(), ann.column("skill").to_pylist(), strict=True)
        )
        spam = np.mean([s for a, s in skill.items() if a in spammers])
        rest = np.mean([s for a, s in skill.items() if a not in spammers])
        assert spam < rest - 0.1, method


def test_models_beat_majority_on_decisive_pairs(
    results: dict[str, tuple[pa.Table, pa.Table, dict[str, object]]],
) -> None:
    base = _decisive_accuracy(results["majority"][0])
    for method in ("dawid-skene", "mace", "noisy-bt"):
        assert _decisive_accuracy(results[method][0]) > base, method


def test_dawid_skene_corrects_the_always_a_skew(
    results: dict[str, tuple[pa.Table, pa.Table, dict[str, object]]],
) -> None:
    def skew(out: pa.Table) -> float:
        _, lab = _truth(out)
        return abs(float((lab == "a").mean() - (lab == "b").mean()))

    assert skew(results["dawid-skene"][0]) < skew(results["majority"][0])


def test_gold_pairs_are_fixed(noisy: tuple[pa.Table, set[str]]) -> None:
    table, _ = noisy
    out, _, _ = aggregate_table(table, "dawid-skene")
    tp, _ = _truth(out)
    keys = [dict(m)["pair_id"] for m in out.column("meta").to_pylist()]
    gold = {
        k: ("a" if p > 0.5 else "b") for k, p in list(zip(keys, tp.tolist(), strict=True))[:300]
    }
    out_g, _, summary = aggregate_table(table, "dawid-skene", gold)
    assert summary["gold_pairs"] == 300 and summary["gold_unmatched"] == []
    got = dict(zip(keys, out_g.column("outcome").to_pylist(), strict=True))
    assert all(got[k] == v for k, v in gold.items())


def test_plugs_into_build_pairs(noisy: tuple[pa.Table, set[str]]) -> None:
    from prefkit.build import pairs_from_votes

    table, _ = noisy
    res = pairs_from_votes(table.slice(0, 900), method=Aggregator("dawid-skene"), ties="drop")
    out, _, _ = aggregate_table(table.slice(0, 900), "dawid-skene")
    ties = sum(o == "tie" for o in out.column("outcome").to_pylist())
    rep = res.report
    drop = rep["dropped"]
    assert rep["params"]["method"] == "dawid-skene"
    assert rep["candidates"] == out.num_rows  # the same pairs
    assert rep["pairs_out"] + drop["identical_responses"] + drop["tie_dropped"] == out.num_rows
    # the aggregator's ties are what build drops (build drops identical responses first)
    assert abs(drop["tie_dropped"] - ties) <= drop["identical_responses"]


def test_build_cli_uses_the_aggregator(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    src = data / "pandalm_testset" / "data" / "testset-v1.json"
    out = tmp_path / "pairs.parquet"
    code, err, stdout = invoke("pairs", str(src), str(out), "--from-votes", "dawid-skene", "--json")
    assert code == 0, err
    import json

    rep = json.loads(stdout.strip().splitlines()[-1])
    assert rep["params"]["method"] == "dawid-skene" and rep["candidates"] == pandalm_items()
    assert rep["pairs_out"] == pq.read_table(out).num_rows > 800


def test_cli_aggregate(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    src = data / "pandalm_testset" / "data" / "testset-v1.json"
    gold = tmp_path / "gold.csv"
    gold.write_text("pair_id,outcome\n0,b\n1,a\nnope,a\n")
    dst = tmp_path / "agg.parquet"
    code, err, stdout = invoke(
        "aggregate", str(src), str(dst), "--method", "mace", "--gold", str(gold), "--json"
    )
    assert code == 0, err
    import json

    s = json.loads(stdout)
    assert (
        s["pairs"] == pandalm_items() and s["gold_pairs"] == 2 and s["gold_unmatched"] == ["nope"]
    )
    assert pq.read_table(tmp_path / "annotators.parquet").num_rows == 3
    assert invoke("aggregate", str(src), str(tmp_path / "x.csv"))[0] == 2
    assert invoke("aggregate", str(src), str(dst), "--method", "vote")[0] == 2
