"""Verdict parsers: what an LLM judge answered, in the forms judges actually use.

Pairwise (`parse_pairwise`), in this order of precedence; the *last* match of the first form
found wins (judges often restate the format before giving their verdict):

1. Arena-Hard grades `[[A>>B]]`, `[[A>B]]`, `[[A=B]]`, `[[B>A]]`, `[[B>>A]]` (also `<`),
2. MT-Bench brackets `[[A]]`, `[[B]]`, `[[C]]` (tie), `[[TIE]]`, `[[D]]` / `[[BOTH_BAD]]`,
3. a JSON object with a `winner` / `verdict` / `preference` / `better` / `choice` /
   `answer` / `label` / `result` key,
4. Prometheus `[RESULT] A` / `[RESULT] B`,
5. AlpacaEval `Output (a)` / `Output (b)`,
6. a bare answer: the whole reply is `A`, `B`, `tie`, `both bad`, `Assistant A`,
   `Response 2`, `1`, `2`, ... (punctuation and Markdown emphasis ignored).

Positions are as shown: `first` is the response the judge saw as A / 1.

Rubric scores (`parse_scores`): a JSON object `{aspect: n}` or `{aspect: {"rating": n}}`;
lines `Aspect: n` / `Aspect rating: n` / `**Aspect**: n/5`; for a single aspect also
`[RESULT] n`, `Rating: n`, `Score: n` or a bare number. Out-of-scale values do not parse.

`first_probability` turns token log-probabilities at the verdict letter into
P(first is better) when the endpoint returned them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

WINNERS = ("first", "second", "tie", "both_bad")


@dataclass(frozen=True)
class Verdict:
    winner: str  # one of WINNERS, by position as shown
    grade: int | None  # 1 = slightly, 2 = clearly better (Arena-Hard grades); None otherwise
    form: str  # arena | brackets | json | result | output | bare
    start: int  # character offset of the verdict letter in the reply (-1 if none)


_ARENA = re.compile(r"\[\[\s*([AB])\s*(>>|>|=|<<|<)\s*([AB])\s*\]\]", re.I)
_BRACKETS = re.compile(r"\[\[\s*(A|B|C|D|TIE|BOTH[ _-]?BAD|NEITHER)\s*\]\]", re.I)
_RESULT = re.compile(r"\[RESULT\]\s*[:(]?\s*([AB])\b", re.I)
_OUTPUT = re.compile(r"Output\s*\(\s*([ab])\s*\)", re.I)
_JSON_KEYS = ("winner", "verdict", "preference", "better", "choice", "answer", "label", "result")
_BARE = {
    "a": "first", "b": "second", "1": "first", "2": "second",
    "assistant a": "first", "assistant b": "second", "response a": "first",
    "response b": "second", "response 1": "first", "response 2": "second",
    "output a": "first", "output b": "second", "output (a)": "first", "output (b)": "second",
    "c": "tie", "tie": "tie", "equal": "tie", "draw": "tie", "0": "tie",
    "d": "both_bad", "both bad": "both_bad", "both_bad": "both_bad", "neither": "both_bad",
}  # fmt: skip


def _letter(s: str) -> str | None:
    return _BARE.get(re.sub(r"[\s_]+", " ", s.strip().lower()))


def _arena(m: re.Match[str]) -> Verdict | None:
    left, op, right = m.group(1).upper(), m.group(2), m.group(3).upper()
    if left == right:
        return None
    if op == "=":
        return Verdict("tie", None, "arena", m.start(1))
    wins_left = op in (">", ">>")
    winner = left if wins_left else right
    return Verdict(
        "first" if winner == "A" else "second", 2 if len(op) == 2 else 1, "arena", m.start(1)
    )


def _json_objects(text: str) -> list[tuple[int, dict[str, Any]]]:
    """Every outermost JSON object in the text, with its start offset."""
    dec = json.JSONDecoder()
    out: list[tuple[int, dict[str, Any]]] = []
    i = text.find("{")
    while i >= 0:
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            out.append((i, obj))
        i = text.find("{", end)
    return out


def _json_verdict(text: str) -> Verdict | None:
    found: Verdict | None = None
    for start, obj in _json_objects(text):
        low = {str(k).lower(): v for k, v in obj.items()}
        for k in _JSON_KEYS:
            if k in low and isinstance(low[k], str | int) and not isinstance(low[k], bool):
                w = _letter(str(low[k]))
                if w is not None:
                    found = Verdict(w, None, "json", start)
                break
    return found


def parse_pairwise(text: str | None) -> Verdict | None:
    """The judge's verdict, or None when no accepted form is present (see module doc)."""
    if not text or not text.strip():
        return None
    arena = [v for v in (_arena(m) for m in _ARENA.finditer(text)) if v is not None]
    if arena:
        return arena[-1]
    br = list(_BRACKETS.finditer(text))
    if br:
        m = br[-1]
        tok = m.group(1).upper().replace("-", "_").replace(" ", "_")
        w = {"A": "first", "B": "second", "C": "tie", "TIE": "tie"}.get(tok, "both_bad")
        return Verdict(w, None, "brackets", m.start(1))
    js = _json_verdict(text)
    if js is not None:
        return js
    res = list(_RESULT.finditer(text))
    if res:
        m = res[-1]
        return Verdict(
            "first" if m.group(1).upper() == "A" else "second", None, "result", m.start(1)
        )
    out = list(_OUTPUT.finditer(text))
    if out:
        m = out[-1]
        return Verdict(
            "first" if m.group(1).lower() == "a" else "second", None, "output", m.start(1)
        )
    bare = re.sub(r"[*`\"'.!:]+", "", text).strip()
    bw = _letter(bare) if len(bare) <= 24 else None
    if bw is not None:
        return Verdict(bw, None, "bare", text.find(bare[:1]) if bare else -1)
    return None


