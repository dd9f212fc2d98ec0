"""Lost database connections: replaced before use after idling, 503 (never 500) when lost mid-request."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from scim_bridge.domain.users import UserService
from scim_bridge.storage import engine as engine_module
from tests.conftest import LIVE_SERVER_APPLICATION


def test_connection_lost_mid_request_is_503_scim_error(scim, monkeypatch):
    user = scim.create_user("lost@example.com")

    def lose_connection(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"),
                               connection_invalidated=True)

    monkeypatch.setattr(UserService, "load", lose_connection)
    response = scim.get(f"/Users/{user['id']}")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    body = response.get_json()
    assert body["status"] == "503" and "temporarily unavailable" in body["detail"]
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_other_database_errors_stay_500(scim, monkeypatch):
    user = scim.create_user("broken@example.com")

    def fail(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("disk I/O error"))

    monkeypatch.setattr(UserService, "load", fail)
    response = scim.get(f"/Users/{user['id']}")
    assert response.status_code == 500 and "Retry-After" not in response.headers
    assert response.get_json()["detail"] == "internal server error"


def _kill_pooled_connections(database_url: str) -> None:
    # Not the session's live server (another test's, on this database): only this test's app.
    killer = create_engine(database_url, poolclass=NullPool)  # a connection outside the pool
    with killer.connect() as admin:
        pids = admin.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> :live"),
            {"live": LIVE_SERVER_APPLICATION}).all()
        admin.rollback()
    killer.dispose()
    assert pids, "expected pooled connections to kill"


def test_idle_connection_killed_by_the_server_is_replaced_before_use(database_url, scim, monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("a server-side connection kill needs PostgreSQL (SQLite has no server)")
    user = scim.create_user("idle@example.com")
    # Every pooled connection counts as idle; kill every other backend of this database.
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)
    _kill_pooled_connections(database_url)
    # The pooled connections are dead; the checkout ping finds out and the request never sees it.
    for _ in range(3):
        assert scim.get(f"/Users/{user['id']}").status_code == 200


def test_connection_killed_without_idling_is_one_503_then_recovers(database_url, scim, monkeypatch):
    if not database_url.startswith("postgresql"):
        pytest.skip("a server-side connection kill needs PostgreSQL (SQLite has no server)")
    user = scim.create_user("recovers@example.com")
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 1e9)  # never ping: the request meets the dead socket
    _kill_pooled_connections(database_url)
    first = scim.get(f"/Users/{user['id']}")
    assert first.status_code == 503 and first.headers["Retry-After"] == "1"
    assert first.get_json()["status"] == "503"
    # The lost connection invalidated the pool: the retry gets a fresh connection.
    assert scim.get(f"/Users/{user['id']}").status_code == 200
