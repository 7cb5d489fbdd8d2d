"""Property: every output of `prefkit pairs` (the pairs table, the TRL export, standard or
conversational, the KTO export; Parquet or JSON lines) reads back through `prefkit.read` with
the same rows, outcomes (a tie flag is outcome `tie`), weights, margins and ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefkit.build.export import to_kto, to_trl, write_table
from prefkit.build.pairs import unpaired_from_pairs
from prefkit.build.result import PAIRS_SCHEMA
from prefkit.io.detect import read
from tests.io.test_roundtrip import TRICKY

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
text = st.sampled_from(TRICKY) | st.text(max_size=10)
floats = st.sampled_from([0.0, 0.5, 1.0, 1 / 3, 2.75, -1.5, 1e-7, 123456.789])


def msg(role: str) -> Any:
    return st.fixed_dictionaries({"role": st.just(role), "content": text})


prompts = st.tuples(
    st.lists(st.sampled_from(["system", "user", "assistant"]).flatmap(msg), max_size=2),
    msg("user"),
).map(lambda t: [*t[0], t[1]])


@st.composite
def pairs_tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(1, 5))
    rows = []
    for i in range(n):
        chosen, rejected = draw(st.lists(text, min_size=2, max_size=2, unique=True))
        rows.append(
            {
                "id": f"pair-{i}",
                "prompt": draw(prompts),
                "prompt_id": draw(st.sampled_from(["p1", "p2", "llmfao:8"])),
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
                "chosen_model": draw(st.none() | text),
                "rejected_model": draw(st.none() | text),
                "margin": draw(st.none() | floats),
                "weight": draw(floats),
                "n_votes": draw(st.none() | st.integers(1, 5)),
                "agreement": draw(st.none() | floats),
                "tie": draw(st.booleans()),
                "source": draw(st.none() | text),
                "aspect": draw(st.none() | text),
                "source_ids": draw(st.lists(text, max_size=2)),
                "meta": draw(st.none() | st.dictionaries(st.sampled_from(["pair_id", "k"]), text)),
            }
        )
    return pa.Table.from_pylist(
        [{**r, "meta": None if r["meta"] is None else list(r["meta"].items())} for r in rows],
        schema=PAIRS_SCHEMA,
    )


def _num(meta: dict[str, str], key: str) -> float | None:
    return float(meta[key]) if key in meta else None


def _check(got: list[dict[str, Any]], want: list[dict[str, Any]], full: bool) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        meta = dict(g["meta"] or [])
        assert g["id"] == w["id"] and g["prompt_id"] == w["prompt_id"]
        assert g["outcome"] == ("tie" if w["tie"] else "a")
        assert _num(meta, "weight") == w["weight"]
        assert _num(meta, "margin") == w["margin"]
        assert g["response_a"] == w["chosen"] and g["response_b"] == w["rejected"]
        if full:  # the pairs table: every column comes back
            assert g["prompt"] == w["prompt"]
            assert (g["model_a"], g["model_b"]) == (w["chosen_model"], w["rejected_model"])
            assert (g["source"], g["aspect"]) == (w["source"], w["aspect"])
            assert _num(meta, "agreement") == w["agreement"]
            assert (int(meta["n_votes"]) if "n_votes" in meta else None) == w["n_votes"]
            assert json.loads(meta["source_ids"]) == w["source_ids"]
            assert {k: v for k, v in meta.items() if k in ("pair_id", "k")} == dict(w["meta"] or [])


@SETTINGS
@given(table=pairs_tables(), ext=st.sampled_from([".parquet", ".jsonl"]))
def test_pairs_table_roundtrip(tmp_path_factory: Any, table: pa.Table, ext: str) -> None:
    out = write_table(table, Path(tmp_path_factory.mktemp("rt")) / f"pairs{ext}")
    res = read(out)
    assert res.reader == "prefkit-pairs" and not res.rejects
    _check(res.table.to_pylist(), table.to_pylist(), full=True)


@SETTINGS
@given(table=pairs_tables(), ext=st.sampled_from([".parquet", ".jsonl"]), conv=st.booleans())
def test_trl_export_roundtrip(tmp_path_factory: Any, table: pa.Table, ext: str, conv: bool) -> None:
    out = write_table(to_trl(table, conv), Path(tmp_path_factory.mktemp("rt")) / f"trl{ext}")
    res = read(out)
    assert res.reader == "prefkit-pairs" and not res.rejects
    got, want = res.table.to_pylist(), table.to_pylist()
    _check(got, want, full=False)
    if conv:  # message lists: the prompt comes back as it was
        assert [g["prompt"] for g in got] == [w["prompt"] for w in want]


@SETTINGS
@given(table=pairs_tables(), ext=st.sampled_from([".parquet", ".jsonl"]))
def test_kto_export_roundtrip(tmp_path_factory: Any, table: pa.Table, ext: str) -> None:
    unpaired = unpaired_from_pairs(table).table
    if unpaired.num_rows == 0:  # every pair a tie: KTO rows carry no label for ties
        return
    out = write_table(to_kto(unpaired, True), Path(tmp_path_factory.mktemp("rt")) / f"kto{ext}")
    res = read(out)
    assert res.reader == "trl-unpaired" and not res.rejects
    got, want = res.table.to_pylist(), unpaired.to_pylist()
    assert [(g["id"], g["prompt_id"], g["label"]) for g in got] == [
        (w["id"], w["prompt_id"], w["label"]) for w in want
    ]
    assert [g["response"] for g in got] == [w["completion"] for w in want]
    assert [g["prompt"] for g in got] == [w["prompt"] for w in want]
