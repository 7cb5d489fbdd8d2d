"""Unlabelled items to judge: pairs without outcomes and prompts with k responses.

What an annotation campaign (`prefkit serve create`) or a judge starts from. A canonical
comparisons table needs an outcome, so these rows get a table of their own, `ITEMS`:

| column | type | meaning |
|---|---|---|
| `id` | string | the row's `id` (else `<source>:<record number>`) |
| `prompt` | messages | the conversation before the responses |
| `prompt_id` | string | hash of the normalized prompt (as in canonical tables) |
| `source` | string | where the row came from |
| `responses` | list of messages | 2 for a pair (`response_a`, `response_b`), k for a ranking |
| `models` | list of strings | model names (null when unknown), one per response |
| `outcome` | string, nullable | a known answer of a pair (`a`, `b`, `tie`, `both_bad`) |
| `meta` | map<string, string> | every other field, kept (JSON for non-strings) |

Accepted records (JSON lines, JSON, CSV, Parquet, datasets folders — `_records.iter_records`):
`{"prompt", "response_a", "response_b"}` (optional `model_a`, `model_b`, `outcome`, `id`,
`meta`, anything else) or `{"prompt", "responses": [...]}` (optional `models`). A prompt or
response is a string or a list of `{role, content}` messages; in CSV, lists and `meta` are JSON
strings. An outcome, when present and not null, must be one of a/b/tie/both_bad; a row with
an unknown outcome, a missing response, a wrong type or text that is not valid Unicode is
rejected with its line, field and reason, never kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from prefkit.io.base import InputError, Reject
from prefkit.io.readers._base import RowError, default_source, messages, meta_of
from prefkit.io.readers._records import BadRecord, container, iter_records, sample, type_name
from prefkit.schema import MESSAGES, OUTCOMES, prompt_id

NAME = "unlabelled"
MAX_RESPONSES = 100
ITEMS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("responses", pa.list_(MESSAGES), nullable=False),
        pa.field("models", pa.list_(pa.string())),
        pa.field("outcome", pa.string()),
        pa.field("meta", pa.map_(pa.string(), pa.string())),
    ]
)
PAIR_KEYS = ("response_a", "response_b")
USED = {"id", "prompt", "prompt_id", "source", "response_a", "response_b", "model_a", "model_b",
        "responses", "models", "outcome", "meta"}  # fmt: skip


@dataclass
class Items:
    """Items read from a file or from rows: the `ITEMS` table, rejects, records read."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)
    rows_in: int = 0
    reader: str = NAME
    why: str = ""


def looks_unlabelled(rec: Mapping[str, Any]) -> str | None:
    """Why a record has this layout (prompt + response_a/response_b, or prompt + responses),
    else None."""
    if "prompt" not in rec:
        return None
    if all(k in rec for k in PAIR_KEYS):
        return "fields prompt, response_a, response_b"
    if "responses" in rec and "ranks" not in rec:
        return "fields prompt, responses (k responses per prompt)"
    return None


def _meant_as_item(rec: Mapping[str, Any]) -> bool:
    """A prompt with at least one of this layout's response fields (complete or not)."""
    return "prompt" in rec and any(k in rec for k in (*PAIR_KEYS, "responses"))


def sniff(path: Path) -> str | None:
    """Why `path` holds unlabelled items (most of its first records are written in this
    layout, complete or not: incomplete rows become rejects), else None (then it is a file
    for `prefkit.read`)."""
    recs = sample(path)
    if not recs:
        return None
    meant = [r for r in recs if _meant_as_item(r)]
    if len(meant) * 2 <= len(recs):
        return None
    return next((h for h in map(looks_unlabelled, meant) if h), "fields prompt and response_a/response_b/responses")  # fmt: skip


def read_unlabelled(path: Path, source: str | None = None) -> Items:
    """Every record of `path` as an item, or a reject naming its line, field and reason."""
    src = source or default_source(path, NAME)
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    n_in = 0
    fname = str(path)
    cells = container(path) in ("csv", "tsv")
    for line, rec in iter_records(path):
        n_in += 1
        if isinstance(rec, BadRecord):
            rejects.append(Reject(fname, rec.line, rec.field, rec.reason, rec.raw))
            continue
        try:
            rows.append(item_row(rec, f"{src}:{line}", src, cells))
        except RowError as e:
            rejects.append(Reject(fname, line, e.field, e.reason, _raw(rec)))
    why = sniff(path) or "read as unlabelled items"
    return Items(items_table(rows), rejects, n_in, NAME, why)


def items_from_rows(rows: Sequence[Any], source: str = "rows") -> Items:
    """The same checks on rows given in memory (e.g. a JSON request body); rejects name the
    1-based row number as `line`."""
    out: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    for n, rec in enumerate(rows, start=1):
        if not isinstance(rec, Mapping):
            rejects.append(Reject(source, n, None, f"row is {type_name(rec)}, not an object"))
            continue
        try:
            out.append(item_row(rec, f"{source}:{n}", source))
        except RowError as e:
            rejects.append(Reject(source, n, e.field, e.reason, _raw(rec)))
    return Items(items_table(out), rejects, len(rows), NAME, "rows")