def _norm_aspect(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


_NUM = r"(-?\d+(?:\.\d+)?)"


def parse_scores(
    text: str | None, aspects: list[str], lo: float = 1.0, hi: float = 5.0
) -> dict[str, float]:
    """Scores per aspect found in the reply (aspects absent or out of [lo, hi] are missing)."""
    out: dict[str, float] = {}
    if not text or not text.strip():
        return out
    want = {_norm_aspect(a): a for a in aspects}

    def ok(v: Any) -> float | None:
        try:
            x = float(v)
        except (TypeError, ValueError):
            return None
        return x if math.isfinite(x) and lo <= x <= hi else None

    def walk(obj: dict[str, Any], depth: int) -> None:
        for k, v in obj.items():
            a = want.get(_norm_aspect(str(k)))
            if a is None:
                if isinstance(v, dict) and depth < 2:  # {"ratings": {...}}
                    walk(v, depth + 1)
                continue
            if isinstance(v, dict):
                v = v.get("rating", v.get("score"))
            x = ok(v)
            if x is not None:
                out[a] = x

    for _, obj in _json_objects(text):
        walk(obj, 0)
    for key, a in want.items():
        if a in out:
            continue
        pat = r"[\W_]*".join(re.escape(w) for w in key.split())
        rx = re.compile(
            rf"(?im)^[\s#>*\-_\d.)]*{pat}[\s*_]*(?:rating|score)?[\s*_]*[:=\-–]\s*\**\s*{_NUM}"
        )
        ms = list(rx.finditer(text))
        if ms:
            x = ok(ms[-1].group(1))
            if x is not None:
                out[a] = x
    if len(aspects) == 1 and aspects[0] not in out:
        for rx in (
            re.compile(rf"\[RESULT\]\s*\(?{_NUM}", re.I),
            re.compile(rf"(?im)^\W*(?:rating|score)\W*[:=]\s*\**\s*{_NUM}"),
        ):
            ms = list(rx.finditer(text))
            if ms:
                x = ok(ms[-1].group(1))
                if x is not None:
                    out[aspects[0]] = x
                    break
        else:
            bare = re.sub(r"[*`\"'\s]+", "", text)
            fm = re.fullmatch(rf"{_NUM}(?:/\d+)?\.?", bare)
            if fm:
                x = ok(fm.group(1))
                if x is not None:
                    out[aspects[0]] = x
    return out


def first_probability(logprobs: list[dict[str, Any]] | None, text: str, start: int) -> float | None:
    """P(first better) = p(A) / (p(A) + p(B)) from the top log-probabilities of the token
    that holds the verdict letter at character `start` (A/1 = first, B/2 = second).
    None when the endpoint gave no log-probabilities or neither letter is among them."""
    if not logprobs or start < 0:
        return None
    pos = 0
    tok: dict[str, Any] | None = None
    for t in logprobs:
        s = str(t.get("token", ""))
        if pos <= start < pos + max(len(s), 1):
            tok = t
            break
        pos += len(s)
    if tok is None:
        return None
    pa = pb = 0.0
    cands = list(tok.get("top") or []) or [[tok.get("token", ""), tok.get("logprob", 0.0)]]
    for name, lp in cands:
        key = re.sub(r"[\s\[\]()*\"'`:.]+", "", str(name)).upper()
        p = math.exp(float(lp))
        if key in ("A", "1"):
            pa += p
        elif key in ("B", "2"):
            pb += p
    if pa + pb <= 0:
        return None
    return pa / (pa + pb)
