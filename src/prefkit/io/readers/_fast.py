"""The vectorised read path of record readers: a file's record batches (Parquet, CSV/TSV,
JSON lines, `datasets` folders) become canonical columns through Arrow kernels, batch by
batch. A reader describes how its columns map (a `BattlePlan`); rows the plan cannot map
exactly (a null, an unknown outcome, a value only Python reads the same way) go through the
reader's own per-row `convert`, in place, so the result is the per-row path's table, ids,
meta and rejects included. JSON lines are parsed by Arrow, whose records are not always what
`json.loads` gives (an integer in a float column): there, any row needing `convert` sends the
whole file to the per-row path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from prefkit.io.base import ReadOptions, ReadResult, Reject, StrictError
from prefkit.io.readers._arrow import (
    bools,
    const,
    flags,
    ints,
    numpy_ints,
    prompt_ids,
    scalar,
    texts,
)
from prefkit.io.readers._base import as_json_text, outcome_value
from prefkit.schema import MESSAGES, Kind, conform, from_rows, prompt_id

if TYPE_CHECKING:
    from prefkit.io.readers._base import Context, RecordReader

PARQUET_BATCH = 1 << 18  # rows per Parquet batch
BLOCK_BYTES = 16 << 20  # bytes per CSV / JSON block


class Decline(Exception):
    """The vectorised path does not take this file: read it row by row."""


# ---------------------------------------------------------------------------------------
# Record batches of any container


def open_batches(path: Path, csv_nulls: bool = False) -> tuple[str, Iterator[pa.RecordBatch]]:
    """(container, record batches) of a file; raises `Decline` for containers read per row
    (JSON arrays). `csv_nulls`: an empty unquoted CSV cell is null (canonical CSV), else ""."""
    from prefkit.io.readers._records import container, open_binary, read_hf_dir

    kind = container(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path, pre_buffer=False)  # see base.parquet_batches
        except (pa.ArrowInvalid, OSError) as e:
            raise Decline(str(e)) from e
        return kind, pf.iter_batches(batch_size=PARQUET_BATCH, use_threads=True)
    if kind == "hf":
        return kind, iter(read_hf_dir(path).to_batches(max_chunksize=PARQUET_BATCH))
    gz = _is_gzip(path)
    if kind in ("csv", "tsv"):
        import csv

        import pyarrow.csv as pcsv

        delim = "\t" if kind == "tsv" else ","
        with open_binary(path) as fh:
            head = fh.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n")
        names = next(csv.reader([head], delimiter=delim), [])
        if not names or len(set(names)) != len(names):
            raise Decline("header")
        stream = pa.input_stream(str(path), compression="gzip" if gz else None)
        reader = pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=True),
            parse_options=pcsv.ParseOptions(delimiter=delim, newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=csv_nulls,
                quoted_strings_can_be_null=False,
            ),
        )
        if reader.schema.names != names:
            raise Decline("header")
        return kind, iter(reader)
    if kind == "jsonl":
        import pyarrow.json as pj

        stream = pa.input_stream(str(path), compression="gzip" if gz else None)
        return kind, iter(pj.open_json(stream, read_options=pj.ReadOptions(block_size=BLOCK_BYTES)))
    raise Decline(kind)


def prefetch(batches: Iterator[pa.RecordBatch], ahead: int = 2) -> Iterator[pa.RecordBatch]:
    """Decode the next batches in a thread while this one is mapped: Arrow's readers release
    the GIL, so decoding and the Python part of mapping share the cores."""
    import queue
    import threading

    q: queue.Queue[Any] = queue.Queue(maxsize=ahead)
    done = object()
    stop = threading.Event()

    def run() -> None:
        try:
            for b in batches:
                if stop.is_set():
                    return
                q.put(b)
            q.put(done)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.01)


def _is_gzip(path: Path) -> bool:
    from prefkit.io.readers._records import GZIP_MAGIC

    with path.open("rb") as fh:
        return fh.read(2) == GZIP_MAGIC


# ---------------------------------------------------------------------------------------
# Columns as the per-row path writes them


def plain(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One chunk, dictionaries decoded, large/view strings as strings."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.dictionary_decode()
        t = col.type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        col = col.cast(pa.string())
    return col


def is_text(col: pa.Array) -> bool:
    return bool(pa.types.is_string(col.type))


def as_text(col: pa.Array, style: str, python: bool = True) -> pa.Array:
    """Values as text the way the per-row path writes them: `str` is `str(v)` (ids, names),
    `json` is `meta_of`'s rule (strings as they are, anything else as JSON). Strings and
    integers (and booleans for `json`) with Arrow kernels; other types value by value in
    Python when `python`, else `Decline`."""
    t = col.type
    if pa.types.is_string(t):
        return col
    if pa.types.is_null(t):
        return pa.nulls(len(col), pa.string())
    if pa.types.is_integer(t):
        return col.cast(pa.string())
    if style == "json" and pa.types.is_boolean(t):
        return pc.if_else(col, "true", "false")
    if not python or (style == "str" and not pa.types.is_floating(t)):
        raise Decline(f"{style} of {t}")
    uniq = col.unique() if pa.types.is_floating(t) else None
    values = (uniq if uniq is not None else col).to_pylist()
    if style == "str":
        out = [None if v is None else str(v) for v in values]
    else:
        out = [None if v is None else as_json_text(v) for v in values]
    arr = pa.array(out, pa.string())
    if uniq is not None:
        return pc.take(arr, pc.index_in(col, value_set=uniq))
    return arr


def valid(col: pa.Array) -> npt.NDArray[np.bool_]:
    return np.ones(len(col), bool) if col.null_count == 0 else bools(col.is_valid())


def where_value(col: pa.Array, pred: Callable[[Any], bool]) -> npt.NDArray[np.bool_]:
    """Rows whose value passes `pred` (the per-row path's Python rule), deciding once per
    distinct value; nulls fail."""
    enc = col.dictionary_encode()
    good = np.array([v is not None and pred(v) for v in enc.dictionary.to_pylist()] + [False])
    idx = enc.indices
    at = numpy_ints(pc.fill_null(idx, scalar(len(good) - 1)))
    return good[at]


def by_value(col: pa.Array, fn: Callable[[Any], str | None]) -> pa.Array:
    """`fn` (the per-row path's own Python rule) on each distinct value, mapped back to the
    rows: exact, and cheap when values repeat (outcomes, model names). Nulls stay null."""
    enc = col.dictionary_encode()
    out = pa.array([None if v is None else fn(v) for v in enc.dictionary.to_pylist()], pa.string())
    return pc.take(out, enc.indices)


def value_mapped(col: pa.Array, vm: Mapping[str, str] | None) -> pa.Array:
    """`--value-map` on a text column: a raw value found in the map becomes its value."""
    if not vm:
        return col
    keys = texts(list(vm))
    idx = pc.index_in(col, value_set=keys)
    return pc.if_else(pc.is_valid(idx), pc.take(texts(list(vm.values())), idx), col)


def messages_of(text: pa.Array, role: str) -> pa.Array:
    """Each non-null string as one message of `role`; nulls stay null (no entries)."""
    n = len(text)
    if text.null_count == 0:
        values = pa.StructArray.from_arrays([const(role, n), text], ["role", "content"])
        return pa.ListArray.from_arrays(ints(np.arange(n + 1)), values).cast(MESSAGES)
    ok = valid(text)
    present = text.filter(flags(ok))
    values = pa.StructArray.from_arrays([const(role, len(present)), present], ["role", "content"])
    offsets = ints(np.concatenate([[0], np.cumsum(ok)]))
    return pa.ListArray.from_arrays(offsets, values, mask=flags(~ok)).cast(MESSAGES)


def plain_prompt_ids(text: pa.Array) -> pa.Array:
    """`schema.prompt_id` of one user message per row (null text: the empty prompt); each
    distinct text is hashed once when texts repeat (judged by a sample)."""
    n = len(text)
    sample = text.slice(0, 2048)
    repeats = n > 0 and pc.count_distinct(sample).as_py() < 0.8 * len(sample)
    if repeats:
        enc = text.dictionary_encode()
        uniq = enc.dictionary
    else:
        uniq = text.fill_null(scalar("")) if text.null_count else text
    m = len(uniq)
    ids = prompt_ids(const("user", m), uniq, ints(np.arange(m + 1)), messages_of(uniq, "user"))
    out = pc.take(ids, enc.indices) if repeats else ids
    if text.null_count:
        out = pc.if_else(pc.is_null(text), const(prompt_id(None), n), out)
    return out


def meta_map(entries: Sequence[tuple[str, pa.Array]], n: int, null_empty: bool = False) -> pa.Array:
    """A map<string, string> column from (key, text column) entries in order, null values
    left out (as `meta_of` leaves out None); `null_empty`: a row without entries is null."""
    k = len(entries)
    if k == 0:
        empty = texts([])
        mask = pa.array(np.ones(n, bool)) if null_empty else None
        return pa.MapArray.from_arrays(ints(np.zeros(n + 1)), empty, empty, mask=mask)
    items = pa.concat_arrays([c.cast(pa.string()) for _, c in entries])
    order = (np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel()
    items = items.take(ints(order, np.int64))
    keep = valid(items)
    counts = keep.reshape(n, k).sum(axis=1)
    offsets = ints(np.concatenate([[0], np.cumsum(counts)]))
    keys = pc.take(texts([key for key, _ in entries]), ints(np.tile(np.arange(k), n)))
    mask = pa.array(counts == 0) if null_empty and not counts.all() else None
    if keep.all():
        return pa.MapArray.from_arrays(offsets, keys, items, mask=mask)
    sel = ints(np.flatnonzero(keep), np.int64)
    return pa.MapArray.from_arrays(offsets, keys.take(sel), items.take(sel), mask=mask)


class Plan(Protocol):
    """How a reader maps a batch with Arrow kernels: the canonical rows of the rows it maps
    and a mask of those rows (the rest go through the reader's `convert`)."""

    @property
    def kind(self) -> Kind: ...

    def build(
        self, batch: pa.RecordBatch, start: int, source: str, container: str
    ) -> tuple[pa.Table, npt.NDArray[np.bool_]]: ...


def set_meta(table: pa.Table, key: str, value: str) -> pa.Table:
    """`meta[key] = value` on every row (an existing entry for `key` replaced, order kept)."""
    meta = plain(table.column("meta"))
    n = len(meta)
    o = numpy_ints(meta.offsets)
    spans = np.diff(o) * valid(meta)  # a null map has no entries
    if not spans.any():  # no entries anywhere (the rule below gives `key` alone per row)
        new = pa.MapArray.from_arrays(ints(np.arange(n + 1)), const(key, n), const(value, n))
        return table.set_column(table.schema.get_field_index("meta"), "meta", new)
    pos = np.repeat(o[:-1], spans) + (
        np.arange(spans.sum()) - np.repeat(np.cumsum(spans) - spans, spans)
    )
    parents = np.repeat(np.arange(n), spans)
    take = ints(pos, np.int64)
    keys, items = meta.keys.take(take), meta.items.take(take)
    keep = (
        ~bools(pc.fill_null(pc.equal(keys, scalar(key)), scalar(False)))
        if len(keys)
        else np.zeros(0, bool)
    )
    sel = ints(np.flatnonzero(keep), np.int64)
    keys, items, parents = keys.take(sel), items.take(sel), parents[keep]
    rows = np.concatenate([parents, np.arange(n)])
    order = ints(np.argsort(rows, kind="stable"), np.int64)
    all_keys = pa.concat_arrays([keys.cast(pa.string()), const(key, n)]).take(order)
    all_items = pa.concat_arrays([items.cast(pa.string()), const(value, n)]).take(order)
    offsets = ints(np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]))
    new = pa.MapArray.from_arrays(offsets, all_keys, all_items)
    return table.set_column(table.schema.get_field_index("meta"), "meta", new)


# ---------------------------------------------------------------------------------------
# Model battles (comparisons without response text)


@dataclass(frozen=True)
class BattlePlan:
    """How the columns of a battle file become canonical comparisons, mirroring the reader's
    `convert` (which handles every row the plan cannot)."""

    model_a: str
    model_b: str
    outcome: str
    vocab: Mapping[str, str]  # lower-cased, stripped raw outcome -> a/b/tie/both_bad
    texts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # field <- columns
    prompt: str | None = None  # a string column: one user message
    blank_prompt_is_none: bool = False  # "" is no prompt (generic), else an empty message
    prompt_id: str | None = None  # a column of prompt ids
    prompt_id_from: tuple[str, str] | None = None  # (prefix, column) for rows without prompt
    strength: str | None = None
    shown_first: str | None = None  # a constant
    used: frozenset[str] = frozenset()  # source columns not kept in meta
    extra_meta: tuple[tuple[str, str], ...] = ()  # meta key <- column (`str(v)`), last
    value_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # column -> map
    named_models: bool = True  # models must be non-blank strings (else any value, nulls too)
    null_empty_meta: bool = False  # a row with nothing for meta has null meta (else {})
    kind: Kind = Kind.COMPARISONS

    def build(
        self, batch: pa.RecordBatch, start: int, source: str, container: str
    ) -> tuple[pa.Table, npt.NDArray[np.bool_]]:
        """The canonical rows of the rows it maps, and which rows those are."""
        n = batch.num_rows
        names = batch.schema.names
        python = container != "jsonl"

        def text(name: str) -> pa.Array:
            return value_mapped(
                as_text(plain(batch.column(name)), "str"), self.value_maps.get(name)
            )

        ok = np.ones(n, bool)
        models = []
        for name in (self.model_a, self.model_b):
            if not self.named_models:
                models.append(text(name))
                continue
            col = plain(batch.column(name))
            if not is_text(col):
                raise Decline(f"{name} is {col.type}")
            ok &= where_value(col, lambda v: bool(v.strip()))  # need_str: a non-blank string
            models.append(col)
        raw = plain(batch.column(self.outcome))
        if not (is_text(raw) or pa.types.is_integer(raw.type) or pa.types.is_boolean(raw.type)):
            raise Decline(f"{self.outcome} is {raw.type}")
        vm = self.value_maps.get(self.outcome)
        outcome = by_value(raw, lambda v: outcome_value(v, self.vocab, vm))
        ok &= valid(outcome)

        cols: dict[str, pa.Array] = {"model_a": models[0], "model_b": models[1]}
        cols["outcome"] = outcome
        for fname, srcs in self.texts.items():
            if not any(s in names for s in srcs):
                continue
            # Python's `a or b or c`: the first value that is not null or "", else the last
            # (a missing column is None)
            val = text(srcs[-1]) if srcs[-1] in names else pa.nulls(n, pa.string())
            for s in reversed(srcs[:-1]):
                if s in names:
                    cand = text(s)
                    good = pc.and_(
                        pc.is_valid(cand), pc.not_equal(pc.fill_null(cand, scalar("")), scalar(""))
                    )
                    val = pc.if_else(good, cand, val)
            cols[fname] = val
        if "id" in cols:
            ok &= valid(cols["id"])
        else:
            nums = ints(np.arange(start + 1, start + n + 1), np.int64).cast(pa.string())
            cols["id"] = pc.binary_join_element_wise(source + ":", nums, "")
        if "source" not in cols:
            cols["source"] = const(source, n)
        prompt_text = None
        if self.prompt is not None and self.prompt in names:
            p = plain(batch.column(self.prompt))
            if pa.types.is_null(p.type):
                p = pa.nulls(n, pa.string())
            if not is_text(p):
                raise Decline(f"{self.prompt} is {p.type}")
            p = value_mapped(p, self.value_maps.get(self.prompt))
            if self.blank_prompt_is_none:
                p = pc.if_else(pc.equal(p, ""), pa.nulls(n, pa.string()), p)
            if container in ("csv", "tsv"):  # may hold JSON message lists: per row
                ok &= ~bools(pc.fill_null(pc.match_substring_regex(p, r"^\s*\["), scalar(False)))
            prompt_text = p
            cols["prompt"] = messages_of(p, "user")
        pid: pa.Array | None = None
        if self.prompt_id is not None and self.prompt_id in names:
            pid = text(self.prompt_id)
        fallback: pa.Array
        if prompt_text is not None:
            fallback = plain_prompt_ids(prompt_text)
        else:
            fallback = const(prompt_id(None), n)
        if self.prompt_id_from is not None and self.prompt_id_from[1] in names:
            prefix, col = self.prompt_id_from
            key_col = text(col)
            tagged = pc.binary_join_element_wise(prefix, key_col, "")
            use = pc.is_valid(key_col)
            if prompt_text is not None:
                use = pc.and_(use, pc.is_null(prompt_text))
            fallback = pc.if_else(use, tagged, fallback)
        cols["prompt_id"] = fallback if pid is None else pc.coalesce(pid, fallback)
        if self.strength is not None and self.strength in names:
            s = plain(batch.column(self.strength))
            if is_text(s):
                s = value_mapped(s, self.value_maps.get(self.strength))
                s = pc.if_else(pc.equal(s, ""), pa.nulls(n, pa.string()), s)
                try:
                    s = s.cast(pa.float64())
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise Decline("strength") from None
            elif pa.types.is_integer(s.type) or pa.types.is_floating(s.type):
                s = s.cast(pa.float64())
            else:
                raise Decline(f"strength is {s.type}")
            cols["strength"] = s
        if self.shown_first is not None:
            cols["shown_first"] = const(self.shown_first, n)
        entries = [
            (c, as_text(plain(batch.column(c)), "json", python))
            for c in names
            if c not in self.used
        ]
        for key_name, col_name in self.extra_meta:
            if col_name in names:
                entries.append((key_name, pc.fill_null(text(col_name), scalar("None"))))
            else:
                entries.append((key_name, const("None", n)))
        cols["meta"] = meta_map(entries, n, self.null_empty_meta)
        table = conform(pa.table(cols), self.kind)
        if not ok.all():
            table = table.take(ints(np.flatnonzero(ok), np.int64))
        return table, ok


class PerRow(BattlePlan):
    """A plan that maps no row itself: every record goes through `convert` (used for CSV
    whose Arrow parse tells null from "", which Python's csv cannot)."""

    def __init__(self, kind: Kind) -> None:
        super().__init__("", "", "", {}, kind=kind)

    def build(
        self, batch: pa.RecordBatch, start: int, source: str, container: str
    ) -> tuple[pa.Table, npt.NDArray[np.bool_]]:
        empty = conform(from_rows([], self.kind), self.kind)
        return empty, np.zeros(batch.num_rows, bool)


# ---------------------------------------------------------------------------------------
# The engine


def read_fast(
    path: Path,
    options: ReadOptions,
    reader: RecordReader,
    plan_for: Any,
    csv_nulls: bool = False,
) -> ReadResult | None:
    """Read a file batch by batch with the plan `plan_for(schema, container)` gives (None:
    not this path); rows the plan leaves go through `reader.convert`. None when the file
    needs the per-row path."""
    try:
        container, batches = open_batches(path, csv_nulls)
    except Decline:
        return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError):
        return None  # Arrow's readers parse a first block when opened: a bad line there
    ctx = reader.prepare(path, options)
    source = ctx.source
    plan: Plan | None = None
    schema: pa.Schema | None = None
    main: list[pa.Table] = []
    others: dict[Kind, list[dict[str, Any]]] = {}
    rejects: list[Reject] = []
    start = 0
    fast = 0
    fname = str(path)
    try:
        for batch in prefetch(batches):
            if schema is None:
                schema = batch.schema
                plan = plan_for(schema, container)
                if plan is None:
                    return None
            elif batch.schema != schema:
                return None
            assert plan is not None
            table, ok = plan.build(batch, start, source, container)
            fast += int(ok.sum())
            slow = np.flatnonzero(~ok)
            if len(slow):
                if container == "jsonl":
                    return None
                table = _with_slow_rows(
                    table, ok, slow, batch, start, ctx, reader, rejects, others, plan.kind
                )
            main.append(table)
            start += batch.num_rows
    except Decline:
        return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError):
        return None
    except StrictError as e:
        if container in ("csv", "tsv") and e.line is not None:
            line = csv_lines(path, [e.line], "\t" if container == "tsv" else ",")[0]
            raise StrictError(fname, e.reason, line=line, field=e.field) from None
        raise
    if plan is None or start == 0:
        return None
    if rejects and container in ("csv", "tsv"):
        lines = csv_lines(path, [r.line or 0 for r in rejects], "\t" if container == "tsv" else ",")
        rejects = [
            Reject(r.file, line, r.field, r.reason, r.raw)
            for r, line in zip(rejects, lines, strict=True)
        ]
    tables = {plan.kind: pa.concat_tables(main) if len(main) > 1 else main[0]}
    for kind, rows in others.items():
        tables[kind] = from_rows(rows, kind)
    return ReadResult(tables, rejects, rows_in=start, rows_vectorised=fast)


