"""Regression (issue 17): several experts judged each pair, each wrote a different
justification, the file names no annotator. Their rows are votes, not duplicates; their
disagreement is agreement data, not contradictions."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

from typer.testing import CliRunner

from prefkit.audit.run import run_audit
from prefkit.cli import app
from prefkit.io.detect import read

FILE = Path(__file__).parent / "data" / "multi_expert_votes.jsonl"
runner = CliRunner()


def raw_votes() -> dict[tuple[str, str, str], list[str]]:
    """Votes per pair, read from the file with plain Python (the independent reference)."""
    votes: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for line in FILE.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        votes[(r["prompt"], r["response_a"], r["response_b"])].append(r["outcome"])
    return votes


def disputed(votes: list[str]) -> bool:
    """Normalized entropy of the vote split ≥ 0.9 (docs/audit.md, `disputed_item`)."""
    n = len(votes)
    h = -sum(c / n * math.log(c / n) for c in Counter(votes).values())
    return h / math.log(min(n, 4)) >= 0.9


def test_expert_votes_are_neither_duplicates_nor_contradictions(tmp_path: Path) -> None:
    table = read(FILE).table
    votes = raw_votes()
    assert "annotator" not in json.loads(FILE.read_text().splitlines()[0])
    assert max(len(v) for v in votes.values()) > 1  # several rows per pair
    res = run_audit(table, tmp_path / "audit", source_name=FILE.name)
    s = res.summary
    assert s["duplicates"]["exact_duplicate_rows"] == 0
    assert s["duplicates"]["contradiction_rows"] == 0
    assert not res.checks["duplicates"].row_ids("exact_duplicate")
    assert not res.checks["duplicates"].row_ids("contradiction")
    assert s["duplicates"]["pairs_with_votes_by_unknown_annotators"] == len(votes)
    # every vote counts in agreement, as a vote by an unknown annotator
    assert s["agreement"]["items_with_votes"] == len(votes)
    assert s["agreement"]["votes"] == table.num_rows
    assert s["agreement"]["votes_by_unknown_annotators"] == table.num_rows
    expected_disputed = sum(disputed(v) for v in votes.values())
    assert expected_disputed > 0
    assert s["agreement"]["disputed_items"] == expected_disputed
    pairs_agree = [
        sum(c * (c - 1) for c in Counter(v).values()) / (len(v) * (len(v) - 1))
        for v in votes.values()
    ]
    assert abs(s["agreement"]["raw_agreement"] - sum(pairs_agree) / len(pairs_agree)) < 1e-12
    # disputed items are information, not data errors: nothing counted as flagged
    assert res.checks["agreement"].rows.column("severity").to_pylist() == ["info"] * sum(
        len(v) for v in votes.values() if disputed(v)
    )
    assert s["flagged"]["rows"] == 0
    assert s["health"]["verdict"] != "unhealthy"
    html = (tmp_path / "audit" / "report.html").read_text(encoding="utf-8")
    assert "votes by different, unknown annotators" in html


def test_cli_on_the_expert_file_reports_no_errors_or_warnings() -> None:
    r = runner.invoke(app, ["audit", str(FILE), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["flagged"]["rows"] == 0
    assert s["flagged"]["by_issue"] == {"disputed_item": s["flagged"]["by_severity"]["info"]}
