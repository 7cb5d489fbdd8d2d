"""Settings of the web app (a frozen dataclass; the CLI and tests build one)."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DB = "sqlite:///prefkit.db"
KIB = 1 << 10
MIB = 1 << 20


def _admin_token() -> str:
    return os.environ.get("PREFKIT_ADMIN_TOKEN") or secrets.token_urlsafe(24)


_SIZE = re.compile(r"\s*(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": KIB, "kb": KIB, "kib": KIB, "m": MIB, "mb": MIB, "mib": MIB,
          "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}  # fmt: skip


def parse_size(text: str) -> int:
    """Bytes from `262144`, `256KiB`, `256k`, `200MiB`, `1G` (binary units); ValueError else."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a size (e.g. 262144, 256KiB, 200MiB)")
    n = int(m.group(1)) * _UNITS[(m.group(2) or "").lower()]
    if n < 1024:
        raise ValueError(f"{text!r} is below the 1 KiB minimum")
    return n


@dataclass(frozen=True)
class Settings:
    """How the app runs. `admin_token` guards every admin endpoint (kept only as a hash).

    Limits: every request body is refused with 413 beyond `max_body` bytes, except campaign
    creation (`POST /api/campaigns`, `/api/campaigns/upload`: `max_upload`); the size is
    checked before the body is read, and API requests are authenticated before it is parsed.
    `import_dir`: the only folder `POST /api/campaigns` may read a server-side `path` from
    (None: server-side paths are refused). `secure_cookies` None = on when `base_url` is
    https. Admin sessions last `session_ttl_s` seconds."""

    db_url: str = DEFAULT_DB
    admin_token: str = field(default_factory=_admin_token, repr=False)
    base_url: str = "http://127.0.0.1:8000"
    login_rate: int = 10  # failed logins allowed per client per window
    login_window_s: float = 60.0
    secure_cookies: bool | None = None
    migrate: bool = True  # run Alembic migrations at start-up
    pool_size: int = 10
    # run vote writes on the event loop (default: yes for SQLite, no for PostgreSQL)
    inline_writes: bool | None = None
    max_body: int = 256 * KIB
    max_upload: int = 200 * MIB
    import_dir: Path | None = None
    session_ttl_s: float = 12 * 3600.0

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.base_url.lower().startswith("https://")
