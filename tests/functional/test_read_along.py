"""Reads made along with the token's grant: a GET is one statement, and sees exactly what two would.

``require_oauth(..., along=plan)`` plans the read a view will make; ``authenticate_bearer`` reads
it in the token's tenant with the grant (``tokens.grant_joined``), and the protector hands the rows
to the request's read lease once the token is accepted (``ReadLease.read_ahead``). On by default
on PostgreSQL (``Storage.reads_along``), off on SQLite; these tests turn it on for both.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import bindparam
from sqlalchemy import event
from sqlalchemy import select

from scim_bridge.auth import tokens
from scim_bridge.domain.groups import group_read
from scim_bridge.domain.query import ListQuery
from scim_bridge.domain.users import keyed_user_read
from scim_bridge.domain.users import rendered_user_read
from scim_bridge.scim import schema as s
from scim_bridge.scim.filter.parser import parse_filter
from scim_bridge.scim.projection import Projection
from scim_bridge.storage import prepared as prepared_module
from scim_bridge.storage.models import User
from scim_bridge.storage.prepared import PlannedRead
from scim_bridge.storage.prepared import PreparedRead
from scim_bridge.storage.prepared import ReadLease
from scim_bridge.storage.repositories import groups as group_repository
from tests.conftest import ScimClient
from tests.conftest import new_tenant
from tests.conftest import new_token
from tests.functional.oauth_support import app_with
from tests.functional.oauth_support import bearer
from tests.functional.oauth_support import client_for

BASE = "http://localhost/scim/v2"


@pytest.fixture
def along(storage, monkeypatch):
    """Reads along with the grant, on either database."""
    monkeypatch.setattr(storage, "reads_along", True)
    return storage


@pytest.fixture
def seeded(scim, tenant, token):
    user = scim.create_user("along@example.com", externalId="ext-along", displayName="Al «ong»",
                            name={"givenName": "Al", "familyName": "Ong"},
                            emails=[{"value": "along@example.com", "type": "work", "primary": True}])
    group = scim.create_group("Along group", [user["id"]], externalId="grp-along")
    return {"user": user["id"], "group": group["id"], "tenant": tenant.id, "token": token}


def _keyed(attribute: str, value: str) -> ListQuery:
    return ListQuery(filter=parse_filter(f'{attribute} eq "{value}"'))


def _plans(storage, seeded) -> list[PlannedRead]:
    dialect = storage.engine.dialect.name
    default = Projection(s.USER_RESOURCE)
    plans = [rendered_user_read(seeded["user"], default, BASE, dialect),
             keyed_user_read(_keyed("userName", "ALONG@example.com"), BASE, dialect),
             keyed_user_read(_keyed("externalId", "ext-along"), BASE, dialect),
             group_read(seeded["group"])]
    assert all(plan is not None for plan in plans)
    return plans  # type: ignore[return-value]


@contextmanager
def _statements(storage):
    """Record the SQL the engine runs (prepared reads included) while the block runs."""
    seen: list[str] = []

    def record(_conn, _cursor, sql, *_args):
        seen.append(sql)

    event.listen(storage.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)


# -- the joined statement ------------------------------------------------------------------------

def test_the_joined_statement_reads_what_the_two_statements_read(storage, seeded):
    for plan in _plans(storage, seeded):
        with storage.sessionmaker() as session:
            plain = tokens.authenticate_bearer(session, seeded["token"])
            expected = plan.rows(session, seeded["tenant"])
        lease = ReadLease(storage.engine)
        try:
            session = storage.request_sessionmaker()
            joined = tokens.authenticate_bearer(session, seeded["token"], plan)
        finally:
            session.close()
            lease.release()
        assert plain is not None and joined is not None
        assert len(expected) == 1
        assert joined.along_rows == expected, plan.prepared.statement
        assert [type(v) for v in joined.along_rows[0]] == [type(v) for v in expected[0]]
        assert {**vars_of(joined), "along_rows": None} == vars_of(plain)


def vars_of(grant: tokens.BearerGrant) -> dict:
    return {name: getattr(grant, name) for name in grant.__slots__}


def test_a_missing_row_reads_none_but_the_grant(storage, seeded):
    missing = rendered_user_read(str(uuid.uuid4()), Projection(s.USER_RESOURCE), BASE, storage.engine.dialect.name)
    with storage.sessionmaker() as session:
        grant = tokens.authenticate_bearer(session, seeded["token"], missing)
    assert grant is not None and grant.tenant_id == seeded["tenant"]
    assert grant.along_rows == []


def test_an_unknown_token_reads_nothing(storage, seeded):
    with storage.sessionmaker() as session:
        for plan in _plans(storage, seeded):
            assert tokens.authenticate_bearer(session, "sbt_unknown", plan) is None


def test_rows_of_another_tenant_are_never_read_along(storage, seeded):
    """The join binds the token's tenant: a token of another tenant reads none of these rows."""
    stranger = new_token(storage, new_tenant(storage))
    with storage.sessionmaker() as session:
        for plan in _plans(storage, seeded):
            grant = tokens.authenticate_bearer(session, stranger, plan)
            assert grant is not None and grant.tenant_id != seeded["tenant"]
            assert grant.along_rows == []


