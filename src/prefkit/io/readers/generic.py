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

from prefkit.io.base import InputError, OptionError, ReadOptions, ReadResult, register_reader
from prefkit.io.readers._base import (
    Context,
    RecordReader,
    Row,
    RowError,
    messages,
    meta_of,
    outcome_from,
)
from prefkit.io.readers._fast import BattlePlan, PerRow
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


#: every canonical field a column can be mapped to (and `chosen`/`rejected`, see --map)
FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(f.name for kind in Kind for f in SCHEMAS[kind] if f.name != "meta")
) + ("meta", *PAIR_ALIASES)


def check_mapping(mapping: Mapping[str, str]) -> None:
    """A `--map` target must be a canonical field: an `OptionError` (usage) otherwise."""
    for col, target in mapping.items():
        if target not in FIELDS:
            raise OptionError(
                f"--map {col}={target}: unknown field {target!r}; fields: {', '.join(FIELDS)}"
            )


def assign(names: Iterable[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """Source column -> canonical field (or `chosen`/`rejected` when mapped so): a mapped
    column gets its target; an unmapped column with a canonical name keeps it unless another
    column is mapped to that field. Columns left out go to `meta`."""
    targets = set(mapping.values())
    out: dict[str, str] = {}
    for col in names:
        if col in mapping:
            out[col] = mapping[col]
        elif col in FIELDS and col not in PAIR_ALIASES and col not in targets:
            out[col] = col
    return out


def _valid_messages(v: Any, allow_empty: bool) -> bool:
    return (
        isinstance(v, list)
        and (allow_empty or bool(v))
        and all(
            isinstance(m, Mapping)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str | None)
            for m in v
        )
    )


def text_messages(v: Any, field: str, role: str, parse: bool, allow_empty: bool = False) -> Any:
    """A message field's value as messages. A string is text, never parsed, except where the
    container only holds strings (CSV, `parse`) and it decodes to a valid message list. JSON
    scalars and objects that are not messages are kept as their JSON text."""
    if isinstance(v, str):
        if parse and v.lstrip()[:1] == "[":
            try:
                got = json.loads(v)
            except json.JSONDecodeError:
                got = None
            if _valid_messages(got, allow_empty):
                return messages(got, field, role)
        return [{"role": role, "content": v}]
    if isinstance(v, bool | int | float):
        return [{"role": role, "content": json.dumps(v)}]
    if isinstance(v, Mapping):
        if isinstance(v.get("role"), str) and isinstance(v.get("content"), str | None):
            return messages([v], field, role)
        return [{"role": role, "content": json.dumps(v, ensure_ascii=False)}]
    if isinstance(v, list) and not all(isinstance(m, str | Mapping) for m in v):
        return [{"role": role, "content": json.dumps(v, ensure_ascii=False, default=str)}]
    return messages(v, field, role)


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
    empty_message_lists = False  # "[]" in CSV is text here (prefkit's own CSV: an empty list)

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        kind = canonical_kind(rec)
        if kind is not None:
            return f"columns named like canonical {kind}"
        return None

    def prepare(self, path: Path, options: ReadOptions) -> Context:
        ctx = super().prepare(path, options)
        ctx.extra["kind"] = options.kind
        ctx.extra["csv"] = container(path) in ("csv", "tsv")
        return ctx

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        mapping: Mapping[str, str] = ctx.options.mapping
        if mapping:
            missing = [c for c in mapping if c not in rec]
            if missing:
                raise RowError(missing[0], "column named in --map is missing")
        row: dict[str, Any] = {}
        field_col: dict[str, str] = {}
        for col, field in assign(rec, mapping).items():
            if field in PAIR_ALIASES:  # --map good=chosen: preferred response, outcome a
                field = PAIR_ALIASES[field]
                row.setdefault("outcome", "a")
            row[field] = rec[col]
            field_col[field] = col
        kind = ctx.extra["kind"] or kind_for(row)
        if kind is None:
            raise RowError(
                None,
                "cannot tell the kind: map a column to outcome, score, label, ranks or spans",
            )
        allowed = {f.name for f in SCHEMAS[kind]}
        used = {col for field, col in field_col.items() if field in allowed}
        try:
            out = self._fields(row, allowed, kind, ctx)
        except RowError as e:  # name the file's column, not the canonical field
            raise RowError(field_col.get(e.field or "", e.field), e.reason) from None
        extra = meta_of(rec, used)
        if out.get("meta") is not None or extra:
            meta = {**dict(out.get("meta") or {}), **extra}
            out["meta"] = {
                str(k): v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()
            }
        return [(kind, out)]

    def _fields(
        self, row: dict[str, Any], allowed: set[str], kind: Kind, ctx: Context
    ) -> dict[str, Any]:
        """The canonical values of a row's fields (raises `RowError` naming the field)."""
        out: dict[str, Any] = {}
        for field, v in row.items():
            if field not in allowed:
                continue
            v = ctx.value(field, v)
            if field in MESSAGE_FIELDS:
                out[field] = (
                    None
                    if _blank(v)
                    else text_messages(
                        v, field, MESSAGE_FIELDS[field], ctx.extra["csv"], self.empty_message_lists
                    )
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
                    if not isinstance(out[field], list):
                        raise RowError(field, f"expected a list, got {type_name(out[field])}")
                    out[field] = [text_messages(x, field, "assistant", False) for x in out[field]]
            else:
                out[field] = None if v is None else str(v)
        required = [f.name for f in KIND_FIELDS[kind] if not f.nullable]
        for f in required:
            if out.get(f) is None:
                raise RowError(f, "required field is missing")
        return out

    def plan(self, schema: pa.Schema, container: str, options: ReadOptions) -> BattlePlan | None:
        """Model-only battles (model_a, model_b, outcome and scalar fields) at Arrow speed."""
        names = schema.names
        if any(c not in names for c in options.mapping):
            return None
        assigned = assign(names, options.mapping)
        by_field: dict[str, str] = {}
        for col, f in assigned.items():
            if f in by_field or f in PAIR_ALIASES:
                return None
            by_field[f] = col
        if (options.kind or kind_for(by_field)) is not Kind.COMPARISONS:
            return None
        if not {"model_a", "model_b", "outcome"} <= set(by_field) or set(by_field) - BATTLE_FIELDS:
            return None
        scalar = ("id", "annotator", "source", "aspect", "rationale", "shown_first")
        vms = {by_field[f]: vm for f, vm in options.value_maps.items() if f in by_field}
        return BattlePlan(
            by_field["model_a"],
            by_field["model_b"],
            by_field["outcome"],
            vocab=OUTCOMES,
            texts={f: (by_field[f],) for f in scalar if f in by_field},
            prompt=by_field.get("prompt"),
            blank_prompt_is_none=True,
            prompt_id=by_field.get("prompt_id"),
            strength=by_field.get("strength"),
            used=frozenset(assigned),
            value_maps=vms,
            named_models=False,
            null_empty_meta=True,
        )

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        result = super().read(path, options)
        tables = {k: t for k, t in result.tables.items() if t.num_rows}
        if not tables:
            k = options.kind or Kind.COMPARISONS
            tables = {k: result.tables.get(k, next(iter(result.tables.values())))}
        result.tables = tables
        return result


#: the fields of model-only battles the vectorised path maps (anything else: per row)
BATTLE_FIELDS = (STRING_FIELDS - {"model", "correction"}) | {"prompt", "outcome", "strength"}

#: the names that make a file one canonical kind without a map: (kind, label, required)
CANONICAL_NAMES: tuple[tuple[Kind, str, tuple[frozenset[str], ...]], ...] = (
    (
        Kind.COMPARISONS,
        "comparisons",
        (frozenset({"response_a", "response_b", "outcome"}),),
    ),
    (Kind.COMPARISONS, "model battles", (frozenset({"model_a", "model_b", "outcome"}),)),
    (
        Kind.RANKINGS,
        "rankings",
        (frozenset({"responses", "ranks"}), frozenset({"models", "ranks"})),
    ),
    (Kind.CRITIQUES, "critiques", (frozenset({"response", "spans"}),)),
    (Kind.RATINGS, "ratings", (frozenset({"response", "score"}), frozenset({"model", "score"}))),
    (
        Kind.BINARY,
        "binary feedback",
        (frozenset({"response", "label"}), frozenset({"model", "label"})),
    ),
)


def canonical_kind(names: Iterable[str]) -> str | None:
    """Which canonical kind a set of column names already spells (no map needed), if any."""
    cols = set(names)
    for _, label, options in CANONICAL_NAMES:
        if any(req <= cols for req in options):
            return label
    return None


def _is_canonical_names(names: Iterable[str]) -> Kind | None:
    """The kind whose every canonical column the names hold (what prefkit's writers emit)."""
    cols = set(names)
    common = {f.name for f in SCHEMAS[Kind.COMPARISONS]} - {
        f.name for f in KIND_FIELDS[Kind.COMPARISONS]
    }
    if not common <= cols:
        return None
    for kind in (Kind.COMPARISONS, Kind.RANKINGS, Kind.CRITIQUES, Kind.BINARY, Kind.RATINGS):
        if {f.name for f in KIND_FIELDS[kind]} <= cols:
            return kind
    return None


class CanonicalRowsReader(GenericReader):
    """Canonical columns stored as CSV / JSONL / datasets (what prefkit's writers emit)."""

    name = "canonical-rows"
    description = "canonical columns in CSV, JSON lines or a datasets folder (prefkit writers)"
    example = "id,prompt,prompt_id,...,outcome  (messages, meta and lists as JSON)"
    empty_message_lists = True

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        kind = _is_canonical_names(rec)
        if kind is not None:
            return f"canonical {kind.value} columns (written by prefkit)"
        return None

    def plan(self, schema: pa.Schema, container: str, options: ReadOptions) -> BattlePlan | None:
        got = super().plan(schema, container, options)
        if got is None and container in ("csv", "tsv"):
            # text columns: rows through `convert`, from Arrow's parse (null apart from "")
            kind = options.kind or _is_canonical_names(schema.names) or Kind.COMPARISONS
            return PerRow(kind)
        return got

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        kind_c = container(path)
        if kind_c == "hf":
            return _read_hf_canonical(path, options)
        if kind_c in ("csv", "tsv"):
            from prefkit.io.readers._fast import read_fast

            got = read_fast(path, options, self, lambda s, c: self.plan(s, c, options), True)
            if got is not None:
                return got
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


register_reader(CanonicalRowsReader())
register_reader(GenericReader())
