"""Prepared inserts (storage.prepared.PreparedInsert): the rows SQLAlchemy would write, on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Column
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import event
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from scim_bridge.storage import prepared
from scim_bridge.storage.models import AuditEvent
from scim_bridge.storage.models import ChangeEvent
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserOrgState
from scim_bridge.storage.models import UserValue
from scim_bridge.storage.prepared import PreparedInsert
from scim_bridge.storage.session import cli_unit_of_work

MOMENT = datetime(2026, 12, 5, 9, 30, 15, 123456, tzinfo=UTC)


def _user_row(tenant_id: uuid.UUID, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": uuid.uuid4(), "tenant_id": tenant_id, "user_name": name, "user_name_key": name.lower(), **extra}


def _columns(row: Any, table: Table, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in table.columns if c.key not in skip}


def test_rows_equal_what_the_session_inserts(storage, tenant):
    """Each table a create writes: the prepared row reads back equal to the one Session.execute wrote."""
    user_ids = [uuid.uuid4(), uuid.uuid4()]
    users = [{"id": uid, "tenant_id": tenant.id, "user_name": f"u{n}@example.com", "user_name_key": f"u{n}@example.com",
              "external_id": f"ext-{n}", "display_name": "Zoë «quoted»", "active": False, "version": 3,
              "created": MOMENT, "last_modified": MOMENT, "employee_number": "42"} for n, uid in enumerate(user_ids)]
    ways = (("session", lambda s, t, rows: s.execute(insert(t), rows)),
            ("prepared", lambda s, t, rows: PreparedInsert(t).run(s, rows)))
    stored = {}
    for n, (way, write) in enumerate(ways):
        uid = user_ids[n]
        with cli_unit_of_work(storage) as session:
            write(session, User.__table__, [users[n]])
            write(session, UserValue.__table__, [
                {"tenant_id": tenant.id, "user_id": uid, "attribute": "emails", "position": p, "value": f"v{p}",
                 "value_key": f"v{p}", "type": "work", "primary": p == 0} for p in range(2)])
            write(session, UserOrgState.__table__, [
                {"user_id": uid, "tenant_id": tenant.id, "primary_org_pk": None, "role": "viewer",
                 "primary_org_conflict": False, "user_fields": {"user_name": "x", "nested": {"a": [1, None]}},
                 "updated": MOMENT}])
            write(session, ChangeEvent.__table__, [
                {"tenant_id": tenant.id, "type": "user.provisioned", "subject": f"user:{way}", "before": None,
                 "after": {"k": "é"}, "request_id": "r", "occurred_at": MOMENT}])
            write(session, AuditEvent.__table__, [
                {"occurred_at": MOMENT, "tenant_id": tenant.id, "client": "c", "action": "create",
                 "resource_type": "User", "resource_id": way, "outcome": "success", "status": None,
                 "detail": None, "request_id": "r", "remote_addr": None}])
        with storage.sessionmaker() as session:
            user = session.get(User, uid)
            values = session.scalars(select(UserValue).where(UserValue.user_id == uid)
                                     .order_by(UserValue.position)).all()
            state = session.get(UserOrgState, uid)
            change = session.scalars(select(ChangeEvent).where(ChangeEvent.subject == f"user:{way}")).one()
            record = session.scalars(select(AuditEvent).where(AuditEvent.resource_id == way)).one()
            stored[way] = (
                _columns(user, User.__table__, ("id", "user_name", "user_name_key", "external_id")),
                [_columns(v, UserValue.__table__, ("id", "user_id")) for v in values],
                _columns(state, UserOrgState.__table__, ("user_id",)),
                _columns(change, ChangeEvent.__table__, ("id", "subject")),
                _columns(record, AuditEvent.__table__, ("id", "resource_id")),
            )
    assert stored["prepared"] == stored["session"]


def test_missing_columns_take_their_python_defaults(storage, tenant):
    uid = uuid.uuid4()
    before = datetime.now(UTC)
    with cli_unit_of_work(storage) as session:
        PreparedInsert(User.__table__).run(session, [_user_row(tenant.id, "defaults@example.com", id=uid)])
    with storage.sessionmaker() as session:
        user = session.get(User, uid)
    assert user.version == 1 and user.active is True  # scalar defaults
    created = user.created if user.created.tzinfo else user.created.replace(tzinfo=UTC)
    assert created >= before.replace(microsecond=0)  # callable default (utcnow)
    assert user.display_name is None  # no default: NULL


def test_an_explicit_none_is_sent_as_null_not_replaced_by_the_default(storage, tenant):
    uid = uuid.uuid4()
    with cli_unit_of_work(storage) as session:
        PreparedInsert(User.__table__).run(session, [_user_row(tenant.id, "null@example.com", id=uid, active=None)])
    with storage.sessionmaker() as session:
        assert session.get(User, uid).active is None


def test_a_unique_violation_is_sqlalchemys_integrity_error_and_rolls_back(storage, tenant):
    first = _user_row(tenant.id, "taken@example.com")
    with cli_unit_of_work(storage) as session:
        PreparedInsert(User.__table__).run(session, [first])
    second = _user_row(tenant.id, "taken@example.com")
    with pytest.raises(IntegrityError):
        with cli_unit_of_work(storage) as session:
            PreparedInsert(User.__table__).run(session, [_user_row(tenant.id, "other@example.com")])
            PreparedInsert(User.__table__).run(session, [second])
    with storage.sessionmaker() as session:
        names = session.scalars(select(User.user_name).where(User.tenant_id == tenant.id)).all()
    assert sorted(names) == ["taken@example.com"]  # the whole transaction rolled back


def test_pending_orm_changes_are_flushed_first(storage, tenant):
    """As Session.execute autoflushes: a staged user exists before its state row goes in (foreign key)."""
    uid = uuid.uuid4()
    with cli_unit_of_work(storage) as session:
        session.add(User(**_user_row(tenant.id, "staged@example.com", id=uid)))
        PreparedInsert(UserOrgState.__table__).run(session, [
            {"user_id": uid, "tenant_id": tenant.id, "role": "viewer", "primary_org_pk": None}])
    with storage.sessionmaker() as session:
        state = session.get(UserOrgState, uid)
    assert state.role == "viewer" and state.user_fields == {} and state.primary_org_conflict is False


def test_cursor_events_fire_with_the_statement_and_its_parameters(storage, tenant):
    seen: list[tuple[Any, str, bool]] = []

    def record(conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, many: bool) -> None:
        seen.append((conn, statement, many))

    event.listen(storage.engine, "before_cursor_execute", record)
    try:
        with cli_unit_of_work(storage) as session:
            PreparedInsert(User.__table__).run(session, [_user_row(tenant.id, "one@example.com")])
            PreparedInsert(User.__table__).run(session, [_user_row(tenant.id, f"m{n}@example.com") for n in range(3)])
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)
    inserts = [(conn, many) for conn, statement, many in seen if statement.startswith("INSERT INTO users")]
    assert [many for _, many in inserts] == [False, True]
    assert all(conn is not None for conn, _ in inserts)


def test_many_rows_go_through_the_session(storage, tenant, monkeypatch):
    monkeypatch.setattr(prepared, "CURSOR_ROWS_AT_MOST", 2)
    rows = [_user_row(tenant.id, f"bulk{n}@example.com") for n in range(3)]
    executed: list[Any] = []
    with cli_unit_of_work(storage) as session:
        original = session.execute
        monkeypatch.setattr(session, "execute", lambda stmt, params=None, **kw: executed.append(stmt) or
                            original(stmt, params, **kw))
        PreparedInsert(User.__table__).run(session, rows)
    assert len(executed) == 1
    with storage.sessionmaker() as session:
        count = session.scalar(select(text("count(*)")).select_from(User.__table__)
                               .where(User.tenant_id == tenant.id))
    assert count == 3


def test_no_rows_send_no_statement(storage):
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(storage.engine, "before_cursor_execute", record)
    try:
        with cli_unit_of_work(storage) as session:
            PreparedInsert(User.__table__).run(session, [])
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)
    assert not [s for s in seen if s.startswith("INSERT")]


def test_tables_with_server_defaults_are_refused():
    table = Table("with_server_default", MetaData(), Column("id", Integer, primary_key=True),
                  Column("name", String(10), server_default="x"))
    with pytest.raises(ValueError, match="server-side defaults"):
        PreparedInsert(table)


def test_sql_expression_defaults_are_refused():
    table = Table("with_sql_default", MetaData(), Column("id", Integer, primary_key=True),
                  Column("name", String(10), default=text("'x'")))
    with pytest.raises(ValueError, match="scalar and callable"):
        PreparedInsert(table)


def test_a_lost_connection_is_invalidated_and_reported_as_such(storage, tenant, monkeypatch):
    """A driver error the dialect calls a disconnect: the connection is invalidated, the error says so (503)."""
    from sqlalchemy.exc import DBAPIError

    from scim_bridge.storage.engine import is_disconnect

    dialect = storage.engine.dialect
    monkeypatch.setattr(dialect, "is_disconnect", lambda *_args: True)
    invalidated: list[BaseException | None] = []
    with pytest.raises(DBAPIError) as raised:
        with cli_unit_of_work(storage) as session:
            connection = session.connection()
            original = connection.invalidate
            monkeypatch.setattr(connection, "invalidate",
                                lambda exception=None: invalidated.append(exception) or original(exception))
            # NOT NULL violated: any driver error will do once the dialect calls it a disconnect.
            PreparedInsert(User.__table__).run(session, [_user_row(tenant.id, "lost@example.com", user_name=None)])
    assert raised.value.connection_invalidated and is_disconnect(raised.value)
    assert len(invalidated) == 1 and invalidated[0] is raised.value.orig


def test_rows_bound_before_the_transaction_are_sent_in_it(storage, tenant):
    """bind() processes rows without a statement or a transaction; send() inserts them later."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    users = PreparedInsert(User.__table__)
    event.listen(storage.engine, "before_cursor_execute", record)
    try:
        with storage.sessionmaker() as session:
            bound = users.bind(session.get_bind().dialect, [_user_row(tenant.id, "bound@example.com")])
            assert seen == [] and not session.in_transaction()
        with cli_unit_of_work(storage) as session:
            users.send(session, bound)
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)
    assert [s for s in seen if s.startswith("INSERT")] == [users._compiled[storage.engine.dialect.name].sql]
    with storage.sessionmaker() as session:
        stored = session.scalars(select(User).where(User.tenant_id == tenant.id)).one()
    assert stored.tenant_id == tenant.id and stored.active is True  # a Python default, given at bind time


