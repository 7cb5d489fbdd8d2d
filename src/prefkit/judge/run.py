"""`judge run`: label comparisons (or responses) with LLM judges, as canonical tables.

    from prefkit.judge.run import Judge, Options, judge_table
    out = judge_table(comparisons, [Judge(endpoint, load_template("pairwise"))], client)
    out.table, out.rejects, out.summary

Modes:

- `pairwise`: each pair is judged with the template; by default in both orders (the row's
  a shown first, then b). Agreeing orders give the verdict; disagreeing orders give `tie`
  (FastChat's MT-Bench rule), counted as `inconsistent`; `keep_both` keeps the two votes
  as separate rows with their `shown_first`.
- `reference`: the same with a reference answer taken from `meta[reference_key]`.
- `rubric`: each distinct response is rated 1..N per aspect (UltraFeedback-style) -> one
  canonical rating per response and aspect (`aspect` null for `overall`); `prefkit pairs`
  builds pairs from them.

Several votes on one pair in the input (e.g. three human annotators) are judged once: pairs
are grouped as `prefkit pairs --from-votes` groups them (`meta.pair_id`, else the texts).
Answers that carry no verdict are asked again once with a short reminder of the format; if
that fails too, the row is a reject with the raw answer. `strength` is P(a better) from the
token log-probabilities of the verdict letter when the endpoint returns them, else from
Arena-Hard grades (`>>`: 1.0 / 0.0, `>`: 0.75 / 0.25, `=`: 0.5), else null.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from prefkit.io.base import Reject
from prefkit.judge.client import (
    BudgetExhausted,
    Call,
    Client,
    Endpoint,
    Failure,
    JudgeError,
    Result,
    Stats,
)
from prefkit.judge.parse import first_probability, parse_pairwise, parse_scores
from prefkit.judge.templates import Template
from prefkit.schema import Kind, from_rows, messages_text

NUDGE_PAIR = (
    "Your reply did not end with a final verdict in the required format. Reply again with "
    "only the final verdict, exactly in the format given in the instructions."
)
NUDGE_RUBRIC = (
    "Your reply did not give every rating in the required format. Reply again with only the "
    "final lines, one per aspect, exactly in this form (an integer from {lo} to {hi}):\n"
    "{lines}"
)


@dataclass(frozen=True)
class Judge:
    endpoint: Endpoint
    template: Template

    @property
    def annotator(self) -> str:
        return f"judge:{self.endpoint.model}"


@dataclass(frozen=True)
class Options:
    mode: str = "pairwise"  # pairwise | rubric | reference
    swap: bool = True
    keep_both: bool = False
    aspects: tuple[str, ...] | None = None  # rubric: default from the template
    scale: tuple[int, int] = (1, 5)
    reference_key: str = "reference"
    temperature: float = 0.0
    max_tokens: int | None = None
    logprobs: bool = True


@dataclass
class JudgeOutput:
    kind: Kind
    table: pa.Table
    rejects: list[Reject]
    summary: dict[str, Any]
    complete: bool = True
    error: str | None = None


@dataclass
class _Task:
    """One call to make: judge j on item i in order o (0 = a first, 1 = b first)."""

    judge: int
    item: int
    order: int
    call: Call
    answer: Result | None = None
    failure: str | None = None
    text: str = ""
    nudged: bool = False
    calls: list[Result] = field(default_factory=list)


def conversation_text(prompt: Any) -> str:
    """The prompt as text: a single user message as is, a conversation with role labels."""
    msgs = list(prompt or [])
    if len(msgs) == 1 and msgs[0].get("role") in ("user", None):
        return str(msgs[0].get("content") or "")
    return "\n\n".join(
        f"{str(m.get('role') or 'user').capitalize()}: {m.get('content') or ''}" for m in msgs
    )


def _meta(m: Any) -> dict[str, str]:
    return dict(m) if m else {}


def _pairs(table: pa.Table) -> tuple[list[int], list[int]]:
    """Rows that stand for each distinct pair (the first vote of each group), and the group
    sizes."""
    from prefkit.build.pairs import vote_groups

    _, _, groups = vote_groups(table)
    return [g[0] for g in groups], [len(g) for g in groups]


class _Runner:
    def __init__(
        self,
        client: Client,
        judges: Sequence[Judge],
        opts: Options,
        source_file: str,
        status: Callable[[str], None] | None,
    ) -> None:
        self.client, self.judges, self.opts = client, list(judges), opts
        self.file = source_file
        self.status = status or (lambda s: None)
        self.rejects: list[Reject] = []
        self.stats: list[Stats] = []
        self.error: str | None = None
        self.budget = False

    def reject(self, line: int | None, field_: str, reason: str, raw: str | None = None) -> None:
        self.rejects.append(Reject(self.file, line, field_, reason, raw))

    def execute(self, tasks: list[_Task], label: str) -> None:
        """Send the tasks' calls; fill answers/failures. Stops (sets `error`) on JudgeError."""
        if not tasks or self.error:
            return
        self.status(label)
        try:
            run = self.client.run([t.call for t in tasks])
            results: list[Result | Failure | None] = run.results
            self.stats.append(run.stats)
        except JudgeError as e:
            self.error = str(e)
            self.budget = isinstance(e, BudgetExhausted)
            results = [*e.results, *([None] * (len(tasks) - len(e.results)))]
            if e.stats is not None:
                self.stats.append(e.stats)
        for t, r in zip(tasks, results, strict=True):
            if isinstance(r, Result):
                t.answer = r
                t.calls.append(r)
                t.text = r.content if not t.text else f"{t.text}\n\n[asked again]\n{r.content}"
            elif isinstance(r, Failure):
                t.failure = r.reason
            else:
                t.failure = None
                t.answer = None

    def nudge(self, t: _Task, text: str) -> None:
        assert t.answer is not None
        t.nudged = True
        c = t.call
        t.call = Call(
            c.endpoint,
            c.messages + (("assistant", t.answer.content), ("user", text)),
            c.temperature,
            c.max_tokens,
            c.logprobs,
        )
        t.answer = None


