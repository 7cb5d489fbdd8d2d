"""One test per defect found by trying `prefkit serve` as an attacker and a careless user
(issue 16): direction of strength, body limits, bounded vote fields, votes only on assigned
tasks, 4xx instead of 500, idempotency conflicts, sessions, lifecycle, imports."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from prefkit.serve.models import AdminSession, Vote
from prefkit.serve.security import SECURITY_HEADERS
from tests.serve.conftest import (
    ADMIN,
    LiveServer,
    admin_headers,
    bearer,
    create_campaign,
    invite,
    make_client,
    next_task,
    pair_rows,
)


def _vote(c: Any, tok: str, item_id: int, outcome: str | None = "a", **kw: Any) -> Any:
    body = {"idempotency_key": uuid.uuid4().hex, "item_id": item_id, "outcome": outcome, **kw}
    return c.post("/api/votes", json=body, headers=bearer(tok))


def _setup(c: Any, n: int = 3, **kw: Any) -> tuple[dict[str, Any], str, dict[str, Any]]:
    camp = create_campaign(c, pair_rows(n), **kw)
    tok = invite(c, camp["id"], "alice")["token"]
    return camp, tok, next_task(c, tok)


# 1 -------------------------------------------------------------------------------------


def test_strength_is_directional_through_export_and_pairs(db_url: str, tmp_path: Path) -> None:
    """Three annotators prefer b "much": the export's strength is 0 (canonical: 1 = strongly
    prefers a) and `prefkit pairs --from-votes mean-strength --to trl` chooses response b."""
    from prefkit.cli import app

    with make_client(db_url) as c:
        camp = create_campaign(c, pair_rows(1), overlap=3)
        for name in ("an1", "an2", "an3"):
            tok = invite(c, camp["id"], name)["token"]
            t = next_task(c, tok)
            # the answer must agree with its direction
            assert _vote(c, tok, t["item_id"], "b", strength=1.0).status_code == 422
            assert _vote(c, tok, t["item_id"], "b", strength=0.0).status_code == 200
        ex = c.get(f"/api/campaigns/{camp['id']}/export", headers=admin_headers())
    out = tmp_path / "export.parquet"
    out.write_bytes(ex.content)
    assert pq.read_table(out).column("strength").to_pylist() == [0.0, 0.0, 0.0]
    res = CliRunner().invoke(app, ["pairs", str(out), str(tmp_path / "o.jsonl"), "--from-votes", "mean-strength", "--to", "trl"])  # fmt: skip
    assert res.exit_code == 0, res.output
    (pair,) = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert pair["chosen"].endswith(pair_rows(1)[0]["response_b"])


@pytest.mark.parametrize(
    ("outcome", "strength"),
    [("a", 0.5), ("a", 0.2), ("b", 0.6), ("tie", 0.9), ("both_bad", 0.5)],
)
def test_strength_must_agree_with_outcome(sqlite_url: str, outcome: str, strength: float) -> None:
    with make_client(sqlite_url) as c:
        _, tok, t = _setup(c)
        r = _vote(c, tok, t["item_id"], outcome, strength=strength)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "strength"]


# 2 -------------------------------------------------------------------------------------


MARKER = "ECHO-MARKER-3f9a"


def test_body_limit_auth_first_and_no_echo(sqlite_url: str) -> None:
    with make_client(sqlite_url) as c:
        _, tok, t = _setup(c)
        big = json.dumps({"idempotency_key": "k" * 20, "item_id": t["item_id"], "outcome": "a", "rationale": MARKER * 100_000})  # fmt: skip
        assert len(big) > 1_000_000
        # no token: refused before the body is looked at
        r = c.post("/api/votes", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 401 and MARKER not in r.text
        # a valid token: refused for its size, not parsed
        r = c.post("/api/votes", content=big, headers={**bearer(tok), "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 413 and MARKER not in r.text
        # under the limit but invalid: the field named, the input not echoed
        body = {"idempotency_key": "k" * 20, "item_id": t["item_id"], "outcome": MARKER, "rationale": MARKER * 3000}  # fmt: skip
        r = c.post("/api/votes", json=body, headers=bearer(tok))
        assert r.status_code == 422 and MARKER not in r.text
        assert {tuple(e["loc"]) for e in r.json()["detail"]} == {("body", "outcome"), ("body", "rationale")}  # fmt: skip
        r = c.post("/api/votes", content=b'{"idempotency_key": "' + MARKER.encode() + b'", ', headers={**bearer(tok), "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 422 and MARKER not in r.text  # invalid JSON, not echoed


def _raw_post(port: int, path: str, headers: dict[str, str], length: int, first: bytes) -> bytes:
    """Send headers announcing `length` bytes and only `first` of them, then read the answer:
    it comes only if the server answers without waiting for (and reading) the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"  # fmt: skip
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode() + first)
        return s.recv(65536)


