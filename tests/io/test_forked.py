"""Folders of shards read in forked worker processes (`prefkit.io.forked`) give what reading
them in this process gives: equal tables (schema metadata, ids, prompt ids, split), equal
rejects and counts, the same errors; the temporary IPC files are gone afterwards."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefkit.io import forked
from prefkit.io.base import InputError, ReadOptions, ReadResult, StrictError
from prefkit.io.detect import read
from tests.conftest import REPO

LAYOUTS = REPO / "tests" / "data" / "layouts"
WORDS = "the a to of and how can i you what is my café naïve 東京 ünïcode  spaced\tout".split(" ")


def _rows(rng: random.Random, n: int, start: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        prompt = " ".join(rng.choices(WORDS, k=rng.randint(2, 9)))
        if i % 7 == 0:
            prompt = "Repeated prompt"  # repeats: hashed once per distinct text
        rows.append(
            {
                "prompt": prompt + f" #{start + i}" * (i % 3 != 0),
                "chosen": " ".join(rng.choices(WORDS, k=rng.randint(1, 12))),
                "rejected": " ".join(rng.choices(WORDS, k=rng.randint(1, 12))),
            }
        )
    return rows


def _parquet_folder(root: Path, bad_row: bool = True) -> Path:
    """4 TRL shards in data/ (3 train, 1 test); one row of train shard 1 has no `chosen`."""
    rng = random.Random(7)
    (root / "data").mkdir(parents=True)
    names = [f"train-{k:05d}-of-00003.parquet" for k in range(3)] + ["test-00000-of-00001.parquet"]
    for k, name in enumerate(names):
        rows = _rows(rng, 150 + 10 * k, 1000 * k)
        if bad_row and k == 1:
            rows[17]["chosen"] = None
        pq.write_table(pa.Table.from_pylist(rows), root / "data" / name)
    return root


def _jsonl_folder(root: Path) -> Path:
    """Split subfolders of JSON lines shards; one line of a train shard is broken JSON."""
    rng = random.Random(11)
    for split, shards in (("train", 3), ("test", 2)):
        folder = root / "default" / split
        folder.mkdir(parents=True)
        for k in range(shards):
            lines = [json.dumps(r, ensure_ascii=False) for r in _rows(rng, 80, 100 * k)]
            if split == "train" and k == 2:
                lines[5] = '{"prompt": "cut off", "chosen": nope}'
            (folder / f"{k:04d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


class Spy:
    """Counts the tables mapped from worker files and records the temporary folders."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.folders: list[str] = []
        self.mapped = 0
        temp_folder, mapped = forked.temp_folder, forked.mapped

        def temp(need: int) -> str:
            folder = temp_folder(need)
            self.folders.append(folder)
            return folder

        def mapping(path: str) -> pa.Table:
            self.mapped += 1
            return mapped(path)

        monkeypatch.setattr(forked, "temp_folder", temp)
        monkeypatch.setattr(forked, "mapped", mapping)


def _both(
    path: Path, monkeypatch: pytest.MonkeyPatch, options: ReadOptions | None = None
) -> tuple[ReadResult, ReadResult, Spy]:
    spy = Spy(monkeypatch)
    monkeypatch.setenv(forked.ENV, "0")
    here = read(path, options=options)
    assert spy.mapped == 0 and not spy.folders
    monkeypatch.setenv(forked.ENV, "2")
    there = read(path, options=options)
    return here, there, spy


def _assert_same(a: ReadResult, b: ReadResult) -> None:
    assert list(a.tables) == list(b.tables)
    for kind in a.tables:
        assert a.tables[kind].equals(b.tables[kind], check_metadata=True), kind
        assert a.tables[kind].schema.metadata == b.tables[kind].schema.metadata
    assert a.rejects == b.rejects
    assert (a.rows_in, a.rows_vectorised, a.notes, a.reader, a.why) == (
        b.rows_in,
        b.rows_vectorised,
        b.notes,
        b.reader,
        b.why,
    )


def _splits(res: ReadResult) -> list[str]:
    return [dict(m)["split"] for m in res.table.column("meta").to_pylist()]


