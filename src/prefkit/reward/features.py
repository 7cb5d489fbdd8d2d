"""Interpretable features of a (prompt, response) pair: the torch-free reward model's inputs."""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import NDArray

FEATURE_NAMES: list[str] = [
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
]

_WORD = re.compile(r"[A-Za-z0-9']+")
_SENT = re.compile(r"[.!?]+(?:\s|$)")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.M)
_HEADER = re.compile(r"^\s*#{1,6}\s+\S", re.M)
_REFUSAL = re.compile(
    r"\b(?:i can(?:no|')t|i cannot|i won't|i will not|i'm not able|i am not able|unable to"
    r"|not (?:appropriate|able to)|i (?:must|have to) decline|as an ai|against (?:my|the) "
    r"(?:policy|guidelines)|illegal|unethical|i don't think (?:that's|it's) (?:a good|appropriate))",
    re.I,
)
_HEDGE = re.compile(
    r"\b(?:maybe|perhaps|might|possibly|probably|i think|i believe|it depends|not sure"
    r"|could be|generally|usually|likely)\b",
    re.I,
)
_APOLOGY = re.compile(r"\b(?:sorry|apologi[sz]e)\b", re.I)


def _one(prompt: str, response: str) -> list[float]:
    words = _WORD.findall(response.lower())
    pwords = set(_WORD.findall(prompt.lower()))
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
    ]


def response_features(
    prompts: list[str], responses: list[str]
) -> tuple[NDArray[np.float64], list[str]]:
    """Feature matrix (n, k) of each (prompt, response) and the k feature names.

    Features are cheap, deterministic and interpretable: length (log chars/words), formatting
    (lines, bullets, headers, code, bold, numbers), refusal/hedging/apology markers, punctuation,
    lexical overlap with the prompt (share of response words in the prompt, share of prompt words
    covered), readability proxies (word and sentence length, type/token ratio), and `empty`.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    x = np.array(
        [_one(p or "", r or "") for p, r in zip(prompts, responses, strict=True)],
        dtype=np.float64,
    ).reshape(len(responses), len(FEATURE_NAMES))
    return x, list(FEATURE_NAMES)
