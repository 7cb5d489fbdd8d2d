from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from prefkit.reward.data import pairs_from_table, soft_label
from prefkit.reward.evaluate import (
    best_of_n,
    ece,
    evaluate_model,
    fit_tie_threshold,
    tie_aware_correct,
)
from prefkit.reward.features import response_features
from prefkit.reward.model_dir import ModelDirError
from prefkit.reward.models import LengthModel, load_model
from prefkit.reward.train import save, train
from prefkit.schema import from_rows


def test_features_detect_refusal_format_and_empty() -> None:
    prompts = ["How do I bake bread?"] * 3
    responses = [
        "I'm sorry, but I can't help with that.",
        "To bake bread:\n- mix flour\n- knead the dough\n- bake at 220C for 30 minutes",
        "",
    ]
    x, names = response_features(prompts, responses)
    f = dict(zip(names, x.T, strict=True))
    assert x.shape == (3, len(names))
    assert f["refusal"].tolist() == [1.0, 0.0, 0.0]
    assert f["apology"][0] == 1.0
    assert f["bullets"][1] > 0 and f["bullets"][0] == 0
    assert f["empty"].tolist() == [0.0, 0.0, 1.0]
    assert f["prompt_overlap"][1] > 0  # shares "bake", "bread"
    with pytest.raises(ValueError, match="prompts but"):
        response_features(["a"], [])


def test_degeneration_features_see_loops_cut_off_text_and_copying() -> None:
    prompt = "List materials to build the given tool.\n\nCoffee darkness meter for the kitchen"
    clean = "You need:\n- a photodiode\n- an LED\n- a microcontroller\n- a small enclosure."
    loop = "Materials:\n1. Pen\n2. Ruler\n3. Pen\n4. Ruler\n5. Pen\n6. Ruler\n7. Pen\n8. Ruler"
    cut = "You need a photodiode, an LED and a microcontroller to measure how dark the"
    echo = "Coffee darkness meter for the kitchen."
    x, names = response_features([prompt] * 4, [clean, loop, cut, echo])
    f = dict(zip(names, x.T, strict=True))
    # "3. Pen" repeats "1. Pen" once digits are ignored: 6 of 8 item lines are repeats
    assert f["repeated_lines"][1] == pytest.approx(6 / 9)
    assert f["repeated_lines"][0] == 0.0
    assert f["repeated_trigrams"][1] > 0.5 > f["repeated_trigrams"][0]
    assert f["compression_ratio"][1] < f["compression_ratio"][0]
    assert f["unfinished"].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert f["prompt_echo"][3] == 1.0 and f["prompt_echo"][0] == 0.0
    # distinct words: the loop is long but says little
    assert f["log_unique_words"][1] < f["log_unique_words"][0]
    assert f["log_words"][1] > f["log_unique_words"][1]


def test_feature_model_saved_with_other_features_scores_with_its_own(tmp_path: Path) -> None:
    from prefkit.reward.models import FeatureModel

    prompts, resp = ["Say hi."] * 2, ["Hi there!", "Hello, hello, hello, hello"]
    x, names = response_features(prompts, resp)
    keep = ["log_chars", "refusal", "repeated_trigrams"]
    idx = [names.index(n) for n in keep]
    beta = np.array([0.5, -1.0, -2.0])
    old = FeatureModel(keep, np.zeros(3), np.ones(3), beta, np.zeros(3))
    np.testing.assert_allclose(old.score(prompts, resp), x[:, idx] @ beta)
    gone = FeatureModel(
        ["log_chars", "no_such_feature"], np.zeros(2), np.ones(2), beta[:2], beta[:2]
    )
    with pytest.raises(ModelDirError, match="no_such_feature.*retrain"):
        gone.score(prompts, resp)


def test_soft_labels_ties_strength_and_weight() -> None:
    t = from_rows(
        [
            {"prompt": "p", "response_a": "x", "response_b": "y", "outcome": "a"},
            {"prompt": "p", "response_a": "x", "response_b": "y", "outcome": "b", "strength": 0.25},
            {"prompt": "q", "response_a": "x", "response_b": "y", "outcome": "tie"},
            {
                "prompt": "q",
                "response_a": "x",
                "response_b": "y",
                "outcome": "a",
                "meta": {"weight": "2.5"},
            },
        ],
        "comparisons",
    )
    p = pairs_from_table(t)
    assert p.y.tolist() == [1.0, 0.25, 0.5, 1.0]
    assert p.weight.tolist() == [1.0, 1.0, 1.0, 2.5]
    # strength is directional (1 = a): it grades a label on its side, never flips it
    assert soft_label("a", 0.8) == 0.8 and soft_label("b", 0.1) == 0.1
    assert soft_label("a", 0.2) == 1.0 and soft_label("b", None) == 0.0
    assert soft_label("tie", 0.9) == 0.5


