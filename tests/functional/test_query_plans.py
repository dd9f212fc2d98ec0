"""SQLite query plans of the hot paths never walk a whole tenant.

The service never runs ``ANALYZE``, so SQLite plans without statistics, and it then prefers an
index with an equality on ``tenant_id`` over a lookup by a list of keys: ``tenant_id = ? AND id IN
(…)`` read every user of the tenant. Nothing in a test's small tenant is slow, so these tests read
the plan of every statement the request ran (``EXPLAIN QUERY PLAN`` with the same parameters)
instead of timing it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy import event

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"

# A search by tenant alone, or a full scan, of a table that grows with the tenant.
WALKS = re.compile(r"(SEARCH (users|groups|group_members|user_values) USING (COVERING )?INDEX \w+ \(tenant_id=\?\)$"
                   r"|SCAN (users|groups|group_members|user_values)\b)")


@pytest.fixture
def sqlite_engine(engine: Engine) -> Engine:
    if engine.dialect.name != "sqlite":
        pytest.skip("query plans without statistics are SQLite's (PostgreSQL runs ANALYZE via autovacuum)")
    return engine


@contextmanager
def recorded(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Collect (statement, parameters) of the SELECTs *engine* runs inside the block."""
    statements: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and not executemany:
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def plans(engine: Engine, statements: list[tuple[str, Any]]) -> list[list[str]]:
    """Return the plan lines (``EXPLAIN QUERY PLAN`` details) of each statement, with its parameters."""
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        return [[row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()]
                for statement, parameters in statements]


def walks(engine: Engine, statements: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """Return (plan line, statement) for every plan step that walks a tenant's rows."""
    return [(line, " ".join(statement.split())[:300])
            for (statement, _), plan in zip(statements, plans(engine, statements), strict=True)
            for line in plan if WALKS.search(line)]


def bulk_users(scim, count: int, prefix: str) -> list[str]:
    body = {"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": f"b{i}",
         "data": {"schemas": [USER], "userName": f"{prefix}{i}@plans.example", "externalId": f"{prefix}-{i}",
                  "emails": [{"value": f"{prefix}{i}@plans.example", "primary": True}]}}
        for i in range(count)]}
    response = scim.post("/Bulk", body)
    assert response.status_code == 200, response.get_json()
    return [op["location"].rsplit("/", 1)[1] for op in response.get_json()["Operations"]]


def test_bulk_create_looks_holders_up_by_key(scim, sqlite_engine):
    bulk_users(scim, 30, "seed")
    with recorded(sqlite_engine) as statements:
        bulk_users(scim, 20, "more")
    assert statements
    assert walks(sqlite_engine, statements) == []


def test_adding_and_removing_a_member_looks_ids_up_by_key(scim, sqlite_engine):
    ids = bulk_users(scim, 30, "member")
    group = scim.create_group("plans", ids[:10])
    # A group PATCH answers 204 unless asked for the group: asking keeps the read of the answer's
    # members among the statements whose plans are checked.
    representation = {"Prefer": "return=representation"}
    with recorded(sqlite_engine) as statements:
        added = scim.patch(f"/Groups/{group['id']}", {"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": ids[20]}, {"value": str(uuid.uuid4())}]}]},
            headers=representation)
        removed = scim.patch(f"/Groups/{group['id']}", {"schemas": [PATCH], "Operations": [
            {"op": "remove", "path": f'members[value eq "{ids[3]}"]'}]}, headers=representation)
    assert added.status_code in (200, 400, 404), added.get_json()
    assert removed.status_code == 200, removed.get_json()
    assert statements
    assert walks(sqlite_engine, statements) == []


def test_reads_look_users_up_by_key(scim, sqlite_engine):
    ids = bulk_users(scim, 30, "reader")
    scim.create_group("readers", ids[:5])
    with recorded(sqlite_engine) as statements:
        assert scim.get(f"/Users/{ids[2]}").status_code == 200
        assert scim.get('/Users?filter=userName eq "reader7@plans.example"').status_code == 200
        assert scim.get('/Users?filter=externalId eq "reader-8"').status_code == 200
        assert scim.get(f"/Users/{ids[1]}", headers={"If-None-Match": 'W/"1"'}).status_code in (200, 304)
    assert statements
    assert walks(sqlite_engine, statements) == []


