"""`prefkit serve` and its sub-commands; campaign input through prefkit's readers; exports
read back by `prefkit inspect`; migrations."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.schema import validate
from tests.serve.conftest import bearer, make_client, next_task, pair_rows

runner = CliRunner()


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _pairs_file(tmp_path: Path, n: int = 4) -> Path:
    """Unlabelled pairs, as users start a campaign: prompt, response_a, response_b only."""
    rows = [{k: r[k] for k in ("prompt", "response_a", "response_b")} for r in pair_rows(n)]
    return _jsonl(tmp_path / "pairs.jsonl", rows)


SERVE = [sys.executable, "-m", "prefkit.serve"]  # = `prefkit serve ...` (prefkit.cli.main)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`prefkit serve ARGS` in its own process (what a user sees: exit code, stderr)."""
    assert args[0] == "serve"
    return subprocess.run([*SERVE, *args[1:]], capture_output=True, text=True, timeout=120)


def _last_json(out: str) -> dict[str, Any]:
    got: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return got


def _vote(c: Any, tok: str, outcome: str, **kw: Any) -> dict[str, Any]:
    t = next_task(c, tok)
    body = {"idempotency_key": uuid.uuid4().hex, "item_id": t["item_id"], "outcome": outcome, **kw}
    r = c.post("/api/votes", json=body, headers=bearer(tok))
    assert r.status_code == 200, r.text
    return t