def _call(judge: Judge, messages: tuple[tuple[str, str], ...], o: Options) -> Call:
    return Call(judge.endpoint, messages, o.temperature, o.max_tokens, o.logprobs)


def _order_strength(t: _Task, v: Any, logprob: bool) -> float | None:
    """P(a better) from one order's verdict (None if it has no graded signal)."""
    p_first = None
    if logprob and t.answer is not None and v.form != "arena":
        p_first = first_probability(t.answer.logprobs, t.answer.content, v.start)
    if p_first is None:
        if v.grade is None:
            return None
        p_first = {"first": 0.5 + v.grade / 4, "second": 0.5 - v.grade / 4}.get(v.winner, 0.5)
    return p_first if t.order == 0 else 1.0 - p_first


def _to_ab(winner: str, order: int) -> str:
    if winner == "first":
        return "a" if order == 0 else "b"
    if winner == "second":
        return "b" if order == 0 else "a"
    return winner


def judge_table(
    table: pa.Table,
    judges: Sequence[Judge],
    client: Client,
    options: Options | None = None,
    source_file: str = "",
    status: Callable[[str], None] | None = None,
) -> JudgeOutput:
    """Label `table` (canonical comparisons; ratings/binary too in rubric mode) with every
    judge. Returns the judges' votes, rejects and a summary; on a fatal endpoint error or a
    spent budget, the votes completed so far with `complete=False` and `error`."""
    o = options or Options()
    if o.mode not in ("pairwise", "rubric", "reference"):
        raise ValueError(f"unknown mode {o.mode!r}")
    if not judges:
        raise ValueError("no judge given")
    for j in judges:
        j.template.check(o.mode)
    t0 = time.perf_counter()
    r = _Runner(client, judges, o, source_file, status)
    if o.mode == "rubric":
        out = _rubric(table, r)
    else:
        out = _pairwise(table, r)
    calls = _sum_stats(r.stats)
    out.summary.update(
        {
            "mode": o.mode,
            "judges": [j.annotator for j in judges],
            "templates": {
                j.annotator: {"name": j.template.name, "sha256": j.template.sha256} for j in judges
            },
            "calls": calls,
            "rejected": len(r.rejects),
            "complete": r.error is None,
            "elapsed_s": round(time.perf_counter() - t0, 3),
        }
    )
    if r.error:
        out.summary["error"] = r.error
        out.summary["budget_reached"] = r.budget
    out.rejects = r.rejects
    out.complete = r.error is None
    out.error = r.error
    return out


