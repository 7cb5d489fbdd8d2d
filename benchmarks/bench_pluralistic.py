"""Pluralistic preferences on the simulator (issue 23): latent-group recovery (adjusted Rand
index of `aggregate --method bt-mixture`), per-group vs pooled leaderboards (Spearman against
each group's true Bradley–Terry order), power of the heterogeneity test on `pluralistic` and
`pluralistic3`, and its level (false-positive rate over many `clean` worlds, annotators as
groups). Prints one JSON line per measurement.

    python -m benchmarks.bench_pluralistic [--votes-per-annotator 200] [--annotators 30]
        [--level-runs 200] [--permutations 199] [--skip-mixture] [--ceiling-seeds 5]
    python -m benchmarks.bench_pluralistic --diagnose-worlds 10 [--diagnose-seed 5]
    python -m benchmarks.bench_pluralistic --prior-worlds 5 [--prior-seed 0]
        [--prior-scenarios pluralistic,pluralistic3]
    python -m benchmarks.bench_pluralistic --context-worlds 10 [--context-seed 100]
        [--contexts 0,8,auto] [--context-features refusal] [--context-scenarios pluralistic]
        [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.stats import spearmanr
from sklearn.metrics import adjusted_rand_score

from prefkit.rank.data import aggregate, battles_from_table
from prefkit.rank.groups import heterogeneity_test, split_groups
from prefkit.rank.mixture import MIXTURE_STANCE, mixture_table
from prefkit.rank.run import RankOptions, rank_table
from prefkit.schema import Kind
from prefkit.simulate import Simulation, simulate

EMBED_CACHE = "benchmarks/.cache/embeddings"  # MiniLM vectors of the prompts (--context)


def with_true_group(sim: Simulation) -> pa.Table:
    t = sim.tables[Kind.COMPARISONS]
    group_of = {a: g for g, m in sim.truth["group_members"].items() for a in m}
    metas = [
        [*(m or []), ("group", group_of[a])]
        for m, a in zip(
            t.column("meta").to_pylist(), t.column("annotator").to_pylist(), strict=True
        )
    ]
    return t.set_column(
        t.column_names.index("meta"), "meta", pa.array(metas, t.schema.field("meta").type)
    )


def ensure_group_members(sim: Simulation) -> Simulation:
    """`pluralistic` has no `group_members` in its truth: build it from the annotators'."""
    if "group_members" not in sim.truth:
        of = {x: r["params"]["group"] for x, r in sim.truth["annotators"].items()}
        sim.truth["group_members"] = {
            g: sorted(x for x, gg in of.items() if gg == g) for g in set(of.values())
        }
    return sim


def _rho(board: list[dict[str, Any]], truth: dict[str, float]) -> float:
    return float(spearmanr([r["score"] for r in board], [truth[r["item"]] for r in board])[0])


