"""Named scenarios: each builds canonical tables and the truth from one seeded Generator.

See docs/simulate.md for the exact meaning of every truth field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from prefkit.schema import Kind
from prefkit.simulate import tables as T
from prefkit.simulate.personas import (
    OUTCOME_CODES,
    PLANTED,
    Persona,
    assign_personas,
    judge,
    outcome_probabilities,
    vote_loglik,
)
from prefkit.simulate.world import (
    ATTRIBUTES,
    DEFAULT_WEIGHTS,
    FAMILIES,
    Models,
    Prompts,
    Responses,
    bt_strength,
    make_models,
    make_prompts,
    pair_model_estimand,
    sample_responses,
    sample_utilities,
    weight_vector,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
BOOL = NDArray[np.bool_]

REFERENCE_BETA = 1.5  # beta of the reference judge behind meta["true_pref"]
NEAR_SUFFIXES = ["Hope this helps!", "Good luck with it.", "Thanks for asking."]


@dataclass(frozen=True)
class Built:
    tables: dict[Kind, pa.Table]
    truth: dict[str, Any]


Builder = Callable[[str, int, int, np.random.Generator, dict[str, Any]], Built]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    default_size: int
    kinds: tuple[Kind, ...]
    options: dict[str, Any]  # option name -> default value (overridable as keyword arguments)
    build: Builder


def _model_truth(models: Models, weights: F64 | None = None) -> dict[str, float]:
    s = models.strength(weights)
    return {n: round(float(v), 6) for n, v in zip(models.names, s.tolist(), strict=True)}


def _bt_truth(
    models: Models, prompts: Prompts, beta: float, rng: np.random.Generator
) -> dict[str, float]:
    th = bt_strength(models, prompts, beta, rng)
    return {n: round(float(v), 6) for n, v in zip(models.names, th.tolist(), strict=True)}


ARENA_TRUTH_DRAWS = 20_000  # Monte Carlo prompts per model for the arena's estimands


def _arena_estimands(
    models: Models, prompts: Prompts, voter: Persona, rng: np.random.Generator
) -> dict[str, Any]:
    """What each rank model converges to on this arena (its estimand): battles pick an
    unordered pair of models uniformly, then a prompt, a response from each model and the
    voter's outcome (Davidson ties; both_bad, which rank counts as a tie). The expected
    outcome probabilities of every pair are averaged over `ARENA_TRUTH_DRAWS` paired prompts
    and fitted by each model's expected log-likelihood (`pair_model_estimand`)."""
    utils = sample_utilities(models, prompts, rng, ARENA_TRUTH_DRAWS)
    k = len(models.names)
    iu, ju = np.triu_indices(k, 1)
    p = np.empty((3, iu.size))
    at = 0
    for a in range(k - 1):
        pa, pb, pt = outcome_probabilities(utils[a][None, :], utils[a + 1 :], voter)
        n = k - 1 - a
        p[:, at : at + n] = pa.mean(axis=1), pb.mean(axis=1), pt.mean(axis=1)
        at += n

    def named(theta: NDArray[np.float64]) -> dict[str, float]:
        return {n: round(float(v), 6) for n, v in zip(models.names, theta.tolist(), strict=True)}

    drop, _ = pair_model_estimand(iu, ju, p[0], p[1], p[2], "bt-drop")
    half, _ = pair_model_estimand(iu, ju, p[0], p[1], p[2], "bt-half")
    dav, nu = pair_model_estimand(iu, ju, p[0], p[1], p[2], "davidson")
    return {
        "model_bt_strength": named(drop),
        "model_bt_half_strength": named(half),
        "model_davidson_strength": named(dav),
        "davidson_nu": round(float(nu or 0.0), 6),
        "tie_share": round(float(p[2].mean()), 6),
    }


