"""A scripted LLM for explain's principle and naming prompts, served by
tests/judge/fake_openai.py under the model name `principled`.

It reads the principle from the request and applies a fixed keyword rule for it to both
responses (the higher score wins, equal scores answer C), the way a careful LLM judge would
for these simple principles; a principle it has no rule for gets C. Asked to propose
principles for a vote, it proposes every rule whose verdict agrees with the human's choice.
Asked to name a direction, it names the most frequent "more" word.

The rules cover the principles behind the ICAI synthetic sets (Findeis et al. 2025; the
generation notebook notebooks/03_generating_synthetic_data.ipynb of github.com/rdnfn/icai)
and generic distractors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

Rule = Callable[[str], float]


def _count(*words: str) -> Rule:
    pat = re.compile(r"\b(?:" + "|".join(words) + r")\b", re.I)
    return lambda t: float(len(pat.findall(t)))


def _minus(a: Rule, b: Rule) -> Rule:
    return lambda t: a(t) - b(t)


CAT = _count("cat", "cats", "kitten", "feline")
DOG = _count("dog", "dogs", "puppy", "pup", "canine")
GREEN = _count("green")
BLUE = _count("blue")
LEMON = _count("lemon", "citrus")
RASPBERRY = _count("raspberry", "raspberries")
TRUE_FACTS = _count("washington")
FALSE_FACTS = _count("paris")
PLACES = _count(
    "bath", "edinburgh", "lake district", "cumbria", "london", "york", "cornwall", "cotswolds",
    "oxford", "cambridge", "scotland", "wales", "stonehenge",
)  # fmt: skip
POLITE = _count("of course", "happy to", "glad to", "i'd be happy", "sure thing", "absolutely")
RUDE = _count("i guess", "if i have to", "fine", "don't expect", "whatever", "if you really")
EXCLAIM: Rule = lambda t: float(t.count("!"))  # noqa: E731
NUMBERS = _count(r"\d+")
LENGTH: Rule = lambda t: float(len(t))  # noqa: E731

# canonical wording -> rule (a response that scores higher follows the principle better)
RULES: dict[str, Rule] = {
    "Select the response that features a cat rather than a dog.": _minus(CAT, DOG),
    "Select the response that recommends blue rather than green.": _minus(BLUE, GREEN),
    "Select the response that recommends green rather than blue.": _minus(GREEN, BLUE),
    "Select the response that recommends lemon rather than raspberry ice cream.": _minus(
        LEMON, RASPBERRY
    ),
    "Select the truthful response over the factually incorrect one.": _minus(
        TRUE_FACTS, FALSE_FACTS
    ),
    "Select the helpful response that names a specific destination over a useless one.": PLACES,
    "Select the polite response over the impolite one.": _minus(POLITE, RUDE),
    "Select the response that is more concise.": lambda t: -LENGTH(t),
    "Select the response that is longer.": LENGTH,
    "Select the response that uses more exclamation marks.": EXCLAIM,
    "Select the response that mentions more numbers.": NUMBERS,
    "Select the response that features a dog rather than a cat.": _minus(DOG, CAT),
}
_KEY = {re.sub(r"[^a-z ]", "", k.lower()).strip(): k for k in RULES}

_PRINCIPLE = re.compile(r"^Principle: (.*)$", re.M)
_A = re.compile(r"\[The start of Response A\]\n(.*?)\n\[The end of Response A\]", re.S)
_B = re.compile(r"\[The start of Response B\]\n(.*?)\n\[The end of Response B\]", re.S)
_WINNER = re.compile(r"A human preferred Response ([AB])")
_MORE = re.compile(r'Words typical of the "more" side: ([^.]*)\.')


def rule_for(principle: str) -> Rule | None:
    return RULES.get(_KEY.get(re.sub(r"[^a-z ]", "", principle.lower()).strip(), ""))


def answer(prompt: str) -> str:
    """The scripted reply to one of explain's prompts (test, propose or name)."""
    a, b = _A.search(prompt), _B.search(prompt)
    m = _PRINCIPLE.search(prompt)
    if m and a and b:
        rule = rule_for(m.group(1))
        if rule is None:
            return "This principle does not apply here. [[C]]"
        sa, sb = rule(a.group(1)), rule(b.group(1))
        if sa == sb:
            return "Both follow it equally. [[C]]"
        return "Response A follows it better. [[A]]" if sa > sb else "Response B does. [[B]]"
    w = _WINNER.search(prompt)
    if w and a and b:
        win, lose = (a.group(1), b.group(1)) if w.group(1) == "A" else (b.group(1), a.group(1))
        props = [p for p, rule in RULES.items() if rule(win) > rule(lose)]
        return json.dumps(props[:3])
    more = _MORE.search(prompt)
    if more:
        first = more.group(1).split(",")[0].strip() or "something"
        return f"mentions {first}"
    return "I cannot help with that."
