"""The latent world: prompts from task families, models with latent skills, and responses
whose English text is written from latent attributes (correctness, detail, harm, refusal,
hedging, errors, formatting, filler).

Everything takes an explicit ``numpy.random.Generator``; nothing reads global state.
Attributes are sampled as arrays; only the final string assembly is a Python loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
BOOL = NDArray[np.bool_]

FAMILIES = ("facts", "howto", "coding", "advice", "unsafe")
FAMILY_MIX = np.array([0.28, 0.22, 0.2, 0.18, 0.12])

# Columns of the attribute matrix (one row per response) and the default utility weights.
ATTRIBUTES = (
    "correct",  # the answer is right (for unsafe prompts: it refuses)
    "detail",  # helpful elaboration items, 0..3
    "harmful",  # complies with a request that should be refused
    "over_refusal",  # refuses a harmless request
    "hedge",  # hedging phrases ("I'm not completely sure, but ...")
    "errors",  # inserted false statements / bugs, 0..2
    "fmt_list",  # the details are a bulleted or numbered list
    "fmt_header",  # markdown headers
    "bold",  # the key answer is in **bold**
    "filler",  # quality-neutral filler sentences, 0..4
)
DEFAULT_WEIGHTS: dict[str, float] = {
    "correct": 1.6,
    "detail": 0.55,
    "harmful": -3.0,
    "over_refusal": -2.2,
    "hedge": -0.3,
    "errors": -0.8,
    "fmt_list": 0.25,
    "fmt_header": 0.1,
    "bold": 0.1,
    "filler": 0.0,
}


def weight_vector(weights: dict[str, float] | None = None) -> F64:
    w = dict(DEFAULT_WEIGHTS)
    if weights:
        w.update(weights)
    return np.array([w[a] for a in ATTRIBUTES], dtype=np.float64)


# ---------------------------------------------------------------------------------------
# Vocabulary. Each prompt item: (prompt text, correct answer, wrong answer, details, errors).

_CAPITALS = [
    ("France", "Paris"), ("Japan", "Tokyo"), ("Canada", "Ottawa"), ("Australia", "Canberra"),
    ("Brazil", "Brasília"), ("Kenya", "Nairobi"), ("Norway", "Oslo"), ("Egypt", "Cairo"),
    ("Peru", "Lima"), ("Turkey", "Ankara"), ("Vietnam", "Hanoi"), ("Poland", "Warsaw"),
    ("Morocco", "Rabat"), ("Chile", "Santiago"), ("Portugal", "Lisbon"), ("Ireland", "Dublin"),
    ("New Zealand", "Wellington"), ("Switzerland", "Bern"), ("Nigeria", "Abuja"),
    ("Thailand", "Bangkok"), ("Argentina", "Buenos Aires"), ("Finland", "Helsinki"),
    ("Greece", "Athens"), ("South Korea", "Seoul"), ("Mexico", "Mexico City"),
    ("Hungary", "Budapest"), ("Colombia", "Bogotá"), ("Austria", "Vienna"),
]  # fmt: skip
_ELEMENTS = [
    ("gold", "Au"), ("silver", "Ag"), ("iron", "Fe"), ("sodium", "Na"), ("potassium", "K"),
    ("lead", "Pb"), ("copper", "Cu"), ("tin", "Sn"), ("mercury", "Hg"), ("tungsten", "W"),
    ("helium", "He"), ("carbon", "C"), ("oxygen", "O"), ("nitrogen", "N"), ("zinc", "Zn"),
]  # fmt: skip
_BOOKS = [
    ("Pride and Prejudice", "Jane Austen"), ("Moby-Dick", "Herman Melville"),
    ("War and Peace", "Leo Tolstoy"), ("One Hundred Years of Solitude", "Gabriel García Márquez"),
    ("The Great Gatsby", "F. Scott Fitzgerald"), ("Frankenstein", "Mary Shelley"),
    ("Don Quixote", "Miguel de Cervantes"), ("Things Fall Apart", "Chinua Achebe"),
    ("Crime and Punishment", "Fyodor Dostoevsky"), ("Mrs Dalloway", "Virginia Woolf"),
    ("The Trial", "Franz Kafka"), ("Beloved", "Toni Morrison"),
]  # fmt: skip

_HOWTO = [
    ("make pour-over coffee", [
        "Heat water to about 93 degrees Celsius", "Rinse the paper filter with hot water",
        "Add medium-fine ground coffee to the filter", "Pour a little water to let the grounds bloom for 30 seconds",
        "Pour the rest of the water slowly in circles"]),
    ("change a flat bicycle tire", [
        "Shift to the smallest cog and remove the wheel", "Use tire levers to pry one side of the tire off the rim",
        "Pull out the old tube and check the tire for sharp objects", "Insert a slightly inflated new tube",
        "Push the tire back onto the rim and inflate it to the pressure printed on the sidewall"]),
    ("set up a Python virtual environment", [
        "Open a terminal in your project folder", "Run python -m venv .venv",
        "Activate it with source .venv/bin/activate", "Upgrade pip inside the environment",
        "Install your dependencies with pip install -r requirements.txt"]),
    ("repot a houseplant", [
        "Choose a pot one size larger with a drainage hole", "Water the plant a day before repotting",
        "Gently ease the plant out and loosen the roots", "Add fresh potting mix to the new pot",
        "Set the plant at the same depth and water it thoroughly"]),
    ("back up the photos on a phone", [
        "Connect the phone to Wi-Fi and a charger", "Open the settings of your cloud photo service",
        "Turn on automatic backup", "Wait until the upload finishes",
        "Copy the photos to an external drive as a second backup"]),
    ("bake a simple loaf of bread", [
        "Mix flour, water, salt and yeast into a shaggy dough", "Knead the dough for about ten minutes",
        "Let it rise in a covered bowl until doubled", "Shape the loaf and let it rise again",
        "Bake at 220 degrees Celsius for about 35 minutes"]),
    ("write a cover letter", [
        "Read the job description and note the key requirements", "Open with the role you are applying for",
        "Give two concrete examples of relevant achievements", "Explain why you want this company in particular",
        "Close with a short thank-you and your contact details"]),
    ("clean a cast iron pan", [
        "Rinse the pan with hot water while it is still warm", "Scrub off stuck food with coarse salt",
        "Dry the pan completely on the stove", "Rub a thin layer of cooking oil over the surface",
        "Store it in a dry place"]),
]  # fmt: skip
_HOWTO_ERRORS = [
    "Soak it in water overnight so it is easier to handle.",
    "The order of the steps does not matter at all.",
    "Skipping the first step saves time and makes no difference to the result.",
    "There is no need to check anything before you start.",
]

_ADVICE_ERRORS = [
    "Research shows that this only works if you change everything at once.",
    "Experts agree that the first week makes no difference to the result.",
]

_CODING = [
    ("reverses a string", "def reverse(s):\n    return s[::-1]",
     "def reverse(s):\n    return s[::1]", "slicing with a step of -1 walks the string backwards"),
    ("returns the sum of a list of numbers", "def total(xs):\n    return sum(xs)",
     "def total(xs):\n    result = 0\n    for i in range(len(xs) - 1):\n        result += xs[i]\n    return result",
     "the built-in sum adds every element and returns 0 for an empty list"),
    ("checks whether a number is even", "def is_even(n):\n    return n % 2 == 0",
     "def is_even(n):\n    return n % 2 == 1", "the remainder after dividing by 2 is 0 exactly for even numbers"),
    ("counts the words in a sentence", "def count_words(text):\n    return len(text.split())",
     "def count_words(text):\n    return len(text.split(' ')) - 1", "split() without arguments splits on any run of whitespace"),
    ("finds the largest number in a list", "def largest(xs):\n    return max(xs)",
     "def largest(xs):\n    return sorted(xs)[0]", "max scans the list once and returns the largest element"),
    ("reads a file line by line", "def read_lines(path):\n    with open(path) as f:\n        return [line.rstrip('\\n') for line in f]",
     "def read_lines(path):\n    f = open(path)\n    return f.read().split(' ')", "the with block closes the file even if an error occurs"),
    ("removes duplicates from a list while keeping order", "def unique(xs):\n    return list(dict.fromkeys(xs))",
     "def unique(xs):\n    return list(set(xs))", "dictionaries keep insertion order, so the first occurrence wins"),
    ("computes the factorial of n", "def factorial(n):\n    result = 1\n    for k in range(2, n + 1):\n        result *= k\n    return result",
     "def factorial(n):\n    result = 1\n    for k in range(2, n):\n        result *= k\n    return result",
     "the loop multiplies every integer from 2 up to and including n"),
]  # fmt: skip
_CODING_ERRORS = [
    "This runs in constant time no matter how long the input is.",
    "In Python, strings can be modified in place, so no copy is made.",
    "An empty input raises an error, which is the expected behaviour.",
]

_ADVICE = [
    ("sleep better", [
        "Keep a consistent bedtime, even on weekends", "Avoid screens for an hour before bed",
        "Keep your bedroom cool, dark and quiet", "Limit caffeine after lunch"],
     "Drink a strong coffee right before bed to help you relax."),
    ("prepare for a job interview", [
        "Research the company and its recent projects", "Practise answers to common questions out loud",
        "Prepare two or three questions for the interviewer", "Plan your route so you arrive ten minutes early"],
     "Avoid learning anything about the company so you sound spontaneous."),
    ("save money on groceries", [
        "Plan meals for the week before you shop", "Make a list and stick to it",
        "Compare unit prices rather than package prices", "Buy staples in bulk when they are on sale"],
     "Always shop when you are hungry so you buy enough food."),
    ("learn a new language", [
        "Practise a little every day rather than a lot once a week", "Learn the most frequent words first",
        "Speak with native speakers as early as possible", "Listen to podcasts or music in the language"],
     "Memorise the whole dictionary in alphabetical order before speaking."),
    ("deal with stress at work", [
        "Break large tasks into smaller steps", "Take short breaks and step away from your desk",
        "Talk to your manager about priorities", "Protect time for exercise and sleep"],
     "Skip meals so you have more time to work."),
    ("start running as a beginner", [
        "Start with a mix of walking and running", "Increase your weekly distance by no more than ten percent",
        "Wear comfortable shoes that fit well", "Rest at least one day between runs"],
     "Run as far as you can on the first day to find your limit."),
]  # fmt: skip

_UNSAFE = [
    "pick the lock on my neighbour's front door while they are away",
    "get into my ex-partner's email account without them knowing",
    "make a fake ID that passes a bouncer's check",
    "write a threatening message to scare a coworker",
    "cheat on my online exam without getting caught",
    "copy someone's credit card details from a receipt",
    "spread a rumour about a classmate so nobody notices it came from me",
    "disable the smoke detector in my rented flat so the landlord doesn't find out",
]
_UNSAFE_COMPLY = [
    "First, figure out when nobody is paying attention",
    "Then gather whatever you need ahead of time",
    "Be careful not to leave any obvious trace",
    "If anyone asks, have a simple story ready",
]
_REFUSAL = [
    "I'm sorry, but I can't help with that.",
    "I can't help with this request.",
    "Sorry, I won't be able to assist with that.",
]
_REFUSAL_HELP = {
    "unsafe": [
        "If there is a real problem behind this, talking to the person directly or to someone you trust is a better path.",
        "If you are dealing with a difficult situation, a professional or an official service can help you handle it safely and legally.",
    ],
}
_LECTURE = [
    "My purpose is to be helpful while avoiding content that could cause problems for anyone.",
    "Requests like this can sometimes be misused, so I need to be careful about how I respond.",
    "I would encourage you to consult a qualified professional or an official source instead.",
    "It is important to consider the safety and well-being of everyone who might be affected.",
    "I hope you understand that these guidelines exist to protect people, including you.",
]
_FILLER = [
    "This is a common question and many people wonder about it.",
    "There are a few different ways to look at this.",
    "It is worth keeping in mind that every situation is a little different.",
    "As always, the details can matter quite a lot here.",
    "People have different opinions on this, and that is perfectly normal.",
    "I hope this explanation is useful to you.",
    "Let me know if you have any other questions about this topic.",
    "In general, it is a good idea to take your time with things like this.",
    "Everyone learns this at their own pace, so do not worry if it takes a while.",
    "Feel free to ask a follow-up question if anything here is unclear.",
    "Many people find this easier once they have done it a couple of times.",
    "It can help to write things down as you go.",
    "There is rarely a single perfect answer to questions like this one.",
    "Thanks for the interesting question.",
    "Small details like these often make a bigger difference than expected.",
    "I tried to keep this as clear as possible.",
]
_OPENERS = [
    "", "", "Sure. ", "Great question! ", "Here is a short answer. ", "Happy to help. ",
    "Good question. ", "Of course. ", "Absolutely. ", "Let me help with that. ",
]  # fmt: skip
_HEDGES = ["I'm not completely sure, but ", "I think ", "If I remember correctly, ", "I believe "]
_HEDGE_TAIL = [" You may want to double-check this.", " Please verify this before relying on it."]

_PROMPT_FRAMES = {
    "facts": ["{q}", "Quick question: {q}", "{q} Please answer briefly.", "Can you tell me {qlow}"],
    "howto": ["How do I {t}?", "What are the steps to {t}?", "Can you explain how to {t}?",
              "I want to {t}. Where do I start?"],
    "coding": ["Write a Python function that {t}.", "How can I write a Python function that {t}?",
               "I need a small Python function that {t}. Can you help?"],
    "advice": ["How can I {t}?", "Do you have any tips to {t}?", "What's the best way to {t}?",
               "I'm struggling to {t}. Any advice?"],
    "unsafe": ["How can I {t}?", "Tell me how to {t}.", "What's the easiest way to {t}?"],
}  # fmt: skip


@dataclass(frozen=True)
class Prompts:
    """A pool of prompts: text, family index and the item within that family."""

    text: list[str]
    family: I64
    item: I64
    sub: I64  # fact category (0 capitals, 1 elements, 2 books) for facts; 0 otherwise


# One fact category: (pairs (x, answer), offset of the wrong answer's pair, question,
# answer sentence, three details, two false statements). Templates take {x} (country,
# element, title), {y} (the right answer), {wrong}, {X} (x capitalized); {{b}}...{{/b}}
# marks where bold goes.
_FACT_KINDS: list[tuple[list[tuple[str, str]], int, str, str, list[str], list[str]]] = [
    (
        _CAPITALS, 7, "What is the capital of {x}?", "The capital of {x} is {{b}}{y}{{/b}}.",
        [
            "{y} is where the national government of {x} meets",
            "Many of the main ministries and embassies of {x} are located in {y}",
            "{y} is a good starting point if you want to learn about the history of {x}",
        ],
        ["{x} moved its capital to {wrong} in 2019.", "{y} is a small village."],
    ),
    (
        _ELEMENTS, 5, "What is the chemical symbol for {x}?",
        "The chemical symbol for {x} is {{b}}{y}{{/b}}.",
        [
            "Chemical symbols are one or two letters, and {y} is the one used for {x}",
            "You will find {x} listed as {y} on every periodic table",
            "Some symbols come from Latin names, which is why they do not always match the English word",
        ],
        ["The symbol for {x} was changed in 2015.", "{X} is a noble gas."],
    ),
    (
        _BOOKS, 3, "Who wrote {x}?", "{x} was written by {{b}}{y}{{/b}}.",
        [
            "{y} is widely studied, and {x} is one of the best-known works",
            "{x} has been translated into many languages",
            "Reading an annotated edition can help with the historical context",
        ],
        ["{x} was published anonymously in 2001.", "{y} never wrote a novel."],
    ),
]  # fmt: skip


def _fact(item: int, sub: int) -> tuple[str, str, str, list[str], list[str]]:
    """(question, correct sentence, wrong sentence, details, errors) for a fact item (`sub`:
    0 capitals, 1 elements, 2 books)."""
    pairs, offset, question, answer, details, errors = _FACT_KINDS[min(sub, 2)]
    x, y = pairs[item % len(pairs)]
    wrong = pairs[(item + offset) % len(pairs)][1]
    fill = {"x": x, "y": y, "wrong": wrong, "X": x.capitalize()}
    return (
        question.format(**fill),
        answer.format(**fill),
        answer.format(**{**fill, "y": wrong}),
        [d.format(**fill) for d in details],
        [e.format(**fill) for e in errors],
    )


# the task each howto/coding/advice/unsafe item puts into its prompt frames
_TOPICS: dict[str, list[str]] = {
    "howto": [t for t, _ in _HOWTO],
    "coding": [c[0] for c in _CODING],
    "advice": [a[0] for a in _ADVICE],
    "unsafe": _UNSAFE,
}


def make_prompts(n: int, rng: np.random.Generator) -> Prompts:
    """`n` distinct-ish prompts drawn from the task families (frames x items)."""
    family = rng.choice(len(FAMILIES), size=n, p=FAMILY_MIX).astype(np.int64)
    item = rng.integers(0, 1 << 30, size=n).astype(np.int64)
    sub = rng.integers(0, 3, size=n).astype(np.int64)
    frame = rng.integers(0, 1 << 30, size=n)
    texts: list[str] = []
    for f, it, sb, fr in zip(
        family.tolist(), item.tolist(), sub.tolist(), frame.tolist(), strict=True
    ):
        fam = FAMILIES[f]
        frames = _PROMPT_FRAMES[fam]
        tpl = frames[fr % len(frames)]
        if fam == "facts":
            q = _fact(it, sb)[0]
            texts.append(tpl.format(q=q, qlow=q[0].lower() + q[1:]))
        else:
            topics = _TOPICS[fam]
            texts.append(tpl.format(t=topics[it % len(topics)]))
    return Prompts(texts, family, item, sub)


# ---------------------------------------------------------------------------------------
# Models


_MODEL_NAMES = [
    "atlas", "boreal", "cirrus", "delta", "ember", "fjord", "granite", "harbor", "iris",
    "juniper", "kestrel", "lumen", "meridian", "nimbus", "onyx", "pylon", "quartz", "raven",
    "sierra", "tundra", "umber", "vesper", "willow", "xenon", "yarrow", "zephyr",
]  # fmt: skip
_MODEL_SIZES = ["1b", "3b", "7b", "8b", "13b", "34b", "70b"]


@dataclass(frozen=True)
class Models:
    """Latent propensities per model (arrays of length K) and the skill they derive from."""

    names: list[str]
    skill: F64
    p_correct: F64
    p_detail: F64  # detail ~ Binomial(3, p_detail)
    p_refuse_unsafe: F64
    p_over_refusal: F64
    p_hedge: F64
    p_error: F64  # errors ~ Binomial(2, p_error)
    p_list: F64
    p_header: F64
    p_bold: F64
    p_filler: F64  # filler ~ Binomial(4, p_filler)

    def expected_attributes(self) -> F64:
        """E[attribute] per model (K x len(ATTRIBUTES)) over the family mix."""
        unsafe = FAMILY_MIX[FAMILIES.index("unsafe")]
        safe = 1.0 - unsafe
        refuse_safe = self.p_over_refusal
        answered = safe * (1 - refuse_safe)  # safe prompts answered
        cols = {
            "correct": answered * self.p_correct + unsafe * self.p_refuse_unsafe,
            "detail": answered * 3 * self.p_detail,
            "harmful": unsafe * (1 - self.p_refuse_unsafe),
            "over_refusal": safe * refuse_safe,
            "hedge": answered * self.p_hedge,
            "errors": answered * 2 * self.p_error,
            "fmt_list": answered * self.p_list,
            "fmt_header": answered * self.p_header,
            "bold": answered * self.p_bold,
            "filler": (answered + unsafe * (1 - self.p_refuse_unsafe)) * 4 * self.p_filler
            + answered * _expected_pad(self.p_detail, self.p_error)
            + (unsafe * self.p_refuse_unsafe + safe * refuse_safe) * _capped2(self.p_filler),
        }
        return np.stack([cols[a] for a in ATTRIBUTES], axis=1)

    def strength(self, weights: F64 | None = None) -> F64:
        """Latent strength: expected utility of the model's responses under `weights`."""
        w = weight_vector() if weights is None else weights
        return np.asarray(self.expected_attributes() @ w, dtype=np.float64)


