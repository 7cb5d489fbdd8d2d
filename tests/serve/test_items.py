"""Campaign input: `prefkit.io.readers.unlabelled` in every container prefkit reads (JSON
lines, JSON, CSV, Parquet, gzip, a datasets folder), on the 100 real LLMBar pairs with their
labels taken off; and `prefkit.serve.items` on labelled real files (through prefkit.read)."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefkit.io.readers.unlabelled import read_unlabelled, sniff
from prefkit.serve.items import read_items

LLMBAR = Path("llmbar/Dataset/LLMBar/Natural/dataset.json")


def _unlabelled(data_dir: Path) -> list[dict[str, Any]]:
    """LLMBar's pairs as unlabelled rows (plain json over the raw file: the reference)."""
    raw = json.loads((data_dir / LLMBAR).read_text(encoding="utf-8"))
    return [
        {
            "id": f"llmbar-{i}",
            "prompt": r["input"],
            "response_a": r["output_1"],
            "response_b": r["output_2"],
        }  # fmt: skip
        for i, r in enumerate(raw)
    ]


def _write(rows: list[dict[str, Any]], path: Path) -> Path:
    name = path.name
    if name.endswith(".jsonl.gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    elif name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif name.endswith(".json"):
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif name.endswith(".csv"):
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    elif name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:  # a datasets save_to_disk folder
        import datasets

        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("name", ["items.jsonl", "items.jsonl.gz", "items.json", "items.csv", "items.parquet", "items_hf"])  # fmt: skip
def test_every_container_on_real_pairs(name: str, data_dir: Path, tmp_path: Path) -> None:
    rows = _unlabelled(data_dir)
    path = _write(rows, tmp_path / name)
    assert sniff(path) is not None
    items = read_unlabelled(path)
    assert items.rejects == [] and items.rows_in == len(rows) == 100
    got = items.table.to_pylist()
    assert [g["id"] for g in got] == [r["id"] for r in rows]
    for g, r in zip(got, rows, strict=True):
        assert g["prompt"] == [{"role": "user", "content": r["prompt"]}]
        assert [m[0]["content"] for m in g["responses"]] == [r["response_a"], r["response_b"]]
        assert g["outcome"] is None and g["models"] == [None, None]


def test_k_responses_models_meta_and_csv_json_cells(tmp_path: Path) -> None:
    rows = [
        {
            "prompt": "p",
            "responses": json.dumps(["x", "y", "z"]),
            "models": json.dumps(["m1", None, "m3"]),
            "meta": json.dumps({"batch": 7}),
            "extra": "kept",
        },  # fmt: skip
        {"prompt": "[not json", "responses": "[broken", "models": "", "meta": "", "extra": ""},
    ]
    items = read_unlabelled(_write(rows, tmp_path / "k.csv"))
    (item,) = items.table.to_pylist()
    assert [m[0]["content"] for m in item["responses"]] == ["x", "y", "z"]
    assert item["models"] == ["m1", None, "m3"]
    assert dict(item["meta"]) == {"batch": "7", "extra": "kept"}
    assert [(r.line, r.field) for r in items.rejects] == [(3, "responses")]


def test_labelled_real_files_become_items_through_prefkit_read(data_dir: Path) -> None:
    """Files prefkit reads in their published layout: their comparisons are items, outcomes
    kept (gold only when the campaign asks)."""
    items = read_items(data_dir / LLMBAR)
    raw = json.loads((data_dir / LLMBAR).read_text(encoding="utf-8"))
    assert items.table.num_rows == len(raw) == 100 and items.rejects == []
    want = {1: "a", 2: "b"}
    assert items.table.column("outcome").to_pylist() == [want[r["label"]] for r in raw]


def test_csv_message_lists_and_texts_that_look_like_json(tmp_path: Path) -> None:
    conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "and?"}]  # fmt: skip
    rows = [
        {
            "prompt": json.dumps(conv),
            "response_a": "[1, 2, 3]",
            "response_b": json.dumps([{"role": "assistant", "content": "ok"}]),
        },  # fmt: skip
        {"prompt": "[not a list", "response_a": "{}", "response_b": "b"},
    ]
    items = read_unlabelled(_write(rows, tmp_path / "m.csv"))
    a, b = items.table.to_pylist()
    assert a["prompt"] == conv  # a message list written as JSON, as `convert --to csv` does
    assert a["responses"] == [[{"role": "assistant", "content": "[1, 2, 3]"}], [{"role": "assistant", "content": "ok"}]]  # fmt: skip
    assert b["prompt"] == [{"role": "user", "content": "[not a list"}]
    assert b["responses"][0] == [{"role": "assistant", "content": "{}"}]