def test_unlabelled_pairs_create_invite_vote_export_inspect(tmp_path: Path) -> None:
    """Issue 11: rows {prompt, response_a, response_b} are the normal input. Every export
    format reads back through `prefkit inspect` with the counts of the database."""
    db = f"sqlite:///{tmp_path / 'c.db'}"
    r = runner.invoke(app, ["serve", "create", str(_pairs_file(tmp_path)), "--db", db, "--name", "cli", "--overlap", "2", "--policy", "round_robin", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    created = _last_json(r.stdout)
    assert created["items"] == 4 and created["rejected"] == 0 and created["kind"] == "comparisons"
    assert created["reader"] == "unlabelled"
    r = runner.invoke(app, ["serve", "invite", str(created["campaign"]), "alice", "--db", db, "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    inv = _last_json(r.stdout)
    assert inv["invite_url"].endswith("/i/" + inv["token"])
    answers = ["a", "both_bad", "b", "tie"]
    with make_client(db) as c:
        assert c.get(f"/api/campaigns/{created['campaign']}", headers={"Authorization": "Bearer admin-secret-token"}).json()["policy"] == "round_robin"  # fmt: skip
        for outcome in answers:
            _vote(c, inv["token"], outcome)
    for fmt, n_rows in (("parquet", 4), ("jsonl", 4), ("trl", 2)):
        out = tmp_path / f"votes-{fmt}.{'parquet' if fmt == 'parquet' else 'jsonl'}"
        r = runner.invoke(app, ["serve", "export", str(out), "--campaign", str(created["campaign"]), "--db", db, "--format", fmt, "--json"])  # fmt: skip
        assert r.exit_code == 0, r.output
        assert _last_json(r.stdout)["rows"] == n_rows
        res = runner.invoke(app, ["inspect", str(out), "--json"])
        assert res.exit_code == 0, res.output
        summary = _last_json(res.stdout)
        assert summary["rows"] == n_rows and summary["rejected"] == 0, summary
        if fmt != "trl":
            assert summary["outcomes"] == {"a": 1, "b": 1, "tie": 1, "both_bad": 1}, summary
    table = pq.read_table(tmp_path / "votes-parquet.parquet")
    validate(table)
    assert sorted(table.column("outcome").to_pylist()) == sorted(answers)
    assert set(table.column("shown_first").to_pylist()) <= {"a", "b"}
    r = runner.invoke(app, ["serve", "export", str(tmp_path / "x.parquet"), "--campaign", "99", "--db", db])  # fmt: skip
    assert r.exit_code == 1 and not (tmp_path / "x.parquet").exists()


def test_import_rejects_are_counted_and_written(tmp_path: Path) -> None:
    """Issue 9: a row missing response_b, an unknown outcome, wrong types and broken JSON are
    rejects with line, field and reason (rejects file, counts); the rest is the campaign."""
    good = {"prompt": "p", "response_a": "x", "response_b": "y"}
    rows: list[Any] = [
        good,
        {"prompt": "p2", "response_a": "x"},  # 2: no response_b
        {**good, "outcome": "maybe"},  # 3
        {**good, "response_a": 42},  # 4: a number is not a response
        {**good, "prompt": {"nested": "dict"}},  # 5
        {**good, "meta": ["a", "list"]},  # 6
        {**good, "outcome": None, "id": "kept"},  # 7: null outcome = unlabelled
        {"prompt": "k", "responses": ["r1", "r2", "r3"], "models": ["m1", "m2", None]},  # 8
    ]
    path = _jsonl(tmp_path / "mixed.jsonl", rows)
    with path.open("a") as fh:
        fh.write('{"prompt": "broken", \n')  # 9: invalid JSON
    db = f"sqlite:///{tmp_path / 'c.db'}"
    rej = tmp_path / "out" / "rejects.jsonl"
    rej.parent.mkdir()
    r = runner.invoke(app, ["serve", "create", str(path), "--db", db, "--rejects", str(rej), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    s = _last_json(r.stdout)
    reasons = [json.loads(x) for x in rej.read_text().splitlines()]
    assert [(x["line"], x["field"]) for x in reasons] == [
        (2, "response_b"), (3, "outcome"), (4, "response_a"), (5, "prompt"), (6, "meta"), (9, None)
    ]  # fmt: skip
    assert s["rows_in"] == 9 and s["rejected"] == 6 and s["items"] == 3 and s["rejects"] == str(rej)
    assert s["kind"] == "rankings"  # one item has three responses
    # the admin API shows the same import summary
    with make_client(db) as c:
        got = c.get(f"/api/campaigns/{s['campaign']}", headers={"Authorization": "Bearer admin-secret-token"}).json()  # fmt: skip
        assert got["import"]["rejected"] == 6 and got["import"]["rows_in"] == 9
        assert got["items"] == 3


def test_create_flags_questions_aspects_gold_guidelines(tmp_path: Path) -> None:
    """`serve create --questions --aspects --gold-from-outcome --guidelines`: each changes what
    annotators are asked and what the statistics count."""
    rows = [{"prompt": f"q{i}", "response_a": f"A{i}", "response_b": f"B{i}", "outcome": "a"} for i in range(3)]  # fmt: skip
    path = _jsonl(tmp_path / "gold.jsonl", rows)
    guide = tmp_path / "guide.md"
    guide.write_text("# Judge **carefully**", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'c.db'}"
    r = runner.invoke(app, ["serve", "create", str(path), "--db", db, "--questions", "pairwise,thumbs,likert", "--aspects", "helpfulness,honesty", "--gold-from-outcome", "--guidelines", str(guide), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    cid = _last_json(r.stdout)["campaign"]
    with make_client(db) as c:
        tok = runner.invoke(app, ["serve", "invite", str(cid), "al", "--db", db, "--json"])
        token = _last_json(tok.stdout)["token"]
        c.get(f"/i/{token}")
        page = c.get("/annotate").text
        assert "<strong>carefully</strong>" in page  # the guidelines, rendered
        t = next_task(c, token)
        assert t["questions"] == ["pairwise", "thumbs", "likert"] and t["aspects"] == ["helpfulness", "honesty"]  # fmt: skip
        body = {"idempotency_key": uuid.uuid4().hex, "item_id": t["item_id"], "outcome": "a"}
        # strength is not asked: refused with the field named
        r2 = c.post("/api/votes", json={**body, "strength": 0.9}, headers=bearer(token))
        assert r2.status_code == 422 and r2.json()["detail"][0]["loc"] == ["body", "strength"]
        ok = {**body, "thumbs": {"a": True}, "likert": {"honesty:b": 2}}
        assert c.post("/api/votes", json=ok, headers=bearer(token)).status_code == 200
        bad = {**body, "idempotency_key": uuid.uuid4().hex, "likert": {"style:a": 3}}
        assert c.post("/api/votes", json=bad, headers=bearer(token)).status_code == 422
        _vote(c, token, "b")
        st = c.get(f"/api/campaigns/{cid}/stats", headers={"Authorization": "Bearer admin-secret-token"}).json()  # fmt: skip
        # --gold-from-outcome: every item is gold (outcome a); one right, one wrong
        assert st["annotators"][0]["gold_seen"] == 2 and st["annotators"][0]["gold_accuracy"] == 0.5  # fmt: skip
    out = tmp_path / "v.jsonl"
    assert (
        runner.invoke(app, ["serve", "export", str(out), "-c", str(cid), "--db", db]).exit_code == 0
    )
    first = json.loads(out.read_text().splitlines()[0])
    # meta values are JSON, as docs/formats.md says (not Python's str of a dict)
    assert json.loads(first["meta"]["thumbs"]) == {"a": True}
    assert json.loads(first["meta"]["likert"]) == {"honesty:b": 2}


def test_bad_input_is_one_line_error_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    out = tmp_path / "out.parquet"
    p = _cli("serve", "export", str(out), "--campaign", "1", "--db", f"sqlite:///{missing}")
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith("error:") and "does not exist" in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not missing.exists() and not out.exists()
    p = _cli("serve", "invite", "1", "al", "--db", f"sqlite:///{missing}")
    assert p.returncode == 1 and "does not exist" in p.stderr and not missing.exists()
    db = f"sqlite:///{tmp_path / 'c.db'}"
    p = _cli("serve", "create", str(_pairs_file(tmp_path)), "--db", db, "--policy", "random")
    assert p.returncode == 2 and "unknown policy" in p.stderr and "Traceback" not in p.stderr
    only_bad = _jsonl(tmp_path / "bad.jsonl", [{"prompt": "p", "response_a": "x", "outcome": "maybe"}])  # fmt: skip
    p = _cli("serve", "create", str(only_bad), "--db", db)
    assert p.returncode == 1 and "no item to judge" in p.stderr and "line 1" in p.stderr


def test_close_reopen_revoke_commands(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    r = runner.invoke(app, ["serve", "create", str(_pairs_file(tmp_path)), "--db", db, "--json"])  # fmt: skip
    cid = _last_json(r.stdout)["campaign"]
    inv = [_last_json(runner.invoke(app, ["serve", "invite", str(cid), n, "--db", db, "--json"]).stdout) for n in ("al", "bo")]  # fmt: skip
    with make_client(db) as c:
        t = _vote(c, inv[0]["token"], "a")
        r = runner.invoke(app, ["serve", "close", str(cid), "--db", db, "--json"])
        assert r.exit_code == 0 and _last_json(r.stdout)["closed"] is True
        t2 = c.get("/api/tasks/1", headers=bearer(inv[0]["token"])).json()
        body = {"idempotency_key": uuid.uuid4().hex, "item_id": t2["item_id"], "outcome": "b"}
        assert c.post("/api/votes", json=body, headers=bearer(inv[0]["token"])).status_code == 409
        assert next_task(c, inv[1]["token"]) == {"done": True, "closed": True, "progress": {"done": 0, "total": 4}}  # fmt: skip
        r = runner.invoke(app, ["serve", "reopen", str(cid), "--db", db, "--json"])
        assert r.exit_code == 0 and _last_json(r.stdout)["closed"] is False
        assert c.post("/api/votes", json=body, headers=bearer(inv[0]["token"])).status_code == 200
        assert t["item_id"] == t2["item_id"]
        # revocation: the very next request of the revoked annotator is refused
        assert c.get("/api/me", headers=bearer(inv[1]["token"])).status_code == 200
        r = runner.invoke(app, ["serve", "revoke", str(inv[1]["annotator"]), "--db", db, "--json"])  # fmt: skip
        assert r.exit_code == 0 and _last_json(r.stdout)["revoked"] is True
        assert c.get("/api/me", headers=bearer(inv[1]["token"])).status_code == 401
        assert c.get("/api/me", headers=bearer(inv[0]["token"])).status_code == 200
    assert runner.invoke(app, ["serve", "revoke", "999", "--db", db]).exit_code == 1
    assert runner.invoke(app, ["serve", "close", "999", "--db", db]).exit_code == 1


def test_invite_flags_expires_in_and_base_url(tmp_path: Path) -> None:
    """`serve invite --expires-in --base-url --json`: the link names the public URL, the
    token expires when asked (and a bad expiry is a usage error)."""
    import datetime as dt

    db = f"sqlite:///{tmp_path / 'c.db'}"
    cid = _last_json(runner.invoke(app, ["serve", "create", str(_pairs_file(tmp_path)), "--db", db, "--json"]).stdout)["campaign"]  # fmt: skip
    r = runner.invoke(app, ["serve", "invite", str(cid), "al", "--db", db, "--base-url", "https://label.example.org/", "--expires-in", "3600", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    inv = _last_json(r.stdout)
    assert inv["invite_url"] == f"https://label.example.org/i/{inv['token']}"
    with make_client(db) as c:
        (a,) = c.get(f"/api/campaigns/{cid}/annotators", headers={"Authorization": "Bearer admin-secret-token"}).json()  # fmt: skip
        left = dt.datetime.fromisoformat(a["expires_at"]) - dt.datetime.now(dt.UTC).replace(tzinfo=None)  # fmt: skip
        assert dt.timedelta(minutes=55) < left <= dt.timedelta(hours=1)
        assert c.get("/api/me", headers=bearer(inv["token"])).status_code == 200
    p = _cli("serve", "invite", str(cid), "bo", "--db", db, "--expires-in", "-5")
    assert p.returncode == 2 and "--expires-in" in p.stderr


def _old_database(engine: Any) -> dict[str, int]:
    """A database at revision 0002 with votes stored the old way (strength = how much better,
    for whichever side won)."""
    from sqlalchemy import text

    from prefkit.serve.migrations import upgrade

    upgrade(engine, "0002")
    now = "2026-01-01 00:00:00"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO campaigns (id, name, kind, questions, guidelines, overlap, policy, aspects, arena, created_at) VALUES (1, 'old', 'comparisons', '[\"pairwise\", \"strength\"]', '', 3, 'least_judged', '[\"helpfulness\"]', 0, :t)"), {"t": now})  # fmt: skip
        conn.execute(text("INSERT INTO items (id, campaign_id, position, external_id, prompt, responses, models, meta) VALUES (1, 1, 0, 'p0', '[]', :r, '[null, null]', '{}')"), {"r": json.dumps([[{"role": "assistant", "content": "A"}], [{"role": "assistant", "content": "B"}]])})  # fmt: skip
        for aid, (outcome, strength) in enumerate([("b", 1.0), ("b", 1.0), ("b", 1.0), ("a", 0.34), ("tie", 0.5), ("both_bad", None)], start=1):  # fmt: skip
            conn.execute(text("INSERT INTO annotators (id, campaign_id, name, token_hash, created_at, revoked) VALUES (:a, 1, :n, :h, :t, 0)"), {"a": aid, "n": f"an{aid}", "h": f"{aid:064d}", "t": now})  # fmt: skip
            conn.execute(text("INSERT INTO assignments (annotator_id, item_id, seq, shown_first, assigned_at) VALUES (:a, 1, 1, 'a', :t)"), {"a": aid, "t": now})  # fmt: skip
            conn.execute(text("INSERT INTO votes (idempotency_key, campaign_id, annotator_id, item_id, revision, outcome, strength, answer, shown_first, created_at, app_version) VALUES (:k, 1, :a, 1, 1, :o, :s, '{}', 'a', :t, 'prefkit 0')"), {"k": f"key-{aid}-xxxx", "a": aid, "o": outcome, "s": strength, "t": now})  # fmt: skip
    return {"votes": 6}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=[pytest.mark.slow, pytest.mark.postgres])])  # fmt: skip
def test_migration_0003_on_an_old_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:  # fmt: skip
    """Issue 1 at the source: 0003 turns stored "how much better" into canonical directional
    strength (kept as legacy_strength), keys become per annotator; downgrade restores."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from prefkit.serve.migrations import downgrade, upgrade
    from prefkit.serve.models import Base, make_engine

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        from prefkit.serve.localpg import new_database

        url = new_database(request.getfixturevalue("pg_server"))
    engine = make_engine(url)
    _old_database(engine)
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT outcome, strength, answer FROM votes ORDER BY id")).all()
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.execute(text("select version_num from alembic_version")).scalar() == "0003"
    got = [(o, s, json.loads(a) if isinstance(a, str) else a) for o, s, a in rows]
    assert [(o, s) for o, s, _ in got] == [
        ("b", 0.0), ("b", 0.0), ("b", 0.0), ("a", 0.5 + 0.34 / 2), ("tie", 0.5), ("both_bad", None)
    ]  # fmt: skip
    assert [a.get("legacy_strength") for _, _, a in got] == [1.0, 1.0, 1.0, 0.34, 0.5, None]
    # per-annotator keys: annotator 2 may use annotator 1's key; annotator 1 may not reuse it
    ins = "INSERT INTO votes (idempotency_key, campaign_id, annotator_id, item_id, revision, outcome, answer, shown_first, created_at, app_version) VALUES ('key-1-xxxx', 1, :a, 1, 2, 'a', '{}', 'a', '2026-01-01 00:00:00', 'x')"  # fmt: skip
    with engine.begin() as conn:
        conn.execute(text(ins), {"a": 2})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(ins), {"a": 1})
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM votes WHERE revision = 2"))
    downgrade(engine, "0002")
    with engine.connect() as conn:
        back = conn.execute(text("SELECT strength FROM votes ORDER BY id")).scalars().all()
    assert back == [1.0, 1.0, 1.0, 0.34, 0.5, None]
    upgrade(engine)
    engine.dispose()


def test_migrations_match_models_and_are_idempotent(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from prefkit.serve.migrations import upgrade
    from prefkit.serve.models import Base, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    upgrade(engine)  # second run: nothing to do
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        assert conn.exec_driver_sql("select version_num from alembic_version").scalar() == "0003"
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "server exited")
        try:
            if httpx.get(f"{url}/api/health").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


@pytest.mark.slow
def test_serve_without_flags_creates_prefkit_db(tmp_path: Path) -> None:
    from prefkit.serve.localpg import free_port

    port = free_port()
    env = {**os.environ, "PREFKIT_ADMIN_TOKEN": "tok-for-test"}
    proc = subprocess.Popen(
        [*SERVE, "--port", str(port), "--demo"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait(f"http://127.0.0.1:{port}", proc)
        r = httpx.get(
            f"http://127.0.0.1:{port}/api/campaigns",
            headers={"Authorization": "Bearer tok-for-test"},
        )
        assert r.status_code == 200 and r.json()[0]["name"] == "demo"
        assert r.json()[0]["items"] > 0
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert (tmp_path / "prefkit.db").exists()
    assert "/i/" in err.decode()  # the demo invite link is printed
    with sqlite3.connect(tmp_path / "prefkit.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.slow
def test_serve_flags_in_a_real_process(tmp_path: Path) -> None:
    """`prefkit serve --campaign FILE --import-dir --max-body --max-upload --base-url
    --secure-cookies --forwarded-allow-ips --session-ttl --host --port --db --admin-token`,
    each checked by its effect on a real server process."""
    from prefkit.serve.localpg import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    imports = tmp_path / "imports"
    imports.mkdir()
    _pairs_file(imports, 3)
    (tmp_path / "secret.jsonl").write_text('{"prompt": "s", "response_a": "x", "response_b": "y"}\n')  # fmt: skip
    campaign = _pairs_file(tmp_path, 5)
    cmd = ["--db", f"sqlite:///{tmp_path / 's.db'}", "--host", "127.0.0.1", "--port", str(port),
           "--admin-token", "tok-for-test", "--campaign", str(campaign), "--import-dir", str(imports),
           "--max-body", "8KiB", "--max-upload", "64KiB", "--base-url", "https://label.example.org",
           "--forwarded-allow-ips", "127.0.0.1", "--session-ttl", "120"]  # fmt: skip
    proc = subprocess.Popen([*SERVE, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    admin = {"Authorization": "Bearer tok-for-test"}
    try:
        _wait(url, proc)
        with httpx.Client(base_url=url, headers=admin) as c:
            camps = c.get("/api/campaigns").json()
            assert [(x["name"], x["items"]) for x in camps] == [("pairs", 5)]  # --campaign FILE
            ok = c.post("/api/campaigns", json={"name": "in", "path": "pairs.jsonl"})
            assert ok.status_code == 201 and ok.json()["items"] == 3  # inside --import-dir
            out = c.post("/api/campaigns", json={"name": "out", "path": "../secret.jsonl"})
            assert out.status_code == 403  # outside it
            big = c.post("/api/campaigns/1/annotators", json={"name": "x" * 9000})
            assert big.status_code == 413  # --max-body 8KiB
            rows = [{"prompt": "p" * 200, "response_a": "a", "response_b": "b"}] * 400
            assert c.post("/api/campaigns", json={"name": "big", "rows": rows}).status_code == 413  # fmt: skip
            small = c.post("/api/campaigns", json={"name": "ok", "rows": rows[:100]})
            assert small.status_code == 201  # --max-upload 64KiB lets 25 KB through
            inv = c.post("/api/campaigns/1/annotators", json={"name": "al"}).json()
            assert inv["invite_url"].startswith("https://label.example.org/i/")  # --base-url
        with httpx.Client(base_url=url) as c:
            # https base URL: cookies are Secure; session cookie expires with --session-ttl
            r = c.get(inv["invite_path"], follow_redirects=False)
            assert all("secure" in h.lower() for h in r.headers.get_list("set-cookie"))
            csrf = c.get("/admin").cookies["prefkit_csrf"]  # Secure: the client keeps it for https
            jar = {"Cookie": f"prefkit_csrf={csrf}"}
            r = c.post("/admin/login", data={"token": "tok-for-test", "csrf": csrf}, headers=jar, follow_redirects=False)  # fmt: skip
            assert r.status_code == 303, r.text
            cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("prefkit_admin="))  # fmt: skip
            assert "Max-Age=120" in cookie and "Secure" in cookie and "HttpOnly" in cookie
            # --forwarded-allow-ips 127.0.0.1: the proxy's X-Forwarded-For names the client,
            # so failures of one client do not lock out another
            for _ in range(10):
                c.post("/admin/login", data={"token": "bad", "csrf": csrf}, headers={**jar, "X-Forwarded-For": "10.0.0.1"})  # fmt: skip
            r1 = c.post("/admin/login", data={"token": "bad", "csrf": csrf}, headers={**jar, "X-Forwarded-For": "10.0.0.1"})  # fmt: skip
            r2 = c.post("/admin/login", data={"token": "bad", "csrf": csrf}, headers={**jar, "X-Forwarded-For": "10.0.0.2"})  # fmt: skip
            assert (r1.status_code, r2.status_code) == (429, 401)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


@pytest.mark.slow
def test_secure_cookie_flags_override_the_base_url(tmp_path: Path) -> None:
    """`--no-secure-cookies` with an https base URL, and `--secure-cookies` with an http one."""
    from prefkit.serve.localpg import free_port

    for flag, base, secure in (("--no-secure-cookies", "https://x.example", False), ("--secure-cookies", "http://x.example", True)):  # fmt: skip
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = ["--db", f"sqlite:///{tmp_path / (flag + '.db')}", "--port", str(port), "--admin-token", "t0k3n-for-test", "--base-url", base, flag]  # fmt: skip
        proc = subprocess.Popen([*SERVE, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        try:
            _wait(url, proc)
            r = httpx.get(url + "/admin")
            assert ("secure" in r.headers["set-cookie"].lower()) is secure, (flag, r.headers)
            if not secure:
                # no --forwarded-allow-ips: X-Forwarded-For is ignored, so a client cannot
                # get a fresh login budget by naming another address
                csrf = r.cookies["prefkit_csrf"]
                jar = {"Cookie": f"prefkit_csrf={csrf}"}
                codes = [
                    httpx.post(
                        url + "/admin/login",
                        data={"token": "bad", "csrf": csrf},
                        headers={**jar, "X-Forwarded-For": f"10.0.0.{i}"},
                    ).status_code  # fmt: skip
                    for i in range(11)
                ]
                assert codes == [401] * 10 + [429]
        finally:
            proc.terminate()
            proc.communicate(timeout=20)
