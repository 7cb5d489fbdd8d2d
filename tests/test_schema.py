from __future__ import annotations

import pyarrow as pa
import pytest

from prefkit.io import load, save
from prefkit.schema import (
    SCHEMAS,
    Kind,
    Outcome,
    SchemaError,
    from_rows,
    kind_of,
    normalize_text,
    prompt_id,
    validate,
)


def _cmp(**kw: object) -> dict[str, object]:
    row: dict[str, object] = {
        "prompt": [{"role": "user", "content": "Hi"}],
        "response_a": [{"role": "assistant", "content": "Hello"}],
        "response_b": [{"role": "assistant", "content": "Hey"}],
        "outcome": "a",
        "source": "test",
    }
    row.update(kw)
    return row


def test_outcomes_are_the_four_documented_values() -> None:
    assert {o.value for o in Outcome} == {"a", "b", "tie", "both_bad"}


def test_every_kind_has_the_common_columns() -> None:
    for k in Kind:
        names = SCHEMAS[k].names
        assert names[:8] == [
            "id",
            "prompt",
            "prompt_id",
            "annotator",
            "source",
            "aspect",
            "rationale",
            "meta",
        ]


def test_prompt_id_is_stable_under_whitespace_and_case_but_not_content() -> None:
    a = prompt_id([{"role": "user", "content": "What is  2+2?"}])
    b = prompt_id([{"role": "user", "content": " what is 2+2? "}])
    c = prompt_id([{"role": "user", "content": "What is 2+3?"}])
    d = prompt_id([{"role": "system", "content": "What is 2+2?"}])
    assert a == b
    assert a != c
    assert a != d
    assert prompt_id("What is 2+2?") == a
    assert normalize_text("Ａ  b\n") == "a b"


def test_validate_names_row_and_column() -> None:
    t = from_rows([_cmp(), _cmp(outcome="left")], Kind.COMPARISONS)
    with pytest.raises(SchemaError) as e:
        validate(t)
    assert e.value.row == 1
    assert e.value.column == "outcome"
    assert "left" in e.value.reason


def test_validate_strength_range_and_rankings() -> None:
    t = from_rows([_cmp(strength=1.5)], Kind.COMPARISONS)
    with pytest.raises(SchemaError, match="strength"):
        validate(t)
    r = from_rows([{"prompt": "q", "ranks": [1]}], Kind.RANKINGS)
    with pytest.raises(SchemaError) as e:
        validate(r)
    assert e.value.column == "ranks"


def test_parquet_round_trip_keeps_version_and_kind(tmp_path: object) -> None:
    from pathlib import Path

    t = from_rows([_cmp(), _cmp(outcome="tie", meta={"k": "v"})], Kind.COMPARISONS)
    p = save(t, Path(str(tmp_path)) / "c.parquet")
    back = load(p)
    assert kind_of(back) is Kind.COMPARISONS
    assert back.schema.metadata[b"prefkit.schema_version"] == b"1"
    assert back.drop(["id"]).to_pylist() == t.drop(["id"]).to_pylist()
    assert back.column("id").to_pylist() == t.column("id").to_pylist()


def test_missing_required_column_is_reported() -> None:
    t = pa.table({"id": ["x"], "prompt_id": ["p"]})
    with pytest.raises(SchemaError) as e:
        validate(t, Kind.COMPARISONS)
    assert e.value.column == "outcome"
