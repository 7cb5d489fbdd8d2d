"""Was this response cut off? Evidence of truncation beyond "no final punctuation".

A response that merely lacks a final full stop is not flagged: chat answers, list items,
headings, code and answers ending with a URL or a number often end that way. A response is
truncated only with evidence (scores in 0..1; the strongest evidence wins):

- `length cap` (0.9): it does not end a sentence and its length is a cap: one length
  (≥ 100 characters) shared by ≥ max(8, 0.5%) of the distinct responses, ≥ 80% of them
  unfinished, at least 3× as many as the average length within ±5% of it;
- `unclosed code block` (0.85): an odd number of ``` fences — it stops inside a code block;
- `token limit` (0.8): it does not end a sentence and its word count sits in a pile-up just
  below the longest such responses (a generation limit in tokens: ≥ max(5, 1%) of the
  unfinished responses within 10% of the longest, three times denser than the band below);
- `cut mid-word` (0.8): its last word (2+ letters) never occurs as a whole word in the
  data but begins a word that occurs at least 3 times (`transpor` of `transport`);
- `dangling word` (0.7): it ends on a word no English sentence ends on — an article,
  possessive, conjunction or a contraction such as `I'd` (`... along the`);
- `unclosed bracket or quote` (0.7): the last sentence opens `(`, `[` or `“` and never
  closes it;
- `dangling list or colon` (0.6): it ends with a bare list marker or with a colon.

Mid-word, dangling-word and bracket evidence never applies when the last line is code
(indented, or ending in `;`, `{`, `}`, `)`, `=`) or a title (every word capitalized), and
nothing but a length cap, a token-limit pile-up or an open code block applies to an answer
ending with a URL or a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

MIN_CAP_CHARS = 100
# a sentence (or a quotation, a bracket, an emoji, a markdown fence) is finished
FINISHED = r"[.!?…。！？\"'”’)\]}>*`~_|;]\s*$|[\p{So}\p{Sk}]\s*$"
URL_END = r"(https?://|www\.)\S+\s*$"
NUMBER_END = r"(^|[^\p{L}\p{N}_])\d[\d.,%:/-]*\s*$"
CODE_LAST_LINE = r"(^|\n)(\t| {4,})[^\n]*$|[;{}()=]\s*$"
# a last line in title case (every word of 3+ letters capitalized) is a heading or a title
TITLE_LAST_LINE = (
    r"(^|\n)\s*(\p{Lu}\p{L}*|\p{L}{1,2}|[^\p{L}\s]+)(\s+(\p{Lu}\p{L}*|\p{L}{1,2}|[^\p{L}\s]+))*\s*$"
)
OPEN_BRACKET = r"[(\[“][^)\]”\n]*$"
LIST_OR_COLON = r"(\n\s*([-*•+]|\d{1,3}[.)])\s*|:\s*)$"
DANGLING = (
    "a an the my your our their its and or but nor because although whereas unless if "
    "than whose of such very i i'd i'm i'll i've you're we're they're "
    "it's that's there's let's"
)
DANGLING_RE = (
    r"(?i)(^|[\s(\"“])(" + "|".join(w.replace("'", "['’]") for w in DANGLING.split()) + r")\s*$"
)
LAST_WORD = r"(?:^|[^\p{L}'’])(?P<w>\p{L}+)\s*$"

REASONS = (
    (0.9, "stops at the length cap ({cap} chars)"),
    (0.85, "stops inside an unclosed code block"),
    (0.8, "its length sits in a pile-up at a generation limit (~{limit} words)"),
    (0.8, "ends mid-word ('{word}')"),
    (0.7, "ends on a word no sentence ends on ('{word}')"),
    (0.7, "ends inside an unclosed bracket or quote"),
    (0.6, "ends with a bare list marker or a colon"),
)


def _m(text: pa.Array, pattern: str) -> B:
    return np.asarray(pc.fill_null(pc.match_substring_regex(text, pattern), False), dtype=bool)


def _cap(lengths: I64, open_: B) -> tuple[int | None, B]:
    """A character cap: one length (≥ 100) shared by many distinct responses, most of them
    unfinished, far more than the lengths around it."""
    none: tuple[int | None, B] = (None, np.zeros(lengths.size, dtype=bool))
    if lengths.size == 0:
        return none
    counts = np.bincount(lengths)
    opens = np.bincount(lengths[open_], minlength=counts.size)
    need = max(8, 0.005 * lengths.size)
    best: int | None = None
    for length in np.flatnonzero(counts >= need).tolist():
        if length < MIN_CAP_CHARS or opens[length] < 0.8 * counts[length]:
            continue
        lo, hi = int(length * 0.95), min(int(length * 1.05) + 1, counts.size)
        around = (counts[lo:hi].sum() - counts[length]) / max(hi - lo - 1, 1)
        if counts[length] >= 3 * max(around, 1.0) and (
            best is None or counts[length] > counts[best]
        ):
            best = length
    if best is None:
        return none
    return best, (lengths == best) & open_


def _pileup(words: I64, open_: B) -> tuple[int | None, B]:
    """Unfinished responses crowding just below the longest ones: a token limit."""
    w = words[open_]
    if w.size < 20:
        return None, np.zeros(words.size, dtype=bool)
    top = int(w.max())
    band = (w >= 0.9 * top).sum()
    below = ((w >= 0.8 * top) & (w < 0.9 * top)).sum()
    if top >= 30 and band >= max(5, 0.01 * w.size) and band >= 3 * max(below, 1):
        return top, open_ & (words >= 0.9 * top)
    return None, np.zeros(words.size, dtype=bool)


def _last_token(text: pa.Array, pattern: str) -> pa.Array:
    """The group of `pattern` at the end of each text, lower-cased (null where none)."""
    return pc.utf8_lower(pc.struct_field(pc.extract_regex(text, pattern), [0]))


def _word_counts(trimmed: pa.Array) -> pa.Table:
    """Occurrences of each lower-cased word (1–40 letters) in `trimmed`: columns `values`,
    `counts`."""
    flat = pc.split_pattern_regex(pc.utf8_lower(trimmed), r"[^\p{L}'’]+").flatten()
    size = pc.utf8_length(flat)
    flat = flat.filter(pc.and_(pc.greater(size, 0), pc.less_equal(size, 40)))
    vc = pc.value_counts(flat.cast(pa.large_string()))
    return pa.table({"values": vc.field("values"), "counts": vc.field("counts")})


def _merge_word_counts(parts: list[pa.Table]) -> pa.Table:
    t = pa.concat_tables(parts)
    if len(parts) == 1:
        return t
    g = t.group_by("values").aggregate([("counts", "sum")])
    return pa.table({"values": g.column("values"), "counts": g.column("counts_sum")})


def _midword(
    cand: I64, lw: pa.Array, counts: pa.Table, n: int
) -> tuple[B, dict[int, str]]:  # fmt: skip
    """Last word unknown as a whole word in the data, but the start of a frequent word.
    `cand`: the texts whose last word `lw` (lower-cased) is a candidate; `counts`: the data's
    word counts (`_word_counts`)."""
    from bisect import bisect_left
    from collections import Counter

    out = np.zeros(n, dtype=bool)
    words: dict[int, str] = {}
    if not cand.size:
        return out, words
    vals = counts.column("values").combine_chunks()
    cnts = counts.column("counts").combine_chunks()
    long_enough = np.asarray(pc.greater_equal(pc.utf8_length(lw), 2), dtype=bool)
    cand, lw = cand[long_enough], lw.filter(pa.array(long_enough))
    own = Counter(lw.to_pylist())
    pos = pc.index_in(lw, value_set=vals)
    total = pc.fill_null(pc.take(cnts, pc.fill_null(pos, 0)), 0)
    total = np.where(np.asarray(pos.is_valid(), dtype=bool), np.asarray(total), 0)
    frequent = sorted(vals.filter(pc.greater_equal(cnts, 3)).to_pylist())
    for i, word, tot in zip(cand.tolist(), lw.to_pylist(), total.tolist(), strict=True):
        if tot - own[word] > 0:  # a whole word elsewhere in the data
            continue
        j = bisect_left(frequent, word)
        # a frequent word that starts with the fragment sorts right after it
        if j < len(frequent) and frequent[j] != word and frequent[j].startswith(word):
            out[i] = True
            words[i] = word
    return out, words


_FLAGS = ("empty", "open", "url_num", "prose", "fence", "dangling", "bracket", "listcolon")


def _text_evidence(
    text: pa.Array,
) -> tuple[dict[str, NDArray[np.generic]], pa.Table, pa.Array, pa.Array]:
    """What each text shows on its own (length, word count, flags), the texts' word counts,
    the last word of each text that may end mid-word (else null) and the last token of each
    text ending on a dangling word (else null)."""
    text = pc.fill_null(text, "")
    trimmed = pc.utf8_rtrim_whitespace(text)
    empty = np.asarray(pc.equal(pc.utf8_length(trimmed), 0), dtype=bool)
    finished = _m(trimmed, FINISHED)
    ends_url_num = _m(trimmed, URL_END) | _m(trimmed, NUMBER_END)
    code_last = _m(trimmed, CODE_LAST_LINE)
    open_ = ~finished & ~empty
    prose = open_ & ~ends_url_num & ~code_last & ~_m(trimmed, TITLE_LAST_LINE)
    fences = np.asarray(pc.count_substring(text, "```"), dtype=np.int64)
    last = _last_token(trimmed, LAST_WORD)
    lw = pc.if_else(pa.array(prose), last, pa.scalar(None, last.type))
    ev: dict[str, NDArray[np.generic]] = {
        "length": np.asarray(pc.utf8_length(text), dtype=np.int64),
        "words": np.asarray(
            pc.list_value_length(pc.utf8_split_whitespace(trimmed)), dtype=np.int64
        ),
        "empty": empty,
        "open": open_,
        "url_num": ends_url_num,
        "prose": prose,
        "fence": (fences % 2 == 1) & ~empty,
        "dangling": prose & _m(trimmed, DANGLING_RE),
        "bracket": prose & _m(trimmed, OPEN_BRACKET),
        "listcolon": ~empty & ~code_last & _m(trimmed, LIST_OR_COLON),
    }
    ends = _last_token(trimmed, r"(?P<w>\S+)\s*$")
    ev_last = pc.if_else(pa.array(ev["dangling"]), ends, pa.scalar(None, ends.type))
    return ev, _word_counts(trimmed), lw, ev_last


def truncation_scores(text: pa.Array) -> tuple[F64, list[str], dict[str, int | None]]:
    """Score (0 = no evidence) and reason for each text, and the cap/limit found.

    `text` holds the distinct raw responses of a dataset (the cap and pile-up rules count
    distinct responses, so a response judged by several annotators counts once)."""
    n = len(text)
    return truncation_scores_chunks([(np.arange(n, dtype=np.int64), text)], n)


MERGE_WORDS = 1 << 22  # word counts held before the chunks' counts are merged


def truncation_scores_chunks(
    chunks: Iterable[tuple[I64, pa.Array]], n: int
) -> tuple[F64, list[str], dict[str, int | None]]:
    """`truncation_scores` of `n` texts given a chunk at a time as (indices, texts): each
    text's own evidence is kept as a few numbers, the data's word counts merged chunk by
    chunk; the rules that look at every text (cap, pile-up, mid-word) run at the end."""
    if n == 0:
        return np.zeros(0), [], {"length_cap": None, "word_limit": None}
    ev: dict[str, NDArray[Any]] = {k: np.zeros(n, dtype=np.int64) for k in ("length", "words")}
    ev |= {k: np.zeros(n, dtype=bool) for k in _FLAGS}
    cand_idx: list[I64] = []
    cand_word: list[pa.Array] = []
    last_word: dict[int, str] = {}
    counts: list[pa.Table] = []
    held = 0
    for idx, text in chunks:
        e, wc, lw, ends = _text_evidence(text)
        for k, v in e.items():
            ev[k][idx] = v
        ok = np.asarray(lw.is_valid(), dtype=bool)
        cand_idx.append(idx[ok])
        cand_word.append(lw.filter(pa.array(ok)).cast(pa.large_string()))
        okd = np.flatnonzero(np.asarray(ends.is_valid(), dtype=bool))
        if okd.size:
            for i, w in zip(idx[okd].tolist(), ends.take(pa.array(okd)).to_pylist(), strict=True):
                last_word[int(i)] = w
        counts.append(wc)
        held += wc.num_rows
        if held > MERGE_WORDS and len(counts) > 1:
            counts = [_merge_word_counts(counts)]
            held = counts[0].num_rows
    words_all = (
        _merge_word_counts(counts)
        if counts
        else pa.table(
            {"values": pa.array([], pa.large_string()), "counts": pa.array([], pa.int64())}
        )
    )
    open_: B = ev["open"]
    ends_url_num: B = ev["url_num"]
    cap, cap_hit = _cap(ev["length"], open_ & ~ends_url_num)
    limit, pile = _pileup(ev["words"], open_ & ~ends_url_num)
    cidx = np.concatenate(cand_idx) if cand_idx else np.zeros(0, dtype=np.int64)
    order = np.argsort(cidx, kind="stable")  # candidates in text order
    cw = pa.concat_arrays(cand_word) if cand_word else pa.array([], pa.large_string())
    mid, mid_word = _midword(cidx[order], cw.take(pa.array(order)), words_all, n)
    rules = (cap_hit, ev["fence"], pile, mid, ev["dangling"], ev["bracket"], ev["listcolon"])
    score = np.zeros(n)
    reason = [""] * n
    for (s, template), hit in zip(REASONS, rules, strict=True):
        for i in np.flatnonzero(hit & (score < s)).tolist():
            score[i] = s
            reason[i] = template.format(
                cap=cap, limit=limit, word=mid_word.get(i) or last_word.get(i) or ""
            )
    return score, reason, {"length_cap": cap, "word_limit": limit}
