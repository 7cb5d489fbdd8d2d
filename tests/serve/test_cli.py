"""`prefkit serve` and its sub-commands; migrations."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefkit.cli import app
from prefkit.io.canonical import save
from prefkit.schema import Kind, from_rows, validate
from tests.serve.conftest import pair_rows

runner = CliRunner()


def _pairs_file(tmp_path: Path, n: int = 4) -> Path:
    path = tmp_path / "pairs.parquet"
    save(from_rows([{**r, "outcome": "tie"} for r in pair_rows(n)], Kind.COMPARISONS), path)
    return path


def test_create_invite_vote_export(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    r = runner.invoke(app, ["serve", "create", str(_pairs_file(tmp_path)), "--db", db, "--name", "cli", "--overlap", "2", "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    created = json.loads(r.stdout.strip().splitlines()[-1])
    assert created["items"] == 4
    r = runner.invoke(app, ["serve", "invite", str(created["campaign"]), "alice", "--db", db, "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    inv = json.loads(r.stdout.strip().splitlines()[-1])
    assert inv["invite_url"].endswith("/i/" + inv["token"])
    # vote through the app on the same database, then export with the CLI
    from tests.serve.conftest import make_client

    with make_client(db) as c:
        h = {"Authorization": f"Bearer {inv['token']}"}
        for outcome in ("a", "both_bad"):
            t = c.get("/api/task/next", headers=h).json()
            body = {"idempotency_key": os.urandom(8).hex(), "item_id": t["item_id"], "outcome": outcome}  # fmt: skip
            assert c.post("/api/votes", json=body, headers=h).status_code == 200
    out = tmp_path / "votes.parquet"
    r = runner.invoke(app, ["serve", "export", str(out), "--campaign", str(created["campaign"]), "--db", db])  # fmt: skip
    assert r.exit_code == 0, r.output
    table = pq.read_table(out)
    validate(table)
    assert sorted(table.column("outcome").to_pylist()) == ["a", "both_bad"]
    assert set(table.column("shown_first").to_pylist()) <= {"a", "b"}
    trl = tmp_path / "votes.jsonl"
    r = runner.invoke(app, ["serve", "export", str(trl), "-c", "1", "--db", db, "--format", "trl"])  # fmt: skip
    assert r.exit_code == 0 and len(trl.read_text().splitlines()) == 1
    r = runner.invoke(app, ["serve", "export", str(out), "--campaign", "99", "--db", db])
    assert r.exit_code == 1


def test_bad_campaign_file_is_one_line_error(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    r = runner.invoke(app, ["serve", "create", str(_pairs_file(tmp_path)), "--db", db, "--policy", "random"])  # fmt: skip
    assert r.exit_code == 1 and "unknown policy" in str(r.exception)


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
        assert conn.exec_driver_sql("select version_num from alembic_version").scalar() == "0002"
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


@pytest.mark.slow
def test_serve_without_flags_creates_prefkit_db(tmp_path: Path) -> None:
    from prefkit.serve.localpg import free_port

    port = free_port()
    env = {**os.environ, "PREFKIT_ADMIN_TOKEN": "tok-for-test"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefkit.serve", "--port", str(port), "--demo"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
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