@pytest.mark.slow
def test_huge_body_is_answered_without_reading_it(tmp_path: Path) -> None:
    """A real server: a 100 MB vote body gets its answer (401 without a token, 413 with one)
    after 64 KiB were sent — the other 99.9 MB are never waited for; other requests go on."""
    import httpx

    with LiveServer(f"sqlite:///{tmp_path / 'b.db'}") as server:
        with httpx.Client(base_url=server.url) as c:
            camp = c.post("/api/campaigns", json={"name": "x", "rows": pair_rows(2)}, headers=admin_headers()).json()  # fmt: skip
            tok = c.post(f"/api/campaigns/{camp['id']}/annotators", json={"name": "a"}, headers=admin_headers()).json()["token"]  # fmt: skip
            ans = _raw_post(server.port, "/api/votes", {}, 100 << 20, b"{" + b" " * 65536)
            assert ans.startswith(b"HTTP/1.1 401")
            ans = _raw_post(server.port, "/api/votes", bearer(tok), 100 << 20, b"{" + b" " * 65536)  # fmt: skip
            assert ans.startswith(b"HTTP/1.1 413")
            for k, v in SECURITY_HEADERS.items():
                assert f"{k}: {v}".lower().encode() in ans.lower()
            assert c.get("/api/health").status_code == 200


# 3 -------------------------------------------------------------------------------------

BAD_FIELDS = [
    ({"ranking": [-7, 1_000_000]}, "ranking"),
    ({"likert": {"helpfulness:a": 6}}, "likert"),
    ({"likert": {f"helpfulness:{i}": 3 for i in range(65)}}, "likert"),
    ({"likert": {"no-side": 3}}, "likert"),
    ({"thumbs": {"c": True}}, "thumbs"),
    ({"thumbs": {"a": "yes please"}}, "thumbs"),
    ({"spans": [{"response": "a", "start": 5, "end": 2, "label": "x"}]}, "spans"),
    ({"spans": [{"response": "a", "start": 0, "end": 2, "label": "x" * 101}]}, "spans"),
    ({"spans": [{"response": "a", "start": 0, "end": 1, "label": "x"}] * 201}, "spans"),
    ({"rationale": "x" * 20_001}, "rationale"),
    ({"elapsed_ms": 2**31}, "elapsed_ms"),
    ({"idempotency_key": "short"}, "idempotency_key"),
    ({"idempotency_key": "has spaces in it"}, "idempotency_key"),
    ({"shown_first": "b"}, "shown_first"),  # the server's recorded order is the only one
]


@pytest.mark.parametrize(("extra", "field"), BAD_FIELDS, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_FIELDS)])  # fmt: skip
def test_vote_fields_are_bounded(sqlite_url: str, extra: dict[str, Any], field: str) -> None:
    questions = ["pairwise", "strength", "likert", "thumbs", "rationale", "spans"]
    with make_client(sqlite_url) as c:
        _, tok, t = _setup(c, questions=questions)
        r = _vote(c, tok, t["item_id"], "a", **extra)
        assert r.status_code == 422, r.text
        assert field in {e["loc"][1] for e in r.json()["detail"]}, r.json()


