"""Real Chromium (Debian's, driven by Playwright) against a real uvicorn server: an annotator
judges by mouse and keyboard, marks a tie and a both-bad, goes back and changes an answer;
the admin signs in, watches progress, closes and reopens the campaign, revokes an invitation,
exports and signs out; the export round-trips through `prefkit inspect` and, for graded
answers, through `prefkit pairs`. Untrusted HTML in responses never runs. Every page is
watched: no console error, no uncaught exception, no Content-Security-Policy violation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefkit.cli import app as cli_app
from tests.conftest import CHROMIUM_ARGS, chromium_executable
from tests.serve.conftest import ADMIN, LiveServer, pair_rows

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# collects CSP violations as the page sees them (Playwright injects this before any script)
CSP_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


class Watch:
    """Console errors, uncaught exceptions and CSP violations of a page."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.csp: list[str] = []
        page.add_init_script(CSP_WATCH)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("framenavigated", lambda _f: self._collect())

    def _collect(self) -> None:
        try:
            self.csp += self.page.evaluate("window.__csp || []")
        except Exception:  # noqa: BLE001 - the page is navigating; read it at the next check
            pass

    def assert_clean(self, allowed: str | None = None) -> None:
        """No CSP violation, no uncaught error; console errors only matching `allowed` (the
        browser logs refused requests, e.g. a vote after the campaign was closed)."""
        self.csp += self.page.evaluate("window.__csp || []")
        assert self.csp == [], self.csp
        errors = [e for e in self.errors if allowed is None or not re.search(allowed, e)]
        assert errors == [], errors
        self.page.evaluate("window.__csp = []")
        self.csp, self.errors = [], []


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    import subprocess

    from playwright.sync_api import sync_playwright

    exe = chromium_executable()
    debian = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        # the browser driven is Debian's chromium, not one Playwright brought along
        assert b.version.split(".")[0] in debian, (b.version, debian)
        try:
            yield b
        finally:
            b.close()


def _page(browser: Any, **kw: Any) -> tuple[Any, Any, Watch]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, **kw)
    page = ctx.new_page()
    return ctx, page, Watch(page)


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


def _sign_in(page: Any, url: str) -> None:
    page.goto(f"{url}/admin")
    page.fill("#token", ADMIN)
    page.click("#signin")
    page.wait_for_selector("#logout")


def test_annotate_go_back_and_export(browser: Any, tmp_path: Path, artifacts_dir: Path) -> None:
    guidelines = "# Guidelines\n\nPrefer **correct** answers."
    with LiveServer(f"sqlite:///{tmp_path / 'b.db'}") as server:
        cid, token = _campaign(server, pair_rows(6), guidelines=guidelines)
        ctx, page, watch = _page(browser)
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
        watch.assert_clean()
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
        ctx, page, watch = _page(browser, accept_downloads=True)
        _sign_in(page, server.url)
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
        watch.assert_clean()
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


def test_graded_answers_keep_their_direction_page_to_pairs(browser: Any, tmp_path: Path) -> None:
    """Issue 16.1, the whole path: three annotators prefer response b "much" on the page
    (whichever side it was shown on), a fourth prefers a "slightly"; the database and the
    export hold canonical directional strength, going back shows the grade chosen, and
    `prefkit pairs --from-votes mean-strength --to trl` makes response b the chosen one."""
    rows = [{"prompt": "Which is right?", "response_a": "Answer A (wrong)", "response_b": "Answer B (right)"}]  # fmt: skip
    with LiveServer(f"sqlite:///{tmp_path / 's.db'}") as server:
        with _admin(server) as c:
            cid = c.post("/api/campaigns", json={"name": "graded", "rows": rows, "overlap": 4}).json()["id"]  # fmt: skip
            tokens = [c.post(f"/api/campaigns/{cid}/annotators", json={"name": f"an{i}"}).json()["token"] for i in range(4)]  # fmt: skip
        for i, tok in enumerate(tokens):
            want, grade = ("b", "much") if i < 3 else ("a", "slightly")
            ctx, page, watch = _page(browser)
            page.goto(f"{server.url}/i/{tok}")
            _wait_seq(page, 1)
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tok}"}) as c:
                side = "left" if c.get("/api/tasks/1").json()["left"] == want else "right"
            page.click(f"#choose-{side}")
            page.check(f"#strength-{grade}")
            page.click("#submit")
            page.wait_for_selector('body[data-state="done"]')
            page.keyboard.press("Backspace")  # back to the answer: the grade is shown again
            _wait_seq(page, 1)
            assert page.is_checked(f"#strength-{grade}")
            assert page.get_attribute(f"#choose-{side}", "aria-pressed") == "true"
            watch.assert_clean()
            ctx.close()
        with _admin(server) as c:
            votes = c.get(f"/api/campaigns/{cid}/votes").json()
            ex = c.get(f"/api/campaigns/{cid}/export?format=parquet")
    assert sorted((v["outcome"], round(v["strength"], 6)) for v in votes) == [
        ("a", round(0.5 + 1 / 6, 6)), ("b", 0.0), ("b", 0.0), ("b", 0.0)
    ]  # fmt: skip
    out = tmp_path / "export.parquet"
    out.write_bytes(ex.content)
    pairs = tmp_path / "pairs.jsonl"
    res = CliRunner().invoke(cli_app, ["pairs", str(out), str(pairs), "--from-votes", "mean-strength", "--to", "trl"])  # fmt: skip
    assert res.exit_code == 0, res.output
    (pair,) = [json.loads(x) for x in pairs.read_text().splitlines()]
    assert pair["chosen"].endswith("Answer B (right)") and pair["rejected"].endswith("Answer A (wrong)")  # fmt: skip


