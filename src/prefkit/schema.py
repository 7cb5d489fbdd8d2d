"""The canonical data model: one Arrow table per kind of feedback, one row per judgment.

See docs/schema.md. Every stage reads and writes these tables; `io` converts vendor formats
to them once.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = "1"
META_VERSION_KEY = b"prefkit.schema_version"
META_KIND_KEY = b"prefkit.kind"


class Outcome(StrEnum):
    """Result of a pairwise comparison. Ties are an outcome, not a missing value."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "both_bad"


class Kind(StrEnum):
    COMPARISONS = "comparisons"
    RATINGS = "ratings"
    BINARY = "binary"
    RANKINGS = "rankings"
    CRITIQUES = "critiques"


OUTCOMES: frozenset[str] = frozenset(o.value for o in Outcome)
SHOWN_FIRST: frozenset[str] = frozenset({"a", "b"})

MESSAGE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
SPAN = pa.struct(
    [pa.field("start", pa.int32()), pa.field("end", pa.int32()), pa.field("label", pa.string())]
)

COMMON_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("prompt", MESSAGES),
    pa.field("prompt_id", pa.string(), nullable=False),
    pa.field("annotator", pa.string()),
    pa.field("source", pa.string()),
    pa.field("aspect", pa.string()),
    pa.field("rationale", pa.string()),
    pa.field("meta", pa.map_(pa.string(), pa.string())),
]

KIND_FIELDS: dict[Kind, list[pa.Field]] = {
    Kind.COMPARISONS: [
        pa.field("response_a", MESSAGES),
        pa.field("response_b", MESSAGES),
        pa.field("model_a", pa.string()),
        pa.field("model_b", pa.string()),
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("strength", pa.float64()),
        pa.field("shown_first", pa.string()),
    ],
    Kind.RATINGS: [
        pa.field("response", MESSAGES),
        pa.field("model", pa.string()),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("scale_min", pa.float64()),
        pa.field("scale_max", pa.float64()),
    ],
    Kind.BINARY: [
        pa.field("response", MESSAGES),
        pa.field("model", pa.string()),
        pa.field("label", pa.bool_(), nullable=False),
    ],
    Kind.RANKINGS: [
        pa.field("responses", pa.list_(MESSAGES)),
        pa.field("models", pa.list_(pa.string())),
        pa.field("ranks", pa.list_(pa.int32()), nullable=False),
    ],
    Kind.CRITIQUES: [
        pa.field("response", MESSAGES),
        pa.field("spans", pa.list_(SPAN)),
        pa.field("correction", pa.string()),
    ],
}


def schema_for(kind: Kind | str) -> pa.Schema:
    """The Arrow schema of a canonical table of this kind (common columns first)."""
    k = Kind(kind)
    return pa.schema(COMMON_FIELDS + KIND_FIELDS[k])


SCHEMAS: dict[Kind, pa.Schema] = {k: schema_for(k) for k in Kind}


class SchemaError(ValueError):
    """A row of a canonical table breaks the data model.

    `row` is the 0-based row index (or None for a table-level problem), `column` the column
    name, `reason` a sentence a user can act on.
    """

    def __init__(self, row: int | None, column: str, reason: str) -> None:
        self.row = row
        self.column = column
        self.reason = reason
        where = f"row {row}, " if row is not None else ""
        super().__init__(f"{where}column {column!r}: {reason}")


# ---------------------------------------------------------------------------------------
# Messages and prompt ids

_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Normalization used for ids and duplicate checks: NFKC, case-folded, whitespace collapsed."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def as_messages(value: Any, role: str = "user") -> list[dict[str, str]] | None:
    """Coerce a plain string or a list of {role, content} dicts to canonical messages."""
    if value is None:
        return None
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, Mapping):
        return [_message(value)]
    if isinstance(value, Sequence):
        return [_message(m) if isinstance(m, Mapping) else _plain(m, role) for m in value]
    raise TypeError(f"expected a string or a list of messages, got {type(value).__name__}")


