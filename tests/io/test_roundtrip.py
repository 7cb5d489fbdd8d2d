"""Hypothesis round trips: every writer/reader pair gives back what was written
(unicode, empty strings, multi-turn messages, nulls, and text that looks like JSON, numbers,
booleans or markdown: a string is never parsed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefkit.io.base import ReadResult
from prefkit.io.detect import read
from prefkit.io.writers import write
from prefkit.schema import Kind, conform, from_rows

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
#: strings a reader could mistake for something else: they must come back as the same text
TRICKY = [
    '{"products": ["milk", "eggs"]}',
    "[1, 2]",
    '[{"role": "user", "content": "x"}]',
    "[]",
    "{}",
    "true",
    "false",
    "null",
    "None",
    "42",
    "-0.5",
    "1e3",
    "NaN",
    "**bold** and `code`\n- item",
    "# heading",
    "é中文🙂",
    '"quoted"',
    "a,b",
    "",
    " ",
    "\t",
]
text = st.sampled_from(TRICKY) | st.text(max_size=12)  # any unicode incl. newlines, quotes
opt_text = st.none() | text
ROLES = st.sampled_from(["user", "assistant", "system"])


def msgs(role: str | None = None, min_size: int = 1) -> st.SearchStrategy[Any]:
    r = st.just(role) if role else ROLES
    return st.lists(
        st.fixed_dictionaries({"role": r, "content": text}), min_size=min_size, max_size=3
    )


common = {
    "id": st.text(min_size=1, max_size=8),
    "prompt": st.none() | msgs(),
    "annotator": opt_text,
    "source": opt_text,
    "aspect": opt_text,
    "rationale": opt_text,
    "meta": st.none() | st.dictionaries(text, text, max_size=3),
}
strength = st.none() | st.sampled_from([0.0, 0.25, 0.5, 1.0, 1 / 3])
score = st.sampled_from([0.0, 1.0, 2.5, -3.0, 7.25, 1 / 3])
KIND_ROWS = {
    Kind.COMPARISONS: {
        "response_a": st.none() | msgs(),
        "response_b": st.none() | msgs(),
        "model_a": opt_text,
        "model_b": opt_text,
        "outcome": st.sampled_from(["a", "b", "tie", "both_bad"]),
        "strength": strength,
        "shown_first": st.sampled_from([None, "a", "b"]),
    },
    Kind.RATINGS: {
        "response": st.none() | msgs(),
        "model": opt_text,
        "score": score,
        "scale_min": st.none() | score,
        "scale_max": st.none() | score,
    },
    Kind.BINARY: {"response": st.none() | msgs(), "model": opt_text, "label": st.booleans()},
    Kind.RANKINGS: {
        "responses": st.none() | st.lists(msgs("assistant"), min_size=3, max_size=3),
        "models": st.none() | st.lists(opt_text, min_size=3, max_size=3),
        "ranks": st.lists(st.integers(1, 3), min_size=3, max_size=3),
    },
    Kind.CRITIQUES: {
        "response": st.none() | msgs(),
        "spans": st.none()
        | st.lists(
            st.tuples(st.integers(0, 5), st.integers(0, 5), text).map(
                lambda t: {"start": min(t[:2]), "end": max(t[:2]), "label": t[2]}
            ),
            max_size=2,
        ),
        "correction": opt_text,
    },
}


@st.composite
def tables(draw: st.DrawFn, kind: Kind | None = None) -> tuple[Kind, pa.Table]:
    k = kind or draw(st.sampled_from(list(Kind)))
    rows = draw(
        st.lists(
            st.fixed_dictionaries({**common, **KIND_ROWS[k]}),
            min_size=1,
            max_size=5,
            unique_by=lambda r: r["id"],
        )
    )
    return k, from_rows(rows, k)


def _same(a: pa.Table, b: pa.Table, kind: Kind) -> None:
    left, right = conform(a, kind).to_pylist(), conform(b, kind).to_pylist()
    assert left == right


def _roundtrip(tmp: Path, name: str, to: str, kind: Kind, table: pa.Table) -> ReadResult:
    out = tmp / name
    write(ReadResult({kind: table}), out, to)
    return read(out)


@SETTINGS
@given(kt=tables())
def test_canonical_parquet(tmp_path_factory: Any, kt: tuple[Kind, pa.Table]) -> None:
    kind, table = kt
    res = _roundtrip(tmp_path_factory.mktemp("rt"), "t.parquet", "canonical", kind, table)
    assert res.reader == "canonical"
    _same(res.table, table, kind)


@SETTINGS
@given(kt=tables())
def test_csv(tmp_path_factory: Any, kt: tuple[Kind, pa.Table]) -> None:
    kind, table = kt
    res = _roundtrip(tmp_path_factory.mktemp("rt"), "t.csv", "csv", kind, table)
    assert res.reader == "canonical-rows" and not res.rejects
    _same(res.table, table, kind)


@SETTINGS
@given(kt=tables())
def test_jsonl(tmp_path_factory: Any, kt: tuple[Kind, pa.Table]) -> None:
    kind, table = kt
    res = _roundtrip(tmp_path_factory.mktemp("rt"), "t.jsonl", "jsonl", kind, table)
    assert res.reader == "canonical-rows" and not res.rejects
    _same(res.table, table, kind)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(kt=tables())
def test_hf_datasets(tmp_path_factory: Any, kt: tuple[Kind, pa.Table]) -> None:
    kind, table = kt
    res = _roundtrip(tmp_path_factory.mktemp("rt"), "ds", "hf", kind, table)
    assert res.reader == "canonical-rows"
    _same(res.table, table, kind)


def _pairs(rows: list[dict[str, Any]]) -> list[tuple[Any, Any, Any]]:
    out = []
    for r in rows:
        a, b = r["response_a"], r["response_b"]
        chosen, rejected = (a, b) if r["outcome"] == "a" else (b, a)
        out.append((r["prompt"], chosen, rejected))
    return out


pair_rows = st.fixed_dictionaries(
    {
        "prompt": msgs(),
        # answers start at the assistant turn and differ there (else TRL's own prompt
        # extraction, which the reader follows, moves their shared turns into the prompt)
        "response_a": msgs("assistant"),
        "response_b": msgs("assistant"),
        "outcome": st.sampled_from(["a", "b"]),
    }
).filter(lambda r: r["response_a"][0] != r["response_b"][0])
plain_pair_rows = st.fixed_dictionaries(
    {
        "prompt": msgs("user", 1).map(lambda m: m[:1]),
        "response_a": msgs("assistant").map(lambda m: m[:1]),
        "response_b": msgs("assistant").map(lambda m: m[:1]),
        "outcome": st.sampled_from(["a", "b"]),
    }
)


@SETTINGS
@given(rows=st.lists(pair_rows, min_size=1, max_size=5), ext=st.sampled_from(["jsonl", "parquet"]))
def test_trl_conversational(tmp_path_factory: Any, rows: list[dict[str, Any]], ext: str) -> None:
    table = from_rows(rows, Kind.COMPARISONS)
    res = _roundtrip(tmp_path_factory.mktemp("rt"), f"t.{ext}", "trl", Kind.COMPARISONS, table)
    assert res.reader == "trl"
    assert set(res.table.column("outcome").to_pylist()) == {"a"}
    assert _pairs(res.table.to_pylist()) == _pairs(rows)


@SETTINGS
@given(
    rows=st.lists(plain_pair_rows, min_size=1, max_size=5),
    ext=st.sampled_from(["jsonl", "parquet"]),
)
def test_trl_standard(tmp_path_factory: Any, rows: list[dict[str, Any]], ext: str) -> None:
    table = from_rows(rows, Kind.COMPARISONS)
    tmp = tmp_path_factory.mktemp("rt")
    res = _roundtrip(tmp, f"t.{ext}", "trl", Kind.COMPARISONS, table)
    if ext == "jsonl":
        first = (tmp / "t.jsonl").read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith('{"prompt": "')  # strings, not message lists
    assert _pairs(res.table.to_pylist()) == _pairs(rows)


binary_rows = st.fixed_dictionaries(
    {
        "prompt": msgs("user").map(lambda m: m[:1]),
        "response": msgs("assistant"),
        "label": st.booleans(),
    }
)


@SETTINGS
@given(
    rows=st.lists(binary_rows, min_size=1, max_size=5), ext=st.sampled_from(["jsonl", "parquet"])
)
def test_trl_unpaired(tmp_path_factory: Any, rows: list[dict[str, Any]], ext: str) -> None:
    table = from_rows(rows, Kind.BINARY)
    res = _roundtrip(tmp_path_factory.mktemp("rt"), f"t.{ext}", "trl-unpaired", Kind.BINARY, table)
    assert res.reader == "trl-unpaired"
    got = [(r["prompt"], r["response"], r["label"]) for r in res.table.to_pylist()]
    assert got == [(r["prompt"], r["response"], r["label"]) for r in rows]
