"""A write the database gives up over concurrent writes is answered 503 with Retry-After, not 500.

PostgreSQL aborts one of two transactions that wait on each other's locks (a deadlock: for
example a Bulk request, which holds the tenant's event lock from its first operation, and a
single write of a group it then touches) and refuses a transaction it cannot serialize; SQLite
gives up waiting for its write lock after the busy timeout. The write was rolled back whole and
the same request sent again would most likely go through, which is what 503 + Retry-After tells
an identity provider, as for a lost connection (test_db_disconnect).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from scim_bridge.domain.groups import GroupService
from scim_bridge.storage.engine import is_transient_conflict
from tests.functional.orgs_support import PATCH_OP


def _real_conflict(database_url: str) -> DBAPIError:
    """Provoke the backend's own conflict error and return it as SQLAlchemy raises it."""
    if database_url.startswith("postgresql"):
        return _deadlock(database_url)
    return _sqlite_busy(database_url)


def _deadlock(database_url: str) -> DBAPIError:
    engine = create_engine(database_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS conflict_probe (id int PRIMARY KEY)"))
        conn.execute(text("INSERT INTO conflict_probe VALUES (1), (2) ON CONFLICT DO NOTHING"))
    errors: list[BaseException] = []
    both_locked = threading.Barrier(2, timeout=10)

    def lock(first: int, second: int) -> None:
        try:
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL deadlock_timeout = '50ms'"))
                conn.execute(text("SELECT id FROM conflict_probe WHERE id = :id FOR UPDATE"), {"id": first})
                both_locked.wait()
                conn.execute(text("SELECT id FROM conflict_probe WHERE id = :id FOR UPDATE"), {"id": second})
        except DBAPIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lock, args=(1, 2)), threading.Thread(target=lock, args=(2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE conflict_probe"))
    engine.dispose()
    assert len(errors) == 1, errors  # PostgreSQL aborted exactly one of the two
    error = errors[0]
    assert isinstance(error, DBAPIError)
    return error


def _sqlite_busy(database_url: str) -> DBAPIError:
    holder = create_engine(database_url, poolclass=NullPool)
    waiter = create_engine(database_url, poolclass=NullPool)
    with holder.connect() as held:
        held.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, held
        try:
            with waiter.connect() as conn:
                conn.exec_driver_sql("PRAGMA busy_timeout = 50")
                with pytest.raises(OperationalError) as caught:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            held.exec_driver_sql("ROLLBACK")
    holder.dispose()
    waiter.dispose()
    return caught.value


def test_the_backends_own_conflict_errors_are_recognised(database_url):
    error = _real_conflict(database_url)
    assert is_transient_conflict(error), (type(error.orig), error.orig)


def test_a_write_conflict_is_503_with_retry_after(database_url, scim, monkeypatch):
    conflict = _real_conflict(database_url)
    group = scim.create_group("conflicted")
    user = scim.create_user("conflicted@example.com")

    def conflicted(*_args: Any, **_kwargs: Any) -> Any:
        raise conflict

    monkeypatch.setattr(GroupService, "patch", conflicted)
    response = scim.patch(f"/Groups/{group['id']}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": user["id"]}]}]})
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "1"
    body = response.get_json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == "503" and "conflicted with concurrent writes" in body["detail"]
    monkeypatch.undo()
    assert scim.get(f"/Groups/{group['id']}").get_json().get("members", []) == [], "nothing was written"


def test_other_operational_errors_are_not_taken_for_conflicts():
    assert not is_transient_conflict(OperationalError("SELECT 1", {}, Exception("disk I/O error")))
    assert not is_transient_conflict(ValueError("not a database error"))
