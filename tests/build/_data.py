"""Real data sets as canonical tables for the build tests, read through prefkit's io stage
(`prefkit.io.detect.read`): a reader regression fails these tests, it is never papered over by
parsing the file here. The raw-file helpers (`pandalm_raw`, `finegrained_raw`, ...) are the
tests' independent references, never a substitute input.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from prefkit.schema import Kind, from_rows
from tests.conftest import DATA

PANDALM = DATA / "pandalm_testset" / "data" / "testset-v1.json"
FINEGRAINED = DATA / "finegrained_rlhf_qa_feedback" / "tasks" / "qa_feedback" / "data"
FINEGRAINED_DEV = FINEGRAINED / "dev_feedback.json"
HH_HARMLESS = DATA / "hh_rlhf_harmless_base_test" / "harmless-base" / "test.jsonl.gz"

FG_PAIRS = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


def _read(path: Path, reader: str, kind: Kind) -> tuple[pa.Table, int]:
    """`kind` table of `path` as prefkit reads it, and the number of rows it rejected; fails
    when the expected reader does not pick the file or gives no such table."""
    from prefkit.io.detect import read

    res = read(path)
    assert res.reader == reader, f"{path.name}: read by {res.reader!r}, expected {reader!r}"
    assert kind in res.tables, f"{path.name}: the {reader} reader gave no {kind.value} table"
    table: pa.Table = res.tables[kind]
    return table, len(res.rejects)


def pandalm_raw() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(PANDALM.read_text(encoding="utf-8"))
    return data


def pandalm_votes() -> tuple[pa.Table, int]:
    """PandaLM human test set: 999 pairs x 3 annotators (0 = tie, 1 = response1, 2 = 2).

    Returns the comparisons and the number of source records rejected on reading."""
    return _read(PANDALM, "pandalm", Kind.COMPARISONS)


PANDALM_LABEL = {0: "tie", 1: "a", 2: "b"}


def pandalm_majority(records: list[dict[str, Any]] | None = None) -> dict[str, str | None]:
    """Independent reference from the raw file: idx -> 'a'/'b'/'tie' when at least two of the
    three annotators agree, None when all three differ."""
    out: dict[str, str | None] = {}
    for x in pandalm_raw() if records is None else records:
        c = Counter(PANDALM_LABEL[x[f"annotator{k}"]] for k in (1, 2, 3))
        top, n = c.most_common(1)[0]
        out[str(x["idx"])] = top if n >= 2 else None
    return out


def finegrained_raw() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(FINEGRAINED_DEV.read_text(encoding="utf-8"))
    return data


def finegrained_ranks(pref: list[int]) -> list[int] | None:
    """Ranks of the four predictions implied by the six pairwise preferences (1 = first
    preferred, 2 = second, 0 = no preference), or None when they are not a ranking."""
    wins = [0.0] * 4
    for (i, j), p in zip(FG_PAIRS, pref, strict=True):
        if p == 1:
            wins[i] += 1
        elif p == 2:
            wins[j] += 1
        else:
            wins[i] += 0.5
            wins[j] += 0.5
    ranks = [1 + sum(w2 > w for w2 in wins) for w in wins]
    for (i, j), p in zip(FG_PAIRS, pref, strict=True):
        want = {1: ranks[i] < ranks[j], 2: ranks[i] > ranks[j], 0: ranks[i] == ranks[j]}[p]
        if not want:
            return None
    return ranks


def finegrained_rankings() -> pa.Table:
    """FineGrainedRLHF qa-feedback dev: 4 predictions per question ranked by annotators."""
    return _read(FINEGRAINED_DEV, "finegrained-rlhf", Kind.RANKINGS)[0]


def hh_harmless() -> pa.Table:
    """Anthropic HH-RLHF harmless-base test: chosen vs rejected, multi-turn prompts."""
    return _read(HH_HARMLESS, "hh-rlhf", Kind.COMPARISONS)[0]


def generated_ratings(n_prompts: int = 60, per_prompt: int = 12, seed: int = 0) -> pa.Table:
    """A latent-quality world: per prompt a mean and spread, scores drawn normal (known)."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_prompts):
        mu, sd = rng.normal(0, 1), rng.uniform(0.5, 2)
        for r in range(per_prompt):
            rows.append(
                {
                    "prompt": f"prompt number {p}: explain topic {p * 7 % 13}",
                    "response": f"response {r} to prompt {p}",
                    "model": f"m{r % 4}",
                    "score": float(np.round(rng.normal(mu, sd), 3)),
                    "source": "generated",
                }
            )
    return from_rows(rows, Kind.RATINGS)


def simulated_ratings(n_prompts: int = 60, per_prompt: int = 12, seed: int = 0) -> pa.Table:
    """Ratings from the simulator's `ratings` scenario."""
    from prefkit.simulate import simulate

    sim = simulate("ratings", size=n_prompts * per_prompt, seed=seed)
    table: pa.Table = sim.tables[Kind.RATINGS]
    return table
