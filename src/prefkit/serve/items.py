"""What a campaign is made of: items to judge, read and validated by prefkit's readers.

A file of unlabelled items (`{"prompt", "response_a", "response_b"}` or `{"prompt",
"responses"}`, outcomes optional) is read by `prefkit.io.readers.unlabelled`; any other file
prefkit reads (LLMBar, HH-RLHF, canonical Parquet, ratings, ...) goes through `prefkit.read`
and its canonical rows become items. Rows that cannot be shown to an annotator are rejects
(file, line, field, reason), counted and reported, never silently dropped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from prefkit.io.base import Reject
from prefkit.io.readers.unlabelled import (
    Items,
    items_from_rows,
    items_table,
    read_unlabelled,
    require_items,
    sniff,
)
from prefkit.schema import Kind, kind_of


def read_items(path: Path) -> Items:
    """Items from any file prefkit reads; InputError when none is left."""
    if sniff(path) is not None:
        return require_items(read_unlabelled(path), str(path))
    from prefkit.io.detect import read

    res = read(path)
    table, more = items_from_canonical(res.table, str(path))
    items = Items(table, list(res.rejects) + more, res.rows_in or res.table.num_rows, res.reader, res.why)  # fmt: skip
    return require_items(items, str(path))


def items_from_canonical(table: pa.Table, fname: str) -> tuple[pa.Table, list[Reject]]:
    """Canonical comparisons (outcome kept: gold when asked), rankings, or ratings/binary rows
    grouped by prompt (prompts with one response are rejects: nothing to compare)."""
    kind = kind_of(table)
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    if kind in (Kind.RATINGS, Kind.BINARY):
        groups: dict[str, dict[str, Any]] = {}
        lines: dict[str, int] = {}
        for n, r in enumerate(table.to_pylist(), start=1):
            if r.get("response") is None:
                rejects.append(Reject(fname, n, "response", "no response text to show"))
                continue
            g = groups.setdefault(r["prompt_id"], _item(r, [], []))
            g["meta"].setdefault("pair_id", r["prompt_id"])
            g["responses"].append(r["response"])
            g["models"].append(r.get("model"))
            lines.setdefault(r["prompt_id"], n)
        for pid, g in groups.items():
            if len(g["responses"]) < 2:
                rejects.append(Reject(fname, lines[pid], "prompt", "the only response to this prompt: nothing to compare"))  # fmt: skip
            else:
                rows.append(g)
    elif kind in (Kind.COMPARISONS, Kind.RANKINGS):
        for n, r in enumerate(table.to_pylist(), start=1):
            if kind is Kind.COMPARISONS:
                resp, models = [r["response_a"], r["response_b"]], [r["model_a"], r["model_b"]]
            else:
                resp, models = list(r["responses"] or []), list(r["models"] or [None] * len(r["responses"] or []))  # fmt: skip
            if any(x is None for x in resp) or len(resp) < 2:
                field = "response_a" if kind is Kind.COMPARISONS else "responses"
                rejects.append(Reject(fname, n, field, "no response text to show (identity-only row)"))  # fmt: skip
                continue
            item = _item(r, resp, models)
            item["outcome"] = r.get("outcome")
            rows.append(item)
    else:
        from prefkit.io.base import InputError

        raise InputError(fname, f"a campaign needs pairs, prompts with k responses, rankings or ratings; got {kind.value}")  # fmt: skip
    return items_table(rows), rejects


def _item(r: dict[str, Any], responses: list[Any], models: list[Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "prompt": r.get("prompt") or [],
        "prompt_id": r["prompt_id"],
        "source": r.get("source"),
        "responses": responses,
        "models": models,
        "outcome": None,
        "meta": dict(r.get("meta") or []),
    }


def import_summary(items: Items, shown: int = 20) -> dict[str, Any]:
    """What the campaign keeps about its import: reader, rows read, items, rejected rows (the
    count and the first `shown` with file, line, field and reason)."""
    return {
        "reader": items.reader,
        "why": items.why,
        "rows_in": items.rows_in,
        "items": items.table.num_rows,
        "rejected": len(items.rejects),
        "rejects": [_reject_json(r) for r in items.rejects[:shown]],
    }


def _reject_json(r: Reject) -> dict[str, Any]:
    return {"file": r.file, "line": r.line, "field": r.field, "reason": r.reason}


def rows_to_items(rows: Sequence[Any]) -> Items:
    """Rows from a JSON request body; InputError when none is an item."""
    return require_items(items_from_rows(rows), "rows")
