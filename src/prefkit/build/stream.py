"""`prefkit pairs` on canonical Parquet without holding its text (docs/scale.md).

Votes and thumbs are grouped across the whole file (the votes on one pair, the thumbs of one
prompt), so their builders run on a *light* table: every column as read, except that the
prompt is dropped, each response is replaced by a token (a 128-bit hash of its normalized
text: the same identity the builders compare) and each id by the row's number. The builders
decide every pair and count every drop on it unchanged. A second pass over the file then
fills in the texts of the rows each pair comes from (the first vote of a group, the
thumbs-up and thumbs-down rows of a binary pair), the real row ids and the pair ids, and
yields the pairs batch by batch in the builder's order. Texts are held only for rows whose
pairs cannot be written yet (an earlier pair still waits for a later row): none when a
group's rows are next to each other, at most the output when they are scattered.

Rankings are row-wise: each batch is built on its own and the reports are added up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prefkit.build.result import PAIRS_SCHEMA, BuildResult, text_key
from prefkit.engine import BATCH_ROWS
from prefkit.io.canonical import iter_canonical
from prefkit.schema import MESSAGES, Kind, content_id, from_rows

#: kinds `pairs` builds batch by batch from canonical Parquet (ratings: see docs/scale.md)
STREAMED = frozenset({Kind.COMPARISONS, Kind.BINARY, Kind.RANKINGS})
#: response columns replaced by tokens, per kind whose builder groups rows across the file
TOKEN_COLUMNS = {Kind.COMPARISONS: ("response_a", "response_b"), Kind.BINARY: ("response",)}


def token(messages: Any, cache: dict[str, str] | None = None) -> str | None:
    """A response's identity without its text: a hash of `text_key` (None without text)."""
    key = text_key(messages, cache)
    if key is None:
        return None
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


def _tokens(col: pa.ChunkedArray, cache: dict[str, str]) -> pa.Array:
    toks = [token(m, cache) for m in col.to_pylist()]
    return pa.array(
        [None if t is None else [{"role": "assistant", "content": t}] for t in toks], MESSAGES
    )


@dataclass
class Light:
    """The light table of a canonical file and the real ids of its rows."""

    table: pa.Table
    ids: pa.ChunkedArray
    rows: int = 0


