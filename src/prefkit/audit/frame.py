"""The columns every check needs, extracted once from a canonical comparisons table.

Everything is vectorised with Arrow compute and numpy so a million rows take seconds:
message lists are joined to plain text, text is normalized (NFKC, lower-cased, whitespace
collapsed), equal texts get integer codes, and every pair gets an orientation-free key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeAlias, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from prefkit.schema import Kind, SchemaError, conform, kind_of

OUTCOME_CODES = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}
OUTCOME_NAMES = ("a", "b", "tie", "both_bad")

I64 = NDArray[np.int64]
I32 = NDArray[np.int32]
F64 = NDArray[np.float64]
B = NDArray[np.bool_]


def _column(table: pa.Table, name: str) -> pa.Array:
    col = table.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def joined_text(col: pa.Array) -> pa.Array:
    """Plain text of each message list (contents joined by a blank line; null -> '')."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    if n == 0:
        return pa.array([], pa.large_string())
    lengths = np.asarray(pc.fill_null(pc.list_value_length(col), 0), dtype=np.int64)
    flat = pc.list_flatten(col)
    contents = pc.fill_null(pc.struct_field(flat, "content"), "").cast(pa.large_string())
    if len(contents) == n and bool((lengths == 1).all()):
        return contents
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), contents)
    joined = pc.binary_join(lists, pa.scalar("\n\n", pa.large_string()))
    return pc.fill_null(joined, pa.scalar("", pa.large_string()))


_WS = r"\s+"


def normalize(arr: pa.Array) -> pa.Array:
    """Vectorised `schema.normalize_text`: NFKC, lower-case, whitespace collapsed, stripped."""
    x = pc.utf8_normalize(arr, form="NFKC")
    x = pc.utf8_lower(x)
    x = pc.replace_substring_regex(x, _WS, " ")
    return pc.utf8_trim_whitespace(x)


def codes_of(arr: pa.Array) -> tuple[I64, pa.Array]:
    """Integer code per value (equal strings share a code) and the distinct values."""
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    idx = np.asarray(pc.fill_null(enc.indices, -1), dtype=np.int64)
    return idx, enc.dictionary


def combine_codes(*codes: I64) -> I64:
    """One compact integer key per row for a tuple of integer codes (exact, no hashing)."""
    key = np.zeros(len(codes[0]), dtype=np.int64)
    for c in codes:
        _, key = np.unique(key * (int(c.max(initial=0)) + 2) + (c + 1), return_inverse=True)
        key = key.astype(np.int64)
    return key


def _string_col(table: pa.Table, name: str, n: int) -> pa.Array:
    if name in table.column_names:
        return _column(table, name).cast(pa.string())
    return pa.nulls(n, pa.string())


