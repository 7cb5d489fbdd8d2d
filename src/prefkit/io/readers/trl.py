"""TRL dataset formats (https://huggingface.co/docs/trl/dataset_formats).

- preference: `prompt` (optional) / `chosen` / `rejected`, standard (strings) or conversational
  (message lists); without `prompt` the shared prefix of chosen and rejected is the prompt
  (implicit prompt). -> comparisons, outcome `a` (response_a = chosen).
- unpaired preference (KTO): `prompt` / `completion` / `label` (bool) -> binary.
- stepwise supervision: `prompt` / `completions` (list) / `labels` (list of bool) -> one binary
  row per step, `meta.step` / `meta.steps` and the earlier steps appended to the prompt.
"""

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
    RowError,
    default_source,
    messages,
    meta_of,
    need,
    opt_str,
    shared_prefix,
)
from prefkit.io.readers._records import type_name
from prefkit.schema import MESSAGES, Kind, conform

TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f"}


def as_bool(v: Any, field: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in TRUE | FALSE:
        return v.strip().lower() in TRUE
    if v is None:
        raise RowError(field, "required field is missing")
    raise RowError(field, f"expected a boolean, got {type_name(v)} {v!r}")


def _implicit_strings(c: str, r: str) -> tuple[str, str, str]:
    """TRL's implicit prompt for strings: the longest common prefix, cut at a word boundary."""
    n = 0
    for x, y in zip(c, r, strict=False):
        if x != y:
            break
        n += 1
    if n < min(len(c), len(r)):
        while n > 0 and not c[n - 1].isspace():
            n -= 1
    return c[:n], c[n:], r[n:]


class TRLPreferenceReader(RecordReader):
    name = "trl"
    description = "TRL preference: prompt?/chosen/rejected, standard or conversational"
    example = '{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}'

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if {"chosen", "rejected"} <= set(rec):
            style = "conversational" if isinstance(rec.get("chosen"), list) else "standard"
            how = "explicit" if "prompt" in rec else "implicit"
            return f"chosen/rejected ({style}, {how} prompt; TRL preference)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        c, r = need(rec, "chosen"), need(rec, "rejected")
        used = ["prompt", "chosen", "rejected"]
        prompt: Any
        ra: Any
        rb: Any
        if "prompt" in rec and rec["prompt"] is not None:
            prompt = messages(rec["prompt"], "prompt", "user")
            ra, rb = messages(c, "chosen"), messages(r, "rejected")
        elif isinstance(c, str) and isinstance(r, str):
            p, a, b = _implicit_strings(c, r)
            prompt, ra, rb = (p or None), a, b
        else:
            mc, mr = messages(c, "chosen"), messages(r, "rejected")
            n = shared_prefix(mc, mr)
            prompt, ra, rb = (mc[:n] or None), mc[n:], mr[n:]
        row: dict[str, Any] = {
            "prompt": prompt,
            "response_a": ra,
            "response_b": rb,
            "outcome": "a",
            "model_a": opt_str(rec, "chosen_model") or opt_str(rec, "chosen-model"),
            "model_b": opt_str(rec, "rejected_model") or opt_str(rec, "rejected-model"),
        }
        used += ["chosen_model", "rejected_model", "chosen-model", "rejected-model"]
        # a `margin` column (RewardTrainer's, or prefkit pairs' vote/score margin) is not a
        # directional strength: it stays in meta, never becomes `strength`
        row["meta"] = meta_of(rec, used)
        yield Kind.COMPARISONS, row

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        fast = fast_trl(path, options, self)
        return fast if fast is not None else super().read(path, options)


class TRLUnpairedReader(RecordReader):
    name = "trl-unpaired"
    description = "TRL unpaired preference / KTO: prompt/completion/label (bool)"
    kinds = (Kind.BINARY,)
    example = '{"prompt": "The sky is", "completion": " blue.", "label": true}'

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if {"completion", "label"} <= set(rec):
            return "prompt/completion/label (TRL unpaired / KTO)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        comp = need(rec, "completion")
        yield (
            Kind.BINARY,
            {
                "prompt": messages(rec["prompt"], "prompt", "user")
                if rec.get("prompt") is not None
                else None,
                "response": messages(comp, "completion"),
                "label": as_bool(ctx.value("label", rec.get("label")), "label"),
                "model": opt_str(rec, "model"),
                "meta": meta_of(rec, ("prompt", "completion", "label", "model")),
            },
        )


class TRLStepwiseReader(RecordReader):
    name = "trl-stepwise"
    description = "TRL stepwise supervision: prompt/completions/labels (one label per step)"
    kinds = (Kind.BINARY,)
    example = '{"prompt": "2+2?", "completions": ["2+2 is 4.", "So 4."], "labels": [true, true]}'

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        if {"completions", "labels"} <= set(rec) and isinstance(rec.get("completions"), list):
            return "prompt/completions/labels lists (TRL stepwise supervision)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        steps, labels = need(rec, "completions"), need(rec, "labels")
        if not isinstance(steps, list) or not isinstance(labels, list):
            raise RowError("completions", "completions and labels must be lists")
        if len(steps) != len(labels):
            raise RowError("labels", f"{len(labels)} labels for {len(steps)} completions")
        prompt = messages(need(rec, "prompt"), "prompt", "user")
        meta = meta_of(rec, ("prompt", "completions", "labels"))
        group = ctx.source + ":" + str(len(ctx.extra.setdefault("groups", [])))
        ctx.extra["groups"].append(None)
        done: list[str] = []
        out = []
        for i, (s, lab) in enumerate(zip(steps, labels, strict=True)):
            if not isinstance(s, str):
                raise RowError("completions", f"step {i} is {type_name(s)}, not a string")
            out.append(
                (
                    Kind.BINARY,
                    {
                        "id": f"{group}:{i}",
                        "prompt": prompt,
                        "response": s,
                        "label": as_bool(lab, "labels"),
                        "meta": {
                            **meta,
                            "step": str(i),
                            "steps": str(len(steps)),
                            "group": group,
                            "previous_steps": "\n".join(done),
                        },
                    },
                )
            )
            done.append(s)
        return out


register_reader(TRLStepwiseReader())
register_reader(TRLUnpairedReader())
register_reader(TRLPreferenceReader())


# ---------------------------------------------------------------------------------------
# Vectorised path for the common case: exactly prompt/chosen/rejected columns in Parquet or
# JSON lines, all strings or all message lists. Anything else goes per row.


def _as_messages(col: pa.ChunkedArray, role: str) -> pa.Array | None:
    from prefkit.io.readers._arrow import const as _const

    arr = col.combine_chunks()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        n = len(arr)
        values = pa.StructArray.from_arrays(
            [_const(role, n), arr.cast(pa.string())], ["role", "content"]
        )
        return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), values).cast(
            MESSAGES
        )
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        vt = arr.type.value_type
        if not pa.types.is_struct(vt) or {f.name for f in vt} != {"role", "content"}:
            return None
        flat = pc.list_flatten(arr)
        if pc.struct_field(flat, "role").null_count or pc.struct_field(flat, "content").null_count:
            return None
        try:
            return arr.cast(MESSAGES)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return None


