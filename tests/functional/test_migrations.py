"""The migration chain goes up, down to base and up again, keeping data across the way up."""

from __future__ import annotations

import uuid

from sqlalchemy import inspect
from sqlalchemy import text

from scim_bridge.storage import migrations
from scim_bridge.storage.base import Base
from scim_bridge.storage.engine import build_engine


def test_round_trip(tmp_path):
    url = f"sqlite:///{tmp_path / 'mig.db'}"
    migrations.upgrade(url)
    migrations.downgrade(url, "base")
    engine = build_engine(url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    migrations.upgrade(url)
    assert migrations.is_at_head(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, slug, name, settings, created) "
                          "VALUES (:id, 'kept', 'Kept', '{}', CURRENT_TIMESTAMP)"), {"id": uuid.uuid4().hex})
    migrations.upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT slug FROM tenants")).scalar_one() == "kept"
    engine.dispose()


def test_models_match_migrations(engine):
    """The head schema has every table and column the models declare (no drift)."""
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert {c.name for c in table.columns} == columns, table.name
