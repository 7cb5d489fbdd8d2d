"""FineGrainedRLHF QA feedback: a ranking of the 4 predictions per question (from the 6
pairwise `preference` votes) and a critique of `prediction 1` (error spans + correction)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prefkit.io.base import register_reader
from prefkit.io.readers._base import Context, RecordReader, Row, RowError, meta_of, need, need_str
from prefkit.io.readers._records import type_name
from prefkit.schema import Kind

PREDICTIONS = ("prediction 1", "prediction 2", "prediction 3", "prediction 4")
PAIRS = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


def ranks_from_votes(votes: Sequence[int]) -> list[int]:
    """Ranks (1 = best, ties share the lowest rank) of 4 items from the 6 pairwise votes
    (1vs2, 1vs3, 1vs4, 2vs3, 2vs4, 3vs4; 1 = first preferred, 2 = second, 0 = none):
    items are ordered by Copeland score (wins + half ties)."""
    score = [0.0] * 4
    for (i, j), v in zip(PAIRS, votes, strict=True):
        if v == 1:
            score[i] += 1
        elif v == 2:
            score[j] += 1
        else:
            score[i] += 0.5
            score[j] += 0.5
    return [1 + sum(s > x for s in score) for x in score]


class FineGrainedReader(RecordReader):
    name = "finegrained-rlhf"
    description = "FineGrainedRLHF QA feedback: rankings of 4 predictions + critiques with spans"
    kinds = (Kind.RANKINGS, Kind.CRITIQUES)
    example = (
        '{"question": "...", "prediction 1": "...", ..., "prediction 4": "...",'
        ' "feedback": {"errors": [{"error type": "Irrelevant", "start": 283, "end": 401}],'
        ' "corrected-prediction": "..."}, "preference": [0, 1, 2, 1, 0, 2]}'
    )

    keys = frozenset({"question", "prediction 1", "preference"})
    why = "question + prediction 1..4 + preference (FineGrainedRLHF QA feedback)"

    def convert(self, rec: Mapping[str, Any], ctx: Context) -> Iterable[Row]:
        question = need_str(rec, "question")
        preds = [need_str(rec, k) for k in PREDICTIONS]
        votes = need(rec, "preference")
        if not isinstance(votes, list) or len(votes) != 6:
            raise RowError("preference", f"expected a list of 6 votes, got {type_name(votes)}")
        if any(v not in (0, 1, 2) or isinstance(v, bool) for v in votes):
            raise RowError("preference", f"votes must be 0, 1 or 2, got {votes}")
        used = ("question", *PREDICTIONS, "preference", "feedback")
        meta = meta_of(rec, used)
        meta["preference"] = json.dumps(votes)
        yield (
            Kind.RANKINGS,
            {
                "prompt": question,
                "responses": preds,
                "ranks": ranks_from_votes(votes),
                "meta": meta,
            },
        )
        fb = rec.get("feedback")
        if isinstance(fb, Mapping):
            spans = []
            for i, e in enumerate(fb.get("errors") or []):
                if not isinstance(e, Mapping):
                    raise RowError("feedback", f"error {i} is {type_name(e)}, not an object")
                s, t = e.get("start"), e.get("end")
                if not isinstance(s, int) or not isinstance(t, int) or s > t:
                    raise RowError("feedback", f"error {i} has a bad span {s}..{t}")
                spans.append({"start": s, "end": t, "label": str(e.get("error type") or "")})
            cmeta = {
                "errors": json.dumps(fb.get("errors") or [], ensure_ascii=False),
                "missing-info": json.dumps(fb.get("missing-info") or [], ensure_ascii=False),
            }
            yield (
                Kind.CRITIQUES,
                {
                    "prompt": question,
                    "response": preds[0],
                    "spans": spans,
                    "correction": fb.get("corrected-prediction"),
                    "meta": cmeta,
                },
            )


register_reader(FineGrainedReader())
