"""Prepared reads (storage.prepared): the same rows as the session, on a lease that leaves nothing open."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import bindparam
from sqlalchemy import event
from sqlalchemy import select

from scim_bridge.auth import tokens
from scim_bridge.storage.engine import build_engine
from scim_bridge.storage.models import User
from scim_bridge.storage.prepared import PreparedRead
from scim_bridge.storage.prepared import ReadLease
from scim_bridge.storage.repositories import groups as group_repository
from scim_bridge.storage.repositories import users as user_repository
from scim_bridge.storage.repositories.users import UserRepository
from scim_bridge.storage.session import RequestSession
from scim_bridge.storage.session import cli_unit_of_work


@pytest.fixture
def seeded(scim, tenant, token):
    """A user with values and a group, a group holding it, and the token that made them."""
    user = scim.create_user("prepared@example.com", externalId="ext-prepared", displayName="Pré «pared»",
                            name={"givenName": "Pré", "familyName": "Pared"}, active=False,
                            emails=[{"value": "prepared@example.com", "type": "work", "primary": True},
                                    {"value": "other@example.com", "type": "home"}])
    group = scim.create_group("Prepared group", [user["id"]], externalId="grp-ext")
    return {"user": uuid.UUID(user["id"]), "group": uuid.UUID(group["id"]), "tenant": tenant.id, "token": token}


def _cases(storage, seeded):
    dialect = storage.engine.dialect.name
    ids = {"tenant_id": seeded["tenant"], "id": seeded["user"]}
    cases = [(tokens._GRANT, {"token_hash": tokens.hash_token(seeded["token"])}),
             (group_repository._GROUP_ROW, {"tenant_id": seeded["tenant"], "id": seeded["group"]})]
    for with_values, with_groups in itertools.product((False, True), repeat=2):
        cases.append((user_repository._read_one_statement(dialect, with_values, with_groups), ids))
        cases.append((user_repository._read_by_unique_statement(dialect, with_values, with_groups, "external_id"),
                      {"tenant_id": seeded["tenant"], "key": "ext-prepared"}))
    return cases


def test_lease_rows_equal_session_rows(storage, seeded):
    for prepared, params in _cases(storage, seeded):
        with storage.sessionmaker() as session:
            expected = prepared.all(session, params)  # no lease: through the session
        lease = ReadLease(storage.engine)
        try:
            got = lease.run(prepared, params)
        finally:
            lease.release()
        assert len(got) == 1
        assert got == expected, prepared.statement
        assert [type(v) for v in got[0]] == [type(v) for v in expected[0]]


def test_lease_values_have_python_types(storage, seeded):
    lease = ReadLease(storage.engine)
    try:
        prepared = group_repository._GROUP_ROW
        row = prepared.mapping(lease.run(prepared, {"tenant_id": seeded["tenant"], "id": seeded["group"]})[0])
        grant = tokens._GRANT.mapping(lease.run(
            tokens._GRANT, {"token_hash": tokens.hash_token(seeded["token"])})[0])
    finally:
        lease.release()
    assert row["id"] == seeded["group"] and row["tenant_id"] == seeded["tenant"]
    assert row["created"].tzinfo is not None and row["version"] == 1 and row["external_id"] == "grp-ext"
    assert isinstance(grant["settings"], dict | type(None))


def test_request_session_reads_on_the_lease_and_closes_it(storage, seeded):
    statements = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(storage.engine, "before_cursor_execute", record)
    try:
        session = storage.request_sessionmaker()
        assert isinstance(session, RequestSession)
        view = UserRepository(session, seeded["tenant"]).read(seeded["user"], with_values=True, with_groups=True)
        assert view is not None and view.row.user_name == "prepared@example.com" and view.row.active is False
        assert [v.value for v in view.values if v.attribute == "emails"] == ["prepared@example.com",
                                                                              "other@example.com"]
        assert [name for _, name in view.groups] == ["Prepared group"]
        assert not session.in_transaction()  # the session itself never touched the database
        assert storage.engine.pool.checkedout() == 1  # the lease
        session.close()
        assert storage.engine.pool.checkedout() == 0
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)
    assert any("FROM users" in s for s in statements)  # prepared reads fire the engine's events


def test_unit_of_work_reads_its_own_writes_through_the_session(storage, seeded):
    with cli_unit_of_work(storage) as session:
        session.execute(User.__table__.update().where(User.__table__.c.id == seeded["user"])
                        .values(display_name="In flight"))
        view = UserRepository(session, seeded["tenant"]).read(seeded["user"], with_values=False, with_groups=False)
        assert view is not None and view.row.display_name == "In flight"
        session.rollback()
    with storage.sessionmaker() as session:
        view = UserRepository(session, seeded["tenant"]).read(seeded["user"], with_values=False, with_groups=False)
        assert view is not None and view.row.display_name == "Pré «pared»"


def test_lease_returns_its_connection_out_of_autocommit(database_url, seeded):
    """The next borrower of the pooled connection (a unit of work) must get real transactions."""
    engine = build_engine(database_url, pool_size=1)
    try:
        lease = ReadLease(engine)
        lease.run(tokens._GRANT, {"token_hash": tokens.hash_token(seeded["token"])})
        lease.release()
        lease.release()  # twice is harmless
        connection = engine.raw_connection()
        try:
            if engine.dialect.name == "postgresql":
                assert connection.dbapi_connection.autocommit is False
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            assert cursor.fetchall() == [(1,)]
        finally:
            connection.close()
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()


def test_http_reads_leave_no_connection_checked_out(storage, scim, seeded):
    assert scim.get(f"/Users/{seeded['user']}").status_code == 200
    assert scim.get(f"/Groups/{seeded['group']}?excludedAttributes=members").status_code == 200
    assert scim.get('/Users?filter=externalId eq "ext-prepared"').get_json()["totalResults"] == 1
    assert storage.engine.pool.checkedout() == 0


def test_expanding_parameters_are_refused(storage):
    prepared = PreparedRead(select(User.id).where(User.id.in_(bindparam("ids", expanding=True))))
    with pytest.raises(ValueError, match="expanding"):
        prepared.compiled_for(storage.engine.dialect)


def test_more_than_one_row_is_an_error(storage, seeded, scim):
    scim.create_user("second@example.com")
    prepared = PreparedRead(select(User.id).where(User.tenant_id == bindparam("tenant_id")))
    with storage.sessionmaker() as session, pytest.raises(LookupError):
        prepared.one_or_none(session, {"tenant_id": seeded["tenant"]})
