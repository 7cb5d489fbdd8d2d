"""`prefkit explain` from the command line: bad input gets one `error:` line and exit 1,
usage errors exit 2, real files run with the defaults, every flag does what it says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from prefkit.io import save
from prefkit.schema import Kind
from prefkit.simulate import Simulation, simulate
from tests.explain.conftest import ICAI
from tests.judge.conftest import cli, cli_process, error_line, start_server


def test_model_only_battles_say_which_parts_need_text(data_dir: Path, tmp_path: Path) -> None:
    p = cli_process("explain", str(data_dir / "llmfao" / "llmfao.csv"), "--out", str(tmp_path))
    assert p.returncode == 1
    line = error_line(p)
    assert "no response text" in line and "model-only battles" in line
    assert "feature effects, learned directions, principles and the annotator basis" in line
    assert "prefkit rank" in line


def test_single_annotator_with_by_annotator_is_one_line(tmp_path: Path) -> None:
    t = simulate("planted", size=300, seed=1).tables[Kind.COMPARISONS]
    t = t.set_column(
        t.column_names.index("annotator"), "annotator", pa.array(["ann-7"] * t.num_rows)
    )
    src = save(t, tmp_path / "one.parquet")
    p = cli_process("explain", str(src), "--out", str(tmp_path / "o"), "--by", "annotator")
    assert p.returncode == 1
    line = error_line(p)
    assert "--by annotator" in line and "'ann-7'" in line and "nothing to compare" in line


def test_all_ties_is_one_line(tmp_path: Path) -> None:
    t = simulate("planted", size=200, seed=1).tables[Kind.COMPARISONS]
    t = t.set_column(t.column_names.index("outcome"), "outcome", pa.array(["tie"] * t.num_rows))
    src = save(t, tmp_path / "ties.parquet")
    p = cli_process("explain", str(src), "--out", str(tmp_path / "o"))
    assert p.returncode == 1
    line = error_line(p)
    assert "all 200 usable votes are ties" in line


def test_ratings_are_not_comparisons(tmp_path: Path) -> None:
    t = simulate("ratings", size=100, seed=0).tables[Kind.RATINGS]
    src = save(t, tmp_path / "r.parquet", Kind.RATINGS)
    p = cli("explain", str(src), "--out", str(tmp_path / "o"))
    assert p.returncode == 1
    assert "explain needs pairwise comparisons" in error_line(p)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "model"], "--by must be one of annotator, source, aspect, group"),
        (["--rounds", "1"], "--rounds must be >= 2"),
        (["--level", "1.5"], "--level must be between 0 and 1"),
        (["--min-votes", "0"], "--min-votes must be >= 1"),
        (["--directions", "-1"], "--directions must be >= 0"),
        (["--method", "pca"], "--method must be sae or dictionary"),
        (["--propose", "3"], "--principles and --propose need an LLM"),
        (["--endpoint", "http://127.0.0.1:9/v1"], "give --endpoint URL and --model M together"),
        (["--concurrency", "0"], "--concurrency must be >= 1"),
        (["--max-calls", "0"], "--max-calls must be >= 1"),
    ],
)
def test_usage_errors_exit_2(
    small_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    p = cli("explain", str(small_file), "--out", str(tmp_path / "o"), *args)
    assert p.returncode == 2, p.stderr
    assert message in error_line(p)


def test_principles_file_problems(small_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    base = ["explain", str(small_file), "--out", str(tmp_path / "o"), "--endpoint",
            "http://127.0.0.1:9/v1", "--model", "m"]  # fmt: skip
    p = cli(*base, "--principles", str(empty))
    assert p.returncode == 1 and "no principle in the file" in error_line(p)
    p = cli(*base, "--principles", str(tmp_path / "missing.txt"))
    assert p.returncode == 1 and "no such file" in error_line(p)


def test_level_and_seed(planted_dir: Path, tmp_path: Path) -> None:
    src = str(planted_dir / "comparisons.parquet")
    common = ["--directions", "0", "--rounds", "30", "--json"]
    runs = {}
    for name, extra in (("95", ["--seed", "4"]), ("80", ["--seed", "4", "--level", "0.8"]),
                        ("95b", ["--seed", "4"]), ("other", ["--seed", "5"])):  # fmt: skip
        p = cli("explain", src, "--out", str(tmp_path / name), *common, *extra)
        assert p.returncode == 0, p.stderr
        runs[name] = {
            r["feature"]: r for r in pq.read_table(tmp_path / name / "effects.parquet").to_pylist()
        }
    w95 = np.array([r["ci_high"] - r["ci_low"] for r in runs["95"].values()])
    w80 = np.array([runs["80"][f]["ci_high"] - runs["80"][f]["ci_low"] for f in runs["95"]])
    np.testing.assert_allclose(w80 / w95, stats.norm.ppf(0.9) / stats.norm.ppf(0.975), rtol=1e-9)
    assert runs["95"] == runs["95b"]  # same seed, same numbers
    assert runs["95"]["bullets"]["se"] != runs["other"]["bullets"]["se"]


def test_from_names_the_reader(data_dir: Path, tmp_path: Path) -> None:
    src = data_dir / ICAI / "synthetic_data_aligned_vqvtb.csv"
    p = cli("explain", str(src), "--from", "icai", "--out", str(tmp_path / "o"),
            "--directions", "0", "--rounds", "20", "--json")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "as icai" in p.stderr.replace("\n", " ")
    s = json.loads(p.stdout)
    assert s["input"]["votes_used"] == 30 and s["features"]["resampling"] == "votes"


def test_api_key_env_is_sent_and_a_wrong_key_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    srv = start_server(tmp_path / "calls.log", "--api-key", "sekret")
    try:
        cands = tmp_path / "p.txt"
        cands.write_text("Select the polite response over the impolite one.\n")
        src = str(data_dir / ICAI / "synthetic_data_aligned_vqvtb.csv")
        args = ["explain", src, "--out", str(tmp_path / "o"), "--directions", "0", "--rounds",
                "20", "--endpoint", srv.url, "--model", "principled", "--principles", str(cands),
                "--judge-cache", str(tmp_path / "c"), "--api-key-env", "EXPLAIN_TEST_KEY"]  # fmt: skip
        ok = cli_process(*args, "--json", env={"EXPLAIN_TEST_KEY": "sekret"})
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["principles"]["set"]["reconstructed"] == 10
        bad = cli_process(*args[:-2], "--judge-cache", str(tmp_path / "c2"), "--api-key-env",
                          "EXPLAIN_TEST_KEY", env={"EXPLAIN_TEST_KEY": "wrong"})  # fmt: skip
        assert bad.returncode == 1
        assert "HTTP 401" in error_line(bad) and "$EXPLAIN_TEST_KEY" in error_line(bad)
    finally:
        srv.stop()


@pytest.mark.parametrize(
    "rel",
    [
        "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz",
        "pandalm_testset/data/testset-v1.json",
    ],
)
def test_real_data_runs_and_writes_the_three_files(
    data_dir: Path, tmp_path: Path, rel: str
) -> None:
    out = tmp_path / "out"
    p = cli("explain", str(data_dir / rel), "--out", str(out), "--directions", "0", "--json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert {Path(f).name for f in s["files"]} == {"report.html", "effects.parquet", "summary.json"}
    assert json.loads((out / "summary.json").read_text())["features"] == s["features"]
    html = (out / "report.html").read_text()
    for section in ("What the votes reward", "Length control", "How people differ",
                    "Learned directions", "Principles", "plot-forest"):  # fmt: skip
        assert section in html
    assert "<script>" in html and "Plotly" in html and "http://" not in html.split("<script>")[0]
    t = pq.read_table(out / "effects.parquet")
    assert t.num_rows == len(s["features"]["features"])
    assert s["features"]["bootstrap_rounds"] == 100 and s["features"]["level"] == 0.95


def test_report_escapes_data_text(tmp_path: Path, planted: Simulation) -> None:
    from prefkit.explain.report import render

    summary = {
        "features": {"votes": 1, "prompts": 1, "model": "bt", "tie_nu": None, "ties": 0,
                     "level": 0.95, "bootstrap_rounds": 2, "features": ["bold"], "selected": [],
                     "stability": {"threshold": 0.6}, "length_dropped_changes": []},
        "people": {"skipped": "<script>alert(1)</script>"},
        "directions": {"skipped": "x"}, "principles": {"skipped": "y"},
        "notes": ["</script><img src=x onerror=alert(2)>"],
    }  # fmt: skip
    row = {"type": "feature", "scope": "all", "feature": "bold", "label": "<b>bold</b>",
           "unit": "u", "coef": 0.1, "ci_low": 0.0, "ci_high": 0.2, "coef_raw": 0.1,
           "coef_no_length": 0.1, "ci_low_no_length": 0.0, "ci_high_no_length": 0.2,
           "selected": False, "selection_freq": 0.1, "coef_sparse": 0.0, "winner_mean": 0.0,
           "loser_mean": 0.0}  # fmt: skip
    html = render(summary, [row], "<src>")
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<img src=x" not in html and "<b>bold</b>" not in html.split("var FIGS")[0]
    assert "\\u003cb\\u003ebold" in html  # figure data escaped inside the script