def test_parquet_shards_in_processes_equal_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there, spy = _both(_parquet_folder(tmp_path / "hub"), monkeypatch)
    _assert_same(here, there)
    assert spy.mapped == 4  # every shard came back from a worker, none read here
    assert len(spy.folders) == 1 and not Path(spy.folders[0]).exists()
    t = there.table
    assert t.num_rows == 150 + 160 + 170 + 180 - 1
    assert len(there.rejects) == 1
    bad = there.rejects[0]
    assert bad.file.endswith("train-00001-of-00003.parquet") and bad.line == 18
    assert _splits(there) == ["test"] * 180 + ["train"] * 479  # files in sorted order
    assert set(t.column("source").to_pylist()) == {"trl:hub"}
    ids = t.column("id").to_pylist()
    assert len(set(ids)) == len(ids)
    from prefkit.schema import prompt_id

    for row in t.slice(0, 40).to_pylist() + t.slice(400, 40).to_pylist():
        assert row["prompt_id"] == prompt_id(row["prompt"])


def test_jsonl_split_subfolders_in_processes_equal_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there, spy = _both(_jsonl_folder(tmp_path / "ds"), monkeypatch)
    _assert_same(here, there)
    assert spy.mapped == 5
    assert not any(Path(f).exists() for f in spy.folders)
    assert [(Path(r.file).parent.name, Path(r.file).name, r.line) for r in there.rejects] == [
        ("train", "0002.jsonl", 6)
    ]
    assert _splits(there) == ["test"] * 160 + ["train"] * 239
    # the broken line is in Arrow's first block: one reject with its line, not a traceback
    one = read(tmp_path / "ds" / "default" / "train" / "0002.jsonl")
    assert one.table.num_rows == 79 and [r.line for r in one.rejects] == [6]


