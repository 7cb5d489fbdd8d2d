"""TRL dataset formats (https://huggingface.co/docs/trl/dataset_formats).

- preference: `prompt` (optional) / `chosen` / `rejected`, standard (strings) or conversational
  (message lists); without `prompt` the shared prefix of chosen and rejected is the prompt
  (implicit prompt). -> comparisons, outcome `a` (response_a = chosen).
- unpaired preference (KTO): `prompt` / `completion` / `label` (bool) -> binary.
- stepwise supervision: `prompt` / `completions` (list) / `labels` (list of bool) -> one binary
  row per step, `meta.step` / `meta.steps` and the earlier steps appended to the prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from prefkit.io.base import ReadOptions, register_reader
from prefkit.io.readers._arrow import (
    EMPTY,
    UNSAFE,
    bools,
    const,
    ints,
    may_hold_unsafe,
    numpy_ints,
    offsets_of,
    prompt_ids,
    scalar,
)
from prefkit.io.readers._base import (
    Context,
    RecordReader,
    Row,
    RowError,
    messages,
    meta_of,
    need,
    opt_str,
    shared_prefix,
)
from prefkit.io.readers._fast import (
    Decline,
    as_text,
    messages_of,
    meta_map,
    plain,
    plain_prompt_ids,
    valid,
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


#: score columns that come with chosen/rejected (H4 ultrafeedback_binarized, ...) -> meta
SCORE_COLUMNS = (
    ("score_chosen", "score_rejected"),
    ("chosen_score", "rejected_score"),
    ("chosen_rating", "rejected_rating"),
    ("chosen-rating", "rejected-rating"),
)
MODEL_COLUMNS = (("chosen_model", "rejected_model"), ("chosen-model", "rejected-model"))


def split_prompt(
    prompt: Any, c: Any, r: Any
) -> tuple[list[dict[str, str]] | None, list[dict[str, str]], list[dict[str, str]], str | None]:
    """Prompt, chosen, rejected as messages, TRL's way (`maybe_extract_prompt`): leading
    messages both responses repeat — the prompt's own, or each other's — belong to the
    prompt, and the responses start at the first turn where they differ (at an assistant
    turn). A string prompt that is not the last user turn of the extracted prompt is
    returned as the last value (kept in meta), never lost."""
    mc, mr = messages(c, "chosen"), messages(r, "rejected")
    p = None if prompt is None else messages(prompt, "prompt", "user")
    if p is None and isinstance(c, str) and isinstance(r, str):
        head, a, b = _implicit_strings(c, r)
        return (
            (messages(head, "prompt", "user") if head else None),
            messages(a, "chosen"),
            messages(b, "rejected"),
            None,
        )
    if not (isinstance(c, list) and isinstance(r, list)):
        return p, mc, mr, None
    k = len(p or [])
    repeated = k > 0 and mc[:k] == p and mr[:k] == p and len(mc) > k and len(mr) > k
    if repeated:
        mc, mr = mc[k:], mr[k:]
    n = shared_prefix(mc, mr)
    if n == 0:
        return (p or None), mc, mr, None
    shared = mc[:n]
    if repeated or not isinstance(prompt, str):
        return (p or []) + shared, mc[n:], mr[n:], None
    # a string prompt beside conversations that carry it (TRL ignores the column)
    users = [m["content"] for m in shared if m["role"] == "user"]
    kept = None if users and users[-1] == prompt else prompt
    return shared, mc[n:], mr[n:], kept


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
        prompt, ra, rb, kept = split_prompt(rec.get("prompt"), c, r)
        used = ["prompt", "chosen", "rejected", "id"]
        row: dict[str, Any] = {
            "prompt": prompt,
            "response_a": ra,
            "response_b": rb,
            "outcome": "a",
        }
        if isinstance(rec.get("id"), str) and rec["id"]:
            row["id"] = rec["id"]  # the source's own id
        for side, names in (
            ("model_a", [m[0] for m in MODEL_COLUMNS]),
            ("model_b", [m[1] for m in MODEL_COLUMNS]),
        ):
            row[side] = next((opt_str(rec, k) for k in names if rec.get(k) is not None), None)
            used += names
        meta = meta_of(rec, used)
        for sa, sb in SCORE_COLUMNS:  # scores of chosen / rejected: meta score_a / score_b
            if sa in rec or sb in rec:
                meta.pop(sa, None)
                meta.pop(sb, None)
                for key, col in (("score_a", sa), ("score_b", sb)):
                    if rec.get(col) is not None:
                        meta[key] = (
                            str(rec[col]) if not isinstance(rec[col], float) else repr(rec[col])
                        )
        if kept is not None:
            meta["prompt"] = kept
        # a `margin` column (RewardTrainer's, or prefkit pairs' vote/score margin) is not a
        # directional strength: it stays in meta, never becomes `strength`
        row["meta"] = meta
        yield Kind.COMPARISONS, row

    def plan(self, schema: pa.Schema, container: str, options: ReadOptions) -> TRLPlan | None:
        names = set(schema.names)
        if not {"prompt", "chosen", "rejected"} <= names or names & SPECIAL:
            return None
        return TRLPlan(tuple(n for n in schema.names if n not in ("prompt", "chosen", "rejected")))


PAIRS_KEYS = frozenset({"chosen", "rejected", "tie", "weight", "margin", "id", "prompt_id"})
PAIR_NUMBERS = ("weight", "margin", "n_votes", "agreement")


def _number_text(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


class PrefkitPairsReader(RecordReader):
    """What `prefkit pairs` writes (the pairs table, or `--to trl` with margin/weight/tie):
    read back as comparisons, a tie flag as outcome `tie`, weight/margin/votes in `meta`."""

    name = "prefkit-pairs"
    description = (
        "prefkit pairs output (pairs table or --to trl): chosen/rejected + tie/weight/margin"
        " -> comparisons (tie kept as the outcome, weight/margin in meta)"
    )
    example = (
        '{"prompt": "...", "chosen": "...", "rejected": "...", "margin": 1.0, "weight": 0.5,'
        ' "tie": true, "id": "...", "prompt_id": "..."}'
    )

    keys = PAIRS_KEYS
    why = "chosen/rejected + tie/weight/margin/id/prompt_id (written by prefkit pairs)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        prompt = rec.get("prompt")
        tie = rec.get("tie")
        if tie is not None and not isinstance(tie, bool):
            tie = as_bool(tie, "tie")
        meta_in = rec.get("meta")
        if isinstance(meta_in, list):  # a map read from Parquet: (key, value) pairs
            meta_in = dict(meta_in)
        meta: dict[str, str] = {str(k): str(v) for k, v in (meta_in or {}).items()}
        for key in PAIR_NUMBERS:
            if rec.get(key) is not None:
                meta[key] = _number_text(rec[key])
        if rec.get("source_ids") is not None:
            meta["source_ids"] = json.dumps(list(rec["source_ids"]), ensure_ascii=False)
        row: dict[str, Any] = {
            "id": str(need(rec, "id")),
            "prompt_id": str(need(rec, "prompt_id")),
            "prompt": None if prompt in (None, "", []) else messages(prompt, "prompt", "user"),
            "response_a": messages(need(rec, "chosen"), "chosen"),
            "response_b": messages(need(rec, "rejected"), "rejected"),
            "model_a": opt_str(rec, "chosen_model"),
            "model_b": opt_str(rec, "rejected_model"),
            "outcome": "tie" if tie else "a",
            "aspect": opt_str(rec, "aspect"),
            "meta": meta,
        }
        if "source" in rec:  # the pairs table's own (null stays null)
            row["source"] = opt_str(rec, "source")
        yield Kind.COMPARISONS, row


#: the columns of `prefkit pairs --to kto` (ids are prefkit's own: kept)
KTO_EXPORT = frozenset({"prompt", "completion", "label", "id", "prompt_id"})


class TRLUnpairedReader(RecordReader):
    name = "trl-unpaired"
    description = "TRL unpaired preference / KTO: prompt/completion/label (bool)"
    kinds = (Kind.BINARY,)
    example = '{"prompt": "The sky is", "completion": " blue.", "label": true}'

    keys = frozenset({"completion", "label"})
    why = "prompt/completion/label (TRL unpaired / KTO)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        comp = need(rec, "completion")
        export = set(rec) == KTO_EXPORT  # prefkit's own: its empty prompt is no prompt
        empty: tuple[Any, ...] = (None, "", []) if export else (None,)
        row: dict[str, Any] = {
            "prompt": messages(rec["prompt"], "prompt", "user")
            if rec.get("prompt") not in empty
            else None,
            "response": messages(comp, "completion"),
            "label": as_bool(ctx.value("label", rec.get("label")), "label"),
            "model": opt_str(rec, "model"),
        }
        used: tuple[str, ...] = ("prompt", "completion", "label", "model")
        if export and rec["id"] is not None and rec["prompt_id"] is not None:
            row["id"], row["prompt_id"] = str(rec["id"]), str(rec["prompt_id"])
            used += ("id", "prompt_id")
        row["meta"] = meta_of(rec, used)
        yield Kind.BINARY, row


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


register_reader(PrefkitPairsReader())
register_reader(TRLStepwiseReader())
register_reader(TRLUnpairedReader())
register_reader(TRLPreferenceReader())


# ---------------------------------------------------------------------------------------
# Vectorised path: prompt/chosen/rejected columns (strings or message lists, other columns to
# meta) batch by batch; rows whose messages need the per-row rules go through `convert`.

#: columns with a meaning of their own: such files are read per row
SPECIAL = {
    "id",
    "tie",
    "weight",
    "margin",
    *(c for pair in SCORE_COLUMNS + MODEL_COLUMNS for c in pair),
}


def _messages(col: pa.Array, role: str) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """Strings (one message of `role`) or message lists as canonical messages, and the rows
    that are exactly what `messages` would give (no null role or content, not empty)."""
    n = len(col)
    if pa.types.is_string(col.type):
        return messages_of(col, role), valid(col)
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        raise Decline(f"{col.type}")
    vt = col.type.value_type
    if not pa.types.is_struct(vt) or {f.name for f in vt} != {"role", "content"}:
        raise Decline(f"{col.type}")
    try:
        msgs = col.cast(MESSAGES)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise Decline(f"{col.type}") from None
    ok = valid(msgs)
    lengths = numpy_ints(pc.fill_null(pc.list_value_length(msgs), scalar(0)))
    ok &= lengths > 0
    flat = pc.list_flatten(msgs)
    bad = pc.or_(
        pc.is_null(pc.struct_field(flat, "role")), pc.is_null(pc.struct_field(flat, "content"))
    )
    if pc.any(bad).as_py():
        parents = numpy_ints(pc.list_parent_indices(msgs))
        ok &= np.bincount(parents, weights=bools(bad), minlength=n) == 0
    return msgs, ok


def _starts_with_assistant(msgs: pa.Array) -> npt.NDArray[np.bool_]:
    """Rows whose first message is the assistant's (empty or null lists: False)."""
    n = len(msgs)
    lengths = numpy_ints(pc.fill_null(pc.list_value_length(msgs), scalar(0)))
    lengths = lengths * valid(msgs)
    has = lengths > 0
    out = np.zeros(n, bool)
    if has.any():
        is_a = bools(
            pc.fill_null(
                pc.equal(pc.struct_field(pc.list_flatten(msgs), "role"), scalar("assistant")),
                scalar(False),
            )
        )
        starts = np.concatenate([[0], np.cumsum(lengths)])[:-1]
        out[has] = is_a[starts[has]]
    return out


