"""Authorization, CSRF, rate limits, CSP, hashed tokens and Markdown sanitisation."""

from __future__ import annotations

import hashlib
import re
import uuid
from html.parser import HTMLParser

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from prefkit.serve.models import Annotator
from prefkit.serve.render import render_markdown
from tests.serve.conftest import (
    ADMIN,
    admin_headers,
    bearer,
    create_campaign,
    invite,
    make_client,
    pair_rows,
)

ADMIN_GETS = ["/api/campaigns", "/api/campaigns/{cid}", "/api/campaigns/{cid}/stats",
              "/api/campaigns/{cid}/votes", "/api/campaigns/{cid}/export?format=jsonl"]  # fmt: skip


def test_authorization(db_url: str) -> None:
    with make_client(db_url) as c:
        one = create_campaign(c, pair_rows(3), name="one")
        two = create_campaign(c, pair_rows(3), name="two")
        alice = invite(c, one["id"], "alice")
        bob = invite(c, one["id"], "bob")
        eve = invite(c, two["id"], "eve")
        # eve's task (campaign two) — alice cannot vote on it or see it
        eve_task = c.get("/api/task/next", headers=bearer(eve["token"])).json()
        r = c.post("/api/votes", json={"idempotency_key": uuid.uuid4().hex, "item_id": eve_task["item_id"], "outcome": "a"}, headers=bearer(alice["token"]))  # fmt: skip
        assert r.status_code == 404
        # bob's answers are not visible to alice
        bt = c.get("/api/task/next", headers=bearer(bob["token"])).json()
        c.post("/api/votes", json={"idempotency_key": "bob-secret-key-1", "item_id": bt["item_id"], "outcome": "b", "rationale": "bob's secret"}, headers=bearer(bob["token"]))  # fmt: skip
        mine = c.get("/api/votes/mine", headers=bearer(alice["token"]))
        assert mine.status_code == 200 and mine.json() == []
        assert "bob's secret" not in c.get("/api/task/next", headers=bearer(alice["token"])).text
        assert c.get("/api/tasks/1", headers=bearer(alice["token"])).json()["answer"] is None
        # reusing bob's idempotency key on bob's item reveals nothing: the item was never
        # assigned to alice (403), and her key space is her own
        r = c.post("/api/votes", json={"idempotency_key": "bob-secret-key-1", "item_id": bt["item_id"], "outcome": "a"}, headers=bearer(alice["token"]))  # fmt: skip
        assert r.status_code == 403 and "secret" not in r.text
        # annotator tokens get 403 on admin endpoints; no/wrong tokens 401
        for path in ADMIN_GETS:
            p = path.format(cid=one["id"])
            assert c.get(p, headers=bearer(alice["token"])).status_code == 403, p
            assert c.get(p, headers=bearer("wrong-token")).status_code == 401, p
            assert c.get(p).status_code == 401, p
            assert c.get(p, headers=admin_headers()).status_code == 200, p
        r = c.post(f"/api/campaigns/{one['id']}/annotators", json={"name": "x"}, headers=bearer(alice["token"]))  # fmt: skip
        assert r.status_code == 403
        r = c.post("/api/campaigns", json={"name": "x", "rows": pair_rows(1)}, headers=bearer(alice["token"]))  # fmt: skip
        assert r.status_code == 403
        for p in ("/api/me", "/api/task/next", "/api/votes/mine"):
            assert c.get(p, headers=bearer("nope")).status_code == 401
            assert c.get(p).status_code == 401
        # the admin token is not an annotator token
        assert c.get("/api/task/next", headers=admin_headers()).status_code == 401


def test_expired_token_is_refused(sqlite_url: str) -> None:
    import datetime as dt

    with make_client(sqlite_url) as c:
        camp = create_campaign(c, pair_rows(2))
        tok = invite(c, camp["id"], "late", expires_in_s=3600)["token"]
        assert c.get("/api/me", headers=bearer(tok)).status_code == 200
        with Session(c.app.state.engine) as s:
            ann = s.scalars(select(Annotator)).one()
            ann.expires_at = ann.expires_at - dt.timedelta(hours=2)  # now in the past
            s.commit()
    with make_client(sqlite_url) as c:
        r = c.get("/api/me", headers=bearer(tok))
        assert r.status_code == 401 and r.json() == {"detail": "invalid, expired or revoked token"}
        assert c.get("/api/task/next", headers=bearer(tok)).status_code == 401
        assert c.get(f"/i/{tok}", follow_redirects=False).status_code == 401


