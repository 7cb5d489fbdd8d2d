"""`--fix`: write the dataset with flagged rows removed or corrected by a stated policy.

A policy maps an issue to an action:

- `drop`: remove the row (for `exact_duplicate` the first row of each group is kept);
- `flip`: swap the outcome a <-> b (only `noisy_label`; ties are left alone);
- `annotate`: keep the row, add the score to `meta` (`noise_score` for `noisy_label`,
  `audit_<issue>` otherwise);
- `keep`: do nothing.

Default (`DEFAULT_POLICY`): drop exact duplicates, identical-response pairs and empty rows;
annotate noisy labels (every row gets `meta.noise_score` when the noise check ran).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prefkit.audit.run import AuditResult

ACTIONS = ("drop", "flip", "annotate", "keep")
DEFAULT_POLICY: dict[str, str] = {
    "exact_duplicate": "drop",
    "identical_responses": "drop",
    "empty_response": "drop",
    "noisy_label": "annotate",
}


def parse_policy(text: str | None) -> dict[str, str]:
    """`issue=action,issue=action` on top of the default; `none` starts from nothing."""
    policy = dict(DEFAULT_POLICY)
    if not text:
        return policy
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item == "none":
            policy = {}
            continue
        if "=" not in item:
            raise ValueError(f"policy item {item!r} is not issue=action")
        issue, action = (s.strip() for s in item.split("=", 1))
        if action not in ACTIONS:
            raise ValueError(f"policy action {action!r} is not one of {', '.join(ACTIONS)}")
        if action == "flip" and issue != "noisy_label":
            raise ValueError("only noisy_label can be flipped")
        policy[issue] = action
    return policy


@dataclass(frozen=True)
class FixResult:
    table: pa.Table
    removed: pa.Table
    changelog: list[dict[str, Any]]
    counts: dict[str, int]


def apply_fix(table: pa.Table, result: AuditResult, policy: dict[str, str]) -> FixResult:
    rows = result.rows
    n = table.num_rows
    ids = table.column("id").combine_chunks()
    drop = np.zeros(n, dtype=bool)
    flip = np.zeros(n, dtype=bool)
    why = np.full(n, "", dtype=object)
    notes: dict[str, dict[int, float]] = {}
    counts: dict[str, int] = {}
    changelog: list[dict[str, Any]] = []
    for issue, action in policy.items():
        if action == "keep" or rows.num_rows == 0:
            continue
        sub = rows.filter(pc.equal(rows.column("issue"), issue))
        if sub.num_rows == 0:
            continue
        idx = np.asarray(pc.index_in(sub.column("row_id"), value_set=ids).fill_null(-1))
        score = np.asarray(sub.column("score"))
        ok = idx >= 0
        idx, score = idx[ok], score[ok]
        if action == "drop":
            if issue in ("exact_duplicate", "near_duplicate_pair"):
                groups = np.asarray(sub.column("group").fill_null("").to_pylist(), dtype=object)[ok]
                order = np.argsort(idx, kind="stable")
                seen: set[str] = set()
                keep = np.zeros(idx.size, dtype=bool)
                for o in order:
                    g = str(groups[int(o)])
                    if g and g not in seen:
                        seen.add(g)
                        keep[o] = True
                idx = idx[~keep]
            new = idx[~drop[idx]]
            drop[new] = True
            why[new] = issue
            counts[f"dropped:{issue}"] = int(np.unique(new).size)
        elif action == "flip":
            flip[idx] = True
            counts[f"flipped:{issue}"] = int(np.unique(idx).size)
        elif action == "annotate":
            key = "noise_score" if issue == "noisy_label" else f"audit_{issue}"
            notes.setdefault(key, {}).update(dict(zip(idx.tolist(), score.tolist(), strict=True)))
            counts[f"annotated:{issue}"] = int(np.unique(idx).size)
        changelog.append(
            {"issue": issue, "action": action, "rows": counts.get(f"{action}ped:{issue}", 0)}
        )
    if policy.get("noisy_label") == "annotate" and result.noise_score is not None:
        # every row gets its score, flagged or not
        notes["noise_score"] = dict(enumerate(np.asarray(result.noise_score).tolist()))
    out = table
    if notes or flip.any():
        meta = [None if m is None else dict(m) for m in table.column("meta").to_pylist()]
        for key, vals in notes.items():
            for i, s in vals.items():
                m = dict(meta[i] or {})
                m[key] = f"{s:.4f}"
                meta[i] = m
        if flip.any():
            outc = table.column("outcome").to_pylist()
            for i in np.flatnonzero(flip & ~drop).tolist():
                o = outc[i]
                if o in ("a", "b"):
                    outc[i] = "b" if o == "a" else "a"
                    m = dict(meta[i] or {})
                    m["audit_flipped_from"] = o
                    meta[i] = m
            out = out.set_column(
                out.schema.get_field_index("outcome"), "outcome", pa.array(outc, pa.string())
            )
        meta_type = table.schema.field("meta").type
        out = out.set_column(
            out.schema.get_field_index("meta"),
            "meta",
            pa.array([None if m is None else list(m.items()) for m in meta], meta_type),
        )
    mask = pa.array(~drop)
    removed = table.filter(pa.array(drop))
    removed = removed.append_column("audit_reason", pa.array(why[drop].tolist(), pa.string()))
    for entry in changelog:
        act = entry["action"]
        verb = {"drop": "dropped", "flip": "flipped", "annotate": "annotated"}.get(act, act)
        entry["rows"] = counts.get(f"{verb}:{entry['issue']}", 0)
    counts["rows_in"] = n
    counts["rows_out"] = int((~drop).sum())
    counts["rows_removed"] = int(drop.sum())
    return FixResult(out.filter(mask), removed, changelog, counts)


def write_fix(fix: FixResult, out: Path, policy: dict[str, str]) -> dict[str, Path]:
    """Write OUT (canonical Parquet), `removed.parquet` and `changelog.json` next to it."""
    import pyarrow.parquet as pq

    from prefkit.io.canonical import save

    save(fix.table, out)
    removed = out.parent / "removed.parquet"
    pq.write_table(fix.removed, removed, compression="zstd")
    log = out.parent / "changelog.json"
    log.write_text(
        json.dumps({"policy": policy, "changes": fix.changelog, "counts": fix.counts}, indent=2),
        encoding="utf-8",
    )
    return {"out": out, "removed": removed, "changelog": log}
