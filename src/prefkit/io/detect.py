"""Autodetection: pick the reader for a file and say why."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefkit.io.base import READERS, InputError, OptionError, ReadOptions, ReadResult, Reject
from prefkit.schema import Kind, conform, from_rows

SAMPLE_ROWS = 20
SAMPLE_BYTES = 4 << 20  # never read more than this to sniff (one huge line stays bounded)


def sample_records(path: Path) -> list[Mapping[str, Any]] | None:
    """A few records of any container prefkit reads, for sniffing; None when not row data."""
    from prefkit.io.readers._records import sample

    if path.suffix == ".parquet" and not path.is_dir():
        from prefkit.io.canonical import is_canonical

        if is_canonical(path):
            return None
    return sample(path, SAMPLE_ROWS)


def _check_gzip(path: Path) -> None:
    if path.is_file() and path.name.endswith(".gz"):
        with path.open("rb") as fh:
            if fh.read(2) != b"\x1f\x8b":
                raise InputError(path, "file ends in .gz but is not gzip data", line=1)


def detect(path: Path) -> tuple[str, str, list[str]]:
    """Return (reader name, why, names tried) for a file; raises InputError if none fits."""
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(path, "file is empty", line=1)
    _check_gzip(path)
    if path.is_file() and path.name.lower().endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as e:  # truncated or corrupt: say so, not "empty"
            raise InputError(path, f"not a readable Parquet file ({e})") from None
    sample = sample_records(path)
    tried: list[str] = []
    for name, reader in READERS.items():
        tried.append(name)
        why = reader.sniff(path, sample)
        if why:
            return name, why, tried
    if sample is None and path.is_file():
        # say why nothing could be sampled (not gzip, not UTF-8, truncated, ...)
        from prefkit.io.readers._records import iter_records

        for line, rec in iter_records(path):
            reason = getattr(rec, "reason", None)
            if reason:
                raise InputError(path, f"no readable record ({reason})", line=line)
            break
    seen = ""
    if sample:
        cols = list(dict.fromkeys(k for rec in sample for k in rec))
        shown = ", ".join(cols[:30]) + (f", ... ({len(cols)} in all)" if len(cols) > 30 else "")
        seen = f" (columns: {shown})"
    raise InputError(
        path,
        f"unknown format{seen}; tried "
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
    result says which reader was picked and why. A folder of data files (a hub dataset:
    `data/train-00000-of-00003.parquet`, split subfolders, JSON lines shards) or a glob
    (`'data/*.parquet'`) is read as one dataset, the split name in `meta.split`.
    """
    p = Path(path)
    opts = options or ReadOptions()
    files = dataset_files(p)
    if files is not None:
        return read_dataset(p, files, fmt, opts)
    name, why = pick(p, fmt, opts)
    result = READERS[name].read(p, opts)
    result.reader = name
    result.why = why
    return result


DATA_SUFFIXES = (
    ".parquet",
    ".jsonl",
    ".jsonl.gz",
    ".json",
    ".json.gz",
    ".ndjson",
    ".csv",
    ".csv.gz",
    ".tsv",
)
_SHARD = re.compile(r"[-_]\d{3,5}[-_]of[-_]\d{3,5}$")


def is_pattern(path: Path) -> bool:
    return any(ch in str(path) for ch in "*?[")


def dataset_files(path: Path) -> list[tuple[Path, str | None]] | None:
    """The data files of a folder or glob, sorted, with each one's split name; None for a
    single file (or a `datasets` save_to_disk folder, which its reader reads whole)."""
    from prefkit.io.readers._records import is_hf_dir

    if is_pattern(path) and not path.exists():
        import glob

        found = sorted(Path(f) for f in glob.glob(str(path), recursive=True))
        files = [f for f in found if f.is_file() and f.name.lower().endswith(DATA_SUFFIXES)]
        if not files:
            raise InputError(path, "no data file matches this pattern")
        root = Path(os.path.commonpath([str(f.parent) for f in files]))
    elif path.is_dir() and not is_hf_dir(path):
        files = sorted(
            f
            for f in path.rglob("*")
            if f.is_file()
            and f.name.lower().endswith(DATA_SUFFIXES)
            and not any(part.startswith(".") for part in f.relative_to(path).parts)
        )
        if not files:
            raise InputError(path, "folder holds no data file (" + ", ".join(DATA_SUFFIXES) + ")")
        root = path
    else:
        return None
    return [(f, split_name(f, root)) for f in files]


