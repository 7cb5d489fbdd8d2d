"""Truncation needs evidence: cut responses are found, finished ones that merely lack a full
stop (lists, code, headings, URLs, numbers, casual replies) are not."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa

from prefkit.audit.degenerate import find_degenerate
from prefkit.audit.frame import Frame
from prefkit.audit.truncation import truncation_scores
from prefkit.io.detect import read

# ordinary finished answers: they give the data its vocabulary ("that", "transport", ...)
CONTEXT = [
    "Machine learning is a field of computer science that builds systems that learn from data.",
    "Public transport is cheaper than driving, and transport by rail is greener.",
    "The transportation budget covers buses, trams and the metro.",
    "Hydrochloric acid reacts with calcium carbonate to release carbon dioxide.",
    "A hydrocarbon is a compound of hydrogen and carbon; that is all it contains.",
    "I think that is a good idea, and that it will work.",
    "Transport costs are listed in the appendix of that report.",
    "Hydrochloric acid is a strong acid that you should handle with gloves.",
    "Dilute hydrochloric acid is in your stomach.",
]

CUT = {
    "mid-word": "Machine learning is a type of artificial intelligence tha",
    "mid-word 2": "The reaction is a double replacement reaction because calcium carbonate and hydroc",
    "dangling article": "If you light a single stick, the flame might travel along the",
    "dangling conjunction": "You could take a short course on first aid, or",
    "dangling contraction": "I can point you to some resources. I’m",
    "open code block": "Here is the function:\n```python\ndef add(a, b):\n    return a +",
    "open quote": "The riders came to be known as “Camel Jockeys",
    "bare list marker": "Steps:\n1. Preheat the oven to 200 °C.\n2.",
    "colon": "Here is an example of how to write your profile:",
}

FINISHED = {
    "list": "Top passwords:\n1. 123456\n2. qwerty\n3. letmein",
    "bullets": "Pack these:\n- a warm jacket\n- sturdy boots\n- a water bottle",
    "heading": "## Summary",
    "title": "The Name of the Poet",
    "closed code": "Use this:\n```python\nprint('hello')\n```",
    "code line": "def add(a, b):\n    return a + b",
    "url": "See the documentation at https://docs.python.org/3/library/functions.html",
    "number": "The answer is 42",
    "year": "It was founded in 1998",
    "casual": "Sure thing, happy to help with that",
    "sentence": "Water boils at 100 °C at sea level.",
    "question": "Do you mean the film or the book?",
    "emoji": "Have a great day 😊",
    "haiku": "Crisp leaves drift and fall\nGolden light on quiet paths\nThe year exhales slow",
}


def test_cut_responses_have_evidence_and_finished_ones_do_not() -> None:
    texts = CONTEXT + list(CUT.values()) + list(FINISHED.values())
    score, reason, _ = truncation_scores(pa.array(texts))
    got = dict(zip(texts, zip(score.tolist(), reason, strict=True), strict=True))
    for name, t in CUT.items():
        assert got[t][0] > 0, (name, t)
    for name, t in FINISHED.items():
        assert got[t][0] == 0, (name, t, got[t][1])
    for t in CONTEXT:
        assert got[t][0] == 0, t
    assert "mid-word ('tha')" in got[CUT["mid-word"]][1]
    assert "unclosed code block" in got[CUT["open code block"]][1]
    assert "'the'" in got[CUT["dangling article"]][1]


def test_a_length_cap_needs_many_distinct_unfinished_responses() -> None:
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(500)]
    free = [" ".join(rng.choice(words, int(rng.integers(20, 90)))) + "." for _ in range(300)]
    capped = [(" ".join(rng.choice(words, 120)))[:399] + "x" for _ in range(12)]
    score, reason, found = truncation_scores(pa.array(free + capped))
    assert found["length_cap"] == 400
    assert (score[len(free) :] == 0.9).all()
    assert (score[: len(free)] == 0).all()
    # the same lengths, but finished sentences: not a cap
    done = [c[:-1] + "." for c in capped]
    score2, _, found2 = truncation_scores(pa.array(free + done))
    assert found2["length_cap"] is None and (score2 == 0).all()
    # a handful sharing one length is chance, not a cap (PandaLM: 5 of its 705 distinct
    # answers are 234 characters long, 4 of them lists that end without a full stop)
    score3, _, found3 = truncation_scores(pa.array(free + capped[:5]))
    assert found3["length_cap"] is None and (score3 == 0).all()


def test_a_token_limit_shows_as_a_pile_up_of_unfinished_responses() -> None:
    rng = np.random.default_rng(2)
    words = [f"w{i}" for i in range(500)]
    free = [" ".join(rng.choice(words, int(rng.integers(10, 150)))) + "." for _ in range(400)]
    # a generation limit of ~200 tokens: 40 answers stop at 185-200 words, mid-sentence
    limited = [" ".join(rng.choice(words, int(rng.integers(185, 201)))) for _ in range(40)]
    score, reason, found = truncation_scores(pa.array(free + limited))
    assert found["word_limit"] == max(len(t.split()) for t in limited)
    assert (score[len(free) :] >= 0.8).all()
    assert (score[: len(free)] == 0).all()


def _ends_a_sentence(text: str) -> bool:
    return bool(re.search(r"[.!?…\"'”’)\]]\s*$", text))


def test_hh_harmless_flags_only_unfinished_responses(data_dir: Path) -> None:
    """HH-RLHF assistant turns were sampled with a length limit; many really stop
    mid-sentence. Every flagged response must be unfinished by a plain-Python reading of the
    raw file, and answers the raw file shows ending in a sentence are never flagged."""
    path = data_dir / "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz"
    f = Frame.of(read(path).table)
    res = find_degenerate(f)
    ids = f.row_id.to_pylist()
    flagged = res.row_ids("truncated")
    assert flagged and len(flagged) <= 0.05 * f.n
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        raw = [json.loads(line) for line in fh]
    last = {}
    for i, rec in enumerate(raw):
        for side, key in (("a", "chosen"), ("b", "rejected")):
            last[(i, side)] = rec[key].rsplit("\n\nAssistant:", 1)[-1].strip()
    by_id = {rid: k for k, rid in enumerate(ids)}
    for r in res.rows.to_pylist():
        if r["issue"] != "truncated":
            continue
        k = by_id[r["row_id"]]
        side = r["detail"].split()[0][-1]  # "response_a ..." / "response_b ..."
        assert not _ends_a_sentence(last[(k, side)]), r


def test_truncation_in_chunks_equals_one_go(data_dir: Path) -> None:
    """The audit scores truncation a chunk of distinct responses at a time (in any order):
    the cap, pile-up and mid-word rules, which look at every response, give the one-go
    result. Real responses (HH-RLHF harmless) plus a length cap and a mid-word cut."""
    from prefkit.audit.truncation import truncation_scores_chunks

    path = data_dir / "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz"
    f = Frame.of(read(path).table)
    rng = np.random.default_rng(0)
    words = " ".join(CONTEXT).split()
    capped = [
        " ".join(rng.choice(words, 120))[:399].replace(" ", "_", 398) + "x" for _ in range(60)
    ]
    texts = pa.concat_arrays(
        [
            f.raw_texts.cast(pa.string()),
            pa.array([*CONTEXT, "We took the bus, the usual mode of transpor", *capped]),
        ]
    )
    score, reason, found = truncation_scores(texts)
    assert found["length_cap"] == 400 and (score >= 0.8).sum() > 60
    order = rng.permutation(len(texts))
    chunks = [(idx, texts.take(pa.array(idx))) for idx in np.array_split(order, 7)]
    s2, r2, found2 = truncation_scores_chunks(chunks, len(texts))
    assert np.array_equal(s2, score)
    assert r2 == reason
    assert found2 == found