def _sum_stats(stats: list[Stats]) -> dict[str, Any]:
    keys = ("total", "unique", "cached", "made", "failed", "retries", "skipped", "empty",
            "tokens_in", "tokens_out")  # fmt: skip
    d: dict[str, Any] = {k: int(sum(getattr(s, k) for s in stats)) for k in keys}
    d["cost_usd"] = round(sum(s.cost for s in stats), 8)
    d["waited_s"] = round(sum(s.waited_s for s in stats), 3)
    el = sum(s.elapsed_s for s in stats)
    d["elapsed_s"] = round(el, 3)
    d["calls_per_s"] = round(d["made"] / el, 2) if el > 0 else None
    d["logprobs_refused"] = any(s.logprobs_refused for s in stats)
    return d


# ---------------------------------------------------------------------------------------
# pairwise and reference


def _items(heads: list[int], rows: list[dict[str, Any]], r: _Runner) -> list[dict[str, Any]]:
    """The pairs to judge among the rows `heads` (rows without text or reference: rejects)."""
    o = r.opts
    items: list[dict[str, Any]] = []
    for h, row in zip(heads, rows, strict=True):
        ta, tb = row.get("response_a"), row.get("response_b")
        if ta is None or tb is None:
            side = "response_a" if ta is None else "response_b"
            r.reject(h + 1, side, "no response text to judge")
            continue
        meta = _meta(row.get("meta"))
        ref = None
        if o.mode == "reference":
            ref = meta.get(o.reference_key)
            if not ref:
                r.reject(h + 1, f"meta.{o.reference_key}", "reference mode: no reference answer")
                continue
        items.append(
            {"row": row, "line": h + 1, "meta": meta, "prompt": conversation_text(row["prompt"]),
             "a": messages_text(ta), "b": messages_text(tb), "reference": ref}
        )  # fmt: skip
    return items


