"""The reward features computed one text at a time in plain Python: the definition that
`prefkit.reward.features` (column-wise) must reproduce exactly. This is the implementation
prefkit shipped before the features were vectorised (so models trained then score the same);
it lives only here, as the tests' independent reference."""

from __future__ import annotations

import re
import zlib

import numpy as np
from numpy.typing import NDArray

from prefkit.reward import features as rf

NAMES: list[str] = [
    "log_chars",
    "log_words",
    "n_lines",
    "bullets",
    "headers",
    "code_blocks",
    "bold",
    "numbers",
    "refusal",
    "hedging",
    "apology",
    "question_marks",
    "exclamations",
    "prompt_overlap",
    "prompt_coverage",
    "avg_word_len",
    "avg_sentence_len",
    "type_token_ratio",
    "empty",
    "repeated_trigrams",
    "repeated_lines",
    "compression_ratio",
    "unfinished",
    "prompt_echo",
    "non_ascii",
    "log_unique_words",
    "log_unique_trigrams",
]

# the patterns are the definition (shared); how they are evaluated is what the tests compare
_WORD = re.compile(r"[A-Za-z0-9']+")
_SENT, _BULLET, _HEADER = rf._SENT, rf._BULLET, rf._HEADER
_REFUSAL, _HEDGE, _APOLOGY, _DIGITS, _FINISHED = (
    rf._REFUSAL,
    rf._HEDGE,
    rf._APOLOGY,
    rf._DIGITS,
    rf._FINISHED,
)


def _degeneration(prompt_words: list[str], response: str, words: list[str]) -> list[float]:
    """Loops, cut-off endings and copying: repeated word 3-grams, repeated lines (compared
    without digits and punctuation, so "3. Overview" repeats "2. Overview"), zlib compression
    ratio, an ending without closing punctuation, share of the response's word 4-grams found in
    the prompt, share of non-ASCII characters, and the log count of distinct words and 3-grams
    (length that is not repetition). 3-grams and distinct words skip numbers: "1. Pen 2. Ruler
    3. Pen" is still a loop."""
    content = [w for w in words if not w.isdigit()]
    tri = list(zip(content, content[1:], content[2:], strict=False))
    n_tri_unique = len(set(tri))
    rep3 = 1.0 - n_tri_unique / len(tri) if tri else 0.0
    lines = []
    for line in response.split("\n"):
        norm = " ".join(_WORD.findall(_DIGITS.sub(" ", line.lower())))
        if norm:
            lines.append(norm)
    rep_lines = 1.0 - len(set(lines)) / len(lines) if lines else 0.0
    raw = response.encode("utf-8")
    compression = len(zlib.compress(raw)) / len(raw) if len(raw) > 20 else 1.0
    end = response.rstrip()
    unfinished = float(bool(end) and end[-1] not in _FINISHED and not end[-1].isdigit())
    p4 = set(zip(prompt_words, prompt_words[1:], prompt_words[2:], prompt_words[3:], strict=False))
    r4 = list(zip(words, words[1:], words[2:], words[3:], strict=False))
    echo = sum(g in p4 for g in r4) / len(r4) if r4 else 0.0
    non_ascii = sum(ord(c) > 127 for c in response) / len(response) if response else 0.0
    return [
        rep3,
        rep_lines,
        compression,
        unfinished,
        echo,
        non_ascii,
        float(np.log1p(len(set(content)))),
        float(np.log1p(n_tri_unique)),
    ]


def _one(prompt: str, response: str) -> list[float]:
    words = _WORD.findall(response.lower())
    plist = _WORD.findall(prompt.lower())
    pwords = set(plist)
    rset = set(words)
    n_words = len(words)
    n_sent = max(1, len(_SENT.findall(response)))
    overlap = len(rset & pwords) / len(rset) if rset else 0.0
    coverage = len(rset & pwords) / len(pwords) if pwords else 0.0
    return [
        float(np.log1p(len(response))),
        float(np.log1p(n_words)),
        float(np.log1p(response.count("\n"))),
        float(np.log1p(len(_BULLET.findall(response)))),
        float(np.log1p(len(_HEADER.findall(response)))),
        float(response.count("```") // 2 > 0),
        float(np.log1p(response.count("**") // 2)),
        float(np.log1p(len(re.findall(r"\d+", response)))),
        float(bool(_REFUSAL.search(response))),
        float(np.log1p(len(_HEDGE.findall(response)))),
        float(bool(_APOLOGY.search(response))),
        float(np.log1p(response.count("?"))),
        float(np.log1p(response.count("!"))),
        overlap,
        coverage,
        float(np.mean([len(w) for w in words])) / 10.0 if words else 0.0,
        float(np.log1p(n_words / n_sent)),
        len(rset) / n_words if n_words else 0.0,
        float(not response.strip()),
        *_degeneration(plist, response, words),
    ]


def per_row_features(
    prompts: list[str], responses: list[str]
) -> tuple[NDArray[np.float64], list[str]]:
    """Feature matrix (n, k), one `_one` call per (prompt, response), and the names."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    x = np.array(
        [_one(p or "", r or "") for p, r in zip(prompts, responses, strict=True)],
        dtype=np.float64,
    ).reshape(len(responses), len(NAMES))
    return x, list(NAMES)