def test_vote_answers_checked_against_the_item(sqlite_url: str) -> None:
    """Spans past the end of the response, thumbs for a side that does not exist, answers to
    questions the campaign does not ask: 422 with the field named. Valid answers are kept."""
    questions = ["pairwise", "likert", "thumbs", "spans"]
    with make_client(sqlite_url) as c:
        _, tok, t = _setup(c, questions=questions, aspects=["helpfulness", "honesty"])
        n_a = len(pair_rows(3)[0]["response_a"])
        for extra, field in (
            ({"spans": [{"response": "a", "start": 0, "end": n_a + 1, "label": "x"}]}, "spans"),
            ({"likert": {"style:a": 3}}, "likert"),
            ({"thumbs": {"7": True}}, "thumbs"),
            ({"strength": 0.9}, "strength"),
            ({"rationale": "why"}, "rationale"),
        ):
            r = _vote(c, tok, t["item_id"], "a", **extra)
            assert r.status_code == 422 and r.json()["detail"][0]["loc"][1] == field, (extra, r.text)  # fmt: skip
        ok = {"spans": [{"response": "a", "start": 0, "end": n_a, "label": "wrong"}],
              "likert": {"honesty:b": 5}, "thumbs": {"a": False}}  # fmt: skip
        assert _vote(c, tok, t["item_id"], "a", **ok).status_code == 200
        ans = c.get("/api/tasks/1", headers=bearer(tok)).json()["answer"]
        assert ans["spans"] == ok["spans"] and ans["likert"] == ok["likert"]


# 4 -------------------------------------------------------------------------------------


def test_votes_only_on_assigned_tasks_with_the_recorded_order(db_url: str) -> None:
    with make_client(db_url) as c:
        camp = create_campaign(c, pair_rows(4), gold={"p1": "a", "p2": "b", "p3": "a"})
        tok = invite(c, camp["id"], "alice")["token"]
        t = next_task(c, tok)
        others = {t["item_id"] + k for k in (1, 2, 3)}  # the other items (gold ones)
        for item in others:
            r = _vote(c, tok, item, "a")
            assert r.status_code == 403 and "not assigned" in r.text
        r = _vote(c, tok, t["item_id"], "a")
        assert r.status_code == 200 and r.json()["shown_first"] == t["shown_first"]
        with Session(c.app.state.engine) as s:
            assert s.scalars(select(Vote.shown_first)).all() == [t["shown_first"]]
        st = c.get(f"/api/campaigns/{camp['id']}/stats", headers=admin_headers()).json()
        assert st["annotators"][0]["gold_seen"] == 0  # no gold answered behind the server's back


# 5 -------------------------------------------------------------------------------------

HUGE = 2**63


def raw_vote(**fields: str) -> str:
    """A vote body as JSON text, each field given as raw JSON (so NaN, 1e400, lone
    surrogate escapes and huge integers reach the server as a client would send them)."""
    base = {"idempotency_key": '"kkkkkkkkkk"', "item_id": "ITEM", "outcome": '"a"', **fields}
    return "{" + ", ".join(f'"{k}": {v}' for k, v in base.items()) + "}"


