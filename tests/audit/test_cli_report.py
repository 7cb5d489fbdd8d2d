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


def test_fix_policy_flip_and_drop_noisy_labels(tmp_path: Path) -> None:
    """On simulated votes with known flips: `flip` reverses exactly the flagged rows (and
    leaves fewer wrong labels), `drop` removes exactly them."""
    from prefkit.audit.fix import apply_fix, parse_policy, write_fix
    from prefkit.schema import Kind
    from prefkit.simulate import simulate

    sim = simulate("noisy", size=3000, seed=1)
    t = sim.tables[Kind.COMPARISONS]
    res = run_audit(t, checks=("annotators", "noise"))
    noisy = res.checks["noise"].row_ids("noisy_label")
    assert len(noisy) >= 20  # the data has flagged rows to act on
    ids = t.column("id").to_pylist()
    before = dict(zip(ids, t.column("outcome").to_pylist(), strict=True))
    truly_flipped = set(sim.truth["flipped_ids"])

    pol = parse_policy("none,noisy_label=flip")
    assert pol == {"noisy_label": "flip"}
    fx = apply_fix(t, res, pol)
    assert fx.table.num_rows == t.num_rows and fx.removed.num_rows == 0
    after = dict(
        zip(fx.table.column("id").to_pylist(), fx.table.column("outcome").to_pylist(), strict=True)
    )
    metas = dict(
        zip(fx.table.column("id").to_pylist(), fx.table.column("meta").to_pylist(), strict=True)
    )
    swap = {"a": "b", "b": "a"}
    for i in ids:
        m = dict(metas[i] or [])
        if i in noisy:
            assert before[i] in swap and after[i] == swap[before[i]], i
            assert m["audit_flipped_from"] == before[i]
        else:
            assert after[i] == before[i] and "audit_flipped_from" not in m, i
    assert fx.counts["flipped:noisy_label"] == len(noisy)
    # flipping the flagged rows repairs more labels than it breaks
    wrong_before = len(truly_flipped)
    wrong_after = len(truly_flipped - noisy) + len(noisy - truly_flipped)
    assert wrong_after < wrong_before

    fx = apply_fix(t, res, parse_policy("none,noisy_label=drop"))
    kept = set(fx.table.column("id").to_pylist())
    assert kept == set(ids) - noisy
    assert set(fx.removed.column("id").to_pylist()) == noisy
    assert set(fx.removed.column("audit_reason").to_pylist()) == {"noisy_label"}
    paths = write_fix(fx, tmp_path / "clean.parquet", {"noisy_label": "drop"})
    log = json.loads(paths["changelog"].read_text())
    assert log["counts"]["rows_removed"] == len(noisy) == log["counts"]["dropped:noisy_label"]
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
    """The report of a real dataset in Debian's Chromium: no console error, the plots draw,
    and the first screen (1200×900) answers "is this dataset healthy?"."""
    from playwright.sync_api import sync_playwright

    from prefkit.io.detect import read

    table = read(data_dir / rel).table
    out = artifacts_dir / f"audit-{name}"
    res = run_audit(table, out, source_name=name)
    assert res.summary["input"]["rows"] == table.num_rows
    verdict = res.summary["health"]["verdict"]
    assert verdict in ("healthy", "needs attention", "unhealthy")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        assert "chrom" in browser.browser_type.name  # the Chromium we launched
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "report.html").resolve().as_uri())
        page.wait_for_selector(".plot .main-svg", timeout=20000)
        n_plots = page.locator(".plot .main-svg").count()
        assert page.evaluate("window.__pwned === undefined")
        # the verdict is on the first screen, with its words and the base-rate table
        box = page.locator("#verdict").bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900, box
        assert page.locator(".verdict-word").inner_text().strip().lower() == verdict
        headline = page.locator("#verdict .headline").inner_text()
        assert "rows have errors" in headline
        page.screenshot(path=str(artifacts_dir / f"audit-{name}-first-screen.png"))
        page.screenshot(path=str(artifacts_dir / f"audit-{name}.png"), full_page=True)
        browser.close()
    assert errors == []
    assert n_plots >= 2
    assert (artifacts_dir / f"audit-{name}.png").stat().st_size > 10_000
    assert (artifacts_dir / f"audit-{name}-first-screen.png").stat().st_size > 10_000


def test_render_escapes_examples_and_figure_json() -> None:
    from prefkit._report import safe_json
    from prefkit.audit.frame import Frame

    t = small_table()
    html = render(run_audit(t), Frame.of(t))
    assert EVIL not in html
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned" in html  # shown, escaped
    js = str(safe_json({"name": EVIL}))
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


def test_cli_audits_a_rankings_file_as_the_comparisons_it_implies(data_dir: Path) -> None:
    """FineGrainedRLHF ranks 4 predictions per question: the audit reads it as the 6 pairs
    each ranking implies (counted here from the raw JSON)."""
    path = data_dir / "finegrained_rlhf_qa_feedback/tasks/qa_feedback/data/dev_feedback.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    expected = 0
    for rec in raw:
        k = sum(1 for key in rec if key.startswith("prediction "))
        expected += k * (k - 1) // 2
    r = runner.invoke(app, ["audit", str(path), "--json", "--checks", "duplicates,degenerate"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["input"]["rows"] == expected
    assert "audited as the" in r.output
