"""`prefkit.io.convert`: streamed canonical Parquet holds exactly what `save(read(...))` writes."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from prefkit.io import convert as convert_mod
from prefkit.io.canonical import load, save
from prefkit.io.convert import convert
from prefkit.io.detect import read
from tests.conftest import DATA
from tests.io._util import write_jsonl
from tests.raw import hh_harmless_counts

HH = DATA / "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz"


def _same_as_read_save(src: Path, out: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref.parquet"
    res = read(src)
    save(res.table, ref)
    a, b = load(out), load(ref)
    assert a.schema.equals(b.schema, check_metadata=True)
    assert a.to_pylist() == b.to_pylist()


def test_convert_streams_hh_in_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(convert_mod, "ROW_GROUP_ROWS", 500)
    out = tmp_path / "hh.parquet"
    done = convert(HH, out)
    assert done.streamed and done.reader == "hh-rlhf"
    n = hh_harmless_counts().rows  # plain gzip + json over the published file
    assert done.written == n and done.rows_in == n
    assert [r.line for r in done.rejects] == [r.line for r in read(HH).rejects]
    assert pq.ParquetFile(out).metadata.num_row_groups > 1
    _same_as_read_save(HH, out, tmp_path)
    assert not list(tmp_path.glob(".*partial"))


def test_convert_falls_back_when_a_block_needs_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefkit.io.readers import hh

    # small blocks and row groups: rows are written before the last block needs the row path
    monkeypatch.setattr(hh, "BLOCK_BYTES", 256)
    monkeypatch.setattr(convert_mod, "ROW_GROUP_ROWS", 1)
    ok = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}
    src = write_jsonl(tmp_path / "mixed.jsonl", [ok] * 20 + [{**ok, "extra": "x"}, ok])
    out = tmp_path / "mixed.parquet"
    done = convert(src, out, "hh-rlhf")
    assert not done.streamed and done.written == 22
    assert not list(tmp_path.glob(".*partial"))
    ref = tmp_path / "ref.parquet"
    save(read(src, "hh-rlhf").table, ref)
    assert load(out).to_pylist() == load(ref).to_pylist()


def test_convert_writes_nothing_without_a_valid_row(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "bad.jsonl", [{"chosen": "no turns", "rejected": "none"}] * 3)
    out = tmp_path / "bad.parquet"
    done = convert(src, out, "hh-rlhf")
    assert done.rows == {} and len(done.rejects) == 3
    assert not out.exists() and not list(tmp_path.glob(".*partial"))


def test_hh_fast_path_does_not_import_pandas(tmp_path: Path) -> None:
    """`pa.array` / `np.asarray(arrow)` import pandas (a quarter second of CPU per process);
    the vectorised HH path and the streaming writer build their arrays from buffers."""
    import subprocess
    import sys

    ok = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}
    src = write_jsonl(tmp_path / "hh.jsonl", [ok] * 50)
    code = (
        "import sys\nfrom prefkit.io.convert import convert\n"
        f"done = convert({str(src)!r}, {str(tmp_path / 'o.parquet')!r}, 'hh-rlhf')\n"
        "assert done.streamed and done.written == 50\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_parquet_options_name_real_columns(tmp_path: Path) -> None:
    """The dictionary / statistics column lists are Parquet's own leaf paths, for every kind."""
    from prefkit.io.canonical import parquet_options
    from prefkit.schema import Kind, schema_for

    for kind in Kind:
        path = tmp_path / f"{kind.value}.parquet"
        pq.write_table(schema_for(kind).empty_table(), path)
        schema = pq.ParquetFile(path).schema
        leaves = {schema.column(i).path for i in range(len(schema))}
        chosen = set(parquet_options(kind)["use_dictionary"])
        assert chosen <= leaves
        assert {p for p in leaves if p.endswith(".content") or p in ("id", "prompt_id")}
        assert not {p for p in chosen if p.endswith(".content") or p in ("id", "prompt_id")}
        assert {p for p in leaves if p.endswith(".role") or p == "source"} <= chosen


def test_cli_convert_streams_hh(tmp_path: Path) -> None:
    from tests.io._util import cli

    out = tmp_path / "cli.parquet"
    res = cli("convert", HH, out)
    assert res.exit_code == 0, (res.output, res.exception)
    assert "hh-rlhf" in res.output and "wrote 2312 row(s)" in res.output
    _same_as_read_save(HH, out, tmp_path)
