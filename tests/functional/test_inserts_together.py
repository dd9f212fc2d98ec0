"""A write's INSERTs sent together (storage.prepared.InsertQueue): one statement on PostgreSQL, same rows.

``unit_of_work(inserts_together=True)`` queues what :class:`PreparedInsert` sends and sends it as
one statement of data-modifying CTEs: in autocommit when it is the whole write, otherwise in the
transaction, ahead of any other statement. SQLite sends each INSERT at once, as before; the rows
and the errors are the same on both.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select

from scim_bridge.storage.models import AuditEvent
from scim_bridge.storage.models import ChangeEvent
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserOrgState
from scim_bridge.storage.models import UserValue
from scim_bridge.storage.prepared import PreparedInsert
from scim_bridge.storage.repositories.orgs import OrgRepository
from scim_bridge.storage.session import cli_unit_of_work
from tests.functional.test_user_writes import ids_of_a_holder_and_a_waiting_writer
from tests.functional.test_user_writes import inserted_tables

_USERS = PreparedInsert(User.__table__)
_VALUES = PreparedInsert(UserValue.__table__)
_AUDIT = PreparedInsert(AuditEvent.__table__)


class Taken(Exception):
    """What the tests' conflict makes of a unique violation."""


def _user(tenant_id: uuid.UUID, name: str) -> dict[str, Any]:
    return {"id": uuid.uuid4(), "tenant_id": tenant_id, "user_name": name, "user_name_key": name.lower()}


def _value(tenant_id: uuid.UUID, user_id: uuid.UUID, position: int) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "user_id": user_id, "attribute": "emails", "position": position,
            "value": f"v{position}@example.com", "value_key": f"v{position}@example.com", "type": "work",
            "primary": position == 0}


def _audit(tenant_id: uuid.UUID, resource_id: str) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "action": "user.create", "outcome": "success", "resource_type": "User",
            "resource_id": resource_id}


def _event(subject: str) -> dict[str, Any]:
    return {"type": "user.provisioned", "subject": subject, "before": None, "after": {"n": 1}, "request_id": None}


