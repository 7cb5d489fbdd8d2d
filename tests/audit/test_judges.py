"""Judge annotators (`judge:*`, `reward:*`): position and verbosity bias per judge, with
intervals, in the audit summary and report — on planted biases and on PandaLM's GPT judge
against the three human annotators."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from prefkit.audit.bias import is_judge, judge_biases, paired_excess, wilson
from prefkit.audit.frame import Frame
from prefkit.audit.run import run_audit
from prefkit.io.detect import read
from prefkit.schema import from_rows


def test_wilson_interval_matches_statsmodels() -> None:
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((0, 10), (3, 10), (50, 120), (119, 120)):
        lo, hi = wilson(float(k), float(n))
        elo, ehi = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert float(lo) == pytest.approx(elo, abs=1e-9) and float(hi) == pytest.approx(
            ehi, abs=1e-9
        )


def test_paired_excess_is_the_mean_difference_with_a_normal_interval() -> None:
    rng = np.random.default_rng(0)
    x = rng.random(400)
    ref = rng.random(400)
    g = np.repeat([0, 1], 200)
    out = paired_excess(g, x, ref, np.ones(400, dtype=bool), 2)
    d = (x - ref)[:200]
    half = 1.959963984540054 * d.std(ddof=1) / np.sqrt(200)
    assert out["mean"][0] == pytest.approx(d.mean())
    assert out["lo"][0] == pytest.approx(d.mean() - half)
    assert out["hi"][0] == pytest.approx(d.mean() + half)


def _planted(seed: int = 0) -> tuple[pa.Table, dict[str, float]]:
    """Three unbiased humans per pair; `judge:first` picks the response shown first with
    probability 0.3 before judging, `judge:long` picks the longer one with probability 0.3,
    `judge:fair` has no bias. Every judge sees each pair in both display orders."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    expect_first: list[float] = []
    expect_long: list[float] = []
    for i in range(800):
        m = rng.normal(0, 1.5)  # latent margin: log-odds that a is better
        la, lb = (int(x) for x in rng.integers(40, 400, 2))
        base = {
            "prompt": f"question {i}",
            "response_a": f"answer a{i} " + "x" * la,
            "response_b": f"answer b{i} " + "y" * lb,
        }
        p_a = 1 / (1 + np.exp(-m))
        for h in range(3):
            rows.append(
                base | {"outcome": "a" if rng.random() < p_a else "b", "annotator": f"human{h}"}
            )
        for first in ("a", "b"):
            honest_a = rng.random() < p_a
            # judge:first
            pick_first = rng.random() < 0.3
            out = first if pick_first else ("a" if honest_a else "b")
            rows.append(base | {"outcome": out, "annotator": "judge:first", "shown_first": first})
            expect_first.append(0.3 + 0.7 * (p_a if first == "a" else 1 - p_a))
            # judge:long
            longer = "a" if la > lb else "b"
            out = longer if rng.random() < 0.3 else ("a" if rng.random() < p_a else "b")
            rows.append(base | {"outcome": out, "annotator": "judge:long", "shown_first": first})
            if la != lb:
                expect_long.append(0.3 + 0.7 * (p_a if longer == "a" else 1 - p_a))
            # judge:fair (deterministic on clear pairs)
            out = "a" if m > 0 else "b"
            rows.append(base | {"outcome": out, "annotator": "judge:fair", "shown_first": first})
    return from_rows(rows, "comparisons"), {
        "p_first": float(np.mean(expect_first)),
        "p_longer": float(np.mean(expect_long)),
    }