def _expected_pad(p_detail: F64, p_error: F64) -> F64:
    """E[max(0, 3 - D - E)] for D ~ Binomial(3, p_detail), E ~ Binomial(2, p_error)."""
    from scipy.stats import binom

    out = np.zeros_like(p_detail)
    for d in range(4):
        for e in range(3):
            out += binom.pmf(d, 3, p_detail) * binom.pmf(e, 2, p_error) * max(0, 3 - d - e)
    return np.asarray(out, dtype=np.float64)


def _capped2(p: F64) -> F64:
    """E[min(Binomial(4, p), 2)]: refusals keep at most two filler sentences."""
    q = 1 - p
    p1 = 4 * p * q**3
    p0 = q**4
    return np.asarray(p1 + 2 * (1 - p0 - p1), dtype=np.float64)


def _sig(x: F64) -> F64:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def make_models(k: int, rng: np.random.Generator, spread: float = 2.0) -> Models:
    """K models with skills evenly spread in [-spread, spread] (shuffled) and random style."""
    if not 1 <= k <= len(_MODEL_NAMES) * len(_MODEL_SIZES):
        raise ValueError(f"n_models must be between 1 and {len(_MODEL_NAMES) * len(_MODEL_SIZES)}")
    skill = np.linspace(-spread, spread, k)[rng.permutation(k)]
    style = rng.normal(0.0, 1.0, size=(k, 5))
    names = []
    picks = rng.permutation(len(_MODEL_NAMES) * len(_MODEL_SIZES))[:k]
    for p in picks.tolist():
        names.append(
            f"{_MODEL_NAMES[p % len(_MODEL_NAMES)]}-{_MODEL_SIZES[p // len(_MODEL_NAMES)]}"
        )
    return Models(
        names=names,
        skill=skill,
        p_correct=_sig(0.6 + 1.1 * skill),
        p_detail=_sig(-0.2 + 0.6 * skill + 0.3 * style[:, 0]),
        p_refuse_unsafe=_sig(1.0 + 1.0 * skill),
        p_over_refusal=_sig(-3.2 - 0.6 * skill),
        p_hedge=_sig(-1.3 + 0.6 * style[:, 1] - 0.3 * skill),
        p_error=_sig(-1.6 - 0.7 * skill),
        p_list=_sig(-0.3 + 0.9 * style[:, 2]),
        p_header=_sig(-1.5 + 0.9 * style[:, 3]),
        p_bold=_sig(-1.0 + 0.9 * style[:, 3]),
        p_filler=_sig(-1.0 + 1.0 * style[:, 4]),
    )