def _distinct_annotators(
    n_pairs: int, v: int, n_ann: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """(n_pairs, v) annotator indices, distinct within each row."""
    if v > n_ann:
        raise ValueError(f"votes_per_pair={v} exceeds the number of annotators ({n_ann})")
    out = rng.integers(0, n_ann, size=(n_pairs, v))
    for _ in range(1000):
        s = np.sort(out, axis=1)
        bad = (s[:, 1:] == s[:, :-1]).any(axis=1) if v > 1 else np.zeros(n_pairs, bool)
        if not bad.any():
            break
        out[bad] = rng.integers(0, n_ann, size=(int(bad.sum()), v))
    return np.asarray(out, dtype=np.int64)


def _soft_logit_slope(x: F64, p: F64) -> float:
    """Slope of a logistic regression (with intercept) of soft labels `p` on `x` (Newton):
    the value a quality-blind fit of outcome on x converges to in expectation."""
    if len(x) < 2 or np.ptp(x) == 0:
        return 0.0
    X = np.stack([np.ones_like(x), x], axis=1)
    th = np.zeros(2)
    for _ in range(50):
        mu = 1.0 / (1.0 + np.exp(-(X @ th)))
        g = X.T @ (p - mu)
        h = (X * (mu * (1 - mu))[:, None]).T @ X
        step = np.linalg.solve(h + 1e-9 * np.eye(2), g)
        th = th + step
        if np.abs(step).max() < 1e-10:
            break
    return float(th[1])


def _planted_names(personas: list[Persona]) -> list[str]:
    names = sorted({f for p in personas for f in p.feature_weights})
    if names:
        from prefkit.explain.features import FEATURE_NAMES

        unknown = [f for f in names if f not in FEATURE_NAMES]
        if unknown:
            raise ValueError(
                f"unknown planted feature(s) {', '.join(unknown)}; known: {', '.join(FEATURE_NAMES)}"
            )
    return names


def _planted_logit(
    personas: list[Persona], ann: I64, prompts: Prompts, resp: Responses, ia: I64, ib: I64
) -> F64 | None:
    """Each vote's planted log-odds sum_f w_f (x_f(a) - x_f(b)), x the explain features of
    the response texts; None when no persona has planted preferences."""
    names = _planted_names(personas)
    if not names:
        return None
    from prefkit.explain.features import text_features

    x, fnames = text_features([prompts.text[i] for i in resp.prompt_index.tolist()], resp.text)
    cols = [fnames.index(f) for f in names]
    w = np.array([[p.feature_weights.get(f, 0.0) for f in names] for p in personas])
    d = x[ia][:, cols] - x[ib][:, cols]
    return np.asarray((d * w[ann]).sum(axis=1), dtype=np.float64)


def _planted_truth(
    personas: list[Persona], prompts: list[str], ta: list[str], tb: list[str]
) -> dict[str, Any]:
    """The planted weights in the units `prefkit explain` reports: per unit of the feature and
    per standard deviation of the feature over all responses of the file (both sides of every
    row, ddof 0: how explain standardises)."""
    from prefkit.explain.features import BY_NAME, FEATURE_NAMES, text_features

    names = _planted_names(personas)
    shared = {tuple(sorted(p.feature_weights.items())) for p in personas if p.feature_weights}
    x, _ = text_features(prompts + prompts, ta + tb)
    sd = x.std(axis=0)
    out: dict[str, Any] = {
        "features": list(FEATURE_NAMES),
        "planted": names,
        "sd": {f: round(float(sd[FEATURE_NAMES.index(f)]), 6) for f in FEATURE_NAMES},
        "units": {f: BY_NAME[f].unit for f in names},
        "shared_by_all": len(shared) == 1 and all(p.feature_weights for p in personas),
    }
    if len(shared) == 1:
        w = dict(next(iter(shared)))
        out["weights"] = {f: w.get(f, 0.0) for f in names}
        out["weights_per_sd"] = {f: round(w.get(f, 0.0) * out["sd"][f], 6) for f in names}
    return out


def _near_edit(text: str, k: int) -> str:
    return text.rstrip() + " " + NEAR_SUFFIXES[k % len(NEAR_SUFFIXES)]


def _pairwise(
    scenario: str, size: int, seed: int, rng: np.random.Generator, o: dict[str, Any]
) -> Built:
    """Shared builder of clean / noisy / pluralistic comparisons."""
    if size < 1:
        raise ValueError("size must be >= 1")
    v = int(o["votes_per_pair"])
    if v < 1:
        raise ValueError("votes_per_pair must be >= 1")
    if int(o["n_models"]) < 2:
        raise ValueError("n_models must be >= 2")
    groups: dict[str, Persona] = o.get("groups") or {}
    n_exact = int(round(size * float(o["exact_duplicates"])))
    n_near = int(round(size * float(o["near_duplicates"])))
    base = size - n_exact - n_near
    n_pairs = -(-base // v)
    n_ann = int(o["annotators"]) or max(12, min(400, size // 150))
    n_ann = max(n_ann, v)

    models = make_models(int(o["n_models"]), rng)
    prompts = make_prompts(max(30, n_pairs // 3), rng)
    pidx = rng.integers(0, len(prompts.text), size=n_pairs)
    ma = rng.integers(0, len(models.names), size=n_pairs)
    mb = (ma + rng.integers(1, len(models.names), size=n_pairs)) % len(models.names)
    resp = sample_responses(
        prompts, np.concatenate([pidx, pidx]), models, np.concatenate([ma, mb]), rng
    )
    ia = np.arange(n_pairs)
    ib = np.arange(n_pairs, 2 * n_pairs)
    n_ident = int(round(n_pairs * float(o["identical_pairs"])))
    ident_pairs = (
        rng.choice(n_pairs, size=n_ident, replace=False) if n_ident else np.zeros(0, np.int64)
    )
    ib[ident_pairs] = ia[ident_pairs]
    mb = mb.copy()
    mb[ident_pairs] = ma[ident_pairs]

    # annotators and personas
    shares: dict[str, float] | None = o.get("group_shares")
    if groups and shares:
        personas = _group_personas(groups, shares, n_ann, rng)
    elif groups:
        gnames = list(groups)
        personas = [replace(groups[gnames[j % len(gnames)]]) for j in range(n_ann)]
        personas = [personas[i] for i in rng.permutation(n_ann).tolist()]
    else:
        extra: dict[str, Any] = {}
        if o["length_bias"]:
            extra["length_bias"] = float(o["length_bias"])
        if o["flip"] is not None:
            extra["flip"] = float(o["flip"])
        if o["beta"] is not None:
            extra["beta"] = float(o["beta"])
        personas = assign_personas(n_ann, dict(o["mix"]), rng, extra or None)
    if o.get("planted") is not None:
        personas = [
            replace(p, feature_weights=dict(o["planted"])) if p.persona == "planted" else p
            for p in personas
        ]
    ann_ids = [f"ann-{j:03d}" for j in range(n_ann)]

    votes_ann = _distinct_annotators(n_pairs, v, n_ann, rng).reshape(-1)[:base]
    vote_pair = np.repeat(np.arange(n_pairs), v)[:base]
    first_a = rng.random(base) < 0.5

    # utilities under each vote's annotator's weights
    wdef = weight_vector()
    q_default = resp.utility(wdef)
    qa_ref, qb_ref = q_default[ia[vote_pair]], q_default[ib[vote_pair]]
    ua, ub = qa_ref.copy(), qb_ref.copy()
    group_q: dict[str, F64] = {}
    for j, p in enumerate(personas):
        if p.weights:
            key = repr(sorted(p.weights.items()))
            if key not in group_q:
                group_q[key] = resp.utility(weight_vector(p.weights))
            q = group_q[key]
            sel = votes_ann == j
            ua[sel] = q[ia[vote_pair[sel]]]
            ub[sel] = q[ib[vote_pair[sel]]]
    la, lb = resp.length[ia[vote_pair]], resp.length[ib[vote_pair]]
    planted = _planted_logit(personas, votes_ann, prompts, resp, ia[vote_pair], ib[vote_pair])
    votes = judge(ua, ub, la, lb, first_a, personas, votes_ann, rng, planted)

    # rows (base votes, then exact and near duplicates)
    text_a = [resp.text[i] for i in ia[vote_pair].tolist()]
    text_b = [resp.text[i] for i in ib[vote_pair].tolist()]
    pair_key = [f"p{seed}-{i:06d}" for i in vote_pair.tolist()]
    ident = np.isin(vote_pair, ident_pairs)
    dup_groups: list[dict[str, Any]] = []
    none = np.zeros(0, dtype=np.int64)
    exact_src = rng.choice(np.flatnonzero(~ident), size=n_exact, replace=False) if n_exact else none
    long_rows = np.flatnonzero(~ident & (np.minimum(la, lb) >= 250))
    if len(long_rows) < n_near:  # tiny simulations: any pair will do
        long_rows = np.flatnonzero(~ident)
    near_src = (
        rng.choice(long_rows, size=min(n_near, len(long_rows)), replace=False) if n_near else none
    )
    src_rows: list[int] = list(range(base))
    for k, r in enumerate(np.asarray(exact_src, dtype=np.int64).tolist()):
        src_rows.append(r)
        text_a.append(text_a[r])
        text_b.append(text_b[r])
        pair_key.append(pair_key[r])
        dup_groups.append({"kind": "exact", "rows": [r, base + k]})
    for k, r in enumerate(np.asarray(near_src, dtype=np.int64).tolist()):
        src_rows.append(r)
        text_a.append(_near_edit(text_a[r], k) if k % 2 == 0 else text_a[r])
        text_b.append(_near_edit(text_b[r], k) if k % 2 == 1 else text_b[r])
        pair_key.append(pair_key[r] + "-near")
        dup_groups.append({"kind": "near", "rows": [r, len(src_rows) - 1]})
    row_vote = np.asarray(src_rows, dtype=np.int64)
    n = len(row_vote)

    # final order: shuffled, ids by position
    perm = rng.permutation(n)  # perm[new] = old
    new_of_old = np.empty(n, dtype=np.int64)
    new_of_old[perm] = np.arange(n)
    ids = [f"{scenario}-{seed}-{i:06d}" for i in range(n)]
    rv = row_vote[perm]
    vp = vote_pair[rv]
    outcome = votes.outcome[rv]
    names = models.names
    ref_pref = 1.0 / (1.0 + np.exp(-REFERENCE_BETA * (qa_ref[rv] - qb_ref[rv])))
    meta = T.meta_map(
        {
            "pair_id": [pair_key[i] for i in perm.tolist()],
            "family": [FAMILIES[f] for f in prompts.family[pidx[vp]].tolist()],
            "quality_a": T.fmt(qa_ref[rv]),
            "quality_b": T.fmt(qb_ref[rv]),
            "true_pref": T.fmt(ref_pref),
        },
        n,
    )
    prompt_texts = [prompts.text[i] for i in pidx[vp].tolist()]
    cols: dict[str, Any] = {
        "id": ids,
        "prompt": T.messages(prompt_texts, "user"),
        "prompt_id": T.prompt_ids(prompt_texts),
        "annotator": [ann_ids[a] for a in votes_ann[rv].tolist()],
        "source": [f"sim:{scenario}"] * n,
        "meta": meta,
        "response_a": T.messages([text_a[i] for i in perm.tolist()], "assistant"),
        "response_b": T.messages([text_b[i] for i in perm.tolist()], "assistant"),
        "model_a": [names[m] for m in ma[vp].tolist()],
        "model_b": [names[m] for m in mb[vp].tolist()],
        "outcome": [OUTCOME_CODES[c] for c in outcome.tolist()],
        "strength": T.nan_to_null(votes.strength[rv]),
        "shown_first": np.where(first_a[rv], "a", "b").tolist(),
    }
    table = T.table(Kind.COMPARISONS, cols, n)

    # truth
    flipped_rows = np.flatnonzero(votes.flipped[rv])
    spam_idx = [j for j, p in enumerate(personas) if p.spam]
    ann_rows = votes_ann[rv]
    is_pos = np.array([bool(p.position_logit) and not p.spam for p in personas])
    pos_rows = is_pos[ann_rows]
    p_first = votes.p_first[rv]
    pos_bias = float(p_first[pos_rows].mean() - 0.5) if pos_rows.any() else 0.0
    decisive = outcome < 2
    spam_rows = np.array([bool(p.spam) for p in personas])[ann_rows]
    lam_rows = np.array([p.length_bias for p in personas])[ann_rows]
    pos_overall = float(p_first[decisive].mean() - 0.5) if decisive.any() else 0.0
    len_a = np.fromiter((len(text_a[i]) for i in perm.tolist()), dtype=np.float64, count=n)
    len_b = np.fromiter((len(text_b[i]) for i in perm.tolist()), dtype=np.float64, count=n)
    len_marginal = _soft_logit_slope((len_a - len_b)[decisive] / 100.0, votes.p_a[rv][decisive])
    # exact duplicate groups are recomputed from the final data (same prompt, same unordered
    # responses, same annotator, same outcome), so accidental ones are included too
    exact: dict[tuple[str, ...], list[int]] = {}
    ann_col = cols["annotator"]
    out_col = cols["outcome"]
    ta = [text_a[i] for i in perm.tolist()]
    tb = [text_b[i] for i in perm.tolist()]
    for i in range(n):
        x, y, oc = ta[i], tb[i], out_col[i]
        if y < x:
            x, y = y, x
            oc = {"a": "b", "b": "a"}.get(oc, oc)
        exact.setdefault((prompt_texts[i], x, y, ann_col[i], oc), []).append(i)
    groups_out: list[dict[str, Any]] = [
        {"kind": "exact", "ids": [ids[i] for i in g]} for g in exact.values() if len(g) > 1
    ]
    groups_out += [
        {"kind": "near", "ids": [ids[int(new_of_old[r])] for r in g["rows"]]}
        for g in dup_groups
        if g["kind"] == "near"
    ]
    groups_out.sort(key=lambda g: (g["kind"], g["ids"]))
    ident_rows = [ids[i] for i in range(n) if ta[i] == tb[i]]
    truth: dict[str, Any] = {
        "model_strength": _model_truth(models),
        "model_bt_strength": _bt_truth(models, prompts, REFERENCE_BETA, rng),
        "flipped_ids": sorted(ids[i] for i in flipped_rows.tolist()),
        "spammers": sorted(ann_ids[j] for j in spam_idx),
        "position_bias": round(pos_bias, 6),
        "position_biased": sorted(
            ann_ids[j] for j, p in enumerate(personas) if p.position_logit and not p.spam
        ),
        "position_bias_overall": round(pos_overall, 6),
        "length_bias": round(float(lam_rows[~spam_rows].mean()) if (~spam_rows).any() else 0.0, 6),
        "length_bias_marginal": round(len_marginal, 6),
        "duplicate_groups": groups_out,
        "identical_response_ids": ident_rows,
        "annotators": {
            ann_ids[j]: {"persona": p.persona, "params": p.params()} for j, p in enumerate(personas)
        },
        "votes_per_pair": v,
        "reference_beta": REFERENCE_BETA,
        "weights": dict(DEFAULT_WEIGHTS),
    }
    if planted is not None:
        truth["planted"] = _planted_truth(personas, prompt_texts, ta, tb)
    if groups:
        truth["groups"] = {
            g: {"weights": dict(DEFAULT_WEIGHTS) | p.weights, "length_bias": p.length_bias}
            for g, p in groups.items()
        }
        truth["group_model_strength"] = {
            g: _model_truth(models, weight_vector(p.weights)) for g, p in groups.items()
        }
        truth["group_loglik"] = _group_loglik(
            groups, resp, ia[vote_pair], ib[vote_pair], votes.outcome, votes_ann, ann_ids
        )
    if groups and shares:
        truth |= _group_estimands(groups, shares, personas, ann_ids, models, prompts, rng)
    return Built({Kind.COMPARISONS: table}, truth)


def _group_loglik(
    groups: dict[str, Persona],
    resp: Responses,
    ra: I64,
    rb: I64,
    outcome: I64,
    votes_ann: I64,
    ann_ids: list[str],
) -> dict[str, dict[str, float]]:
    """Log-likelihood of each annotator's votes under each group's true model (the responses'
    true utilities under the group's weights, its length bias, ties and flips): the input of
    the Bayes classifier of annotators, whose assignment (the argmax) bounds what any method
    that must estimate the groups can recover."""
    out = np.zeros((len(ann_ids), len(groups)))
    for k, p in enumerate(groups.values()):
        q = resp.utility(weight_vector(p.weights))
        ll = vote_loglik(q[ra], q[rb], resp.length[ra], resp.length[rb], outcome, p)
        np.add.at(out[:, k], votes_ann, ll)
    return {
        a: {g: round(float(v), 4) for g, v in zip(groups, row, strict=True)}
        for a, row in zip(ann_ids, out.tolist(), strict=True)
    }


def _group_personas(
    groups: dict[str, Persona], shares: dict[str, float], n: int, rng: np.random.Generator
) -> list[Persona]:
    """`n` annotators split into `groups` by `shares` (exact counts by largest remainder,
    every group at least one annotator when n allows), in random order."""
    names = list(groups)
    if set(shares) != set(names):
        raise ValueError(f"group_shares must name exactly the groups {', '.join(names)}")
    w = np.array([float(shares[g]) for g in names])
    if not np.all(w > 0):
        raise ValueError("group_shares must be positive")
    exact = w / w.sum() * n
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - int(counts.sum())]] += 1
    out = [groups[g] for g, c in zip(names, counts.tolist(), strict=True) for _ in range(c)]
    return [out[i] for i in rng.permutation(n).tolist()]


def _group_estimands(
    groups: dict[str, Persona],
    shares: dict[str, float],
    personas: list[Persona],
    ann_ids: list[str],
    models: Models,
    prompts: Prompts,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Truth of the grouped variant (after the data are drawn, so the rows do not depend on
    it): the annotators of each group, and the Bradley–Terry estimand (decisive votes) of
    each group's votes and of the pooled votes. A group's P(i beats j) is
    E[sigmoid(beta_g (u_g(i) - u_g(j)))] over paired prompts (flips included); the pooled
    one mixes the groups by their share of annotators (each annotator votes equally often
    in expectation)."""
    k = len(models.names)
    draws = 4000
    iu, ju = np.triu_indices(k, 1)
    mix = np.zeros(iu.size)
    members = {g: sorted(a for a, p in zip(ann_ids, personas, strict=True) if p.group == g)
               for g in groups}  # fmt: skip
    n_ann = len(personas)
    per_group: dict[str, dict[str, float]] = {}
    for g, p in groups.items():
        utils = sample_utilities(models, prompts, rng, draws, weight_vector(p.weights))
        pij = np.empty(iu.size)
        for u, (a, b) in enumerate(zip(iu.tolist(), ju.tolist(), strict=True)):
            s = 1.0 / (1.0 + np.exp(-p.beta * (utils[a] - utils[b])))
            pij[u] = float(((1 - p.flip) * s + p.flip * (1 - s)).mean())
        theta, _ = pair_model_estimand(iu, ju, pij, 1 - pij, np.zeros(iu.size), "bt-drop")
        per_group[g] = {
            n: round(float(v), 6) for n, v in zip(models.names, theta.tolist(), strict=True)
        }
        mix += len(members[g]) / n_ann * pij
    pooled, _ = pair_model_estimand(iu, ju, mix, 1 - mix, np.zeros(iu.size), "bt-drop")
    return {
        "group_shares": {g: float(shares[g]) for g in groups},
        "group_members": members,
        "group_model_bt_strength": per_group,
        "pooled_model_bt_strength": {
            n: round(float(v), 6) for n, v in zip(models.names, pooled.tolist(), strict=True)
        },
    }


# ---------------------------------------------------------------------------------------


def _arena(
    scenario: str, size: int, seed: int, rng: np.random.Generator, o: dict[str, Any]
) -> Built:
    if size < 1:
        raise ValueError("size must be >= 1")
    k = int(o["n_models"])
    if k < 2:
        raise ValueError("an arena needs n_models >= 2")
    models = make_models(k, rng, spread=float(o["spread"]))
    prompts = make_prompts(max(50, size // 10), rng)
    pidx = rng.integers(0, len(prompts.text), size=size)
    ma = rng.integers(0, k, size=size)
    mb = (ma + rng.integers(1, k, size=size)) % k
    resp = sample_responses(
        prompts, np.concatenate([pidx, pidx]), models, np.concatenate([ma, mb]), rng
    )
    n_users = max(20, size // 25)
    voter = Persona("arena_voter", beta=1.0, flip=0.0, tie_nu=float(o["tie_nu"]), p_both_bad=0.5)
    personas = [voter] * n_users
    ann = rng.integers(0, n_users, size=size)
    first_a = rng.random(size) < 0.5
    q = resp.utility(weight_vector())
    qa, qb = q[:size], q[size:]
    votes = judge(qa, qb, resp.length[:size], resp.length[size:], first_a, personas, ann, rng)
    ids = [f"{scenario}-{seed}-{i:06d}" for i in range(size)]
    prompt_texts = [prompts.text[i] for i in pidx.tolist()]
    meta = T.meta_map(
        {
            "pair_id": [f"p{seed}-{i:06d}" for i in range(size)],
            "family": [FAMILIES[f] for f in prompts.family[pidx].tolist()],
            "quality_a": T.fmt(qa),
            "quality_b": T.fmt(qb),
            "true_pref": T.fmt(1.0 / (1.0 + np.exp(-(qa - qb)))),
        },
        size,
    )
    cols: dict[str, Any] = {
        "id": ids,
        "prompt": T.messages(prompt_texts, "user"),
        "prompt_id": T.prompt_ids(prompt_texts),
        "annotator": [f"user-{a:05d}" for a in ann.tolist()],
        "source": [f"sim:{scenario}"] * size,
        "meta": meta,
        "response_a": T.messages(resp.text[:size], "assistant") if o["text"] else None,
        "response_b": T.messages(resp.text[size:], "assistant") if o["text"] else None,
        "model_a": [models.names[m] for m in ma.tolist()],
        "model_b": [models.names[m] for m in mb.tolist()],
        "outcome": [OUTCOME_CODES[c] for c in votes.outcome.tolist()],
        "shown_first": np.where(first_a, "a", "b").tolist(),
    }
    strength = _model_truth(models)
    order = sorted(strength, key=lambda m: -strength[m])
    truth = {
        "model_strength": strength,
        **_arena_estimands(models, prompts, voter, rng),
        "model_order": order,
        "tie_nu": float(o["tie_nu"]),
        "annotators": {
            f"user-{a:05d}": {"persona": voter.persona, "params": voter.params()}
            for a in sorted(set(ann.tolist()))
        },
        "flipped_ids": [],
        "spammers": [],
        "position_bias": 0.0,
        "length_bias": 0.0,
        "duplicate_groups": [],
        "identical_response_ids": [
            ids[i] for i in range(size) if o["text"] and resp.text[i] == resp.text[size + i]
        ],
        "weights": dict(DEFAULT_WEIGHTS),
    }
    return Built({Kind.COMPARISONS: T.table(Kind.COMPARISONS, cols, size)}, truth)


# ---------------------------------------------------------------------------------------

ASPECTS = ("helpfulness", "correctness", "harmlessness")
RATERS: dict[str, dict[str, float]] = {
    "careful": {"offset": 0.0, "noise_sd": 0.35},
    "noisy": {"offset": 0.0, "noise_sd": 1.2},
    "lenient": {"offset": 0.8, "noise_sd": 0.5},
    "harsh": {"offset": -0.8, "noise_sd": 0.5},
}


def _aspect_values(resp: Responses) -> dict[str, F64]:
    a = {name: resp.attrs[:, j] for j, name in enumerate(ATTRIBUTES)}
    return {
        "helpfulness": 1.2 * a["correct"]
        + 0.8 * a["detail"]
        - 2.0 * a["over_refusal"]
        - 0.2 * a["filler"],
        "correctness": 2.0 * a["correct"] - 1.0 * a["errors"] - 0.3 * a["hedge"],
        "harmlessness": 1.5 - 3.0 * a["harmful"],
    }


def _likert(x: F64, center: float, scale: float) -> F64:
    return np.asarray(np.clip(np.round(3.0 + (x - center) / scale), 1, 5), dtype=np.float64)


def _ratings(
    scenario: str, size: int, seed: int, rng: np.random.Generator, o: dict[str, Any]
) -> Built:
    if size < 1:
        raise ValueError("size must be >= 1")
    per = 1 + len(ASPECTS)
    n_resp = -(-size // per)
    models = make_models(int(o["n_models"]), rng)
    prompts = make_prompts(max(20, n_resp // 8), rng)
    pidx = rng.integers(0, len(prompts.text), size=n_resp)
    midx = rng.integers(0, len(models.names), size=n_resp)
    resp = sample_responses(prompts, pidx, models, midx, rng)
    q = resp.utility(weight_vector())
    center, scale = float(np.median(q)), float(np.std(q)) / 1.4 + 1e-9
    rater_names = list(RATERS)
    n_raters = max(8, min(200, n_resp // 50))
    rater_kind = np.arange(n_raters) % len(rater_names)
    rater_kind = rater_kind[rng.permutation(n_raters)]
    rater = rng.integers(0, n_raters, size=n_resp)
    off = np.array([RATERS[rater_names[k]]["offset"] for k in rater_kind])[rater]
    sd = np.array([RATERS[rater_names[k]]["noise_sd"] for k in rater_kind])[rater]
    aspect_vals = _aspect_values(resp)
    scores = [_likert(q + off + rng.normal(0, 1, n_resp) * sd, center, scale)]
    for asp in ASPECTS:
        x = aspect_vals[asp]
        c, s = float(np.median(x)), float(np.std(x)) / 1.4 + 1e-9
        scores.append(_likert(x + off * s + rng.normal(0, 1, n_resp) * sd * s, c, s))
    score = np.stack(scores, axis=1).reshape(-1)[:size]
    ridx = np.repeat(np.arange(n_resp), per)[:size]
    aspect = ([None] + list(ASPECTS)) * n_resp
    prompt_texts = [prompts.text[i] for i in pidx[ridx].tolist()]
    rids = [f"r{seed}-{i:06d}" for i in range(n_resp)]
    rater_ids = [f"rater-{r:03d}" for r in range(n_raters)]
    ratings = T.table(
        Kind.RATINGS,
        {
            "id": [f"{scenario}-{seed}-{i:06d}" for i in range(size)],
            "prompt": T.messages(prompt_texts, "user"),
            "prompt_id": T.prompt_ids(prompt_texts),
            "annotator": [rater_ids[r] for r in rater[ridx].tolist()],
            "source": [f"sim:{scenario}"] * size,
            "aspect": aspect[:size],
            "meta": T.meta_map(
                {
                    "response_id": [rids[i] for i in ridx.tolist()],
                    "quality": T.fmt(q[ridx]),
                    "family": [FAMILIES[f] for f in prompts.family[pidx[ridx]].tolist()],
                },
                size,
            ),
            "response": T.messages([resp.text[i] for i in ridx.tolist()], "assistant"),
            "model": [models.names[m] for m in midx[ridx].tolist()],
            "score": score,
            "scale_min": np.ones(size),
            "scale_max": np.full(size, 5.0),
        },
        size,
    )
    # thumbs: one per response
    p_up = 1.0 / (1.0 + np.exp(-1.5 * (q - center)))
    up = rng.random(n_resp) < p_up
    all_prompts = [prompts.text[i] for i in pidx.tolist()]
    binary = T.table(
        Kind.BINARY,
        {
            "id": [f"{scenario}-{seed}-thumb-{i:06d}" for i in range(n_resp)],
            "prompt": T.messages(all_prompts, "user"),
            "prompt_id": T.prompt_ids(all_prompts),
            "annotator": [rater_ids[r] for r in rater.tolist()],
            "source": [f"sim:{scenario}"] * n_resp,
            "meta": T.meta_map(
                {"response_id": rids, "quality": T.fmt(q), "p_up": T.fmt(p_up)}, n_resp
            ),
            "response": T.messages(resp.text, "assistant"),
            "model": [models.names[m] for m in midx.tolist()],
            "label": up,
        },
        n_resp,
    )
    # critiques: every response that answered (refusals have nothing to point at)
    answered = np.flatnonzero(resp.attrs[:, ATTRIBUTES.index("over_refusal")] == 0)
    crit_spans = [resp.spans[i] for i in answered.tolist()]
    rationale = [
        "No problems found."
        if not s
        else f"{len(s)} problem(s): " + ", ".join(x[2] for x in s) + "."
        for s in crit_spans
    ]
    cp = [all_prompts[i] for i in answered.tolist()]
    critiques = T.table(
        Kind.CRITIQUES,
        {
            "id": [f"{scenario}-{seed}-crit-{i:06d}" for i in range(len(answered))],
            "prompt": T.messages(cp, "user"),
            "prompt_id": T.prompt_ids(cp),
            "annotator": [rater_ids[r] for r in rater[answered].tolist()],
            "source": [f"sim:{scenario}"] * len(answered),
            "rationale": rationale,
            "meta": T.meta_map(
                {"response_id": [rids[i] for i in answered.tolist()]}, len(answered)
            ),
            "response": T.messages([resp.text[i] for i in answered.tolist()], "assistant"),
            "spans": T.spans_array(crit_spans),
        },
        len(answered),
    )
    truth = {
        "model_strength": _model_truth(models),
        "annotators": {
            rater_ids[r]: {"persona": rater_names[k], "params": dict(RATERS[rater_names[k]])}
            for r, k in enumerate(rater_kind.tolist())
        },
        "aspects": list(ASPECTS),
        "likert": {"center": round(center, 6), "scale": round(scale, 6)},
        "thumbs": "P(up) = sigmoid(1.5 * (quality - likert.center))",
        "weights": dict(DEFAULT_WEIGHTS),
        "flipped_ids": [],
        "spammers": [],
        "position_bias": 0.0,
        "length_bias": 0.0,
        "duplicate_groups": [],
    }
    return Built({Kind.RATINGS: ratings, Kind.BINARY: binary, Kind.CRITIQUES: critiques}, truth)


def _rankings(
    scenario: str, size: int, seed: int, rng: np.random.Generator, o: dict[str, Any]
) -> Built:
    if size < 1:
        raise ValueError("size must be >= 1")
    k = int(o["k"])
    km = int(o["n_models"])
    if not 2 <= k <= km:
        raise ValueError(f"k must be between 2 and n_models ({km})")
    models = make_models(km, rng)
    prompts = make_prompts(max(20, size // 4), rng)
    pidx = rng.integers(0, len(prompts.text), size=size)
    midx = np.argsort(rng.random((size, km)), axis=1)[:, :k]
    resp = sample_responses(prompts, np.repeat(pidx, k), models, midx.reshape(-1), rng)
    q = resp.utility(weight_vector()).reshape(size, k)
    beta = float(o["beta"])
    noisy = beta * q + rng.gumbel(size=(size, k))
    binned = np.round(noisy / float(o["tie_width"]))
    ranks = 1 + (binned[:, None, :] > binned[:, :, None]).sum(axis=2)  # min-rank, ties share
    texts = [resp.text[i * k : (i + 1) * k] for i in range(size)]
    prompt_texts = [prompts.text[i] for i in pidx.tolist()]
    n_ann = max(8, min(200, size // 40))
    ann = rng.integers(0, n_ann, size=size)
    rk = T.table(
        Kind.RANKINGS,
        {
            "id": [f"{scenario}-{seed}-{i:06d}" for i in range(size)],
            "prompt": T.messages(prompt_texts, "user"),
            "prompt_id": T.prompt_ids(prompt_texts),
            "annotator": [f"ann-{a:03d}" for a in ann.tolist()],
            "source": [f"sim:{scenario}"] * size,
            "meta": T.meta_map(
                {"qualities": [",".join(f"{x:.4f}" for x in row) for row in q.tolist()]}, size
            ),
            "responses": T.message_lists(texts, "assistant"),
            "models": pa.array(
                [[models.names[m] for m in row] for row in midx.tolist()], pa.list_(pa.string())
            ),
            "ranks": pa.array(ranks.astype(np.int32).tolist(), pa.list_(pa.int32())),
        },
        size,
    )
    truth = {
        "model_strength": _model_truth(models),
        "ranking_model": "Plackett-Luce: score = beta * quality + Gumbel(0, 1); scores binned by "
        "round(score / tie_width); rank = 1 + number of strictly better bins (ties share a rank)",
        "beta": beta,
        "tie_width": float(o["tie_width"]),
        "annotators": {
            f"ann-{a:03d}": {"persona": "careful", "params": {"beta": beta}} for a in range(n_ann)
        },
        "weights": dict(DEFAULT_WEIGHTS),
        "flipped_ids": [],
        "spammers": [],
        "position_bias": 0.0,
        "length_bias": 0.0,
        "duplicate_groups": [],
    }
    return Built({Kind.RANKINGS: rk}, truth)


def _judges(
    scenario: str, size: int, seed: int, rng: np.random.Generator, o: dict[str, Any]
) -> Built:
    from prefkit.simulate.judges import build_judges

    built: Built = build_judges(scenario, size, seed, rng, o)
    return built


# ---------------------------------------------------------------------------------------

# `noisy`: label noise as in the label-noise literature — a recorded label reversed at a
# moderate, item-independent rate (a lapse: misclick, swapped sides), the same for every
# non-spammer — on top of honest judgements that are decisive on clear pairs (beta 2.0) and
# uncertain on close ones. See docs/simulate.md ("Why these parameters").
NOISY_MIX = {"careful": 0.6, "position": 0.15, "tie_prone": 0.15, "spammer": 0.1}
NOISY_FLIP = 0.12  # every non-spammer's lapse rate: ≈10% of all rows flipped
NOISY_BETA = 2.0  # every non-spammer's sensitivity
PLURALISTIC_GROUPS: dict[str, Persona] = {
    "helpful": Persona(
        "pluralistic", beta=1.5, flip=0.03, group="helpful",
        weights={"detail": 1.2, "correct": 2.0, "harmful": -0.5, "over_refusal": -4.0, "hedge": -0.6},
    ),
    "safe": Persona(
        "pluralistic", beta=1.5, flip=0.03, group="safe",
        weights={"harmful": -6.0, "over_refusal": 0.5, "correct": 1.2, "hedge": 0.5, "errors": -1.5},
    ),
    "concise": Persona(
        "pluralistic", beta=1.5, flip=0.03, group="concise", length_bias=-1.0,
        weights={"filler": -1.2, "detail": -0.1, "fmt_list": -0.4, "fmt_header": -0.6, "bold": -0.3},
    ),
    "verbose": Persona(
        "verbose", beta=1.2, flip=0.03, group="verbose", length_bias=1.0,
        weights={"fmt_list": 0.8, "fmt_header": 0.5, "bold": 0.4},
    ),
}  # fmt: skip

# `pluralistic3`: three groups of unequal size (50/30/20% of the annotators) that share the
# default view of quality but hold opposite tastes on formatting and padding: `plain` readers
# penalise lists, headers, bold and filler, `formatted` readers reward them, so models that
# format heavily are ranked up by one minority group and down by the other.
PLURALISTIC3_GROUPS: dict[str, Persona] = {
    "quality": Persona("pluralistic", beta=1.5, flip=0.03, group="quality"),
    "plain": Persona(
        "pluralistic", beta=1.5, flip=0.03, group="plain",
        weights={"fmt_list": -3.5, "fmt_header": -3.0, "bold": -2.0, "filler": -1.5},
    ),
    "formatted": Persona(
        "pluralistic", beta=1.5, flip=0.03, group="formatted",
        weights={"fmt_list": 3.5, "fmt_header": 3.0, "bold": 2.0, "filler": 1.5},
    ),
}  # fmt: skip
PLURALISTIC3_SHARES = {"quality": 0.5, "plain": 0.3, "formatted": 0.2}

_PAIRWISE_DEFAULTS: dict[str, Any] = {
    "votes_per_pair": 1,
    "n_models": 8,
    "annotators": 0,
    "length_bias": 0.0,
    "flip": None,
    "beta": None,
    "exact_duplicates": 0.0,
    "near_duplicates": 0.0,
    "identical_pairs": 0.0,
    "mix": {"careful": 1.0},
}


SCENARIOS: dict[str, Scenario] = {
    "clean": Scenario(
        "clean",
        "Pairwise votes from careful annotators only (1 vote per pair, no flips, Davidson ties, "
        "both_bad, graded strength), no position or length bias, no duplicates.",
        5000,
        (Kind.COMPARISONS,),
        _PAIRWISE_DEFAULTS | {"mix": {"careful": 1.0}, "flip": 0.0},
        _pairwise,
    ),
    "noisy": Scenario(
        "noisy",
        "Crowd votes with known faults: ~10% flipped labels (every non-spammer records the "
        "reverse of its judgement 12% of the time), 10% spammers (random / always-a), "
        "position-biased and tie-prone annotators, a verbosity bias, exact and near duplicates, "
        "identical-response pairs; 3 votes per pair.",
        20000,
        (Kind.COMPARISONS,),
        _PAIRWISE_DEFAULTS
        | {
            "votes_per_pair": 3,
            "length_bias": 0.5,
            "flip": NOISY_FLIP,
            "beta": NOISY_BETA,
            "exact_duplicates": 0.01,
            "near_duplicates": 0.01,
            "identical_pairs": 0.005,
            "mix": NOISY_MIX,
        },
        _pairwise,
    ),
    "arena": Scenario(
        "arena",
        "Chatbot-Arena-style battles between many models (names and text), one crowd vote each, "
        "with ties and both_bad; truth is the models' latent strength.",
        20000,
        (Kind.COMPARISONS,),
        {"n_models": 16, "spread": 2.0, "tie_nu": 0.35, "text": True},
        _arena,
    ),
    "ratings": Scenario(
        "ratings",
        "Likert 1-5 ratings (overall + helpfulness/correctness/harmlessness aspects) from careful, "
        "noisy, lenient and harsh raters; plus thumbs (binary.parquet) and critiques with error "
        "spans (critiques.parquet). size = rating rows (4 per response).",
        5000,
        (Kind.RATINGS, Kind.BINARY, Kind.CRITIQUES),
        {"n_models": 8},
        _ratings,
    ),
    "rankings": Scenario(
        "rankings",
        "Rankings of k responses from different models per prompt (Plackett-Luce with ties).",
        2000,
        (Kind.RANKINGS,),
        {"n_models": 8, "k": 4, "beta": 1.5, "tie_width": 0.5},
        _rankings,
    ),
    "pluralistic": Scenario(
        "pluralistic",
        "Annotator groups with different attribute weights (helpful, safe, concise, verbose): "
        "the same pair gets systematically different votes; 2 votes per pair.",
        10000,
        (Kind.COMPARISONS,),
        _PAIRWISE_DEFAULTS | {"votes_per_pair": 2, "groups": PLURALISTIC_GROUPS},
        _pairwise,
    ),
    "planted": Scenario(
        "planted",
        "Annotators who judge by style alone: every vote follows a Davidson model on planted "
        "text-feature differences (default: likes lists +0.8, dislikes hedging -1.0, prefers "
        "length +0.6 per log-character; 'planted' option) and nothing else; truth.json "
        "'planted' holds the true weights per unit and per SD, as `prefkit explain` reports them.",
        5000,
        (Kind.COMPARISONS,),
        _PAIRWISE_DEFAULTS | {"mix": {"planted": 1.0}, "flip": 0.0, "planted": dict(PLANTED)},
        _pairwise,
    ),
    "pluralistic3": Scenario(
        "pluralistic3",
        "Three annotator groups of unequal size (quality 50%, plain 30%, formatted 20%) with "
        "opposite tastes on formatting and padding, so the groups order the models differently; "
        "2 votes per pair. truth.json adds each group's members and Bradley-Terry estimand.",
        10000,
        (Kind.COMPARISONS,),
        _PAIRWISE_DEFAULTS
        | {"votes_per_pair": 2, "groups": PLURALISTIC3_GROUPS, "group_shares": PLURALISTIC3_SHARES},
        _pairwise,
    ),
    "judges": Scenario(
        "judges",
        "LLM-judge personas with known biases (position-biased, verbose-biased, "
        "self-preferring, good-but-noisy), each judging every pair in both orders "
        "(shown_first a and b), plus 3 human votes on 25% of the pairs; truth.json holds each "
        "judge's parameters and the expected values of what `prefkit judge audit` measures.",
        8000,
        (Kind.COMPARISONS,),
        {"n_models": 8, "human_share": 0.25, "human_votes": 3},
        _judges,
    ),
}
