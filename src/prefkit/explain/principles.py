"""Principles: candidate rules tested by an LLM judge on every vote, scored by how many votes
they reconstruct, and the smallest set that reconstructs the most (as Inverse Constitutional
AI does: Findeis et al., "Inverse Constitutional AI: Compressing Preferences into Principles",
ICLR 2025, https://github.com/rdnfn/icai).

- Candidates come from a file (one per line) or are proposed by the LLM from a sample of
  votes (`propose`: "a human preferred response X; which principles explain it?"), then
  de-duplicated (case and punctuation, then MiniLM cosine >= 0.85 when the encoder is
  installed), keeping the most often proposed.
- Testing (`test`): for every vote and principle the judge sees the prompt and both responses,
  in both orders, and answers which response better follows the principle, or C when it does
  not apply or both follow it equally (`[[A]]`, `[[B]]`, `[[C]]`, parsed by the judge stage's
  verdict parser). A principle votes for a response only when both orders agree.
- Scoring (`score`), over decisive human votes: coverage (share where the principle picks a
  response), accuracy (share of those where it picks the human's choice), Wilson intervals;
  a principle whose accuracy is below 1/2 is followed in reverse ("opposes").
- Set (`select`): the set votes on every pair by weighted majority, each principle weighted
  by the log-odds of its accuracy (a precise narrow principle outvotes a broad mediocre one).
  Greedy forward selection among principles whose accuracy interval excludes 1/2 (in their
  direction), each step adding the one that most increases the votes reconstructed minus
  those got wrong (on a tie, one followed as written before one followed in reverse, then
  the earlier candidate), stopping when nothing adds a vote; then every member whose removal
  loses nothing is dropped, least accurate first: the smallest set found that reconstructs
  the most votes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]

SYSTEM = (
    "You check which of two AI assistant responses better follows a given principle. "
    "Judge only the principle, nothing else; the order of the responses must not matter."
)
TEST_TEMPLATE = """Principle: {principle}

[User prompt]
{prompt}

[The start of Response A]
{a}
[The end of Response A]

[The start of Response B]
{b}
[The end of Response B]

Which response better follows the principle? If the principle does not apply to these \
responses, or both follow it equally, the answer is C. Give one short sentence of reasoning, \
then end with exactly one of: [[A]], [[B]], [[C]]."""

PROPOSE_TEMPLATE = """[User prompt]
{prompt}

[The start of Response A]
{a}
[The end of Response A]

[The start of Response B]
{b}
[The end of Response B]

