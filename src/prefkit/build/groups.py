"""Which group each row belongs to: the labels behind `prefkit rank --by`, `prefkit pairs
--condition` and `prefkit rm train --personalize`.

A grouping is a canonical column holding strings (`annotator`, `source`, `aspect`, ...) or a
key of `meta` (`group` is `meta.group`, which `prefkit aggregate --method bt-mixture` writes).
Rows without a value get the label ``(none)`` and are counted; a grouping that does not exist
in the table, or that has a single value, is an error that says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from prefkit.build.result import BuildResult

NO_LABEL = "(none)"
META_ALIASES = {"group": "group"}  # --by group reads meta.group


class GroupingError(ValueError):
    """A grouping that cannot be used; the message names the field and the reason."""


@dataclass(frozen=True)
class Grouping:
    by: str
    field: str  # "annotator" or "meta.<key>"
    labels: list[str]  # one per row
    counts: dict[str, int]  # rows per label, largest first
    missing: int  # rows without a value (labelled NO_LABEL)


def group_labels(table: pa.Table, by: str, min_groups: int = 2) -> Grouping:
    """The label of every row of `table` under the grouping `by` (see the module docstring).

    Raises `GroupingError` when `by` is neither a string column nor a meta key of any row, or
    when fewer than `min_groups` distinct labels remain."""
    if not by or not by.strip():
        raise GroupingError(
            "the grouping is empty: name a column (annotator, source, ...) or a meta key"
        )
    key = by.strip()
    values: list[str | None]
    if key in table.column_names and key not in META_ALIASES and key != "meta":
        col = table.column(key)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            raise GroupingError(
                f"field {key!r} holds {col.type}, not labels: group by a string column or a "
                "meta key"
            )
        values = col.to_pylist()
        field = key
    else:
        meta_key = META_ALIASES.get(key, key)
        metas = table.column("meta").to_pylist() if "meta" in table.column_names else []
        values = []
        found = False
        for m in metas:
            v = dict(m).get(meta_key) if m else None
            found = found or v is not None
            values.append(v)
        if not found:
            cols = [c for c in ("annotator", "source", "aspect") if c in table.column_names]
            keys = sorted({k for m in metas[:10000] if m for k, _ in m})
            shown = ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")
            raise GroupingError(
                f"field {key!r}: no column or meta key of that name in any row (columns: "
                f"{', '.join(cols)}; meta keys: {shown or 'none'})"
            )
        field = f"meta.{meta_key}"
    labels = [NO_LABEL if v is None or str(v) == "" else str(v) for v in values]
    counts = dict(Counter(labels).most_common())
    if len(counts) < min_groups:
        only = next(iter(counts), NO_LABEL)
        raise GroupingError(
            f"field {field!r}: every row has the same value {only!r} ({len(labels)} rows): "
            "there are no groups to compare"
        )
    return Grouping(key, field, labels, counts, counts.get(NO_LABEL, 0))


# ---------------------------------------------------------------------------------------
# Conditioned pairs: `prefkit pairs --condition group|annotator [--personas FILE]`


def read_personas(path: Path) -> dict[str, str]:
    """Group descriptions from a JSON object ``{"group": "description", ...}``, JSONL/JSON list
    of ``{"group": ..., "description": ...}`` records, or a CSV with columns group,description.
    Errors name the file, the row and the reason (`GroupingError`)."""
    import csv
    import json

    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GroupingError(f"{path}: cannot read personas: {e}") from None
    records: list[Any]
    if path.suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if rows and not {"group", "description"} <= set(rows[0]):
            raise GroupingError(f"{path}: personas CSV needs columns group,description")
        records = rows
    elif path.suffix == ".jsonl":
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise GroupingError(f"{path}: row {n}: invalid JSON ({e.msg})") from None
    else:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise GroupingError(f"{path}: invalid JSON at line {e.lineno} ({e.msg})") from None
        if isinstance(obj, dict):
            records = [{"group": k, "description": v} for k, v in obj.items()]
        elif isinstance(obj, list):
            records = obj
        else:
            raise GroupingError(f"{path}: personas must be a JSON object or a list of records")
    out: dict[str, str] = {}
    for n, r in enumerate(records, 1):
        g = r.get("group") if isinstance(r, dict) else None
        desc = r.get("description") if isinstance(r, dict) else None
        if not isinstance(g, str) or not g or not isinstance(desc, str) or not desc.strip():
            raise GroupingError(
                f"{path}: row {n}: a persona needs a non-empty 'group' and 'description'"
            )
        if g in out:
            raise GroupingError(f"{path}: row {n}: group {g!r} described twice")
        out[g] = desc.strip()
    if not out:
        raise GroupingError(f"{path}: no persona")
    return out


def _with_system(prompts: list[Any], description: str) -> list[list[dict[str, str]]]:
    """Each prompt (a message list) with `description` as its system message (replacing a
    system message already there)."""
    out = []
    for p in prompts:
        msgs = [dict(m) for m in (p or []) if m.get("role") != "system"]
        out.append([{"role": "system", "content": description}, *msgs])
    return out


def _merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the counts of several builds' reports (ints and dicts of ints); other keys from the
    first report."""
    merged: dict[str, Any] = dict(reports[0])
    for r in reports[1:]:
        for k, v in r.items():
            if isinstance(v, bool):
                continue
            if isinstance(v, int) and isinstance(merged.get(k), int):
                merged[k] += v
            elif isinstance(v, dict) and isinstance(merged.get(k), dict):
                dst = dict(merged[k])
                for kk, vv in v.items():
                    if isinstance(vv, int) and not isinstance(vv, bool):
                        dst[kk] = int(dst.get(kk, 0)) + vv
                merged[k] = dst
    return merged


