"""Alembic environment: uses the connection handed over by `prefkit.serve.migrations.upgrade`."""

from __future__ import annotations

from alembic import context

from prefkit.serve.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline mode is not used
    raise RuntimeError("run migrations through prefkit.serve.migrations.upgrade(engine)")
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