@contextmanager
def _sent(storage):
    """Record (tables inserted, autocommit) of each statement with an INSERT, and every statement's first word."""
    seen: list[tuple[list[str], bool | None, str]] = []

    def record(_conn, cursor, sql, *_args):
        seen.append((inserted_tables(sql), getattr(cursor.connection, "autocommit", None), sql.split()[0]))

    event.listen(storage.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(storage.engine, "before_cursor_execute", record)


def _count(storage, model: Any, *where: Any) -> int:
    with storage.sessionmaker() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _is_pg(storage) -> bool:
    return storage.engine.dialect.name == "postgresql"


def test_a_writes_inserts_are_one_autocommitted_statement_when_they_are_the_whole_write(storage, tenant):
    user = _user(tenant.id, "together@example.com")
    subject = f"user:{user['id']}"
    with _sent(storage) as seen, cli_unit_of_work(storage, inserts_together=True) as session:
        _AUDIT.run(session, [_audit(tenant.id, str(user["id"]))])
        assert _USERS.run(session, [user]) == 1
        assert _VALUES.run(session, [_value(tenant.id, user["id"], p) for p in range(3)]) == 3
        OrgRepository(session, tenant.id).lock_and_append_events([_event(subject)])
    writes = [(tables, autocommit) for tables, autocommit, _ in seen if tables]
    if _is_pg(storage):
        assert writes == [(["audit_events", "users", "user_values", "events"], True)]
    else:
        assert [tables for tables, _ in writes] == [["audit_events"], ["users"], ["user_values"], ["events"]]
    assert _count(storage, User, User.id == user["id"]) == 1
    assert _count(storage, UserValue, UserValue.user_id == user["id"]) == 3
    assert _count(storage, AuditEvent, AuditEvent.resource_id == str(user["id"])) == 1
    assert _count(storage, ChangeEvent, ChangeEvent.subject == subject, ChangeEvent.tenant_id == tenant.id) == 1


def test_queued_inserts_go_before_any_other_statement_of_the_write(storage, tenant):
    """A read, an ORM flush and a lock after queued rows see them: the queue is sent first, in the transaction."""
    user = _user(tenant.id, "first@example.com")
    with _sent(storage) as seen, cli_unit_of_work(storage, inserts_together=True) as session:
        _USERS.run(session, [user])
        # A row that references the queued one (its foreign key), staged through the ORM.
        session.add(UserOrgState(user_id=user["id"], tenant_id=tenant.id, role="Viewer", primary_org_conflict=False,
                                 user_fields={}))
        assert session.scalar(select(func.count()).select_from(User).where(User.id == user["id"])) == 1
        _VALUES.run(session, [_value(tenant.id, user["id"], 0)])
    statements = [(tables, first) for tables, _, first in seen if first != "BEGIN"]
    assert [tables for tables, _ in statements[:2]] == [["users"], ["user_org_state"]]
    assert statements[-1][0] == ["user_values"]
    if _is_pg(storage):
        assert all(autocommit is False for tables, autocommit, _ in seen if tables)
    assert _count(storage, UserOrgState, UserOrgState.user_id == user["id"]) == 1
    assert _count(storage, UserValue, UserValue.user_id == user["id"]) == 1


def test_a_write_that_fails_after_its_queue_was_sent_keeps_nothing(storage, tenant):
    user = _user(tenant.id, "rolled-back@example.com")
    with pytest.raises(RuntimeError), cli_unit_of_work(storage, inserts_together=True) as session:
        _USERS.run(session, [user])
        session.scalar(select(func.count()).select_from(User))  # sends the queue, in the transaction
        raise RuntimeError("the write fails after its rows were sent")
    assert _count(storage, User, User.id == user["id"]) == 0


def test_a_write_that_fails_before_its_queue_was_sent_sends_nothing(storage, tenant):
    user = _user(tenant.id, "never-sent@example.com")
    with _sent(storage) as seen, pytest.raises(RuntimeError):
        with cli_unit_of_work(storage, inserts_together=True) as session:
            _USERS.run(session, [user])
            raise RuntimeError("the write fails before the end")
    assert [tables for tables, _, _ in seen if tables] == ([] if _is_pg(storage) else [["users"]])
    assert _count(storage, User, User.id == user["id"]) == 0


def test_a_constraint_the_statement_breaks_is_its_tables_conflict_and_writes_nothing(storage, tenant):
    with cli_unit_of_work(storage) as session:
        _USERS.run(session, [_user(tenant.id, "taken@example.com")])
    newcomer = _user(tenant.id, "TAKEN@example.com")
    with pytest.raises(Taken), cli_unit_of_work(storage, inserts_together=True) as session:
        _AUDIT.run(session, [_audit(tenant.id, str(newcomer["id"]))])
        _USERS.run(session, [newcomer], conflict=lambda error: Taken(str(error.orig)))
        _VALUES.run(session, [_value(tenant.id, newcomer["id"], 0)])
    assert _count(storage, AuditEvent, AuditEvent.resource_id == str(newcomer["id"])) == 0
    assert _count(storage, User, User.id == newcomer["id"]) == 0


def test_a_constraint_of_a_table_without_a_conflict_stays_an_integrity_error(storage, tenant):
    from sqlalchemy.exc import IntegrityError

    with cli_unit_of_work(storage) as session:
        _USERS.run(session, [_user(tenant.id, "plain@example.com")])
    with pytest.raises(IntegrityError), cli_unit_of_work(storage, inserts_together=True) as session:
        _USERS.run(session, [_user(tenant.id, "plain@example.com")])


def test_an_event_for_a_tenant_that_is_gone_fails_the_whole_write(storage, tenant):
    """The event's INSERT … SELECT inserting nothing aborts the statement: the audit row sent with it is not kept."""
    from sqlalchemy.exc import IntegrityError

    resource = str(uuid.uuid4())
    with pytest.raises(LookupError if _is_pg(storage) else IntegrityError):
        with cli_unit_of_work(storage, inserts_together=True) as session:
            _AUDIT.run(session, [_audit(tenant.id, resource)])
            OrgRepository(session, uuid.uuid4()).lock_and_append_events([_event(f"user:{resource}")])
    assert _count(storage, AuditEvent, AuditEvent.resource_id == resource) == 0


def test_two_events_that_take_the_lock_go_in_two_statements_in_order(storage, tenant):
    first, second = f"user:{uuid.uuid4()}", f"user:{uuid.uuid4()}"
    with _sent(storage) as seen, cli_unit_of_work(storage, inserts_together=True) as session:
        OrgRepository(session, tenant.id).lock_and_append_events([_event(first)])
        OrgRepository(session, tenant.id).lock_and_append_events([_event(second)])
    assert [tables for tables, _, _ in seen if tables] == [["events"], ["events"]]
    with storage.sessionmaker() as session:
        ids = dict(session.execute(select(ChangeEvent.subject, ChangeEvent.id)
                                   .where(ChangeEvent.subject.in_([first, second]))).all())
    assert ids[first] < ids[second]


def test_without_the_option_a_write_sends_each_insert_at_once(storage, tenant):
    user = _user(tenant.id, "at-once@example.com")
    with _sent(storage) as seen, cli_unit_of_work(storage) as session:
        _USERS.run(session, [user])
        _VALUES.run(session, [_value(tenant.id, user["id"], 0)])
    assert [tables for tables, _, _ in seen if tables] == [["users"], ["user_values"]]


def test_a_conflict_found_when_another_statement_sends_the_queue_is_raised_there(storage, tenant):
    with cli_unit_of_work(storage) as session:
        _USERS.run(session, [_user(tenant.id, "early@example.com")])
    newcomer = _user(tenant.id, "early@example.com")
    with pytest.raises(Taken), cli_unit_of_work(storage, inserts_together=True) as session:
        _USERS.run(session, [newcomer], conflict=lambda error: Taken(str(error.orig)))
        session.scalar(select(func.count()).select_from(User))
    assert _count(storage, User, User.id == newcomer["id"]) == 0
    with cli_unit_of_work(storage) as session:  # the pool's connections are usable afterwards
        assert session.scalar(select(func.count()).select_from(User).where(User.tenant_id == tenant.id)) == 1


@pytest.mark.xdist_group("event-lock")
def test_a_queued_event_waits_for_the_tenants_lock_and_draws_its_id_after_the_holder_commits(storage, tenant):
    """Event ids commit in id order (the change log's cursor): also when the event goes in a statement sent together."""
    if not _is_pg(storage):
        pytest.skip("SQLite serializes whole write transactions (BEGIN IMMEDIATE): no row lock to wait for")
    resource = str(uuid.uuid4())

    def write(subject: str) -> None:
        with cli_unit_of_work(storage, inserts_together=True) as other:
            _AUDIT.run(other, [_audit(tenant.id, resource)])
            OrgRepository(other, tenant.id).lock_and_append_events([_event(subject)])

    def nothing_yet() -> None:  # one statement: its audit record waits with its event
        assert _count(storage, AuditEvent, AuditEvent.resource_id == resource) == 0

    holder, waiting = ids_of_a_holder_and_a_waiting_writer(storage, tenant, write, nothing_yet)
    assert holder < waiting
    assert _count(storage, AuditEvent, AuditEvent.resource_id == resource) == 1
