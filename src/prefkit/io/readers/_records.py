"""Streaming access to the records of a file, whatever its container.

Containers: JSON lines (optionally gzipped; streamed line by line, over-long lines rejected
with bounded memory), a JSON array or object, CSV/TSV, Parquet, and HF `datasets` directories
written by `save_to_disk`. Every record comes with its 1-based line (JSONL, CSV) or record
number (JSON array, Parquet, datasets), so rejects can name where the problem is.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import pyarrow as pa

from prefkit.io.base import InputError

MAX_LINE_BYTES = 32 << 20  # a JSON line longer than this is rejected, never loaded
_SKIP_CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class BadRecord:
    """A record that could not even be parsed (truncated JSON, over-long line, ...)."""

    line: int
    field: str | None
    reason: str
    raw: str | None = None


Item = tuple[int, "Mapping[str, Any] | BadRecord"]


def is_hf_dir(path: Path) -> bool:
    return path.is_dir() and (
        (path / "dataset_info.json").exists() or (path / "state.json").exists()
    )


def container(path: Path) -> str:
    """jsonl, json, csv, tsv, parquet, hf (directory) — from the name and the first bytes."""
    if path.is_dir():
        if is_hf_dir(path):
            return "hf"
        raise InputError(path, "is a directory but not a datasets save_to_disk folder")
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    base = name[:-3] if name.endswith(".gz") else name
    if base.endswith(".csv"):
        return "csv"
    if base.endswith(".tsv"):
        return "tsv"
    with open_binary(path) as fh:
        head = fh.read(64)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        raise InputError(path, "file is empty", line=1)
    if stripped.startswith(b"["):
        return "json"
    if base.endswith(".json") and stripped.startswith(b"{"):
        # one JSON object per file, or JSON lines named .json: look at the first line
        return "jsonl" if _first_line_is_object(path) else "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    if base.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    return "csv" if b"," in head else "unknown"


def _first_line_is_object(path: Path) -> bool:
    with open_binary(path) as fh:
        line = fh.readline(MAX_LINE_BYTES)
    try:
        return isinstance(json.loads(line), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def open_binary(path: Path) -> IO[bytes]:
    """Open a file for reading bytes, gunzipping when it is gzip (checks the magic bytes)."""
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == GZIP_MAGIC:
        return cast(IO[bytes], gzip.open(path, "rb"))
    if path.suffix == ".gz":
        raise InputError(path, "file ends in .gz but is not gzip data", line=1)
    return path.open("rb")


def iter_records(path: Path) -> Iterator[Item]:
    """Yield (line_or_record_number, record or BadRecord) for every record of the file."""
    kind = container(path)
    if kind == "jsonl":
        yield from _iter_jsonl(path)
    elif kind == "json":
        yield from _iter_json(path)
    elif kind in ("csv", "tsv"):
        yield from _iter_csv(path, "\t" if kind == "tsv" else ",")
    elif kind == "parquet":
        yield from _iter_table(read_parquet(path))
    elif kind == "hf":
        yield from _iter_table(read_hf_dir(path))
    else:
        raise InputError(path, "not JSON, JSON lines, CSV, Parquet or a datasets folder", line=1)


def _iter_jsonl(path: Path) -> Iterator[Item]:
    try:
        fh = open_binary(path)
    except OSError as e:
        raise InputError(path, f"cannot read ({e})") from e
    any_line = False
    with fh:
        n = 0
        while True:
            try:
                line = fh.readline(MAX_LINE_BYTES)
            except (OSError, EOFError) as e:  # corrupt or truncated gzip stream
                yield n + 1, BadRecord(n + 1, None, f"unreadable data ({e}); reading stopped")
                return
            if not line:
                break
            n += 1
            if len(line) >= MAX_LINE_BYTES and not line.endswith(b"\n"):
                size = len(line) + _skip_rest(fh)
                yield (
                    n,
                    BadRecord(
                        n,
                        None,
                        f"line is {size:,} bytes, over the {MAX_LINE_BYTES:,}-byte limit; skipped",
                        None,
                    ),
                )
                any_line = True
                continue
            if not line.strip():
                continue
            any_line = True
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                yield n, BadRecord(n, None, f"not UTF-8 text ({e.reason} at byte {e.start})")
                continue
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as e:
                yield n, BadRecord(n, None, f"invalid JSON ({e.msg} at column {e.colno})", text)
                continue
            if not isinstance(rec, dict):
                yield n, BadRecord(n, None, f"expected a JSON object, got {_tname(rec)}", text)
                continue
            yield n, rec
    if not any_line:
        raise InputError(path, "file is empty (no records)", line=1)


def _skip_rest(fh: IO[bytes]) -> int:
    skipped = 0
    while True:
        chunk = fh.readline(_SKIP_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def _iter_json(path: Path) -> Iterator[Item]:
    with open_binary(path) as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(path, f"not UTF-8 text ({e.reason} at byte {e.start})", line=1) from e
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        yield from _salvage_array(path, text)
        return
    if isinstance(doc, dict):
        doc = _records_in_object(doc)
    if not isinstance(doc, list):
        raise InputError(path, f"expected a JSON array of objects, got {_tname(doc)}", line=1)
    if not doc:
        raise InputError(path, "file is empty (an empty JSON array)", line=1)
    for i, rec in enumerate(doc, start=1):
        if isinstance(rec, dict):
            yield i, rec
        else:
            yield i, BadRecord(i, None, f"record {i} is {_tname(rec)}, not an object")


def _records_in_object(doc: dict[str, Any]) -> Any:
    for key in ("comparisons", "data", "rows", "records", "examples"):
        if isinstance(doc.get(key), list):
            return doc[key]
    return [doc]


def _salvage_array(path: Path, text: str) -> Iterator[Item]:
    """A JSON array that does not parse (e.g. truncated): keep every complete record."""
    dec = json.JSONDecoder()
    pos = text.find("[")
    if pos < 0:
        raise InputError(path, "invalid JSON", line=1)
    pos += 1
    i = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            if pos >= len(text):
                yield i + 1, BadRecord(i + 1, None, "JSON array is truncated (no closing ']')")
            return
        i += 1
        try:
            rec, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            line = text.count("\n", 0, e.pos) + 1
            yield i, BadRecord(i, None, f"invalid JSON at line {line} ({e.msg}); reading stopped")
            return
        pos = end
        if isinstance(rec, dict):
            yield i, rec
        else:
            yield i, BadRecord(i, None, f"record {i} is {_tname(rec)}, not an object")


def _iter_csv(path: Path, delimiter: str) -> Iterator[Item]:
    with open_binary(path) as bfh:
        fh = io.TextIOWrapper(bfh, encoding="utf-8-sig", errors="strict", newline="")
        csv.field_size_limit(MAX_LINE_BYTES)
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(path, "file is empty", line=1) from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise InputError(path, f"unreadable CSV header ({e})", line=1) from e
        any_row = False
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                yield reader.line_num, BadRecord(reader.line_num, None, f"bad CSV ({e})")
                continue
            except UnicodeDecodeError as e:
                yield (
                    reader.line_num + 1,
                    BadRecord(
                        reader.line_num + 1, None, f"not UTF-8 text ({e.reason}); reading stopped"
                    ),
                )
                return
            if not row:
                continue
            any_row = True
            if len(row) != len(header):
                yield (
                    reader.line_num,
                    BadRecord(
                        reader.line_num,
                        None,
                        f"{len(row)} fields but the header has {len(header)}",
                        delimiter.join(row),
                    ),
                )
                continue
            yield reader.line_num, dict(zip(header, row, strict=True))
        if not any_row:
            raise InputError(path, "file has a header but no rows", line=2)


def read_parquet(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(path, f"not a readable Parquet file ({e})") from e


def read_hf_dir(path: Path) -> pa.Table:
    """The Arrow table of a `datasets` save_to_disk folder (read directly, no `datasets`)."""
    files: list[Path] = []
    state = path / "state.json"
    if state.exists():
        try:
            meta = json.loads(state.read_text(encoding="utf-8"))
            files = [path / f["filename"] for f in meta.get("_data_files", [])]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise InputError(state, f"unreadable datasets state ({e})") from e
    if not files:
        files = sorted(path.glob("*.arrow"))
    if not files:
        raise InputError(path, "datasets folder without .arrow data files")
    tables = []
    for f in files:
        try:
            with pa.memory_map(str(f)) as src:
                tables.append(pa.ipc.open_stream(src).read_all())
        except (pa.ArrowInvalid, OSError) as e:
            raise InputError(f, f"not a readable Arrow file ({e})") from e
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _iter_table(table: pa.Table) -> Iterator[Item]:
    n = 0
    for batch in table.to_batches(max_chunksize=4096):
        for rec in batch.to_pylist():
            n += 1
            yield n, rec


def sample(path: Path, rows: int = 20) -> list[Mapping[str, Any]] | None:
    """The first few parseable records of a file, for sniffing; None when unreadable."""
    out: list[Mapping[str, Any]] = []
    if path.is_file() and path.name.lower().endswith(".parquet"):
        from prefkit.io.base import parquet_batches

        try:
            first = next(parquet_batches(path, rows), None)
        except (pa.ArrowInvalid, OSError):
            return None
        return list(first.to_pylist()) if first is not None and first.num_rows else None
    try:
        for _, rec in iter_records(path):
            if isinstance(rec, BadRecord):
                continue
            out.append(rec)
            if len(out) >= rows:
                break
    except (InputError, OSError, UnicodeDecodeError, EOFError):
        return None
    return out or None


def _tname(v: Any) -> str:
    if v is None:
        return "null"
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
    }.get(type(v), type(v).__name__)


def type_name(v: Any) -> str:
    return _tname(v)
