"""Autodetection: pick the reader for a file and say why."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefkit.io.base import READERS, InputError, ReadOptions, ReadResult

SAMPLE_ROWS = 20
SAMPLE_BYTES = 4 << 20  # never read more than this to sniff (one huge line stays bounded)


def open_text(path: Path) -> Any:
    """Open a text file, transparently gunzipping `.gz` (checks the magic bytes)."""
    with path.open("rb") as fh:
        magic = fh.read(2)
    if path.suffix == ".gz" or magic == b"\x1f\x8b":
        if magic != b"\x1f\x8b":
            raise InputError(path, "file ends in .gz but is not gzip data")
        return gzip.open(path, "rt", encoding="utf-8", errors="strict", newline="")
    return path.open("r", encoding="utf-8", errors="strict", newline="")


def sample_records(path: Path) -> list[Mapping[str, Any]] | None:
    """A few records from a JSON / JSONL / CSV file for sniffing; None when not row data."""
    if path.is_dir() or path.suffix == ".parquet":
        return None
    try:
        with open_text(path) as fh:
            head = fh.read(SAMPLE_BYTES)
    except (UnicodeDecodeError, OSError, EOFError):
        return None
    stripped = head.lstrip()
    if not stripped:
        return None
    if stripped.startswith("["):
        try:
            data = json.loads(head)
        except json.JSONDecodeError:
            return None
        return [r for r in data[:SAMPLE_ROWS] if isinstance(r, dict)]
    if stripped.startswith("{"):
        out: list[Mapping[str, Any]] = []
        for line in head.splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break
            if isinstance(rec, dict):
                out.append(rec)
            if len(out) >= SAMPLE_ROWS:
                break
        if out:
            return out
        try:
            rec = json.loads(head)
        except json.JSONDecodeError:
            return None
        return [rec] if isinstance(rec, dict) else None
    if path.suffix in (".csv", ".tsv") or path.name.endswith((".csv.gz", ".tsv.gz")):
        import csv
        import io

        delim = "\t" if ".tsv" in path.name else ","
        reader = csv.DictReader(io.StringIO(head), delimiter=delim)
        rows: list[Mapping[str, Any]] = []
        for r in reader:
            rows.append(r)
            if len(rows) >= SAMPLE_ROWS:
                break
        return rows
    return None


def detect(path: Path) -> tuple[str, str, list[str]]:
    """Return (reader name, why, names tried) for a file; raises InputError if none fits."""
    if not path.exists():
        raise InputError(path, "file not found")
    sample = sample_records(path)
    tried: list[str] = []
    for name, reader in READERS.items():
        tried.append(name)
        why = reader.sniff(path, sample)
        if why:
            return name, why, tried
    raise InputError(
        path,
        "unknown format; tried "
        + ", ".join(tried)
        + ". Name the format with --from FORMAT, or map columns with "
        + "--from generic --map column=field (see docs/formats.md)",
    )


def read(
    path: str | Path,
    fmt: str | None = None,
    options: ReadOptions | None = None,
) -> ReadResult:
    """Read any supported file into canonical tables.

    `fmt` names a reader (see `READERS`); without it the format is autodetected and the
    result says which reader was picked and why.
    """
    import prefkit.io.readers  # noqa: F401  (registers every reader)

    p = Path(path)
    opts = options or ReadOptions()
    if fmt is None:
        name, why, _ = detect(p)
    else:
        if fmt not in READERS:
            raise InputError(p, f"unknown format {fmt!r}; known: {', '.join(READERS)}")
        name, why = fmt, "named with --from"
        if not p.exists():
            raise InputError(p, "file not found")
    result = READERS[name].read(p, opts)
    result.reader = name
    result.why = why
    return result