def test_the_grant_is_processed_once_whatever_is_read_along(storage, seeded, scim):
    """The memo covers the grant's columns only: a different row along keeps the grant's processed values."""
    other = scim.create_user("along-2@example.com")
    dialect = storage.engine.dialect.name
    first = rendered_user_read(seeded["user"], Projection(s.USER_RESOURCE), BASE, dialect)
    second = rendered_user_read(other["id"], Projection(s.USER_RESOURCE), BASE, dialect)
    joined = tokens.grant_joined(first.prepared)
    params = {"token_hash": tokens.hash_token(seeded["token"])}
    lease = ReadLease(storage.engine)
    try:
        [a] = lease.run(joined, {**first.params, **params})
        [b] = lease.run(joined, {**second.params, **params})
    finally:
        lease.release()
    width = len(tokens._GRANT_COLUMNS)
    assert a[:width] == b[:width]
    assert a[width] != b[width]  # the users' ids
    if dialect == "sqlite":
        assert a[width - 6] is b[width - 6]  # the tenant's id: one UUID object, processed once
    assert tokens.grant_joined(first.prepared) is joined  # built once


def test_statements_that_cannot_be_joined_are_refused():
    users = User.__table__
    ordered = PreparedRead(select(users.c.id).where(users.c.tenant_id == bindparam("tenant_id")).order_by(users.c.id))
    untenanted = PreparedRead(select(users.c.id).where(users.c.id == bindparam("id")))
    in_columns = PreparedRead(select(users.c.id, bindparam("tenant_id")).where(
        users.c.tenant_id == bindparam("tenant_id")))
    for statement in (ordered, untenanted, in_columns):
        with pytest.raises(ValueError):
            tokens.grant_joined(statement)


# -- rows handed to the request ------------------------------------------------------------------

def test_rows_read_ahead_are_returned_once_for_the_same_parameters(storage, seeded):
    plan = group_read(seeded["group"])
    assert plan is not None
    lease = ReadLease(storage.engine)
    try:
        lease.read_ahead(plan.prepared, {**plan.params, "tenant_id": seeded["tenant"]}, [("kept",)])
        # Another tenant's parameters are not these: read from the database.
        assert lease.run(plan.prepared, {**plan.params, "tenant_id": uuid.uuid4()}) == []
        assert lease.run(plan.prepared, {**plan.params, "tenant_id": seeded["tenant"]}) == [("kept",)]
        [again] = lease.run(plan.prepared, {**plan.params, "tenant_id": seeded["tenant"]})  # read this time
        assert group_repository._GROUP_ROW.mapping(again)["display_name"] == "Along group"
        lease.read_ahead(plan.prepared, {**plan.params, "tenant_id": seeded["tenant"]}, [("kept",)])
    finally:
        lease.release()
    try:  # released: forgotten
        [read] = lease.run(plan.prepared, {**plan.params, "tenant_id": seeded["tenant"]})
    finally:
        lease.release()
    assert read != ("kept",)


# -- over HTTP -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/Users/{user}", '/Users?filter=userName eq "along@example.com"',
                                  '/Users?filter=externalId eq "ext-along"',
                                  "/Groups/{group}?excludedAttributes=members", "/Groups/{group}"])
def test_a_get_is_one_statement_with_the_same_answer(along, scim, seeded, path):
    url = path.format(**seeded)
    along.reads_along = False
    plain = scim.get(url)
    along.reads_along = True
    with _statements(along) as seen:
        read = scim.get(url)
    assert read.status_code == plain.status_code == 200
    assert read.get_json() == plain.get_json()
    assert read.headers.get("ETag") == plain.headers.get("ETag")
    assert "access_tokens" in seen[0]
    # The group's members come from their own statement when they are projected.
    assert len(seen) == (2 if path == "/Groups/{group}" else 1), seen


@pytest.mark.parametrize("path", ["/Users/{user}", "/Groups/{group}"])
def test_a_missing_resource_is_404_in_one_statement(along, scim, seeded, path):
    with _statements(along) as seen:
        response = scim.get(path.format(user=uuid.uuid4(), group=uuid.uuid4()))
    assert response.status_code == 404
    assert response.get_json()["status"] == "404"
    assert len(seen) == 1


def test_another_tenants_resources_stay_invisible(along, seeded, other_scim):
    assert other_scim.get(f"/Users/{seeded['user']}").status_code == 404
    assert other_scim.get(f"/Groups/{seeded['group']}").status_code == 404
    found = other_scim.get('/Users?filter=userName eq "along@example.com"').get_json()
    assert found["totalResults"] == 0 and found["Resources"] == []


