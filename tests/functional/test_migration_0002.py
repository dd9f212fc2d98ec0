"""Migration 0002 (OAuth clients, audit events, rate-limit counters) goes up and down on both databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy import inspect
from sqlalchemy import text
from sqlalchemy.engine import make_url

from scim_bridge.storage import migrations
from scim_bridge.storage.engine import build_engine
from tests.conftest import POSTGRES_URL

NEW_TABLES = {"oauth_clients", "audit_events", "rate_limit_counters"}


@pytest.fixture(params=["sqlite"] + (["postgresql"] if POSTGRES_URL else []))
def empty_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mig.db'}"
        return
    url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    name = f"scim_bridge_test_mig_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_0002_up_down_up_keeps_0001_data(empty_url):
    migrations.upgrade(empty_url, "0001")
    engine = build_engine(empty_url)
    tenant_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, slug, name, settings, created) "
                          "VALUES (:id, 'kept', 'Kept', '{}', CURRENT_TIMESTAMP)"),
                     {"id": tenant_id if engine.dialect.name == "postgresql" else tenant_id.hex})
    migrations.upgrade(empty_url, "0002")
    assert NEW_TABLES <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO rate_limit_counters (key, window_start, count) VALUES ('k', 0, 1)"))
    migrations.downgrade(empty_url, "0001")
    inspector = inspect(engine)
    assert not NEW_TABLES & set(inspector.get_table_names())
    migrations.upgrade(empty_url)
    assert NEW_TABLES <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT slug FROM tenants")).scalar_one() == "kept"
        assert conn.execute(text("SELECT count(*) FROM rate_limit_counters")).scalar_one() == 0
    engine.dispose()
