"""Real data sets as canonical tables for the build tests.

Each loader uses `prefkit.io.detect.read` when the io stage has a reader that produces the
needed kind, and otherwise parses the raw file here (into canonical rows with `from_rows`).
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from prefkit.io.base import InputError
from prefkit.schema import Kind, from_rows
from tests.conftest import DATA

PANDALM = DATA / "pandalm_testset" / "data" / "testset-v1.json"
FINEGRAINED = DATA / "finegrained_rlhf_qa_feedback" / "tasks" / "qa_feedback" / "data"
FINEGRAINED_DEV = FINEGRAINED / "dev_feedback.json"
HH_HARMLESS = DATA / "hh_rlhf_harmless_base_test" / "harmless-base" / "test.jsonl.gz"

FG_PAIRS = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


def _via_io(path: Path, kind: Kind) -> pa.Table | None:
    from prefkit.io.detect import read

    try:
        res = read(path)
    except InputError:
        return None
    if res.reader == "canonical" or kind not in res.tables:
        return None
    table: pa.Table = res.tables[kind]
    return table


def pandalm_raw() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(PANDALM.read_text(encoding="utf-8"))
    return data


def _as_text(v: Any) -> str:
    """Six PandaLM records have a JSON `true` as a response: read as the text "true"."""
    return v if isinstance(v, str) else json.dumps(v)


def pandalm_votes() -> tuple[pa.Table, int]:
    """PandaLM human test set: 999 pairs x 3 annotators (0 = tie, 1 = response1, 2 = 2).

    Returns the comparisons and the number of source records rejected on reading."""
    from prefkit.io.detect import read

    try:
        res = read(PANDALM)
        if res.reader != "canonical" and Kind.COMPARISONS in res.tables:
            return res.tables[Kind.COMPARISONS], len(res.rejects)
    except InputError:
        pass
    label = {0: "tie", 1: "a", 2: "b"}
    rows = []
    for x in pandalm_raw():
        prompt = x["instruction"] + ("\n\n" + x["input"] if x["input"].strip() else "")
        model_a, model_b = x["cmp_key"].split("_", 1)
        for k in (1, 2, 3):
            rows.append(
                {
                    "id": f"pandalm-{x['idx']}-{k}",
                    "prompt": prompt,
                    "response_a": _as_text(x["response1"]),
                    "response_b": _as_text(x["response2"]),
                    "model_a": model_a,
                    "model_b": model_b,
                    "annotator": f"annotator{k}",
                    "outcome": label[x[f"annotator{k}"]],
                    "source": "pandalm",
                    "meta": {"pair_id": str(x["idx"])},
                }
            )
    return from_rows(rows, Kind.COMPARISONS), 0


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
    for path in (FINEGRAINED_DEV, FINEGRAINED):
        got = _via_io(path, Kind.RANKINGS)
        if got is not None:
            return got
    rows = []
    for n, x in enumerate(finegrained_raw()):
        ranks = finegrained_ranks(x["preference"])
        if ranks is None:  # intransitive preferences are no ranking
            continue
        rows.append(
            {
                "id": f"fg-{n}",
                "prompt": x["question"],
                "responses": [x[f"prediction {k}"] for k in range(1, 5)],
                "ranks": ranks,
                "source": "finegrained_rlhf",
            }
        )
    return from_rows(rows, Kind.RANKINGS)


_TURN = re.compile(r"\n\n(Human|Assistant): ")


def _hh_messages(text: str) -> list[dict[str, str]]:
    parts = _TURN.split(text)
    msgs = []
    for k in range(1, len(parts) - 1, 2):
        msgs.append(
            {"role": "user" if parts[k] == "Human" else "assistant", "content": parts[k + 1]}
        )
    return msgs


def hh_harmless() -> pa.Table:
    """Anthropic HH-RLHF harmless-base test: chosen vs rejected transcripts."""
    got = _via_io(HH_HARMLESS, Kind.COMPARISONS)
    if got is not None:
        return got
    return hh_harmless_turns()


def hh_harmless_turns() -> pa.Table:
    """HH-RLHF harmless-base test parsed here into multi-turn prompts (user/assistant turns)
    and the last assistant turns as the two responses."""
    rows = []
    with gzip.open(HH_HARMLESS, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            rec = json.loads(line)
            chosen, rejected = _hh_messages(rec["chosen"]), _hh_messages(rec["rejected"])
            rows.append(
                {
                    "id": f"hh-{n}",
                    "prompt": chosen[:-1],
                    "response_a": chosen[-1:],
                    "response_b": rejected[-1:],
                    "outcome": "a",
                    "source": "hh-rlhf/harmless-base",
                }
            )
    return from_rows(rows, Kind.COMPARISONS)


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
    """Ratings from the simulator's `ratings` scenario when it exists, else generated."""
    try:
        from prefkit.simulate import simulate  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return generated_ratings(n_prompts, per_prompt, seed)
    sim = simulate("ratings", size=n_prompts * per_prompt, seed=seed)
    table: pa.Table = sim.tables[Kind.RATINGS]
    return table


def readable(path: Path, kind: Kind, fallback: pa.Table, tmp: Path) -> Path:
    """`path` itself when `prefkit.io.detect.read` reads it as `kind`, else the fallback table
    saved as canonical Parquet under `tmp`."""
    if _via_io(path, kind) is not None:
        return path
    from prefkit.io.canonical import save

    return save(fallback, tmp / f"{path.stem}.canonical.parquet", kind)