NASTY_VOTES: list[tuple[str, str]] = [
    ("item_id huge", raw_vote(item_id=str(HUGE))),
    ("item_id 2^64", raw_vote(item_id=str(2**64))),
    ("item_id negative huge", raw_vote(item_id=str(-HUGE))),
    ("item_id float", raw_vote(item_id="1e300")),
    ("strength NaN", raw_vote(strength="NaN")),
    ("strength Infinity", raw_vote(strength="Infinity")),
    ("strength -Infinity", raw_vote(outcome='"b"', strength="-Infinity")),
    ("strength 1e400", raw_vote(strength="1e400")),
    ("strength huge int", raw_vote(strength=str(10**400))),
    ("rationale lone surrogate", raw_vote(rationale='"\\ud800"')),
    ("rationale NUL", raw_vote(rationale='"a\\u0000b"')),
    ("likert key surrogate", raw_vote(likert='{"\\udfff:a": 3}')),
    ("elapsed huge", raw_vote(elapsed_ms=str(HUGE))),
    ("deep nesting", raw_vote(likert="[" * 5000 + "]" * 5000)),
    ("not an object", "[1, 2, 3]"),
]
NASTY_ADMIN: list[tuple[str, str, str]] = [
    (
        "invite expires 1e300",
        "/api/campaigns/CID/annotators",
        '{"name": "x", "expires_in_s": 1e300}',
    ),  # fmt: skip
    (
        "invite expires NaN",
        "/api/campaigns/CID/annotators",
        '{"name": "x", "expires_in_s": NaN}',
    ),  # fmt: skip
    ("invite name surrogate", "/api/campaigns/CID/annotators", '{"name": "\\ud800"}'),
    ("invite name NUL", "/api/campaigns/CID/annotators", '{"name": "a\\u0000"}'),
    (
        "rows response_a int",
        "/api/campaigns",
        '{"name": "x", "rows": [{"prompt": "p", "response_a": 1, "response_b": "b"}]}',
    ),  # fmt: skip
    (
        "rows prompt dict",
        "/api/campaigns",
        '{"name": "x", "rows": [{"prompt": {"a": 1}, "response_a": "a", "response_b": "b"}]}',
    ),  # fmt: skip
    (
        "rows meta list",
        "/api/campaigns",
        '{"name": "x", "rows": [{"prompt": "p", "response_a": "a", "response_b": "b", "meta": [1]}]}',
    ),  # fmt: skip
    (
        "rows surrogate",
        "/api/campaigns",
        '{"name": "x", "rows": [{"prompt": "\\ud800", "response_a": "a", "response_b": "b"}]}',
    ),  # fmt: skip
    ("rows not objects", "/api/campaigns", '{"name": "x", "rows": [1, "two", null]}'),
    (
        "rows NaN id",
        "/api/campaigns",
        '{"name": "x", "rows": [{"id": NaN, "prompt": "p", "response_a": "a", "response_b": "b", "outcome": "maybe"}]}',
    ),  # fmt: skip
    ("campaign name surrogate", "/api/campaigns", '{"name": "\\udc80", "rows": []}'),
    ("overlap huge", "/api/campaigns", '{"name": "x", "overlap": ' + str(HUGE) + ', "rows": []}'),
]
NASTY_PATHS = [f"/api/campaigns/{HUGE}", f"/api/campaigns/{HUGE}/stats", f"/api/campaigns/{2**64}/export",  # fmt: skip
               "/api/campaigns/-1/votes", f"/api/tasks/{HUGE}", "/api/campaigns/1e3"]  # fmt: skip


def _headers_ok(r: Any) -> bool:
    return all(r.headers.get(k) == v for k, v in SECURITY_HEADERS.items())


def test_nasty_input_is_4xx_with_headers(db_url: str) -> None:
    """Issue 5's inputs (and more of their kind): never a 500, always the security headers,
    nothing stored."""
    with make_client(db_url) as c:
        camp, tok, t = _setup(c)
        for name, raw in NASTY_VOTES:
            r = c.post("/api/votes", content=raw.replace("ITEM", str(t["item_id"])).encode(), headers={**bearer(tok), "Content-Type": "application/json"})  # fmt: skip
            assert 400 <= r.status_code < 500 and _headers_ok(r), (name, r.status_code, r.text)
        for name, path, raw in NASTY_ADMIN:
            r = c.post(path.replace("CID", str(camp["id"])), content=raw.encode(), headers={**admin_headers(), "Content-Type": "application/json"})  # fmt: skip
            assert 400 <= r.status_code < 500 and _headers_ok(r), (name, r.status_code, r.text)
        for path in NASTY_PATHS:
            for h in (admin_headers(), bearer(tok)):
                r = c.get(path, headers=h)
                assert 400 <= r.status_code < 500 and _headers_ok(r), (path, r.status_code)
        with Session(c.app.state.engine) as s:
            assert s.scalars(select(Vote)).all() == []
        assert len(c.get("/api/campaigns", headers=admin_headers()).json()) == 1