def test_planted_position_and_verbosity_bias_fall_in_the_intervals() -> None:
    table, truth = _planted()
    f = Frame.of(table)
    assert list(is_judge(f.annotators)) == [a.startswith("judge:") for a in f.annotators]
    js = {j["annotator"]: j for j in judge_biases(f)}
    assert set(js) == {"judge:first", "judge:long", "judge:fair"}  # humans are not judges
    pf = js["judge:first"]["position"]["p_first"]
    assert pf["ci"][0] <= truth["p_first"] <= pf["ci"][1], (pf, truth)
    assert pf["ci"][0] > 0.55  # clearly biased
    # its excess over humans on the same pairs is the planted share of blind picks, ~0.3 × ½
    ex = js["judge:first"]["position"]["excess_over_humans"]
    assert ex["ci"][0] <= 0.15 <= ex["ci"][1] and ex["ci"][0] > 0
    pl = js["judge:long"]["verbosity"]["p_longer"]
    assert pl["ci"][0] <= truth["p_longer"] <= pl["ci"][1], (pl, truth)
    vx = js["judge:long"]["verbosity"]["excess_over_humans"]
    assert vx["ci"][0] > 0.05
    # the unbiased judge: position and verbosity excess intervals cover 0; it is consistent
    fair = js["judge:fair"]
    assert (
        fair["position"]["excess_over_humans"]["ci"][0]
        <= 0
        <= fair["position"]["excess_over_humans"]["ci"][1]
    )
    assert (
        fair["verbosity"]["excess_over_humans"]["ci"][0]
        <= 0
        <= fair["verbosity"]["excess_over_humans"]["ci"][1]
    )
    assert fair["position"]["swap_consistency"]["rate"] == 1.0
    assert fair["position"]["swap_consistency"]["n"] == 800
    # a judge picking blindly 30% of the time is inconsistent on ~30% × ... of the pairs
    assert js["judge:first"]["position"]["swap_consistency"]["rate"] < 0.85


PANDALM = "pandalm_testset/data"


def test_pandalm_gpt_judge_biases_against_the_raw_files(data_dir: Path, tmp_path: Path) -> None:
    """GPT-3.5 judged PandaLM's 999 pairs with response 1 shown first; three people judged
    them too. The audit's per-judge numbers equal a plain-Python count over the raw JSON."""
    humans = read(data_dir / PANDALM / "testset-v1.json").table
    gpt = read(data_dir / PANDALM / "gpt-3.5-turbo-testset-v1.json").table
    n = gpt.num_rows
    gpt = gpt.set_column(
        gpt.schema.get_field_index("annotator"), "annotator", pa.array(["judge:gpt-3.5-turbo"] * n)
    )
    gpt = gpt.set_column(
        gpt.schema.get_field_index("shown_first"), "shown_first", pa.array(["a"] * n)
    )
    table = pa.concat_tables([humans, gpt.cast(humans.schema)])
    res = run_audit(table, tmp_path / "audit", source_name="pandalm+gpt")
    (j,) = res.summary["bias"]["judges"]
    assert j["annotator"] == "judge:gpt-3.5-turbo"

    raw_h = json.loads((data_dir / PANDALM / "testset-v1.json").read_text())
    raw_g = json.loads((data_dir / PANDALM / "gpt-3.5-turbo-testset-v1.json").read_text())
    by_idx = {str(r["idx"]): r for r in raw_h}
    first = longer = dec = diff_len = 0
    agree = agree_n = 0
    for g in raw_g:
        v = {"1": 1, "2": 2}.get(str(g.get("gpt_result")).strip())  # "Tie" and junk: no vote
        if v is None:
            continue
        h = by_idx[str(g["idx"])]
        # a response written as a JSON scalar (`true`, `42`) is that JSON text
        r1, r2 = (
            x if isinstance(x, str) else json.dumps(x) for x in (h["response1"], h["response2"])
        )
        dec += 1
        first += v == 1
        l1, l2 = len(r1), len(r2)
        if l1 != l2:
            diff_len += 1
            longer += (v == 1) == (l1 > l2)
        votes = [h[f"annotator{k}"] for k in (1, 2, 3)]
        a, b = votes.count(1), votes.count(2)
        if a != b:
            agree_n += 1
            agree += (v == 1) == (a > b)
    pos = j["position"]["p_first"]
    assert pos["n"] == dec and pos["rate"] == pytest.approx(first / dec, abs=1e-12)
    lo, hi = wilson(float(first), float(dec))
    assert pos["ci"] == pytest.approx([float(lo), float(hi)], abs=1e-12)
    assert j["agreement_with_humans"]["rate"] == pytest.approx(agree / agree_n, abs=1e-12)
    pl = j["verbosity"]["p_longer"]
    assert pl["n"] == diff_len and pl["rate"] == pytest.approx(longer / diff_len, abs=1e-12)
    assert pl["ci"][0] < pl["rate"] < pl["ci"][1]
    html = (tmp_path / "audit" / "report.html").read_text(encoding="utf-8")
    assert 'id="judges"' in html and "judge:gpt-3.5-turbo" in html and "plot-judges" in html