SPLIT_WORDS = ("train", "test", "validation", "valid", "val", "dev", "eval", "heldout")


def split_name(file: Path, root: Path) -> str | None:
    """The split a hub file belongs to, as `datasets` infers it: the file name when it
    starts with a split word (`train-00000-of-00003.parquet` -> train, `test_prefs.jsonl`
    -> test_prefs), else the nearest folder that does (`train/0000.parquet`), else the file
    name without its shard suffix."""
    stem = file.name
    for suf in sorted(DATA_SUFFIXES, key=len, reverse=True):
        if stem.lower().endswith(suf):
            stem = stem[: -len(suf)]
            break
    stem = _SHARD.sub("", stem)
    if stem.lower().startswith(SPLIT_WORDS):
        return stem
    for part in reversed(file.relative_to(root).parts[:-1]):
        if part.lower().startswith(SPLIT_WORDS):
            return part
    return stem or None


def read_dataset(
    path: Path, files: list[tuple[Path, str | None]], fmt: str | None, opts: ReadOptions
) -> ReadResult:
    """Every file with the reader of the first (all must agree), as one result: ids stay
    unique per file, `source` is `<reader>:<dataset>`, `meta.split` the split."""
    import dataclasses

    import pyarrow as pa

    from prefkit.engine import run_tasks
    from prefkit.io import forked
    from prefkit.io.readers._base import default_source

    unreadable: list[Reject] = []
    name, why = _pick_first(files, fmt, opts, unreadable)
    dataset = path.name if path.is_dir() else Path(str(path).split("*")[0]).name or "dataset"
    source = opts.source or f"{name}:{dataset}"
    out = ReadResult({}, reader=name, why=f"{why}; {len(files)} files read as one dataset")

    def shard_of(f: Path) -> str:
        shard = opts.source or default_source(f, name)
        return f"{source}/{f.name}" if shard == source else shard

    def jobs_of(todo: list[tuple[Path, str | None]], check: bool) -> list[Part]:
        return [
            (name, f, dataclasses.replace(opts, source=shard_of(f)), source, split, check and i > 0)
            for i, (f, split) in enumerate(todo)
        ]

    # one task per file: forked worker processes for a big enough local folder (both cores
    # for the readers' Python work), else two local threads (one file's Python work overlaps
    # the other's decoding and kernels), or Ray tasks on every core of the cluster
    workers = forked.workers_for([f for f, _ in files]) if opts.engine == "local" else 0
    need = forked.GROWTH * forked.input_bytes([f for f, _ in files])
    results: list[ReadResult] | None = None
    if workers and fmt is None:
        # each worker checks its file's format before reading it; any file that is not
        # `name` (another format, unreadable): the checks and reads below, in this process
        todo = [(f, split) for f, split in files if not any(r.file == str(f) for r in unreadable)]
        results = forked.read_forked(read_part, jobs_of(todo, True), workers, need)
        if results is None:  # the processes could not run: not again
            workers = 0
        elif any(got.reader != name for got in results):
            results = None
        else:
            files = todo
    if results is None:
        if fmt is None:
            for f, _ in files[1:]:
                if any(r.file == str(f) for r in unreadable):
                    continue
                try:
                    other, _ = pick(f, None, opts)
                except InputError as e:
                    if opts.strict:
                        raise
                    unreadable.append(_unreadable(f, e))
                    continue
                if other != name:
                    raise InputError(
                        path,
                        f"mixed formats: {files[0][0]} reads as {name}, {f} as {other}; "
                        "read one subfolder, or name the format with --from",
                    )
        bad = {r.file for r in unreadable}
        files = [(f, split) for f, split in files if str(f) not in bad]
        jobs = jobs_of(files, False)
        if workers:
            results = forked.read_forked(read_part, jobs, workers, need)
        if results is None:
            results = run_tasks(read_part, jobs, opts.engine)
    out.rejects.extend(unreadable)
    tables: dict[Kind, list[pa.Table]] = {}
    for got in results:
        out.rejects.extend(got.rejects)
        out.rows_in += got.rows_in
        out.rows_vectorised += got.rows_vectorised
        for k, v in got.notes.items():
            out.notes[k] = out.notes.get(k, 0) + v
        for kind, t in got.tables.items():
            if t.num_rows:
                tables.setdefault(kind, []).append(t)
    out.tables = {k: pa.concat_tables(v) for k, v in tables.items()}
    if not out.tables:
        kinds = [k for got in results for k in got.tables]
        kind = kinds[0] if kinds else (opts.kind or Kind.COMPARISONS)
        out.tables = {kind: from_rows([], kind)}
    return out


