"""`rm train A B C ... OUT` (several sources), folders, in-sample `rm eval`, and
`rm eval-matrix` (CLI, JSON, HTML)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefkit._cli import CLIError
from prefkit.cli import app
from prefkit.io import save
from prefkit.reward.sources import SourceError, expand, expand_all
from prefkit.schema import Kind, from_rows
from prefkit.simulate import simulate

runner = CliRunner()


def invoke(args: list[str]) -> tuple[int, str, str]:
    """Run like `prefkit.cli.main`: user-facing errors become (exit code, message)."""
    try:
        r = runner.invoke(app, args, catch_exceptions=False)
    except CLIError as e:
        return e.code, str(e), ""
    return r.exit_code, " ".join(r.output.split()), r.stdout


@pytest.fixture(scope="module")
def biased(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three simulated sets whose annotators reward length +2, -2 and 0 log-odds / 100 chars."""
    d = tmp_path_factory.mktemp("sets")
    out = {}
    for name, lb, seed in (("long", 2.0, 1), ("short", -2.0, 2), ("plain", 0.0, 3)):
        t = simulate("clean", size=900, seed=seed, length_bias=lb).tables[Kind.COMPARISONS]
        out[name] = save(t, d / f"{name}.parquet")
    return out


def test_folders_expand_to_sources(tmp_path: Path) -> None:
    t = simulate("clean", size=40, seed=0).tables[Kind.COMPARISONS]
    root = tmp_path / "data"
    for rel in (
        "hub/train-00000-of-00002.parquet",
        "hub/train-00001-of-00002.parquet",
        "more/x.parquet",
        ".cache/hidden.parquet",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        save(t, root / rel)
    (root / "more" / "x.parquet.rejects.jsonl").write_text("{}\n")
    (root / "notes.txt").write_text("not data")
    got = {s.name: [f.name for f in s.files] for s in expand(root)}
    assert got == {
        str(root / "hub" / "train.parquet"): [
            "train-00000-of-00002.parquet",
            "train-00001-of-00002.parquet",
        ],
        str(root / "more" / "x.parquet"): ["x.parquet"],
    }
    with pytest.raises(SourceError, match="folder has no data files"):
        expand(_empty(tmp_path))
    with pytest.raises(SourceError, match="given twice"):
        expand_all([root / "more" / "x.parquet", root])
    with pytest.raises(SourceError, match="file not found"):
        expand(tmp_path / "missing.jsonl")


def _empty(tmp_path: Path) -> Path:
    p = tmp_path / "empty"
    p.mkdir()
    (p / "README.md").write_text("nothing")
    return p


def test_train_on_two_sources_card_and_in_sample_eval(
    biased: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "m"
    code, said, stdout = invoke(
        [
            "rm",
            "train",
            str(biased["long"]),
            str(biased["short"]),
            str(out),
            "--disentangle",
            "length",
            "--json",
        ]
    )
    assert code == 0, said
    saved = json.loads((out / "model.json").read_text())
    assert json.loads(stdout)["data"]["sources"] == [
        {k: v for k, v in s.items() if k not in ("files", "digest")}
        for s in saved["data"]["sources"]
    ]
    srcs = {s["name"]: s for s in saved["data"]["sources"]}
    assert set(srcs) == {str(biased["long"]), str(biased["short"])}
    assert all(len(s["digest"]) == 24 for s in srcs.values())
    assert sum(s["share"] for s in srcs.values()) == pytest.approx(1.0)
    assert srcs[str(biased["long"])]["share"] == pytest.approx(0.5)
    dis = saved["training"]["disentangle"]
    assert {k: saved["disentangle"][k] for k in ("spec", "groups", "chosen_by")} == {
        "spec": "length",
        "groups": ["length"],
        "chosen_by": "given (--disentangle)",
    }
    # one length term per source, with intervals: + where annotators favour length, - where
    # they penalise it (log_chars and log_words are collinear: their sum is what is identified)
    total = {src: sum(c["coef"] for c in dis["nuisance"] if c["source"] == src) for src in srcs}
    assert total[str(biased["long"])] > 0 > total[str(biased["short"])]
    assert all(c["ci_low"] <= c["coef"] <= c["ci_high"] for c in dis["nuisance"])
    assert "nuisance" in said and "weight ×" in said  # printed, not only in the card
    # evaluating on a training file is in-sample: warned and flagged
    code, said, stdout = invoke(["rm", "eval", str(out), str(biased["long"]), "--json"])
    assert code == 0, said
    res = json.loads(stdout)
    assert res["in_sample"] is True and res["in_sample_sources"] == [str(biased["long"])]
    assert "in-sample, not held-out" in said
    code, said, stdout = invoke(["rm", "eval", str(out), str(biased["plain"]), "--json"])
    assert json.loads(stdout)["in_sample"] is False and "in-sample" not in said
    # a copy of the same bytes under another name is still the training data
    copy = shutil.copy(biased["short"], tmp_path / "renamed.parquet")
    code, said, stdout = invoke(["rm", "eval", str(out), str(copy), "--json"])
    assert json.loads(stdout)["in_sample"] is True
    code, said, stdout = invoke(["rm", "eval", "length", str(biased["long"]), "--json"])
    assert json.loads(stdout)["in_sample"] is False


def test_train_single_file_stays_compatible_and_balance_rows(
    biased: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "one"
    code, said, _ = invoke(["rm", "train", str(biased["plain"]), str(out)])
    assert code == 0, said
    card = json.loads((out / "model.json").read_text())
    assert card["data"]["path"] == str(biased["plain"]) and len(card["data"]["digest"]) == 24
    assert card["disentangle"]["groups"] == ["length", "style"]
    assert "one source" in card["disentangle"]["chosen_by"]
    # the in-distribution cost is stated: the plain model on the same validation rows
    plain_out = tmp_path / "plain"
    code, said, _ = invoke(
        ["rm", "train", str(biased["plain"]), str(plain_out), "--disentangle", "none"]
    )
    assert code == 0, said
    plain = json.loads((plain_out / "model.json").read_text())
    assert card["disentangle"]["without_disentangling"]["val_accuracy"] == pytest.approx(
        plain["metrics"]["model"]["accuracy"]["accuracy"]
    )
    out2 = tmp_path / "rows"
    code, said, _ = invoke(
        [
            "rm",
            "train",
            str(biased["long"]),
            str(biased["plain"]),
            str(out2),
            "--balance",
            "rows",
            "--disentangle",
            "none",
        ]
    )
    assert code == 0, said
    c2 = json.loads((out2 / "model.json").read_text())
    assert c2["data"]["balance"].startswith("rows")
    assert {s["weight"] for s in c2["data"]["sources"]} == {1.0}
    assert "disentangle" not in c2["training"]


def test_train_folder_and_rankings_become_pairs(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    r = simulate("rankings", size=60, seed=0).tables[Kind.RANKINGS]
    save(r, folder / "ranked.parquet")
    c = simulate("clean", size=200, seed=4).tables[Kind.COMPARISONS]
    save(c, folder / "votes.parquet")
    out = tmp_path / "m"
    code, said, _ = invoke(["rm", "train", str(folder), str(out), "--disentangle", "none"])
    assert code == 0, said
    assert "60 rankings rows → 360 pairs (strategy all, ties kept" in said
    card = json.loads((out / "model.json").read_text())
    assert {s["name"] for s in card["data"]["sources"]} == {
        str(folder / "ranked.parquet"),
        str(folder / "votes.parquet"),
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--disentangle", "verbosity"], "--disentangle takes auto, none"),
        (["--balance", "prompts"], "--balance must be sources or rows"),
        (["--backend", "trl", "--base", ".", "--disentangle", "length"], "applies to"),
    ],
)
def test_train_usage_errors(
    biased: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    code, said, _ = invoke(["rm", "train", str(biased["plain"]), str(tmp_path / "m"), *args])
    assert code == 2 and message in said
    code, said, _ = invoke(["rm", "train", str(biased["plain"])])
    assert code == 2 and "IN... OUT_DIR" in said


def test_eval_matrix_cli_json_html_and_independent_numbers(
    biased: dict[str, Path], tmp_path: Path
) -> None:
    long, short, plain = (str(biased[k]) for k in ("long", "short", "plain"))
    out = tmp_path / "matrix"
    code, said, stdout = invoke(
        [
            "rm",
            "eval-matrix",
            "--train",
            long,
            short,
            "--eval",
            long,
            short,
            plain,
            "--folds",
            "3",
            "--bootstrap",
            "200",
            "--seed",
            "1",
            "--disentangle",
            "length",
            "--models",
            "features,disentangled",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0, said
    res = json.loads(stdout)
    assert res["rows"] == [long, short, "others"] and res["eval"] == [long, short, plain]
    assert json.loads((out / "eval_matrix.json").read_text())["cells"] == res["cells"]
    cell = {(c["train"], c["eval"]): c for c in res["cells"]}
    assert len(cell) == 9
    assert (
        cell[(long, long)]["kind"] == "diagonal" and cell[(long, short)]["kind"] == "off_diagonal"
    )
    assert cell[("others", plain)]["kind"] == "leave_one_out"
    # the length baseline of a cell, recomputed in plain Python over the raw file
    rows = pq.read_table(short).to_pylist()
    ab = [r for r in rows if r["outcome"] in ("a", "b")]
    hits = 0.0
    for r in ab:
        la, lb = len(r["response_a"][0]["content"]), len(r["response_b"][0]["content"])
        hits += 0.5 if la == lb else float((la > lb) == (r["outcome"] == "a"))
    assert cell[(long, short)]["length"]["accuracy"] == pytest.approx(hits / len(ab))
    assert cell[(long, short)]["n"] == len(ab)
    # the diagonal is cross-validated: every a/b row of the set is scored once
    assert cell[(long, long)]["models"]["features"]["n"] == cell[(long, long)]["n"]
    # trained where longer wins, evaluated where shorter wins: the plain model falls below
    # chance, the disentangled one does not (and beats it)
    off = cell[(long, short)]["models"]
    assert off["features"]["accuracy"] < 0.5 < off["disentangled"]["accuracy"]
    rev = cell[(short, long)]["models"]
    assert rev["disentangled"]["accuracy"] > rev["features"]["accuracy"]
    s = res["summary"]["disentangled"]["off_diagonal"]
    offs = [c for c in res["cells"] if c["kind"] == "off_diagonal"]
    assert s["cells"] == len(offs) == 4
    assert s["mean_accuracy"] == pytest.approx(
        np.mean([c["models"]["disentangled"]["accuracy"] for c in offs])
    )
    d = s["minus_length"]
    assert d["ci_low"] <= d["mean"] <= d["ci_high"]
    comp = {(c["plain"], c["kind"]): c for c in res["comparisons"]}
    assert comp[("features", "off_diagonal")]["plain_below_chance"] >= 1
    html = (out / "eval_matrix.html").read_text()
    assert "Plotly" in html and "Disentangled vs plain" in html and "short.parquet" in html


def test_eval_matrix_list_options_and_usage_errors(biased: dict[str, Path]) -> None:
    long, short = str(biased["long"]), str(biased["short"])
    args = ["--folds", "0", "--bootstrap", "100", "--models", "features", "--json"]
    code, said, stdout = invoke(["rm", "eval-matrix", "--train", long, "--train", short, *args])
    assert code == 0, said
    res = json.loads(stdout)
    assert res["eval"] == [long, short] and not [c for c in res["cells"] if c["kind"] == "diagonal"]
    code, said, _ = invoke(["rm", "eval-matrix", "--train", long, "--models", "xgboost"])
    assert code == 2 and "--models takes" in said
    code, said, _ = invoke(["rm", "eval-matrix", "--train", long, "--folds", "1"])
    assert code == 2 and "--folds" in said
    code, said, _ = invoke(["rm", "eval-matrix", "--train", long, "--disentangle", "none"])
    assert code == 2
    code, said, _ = invoke(["rm", "eval-matrix", "--json", long])  # a stray argument
    assert code == 2
    code, said, _ = invoke(["rm", "eval-matrix", "--train", long, long])
    assert code == 2 and "given twice" in said
    # --out: a file where the folder goes, or an input, is refused before any work
    code, said, _ = invoke(["rm", "eval-matrix", "--train", long, "--out", long])
    assert code == 1 and "OUT is the input" in said
    code, said, _ = invoke(["rm", "eval-matrix", "--train", long, "--out", short])
    assert code == 1 and "OUT must be a folder" in said


def test_eval_matrix_set_without_preferences_is_refused(
    biased: dict[str, Path], tmp_path: Path
) -> None:
    ties = from_rows(
        [
            {"prompt": f"p{i}", "response_a": "x", "response_b": "yy", "outcome": "tie"}
            for i in range(5)
        ],
        "comparisons",
    )
    f = save(ties, tmp_path / "ties.parquet")
    code, said, _ = invoke(["rm", "eval-matrix", "--train", str(biased["long"]), "--eval", str(f)])
    assert code == 1 and "ties.parquet: no pair with a preference (a or b)" in said


@pytest.mark.slow
def test_eval_matrix_html_opens_in_chromium(
    biased: dict[str, Path], tmp_path: Path, artifacts_dir: Path
) -> None:
    from playwright.sync_api import sync_playwright

    out = artifacts_dir / "rm-eval-matrix"
    code, said, _ = invoke(
        [
            "rm",
            "eval-matrix",
            "--train",
            str(biased["long"]),
            str(biased["short"]),
            "--folds",
            "0",
            "--bootstrap",
            "100",
            "--out",
            str(out),
        ]
    )
    assert code == 0, said
    assert "mean accuracy" in said  # the console summary
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "eval_matrix.html").resolve().as_uri())
        page.wait_for_selector(".plot .main-svg", timeout=20000)
        n_plots = page.locator(".plot .js-plotly-plot").count()
        page.screenshot(path=str(artifacts_dir / "rm-eval-matrix.png"), full_page=True)
        browser.close()
    assert errors == []
    assert n_plots == 4  # accuracy and difference heatmaps for both default models


@pytest.mark.slow
@pytest.mark.train
def test_minilm_disentangled_train_and_eval_matrix(tmp_path: Path) -> None:
    """The MiniLM models on small sets (the full matrix is in benchmarks/bench_reward.py)."""
    files = []
    for name, lb, seed in (("long", 2.0, 11), ("short", -2.0, 12)):
        t = simulate("clean", size=70, seed=seed, length_bias=lb).tables[Kind.COMPARISONS]
        files.append(str(save(t, tmp_path / f"{name}.parquet")))
    cache = str(tmp_path / "cache")
    out = tmp_path / "emb"
    code, said, _ = invoke(
        [
            "rm", "train", *files, str(out), "--backend", "embed", "--disentangle", "length",
            "--cache-dir", cache, "--epochs", "20",
        ]
    )  # fmt: skip
    assert code == 0, said
    card = json.loads((out / "model.json").read_text())
    dis = card["training"]["disentangle"]
    assert {c["source"] for c in dis["nuisance"]} == set(files)
    assert all(c["fold_min"] <= c["coef"] <= c["fold_max"] for c in dis["nuisance"])
    assert all(c["ci_low"] <= c["coef"] <= c["ci_high"] for c in dis["feature_rm_nuisance"])
    # the saved model's reward differences are uncorrelated with the length differences
    assert max(abs(v) for v in dis["score_nuisance_correlation"].values()) < 1e-3
    code, said, stdout = invoke(
        [
            "rm", "eval-matrix", "--train", *files, "--models", "embed,embed-disentangled",
            "--disentangle", "length", "--folds", "2", "--bootstrap", "100",
            "--epochs", "20", "--cache-dir", cache, "--json",
        ]
    )  # fmt: skip
    assert code == 0, said
    res = json.loads(stdout)
    assert res["models"] == ["embed", "embed-disentangled"]
    assert len(res["cells"]) == 6  # 2 × 2 + the `others` row
    assert {c["plain"] for c in res["comparisons"]} == {"embed"}