def fast_trl(path: Path, options: ReadOptions, reader: RecordReader) -> ReadResult | None:
    """Batch by batch (memory ~ the output table), or None when it needs the per-row path."""
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    from prefkit.io.readers._records import GZIP_MAGIC, container

    if options.strict or options.value_maps:
        return None
    kind = container(path)
    source = options.source or default_source(path, reader.name)
    tables: list[pa.Table] = []
    start = 0
    try:
        if kind == "parquet":
            batches: Iterable[pa.RecordBatch] = pq.ParquetFile(path).iter_batches(batch_size=65536)
        elif kind == "jsonl":
            with path.open("rb") as fh:
                gz = fh.read(2) == GZIP_MAGIC
            stream = pa.input_stream(str(path), compression="gzip" if gz else None)
            batches = pj.open_json(stream, read_options=pj.ReadOptions(block_size=4 << 20))
        else:
            return None
        for batch in batches:
            got = _trl_batch(pa.Table.from_batches([batch]), start, source)
            if got is None:
                return None
            tables.append(got)
            start += batch.num_rows
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError):
        return None
    if not tables:
        return None
    out = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return ReadResult({Kind.COMPARISONS: out}, [], rows_in=start)


def _trl_batch(table: pa.Table, start: int, source: str) -> pa.Table | None:
    from prefkit.io.readers._arrow import const as _const
    from prefkit.io.readers._arrow import prompt_ids as _prompt_ids

    if set(table.column_names) != {"prompt", "chosen", "rejected"} or table.num_rows == 0:
        return None
    if any(table.column(n).null_count for n in table.column_names):
        return None
    prompt = _as_messages(table.column("prompt"), "user")
    chosen = _as_messages(table.column("chosen"), "assistant")
    rejected = _as_messages(table.column("rejected"), "assistant")
    if prompt is None or chosen is None or rejected is None:
        return None
    n = table.num_rows
    flat = pc.list_flatten(prompt)
    roles = pc.struct_field(flat, "role")
    contents = pc.struct_field(flat, "content")
    if pc.any(pc.match_substring_regex(contents, r"[\x00-\x08\x0e-\x1f\x85]")).as_py():
        return None
    lengths = np.asarray(pc.list_value_length(prompt).to_numpy(zero_copy_only=False), np.int64)
    if (lengths == 0).any():
        return None
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    lines = pa.array(np.arange(start + 1, start + n + 1)).cast(pa.string())
    empty_meta = pa.array([[]], pa.map_(pa.string(), pa.string()))
    cols = {
        "id": pc.binary_join_element_wise(source + ":", lines, ""),
        "prompt": prompt,
        "prompt_id": _prompt_ids(roles, contents, offsets, prompt),
        "source": _const(source, n),
        "meta": empty_meta.take(pa.array(np.zeros(n, dtype=np.int32))),
        "response_a": chosen,
        "response_b": rejected,
        "outcome": _const("a", n),
    }
    return conform(pa.table(cols), Kind.COMPARISONS)
