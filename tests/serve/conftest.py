"""Fixtures for the web app: databases (SQLite file, and a REAL PostgreSQL 15 started on
loopback for the session), an in-process client, and a real uvicorn server in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ADMIN = "admin-secret-token"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A real PostgreSQL 15 on 127.0.0.1 for the session; yields its server URL."""
    from prefkit.serve.localpg import PostgresUnavailable, local_postgres

    try:
        cm = local_postgres()
        url = cm.__enter__()
    except PostgresUnavailable as e:
        pytest.fail(f"PostgreSQL tests cannot start a server: {e}")
    try:
        yield url
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=[pytest.mark.slow, pytest.mark.postgres]),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'prefkit.db'}"
    from prefkit.serve.localpg import new_database

    return new_database(request.getfixturevalue("pg_server"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'prefkit.db'}"


def make_client(db_url: str, **kw: Any) -> Any:
    from fastapi.testclient import TestClient

    from prefkit.serve.app import create_app
    from prefkit.serve.settings import Settings

    app = create_app(Settings(db_url=db_url, **{"admin_token": ADMIN, **kw}))
    return TestClient(app)


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


def pair_rows(n: int = 6, arena: bool = True) -> list[dict[str, Any]]:
    models = ["m-alpha", "m-beta", "m-gamma"]
    rows = []
    for i in range(n):
        rows.append(
            {
                "prompt": f"Question {i}: what is {i} + {i}?",
                "response_a": f"The answer is **{2 * i}**.",
                "response_b": f"I think it is {2 * i + 1}.",
                "model_a": models[i % 3] if arena else None,
                "model_b": models[(i + 1) % 3] if arena else None,
                "meta": {"pair_id": f"p{i}"},
            }
        )
    return rows


def create_campaign(client: Any, rows: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    body = {"name": kw.pop("name", "test"), "rows": rows, **kw}
    r = client.post("/api/campaigns", json=body, headers=admin_headers())
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def next_task(client: Any, tok: str) -> dict[str, Any]:
    r = client.get("/api/task/next", headers=bearer(tok))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def items_table(rows: list[dict[str, Any]]) -> Any:
    """An items table (what campaigns are made of) from unlabelled rows, through the reader."""
    from prefkit.serve.items import rows_to_items

    items = rows_to_items(rows)
    assert not items.rejects, items.rejects
    return items.table


def invite(client: Any, cid: int, name: str, **kw: Any) -> dict[str, Any]:
    r = client.post(
        f"/api/campaigns/{cid}/annotators", json={"name": name, **kw}, headers=admin_headers()
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


class LiveServer:
    """uvicorn serving `create_app(settings)` in a thread on 127.0.0.1:<free port>."""

    def __init__(self, db_url: str, admin_token: str = ADMIN, **settings: Any) -> None:
        import uvicorn

        from prefkit.serve.app import create_app
        from prefkit.serve.localpg import free_port
        from prefkit.serve.settings import Settings

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(
            Settings(
                db_url=db_url, admin_token=admin_token, base_url=self.url, pool_size=20, **settings
            )
        )
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
            proxy_headers=False,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.engine.dispose()
