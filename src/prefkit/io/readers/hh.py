"""HH-RLHF transcripts: `chosen` / `rejected` strings with `\\n\\nHuman:` / `\\n\\nAssistant:` turns.

The shared prefix of the two transcripts is the prompt (multi-turn kept as messages); what
follows from the first differing assistant turn is response_a (chosen) and response_b
(rejected), outcome `a`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from prefkit.io.base import Batch, NotFast, ReadOptions, ReadResult, Reject, register_reader
from prefkit.io.readers._arrow import (
    EMPTY,
    UNSAFE,
    Strings,
    bools,
    const,
    ints,
    offsets_of,
    prompt_ids,
    texts,
)
from prefkit.io.readers._base import (
    Context,
    RecordReader,
    Row,
    RowError,
    default_source,
    meta_of,
    need_str,
    shared_prefix,
)
from prefkit.schema import MESSAGES, Kind, conform, from_rows

_TURN = re.compile(r"\n\n(Human|Assistant):")
ROLES = {"Human": "user", "Assistant": "assistant"}


def parse_transcript(text: str, field: str) -> list[dict[str, str]]:
    """Split an HH transcript into messages (roles user/assistant, contents stripped)."""
    parts = _TURN.split(text)
    head = parts[0]
    if head.strip():
        raise RowError(field, "transcript does not start with '\\n\\nHuman:'")
    out = []
    for i in range(1, len(parts), 2):
        out.append({"role": ROLES[parts[i]], "content": parts[i + 1].strip()})
    if not out:
        raise RowError(field, "no '\\n\\nHuman:' / '\\n\\nAssistant:' turns")
    return out


def split_pair(
    chosen: list[dict[str, str]], rejected: list[dict[str, str]]
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    n = shared_prefix(chosen, rejected)
    if n == 0 or chosen[n]["role"] != "assistant":
        raise RowError("chosen", "chosen and rejected share no prompt ending before an answer")
    return chosen[:n], chosen[n:], rejected[n:]


class HHReader(RecordReader):
    name = "hh-rlhf"
    description = "Anthropic HH-RLHF transcripts (chosen/rejected with Human:/Assistant: turns)"
    example = '{"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello!", "rejected": "...Go away."}'

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        c, r = rec.get("chosen"), rec.get("rejected")
        if "prompt" in rec or not isinstance(c, str) or not isinstance(r, str):
            return None
        if "\n\nHuman:" in c and "\n\nAssistant:" in c:
            return "chosen/rejected strings with \\n\\nHuman:/\\n\\nAssistant: turns"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        c = parse_transcript(need_str(rec, "chosen"), "chosen")
        r = parse_transcript(need_str(rec, "rejected"), "rejected")
        prompt, ra, rb = split_pair(c, r)
        yield (
            Kind.COMPARISONS,
            {
                "prompt": prompt,
                "response_a": ra,
                "response_b": rb,
                "outcome": "a",
                "meta": meta_of(rec, ("chosen", "rejected")),
            },
        )

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        fast = fast_read(path, options, self)
        return fast if fast is not None else super().read(path, options)

    def stream(self, path: Path, options: ReadOptions) -> Iterator[Batch] | None:
        """Canonical rows block by block (see `fast_batches`), for `prefkit.io.convert`."""
        return fast_batches(path, options, self)


register_reader(HHReader())


# ---------------------------------------------------------------------------------------
# Vectorised path: whole JSONL files of clean chosen/rejected rows are parsed with
# pyarrow.json; turn markers are found with numpy on the raw string buffers and the messages
# cut out of them as zero-copy pieces (then trimmed and joined by Arrow kernels); rows it
# cannot prove equivalent to the per-row path (different prefixes, odd control characters,
# ...) go through `convert`.

BLOCK_BYTES = 2 << 20  # JSON block per batch


def fast_read(path: Path, options: ReadOptions, reader: HHReader) -> ReadResult | None:
    """The whole file at Arrow speed, batch by batch, or None when it needs the per-row path."""
    slow: list[int] = []
    batches = fast_batches(path, options, reader, slow)
    if batches is None:
        return None
    tables: list[pa.Table] = []
    rejects: list[Reject] = []
    rows_in = 0
    try:
        for table, rej, n in batches:
            tables.append(table)
            rejects.extend(rej)
            rows_in += n
    except NotFast:
        return None
    out = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return ReadResult(
        {Kind.COMPARISONS: out}, rejects, rows_in=rows_in, rows_vectorised=rows_in - sum(slow)
    )


def fast_batches(
    path: Path, options: ReadOptions, reader: HHReader, slow: list[int] | None = None
) -> Iterator[Batch] | None:
    """The file's canonical rows in order, one table per JSON block (so a writer can start on
    them while later blocks are parsed); None when the file is not for the vectorised path.
    Iterating raises `NotFast` when a block turns out to need the per-row path (then nothing
    of what was yielded may be used). At least one batch is yielded."""
    from prefkit.io.readers._records import container

    if options.strict or options.value_maps or container(path) != "jsonl":
        return None
    return _fast_batches(path, options, reader, [] if slow is None else slow)


def _fast_batches(
    path: Path, options: ReadOptions, reader: HHReader, slow: list[int]
) -> Iterator[Batch]:
    import pyarrow.json as pj

    from prefkit.io.readers._records import GZIP_MAGIC

    with path.open("rb") as fh:
        gz = fh.read(2) == GZIP_MAGIC
    source = options.source or default_source(path, reader.name)
    start = 0
    # Arrow kernels and most numpy work release the GIL: two batches in flight (and the JSON
    # parser, and a writer) share the cores
    pending: deque[tuple[Future[tuple[pa.Table, list[Reject], int] | None], int]] = deque()
    try:
        stream = pa.input_stream(str(path), compression="gzip" if gz else None)
        batches = pj.open_json(stream, read_options=pj.ReadOptions(block_size=BLOCK_BYTES))
        with ThreadPoolExecutor(max_workers=2) as pool:
            for batch in batches:
                fut = pool.submit(_fast_batch, batch, start, source, path, options, reader)
                pending.append((fut, batch.num_rows))
                start += batch.num_rows
                while len(pending) > 2:
                    yield _done(*pending.popleft(), slow)
            while pending:
                yield _done(*pending.popleft(), slow)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
        raise NotFast(str(e)) from e
    if start == 0:
        raise NotFast("no record")


def _done(fut: Future[tuple[pa.Table, list[Reject], int] | None], n: int, slow: list[int]) -> Batch:
    got = fut.result()
    if got is None:
        raise NotFast("a block the vectorised path does not take")
    slow.append(got[2])  # rows of the block that went through `convert`
    return got[0], got[1], n


def _fast_batch(
    batch: pa.RecordBatch,
    start: int,
    source: str,
    path: Path,
    options: ReadOptions,
    reader: HHReader,
) -> tuple[pa.Table, list[Reject], int] | None:
    if set(batch.schema.names) != {"chosen", "rejected"}:
        return None
    c, r = batch.column("chosen"), batch.column("rejected")
    if not (pa.types.is_string(c.type) and pa.types.is_string(r.type)):
        return None
    if c.null_count or r.null_count:
        return None
    cs = Strings(c)
    rs = Strings(r)
    mc = _Markers(cs)
    mr = _Markers(rs)
    # chosen: first marker is `\n\nHuman:` at the very start, last marker is `\n\nAssistant:`
    # (so no human turn after the last answer); rejected: last marker is `\n\nAssistant:`
    ok = mc.has & mr.has
    ok &= mc.pos[mc.first] == cs.starts
    ok &= ~mc.is_a[mc.first]
    ok &= mc.is_a[mc.last] & mr.is_a[mr.last]
    la_c = np.where(ok, mc.pos[mc.last], cs.starts)
    la_r = np.where(ok, mr.pos[mr.last], rs.starts)
    # the same prompt text before the last answer in both transcripts (this also proves the
    # two message lists share every prompt turn, as `split_pair` would find)
    ok &= (la_c - cs.starts) == (la_r - rs.starts)
    if ok.any():
        la_c = np.where(ok, la_c, cs.starts)
        la_r = np.where(ok, la_r, rs.starts)
        same = pc.equal(cs.spans(cs.starts, la_c), rs.spans(rs.starts, la_r))
        ok &= bools(same)[0::2]
    # control characters that Arrow and Python treat differently: whole buffers first, rows
    # only when a buffer has one (checking all of rejected is the same as checking its
    # answer, since its prompt equals chosen's)
    if mc.unsafe or mr.unsafe:
        for col in (c, r):
            ok &= ~bools(pc.match_substring_regex(col, UNSAFE))
    fast = np.flatnonzero(ok)
    slow_idx = np.flatnonzero(~ok).tolist()
    nf = len(fast)

    # prompt turns: every marker of a fast row but its last (the answer)
    sel = ok[mc.row] & (mc.index != mc.last[mc.row])
    k = np.flatnonzero(sel)
    contents = pc.utf8_trim_whitespace(cs.pieces(mc.pos[k] + mc.length[k], mc.pos[k + 1]))
    roles = pc.take(_ROLES, ints(mc.is_a[k], np.int8))
    offsets = offsets_of(mc.count[fast] - 1)
    prompts = pa.ListArray.from_arrays(
        offsets, pa.StructArray.from_arrays([roles, contents], ["role", "content"])
    ).cast(MESSAGES)
    one = ints(np.arange(nf + 1))
    role_col = const("assistant", nf)

    def response(s: Strings, last: npt.NDArray[np.int64]) -> pa.Array:
        text = s.pieces(last[fast] + _LA, s.ends[fast])
        content = pc.utf8_trim_whitespace(text)
        values = pa.StructArray.from_arrays([role_col, content], ["role", "content"])
        return pa.ListArray.from_arrays(one, values).cast(MESSAGES)

    line_no = ints(fast + (start + 1), np.int64).cast(pa.string())
    no_text = texts([])
    empty_meta = pa.MapArray.from_arrays(ints([0, 0]), no_text, no_text)
    cols: dict[str, pa.Array] = {
        "id": pc.binary_join_element_wise(*texts([source + ":", ""]), line_no, EMPTY),
        "prompt": prompts,
        "prompt_id": prompt_ids(roles, contents, offsets, prompts, trimmed=True),
        "source": const(source, nf),
        "response_a": response(cs, la_c),
        "response_b": response(rs, la_r),
        "outcome": const("a", nf),
        "meta": empty_meta.take(ints(np.zeros(nf))),
    }
    out = conform(pa.table(cols), Kind.COMPARISONS)
    rejects: list[Reject] = []
    if slow_idx:
        ctx = reader.prepare(path, options)
        rows = []
        kept = []
        recs = pa.Table.from_batches([batch]).take(ints(slow_idx)).to_pylist()
        for i, rec in zip(slow_idx, recs, strict=True):
            try:
                for _, row in reader.convert(rec, ctx):
                    row.setdefault("id", f"{source}:{start + i + 1}")
                    row.setdefault("source", source)
                    rows.append(row)
                    kept.append(i)
            except RowError as e:
                rejects.append(Reject(str(path), start + i + 1, e.field, e.reason))
        if rows:
            both = pa.concat_tables([out, from_rows(rows, Kind.COMPARISONS)])
            order = np.argsort(
                np.concatenate([fast, np.asarray(kept, np.int64)]),
                kind="stable",
            )
            out = both.take(ints(order))
    return out, rejects, len(slow_idx)


_ROLES = texts(["user", "assistant"])
_LH, _LA = len("\n\nHuman:"), len("\n\nAssistant:")


def _word(text: bytes) -> tuple[int, int]:
    """A marker's bytes after `\n\n` as (value, mask) of little-endian uint64 words."""
    pad = text.ljust(8, b"\0")[:8]
    mask = (b"\xff" * min(len(text), 8)).ljust(8, b"\0")
    return int.from_bytes(pad, "little"), int.from_bytes(mask, "little")


