"""Every scenario: valid canonical tables, deterministic per seed, truth consistent with rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from prefkit.io.canonical import load
from prefkit.schema import Kind, validate
from prefkit.simulate import SCENARIOS, simulate, write_simulation
from tests.simulate.test_truth import bt_scores

REQUIRED_TRUTH = {
    "scenario", "seed", "model_strength", "flipped_ids", "spammers", "position_bias",
    "length_bias", "duplicate_groups", "annotators",
}  # fmt: skip


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_writes_valid_canonical_files(name: str, tmp_path: Path) -> None:
    sc = SCENARIOS[name]
    size = 800
    sim = simulate(name, size=size, seed=3)
    assert set(sim.tables) == set(sc.kinds)
    assert REQUIRED_TRUTH <= set(sim.truth)
    assert sim.truth["scenario"] == name and sim.truth["seed"] == 3
    main = sim.tables[sc.kinds[0]]
    assert main.num_rows == size
    paths = write_simulation(sim, tmp_path)
    assert {p.name for p in paths} == {f"{k.value}.parquet" for k in sc.kinds} | {"truth.json"}
    for k, t in sim.tables.items():
        validate(t, k)
        back = load(tmp_path / f"{k.value}.parquet")
        assert back.num_rows == t.num_rows
        assert len(set(t.column("id").to_pylist())) == t.num_rows  # ids are unique
        assert set(t.column("source").to_pylist()) == {f"sim:{name}"}
    if Kind.COMPARISONS in sim.tables:
        t = sim.tables[Kind.COMPARISONS]
        assert set(t.column("shown_first").to_pylist()) == {"a", "b"}
        assert t.column("model_a").null_count == 0 and t.column("annotator").null_count == 0
        assert all("pair_id" in dict(m) for m in t.column("meta").to_pylist())
        texts = [r[0]["content"] for r in t.column("response_a").to_pylist()]
        assert all(len(x.split()) >= 4 for x in texts)  # real sentences, not tokens


def test_same_seed_is_byte_identical_and_other_seed_differs(tmp_path: Path) -> None:
    for name in ("noisy", "ratings"):
        a = write_simulation(simulate(name, size=1500, seed=7), tmp_path / "a" / name)
        b = write_simulation(simulate(name, size=1500, seed=7), tmp_path / "b" / name)
        c = write_simulation(simulate(name, size=1500, seed=8), tmp_path / "c" / name)
        for pa_, pb_, pc_ in zip(a, b, c, strict=True):
            assert pa_.read_bytes() == pb_.read_bytes(), pa_.name
            assert pa_.read_bytes() != pc_.read_bytes(), pa_.name
    t7 = simulate("arena", size=500, seed=7).tables[Kind.COMPARISONS]
    t8 = simulate("arena", size=500, seed=8).tables[Kind.COMPARISONS]
    assert t7.column("response_a").to_pylist() != t8.column("response_a").to_pylist()


def test_votes_per_pair_and_unknown_options() -> None:
    one = simulate("noisy", size=3000, seed=1, votes_per_pair=1)
    pairs = [dict(m)["pair_id"] for m in one.tables[Kind.COMPARISONS].column("meta").to_pylist()]
    base = [p for p in pairs if not p.endswith("-near")]
    assert len(set(base)) >= 0.97 * len(base)  # only the exact duplicates repeat a pair
    three = simulate("noisy", size=3000, seed=1)
    t = three.tables[Kind.COMPARISONS]
    by_pair: dict[str, set[str]] = {}
    for m, a in zip(t.column("meta").to_pylist(), t.column("annotator").to_pylist(), strict=True):
        by_pair.setdefault(dict(m)["pair_id"], set()).add(a)
    sizes = [len(v) for v in by_pair.values()]
    assert np.median(sizes) == 3  # three different annotators per pair
    with pytest.raises(ValueError, match="unknown option"):
        simulate("noisy", size=100, bogus=1)
    with pytest.raises(ValueError, match="unknown scenario"):
        simulate("nope")


def test_identity_only_arena() -> None:
    sim = simulate("arena", size=400, seed=1, text=False)
    t = sim.tables[Kind.COMPARISONS]
    validate(t, Kind.COMPARISONS)
    assert t.column("response_a").null_count == t.column("response_b").null_count == 400
    assert t.column("model_a").null_count == 0 and sim.truth["identical_response_ids"] == []
    with_text = simulate("arena", size=400, seed=1).tables[Kind.COMPARISONS]
    assert t.column("outcome").to_pylist() == with_text.column("outcome").to_pylist()


def test_clean_has_no_injected_faults() -> None:
    sim = simulate("clean", size=2000, seed=0)
    tr = sim.truth
    assert tr["flipped_ids"] == [] and tr["spammers"] == [] and tr["duplicate_groups"] == []
    assert tr["position_bias"] == 0.0 and tr["length_bias"] == 0.0
    assert {a["persona"] for a in tr["annotators"].values()} == {"careful"}
    t = sim.tables[Kind.COMPARISONS]
    strength = np.array(t.column("strength").to_pylist(), dtype=float)
    out = np.array(t.column("outcome").to_pylist())
    # graded strength agrees with the outcome; null only for both_bad
    assert (strength[out == "a"] > 0.5).all() and (strength[out == "b"] < 0.5).all()
    assert (strength[out == "tie"] == 0.5).all() and np.isnan(strength[out == "both_bad"]).all()


def test_ratings_binary_and_critiques() -> None:
    sim = simulate("ratings", size=4000, seed=2)
    r = sim.tables[Kind.RATINGS]
    aspects = r.column("aspect").to_pylist()
    assert set(aspects) == {None, "helpfulness", "correctness", "harmlessness"}
    score = np.array(r.column("score").to_pylist())
    assert set(np.unique(score)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    q = np.array([float(dict(m)["quality"]) for m in r.column("meta").to_pylist()])
    overall = np.array([a is None for a in aspects])
    assert spearmanr(score[overall], q[overall]).statistic > 0.5
    b = sim.tables[Kind.BINARY]
    up = np.array(b.column("label").to_pylist())
    qb = np.array([float(dict(m)["quality"]) for m in b.column("meta").to_pylist()])
    assert qb[up].mean() > qb[~up].mean() + 0.5
    c = sim.tables[Kind.CRITIQUES]
    n_spans = 0
    for resp, spans in zip(
        c.column("response").to_pylist(), c.column("spans").to_pylist(), strict=True
    ):
        text = resp[0]["content"]
        for s in spans:
            assert 0 <= s["start"] < s["end"] <= len(text)
            assert s["label"] in {"incorrect", "factual_error", "unsafe"}
            n_spans += 1
    assert n_spans > 100
    assert sim.truth["aspects"] == ["helpfulness", "correctness", "harmlessness"]


def test_rankings_follow_quality() -> None:
    sim = simulate("rankings", size=1500, seed=4)
    t = sim.tables[Kind.RANKINGS]
    rhos = []
    has_tie = False
    for ranks, meta in zip(
        t.column("ranks").to_pylist(), t.column("meta").to_pylist(), strict=True
    ):
        q = [float(x) for x in dict(meta)["qualities"].split(",")]
        assert len(ranks) == len(q) == 4 and min(ranks) == 1
        has_tie |= len(set(ranks)) < len(ranks)
        if np.ptp(q) > 0 and len(set(ranks)) > 1:
            rhos.append(spearmanr(q, [-r for r in ranks]).statistic)
    assert np.nanmean(rhos) > 0.4
    assert has_tie


def test_pluralistic_groups_have_their_own_order() -> None:
    sim = simulate("pluralistic", seed=0)
    t = sim.tables[Kind.COMPARISONS]
    tr = sim.truth
    assert set(tr["groups"]) == {"helpful", "safe", "concise", "verbose"}
    group_of = {a: v["params"]["group"] for a, v in tr["annotators"].items()}
    names = sorted(tr["model_strength"])
    ma, mb = t.column("model_a").to_pylist(), t.column("model_b").to_pylist()
    out, ann = t.column("outcome").to_pylist(), t.column("annotator").to_pylist()
    for g, strength in tr["group_model_strength"].items():
        rows = [i for i, a in enumerate(ann) if group_of[a] == g]
        est = bt_scores([ma[i] for i in rows], [mb[i] for i in rows], [out[i] for i in rows], names)
        assert spearmanr(est, [strength[n] for n in names]).statistic > 0.6, g
    # on the same pair, two annotators of one group agree more often than two of different groups
    by_pair: dict[str, list[int]] = {}
    for i, m in enumerate(t.column("meta").to_pylist()):
        by_pair.setdefault(dict(m)["pair_id"], []).append(i)
    same, diff = [], []
    for rows in by_pair.values():
        if len(rows) != 2 or {out[rows[0]], out[rows[1]]} - {"a", "b"}:
            continue
        agree = out[rows[0]] == out[rows[1]]
        (same if group_of[ann[rows[0]]] == group_of[ann[rows[1]]] else diff).append(agree)
    assert len(same) > 200 and len(diff) > 200
    assert np.mean(same) > np.mean(diff) + 0.05


def test_text_carries_the_latent_quality() -> None:
    """Simple word features of the two responses predict the clean votes well above chance:
    the latent attributes are really written into the text."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t = simulate("clean", size=3000, seed=11).tables[Kind.COMPARISONS]
    out = np.array(t.column("outcome").to_pylist())
    keep = np.isin(out, ["a", "b"])
    ta = [r[0]["content"] for r in t.column("response_a").to_pylist()]
    tb = [r[0]["content"] for r in t.column("response_b").to_pylist()]
    vec = TfidfVectorizer(min_df=3).fit(ta + tb)
    x = (vec.transform(ta) - vec.transform(tb))[keep]
    y = (out[keep] == "a").astype(int)
    n = len(y) * 4 // 5
    clf = LogisticRegression(C=3.0, max_iter=500).fit(x[:n], y[:n])
    acc = (clf.predict(x[n:]) == y[n:]).mean()
    true_pref = np.array([float(dict(m)["true_pref"]) for m in t.column("meta").to_pylist()])[keep]
    oracle = ((true_pref[n:] > 0.5) == y[n:]).mean()
    print(f"text model accuracy {acc:.3f}, latent-quality accuracy {oracle:.3f}")
    assert acc > 0.7
    assert acc > oracle - 0.15  # close to what the latent quality itself achieves
