"""Pairs from pairwise votes: PandaLM (3 human votes per pair) and small known cases."""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from numpy.typing import NDArray

from prefkit.build import AnnotatorWeights, pairs_from_votes
from prefkit.build.result import text_key
from prefkit.schema import Kind, from_rows, normalize_text
from tests.build._data import pandalm_majority, pandalm_raw, pandalm_votes

LABEL = {0: "tie", 1: "a", 2: "b"}


def _text(v: Any) -> str:
    """A response as text (six PandaLM records have a JSON `true`: read as "true")."""
    return v if isinstance(v, str) else json.dumps(v)


def item_of(row: dict[str, Any]) -> str:
    """The PandaLM idx a pair came from (kept in the pair's meta)."""
    meta = row["meta"] if isinstance(row["meta"], dict) else dict(row["meta"] or [])
    for key in ("pair_id", "idx"):
        if key in meta:
            return str(meta[key])
    raise AssertionError(f"pair without a PandaLM item id: {meta}")


@lru_cache(maxsize=1)
def _votes() -> tuple[pa.Table, int]:
    return pandalm_votes()


@pytest.fixture(scope="module")
def votes() -> pa.Table:
    table, rejected = _votes()
    assert rejected + len(_kept()) == len(pandalm_raw())  # every source item: read or rejected
    return table


def _kept() -> list[dict[str, Any]]:
    """The PandaLM items that were read (not rejected), as raw records."""
    table = _votes()[0]
    ids = {item_of({"meta": m}) for m in table.column("meta").to_pylist()}
    return [x for x in pandalm_raw() if str(x["idx"]) in ids]


def _expected_majority() -> dict[str, str | None]:
    """idx -> 'a'/'b' when a strict majority picks a response, 'tie' or None otherwise."""
    return pandalm_majority(_kept())


def test_pandalm_majority_drop(votes: pa.Table) -> None:
    res = pairs_from_votes(votes, "majority", ties="drop")
    rep = res.report
    expected = _expected_majority()
    raw = {str(x["idx"]): x for x in _kept()}
    want_pairs = {k for k, v in expected.items() if v in ("a", "b")}
    got = {}
    for row in res.table.to_pylist():
        got[item_of(row)] = row
    assert set(got) == want_pairs
    for pid, row in got.items():
        x = raw[pid]
        winner = _text(x["response1"] if expected[pid] == "a" else x["response2"])
        assert text_key(row["chosen"]) == text_key([{"role": "assistant", "content": winner}])
        assert text_key(row["chosen"]) != text_key(row["rejected"])
        assert row["n_votes"] == 3
        assert row["agreement"] in (pytest.approx(2 / 3), 1.0)
        assert not row["tie"]
    n = len(_kept())
    assert rep["rows_in"] == 3 * n
    assert rep["candidates"] == n
    assert rep["pairs_out"] + sum(rep["dropped"].values()) == n
    assert rep["pairs_out"] == len(want_pairs)
    n_tie = sum(v == "tie" for v in expected.values())
    n_none = sum(v is None for v in expected.values())
    assert rep["dropped"]["tie_dropped"] == n_tie
    assert rep["dropped"]["no_majority"] == n_none
    assert rep["rows_used"] + sum(rep["rows_unused"].values()) == 3 * n


def test_pandalm_tie_policies(votes: pa.Table) -> None:
    n_tie = sum(v == "tie" for v in _expected_majority().values())
    half = pairs_from_votes(votes, ties="half")
    t = half.table.to_pylist()
    ties = [r for r in t if r["tie"]]
    assert len(ties) == 2 * n_tie and all(r["weight"] == 0.5 for r in ties)
    n_pairs = sum(v in ("a", "b") for v in _expected_majority().values())
    assert half.report["pairs_out"] == n_pairs + n_tie
    assert half.report["rows_out"] == n_pairs + 2 * n_tie
    # both orders of each tied pair
    orders = Counter(item_of(r) for r in ties)
    assert set(orders.values()) == {2}
    keep = pairs_from_votes(votes, ties="keep")
    assert sum(r["tie"] for r in keep.table.to_pylist()) == n_tie
    assert keep.report["rows_out"] == len(_kept())


def test_min_agreement_keeps_unanimous(votes: pa.Table) -> None:
    res = pairs_from_votes(votes, min_agreement=1.0)
    unanimous = sum(
        1
        for x in _kept()
        if x["annotator1"] == x["annotator2"] == x["annotator3"] and x["annotator1"] != 0
    )
    assert res.report["pairs_out"] == unanimous
    assert res.report["candidates"] == len(_kept())
    assert all(a == 1.0 for a in res.table.column("agreement").to_pylist())