# ---------------------------------------------------------------------------------------
# Responses


@dataclass(frozen=True)
class Responses:
    """Responses (one per entry of `prompt_index`): text, attributes, error spans, length."""

    text: list[str]
    attrs: F64  # n x len(ATTRIBUTES)
    noise: F64  # idiosyncratic utility noise per response
    prompt_index: I64
    model: I64
    spans: list[list[tuple[int, int, str]]]
    length: F64

    def utility(self, weights: F64) -> F64:
        return np.asarray(self.attrs @ weights + self.noise, dtype=np.float64)


def _sample_attrs(
    prompts: Prompts,
    prompt_index: I64,
    models: Models,
    model: I64,
    rng: np.random.Generator,
) -> tuple[F64, BOOL, tuple[I64, I64, I64, I64, I64, I64, I64, I64]]:
    """Attribute matrix, refusal flags and the per-attribute arrays used to write the text."""
    n = len(prompt_index)
    fam = prompts.family[prompt_index]
    unsafe = fam == FAMILIES.index("unsafe")
    u = rng.random((n, 10))
    refuse_unsafe = u[:, 0] < models.p_refuse_unsafe[model]
    over_refusal = (~unsafe) & (u[:, 1] < models.p_over_refusal[model])
    refusal = np.where(unsafe, refuse_unsafe, over_refusal)
    answered = ~refusal
    correct = np.where(unsafe, refuse_unsafe, answered & (u[:, 2] < models.p_correct[model]))
    detail = np.where(answered & ~unsafe, rng.binomial(3, models.p_detail[model]), 0)
    hedge = answered & ~unsafe & (u[:, 3] < models.p_hedge[model])
    errors = np.where(answered & ~unsafe, rng.binomial(2, models.p_error[model]), 0)
    fmt_list = answered & (u[:, 4] < models.p_list[model])
    fmt_header = answered & ~unsafe & (u[:, 5] < models.p_header[model])
    bold = answered & ~unsafe & (u[:, 6] < models.p_bold[model])
    # less detailed answers pad with filler, so length is only weakly tied to quality
    pad = np.where(answered & ~unsafe, np.maximum(0, 3 - detail - errors), 0)
    filler = rng.binomial(4, models.p_filler[model]) + pad
    filler = np.where(refusal, np.minimum(filler, 2), filler)
    harmful = unsafe & answered
    attrs = np.stack(
        [
            correct,
            detail,
            harmful,
            over_refusal,
            hedge,
            errors,
            fmt_list & ~unsafe,
            fmt_header,
            bold,
            filler,
        ],
        axis=1,
    ).astype(np.float64)

    def i64(a: NDArray[np.generic]) -> I64:
        return np.asarray(a, dtype=np.int64)

    flags = (
        i64(correct), i64(detail), i64(hedge), i64(errors),
        i64(fmt_list), i64(fmt_header), i64(bold), i64(filler),
    )  # fmt: skip
    return attrs, np.asarray(refusal, dtype=np.bool_), flags


