"""The vectorised battles path gives exactly the per-row path's table."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from prefkit.io.base import READERS, ReadOptions
from prefkit.io.detect import read
from prefkit.io.readers._base import RecordReader
from prefkit.io.readers.battles import fast_battles
from tests.conftest import DATA
from tests.raw import llmfao_counts


def _same(path: Path, name: str) -> list[dict[str, object]]:
    import prefkit.io.readers  # noqa: F401

    reader = READERS[name]
    assert isinstance(reader, RecordReader)
    fast = fast_battles(path, ReadOptions(), reader)
    assert fast is not None
    slow = RecordReader.read(reader, path, ReadOptions())
    assert fast.table.to_pylist() == slow.table.to_pylist()
    return list(fast.table.to_pylist())


def test_llmfao_fast_equals_slow() -> None:
    rows = _same(DATA / "llmfao/llmfao.csv", "llmfao")
    assert len(rows) == llmfao_counts().rows


ARENA = {
    "question_id": ["q1", "q1", "q2", "q3"],
    "model_a": ["gpt-4", "claude", "gpt-4", "vicuna"],
    "model_b": ["vicuna", "gpt-4", "claude", "claude"],
    "winner": ["model_a", "tie (bothbad)", "Tie", "model_b"],
    "judge": ["u1", "u2", "u1", "u3"],
    "turn": [1, 1, 2, 1],
}


def test_arena_parquet_and_csv_fast_equals_slow(tmp_path: Path) -> None:
    pq.write_table(pa.table(ARENA), tmp_path / "arena.parquet")
    rows = _same(tmp_path / "arena.parquet", "arena")
    assert [r["outcome"] for r in rows] == ["a", "both_bad", "tie", "b"]
    csv = "question_id,model_a,model_b,winner,judge,turn\n" + "\n".join(
        ",".join(str(ARENA[k][i]) for k in ARENA) for i in range(4)
    )
    (tmp_path / "arena.csv").write_text(csv + "\n", encoding="utf-8")
    _same(tmp_path / "arena.csv", "arena")


def test_bad_value_falls_back_to_rows_with_rejects(tmp_path: Path) -> None:
    bad = dict(ARENA)
    bad["winner"] = ["model_a", "nobody", "tie", "model_b"]
    pq.write_table(pa.table(bad), tmp_path / "bad.parquet")
    import prefkit.io.readers  # noqa: F401

    assert fast_battles(tmp_path / "bad.parquet", ReadOptions(), READERS["arena"]) is None  # type: ignore[arg-type]
    res = read(tmp_path / "bad.parquet")
    assert res.reader == "arena" and res.table.num_rows == 3
    assert [(r.line, r.field) for r in res.rejects] == [(2, "winner")]
