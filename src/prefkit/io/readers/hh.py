"""HH-RLHF transcripts: `chosen` / `rejected` strings with `\\n\\nHuman:` / `\\n\\nAssistant:` turns.

The shared prefix of the two transcripts is the prompt (multi-turn kept as messages); what
follows from the first differing assistant turn is response_a (chosen) and response_b
(rejected), outcome `a`.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from prefkit.io.base import ReadOptions, ReadResult, Reject, register_reader
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
from prefkit.schema import MESSAGES, Kind, conform, from_rows, prompt_id

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


register_reader(HHReader())


# ---------------------------------------------------------------------------------------
# Vectorised path: whole JSONL files of clean chosen/rejected rows are parsed with
# pyarrow.json and split with Arrow string kernels; rows it cannot prove equivalent to the
# per-row path (different prefixes, odd control characters, ...) go through `convert`.

_UNSAFE = r"[\x00-\x08\x0e-\x1f\x85]"  # control chars Arrow and Python treat differently
_WS = r"[\t\n\x0b\x0c\r ]+"


def _const(value: str, n: int) -> pa.Array:
    return pc.take(pa.array([value], pa.string()), pa.array(np.zeros(n, dtype=np.int32)))


def _offsets(lengths: npt.NDArray[np.int64]) -> pa.Array:
    return pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))


def fast_read(path: Path, options: ReadOptions, reader: HHReader) -> ReadResult | None:
    """The whole file at Arrow speed, batch by batch, or None when it needs the per-row path."""
    import pyarrow.json as pj

    from prefkit.io.readers._records import GZIP_MAGIC, container

    if options.strict or options.value_maps or container(path) != "jsonl":
        return None
    with path.open("rb") as fh:
        gz = fh.read(2) == GZIP_MAGIC
    source = options.source or default_source(path, reader.name)
    tables: list[pa.Table] = []
    rejects: list[Reject] = []
    start = 0
    # Arrow kernels release the GIL: two batches in flight use both cores
    pending: deque[Future[tuple[pa.Table, list[Reject]] | None]] = deque()
    try:
        stream = pa.input_stream(str(path), compression="gzip" if gz else None)
        batches = pj.open_json(stream, read_options=pj.ReadOptions(block_size=2 << 20))
        with ThreadPoolExecutor(max_workers=2) as pool:
            for batch in batches:
                pending.append(
                    pool.submit(_fast_batch, batch, start, source, path, options, reader)
                )
                start += batch.num_rows
                while len(pending) > 2:
                    if not _collect(pending.popleft(), tables, rejects):
                        return None
            while pending:
                if not _collect(pending.popleft(), tables, rejects):
                    return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError):
        return None
    if not tables:
        return None
    out = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return ReadResult({Kind.COMPARISONS: out}, rejects, rows_in=start)


def _collect(
    fut: Future[tuple[pa.Table, list[Reject]] | None],
    tables: list[pa.Table],
    rejects: list[Reject],
) -> bool:
    got = fut.result()
    if got is None:
        return False
    tables.append(got[0])
    rejects.extend(got[1])
    return True


def _fast_batch(
    batch: pa.RecordBatch,
    start: int,
    source: str,
    path: Path,
    options: ReadOptions,
    reader: HHReader,
) -> tuple[pa.Table, list[Reject]] | None:
    if set(batch.schema.names) != {"chosen", "rejected"}:
        return None
    c, r = batch.column("chosen"), batch.column("rejected")
    if not (pa.types.is_string(c.type) and pa.types.is_string(r.type)):
        return None
    if c.null_count or r.null_count:
        return None
    mark = "\n\nAssistant:"
    filler = "\n\nHuman: -" + mark + " -"
    ok = pc.and_(pc.match_substring(c, mark), pc.match_substring(r, mark))
    all_marked = bool(pc.all(ok).as_py())
    c2, r2 = (c, r) if all_marked else (pc.if_else(ok, c, filler), pc.if_else(ok, r, filler))
    sc = pc.split_pattern(c2, mark, max_splits=1, reverse=True)
    sr = pc.split_pattern(r2, mark, max_splits=1, reverse=True)
    pcx, xc = pc.list_element(sc, 0), pc.list_element(sc, 1)
    prx, xr = pc.list_element(sr, 0), pc.list_element(sr, 1)
    ok = pc.and_(ok, pc.equal(pcx, prx))
    ok = pc.and_(ok, pc.starts_with(pcx, "\n\nHuman:"))
    for col in (xc, xr):
        ok = pc.and_(ok, pc.invert(pc.match_substring(col, "\n\nHuman:")))
    # the prefix is shared (checked above): scanning chosen and the rejected answer suffices
    for col in (c, xr):
        ok = pc.and_(ok, pc.invert(pc.match_substring_regex(col, _UNSAFE)))
    fast_idx = pc.indices_nonzero(ok)
    slow_idx = pc.indices_nonzero(pc.invert(ok)).to_pylist()
    n = len(fast_idx)
    everything = n == batch.num_rows

    def pick(x: pa.Array) -> pa.Array:
        return x if everything else pc.take(x, fast_idx)

    marked = pc.replace_substring(pick(pcx), "\n\nHuman:", "\x00user\x01")
    marked = pc.replace_substring(marked, mark, "\x00assistant\x01")
    turns = pc.list_slice(pc.split_pattern(marked, "\x00"), 1)
    lengths = np.asarray(pc.list_value_length(turns).to_numpy(zero_copy_only=False), np.int64)
    parts = pc.split_pattern(pc.list_flatten(turns), "\x01", max_splits=1)
    roles = pc.list_element(parts, 0)
    contents = pc.utf8_trim_whitespace(pc.list_element(parts, 1))
    offsets = _offsets(lengths)
    prompts = pa.ListArray.from_arrays(
        offsets, pa.StructArray.from_arrays([roles, contents], ["role", "content"])
    ).cast(MESSAGES)
    one = pa.array(np.arange(n + 1, dtype=np.int32))
    role_col = _const("assistant", n)

    def response(x: pa.Array) -> pa.Array:
        content = pc.utf8_trim_whitespace(pick(x))
        values = pa.StructArray.from_arrays([role_col, content], ["role", "content"])
        return pa.ListArray.from_arrays(one, values).cast(MESSAGES)

    line_no = pc.add(fast_idx, start + 1).cast(pa.string())
    empty_meta = pa.array([[]], pa.map_(pa.string(), pa.string()))
    cols: dict[str, pa.Array] = {
        "id": pc.binary_join_element_wise(source + ":", line_no, ""),
        "prompt": prompts,
        "prompt_id": pa.array(_prompt_ids(roles, contents, offsets, prompts), pa.string()),
        "source": _const(source, n),
        "response_a": response(xc),
        "response_b": response(xr),
        "outcome": _const("a", n),
        "meta": empty_meta.take(pa.array(np.zeros(n, dtype=np.int32))),
    }
    out = conform(pa.table(cols), Kind.COMPARISONS)
    rejects: list[Reject] = []
    if slow_idx:
        ctx = reader.prepare(path, options)
        rows = []
        kept = []
        recs = pa.Table.from_batches([batch]).take(slow_idx).to_pylist()
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
                np.concatenate([np.asarray(fast_idx, np.int64), np.asarray(kept, np.int64)]),
                kind="stable",
            )
            out = both.take(pa.array(order))
    return out, rejects


def _prompt_ids(
    roles: pa.Array, contents: pa.Array, offsets: pa.Array, prompts: pa.Array
) -> list[str]:
    """`schema.prompt_id` of every prompt: ASCII prompts normalised with Arrow kernels (NFKC
    is the identity and casefold is lower on ASCII), then one blake2b each; others in Python."""
    lowered = pc.utf8_lower(contents)
    needs = pc.match_substring_regex(lowered, r"[\t\n\x0b\x0c\r]|  ")
    idx = pc.indices_nonzero(needs)
    if len(idx):
        fixed = pc.replace_substring_regex(pc.take(lowered, idx), _WS, " ")
        lowered = pc.replace_with_mask(lowered, needs, fixed)
    norm = pc.utf8_trim(lowered, " ")
    esc = pc.replace_substring(pc.replace_substring(norm, "\\", "\\\\"), '"', '\\"')
    elems = pc.binary_join_element_wise('["', roles, '","', esc, '"]', "")
    keys = pc.binary_join(pa.ListArray.from_arrays(offsets, elems), ",")
    keys = pc.binary_join_element_wise("[", keys, "]", "").cast(pa.large_binary())
    _, koff, kdata = keys.buffers()
    bounds = np.frombuffer(koff, dtype=np.int64)[keys.offset : keys.offset + len(keys) + 1]
    bounds = bounds.tolist()
    data = kdata.to_pybytes() if kdata is not None else b""
    not_ascii = np.asarray(pc.invert(pc.string_is_ascii(contents)), dtype=np.int64)
    starts = np.asarray(offsets)[:-1]
    bad = np.add.reduceat(not_ascii, starts) if len(not_ascii) else np.zeros(0, np.int64)
    blake = hashlib.blake2b
    out = [
        blake(data[a:b], digest_size=8).hexdigest()
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    for i in np.nonzero(bad)[0].tolist():
        out[i] = prompt_id(prompts[i].as_py())
    return out