def test_the_plan_check_does_see_a_tenant_walk(scim, sqlite_engine):
    """The checker itself: a lookup by a list of ids with a plain tenant predicate walks the tenant."""
    bulk_users(scim, 5, "probe")
    walked = walks(sqlite_engine, [("SELECT id FROM users WHERE tenant_id = ? AND id IN (?, ?)", ("t", "x", "y"))])
    assert walked and "ix_users_tenant_created" in walked[0][0]


def test_single_user_writes_look_up_by_key(scim, sqlite_engine):
    ids = bulk_users(scim, 30, "writer")
    group = scim.create_group("writers", ids[:5])
    with recorded(sqlite_engine) as statements:
        created = scim.post("/Users", {"schemas": [USER], "userName": "single@plans.example", "externalId": "single",
                                       "emails": [{"value": "single@plans.example"}]})
        assert created.status_code == 201, created.get_json()
        replaced = scim.put(f"/Users/{ids[1]}", {"schemas": [USER], "userName": "writer1@plans.example",
                                                  "externalId": "writer-1", "displayName": "Replaced"})
        assert replaced.status_code == 200, replaced.get_json()
        patched = scim.patch(f"/Users/{ids[2]}", {"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "active", "value": False}]})
        assert patched.status_code in (200, 204), patched.get_json()
        assert scim.delete(f"/Users/{ids[3]}").status_code == 204
        assert scim.get(f"/Groups/{group['id']}?excludedAttributes=members").status_code == 200
    assert statements
    assert walks(sqlite_engine, statements) == []


def test_rendered_users_read_values_in_index_order(scim, sqlite_engine):
    """Users rendered by SQLite (domain/user_json.py) group their values by attribute with no sort.

    group_concat takes no ORDER BY on SQLite 3.40: the elements come in position order only
    because the GROUP BY reads ix_user_values_user_order (user_id, attribute, position) in order.
    A temporary B-tree for that GROUP BY would sort by attribute alone and could reorder them.
    """
    ids = bulk_users(scim, 12, "ordered")
    with recorded(sqlite_engine) as statements:
        assert scim.get("/Users?count=10").status_code == 200
        assert scim.get(f"/Users/{ids[3]}").status_code == 200
        assert scim.get('/Users?filter=userName sw "ordered1"').status_code == 200
    rendering = [(s, p) for s, p in statements if "per_attribute" in s]
    assert len(rendering) == 3
    for plan in plans(sqlite_engine, rendering):
        assert any("user_values USING INDEX ix_user_values_user_order (user_id=?)" in line for line in plan), plan
        assert not any("TEMP B-TREE FOR GROUP BY" in line for line in plan), plan
    # A page walks its tenant in (created, id) order by nature, up to its LIMIT; the single read must not.
    assert walks(sqlite_engine, rendering[1:2]) == []


def test_rendered_users_read_their_groups_from_the_index_alone(scim, sqlite_engine):
    """A user's ``groups`` come from ix_group_members_user_groups without reading membership rows.

    The index holds (user_id, tenant_id, group_id): everything the groups subquery of a rendered
    user needs from group_members (migration 0007).
    """
    ids = bulk_users(scim, 6, "grouped")
    for name in ("Readers", "Writers"):
        created = scim.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                        "displayName": name, "members": [{"value": i} for i in ids[:4]]})
        assert created.status_code == 201, created.get_json()
    with recorded(sqlite_engine) as statements:
        page = scim.get("/Users?count=10")
        single = scim.get(f"/Users/{ids[0]}")
    assert page.status_code == 200 and single.status_code == 200
    assert len(single.get_json()["groups"]) == 2
    rendering = [(s, p) for s, p in statements if "per_attribute" in s]
    assert len(rendering) == 2
    for plan in plans(sqlite_engine, rendering):
        assert any("group_members USING COVERING INDEX ix_group_members_user_groups (user_id=? AND tenant_id=?)"
                   in line for line in plan), plan
