"""`prefkit pairs` and `prefkit split` end to end (CliRunner, in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefkit._cli import CLIError
from prefkit.cli import app
from prefkit.io.canonical import save
from prefkit.schema import Kind, from_rows, normalize_text
from tests.build._data import (
    FINEGRAINED_DEV,
    HH_HARMLESS,
    PANDALM,
    pandalm_majority,
    pandalm_raw,
)
from tests.raw import hh_harmless_counts

runner = CliRunner()


@pytest.fixture(scope="module")
def pandalm_in() -> Path:
    """The PandaLM file as published: `prefkit pairs` reads it with the io stage."""
    return PANDALM


def _run(*args: str) -> dict[str, object]:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, (res.output, res.exception)
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def test_pairs_pandalm_majority_drop(pandalm_in: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs.parquet"
    rep = _run(
        "pairs", str(pandalm_in), str(out), "--from-votes", "majority", "--ties", "drop", "--json"
    )
    written = json.loads((tmp_path / "pairs.parquet.build.json").read_text())
    assert written == rep
    dropped = written["dropped"]
    assert isinstance(dropped, dict)
    # independent reference: the raw file's records and their majority labels
    raw = pandalm_raw()
    majority = pandalm_majority(raw)
    assert written["pairs_out"] + sum(dropped.values()) == len(raw)
    assert written["rows_in"] == 3 * len(raw)
    decided = [x for x in raw if majority[str(x["idx"])] in ("a", "b")]
    same = sum(
        normalize_text(str(x["response1"])) == normalize_text(str(x["response2"])) for x in decided
    )
    assert dropped["tie_dropped"] == sum(v == "tie" for v in majority.values())
    assert dropped["no_majority"] == sum(v is None for v in majority.values())
    assert dropped["identical_responses"] == same
    t = pq.read_table(out)
    assert t.num_rows == written["pairs_out"] == len(decided) - same
    for c, r in zip(t.column("chosen").to_pylist(), t.column("rejected").to_pylist(), strict=True):
        assert normalize_text(c[0]["content"]) != normalize_text(r[0]["content"])


def test_pairs_to_trl_and_kto_jsonl(pandalm_in: Path, tmp_path: Path) -> None:
    out = tmp_path / "trl.jsonl"
    rep = _run(
        "pairs",
        str(pandalm_in),
        str(out),
        "--strategy",
        "majority",
        "--ties",
        "half",
        "--to",
        "trl",
        "--json",
    )
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == rep["rows_out"]
    assert {"prompt", "chosen", "rejected", "margin", "weight"} <= set(lines[0])
    assert isinstance(lines[0]["prompt"], str)  # single-turn input: standard format
    assert {x["weight"] for x in lines if x["tie"]} == {0.5}
    conv = tmp_path / "conv.parquet"
    _run("pairs", str(pandalm_in), str(conv), "--to", "trl", "--conversational", "--json")
    row = pq.read_table(conv).slice(0, 1).to_pylist()[0]
    assert row["chosen"][0]["role"] == "assistant" and row["prompt"][0]["role"] == "user"
    kto = tmp_path / "kto.jsonl"
    rep = _run("pairs", str(pandalm_in), str(kto), "--to", "kto", "--json")
    lines = [json.loads(x) for x in kto.read_text().splitlines()]
    assert {"prompt", "completion", "label"} <= set(lines[0])
    unpaired = rep["unpaired"]
    assert isinstance(unpaired, dict)
    assert unpaired["kto"]["desirable"] == sum(x["label"] for x in lines)


def test_pairs_rankings_from_kind_and_curriculum(tmp_path: Path) -> None:
    src = FINEGRAINED_DEV
    out = tmp_path / "fg.parquet"
    rep = _run("pairs", str(src), str(out), "--curriculum", "--json")
    assert rep["builder"] == "rankings"
    margins = pq.read_table(out).column("margin").to_pylist()
    assert margins == sorted(margins, reverse=True)
    rep2 = _run(
        "pairs", str(src), str(tmp_path / "adj.parquet"), "--from-rankings", "adjacent", "--json"
    )
    assert rep2["params"]["mode"] == "adjacent"  # type: ignore[index]


def test_pairs_ratings_with_aspect_weights(tmp_path: Path) -> None:
    rows = []
    for p in range(5):
        for r, (h, o) in enumerate([(5.0, 1.0), (2.0, 5.0), (3.0, 3.0)]):
            for aspect, s in (("helpfulness", h), ("honesty", o)):
                rows.append({"prompt": f"q{p}", "response": f"r{r}", "aspect": aspect, "score": s})
    src = save(from_rows(rows, Kind.RATINGS), tmp_path / "ratings.parquet")
    out = tmp_path / "r.parquet"
    rep = _run(
        "pairs",
        str(src),
        str(out),
        "--from-ratings",
        "all-pairs",
        "--min-margin",
        "1",
        "--aspect-weights",
        "helpfulness=1,honesty=0",
        "--json",
    )
    assert rep["pairs_out"] == 5 * 3 and rep["candidates"] == 15
    assert set(pq.read_table(out).column("margin").to_pylist()) == {3.0, 2.0, 1.0}


def _fails(*args: str) -> int:
    res = runner.invoke(app, list(args))
    assert res.exit_code != 0
    exc = res.exception
    if isinstance(exc, CLIError):
        return exc.code
    return 1 if not isinstance(exc, SystemExit) else int(exc.code or 0)


def test_pairs_usage_and_input_errors(pandalm_in: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x.parquet")
    assert _fails("pairs", str(pandalm_in), out, "--ties", "maybe") == 2
    assert _fails("pairs", str(pandalm_in), out, "--from-votes", "sweet-spot") == 2
    assert _fails("pairs", str(pandalm_in), str(tmp_path / "x.csv")) == 2
    assert _fails("pairs", str(pandalm_in), out, "--aspect-weights", "helpfulness") == 2
    assert _fails("pairs", str(pandalm_in), out, "--from-votes", "majority", "--from-binary") == 2
    assert _fails("pairs", str(pandalm_in), out, "--strategy", "sweet-spot") == 1  # wrong kind
    assert _fails("pairs", str(tmp_path / "missing.parquet"), out) == 1


def test_split_cli_hh(tmp_path: Path) -> None:
    src = HH_HARMLESS
    out = tmp_path / "splits"
    rep = _run(
        "split",
        str(src),
        str(out),
        "--by",
        "prompt",
        "--test",
        "0.1",
        "--val",
        "0.1",
        "--seed",
        "3",
        "--json",
    )
    assert rep["shared_prompt_ids"] == 0
    tables = {k: pq.read_table(out / f"{k}.parquet") for k in ("train", "test", "val")}
    ids = [set(t.column("prompt_id").to_pylist()) for t in tables.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert sum(t.num_rows for t in tables.values()) == rep["rows_in"]
    assert json.loads((out / "split.json").read_text())["seed"] == 3


def test_split_cli_pairs_table_near_dup(tmp_path: Path) -> None:
    import random

    vocab = (
        "bicycle wheel spoke mountain garden kitchen window roof engine guitar piano lamp".split()
    )
    vocab += (
        "shelf laptop camera kettle boiler fence gutter drawer carpet tiles mirror faucet".split()
    )
    rng = random.Random(0)
    rows = []
    for f in range(30):
        # 30 prompt families far apart (different words), 3 near duplicates in each
        words = " ".join(rng.sample(vocab, 6))
        base = f"how do i repair the {f}th {words} quickly"
        for k, v in enumerate([base, base + " please", "hey " + base]):
            rows.append({"prompt": v, "response_a": f"a{k}", "response_b": f"b{k}", "outcome": "a"})
    src = save(from_rows(rows, Kind.COMPARISONS), tmp_path / "c.parquet")
    pairs = tmp_path / "pairs.parquet"
    _run("pairs", str(src), str(pairs), "--json")
    out = tmp_path / "s"
    rep = _run(
        "split",
        str(pairs),
        str(out),
        "--test",
        "0.3",
        "--seed",
        "1",
        "--near-dup",
        "--threshold",
        "0.6",
        "--json",
    )
    assert rep["near_duplicate_merges"] >= 30 * 2
    test_t = pq.read_table(out / "test.parquet")
    train_t = pq.read_table(out / "train.parquet")

    def fam(t: pa.Table) -> set[int]:
        return {
            int(p[0]["content"].split("the ")[1].split("th ")[0])
            for p in t.column("prompt").to_pylist()
        }

    assert fam(test_t) and fam(train_t) and not (fam(test_t) & fam(train_t))
    assert len(fam(test_t) | fam(train_t)) == 30


def test_pairs_from_binary_to_kto(tmp_path: Path) -> None:
    rows = [
        {"prompt": f"q{p}", "response": f"{'good' if up else 'bad'} {p}.{k}", "label": up}
        for p in range(6)
        for k, up in enumerate([True, True, False] if p % 2 else [True])
    ]
    src = save(from_rows(rows, Kind.BINARY), tmp_path / "thumbs.parquet")
    kto = tmp_path / "kto.jsonl"
    rep = _run("pairs", str(src), str(kto), "--from-binary", "--to", "kto", "--json")
    lines = [json.loads(x) for x in kto.read_text().splitlines()]
    assert len(lines) == len(rows) and sum(x["label"] for x in lines) == 9
    assert rep["kto"]["ratio"] == "9:3"  # type: ignore[index]
    assert rep["pairs_out"] == 3 * 2 and rep["dropped"]["no_opposite_label"] == 3  # type: ignore[index]
    pairs = tmp_path / "pairs.jsonl"
    rep = _run("pairs", str(src), str(pairs), "--to", "trl", "--json")  # builder from the kind
    assert rep["builder"] == "binary" and len(pairs.read_text().splitlines()) == 6


def test_trl_export_matches_multi_turn_input(tmp_path: Path) -> None:
    """Multi-turn prompts (the HH-RLHF file as published, read by the io stage into turns):
    `--to trl` writes the conversational format."""
    out = tmp_path / "hh.jsonl"
    rep = _run("pairs", str(HH_HARMLESS), str(out), "--to", "trl", "--json")
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == rep["rows_out"] and rep["rows_in"] == hh_harmless_counts().rows
    assert isinstance(lines[0]["prompt"], list) and lines[0]["chosen"][0]["role"] == "assistant"
    assert any(len(x["prompt"]) > 1 for x in lines)
    assert rep["pairs_out"] + sum(rep["dropped"].values()) == rep["candidates"]  # type: ignore[arg-type]


def test_pairs_min_agreement_keeps_the_unanimous_pairs(tmp_path: Path) -> None:
    """`--min-agreement 1.0` keeps the PandaLM pairs whose three annotators all picked the
    same response (counted from the raw file); 2-of-3 majorities are dropped and counted."""
    raw = pandalm_raw()
    votes = [[x[f"annotator{k}"] for k in (1, 2, 3)] for x in raw]
    unanimous = sum(v[0] == v[1] == v[2] != 0 for v in votes)
    # majorities of exactly 2 of 3 (tie majorities too: below the agreement bar first)
    two_of_three = sum(max(v.count(c) for c in (0, 1, 2)) == 2 for v in votes)
    decisive_two = sum(max(v.count(1), v.count(2)) == 2 for v in votes)
    out = tmp_path / "u.parquet"
    rep = _run(
        "pairs", str(PANDALM), str(out), "--ties", "drop", "--min-agreement", "1.0", "--json"
    )
    assert rep["pairs_out"] == unanimous == pq.read_table(out).num_rows
    assert rep["dropped"]["below_agreement"] == two_of_three  # type: ignore[index]
    assert set(pq.read_table(out).column("agreement").to_pylist()) == {1.0}
    loose = _run("pairs", str(PANDALM), str(tmp_path / "l.parquet"), "--ties", "drop", "--json")
    assert loose["pairs_out"] == unanimous + decisive_two
