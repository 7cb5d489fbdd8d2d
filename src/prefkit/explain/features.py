"""Interpretable features of responses for `prefkit explain`, computed column-wise with Arrow.

The feature definitions are the reward stage's (`prefkit.reward.features`: same names, same
regular expressions, same transforms), evaluated for a whole column at once with Arrow's RE2
kernels instead of one Python call per response — 30-60x faster, which is what lets `explain`
handle 100k pairs in seconds (see benchmarks/RESULTS.md). A test checks that every shared
column equals `reward.features.response_features` on the real data sets. Two features the
explanation literature tests and the reward model does not use are added here: `links` and
`second_person`.

Only one length feature (`log_chars`) is used: the reward model's other length proxies
(`log_words`, `log_unique_words`, `log_unique_trigrams`, `n_lines`) correlate above 0.9 with it
and would split one effect over five columns; "length-controlled" then means one column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from prefkit.reward import features as rf

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class Feature:
    name: str
    label: str  # what a reader sees in the report
    group: str  # length | format | tone | content | readability | degeneration
    unit: str  # what one unit of the raw value is


FEATURES: tuple[Feature, ...] = (
    Feature("log_chars", "length", "length", "log(1 + characters)"),
    Feature("bullets", "lists", "format", "log(1 + list items)"),
    Feature("headers", "headings", "format", "log(1 + markdown headings)"),
    Feature("code_blocks", "code blocks", "format", "has a ``` block (0/1)"),
    Feature("bold", "bold text", "format", "log(1 + **bold** spans)"),
    Feature("links", "links", "format", "log(1 + URLs and markdown links)"),
    Feature("numbers", "numbers", "content", "log(1 + digit runs)"),
    Feature("question_marks", "questions to the user", "tone", "log(1 + question marks)"),
    Feature("exclamations", "exclamations", "tone", "log(1 + exclamation marks)"),
    Feature("refusal", "refusal phrases", "tone", "has a refusal phrase (0/1)"),
    Feature("hedging", "hedging", "tone", "log(1 + hedging phrases)"),
    Feature("apology", "apology", "tone", "apologises (0/1)"),
    Feature("second_person", "second person", "tone", "log(1 + you/your words)"),
    Feature("prompt_overlap", "overlap with the prompt", "content", "share of words in prompt"),
    Feature("avg_word_len", "word length", "readability", "mean word length / 10"),
    Feature("avg_sentence_len", "sentence length", "readability", "log(1 + words per sentence)"),
    Feature("repeated_trigrams", "repetition", "degeneration", "share of repeated 3-grams"),
    Feature("unfinished", "unfinished ending", "degeneration", "ends without punctuation (0/1)"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
LENGTH_FEATURES: tuple[str, ...] = ("log_chars",)
EXPLAIN_ONLY: tuple[str, ...] = ("links", "second_person")
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}

# Python's \s (str.isspace) and \d (Unicode decimal digits) in RE2 syntax; RE2's own \s and \d
# are ASCII-only.
_WS = r"\t\n\x0b\f\r\x1c-\x1f \x85\p{Z}"
_DIGIT = r"\p{Nd}"
_LINK = r"(?i)\bhttps?://[^\s<>()\[\]]+|\bwww\.[^\s<>()\[\]]+|\[[^\]\n]+\]\([^)\s]+\)"
_YOU = r"(?i)\b(?:you|your|yours|yourself|yourselves|you're|you've|you'll|you'd)\b"


def re2(pattern: re.Pattern[str]) -> str:
    """A Python regular expression in RE2 syntax with the same meaning for `\\s`, `\\d` and
    the IGNORECASE / MULTILINE flags (the constructs the reward patterns use)."""
    src = pattern.pattern
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(src):
        c = src[i]
        if c == "\\" and i + 1 < len(src):
            nxt = src[i + 1]
            if nxt == "s":
                out.append(_WS if in_class else f"[{_WS}]")
            elif nxt == "d":
                out.append(_DIGIT)
            else:
                out.append(c + nxt)
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    flags = ("i" if pattern.flags & re.I else "") + ("m" if pattern.flags & re.M else "")
    return (f"(?{flags})" if flags else "") + "".join(out)


def _count(text: pa.Array, regex: str) -> F64:
    return np.asarray(pc.count_substring_regex(text, regex), dtype=np.float64)


def _count_plain(text: pa.Array, needle: str) -> F64:
    return np.asarray(pc.count_substring(text, needle), dtype=np.float64)


def _has(text: pa.Array, regex: str) -> F64:
    return np.asarray(pc.match_substring_regex(text, regex), dtype=np.float64)


@dataclass(frozen=True)
class _Tokens:
    """Lower-cased words ([A-Za-z0-9']+) of each text: codes (shared vocabulary), the row of
    each token, their character lengths, and the number of tokens per row."""

    code: I64
    row: I64
    length: F64
    per_row: I64


_WORD_BYTE = np.zeros(256, dtype=bool)
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'":
    _WORD_BYTE[_c] = True


def _words(text: pa.Array) -> tuple[pa.Array, I64]:
    """The words of each text as one flat string array and the row of each word: maximal runs
    of [A-Za-z0-9'] in the lower-cased text (reward's `_WORD.findall(text.lower())`), found in
    the UTF-8 buffer with numpy (a regex split is ~20x slower)."""
    low = pc.utf8_lower(text).cast(pa.large_string())
    if isinstance(low, pa.ChunkedArray):
        low = low.combine_chunks()
    n = len(low)
    off = np.frombuffer(low.buffers()[1], dtype=np.int64)[low.offset : low.offset + n + 1]
    base = int(off[0])
    data = np.frombuffer(low.buffers()[2], dtype=np.uint8)[base : int(off[-1])]
    rel = off - base
    word = _WORD_BYTE[data]
    row_start = np.zeros(data.size + 1, dtype=bool)
    row_start[rel[:-1]] = True
    first = word.copy()
    first[1:] &= ~word[:-1] | row_start[1:-1]
    last = word.copy()
    last[:-1] &= ~word[1:] | row_start[1:-1]
    starts = np.flatnonzero(first)
    ends = np.flatnonzero(last) + 1
    rows = np.searchsorted(rel, starts, side="right") - 1
    offsets = np.zeros(starts.size + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=offsets[1:])
    words = pa.LargeStringArray.from_buffers(
        starts.size, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data[word]))
    )
    return words, rows.astype(np.int64)


def _tokens(texts: list[pa.Array]) -> tuple[list[_Tokens], pa.Array]:
    """Tokenize several text columns with one shared vocabulary (returned too)."""
    flat: list[pa.Array] = []
    rows: list[I64] = []
    for t in texts:
        w, r = _words(t)
        flat.append(w)
        rows.append(r)
    joined = pa.concat_arrays(flat)
    enc = pc.dictionary_encode(joined)
    codes = np.asarray(enc.indices, dtype=np.int64)
    lengths = np.asarray(pc.utf8_length(joined), dtype=np.float64)
    out: list[_Tokens] = []
    start = 0
    for t, r in zip(texts, rows, strict=True):
        end = start + r.size
        out.append(
            _Tokens(
                codes[start:end],
                r,
                lengths[start:end],
                np.bincount(r, minlength=len(t)).astype(np.int64),
            )
        )
        start = end
    return out, enc.dictionary


def _distinct(a: I64) -> I64:
    """Sorted distinct values (np.unique's hash path is ~100x slower than a sort here)."""
    s = np.sort(a)
    keep = np.ones(s.size, dtype=bool)
    keep[1:] = s[1:] != s[:-1]
    return s[keep]


def _dense_rank(a: I64) -> I64:
    """0..k-1 rank of each value among the distinct values."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    new = np.ones(s.size, dtype=np.int64)
    new[1:] = s[1:] != s[:-1]
    out = np.empty(s.size, dtype=np.int64)
    out[order] = np.cumsum(new) - 1
    return out


def _unique_keys(row: I64, code: I64, vocab: int) -> I64:
    return _distinct(row * (vocab + 1) + code)


def _overlap(resp: _Tokens, prompt: _Tokens, n: int, vocab: int) -> F64:
    """Share of a response's distinct words that occur in its prompt."""
    rk = _unique_keys(resp.row, resp.code, vocab)
    pk = _unique_keys(prompt.row, prompt.code, vocab)
    r_row = rk // (vocab + 1)
    n_unique = np.bincount(r_row, minlength=n).astype(np.float64)
    shared = np.bincount(r_row[np.isin(rk, pk, assume_unique=True)], minlength=n)
    return np.divide(shared, n_unique, out=np.zeros(n), where=n_unique > 0)


def _repeated_trigrams(tok: _Tokens, is_digit: NDArray[np.bool_], n: int) -> F64:
    """1 - distinct / total word 3-grams of the non-numeric words (0 without a 3-gram)."""
    keep = ~is_digit[tok.code]
    code, row = tok.code[keep], tok.row[keep]
    if code.size < 3:
        return np.zeros(n)
    ok = row[:-2] == row[2:]
    r = row[:-2][ok]
    vocab = int(code.max()) + 1
    pair = code[:-2][ok] * vocab + code[1:-1][ok]
    if vocab**3 >= 2**62:
        pair = _dense_rank(pair)
    tri = pair * vocab + code[2:][ok]
    total = np.bincount(r, minlength=n).astype(np.float64)
    import polars as pl

    per = pl.DataFrame({"row": r, "k": tri}).group_by("row").agg(pl.col("k").n_unique())
    distinct = np.zeros(n)
    distinct[per["row"].to_numpy()] = per["k"].to_numpy()
    return np.divide(total - distinct, total, out=np.zeros(n), where=total > 0)


def _unfinished(text: pa.Array) -> F64:
    end = pc.utf8_slice_codeunits(pc.utf8_rtrim_whitespace(text), -1)
    finished = pc.is_in(end, value_set=pa.array(sorted(rf._FINISHED), end.type))
    digit = pc.utf8_is_digit(end)
    empty = pc.equal(pc.utf8_length(end), 0)
    out = pc.invert(pc.or_(pc.or_(finished, digit), empty))
    return np.asarray(out, dtype=np.float64)


def text_features(
    prompts: pa.Array | list[str], responses: pa.Array | list[str]
) -> tuple[F64, list[str]]:
    """Feature matrix (n, len(FEATURES)) of each (prompt, response) and the feature names.

    Shared columns equal `prefkit.reward.features.response_features` (see module doc)."""
    pr = prompts if isinstance(prompts, pa.Array) else pa.array(prompts, pa.large_string())
    rs = responses if isinstance(responses, pa.Array) else pa.array(responses, pa.large_string())
    if len(pr) != len(rs):
        raise ValueError(f"{len(pr)} prompts but {len(rs)} responses")
    pr = pc.fill_null(pr.cast(pa.large_string()), "")
    rs = pc.fill_null(rs.cast(pa.large_string()), "")
    n = len(rs)
    if n == 0:
        return np.zeros((0, len(FEATURES))), list(FEATURE_NAMES)
    (resp, prompt), vocabulary = _tokens([rs, pr])
    vocab = len(vocabulary)
    n_words = resp.per_row.astype(np.float64)
    sum_len = np.bincount(resp.row, weights=resp.length, minlength=n)
    avg_word = np.divide(sum_len, n_words, out=np.zeros(n), where=n_words > 0) / 10.0
    n_sent = np.maximum(1.0, _count(rs, re2(rf._SENT)))
    # vocabulary entries that are all digits (str.isdigit of an [A-Za-z0-9']+ word)
    digit_vocab = np.asarray(
        pc.fill_null(pc.match_substring_regex(vocabulary, r"^[0-9]+$"), False), dtype=bool
    )
    cols: dict[str, F64] = {
        "log_chars": np.log1p(np.asarray(pc.utf8_length(rs), dtype=np.float64)),
        "bullets": np.log1p(_count(rs, re2(rf._BULLET))),
        "headers": np.log1p(_count(rs, re2(rf._HEADER))),
        "code_blocks": (np.floor_divide(_count_plain(rs, "```"), 2) > 0).astype(np.float64),
        "bold": np.log1p(np.floor_divide(_count_plain(rs, "**"), 2)),
        "links": np.log1p(_count(rs, _LINK)),
        "numbers": np.log1p(_count(rs, re2(re.compile(r"\d+")))),
        "question_marks": np.log1p(_count_plain(rs, "?")),
        "exclamations": np.log1p(_count_plain(rs, "!")),
        "refusal": _has(rs, re2(rf._REFUSAL)),
        "hedging": np.log1p(_count(rs, re2(rf._HEDGE))),
        "apology": _has(rs, re2(rf._APOLOGY)),
        "second_person": np.log1p(_count(rs, _YOU)),
        "prompt_overlap": _overlap(resp, prompt, n, vocab),
        "avg_word_len": avg_word,
        "avg_sentence_len": np.log1p(n_words / n_sent),
        "repeated_trigrams": _repeated_trigrams(resp, digit_vocab, n),
        "unfinished": _unfinished(rs),
    }
    x = np.column_stack([cols[f] for f in FEATURE_NAMES]).astype(np.float64)
    return x, list(FEATURE_NAMES)
