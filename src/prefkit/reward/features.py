"""Interpretable features of a (prompt, response) pair: the torch-free reward model's inputs.

Every feature is computed for a whole column of texts at once — Arrow's RE2 kernels for the
patterns, numpy over the UTF-8 bytes for words, lines and character counts, sorted int64 keys
for the per-row sets of words and n-grams, and one `zlib.compress` call per text (the only
per-text Python step). Each feature's definition is the per-text Python expression this code
replaced (`words` = `_WORD.findall(text.lower())`, regular expressions with Python's Unicode
meaning; the docstrings below quote them, and tests/reward/per_row_features.py keeps that code
as the tests' reference), so models trained before score the same. Where RE2 and Python's `re`
could disagree the translation is exact: `\\s`, `\\S`, `\\d` and `\\D` become classes built
from Python's own `str.isspace` / `str.isdecimal`, and the three patterns with `\\b` (refusal,
hedging, apology: RE2's `\\b` is ASCII-only) are re-evaluated with `re` on the rows that hold a
non-ASCII word character.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
# a column of texts (None is '')
Texts: TypeAlias = pa.Array | pa.ChunkedArray | Sequence[str | None]

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
    # degeneration and echo: the failure modes of weak generators (loops, cut-off text, copying)
    "repeated_trigrams",
    "repeated_lines",
    "compression_ratio",
    "unfinished",
    "prompt_echo",
    "non_ascii",
    "log_unique_words",
    "log_unique_trigrams",
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
_DIGITS = re.compile(r"\d+")
_FINISHED = frozenset(".!?\"')]}*`:;")


# --- Python's character classes in RE2 syntax ------------------------------------------------


@functools.cache
def py_class(kind: str) -> str:
    """The code points of one of Python's `re` classes for str patterns, as the inside of an
    RE2 character class: `space` (`\\s`, `str.isspace`), `decimal` (`\\d`, `str.isdecimal`)
    or `nonascii_word` (`\\w` outside ASCII: `str.isalnum` or `_`). Built from this Python's
    Unicode tables, so RE2 and `re` agree even where their Unicode versions differ."""
    preds: dict[str, Callable[[str], bool]] = {
        "space": str.isspace,
        "decimal": str.isdecimal,
        "nonascii_word": str.isalnum,
    }
    pred = preds[kind]
    lo = 128 if kind == "nonascii_word" else 0
    ranges: list[tuple[int, int]] = []
    for cp in range(lo, 0x110000):
        if 0xD800 <= cp <= 0xDFFF or not pred(chr(cp)):
            continue
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)


def re2(pattern: re.Pattern[str]) -> str:
    """A Python regular expression in RE2 syntax with the same meaning for `\\s`, `\\S`, `\\d`,
    `\\D` and the IGNORECASE / MULTILINE flags (the constructs the feature patterns use).
    `\\b` is kept: RE2's is ASCII-only, which callers handle (`_keyword_rows`)."""
    space, digit = py_class("space"), py_class("decimal")
    src = pattern.pattern
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(src):
        c = src[i]
        if c == "\\" and i + 1 < len(src):
            nxt = src[i + 1]
            if nxt in "sd":
                cls = space if nxt == "s" else digit
                out.append(cls if in_class else f"[{cls}]")
            elif nxt in "SD" and not in_class:
                out.append(f"[^{space if nxt == 'S' else digit}]")
            elif nxt in "SD":
                raise ValueError(f"\\{nxt} inside a character class: {src!r}")
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


# --- column helpers ------------------------------------------------------------------------


def as_text(x: Texts) -> pa.LargeStringArray:
    """One large_string Arrow array of the texts, null as ''."""
    if isinstance(x, pa.ChunkedArray):
        x = x.combine_chunks()
    if not isinstance(x, pa.Array):
        x = pa.array(list(x), pa.large_string())
    out = pc.fill_null(x.cast(pa.large_string()), "")
    assert isinstance(out, pa.LargeStringArray)
    return out