def light_table(
    path: Path,
    kind: Kind,
    progress: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Light:
    """Pass 1: the file as the builders need it, without text (see the module docstring)."""
    parts: list[pa.Table] = []
    ids: list[pa.Array] = []
    cache: dict[str, str] = {}
    offset = 0
    for b in iter_canonical(path, kind, batch_rows):
        n = b.num_rows
        ids.append(b.column("id").combine_chunks())
        t = b.set_column(
            b.schema.get_field_index("id"),
            "id",
            pa.array([str(i) for i in range(offset, offset + n)], pa.string()),
        )
        t = t.set_column(t.schema.get_field_index("prompt"), "prompt", pa.nulls(n, MESSAGES))
        for name in TOKEN_COLUMNS[kind]:
            t = t.set_column(t.schema.get_field_index(name), name, _tokens(b.column(name), cache))
        cache.clear()  # memoizes repeats within a batch only: memory stays one batch
        parts.append(t)
        offset += n
        if progress is not None:
            progress(n)
    table = pa.concat_tables(parts) if parts else pa.table({})
    return Light(table, pa.chunked_array(ids, pa.string()), offset)


@dataclass
class _Ref:
    """Where one output row's texts come from: (row, column) of the prompt, chosen, rejected."""

    prompt: tuple[int, str]
    chosen: tuple[int, str]
    rejected: tuple[int, str]

    def rows(self) -> tuple[int, int, int]:
        return self.prompt[0], self.chosen[0], self.rejected[0]


@dataclass
class _Needs:
    count: dict[tuple[int, str], int] = field(default_factory=dict)

    def add(self, ref: _Ref) -> None:
        for k in (ref.prompt, ref.chosen, ref.rejected):
            self.count[k] = self.count.get(k, 0) + 1


def _first_tokens(light: pa.Table, name: str, rows: list[int]) -> list[str | None]:
    """The tokens of column `name` at `rows` of the light table."""
    col = light.column(name).take(pa.array(rows, pa.int64()))
    first = pc.list_element(col.combine_chunks(), 0)
    return list(pc.struct_field(first, "content").to_pylist())


def _refs(kind: Kind, light: pa.Table, built: pa.Table) -> list[_Ref]:
    """The source (row, column) of each output row's prompt, chosen and rejected texts."""
    sources = built.column("source_ids").to_pylist()
    refs: list[_Ref] = []
    if kind is Kind.BINARY:  # chosen = the thumbs-up row, rejected = the thumbs-down row
        for ids in sources:
            u, d = int(ids[0]), int(ids[1])
            refs.append(_Ref((u, "prompt"), (u, "response"), (d, "response")))
        return refs
    first = [int(ids[0]) for ids in sources]  # the group's first vote: its texts are the pair's
    tok_a = _first_tokens(light, "response_a", first)
    chosen = _first_tokens(built, "chosen", list(range(built.num_rows)))
    for r0, ta, tok in zip(first, tok_a, chosen, strict=True):
        a = "response_a" if ta == tok else "response_b"
        b = "response_b" if a == "response_a" else "response_a"
        refs.append(_Ref((r0, "prompt"), (r0, a), (r0, b)))
    return refs


def restore(
    path: Path,
    kind: Kind,
    light: Light,
    built: BuildResult,
    progress: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.Table]:
    """Pass 2: the built pairs with their texts, real source ids and pair ids, in order."""
    out = built.table
    refs = _refs(kind, light.table, out)
    needs = _Needs()
    for r in refs:
        needs.add(r)
    ready = np.maximum.accumulate(np.array([max(r.rows()) for r in refs], dtype=np.int64))
    held: dict[tuple[int, str], Any] = {}
    done = 0
    start = 0
    for batch in iter_canonical(path, kind, batch_rows):
        end = start + batch.num_rows
        cols = {name: batch.column(name) for name in ("prompt", *TOKEN_COLUMNS[kind])}
        for name, col in cols.items():
            wanted = [i for i in range(start, end) if (i, name) in needs.count]
            if wanted:
                vals = col.take(pa.array(np.asarray(wanted) - start)).to_pylist()
                held.update(((i, name), v) for i, v in zip(wanted, vals, strict=True))
        stop = int(np.searchsorted(ready, end, side="left"))  # rows whose sources are all read
        if stop > done:
            yield _fill(out.slice(done, stop - done), refs[done:stop], held, needs, light.ids)
            done = stop
        start = end
        if progress is not None:
            progress(batch.num_rows)
    if done < len(refs):  # the light table and the file disagree: the file changed meanwhile
        raise ValueError(f"{path}: the file changed while pairs were built; run again")


def _fill(
    part: pa.Table,
    refs: list[_Ref],
    held: dict[tuple[int, str], Any],
    needs: _Needs,
    ids: pa.ChunkedArray,
) -> pa.Table:
    """Output rows `part` with the held texts, the real source ids and pair ids."""
    rows = part.to_pylist()
    for row, ref in zip(rows, refs, strict=True):
        row["prompt"] = held[ref.prompt]
        row["chosen"] = held[ref.chosen]
        row["rejected"] = held[ref.rejected]
        row["source_ids"] = [ids[int(i)].as_py() for i in row["source_ids"]]
        row["id"] = content_id(
            "pair",
            row["prompt_id"],
            text_key(row["chosen"]),
            text_key(row["rejected"]),
            row["source_ids"],
        )
        for k in (ref.prompt, ref.chosen, ref.rejected):
            left = needs.count[k] - 1
            if left:
                needs.count[k] = left
            else:
                del needs.count[k]
                held.pop(k, None)
        if row["meta"] is not None:
            row["meta"] = list(row["meta"])
    return pa.Table.from_pylist(rows, schema=PAIRS_SCHEMA)


def rankings_batches(
    path: Path,
    build: Callable[[pa.Table], BuildResult],
    progress: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> tuple[Iterator[pa.Table], dict[str, Any]]:
    """Rankings: each batch built on its own (a ranking's pairs come from its row alone); the
    report, filled as the batches are consumed, adds up every count of the batches'."""
    report: dict[str, Any] = {}

    def gen() -> Iterator[pa.Table]:
        for batch in iter_canonical(path, Kind.RANKINGS, batch_rows):
            res = build(batch)
            add_reports(report, res.report)
            if progress is not None:
                progress(batch.num_rows)
            yield res.table
        if not report:  # no row: the report of an empty build
            add_reports(report, build(from_rows([], Kind.RANKINGS)).report)

    return gen(), report


_SUMMED = ("rows_in", "candidates", "pairs_out", "rows_out", "rows_used")


def add_reports(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add a batch's build report to `total` (counts summed, the rest taken from the first)."""
    if not total:
        total.update({k: (dict(v) if isinstance(v, dict) else v) for k, v in part.items()})
        return
    for k in _SUMMED:
        total[k] += part[k]
    for k in ("dropped", "rows_unused"):
        merged = dict(total[k])
        for reason, n in part[k].items():
            merged[reason] = merged.get(reason, 0) + n
        total[k] = dict(sorted(merged.items())) if k == "rows_unused" else merged