def test_admin_closes_reopens_revokes_and_signs_out(browser: Any, tmp_path: Path, artifacts_dir: Path) -> None:  # fmt: skip
    """Issue 16.7-8 in the browser: close and reopen from the campaign page (the annotator's
    page says it is closed, and a submit is refused), revoke an invitation (the next request
    of that annotator is refused), sign out (the session cookie no longer works)."""
    with LiveServer(f"sqlite:///{tmp_path / 'l.db'}") as server:
        cid, token = _campaign(server, pair_rows(3))
        with _admin(server) as c:
            bob = c.post(f"/api/campaigns/{cid}/annotators", json={"name": "bob"}).json()
        actx, admin, awatch = _page(browser)
        _sign_in(admin, server.url)
        admin.goto(f"{server.url}/admin/campaigns/{cid}")
        admin.wait_for_selector('body[data-loaded="1"]')
        uctx, ann, uwatch = _page(browser)
        ann.goto(f"{server.url}/i/{token}")
        _wait_seq(ann, 1)
        # close while the annotator has a task open: the submit is refused (409), then the
        # page shows the campaign is closed
        admin.click("#close-campaign")
        admin.wait_for_selector("#campaign-state:has-text('closed')")
        ann.click("#choose-left")
        ann.click("#submit")
        ann.wait_for_selector('body[data-state="refused"]')
        assert "closed" in ann.inner_text("#status")
        ann.reload()
        ann.wait_for_selector('body[data-state="closed"]')
        assert ann.is_visible("#closed")
        uwatch.assert_clean(allowed=r"status of 409")
        admin.click("#reopen-campaign")
        admin.wait_for_selector("#campaign-state:has-text('open')")
        ann.reload()
        _wait_seq(ann, 1)
        ann.click("#choose-left")
        ann.click("#submit")
        _wait_seq(ann, 2)
        uwatch.assert_clean()
        # revoke bob from the annotators table
        admin.wait_for_selector(f"button.revoke[data-id='{bob['id']}']")
        admin.click(f"button.revoke[data-id='{bob['id']}']")
        admin.wait_for_selector("#invite-result:has-text('revoked')")
        admin.screenshot(path=str(artifacts_dir / "serve-admin-lifecycle.png"), full_page=True)
        r = httpx.get(f"{server.url}/api/task/next", headers={"Authorization": f"Bearer {bob['token']}"})  # fmt: skip
        assert r.status_code == 401
        # sign out: back to the sign-in form; the old cookie is refused by the API
        cookie = next(c["value"] for c in actx.cookies() if c["name"] == "prefkit_admin")
        admin.click("#logout")
        admin.wait_for_selector("#signin")
        r = httpx.get(f"{server.url}/api/campaigns", headers={"Cookie": f"prefkit_admin={cookie}"})  # fmt: skip
        assert r.status_code == 401
        awatch.assert_clean()
        actx.close()
        uctx.close()


