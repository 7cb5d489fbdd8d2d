"""Model battles without text: LLMFAO (`left`/`right`/`winner`, worker ids) and Chatbot Arena
(`model_a`/`model_b`/`winner` incl. `tie (bothbad)`; conversations kept when present)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prefkit.io.base import ReadOptions, ReadResult, register_reader
from prefkit.io.readers._base import (
    Context,
    RecordReader,
    Row,
    default_source,
    messages,
    meta_of,
    need_str,
    opt_str,
    outcome_from,
    shared_prefix,
)
from prefkit.schema import Kind, conform, prompt_id

LLMFAO = {"left": "a", "right": "b", "tie": "tie"}
ARENA = {
    "model_a": "a",
    "model_b": "b",
    "tie": "tie",
    "tie (bothbad)": "both_bad",
    "both_bad": "both_bad",
}


class LLMFAOReader(RecordReader):
    name = "llmfao"
    description = "LLMFAO crowd battles: left/right model names, winner left/right/tie, worker"
    example = (
        "id,prompt,model_x,model_y,worker,winner,left,right\n0,8,97,98,58,tie,GPT 4,Weaver 12k"
    )

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if {"left", "right", "winner"} <= set(rec):
            return "left/right/winner columns (LLMFAO battles)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        left, right = need_str(rec, "left", False), need_str(rec, "right", False)
        outcome = outcome_from(rec.get("winner"), "winner", LLMFAO, ctx)
        pid = opt_str(rec, "prompt")
        worker = opt_str(rec, "worker")
        row: dict[str, Any] = {
            "model_a": left,
            "model_b": right,
            "outcome": outcome,
            "shown_first": "a",
            "annotator": worker,
            "meta": {
                **meta_of(rec, ("left", "right", "winner", "worker")),
                "pair_id": str(rec.get("id")),
            },
        }
        if pid is not None:
            row["prompt_id"] = f"llmfao:{pid}"
        yield Kind.COMPARISONS, row

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        fast = fast_battles(path, options, self)
        return fast if fast is not None else super().read(path, options)


class ArenaReader(RecordReader):
    name = "arena"
    description = "Chatbot Arena battles: model_a/model_b/winner (tie (bothbad) -> both_bad)"
    example = (
        '{"question_id": "q1", "model_a": "gpt-4", "model_b": "vicuna-13b",'
        ' "winner": "tie (bothbad)", "judge": "arena_user_1", "conversation_a": [...]}'
    )

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if {"model_a", "model_b", "winner"} <= set(rec):
            return "model_a/model_b/winner columns (Chatbot Arena battles)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        ma, mb = need_str(rec, "model_a", False), need_str(rec, "model_b", False)
        outcome = outcome_from(rec.get("winner"), "winner", ARENA, ctx)
        row: dict[str, Any] = {
            "model_a": ma,
            "model_b": mb,
            "outcome": outcome,
            "annotator": opt_str(rec, "judge") or opt_str(rec, "annotator"),
        }
        used = ["model_a", "model_b", "winner", "judge", "conversation_a", "conversation_b"]
        ca, cb = rec.get("conversation_a"), rec.get("conversation_b")
        if ca is not None and cb is not None:
            a = messages(ca, "conversation_a", "user")
            b = messages(cb, "conversation_b", "user")
            n = shared_prefix(a, b)
            row["prompt"], row["response_a"], row["response_b"] = a[:n], a[n:], b[n:]
        elif isinstance(rec.get("prompt"), str):
            row["prompt"] = rec["prompt"]
            used.append("prompt")
        if row.get("prompt") is None and rec.get("question_id") is not None:
            row["prompt_id"] = f"arena:{rec['question_id']}"
        row["meta"] = meta_of(rec, used)
        yield Kind.COMPARISONS, row

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        fast = fast_battles(path, options, self)
        return fast if fast is not None else super().read(path, options)


register_reader(LLMFAOReader())
register_reader(ArenaReader())


# ---------------------------------------------------------------------------------------
# Vectorised path for identity-only battles in CSV or Parquet (Arena dumps run to millions
# of rows): column operations only; any file it cannot map exactly (a bad value, a null,
# conversations, JSON lines) goes through the per-row path, which names the bad rows.


def _load_columns(path: Path) -> tuple[pa.Table, int] | None:
    """All columns (as strings) and the number of the first record; None if not suitable."""
    import csv as _csv

    import pyarrow.csv as pcsv

    from prefkit.io.readers._records import container, open_binary, read_parquet

    kind = container(path)
    if kind == "parquet":
        table = read_parquet(path)
        cols = []
        for name in table.column_names:
            col = table.column(name)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                cols.append(col.cast(pa.string()))
            elif pa.types.is_integer(col.type):
                cols.append(col.cast(pa.string()))
            else:
                return None
        return pa.table(cols, names=table.column_names), 1
    if kind != "csv":
        return None
    with open_binary(path) as fh:
        head = fh.readline().decode("utf-8-sig").rstrip("\r\n")
    names = next(_csv.reader([head]))
    try:
        with open_binary(path) as fh:
            table = pcsv.read_csv(
                fh,
                read_options=pcsv.ReadOptions(use_threads=True),
                convert_options=pcsv.ConvertOptions(
                    column_types={n: pa.string() for n in names}, strings_can_be_null=False
                ),
            )
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError):
        return None
    return table, 1


def _outcomes(col: pa.ChunkedArray, vocab: Mapping[str, str]) -> pa.Array | None:
    key = pc.utf8_lower(pc.utf8_trim_whitespace(col))
    raw = pa.array(list(vocab))
    idx = pc.index_in(key, value_set=raw)
    if idx.null_count:
        return None
    return pc.take(pa.array(list(vocab.values())), idx)


def _meta(table: pa.Table, names: list[str], extra: dict[str, pa.Array]) -> pa.Array | None:
    cols = [table.column(n).combine_chunks() for n in names] + list(extra.values())
    keys = names + list(extra)
    if any(c.null_count for c in cols):
        return None
    n, k = table.num_rows, len(keys)
    offsets = pa.array((np.arange(n + 1) * k).astype(np.int32))
    key_arr = pa.array(np.tile(np.array(keys, dtype=object), n), pa.string())
    if k == 0:
        items = pa.array([], pa.string())
    else:
        items = pa.concat_arrays([c.cast(pa.string()) for c in cols])
        order = (np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel()
        items = items.take(pa.array(order))
    return pa.MapArray.from_arrays(offsets, key_arr, items)


def _const(value: str | None, n: int) -> pa.Array:
    return pc.take(pa.array([value], pa.string()), pa.array(np.zeros(n, dtype=np.int32)))


def fast_battles(path: Path, options: ReadOptions, reader: RecordReader) -> ReadResult | None:
    if options.strict or options.value_maps:
        return None
    loaded = _load_columns(path)
    if loaded is None:
        return None
    table, first_line = loaded
    names = table.column_names
    n = table.num_rows
    if n == 0:
        return None
    source = options.source or default_source(path, reader.name)
    if reader.name == "llmfao":
        a, b, w = "left", "right", "winner"
        vocab: Mapping[str, str] = LLMFAO
        used = ["left", "right", "winner", "worker"]
        if "id" not in names or "prompt" not in names:
            return None
        annot = table.column("worker") if "worker" in names else _const(None, n)
        pids = pc.binary_join_element_wise("llmfao:", table.column("prompt"), "")
        extra = {"pair_id": table.column("id").combine_chunks()}
        shown = _const("a", n)
    else:
        a, b, w = "model_a", "model_b", "winner"
        vocab = ARENA
        used = ["model_a", "model_b", "winner", "judge", "conversation_a", "conversation_b"]
        if {"conversation_a", "conversation_b", "prompt"} & set(names):
            return None
        annot = (
            table.column("judge")
            if "judge" in names
            else table.column("annotator")
            if "annotator" in names
            else _const(None, n)
        )
        if "question_id" in names:
            pids = pc.binary_join_element_wise("arena:", table.column("question_id"), "")
        else:
            pids = _const(prompt_id(None), n)
        extra = {}
        shown = _const(None, n)
    ma, mb = table.column(a), table.column(b)
    for col in (ma, mb):
        if col.null_count or not pc.all(pc.not_equal(pc.utf8_trim_whitespace(col), "")).as_py():
            return None
    outcome = _outcomes(table.column(w), vocab)
    if outcome is None or pids.null_count:
        return None
    meta = _meta(table, [x for x in names if x not in used], extra)
    if meta is None:
        return None
    lines = pc.add(pa.array(np.arange(n, dtype=np.int64)), first_line).cast(pa.string())
    cols = {
        "id": pc.binary_join_element_wise(source + ":", lines, ""),
        "prompt_id": pids,
        "annotator": annot,
        "source": _const(source, n),
        "meta": meta,
        "model_a": ma,
        "model_b": mb,
        "outcome": outcome,
        "shown_first": shown,
    }
    out = conform(pa.table(cols), Kind.COMPARISONS)
    return ReadResult({Kind.COMPARISONS: out}, [], rows_in=n)