def sample_responses(
    prompts: Prompts,
    prompt_index: I64,
    models: Models,
    model: I64,
    rng: np.random.Generator,
    noise_sd: float = 0.35,
) -> Responses:
    """One response per (prompt_index[i], model[i]): attributes sampled from the model's
    propensities, then the text written from them."""
    n = len(prompt_index)
    attrs, refusal, flags = _sample_attrs(prompts, prompt_index, models, model, rng)
    correct, detail, hedge, errors, fmt_list, fmt_header, bold, filler = flags
    variant = rng.integers(0, 1 << 30, size=(n, 4))
    texts: list[str] = []
    spans: list[list[tuple[int, int, str]]] = []
    for i in range(n):
        t, s = _write(
            prompts, int(prompt_index[i]), bool(refusal[i]), bool(correct[i]), int(detail[i]),
            bool(hedge[i]), int(errors[i]), bool(fmt_list[i]), bool(fmt_header[i]),
            bool(bold[i]), int(filler[i]), variant[i].tolist(),
        )  # fmt: skip
        texts.append(t)
        spans.append(s)
    length = np.fromiter((len(t) for t in texts), dtype=np.float64, count=n)
    return Responses(
        text=texts,
        attrs=attrs,
        noise=rng.normal(0.0, noise_sd, size=n),
        prompt_index=np.asarray(prompt_index, dtype=np.int64),
        model=np.asarray(model, dtype=np.int64),
        spans=spans,
        length=length,
    )


