"""The `judges` scenario: LLM-judge personas with known biases, judging every pair in both
orders, next to human votes on part of the pairs.

A judge's vote on the pair (a, b) shown in order s (+1 when a is shown first, −1 otherwise):

    logit = beta * (u(a) − u(b)) + length_bias * (len(a) − len(b)) / 100
            + position_logit * s + self_logit * (own(a) − own(b))

with u the default utility, own(x) = 1 when the response x was written by the judge's own
model. Davidson ties (P(tie) ∝ tie_nu), then a decisive verdict is recorded reversed with
probability `flip`. Humans follow the same model with the `careful` persona's parameters
(beta 2.0, flip 0.05, tie_nu 0.1), the display order drawn at random.

truth.json `judges[annotator]` holds each judge's parameters and the exact expected values
of what `prefkit judge audit` estimates on this file (`expected`): P(first wins),
consistency across the two orders, tie rate, the position logit, the length slope a
quality-blind logistic fit converges to, and the self-preference excess over the humans and
over the other judges on the same pairs. See docs/simulate.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from prefkit.schema import Kind
from prefkit.simulate import tables as T
from prefkit.simulate.personas import OUTCOME_CODES, Persona
from prefkit.simulate.world import (
    DEFAULT_WEIGHTS,
    FAMILIES,
    make_models,
    make_prompts,
    sample_responses,
    weight_vector,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class JudgePersona:
    persona: str
    name: str  # annotator suffix (judge:<name>)
    beta: float = 1.2
    flip: float = 0.0
    tie_nu: float = 0.05
    position_logit: float = 0.0
    length_bias: float = 0.0
    self_logit: float = 0.0
    own_model: str = ""  # filled in for the self-preferring judge

    def params(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("persona")
        d.pop("name")
        return d


JUDGE_PERSONAS: tuple[JudgePersona, ...] = (
    JudgePersona("position", "sim-position-judge", beta=1.2, position_logit=1.0),
    JudgePersona("verbose", "sim-verbose-judge", beta=1.2, length_bias=0.8),
    JudgePersona("self_preferring", "", beta=1.2, self_logit=1.5),  # named after its model
    JudgePersona("noisy", "sim-noisy-judge", beta=0.8, flip=0.1),
)
HUMAN = Persona("careful", beta=2.0, flip=0.05, tie_nu=0.1)


def davidson(logit: F64, tie_nu: F64) -> tuple[F64, F64, F64]:
    """P(a), P(b), P(tie) of the judgement before any flip (Davidson ties)."""
    lg = np.clip(logit, -60, 60)
    ea, eb = np.exp(lg / 2), np.exp(-lg / 2)
    tot = ea + eb + tie_nu
    return ea / tot, eb / tot, tie_nu / tot


def soft_logit_slope(x: F64, p: F64, w: F64) -> float:
    """Slope of a weighted logistic regression (with intercept) of soft labels p on x: what
    a quality-blind fit of "a wins" on x over decisive votes converges to (w = P(decisive))."""
    if x.size < 2 or np.ptp(x) == 0:
        return 0.0
    X = np.stack([np.ones_like(x), x], axis=1)
    th = np.zeros(2)
    for _ in range(100):
        mu = 1.0 / (1.0 + np.exp(-(X @ th)))
        g = X.T @ (w * (p - mu))
        h = (X * (w * mu * (1 - mu))[:, None]).T @ X
        step = np.linalg.solve(h + 1e-12 * np.eye(2), g)
        th = th + step
        if np.abs(step).max() < 1e-12:
            break
    return float(th[1])


def _ratio(num: F64, den: F64) -> float | None:
    d = float(den.sum())
    return float(num.sum()) / d if d > 0 else None


def build_judges(
    scenario: str, size: int, seed: int, rng: np.random.Generator, o: dict[str, Any]
) -> Any:
    from prefkit.simulate.scenarios import Built, _model_truth

    if size < 1:
        raise ValueError("size must be >= 1")
    share = float(o["human_share"])
    hv = int(o["human_votes"])
    if not 0.0 <= share <= 1.0:
        raise ValueError("human_share must be in [0, 1]")
    if hv < 1:
        raise ValueError("human_votes must be >= 1")
    k = int(o["n_models"])
    if k < 2:
        raise ValueError("n_models must be >= 2")
    judges = list(JUDGE_PERSONAS)
    nj = len(judges)
    n_pairs = -(-size // (2 * nj))
    models = make_models(k, rng)
    strength = models.strength()
    own_name = models.names[int(np.argsort(strength)[k // 2])]
    judges = [
        JudgePersona(j.persona, own_name, j.beta, j.flip, j.tie_nu, j.position_logit,
                     j.length_bias, j.self_logit, own_name)
        if j.persona == "self_preferring" else j
        for j in judges
    ]  # fmt: skip
    prompts = make_prompts(max(30, n_pairs // 3), rng)
    pidx = rng.integers(0, len(prompts.text), size=n_pairs)
    ma = rng.integers(0, k, size=n_pairs)
    mb = (ma + rng.integers(1, k, size=n_pairs)) % k
    resp = sample_responses(
        prompts, np.concatenate([pidx, pidx]), models, np.concatenate([ma, mb]), rng
    )
    q = resp.utility(weight_vector())
    ua, ub = q[:n_pairs], q[n_pairs:]
    la, lb = resp.length[:n_pairs], resp.length[n_pairs:]
    own_idx = models.names.index(own_name)
    has_h = rng.random(n_pairs) < share
    n_humans = max(hv, 6)
    # votes, pair by pair: every judge in both orders, then the humans
    vp: list[int] = []
    va: list[int] = []  # annotator index: 0..nj-1 judges, nj.. humans
    vfirst: list[bool] = []
    for i in range(n_pairs):
        for j in range(nj):
            vp += [i, i]
            va += [j, j]
            vfirst += [True, False]
        if has_h[i]:
            hs = rng.choice(n_humans, size=hv, replace=False)
            vp += [i] * hv
            va += (nj + hs).tolist()
            vfirst += (rng.random(hv) < 0.5).tolist()
        if len(vp) >= size:
            break
    vp_a = np.asarray(vp[:size], dtype=np.int64)
    ann = np.asarray(va[:size], dtype=np.int64)
    first_a = np.asarray(vfirst[:size], dtype=np.bool_)
    n = vp_a.size
    is_h = ann >= nj
    jj = np.minimum(ann, nj - 1)

    def col(name: str, human: float) -> F64:
        vals = np.array([float(getattr(j, name)) for j in judges])
        return np.where(is_h, human, vals[jj])

    beta = col("beta", HUMAN.beta)
    flip = col("flip", HUMAN.flip)
    nu = col("tie_nu", HUMAN.tie_nu)
    gamma = col("position_logit", 0.0)
    lam = col("length_bias", 0.0)
    delta = col("self_logit", 0.0)
    own_a = (ma[vp_a] == own_idx).astype(np.float64)
    own_b = (mb[vp_a] == own_idx).astype(np.float64)
    s = np.where(first_a, 1.0, -1.0)
    dlen = (la[vp_a] - lb[vp_a]) / 100.0
    logit = beta * (ua[vp_a] - ub[vp_a]) + lam * dlen + gamma * s + delta * (own_a - own_b)
    raw_a, raw_b, pt = davidson(logit, nu)
    u = rng.random((n, 2))
    latent = np.where(u[:, 0] < raw_a, 0, np.where(u[:, 0] < raw_a + raw_b, 1, 2))
    flipped = (latent < 2) & (u[:, 1] < flip)
    outcome = np.where(flipped, 1 - latent, latent).astype(np.int64)
    pa = (1 - flip) * raw_a + flip * raw_b  # as recorded
    pb = (1 - flip) * raw_b + flip * raw_a

    names_j = [f"judge:{j.name}" for j in judges]
    names_h = [f"human-{h:02d}" for h in range(n_humans)]
    annotators = [names_j[a] if a < nj else names_h[a - nj] for a in ann.tolist()]
    ids = [f"{scenario}-{seed}-{i:06d}" for i in range(n)]
    prompt_texts = [prompts.text[i] for i in pidx[vp_a].tolist()]
    true_pref = 1.0 / (1.0 + np.exp(-(ua[vp_a] - ub[vp_a])))
    meta = T.meta_map(
        {
            "pair_id": [f"p{seed}-{i:06d}" for i in vp_a.tolist()],
            "family": [FAMILIES[f] for f in prompts.family[pidx[vp_a]].tolist()],
            "quality_a": T.fmt(ua[vp_a]),
            "quality_b": T.fmt(ub[vp_a]),
            "true_pref": T.fmt(true_pref),
        },
        n,
    )
    cols: dict[str, Any] = {
        "id": ids,
        "prompt": T.messages(prompt_texts, "user"),
        "prompt_id": T.prompt_ids(prompt_texts),
        "annotator": annotators,
        "source": [f"sim:{scenario}"] * n,
        "meta": meta,
        "response_a": T.messages([resp.text[i] for i in vp_a.tolist()], "assistant"),
        "response_b": T.messages([resp.text[n_pairs + i] for i in vp_a.tolist()], "assistant"),
        "model_a": [models.names[m] for m in ma[vp_a].tolist()],
        "model_b": [models.names[m] for m in mb[vp_a].tolist()],
        "outcome": [OUTCOME_CODES[c] for c in outcome.tolist()],
        "shown_first": np.where(first_a, "a", "b").tolist(),
    }
    table = T.table(Kind.COMPARISONS, cols, n)

    # truth: expected values of the audit's estimands on exactly these votes
    dec = pa + pb
    p_a_dec = np.divide(pa, dec, out=np.full(n, 0.5), where=dec > 0)
    own_pair = (own_a + own_b) == 1
    p_own = np.where(own_a == 1, pa, pb)
    hum_pairs = np.zeros(n_pairs, dtype=np.bool_)
    hum_pairs[vp_a[is_h]] = True
    jtruth: dict[str, Any] = {}
    for j, pj in enumerate(judges):
        m = ann == j
        p_first = np.where(first_a, pa, pb)
        # pairs with both orders of this judge
        i0 = m & first_a
        i1 = m & ~first_a
        both = np.intersect1d(vp_a[i0], vp_a[i1])
        cons = None
        if both.size:
            pos0 = {
                int(p): r
                for p, r in zip(vp_a[i0].tolist(), np.flatnonzero(i0).tolist(), strict=True)
            }
            pos1 = {
                int(p): r
                for p, r in zip(vp_a[i1].tolist(), np.flatnonzero(i1).tolist(), strict=True)
            }
            r0 = np.array([pos0[int(p)] for p in both])
            r1 = np.array([pos1[int(p)] for p in both])
            cons = float((pa[r0] * pa[r1] + pb[r0] * pb[r1] + pt[r0] * pt[r1]).mean())
        exp: dict[str, Any] = {
            "p_first_wins": _ratio(p_first[m], dec[m]),
            "consistency": cons,
            "tie_rate": float(pt[m].mean()) if m.any() else None,
            "position_logit": pj.position_logit,
            "length_slope": soft_logit_slope(dlen[m], p_a_dec[m], dec[m]),
        }
        if pj.own_model:
            mo = m & own_pair
            mh = mo & hum_pairs[vp_a]
            hm = is_h & own_pair
            om = (ann < nj) & (ann != j) & own_pair
            own_all = _ratio(p_own[mo], dec[mo])
            own_h = _ratio(p_own[mh], dec[mh])
            ref_h = _ratio(p_own[hm], dec[hm])
            ref_j = _ratio(p_own[om], dec[om])
            exp["self_preference"] = {
                "own_win_rate": own_all,
                "vs_humans": None if own_h is None or ref_h is None else own_h - ref_h,
                "vs_other_judges": None if own_all is None or ref_j is None else own_all - ref_j,
            }
        jtruth[names_j[j]] = {"persona": pj.persona, "params": pj.params(), "expected": exp}
    ann_truth = {
        names_j[j]: {"persona": f"judge:{pj.persona}", "params": pj.params()}
        for j, pj in enumerate(judges)
    } | {h: {"persona": HUMAN.persona, "params": HUMAN.params()} for h in names_h}
    truth = {
        "model_strength": _model_truth(models),
        "judges": jtruth,
        "self_preferring_model": own_name,
        "human_share": share,
        "human_votes": hv,
        "pairs": int(np.unique(vp_a).size),
        "pairs_with_humans": int(hum_pairs[np.unique(vp_a)].sum()),
        "flipped_ids": sorted(ids[i] for i in np.flatnonzero(flipped).tolist()),
        "spammers": [],
        "position_bias": 0.0,
        "length_bias": 0.0,
        "duplicate_groups": [],
        "annotators": ann_truth,
        "weights": dict(DEFAULT_WEIGHTS),
        "true_label": "a when meta.quality_a > meta.quality_b, else b",
    }
    return Built({Kind.COMPARISONS: table}, truth)


def true_labels(table: Any, pair_ids: list[str]) -> I64:
    """Per pair id (as `prefkit.judge.audit.collect` lists them): 0 when response a has the
    higher latent quality (meta.quality_a > meta.quality_b), else 1."""
    q: dict[str, bool] = {}
    for m in table.column("meta").to_pylist():
        d = dict(m)
        q.setdefault(d["pair_id"], float(d["quality_a"]) > float(d["quality_b"]))
    return np.array([0 if q[p] else 1 for p in pair_ids], dtype=np.int64)