def test_tokens_are_stored_hashed(sqlite_url: str) -> None:
    with make_client(sqlite_url) as c:
        camp = create_campaign(c, pair_rows(2))
        tok = invite(c, camp["id"], "alice")["token"]
        with Session(c.app.state.engine) as s:
            row = s.scalars(select(Annotator)).one()
            assert row.token_hash == hashlib.sha256(tok.encode()).hexdigest()
            assert tok not in repr(row.__dict__)
        dump = "\n".join(c.app.state.engine.raw_connection().iterdump())
        assert tok not in dump and ADMIN not in dump


def test_cookie_session_needs_csrf_header(sqlite_url: str) -> None:
    with make_client(sqlite_url) as c:
        camp = create_campaign(c, pair_rows(2))
        tok = invite(c, camp["id"], "alice")["token"]
        r = c.get(f"/i/{tok}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/annotate"
        cookie = r.cookies.get("prefkit_annotator") or c.cookies.get("prefkit_annotator")
        assert cookie == tok and "httponly" in r.headers.get("set-cookie", "").lower()
        page = c.get("/annotate")
        assert page.status_code == 200
        task = c.get("/api/task/next").json()  # GET by cookie is fine
        body = {"idempotency_key": uuid.uuid4().hex, "item_id": task["item_id"], "outcome": "a"}
        assert c.post("/api/votes", json=body).status_code == 403  # no CSRF header
        assert c.post("/api/votes", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403  # fmt: skip
        csrf = c.cookies.get("prefkit_csrf")
        assert csrf and f'content="{csrf}"' in page.text
        assert c.post("/api/votes", json=body, headers={"X-CSRF-Token": csrf}).status_code == 200


def test_admin_login_csrf_and_rate_limit(sqlite_url: str) -> None:
    with make_client(sqlite_url, login_rate=3) as c:
        c.get("/admin")
        csrf = c.cookies.get("prefkit_csrf")
        assert c.post("/admin/login", data={"token": ADMIN, "csrf": "forged"}).status_code == 403
        codes = [c.post("/admin/login", data={"token": "bad", "csrf": csrf}).status_code for _ in range(3)]  # fmt: skip
        assert codes == [401, 401, 401]
        # over the limit: even the right token is refused for this window
        r = c.post("/admin/login", data={"token": ADMIN, "csrf": csrf}, follow_redirects=False)
        assert r.status_code == 429
    with make_client(sqlite_url) as c:
        c.get("/admin")
        csrf = c.cookies.get("prefkit_csrf")
        r = c.post("/admin/login", data={"token": ADMIN, "csrf": csrf}, follow_redirects=False)
        assert r.status_code == 303
        assert c.get("/admin").status_code == 200 and "Campaigns" in c.get("/admin").text


def test_strict_csp_on_every_page(sqlite_url: str) -> None:
    with make_client(sqlite_url) as c:
        for p in ("/admin", "/api/health", "/static/annotate.js", "/annotate"):
            csp = c.get(p).headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        from prefkit.serve.app import HERE

        for tpl in (HERE / "templates").glob("*.html"):
            text = tpl.read_text()
            assert "<script>" not in text, tpl  # only <script src=...> files
            assert not re.search(r"\son[a-z]+\s*=", text), tpl  # no inline event handlers
            assert "style=" not in text, tpl


EVIL = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned=1">',
    "[click me](javascript:window.__pwned=1)",
    "<div onmouseover='x'>hover</div>",
    "[x](JaVaScRiPt:alert(1))",
    '<a href="javascript:alert(1)">a</a>',
    "![tracker](https://evil.example/pixel.png)",
    "<svg/onload=alert(1)>",
    "```html\n<script>alert(1)</script>\n```",
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


@pytest.mark.parametrize("text", EVIL)
def test_render_neutralises(text: str) -> None:
    out = render_markdown(text)
    parser = _Tags()
    parser.feed(out)
    for tag, attrs in parser.tags:
        assert tag not in ("script", "img", "svg", "iframe", "object"), out
        for name, value in attrs:
            assert not name.startswith("on"), out
            if name == "href":
                assert (value or "").lower().startswith(("http://", "https://", "mailto:")), out
    # what was HTML is shown as text
    if text.startswith("<"):
        assert "&lt;" in out


def test_render_keeps_markdown_and_code_classes() -> None:
    out = render_markdown("**bold** and `code`\n\n```python\ndef f():\n    return 1\n```")
    assert "<strong>bold</strong>" in out and "<code>code</code>" in out
    assert 'class="hl-k"' in out  # pygments token classes, styled by /assets/highlight.css
    out = render_markdown("![alt](https://example.com/a.png)")
    assert "<img" not in out and 'href="https://example.com/a.png"' in out


def test_invite_link_guessing_is_rate_limited(sqlite_url: str) -> None:
    with make_client(sqlite_url, login_rate=2) as c:
        codes = [c.get(f"/i/guess-{i}", follow_redirects=False).status_code for i in range(4)]
        assert codes == [401, 401, 429, 429]
        assert c.cookies.get("prefkit_annotator") is None