EVIL = [
    "<script>window.__pwned = 1</script>Plain <b>text</b>",
    '<img src="x" onerror="window.__pwned = 2">',
    "[click me](javascript:window.__pwned=3)",
    "Looks fine\n\n<div>\n<script>window.__pwned = 4</script>\n</div>",
    '<a href="javascript:window.__pwned=5">html link</a> <svg onload="window.__pwned=6">',
    "![pixel](http://127.0.0.1:9/pixel.png)",
    "| left | right |\n|:-----|------:|\n| 1 | 2 |",  # aligned table: no inline style
]


def test_untrusted_html_never_runs(browser: Any, tmp_path: Path, artifacts_dir: Path) -> None:
    rows = [
        {"prompt": EVIL[i % len(EVIL)], "response_a": EVIL[i], "response_b": EVIL[-1 - i],
         "meta": {"pair_id": f"x{i}"}}
        for i in range(len(EVIL))
    ]  # fmt: skip
    with LiveServer(f"sqlite:///{tmp_path / 'x.db'}") as server:
        _, token = _campaign(server, rows, guidelines=EVIL[0] + EVIL[1], name="xss")
        ctx, page, watch = _page(browser)
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
        watch.assert_clean()  # no CSP violation: nothing tried to run or load
        ctx.close()


def test_thumbs_and_likert_questions(browser: Any, tmp_path: Path) -> None:
    with LiveServer(f"sqlite:///{tmp_path / 'q.db'}") as server:
        _, token = _campaign(
            server,
            pair_rows(2),
            questions=["pairwise", "thumbs", "likert", "rationale"],
            aspects=["helpfulness", "harmlessness"],
        )
        ctx, page, watch = _page(browser)
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
        watch.assert_clean()
        ctx.close()
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
            t = c.get("/api/tasks/1").json()
    left, right = t["left"], t["right"]
    ans = t["answer"]
    assert ans["outcome"] == right and ans["strength"] is None
    assert ans["thumbs"] == {left: False, right: True}
    assert ans["likert"] == {f"helpfulness:{left}": 2, f"harmlessness:{right}": 5}


def test_ranking_item(browser: Any, tmp_path: Path) -> None:
    """A prompt with k responses (no outcome, no ranks: what a ranking campaign starts from)."""
    rows = [{"prompt": "Rank these", "responses": ["first **one**", "second", "third"]}]
    with LiveServer(f"sqlite:///{tmp_path / 'r.db'}") as server:
        _, token = _campaign(server, rows, name="rank", questions=["ranking", "rationale"])
        ctx, page, watch = _page(browser)
        page.goto(f"{server.url}/i/{token}")
        _wait_seq(page, 1)
        assert page.is_hidden("#pair") and page.is_hidden("#choices")
        assert "one" in page.inner_text("#ranking-box strong")
        page.select_option("#rank-0", "3")
        page.select_option("#rank-2", "1")
        page.click("#submit")
        page.wait_for_selector('body[data-state="done"]')
        watch.assert_clean()
        ctx.close()
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c:
            assert c.get("/api/tasks/1").json()["answer"]["ranking"] == [3, 2, 1]


def test_admin_creates_campaign_by_upload(
    browser: Any, tmp_path: Path, artifacts_dir: Path
) -> None:
    from tests.conftest import DATA

    path = DATA / "llmbar" / "Dataset" / "LLMBar" / "Natural" / "dataset.json"
    with LiveServer(f"sqlite:///{tmp_path / 'u.db'}") as server:
        ctx, page, watch = _page(browser)
        page.goto(f"{server.url}/admin")
        page.fill("#token", "wrong")
        page.click("#signin")
        assert "Wrong admin token" in page.inner_text("#error")
        watch.assert_clean(allowed=r"status of 401")  # the sign-in page answered 401
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
        assert "0 rows rejected" in page.inner_text("#import-info")
        # a file with bad rows: the page says how many were rejected and why
        bad = tmp_path / "mixed.jsonl"
        bad.write_text('{"prompt": "p", "response_a": "a", "response_b": "b"}\n{"prompt": "q", "response_a": "a"}\n')  # fmt: skip
        page.goto(f"{server.url}/admin")
        page.fill("#nc-name", "mixed")
        page.set_input_files("#nc-file", str(bad))
        page.click("#nc-create")
        page.wait_for_selector("#nc-open")
        assert "1 rows rejected" in page.inner_text("#nc-status")
        page.click("#nc-open")
        page.wait_for_selector('body[data-loaded="1"]')
        assert "1 rows rejected" in page.inner_text("#import-info")
        watch.assert_clean()
        ctx.close()