def _with_slow_rows(
    table: pa.Table,
    ok: npt.NDArray[np.bool_],
    slow: npt.NDArray[np.int64],
    batch: pa.RecordBatch,
    start: int,
    ctx: Context,
    reader: RecordReader,
    rejects: list[Reject],
    others: dict[Kind, list[dict[str, Any]]],
    kind: Kind,
) -> pa.Table:
    """Convert the rows the plan left with `reader.convert`; merge them in record order.
    Reject lines are record numbers here (CSV lines are looked up at the end)."""
    from prefkit.io.readers._base import convert_record

    recs = batch.take(ints(slow, np.int64)).to_pylist()
    rows: list[dict[str, Any]] = []
    at: list[int] = []
    for i, rec in zip(slow.tolist(), recs, strict=True):
        number = start + i + 1
        out, rej = convert_record(reader, rec, ctx, number, number)
        if rej is not None:
            rejects.append(rej)
            continue
        for k, row in out:
            if k is kind:
                rows.append(row)
                at.append(i)
            else:
                others.setdefault(k, []).append(row)
    if not rows:
        return table
    both = pa.concat_tables([table, conform(from_rows(rows, kind), kind)])
    order = np.argsort(
        np.concatenate([np.flatnonzero(ok), np.asarray(at, np.int64)]), kind="stable"
    )
    return both.take(ints(order, np.int64))


def csv_lines(path: Path, numbers: list[int], delimiter: str) -> list[int]:
    """The line (as the per-row CSV reader counts it) of each record number."""
    import csv
    import io

    from prefkit.io.readers._records import open_binary

    want = sorted(set(numbers))
    found: dict[int, int] = {}
    k = 0
    with open_binary(path) as bfh:
        fh = io.TextIOWrapper(bfh, encoding="utf-8-sig", errors="replace", newline="")
        rd = csv.reader(fh, delimiter=delimiter)
        next(rd, None)
        n = 0
        for row in rd:
            if not row:
                continue
            n += 1
            if n == want[k]:
                found[n] = rd.line_num
                k += 1
                if k == len(want):
                    break
    return [found.get(x, x + 1) for x in numbers]
