"""Tokens (stored as sha256), signed admin sessions, CSRF (double-submit cookie), login rate
limit, CSP headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque

CSRF_COOKIE = "prefkit_csrf"
CSRF_HEADER = "x-csrf-token"
ANNOTATOR_COOKIE = "prefkit_annotator"
ADMIN_COOKIE = "prefkit_admin"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def new_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """sha256 hex: what the database keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_token(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _sign(key: bytes, message: str) -> str:
    mac = hmac.new(key, message.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def session_key(admin_token: str) -> bytes:
    """The key admin session cookies are signed with: derived from the admin token, so a new
    admin token ends every session."""
    return hashlib.sha256(b"prefkit-admin-session:" + admin_token.encode("utf-8")).digest()


def new_session_cookie(key: bytes, expires_at: int) -> tuple[str, str]:
    """A fresh session id and the cookie value `sid.expiry.signature` (expiry in Unix
    seconds); the database keeps `hash_token(sid)`."""
    sid = new_token()
    msg = f"{sid}.{expires_at}"
    return sid, f"{msg}.{_sign(key, msg)}"


def open_session_cookie(key: bytes, value: str | None, now: float) -> str | None:
    """The session id of a well-signed, unexpired cookie, else None."""
    if not value or value.count(".") != 2 or len(value) > 200:
        return None
    sid, exp, sig = value.split(".")
    if not exp.isdigit() or not same_token(sig, _sign(key, f"{sid}.{exp}")):
        return None
    return sid if int(exp) > now else None


class RateLimiter:
    """At most `limit` failures per `window_s` seconds per key (sliding window, in memory).

    Only failures are counted (`fail`); `blocked` says whether a key is over its limit."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._events.setdefault(key, deque())
        while q and now - q[0] > self.window_s:
            q.popleft()
        return q

    def blocked(self, key: str) -> bool:
        with self._lock:
            q = self._recent(key, time.monotonic())
            blocked = len(q) >= self.limit
            if not q:
                del self._events[key]
            return blocked

    def fail(self, key: str) -> None:
        """Record a failure for `key`."""
        now = time.monotonic()
        with self._lock:
            if len(self._events) > 100_000:  # bound memory under a flood of distinct keys
                self._events = {k: q for k, q in self._events.items() if q and now - q[-1] <= self.window_s}  # fmt: skip
            self._recent(key, now).append(now)
