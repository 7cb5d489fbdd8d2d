"""Generic CSV / JSONL / Parquet / datasets reader with a column map, and canonical rows
stored in those containers (what `convert --to csv|jsonl|hf` writes).

`--map column=field` renames source columns to canonical fields (`prompt`, `response_a`,
`response_b`, `outcome`, `annotator`, `model_a`, `score`, `label`, ...); `--value-map
field:raw=value` rewrites raw values (e.g. `outcome:left=a`). The kind follows the fields:
outcome/response_a/response_b -> comparisons, score -> ratings, label -> binary, ranks ->
rankings, spans/correction -> critiques (or `ReadOptions.kind`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from prefkit.io.base import InputError, ReadOptions, ReadResult, register_reader
from prefkit.io.readers._base import (
    Context,
    RecordReader,
    Row,
    RowError,
    messages,
    meta_of,
    outcome_from,
)
from prefkit.io.readers._records import container, read_hf_dir, type_name
from prefkit.io.readers.trl import as_bool
from prefkit.schema import KIND_FIELDS, SCHEMAS, Kind, conform, validate

MESSAGE_FIELDS = {"prompt": "user", "response": "assistant", "response_a": "assistant"}
MESSAGE_FIELDS["response_b"] = "assistant"
FLOAT_FIELDS = {"score", "scale_min", "scale_max", "strength"}
STRING_FIELDS = {
    "id",
    "prompt_id",
    "annotator",
    "source",
    "aspect",
    "rationale",
    "model_a",
    "model_b",
    "model",
    "shown_first",
    "correction",
}
JSON_FIELDS = {"responses", "models", "ranks", "spans", "meta"}
KIND_KEYS: list[tuple[Kind, set[str]]] = [
    (Kind.COMPARISONS, {"outcome", "response_a", "response_b", "model_a"}),
    (Kind.RANKINGS, {"ranks"}),
    (Kind.CRITIQUES, {"spans", "correction"}),
    (Kind.RATINGS, {"score"}),
    (Kind.BINARY, {"label"}),
]
OUTCOMES = {"a": "a", "b": "b", "tie": "tie", "both_bad": "both_bad"}
PAIR_ALIASES = {"chosen": "response_a", "rejected": "response_b"}


def kind_for(fields: Iterable[str]) -> Kind | None:
    names = set(fields)
    for kind, keys in KIND_KEYS:
        if keys & names:
            return kind
    return None


def _maybe_json(v: Any) -> Any:
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v == "")


class GenericReader(RecordReader):
    name = "generic"
    description = "any CSV/JSONL/Parquet/datasets table with --map column=field (+ --value-map)"
    kinds = tuple(Kind)
    example = "question,answer_1,answer_2,winner  (--map question=prompt --map winner=outcome ...)"

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if {"response_a", "response_b", "outcome"} <= set(rec):
            return "columns already named like canonical comparisons"
        if {"prompt", "response", "score"} <= set(rec):
            return "columns already named like canonical ratings"
        return None

    def prepare(self, path: Path, options: ReadOptions) -> Context:
        ctx = super().prepare(path, options)
        fields = set(options.mapping.values())
        ctx.extra["kind"] = options.kind
        ctx.extra["fields"] = fields
        return ctx

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        mapping: Mapping[str, str] = ctx.options.mapping
        if mapping:
            missing = [c for c in mapping if c not in rec]
            if missing:
                raise RowError(missing[0], "column named in --map is missing")
        row: dict[str, Any] = {}
        used = set()
        for col, v in rec.items():
            field = mapping.get(col, col if col not in mapping.values() else None)
            if field is None:
                continue
            if field in PAIR_ALIASES and mapping.get(col) == field:
                field = PAIR_ALIASES[field]  # --map good=chosen: preferred response, outcome a
                row.setdefault("outcome", "a")
            if field in MESSAGE_FIELDS or field in FLOAT_FIELDS or field in STRING_FIELDS:
                used.add(col)
            elif field in JSON_FIELDS or field in ("outcome", "label"):
                used.add(col)
            else:
                continue
            row[field] = v
        kind = ctx.extra["kind"] or kind_for(row)
        if kind is None:
            raise RowError(
                None,
                "cannot tell the kind: map a column to outcome, score, label, ranks or spans",
            )
        allowed = {f.name for f in SCHEMAS[kind]}
        out: dict[str, Any] = {}
        for field, v in row.items():
            if field not in allowed:
                continue
            v = ctx.value(field, v)
            if field in MESSAGE_FIELDS:
                out[field] = (
                    None if _blank(v) else messages(_maybe_json(v), field, MESSAGE_FIELDS[field])
                )
            elif field in FLOAT_FIELDS:
                if _blank(v):
                    out[field] = None
                    continue
                try:
                    out[field] = float(v)
                except (TypeError, ValueError):
                    raise RowError(field, f"expected a number, got {type_name(v)} {v!r}") from None
            elif field == "outcome":
                out[field] = outcome_from(v, field, OUTCOMES, ctx)
            elif field == "label":
                out[field] = as_bool(v, field)
            elif field in JSON_FIELDS:
                out[field] = None if _blank(v) else _maybe_json(v)
                if field == "meta" and not isinstance(out[field], Mapping | None):
                    raise RowError(field, f"expected an object, got {type_name(out[field])}")
                if field == "responses" and out[field] is not None:
                    out[field] = [messages(_maybe_json(x), field) for x in out[field]]
            else:
                out[field] = None if v is None else str(v)
        required = [f.name for f in KIND_FIELDS[kind] if not f.nullable]
        for f in required:
            if out.get(f) is None:
                raise RowError(f, "required field is missing")
        extra = meta_of(rec, used)
        if out.get("meta") is not None or extra:
            meta = {**dict(out.get("meta") or {}), **extra}
            out["meta"] = {
                str(k): v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()
            }
        return [(kind, out)]

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        result = super().read(path, options)
        tables = {k: t for k, t in result.tables.items() if t.num_rows}
        if not tables:
            k = options.kind or Kind.COMPARISONS
            tables = {k: result.tables.get(k, next(iter(result.tables.values())))}
        result.tables = tables
        return result


def _is_canonical_names(names: Iterable[str]) -> Kind | None:
    cols = set(names)
    if not {"id", "prompt_id"} <= cols:
        return None
    for kind in (Kind.COMPARISONS, Kind.RANKINGS, Kind.CRITIQUES, Kind.BINARY, Kind.RATINGS):
        req = {f.name for f in KIND_FIELDS[kind] if not f.nullable}
        distinct = {f.name for f in KIND_FIELDS[kind]} - {"response", "model"}
        if req <= cols and distinct <= cols:
            return kind
    return None


class CanonicalRowsReader(GenericReader):
    """Canonical columns stored as CSV / JSONL / datasets (what prefkit's writers emit)."""

    name = "canonical-rows"
    description = "canonical columns in CSV, JSON lines or a datasets folder (prefkit writers)"
    example = "id,prompt,prompt_id,...,outcome  (messages, meta and lists as JSON)"

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        kind = _is_canonical_names(rec)
        if kind is not None:
            return f"canonical {kind.value} columns (written by prefkit)"
        return None

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        kind_c = container(path)
        if kind_c == "hf":
            return _read_hf_canonical(path, options)
        if kind_c in ("csv", "tsv"):
            return _read_csv_canonical(path, options, "\t" if kind_c == "tsv" else ",")
        return super().read(path, options)


def _read_hf_canonical(path: Path, options: ReadOptions) -> ReadResult:
    table = read_hf_dir(path)
    kind = options.kind or _is_canonical_names(table.column_names)
    if kind is None:
        raise InputError(path, "datasets folder without canonical columns")
    if "meta" in table.column_names and not pa.types.is_map(table.column("meta").type):
        rows = table.column("meta").to_pylist()
        try:
            meta = pa.array(
                [None if v is None else [(e["key"], e["value"]) for e in v] for v in rows],
                pa.map_(pa.string(), pa.string()),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, KeyError) as e:
            raise InputError(path, f"cannot read column meta ({e})", field="meta") from e
        table = table.set_column(table.column_names.index("meta"), "meta", meta)
    table = conform(table, kind)
    validate(table, kind)
    return ReadResult({kind: table}, rows_in=table.num_rows)


def _read_csv_canonical(path: Path, options: ReadOptions, delimiter: str) -> ReadResult:
    """pyarrow CSV keeps null (empty, unquoted) and "" (quoted) apart; then rows as usual."""
    import pyarrow.csv as pcsv

    from prefkit.io.readers._records import open_binary

    with open_binary(path) as fh:
        head = fh.readline().decode("utf-8-sig").strip("\r\n")
    names = next(iter(__import__("csv").reader([head], delimiter=delimiter)))
    try:
        with open_binary(path) as fh:
            table = pcsv.read_csv(
                fh,
                parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
    except (pa.ArrowInvalid, OSError):
        return GenericReader.read(CanonicalRowsReader(), path, options)
    reader = CanonicalRowsReader()
    ctx = reader.prepare(path, options)
    rows = []
    rejects = []
    from prefkit.io.base import Reject, StrictError

    for i, rec in enumerate(table.to_pylist(), start=2):
        try:
            ((kind, row),) = reader.convert(rec, ctx)
        except RowError as e:
            if options.strict:
                raise StrictError(str(path), e.reason, line=i, field=e.field) from e
            rejects.append(Reject(str(path), i, e.field, e.reason))
            continue
        rows.append(row)
    from prefkit.schema import from_rows

    kind = options.kind or _is_canonical_names(names) or Kind.COMPARISONS
    return ReadResult({kind: from_rows(rows, kind)}, rejects, rows_in=table.num_rows)


register_reader(CanonicalRowsReader())
register_reader(GenericReader())
