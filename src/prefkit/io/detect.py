"""Autodetection: pick the reader for a file and say why."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefkit.io.base import READERS, InputError, OptionError, ReadOptions, ReadResult

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
    p = Path(path)
    opts = options or ReadOptions()
    name, why = pick(p, fmt, opts)
    result = READERS[name].read(p, opts)
    result.reader = name
    result.why = why
    return result


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