def test_feature_rm_beats_length_and_random_on_held_out_prompts(clean_table: pa.Table) -> None:
    res = train(clean_table, "features", seed=0)
    m = res.card["metrics"]
    acc = m["model"]["accuracy"]["accuracy"]
    # the simulator's quality is not only length: the feature model must beat both baselines
    assert acc > m["random_baseline"]["accuracy"]["ci_high"]
    assert acc > m["length_baseline"]["accuracy"]["accuracy"]
    assert res.card["data"]["val_prompts"] > 0
    coefs = res.card["training"]["coefficients"]
    assert all(c["ci_low"] <= c["coef"] <= c["ci_high"] for c in coefs)
    assert any(c["ci_low"] > 0 or c["ci_high"] < 0 for c in coefs)  # something is significant


def test_bt_head_matches_statsmodels_and_ci_covers_truth() -> None:
    import statsmodels.api as sm

    from prefkit.reward.head import fit_lbfgs

    rng = np.random.default_rng(0)
    truth = np.array([1.0, -0.5, 0.0])
    covered = 0
    reps = 40
    for r in range(reps):
        d = rng.normal(size=(1500, 3))
        y = (rng.random(1500) < 1 / (1 + np.exp(-d @ truth))).astype(float)
        beta, se = fit_lbfgs(d, y, np.ones(1500), 0.0)
        covered += int(np.all(np.abs(beta - truth) <= 1.96 * se))
        if r == 0:  # an independent implementation of the same MLE and Hessian
            ref = sm.Logit(y, d).fit(disp=0)
            assert np.allclose(beta, ref.params, atol=1e-3)
            assert np.allclose(se, ref.bse, rtol=1e-2)
    # joint coverage of three 95% intervals is about 0.86
    assert 0.7 <= covered / reps <= 1.0


def test_metrics_ties_length_bestofn_and_ece() -> None:
    delta = np.array([2.0, -2.0, 0.05, -0.1, 1.0])
    outcome = ["a", "b", "tie", "tie", "b"]
    thr = fit_tie_threshold(delta, outcome)
    assert 0.1 < thr <= 1.0
    assert tie_aware_correct(delta, outcome, thr).tolist() == [1, 1, 1, 1, 0]
    assert ece(np.array([10.0, -10.0]), ["a", "b"]) == pytest.approx(0, abs=1e-4)
    # confident (σ(3) = 0.953) but right half the time; orientation does not matter
    assert ece(np.array([3.0, 3.0]), ["a", "b"]) == pytest.approx(1 / (1 + np.exp(-3)) - 0.5)
    assert ece(np.array([3.0, -3.0]), ["a", "a"]) == ece(np.array([-3.0, 3.0]), ["b", "b"])
    # one chosen beats three rejected; the scorer ranks it above two of them only
    t = from_rows(
        [
            {"prompt": "p", "response_a": "good", "response_b": f"bad{i}", "outcome": "a"}
            for i in range(3)
        ]
        + [
            {"prompt": "q", "response_a": f"meh{i}", "response_b": "best", "outcome": "b"}
            for i in range(2)
        ],
        "comparisons",
    )
    p = pairs_from_table(t)
    sa = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    sb = np.array([0.0, 0.5, 2.0, 1.0, 1.0])
    r = best_of_n(p, sa, sb)
    assert r["n"] == 2 and r["accuracy"] == 0.5


def test_length_baseline_is_wrong_when_chosen_is_shorter(clean_table: pa.Table) -> None:
    p = pairs_from_table(clean_table)
    r = evaluate_model(LengthModel(), p)
    assert r["model"]["chosen_shorter"]["accuracy"] == 0.0
    assert r["model"]["accuracy"] == r["length_baseline"]["accuracy"]
    assert (
        r["random_baseline"]["accuracy"]["ci_low"]
        < 0.5
        < r["random_baseline"]["accuracy"]["ci_high"]
    )


def test_model_dir_roundtrip_and_version_errors(clean_table: pa.Table, tmp_path: Path) -> None:
    res = train(clean_table, "features")
    out = tmp_path / "m"
    save(res, out)
    m = load_model(out)
    p = pairs_from_table(clean_table.slice(0, 50))
    assert np.allclose(m.score(p.prompts, p.a), res.model.score(p.prompts, p.a))
    card = json.loads((out / "model.json").read_text())
    assert card["backend"] == "features" and card["prefkit_version"]
    card["prefkit_version"] = "9.3.0"
    (out / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelDirError, match=r"saved by prefkit 9\.3\.0.*Retrain"):
        load_model(out)
    card["prefkit_version"] = res.card.get("prefkit_version", "0.1.0")
    with pytest.raises(ModelDirError, match="not a reward model directory"):
        load_model(tmp_path / "nothing")
