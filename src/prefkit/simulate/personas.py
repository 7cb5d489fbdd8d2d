"""Annotator personas and the vectorised pairwise judgement model.

A vote on a pair (a, b) by annotator j starts from the annotator's latent judgement

    logit = beta_j * (u_j(a) - u_j(b)) + length_bias_j * (len(a) - len(b)) / 100
            + position_logit_j * (+1 if a was shown first else -1)
            + sum_f feature_weights_j[f] * (x_f(a) - x_f(b))

where u_j is the annotator's utility (attribute weights, default or a pluralistic group's)
plus the response's idiosyncratic noise, and x_f are the interpretable text features that
`prefkit explain` measures (`prefkit.explain.features`): a persona's planted preferences.
Davidson ties: P(a) ∝ e^{logit/2}, P(b) ∝ e^{-logit/2}, P(tie) ∝ tie_nu. When both utilities are below ``both_bad_below``,
annotators with ``p_both_bad`` > 0 answer ``both_bad`` with that probability. The recorded
outcome then flips a<->b with probability ``flip`` (decisive outcomes only); spammers ignore
everything and answer uniformly at random (``spam="random"``) or always ``a``
(``spam="always_a"``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
BOOL = NDArray[np.bool_]

OUTCOME_CODES = ("a", "b", "tie", "both_bad")


@dataclass(frozen=True)
class Persona:
    """Parameters of one annotator (all recorded in truth.json ``annotators``)."""

    persona: str
    beta: float = 1.5  # sensitivity to utility differences
    flip: float = 0.0  # probability that a decisive judgement is recorded reversed
    tie_nu: float = 0.1  # Davidson tie parameter
    position_logit: float = 0.0  # log-odds added to whichever response was shown first
    length_bias: float = 0.0  # log-odds per 100 characters of len(a) - len(b)
    p_both_bad: float = 0.0
    both_bad_below: float = -0.5
    spam: str = ""  # "", "random" or "always_a"
    group: str = ""  # pluralistic group name
    weights: dict[str, float] = field(default_factory=dict)  # overrides of default weights
    # planted preferences: log-odds per unit of x_f(a) - x_f(b), x_f an explain feature
    feature_weights: dict[str, float] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("persona")
        return {k: v for k, v in d.items() if v not in ("", {}) or k == "spam"}


# the `planted` persona's preferences (log-odds per unit of the feature difference): likes
# lists, dislikes hedging, prefers longer answers; nothing else (beta 0: quality is ignored)
PLANTED: dict[str, float] = {"bullets": 0.8, "hedging": -1.0, "log_chars": 0.6}

PERSONAS: dict[str, Persona] = {
    "careful": Persona("careful", beta=1.5, flip=0.04, tie_nu=0.15, p_both_bad=0.6),
    "noisy": Persona("noisy", beta=0.8, flip=0.4, tie_nu=0.1),
    "spammer": Persona("spammer", beta=0.0, tie_nu=0.0, spam="random"),
    "position": Persona("position", beta=1.2, flip=0.05, tie_nu=0.0, position_logit=1.2),
    "verbose": Persona("verbose", beta=1.2, flip=0.05, tie_nu=0.1, length_bias=0.8),
    "tie_prone": Persona("tie_prone", beta=1.2, flip=0.05, tie_nu=1.5, p_both_bad=0.8),
    "planted": Persona("planted", beta=0.0, flip=0.0, tie_nu=0.25, feature_weights=PLANTED),
}
PERSONA_HELP: dict[str, str] = {
    "careful": "follows the latent utility closely; few flips; says both_bad when both are bad",
    "noisy": "low sensitivity and a 40% chance of recording the reverse of its judgement",
    "spammer": "ignores the responses: uniformly random a/b, or always 'a'",
    "position": "adds log-odds to whatever response was shown first (position bias)",
    "verbose": "adds log-odds per 100 characters of extra length (verbosity bias)",
    "tie_prone": "declares ties (Davidson nu=1.5) and both_bad much more often",
    "pluralistic": "one of several groups with different attribute weights",
    "planted": "judges by style alone: planted weights on named text features (likes lists, "
    "dislikes hedging, prefers length), quality ignored",
}


def assign_personas(
    n: int,
    mix: dict[str, float],
    rng: np.random.Generator,
    overrides: dict[str, Any] | None = None,
) -> list[Persona]:
    """`n` annotators with persona shares `mix` (exact counts, shuffled). `overrides` are
    applied to every non-spammer persona (e.g. a population-wide length_bias)."""
    names = list(mix)
    shares = np.array([mix[k] for k in names], dtype=np.float64)
    counts = np.floor(shares / shares.sum() * n).astype(np.int64)
    rest = n - int(counts.sum())
    order = np.argsort(-(shares / shares.sum() * n - counts), kind="stable")
    counts[order[:rest]] += 1
    out: list[Persona] = []
    for name, c in zip(names, counts.tolist(), strict=True):
        for j in range(c):
            p = PERSONAS[name]
            if name == "spammer":
                p = replace(p, spam="random" if j % 2 == 0 else "always_a")
            elif overrides:
                p = replace(p, **overrides)
            out.append(p)
    perm = rng.permutation(n)
    return [out[i] for i in perm.tolist()]


@dataclass(frozen=True)
class Votes:
    outcome: I64  # index into OUTCOME_CODES
    flipped: BOOL
    strength: F64  # NaN = null (both_bad)
    p_a: F64  # P(recorded outcome is a | recorded outcome is decisive), flips and spam included
    p_first: F64  # the same for the response shown first


def davidson(logit: F64, nu: F64 | float) -> tuple[F64, F64, F64]:
    """Davidson's vote probabilities (a, b, tie) for the latent log-odds `logit`:
    P(a) ∝ e^{logit/2}, P(b) ∝ e^{-logit/2}, P(tie) ∝ nu."""
    ea, eb = np.exp(np.clip(logit, -60, 60) / 2), np.exp(-np.clip(logit, -60, 60) / 2)
    tot = ea + eb + nu
    return ea / tot, eb / tot, nu / tot


def vote_loglik(ua: F64, ub: F64, len_a: F64, len_b: F64, outcome: I64, persona: Persona) -> F64:
    """log P(recorded `outcome` (0 a, 1 b, 2 tie)) of each vote under `persona`'s model
    (utilities `ua`/`ub` under its weights, its length bias, Davidson ties and flips); for
    personas without position bias, spam, both_bad or planted preferences."""
    if persona.spam or persona.position_logit or persona.p_both_bad or persona.feature_weights:
        raise ValueError(f"persona {persona.persona!r}: no closed-form vote likelihood")
    logit = persona.beta * (ua - ub) + persona.length_bias * (len_a - len_b) / 100.0
    pa, pb, pt = davidson(logit, persona.tie_nu)
    f = persona.flip
    probs = np.stack([(1 - f) * pa + f * pb, (1 - f) * pb + f * pa, pt], axis=1)
    picked = probs[np.arange(len(outcome)), np.minimum(outcome, 2)]
    return np.asarray(np.log(np.maximum(picked, 1e-300)), dtype=np.float64)


def outcome_probabilities(ua: F64, ub: F64, persona: Persona) -> tuple[F64, F64, F64]:
    """Expected recorded outcome (a wins, b wins, tie or both_bad) of a `persona` without
    flips, spam, position or length bias (the arena voter) on utilities `ua`, `ub`."""
    if persona.flip or persona.spam or persona.position_logit or persona.length_bias:
        raise ValueError(f"persona {persona.persona!r}: only unbiased voters have this form")
    pa, pb, pt = davidson(persona.beta * (ua - ub), persona.tie_nu)
    bad = np.where(np.maximum(ua, ub) < persona.both_bad_below, persona.p_both_bad, 0.0)
    return (1 - bad) * pa, (1 - bad) * pb, (1 - bad) * pt + bad


def judge(
    ua: F64,
    ub: F64,
    len_a: F64,
    len_b: F64,
    first_a: BOOL,
    personas: list[Persona],
    annotator: I64,
    rng: np.random.Generator,
    planted: F64 | None = None,
) -> Votes:
    """Vectorised votes (see module docstring). `ua`/`ub` are utilities under each vote's
    annotator's weights; `planted` is each vote's planted-feature log-odds (None: none)."""
    n = len(ua)

    def col(name: str) -> F64:
        vals = np.array([float(getattr(p, name)) for p in personas], dtype=np.float64)
        return np.asarray(vals[annotator], dtype=np.float64)

    beta, flip, nu = col("beta"), col("flip"), col("tie_nu")
    gamma, lam = col("position_logit"), col("length_bias")
    pbb, bbb = col("p_both_bad"), col("both_bad_below")
    spam_kind = np.array([{"": 0, "random": 1, "always_a": 2}[p.spam] for p in personas])[annotator]

    sign_first = np.where(first_a, 1.0, -1.0)
    logit = beta * (ua - ub) + lam * (len_a - len_b) / 100.0 + gamma * sign_first
    if planted is not None:
        logit = logit + planted
    pa, pb, _ = davidson(logit, nu)
    u = rng.random((n, 4))
    latent = np.where(u[:, 0] < pa, 0, np.where(u[:, 0] < pa + pb, 1, 2))
    both_bad = (np.maximum(ua, ub) < bbb) & (u[:, 1] < pbb)
    latent = np.where(both_bad, 3, latent)
    decisive = latent < 2
    flipped = decisive & (u[:, 2] < flip) & (spam_kind == 0)
    outcome = np.where(flipped, 1 - latent, latent)
    # graded strength from the latent margin: 1..3 on each side, rescaled to [0, 1]
    grade = 1 + (np.abs(logit) > 1.0) + (np.abs(logit) > 2.5)
    strength = np.where(
        latent == 0, 0.5 + grade / 6.0, np.where(latent == 1, 0.5 - grade / 6.0, 0.5)
    )
    strength = np.where(flipped, 1.0 - strength, strength)
    strength = np.where(latent == 3, np.nan, strength)
    # spammers
    spam_out = np.where(spam_kind == 1, (u[:, 3] < 0.5).astype(np.int64), 0)
    is_spam = spam_kind > 0
    outcome = np.where(is_spam, spam_out, outcome)
    spam_grade = (1 + np.floor(u[:, 1] * 3)) / 6.0
    spam_strength = np.where(spam_out == 0, 0.5 + spam_grade, 0.5 - spam_grade)
    strength = np.where(is_spam, spam_strength, strength)
    # P(a wins | decisive) and P(first shown wins | decisive), flips and spammers included
    pa_dec = pa / (pa + pb)
    pa_rec = (1 - flip) * pa_dec + flip * (1 - pa_dec)
    pa_rec = np.where(spam_kind == 1, 0.5, np.where(spam_kind == 2, 1.0, pa_rec))
    p_first = np.where(first_a, pa_rec, 1 - pa_rec)
    return Votes(
        outcome=np.asarray(outcome, dtype=np.int64),
        flipped=np.asarray(flipped, dtype=np.bool_),
        strength=np.asarray(strength, dtype=np.float64),
        p_a=np.asarray(pa_rec, dtype=np.float64),
        p_first=np.asarray(p_first, dtype=np.float64),
    )
