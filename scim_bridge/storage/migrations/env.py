"""Alembic environment: uses the service's own engine settings (SQLite pragmas, psycopg 3)."""

from __future__ import annotations

from alembic import context

from scim_bridge.storage import models  # noqa: F401  (registers the tables on Base.metadata)
from scim_bridge.storage.base import Base
from scim_bridge.storage.engine import build_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run migrations against a live connection."""
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = build_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `scim-bridge db upgrade`")
run_migrations_online()
