"""Prepared reads (storage.prepared): the same rows as the session, on a lease that leaves nothing open."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import DateTime
from sqlalchemy import Integer
from sqlalchemy import bindparam
from sqlalchemy import event
from sqlalchemy import select

from scim_bridge.auth import tokens
from scim_bridge.storage import prepared as prepared_module
from scim_bridge.storage.engine import build_engine
from scim_bridge.storage.models import User
from scim_bridge.storage.prepared import PreparedRead
from scim_bridge.storage.prepared import ReadConnections
from scim_bridge.storage.prepared import ReadLease
from scim_bridge.storage.repositories import groups as group_repository
from scim_bridge.storage.repositories import users as user_repository
from scim_bridge.storage.repositories.users import UserRepository
from scim_bridge.storage.session import RequestSession
from scim_bridge.storage.session import Storage
from scim_bridge.storage.session import cli_unit_of_work
from scim_bridge.storage.session import get_session
from scim_bridge.storage.session import unit_of_work


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

    storage.read_connections.release_all()
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
        # Parked for the next request's reads, still checked out of the pool.
        assert storage.read_connections.parked == 1 and storage.engine.pool.checkedout() == 1
        storage.read_connections.release_all()
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


def test_http_reads_keep_only_the_parked_connection(storage, scim, seeded):
    assert scim.get(f"/Users/{seeded['user']}").status_code == 200
    assert scim.get(f"/Groups/{seeded['group']}?excludedAttributes=members").status_code == 200
    assert scim.get('/Users?filter=externalId eq "ext-prepared"').get_json()["totalResults"] == 1
    assert storage.read_connections.parked == 1
    assert storage.engine.pool.checkedout() == 1  # the parked one: nothing else stays open
    storage.read_connections.release_all()
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


# -- the parked read connection (ReadConnections) ------------------------------------------------

def _read_connections(statements_of):
    """Return the DBAPI connections that ran the recorded prepared reads."""
    return [cursor.connection for cursor in statements_of]


def test_consecutive_requests_read_on_the_same_parked_connection(storage, scim, seeded):
    cursors = []

    def record(_conn, cursor, *_args):
        cursors.append(cursor)

    storage.read_connections.release_all()
    event.listen(storage.engine, "before_cursor_execute", record)
    try:
        for _ in range(3):
            assert scim.get(f"/Users/{seeded['user']}").status_code == 200
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)
    assert len(cursors) == (3 if storage.reads_along else 6)  # token and user (one statement when read along), 3 times
    assert len({id(connection) for connection in _read_connections(cursors)}) == 1
    assert storage.engine.pool.checkedout() == 1


def test_a_write_does_not_run_on_the_parked_connection(storage, scim, seeded):
    """A unit of work takes its own pooled connection: its transaction never mixes with autocommit reads."""
    assert scim.get(f"/Users/{seeded['user']}").status_code == 200  # parks a connection
    parked = storage.read_connections.take()
    storage.read_connections.park(parked)
    writes = []

    def record(conn, cursor, statement, *_args):
        if conn is not None and statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            writes.append(cursor.connection)

    event.listen(storage.engine, "before_cursor_execute", record)
    try:
        reply = scim.patch(f"/Users/{seeded['user']}", {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Parked"}]})
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)
    assert reply.status_code == 200 and reply.get_json()["displayName"] == "Parked"
    assert writes and all(connection is not parked.dbapi_connection for connection in writes)
    if storage.engine.dialect.name == "postgresql":
        assert parked.dbapi_connection.autocommit is True  # parked as it was used: autocommit reads


def test_at_most_keep_connections_are_parked(database_url):
    engine = build_engine(database_url, pool_size=3)
    try:
        connections = ReadConnections(engine, keep=1)
        first, second = connections.take(), connections.take()
        assert engine.pool.checkedout() == 2
        connections.park(first)
        connections.park(second)  # one is enough: given back to the pool
        assert connections.parked == 1 and engine.pool.checkedout() == 1
        assert connections.take() is first and connections.parked == 0
        connections.park(first)
        connections.release_all()
        assert connections.parked == 0 and engine.pool.checkedout() == 0
        if engine.dialect.name == "postgresql":
            again = engine.raw_connection()
            try:
                assert again.dbapi_connection.autocommit is False  # given back out of autocommit
            finally:
                again.close()
    finally:
        engine.dispose()


def test_a_connection_parked_by_another_process_is_dropped_unclosed(database_url, monkeypatch):
    """After a fork the parent's parked connection is not the child's to use or close (dispose(close=False))."""
    engine = build_engine(database_url, pool_size=2)
    try:
        connections = ReadConnections(engine)
        inherited = connections.take()
        connections.park(inherited)
        monkeypatch.setattr(prepared_module.os, "getpid", lambda: -1)
        fresh = connections.take()
        assert fresh is not inherited and connections.parked == 0
        cursor = inherited.dbapi_connection.cursor()  # still open: the "parent" may be using it
        cursor.execute("SELECT 1")
        assert cursor.fetchall() == [(1,)]
        monkeypatch.undo()
        fresh.close()
        inherited.close()
    finally:
        engine.dispose()


def test_a_connection_parked_past_the_idle_limit_is_pinged_and_replaced_when_dead(database_url):
    engine = build_engine(database_url, pool_size=2)
    try:
        connections = ReadConnections(engine, ping_after_idle_s=0)
        alive = connections.take()
        connections.park(alive)
        assert connections.take() is alive  # pinged, alive: reused
        alive.dbapi_connection.close()  # the server (or a proxy) dropped it while it was parked
        connections.park(alive)
        replacement = connections.take()
        assert replacement is not alive and not alive.is_valid
        lease = ReadLease(engine, connections)
        try:
            assert lease.run(PreparedRead(select(bindparam("one", 1))), {}) == [(1,)]
        finally:
            lease.release()
        replacement.close()
    finally:
        connections.release_all()
        engine.dispose()


def test_losing_the_connection_invalidates_the_parked_ones(database_url):
    engine = build_engine(database_url, pool_size=2)
    try:
        connections = ReadConnections(engine, keep=2)
        first, second = connections.take(), connections.take()
        connections.park(first)
        connections.park(second)
        connections.lose_all()
        assert connections.parked == 0 and not first.is_valid and not second.is_valid
    finally:
        engine.dispose()


def test_storage_dispose_closes_the_parked_connections(database_url):
    built = Storage.build(database_url)
    lease = ReadLease(built.engine, built.read_connections)
    assert lease.run(PreparedRead(select(bindparam("one", 1))), {}) == [(1,)]
    lease.release()
    assert built.read_connections.parked == 1
    built.dispose()
    assert built.read_connections.parked == 0 and built.engine.pool.checkedout() == 0


# -- request sessions are reused once closed -----------------------------------------------------

def test_the_next_request_reuses_the_closed_session(app, storage, seeded):
    storage.spare_sessions.clear()
    with app.test_request_context("/"):
        first = get_session()
        UserRepository(first, seeded["tenant"]).read(seeded["user"], with_values=False, with_groups=False)
    assert storage.spare_sessions == [first]
    with app.test_request_context("/"):
        assert get_session() is first
        assert storage.spare_sessions == []


def test_a_reused_session_carries_nothing_over(app, storage, seeded):
    """A request that fails inside its transaction hands the next one a session with no transaction or object."""
    storage.spare_sessions.clear()
    with app.test_request_context("/"):
        session = get_session()
        with pytest.raises(RuntimeError), unit_of_work() as work:
            user = work.get(User, seeded["user"])
            user.display_name = "Never committed"
            work.flush()
            raise RuntimeError("the write fails")
        assert session.identity_map  # still holding the user until the request ends
    [spare] = storage.spare_sessions
    assert spare is session and not spare.in_transaction() and not spare.identity_map
    with app.test_request_context("/"):
        again = get_session()
        assert again is session
        assert again.get(User, seeded["user"]).display_name == "Pré «pared»"  # the flush was rolled back


def test_only_one_session_is_kept(app, storage):
    storage.spare_sessions.clear()
    with app.test_request_context("/"):
        outer = get_session()
        with app.app_context():  # a nested app context has a request session of its own
            inner = get_session()
            assert inner is not outer
    assert len(storage.spare_sessions) == 1


# -- processed rows kept by the driver's row (memo_rows) -----------------------------------------

def test_a_memo_statement_processes_a_row_once(storage, seeded):
    grant = PreparedRead(tokens._GRANT.statement, memo_rows=2)
    params = {"token_hash": tokens.hash_token(seeded["token"])}
    lease = ReadLease(storage.engine)
    try:
        first, second = lease.run(grant, params), lease.run(grant, params)
    finally:
        lease.release()
    assert first == second
    assert first == tokens._GRANT.all(storage.sessionmaker(), params)  # the rows the session gives
    memo = grant.compiled_for(storage.engine.dialect).memo
    if storage.engine.dialect.name == "sqlite":
        assert first[0] is second[0] and len(memo) == 1
    else:
        assert memo == {}  # psycopg returns the settings as a dict: unhashable, processed every time


def test_a_memo_statement_sees_every_change_of_its_row(storage, scim, seeded, tenant):
    """Revoking a token changes the row the driver returns: the kept one is never used for it."""
    assert scim.get(f"/Users/{seeded['user']}").status_code == 200
    with storage.sessionmaker() as session, session.begin():
        [record] = [t for t in tokens.list_tokens(session, tenant.id) if t.token_hash == tokens.hash_token(
            seeded["token"])]
        tokens.revoke_token(session, tenant.id, record.id)
    assert scim.get(f"/Users/{seeded['user']}").status_code == 401


def test_a_memo_is_bounded(storage):
    values = PreparedRead(select(bindparam("n", type_=Integer), bindparam("when", type_=DateTime)), memo_rows=2)
    lease = ReadLease(storage.engine)
    try:
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        rows = [lease.run(values, {"n": n, "when": moment})[0] for n in range(5)]
    finally:
        lease.release()
    assert [row[0] for row in rows] == [0, 1, 2, 3, 4]
    memo = values.compiled_for(storage.engine.dialect).memo
    assert memo is not None and len(memo) <= 2


def test_psycopg_reads_are_compiled_numbered_and_sent_as_they_are(storage, seeded):
    """On psycopg a prepared read is compiled once with ``$n`` placeholders and sent on a ``RawCursor``.

    Literal ``%`` signs (a LIKE pattern, a modulo), a parameter used twice and the statement's own
    literals come back as the session returns them, on both databases, also once psycopg has
    prepared the statement on the server (after five runs).
    """
    users = User.__table__
    statement = (select(users.c.user_name, (users.c.version % 7).label("mod"),
                        (bindparam("suffix", type_=users.c.user_name.type) + "%").label("pattern"))
                 .where(users.c.tenant_id == bindparam("tenant_id"), users.c.id == bindparam("id"),
                        users.c.user_name.like("prep%"), users.c.user_name != bindparam("suffix")))
    read = PreparedRead(statement)
    params = {"tenant_id": seeded["tenant"], "id": seeded["user"], "suffix": "x%y"}
    with storage.sessionmaker() as session:
        expected = read.all(session, params)
    assert expected == [("prepared@example.com", 1, "x%y%")]
    dialect = storage.engine.dialect
    compiled = read.compiled_for(dialect)
    cursors, sql_seen = [], []

    def record(conn, cursor, statement, parameters, context, executemany):
        cursors.append(type(cursor).__name__)
        sql_seen.append(statement)

    event.listen(storage.engine, "before_cursor_execute", record)
    lease = ReadLease(storage.engine)
    try:
        for _ in range(8):
            assert lease.run(read, params) == expected
        assert lease.run(read, {**params, "id": uuid.uuid4()}) == []
    finally:
        lease.release()
        event.remove(storage.engine, "before_cursor_execute", record)
    if dialect.driver == "psycopg":
        numbered = prepared_module.statement_dialect(dialect)
        assert numbered is not dialect and numbered.paramstyle == "numeric_dollar"
        assert numbered.server_version_info == dialect.server_version_info
        assert dialect.paramstyle == "pyformat"  # the engine's own dialect is left as it was
        assert "%(" not in compiled.sql and "$1" in compiled.sql and "%%" not in compiled.sql
        assert compiled.sent == compiled.sql.encode() and compiled.positional.count("suffix") == 1
        assert set(cursors) == {"RawCursor"}
    else:
        assert prepared_module.statement_dialect(dialect) is dialect
        assert compiled.sent is compiled.sql and compiled.cursor is None
    assert sql_seen == [compiled.sql] * 9


def test_a_numbered_read_reports_driver_errors_as_sqlalchemy_does(storage, seeded):
    """A statement the server refuses raises SQLAlchemy's error (with the SQL sent), and the lease reads on."""
    from sqlalchemy import String
    from sqlalchemy import cast
    from sqlalchemy import func
    from sqlalchemy.exc import DBAPIError

    users = User.__table__
    failing = PreparedRead(select(cast(bindparam("text", type_=String), Integer).label("number"))
                           .where(users.c.id == bindparam("id")))
    lease = ReadLease(storage.engine)
    try:
        if storage.engine.dialect.name == "sqlite":
            # SQLite casts any text to a number: the error case is PostgreSQL's.
            assert lease.run(failing, {"id": seeded["user"], "text": "12%"}) == [(12,)]
        else:
            with pytest.raises(DBAPIError) as raised:
                lease.run(failing, {"id": seeded["user"], "text": "12%"})
            assert "invalid input syntax" in str(raised.value) and "$1" in str(raised.value)
            assert not raised.value.connection_invalidated
        counted = PreparedRead(select(func.count()).select_from(users).where(users.c.id == bindparam("id")))
        assert lease.run(counted, {"id": seeded["user"]}) == [(1,)]
    finally:
        lease.release()


