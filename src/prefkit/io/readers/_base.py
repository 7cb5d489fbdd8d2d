"""The shared shape of a record-based reader: sniff keys, convert one record, collect rejects."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from prefkit.io.base import ReadOptions, ReadResult, Reject, StrictError
from prefkit.io.readers._records import BadRecord, iter_records, type_name
from prefkit.schema import Kind, SchemaError, from_rows

if TYPE_CHECKING:
    from prefkit.io.readers._fast import Plan

CHUNK = 20_000
GENERIC_STEMS = {"dataset", "data", "test", "train", "dev", "validation", "val", "valid"}


class RowError(ValueError):
    """One record cannot become a canonical row: names the field and the reason."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


Row = tuple[Kind, dict[str, Any]]


def default_source(path: Path, reader: str) -> str:
    """A readable source name: the file stem, or its folder when the stem is generic."""
    name = path.name
    for ext in (".gz", ".jsonl", ".json", ".csv", ".tsv", ".parquet"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.lower() in GENERIC_STEMS and path.parent.name:
        name = f"{path.parent.name}/{name}" if name.lower() != "dataset" else path.parent.name
    return f"{reader}:{name}"


class RecordReader:
    """Base class: subclasses set name/description/kinds and implement `keys_match`/`convert`."""

    name = ""
    description = ""
    kinds: tuple[Kind, ...] = (Kind.COMPARISONS,)
    example: str = ""

    #: the columns that identify the layout, and the reason `sniff` gives when all are there
    keys: frozenset[str] = frozenset()
    why: str = ""

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        """Why a record looks like this layout (None: it does not): by default, when it has
        every column of `keys`; readers with subtler tests override this."""
        return self.why if self.keys and self.keys <= rec.keys() else None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        raise NotImplementedError  # pragma: no cover - abstract

    def prepare(self, path: Path, options: ReadOptions) -> Context:
        return Context(path, options, options.source or default_source(path, self.name))

    def sniff(self, path: Path, sample: list[Mapping[str, Any]] | None) -> str | None:
        if not sample:
            return None
        hits = [self.keys_match(r) for r in sample]
        good = [h for h in hits if h]
        if good and len(good) * 2 > len(hits):
            return good[0]
        return None

    def plan(self, schema: pa.Schema, container: str, options: ReadOptions) -> Plan | None:
        """How the vectorised path maps this file's columns (None: per row only)."""
        return None

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        if type(self).plan is not RecordReader.plan:
            from prefkit.io.readers._fast import read_fast

            fast = read_fast(path, options, self, lambda s, c: self.plan(s, c, options))
            if fast is not None:
                return fast
        return self.read_rows(path, options)

    def read_rows(self, path: Path, options: ReadOptions) -> ReadResult:
        """The per-row path: every record through `convert`."""
        ctx = self.prepare(path, options)
        rows: dict[Kind, list[dict[str, Any]]] = {k: [] for k in self.kinds}
        tables: dict[Kind, list[pa.Table]] = {k: [] for k in self.kinds}
        rejects: list[Reject] = []
        n_in = 0
        fname = str(path)
        for line, rec in iter_records(path):
            n_in += 1
            if isinstance(rec, BadRecord):
                rej: Reject | None = Reject(fname, rec.line, rec.field, rec.reason, _clip(rec.raw))
                if options.strict:
                    raise StrictError(fname, rec.reason, line=rec.line, field=rec.field)
                out: list[Row] = []
            else:
                out, rej = convert_record(self, rec, ctx, n_in, line)
            if rej is not None:
                rejects.append(rej)
                continue
            for kind, row in out:
                rows.setdefault(kind, []).append(row)
                if len(rows[kind]) >= CHUNK:
                    tables.setdefault(kind, []).append(_build(rows[kind], kind, fname))
                    rows[kind] = []
        out_tables: dict[Kind, pa.Table] = {}
        for kind in self.kinds:
            if rows.get(kind):
                tables.setdefault(kind, []).append(_build(rows[kind], kind, fname))
            if tables.get(kind):
                out_tables[kind] = pa.concat_tables(tables[kind])
        if not out_tables:
            out_tables = {self.kinds[0]: from_rows([], self.kinds[0])}
        return ReadResult(out_tables, rejects, rows_in=n_in)


def convert_record(
    reader: RecordReader, rec: Mapping[str, Any], ctx: Context, number: int, line: int
) -> tuple[list[Row], Reject | None]:
    """One record through `reader.convert`: its rows (ids `<source>:<number>[:j]`, source
    filled in) or why not (raised as `StrictError` in strict mode)."""
    fname = str(ctx.path)
    try:
        out = list(reader.convert(rec, ctx))
    except RowError as e:
        rej = Reject(fname, line, e.field, e.reason, _clip(_dump(rec)))
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        rej = Reject(fname, line, None, f"{type(e).__name__}: {e}", _clip(_dump(rec)))
    else:
        for j, (_, row) in enumerate(out):
            row.setdefault("id", f"{ctx.source}:{number}" + (f":{j}" if j else ""))
            row.setdefault("source", ctx.source)
        return out, None
    if ctx.options.strict:
        raise StrictError(fname, rej.reason, line=rej.line, field=rej.field)
    return [], rej


class Context:
    """Per-read state handed to `convert` (path, options, source, and a scratch dict)."""

    def __init__(self, path: Path, options: ReadOptions, source: str) -> None:
        self.path = path
        self.options = options
        self.source = source
        self.extra: dict[str, Any] = {}

    def value(self, field: str, raw: Any) -> Any:
        """Apply a --value-map for this field (raw compared as a string)."""
        vm = self.options.value_maps.get(field)
        if vm and raw is not None and str(raw) in vm:
            return vm[str(raw)]
        return raw


def _build(rows: list[dict[str, Any]], kind: Kind, fname: str) -> pa.Table:
    try:
        return from_rows(rows, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, SchemaError) as e:
        raise StrictError(fname, f"could not build the {kind.value} table ({e})") from e


def _dump(rec: Any) -> str:
    try:
        return json.dumps(rec, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(rec)


def _clip(raw: str | None, limit: int = 2000) -> str | None:
    if raw is None or len(raw) <= limit:
        return raw
    return raw[:limit] + f"... ({len(raw):,} chars)"


# ---------------------------------------------------------------------------------------
# Field helpers used by the readers


def need(rec: Mapping[str, Any], key: str) -> Any:
    if key not in rec or rec[key] is None:
        raise RowError(key, "required field is missing")
    return rec[key]


def need_str(rec: Mapping[str, Any], key: str, allow_empty: bool = True) -> str:
    v = need(rec, key)
    if not isinstance(v, str):
        raise RowError(key, f"expected a string, got {type_name(v)}")
    if not allow_empty and not v.strip():
        raise RowError(key, "is empty")
    return v


def need_text(rec: Mapping[str, Any], key: str) -> str:
    """A text field; JSON scalars (a response written as `true` or `42`) become their text."""
    v = need(rec, key)
    if isinstance(v, str):
        return v
    if isinstance(v, bool | int | float):
        return json.dumps(v)
    raise RowError(key, f"expected a string, got {type_name(v)}")


def opt_str(rec: Mapping[str, Any], key: str) -> str | None:
    v = rec.get(key)
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    raise RowError(key, f"expected a string, got {type_name(v)}")


def messages(value: Any, field: str, role: str = "assistant") -> list[dict[str, str]]:
    """A string or a list of {role, content} messages, checked, as canonical messages."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        out = []
        for i, m in enumerate(value):
            if isinstance(m, str):
                out.append({"role": role, "content": m})
                continue
            if not isinstance(m, Mapping):
                raise RowError(field, f"message {i} is {type_name(m)}, not an object")
            r, c = m.get("role"), m.get("content")
            if not isinstance(r, str):
                raise RowError(field, f"message {i} has no string 'role'")
            if c is None:
                c = ""
            if isinstance(c, list):  # OpenAI content parts
                c = "".join(p.get("text", "") for p in c if isinstance(p, Mapping))
            if not isinstance(c, str):
                raise RowError(field, f"message {i} 'content' is {type_name(c)}, not a string")
            out.append({"role": r, "content": c})
        return out
    if value is None:
        raise RowError(field, "required field is missing")
    raise RowError(field, f"expected a string or a list of messages, got {type_name(value)}")


def shared_prefix(a: list[dict[str, str]], b: list[dict[str, str]]) -> int:
    """Number of leading messages that form the prompt of two conversations: their shared
    messages, backed off so that both responses start at an assistant message and keep at
    least one message each."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    n = max(min(n, len(a) - 1, len(b) - 1), 0)
    while n > 0 and not (a[n]["role"] == "assistant" and b[n]["role"] == "assistant"):
        n -= 1
    return n


def meta_of(rec: Mapping[str, Any], used: Iterable[str]) -> dict[str, str]:
    """Every field not mapped to a canonical column, kept as a string (JSON for non-strings)."""
    skip = set(used)
    out: dict[str, str] = {}
    for k, v in rec.items():
        if k in skip or v is None:
            continue
        out[str(k)] = as_json_text(v)
    return out


def as_json_text(v: Any) -> str:
    """A value as `meta` keeps it: strings as they are, anything else as its JSON text (the
    common scalars without going through the JSON encoder: same text)."""
    if isinstance(v, str):
        return v
    t = type(v)
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return int.__repr__(v)
    if t is float and math.isfinite(v):
        return float.__repr__(v)
    return json.dumps(v, ensure_ascii=False, default=str)


def outcome_value(
    value: Any, table: Mapping[str, str], value_map: Mapping[str, str] | None = None
) -> str | None:
    """The canonical outcome of a raw value (after `--value-map`, stripped, lower-cased;
    the reader's vocabulary first, then a/b/tie/both_bad), or None when it has none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    v = value_map[str(value)] if value_map and str(value) in value_map else value
    key = v.strip().lower() if isinstance(v, str) else v
    if isinstance(key, bool):
        key = str(key).lower()
    if isinstance(key, int | float):
        key = str(int(key)) if float(key).is_integer() else str(key)
    if key in table:
        return table[key]
    if key in ("a", "b", "tie", "both_bad"):
        return str(key)
    return None


def outcome_from(value: Any, field: str, table: Mapping[str, str], ctx: Context) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowError(field, "required field is missing")
    got = outcome_value(value, table, ctx.options.value_maps.get("outcome"))
    if got is None:
        raise RowError(field, f"unknown outcome value {value!r} (expected one of {sorted(table)})")
    return got
