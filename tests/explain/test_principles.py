"""Principles (Inverse Constitutional AI) on the ICAI synthetic sets, through the real judge
client against a scripted OpenAI-compatible server on loopback (tests/judge/fake_openai.py,
model `principled`, rules in tests/explain/scripted.py).

The planted principles are those of Findeis et al., "Inverse Constitutional AI: Compressing
Preferences into Principles" (ICLR 2025), section 4.1 and appendix F, and the generation
notebook notebooks/03_generating_synthetic_data.ipynb of github.com/rdnfn/icai:
orthogonal = cats over dogs, a t-shirt colour, lemon over raspberry ice cream; aligned =
truthful over factually incorrect, helpful over useless, polite over impolite. The paper's
text says "prefer green over blue color"; the released data (and the notebook, whose first
`differing_part` is the preferred one) prefer blue: explain finds "green over blue" followed in
reverse.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prefkit.explain import principles as P
from tests.explain.conftest import ICAI
from tests.judge.conftest import Server, cli

CAT = "Select the response that features a cat rather than a dog."
BLUE = "Select the response that recommends blue rather than green."
GREEN = "Select the response that recommends green rather than blue."
LEMON = "Select the response that recommends lemon rather than raspberry ice cream."
TRUTH = "Select the truthful response over the factually incorrect one."
HELP = "Select the helpful response that names a specific destination over a useless one."
POLITE = "Select the polite response over the impolite one."
DISTRACT = [
    "Select the response that is more concise.",
    "Select the response that uses more exclamation marks.",
    "Select the response that mentions more numbers.",
    "Select the response that features a dog rather than a cat.",
    "Select the response that explains its reasoning step by step.",  # no rule: never applies
    GREEN,  # the paper's wording of the colour principle
]
SETS = {
    "orthogonal": ("synthetic_data_orthogonal_adcbg.csv", [CAT, BLUE, LEMON]),
    "aligned": ("synthetic_data_aligned_vqvtb.csv", [TRUTH, HELP, POLITE]),
    "mixed": ("synthetic_data_mixed_vqvtb_adcbg.csv", [TRUTH, HELP, POLITE, CAT, BLUE, LEMON]),
}


def _run(llm: Server, src: Path, out: Path, cache: Path, *extra: str):  # type: ignore[no-untyped-def]
    return cli("explain", str(src), "--out", str(out), "--directions", "0", "--rounds", "20",
               "--endpoint", llm.url, "--model", "principled", "--judge-cache", str(cache),
               "--json", *extra)  # fmt: skip


@pytest.mark.parametrize("name", list(SETS))
def test_planted_principles_are_selected(
    name: str, llm: Server, data_dir: Path, tmp_path: Path
) -> None:
    fname, planted = SETS[name]
    others = list(dict.fromkeys(p for q in SETS.values() for p in q[1] if p not in planted))
    cands = tmp_path / "principles.txt"
    cands.write_text("# candidates\n" + "\n".join(DISTRACT + others + planted) + "\n")
    p = _run(llm, data_dir / ICAI / fname, tmp_path / "out", tmp_path / "cache",
             "--principles", str(cands), "--concurrency", "16")  # fmt: skip
    assert p.returncode == 0, p.stderr
    pr = json.loads(p.stdout)["principles"]
    n = 60 if name == "mixed" else 30
    assert pr["calls"] == 2 * n * len(DISTRACT + others + planted)
    chosen = pr["set"]
    assert sorted(chosen["principles"]) == sorted(planted)
    assert set(chosen["directions"]) == {"follows"}
    assert chosen["reconstructed"] == n and chosen["wrong"] == 0
    rows = {r["principle"]: r for r in pr["rows"]}
    for q in planted:
        assert rows[q]["accuracy"] == 1.0 and rows[q]["applied"] == 10
        assert rows[q]["coverage"] == pytest.approx(10 / n)
    assert not rows[DISTRACT[4]]["applied"]  # the judge never saw it apply
    if name == "orthogonal":
        # the paper's wording of the colour principle: followed in reverse, just as accurate
        assert rows[GREEN]["direction"] == "opposes" and rows[GREEN]["accuracy"] == 1.0
    report = (tmp_path / "out" / "report.html").read_text()
    assert "Smallest set that reconstructs the most votes" in report
    assert planted[0] in report


def test_a_rerun_is_served_from_the_cache(llm: Server, data_dir: Path, tmp_path: Path) -> None:
    cands = tmp_path / "p.txt"
    cands.write_text("\n".join([CAT, BLUE, LEMON, DISTRACT[0]]) + "\n")
    src = data_dir / ICAI / SETS["orthogonal"][0]
    first = _run(llm, src, tmp_path / "a", tmp_path / "cache", "--principles", str(cands))
    assert first.returncode == 0, first.stderr
    before = len(llm.requests())
    again = _run(llm, src, tmp_path / "b", tmp_path / "cache", "--principles", str(cands))
    assert again.returncode == 0, again.stderr
    assert len(llm.requests()) == before
    assert (
        json.loads(first.stdout)["principles"]["set"]
        == json.loads(again.stdout)["principles"]["set"]
    )


def test_proposed_principles_find_the_planted_ones(
    llm: Server, data_dir: Path, tmp_path: Path
) -> None:
    src = data_dir / ICAI / SETS["orthogonal"][0]
    p = _run(
        llm, src, tmp_path / "out", tmp_path / "cache", "--propose", "6", "--max-calls", "5000"
    )
    assert p.returncode == 0, p.stderr
    pr = json.loads(p.stdout)["principles"]
    assert pr["proposal"]["pairs_sampled"] == 24
    assert {CAT, BLUE, LEMON} <= set(pr["proposal"]["kept"])
    assert sorted(pr["set"]["principles"]) == sorted([CAT, BLUE, LEMON])


def test_without_an_endpoint_principles_are_skipped_with_one_line(
    data_dir: Path, tmp_path: Path
) -> None:
    src = data_dir / ICAI / SETS["aligned"][0]
    p = cli("explain", str(src), "--out", str(tmp_path / "o"), "--directions", "0",
            "--rounds", "20", "--json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["principles"]["skipped"].startswith("principles: skipped (")
    assert "--endpoint URL --model M" in s["principles"]["skipped"]
    lines = [ln for ln in p.stderr.splitlines() if "principles: skipped" in ln]
    assert len(lines) == 1


# ---------------------------------------------------------------------------------------
# scoring and the set, against counts written out by hand


def test_score_and_select_by_hand() -> None:
    outcome = np.array([0, 0, 1, 1, 0, 2])  # a, a, b, b, a, tie
    votes = np.array(
        [
            [0, 0, 1, 1, 2, 2],  # right on 4 decisive, abstains on 1
            [1, 1, 0, 0, 1, 2],  # always wrong: followed in reverse
            [0, 1, 0, 1, 0, 0],  # coin flip
        ]
    )
    t = P.Tested(["good", "reversed", "noise"], votes, np.zeros(3, np.int64))
    rows = P.score(t, outcome)
    good, rev, noise = rows
    assert (good["applied"], good["agree"], good["disagree"]) == (4, 4, 0)
    assert good["coverage"] == pytest.approx(4 / 5) and good["accuracy"] == 1.0
    assert rev["direction"] == "opposes" and rev["accuracy"] == 1.0 and rev["applied"] == 5
    assert noise["accuracy"] == pytest.approx(3 / 5)
    assert good["ties"] == 1 and noise["significant"] is False
    sel = P.select(t, rows, outcome)
    # 'reversed' alone reconstructs all 5 decisive votes; 'good' adds nothing after it
    assert sel["principles"] == ["reversed"] and sel["reconstructed"] == 5 and sel["wrong"] == 0


def test_wilson_matches_statsmodels() -> None:
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((0, 10), (3, 10), (10, 10), (47, 60)):
        lo, hi = P.wilson(k, n)
        rlo, rhi = proportion_confint(k, n, method="wilson")
        assert lo == pytest.approx(rlo, abs=1e-12) and hi == pytest.approx(rhi, abs=1e-12)


def test_read_and_dedupe(tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_text("# comment\n\nBe brief.\nbe brief\nBe kind!\n")
    assert P.read_principles(f) == ["Be brief.", "Be kind!"]
    kept, info = P.dedupe(["Be brief.", "be brief", "Be kind", "Be brief."], 5, None)
    assert kept == ["Be brief.", "Be kind"] and info["distinct"] == 2
    assert P.parse_proposals('ok ["Select the response that a", "Select b"] done') == [
        "Select the response that a", "Select b"]  # fmt: skip
    assert P.parse_proposals("1. Select the response that is short.\nfoo") == [
        "Select the response that is short."
    ]
