"""Pairs from ratings: sweet-spot against a direct computation, best-vs-worst, all-pairs with a
margin, aspect weights, single responses."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import numpy as np
import pyarrow as pa
import pytest

from prefkit.build import pairs_from_ratings
from prefkit.build.result import text_key
from prefkit.schema import Kind, from_rows
from tests.build._data import generated_ratings, simulated_ratings


@pytest.fixture(scope="module")
def ratings() -> pa.Table:
    return simulated_ratings()


def _scores(table: pa.Table) -> dict[str, dict[str, float]]:
    """prompt_id -> {normalized response text: score}, computed directly: mean per aspect,
    then the overall (null aspect) score if there is one, else the mean over aspects."""
    acc: dict[str, dict[str, dict[str | None, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for r in table.select(["prompt_id", "response", "score", "aspect"]).to_pylist():
        acc[r["prompt_id"]][text_key(r["response"]) or ""][r["aspect"]].append(r["score"])
    out: dict[str, dict[str, float]] = {}
    for p, responses in acc.items():
        out[p] = {}
        for k, aspects in responses.items():
            means = {a: float(np.mean(v)) for a, v in aspects.items()}
            out[p][k] = means[None] if None in means else float(np.mean(list(means.values())))
    return out


def _check_sweet_spot(ratings: pa.Table) -> pa.Table:
    res = pairs_from_ratings(ratings, "sweet-spot")
    scores = _scores(ratings)
    assert res.report["pairs_out"] + res.report["dropped"]["tie_dropped"] == sum(
        len(s) >= 2 for s in scores.values()
    )
    for row in res.table.to_pylist():
        s = scores[row["prompt_id"]]
        vals = np.array(list(s.values()))
        target = vals.mean() - 2 * vals.std()
        best = max(s, key=lambda k: s[k])
        others = {k: v for k, v in s.items() if k != best}
        nearest = min(others, key=lambda k: (abs(others[k] - target), others[k]))
        assert s[text_key(row["chosen"]) or ""] == s[best]
        assert s[text_key(row["rejected"]) or ""] == others[nearest]
        assert row["margin"] == pytest.approx(s[best] - s[nearest])
    out: pa.Table = res.table
    return out


def test_sweet_spot_on_simulated_ratings(ratings: pa.Table) -> None:
    assert _check_sweet_spot(ratings).num_rows > 0


def test_sweet_spot_with_many_samples_is_not_the_worst() -> None:
    """48 samples per prompt: μ − 2σ sits inside the samples, so the pick often differs from
    the worst response (with few samples it usually is the worst)."""
    ratings = generated_ratings(n_prompts=40, per_prompt=48, seed=1)
    sweet = _check_sweet_spot(ratings).column("rejected").to_pylist()
    worst = pairs_from_ratings(ratings, "best-vs-worst").table.column("rejected").to_pylist()
    assert sum(x != y for x, y in zip(worst, sweet, strict=True)) >= 5


def test_best_vs_worst_and_random(ratings: pa.Table) -> None:
    scores = _scores(ratings)
    res = pairs_from_ratings(ratings, "best-vs-worst")
    for row in res.table.to_pylist():
        s = scores[row["prompt_id"]]
        assert s[text_key(row["chosen"]) or ""] == max(s.values())
        assert s[text_key(row["rejected"]) or ""] == min(s.values())
        assert row["margin"] == pytest.approx(max(s.values()) - min(s.values()))
    a = pairs_from_ratings(ratings, "best-vs-random", rng=np.random.default_rng(3))
    b = pairs_from_ratings(ratings, "best-vs-random", rng=np.random.default_rng(3))
    c = pairs_from_ratings(ratings, "best-vs-random", rng=np.random.default_rng(4))
    assert a.table.column("rejected").to_pylist() == b.table.column("rejected").to_pylist()
    assert a.table.column("rejected").to_pylist() != c.table.column("rejected").to_pylist()
    for row in a.table.to_pylist():
        s = scores[row["prompt_id"]]
        assert s[text_key(row["chosen"]) or ""] == max(s.values())


@pytest.mark.parametrize("m", [0.0, 0.5, 1.5])
def test_all_pairs_min_margin(ratings: pa.Table, m: float) -> None:
    res = pairs_from_ratings(ratings, "all-pairs", min_margin=m)
    scores = _scores(ratings)
    implied = sum(len(s) * (len(s) - 1) // 2 for s in scores.values())
    ties = sum(1 for s in scores.values() for x, y in combinations(s.values(), 2) if x == y)
    keep = sum(
        1
        for s in scores.values()
        for x, y in combinations(s.values(), 2)
        if x != y and abs(x - y) >= m
    )
    rep = res.report
    assert rep["candidates"] == implied
    assert rep["pairs_out"] == keep
    assert rep["dropped"]["tie_dropped"] == ties
    assert rep["dropped"]["below_margin"] == implied - keep - ties
    assert all(x >= m for x in res.table.column("margin").to_pylist())


def test_aspect_weights_and_single_response() -> None:
    rows = []
    # response A: great helpfulness, poor honesty; B the reverse
    for resp, h, o in (("A", 5.0, 1.0), ("B", 2.0, 5.0)):
        rows.append({"prompt": "p", "response": resp, "aspect": "helpfulness", "score": h})
        rows.append({"prompt": "p", "response": resp, "aspect": "honesty", "score": o})
    rows.append({"prompt": "lonely", "response": "only one", "score": 3.0})
    rows.append({"prompt": "p", "response": "C", "aspect": "helpfulness", "score": 4.0})
    table = from_rows(rows, Kind.RATINGS)
    helpful = pairs_from_ratings(table, aspect_weights="helpfulness=0.9,honesty=0.1")
    honest = pairs_from_ratings(table, aspect_weights={"helpfulness": 0.1, "honesty": 0.9})
    assert text_key(helpful.table.column("chosen")[0].as_py()) == "a"
    assert helpful.table.column("margin")[0].as_py() == pytest.approx(4.6 - 2.3)
    assert text_key(honest.table.column("chosen")[0].as_py()) == "b"
    for res in (helpful, honest):
        assert res.report["dropped"]["single_response"] == 1
        # C lacks honesty, the lonely response has no aspect at all
        assert res.report["rows_unused"] == {"missing_aspect": 2}
        assert res.report["rows_used"] + sum(res.report["rows_unused"].values()) == len(rows)
    plain = pairs_from_ratings(table)  # no weights: mean over aspects, C = 4.0 is best
    assert text_key(plain.table.column("chosen")[0].as_py()) == "c"
    assert plain.report["rows_unused"] == {"single_response": 1, "not_selected": 2}


def test_equal_scores_follow_tie_policy() -> None:
    rows = [{"prompt": "p", "response": r, "score": 3.0} for r in ("x", "y")]
    table = from_rows(rows, Kind.RATINGS)
    assert pairs_from_ratings(table).report["dropped"]["tie_dropped"] == 1
    keep = pairs_from_ratings(table, ties="keep").table.to_pylist()
    assert len(keep) == 1 and keep[0]["tie"] and keep[0]["margin"] == 0.0
    half = pairs_from_ratings(table, ties="half").table.to_pylist()
    assert [r["weight"] for r in half] == [0.5, 0.5]
    assert text_key(half[0]["chosen"]) == text_key(half[1]["rejected"])


def test_aspect_weights_match_direct_computation(ratings: pa.Table) -> None:
    aspects = sorted({a for a in ratings.column("aspect").to_pylist() if a is not None})
    if not aspects:  # the generated world has overall scores only: rate two aspects here
        rows = ratings.to_pylist()
        for r in rows:
            r["aspect"] = "helpfulness"
        extra = [
            {**r, "aspect": "honesty", "id": r["id"] + "h", "score": -r["score"]} for r in rows
        ]
        ratings = from_rows(rows + extra, Kind.RATINGS)
        aspects = ["helpfulness", "honesty"]
    weights = {a: float(i + 1) for i, a in enumerate(aspects)}
    res = pairs_from_ratings(ratings, "best-vs-worst", aspect_weights=weights)
    acc: dict[str, dict[str, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for r in ratings.select(["prompt_id", "response", "score", "aspect"]).to_pylist():
        if r["aspect"] is not None:
            acc[r["prompt_id"]][text_key(r["response"]) or ""][r["aspect"]].append(r["score"])
    assert res.report["pairs_out"] > 0
    for row in res.table.to_pylist():
        combined = {
            k: sum(w * float(np.mean(a[x])) for x, w in weights.items()) / sum(weights.values())
            for k, a in acc[row["prompt_id"]].items()
            if all(x in a for x in weights)
        }
        assert row["margin"] == pytest.approx(max(combined.values()) - min(combined.values()))
        assert combined[text_key(row["chosen"]) or ""] == pytest.approx(max(combined.values()))
