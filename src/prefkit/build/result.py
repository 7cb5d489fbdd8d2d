"""The one result type of every pair builder, the pairs/unpaired schemas, and the accounting.

Every builder turns *candidates* (the pairs its strategy implies) into emitted pairs or a
counted drop reason, so that ``candidates == pairs_out + sum(dropped.values())`` always holds,
and accounts for every input row (``rows_in == rows_used + sum(rows_unused.values())``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from prefkit.schema import MESSAGES, content_id, messages_text, normalize_text

TiePolicy = Literal["drop", "half", "keep"]
TIE_POLICIES: tuple[str, ...] = ("drop", "half", "keep")

PAIRS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("chosen", MESSAGES),
        pa.field("rejected", MESSAGES),
        pa.field("chosen_model", pa.string()),
        pa.field("rejected_model", pa.string()),
        pa.field("margin", pa.float64()),
        pa.field("weight", pa.float64()),
        pa.field("n_votes", pa.int32()),
        pa.field("agreement", pa.float64()),
        pa.field("tie", pa.bool_()),
        pa.field("source", pa.string()),
        pa.field("aspect", pa.string()),
        pa.field("source_ids", pa.list_(pa.string())),
        pa.field("meta", pa.map_(pa.string(), pa.string())),
    ]
)

UNPAIRED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("completion", MESSAGES),
        pa.field("label", pa.bool_(), nullable=False),
        pa.field("model", pa.string()),
        pa.field("source", pa.string()),
        pa.field("source_ids", pa.list_(pa.string())),
    ]
)

# Every reason a candidate pair (or an input row) can produce no output pair.
REASONS: tuple[str, ...] = (
    "missing_text",  # a response (or the prompt's responses) has no text: identity-only data
    "identical_responses",  # both responses are the same text after normalize_text
    "tie_dropped",  # the label (or scores/ranks) is a tie and the policy is `drop`
    "both_bad",  # the label is both_bad: neither response may be a chosen
    "no_majority",  # votes have no strict majority
    "below_agreement",  # the winning share is below min_agreement
    "below_margin",  # |score/rank difference| or vote margin below min_margin
    "single_response",  # the prompt has only one (distinct) response
    "no_opposite_label",  # binary: the prompt has only thumbs-up or only thumbs-down
    "missing_aspect",  # ratings with aspect weights: a weighted aspect is missing
)


def text_key(
    messages: Sequence[Mapping[str, Any]] | None, cache: dict[str, str] | None = None
) -> str | None:
    """Normalized text of a message list (None when there is no text); `cache` memoizes the
    normalization of repeated texts (the same response judged by several annotators)."""
    if messages is None:
        return None
    raw = messages_text(messages)
    if cache is None:
        return normalize_text(raw)
    got = cache.get(raw)
    if got is None:
        got = cache[raw] = normalize_text(raw)
    return got


@dataclass(frozen=True)
class BuildResult:
    """A built table (pairs, or unpaired rows for KTO) and its report (all counts)."""

    table: pa.Table
    report: dict[str, Any]

    @property
    def pairs_out(self) -> int:
        return int(self.report["pairs_out"])


class Collector:
    """Accumulates emitted pairs and counted drops for one build."""

    def __init__(self, builder: str, rows_in: int, ties: str, params: Mapping[str, Any]) -> None:
        if ties not in TIE_POLICIES:
            raise ValueError(f"ties must be one of {TIE_POLICIES}, got {ties!r}")
        self.builder = builder
        self.rows_in = rows_in
        self.ties = ties
        self.params = dict(params)
        self.candidates = 0
        self.pairs_out = 0
        self.dropped: Counter[str] = Counter()
        self.row_reason: dict[int, str] = {}
        self.rows_used: set[int] = set()
        self.rows: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}

    # -- accounting ----------------------------------------------------------------------
    def drop(self, reason: str, rows: Iterable[int] = (), n: int = 1) -> None:
        """Count `n` candidates dropped for `reason`; remember it for their source rows."""
        assert reason in REASONS, reason
        self.candidates += n
        self.dropped[reason] += n
        for r in rows:
            self.row_reason.setdefault(r, reason)

    def unused_row(self, row: int, reason: str) -> None:
        """A row that never became a candidate (e.g. no text): counted at row level only."""
        assert reason in REASONS, reason
        self.row_reason.setdefault(row, reason)

    # -- emission ------------------------------------------------------------------------
    def offer(
        self,
        *,
        prompt: Any,
        prompt_id: str,
        a: Any,
        b: Any,
        winner: str,
        rows: Sequence[int],
        source_ids: Sequence[str],
        margin: float | None = None,
        weight: float = 1.0,
        n_votes: int | None = None,
        agreement: float | None = None,
        min_margin: float | None = None,
        min_agreement: float | None = None,
        model_a: str | None = None,
        model_b: str | None = None,
        source: str | None = None,
        aspect: str | None = None,
        meta: Mapping[str, str] | None = None,
        key_a: str | None = None,
        key_b: str | None = None,
    ) -> bool:
        """One candidate pair: emit it (winner `a`/`b`, or `tie` under the tie policy) or
        count why not (winner `none` = no majority, `both_bad` is never emitted).

        Checks in order: missing text, identical responses, no majority, both_bad, agreement,
        tie policy, margin. Returns whether anything was emitted."""
        ka = key_a if key_a is not None else text_key(a)
        kb = key_b if key_b is not None else text_key(b)
        if ka is None or kb is None:
            self.drop("missing_text", rows)
            return False
        if ka == kb:
            self.drop("identical_responses", rows)
            return False
        if winner == "none":
            self.drop("no_majority", rows)
            return False
        if winner == "both_bad":
            self.drop("both_bad", rows)
            return False
        if min_agreement is not None and agreement is not None and agreement < min_agreement:
            self.drop("below_agreement", rows)
            return False
        if winner == "tie":
            if self.ties == "drop":
                self.drop("tie_dropped", rows)
                return False
        elif min_margin is not None and margin is not None and abs(margin) < min_margin:
            self.drop("below_margin", rows)
            return False
        self.candidates += 1
        self.pairs_out += 1
        self.rows_used.update(rows)
        common = {
            "prompt": prompt,
            "prompt_id": prompt_id,
            "margin": None if margin is None else float(margin),
            "n_votes": n_votes,
            "agreement": agreement,
            "source": source,
            "aspect": aspect,
            "source_ids": list(source_ids),
            "meta": dict(meta) if meta else None,
        }
        if winner == "b":
            a, b, model_a, model_b, ka, kb = b, a, model_b, model_a, kb, ka
        if winner == "tie" and self.ties == "half":
            self._row(common, (a, b), (model_a, model_b), (ka, kb), 0.5, True)
            self._row(common, (b, a), (model_b, model_a), (kb, ka), 0.5, True)
        else:
            self._row(common, (a, b), (model_a, model_b), (ka, kb), weight, winner == "tie")
        return True

    def _row(
        self,
        common: Mapping[str, Any],
        responses: tuple[Any, Any],
        models: tuple[str | None, str | None],
        keys: tuple[str, str],
        weight: float,
        tie: bool,
    ) -> None:
        """Append one output row: (chosen, rejected) responses, models and normalized texts."""
        row = dict(common)
        row.update(
            chosen=responses[0],
            rejected=responses[1],
            chosen_model=models[0],
            rejected_model=models[1],
            weight=float(weight),
            tie=tie,
        )
        row["id"] = content_id("pair", common["prompt_id"], keys[0], keys[1], common["source_ids"])
        self.rows.append(row)

    # -- result --------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        unused: Counter[str] = Counter()
        for r in range(self.rows_in):
            if r not in self.rows_used:
                unused[self.row_reason.get(r, "not_selected")] += 1
        rep: dict[str, Any] = {
            "builder": self.builder,
            "ties": self.ties,
            "params": self.params,
            "rows_in": self.rows_in,
            "candidates": self.candidates,
            "pairs_out": self.pairs_out,
            "rows_out": len(self.rows),
            "dropped": {k: int(self.dropped.get(k, 0)) for k in REASONS},
            "rows_used": len(self.rows_used),
            "rows_unused": dict(sorted(unused.items())),
        }
        rep.update(self.extra)
        assert rep["candidates"] == rep["pairs_out"] + sum(rep["dropped"].values())
        return rep

    def result(self) -> BuildResult:
        table = pa.Table.from_pylist(self.rows, schema=PAIRS_SCHEMA)
        return BuildResult(table, self.report())


def empty_pairs() -> pa.Table:
    return PAIRS_SCHEMA.empty_table()