def test_bound_rows_go_only_to_their_table_and_dialect(storage, tenant):
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.dialects import sqlite

    users, values = PreparedInsert(User.__table__), PreparedInsert(UserValue.__table__)
    bound = users.bind(storage.engine.dialect, [_user_row(tenant.id, "wrong@example.com")])
    other = postgresql.psycopg.dialect() if storage.is_sqlite else sqlite.pysqlite.dialect()
    elsewhere = users.bind(other, [_user_row(tenant.id, "elsewhere@example.com")])
    with cli_unit_of_work(storage) as session:
        with pytest.raises(ValueError, match="rows bound for users, not user_values"):
            values.send(session, bound)
        with pytest.raises(ValueError, match=f"rows bound for {other.name}, sent to {storage.engine.dialect.name}"):
            users.send(session, elsewhere)
    with storage.sessionmaker() as session:
        assert session.scalar(select(text("count(*)")).select_from(User.__table__)
                              .where(User.tenant_id == tenant.id)) == 0


def test_many_bound_rows_go_through_the_session(storage, tenant, monkeypatch):
    monkeypatch.setattr(prepared, "CURSOR_ROWS_AT_MOST", 1)
    users = PreparedInsert(User.__table__)
    bound = users.bind(storage.engine.dialect, [_user_row(tenant.id, f"many{n}@example.com") for n in range(2)])
    assert bound.cursor is False
    with cli_unit_of_work(storage) as session:
        users.send(session, bound)
    with storage.sessionmaker() as session:
        assert session.scalar(select(text("count(*)")).select_from(User.__table__)
                              .where(User.tenant_id == tenant.id)) == 2


def test_a_statement_on_the_cursor_fails_as_sqlalchemys_error(storage):
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError) as raised, cli_unit_of_work(storage) as session:
        prepared.execute_on_cursor(session.connection(), "INSERT INTO no_such_table VALUES (1)")
    assert "no_such_table" in str(raised.value) and not raised.value.connection_invalidated