def item_row(
    rec: Mapping[str, Any], default_id: str, source: str, cells: bool = False
) -> dict[str, Any]:
    """One record as an item row; RowError(field, reason) when it cannot be one. `cells`:
    the record is a CSV row (empty cell = null, lists and meta as JSON text)."""
    rec = {k: _from_cell(k, v, cells) for k, v in rec.items()}
    if looks_unlabelled(rec) is None:
        if "prompt" not in rec:
            raise RowError("prompt", "required field is missing")
        raise RowError("response_b" if "response_a" in rec else "responses",
                       "required field is missing (need response_a and response_b, or responses)")  # fmt: skip
    prompt = _messages(rec.get("prompt"), "prompt", "user")
    outcome = rec.get("outcome")
    if "responses" in rec and not all(k in rec for k in PAIR_KEYS):
        resp = rec["responses"]
        if not isinstance(resp, list):
            raise RowError("responses", f"expected a list of responses, got {type_name(resp)}")
        if not 2 <= len(resp) <= MAX_RESPONSES:
            raise RowError("responses", f"{len(resp)} responses; an item needs 2 to {MAX_RESPONSES}")  # fmt: skip
        responses = [_messages(r, f"responses[{i}]", "assistant") for i, r in enumerate(resp)]
        models = _models(rec.get("models"), len(responses))
        if outcome is not None and len(responses) != 2:
            raise RowError("outcome", "an outcome needs exactly two responses")
    else:
        responses = [_messages(rec.get(k), k, "assistant") for k in PAIR_KEYS]
        models = [_opt_text(rec, "model_a"), _opt_text(rec, "model_b")]
    if outcome is not None and outcome not in OUTCOMES:
        raise RowError("outcome", f"unknown outcome {outcome!r} (expected null or one of {sorted(OUTCOMES)})")  # fmt: skip
    rid = _opt_text(rec, "id") or default_id
    return {
        "id": rid,
        "prompt": prompt,
        "prompt_id": _opt_text(rec, "prompt_id") or prompt_id(prompt),
        "source": _opt_text(rec, "source") or source,
        "responses": responses,
        "models": models,
        "outcome": outcome,
        "meta": _meta(rec),
    }


def items_table(rows: list[dict[str, Any]]) -> pa.Table:
    cols = {f.name: [r[f.name] for r in rows] for f in ITEMS}
    return pa.table(cols, schema=ITEMS)


# ---------------------------------------------------------------------------------------


def _is_messages(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(m, Mapping) and "role" in m for m in v)  # fmt: skip


def _from_cell(key: str, v: Any, cells: bool) -> Any:
    """CSV cells: empty = null; `responses`, `models`, `meta` are JSON text; a prompt or
    response is a message list when it is one in JSON, else the text itself (a response may
    well be the text `[1, 2]`)."""
    if cells and isinstance(v, str):
        if v == "" and key in USED:
            return None
        if key in ("responses", "models", "meta") and v[:1] in "[{":
            try:
                return json.loads(v)
            except json.JSONDecodeError:
                raise RowError(key, "not valid JSON") from None
        if key in ("prompt", "response_a", "response_b") and v[:1] == "[":
            try:
                parsed = json.loads(v)
            except json.JSONDecodeError:
                return v
            return parsed if _is_messages(parsed) else v
    if key == "meta" and isinstance(v, list):  # a Parquet map reads as [(key, value), ...]
        try:
            return dict(v)
        except (TypeError, ValueError):
            raise RowError("meta", "expected an object of key/value pairs, got an array") from None  # fmt: skip
    return v


def _unicode(text: str, where: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RowError(where, f"text is not valid Unicode ({e.reason} at character {e.start})") from None  # fmt: skip
    return text


def _messages(value: Any, where: str, role: str) -> list[dict[str, str]]:
    if value is None:
        raise RowError(where, "required field is missing")
    out = messages(value, where, role)
    for m in out:
        _unicode(m["role"], where)
        _unicode(m["content"], where)
    return out


def _opt_text(rec: Mapping[str, Any], key: str) -> str | None:
    v = rec.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise RowError(key, f"expected a string, got {type_name(v)}")
    return _unicode(str(v), key)


def _models(value: Any, n: int) -> list[str | None]:
    if value is None:
        return [None] * n
    if not isinstance(value, list) or len(value) != n:
        raise RowError("models", f"expected a list of {n} model names")
    out: list[str | None] = []
    for m in value:
        if m is not None and not isinstance(m, str):
            raise RowError("models", f"model name is {type_name(m)}, not a string")
        out.append(None if m is None else _unicode(m, "models"))
    return out


def _meta(rec: Mapping[str, Any]) -> dict[str, str]:
    meta = rec.get("meta")
    if meta is not None and not isinstance(meta, Mapping):
        raise RowError("meta", f"expected an object, got {type_name(meta)}")
    out = meta_of(meta or {}, ())
    out.update(meta_of(rec, USED))
    for k, v in out.items():
        _unicode(k, "meta")
        _unicode(v, f"meta.{k}")
    return out


def _raw(rec: Any, limit: int = 2000) -> str | None:
    try:
        text = json.dumps(rec, ensure_ascii=True, default=str)
    except (TypeError, ValueError):
        text = repr(rec)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} chars)"


def require_items(items: Items, what: str) -> Items:
    """`items` unless it holds no item at all: then an InputError naming the first reasons."""
    if items.table.num_rows:
        return items
    first = "; ".join(r.message() for r in items.rejects[:3])
    raise InputError(what, f"no item to judge ({len(items.rejects)} rows rejected{': ' + first if first else ''})")  # fmt: skip


def iter_item_rows(table: pa.Table) -> Iterable[dict[str, Any]]:
    """Rows of an `ITEMS` table with `meta` as a dict."""
    for batch in table.to_batches(max_chunksize=4096):
        for r in batch.to_pylist():
            r["meta"] = dict(r["meta"] or [])
            yield r