def test_the_numbered_dialect_follows_the_engines_first_connection(database_url):
    """A numbered copy made before the engine connected is made again once the dialect knows the server."""
    engine = build_engine(database_url)
    try:
        dialect = engine.dialect
        early = prepared_module.statement_dialect(dialect)
        with engine.connect():
            pass
        late = prepared_module.statement_dialect(dialect)
        if dialect.driver != "psycopg":
            assert early is dialect and late is dialect
            return
        assert early.server_version_info is None and late.server_version_info == dialect.server_version_info
        assert late is not early and late.paramstyle == "numeric_dollar"
        assert prepared_module.statement_dialect(dialect) is late  # kept once the server is known
    finally:
        engine.dispose()


def test_a_processs_first_read_is_compiled_after_its_first_connection(database_url, seeded, monkeypatch):
    """The lease connects before compiling, so a statement compiled by a cold process sees the initialized dialect."""
    engine = build_engine(database_url)
    compiled_knowing: list[object] = []
    real_compile = prepared_module._compile

    def observed(statement, dialect, *args, **kwargs):
        compiled_knowing.append(dialect.server_version_info)
        return real_compile(statement, dialect, *args, **kwargs)

    monkeypatch.setattr(prepared_module, "_compile", observed)
    try:
        assert engine.dialect.server_version_info is None  # nothing has connected yet
        users = User.__table__
        read = PreparedRead(select(users.c.user_name).where(users.c.id == bindparam("id")))
        lease = ReadLease(engine)
        try:
            assert lease.run(read, {"id": seeded["user"]}) == [("prepared@example.com",)]
        finally:
            lease.release()
        assert len(compiled_knowing) == 1 and compiled_knowing[0] is not None
        compiled = read.compiled_for(engine.dialect)
        assert compiled.sql == str(read.statement.compile(dialect=prepared_module.statement_dialect(engine.dialect)))
    finally:
        engine.dispose()
