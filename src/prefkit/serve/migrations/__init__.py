"""Alembic migrations, shipped inside the package and run at start-up."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent


def _run(engine: Engine, command_name: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, command_name)(cfg, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to the newest schema (idempotent), or to `revision`."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database back to `revision` (each revision's downgrade keeps the data)."""
    _run(engine, "downgrade", revision)