def _count(text: pa.Array, regex: str) -> F64:
    return np.asarray(pc.count_substring_regex(text, regex), dtype=np.float64)


def _buffers(text: pa.LargeStringArray) -> tuple[I64, NDArray[np.uint8]]:
    """Byte offsets of each text (from 0) and the UTF-8 bytes they index."""
    n = len(text)
    off = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset : text.offset + n + 1]
    data = text.buffers()[2]
    base = int(off[0])
    raw = (
        np.frombuffer(data, dtype=np.uint8)[base : int(off[-1])]
        if data is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return off - base, raw


def _per_row_sum(flag: NDArray[np.bool_], rel: I64) -> I64:
    """Number of True values of `flag` (one per byte) inside each text's byte range."""
    rows = np.searchsorted(rel, np.flatnonzero(flag), side="right") - 1
    return np.bincount(rows, minlength=rel.size - 1).astype(np.int64)


def _byte_counts(rel: I64, data: NDArray[np.uint8], chars: str) -> dict[str, I64]:
    """Per text, `text.count(c)` of ASCII characters (an ASCII byte is never part of a longer
    UTF-8 sequence), and for `*` and backtick the non-overlapping counts of `**` and three
    backticks, found from the runs of that character: `sum(len(run) // k)`."""
    table = np.zeros(256, dtype=bool)
    table[[ord(c) for c in chars]] = True
    pos = np.flatnonzero(table[data])
    byte = data[pos]
    row = np.searchsorted(rel, pos, side="right") - 1
    n = rel.size - 1
    out: dict[str, I64] = {}
    for c in chars:
        at = byte == ord(c)
        p, r = pos[at], row[at]
        out[c] = np.bincount(r, minlength=n).astype(np.int64)
        if c in "*`" and p.size:
            new = np.ones(p.size, dtype=bool)
            new[1:] = (p[1:] != p[:-1] + 1) | (r[1:] != r[:-1])
            run = np.cumsum(new) - 1
            length = np.bincount(run)
            k = 2 if c == "*" else 3
            out[c * k] = np.bincount(r[new], weights=length // k, minlength=n).astype(np.int64)
        elif c in "*`":
            out[c * (2 if c == "*" else 3)] = np.zeros(n, dtype=np.int64)
    return out


def lower(text: pa.Array) -> pa.LargeStringArray:
    """`str.lower` as far as ASCII is concerned: Arrow lowers 'İ' to 'i', Python to 'i̇'."""
    low = pc.utf8_lower(pc.replace_substring(text, "\u0130", "i\u0307"))
    return as_text(low)


_WORD_BYTE = np.zeros(256, dtype=bool)
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'":
    _WORD_BYTE[_c] = True


def _runs(rel: I64, data: NDArray[np.uint8], table: NDArray[np.bool_]) -> tuple[pa.Array, I64]:
    """Maximal runs of the bytes marked in `table` inside each text (runs never cross texts):
    one flat string array and each run's first byte position."""
    word = table[data]
    row_start = np.zeros(data.size + 1, dtype=bool)
    row_start[rel[:-1]] = True
    first = word.copy()
    first[1:] &= ~word[:-1] | row_start[1:-1]
    last = word.copy()
    last[:-1] &= ~word[1:] | row_start[1:-1]
    starts = np.flatnonzero(first)
    ends = np.flatnonzero(last) + 1
    offsets = np.zeros(starts.size + 1, dtype=np.int64)
    np.cumsum(ends - starts, out=offsets[1:])
    words = pa.LargeStringArray.from_buffers(
        starts.size, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data[word]))
    )
    return words, starts.astype(np.int64)


def _words(low: pa.LargeStringArray) -> tuple[pa.Array, I64]:
    """The words of each lower-cased text (`lower`) as one flat string array and the row of
    each word: maximal runs of [A-Za-z0-9'] (`_WORD.findall(text.lower())`), found in the
    UTF-8 buffer with numpy (a regex split is ~20x slower)."""
    rel, data = _buffers(low)
    words, starts = _runs(rel, data, _WORD_BYTE)
    return words, (np.searchsorted(rel, starts, side="right") - 1).astype(np.int64)