# 6 -------------------------------------------------------------------------------------


def test_idempotency_conflict_names_both_versions(db_url: str) -> None:
    with make_client(db_url) as c:
        camp, tok, t = _setup(c)
        key = "retry-key-123"
        first = c.post("/api/votes", json={"idempotency_key": key, "item_id": t["item_id"], "outcome": "a", "rationale": "r1"}, headers=bearer(tok))  # fmt: skip
        assert first.status_code == 200
        same = c.post("/api/votes", json={"idempotency_key": key, "item_id": t["item_id"], "outcome": "a", "rationale": "r1", "elapsed_ms": 5}, headers=bearer(tok))  # fmt: skip
        assert same.status_code == 200 and same.json() == first.json()
        r = c.post("/api/votes", json={"idempotency_key": key, "item_id": t["item_id"], "outcome": "b", "rationale": "r1"}, headers=bearer(tok))  # fmt: skip
        assert r.status_code == 409
        d = r.json()["detail"]
        assert d["stored"]["outcome"] == "a" and d["sent"]["outcome"] == "b"
        t2 = next_task(c, tok)
        r = c.post("/api/votes", json={"idempotency_key": key, "item_id": t2["item_id"], "outcome": "a", "rationale": "r1"}, headers=bearer(tok))  # fmt: skip
        assert r.status_code == 409 and r.json()["detail"]["sent"]["item_id"] == t2["item_id"]
        with Session(c.app.state.engine) as s:
            assert len(s.scalars(select(Vote)).all()) == 1
        # another campaign's annotator using the same key learns nothing: a new vote of theirs
        other = create_campaign(c, pair_rows(2), name="other")
        eve = invite(c, other["id"], "eve")["token"]
        te = next_task(c, eve)
        r = c.post("/api/votes", json={"idempotency_key": key, "item_id": te["item_id"], "outcome": "b"}, headers=bearer(eve))  # fmt: skip
        assert r.status_code == 200 and r.json()["vote_id"] != first.json()["vote_id"]


# 7 -------------------------------------------------------------------------------------


def _set_admin_cookie(c: Any, value: str) -> None:
    c.cookies.delete("prefkit_admin")
    c.cookies.set("prefkit_admin", value, domain="testserver.local")


def _login(c: Any) -> Any:
    c.get("/admin")
    return c.post("/admin/login", data={"token": ADMIN, "csrf": c.cookies.get("prefkit_csrf")}, follow_redirects=False)  # fmt: skip


