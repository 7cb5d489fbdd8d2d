"""Disentangled heads: per-source nuisance terms, decorrelation, nuisance dropped at scoring."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from prefkit.reward.data import Pairs, pairs_from_table
from prefkit.reward.disentangle import (
    balanced_weights,
    decorrelate,
    parse_spec,
    source_blocks,
)
from prefkit.reward.features import FEATURE_NAMES
from prefkit.reward.train import (
    DEFAULT_GROUPS,
    choose_disentangle,
    fit_features,
    split_by_prompt,
    train,
)
from prefkit.schema import Kind
from prefkit.simulate import simulate

K = len(FEATURE_NAMES)
LEN = FEATURE_NAMES.index("log_chars")
Q = FEATURE_NAMES.index("prompt_coverage")


def _pairs(n: int, source: str, y: np.ndarray, seed: int) -> Pairs:
    """Rows whose features are given as arrays (texts are placeholders, never featurized)."""
    return Pairs(
        ids=[f"{source}{i}" for i in range(n)],
        prompt_ids=[f"{source}-p{i % (n // 4)}-{seed}" for i in range(n)],
        prompts=[""] * n,
        a=[""] * n,
        b=[""] * n,
        outcome=["a" if v > 0.5 else "b" for v in y],
        y=y,
        weight=np.ones(n),
        margin=np.full(n, np.nan),
        source=[source] * n,
        category=[""] * n,
        shown_first=[None] * n,
    )


def _world(
    n: int, gamma: float, rng: np.random.Generator, b: float = 1.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature rows of a and b; the quality feature is tied to length within pairs (0.6), the
    label follows quality (b) plus this source's length rule (gamma)."""
    xa = rng.normal(size=(n, K))
    xb = rng.normal(size=(n, K))
    for x in (xa, xb):
        x[:, Q] = 0.6 * x[:, LEN] + rng.normal(size=n)
    logit = b * (xa[:, Q] - xb[:, Q]) + gamma * (xa[:, LEN] - xb[:, LEN])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return xa, xb, y


def test_parse_spec_and_weights() -> None:
    assert parse_spec("auto") is None and parse_spec("none") == ()
    assert parse_spec("style,length") == ("length", "style")
    with pytest.raises(ValueError, match="length, style"):
        parse_spec("verbosity")
    src = np.array([0, 0, 0, 1])
    w, mult = balanced_weights(src, np.ones(4))
    assert w[src == 0].sum() == pytest.approx(w[src == 1].sum()) == pytest.approx(2.0)
    assert mult == {0: pytest.approx(2 / 3), 1: pytest.approx(2.0)}
    blocks = source_blocks(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1, 0]), 2)
    assert blocks.tolist() == [[0, 0, 1, 2], [3, 4, 0, 0]]


def test_decorrelation_is_least_squares_on_pair_differences() -> None:
    rng = np.random.default_rng(3)
    dn = rng.normal(size=(500, 2))
    dq = dn @ np.array([[0.5, -1.0, 0.0], [2.0, 0.3, 0.0]]) + rng.normal(size=(500, 3))
    dec = decorrelate(dq, dn)
    ref = np.linalg.lstsq(dn, dq, rcond=None)[0]  # independent: unweighted normal equations
    assert np.allclose(dec.coef, ref)
    res = dec.residual(dq, dn)
    assert np.abs(dn.T @ res).max() < 1e-8  # orthogonal to every nuisance difference
    beta = np.array([1.0, -2.0, 0.5])
    # the back-projected score equals the residual score
    assert np.allclose(dq @ beta + dn @ dec.back_projection(beta), res @ beta)