class TRLPlan:
    """prompt/chosen/rejected -> comparisons (outcome a), extra columns to meta."""

    kind = Kind.COMPARISONS

    def __init__(self, extra: tuple[str, ...]) -> None:
        self.extra = extra

    def build(
        self, batch: pa.RecordBatch, start: int, source: str, container: str
    ) -> tuple[pa.Table, npt.NDArray[np.bool_]]:
        n = batch.num_rows
        prompt, ok = _messages(plain(batch.column("prompt")), "user")
        chosen, okc = _messages(plain(batch.column("chosen")), "assistant")
        rejected, okr = _messages(plain(batch.column("rejected")), "assistant")
        ok &= okc & okr
        if not pa.types.is_string(batch.column("chosen").type):
            # responses that repeat the prompt or each other: per row (`split_prompt`)
            ok &= _starts_with_assistant(chosen) & _starts_with_assistant(rejected)
            two = pc.and_(
                pc.greater(pc.list_value_length(chosen), scalar(1)),
                pc.greater(pc.list_value_length(rejected), scalar(1)),
            )
            ok &= ~bools(pc.fill_null(two, scalar(False)))
        flat = pc.list_flatten(prompt)
        contents = pc.struct_field(flat, "content")
        if may_hold_unsafe(contents) and pc.any(pc.match_substring_regex(contents, UNSAFE)).as_py():
            parents = numpy_ints(pc.list_parent_indices(prompt))
            hit = bools(pc.fill_null(pc.match_substring_regex(contents, UNSAFE), scalar(False)))
            ok &= np.bincount(parents, weights=hit, minlength=n) == 0
        if not ok.all():
            keep = ints(np.flatnonzero(ok), np.int64)
            batch = batch.take(keep)
            prompt, chosen, rejected = prompt.take(keep), chosen.take(keep), rejected.take(keep)
        m = batch.num_rows
        p_col = plain(batch.column("prompt"))
        if pa.types.is_string(p_col.type):  # one user message each: hash each text once
            pids = plain_prompt_ids(p_col)
        else:
            lengths = numpy_ints(pc.list_value_length(prompt))  # rows kept: not null
            flat = pc.list_flatten(prompt)
            pids = prompt_ids(
                pc.struct_field(flat, "role"),
                pc.struct_field(flat, "content"),
                offsets_of(lengths),
                prompt,
            )
        nums = ints(np.flatnonzero(ok) + (start + 1), np.int64).cast(pa.string())
        entries = [
            (c, as_text(plain(batch.column(c)), "json", container != "jsonl")) for c in self.extra
        ]
        cols = {
            "id": pc.binary_join_element_wise(scalar(source + ":"), nums, EMPTY),
            "prompt": prompt,
            "prompt_id": pids,
            "source": const(source, m),
            "meta": meta_map(entries, m),
            "response_a": chosen,
            "response_b": rejected,
            "outcome": const("a", m),
        }
        return conform(pa.table(cols), Kind.COMPARISONS), ok
