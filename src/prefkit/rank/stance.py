"""Stance and specificity features of responses for the bt-mixture's text design
(`prefkit.rank.mixture.design_responses`): how much a text hedges, boosts, pads and how
specific it is, measured with general linguistic resources, not with any generator's phrases.

- **Hedges** and **boosters**: the metadiscourse lexicons of Hyland (2005, *Metadiscourse*,
  appendix; the items that are single words or fixed phrases in conversational English), plus
  the first-person epistemic markers of the hedging literature ("I think", "I'm not sure",
  "as far as I know", "if I recall correctly", "I could be wrong") and verification advisories
  ("double-check", "verify"), which hedge a claim by handing its checking to the reader.
- **Boilerplate**: discourse openers (acknowledgement tokens at the start of a reply: "Sure",
  "Of course", "Great question") and closers (offers of further help, thanks, wishes: "let me
  know", "feel free to", "I hope this helps"), and vague language (Channell 1994: general
  nouns such as "thing", "stuff", "people", "situation"; general extenders "and so on", "or
  something"; approximators "a few", "a lot", "a little").
- **Specificity**: per sentence, whether it carries a specific token (a number, a unit, a
  capitalised word that does not start the sentence, a code-like token, or a content word of
  the prompt); counts of specific and generic (no such token) sentences; example markers
  ("for example", "e.g.", "such as"); content-word density (share of words outside
  scikit-learn's English stop-word list), distinct content words, and the mean and standard
  deviation of sentence length; and each sentence's specificity as the largest inverse
  document frequency of its content words over the texts scored together (Spärck Jones 1972:
  a word used in every answer is unspecific), summed over the sentences and averaged.

The lexicon features are log(1 + matches); the sentence counts are plain counts (a padded
answer's cost grows with each added sentence); the rest are shares or log-lengths. Computed per
text in Python: about 1,800 texts per CPU-second (12,000 simulated responses in 6.7 CPU-s on the
shared 2-core dev VM, 2026-12-07).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


def _alt(words: Sequence[str]) -> str:
    return (
        r"\b(?:" + "|".join(sorted((re.escape(w) for w in words), key=len, reverse=True)) + r")\b"
    )


# Hyland (2005), appendix: hedges (single words and fixed phrases)
HEDGES = (
    "about", "almost", "apparently", "appear", "appears", "appeared", "approximately",
    "around", "assume", "assumed", "broadly", "could", "couldn't", "doubt", "doubtful",
    "essentially", "estimate", "estimated", "fairly", "frequently", "generally", "guess",
    "in general", "in most cases", "in most instances", "in my opinion", "in my view",
    "indicate", "indicates", "largely", "likely", "mainly", "may", "maybe", "might", "mostly",
    "often", "on the whole", "ought", "perhaps", "plausible", "plausibly", "possible",
    "possibly", "presumably", "probable", "probably", "quite", "relatively", "roughly",
    "seem", "seems", "seemed", "should", "sometimes", "somewhat", "suggest", "suggests",
    "suppose", "suspect", "tend to", "tends to", "typical", "typically", "uncertain",
    "unclear", "unlikely", "usually", "would", "wouldn't",
)  # fmt: skip
# first-person epistemic markers and verification advisories (hedging literature)
EPISTEMIC = (
    "i think", "i believe", "i guess", "i suppose", "i feel", "i'm not sure", "i am not sure",
    "not sure", "not certain", "i'm not certain", "not entirely sure", "not completely sure",
    "not 100% sure", "not totally sure", "as far as i know", "to my knowledge",
    "to the best of my knowledge", "if i recall correctly", "if i remember correctly",
    "if i remember rightly", "if memory serves", "i could be wrong", "i might be wrong",
    "don't quote me", "double-check", "double check", "verify", "confirm this",
)  # fmt: skip
# Hyland (2005), appendix: boosters
BOOSTERS = (
    "actually", "always", "certainly", "certain that", "clearly", "conclusively", "decidedly",
    "definitely", "demonstrate", "demonstrates", "doubtless", "establish", "evident",
    "evidently", "find", "found", "in fact", "incontestably", "incontrovertibly", "indeed",
    "indisputably", "know", "known", "must", "never", "no doubt", "obvious", "obviously",
    "of course", "prove", "proves", "proved", "really", "show", "shows", "showed", "sure",
    "surely", "true", "truly", "undeniably", "undisputedly", "undoubtedly", "without doubt",
)  # fmt: skip
# discourse openers: acknowledgement and agreement tokens that start a reply
OPENERS = (
    "sure", "of course", "certainly", "absolutely", "okay", "ok", "alright", "yes", "great",
    "good question", "great question", "excellent question", "happy to help", "glad to help",
    "i'd be happy to", "i would be happy to", "i'd be glad to", "no problem", "thanks",
    "thank you", "let me", "here is", "here's", "here are",
)  # fmt: skip
# closers: offers of further help, thanks, good wishes, self-presentation
CLOSERS = (
    "let me know", "feel free", "don't hesitate", "do not hesitate", "hope this helps",
    "hope that helps", "i hope this", "i hope that", "hope it helps", "happy to help",
    "thanks for", "thank you for", "good luck", "best of luck", "any other questions",
    "any more questions", "any further questions", "further questions", "if you have any",
)  # fmt: skip
# vague language (Channell 1994): general nouns, general extenders, approximators, generics
VAGUE = (
    "thing", "things", "stuff", "something", "anything", "everything", "people", "someone",
    "everyone", "anyone", "somebody", "everybody", "situation", "situations", "matter",
    "aspect", "aspects", "way", "ways", "kind of", "sort of", "and so on", "and so forth",
    "or something", "and stuff", "and things like that", "a few", "a lot", "a little",
    "a bit", "a couple of", "lots of", "many", "some", "various", "different", "every",
    "in general", "it depends", "keep in mind", "it is important", "it's important",
)  # fmt: skip
EXAMPLES = ("for example", "for instance", "e.g.", "such as", "including", "like this", "namely",
            "in particular", "specifically", "i.e.")  # fmt: skip
UNITS = (
    "percent", "%", "degrees", "celsius", "fahrenheit", "minutes", "minute", "seconds",
    "second", "hours", "hour", "days", "day", "weeks", "week", "months", "years", "year",
    "km", "kg", "g", "mg", "cm", "mm", "m", "ml", "l", "lb", "lbs", "oz", "miles", "mph",
    "meters", "metres", "grams", "kilograms", "liters", "litres", "inches", "feet", "gb",
    "mb", "kb", "ghz", "mhz", "usd", "dollars", "euros", "$", "€", "£",
)  # fmt: skip
NUMBER_WORDS = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "twenty", "thirty", "forty", "fifty", "hundred", "thousand", "million",
    "billion", "first", "second", "third", "half", "twice", "dozen",
)  # fmt: skip

_HEDGE = re.compile(_alt(HEDGES), re.I)
_EPIST = re.compile(_alt(EPISTEMIC), re.I)
_BOOST = re.compile(_alt(BOOSTERS), re.I)
_OPEN = re.compile(r"^\W*" + _alt(OPENERS)[2:], re.I)
_CLOSE = re.compile(_alt(CLOSERS), re.I)
_VAGUE = re.compile(_alt(VAGUE), re.I)
_EXAMPLE = re.compile(r"(?:" + "|".join(re.escape(w) for w in EXAMPLES) + r")", re.I)
_NUMWORD = re.compile(_alt(NUMBER_WORDS), re.I)
_SENT = re.compile(r"(?<=[.!?])\s+|\n+")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+(?:[.,]\d+)*%?|[$€£%]|\S*[_()=\[\]{}<>/\\`]\S*")
_WORD = re.compile(r"[a-z][a-z']*")
_CODEY = re.compile(r"[_()=\[\]{}<>/\\`]")
_UNITS = frozenset(UNITS)

STANCE_NAMES: tuple[str, ...] = (
    "hedges",
    "epistemic",
    "boosters",
    "opener",
    "closers",
    "vague",
    "examples",
    "numbers_units",
    "capitalised",
    "sentences",
    "specific_sentences",
    "generic_sentences",
    "generic_share",
    "content_density",
    "content_types",
    "sentence_len_mean",
    "sentence_len_sd",
    "specificity_sum",
    "specificity_mean",
)


def _stop() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def _idf(texts: Sequence[str], stop: frozenset[str]) -> dict[str, float]:
    """Inverse document frequency log(n / df) of every content word over `texts` (Spärck
    Jones's term specificity); empty below two texts, where it means nothing."""
    if len(texts) < 2:
        return {}
    df: dict[str, int] = {}
    for t in texts:
        for w in {w for w in _WORD.findall(t.lower()) if w not in stop}:
            df[w] = df.get(w, 0) + 1
    n = len(texts)
    return {w: math.log(n / c) for w, c in df.items()}


def stance_features(prompts: Sequence[str], responses: Sequence[str]) -> tuple[F64, list[str]]:
    """(n, len(STANCE_NAMES)) features of each (prompt, response) and their names."""
    stop = _stop()
    out = np.zeros((len(responses), len(STANCE_NAMES)))
    code_free_texts = [re.sub(r"```.*?(?:```|$)", " ", r, flags=re.S) for r in responses]
    idf = _idf(code_free_texts, stop)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        prompt_words = {w for w in _WORD.findall(p.lower()) if w not in stop and len(w) > 2}
        code_free = code_free_texts[i]
        sents = [s for s in _SENT.split(code_free) if re.search(r"[A-Za-z]", s)]
        spec_idf = [
            max((idf.get(w, 0.0) for w in _WORD.findall(s.lower()) if w not in stop), default=0.0)
            for s in sents
        ]
        specific = generic = 0
        caps = nums = 0
        lens: list[int] = []
        for s in sents:
            toks = _TOKEN.findall(s.lstrip("#*-•> 0123456789.)"))
            lens.append(len(toks))
            spec = False
            for j, t in enumerate(toks):
                low = t.lower()
                if t[0].isdigit() or low in _UNITS or _NUMWORD.fullmatch(low):
                    nums += 1
                    spec = True
                elif j > 0 and t[0].isupper() and low not in stop and t != "I":
                    caps += 1
                    spec = True
                elif _CODEY.search(t) or low in prompt_words:
                    spec = True
            specific += spec
            generic += not spec
        words = _WORD.findall(code_free.lower())
        content = [w for w in words if w not in stop]
        n_s = len(sents)
        out[i] = (
            math.log1p(len(_HEDGE.findall(r))),
            math.log1p(len(_EPIST.findall(r))),
            math.log1p(len(_BOOST.findall(r))),
            float(bool(_OPEN.search(r))),
            math.log1p(len(_CLOSE.findall(r))),
            math.log1p(len(_VAGUE.findall(r))),
            math.log1p(len(_EXAMPLE.findall(r))),
            math.log1p(nums),
            math.log1p(caps),
            float(n_s),
            float(specific),
            float(generic),
            generic / n_s if n_s else 0.0,
            len(content) / len(words) if words else 0.0,
            math.log1p(len(set(content))),
            math.log1p(float(np.mean(lens))) if lens else 0.0,
            float(np.std(lens)) / 10 if lens else 0.0,
            float(sum(spec_idf)),
            float(np.mean(spec_idf)) if spec_idf else 0.0,
        )
    return out, list(STANCE_NAMES)