def test_per_source_length_rules_are_nuisance_and_dropped_at_scoring() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    xa0, xb0, y0 = _world(n, +2.0, rng)  # "shorter loses" here ...
    xa1, xb1, y1 = _world(n, -2.0, rng)  # ... and "shorter wins" here
    p = Pairs.concat([_pairs(n, "s0", y0, 0), _pairs(n, "s1", y1, 1)])
    xa, xb = np.vstack([xa0, xa1]), np.vstack([xb0, xb1])
    ff = fit_features(p, lam=1e-4, groups=("length",), features=(xa, xb))
    dis = ff.info["disentangle"]
    std = np.vstack([xa, xb]).std(axis=0)
    dz = (xa - xb) / std
    # closed form of the decorrelated parameterization: the quality head keeps b (in
    # standardized units); each source's length term absorbs its rule plus b times the
    # within-pair slope of quality on the length features
    quality = {c["feature"]: c for c in dis["quality_head"]}["prompt_coverage"]
    b_std = 1.2 * std[Q]
    assert quality["ci_low"] <= b_std <= quality["ci_high"]
    ni = [FEATURE_NAMES.index(f) for f in dis["nuisance_features"]]
    slope = np.linalg.lstsq(dz[:, ni], dz[:, Q], rcond=None)[0]
    for src, gamma in (("s0", 2.0), ("s1", -2.0)):
        terms = {c["feature"]: c for c in dis["nuisance"] if c["source"] == src}
        want_chars = gamma * std[LEN] + b_std * slope[dis["nuisance_features"].index("log_chars")]
        got = terms["log_chars"]
        assert got["ci_low"] <= want_chars <= got["ci_high"], (src, got, want_chars)
    # at scoring the nuisance head is gone: the reward difference is uncorrelated with the
    # length differences of the training pairs (the card reports the check)
    fm = ff.model
    delta = dz @ fm.beta
    assert abs(delta @ dz[:, LEN]) / np.linalg.norm(delta) / np.linalg.norm(dz[:, LEN]) < 1e-6
    assert max(abs(v) for v in dis["score_nuisance_correlation"].values()) < 1e-6
    # the plain model on the same pooled data keeps a length weight
    plain = fit_features(p, lam=1e-4, features=(xa, xb)).model
    d_plain = dz @ plain.beta
    assert abs(d_plain @ dz[:, LEN]) / np.linalg.norm(d_plain) / np.linalg.norm(dz[:, LEN]) > 0.05


def test_disentangled_transfers_where_plain_is_below_chance() -> None:
    """The issue's failure: a model trained where shorter wins, used where longer wins."""
    rng = np.random.default_rng(1)
    xa, xb, y = _world(3000, -2.5, rng)
    train_p = _pairs(3000, "short-wins", y, 0)
    ta, tb, ty = _world(3000, +2.5, rng)
    plain = fit_features(train_p, features=(xa, xb)).model
    dis = fit_features(train_p, groups=("length",), features=(xa, xb)).model

    def acc(fm: object) -> float:
        d = ((ta - tb) / fm.std) @ fm.beta  # type: ignore[attr-defined]
        return float(((d > 0) == (ty > 0.5)).mean())

    assert acc(plain) < 0.5 < acc(dis)


def test_auto_with_one_source_uses_the_default_and_says_why() -> None:
    groups, info = choose_disentangle(_pairs(40, "only", np.ones(40), 0))
    assert groups == DEFAULT_GROUPS == ("length", "style")
    assert "one source" in info["chosen_by"]