def _judge_chunk(
    items: list[dict[str, Any]],
    r: _Runner,
    late: dict[int, list[Reject]],
    out_rows: dict[int, list[dict[str, Any]]],
    counts: Counter[str],
) -> tuple[int, int]:
    """Judge one chunk of pairs: their votes go to `out_rows` (per judge), rejects of the
    answers to `late` (per judge), outcome counts to `counts`. Returns (answers that were
    unparseable at first, answers unparseable after asking again)."""
    o = r.opts
    orders = (0, 1) if o.swap else (0,)
    tasks: list[_Task] = []
    for ji, j in enumerate(r.judges):
        for ii, it in enumerate(items):
            for od in orders:
                first, second = (it["a"], it["b"]) if od == 0 else (it["b"], it["a"])
                var: dict[str, Any] = {"prompt": it["prompt"], "response_a": first,
                                       "response_b": second}  # fmt: skip
                if o.mode == "reference":
                    var["reference"] = it["reference"]
                tasks.append(_Task(ji, ii, od, _call(j, j.template.render(**var), o)))
    r.execute(tasks, f"judging {len(items)} pairs x {len(r.judges)} judge(s) x {len(orders)}")
    verdicts: dict[int, Any] = {}
    again: list[int] = []
    for k, t in enumerate(tasks):
        if t.answer is None:
            continue
        v = parse_pairwise(t.answer.content)
        if v is None:
            r.nudge(t, NUDGE_PAIR)
            again.append(k)
        else:
            verdicts[k] = v
    n_unparsed = len(again)
    r.execute([tasks[k] for k in again], f"asking again for {len(again)} unparseable answers")
    for k in again:
        t = tasks[k]
        if t.answer is not None:
            v = parse_pairwise(t.answer.content)
            if v is not None:
                verdicts[k] = v
    # assemble
    by: dict[tuple[int, int], dict[int, tuple[_Task, Any]]] = {}
    for k, t in enumerate(tasks):
        it = items[t.item]
        tag = (
            f"judge:{r.judges[t.judge].endpoint.model} ({'a' if t.order == 0 else 'b'} shown first)"
        )
        if k in verdicts:
            by.setdefault((t.judge, t.item), {})[t.order] = (t, verdicts[k])
        elif t.failure is not None:
            late[t.judge].append(Reject(r.file, it["line"], tag, f"no answer: {t.failure}"))
        elif len(t.calls) >= 2:
            late[t.judge].append(
                Reject(r.file, it["line"], tag, "no verdict in the answer (asked twice)",
                       t.text[:4000])
            )  # fmt: skip
    for (ji, ii), got in sorted(by.items()):
        it, j = items[ii], r.judges[ji]
        base = it["row"]
        pair_id = it["meta"].get("pair_id") or str(base.get("id"))
        ab = {od: (_to_ab(v.winner, od), _order_strength(t, v, o.logprobs), t)
              for od, (t, v) in got.items()}  # fmt: skip
        common = {
            "prompt": base.get("prompt"), "prompt_id": base.get("prompt_id"),
            "response_a": base.get("response_a"), "response_b": base.get("response_b"),
            "model_a": base.get("model_a"), "model_b": base.get("model_b"),
            "source": base.get("source"), "aspect": base.get("aspect"),
            "annotator": j.annotator,
        }  # fmt: skip
        meta = dict(it["meta"]) | {
            "pair_id": pair_id,
            "input_id": str(base.get("id")),
            "judge_model": j.endpoint.model,
            "mode": o.mode,
            "template": j.template.name,
            "template_sha256": j.template.sha256,
        }
        if o.keep_both or not o.swap:
            for od, (oc, s, t) in sorted(ab.items()):
                counts[oc] += 1
                out_rows[ji].append(
                    common | {
                        "id": f"{base.get('id')}:{j.annotator}" + (f":{'ab' if od == 0 else 'ba'}" if o.swap else ""),
                        "outcome": oc, "strength": s, "shown_first": "a" if od == 0 else "b",
                        "rationale": t.text, "meta": meta | _usage([t]) | {"order": "ab" if od == 0 else "ba", "asked_again": str(t.nudged).lower()},
                    }
                )  # fmt: skip
            if o.swap and len(ab) == 2:
                counts["inconsistent" if ab[0][0] != ab[1][0] else "consistent"] += 1
            elif o.swap:
                counts["single_order"] += 1
            continue
        ts = [x[2] for _, x in sorted(ab.items())]
        strengths = [x[1] for x in ab.values() if x[1] is not None]
        if len(ab) == 2:
            (oa, _, ta), (ob, _, tb) = ab[0], ab[1]
            consistent = oa == ob
            outcome = oa if consistent else "tie"
            counts["consistent" if consistent else "inconsistent"] += 1
            rationale = f"[a shown first]\n{ta.text}\n\n[b shown first]\n{tb.text}"
            extra = {"verdict_ab": oa, "verdict_ba": ob, "consistent": str(consistent).lower()}
        else:
            ((od, (outcome, _, t)),) = ab.items()
            counts["single_order"] += 1
            rationale = t.text
            key = "verdict_ab" if od == 0 else "verdict_ba"
            extra = {key: outcome, "consistent": "single" if o.swap else "n/a"}
        counts[outcome] += 1
        strength = sum(strengths) / len(strengths) if strengths and outcome != "both_bad" else None
        out_rows[ji].append(
            common | {
                "id": f"{base.get('id')}:{j.annotator}", "outcome": outcome, "strength": strength,
                "shown_first": None, "rationale": rationale,
                "meta": meta | extra | _usage(ts) | {"asked_again": str(any(t.nudged for t in ts)).lower()},
            }
        )  # fmt: skip
    unparseable = sum(1 for k in again if k not in verdicts and len(tasks[k].calls) >= 2)
    return n_unparsed, unparseable