def read_shard(job: tuple[str, Path, ReadOptions]) -> ReadResult:
    """One file of a dataset with reader `name`: its rows, or — when the file cannot be read
    at all (corrupt, truncated, not the format) — no rows and one reject naming the file and
    why (with `strict`, the error). Runs in a thread or as a Ray task."""
    import prefkit.io.readers  # noqa: F401  (registers every reader, also in a Ray worker)

    name, f, opts = job
    try:
        return READERS[name].read(f, opts)
    except OptionError:
        raise
    except Exception as e:  # any failure to read this file is the file's, not the run's
        if opts.strict:
            raise
        return ReadResult({}, rejects=[_unreadable(f, e)])


#: one file of a dataset: reader, file, options (`source` the shard's), the dataset's
#: source, the split, and whether to check first that the file reads as `reader`
Part = tuple[str, Path, ReadOptions, str, "str | None", bool]


def read_part(job: Part) -> ReadResult:
    """One file of a dataset as a part of it (`read_shard`, then in every non-empty table
    the shard's `source` made the dataset's and `meta.split` set), `reader` the reader's
    name; with the check, a file that does not detect as that reader is not read (an empty
    result whose `reader` is not the name). Runs in a thread, a forked worker process
    (`prefkit.io.forked`) or a Ray task."""
    import pyarrow.compute as pc

    from prefkit.io.readers._arrow import scalar
    from prefkit.io.readers._fast import set_meta

    name, f, opts, source, split, check = job
    if check:
        try:
            other, _ = pick(f, None, opts)
        except InputError:
            other = ""
        if other != name:
            return ReadResult({}, reader=f"not {name}")
    got = read_shard((name, f, opts))
    got.reader = name
    shard = opts.source
    assert shard is not None
    for kind, t in list(got.tables.items()):
        if not t.num_rows:
            continue
        src = t.column("source")
        t = t.set_column(
            t.schema.get_field_index("source"),
            "source",
            pc.if_else(pc.equal(src, scalar(shard)), scalar(source), src),
        )
        if split is not None:
            t = set_meta(t, "split", split)
        got.tables[kind] = conform(t, kind)
    return got


def _unreadable(f: Path, e: Exception) -> Reject:
    reason = e.reason if isinstance(e, InputError) else f"{type(e).__name__}: {e}"
    return Reject(str(f), None, None, f"unreadable shard, skipped: {reason}"[:500])


def _pick_first(
    files: list[tuple[Path, str | None]], fmt: str | None, opts: ReadOptions, bad: list[Reject]
) -> tuple[str, str]:
    """The reader of the first file that detects (files that do not are unreadable shards,
    added to `bad`); with every file unreadable, the first one's error."""
    first: InputError | None = None
    for f, _ in files:
        try:
            return pick(f, fmt, opts)
        except InputError as e:
            if opts.strict or fmt is not None:
                raise
            first = first or e
            bad.append(_unreadable(f, e))
    assert first is not None
    raise first


def pick(p: Path, fmt: str | None, opts: ReadOptions) -> tuple[str, str]:
    """The reader `read` uses for this file, and why (named, or autodetected)."""
    import prefkit.io.readers  # noqa: F401  (registers every reader)
    from prefkit.io.readers.generic import FIELDS, check_mapping

    check_mapping(opts.mapping)
    for field in opts.value_maps:
        if field not in FIELDS:
            raise OptionError(
                f"--value-map {field}:...: unknown field {field!r}; fields: {', '.join(FIELDS)}"
            )
    if fmt is None and opts.mapping:
        fmt = "generic"
    if fmt is None:
        name, why, _ = detect(p)
        return name, why
    if fmt not in READERS:
        raise OptionError(f"--from {fmt}: unknown format; known: {', '.join(READERS)}")
    if not p.exists():
        raise InputError(p, "file not found")
    return fmt, "named with --from"