A human preferred Response {winner}. Propose up to {k} short, general principles that would \
explain this preference and could apply to other prompts too. Write each as one sentence \
starting with "Select the response that". Answer with a JSON list of strings only."""

CLIP = 3000  # characters of each text sent to the judge
NEAR_DUPLICATE = 0.85


def read_principles(path: Path) -> list[str]:
    """One principle per line; blank lines and lines starting with # are skipped; exact
    duplicates (ignoring case and surrounding space) kept once."""
    out: list[str] = []
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        key = _norm(s)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9 ]+", "", re.sub(r"\s+", " ", s.lower())).strip()


def _clip(s: str) -> str:
    return s if len(s) <= CLIP else s[:CLIP] + " [...]"


def test_messages(
    principle: str, prompt: str, first: str, second: str
) -> tuple[tuple[str, str], ...]:
    return (
        ("system", SYSTEM),
        (
            "user",
            TEST_TEMPLATE.format(
                principle=principle, prompt=_clip(prompt), a=_clip(first), b=_clip(second)
            ),
        ),
    )


def propose_messages(
    prompt: str, a: str, b: str, winner: str, k: int
) -> tuple[tuple[str, str], ...]:
    return (
        (
            "user",
            PROPOSE_TEMPLATE.format(
                prompt=_clip(prompt), a=_clip(a), b=_clip(b), winner=winner, k=k
            ),
        ),
    )


Ask = Callable[[list[tuple[tuple[str, str], ...]]], list[str | None]]


def _verdict(text: str | None) -> str | None:
    """first | second | none (C, tie, both bad) | None (no verdict)."""
    from prefkit.judge.parse import parse_pairwise

    v = parse_pairwise(text)
    if v is None:
        return None
    return v.winner if v.winner in ("first", "second") else "none"


@dataclass(frozen=True)
class Tested:
    principles: list[str]
    votes: I64  # (P, n): 0 = picks a, 1 = picks b, 2 = none (not applicable / orders disagree)
    unparsed: I64  # (P,) answers without a verdict


def test(
    principles: Sequence[str], prompts: list[str], a: list[str], b: list[str], ask: Ask
) -> Tested:
    """Ask the judge, for every principle and vote, in both orders (see module doc)."""
    msgs: list[tuple[tuple[str, str], ...]] = []
    for pr in principles:
        for q, x, y in zip(prompts, a, b, strict=True):
            msgs.append(test_messages(pr, q, x, y))
            msgs.append(test_messages(pr, q, y, x))
    answers = ask(msgs)
    n = len(prompts)
    votes = np.full((len(principles), n), 2, dtype=np.int64)
    unparsed = np.zeros(len(principles), dtype=np.int64)
    for p in range(len(principles)):
        for i in range(n):
            j = 2 * (p * n + i)
            ab, ba = _verdict(answers[j]), _verdict(answers[j + 1])
            unparsed[p] += (ab is None) + (ba is None)
            if ab == "first" and ba == "second":
                votes[p, i] = 0
            elif ab == "second" and ba == "first":
                votes[p, i] = 1
    return Tested(list(principles), votes, unparsed)


def wilson(k: float, n: float, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import norm

    if n <= 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(0.5 + level / 2))
    ph = k / n
    den = 1 + z * z / n
    c = (ph + z * z / (2 * n)) / den
    h = z * np.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den
    return float(max(0.0, c - h)), float(min(1.0, c + h))


def score(t: Tested, outcome: I64, level: float = 0.95) -> list[dict[str, Any]]:
    """Per principle: coverage, accuracy (with Wilson intervals) and direction over the
    decisive votes (`outcome` 0 = a, 1 = b, 2 = tie)."""
    dec = outcome < 2
    n_dec = int(dec.sum())
    rows = []
    for p, pr in enumerate(t.principles):
        v = t.votes[p][dec]
        o = outcome[dec]
        applied = v < 2
        agree = int((applied & (v == o)).sum())
        n_app = int(applied.sum())
        disagree = n_app - agree
        acc = agree / n_app if n_app else float("nan")
        follows = agree >= disagree
        k_dir = agree if follows else disagree
        lo, hi = wilson(k_dir, n_app, level)
        clo, chi = wilson(n_app, n_dec, level)
        rows.append(
            {
                "principle": pr,
                "direction": "follows" if follows else "opposes",
                "coverage": n_app / n_dec if n_dec else float("nan"),
                "coverage_low": clo,
                "coverage_high": chi,
                "accuracy": acc if follows or n_app == 0 else 1 - acc,
                "accuracy_low": lo,
                "accuracy_high": hi,
                "agree": agree,
                "disagree": disagree,
                "applied": n_app,
                "decisive_votes": n_dec,
                "net": abs(agree - disagree),
                "ties_not_applied": int(((t.votes[p] == 2) & (outcome == 2)).sum()),
                "ties": int((outcome == 2).sum()),
                "unparsed": int(t.unparsed[p]),
                "significant": bool(n_app > 0 and lo > 0.5),
            }
        )
    return rows


def _signed(t: Tested, rows: list[dict[str, Any]]) -> I64:
    """Votes with each principle's direction applied (an opposed principle's pick is
    swapped)."""
    v = t.votes.copy()
    for p, r in enumerate(rows):
        if r["direction"] == "opposes":
            pick = v[p] < 2
            v[p, pick] = 1 - v[p, pick]
    return v


def vote_weights(rows: list[dict[str, Any]]) -> NDArray[np.float64]:
    """Each principle's say in the set's vote: the log-odds of its accuracy in its direction,
    (agreements + 1) / (disagreements + 1), so a precise narrow principle outvotes a broad
    mediocre one where both apply."""
    out = []
    for r in rows:
        k = max(r["agree"], r["disagree"])
        out.append(float(np.log((k + 1.0) / (r["applied"] - k + 1.0))))
    return np.asarray(out, dtype=np.float64)


def reconstruct(
    v: I64, members: list[int], outcome: I64, weights: NDArray[np.float64] | None = None
) -> tuple[int, int, int]:
    """(correct, wrong, abstained) decisive votes when the set's weighted majority decides
    (equal weight on both sides, or no member applying, abstains)."""
    dec = outcome < 2
    if not members:
        return 0, 0, int(dec.sum())
    w = np.ones(v.shape[0]) if weights is None else weights
    sub = v[members][:, dec]
    wm = w[members][:, None]
    sa = ((sub == 0) * wm).sum(axis=0)
    sb = ((sub == 1) * wm).sum(axis=0)
    pick = np.where(sa > sb + 1e-12, 0, np.where(sb > sa + 1e-12, 1, 2))
    o = outcome[dec]
    correct = int(((pick < 2) & (pick == o)).sum())
    wrong = int(((pick < 2) & (pick != o)).sum())
    return correct, wrong, int((pick == 2).sum())


def select(
    t: Tested, rows: list[dict[str, Any]], outcome: I64, level: float = 0.95
) -> dict[str, Any]:
    """The smallest set that reconstructs the most votes (see module doc)."""
    v = _signed(t, rows)
    w = vote_weights(rows)
    cand = [p for p, r in enumerate(rows) if r["significant"]]
    chosen: list[int] = []
    best = 0
    steps = []
    while True:
        gains = []
        for p in cand:
            if p in chosen:
                continue
            c, wr, _ = reconstruct(v, chosen + [p], outcome, w)
            gains.append((c - wr, rows[p]["direction"] == "follows", -p, p))
        if not gains:
            break
        val, _, _, p = max(gains)
        if val <= best:
            break
        chosen.append(p)
        best = val
        c, wr, ab = reconstruct(v, chosen, outcome, w)
        steps.append({"added": t.principles[p], "correct": c, "wrong": wr, "abstained": ab})
    # drop every member whose removal loses nothing: the least accurate, reversed, narrowest
    # first
    changed = True
    while changed and len(chosen) > 1:
        changed = False
        order = sorted(
            chosen,
            key=lambda q: (rows[q]["accuracy"], rows[q]["direction"] == "follows",
                           rows[q]["applied"], -q),
        )  # fmt: skip
        for p in order:
            rest = [q for q in chosen if q != p]
            c, wr, _ = reconstruct(v, rest, outcome, w)
            if c - wr >= best:
                chosen = rest
                best = c - wr
                changed = True
                steps.append({"removed": t.principles[p], "correct": c, "wrong": wr})
                break
    c, wr, ab = reconstruct(v, chosen, outcome, w)
    n_dec = int((outcome < 2).sum())
    lo, hi = wilson(c, c + wr, level)
    return {
        "principles": [t.principles[p] for p in chosen],
        "directions": [rows[p]["direction"] for p in chosen],
        "reconstructed": c,
        "wrong": wr,
        "abstained": ab,
        "decisive_votes": n_dec,
        "share_reconstructed": c / n_dec if n_dec else float("nan"),
        "accuracy": c / (c + wr) if c + wr else float("nan"),
        "accuracy_low": lo,
        "accuracy_high": hi,
        "steps": steps,
        "candidates_significant": len(cand),
    }


_LIST = re.compile(r"\[.*\]", re.S)


def parse_proposals(text: str | None) -> list[str]:
    """Principles from a proposal answer: a JSON list of strings, else lines that start
    with "Select the response"."""
    if not text:
        return []
    m = _LIST.search(text)
    if m:
        try:
            val = json.loads(m.group(0))
        except ValueError:
            val = None
        if isinstance(val, list):
            return [str(s).strip() for s in val if isinstance(s, str) and s.strip()]
    out = []
    for line in text.splitlines():
        s = line.strip().lstrip("-*0123456789. ").strip().strip('"')
        if s.lower().startswith("select the response"):
            out.append(s)
    return out


def dedupe(
    proposals: list[str], keep: int, embed: Callable[[list[str]], Any] | None
) -> tuple[list[str], dict[str, Any]]:
    """The `keep` most often proposed distinct principles: exact duplicates (ignoring case
    and punctuation) merged, then near duplicates (MiniLM cosine >= 0.85) when `embed` is
    given; a cluster is represented by its most frequent wording."""
    counts: dict[str, int] = {}
    text_of: dict[str, dict[str, int]] = {}
    for s in proposals:
        k = _norm(s)
        if not k:
            continue
        counts[k] = counts.get(k, 0) + 1
        text_of.setdefault(k, {})
        text_of[k][s] = text_of[k].get(s, 0) + 1
    keys = sorted(counts, key=lambda k: (-counts[k], k))
    clusters: list[list[str]] = [[k] for k in keys]
    if embed is not None and len(keys) > 1:
        vec = np.asarray(embed([max(text_of[k], key=lambda s: text_of[k][s]) for k in keys]))
        sim = vec @ vec.T
        assigned = np.full(len(keys), -1)
        clusters = []
        for i in range(len(keys)):  # most frequent first: each starts or joins a cluster
            if assigned[i] >= 0:
                continue
            members = [
                j for j in range(i, len(keys)) if assigned[j] < 0 and sim[i, j] >= NEAR_DUPLICATE
            ]
            for j in members:
                assigned[j] = len(clusters)
            clusters.append([keys[j] for j in members])
    scored = sorted(clusters, key=lambda c: (-sum(counts[k] for k in c), c[0]))
    out = []
    for c in scored[:keep]:
        k = c[0]
        out.append(max(text_of[k], key=lambda s: (text_of[k][s], s)))
    return out, {"proposed": len(proposals), "distinct": len(keys), "clusters": len(clusters)}