def test_admin_session_is_signed_expiring_and_ends_at_logout(sqlite_url: str) -> None:
    from prefkit.serve.security import new_session_cookie, session_key

    with make_client(sqlite_url, session_ttl_s=600) as c:
        r = _login(c)
        assert r.status_code == 303
        cookie = r.cookies.get("prefkit_admin") or c.cookies.get("prefkit_admin")
        assert ADMIN not in cookie and cookie.count(".") == 2
        setc = next(h for h in r.headers.get_list("set-cookie") if h.startswith("prefkit_admin="))
        assert "Max-Age=600" in setc and "HttpOnly" in setc and "SameSite=strict" in setc
        assert c.get("/api/campaigns").status_code == 200
        csrf = c.cookies.get("prefkit_csrf")
        # a cookie write needs the CSRF header
        assert c.post("/api/campaigns", json={"name": "x", "rows": pair_rows(1)}).status_code == 403  # fmt: skip
        assert c.post("/api/campaigns", json={"name": "x", "rows": pair_rows(1)}, headers={"X-CSRF-Token": csrf}).status_code == 201  # fmt: skip
        # tampered, or well signed but expired: refused
        sid, exp, sig = cookie.split(".")
        for bad in (f"{sid}.{int(exp) + 10**6}.{sig}", f"{'y' if sid[0] == 'x' else 'x'}{sid[1:]}.{exp}.{sig}", new_session_cookie(session_key(ADMIN), int(time.time()) - 1)[1]):  # fmt: skip
            _set_admin_cookie(c, bad)
            assert c.get("/api/campaigns").status_code == 401
        _set_admin_cookie(c, cookie)
        assert c.get("/api/campaigns").status_code == 200
        # the server-side expiry counts too
        with Session(c.app.state.engine) as s:
            row = s.scalars(select(AdminSession)).one()
            saved = row.expires_at
            row.expires_at = saved.replace(year=2000)
            s.commit()
        assert c.get("/api/campaigns").status_code == 401
        with Session(c.app.state.engine) as s:
            s.scalars(select(AdminSession)).one().expires_at = saved
            s.commit()
        assert c.get("/api/campaigns").status_code == 200
        # logout (CSRF form) ends the session: the same cookie no longer works
        assert c.post("/admin/logout", data={"csrf": "forged"}).status_code == 403
        r = c.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False)
        assert r.status_code == 303
        _set_admin_cookie(c, cookie)
        assert c.get("/api/campaigns").status_code == 401
        assert "Admin sign-in" in c.get("/admin").text
    # a new admin token ends every session (the key is derived from it)
    with make_client(sqlite_url, admin_token="another-admin-token") as c:
        _set_admin_cookie(c, cookie)
        assert c.get("/api/campaigns").status_code == 401


def test_login_rate_limit_counts_failures_only(sqlite_url: str) -> None:
    with make_client(sqlite_url, login_rate=3) as c:
        for _ in range(6):  # six successful sign-ins: never limited
            assert _login(c).status_code == 303
        csrf = c.cookies.get("prefkit_csrf")
        codes = [c.post("/admin/login", data={"token": "bad", "csrf": csrf}).status_code for _ in range(4)]  # fmt: skip
        assert codes == [401, 401, 401, 429]
        assert _login(c).status_code == 429  # locked for the window, even with the right token


# 8 -------------------------------------------------------------------------------------


def test_close_reopen_and_revoke_over_the_api(db_url: str) -> None:
    with make_client(db_url) as c:
        camp, tok, t = _setup(c, n=4)
        bob = invite(c, camp["id"], "bob")
        cid = camp["id"]
        assert _vote(c, tok, t["item_id"], "a").status_code == 200
        r = c.post(f"/api/campaigns/{cid}/close", headers=admin_headers())
        assert r.status_code == 200 and r.json()["closed"] is True
        assert _vote(c, tok, t["item_id"], "b").status_code == 409
        assert next_task(c, bob["token"])["closed"] is True
        assert c.get(f"/api/campaigns/{cid}/export", headers=admin_headers()).status_code == 200
        r = c.post(f"/api/campaigns/{cid}/reopen", headers=admin_headers())
        assert r.json()["closed"] is False and _vote(c, tok, t["item_id"], "b").status_code == 200
        anns = c.get(f"/api/campaigns/{cid}/annotators", headers=admin_headers()).json()
        assert [a["name"] for a in anns] == ["alice", "bob"] and not any(a["revoked"] for a in anns)
        r = c.post(f"/api/campaigns/{cid}/annotators/{bob['id']}/revoke", headers=admin_headers())
        assert r.status_code == 200 and r.json()["revoked"] is True
        assert c.get("/api/task/next", headers=bearer(bob["token"])).status_code == 401
        assert c.get(f"/i/{bob['token']}", follow_redirects=False).status_code == 401
        assert c.get("/api/me", headers=bearer(tok)).status_code == 200
        other = create_campaign(c, pair_rows(1), name="other")
        r = c.post(f"/api/campaigns/{other['id']}/annotators/{anns[0]['id']}/revoke", headers=admin_headers())  # fmt: skip
        assert r.status_code == 404  # an annotator of another campaign