_H0 = _word(b"Human:")
_A0 = _word(b"Assistant:"[:8])
_A1 = _word(b"Assistant:"[8:])


class _Markers:
    """Every `\\n\\nHuman:` / `\\n\\nAssistant:` in a string array, in order, with its row: the
    same turns `_TURN.split` finds (the markers cannot overlap)."""

    def __init__(self, s: Strings) -> None:
        b = s.bytes
        nl, self.unsafe = s.controls()
        p = nl[:-1][np.diff(nl) == 1]  # "\n\n" at p
        # the 16 bytes after each "\n\n" as two little-endian words, read through an unaligned
        # uint64 view of the bytes (zero-padded so that no read passes the end)
        padded = np.zeros(len(b) + 24, np.uint8)
        padded[: len(b)] = b
        words = np.ndarray((len(b) + 17,), "<u8", padded, 0, (1,))
        w0, w1 = words[p + 2], words[p + 10]
        is_h = (w0 & np.uint64(_H0[1])) == np.uint64(_H0[0])
        is_a = (w0 == np.uint64(_A0[0])) & ((w1 & np.uint64(_A1[1])) == np.uint64(_A1[0]))
        keep = is_h | is_a
        pos = p[keep].astype(np.int64) + s.lo
        is_a = is_a[keep]
        length = np.where(is_a, _LA, _LH)
        row = np.searchsorted(s.offsets, pos, side="right") - 1
        inside = pos + length <= s.ends[row] if len(pos) else np.zeros(0, bool)
        n = len(s.starts)
        self.pos = np.append(pos[inside], s.lo)  # sentinel: rows without markers index it
        self.is_a = np.append(is_a[inside], False)
        self.length = np.append(length[inside], 0)
        self.row = row[inside]
        m = len(self.row)
        self.index = np.arange(m)
        self.count = np.bincount(self.row, minlength=n).astype(np.int64)
        self.has = self.count > 0
        first = np.searchsorted(self.row, np.arange(n), side="left")
        self.first = np.where(self.has, first, m)
        self.last = np.where(self.has, first + self.count - 1, m)
