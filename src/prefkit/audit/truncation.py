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


def _midword(text: pa.Array, open_: B) -> tuple[B, list[str | None]]:
    """Last word unknown as a whole word in the data, but the start of a frequent word."""
    from bisect import bisect_left
    from collections import Counter

    n = len(text)
    out = np.zeros(n, dtype=bool)
    words: list[str | None] = [None] * n
    last = _last_token(text, LAST_WORD)
    cand = np.flatnonzero(open_ & np.asarray(last.is_valid(), dtype=bool))
    if not cand.size:
        return out, words
    flat = pc.split_pattern_regex(pc.utf8_lower(text), r"[^\p{L}'’]+").flatten()
    size = pc.utf8_length(flat)
    flat = flat.filter(pc.and_(pc.greater(size, 0), pc.less_equal(size, 40)))
    vc = pc.value_counts(flat)
    vals, cnts = vc.field("values"), vc.field("counts")
    lw = last.take(pa.array(cand))
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


def truncation_scores(text: pa.Array) -> tuple[F64, list[str], dict[str, int | None]]:
    """Score (0 = no evidence) and reason for each text, and the cap/limit found.

    `text` holds the distinct raw responses of a dataset (the cap and pile-up rules count
    distinct responses, so a response judged by several annotators counts once)."""
    n = len(text)
    if n == 0:
        return np.zeros(0), [], {"length_cap": None, "word_limit": None}
    text = pc.fill_null(text, "")
    trimmed = pc.utf8_rtrim_whitespace(text)
    lengths = np.asarray(pc.utf8_length(text), dtype=np.int64)
    empty = np.asarray(pc.equal(pc.utf8_length(trimmed), 0), dtype=bool)
    finished = _m(trimmed, FINISHED)
    ends_url_num = _m(trimmed, URL_END) | _m(trimmed, NUMBER_END)
    code_last = _m(trimmed, CODE_LAST_LINE)
    open_ = ~finished & ~empty
    prose = open_ & ~ends_url_num & ~code_last & ~_m(trimmed, TITLE_LAST_LINE)
    fences = np.asarray(pc.count_substring(text, "```"), dtype=np.int64)
    words = np.asarray(pc.list_value_length(pc.utf8_split_whitespace(trimmed)), dtype=np.int64)
    cap, cap_hit = _cap(lengths, open_ & ~ends_url_num)
    limit, pile = _pileup(words, open_ & ~ends_url_num)
    mid, mid_word = _midword(trimmed, prose)
    last = _last_token(trimmed, r"(?P<w>\S+)\s*$")
    dangling = prose & _m(trimmed, DANGLING_RE)
    bracket = prose & _m(trimmed, OPEN_BRACKET)
    listcolon = ~empty & ~code_last & _m(trimmed, LIST_OR_COLON)
    fence = (fences % 2 == 1) & ~empty
    rules = (cap_hit, fence, pile, mid, dangling, bracket, listcolon)
    score = np.zeros(n)
    reason = [""] * n
    last_list = last.to_pylist()
    for (s, template), hit in zip(REASONS, rules, strict=True):
        for i in np.flatnonzero(hit & (score < s)).tolist():
            score[i] = s
            reason[i] = template.format(
                cap=cap, limit=limit, word=mid_word[i] or last_list[i] or ""
            )
    return score, reason, {"length_cap": cap, "word_limit": limit}
