"""Training pairs for the align stage: read, check, tokenize, truncate, with every skip counted.

Input is TRL preference format (``prompt``/``chosen``/``rejected`` strings or message lists,
optional ``tie``, ``weight``, ``margin``, ``strength``; what ``prefkit pairs --to trl`` writes),
the build stage's canonical pairs table, or any comparisons file ``prefkit`` reads (turned into
pairs by the build stage's ``build_pairs`` with the given tie policy).

Rows with an empty chosen or rejected response (``empty_response``) or with chosen equal to
rejected after normalization (``identical_responses``) are skipped and counted, never trained
on. Truncation policy (``truncate``): every sequence prompt + response must fit in
``max_length`` tokens. When it does not, the prompt loses tokens from its start (its end, next
to the responses, is kept), down to ``max(max_length // 2, max_length - longest response)``;
responses still too long are cut at their end. Both are counted per pair
(``prompt_truncated``, ``response_truncated``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefkit.io.base import InputError
from prefkit.schema import messages_text, normalize_text

PAIR_COLUMNS = ("prompt", "chosen", "rejected")
EXTRA_COLUMNS = ("tie", "weight", "margin", "strength")


@dataclass(frozen=True)
class AlignData:
    """Checked TRL-format rows and what was skipped (a count per reason)."""

    rows: list[dict[str, Any]]
    skipped: dict[str, int]
    source: str
    conversational: bool
    report: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return messages_text(v)


def _read_table_rows(path: Path) -> list[dict[str, Any]] | None:
    """Rows of a JSONL/JSON/Parquet file that already has prompt/chosen/rejected columns."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
        except Exception as e:
            raise InputError(path, f"not a readable Parquet file ({e})") from e
        if not {"chosen", "rejected"} <= set(schema.names):
            return None
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        return rows
    if path.suffix in (".jsonl", ".json"):
        with path.open(encoding="utf-8") as fh:
            first = fh.readline()
        try:
            head = json.loads(first)
        except json.JSONDecodeError:
            return None
        if not isinstance(head, dict) or not {"chosen", "rejected"} <= set(head):
            return None
        out: list[dict[str, Any]] = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise InputError(path, f"line {n}: not JSON ({e.msg})") from e
        return out
    return None


def _from_pairs_table(rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """Canonical pairs (message lists, PAIRS_SCHEMA) or TRL rows -> TRL rows."""
    if rows and "prompt" not in rows[0]:
        raise InputError(
            path, "field 'prompt': missing; align needs an explicit prompt (run `prefkit pairs`)"
        )
    if rows and "prompt_id" in rows[0] and isinstance(rows[0]["chosen"], list):
        import pyarrow as pa

        from prefkit.build.export import to_trl
        from prefkit.build.result import PAIRS_SCHEMA

        try:
            table = pa.Table.from_pylist(rows, schema=PAIRS_SCHEMA)
        except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError):
            return rows
        out: list[dict[str, Any]] = to_trl(table).to_pylist()
        return out
    return rows


def load_pairs(path: str | Path, ties: str = "keep") -> AlignData:
    """Read `path` as training pairs (see the module docstring); `ties` is the build stage's
    tie policy for comparisons input (drop | half | keep)."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    rows = _read_table_rows(p)
    source = "trl"
    report: dict[str, Any] = {}
    if rows is None:
        from prefkit.build import build_pairs
        from prefkit.build.export import to_trl
        from prefkit.io.detect import read
        from prefkit.schema import Kind

        res = read(p)
        if Kind.COMPARISONS not in res.tables:
            raise InputError(
                p, f"needs comparisons or pairs; the {res.reader} reader gave {res.kind}"
            )
        built = build_pairs(res.tables[Kind.COMPARISONS], ties=ties)  # type: ignore[arg-type]
        rows = to_trl(built.table).to_pylist()
        source = f"comparisons via {res.reader} + build_pairs(ties={ties})"
        report = {"build": built.report, "rejects": len(res.rejects)}
    rows = _from_pairs_table(rows, p)
    return check_rows(rows, source, report)


def check_rows(
    rows: list[dict[str, Any]], source: str = "rows", report: dict[str, Any] | None = None
) -> AlignData:
    """Keep the trainable rows: skip (and count) empty responses and chosen == rejected."""
    skipped: Counter[str] = Counter()
    out: list[dict[str, Any]] = []
    conv = False
    for row in rows:
        for col in PAIR_COLUMNS:
            if col not in row:
                raise ValueError(f"row {len(out) + sum(skipped.values())}: field {col!r} missing")
        c, r = _text(row["chosen"]), _text(row["rejected"])
        if not c.strip() or not r.strip():
            skipped["empty_response"] += 1
            continue
        if normalize_text(c) == normalize_text(r):
            skipped["identical_responses"] += 1
            continue
        conv = conv or not isinstance(row["chosen"], str)
        clean = {k: row[k] for k in PAIR_COLUMNS}
        clean["tie"] = bool(row.get("tie") or False)
        for k, default in (("weight", 1.0), ("margin", 0.0)):
            v = row.get(k)
            clean[k] = float(v) if v is not None else default
        s = row.get("strength")
        clean["strength"] = float(s) if s is not None else (0.5 if clean["tie"] else 1.0)
        if not 0.0 <= clean["strength"] <= 1.0:
            raise ValueError(f"row {len(out)}: field 'strength' must be in [0, 1], got {s}")
        out.append(clean)
    return AlignData(out, dict(skipped), source, conv, dict(report or {}))


def truncate(
    prompt: list[int], responses: list[list[int]], max_length: int | None
) -> tuple[list[int], list[list[int]], bool, bool]:
    """Apply the truncation policy (module docstring); returns the new ids and whether the
    prompt / a response was truncated."""
    if max_length is None:
        return prompt, responses, False, False
    longest = max(len(r) for r in responses)
    if len(prompt) + longest <= max_length:
        return prompt, responses, False, False
    keep = min(len(prompt), max(max_length // 2, max_length - longest))
    p_cut = keep < len(prompt)
    new_prompt = prompt[len(prompt) - keep :] if keep else []
    room = max_length - len(new_prompt)
    r_cut = any(len(r) > room for r in responses)
    return new_prompt, [r[:room] for r in responses], p_cut, r_cut


def as_text(data: AlignData) -> AlignData:
    """Conversational rows rendered as plain strings the way ``prefkit pairs --to trl`` renders
    them (for tokenizers without a chat template); string rows unchanged."""
    if not data.conversational:
        return data
    from prefkit.build.export import _text as render

    rows = []
    for r in data.rows:
        new = dict(r)
        for k in PAIR_COLUMNS:
            if not isinstance(r[k], str):
                new[k] = render(r[k], k == "prompt")
        rows.append(new)
    return AlignData(rows, data.skipped, data.source + " (rendered as text)", False, data.report)