@dataclass(frozen=True)
class Tokens:
    """Lower-cased words ([A-Za-z0-9']+) of each text: codes (shared vocabulary), the row of
    each token (non-decreasing), their character lengths, and the number of tokens per row."""

    code: I64
    row: I64
    length: F64
    per_row: I64


def tokens(texts: list[pa.LargeStringArray]) -> tuple[list[Tokens], pa.Array]:
    """Tokenize several lower-cased text columns (`lower`) with one shared vocabulary
    (returned too)."""
    flat: list[pa.Array] = []
    rows: list[I64] = []
    for t in texts:
        w, r = _words(t)
        flat.append(w)
        rows.append(r)
    joined = pa.concat_arrays(flat)
    enc = pc.dictionary_encode(joined)
    codes = np.asarray(enc.indices, dtype=np.int64)
    lengths = np.asarray(pc.binary_length(joined), dtype=np.float64)  # ASCII: bytes = chars
    out: list[Tokens] = []
    start = 0
    for t, r in zip(texts, rows, strict=True):
        end = start + r.size
        out.append(
            Tokens(
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


_KEY_LIMIT = 2**62


def _pack(cols: list[I64]) -> I64:
    """One non-negative int64 key per position of the code columns, equal iff every column is
    equal (exact: re-ranked densely where the product would overflow)."""
    key = cols[0].copy()
    for c in cols[1:]:
        width = int(c.max()) + 1 if c.size else 1
        if key.size and (int(key.max()) + 1) * width >= _KEY_LIMIT:
            key = _dense_rank(key)
        key = key * width + c
    return key


def _distinct_per_row(row: I64, cols: list[I64], n: int) -> I64:
    """Number of distinct tuples of the code columns in each of the n rows (`row` must be
    non-decreasing: the sorted keys then keep the rows in order)."""
    if not row.size:
        return np.zeros(n, dtype=np.int64)
    s = np.sort(_pack([row, *cols]))
    new = np.ones(s.size, dtype=bool)
    new[1:] = s[1:] != s[:-1]
    return np.bincount(row[new], minlength=n).astype(np.int64)


def _shared_per_row(
    row: I64, cols: list[I64], prow: I64, pcols: list[I64], n: int, distinct: bool = False
) -> I64:
    """Per row: how many of its tuples of codes (each distinct tuple once if `distinct`, else
    with multiplicity) are among the other side's tuples of the same row. Rows non-decreasing."""
    if not row.size or not prow.size:
        return np.zeros(n, dtype=np.int64)
    mine, other = [row, *cols], [prow, *pcols]
    widths = [max(int(a.max()), int(b.max())) + 1 for a, b in zip(mine, other, strict=True)]
    j, span = 1, widths[0]  # the leading columns that pack into one int64 without re-ranking
    while j < len(widths) and span * widths[j] < _KEY_LIMIT:
        span *= widths[j]
        j += 1

    def prefix(c: list[I64]) -> I64:
        key = c[0].copy()
        for col, w in zip(c[1:j], widths[1:j], strict=True):
            key = key * w + col
        return key

    km, ko = prefix(mine), prefix(other)
    if j < len(widths):  # only tuples whose leading columns match can match: pack those
        keep = _member(km, _distinct(ko))
        okeep = _member(ko, _distinct(km[keep]))
        mine = [c[keep] for c in mine]
        other = [c[okeep] for c in other]
        m = mine[0].size
        both = [np.concatenate([a, b]) for a, b in zip(mine, other, strict=True)]
        keys = _pack(both)
        km, ko = keys[:m], keys[m:]
    rows = mine[0]
    if distinct:  # sorted keys keep the (non-decreasing) rows in order
        km = np.sort(km)
        new = np.ones(km.size, dtype=bool)
        new[1:] = km[1:] != km[:-1]
        km, rows = km[new], rows[new]
    return np.bincount(rows[_member(km, _distinct(ko))], minlength=n).astype(np.int64)


def _member(a: I64, sorted_set: I64) -> NDArray[np.bool_]:
    """Whether each value of `a` is in `sorted_set` (sorted, distinct)."""
    if not sorted_set.size:
        return np.zeros(a.size, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, a), sorted_set.size - 1)
    return np.asarray(sorted_set[pos] == a, dtype=bool)


def _grams(tok_code: I64, tok_row: I64, k: int) -> tuple[I64, list[I64]]:
    """Word k-grams inside each row: their row and the k code columns."""
    if tok_code.size < k:
        return np.zeros(0, dtype=np.int64), [np.zeros(0, dtype=np.int64)] * k
    m = tok_code.size - k + 1
    at = np.flatnonzero(tok_row[:m] == tok_row[k - 1 :])
    return tok_row[at], [tok_code[at + j] for j in range(k)]


def _ratio(num: F64, den: F64) -> F64:
    return np.divide(num, den, out=np.zeros(num.size), where=den > 0)


def _keyword_rows(text: pa.Array) -> I64:
    """Rows holding a non-ASCII word character: there RE2's ASCII `\\b` and case folding may
    differ from Python's, so `\\b` patterns are re-evaluated with `re` on these rows."""
    hit = pc.match_substring_regex(text, f"[{py_class('nonascii_word')}]")
    return np.flatnonzero(np.asarray(hit, dtype=bool))


def _keywords(text: pa.Array, pattern: re.Pattern[str], redo: I64, py: list[str]) -> F64:
    """Matches of a `\\b` pattern per text, exactly as `len(pattern.findall(text))`."""
    out = _count(text, re2(pattern))
    for i, t in zip(redo.tolist(), py, strict=True):
        out[i] = len(pattern.findall(t))
    return out


def _rstripped(text: pa.Array) -> pa.Array:
    """`str.rstrip()` of each text."""
    return pc.replace_substring_regex(text, f"[{py_class('space')}]+$", "")


def _unfinished(end_text: pa.Array) -> F64:
    """`bool(end) and end[-1] not in _FINISHED and not end[-1].isdigit()` of the rstripped
    texts, decided in Python once per distinct last character."""
    last = pc.dictionary_encode(pc.utf8_slice_codeunits(end_text, -1))
    verdict = np.array(
        [bool(c) and c not in _FINISHED and not c.isdigit() for c in last.dictionary.to_pylist()],
        dtype=np.float64,
    )
    idx = np.asarray(last.indices, dtype=np.int64)
    return verdict[idx] if verdict.size else np.zeros(len(end_text))


def _compression(text: pa.LargeStringArray) -> F64:
    """`len(zlib.compress(raw)) / len(raw)` of the UTF-8 bytes, 1.0 up to 20 bytes."""
    rel, data = _buffers(text)
    mv = memoryview(data.data)
    lens = np.diff(rel)
    out = np.ones(len(text))
    comp = zlib.compress
    starts, size = rel.tolist(), lens.tolist()
    for i in np.flatnonzero(lens > 20).tolist():
        out[i] = len(comp(mv[starts[i] : starts[i] + size[i]])) / size[i]
    return out


_LINE_BYTE = np.zeros(256, dtype=bool)
for _c in b"abcdefghijklmnopqrstuvwxyz'":
    _LINE_BYTE[_c] = True


def _repeated_lines(low: pa.LargeStringArray, n: int) -> F64:
    """Share of repeated non-empty lines, lines compared as their words without digits:
    `" ".join(_WORD.findall(_DIGITS.sub(" ", line.lower())))` for `line in text.split("\\n")`.
    After lower-casing and removing digits the word characters left are [a-z'] and every other
    character separates words: the runs of [a-z'] of each line, joined by spaces."""
    rel, data = _buffers(low)
    words, starts = _runs(rel, data, _LINE_BYTE)
    if not starts.size:
        return np.zeros(n)
    bounds = np.sort(np.concatenate([rel[:-1], np.flatnonzero(data == 10) + 1]))
    line = np.searchsorted(bounds, starts, side="right")
    first = np.ones(starts.size, dtype=bool)
    first[1:] = line[1:] != line[:-1]
    at = np.flatnonzero(first)
    lists = pa.LargeListArray.from_arrays(pa.array(np.append(at, starts.size)), words)
    norm = pc.binary_join(lists, pa.scalar(" ", pa.large_string()))
    codes = np.asarray(pc.dictionary_encode(norm).indices, dtype=np.int64)
    rows = (np.searchsorted(rel, starts[at], side="right") - 1).astype(np.int64)
    total = np.bincount(rows, minlength=n).astype(np.float64)
    distinct = _distinct_per_row(rows, [codes], n).astype(np.float64)
    return np.where(total > 0, 1.0 - _ratio(distinct, total), 0.0)


def _gram_sets(
    resp: Tokens, prompt: Tokens, digit_vocab: NDArray[np.bool_], n: int
) -> dict[str, F64]:
    """repeated_trigrams, log_unique_trigrams, log_unique_words (numbers skipped) and
    prompt_echo (share of the response's word 4-grams found among its prompt's)."""
    keep = ~digit_vocab[resp.code]
    code, row = resp.code[keep], resp.row[keep]
    unique_words = _distinct_per_row(row, [code], n).astype(np.float64)
    r3, c3 = _grams(code, row, 3)
    total3 = np.bincount(r3, minlength=n).astype(np.float64)
    uniq3 = _distinct_per_row(r3, c3, n).astype(np.float64)
    rep3 = np.where(total3 > 0, 1.0 - _ratio(uniq3, total3), 0.0)
    r4, c4 = _grams(resp.code, resp.row, 4)
    p4, q4 = _grams(prompt.code, prompt.row, 4)
    shared4 = _shared_per_row(r4, c4, p4, q4, n).astype(np.float64)
    return {
        "repeated_trigrams": rep3,
        "log_unique_words": np.log1p(unique_words),
        "log_unique_trigrams": np.log1p(uniq3),
        "prompt_echo": _ratio(shared4, np.bincount(r4, minlength=n).astype(np.float64)),
    }


def feature_columns(
    prompts: Texts,
    responses: Texts,
    names: Iterable[str] = FEATURE_NAMES,
) -> dict[str, F64]:
    """The named features (default: all, see `FEATURE_NAMES`) of each (prompt, response),
    one float64 column each. None/null texts count as ''."""
    want = list(names)
    unknown = sorted(set(want) - set(FEATURE_NAMES))
    if unknown:
        raise ValueError(f"unknown feature(s): {', '.join(unknown)}")
    pr, rs = as_text(prompts), as_text(responses)
    if len(pr) != len(rs):
        raise ValueError(f"{len(pr)} prompts but {len(rs)} responses")
    n = len(rs)
    if n == 0:
        return {f: np.zeros(0) for f in want}
    w = set(want)
    cols: dict[str, F64] = {}
    n_chars = np.asarray(pc.utf8_length(rs), dtype=np.float64)
    cols["log_chars"] = np.log1p(n_chars)
    rel, data = _buffers(rs)
    counted = _byte_counts(rel, data, "\n?!*`")
    simple: dict[str, Callable[[], F64]] = {
        "n_lines": lambda: np.log1p(counted["\n"]),
        "bullets": lambda: np.log1p(_count(rs, re2(_BULLET))),
        "headers": lambda: np.log1p(_count(rs, re2(_HEADER))),
        "code_blocks": lambda: (counted["```"] // 2 > 0).astype(np.float64),
        "bold": lambda: np.log1p(counted["**"] // 2),
        "numbers": lambda: np.log1p(_count(rs, re2(_DIGITS))),
        "question_marks": lambda: np.log1p(counted["?"]),
        "exclamations": lambda: np.log1p(counted["!"]),
        "compression_ratio": lambda: _compression(rs),
    }
    for f, fn in simple.items():
        if f in w:
            cols[f] = fn()
    if w & {"refusal", "hedging", "apology"}:
        redo = _keyword_rows(rs)
        py = rs.take(pa.array(redo)).to_pylist()
        if "refusal" in w:
            cols["refusal"] = (_keywords(rs, _REFUSAL, redo, py) > 0).astype(np.float64)
        if "hedging" in w:
            cols["hedging"] = np.log1p(_keywords(rs, _HEDGE, redo, py))
        if "apology" in w:
            cols["apology"] = (_keywords(rs, _APOLOGY, redo, py) > 0).astype(np.float64)
    if w & {"empty", "unfinished"}:
        end = _rstripped(rs)
        cols["empty"] = np.asarray(pc.equal(pc.binary_length(end), 0), dtype=np.float64)
        cols["unfinished"] = _unfinished(end)
    if "non_ascii" in w:
        lead = _per_row_sum(data >= 0xC0, rel).astype(np.float64)
        cols["non_ascii"] = _ratio(lead, n_chars)
    word_feats = {
        "log_words", "prompt_overlap", "prompt_coverage", "avg_word_len", "avg_sentence_len",
        "type_token_ratio", "repeated_trigrams", "prompt_echo", "log_unique_words",
        "log_unique_trigrams",
    }  # fmt: skip
    if not w & (word_feats | {"repeated_lines"}):
        return {f: cols[f] for f in want}
    low = lower(rs)
    if "repeated_lines" in w:
        cols["repeated_lines"] = _repeated_lines(low, n)
    if w & word_feats:
        (resp, prompt), vocabulary = tokens([low, lower(pr)])
        n_words = resp.per_row.astype(np.float64)
        cols["log_words"] = np.log1p(n_words)
        r_unique = _distinct_per_row(resp.row, [resp.code], n).astype(np.float64)
        p_unique = _distinct_per_row(prompt.row, [prompt.code], n).astype(np.float64)
        shared = _shared_per_row(
            resp.row, [resp.code], prompt.row, [prompt.code], n, distinct=True
        ).astype(np.float64)
        cols["prompt_overlap"] = _ratio(shared, r_unique)
        cols["prompt_coverage"] = _ratio(shared, p_unique)
        sum_len = np.bincount(resp.row, weights=resp.length, minlength=n).astype(np.float64)
        cols["avg_word_len"] = _ratio(sum_len, n_words) / 10.0
        n_sent = np.maximum(1.0, _count(rs, re2(_SENT)))
        cols["avg_sentence_len"] = np.log1p(n_words / n_sent)
        cols["type_token_ratio"] = _ratio(r_unique, n_words)
        if w & {"repeated_trigrams", "prompt_echo", "log_unique_words", "log_unique_trigrams"}:
            digit_vocab = np.asarray(
                pc.fill_null(pc.match_substring_regex(vocabulary, r"^[0-9]+$"), False),
                dtype=bool,
            )
            cols |= _gram_sets(resp, prompt, digit_vocab, n)
    return {f: cols[f] for f in want}


def response_features(
    prompts: Texts,
    responses: Texts,
) -> tuple[NDArray[np.float64], list[str]]:
    """Feature matrix (n, k) of each (prompt, response) and the k feature names.

    Features are cheap, deterministic and interpretable: length (log chars/words), formatting
    (lines, bullets, headers, code, bold, numbers), refusal/hedging/apology markers, punctuation,
    lexical overlap with the prompt (share of response words in the prompt, share of prompt words
    covered), readability proxies (word and sentence length, type/token ratio), `empty`, and
    degeneration/echo markers (repeated 3-grams and lines, compression ratio, unfinished ending,
    prompt 4-grams copied, non-ASCII share, distinct words and 3-grams).
    """
    cols = feature_columns(prompts, responses)
    n = len(next(iter(cols.values())))
    x = np.column_stack([cols[f] for f in FEATURE_NAMES]) if n else np.zeros((0, 0))
    return x.astype(np.float64).reshape(n, len(FEATURE_NAMES)), list(FEATURE_NAMES)