def _plain(value: Any, role: str) -> dict[str, str]:
    if not isinstance(value, str):
        raise TypeError(f"expected a message or a string, got {type(value).__name__}")
    return {"role": role, "content": value}


def _message(m: Mapping[str, Any]) -> dict[str, str]:
    role, content = m.get("role"), m.get("content")
    if not isinstance(role, str):
        raise TypeError("message without a string 'role'")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise TypeError("message 'content' is not a string")
    return {"role": role, "content": content}


def messages_text(messages: Iterable[Mapping[str, Any]] | None) -> str:
    """Plain text of a message list (contents joined by blank lines); '' for None."""
    if messages is None:
        return ""
    return "\n\n".join(str(m.get("content") or "") for m in messages)


def prompt_id(messages: Iterable[Mapping[str, Any]] | str | None) -> str:
    """Stable id of a prompt: a hash of its normalized messages (roles included)."""
    if messages is None:
        msgs: list[Mapping[str, Any]] = []
    elif isinstance(messages, str):
        msgs = [{"role": "user", "content": messages}]
    else:
        msgs = list(messages)
    key = json.dumps(
        [[str(m.get("role") or ""), normalize_text(str(m.get("content") or ""))] for m in msgs],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


def content_id(*parts: Any) -> str:
    """Content hash used as a row id when the source has none."""
    key = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.blake2b(key.encode("utf-8"), digest_size=10).hexdigest()


# ---------------------------------------------------------------------------------------
# Kind detection and validation


def kind_of(table: pa.Table) -> Kind:
    """The canonical kind of a table: from file metadata when present, else from its columns."""
    md = table.schema.metadata or {}
    if META_KIND_KEY in md:
        return Kind(md[META_KIND_KEY].decode())
    names = set(table.column_names)
    for k in (Kind.COMPARISONS, Kind.RANKINGS, Kind.CRITIQUES, Kind.BINARY, Kind.RATINGS):
        required = {f.name for f in KIND_FIELDS[k] if not f.nullable}
        distinctive = {f.name for f in KIND_FIELDS[k]} - {"response", "model"}
        if required <= names and distinctive <= names:
            return k
    raise SchemaError(None, "*", f"not a canonical table: columns {sorted(names)}")


def from_rows(rows: Sequence[Mapping[str, Any]], kind: Kind | str) -> pa.Table:
    """Build a canonical table from row dicts; missing optional columns become null.

    `prompt_id` is computed from `prompt` when absent, `id` from the content when absent.
    """
    k = Kind(kind)
    schema = schema_for(k)
    cols: dict[str, list[Any]] = {}
    for name in schema.names:  # column by column: one pass per column, no per-cell dispatch
        if name == "prompt":
            cols[name] = [as_messages(r.get(name), "user") for r in rows]
        elif name in ("response", "response_a", "response_b"):
            cols[name] = [as_messages(r.get(name), "assistant") for r in rows]
        elif name == "responses":
            cols[name] = [
                None if (v := r.get(name)) is None else [as_messages(x, "assistant") for x in v]
                for r in rows
            ]
        elif name == "meta":
            cols[name] = [
                None if (v := r.get(name)) is None else {str(a): str(b) for a, b in dict(v).items()}
                for r in rows
            ]
        elif name not in ("id", "prompt_id"):
            cols[name] = [r.get(name) for r in rows]
    cols["prompt_id"] = [
        v if (v := r.get("prompt_id")) is not None else prompt_id(p)
        for r, p in zip(rows, cols["prompt"], strict=True)
    ]
    others = [n for n in schema.names if n != "id"]
    cols["id"] = [
        v if (v := r.get("id")) is not None else content_id(k.value, *(r.get(n) for n in others))
        for r in rows
    ]
    cols = {name: cols[name] for name in schema.names}
    table = pa.table(cols, schema=schema)
    return with_metadata(table, k)


def with_metadata(table: pa.Table, kind: Kind | str) -> pa.Table:
    md = dict(table.schema.metadata or {})
    md[META_VERSION_KEY] = SCHEMA_VERSION.encode()
    md[META_KIND_KEY] = Kind(kind).value.encode()
    return table.replace_schema_metadata(md)


def conform(table: pa.Table, kind: Kind | str) -> pa.Table:
    """Reorder/cast a table to the canonical schema, adding missing nullable columns as null."""
    k = Kind(kind)
    schema = schema_for(k)
    arrays = []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            if col.type != f.type:
                try:
                    col = col.cast(f.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                    raise SchemaError(None, f.name, f"cannot cast {col.type} to {f.type}") from e
            arrays.append(col)
        elif f.nullable:
            arrays.append(pa.nulls(table.num_rows, f.type))
        elif f.name == "prompt_id" and "prompt" in table.column_names:
            arrays.append(pa.array([prompt_id(p) for p in table.column("prompt").to_pylist()]))
        else:
            raise SchemaError(None, f.name, "required column is missing")
    return with_metadata(pa.Table.from_arrays(arrays, schema=schema), k)


def validate(table: pa.Table, kind: Kind | str | None = None) -> Kind:
    """Check a canonical table; raise SchemaError(row, column, reason) at the first problem.

    Returns the kind. Checks column presence and types, required values, outcome and
    shown_first vocabularies, strength in [0, 1], rankings' list lengths, span bounds.
    """
    k = Kind(kind) if kind is not None else kind_of(table)
    schema = schema_for(k)
    for f in schema:
        if f.name not in table.column_names:
            if f.nullable:
                continue
            raise SchemaError(None, f.name, "required column is missing")
        col = table.column(f.name)
        if col.type != f.type:
            raise SchemaError(None, f.name, f"type is {col.type}, expected {f.type}")
        if not f.nullable and col.null_count:
            row = _first_null(col)
            raise SchemaError(row, f.name, "value is required but null")
    if k is Kind.COMPARISONS:
        _check_vocab(table, "outcome", OUTCOMES)
        if "shown_first" in table.column_names:
            _check_vocab(table, "shown_first", SHOWN_FIRST, nullable=True)
        if "strength" in table.column_names:
            for i, s in enumerate(table.column("strength").to_pylist()):
                if s is not None and not (0.0 <= s <= 1.0):
                    raise SchemaError(i, "strength", f"{s} is outside [0, 1]")
    elif k is Kind.RANKINGS:
        ranks = table.column("ranks").to_pylist()
        resp = table.column("responses").to_pylist() if "responses" in table.column_names else None
        models = table.column("models").to_pylist() if "models" in table.column_names else None
        for i, r in enumerate(ranks):
            if len(r) < 2:
                raise SchemaError(i, "ranks", "a ranking needs at least two entries")
            if any(x is None or x < 1 for x in r):
                raise SchemaError(i, "ranks", "ranks are integers >= 1 (1 = best)")
            for name, other in (("responses", resp), ("models", models)):
                if other is not None and other[i] is not None and len(other[i]) != len(r):
                    raise SchemaError(i, name, f"has {len(other[i])} entries, ranks has {len(r)}")
    elif k is Kind.CRITIQUES and "spans" in table.column_names:
        for i, spans in enumerate(table.column("spans").to_pylist()):
            for s in spans or []:
                if s["start"] is None or s["end"] is None or s["start"] > s["end"]:
                    raise SchemaError(i, "spans", f"bad span {s}")
    return k


def _first_null(col: pa.ChunkedArray) -> int:
    offset = 0
    for chunk in col.chunks:
        if chunk.null_count:
            mask = chunk.is_null().to_pylist()
            return offset + int(mask.index(True))
        offset += len(chunk)
    return -1


def _check_vocab(
    table: pa.Table, name: str, allowed: frozenset[str], nullable: bool = False
) -> None:
    for i, v in enumerate(table.column(name).to_pylist()):
        if v is None and nullable:
            continue
        if v not in allowed:
            raise SchemaError(i, name, f"{v!r} is not one of {sorted(allowed)}")
