"""Connection settings the service relies on: PostgreSQL connections run without JIT."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from scim_bridge.storage.engine import _without_jit
from scim_bridge.storage.engine import build_engine


def test_without_jit_keeps_the_url_options():
    assert _without_jit(None) == "-c jit=off"
    assert _without_jit("-c statement_timeout=5000") == "-c statement_timeout=5000 -c jit=off"
    assert _without_jit(("-c a=1", "-c b=2")) == "-c a=1 -c b=2 -c jit=off"


def test_postgresql_connections_run_without_jit(database_url, storage):
    if not database_url.startswith("postgresql"):
        pytest.skip("JIT is PostgreSQL's")
    with storage.engine.connect() as conn:
        assert conn.execute(text("SHOW jit")).scalar_one() == "off"
    # Options given in the URL still apply.
    url = make_url(database_url).update_query_dict({"options": "-c statement_timeout=5000"})
    engine = build_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW jit")).scalar_one() == "off"
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "5s"
    finally:
        engine.dispose()
