"""An on-disk cache of chat completions, keyed by a hash of the request's content.

One SQLite file (WAL mode). Every answer is committed as soon as it arrives, so a run that is
interrupted (Ctrl-C, a crash, `kill -9`) keeps everything it was paid for, and the next run
with the same requests asks the endpoint only for what is missing. The key covers the model
name, the messages and the sampling parameters — not the URL, so the same model moved to
another host or port is still a hit.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FILE = "judge-cache.sqlite"


def default_cache_dir() -> Path:
    """`$PREFKIT_CACHE_DIR/judge`, else `$XDG_CACHE_HOME/prefkit/judge`, else
    `~/.cache/prefkit/judge`."""
    env = os.environ.get("PREFKIT_CACHE_DIR")
    if env:
        return Path(env) / "judge"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "prefkit" / "judge"


class Cache:
    """`get_many(keys)` -> {key: record}; `put(key, record)` commits at once."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        if self.dir.exists() and not self.dir.is_dir():
            raise NotADirectoryError(f"{self.dir}: the cache must be a directory")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / FILE
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS calls ("
            " key TEXT PRIMARY KEY, model TEXT NOT NULL, record TEXT NOT NULL,"
            " created REAL NOT NULL)"
        )

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        ks = list(dict.fromkeys(keys))
        for i in range(0, len(ks), 500):
            chunk = ks[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for key, rec in self._db.execute(
                f"SELECT key, record FROM calls WHERE key IN ({marks})", chunk
            ):
                out[str(key)] = json.loads(rec)
        return out

    def put(self, key: str, model: str, record: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO calls (key, model, record, created) VALUES (?, ?, ?, ?)",
            (key, model, json.dumps(record, ensure_ascii=False), time.time()),
        )

    def __len__(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()
        return int(row[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
