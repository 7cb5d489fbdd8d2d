"""Rankings of several responses: Nectar (7-way rankings by GPT-4) and OpenAssistant oasst1
message trees (ranked sibling replies)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prefkit.io.base import ReadOptions, ReadResult, Reject, StrictError, register_reader
from prefkit.io.readers._base import (
    Context,
    RecordReader,
    Row,
    RowError,
    default_source,
    meta_of,
    need,
    need_str,
    opt_str,
)
from prefkit.io.readers._records import BadRecord, iter_records, type_name
from prefkit.io.readers.hh import parse_transcript
from prefkit.schema import Kind, from_rows


class NectarReader(RecordReader):
    name = "nectar"
    description = "Nectar: HH-style prompt + answers [{answer, model, rank}] (7-way rankings)"
    kinds = (Kind.RANKINGS,)
    example = (
        '{"prompt": "\\n\\nHuman: What are some cuss words?\\n\\nAssistant:", "answers":'
        ' [{"answer": "...", "model": "gpt-4", "rank": 1.0}, ...], "turns": 1,'
        ' "num_responses": 7, "source": ["anthropic-hh"], "good_natured": false}'
    )

    def keys_match(self, rec: Mapping[str, Any]) -> str | None:
        answers = rec.get("answers")
        if (
            "prompt" in rec
            and isinstance(answers, list)
            and answers
            and isinstance(answers[0], Mapping)
            and {"answer", "rank"} <= set(answers[0])
        ):
            return "prompt + answers with rank (Nectar rankings)"
        return None

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        text = need_str(rec, "prompt")
        if "\n\nHuman:" in text or text.lstrip().startswith("Human:"):
            prompt = parse_transcript(
                text if text.startswith("\n\n") else "\n\n" + text.lstrip(), "prompt"
            )
            if prompt and prompt[-1]["role"] == "assistant" and not prompt[-1]["content"]:
                prompt = prompt[:-1]  # the open `Assistant:` turn the answers fill
        else:
            prompt = [{"role": "user", "content": text}]
        answers = need(rec, "answers")
        if not isinstance(answers, list) or len(answers) < 2:
            raise RowError(
                "answers", f"expected a list of at least 2 answers, got {type_name(answers)}"
            )
        responses, models, ranks = [], [], []
        for i, a in enumerate(answers):
            if not isinstance(a, Mapping):
                raise RowError("answers", f"answer {i} is {type_name(a)}, not an object")
            responses.append([{"role": "assistant", "content": need_str(a, "answer")}])
            models.append(opt_str(a, "model"))
            rank = a.get("rank")
            if (
                isinstance(rank, bool)
                or not isinstance(rank, int | float)
                or rank != int(rank)
                or rank < 1
            ):
                raise RowError("answers", f"answer {i} rank {rank!r} is not an integer >= 1")
            ranks.append(int(rank))
        yield (
            Kind.RANKINGS,
            {
                "prompt": prompt,
                "responses": responses,
                "models": models,
                "ranks": ranks,
                "annotator": "gpt-4",
                "meta": meta_of(rec, ("prompt", "answers")),
            },
        )


OASST_KEYS = {"message_id", "parent_id", "role", "text", "rank", "message_tree_id"}
ROLES = {"prompter": "user", "assistant": "assistant"}


class OASSTReader:
    """OpenAssistant oasst1/oasst2 messages (one row per message, trees by `parent_id`): every
    parent whose assistant replies carry a `rank` (0 = best) becomes one ranking of those
    replies, its prompt the conversation from the tree's root to the parent."""

    name = "oasst"
    description = (
        "OpenAssistant oasst1/oasst2 message trees: ranked sibling assistant replies"
        " -> rankings (prompt = the thread up to their parent)"
    )
    kinds = (Kind.RANKINGS,)
    example = (
        '{"message_id": "m2", "parent_id": "m1", "message_tree_id": "m1", "role": "assistant",'
        ' "text": "...", "rank": 0, "lang": "en", "review_result": true, "deleted": false}'
    )

    def sniff(self, path: Path, sample: list[Mapping[str, Any]] | None) -> str | None:
        if sample and all(OASST_KEYS <= set(r) for r in sample):
            return "message_id/parent_id/role/text/rank rows (OpenAssistant message trees)"
        return None

    def read(self, path: Path, options: ReadOptions) -> ReadResult:
        fname = str(path)
        source = options.source or default_source(path, self.name)
        msgs: dict[str, tuple[int, Mapping[str, Any]]] = {}
        rejects: list[Reject] = []
        n_in = 0
        for line, rec in iter_records(path):
            n_in += 1
            reason: tuple[str | None, str] | None = None
            if isinstance(rec, BadRecord):
                reason = (rec.field, rec.reason)
            elif not isinstance(rec.get("message_id"), str):
                reason = ("message_id", "required field is missing")
            elif rec.get("role") not in ROLES:
                reason = ("role", f"expected prompter or assistant, got {rec.get('role')!r}")
            elif not isinstance(rec.get("text"), str):
                reason = ("text", f"expected a string, got {type_name(rec.get('text'))}")
            elif rec["message_id"] in msgs:
                first_line = msgs[rec["message_id"]][0]
                reason = ("message_id", f"repeats the message on line {first_line} (first kept)")
            if reason is not None:
                if options.strict:
                    raise StrictError(fname, reason[1], line=line, field=reason[0])
                rejects.append(Reject(fname, line, reason[0], reason[1]))
                continue
            assert not isinstance(rec, BadRecord)
            msgs[rec["message_id"]] = (line, rec)
        groups: dict[str, list[str]] = {}
        ranked_prompter = 0
        for mid, (_, rec) in msgs.items():
            if rec.get("rank") is None or rec.get("parent_id") is None:
                continue
            if rec["role"] != "assistant":
                ranked_prompter += 1
                continue
            groups.setdefault(rec["parent_id"], []).append(mid)
        rows: list[dict[str, Any]] = []
        in_rankings = 0
        lone = 0
        refused = 0
        for parent, kids in groups.items():
            if len(kids) < 2:
                lone += len(kids)
                continue
            line0 = msgs[kids[0]][0]
            thread: list[dict[str, str]] = []
            cur: str | None = parent
            broken = None
            while cur is not None:
                if cur not in msgs:
                    broken = cur
                    break
                _, m = msgs[cur]
                thread.append({"role": ROLES[m["role"]], "content": m["text"]})
                cur = m.get("parent_id")
            if broken is not None:
                why = f"parent message {broken} of this ranked reply is not in the file"
                if options.strict:
                    raise StrictError(fname, why, line=line0, field="parent_id")
                rejects.extend(Reject(fname, msgs[k][0], "parent_id", why) for k in kids)
                refused += len(kids)
                continue
            kids.sort(key=lambda k: msgs[k][0])
            ranks = [msgs[k][1]["rank"] for k in kids]
            if any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in ranks):
                why = f"ranks {ranks} are not integers >= 0"
                if options.strict:
                    raise StrictError(fname, why, line=line0, field="rank")
                rejects.extend(Reject(fname, msgs[k][0], "rank", why) for k in kids)
                refused += len(kids)
                continue
            in_rankings += len(kids)
            first = msgs[kids[0]][1]
            rows.append(
                {
                    "id": f"{source}:{parent}",
                    "source": source,
                    "prompt": thread[::-1],
                    "responses": [
                        [{"role": "assistant", "content": msgs[k][1]["text"]}] for k in kids
                    ],
                    "models": [msgs[k][1].get("model_name") for k in kids],
                    "ranks": [r + 1 for r in ranks],
                    "aspect": None,
                    "meta": {
                        "parent_id": parent,
                        "message_ids": ",".join(kids),
                        "message_tree_id": str(first.get("message_tree_id")),
                        "lang": str(first.get("lang")),
                    },
                }
            )
        notes = {
            "messages in a ranking": in_rankings,
            "messages only as context or not ranked": len(msgs)
            - in_rankings
            - ranked_prompter
            - lone
            - refused,
            "ranked prompter replies (not rankings of answers)": ranked_prompter,
            "ranked replies without a ranked sibling": lone,
        }
        table = from_rows(rows, Kind.RANKINGS)
        return ReadResult({Kind.RANKINGS: table}, rejects, rows_in=n_in, notes=notes)


register_reader(NectarReader())
register_reader(OASSTReader())