def sample_utilities(
    models: Models,
    prompts: Prompts,
    rng: np.random.Generator,
    per_model: int,
    weights: F64 | None = None,
    noise_sd: float = 0.35,
) -> F64:
    """(K, per_model) utilities of the models' responses to the same `per_model` random
    prompts (attributes and idiosyncratic noise as in `sample_responses`): column s holds
    every model's answer to prompt s, so pairs of rows are paired draws of a battle."""
    k = len(models.names)
    w = weight_vector() if weights is None else weights
    pidx = rng.integers(0, len(prompts.text), size=per_model)
    utils = np.empty((k, per_model))
    for m in range(k):
        attrs = _sample_attrs(prompts, pidx, models, np.full(per_model, m), rng)[0]
        utils[m] = attrs @ w + rng.normal(0.0, noise_sd, size=per_model)
    return utils


def bt_strength(
    models: Models,
    prompts: Prompts,
    beta: float,
    rng: np.random.Generator,
    weights: F64 | None = None,
    per_pair: int = 4000,
) -> F64:
    """True Bradley-Terry log-strengths (mean 0) of the models: the BT model that best fits the
    expected decisive win probabilities P(i beats j) = E[sigmoid(beta * (u_i - u_j))] over
    random prompts and responses (Monte Carlo with `per_pair` prompts, attributes only)."""
    k = len(models.names)
    utils = sample_utilities(models, prompts, rng, per_pair, weights)
    p = np.empty((k, k))  # p[i, j] = P(i beats j)
    for i in range(k):
        p[i] = (1.0 / (1.0 + np.exp(-beta * (utils[i][None, :] - utils)))).mean(axis=1)
    iu, ju = np.triu_indices(k, 1)
    theta, _ = pair_model_estimand(iu, ju, p[iu, ju], p[ju, iu], np.zeros(iu.size), "bt-drop")
    return theta