def conditioned_pairs(
    table: pa.Table,
    by: str,
    build: Callable[[pa.Table], BuildResult],
    personas: dict[str, str] | None = None,
) -> BuildResult:
    """Pairs built within each group of `table` under the grouping `by` (`build` runs on the
    group's rows alone, so a pair's votes come from one group), each prompt given the group's
    description as its system message (`personas[group]`, else ``"Preference profile:
    <group>"``) and ``meta.condition`` = the group. Rows without a label are counted in
    ``rows_without_group`` and not used; a group whose rows yield no pair is listed."""
    from prefkit.build.result import BuildResult

    grouping = group_labels(table, by)
    if personas is not None:
        unknown = sorted(set(personas) - set(grouping.counts))
        missing = sorted(set(grouping.counts) - set(personas) - {NO_LABEL})
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise GroupingError(
                f"--personas describes no group {shown} ({len(missing)} of "
                f"{len(grouping.counts)} groups of {grouping.field})"
            )
    else:
        unknown = []
    labels = pa.array(grouping.labels, pa.string())
    tables: list[pa.Table] = []
    reports: list[dict[str, Any]] = []
    per_group: dict[str, dict[str, Any]] = {}
    for g in grouping.counts:
        if g == NO_LABEL:
            continue
        import pyarrow.compute as pc

        sub = table.filter(pc.equal(labels, g))
        res = build(sub)
        desc = personas[g] if personas is not None else f"Preference profile: {g}"
        t = res.table
        if t.num_rows:
            t = t.set_column(
                t.column_names.index("prompt"),
                "prompt",
                pa.array(
                    _with_system(t.column("prompt").to_pylist(), desc),
                    t.schema.field("prompt").type,
                ),
            )
            if "meta" in t.column_names:
                metas = [
                    [*((k, v) for k, v in (m or []) if k != "condition"), ("condition", g)]
                    for m in t.column("meta").to_pylist()
                ]
                t = t.set_column(
                    t.column_names.index("meta"),
                    "meta",
                    pa.array(metas, t.schema.field("meta").type),
                )
            tables.append(t)
        reports.append(res.report)
        per_group[g] = {"rows_in": sub.num_rows, "pairs_out": t.num_rows, "description": desc}
    if not reports:
        raise GroupingError(f"field {grouping.field!r}: no row has a group")
    out = pa.concat_tables(tables) if tables else build(table.slice(0, 0)).table
    report = _merge_reports(reports)
    report["rows_in"] = table.num_rows
    report["condition"] = {
        "by": by,
        "field": grouping.field,
        "groups": per_group,
        "groups_without_pairs": [g for g, r in per_group.items() if r["pairs_out"] == 0],
        "rows_without_group": grouping.missing,
        "personas_unused": unknown,
    }
    return BuildResult(out, report)