def test_train_two_sources_auto_and_card() -> None:
    a = simulate("clean", size=600, seed=1, length_bias=2.0).tables[Kind.COMPARISONS]
    b = simulate("clean", size=400, seed=2, length_bias=-2.0).tables[Kind.COMPARISONS]
    res = train([("a.parquet", a), ("b.parquet", b)], "features", seed=0)
    card = res.card
    dis = card["disentangle"]
    assert dis["spec"] == "auto" and "leave-one-source-out" in dis["chosen_by"]
    cands = {c["disentangle"]: c for c in dis["candidates"]}
    assert set(cands) == {"none", "length", "length,style"}
    best = max(cands.values(), key=lambda c: c["loso_accuracy"])
    assert dis["groups"] == (
        best["disentangle"].split(",") if best["disentangle"] != "none" else []
    )
    # opposite length rules: the model that ignores length transfers better
    assert cands["length"]["loso_accuracy"] > cands["none"]["loso_accuracy"]
    srcs = {s["name"]: s for s in card["data"]["sources"]}
    assert set(srcs) == {"a.parquet", "b.parquet"}
    assert srcs["a.parquet"]["share"] == pytest.approx(0.5)
    assert srcs["a.parquet"]["train_rows"] > srcs["b.parquet"]["train_rows"]
    assert srcs["b.parquet"]["weight"] > srcs["a.parquet"]["weight"]
    rows = train(
        [("a.parquet", a), ("b.parquet", b)], "features", disentangle="none", balance=False
    )
    shares = {s["name"]: s["share"] for s in rows.card["data"]["sources"]}
    assert shares["a.parquet"] > 0.55  # rows count by themselves: the bigger source weighs more


def _within_prompt_corr(prompts: list[str], score: np.ndarray, quality: np.ndarray) -> float:
    cs, cq = np.zeros(len(score)), np.zeros(len(score))
    keep = np.zeros(len(score), dtype=bool)
    for p in set(prompts):
        ix = [i for i, x in enumerate(prompts) if x == p]
        if len(ix) > 1:
            cs[ix], cq[ix], keep[ix] = (
                score[ix] - score[ix].mean(),
                quality[ix] - quality[ix].mean(),
                True,
            )
    return float(np.corrcoef(cs[keep], cq[keep])[0, 1])


@pytest.mark.parametrize("seed", [3, 4])
def test_simulator_planted_length_bias_disentangled_tracks_true_quality(seed: int) -> None:
    """Annotators with a strong verbosity bias (2 log-odds per 100 characters); the true
    utility of every response is known. The disentangled model's rewards correlate better with
    it, within prompts (what a Bradley–Terry reward identifies). All five seeds are in
    benchmarks/bench_reward.py (`--only sim-length`)."""
    t = simulate("clean", size=4000, seed=seed, length_bias=2.0).tables[Kind.COMPARISONS]
    tr, te = split_by_prompt(t, 0.3, seed=0)
    test = pairs_from_table(te)
    meta = [dict(m or []) for m in te.column("meta").to_pylist()]
    truth: dict[tuple[str, str], float] = {}
    for i, m in enumerate(meta):
        truth[(test.prompts[i], test.a[i])] = float(m["quality_a"])
        truth[(test.prompts[i], test.b[i])] = float(m["quality_b"])
    prompts = [k[0] for k in truth]
    responses = [k[1] for k in truth]
    q = np.array(list(truth.values()))
    got = {}
    for spec in ("none", "length"):
        model = train(tr, "features", seed=seed, disentangle=spec).model
        s = model.score(prompts, responses)
        got[spec] = _within_prompt_corr(prompts, s, q)
        assert spearmanr(s, q)[0] > 0.1  # both models learned something real
    assert got["length"] > got["none"] + 0.02


def test_embed_head_with_few_prompts_uses_the_folds_that_hold_rows() -> None:
    """Six prompts hash into fewer than five non-empty folds: the CV ensemble must use the
    folds that exist (it used to fail with "All-NaN slice" on ICAI's 60 pairs)."""
    from prefkit.reward.train import prompt_folds, train_embed

    rng = np.random.default_rng(5)
    n = 60
    xa, xb, y = _world(n, 0.0, rng)
    p = _pairs(n, "icai-like", y, 0)
    p = Pairs(**{**p.__dict__, "prompt_ids": [f"p{i % 6}" for i in range(n)]})
    assert len(set(prompt_folds(p.prompt_ids, 5, 0).tolist())) < 5
    ea, eb = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    for groups in ((), ("length",)):
        em, info = train_embed(
            p, None, 0, 20, groups=groups, features=(xa, xb), embeddings=(ea, eb)
        )
        assert 2 <= info["folds"] < 5 and np.isfinite(info["val_log_loss"])
        assert em.w_emb.shape == (8,)
