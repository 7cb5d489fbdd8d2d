"""The truth in truth.json is really in the data (noisy at 20,000 rows, arena at default)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import statsmodels.api as sm
from scipy.optimize import minimize
from scipy.stats import spearmanr

from prefkit.schema import Kind, normalize_text
from prefkit.simulate import Simulation


def test_flipped_rows_disagree_with_latent_preference(
    noisy: Simulation, noisy_cols: dict[str, Any]
) -> None:
    c = noisy_cols
    flipped = np.isin(c["id"], noisy.truth["flipped_ids"])
    spam = np.isin(c["annotator"], noisy.truth["spammers"])
    decisive = np.isin(c["outcome"], ["a", "b"])
    # about 10% of the rows are flipped, never a spammer's row, never a tie
    assert 0.08 <= flipped.mean() <= 0.12
    assert not (flipped & spam).any()
    assert not (flipped & ~decisive).any()
    sure = np.abs(c["true_pref"] - 0.5) > 0.3  # pairs with a clear latent preference
    agrees = (c["outcome"] == "a") == (c["true_pref"] > 0.5)
    assert agrees[flipped & sure].mean() < 0.25
    assert agrees[~flipped & ~spam & decisive & sure].mean() > 0.8
    # the flip flag itself is not leaked into the rows
    assert not any("flip" in k for k in c["meta_keys"])


def _loo_majority(c: dict[str, Any]) -> dict[int, str]:
    by_pair: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(c["pair"].tolist()):
        by_pair[p].append(i)
    out: dict[int, str] = {}
    for rows in by_pair.values():
        for i in rows:
            others = [
                c["outcome"][j] for j in rows if j != i and c["annotator"][j] != c["annotator"][i]
            ]
            na, nb = others.count("a"), others.count("b")
            if na != nb:
                out[i] = "a" if na > nb else "b"
    return out


def test_spammers_agree_with_majority_at_chance(
    noisy: Simulation, noisy_cols: dict[str, Any]
) -> None:
    c = noisy_cols
    spammers = set(noisy.truth["spammers"])
    n_ann = len(noisy.truth["annotators"])
    assert 0.07 <= len(spammers) / n_ann <= 0.13
    assert {noisy.truth["annotators"][s]["params"]["spam"] for s in spammers} == {
        "random",
        "always_a",
    }
    maj = _loo_majority(c)
    spam_agree = [c["outcome"][i] == m for i, m in maj.items() if c["annotator"][i] in spammers]
    other_agree = [
        c["outcome"][i] == m
        for i, m in maj.items()
        if c["annotator"][i] not in spammers and c["outcome"][i] in ("a", "b")
    ]
    assert len(spam_agree) > 500
    assert abs(np.mean(spam_agree) - 0.5) < 0.08
    assert np.mean(other_agree) > np.mean(spam_agree) + 0.12
    # per spammer too: nobody of them is far from chance
    per: dict[str, list[bool]] = defaultdict(list)
    for i, m in maj.items():
        if c["annotator"][i] in spammers:
            per[str(c["annotator"][i])].append(c["outcome"][i] == m)
    assert all(abs(np.mean(v) - 0.5) < 0.2 for v in per.values() if len(v) >= 50)


def test_position_bias_matches_truth(noisy: Simulation, noisy_cols: dict[str, Any]) -> None:
    c = noisy_cols
    decisive = np.isin(c["outcome"], ["a", "b"])
    first_won = np.where(c["first_a"], c["outcome"] == "a", c["outcome"] == "b")
    biased = np.isin(c["annotator"], noisy.truth["position_biased"]) & decisive
    for rows, key in ((biased, "position_bias"), (decisive, "position_bias_overall")):
        p = first_won[rows].mean()
        se = np.sqrt(p * (1 - p) / rows.sum())
        assert abs((p - 0.5) - noisy.truth[key]) < 3.5 * se + 0.005, key
    # the bias is there and sizeable (≈ 0.08: position_logit 1.2 against beta 2.0, and 12%
    # flips dilute it)
    assert noisy.truth["position_bias"] > 0.06


def test_length_bias_matches_truth(noisy: Simulation, noisy_cols: dict[str, Any]) -> None:
    """Fit the generating model (known per-annotator beta, flip rate and position logit,
    unknown length effect) on the decisive non-spammer votes; and the quality-blind logistic
    regression against `length_bias_marginal`."""
    c, truth = noisy_cols, noisy.truth
    ann = truth["annotators"]
    decisive = np.isin(c["outcome"], ["a", "b"])
    spam = np.isin(c["annotator"], truth["spammers"])
    sel = decisive & ~spam
    params = [ann[a]["params"] for a in c["annotator"][sel]]
    beta = np.array([p["beta"] for p in params])
    flip = np.array([p["flip"] for p in params])
    gamma = np.array([p["position_logit"] for p in params])
    x = (c["len_a"] - c["len_b"])[sel] / 100.0
    s = np.where(c["first_a"][sel], 1.0, -1.0)
    off = beta * (c["qa"] - c["qb"])[sel] + gamma * s
    y = (c["outcome"][sel] == "a").astype(float)

    def nll(th: np.ndarray) -> float:
        p = flip + (1 - 2 * flip) / (1 + np.exp(-(off + th[0] * x)))
        return float(-np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))

    fit = minimize(nll, np.zeros(1), method="BFGS")
    se = float(np.sqrt(fit.hess_inv[0, 0]))
    assert abs(fit.x[0] - truth["length_bias"]) < 3.5 * se + 0.02
    assert truth["length_bias"] > 0.2

    # quality-blind fit on all decisive rows (what an audit without the truth sees)
    xa = (c["len_a"] - c["len_b"])[decisive] / 100.0
    ya = (c["outcome"][decisive] == "a").astype(float)
    res = sm.Logit(ya, sm.add_constant(xa)).fit(disp=0)
    assert abs(res.params[1] - truth["length_bias_marginal"]) < 3.5 * res.bse[1] + 0.01


def test_duplicates_and_identical_pairs(noisy: Simulation, noisy_cols: dict[str, Any]) -> None:
    c = noisy_cols
    index = {r: i for i, r in enumerate(c["id"].tolist())}
    groups = noisy.truth["duplicate_groups"]
    kinds = {g["kind"] for g in groups}
    assert kinds == {"exact", "near"}
    for g in groups:
        rows = [index[r] for r in g["ids"]]
        assert len(rows) >= 2
        keys = []
        for i in rows:
            a, b, o = c["text_a"][i], c["text_b"][i], c["outcome"][i]
            if b < a:
                a, b, o = b, a, {"a": "b", "b": "a"}.get(o, o)
            keys.append((c["prompt"][i], a, b, c["annotator"][i], o))
        if g["kind"] == "exact":
            assert len(set(keys)) == 1
        else:
            assert len(set(keys)) == len(keys)  # really different text ...
            i, j = rows
            wa = set(normalize_text(c["text_a"][i] + " " + c["text_b"][i]).split())
            wb = set(normalize_text(c["text_a"][j] + " " + c["text_b"][j]).split())
            assert len(wa & wb) / len(wa | wb) > 0.85  # ... but nearly the same
            assert c["annotator"][i] == c["annotator"][j] and c["outcome"][i] == c["outcome"][j]
    n_exact = sum(g["kind"] == "exact" for g in groups)
    assert 0.005 * len(c["id"]) <= n_exact <= 0.02 * len(c["id"])
    ident = {i for i in range(len(c["id"])) if c["text_a"][i] == c["text_b"][i]}
    assert {index[r] for r in noisy.truth["identical_response_ids"]} == ident
    assert len(ident) >= 20


def _bt(winner: np.ndarray, loser: np.ndarray, k: int, w: np.ndarray) -> np.ndarray:
    def nll(th: np.ndarray) -> tuple[float, np.ndarray]:
        t = np.concatenate([[0.0], th])
        d = t[winner] - t[loser]
        p = 1 / (1 + np.exp(-d))
        g = np.zeros(k)
        np.add.at(g, winner, -w * (1 - p))
        np.add.at(g, loser, w * (1 - p))
        return float(-np.sum(w * np.log(p))), g[1:]

    fit = minimize(nll, np.zeros(k - 1), jac=True, method="L-BFGS-B")
    return np.concatenate([[0.0], fit.x])


def bt_scores(
    models_a: list[str], models_b: list[str], outcomes: list[str], names: list[str]
) -> np.ndarray:
    """Bradley-Terry with ties (and both_bad) counted as half a win each way."""
    ix = {n: i for i, n in enumerate(names)}
    a = np.array([ix[m] for m in models_a])
    b = np.array([ix[m] for m in models_b])
    o = np.array(outcomes)
    wa = np.where(o == "a", 1.0, np.where(o == "b", 0.0, 0.5))
    return _bt(
        np.concatenate([a, b]), np.concatenate([b, a]), len(names), np.concatenate([wa, 1 - wa])
    )


def test_bt_fit_on_arena_recovers_true_order(arena: Simulation) -> None:
    t = arena.tables[Kind.COMPARISONS]
    truth = arena.truth["model_strength"]
    names = sorted(truth)
    assert len(names) >= 12 and t.num_rows == 20_000
    est = bt_scores(
        t.column("model_a").to_pylist(),
        t.column("model_b").to_pylist(),
        t.column("outcome").to_pylist(),
        names,
    )
    rho = spearmanr(est, [truth[n] for n in names]).statistic
    assert rho >= 0.95
    outcomes = set(t.column("outcome").to_pylist())
    assert outcomes == {"a", "b", "tie", "both_bad"}
    assert arena.truth["model_order"] == sorted(truth, key=lambda m: -truth[m])


def test_bt_fit_on_decisive_arena_votes_matches_true_bt_strengths(arena: Simulation) -> None:
    """`model_bt_strength` is on the Bradley-Terry logit scale: a BT fit on the decisive
    votes reproduces the values themselves, not only the order."""
    t = arena.tables[Kind.COMPARISONS]
    truth = arena.truth["model_bt_strength"]
    names = sorted(truth)
    out = np.array(t.column("outcome").to_pylist())
    keep = np.isin(out, ["a", "b"])
    est = bt_scores(
        list(np.array(t.column("model_a").to_pylist())[keep]),
        list(np.array(t.column("model_b").to_pylist())[keep]),
        list(out[keep]),
        names,
    )
    est -= est.mean()
    true = np.array([truth[n] for n in names])
    assert abs(true.mean()) < 1e-6
    assert np.abs(est - true).max() < 0.2
    slope = np.polyfit(true, est, 1)[0]
    assert 0.9 < slope < 1.1


def test_bt_half_fit_on_arena_votes_matches_the_bt_half_estimand(arena: Simulation) -> None:
    """`model_bt_half_strength` is what Bradley-Terry with ties (and both_bad) as half a win
    converges to on this arena: a fit on the 20,000 votes lands within 3.5 standard errors
    of it for every model, with no systematic expansion."""
    t = arena.tables[Kind.COMPARISONS]
    truth = arena.truth["model_bt_half_strength"]
    names = sorted(truth)
    ma, mb = t.column("model_a").to_pylist(), t.column("model_b").to_pylist()
    est = bt_scores(ma, mb, t.column("outcome").to_pylist(), names)
    est -= est.mean()
    true = np.array([truth[n] for n in names])
    battles_per_model = np.array([ma.count(n) + mb.count(n) for n in names])
    se = 2.0 / np.sqrt(battles_per_model)  # 1 / sqrt(n p (1 - p)) at p = 1/2: an upper bound
    assert np.all(np.abs(est - true) < 3.5 * se)
    assert 0.97 < np.polyfit(true, est, 1)[0] < 1.03
    half = arena.truth["model_bt_half_strength"]
    drop = arena.truth["model_bt_strength"]
    # ties pull the half-a-win scale towards 0, relative to the decisive-vote scale
    assert np.ptp([half[n] for n in names]) < np.ptp([drop[n] for n in names])
    assert 0.0 < arena.truth["tie_share"] < 0.5 and arena.truth["davidson_nu"] > 0


def test_pair_model_estimand_closed_forms_and_an_independent_fit() -> None:
    """Davidson-generated pair probabilities: the Davidson estimand is the generating
    (theta, nu) and the decisive-vote Bradley-Terry estimand is theta (P(i | decisive) =
    sigmoid(theta_i - theta_j)), whatever the pair weights; the ties-half estimand equals
    prefkit.rank's Newton fit of the expected counts (another solver)."""
    from prefkit.rank import bt
    from prefkit.rank.data import Counts
    from prefkit.simulate.personas import davidson
    from prefkit.simulate.world import pair_model_estimand

    rng = np.random.default_rng(3)
    k = 12
    theta = rng.normal(0, 1, k)
    theta -= theta.mean()
    i, j = np.triu_indices(k, 1)
    keep = rng.random(i.size) < 0.7
    i, j = i[keep], j[keep]
    w = rng.uniform(0.5, 2.0, i.size)
    pi, pj, pt = davidson(theta[i] - theta[j], 0.8)
    dav, nu = pair_model_estimand(i, j, pi, pj, pt, "davidson", w)
    assert np.abs(dav - theta).max() < 1e-6 and abs((nu or 0) - 0.8) < 1e-6
    drop, none = pair_model_estimand(i, j, pi, pj, pt, "bt-drop", w)
    assert np.abs(drop - theta).max() < 1e-6 and none is None
    half, _ = pair_model_estimand(i, j, pi, pj, pt, "bt-half", w)
    n = np.ones((i.size, 3), dtype=np.int64)
    counts = Counts(
        tuple(f"m{q:02d}" for q in range(k)), i, j, w * pi, w * pj, w * pt, n, np.ones((i.size, 3))
    )
    ref = bt.fit(counts, bt.RankConfig(prior=0.0))
    assert np.abs(half - ref.theta).max() < 1e-6
    assert np.ptp(half) < np.ptp(theta)  # ties as half a win shrink the scale
