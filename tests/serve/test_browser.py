"""Real Chromium (Debian's, driven by Playwright) against a real uvicorn server: an annotator
judges by mouse and keyboard, marks a tie and a both-bad, goes back and changes an answer;
the admin signs in, watches progress and exports; the export round-trips through
`prefkit inspect`. Untrusted HTML in responses never runs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefkit.cli import app as cli_app
from tests.serve.conftest import ADMIN, LiveServer, pair_rows

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("Debian's chromium is required (make install runs scripts/system-deps.sh)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def _admin(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"})


def _campaign(server: LiveServer, rows: list[dict[str, Any]], **kw: Any) -> tuple[int, str]:
    with _admin(server) as c:
        r = c.post("/api/campaigns", json={"name": kw.pop("name", "browser"), "rows": rows, **kw})
        assert r.status_code == 201, r.text
        cid = int(r.json()["id"])
        inv = c.post(f"/api/campaigns/{cid}/annotators", json={"name": "alice"}).json()
    return cid, str(inv["token"])


def _wait_seq(page: Any, seq: int) -> None:
    page.wait_for_selector(f'body[data-state="task"][data-seq="{seq}"]', timeout=10_000)


def test_annotate_go_back_and_export(browser: Any, tmp_path: Path, artifacts_dir: Path) -> None:
    guidelines = "# Guidelines\n\nPrefer **correct** answers."
    with LiveServer(f"sqlite:///{tmp_path / 'b.db'}") as server:
        cid, token = _campaign(server, pair_rows(6), guidelines=guidelines)
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(f"{server.url}/i/{token}")
        assert page.url.endswith("/annotate")
        _wait_seq(page, 1)
        assert page.inner_text("#progress") == "0 / 6 judged"
        # 1: mouse, left
        page.click("#choose-left")
        page.click("#submit")
        _wait_seq(page, 2)
        # 2: keyboard, right
        page.keyboard.press("2")
        page.keyboard.press("Enter")
        _wait_seq(page, 3)
        # 3: keyboard tie
        page.keyboard.press("3")
        page.keyboard.press("Enter")
        _wait_seq(page, 4)
        # 4: mouse both-bad with a rationale
        page.click("#choose-both-bad")
        page.fill("#rationale", "both answers are wrong")
        page.click("#submit")
        _wait_seq(page, 5)
        # 5: arrow key left
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("Enter")
        _wait_seq(page, 6)
        assert page.inner_text("#progress") == "5 / 6 judged"
        page.screenshot(path=str(artifacts_dir / "serve-annotator.png"), full_page=True)
        # go back twice (keyboard, then mouse) and change answer 4 from both-bad to right
        page.keyboard.press("Backspace")
        _wait_seq(page, 5)
        assert page.get_attribute("#choose-left", "aria-pressed") == "true"
        page.click("#back")
        _wait_seq(page, 4)
        assert page.get_attribute("#choose-both-bad", "aria-pressed") == "true"
        assert page.input_value("#rationale") == "both answers are wrong"
        page.keyboard.press("2")
        page.keyboard.press("Enter")
        _wait_seq(page, 6)  # back to the first unanswered task
        ctx.close()

        # what the annotator saw, per task (left/right order recorded by the server)
        choices = {1: "left", 2: "right", 3: "tie", 4: "right", 5: "left"}
        expected: dict[int, tuple[str, str]] = {}
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
            for seq, ch in choices.items():
                t = c.get(f"/api/tasks/{seq}").json()
                outcome = t[ch] if ch in ("left", "right") else ch
                expected[t["item_id"]] = (outcome, t["shown_first"])
                assert t["answer"]["outcome"] == outcome
            mine = c.get("/api/votes/mine").json()
        assert len(mine) == 6  # five answers + one change, history kept

        # admin: sign in, live view, export
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page = ctx.new_page()
        page.goto(f"{server.url}/admin")
        page.fill("#token", ADMIN)
        page.click("#signin")
        page.click(f"a[href='/admin/campaigns/{cid}']")
        page.wait_for_selector('body[data-loaded="1"]')
        assert "alice" in page.inner_text("#annotators")
        assert "5 answers" in page.inner_text("#summary")
        page.fill("#invite-name", "bob <b>")
        page.click("#invite")
        page.wait_for_selector("#invite-result:has-text('/i/')")
        page.screenshot(path=str(artifacts_dir / "serve-admin.png"), full_page=True)
        with page.expect_download() as dl:
            page.click("#export-parquet")
        out = tmp_path / "export.parquet"
        dl.value.save_as(out)
        ctx.close()

    table = pq.read_table(out)
    rows = table.to_pylist()
    got = {int(dict(r["meta"])["item_id"]): (r["outcome"], r["shown_first"]) for r in rows}
    assert got == expected
    assert {r["annotator"] for r in rows} == {"alice"}
    res = CliRunner().invoke(cli_app, ["inspect", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["rows"] == 5 and summary["reader"] == "canonical"
    assert summary["outcomes"] == {
        "a": sum(o == "a" for o, _ in expected.values()),
        "b": sum(o == "b" for o, _ in expected.values()),
        "tie": 1,
        "both_bad": 0,
    }


EVIL = [
    "<script>window.__pwned = 1</script>Plain <b>text</b>",
    '<img src="x" onerror="window.__pwned = 2">',
    "[click me](javascript:window.__pwned=3)",
    "Looks fine\n\n<div>\n<script>window.__pwned = 4</script>\n</div>",
    '<a href="javascript:window.__pwned=5">html link</a> <svg onload="window.__pwned=6">',
    "![pixel](http://127.0.0.1:9/pixel.png)",
]


def test_untrusted_html_never_runs(browser: Any, tmp_path: Path, artifacts_dir: Path) -> None:
    rows = [
        {"prompt": EVIL[i % len(EVIL)], "response_a": EVIL[i], "response_b": EVIL[-1 - i],
         "meta": {"pair_id": f"x{i}"}}
        for i in range(len(EVIL))
    ]  # fmt: skip
    with LiveServer(f"sqlite:///{tmp_path / 'x.db'}") as server:
        _, token = _campaign(server, rows, guidelines=EVIL[0] + EVIL[1], name="xss")
        page = browser.new_page()
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text))
        page.goto(f"{server.url}/i/{token}")
        for seq in range(1, len(EVIL) + 1):
            _wait_seq(page, seq)
            text = page.inner_text("#left") + page.inner_text("#right")
            if "<script>" in EVIL[seq - 1]:
                assert "<script>" in text  # shown as text
            page.hover("#left")
            for link in page.query_selector_all("#left a, #right a"):
                href = link.get_attribute("href") or ""
                assert href.startswith(("http://", "https://")), href
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert page.query_selector_all("#task img, #task svg, #task script") == []
            if seq == 1:
                page.screenshot(path=str(artifacts_dir / "serve-xss.png"), full_page=True)
            page.keyboard.press("3")
            page.keyboard.press("Enter")
        page.wait_for_selector('body[data-state="done"]')
        assert page.evaluate("typeof window.__pwned") == "undefined"
        page.close()


def test_thumbs_and_likert_questions(browser: Any, tmp_path: Path) -> None:
    with LiveServer(f"sqlite:///{tmp_path / 'q.db'}") as server:
        _, token = _campaign(
            server,
            pair_rows(2),
            questions=["pairwise", "thumbs", "likert", "rationale"],
            aspects=["helpfulness", "harmlessness"],
        )
        page = browser.new_page()
        page.goto(f"{server.url}/i/{token}")
        _wait_seq(page, 1)
        assert page.is_hidden("#strength-box") and page.is_visible("#likert-box")
        page.click("#choose-right")
        page.check('input[name="thumbs-left"][value="false"]')
        page.check('input[name="thumbs-right"][value="true"]')
        page.check('input[name="likert-helpfulness-left"][value="2"]')
        page.check('input[name="likert-harmlessness-right"][value="5"]')
        page.click("#submit")
        _wait_seq(page, 2)
        page.close()
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
            t = c.get("/api/tasks/1").json()
    left, right = t["left"], t["right"]
    ans = t["answer"]
    assert ans["outcome"] == right and ans["strength"] is None
    assert ans["thumbs"] == {left: False, right: True}
    assert ans["likert"] == {f"helpfulness:{left}": 2, f"harmlessness:{right}": 5}


def test_ranking_item(browser: Any, tmp_path: Path) -> None:
    from prefkit.io.canonical import save
    from prefkit.schema import Kind, from_rows

    path = tmp_path / "rank.parquet"
    table = from_rows(
        [
            {
                "prompt": "Rank these",
                "responses": ["first **one**", "second", "third"],
                "ranks": [1, 2, 3],
            }
        ],  # fmt: skip
        Kind.RANKINGS,
    )
    save(table, path)
    with LiveServer(f"sqlite:///{tmp_path / 'r.db'}") as server:
        with _admin(server) as c:
            r = c.post("/api/campaigns", json={"name": "rank", "path": str(path), "questions": ["ranking", "rationale"]})  # fmt: skip
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
            token = c.post(f"/api/campaigns/{cid}/annotators", json={"name": "al"}).json()["token"]
        page = browser.new_page()
        page.goto(f"{server.url}/i/{token}")
        _wait_seq(page, 1)
        assert page.is_hidden("#pair") and page.is_hidden("#choices")
        assert "one" in page.inner_text("#ranking-box strong")
        page.select_option("#rank-0", "3")
        page.select_option("#rank-2", "1")
        page.click("#submit")
        page.wait_for_selector('body[data-state="done"]')
        page.close()
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
            assert c.get("/api/tasks/1").json()["answer"]["ranking"] == [3, 2, 1]


def test_admin_creates_campaign_by_upload(
    browser: Any, tmp_path: Path, artifacts_dir: Path
) -> None:
    from tests.conftest import DATA

    path = DATA / "llmbar" / "Dataset" / "LLMBar" / "Natural" / "dataset.json"
    with LiveServer(f"sqlite:///{tmp_path / 'u.db'}") as server:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server.url}/admin")
        page.fill("#token", "wrong")
        page.click("#signin")
        assert "Wrong admin token" in page.inner_text("#error")
        page.fill("#token", ADMIN)
        page.click("#signin")
        page.fill("#nc-name", "LLMBar natural")
        page.set_input_files("#nc-file", str(path))
        page.fill("#nc-overlap", "3")
        page.check("#nc-gold")
        page.screenshot(path=str(artifacts_dir / "serve-admin-new-campaign.png"), full_page=True)
        page.click("#nc-create")
        page.wait_for_url("**/admin/campaigns/1")
        page.wait_for_selector('body[data-loaded="1"]')
        assert page.inner_text("#summary").startswith("100 items")
        assert "overlap 3" in page.inner_text(".meta")
        page.close()
