"""Settings of the web app (a frozen dataclass; the CLI and tests build one)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

DEFAULT_DB = "sqlite:///prefkit.db"


def _admin_token() -> str:
    return os.environ.get("PREFKIT_ADMIN_TOKEN") or secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Settings:
    """How the app runs. `admin_token` guards every admin endpoint (kept only as a hash)."""

    db_url: str = DEFAULT_DB
    admin_token: str = field(default_factory=_admin_token, repr=False)
    base_url: str = "http://127.0.0.1:8000"
    login_rate: int = 10  # failed logins allowed per client per window
    login_window_s: float = 60.0
    secure_cookies: bool = False  # set True behind HTTPS
    migrate: bool = True  # run Alembic migrations at start-up
    pool_size: int = 10
    # run vote writes on the event loop (default: yes for SQLite, no for PostgreSQL)
    inline_writes: bool | None = None