def test_mean_strength_side_of_half(votes: pa.Table) -> None:
    res = pairs_from_votes(votes, "mean-strength")
    raw = {str(x["idx"]): x for x in _kept()}
    got = {item_of(r): r for r in res.table.to_pylist()}
    for pid, x in raw.items():
        c = Counter(x[f"annotator{k}"] for k in (1, 2, 3))
        if c[1] == c[2]:
            assert pid not in got
            continue
        win = _text(x["response1"] if c[1] > c[2] else x["response2"])
        assert text_key(got[pid]["chosen"]) == text_key([{"role": "assistant", "content": win}])
        assert got[pid]["margin"] == pytest.approx(abs(c[1] - c[2]) / 3)


def _rows(outcomes: list[str], swap: list[bool] | None = None, **kw: object) -> pa.Table:
    rows = []
    for i, o in enumerate(outcomes):
        a, b = "the first answer", "The second  answer"
        if swap and swap[i]:
            a, b = b, a
            o = {"a": "b", "b": "a"}.get(o, o)
        rows.append(
            {
                "prompt": "q",
                "response_a": a,
                "response_b": b,
                "outcome": o,
                "annotator": f"u{i}",
                "source": "t",
                **kw,
            }
        )
    return from_rows(rows, Kind.COMPARISONS)


def test_orientation_is_undone() -> None:
    """The same votes with a/b swapped on some rows give the same pair."""
    straight = pairs_from_votes(_rows(["a", "a", "b"]))
    swapped = pairs_from_votes(_rows(["a", "a", "b"], swap=[True, False, True]))
    for res in (straight, swapped):
        assert res.report["pairs_out"] == 1
        row = res.table.to_pylist()[0]
        assert text_key(row["chosen"]) == "the first answer"
        assert row["agreement"] == pytest.approx(2 / 3)


def test_both_bad_is_never_chosen_and_identical_never_emitted() -> None:
    res = pairs_from_votes(_rows(["both_bad", "both_bad", "a"]))
    assert res.report["dropped"]["both_bad"] == 1 and res.table.num_rows == 0
    same = from_rows(
        [{"prompt": "q", "response_a": "Same  text", "response_b": "same text", "outcome": "a"}],
        Kind.COMPARISONS,
    )
    res = pairs_from_votes(same)
    assert res.report["dropped"]["identical_responses"] == 1 and res.table.num_rows == 0
    none = pairs_from_votes(_rows(["a", "b", "tie", "both_bad"]))
    assert none.report["dropped"]["no_majority"] == 1


def test_vote_model_seam(votes: pa.Table) -> None:
    """A fitted annotator model plugs in through `method`: with annotator1 trusted 3x, the
    label is annotator1's whenever it is not outvoted 2-vs-1 by the others agreeing."""
    model = AnnotatorWeights({"annotator1": 3.0, "annotator2": 1.0, "annotator3": 1.0})
    res = pairs_from_votes(votes, model, ties="keep")
    raw = {str(x["idx"]): x for x in _kept()}
    got = {item_of(r): r for r in res.table.to_pylist()}
    assert res.report["candidates"] == len(_kept())
    for pid, x in raw.items():
        first = LABEL[x["annotator1"]]  # weight 3 > 1 + 1: annotator1 always wins
        row = got[pid]
        if first == "tie":
            assert row["tie"]
            continue
        win = _text(x["response1"] if first == "a" else x["response2"])
        assert text_key(row["chosen"]) == text_key([{"role": "assistant", "content": win}])
        assert row["agreement"] == pytest.approx(
            (3 + sum(LABEL[x[f"annotator{k}"]] == first for k in (2, 3))) / 5
        )

    def posterior(oriented: pa.Table, group: NDArray[np.int64]) -> NDArray[np.float64]:
        p = np.zeros((int(group.max()) + 1, 4))
        p[:, 1] = 1.0  # a model that always says b
        return p

    res = pairs_from_votes(votes, posterior)
    assert res.report["pairs_out"] == len(_kept())
    for row in res.table.to_pylist():
        x = raw[item_of(row)]
        assert text_key(row["chosen"]) == text_key(
            [{"role": "assistant", "content": _text(x["response2"])}]
        )


def test_grouping_without_pair_id_uses_text_and_model(votes: pa.Table) -> None:
    """PandaLM has items where two models wrote the same texts: without a pair id, the model
    names keep them apart (one group per item); without models either, identical items merge."""
    no_meta = votes.set_column(
        votes.schema.get_field_index("meta"),
        "meta",
        pa.nulls(votes.num_rows, votes.schema.field("meta").type),
    )
    assert pairs_from_votes(no_meta).report["candidates"] == len(_kept())
    text_only = no_meta
    for name in ("model_a", "model_b"):
        i = text_only.schema.get_field_index(name)
        text_only = text_only.set_column(i, name, pa.nulls(votes.num_rows, pa.string()))
    merged = pairs_from_votes(text_only).report
    same_text = {
        (
            normalize_text(x["instruction"]),
            normalize_text(x["input"]),
            frozenset(
                (normalize_text(_text(x["response1"])), normalize_text(_text(x["response2"])))
            ),
        )
        for x in _kept()
    }
    assert merged["candidates"] == len(same_text) < len(_kept())