# 9, 10, 11 ----------------------------------------------------------------------------


def test_api_rows_are_read_by_prefkit_readers(sqlite_url: str) -> None:
    """Unlabelled rows (no outcome, k responses) are the normal input; bad rows are rejects
    with row, field and reason, counted; only-bad rows are a 422."""
    rows = [
        {"prompt": "p1", "response_a": "a", "response_b": "b"},
        {"prompt": "p2", "response_a": "a"},
        {"prompt": "p3", "response_a": "a", "response_b": "b", "outcome": "maybe"},
        {"prompt": "p4", "response_a": "a", "response_b": "b", "outcome": None},
    ]
    with make_client(sqlite_url) as c:
        r = c.post("/api/campaigns", json={"name": "x", "rows": rows}, headers=admin_headers())
        assert r.status_code == 201, r.text
        imp = r.json()["import"]
        assert r.json()["items"] == 2 and imp["rows_in"] == 4 and imp["rejected"] == 2
        assert [(x["line"], x["field"]) for x in imp["rejects"]] == [(2, "response_b"), (3, "outcome")]  # fmt: skip
        r = c.post("/api/campaigns", json={"name": "y", "rows": rows[1:3]}, headers=admin_headers())  # fmt: skip
        assert r.status_code == 422 and "no item to judge" in r.json()["detail"]
        k = [{"prompt": "rank", "responses": ["x", "y", "z", "w"]}]
        r = c.post("/api/campaigns", json={"name": "k", "rows": k}, headers=admin_headers())
        assert r.status_code == 201 and r.json()["kind"] == "rankings"
        assert r.json()["questions"] == ["ranking", "rationale"]


def test_server_side_paths_only_under_import_dir(sqlite_url: str, tmp_path: Path) -> None:
    inside = tmp_path / "imports"
    inside.mkdir()
    (inside / "ok.jsonl").write_text('{"prompt": "p", "response_a": "a", "response_b": "b"}\n')
    (tmp_path / "secret.jsonl").write_text('{"prompt": "s", "response_a": "a", "response_b": "b"}\n')  # fmt: skip
    (inside / "link.jsonl").symlink_to(tmp_path / "secret.jsonl")

    def post(c: Any, path: str) -> Any:
        return c.post("/api/campaigns", json={"name": "x", "path": path}, headers=admin_headers())

    with make_client(sqlite_url) as c:  # no --import-dir: server-side paths are off
        assert post(c, str(inside / "ok.jsonl")).status_code == 403
    with make_client(sqlite_url, import_dir=inside) as c:
        assert post(c, "ok.jsonl").status_code == 201
        assert post(c, str(inside / "ok.jsonl")).status_code == 201  # absolute, but inside
        for escape in ("../secret.jsonl", str(tmp_path / "secret.jsonl"), "link.jsonl", "/etc/passwd"):  # fmt: skip
            r = post(c, escape)
            assert r.status_code == 403 and "secret" not in r.text, escape


@pytest.mark.slow
def test_an_unexpected_error_is_a_plain_500_with_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (here: statistics that raise) answers 500 with the security headers and a
    detail that says nothing about the internals; the connection stays usable."""
    import httpx

    from prefkit.serve import store

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("secret internal detail")

    with LiveServer(f"sqlite:///{tmp_path / 'e.db'}") as server:
        with httpx.Client(base_url=server.url, headers=admin_headers()) as c:
            cid = c.post("/api/campaigns", json={"name": "x", "rows": pair_rows(1)}).json()["id"]
            monkeypatch.setattr(store, "stats", broken)
            r = c.get(f"/api/campaigns/{cid}/stats")
            assert r.status_code == 500 and r.json() == {"detail": "internal server error"}
            assert _headers_ok(r) and "secret" not in r.text
            assert c.get("/api/health").status_code == 200  # same connection, still open
