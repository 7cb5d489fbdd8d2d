"""Pairs from rankings on FineGrainedRLHF qa-feedback (4 predictions per question)."""

from __future__ import annotations

from collections import Counter
from math import comb

import pyarrow as pa
import pytest

from prefkit.build import pairs_from_rankings
from prefkit.build.result import text_key
from tests.build._data import FG_PAIRS, finegrained_rankings, finegrained_ranks, finegrained_raw


@pytest.fixture(scope="module")
def rankings() -> pa.Table:
    return finegrained_rankings()


def _closed_form(ranks: list[int], mode: str) -> tuple[int, int]:
    """(strict pairs, tied pairs) a ranking implies, in closed form."""
    levels = Counter(ranks)
    ties = sum(comb(k, 2) for k in levels.values())
    if mode == "all":
        return comb(len(ranks), 2) - ties, ties
    order = sorted(levels)
    if mode == "adjacent":
        strict = sum(levels[a] * levels[b] for a, b in zip(order, order[1:], strict=False))
        return strict, ties
    best = levels[order[0]]
    return best * (len(ranks) - best), comb(best, 2)


def _identical_strict(table: pa.Table) -> int:
    n = 0
    for resp, ranks in zip(
        table.column("responses").to_pylist(), table.column("ranks").to_pylist(), strict=True
    ):
        keys = [text_key(r) for r in resp]
        n += sum(
            1
            for i in range(len(ranks))
            for j in range(i + 1, len(ranks))
            if keys[i] == keys[j] and ranks[i] != ranks[j]
        )
    return n


@pytest.mark.parametrize("mode", ["all", "adjacent", "best-vs-rest"])
def test_implied_pairs_equal_closed_form(rankings: pa.Table, mode: str) -> None:
    res = pairs_from_rankings(rankings, mode)  # type: ignore[arg-type]
    strict = ties = 0
    for ranks in rankings.column("ranks").to_pylist():
        s, t = _closed_form(ranks, mode)
        strict += s
        ties += t
    rep = res.report
    # no two of the four predictions of a question are the same text in this data set
    assert _identical_strict(rankings) == 0 and rep["dropped"]["identical_responses"] == 0
    assert rep["pairs_out"] == strict
    assert rep["dropped"]["tie_dropped"] == ties
    assert rep["candidates"] == rep["pairs_out"] + sum(rep["dropped"].values()) == strict + ties
    assert all(not r["tie"] for r in res.table.to_pylist())
    assert strict > 1000 and ties > 100  # the real data has both


def test_pairs_are_the_annotated_preferences() -> None:
    """On questions whose 6 pairwise preferences form a ranking, `all` gives back exactly the
    non-tie preferences the annotators gave (from the raw file)."""
    from prefkit.schema import Kind, from_rows

    rows, expected = [], set()
    for n, x in enumerate(finegrained_raw()):
        ranks = finegrained_ranks(x["preference"])
        if ranks is None:
            continue
        preds = [x[f"prediction {k}"] for k in range(1, 5)]
        rows.append({"id": f"q{n}", "prompt": x["question"], "responses": preds, "ranks": ranks})
        for (i, j), p in zip(FG_PAIRS, x["preference"], strict=True):
            if p:
                c, r = (i, j) if p == 1 else (j, i)
                expected.add((f"q{n}", preds[c], preds[r]))
    res = pairs_from_rankings(from_rows(rows, Kind.RANKINGS), "all")
    got = {
        (r["source_ids"][0], r["chosen"][0]["content"], r["rejected"][0]["content"])
        for r in res.table.to_pylist()
    }
    assert got == expected


def test_rank_gap_margin_and_curriculum(rankings: pa.Table) -> None:
    res = pairs_from_rankings(rankings, "all", curriculum=True)
    margins = res.table.column("margin").to_pylist()
    assert margins == sorted(margins, reverse=True)
    assert margins[0] > margins[-1]
    for r in res.table.to_pylist():
        m = r["meta"] if isinstance(r["meta"], dict) else dict(r["meta"])
        assert r["margin"] == int(m["rank_rejected"]) - int(m["rank_chosen"]) > 0
    plain = pairs_from_rankings(rankings, "all")
    assert sorted(plain.table.column("id").to_pylist()) == sorted(
        res.table.column("id").to_pylist()
    )


def test_tie_policies_inside_rankings(rankings: pa.Table) -> None:
    drop = pairs_from_rankings(rankings, "all")
    keep = pairs_from_rankings(rankings, "all", ties="keep")
    half = pairs_from_rankings(rankings, "all", ties="half")
    n_ties = drop.report["dropped"]["tie_dropped"]
    assert keep.table.num_rows == drop.table.num_rows + n_ties
    assert half.table.num_rows == drop.table.num_rows + 2 * n_ties
    assert sum(keep.table.column("tie").to_pylist()) == n_ties
