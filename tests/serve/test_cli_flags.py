"""`prefkit serve` flags end to end: `serve create --questions/--guidelines`, `serve invite
--base-url/--expires-in`, and `prefkit serve --host/--port/--admin-token/--base-url/--campaign`
in a real process, all checked through a real HTTP server on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from prefkit._cli import CLIError
from prefkit.cli import app
from prefkit.io.canonical import save
from prefkit.schema import Kind, from_rows
from tests.serve.conftest import LiveServer, pair_rows

runner = CliRunner()


def _pairs_file(tmp_path: Path, n: int = 5) -> Path:
    path = tmp_path / "pairs.parquet"
    save(from_rows([{**r, "outcome": "tie"} for r in pair_rows(n)], Kind.COMPARISONS), path)
    return path


def _json(*args: str) -> dict[str, Any]:
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, (r.output, r.exception)
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def test_create_questions_and_guidelines_reach_the_annotator(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    guide = tmp_path / "guide.md"
    guide.write_text("# How to judge\n\n**Prefer the correct answer**, then the shorter one.\n")
    created = _json(
        "serve", "create", str(_pairs_file(tmp_path)), "--db", db,
        "--questions", "pairwise,rationale", "--guidelines", str(guide), "--json",
    )  # fmt: skip
    inv = _json("serve", "invite", str(created["campaign"]), "ann", "--db", db, "--json")
    with LiveServer(db) as srv, httpx.Client(base_url=srv.url) as c:
        me = c.get("/api/me", headers={"Authorization": f"Bearer {inv['token']}"})
        assert me.status_code == 200
        assert me.json()["campaign"]["questions"] == ["pairwise", "rationale"]
        page = c.get(f"/i/{inv['token']}", follow_redirects=True)  # invite link -> /annotate
        assert page.status_code == 200 and str(page.url).endswith("/annotate")
        assert "<strong>Prefer the correct answer</strong>" in page.text
        assert "<h1>How to judge</h1>" in page.text
    # the default questions, and an unknown question type is a usage error: one line, exit 2
    default = _json("serve", "create", str(_pairs_file(tmp_path)), "--db", db, "--json")
    inv2 = _json("serve", "invite", str(default["campaign"]), "b", "--db", db, "--json")
    with LiveServer(db) as srv, httpx.Client(base_url=srv.url) as c:
        me = c.get("/api/me", headers={"Authorization": f"Bearer {inv2['token']}"}).json()
        assert me["campaign"]["questions"] == ["pairwise", "strength", "rationale"]
    r = runner.invoke(app, ["serve", "create", str(_pairs_file(tmp_path)), "--db", db, "--questions", "pairwise,telepathy"])  # fmt: skip
    assert isinstance(r.exception, CLIError) and r.exception.code == 2
    assert "telepathy" in str(r.exception)


def test_invite_base_url_and_expires_in(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    created = _json("serve", "create", str(_pairs_file(tmp_path)), "--db", db, "--json")
    cid = str(created["campaign"])
    short = _json(
        "serve", "invite", cid, "short", "--db", db,
        "--base-url", "https://annotate.example.org/", "--expires-in", "3", "--json",
    )  # fmt: skip
    assert short["invite_url"] == f"https://annotate.example.org/i/{short['token']}"
    forever = _json("serve", "invite", cid, "forever", "--db", db, "--json")
    assert forever["invite_url"] == f"http://127.0.0.1:8000/i/{forever['token']}"  # default
    with LiveServer(db) as srv, httpx.Client(base_url=srv.url) as c:
        t0 = time.monotonic()

        def me(tok: str) -> int:
            return c.get("/api/me", headers={"Authorization": f"Bearer {tok}"}).status_code

        assert me(short["token"]) == 200 and me(forever["token"]) == 200
        time.sleep(max(0.0, 3.5 - (time.monotonic() - t0)))
        assert me(short["token"]) == 401  # expired (the auth cache re-checks expiry)
        assert me(forever["token"]) == 200
        assert c.get(f"/i/{short['token']}").status_code == 401


@pytest.mark.slow
def test_serve_host_port_token_base_url_campaign_in_a_real_process(tmp_path: Path) -> None:
    """`prefkit serve` as a user runs it: listens on --host/--port only, takes the admin
    token from --admin-token (never printed), builds invite links on --base-url, and serves
    the campaign made from --campaign FILE."""
    from prefkit.serve.localpg import free_port

    src = _pairs_file(tmp_path, n=7)
    port = free_port()
    host = "127.0.0.2"  # another loopback address: --host must decide where it listens
    db = f"sqlite:///{tmp_path / 's.db'}"
    code = "from prefkit.cli import main; main()"
    cmd = [sys.executable, "-c", code, "serve", "--db", db, "--host", host, "--port", str(port)]
    cmd += ["--admin-token", "adm-secret-1", "--base-url", "https://votes.example.org"]
    cmd += ["--campaign", str(src)]
    env = {k: v for k, v in os.environ.items() if k != "PREFKIT_ADMIN_TOKEN"}
    proc = subprocess.Popen(cmd, env={**env, "COLUMNS": "200"}, stderr=subprocess.PIPE, text=True)
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        with pytest.raises(httpx.ConnectError):  # not on another loopback address
            httpx.get(f"http://127.0.0.1:{port}/api/health")
        camps = httpx.get(f"{url}/api/campaigns", headers={"Authorization": "Bearer adm-secret-1"})
        assert camps.status_code == 200
        assert [(c["name"], c["items"]) for c in camps.json()] == [("pairs", 7)]
        wrong = httpx.get(f"{url}/api/campaigns", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    text = " ".join(err.split())
    link = re.search(r"invite link (https://votes\.example\.org/i/(\S+))", text)
    assert link, err
    assert "admin: https://votes.example.org/admin" in text
    assert "adm-secret-1" not in err  # a given token is not echoed
    # the printed invite token belongs to the campaign (checked on the same database)
    with LiveServer(db, admin_token="adm-secret-1") as srv:
        me = httpx.get(f"{srv.url}/api/me", headers={"Authorization": f"Bearer {link.group(2)}"})
        assert me.status_code == 200 and me.json()["campaign"]["name"] == "pairs"