def test_reads_that_are_not_planned_read_as_before(along, scim, seeded):
    """Other projections, ids that cannot exist and other filters: the grant alone, then the read."""
    for url, status in ((f"/Users/{seeded['user']}?attributes=userName", 200), ("/Users/not-a-uuid", 404),
                        ('/Users?filter=displayName eq "Al «ong»"', 200), ("/Groups/not-a-uuid", 404)):
        with _statements(along) as seen:
            response = scim.get(url)
        assert response.status_code == status, url
        assert not any("read_along_key" in sql for sql in seen), url
    assert scim.get(f"/Users/{seeded['user']}?attributes=userName").get_json()["userName"] == "along@example.com"


def test_a_refused_token_gets_no_resource(along, storage, client, seeded, tenant):
    revoked = new_token(storage, tenant)
    with storage.sessionmaker() as session, session.begin():
        [record] = [t for t in tokens.list_tokens(session, tenant.id) if t.token_hash == tokens.hash_token(revoked)]
        tokens.revoke_token(session, tenant.id, record.id)
    expired = new_token(storage, tenant, expires_in=timedelta(seconds=1),
                        now=datetime.now(UTC) - timedelta(hours=1))
    admin_only = new_token(storage, tenant, scope=tokens.ADMIN)
    for secret, status in ((revoked, 401), (expired, 401), (admin_only, 403), ("sbt_unknown", 401)):
        response = ScimClient(client, secret).get(f"/Users/{seeded['user']}")
        assert response.status_code == status
        assert "along@example.com" not in response.get_data(as_text=True)


def test_authentication_is_answered_before_a_bad_query(along, client, scim, seeded):
    """A bad query string is not planned (no along); a bad token is still answered 401 first."""
    anonymous = ScimClient(client, "sbt_unknown")
    assert anonymous.get(f"/Users/{seeded['user']}?attributes=no..such").status_code == 401
    assert anonymous.get("/Users?filter=userName eq").status_code == 401
    assert scim.get(f"/Users/{seeded['user']}?attributes=no..such").status_code == 400
    assert scim.get("/Users?filter=userName eq").status_code == 400


def test_a_changed_resource_is_read_afresh(along, scim, seeded):
    """Rows read along live for one request: the next GET sees the change."""
    first = scim.get(f"/Users/{seeded['user']}").get_json()
    changed = scim.patch(f"/Users/{seeded['user']}", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Changed"}]})
    assert changed.status_code == 200
    second = scim.get(f"/Users/{seeded['user']}").get_json()
    assert first["displayName"] == "Al «ong»" and second["displayName"] == "Changed"


def test_reads_along_only_by_default_on_postgresql(storage):
    assert storage.reads_along is (storage.engine.dialect.name == "postgresql")


def test_the_joined_statement_finds_its_rows_by_index(storage, seeded):
    """SQLite, without statistics: every table of the joined statements is searched by an index, none scanned."""
    if storage.engine.dialect.name != "sqlite":
        pytest.skip("query plans without statistics are SQLite's (PostgreSQL runs ANALYZE via autovacuum)")
    for plan in _plans(storage, seeded):
        compiled = tokens.grant_joined(plan.prepared).compiled_for(storage.engine.dialect)
        arguments = prepared_module._arguments(compiled, {**plan.params, "token_hash": "x"})
        with storage.engine.connect() as connection:
            steps = [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.sql, arguments)]
        assert not [step for step in steps if step.startswith("SCAN") and "per_attribute" not in step
                    and "ordered" not in step], steps
        table = plan.prepared.statement.get_final_froms()[0].name
        assert any(step.startswith(f"SEARCH {table} USING") for step in steps), steps


def test_a_conditional_get_is_answered_from_the_row_read_along(along, scim, seeded):
    etag = scim.get(f"/Users/{seeded['user']}").headers["ETag"]
    with _statements(along) as seen:
        response = scim.get(f"/Users/{seeded['user']}", headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.headers["ETag"] == etag
    assert len(seen) == 1
    assert scim.get(f"/Users/{seeded['user']}", headers={"If-None-Match": 'W/"0"'}).status_code == 200


def test_a_rate_limited_request_gets_no_resource(along, settings, seeded, tenant):
    """Past the credential's limit the answer is 429: the rows read along are never handed over."""
    limited = app_with(settings, along, rate_limit_per_minute=2)
    http, fresh = client_for(limited), new_token(along, tenant)
    answers = [http.get(f"/scim/v2/Users/{seeded['user']}", headers=bearer(fresh)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].get_json()["status"] == "429"
    assert "along@example.com" not in answers[2].get_data(as_text=True)