def test_hub_layout_and_a_corrupt_shard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(LAYOUTS / "hub_trl", tmp_path / "hub_trl")
    here, there, spy = _both(tmp_path / "hub_trl", monkeypatch)
    _assert_same(here, there)
    assert spy.mapped == 3
    # a truncated shard: one reject naming it, the others read (in processes too)
    data = tmp_path / "hub_trl" / "data"
    raw = (data / "train-00001-of-00002.parquet").read_bytes()
    (data / "train-00001-of-00002.parquet").write_bytes(raw[: len(raw) // 2])
    here, there, spy = _both(tmp_path / "hub_trl", monkeypatch)
    _assert_same(here, there)
    assert [r.reason.split(":")[0] for r in there.rejects] == ["unreadable shard, skipped"]
    assert not any(Path(f).exists() for f in spy.folders)


def test_errors_are_the_in_process_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _parquet_folder(tmp_path / "hub")
    strict = ReadOptions(strict=True)
    errors = []
    for setting in ("0", "2"):
        monkeypatch.setenv(forked.ENV, setting)
        with pytest.raises(StrictError) as e:
            read(root, options=strict)
        errors.append((str(e.value), e.value.path, e.value.line, e.value.field))
    assert errors[0] == errors[1]
    assert errors[0][1].endswith("train-00001-of-00003.parquet") and errors[0][2] == 18
    shutil.copy(LAYOUTS / "shp.jsonl", root / "data" / "train-00003-of-00003.jsonl")
    messages = []
    for setting in ("0", "2"):
        monkeypatch.setenv(forked.ENV, setting)
        with pytest.raises(InputError, match="mixed formats") as m:
            read(root)
        messages.append(str(m.value))
    assert messages[0] == messages[1]


def test_no_room_for_a_worker_file_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _parquet_folder(tmp_path / "hub")
    monkeypatch.setenv(forked.ENV, "0")
    here = read(root)
    gone = tmp_path / "no-such-folder"  # every worker's write fails: read here instead
    monkeypatch.setattr(forked, "temp_folder", lambda need: str(gone))
    monkeypatch.setenv(forked.ENV, "2")
    there = read(root)
    _assert_same(here, there)
    assert not gone.exists()


def test_a_file_that_cannot_be_mapped_or_no_temp_folder_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _parquet_folder(tmp_path / "hub")
    monkeypatch.setenv(forked.ENV, "0")
    here = read(root)
    monkeypatch.setenv(forked.ENV, "2")
    mapped, calls = forked.mapped, []

    def flaky(path: str) -> pa.Table:
        calls.append(path)
        if len(calls) == 2:  # the second file: read in this process instead
            raise OSError("cannot map")
        return mapped(path)

    monkeypatch.setattr(forked, "mapped", flaky)
    _assert_same(here, read(root))
    assert len(calls) == 4

    def no_folder(need: int) -> str:
        raise OSError("no temporary folder")

    monkeypatch.setattr(forked, "temp_folder", no_folder)
    _assert_same(here, read(root))


def _die(task: Any) -> Any:
    import os

    os._exit(3)


def test_a_worker_that_dies_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _parquet_folder(tmp_path / "hub")
    monkeypatch.setenv(forked.ENV, "0")
    here = read(root)
    spy = Spy(monkeypatch)
    monkeypatch.setattr(forked, "_work", _die)  # every worker exits at its first file
    monkeypatch.setenv(forked.ENV, "2")
    there = read(root)
    _assert_same(here, there)
    assert spy.mapped == 0 and len(spy.folders) == 1 and not Path(spy.folders[0]).exists()


def test_when_worker_processes_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _parquet_folder(tmp_path / "hub")
    files = sorted((root / "data").iterdir())
    monkeypatch.delenv(forked.ENV, raising=False)
    assert forked.workers_for(files) == 0  # small: not worth forking
    monkeypatch.setattr(forked, "MIN_BYTES", 1)
    monkeypatch.setattr(forked, "cpus", lambda: 2)
    assert forked.workers_for(files) == 2
    assert forked.workers_for(files[:1]) == 0  # one file
    monkeypatch.setattr(forked, "cpus", lambda: 1)
    assert forked.workers_for(files) == 0  # one core
    monkeypatch.setenv(forked.ENV, "0")
    assert forked.workers_for(files) == 0
    monkeypatch.setenv(forked.ENV, "3")
    assert forked.workers_for(files) == 3
    monkeypatch.setenv(forked.ENV, "1")
    assert forked.workers_for(files) == 0
    monkeypatch.setenv(forked.ENV, "2")
    monkeypatch.setattr(forked.sys, "platform", "darwin")
    assert forked.workers_for(files) == 0  # fork only on Linux


def test_reading_a_trl_folder_does_not_import_pandas(tmp_path: Path) -> None:
    """A Python value handed to an Arrow kernel (`pc.equal(col, "x")`, `pa.scalar`) imports
    pandas: 0.27 s of CPU in a fresh process, in each worker too. The TRL path avoids it."""
    import subprocess
    import sys

    root = _parquet_folder(tmp_path / "hub")
    code = (
        "import sys; from prefkit import read; r = read(sys.argv[1]); "
        "assert r.table.num_rows == 659, r.table.num_rows; print('pandas' in sys.modules)"
    )
    for setting in ("0", "2"):
        env = {**__import__("os").environ, forked.ENV: setting}
        out = subprocess.run(
            [sys.executable, "-c", code, str(root)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert out.stdout.strip() == "False", (setting, out.stderr)


def test_trl_prompts_with_controls_python_reads_otherwise(tmp_path: Path) -> None:
    """Prompts holding a control character that Arrow and Python treat differently go to
    the per-row path (the byte pre-check must not skip them); ids are `schema.prompt_id`."""
    from prefkit.schema import prompt_id

    prompts = ["a\x1fb", "café\x85", "ok", "café", "tab\tand  spaces", "x\x0by"]
    rows = [{"prompt": p, "chosen": "x", "rejected": "y"} for p in prompts]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    res = read(tmp_path / "t.parquet")
    assert res.rows_vectorised == 4  # a\x1fb and café\x85 go row by row (\x0b is not UNSAFE)
    got = res.table.to_pylist()
    assert [r["prompt"][0]["content"] for r in got] == prompts
    assert [r["prompt_id"] for r in got] == [prompt_id(r["prompt"]) for r in got]