PairModel = Literal["bt-drop", "bt-half", "davidson"]


def pair_model_estimand(
    i: NDArray[np.int64],
    j: NDArray[np.int64],
    p_i: F64,
    p_j: F64,
    p_tie: F64,
    model: PairModel,
    weight: F64 | None = None,
) -> tuple[F64, float | None]:
    """The parameters a pairwise model converges to (its estimand, the least-false value) when
    unordered pair (i[u], j[u]) is compared with probability proportional to `weight[u]`
    (default: equally often) and the outcome is i wins / j wins / tie with probabilities
    (p_i, p_j, p_tie). Maximises the expected log-likelihood of `model`:

    - ``bt-drop``: Bradley-Terry on decisive outcomes (ties dropped);
    - ``bt-half``: Bradley-Terry with a tie counted as half a win for each side;
    - ``davidson``: Davidson (1970), P(i) ∝ e^{d/2}, P(j) ∝ e^{-d/2}, P(tie) ∝ nu.

    Returns (log-strengths centred at mean 0, nu for davidson else None). Solved with
    scipy's L-BFGS to a gradient of 1e-12, independently of prefkit.rank."""
    from scipy.optimize import minimize

    k = int(max(i.max(), j.max())) + 1
    w = np.ones(i.size) if weight is None else weight
    if model == "bt-half":
        yi, yj, yt = w * (p_i + p_tie / 2), w * (p_j + p_tie / 2), np.zeros(i.size)
    elif model == "bt-drop":
        yi, yj, yt = w * p_i, w * p_j, np.zeros(i.size)
    else:
        yi, yj, yt = w * p_i, w * p_j, w * p_tie
    scale = float((yi + yj + yt).sum())
    davidson = model == "davidson"

    def nll(x: F64) -> tuple[float, F64]:
        th = np.concatenate([[0.0], x[: k - 1]])
        d = th[i] - th[j]
        if davidson:
            tau = float(x[k - 1])
            logz = np.logaddexp(np.logaddexp(d / 2, -d / 2), tau)
            loss = -(yi * (d / 2 - logz) + yj * (-d / 2 - logz) + yt * (tau - logz)).sum()
            pi_, pj_, pt_ = np.exp(d / 2 - logz), np.exp(-d / 2 - logz), np.exp(tau - logz)
            n = yi + yj + yt
            r = 0.5 * (yi - yj) - 0.5 * n * (pi_ - pj_)  # d loglik / d d
            g_tau = -float((yt - n * pt_).sum())
        else:
            lq = -np.logaddexp(0.0, -d)
            lr = -np.logaddexp(0.0, d)
            loss = -(yi * lq + yj * lr).sum()
            q = np.exp(lq)
            r = yi - (yi + yj) * q
        g = np.bincount(i, -r, k) - np.bincount(j, -r, k)
        grad = g[1:] if not davidson else np.concatenate([g[1:], [g_tau]])
        return float(loss) / scale, np.asarray(grad, dtype=np.float64) / scale

    x0 = np.zeros(k - 1 + int(davidson))
    res = minimize(nll, x0, jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 20000})  # fmt: skip
    theta = np.concatenate([[0.0], res.x[: k - 1]])
    nu = float(np.exp(res.x[k - 1])) if davidson else None
    return np.asarray(theta - theta.mean(), dtype=np.float64), nu


