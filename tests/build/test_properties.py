"""Property tests: for any input, pairs out + counted drops = pairs implied; no pair has
identical responses; every input row is accounted for; splits are disjoint by group."""

from __future__ import annotations

from collections import defaultdict
from math import comb
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefkit.build import (
    pairs_from_binary,
    pairs_from_rankings,
    pairs_from_ratings,
    pairs_from_votes,
)
from prefkit.build.result import BuildResult, text_key
from prefkit.build.splits import split
from prefkit.schema import Kind, from_rows

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# a small alphabet so that collisions (same prompt, same response, "A" vs "a ") happen often
texts = st.sampled_from(["a", "A ", "b", "c", "d d", "D  d", "e"])
prompts = st.sampled_from(["p1", "p2", "P1", "p3"])
ties = st.sampled_from(["drop", "half", "keep"])


def _check(res: BuildResult, implied: int) -> None:
    rep = res.report
    assert rep["candidates"] == implied
    assert rep["pairs_out"] + sum(rep["dropped"].values()) == implied
    assert rep["rows_used"] + sum(rep["rows_unused"].values()) == rep["rows_in"]
    for r in res.table.to_pylist():
        assert text_key(r["chosen"]) != text_key(r["rejected"])
    assert res.table.num_rows >= rep["pairs_out"]


comparison = st.fixed_dictionaries(
    {
        "prompt": prompts,
        "response_a": texts | st.none(),
        "response_b": texts,
        "outcome": st.sampled_from(["a", "b", "tie", "both_bad"]),
        "strength": st.none() | st.floats(0, 1),
        "annotator": st.sampled_from(["u1", "u2", "u3"]),
    }
)


@SETTINGS
@given(
    st.lists(comparison, max_size=25),
    ties,
    st.sampled_from(["majority", "mean-strength"]),
    st.floats(0, 1),
)
def test_votes_accounting(rows: list[dict[str, Any]], tie: str, method: str, agree: float) -> None:
    table = from_rows(rows, Kind.COMPARISONS)
    res = pairs_from_votes(table, method, ties=tie, min_agreement=agree)  # type: ignore[arg-type]
    groups = set()
    for r in table.to_pylist():
        ka = text_key(r["response_a"]) or "\0model:None"
        kb = text_key(r["response_b"]) or "\0model:None"
        groups.add((r["prompt_id"], min(ka, kb), max(ka, kb)))
    _check(res, len(groups))
    for r in res.table.to_pylist():
        assert r["n_votes"] >= 1 and 0 <= r["agreement"] <= 1


rating = st.fixed_dictionaries(
    {"prompt": prompts, "response": texts, "score": st.integers(1, 5).map(float)}
)


@SETTINGS
@given(
    st.lists(rating, max_size=25),
    ties,
    st.sampled_from(["best-vs-worst", "best-vs-random", "all-pairs", "sweet-spot"]),
    st.none() | st.floats(0, 3),
)
def test_ratings_accounting(
    rows: list[dict[str, Any]], tie: str, strategy: str, margin: float | None
) -> None:
    table = from_rows(rows, Kind.RATINGS)
    res = pairs_from_ratings(table, strategy, min_margin=margin, ties=tie)  # type: ignore[arg-type]
    distinct: dict[str, set[str | None]] = defaultdict(set)
    for r in table.to_pylist():
        distinct[r["prompt_id"]].add(text_key(r["response"]))
    implied = 0
    for resp in distinct.values():
        n = len(resp)
        implied += 1 if n < 2 else (comb(n, 2) if strategy == "all-pairs" else 1)
    _check(res, implied)
    if margin is not None:
        assert all(
            m >= margin or t
            for m, t in zip(
                res.table.column("margin").to_pylist(),
                res.table.column("tie").to_pylist(),
                strict=True,
            )
        )


ranking = st.integers(2, 5).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "prompt": prompts,
            "responses": st.lists(texts, min_size=n, max_size=n),
            "ranks": st.lists(st.integers(1, 4), min_size=n, max_size=n),
        }
    )
)


@SETTINGS
@given(st.lists(ranking, max_size=10), ties, st.sampled_from(["all", "adjacent", "best-vs-rest"]))
def test_rankings_accounting(rows: list[dict[str, Any]], tie: str, mode: str) -> None:
    table = from_rows(rows, Kind.RANKINGS)
    res = pairs_from_rankings(table, mode, ties=tie)  # type: ignore[arg-type]
    implied = 0
    for r in rows:
        ranks = r["ranks"]
        levels = sorted(set(ranks))
        for i in range(len(ranks)):
            for j in range(i + 1, len(ranks)):
                lo, hi = sorted((levels.index(ranks[i]), levels.index(ranks[j])))
                if (
                    mode == "all"
                    or (mode == "adjacent" and hi - lo <= 1)
                    or (mode == "best-vs-rest" and lo == 0)
                ):
                    implied += 1
    _check(res, implied)
    for r in res.table.to_pylist():
        assert r["tie"] or r["margin"] > 0


thumb = st.fixed_dictionaries({"prompt": prompts, "response": texts, "label": st.booleans()})


@SETTINGS
@given(st.lists(thumb, max_size=25))
def test_binary_accounting(rows: list[dict[str, Any]]) -> None:
    table = from_rows(rows, Kind.BINARY)
    res = pairs_from_binary(table)
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in table.to_pylist():
        per[r["prompt_id"]][int(r["label"])] += 1
    implied = sum(up * down if up and down else 1 for down, up in per.values())
    _check(res, implied)


@SETTINGS
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "prompt": st.text("abc ", min_size=1, max_size=6),
                "source": st.sampled_from(["s1", "s2", None]),
                "annotator": st.sampled_from(["x", "y", "z", None]),
            }
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["prompt", "source", "annotator"]),
    st.floats(0.05, 0.5),
    st.floats(0.0, 0.3),
    st.integers(0, 5),
    st.booleans(),
)
def test_splits_disjoint_by_group(
    rows: list[dict[str, Any]], by: str, test: float, val: float, seed: int, near: bool
) -> None:
    for r in rows:
        r.update(response_a="x", response_b="y", outcome="a")
    table = from_rows(rows, Kind.COMPARISONS)
    res = split(table, by, test=test, val=val, seed=seed, near_dup=near)  # type: ignore[arg-type]
    col = {"prompt": "prompt_id", "source": "source", "annotator": "annotator"}[by]
    seen: dict[Any, str] = {}
    total = 0
    for name, t in res.tables.items():
        total += t.num_rows
        for key in t.column(col).to_pylist():
            assert seen.setdefault(key, name) == name
    if by == "prompt" or near:  # prompt ids never cross splits
        pid_sets = [set(t.column("prompt_id").to_pylist()) for t in res.tables.values()]
        for i in range(len(pid_sets)):
            for j in range(i + 1, len(pid_sets)):
                assert not (pid_sets[i] & pid_sets[j])
    assert total == table.num_rows
    again = split(table, by, test=test, val=val, seed=seed, near_dup=near)  # type: ignore[arg-type]
    assert list(again.labels) == list(res.labels)
    assert isinstance(res.tables["train"], pa.Table)
