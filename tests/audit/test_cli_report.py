"""`prefkit audit` end to end: outputs, --json, --fix, refusal to overwrite, the HTML report
(escaping, and a real headless Chromium on HH harmless and PandaLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefkit.audit.report import render
from prefkit.audit.run import run_audit
from prefkit.cli import app
from prefkit.io.canonical import load, save
from prefkit.schema import from_rows
from tests.conftest import CHROMIUM_ARGS, chromium_executable

runner = CliRunner()
EVIL = "</script><script>window.__pwned = 1</script><img src=x onerror=alert(1)>"


def small_table() -> object:
    rows = []
    for i in range(60):
        rows.append(
            {
                "id": f"r{i}",
                "prompt": f"Question number {i} about topic {i % 7}?",
                "response_a": f"Answer {i}. " + "More detail here. " * (i % 5),
                "response_b": f"Reply {i}.",
                "outcome": "a" if i % 3 else "b",
                "annotator": f"u{i % 4}",
                "shown_first": "a" if i % 2 else "b",
            }
        )
    rows.append(dict(rows[0], id="dup"))  # exact duplicate of r0
    rows.append(
        {
            "id": "same",
            "prompt": "p",
            "response_a": "same text",
            "response_b": "Same  text",
            "outcome": "a",
        }
    )
    rows.append(
        {"id": "empty", "prompt": "q", "response_a": " ", "response_b": "fine.", "outcome": "b"}
    )
    rows.append(
        {
            "id": "evil",
            "prompt": EVIL,
            "response_a": EVIL,
            "response_b": EVIL,
            "outcome": "a",
            "annotator": EVIL,
        }
    )
    return from_rows(rows, "comparisons")


def test_cli_audit_writes_outputs_and_fix(tmp_path: Path) -> None:
    src = save(small_table(), tmp_path / "in.parquet")
    out = tmp_path / "audit"
    fixed = tmp_path / "clean" / "fixed.parquet"
    r = runner.invoke(app, ["audit", str(src), "--out", str(out), "--fix", str(fixed), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("duplicates", "leakage", "degenerate", "bias", "agreement", "annotators", "noise"):
        assert key in summary
    assert json.loads((out / "summary.json").read_text())["duplicates"] == summary["duplicates"]
    findings = pq.read_table(out / "findings.parquet")
    assert {"row_id", "check", "severity", "score", "detail"} <= set(findings.column_names)
    html = (out / "report.html").read_text()
    assert EVIL not in html and "&lt;/script&gt;" in html
    clean = load(fixed)
    ids = set(clean.column("id").to_pylist())
    assert "same" not in ids and "empty" not in ids and "evil" not in ids
    assert ("dup" in ids) != ("r0" in ids)  # one of the two copies kept
    assert clean.num_rows == 64 - 4
    assert all("noise_score" in dict(m) for m in clean.column("meta").to_pylist())
    removed = pq.read_table(fixed.parent / "removed.parquet")
    assert set(removed.column("audit_reason").to_pylist()) == {
        "exact_duplicate",
        "identical_responses",
        "empty_response",
    }
    log = json.loads((fixed.parent / "changelog.json").read_text())
    assert log["counts"]["rows_removed"] == 4
    assert summary["fix"]["rows_out"] == 60


def test_cli_refuses_to_overwrite_input_and_bad_options(tmp_path: Path) -> None:
    src = save(small_table(), tmp_path / "in.parquet")
    r = runner.invoke(app, ["audit", str(src), "--fix", str(src)])
    assert r.exit_code != 0
    assert load(src).num_rows == 64
    r = runner.invoke(app, ["audit", str(src), "--policy", "noisy_label=explode"])
    assert r.exit_code != 0
    r = runner.invoke(app, ["audit", str(tmp_path / "missing.parquet")])
    assert r.exit_code != 0


def test_fix_policy_flip_and_drop_noisy(tmp_path: Path) -> None:
    from prefkit.audit.fix import apply_fix, parse_policy

    t = small_table()
    res = run_audit(t)
    pol = parse_policy("none,noisy_label=flip")
    assert pol == {"noisy_label": "flip"}
    fx = apply_fix(t, res, pol)
    assert fx.table.num_rows == t.num_rows
    noisy = res.checks["noise"].row_ids("noisy_label")
    flipped = [dict(m or {}).get("audit_flipped_from") for m in fx.table.column("meta").to_pylist()]
    assert sum(x is not None for x in flipped) <= len(noisy)
    with pytest.raises(ValueError):
        parse_policy("exact_duplicate=flip")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize(
    "name,rel",
    [
        ("hh_harmless", "hh_rlhf_harmless_base_test/harmless-base/test.jsonl.gz"),
        ("pandalm", "pandalm_testset/data/testset-v1.json"),
    ],
)
def test_report_opens_in_chromium_without_console_errors(
    name: str, rel: str, data_dir: Path, artifacts_dir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from prefkit.io.detect import read

    table = read(data_dir / rel).table
    out = artifacts_dir / f"audit-{name}"
    res = run_audit(table, out, source_name=name)
    assert res.summary["input"]["rows"] == table.num_rows
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "report.html").resolve().as_uri())
        page.wait_for_selector(".plot .main-svg", timeout=20000)
        n_plots = page.locator(".plot .main-svg").count()
        assert page.evaluate("window.__pwned === undefined")
        page.screenshot(path=str(artifacts_dir / f"audit-{name}.png"), full_page=True)
        browser.close()
    assert errors == []
    assert n_plots >= 2
    assert (artifacts_dir / f"audit-{name}.png").stat().st_size > 10_000


def test_render_escapes_examples_and_figure_json() -> None:
    from prefkit.audit.frame import Frame
    from prefkit.audit.report import _safe_json

    t = small_table()
    html = render(run_audit(t), Frame.of(t))
    assert EVIL not in html
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned" in html  # shown, escaped
    js = str(_safe_json({"name": EVIL}))
    assert "<" not in js and ">" not in js
    assert json.loads(js)["name"] == EVIL


def test_cli_against_eval_file(tmp_path: Path) -> None:
    t = small_table()
    src = save(t, tmp_path / "in.parquet")
    ev = from_rows(
        [
            {
                "prompt": "Question number 5 about topic 5?",
                "response_a": "x",
                "response_b": "y",
                "outcome": "a",
            }
        ],
        "comparisons",
    )
    evp = save(ev, tmp_path / "eval.parquet")
    r = runner.invoke(
        app, ["audit", str(src), "--against", str(evp), "--json", "--checks", "leakage"]
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["leakage"]["eval_leak_exact_rows"] == 1
    assert set(summary) >= {"input", "flagged", "leakage"} and "noise" not in summary