CHUNK_ITEMS = 1024  # pairs judged per round of calls: memory holds one chunk's prompts/answers


def _pairwise(table: pa.Table, r: _Runner) -> JudgeOutput:
    """Every distinct pair of `table`, judged `CHUNK_ITEMS` pairs at a time (the rendered
    prompts and answers of one chunk in memory); votes, rejects and counts in the order of
    judging everything at once (judge by judge, pair by pair)."""
    o = r.opts
    if "response_a" not in table.column_names:
        raise ValueError("pairwise judging needs comparisons (response_a/response_b)")
    heads, sizes = _pairs(table)
    early: list[Reject] = []  # rows without text or reference, in input order
    late: dict[int, list[Reject]] = {ji: [] for ji in range(len(r.judges))}
    parts: dict[int, list[pa.Table]] = {ji: [] for ji in range(len(r.judges))}
    counts: Counter[str] = Counter()
    n_items = n_unparsed = unparseable = 0
    before, r.rejects = r.rejects, early
    for start in range(0, len(heads), CHUNK_ITEMS):
        chunk = heads[start : start + CHUNK_ITEMS]
        items = _items(chunk, table.take(pa.array(chunk, pa.int64())).to_pylist(), r)
        n_items += len(items)
        if r.error is not None:  # a fatal error or the budget: no more calls
            continue
        out_rows: dict[int, list[dict[str, Any]]] = {ji: [] for ji in parts}
        first, again = _judge_chunk(items, r, late, out_rows, counts)
        n_unparsed += first
        unparseable += again
        for ji, rows in out_rows.items():
            if rows:
                parts[ji].append(from_rows(rows, Kind.COMPARISONS))
    r.rejects = before + early + [x for ji in sorted(late) for x in late[ji]]
    tables = [t for ji in sorted(parts) for t in parts[ji]]
    table_out = pa.concat_tables(tables) if tables else from_rows([], Kind.COMPARISONS)
    summary = {
        "rows_in": table.num_rows,
        "pairs": n_items,
        "votes_per_pair_in": dict(Counter(sizes)) if sizes else {},
        "rows_out": table_out.num_rows,
        "outcomes": {k: counts.get(k, 0) for k in ("a", "b", "tie", "both_bad")},
        "swap": o.swap,
        "keep_both": o.keep_both,
        "consistent": counts.get("consistent", 0),
        "inconsistent": counts.get("inconsistent", 0),
        "single_order": counts.get("single_order", 0),
        "unparseable_first_answer": n_unparsed,
        "unparseable": unparseable,
        "with_strength": int(table_out.column("strength").drop_null().__len__()),
    }
    return JudgeOutput(Kind.COMPARISONS, table_out, [], summary)


def _usage(ts: list[_Task]) -> dict[str, str]:
    calls = [c for t in ts for c in t.calls]
    return {
        "tokens_in": str(sum(c.tokens_in for c in calls)),
        "tokens_out": str(sum(c.tokens_out for c in calls)),
        "latency_s": f"{sum(c.latency_s for c in calls):.4f}",
        "cost_usd": f"{sum(c.cost for c in calls):.8f}",
        "calls": str(len(calls)),
    }


# ---------------------------------------------------------------------------------------
# rubric