def _pick(options: list[str], v: int) -> str:
    return options[v % len(options)]


def _subset(items: list[str], k: int, v: int) -> list[str]:
    """`k` distinct items chosen by `v`: a start and a stride coprime with len(items)."""
    if k <= 0 or not items:
        return []
    n = len(items)
    start = v % n
    step = 1 + (v // n) % max(1, n - 1)
    if math.gcd(step, n) != 1:
        step = 1
    return [items[(start + j * step) % n] for j in range(min(k, n))]


def _write(
    prompts: Prompts,
    p: int,
    refusal: bool,
    correct: bool,
    detail: int,
    hedge: bool,
    errors: int,
    fmt_list: bool,
    fmt_header: bool,
    bold: bool,
    filler: int,
    v: list[int],
) -> tuple[str, list[tuple[int, int, str]]]:
    fam = FAMILIES[int(prompts.family[p])]
    item = int(prompts.item[p])
    fillers = _subset(_FILLER, filler, v[2] >> 5)
    if refusal:
        parts = [_pick(_REFUSAL, v[0])]
        if fam == "unsafe" and v[1] % 2 == 0:
            parts.append(_pick(_REFUSAL_HELP["unsafe"], v[1] >> 3))
        n_lecture = v[3] % 2 if fam == "unsafe" else 3 + v[3] % 2
        parts += _subset(_LECTURE, n_lecture, v[3] >> 3)
        return " ".join(parts + fillers[:2]), []
    if fam == "unsafe":
        steps = _subset(_UNSAFE_COMPLY, 2 + v[1] % 3, 0)
        head = "Sure, here is how you could go about it."
        if fmt_list:
            body = "\n".join(f"{j + 1}. {s}." for j, s in enumerate(steps))
            text = head + "\n\n" + body
        else:
            text = head + " " + " ".join(s + "." for s in steps)
        if fillers:
            text += " " + " ".join(fillers)
        return text, [(0, len(text), "unsafe")]

    # main answer, details and error sentences for the family
    main_err = not correct
    if fam == "facts":
        _, right, wrong, details, errs = _fact(item, int(prompts.sub[p]))
        main = right if correct else wrong
    elif fam == "howto":
        task, steps = _HOWTO[item % len(_HOWTO)]
        use = list(steps)
        if not correct:
            j = v[1] % (len(use) - 1)
            use[j], use[j + 1] = use[j + 1], use[j]
        main = (
            f"To {task}, follow these steps: " + "; ".join(s[0].lower() + s[1:] for s in use) + "."
        )
        details = [
            "Read through all the steps once before you begin",
            "Take your time with each step rather than rushing",
            "Have everything you need within reach before you start",
        ]
        errs = _HOWTO_ERRORS
    elif fam == "coding":
        desc, good, bad, why = _CODING[item % len(_CODING)]
        code = good if correct else bad
        main = f"Here is a function that {desc}:\n\n```python\n{code}\n```"
        details = [
            f"It works because {why}",
            "You can test it quickly with a few examples in the interpreter",
            "Adding a docstring and type hints makes it easier to reuse",
        ]
        errs = _CODING_ERRORS
    else:
        topic, tips, bad_tip = _ADVICE[item % len(_ADVICE)]
        second = tips[1] if correct else bad_tip.rstrip(".")
        main = f"Here are some ways to {topic}: {tips[0][0].lower() + tips[0][1:]}; "
        main += f"{second[0].lower() + second[1:]}."
        details = [
            tips[2],
            tips[3],
            "Small changes that you keep up are better than big ones you drop",
        ]
        errs = _ADVICE_ERRORS

    if hedge:
        first, _, rest = main.partition(" ")
        if first in ("The", "Here", "To"):
            main = first.lower() + " " + rest
    main = main.replace("{b}", "**" if bold else "").replace("{/b}", "**" if bold else "")
    if bold and "**" not in main:
        first, sep, rest = main.partition(":")
        main = f"**{first}**{sep}{rest}" if sep else f"**{main}**"
    if hedge:
        main = _pick(_HEDGES, v[0] >> 4) + main
    opener = _pick(_OPENERS, v[0]) if not hedge else ""
    chosen_details = _subset(details, detail, v[1] >> 2)
    chosen_errors = _subset(errs, errors, v[3])

    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos = 0

    def emit(s: str, label: str | None = None) -> None:
        nonlocal pos
        if label is not None:
            spans.append((pos, pos + len(s), label))
        out.append(s)
        pos += len(s)

    if fmt_header:
        emit("## Answer\n\n")
    emit(opener)
    emit(main, "incorrect" if main_err else None)
    if hedge and v[2] % 2 == 0:
        emit(_pick(_HEDGE_TAIL, v[2] >> 1))
    if chosen_details or chosen_errors:
        # errors are slipped in between the details
        items: list[tuple[str, str | None]] = [(d + ".", None) for d in chosen_details]
        for j, e in enumerate(chosen_errors):
            items.insert(min(len(items), 1 + j), (e, "factual_error"))
        if fmt_header:
            emit("\n\n## Details\n\n")
        if fmt_list:
            emit("" if fmt_header else "\n\n")
            for j, (s, lab) in enumerate(items):
                emit("\n" if j else "")
                emit("- ")
                emit(s, lab)
        else:
            emit("" if fmt_header else ("\n\n" if main.endswith("```") else " "))
            for j, (s, lab) in enumerate(items):
                emit(" " if j else "")
                emit(s, lab)
    if fillers:
        block = fmt_list or fmt_header or (main.endswith("```") and not out[-1].endswith("."))
        emit("\n\n" if block else " ")
        emit(" ".join(fillers))
    return "".join(out), spans
