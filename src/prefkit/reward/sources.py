"""Inputs of `prefkit rm train A B C ...` and `rm eval-matrix`: files and folders → sources.

A *source* is one dataset a model trains on, with its own nuisance terms and its share of the
weight: each input file is a source. A folder stands for the data files under it (searched
recursively, sorted), each one source; the shards of one file (`train-00000-of-00003.parquet`,
…) form one source, and a `datasets.save_to_disk` folder is one source. Any feedback kind
prefkit reads is accepted: comparisons and `prefkit pairs` output as they are; rankings,
ratings and binary feedback become pairs with the build stage's default strategy (ties kept,
as soft labels), and the note says so.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv", ".tsv")
_NOT_DATA = (".rejects.jsonl", ".build.json")
_SHARD = re.compile(r"^(?P<stem>.+?)[-_]\d{5}-of-\d{5}(?P<ext>\..+)$")


class SourceError(ValueError):
    """An input that cannot be a training or evaluation source (named in the message)."""


@dataclass
class Source:
    """One dataset: its name (the path as given), its files and the table to train on."""

    name: str
    files: list[Path]
    table: pa.Table | None = None
    notes: list[str] = field(default_factory=list)


def _is_data_file(p: Path) -> bool:
    name = p.name.lower()
    if any(name.endswith(s) for s in _NOT_DATA) or name == "model.json":
        return False
    base = name[:-3] if name.endswith(".gz") else name
    return any(base.endswith(s) for s in DATA_SUFFIXES)


def _is_hf_dir(p: Path) -> bool:
    return p.is_dir() and ((p / "dataset_info.json").exists() or (p / "state.json").exists())


def expand(path: Path) -> list[Source]:
    """The sources an input path stands for (see the module docstring)."""
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    if path.is_file() or _is_hf_dir(path):
        return [Source(str(path), [path])]
    found: list[Path] = []
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).parts
        if any(part.startswith(".") for part in rel):
            continue
        if _is_hf_dir(p):
            found.append(p)
        elif p.is_file() and _is_data_file(p) and not any(_is_hf_dir(q) for q in p.parents):
            found.append(p)
    groups: dict[str, list[Path]] = {}
    for p in found:
        m = _SHARD.match(p.name)
        key = str(p.parent / (m["stem"] + m["ext"])) if m else str(p)
        groups.setdefault(key, []).append(p)
    if not groups:
        raise SourceError(
            f"{path}: folder has no data files ({', '.join(DATA_SUFFIXES)}, optionally .gz)"
        )
    return [Source(name, files) for name, files in groups.items()]


def expand_all(paths: Sequence[Path]) -> list[Source]:
    """Sources of every input path, in order; a file named twice is an error."""
    out: list[Source] = []
    seen: set[str] = set()
    for p in paths:
        for s in expand(p):
            key = str(Path(s.name).resolve())
            if key in seen:
                raise SourceError(f"{s.name}: given twice")
            seen.add(key)
            out.append(s)
    return out


def reward_table(table: pa.Table, kind: str) -> tuple[pa.Table, str | None]:
    """A table reward models can use: comparisons and build pairs as they are; rankings,
    ratings and binary feedback as pairs by the build stage's default strategy (ties kept).
    Returns the table and a note saying what was built, or None."""
    if kind == "comparisons":
        return table, None
    from prefkit.build.pairs import DEFAULT_STRATEGY, build_pairs
    from prefkit.schema import Kind

    res = build_pairs(table, ties="keep")
    strategy = DEFAULT_STRATEGY[Kind(kind)]
    return res.table, (
        f"{table.num_rows} {kind} rows → {res.table.num_rows} pairs (strategy {strategy}, "
        f"ties kept; `prefkit pairs` builds them with other policies)"
    )


def load(
    source: Source,
    on_read: Callable[[Path, Any], None] | None = None,
) -> Source:
    """Read every file of `source` into one table (`on_read(path, ReadResult)` sees each
    read, e.g. to report rejected rows). Files of one source must be the same kind."""
    from prefkit.io.detect import read
    from prefkit.reward.data import is_pairs_table
    from prefkit.schema import Kind

    tables = []
    notes: list[str] = []
    for f in source.files:
        res = read(f)
        if on_read is not None:
            on_read(f, res)
        kinds = (Kind.COMPARISONS, Kind.RANKINGS, Kind.RATINGS, Kind.BINARY)
        kind = next((k for k in kinds if k in res.tables), None)
        if kind is None:
            got = ", ".join(k.value for k in res.tables) or "nothing"
            raise SourceError(
                f"{f}: reward models need comparisons, pairs, rankings, ratings or binary "
                f"feedback; the {res.reader} reader gave {got}"
            )
        t, note = reward_table(res.tables[kind], kind.value)
        if note:
            notes.append(f"{f}: {note}")
        tables.append(t)
    if len({is_pairs_table(t) for t in tables}) > 1:
        raise SourceError(f"{source.name}: its files mix comparisons and pairs; give them apart")
    try:
        table = pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SourceError(f"{source.name}: its files do not share one schema ({e})") from e
    return Source(source.name, source.files, table, notes)


def file_digest(path: Path) -> str:
    """blake2b digest of a file's bytes; of a folder: of every file in it (names and bytes)."""
    h = hashlib.blake2b(digest_size=12)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        if f != path:
            h.update(str(f.relative_to(path)).encode() + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def source_digest(files: Sequence[Path]) -> str:
    """Digest of a source: its file's digest, or of its files' digests (shards) in order."""
    if len(files) == 1:
        return file_digest(files[0])
    h = hashlib.blake2b(digest_size=12)
    for f in files:
        h.update(file_digest(f).encode())
    return h.hexdigest()
