"""SQLAlchemy 2 models. Votes are append-only: changing an answer adds a revision."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # comparisons | rankings
    questions: Mapped[list[Any]] = mapped_column(JSON)
    guidelines: Mapped[str] = mapped_column(Text, default="")
    overlap: Mapped[int] = mapped_column(Integer, default=1)
    policy: Mapped[str] = mapped_column(String(20), default="least_judged")
    aspects: Mapped[list[Any]] = mapped_column(JSON, default=list)
    arena: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # closed: no new tasks, votes refused (409); reopening clears it
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # how the items were read: reader, rows read, items, rejected rows (count and first few)
    import_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("campaign_id", "position", name="uq_item_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[list[Any]] = mapped_column(JSON)  # messages
    responses: Mapped[list[Any]] = mapped_column(JSON)  # list of message lists
    models: Mapped[list[Any]] = mapped_column(JSON)  # list of model names (or nulls)
    gold: Mapped[str | None] = mapped_column(String(20), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Annotator(Base):
    __tablename__ = "annotators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked: Mapped[int] = mapped_column(Integer, default=0)


class Assignment(Base):
    """An item given to an annotator, with the order shown (recorded before any answer)."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("annotator_id", "item_id", name="uq_assignment"),
        UniqueConstraint("annotator_id", "seq", name="uq_assignment_seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    shown_first: Mapped[str] = mapped_column(String(1))  # a | b: shown on the left
    assigned_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Vote(Base):
    """One submitted answer. A changed answer is a new row with a higher `revision`.

    `strength` is the canonical directional strength (1 = strongly prefers `a`, 0.5 = no
    preference, 0 = strongly prefers `b`). Idempotency keys are unique per annotator, so a key
    never tells anything about another annotator's votes."""

    __tablename__ = "votes"
    __table_args__ = (
        Index("ix_votes_annotator_item", "annotator_id", "item_id"),
        UniqueConstraint("annotator_id", "idempotency_key", name="uq_vote_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(100))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    strength: Mapped[float | None] = mapped_column(Float, nullable=True)
    rationale: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)  # every question's answer
    shown_first: Mapped[str | None] = mapped_column(String(1), nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    elapsed_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    app_version: Mapped[str] = mapped_column(String(40))


class AdminSession(Base):
    """A signed-in admin: the cookie holds `sid.expiry.signature`; only sha256(sid) is kept.
    Logging out (or expiry) ends it."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """An engine; SQLite gets WAL, a busy timeout and foreign keys on every connection."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=pool_size
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


class DatabaseError(RuntimeError):
    """A database that cannot be opened (missing SQLite file, bad URL, server unreachable):
    the message is one line, without the password."""


def open_engine(url: str, create: bool = False, pool_size: int = 10) -> Engine:
    """An engine on a migrated database. Without `create`, a missing SQLite file is an error
    (nothing is created)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from prefkit.serve.migrations import upgrade

    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise DatabaseError(f"not a database URL: {url!r} ({e})") from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and not create:
        name = parsed.database or ""
        if name and name != ":memory:" and not Path(name).is_file():
            raise DatabaseError(f"database {name} does not exist (--db {shown})")
    engine = make_engine(url, pool_size)
    try:
        upgrade(engine)
    except SQLAlchemyError as e:
        engine.dispose()
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise DatabaseError(f"cannot open database {shown}: {reason}") from None
    return engine
