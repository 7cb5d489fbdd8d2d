"""Votes from the simulator (known latent quality, injected faults): majority pairs beat single
votes, identical responses are counted, and a vote model that mutes the spammers helps."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from prefkit.build import AnnotatorWeights, pairs_from_votes
from prefkit.build.result import text_key
from prefkit.schema import Kind


@pytest.fixture(scope="module")
def sim() -> Any:
    from prefkit.simulate import simulate  # type: ignore[attr-defined,unused-ignore]

    return simulate("noisy", size=6000, seed=3)


def _quality(table: pa.Table) -> dict[tuple[str, str], float]:
    """(prompt_id, normalized response text) -> latent quality, from the simulator's meta."""
    out: dict[tuple[str, str], float] = {}
    for r in table.select(["prompt_id", "response_a", "response_b", "meta"]).to_pylist():
        meta = dict(r["meta"])
        for side in ("a", "b"):
            key = text_key(r[f"response_{side}"])
            if key is not None and f"quality_{side}" in meta:
                out[(r["prompt_id"], key)] = float(meta[f"quality_{side}"])
    return out


def _accuracy(pairs: pa.Table, quality: dict[tuple[str, str], float]) -> float:
    right = total = 0
    for r in pairs.select(["prompt_id", "chosen", "rejected"]).to_pylist():
        qc = quality[(r["prompt_id"], text_key(r["chosen"]) or "")]
        qr = quality[(r["prompt_id"], text_key(r["rejected"]) or "")]
        if qc != qr:
            total += 1
            right += qc > qr
    return right / total


def test_majority_beats_single_votes_and_counts_identical(sim: Any) -> None:
    votes = sim.tables[Kind.COMPARISONS]
    quality = _quality(votes)
    single = pairs_from_votes(votes.slice(0, 0))  # schema check on an empty table
    assert single.report["candidates"] == 0
    raw_right = raw_total = 0
    for r in votes.select(["prompt_id", "response_a", "response_b", "outcome"]).to_pylist():
        if r["outcome"] not in ("a", "b"):
            continue
        qa = quality[(r["prompt_id"], text_key(r["response_a"]) or "")]
        qb = quality[(r["prompt_id"], text_key(r["response_b"]) or "")]
        if qa != qb:
            raw_total += 1
            raw_right += (qa > qb) == (r["outcome"] == "a")
    res = pairs_from_votes(votes, "majority")
    acc = _accuracy(res.table, quality)
    assert acc > raw_right / raw_total + 0.03
    # identical responses injected by the simulator are never emitted, and are counted
    ident_rows = set(sim.truth["identical_response_ids"])
    assert ident_rows
    assert res.report["dropped"]["identical_responses"] >= 1
    assert not ident_rows & {i for ids in res.table.column("source_ids").to_pylist() for i in ids}
    # muting the known spammers (a fitted annotator model would estimate this) does not hurt
    muted = pairs_from_votes(votes, AnnotatorWeights({a: 0.0 for a in sim.truth["spammers"]}))
    assert _accuracy(muted.table, quality) >= acc - 0.01
