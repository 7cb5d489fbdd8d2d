"""A throwaway PostgreSQL server on loopback (tests, benchmarks, trying the app): `initdb` and
`pg_ctl` from Debian's PostgreSQL run as the `postgres` user on a temporary directory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, timeout=120
    )


@contextmanager
def local_postgres(bin_dir: Path = PG_BIN) -> Iterator[str]:
    """Start PostgreSQL on 127.0.0.1:<free port> (unix socket in the temp dir, trust auth);
    yield its server URL `postgresql+psycopg://postgres@127.0.0.1:PORT`; stop and delete after."""
    if shutil.which("runuser") is None or not (bin_dir / "initdb").exists():
        raise PostgresUnavailable(
            f"needs `runuser` and {bin_dir}/initdb and pg_ctl: install Debian's postgresql "
            "(`make install` runs scripts/system-deps.sh)"
        )
    root = Path(tempfile.mkdtemp(prefix="prefkit-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    for p in (root, sock):
        shutil.chown(p, "postgres", "postgres")
    os.chmod(root, 0o700)
    try:
        r = _as_postgres(
            str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        if r.returncode:
            raise PostgresUnavailable(f"initdb failed: {r.stderr[-2000:]}")
        port = free_port()
        opts = (
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=64MB"
        )
        r = _as_postgres(
            str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"),
            "-w", "start",
        )  # fmt: skip
        if r.returncode:
            log = (root / "log").read_text() if (root / "log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {r.stderr[-2000:]} {log[-2000:]}")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
        finally:
            _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def new_database(server: str, prefix: str = "t_") -> str:
    """Create an empty database on `server`; returns its URL."""
    import psycopg
    from psycopg import sql

    name = prefix + uuid.uuid4().hex[:12]
    dsn = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{server}/{name}"