def _rubric(table: pa.Table, r: _Runner) -> JudgeOutput:
    o = r.opts
    lo, hi = o.scale
    cols = table.column_names
    items: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, str | None], int] = {}
    sides = (
        [("response_a", "model_a"), ("response_b", "model_b")]
        if "response_a" in cols
        else [("response", "model")]
    )
    for i, row in enumerate(table.to_pylist()):
        for col, mcol in sides:
            resp = row.get(col)
            if resp is None:
                r.reject(i + 1, col, "no response text to rate")
                continue
            text = messages_text(resp)
            key = (str(row.get("prompt_id")), text, row.get(mcol))
            if key in seen:
                continue
            seen[key] = len(items)
            items.append({"row": row, "line": i + 1, "response": resp, "text": text,
                          "model": row.get(mcol), "side": col, "prompt": conversation_text(row.get("prompt"))})  # fmt: skip
    tasks: list[_Task] = []
    aspects_of: list[tuple[str, ...]] = []
    for ji, j in enumerate(r.judges):
        aspects = o.aspects or j.template.aspects or ("overall",)
        aspects_of.append(tuple(aspects))
        for ii, it in enumerate(items):
            msgs = j.template.render(prompt=it["prompt"], response=it["text"],
                                     aspects=list(aspects), scale_min=lo, scale_max=hi)  # fmt: skip
            tasks.append(_Task(ji, ii, 0, _call(j, msgs, o)))
    r.execute(tasks, f"rating {len(items)} responses x {len(r.judges)} judge(s)")
    scores: dict[int, dict[str, float]] = {}
    again: list[int] = []
    for k, t in enumerate(tasks):
        if t.answer is None:
            continue
        asp = list(aspects_of[t.judge])
        got = parse_scores(t.answer.content, asp, lo, hi)
        scores[k] = got
        if len(got) < len(asp):
            lines = "\n".join(f"{a}: <rating>" for a in asp)
            r.nudge(t, NUDGE_RUBRIC.format(lo=lo, hi=hi, lines=lines))
            again.append(k)
    n_unparsed = len(again)
    r.execute([tasks[k] for k in again], f"asking again for {len(again)} incomplete ratings")
    for k in again:
        t = tasks[k]
        if t.answer is not None:
            asp = list(aspects_of[t.judge])
            scores[k] = scores.get(k, {}) | parse_scores(t.answer.content, asp, lo, hi)
    out_rows: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for k, t in enumerate(tasks):
        it, j = items[t.item], r.judges[t.judge]
        tag = f"judge:{j.endpoint.model} ({it['side']})"
        if t.failure is not None and not t.calls:
            r.reject(it["line"], tag, f"no answer: {t.failure}")
            continue
        if not t.calls:
            continue
        got = scores.get(k, {})
        missing = [a for a in aspects_of[t.judge] if a not in got]
        if t.nudged and len(t.calls) < 2 and t.failure is None:
            missing = []  # the run stopped before it could ask again: not a reject yet
        if missing:
            r.reject(
                it["line"], tag, f"no rating for {', '.join(missing)} (asked twice)", t.text[:4000]
            )
        base = it["row"]
        meta = _meta(base.get("meta")) | {
            "input_id": str(base.get("id")), "side": it["side"], "judge_model": j.endpoint.model,
            "mode": "rubric", "template": j.template.name, "template_sha256": j.template.sha256,
            "asked_again": str(t.nudged).lower(),
        } | _usage([t])  # fmt: skip
        for a, s in got.items():
            counts[a] += 1
            out_rows.append(
                {
                    "id": f"{base.get('id')}:{it['side']}:{j.annotator}:{a}",
                    "prompt": base.get("prompt"), "prompt_id": base.get("prompt_id"),
                    "annotator": j.annotator, "source": base.get("source"),
                    "aspect": None if a == "overall" else a, "rationale": t.text,
                    "meta": meta, "response": it["response"], "model": it["model"],
                    "score": s, "scale_min": float(lo), "scale_max": float(hi),
                }
            )  # fmt: skip
    table_out = from_rows(out_rows, Kind.RATINGS)
    summary = {
        "rows_in": table.num_rows,
        "responses": len(items),
        "rows_out": table_out.num_rows,
        "ratings_per_aspect": dict(counts),
        "scale": [lo, hi],
        "unparseable_first_answer": n_unparsed,
    }
    return JudgeOutput(Kind.RATINGS, table_out, [], summary)
