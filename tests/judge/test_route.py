"""`prefkit judge route`: hybrid routing of the hard pairs to people, checked on simulated
judges whose errors are known, and the campaign file it writes loaded by `prefkit serve`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from tests.judge.conftest import cli, error_line

from prefkit.io.canonical import load
from prefkit.judge.audit import collect
from prefkit.judge.route import evaluate_routing
from prefkit.schema import Kind
from prefkit.simulate import simulate, write_simulation
from prefkit.simulate.judges import true_labels


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("simr")
    write_simulation(simulate("judges", size=6000, seed=2), d)
    return d


def test_route_writes_a_campaign_that_serve_loads(sim_dir: Path, tmp_path: Path) -> None:
    f = sim_dir / "comparisons.parquet"
    out = tmp_path / "campaign.jsonl"
    p = cli("judge", "route", str(f), str(out), "--budget", "10%", "--json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    truth = json.loads((sim_dir / "truth.json").read_text())
    n_pairs = truth["pairs"]
    assert s["pairs"] == n_pairs and s["routed"] == round(0.1 * n_pairs)
    assert s["human_labelled_pairs"] == truth["pairs_with_humans"]
    assert s["strategy_used"] == "model" and s["calibration"]["oof_auc"] > 0.6
    e = s["expected_accuracy"]
    assert e["after"] > e["before"]
    assert e["after"] - e["before"] == pytest.approx(
        s["routed"] * s["routed_mean_p_wrong"] / n_pairs, rel=1e-9
    )
    camp = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(camp) == s["routed"]
    ranks = [int(r["meta"]["route_rank"]) for r in camp]
    assert ranks == list(range(1, len(camp) + 1))
    pw = [float(r["meta"]["p_judge_wrong"]) for r in camp]
    assert pw == sorted(pw, reverse=True)
    assert all(r["response_a"] and r["response_b"] and r["meta"]["route_reason"] for r in camp)
    labels = load(Path(s["rest"]))
    assert labels.num_rows + len(camp) == n_pairs
    src = [dict(m)["label_source"] for m in labels.column("meta").to_pylist()]
    assert src.count("human") == truth["pairs_with_humans"]
    routed_ids = {r["meta"]["pair_id"] for r in camp}
    assert routed_ids.isdisjoint(dict(m)["pair_id"] for m in labels.column("meta").to_pylist())
    # the campaign file goes straight into the web app
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    p = cli("serve", "create", str(out), "--db", db, "--name", "hard-pairs")
    assert p.returncode == 0, p.stderr
    import sqlalchemy as sa

    eng = sa.create_engine(db)
    with eng.connect() as con:
        n_items = con.execute(sa.text("select count(*) from items")).scalar_one()
    eng.dispose()
    assert n_items == len(camp)


def test_route_usage_and_input_errors(sim_dir: Path, tmp_path: Path) -> None:
    f = sim_dir / "comparisons.parquet"
    p = cli("judge", "route", str(f), str(tmp_path / "c.jsonl"), "--budget", "lots")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    p = cli("judge", "route", str(f), str(tmp_path / "c.jsonl"), "--budget", "5", "--by", "vibes")
    assert p.returncode == 2
    t = load(f)
    judges_only = t.filter(
        np.array([a.startswith("judge:") for a in t.column("annotator").to_pylist()])
    )
    from prefkit.io import save

    g = save(judges_only, tmp_path / "judges.parquet")
    p = cli("judge", "route", str(g), str(tmp_path / "c.jsonl"), "--budget", "5", "--by", "model")
    assert p.returncode == 1 and "--by model needs" in error_line(p)
    # without human labels, auto falls back to the panel posterior
    p = cli("judge", "route", str(g), str(tmp_path / "c.parquet"), "--budget", "5", "--json",
            "--rest", str(tmp_path / "rest.parquet"), "--seed", "1", "--from", "canonical")  # fmt: skip
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["strategy_used"] == "uncertainty" and s["routed"] == 5
    assert (tmp_path / "rest.parquet").exists()
    # human votes in a separate file count as the humans
    humans = t.filter(
        np.array([not a.startswith("judge:") for a in t.column("annotator").to_pylist()])
    )
    h = save(humans, tmp_path / "humans.parquet")
    p = cli("judge", "route", str(g), str(tmp_path / "c2.jsonl"), "--budget", "5", "--json",
            "--human", str(h), "--judges", "judge:sim-position-judge,judge:sim-verbose-judge")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["human_labelled_pairs"] > 0


@pytest.mark.slow
def test_routing_beats_random_and_disagreement_over_five_seeds() -> None:
    """Every pair has judge and human votes; 10% keep their human votes, 10% more may be
    routed; final labels are scored against the latent truth. Paired over 5 seeds."""
    res = []
    for seed in range(5):
        t = simulate("judges", size=12_000, seed=100 + seed, human_share=1.0).tables[
            Kind.COMPARISONS
        ]
        truth = true_labels(t, collect(t).pair_ids)
        res.append(evaluate_routing(t, truth, 0.1, 0.1, ("auto", "disagreement", "random"), seed))
    assert all(r["auto_strategy_used"] == "model" for r in res)
    auto = np.array([r["auto"] for r in res])
    for other in ("random", "disagreement", "no_routing"):
        d = auto - np.array([r[other] for r in res])
        lo = d.mean() - stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        assert d.mean() > 0 and lo > 0, (other, d)
