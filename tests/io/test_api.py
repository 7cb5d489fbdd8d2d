"""The library surface: `prefkit.read` reads what the CLI reads (map, value maps, folders),
`prefkit.to_datasets` gives a `datasets.Dataset` holding the same rows, every name the
package advertises exists, and `import prefkit` loads no heavy dependency."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa

import prefkit
from prefkit.io.writers import hf_table
from tests.conftest import REPO

LAYOUTS = REPO / "tests" / "data" / "layouts"


def test_read_autodetects_and_maps(tmp_path):  # type: ignore[no-untyped-def]
    res = prefkit.read(LAYOUTS / "hh_rlhf.jsonl")
    assert res.reader == "hh-rlhf" and res.table.num_rows == 3 and res.rejects == []
    src = tmp_path / "mine.csv"
    src.write_text("question,left,right,verdict\nq1,x,y,L\nq2,x,y,R\nq3,x,y,??\n", "utf-8")
    got = prefkit.read(
        src,
        map={
            "question": "prompt",
            "left": "response_a",
            "right": "response_b",
            "verdict": "outcome",
        },
        value_map={"outcome": {"L": "a", "R": "b"}},
    )
    assert got.table.column("outcome").to_pylist() == ["a", "b"]
    assert [(r.line, r.field) for r in got.rejects] == [(4, "verdict")]
    folder = prefkit.read(LAYOUTS / "hub_trl", from_="trl")
    assert folder.table.num_rows == 9


def test_to_datasets_holds_the_same_rows() -> None:
    table = prefkit.read(LAYOUTS / "chatbot_arena_conversations.parquet").table
    ds = prefkit.to_datasets(table)
    rows = ds.to_list()
    want = table.to_pylist()
    assert len(rows) == len(want)
    for r, w in zip(rows, want, strict=True):
        assert r["prompt"] == w["prompt"] and r["outcome"] == w["outcome"]
        assert {e["key"]: e["value"] for e in r["meta"]} == dict(w["meta"])
    assert isinstance(hf_table(table).table, pa.Table)


def test_advertised_names_exist() -> None:
    import importlib

    top = importlib.import_module("prefkit")
    for name in top.__all__:
        assert hasattr(top, name), name
    for stage in top.STAGES:
        assert getattr(top, stage).__name__ == f"prefkit.{stage}"
    io = importlib.import_module("prefkit.io")
    for name in io.__all__:
        assert hasattr(io, name), name


def test_import_prefkit_stays_light() -> None:
    code = (
        "import sys, json, prefkit; "
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'datasets', 'pandas', "
        "'sklearn', 'scipy', 'polars', 'rich', 'typer', 'pyarrow.compute') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