def meta_text(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One string per row holding the whole `meta` map (keys and values in their order;
    null and empty maps give '')."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if len(col) == 0:
        return pa.array([], pa.string())
    kv = pc.binary_join_element_wise(col.keys, pc.fill_null(col.items, ""), "\x1f")
    lists = pa.ListArray.from_arrays(col.offsets, kv)
    return pc.fill_null(pc.binary_join(lists, "\x1e"), "")


def _meta(table: pa.Table, key: str, n: int) -> pa.Array:
    if "meta" not in table.column_names or n == 0:
        return pa.nulls(n, pa.string())
    m = _column(table, "meta")
    return pc.map_lookup(m, key, "first").cast(pa.string())


BATCH_ROWS = 1 << 16  # rows per batch while the frame reads text
# columns `Frame.of` reads into integer codes (`outcome`, `annotator`, `source`, `split`,
# `shown_first`) and then drops from `Frame.table`
CODED_COLUMNS = ("outcome", "annotator", "source", "meta_split", "shown_first")
U64 = NDArray[np.uint64]
TEXT_COLUMNS = ("prompt", "response_a", "response_b")


def hash64(arr: pa.Array | pa.ChunkedArray) -> U64:
    """A 64-bit hash of each string (polars' seeded string hash: equal strings, equal hashes;
    two distinct strings of a million collide with probability ~1e-8)."""
    import polars as pl

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return np.asarray(pl.Series(arr.cast(pa.large_string())).hash(seed=0).to_numpy())


Source: TypeAlias = pa.Table | Sequence[Path]


def text_batches(source: Source, rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    """A conformed comparisons table, or canonical Parquet files read batch by batch (each
    batch conformed and validated; an error names the file and the row in it)."""
    if isinstance(source, pa.Table):
        for i in range(0, source.num_rows, rows):
            yield source.slice(i, rows)
        return
    from prefkit.io.base import InputError, parquet_batches
    from prefkit.schema import validate

    for path in source:
        start = 0
        for rb in parquet_batches(path, rows):
            t = pa.Table.from_batches([rb])
            try:
                t = conform(t, Kind.COMPARISONS)
                validate(t, Kind.COMPARISONS)
            except SchemaError as e:
                line = None if e.row is None else start + int(e.row)
                raise InputError(path, e.reason, line=line, field=e.column) from e
            start += t.num_rows
            yield t


Texts: TypeAlias = tuple[pa.Array, pa.Array, pa.Array]


def _read_batch(
    t: pa.Table, stats: bool
) -> tuple[pa.Table, Texts, Texts, list[U64], pa.Table | None]:
    """The per-batch work of `Frame.of` (Arrow kernels and hashing, which release the GIL):
    the joined texts, their normalized forms, the five hash arrays (normalized prompt, a, b;
    a and b as written) and, with `stats`, the batch's `row_stats`."""
    from prefkit.audit.rowwise import row_stats

    p, a, b = (joined_text(_column(t, c)) for c in TEXT_COLUMNS)
    pn, an, bn = normalize(p), normalize(a), normalize(b)
    h = [hash64(pn), hash64(an), hash64(bn), hash64(a), hash64(b)]
    row = row_stats(t.select(list(TEXT_COLUMNS))) if stats else None
    return t, (p, a, b), (pn, an, bn), h, row


READ_THREADS = 2  # threads preparing batches while `Frame.of` reads (results in order)

_T = TypeVar("_T")
_R = TypeVar("_R")


def _ahead(
    fn: Callable[[_T], _R], items: Iterator[_T], threads: int = READ_THREADS
) -> Iterator[_R]:
    """`map(fn, items)` on `threads` threads, in order (one more item waits ready); the items are
    drawn from `items` on the calling thread (an error there or in `fn` is raised here)."""
    if threads <= 1:
        yield from map(fn, items)
        return
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        queue: deque[Future[_R]] = deque()
        try:
            for item in items:
                queue.append(pool.submit(fn, item))
                if len(queue) > threads:
                    yield queue.popleft().result()
            while queue:
                yield queue.popleft().result()
        finally:
            for fut in queue:
                fut.cancel()


def _light(t: pa.Table) -> pa.Table:
    """The columns of a batch the checks read, without the text: `meta` is replaced by what
    they use of it (`meta.pair_id`, `meta.split`, a 64-bit hash of the whole map as text,
    whether it has any entry), and `prompt_id` is dropped."""
    n = t.num_rows
    mt = (
        meta_text(_column(t, "meta"))
        if "meta" in t.column_names and n
        else pa.nulls(n, pa.string())
    )
    mt = pc.fill_null(mt, "")
    extra = {
        "meta_pair_id": _meta(t, "pair_id", n),
        "meta_split": _meta(t, "split", n),
        "meta_hash": pa.array(hash64(mt) if n else np.zeros(0, dtype=np.uint64), pa.uint64()),
        "has_meta": pc.greater(pc.utf8_length(mt), 0) if n else pa.array([], pa.bool_()),
    }
    drop = [c for c in (*TEXT_COLUMNS, "meta", "prompt_id") if c in t.column_names]
    out = t.drop_columns(drop)
    for name, col in extra.items():
        out = out.append_column(name, col)
    return out


def _combine(tables: list[pa.Table]) -> pa.Table:
    """`pa.concat_tables(tables).combine_chunks()` a column at a time: each column's pieces
    are freed once it is combined (the list is emptied), so the copy never holds the whole
    table twice."""
    if not tables:
        raise ValueError("no tables")
    schema = tables[0].schema
    cols: list[pa.Array] = []
    for name in schema.names:
        chunks = [c for t in tables for c in t.column(name).chunks]
        cols.append(pa.chunked_array(chunks, schema.field(name).type).combine_chunks())
        del chunks
        tables[:] = [t.drop_columns([name]) for t in tables]
    tables.clear()
    return pa.table(cols, schema=schema)


def first_codes(h: U64) -> I64:
    """Integer code per value of `h` numbered by first occurrence (as
    `pyarrow.compute.dictionary_encode` numbers the strings `h` hashes)."""
    uniq, first, inv = np.unique(h, return_index=True, return_inverse=True)
    rank = np.empty(uniq.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(uniq.size)
    return rank[inv.reshape(-1)]


def _cat(xs: list[NDArray[np.int32]]) -> NDArray[np.int32]:
    return np.concatenate(xs) if xs else np.zeros(0, dtype=np.int32)


SECOND = np.int64(1 << 40)  # position offset of a batch's second column (response b)


SPILL_BYTES = 1 << 25  # distinct texts held in memory before they go to a scratch file
STORE_ROWS = 1 << 14  # texts per record batch of a scratch file


def _remove(path: str) -> None:
    import os

    try:
        os.unlink(path)
    except OSError:
        pass


class _Store:
    """Strings appended batch by batch and read back in the same order, batch by batch: held
    in memory up to `SPILL_BYTES`, beyond that written to a scratch Arrow IPC file (in
    `TMPDIR`, removed when the store is freed or the process ends), so memory does not grow
    with the text."""

    def __init__(self) -> None:
        self.mem: list[pa.Array] = []
        self.held = 0
        self.n = 0
        self.path: str | None = None
        self._sink: pa.NativeFile | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    def append(self, values: pa.Array) -> None:
        values = values.cast(pa.large_string())
        self.n += len(values)
        if self.path is None:
            self.mem.append(values)
            self.held += values.nbytes
            if self.held > SPILL_BYTES:
                self._spill()
        else:
            self._write(values)

    def _spill(self) -> None:
        import os
        import tempfile
        import weakref

        fd, name = tempfile.mkstemp(prefix="prefkit-audit-", suffix=".arrows")
        os.close(fd)
        self.path = name
        weakref.finalize(self, _remove, name)
        self._sink = pa.OSFile(name, "wb")
        self._writer = pa.ipc.new_stream(self._sink, pa.schema([("v", pa.large_string())]))
        for v in self.mem:
            self._write(v)
        self.mem, self.held = [], 0

    def _write(self, values: pa.Array) -> None:
        assert self._writer is not None
        for s in range(0, len(values), STORE_ROWS):
            self._writer.write_batch(pa.record_batch([values.slice(s, STORE_ROWS)], names=["v"]))

    def close(self) -> None:
        """No more appends: the scratch file is complete (reads may start)."""
        if self._writer is not None:
            self._writer.close()
            assert self._sink is not None
            self._sink.close()
            self._writer, self._sink = None, None

    def batches(self) -> Iterator[pa.Array]:
        """The strings in append order, a batch at a time (read from the file without
        mapping it: a batch's memory is freed once it is dropped)."""
        self.close()
        if self.path is None:
            yield from self.mem
            return
        with pa.OSFile(self.path, "rb") as src:
            reader = pa.ipc.open_stream(src)
            for rb in reader:
                yield rb.column(0)


class TextSet:
    """The distinct texts of one kind (prompts, responses normalized or as written), numbered
    by code; the text itself is in a `_Store` (memory or a scratch file), read back a chunk
    at a time. Only `code_of` (the code of each stored text, in storage order) is in memory."""

    def __init__(self, store: _Store | None = None, code_of: I64 | None = None) -> None:
        self.store = store if store is not None else _Store()
        self.code_of = code_of if code_of is not None else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.code_of.size)

    def chunks(self, size: int = STORE_ROWS) -> Iterator[tuple[I64, pa.Array]]:
        """(codes, texts) of every distinct text, about `size` at a time, in storage order
        (not code order)."""
        start = 0
        parts: list[pa.Array] = []
        held = 0
        for arr in self.store.batches():
            parts.append(arr)
            held += len(arr)
            if held >= size:
                yield self.code_of[start : start + held], pa.concat_arrays(parts)
                start += held
                parts, held = [], 0
        if held:
            yield self.code_of[start : start + held], pa.concat_arrays(parts)

    def take(self, codes: I64) -> pa.Array:
        """The texts of `codes` (distinct codes), in the order given."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size == 0:
            return pa.array([], pa.large_string())
        want = np.full(len(self), -1, dtype=np.int64)
        want[codes] = np.arange(codes.size)
        got: list[pa.Array] = []
        slot: list[I64] = []
        for c, arr in self.chunks():
            w = want[c]
            sel = np.flatnonzero(w >= 0)
            if sel.size:
                got.append(arr.take(pa.array(sel)))
                slot.append(w[sel])
        vals = pa.concat_arrays(got)
        order = np.empty(codes.size, dtype=np.int64)
        order[np.concatenate(slot)] = np.arange(codes.size)
        return vals.take(pa.array(order))

    def all(self) -> pa.Array:
        """Every distinct text in code order (the whole text in memory: small tables and
        the paths that need every text at once)."""
        return self.take(np.arange(len(self), dtype=np.int64))


class _Distinct:
    """The distinct strings of a stream of batches, kept once each (keyed by `hash64`) in a
    `_Store`. `add` gives each row a provisional id (the order the strings were first stored)
    and remembers, per distinct string, the first position it was seen at; `codes` turns the
    provisional ids into codes numbered by first position. So only a 4-byte id per row and a
    few numbers per distinct string are held, never the rows' hashes."""

    END = np.iinfo(np.int64).max

    def __init__(self) -> None:
        self.seen = np.zeros(0, dtype=np.uint64)  # sorted hashes seen so far
        self.seen_id = np.zeros(0, dtype=np.int64)  # their provisional ids
        self.first = np.zeros(1 << 10, dtype=np.int64)  # per provisional id: first position
        self.n = 0
        self.added = 0  # elements added so far (the default positions)
        self.store = _Store()

    def add(self, h: U64, values: pa.Array, position: I64 | None = None) -> NDArray[np.int32]:
        """Store the strings of `values` not seen before (`h`: their hashes) and return the
        provisional id of each. `position`: where each element sits in the order codes are
        numbered by (default: the order elements are added)."""
        if position is None:
            position = np.arange(self.added, self.added + h.size, dtype=np.int64)
        self.added += int(h.size)
        u, first, inv = np.unique(h, return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
        ids = np.empty(u.size, dtype=np.int64)
        if self.seen.size:
            pos = np.minimum(np.searchsorted(self.seen, u), self.seen.size - 1)
            found = self.seen[pos] == u
            ids[found] = self.seen_id[pos[found]]
        else:
            found = np.zeros(u.size, dtype=bool)
        new = ~found
        k = int(new.sum())
        ids[new] = np.arange(self.n, self.n + k)
        first_pos = np.full(u.size, self.END, dtype=np.int64)
        np.minimum.at(first_pos, inv, position)
        if found.any():  # a string seen before may sit earlier in the numbering order here
            old = ids[found]
            self.first[old] = np.minimum(self.first[old], first_pos[found])
        if k:
            # two sorted runs: the stable sort (a merge) keeps this linear in what is held
            allh = np.concatenate([self.seen, u[new]])
            order = np.argsort(allh, kind="stable")
            self.seen = allh[order]
            self.seen_id = np.concatenate([self.seen_id, ids[new]])[order]
            if self.n + k > self.first.size:  # grown by doubling: amortised linear
                grown = np.empty(max(2 * self.first.size, self.n + k), dtype=np.int64)
                grown[: self.n] = self.first[: self.n]
                self.first = grown
            self.first[self.n : self.n + k] = first_pos[new]
            self.n += k
            self.store.append(values.take(pa.array(first[new])))
        return ids[inv].astype(np.int32)

    def codes(self, *provisional: NDArray[np.int32]) -> tuple[list[I64], TextSet]:
        """Per-row codes of each array of provisional ids (from `add`) and the distinct
        values; codes number the values in order of first position (with the default
        positions: of first occurrence, as `pyarrow.compute.dictionary_encode` numbers the
        strings)."""
        first = self.first[: self.n]
        self.first = np.zeros(0, dtype=np.int64)
        rank = np.empty(first.size, dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(first.size)
        del first
        self.seen, self.seen_id = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
        self.store.close()
        return [rank[p] for p in provisional], TextSet(self.store, rank)


@dataclass
class Frame:
    """Comparison rows as arrays. Built by `Frame.of(table or canonical Parquet files)`, which
    reads the text batch by batch and keeps, per row, only codes and lengths; text is kept
    once per distinct (normalized) prompt and response, and re-read from the source for the
    rows a report shows (`text_rows`)."""

    table: pa.Table  # the other columns, without the text and `CODED_COLUMNS` (see `_light`)
    origin: Source  # where the text is (the table given, or the Parquet files)
    n: int
    row_id: pa.Array
    len_prompt: I32  # characters of the joined messages
    len_a: I32
    len_b: I32
    outcome: NDArray[np.int8]  # 0 a, 1 b, 2 tie, 3 both_bad
    annotator: I64  # code, -1 = unknown
    annotators: list[str]
    shown_first: NDArray[np.int8]  # 0 a, 1 b, -1 unknown
    source: I64
    sources: list[str]
    split: I64
    splits: list[str]
    prompt_code: I64
    a_code: I64  # codes shared between a and b (same text -> same code)
    b_code: I64
    text_set: TextSet  # distinct normalized responses (code = a_code / b_code)
    prompt_set: TextSet  # distinct normalized prompts (code = prompt_code)
    a_raw: I64  # codes of the responses as written (joined messages, not normalized)
    b_raw: I64
    raw_set: TextSet  # distinct responses as written (code = a_raw / b_raw)
    prompt_valid: B  # the row has a prompt (not null)
    has_text: bool
    extra: dict[str, object] = field(default_factory=dict)
    stats: dict[str, NDArray[np.generic]] = field(default_factory=dict)

    @classmethod
    def of(cls, source: Source, stats: bool = True, rows: int = BATCH_ROWS) -> Frame:
        """Read `source` (a comparisons table, or canonical comparisons Parquet files) batch by
        batch. `stats`: also compute the row-wise statistics (`audit.rowwise.row_stats`) of
        each batch (else an engine fills `stats`, or `row` computes them when first read)."""
        from prefkit.audit.rowwise import stats_arrays

        if isinstance(source, pa.Table):
            if kind_of(source) is not Kind.COMPARISONS:
                raise SchemaError(None, "*", "the audit reads comparison tables")
            source = conform(source, Kind.COMPARISONS)
        prompts, texts, raw = _Distinct(), _Distinct(), _Distinct()
        # provisional ids per row (`_Distinct.add`): prompt, response a and b (normalized),
        # a and b as written
        ids: list[list[NDArray[np.int32]]] = [[], [], [], [], []]
        start = 0
        lens: list[list[I32]] = [[], [], []]
        valid: list[B] = []
        rest: list[pa.Table] = []
        parts: list[pa.Table] = []
        with_text = 0
        for t, (p, a, b), (pn, an, bn), h, row in _ahead(
            lambda t: _read_batch(t, stats), text_batches(source, rows)
        ):
            m = t.num_rows
            ids[0].append(prompts.add(h[0], pn))
            # codes number responses by first occurrence among all a's, then all b's
            at = np.arange(start, start + m, dtype=np.int64)
            both = np.concatenate([at, at + SECOND])
            for k, (dist, x, y) in enumerate(((texts, an, bn), (raw, a, b)), start=1):
                got = dist.add(
                    np.concatenate([h[2 * k - 1], h[2 * k]]), pa.concat_arrays([x, y]), both
                )
                ids[2 * k - 1].append(got[:m])
                ids[2 * k].append(got[m:])
            start += m
            for k, x in enumerate((p, a, b)):
                lens[k].append(np.asarray(pc.utf8_length(x), dtype=np.int32))
            valid.append(np.asarray(_column(t, "prompt").is_valid(), dtype=bool))
            resp = pc.or_(_column(t, "response_a").is_valid(), _column(t, "response_b").is_valid())
            with_text += int(pc.sum(resp.cast(pa.int64())).as_py() or 0)
            if row is not None:  # the lengths are kept once (`lens`)
                parts.append(row.drop_columns(["len_prompt", "len_a", "len_b"]))
            rest.append(_light(t))
            del t, p, a, b, pn, an, bn, h, row, at, both, got
        if not rest:
            empty = (
                conform(pa.table({}), Kind.COMPARISONS)
                if not isinstance(source, pa.Table)
                else source
            )
            rest = [_light(empty.slice(0, 0))]
        table = _combine(rest)
        del rest
        n = table.num_rows
        (prompt_code,), prompt_values = prompts.codes(_cat(ids[0]))
        (a_code, b_code), text_values = texts.codes(_cat(ids[1]), _cat(ids[2]))
        (a_raw, b_raw), raw_values = raw.codes(_cat(ids[3]), _cat(ids[4]))
        del ids
        out = np.asarray(
            pc.fill_null(pc.index_in(_column(table, "outcome"), pa.array(OUTCOME_NAMES)), 0),
            dtype=np.int8,
        )
        ann_code, anns = codes_of(_string_col(table, "annotator", n))
        src_code, srcs = codes_of(_string_col(table, "source", n))
        split_code, splits = codes_of(_string_col(table, "meta_split", n))
        sf = np.asarray(
            pc.fill_null(
                pc.index_in(_string_col(table, "shown_first", n), pa.array(["a", "b"])), -1
            ),
            dtype=np.int8,
        )
        # the columns turned into codes above are not kept as strings
        table = table.drop_columns([c for c in CODED_COLUMNS if c in table.column_names])
        lp, la, lb = (np.concatenate(x) if x else np.zeros(0, dtype=np.int32) for x in lens)
        row_stats: dict[str, NDArray[np.generic]] = {}
        if parts:  # `rowwise.row_stats`, with the lengths held once (the frame's)
            row_stats = {"len_prompt": lp, "len_a": la, "len_b": lb}
            row_stats |= stats_arrays(pa.concat_tables(parts))
        del parts
        return cls(
            table=table,
            origin=source,
            n=n,
            row_id=_column(table, "id").cast(pa.string()),
            len_prompt=lp,
            len_a=la,
            len_b=lb,
            outcome=out,
            annotator=ann_code,
            annotators=[str(x) for x in anns.to_pylist()],
            shown_first=sf,
            source=src_code,
            sources=[str(x) for x in srcs.to_pylist()],
            split=split_code,
            splits=[str(x) for x in splits.to_pylist()],
            prompt_code=prompt_code,
            a_code=a_code,
            b_code=b_code,
            text_set=text_values,
            prompt_set=prompt_values,
            a_raw=a_raw,
            b_raw=b_raw,
            raw_set=raw_values,
            prompt_valid=np.concatenate(valid) if valid else np.zeros(0, dtype=bool),
            has_text=bool(n and with_text > 0),
            stats=row_stats,
        )

    def release_raw(self) -> None:
        """Free the responses as written (`raw_texts`, `a_raw`, `b_raw`: only the degenerate
        check reads them) once it has run; reading them afterwards is an error."""
        self.raw_set = TextSet()
        self.a_raw = np.zeros(0, dtype=np.int64)
        self.b_raw = np.zeros(0, dtype=np.int64)
        self.extra["raw_released"] = True

    @property
    def texts(self) -> pa.Array:
        """Every distinct normalized response, in code order (read whole from `text_set`)."""
        return self.text_set.all()

    @property
    def prompts(self) -> pa.Array:
        """Every distinct normalized prompt, in code order (read whole from `prompt_set`)."""
        return self.prompt_set.all()

    @property
    def raw_texts(self) -> pa.Array:
        """Every distinct response as written, in code order (read whole from `raw_set`)."""
        return self.raw_set.all()

    def text_rows(self, idx: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        """The prompt and the two responses (joined messages, as written) of rows `idx`, read
        again from the source batch by batch."""
        want = np.unique(np.asarray(idx, dtype=np.int64))
        out: dict[int, tuple[str, str, str]] = {}
        start = 0
        for t in text_batches(self.origin):
            lo = np.searchsorted(want, start)
            hi = np.searchsorted(want, start + t.num_rows)
            if hi > lo:
                sub = t.take(pa.array(want[lo:hi] - start))
                p, a, b = (joined_text(_column(sub, c)).to_pylist() for c in TEXT_COLUMNS)
                for j, r in enumerate(want[lo:hi].tolist()):
                    out[r] = (p[j], a[j], b[j])
            start += t.num_rows
            if hi >= want.size:
                break
        return out

    # -- derived keys ------------------------------------------------------------------

    @cached_property
    def row(self) -> dict[str, NDArray[np.generic]]:
        """Row-wise text statistics and flags (`audit.rowwise.row_stats`): the ones computed
        while reading or by an engine (`stats`), else computed here batch by batch."""
        if self.stats:
            return self.stats
        from prefkit.audit.rowwise import row_stats, stats_arrays

        parts = [row_stats(t.select(list(TEXT_COLUMNS))) for t in text_batches(self.origin)]
        return stats_arrays(pa.concat_tables(parts)) if parts else {}

    @cached_property
    def model_codes(self) -> tuple[I64, I64]:
        return self.model_codes_uncached()

    def model_codes_uncached(self) -> tuple[I64, I64]:
        """`model_codes` computed again (the frame does not keep them): for a step that needs
        them once and holds them in a smaller type."""
        if "model_codes" in self.__dict__:
            return self.model_codes
        models = pa.concat_arrays(
            [_string_col(self.table, "model_a", self.n), _string_col(self.table, "model_b", self.n)]
        )
        code, _ = codes_of(models)
        return code[: self.n], code[self.n :]

    @cached_property
    def swapped(self) -> B:
        """True where the row's (a, b) order is the reverse of the pair's canonical order."""
        if not self.has_text:
            ma, mb = self.model_codes
            return np.asarray(ma > mb)
        return np.asarray(self.a_code > self.b_code)

    @cached_property
    def pair_key(self) -> I64:
        """Same prompt and the same two responses (either order) -> same key."""
        lo = np.minimum(self.a_code, self.b_code)
        hi = np.maximum(self.a_code, self.b_code)
        if not self.has_text:
            ma, mb = self.model_codes
            return combine_codes(self.prompt_code, np.minimum(ma, mb), np.maximum(ma, mb))
        return combine_codes(self.prompt_code, lo, hi)

    @cached_property
    def item(self) -> I64:
        """The judged item: `meta.pair_id` where given, else the pair key."""
        pid = _string_col(self.table, "meta_pair_id", self.n)
        if pid.null_count == self.n:
            return self.pair_key
        code, _ = codes_of(pid)
        # rows without a pair_id fall back to their pair key (offset to stay distinct)
        miss = code < 0
        if miss.any():
            code = code.copy()
            code[miss] = self.pair_key[miss] + int(code.max(initial=0)) + 1
        return combine_codes(code)

    @cached_property
    def canonical_outcome(self) -> NDArray[np.int8]:
        """Outcome in the pair's canonical orientation (a/b swapped where `swapped`)."""
        o = self.outcome.copy()
        s = self.swapped
        o[s & (self.outcome == 0)] = 1
        o[s & (self.outcome == 1)] = 0
        return o

    @cached_property
    def decisive(self) -> B:
        return np.asarray(self.outcome <= 1)

    @cached_property
    def aspect(self) -> I64:
        """Code of each row's aspect (-1: overall)."""
        return codes_of(_string_col(self.table, "aspect", self.n))[0]

    @cached_property
    def identified(self) -> B:
        """Rows that carry something telling one vote from another: a known annotator, a
        rationale, or any `meta` (ids, timestamps, ...)."""
        rat = np.asarray(self.table.column("rationale").is_valid(), dtype=bool)
        has_meta = np.asarray(self.table.column("has_meta"), dtype=bool)
        return np.asarray((self.annotator >= 0) | rat | has_meta)

    @property
    def vote_key(self) -> I64:
        """Everything that identifies a vote, aligned to the pair's canonical order: the pair,
        outcome, annotator, aspect, rationale, strength, display order and `meta`. Two rows
        with the same key record the same vote (ids and `source` are not compared). Not kept:
        `duplicate_group`, its one reader, is."""
        rat, _ = codes_of(_string_col(self.table, "rationale", self.n))
        meta = first_codes(np.asarray(self.table.column("meta_hash"), dtype=np.uint64))
        st = _column(self.table, "strength").cast(pa.float64())
        sv = np.asarray(pc.fill_null(st, -1.0), dtype=np.float64)
        sv = np.where(self.swapped & (sv >= 0), 1.0 - sv, sv)
        st_code = np.unique(np.round(sv, 9), return_inverse=True)[1].astype(np.int64)
        sf = self.shown_first.astype(np.int64)
        sf = np.where(self.swapped & (sf >= 0), 1 - sf, sf)
        return combine_codes(
            self.pair_key,
            self.canonical_outcome.astype(np.int64),
            self.annotator,
            self.aspect,
            rat,
            st_code,
            sf,
            meta,
        )

    @cached_property
    def duplicate_group(self) -> I64:
        """Exact-duplicate group of each row (-1: not a duplicate). Rows are copies of one vote
        when every identifying field is equal (`vote_key`). Rows with nothing that tells votes
        apart (no annotator, rationale or meta) must also show the pair in the same order: two
        anonymous rows with the pair swapped are two votes, not a copy."""
        key = combine_codes(
            self.vote_key, np.where(self.identified, 0, 1 + self.swapped.astype(np.int64))
        )
        _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        return np.where(cnt[inv] > 1, inv, -1).astype(np.int64)

    @cached_property
    def is_copy(self) -> B:
        """Every exact duplicate but the first row of its group: a copy, not a vote."""
        g = self.duplicate_group
        out = np.zeros(self.n, dtype=bool)
        rows = np.flatnonzero(g >= 0)
        if rows.size:
            _, first = np.unique(g[rows], return_index=True)
            out[rows] = True
            out[rows[first]] = False
        return out

    def prompt_rows(self, mask: B) -> I64:
        """Rows whose prompt is marked in `mask` (one entry per distinct prompt)."""
        ok = self.prompt_code >= 0
        return np.flatnonzero(ok & mask[np.maximum(self.prompt_code, 0)])

    def take_ids(self, idx: NDArray[np.integer]) -> pa.Array:
        return self.row_id.take(pa.array(np.asarray(idx, dtype=np.int64)))


def comparisons_from_rankings(table: pa.Table) -> pa.Table:
    """The comparisons a rankings table implies, for the audit: every pair of entries of a
    ranking (`build.pairs.ranking_candidates`, mode `all`) is one vote by the ranking's
    annotator — `a` when a ranks better, `tie` on equal ranks. Each row keeps the ranking's
    prompt, source, aspect, annotator and meta; `meta.pair_id` names the ranking and the
    entries, `meta.ranking_id` the ranking; ids are `<ranking id>:<i>-<j>`."""
    from prefkit.build.pairs import ranking_candidates
    from prefkit.schema import from_rows

    cols = {c: table.column(c).to_pylist() for c in table.column_names}
    n = table.num_rows
    rows: list[dict[str, object]] = []
    for r in range(n):
        ranks = [int(x) for x in cols["ranks"][r]]
        resp = (cols.get("responses") or [None] * n)[r] or [None] * len(ranks)
        models = (cols.get("models") or [None] * n)[r] or [None] * len(ranks)
        meta = dict(cols.get("meta", [None] * n)[r] or [])
        rid = str(cols["id"][r])
        for i, j in ranking_candidates(ranks, "all"):
            rows.append(
                {
                    "id": f"{rid}:{i}-{j}",
                    "prompt": cols["prompt"][r],
                    "response_a": resp[i],
                    "response_b": resp[j],
                    "model_a": models[i],
                    "model_b": models[j],
                    "outcome": "tie"
                    if ranks[i] == ranks[j]
                    else ("a" if ranks[i] < ranks[j] else "b"),
                    "annotator": (cols.get("annotator") or [None] * n)[r],
                    "source": (cols.get("source") or [None] * n)[r],
                    "aspect": (cols.get("aspect") or [None] * n)[r],
                    "meta": meta | {"ranking_id": rid, "pair_id": f"{rid}:{i}-{j}"},
                }
            )
    return from_rows(rows, "comparisons")