def groups_and_test(sim: Simulation, permutations: int) -> dict[str, Any]:
    table = with_true_group(sim)
    t0 = time.perf_counter()
    res = rank_table(table, RankOptions(by="group", permutations=permutations, ci="one-step"))
    s = res.summary
    truth = sim.truth["group_model_bt_strength"]
    per_group = {g["group"]: _rho(g["leaderboard"], truth[g["group"]]) for g in s["groups"]}
    pooled = {g: _rho(s["leaderboard"], truth[g]) for g in truth}
    h = s["heterogeneity"]
    return {
        "per_group_spearman": per_group,
        "pooled_spearman_vs_group": pooled,
        "statistic": h["statistic"],
        "df": h["df"],
        "p_value_permutation": h["p_value_permutation"],
        "p_value_chi2": h["p_value_chi2"],
        "reject": h["reject"],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def mixture_ari(sim: Simulation, k: int | None, context: int | str = 0,
                max_groups: int = 6, cache: str = EMBED_CACHE,
                features: tuple[str, ...] = ("refusal",),
                prior: str = "fixed") -> dict[str, Any]:  # fmt: skip
    truth = {a: g for g, m in sim.truth["group_members"].items() for a in m}
    t0 = time.perf_counter()
    _, ann, _, summary = mixture_table(sim.tables[Kind.COMPARISONS], groups=k, items="response",
                                       context=context, max_groups=max_groups,  # type: ignore[arg-type]
                                       embed_cache=cache, context_features=features,
                                       prior=prior)  # type: ignore[arg-type]  # fmt: skip
    labels = ann.column("group").to_pylist()
    ari = adjusted_rand_score([truth[a] for a in ann.column("annotator").to_pylist()], labels)
    return {"k_requested": k or "auto", "k": summary["groups"], "ari": ari,
            "context": summary["context"]["components"],
            "feature_prior": summary["priors"]["features"],
            "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def prior_study(worlds: int, seed0: int, size: int, annotators: int,
                scenarios: tuple[str, ...]) -> None:  # fmt: skip
    """Latent-group recovery with the feature prior fixed (1.0) and chosen by empirical Bayes
    (`--feature-prior evidence`, opt-in), K true, over worlds seed0..seed0+worlds-1: one
    JSON line per world, then the means with 95% t-intervals and the paired difference."""
    for scen in scenarios:
        acc: dict[str, list[float]] = {"fixed": [], "evidence": []}
        for seed in range(seed0, seed0 + worlds):
            sim = ensure_group_members(simulate(scen, size=size, seed=seed, annotators=annotators))
            k_true = len(sim.truth["group_members"])
            row: dict[str, Any] = {"scenario": scen, "seed": seed}
            for prior in acc:
                r = mixture_ari(sim, k_true, prior=prior)
                acc[prior].append(r["ari"])
                row[f"ari_{prior}"] = round(r["ari"], 3)
                row[f"seconds_{prior}"] = r["seconds"]
                if prior == "evidence":
                    row["feature_prior"] = round(r["feature_prior"], 2)
            print(json.dumps(row), flush=True)
        diff = [e - f for e, f in zip(acc["evidence"], acc["fixed"], strict=True)]
        print(json.dumps({"scenario": scen, "worlds": worlds, "seeds": [seed0, seed0 + worlds - 1],
                          "votes": size, "annotators": annotators, "k": "true",
                          "ari": {p: mean_ci(v) for p, v in acc.items()},
                          "evidence_minus_fixed": mean_ci(diff),
                          "worlds_at_least_0.9": {p: int(sum(a >= 0.9 for a in v))
                                                  for p, v in acc.items()}}), flush=True)  # fmt: skip


def mean_ci(v: list[float]) -> dict[str, float]:
    """Mean and its 95% t-interval over worlds."""
    from scipy.stats import t as student

    a = np.asarray(v, dtype=np.float64)
    half = (
        float(student.ppf(0.975, a.size - 1) * a.std(ddof=1) / np.sqrt(a.size))
        if a.size > 1
        else 0.0
    )
    return {"mean": round(float(a.mean()), 3), "ci_low": round(float(a.mean()) - half, 3),
            "ci_high": round(float(a.mean()) + half, 3)}  # fmt: skip


def context_study(worlds: int, seed0: int, size: int, annotators: int, clean_size: int,
                  scenarios: tuple[str, ...] = ("pluralistic", "pluralistic3", "clean"),
                  cache: str = EMBED_CACHE,
                  contexts: tuple[int | str, ...] | None = None,
                  features: tuple[str, ...] = ("refusal",)) -> None:  # fmt: skip
    """`--context` over fresh worlds (seeds seed0..seed0+worlds-1): ARI of bt-mixture with the
    true K on `pluralistic` (context 0, 4, 8, auto) and `pluralistic3` (0, auto), and the
    false-group rate on `clean` (`--groups auto --max-groups 3` finds more than one group;
    context 0 and auto). One JSON line per world, then the means with 95% t-intervals."""
    plan = {"pluralistic": (0, 4, 8, "auto"), "pluralistic3": (0, "auto")}
    if contexts is not None:
        plan = {scen: contexts for scen in plan}
    for scen, ctxs in plan.items():
        if scen not in scenarios:
            continue
        aris: dict[str, list[float]] = {str(c): [] for c in ctxs}
        chosen: list[int] = []
        for seed in range(seed0, seed0 + worlds):
            sim = ensure_group_members(simulate(scen, size=size, seed=seed, annotators=annotators))
            k_true = len(sim.truth["group_members"])
            row: dict[str, Any] = {"scenario": scen, "seed": seed}
            for c in ctxs:
                r = mixture_ari(sim, k_true, c, cache=cache, features=features)
                aris[str(c)].append(r["ari"])
                row[f"ari_context_{c}"] = round(r["ari"], 3)
                print(json.dumps({"scenario": scen, "seed": seed, "context": c, "features": features,
                                  "chose": r["context"], "ari": round(r["ari"], 3),
                                  "seconds": r["seconds"]}), flush=True)  # fmt: skip
                if c == "auto":
                    chosen.append(r["context"])
                    row["auto_chose"] = r["context"]
            print(json.dumps(row), flush=True)
        print(json.dumps({"scenario": scen, "worlds": worlds, "seeds": [seed0, seed0 + worlds - 1],
                          "votes": size, "annotators": annotators, "k": "true",
                          "ari": {c: mean_ci(v) for c, v in aris.items()},
                          "auto_chose": chosen}), flush=True)  # fmt: skip
    false_groups: dict[str, list[float]] = {"0": [], "auto": []}
    for seed in range(seed0, seed0 + worlds) if "clean" in scenarios else ():
        sim = simulate("clean", size=clean_size, seed=seed)
        t = sim.tables[Kind.COMPARISONS]
        row = {"scenario": "clean", "seed": seed}
        for c in (0, "auto"):
            _, _, _, s = mixture_table(t, None, "response", context=c, max_groups=3,  # type: ignore[arg-type]
                                       embed_cache=cache, context_features=features)  # fmt: skip
            false_groups[str(c)].append(float(s["groups"] > 1))
            row[f"k_context_{c}"] = s["groups"]
            row[f"components_context_{c}"] = s["context"]["components"]
        print(json.dumps(row), flush=True)
    if "clean" not in scenarios:
        return
    print(json.dumps({"scenario": "clean", "worlds": worlds, "size": clean_size,
                      "max_groups": 3, "false_group_rate": {c: float(np.mean(v))
                                                            for c, v in false_groups.items()}}),
          flush=True)  # fmt: skip


def bayes_oracle_ari(sim: Simulation) -> float:
    """ARI of the Bayes classifier: each annotator to the group whose TRUE model gives its
    votes the highest likelihood (truth `group_loglik`): what knowing every parameter allows."""
    gl = sim.truth["group_loglik"]
    truth = {a: g for g, m in sim.truth["group_members"].items() for a in m}
    ann = sorted(gl)
    return float(adjusted_rand_score([truth[a] for a in ann],
                                     [max(gl[a], key=gl[a].get) for a in ann]))  # fmt: skip


def known_group_feature_ari(
    sim: Simulation, folds: int = 5, stance: tuple[str, ...] = MIXTURE_STANCE
) -> float:
    """Ceiling of the mixture's representation: each group's logistic model on the same design
    (model one-hot + standardised feature differences, with the `stance` columns) fitted WITH
    the true group labels on the other annotators (annotator folds), then each held-out
    annotator assigned to the group under which its decisive votes are most likely."""
    from sklearn.linear_model import LogisticRegression

    from prefkit.rank.mixture import design_responses

    truth = {a: g for g, m in sim.truth["group_members"].items() for a in m}
    d = design_responses(sim.tables[Kind.COMPARISONS], stance=stance).data
    x, dec, ann = d.x[d.unit], d.y3[:, 2] == 0, d.annotator
    gl = np.array([truth[a] for a in d.annotators])
    names = sorted(set(gl.tolist()))
    fold = np.random.default_rng(0).permutation(d.n_annotators) % folds
    ll = np.zeros((d.n_annotators, len(names)))
    for f in range(folds):
        test = (fold[ann] == f) & dec
        for k, g in enumerate(names):
            fit_rows = dec & (gl[ann] == g) & (fold[ann] != f)
            m = LogisticRegression(C=1.0, max_iter=3000).fit(x[fit_rows], d.y3[fit_rows, 0])
            p = np.clip(m.predict_proba(x[test])[:, 1], 1e-9, 1 - 1e-9)
            np.add.at(ll[:, k], ann[test], np.where(d.y3[test, 0] == 1, np.log(p), np.log1p(-p)))
    return float(adjusted_rand_score(gl, ll.argmax(axis=1)))


def _known_group_ari(x: Any, y: Any, ann: Any, labels: Any, folds: int = 5) -> float:
    """Each group's logistic model on design `x` (decisive votes `y` = a won) fitted WITH the
    true labels on the other annotators (annotator folds); each held-out annotator to the
    group under which its votes are most likely."""
    from sklearn.linear_model import LogisticRegression

    names = sorted(set(labels.tolist()))
    fold = np.random.default_rng(0).permutation(labels.size) % folds
    ll = np.zeros((labels.size, len(names)))
    for f in range(folds):
        test = fold[ann] == f
        for k, g in enumerate(names):
            rows = (labels[ann] == g) & ~test
            m = LogisticRegression(C=1.0, max_iter=3000).fit(x[rows], y[rows])
            p = np.clip(m.predict_proba(x[test])[:, 1], 1e-9, 1 - 1e-9)
            np.add.at(ll[:, k], ann[test], np.where(y[test] == 1, np.log(p), np.log1p(-p)))
    return float(adjusted_rand_score(labels, ll.argmax(axis=1)))


VISIBLE = ("detail", "harmful", "over_refusal", "hedge", "fmt_list", "fmt_header", "bold",
           "filler")  # fmt: skip


def _spied_world(seed: int, size: int, annotators: int) -> tuple[Simulation, tuple[Any, ...]]:
    """`pluralistic` world and the arguments of the simulator's Bayes-classifier input
    (`_group_loglik`: groups, responses with their TRUE attributes, votes' responses, outcomes,
    annotators): hidden variables, read on purpose by the diagnosis only."""
    import prefkit.simulate.scenarios as scen_mod

    seen: dict[str, Any] = {}
    orig = scen_mod._group_loglik

    def spy(*args: Any) -> Any:
        seen["args"] = args
        return orig(*args)

    scen_mod._group_loglik = spy  # type: ignore[assignment]
    try:
        sim = simulate("pluralistic", size=size, seed=seed, annotators=annotators)
    finally:
        scen_mod._group_loglik = orig  # type: ignore[assignment]
    return ensure_group_members(sim), seen["args"]


def stance_r2(args: tuple[Any, ...]) -> dict[str, list[float]]:
    """How well text features recover the hidden attributes the groups weigh differently:
    5-fold cross-validated linear R² of each response's true `detail`, `hedge` and `filler`
    from [the 27 reward features, + the mixture's stance columns, + every stance feature]
    (prompts left out: response text only)."""
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import cross_val_predict

    from prefkit.rank.stance import stance_features
    from prefkit.reward.features import response_features
    from prefkit.simulate.world import ATTRIBUTES

    resp = args[1]
    blank = [""] * len(resp.text)
    base, _ = response_features(blank, resp.text)
    st, names = stance_features(blank, resp.text)
    mix = st[:, [names.index(c) for c in MIXTURE_STANCE]]
    designs = (base, np.hstack([base, mix]), np.hstack([base, st]))
    out: dict[str, list[float]] = {}
    for a in ("detail", "hedge", "filler"):
        y = resp.attrs[:, ATTRIBUTES.index(a)]
        out[a] = [
            round(float(1 - ((y - cross_val_predict(LinearRegression(), x, y, cv=5)) ** 2).sum()
                        / ((y - y.mean()) ** 2).sum()), 3)
            for x in designs
        ]  # fmt: skip
    return out


def attribute_ceiling(sim: Simulation, args: tuple[Any, ...]) -> dict[str, float]:
    """Known-group ARI (`_known_group_ari`) when the design is the simulator's TRUE response
    attributes (differences, plus length/100 and the idiosyncratic noise) instead of text
    features: `all`; `visible` (no correctness, errors or noise: what the text states);
    `visible_no_length`. Reads hidden variables on purpose: it says which attributes a
    representation would need to see, it is not a method. The attributes are taken from the
    simulator's own Bayes-classifier input (`_spied_world`)."""
    from prefkit.simulate.world import ATTRIBUTES

    _, resp, ra, rb, outcome, votes_ann, ann_ids = args
    dec = outcome < 2
    ann = votes_ann[dec]
    y = (outcome[dec] == 0).astype(np.int64)
    att = {a: (resp.attrs[ra, j] - resp.attrs[rb, j])[dec] for j, a in enumerate(ATTRIBUTES)}
    length = ((resp.length[ra] - resp.length[rb]) / 100.0)[dec]
    noise = (resp.noise[ra] - resp.noise[rb])[dec]
    labels = np.array([sim.truth["annotators"][a]["params"]["group"] for a in ann_ids])
    designs = {
        "all": [*att.values(), length, noise],
        "visible": [*(att[a] for a in VISIBLE), length],
        "visible_no_length": [att[a] for a in VISIBLE],
    }
    return {k: round(_known_group_ari(np.column_stack(v), y, ann, labels), 3)
            for k, v in designs.items()}  # fmt: skip


def start_check(sim: Simulation) -> dict[str, Any]:
    """Is the bt-mixture's answer a local optimum? EM from 8 random starts (fixed prior 1.0) beside
    EM started from the TRUE memberships, same design (K true): penalised log-likelihood and
    ARI of each; with the votes per unit and the co-voters' agreement (same vs different
    group) on units voted on by exactly two annotators."""
    from prefkit.rank.mixture import _run_em, design_responses, fit_mixture

    truth = {a: g for g, m in sim.truth["group_members"].items() for a in m}
    d = design_responses(sim.tables[Kind.COMPARISONS]).data
    labels = np.array([truth[a] for a in d.annotators])
    names = sorted(set(labels.tolist()))
    onehot = (labels[:, None] == np.array(names)[None, :]).astype(np.float64)
    em = fit_mixture(d, len(names), np.random.default_rng(0), n_init=8, prior="fixed")
    true_start = _run_em(d, 0.98 * onehot + 0.02 / len(names), 300, 1e-8)
    per_unit = np.bincount(d.unit, minlength=d.x.shape[0])
    order = np.argsort(d.unit, kind="stable")
    two = per_unit[d.unit[order]] == 2
    first, second = order[two][0::2], order[two][1::2]
    rel = d.y3.argmax(axis=1)
    ok = (rel[first] < 2) & (rel[second] < 2) & (d.annotator[first] != d.annotator[second])
    first, second = first[ok], second[ok]
    agree = rel[first] == rel[second]
    same = labels[d.annotator[first]] == labels[d.annotator[second]]
    return {
        "em_objective": round(em.objective, 2),
        "em_ari": round(float(adjusted_rand_score(labels, em.posterior.argmax(1))), 3),
        "true_start_objective": round(true_start.objective, 2),
        "true_start_ari": round(
            float(adjusted_rand_score(labels, true_start.posterior.argmax(1))), 3
        ),
        "votes_per_unit": {str(v): int(c) for v, c in enumerate(np.bincount(per_unit)) if c},
        "covoter_agreement_same_group": round(float(agree[same].mean()), 3),
        "covoter_agreement_other_group": round(float(agree[~same].mean()), 3),
        "covoter_pairs_same_other": [int(same.sum()), int((~same).sum())],
    }


def diagnose(worlds: int, seed0: int, size: int, annotators: int) -> None:
    """Why `pluralistic` recovery stays below 0.9, per world (seeds seed0..): `start_check`,
    the known-group ceiling of the mixture's design with and without the stance columns,
    `stance_r2` and `attribute_ceiling`; then means with 95% t-intervals."""
    keys = ("em_ari", "true_start_ari", "known_group_features", "known_group_no_stance",
            "attr_all", "attr_visible", "attr_visible_no_length", "objective_gap")  # fmt: skip
    acc: dict[str, list[float]] = {k: [] for k in keys}
    r2: dict[str, list[list[float]]] = {}
    for seed in range(seed0, seed0 + worlds):
        sim, args = _spied_world(seed, size, annotators)
        row: dict[str, Any] = {"scenario": "pluralistic", "seed": seed} | start_check(sim)
        row["known_group_features"] = round(known_group_feature_ari(sim), 3)
        row["known_group_no_stance"] = round(known_group_feature_ari(sim, stance=()), 3)
        row |= {f"attr_{k}": v for k, v in attribute_ceiling(sim, args).items()}
        row["objective_gap"] = round(row["em_objective"] - row["true_start_objective"], 2)
        row["r2_base_mixture_allstance"] = stance_r2(args)
        for a, v in row["r2_base_mixture_allstance"].items():
            r2.setdefault(a, []).append(v)
        for k in keys:
            acc[k].append(float(row[k]))
        print(json.dumps(row), flush=True)
    print(json.dumps({"scenario": "pluralistic", "worlds": worlds,
                      "seeds": [seed0, seed0 + worlds - 1], "votes": size,
                      "annotators": annotators, "stance": list(MIXTURE_STANCE),
                      "mean": {k: mean_ci(v) for k, v in acc.items()},
                      "r2_base_mixture_allstance": {
                          a: np.round(np.mean(v, axis=0), 3).tolist() for a, v in r2.items()}}),
          flush=True)  # fmt: skip


def level_run(seed: int, permutations: int, size: int) -> tuple[float | None, float]:
    sim = simulate("clean", size=size, seed=seed)
    t = sim.tables[Kind.COMPARISONS]
    b = battles_from_table(t, None)
    aggregate(b)
    labels = t.column("annotator").to_pylist()
    names, codes, _, _ = split_groups(labels, b, 30)
    keep = codes >= 0
    sub = type(b)(b.items, b.a[keep], b.b[keep], b.outcome[keep], b.weight[keep], b.rows[keep])
    h = heterogeneity_test(sub, codes[keep], names, "half", permutations,
                           np.random.default_rng(seed))  # fmt: skip
    return h["p_value_permutation"], h["p_value_chi2"]


def ceiling(scen: str, size: int, annotators: int, seeds: int) -> dict[str, Any]:
    """Latent-group recovery over `seeds` worlds: the bt-mixture (K true) beside the Bayes
    classifier (true parameters) and the known-group ceiling of the mixture's features."""
    rows = []
    for seed in range(seeds):
        sim = ensure_group_members(simulate(scen, size=size, seed=seed, annotators=annotators))
        k_true = len(sim.truth["group_members"])
        rows.append((mixture_ari(sim, k_true)["ari"], bayes_oracle_ari(sim),
                     known_group_feature_ari(sim)))  # fmt: skip
    r = np.asarray(rows)
    return {"scenario": scen, "votes": size, "annotators": annotators, "seeds": seeds,
            "ari_mixture": r[:, 0].round(3).tolist(), "ari_bayes_oracle": r[:, 1].round(3).tolist(),
            "ari_known_group_features": r[:, 2].round(3).tolist(),
            "mean": {"mixture": round(float(r[:, 0].mean()), 3),
                     "bayes_oracle": round(float(r[:, 1].mean()), 3),
                     "known_group_features": round(float(r[:, 2].mean()), 3)}}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--votes-per-annotator", type=int, default=200)
    ap.add_argument("--annotators", type=int, default=30)
    ap.add_argument("--level-runs", type=int, default=200)
    ap.add_argument("--level-size", type=int, default=2000)
    ap.add_argument("--permutations", type=int, default=199)
    ap.add_argument("--skip-mixture", action="store_true")
    ap.add_argument("--ceiling-seeds", type=int, default=0,
                    help="Also measure ARI of the mixture, the Bayes classifier and the "
                    "known-group feature ceiling over this many worlds per scenario.")  # fmt: skip
    ap.add_argument("--only-level", action="store_true", help="Only the level runs on clean.")
    ap.add_argument(
        "--context-worlds",
        type=int,
        default=0,
        help="Only the prompt-context study (`context_study`) over this many worlds.",
    )
    ap.add_argument("--context-seed", type=int, default=100, help="First seed of that study.")
    ap.add_argument("--diagnose-worlds", type=int, default=0,
                    help="Only the recovery diagnosis on `pluralistic` (`diagnose`) over this "
                    "many worlds, from --diagnose-seed.")  # fmt: skip
    ap.add_argument("--diagnose-seed", type=int, default=5, help="First seed of the diagnosis.")
    ap.add_argument("--cache-dir", default=None,
                    help=f"MiniLM embedding cache of the prompts (default {EMBED_CACHE}).")  # fmt: skip
    ap.add_argument("--contexts", default=None,
                    help="Context settings of that study, e.g. 0,8,auto (default: 0,4,8,auto on "
                    "pluralistic, 0,auto on pluralistic3).")  # fmt: skip
    ap.add_argument("--context-features", default="refusal",
                    help="Features whose effect may depend on the prompt (or all).")  # fmt: skip
    ap.add_argument("--context-scenarios", default="pluralistic,pluralistic3,clean",
                    help="Which parts of that study to run (comma-separated).")  # fmt: skip
    ap.add_argument("--prior-worlds", type=int, default=0,
                    help="Only the feature-prior study (`prior_study`: fixed vs evidence) over "
                    "this many worlds, from --prior-seed.")  # fmt: skip
    ap.add_argument("--prior-seed", type=int, default=5, help="First seed of that study.")
    ap.add_argument("--prior-scenarios", default="pluralistic",
                    help="Scenarios of that study (comma-separated).")  # fmt: skip
    a = ap.parse_args()
    size = a.votes_per_annotator * a.annotators
    if a.prior_worlds:
        prior_study(a.prior_worlds, a.prior_seed, size, a.annotators,
                    tuple(a.prior_scenarios.split(",")))  # fmt: skip
        return
    if a.diagnose_worlds:
        diagnose(a.diagnose_worlds, a.diagnose_seed, size, a.annotators)
        return
    if a.context_worlds:
        context_study(a.context_worlds, a.context_seed, size, a.annotators, a.level_size,
                      tuple(a.context_scenarios.split(",")), a.cache_dir or EMBED_CACHE,
                      None if a.contexts is None else tuple(
                          c if c == "auto" else int(c) for c in a.contexts.split(",")),
                      tuple(a.context_features.split(",")))  # fmt: skip
        return
    for scen in () if a.only_level else ("pluralistic", "pluralistic3"):
        sim = ensure_group_members(simulate(scen, size=size, seed=0, annotators=a.annotators))
        if "group_model_bt_strength" not in sim.truth:  # only the order matters (Spearman)
            sim.truth["group_model_bt_strength"] = sim.truth["group_model_strength"]
        out: dict[str, Any] = {"scenario": scen, "votes": size, "annotators": a.annotators}
        out |= groups_and_test(sim, a.permutations)
        if not a.skip_mixture:
            k_true = len(sim.truth["group_members"])
            out["mixture"] = [mixture_ari(sim, k_true)]
        print(json.dumps(out), flush=True)
        if a.ceiling_seeds:
            print(json.dumps(ceiling(scen, size, a.annotators, a.ceiling_seeds)), flush=True)
    if a.level_runs == 0:
        return
    pp: list[float] = []
    pc: list[float] = []
    t0 = time.perf_counter()
    for seed in range(a.level_runs):
        p_perm, p_chi2 = level_run(seed, a.permutations, a.level_size)
        pp.append(float(p_perm) if p_perm is not None else float("nan"))
        pc.append(p_chi2)
        if (seed + 1) % 20 == 0:
            print(json.dumps({"clean_runs_so_far": seed + 1,
                              "fpr_permutation": float(np.mean(np.asarray(pp) <= 0.05)),
                              "fpr_chi2": float(np.mean(np.asarray(pc) <= 0.05))}), flush=True)  # fmt: skip
    print(json.dumps({
        "scenario": "clean", "runs": a.level_runs, "size": a.level_size,
        "permutations": a.permutations,
        "false_positive_rate_permutation": float(np.mean(np.asarray(pp) <= 0.05)),
        "false_positive_rate_chi2": float(np.mean(np.asarray(pc) <= 0.05)),
        "seconds": round(time.perf_counter() - t0, 1),
    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
