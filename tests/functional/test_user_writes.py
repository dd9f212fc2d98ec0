"""The fast user write paths (issue 7) store and answer exactly what the plain paths do, on every backend.

POST/PUT/PATCH render their answer from what the write holds (``UserService.render_written``), a
PUT keeps multi-valued rows that did not change, and Bulk creates runs of users in batches
(``UserService.create_together``): each is checked here against the path it replaces.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from scim_bridge.domain import audit
from scim_bridge.domain.events import read_events
from scim_bridge.scim.schema import BULK_REQUEST_SCHEMA
from scim_bridge.scim.schema import PATCH_OP_SCHEMA
from scim_bridge.scim.schema import USER_SCHEMA
from scim_bridge.storage.models import User
from scim_bridge.storage.models import UserOrgState
from scim_bridge.storage.models import UserValue
from scim_bridge.storage.repositories.users import UserRepository
from tests.functional.test_users import FULL_USER

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
INFINITY = "urn:scim-bridge:params:scim:schemas:extension:infinity:2.0:User"


def inserted_tables(statement: str) -> list[str]:
    """Return the tables a statement inserts into, in order.

    Also the INSERTs of a WITH (PostgreSQL): the event's that takes the tenant's lock
    (lock_and_append_events), and a create's rows sent together (prepared.InsertQueue).
    """
    words = statement.split()
    if words[:1] == ["WITH"]:
        return [part.split()[0] for part in statement.split("INSERT INTO ")[1:]]
    return [words[2]] if words[:2] == ["INSERT", "INTO"] else []


def body_of(prefix: str, i: int) -> dict[str, Any]:
    """Return a user body whose unique values carry *prefix*; everything else depends on *i* only."""
    return {"schemas": [USER_SCHEMA, ENTERPRISE], "userName": f"{prefix}-{i}@example.com",
            "externalId": f"{prefix}-{i}", "name": {"givenName": f"Given{i}", "familyName": "Family"},
            "displayName": f"User {i}", "active": i % 3 != 0,
            "emails": [{"value": f"mail{i}@example.com", "type": "work", "primary": True},
                       {"value": f"home{i}@example.com", "type": "home"}][:1 + i % 2],
            "phoneNumbers": [{"value": f"555-{i:04d}", "type": "work"}] if i % 4 == 0 else [],
            ENTERPRISE: {"department": f"Dept{i % 5}"}}


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    """Return a PatchOp body."""
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def bulk_create(scim: Any, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create users with one BulkRequest; return the operation results."""
    operations = [{"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": b} for i, b in enumerate(bodies)]
    response = scim.post("/Bulk", {"schemas": [BULK_REQUEST_SCHEMA], "Operations": operations})
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["Operations"])


def id_of(result: dict[str, Any]) -> uuid.UUID:
    """Return the id of the resource an operation result points at."""
    return uuid.UUID(result["location"].rsplit("/", 1)[1])


@pytest.mark.parametrize("query", ["", "?attributes=groups,emails,userName",
                                   f"?attributes={INFINITY}:role,{INFINITY}:orgIds,emails",
                                   "?excludedAttributes=groups"])
def test_write_answers_are_what_a_get_returns_afterwards(scim, query):
    created = scim.post(f"/Users{query}", FULL_USER)
    assert created.status_code == 201
    user_id = created.get_json()["id"]
    path = f"/Users/{user_id}"
    assert created.get_json() == scim.get(f"{path}{query}").get_json()
    scim.create_group("Readers", [user_id])
    same_values = {**FULL_USER, "displayName": "Renamed"}
    other_values = {**FULL_USER, "emails": [{"value": "new@example.com", "type": "work"}], "addresses": []}
    for method, body in (("PUT", same_values), ("PUT", other_values),
                         ("PATCH", patch({"op": "replace", "path": "active", "value": False})),
                         ("PATCH", patch({"op": "add", "path": "emails", "value": [{"value": "x@example.com"}]})),
                         ("PATCH", patch({"op": "replace", "path": "active", "value": False}))):  # no change
        answer = scim.request(method, f"{path}{query}", body)
        assert answer.status_code == 200, (method, answer.get_json())
        assert answer.get_json() == scim.get(f"{path}{query}").get_json(), (method, body)


def test_put_keeps_unchanged_value_rows_and_replaces_changed_ones(scim, engine):
    user = scim.post("/Users", FULL_USER).get_json()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        assert scim.put(f"/Users/{user['id']}", {**FULL_USER, "displayName": "Other"}).status_code == 200
        unchanged = [s for s in statements if "user_values" in s and not s.startswith("SELECT")]
        statements.clear()
        reordered = {**FULL_USER, "emails": list(reversed(FULL_USER["emails"]))}
        assert scim.put(f"/Users/{user['id']}", reordered).status_code == 200
        changed = [s.split()[0] for s in statements if "user_values" in s and not s.startswith("SELECT")]
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert unchanged == []
    assert changed[0] == "DELETE" and set(changed[1:]) == {"INSERT"}  # one INSERT per row on SQLite
    assert [e["value"] for e in scim.get(f"/Users/{user['id']}").get_json()["emails"]] == [
        e["value"] for e in reordered["emails"]]


def test_a_create_writes_each_of_its_rows_with_one_insert_in_order(scim, engine, tenant, db_session):
    statements: list[tuple[str, bool | None]] = []

    def record(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        # psycopg's connection says whether it is in autocommit; sqlite3's has no such attribute.
        statements.append((statement, getattr(cursor.connection, "autocommit", None)))

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        created = scim.post("/Users", FULL_USER)
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert created.status_code == 201
    # (The request's rate-limit count, kept apart from the write, may insert its counter row.)
    writes = [(tables, autocommit) for tables, autocommit in
              ((inserted_tables(statement), autocommit) for statement, autocommit in statements)
              if tables and tables != ["rate_limit_counters"]]
    # The success audit record goes first (the user's id is known before the write); the org
    # state row goes in as a plain INSERT right after the user's rows (no ORM flush).
    inserts = [table for tables, _ in writes for table in tables]
    assert inserts == ["audit_events", "users", "user_values", "user_org_state", "events"]
    if engine.dialect.name == "postgresql":
        # All five in one statement, which is the whole write: sent in autocommit (no BEGIN, no
        # COMMIT of its own), so the tenant's event lock is held only while the server runs it.
        assert len(writes) == 1 and writes[0][1] is True
    else:
        assert len(writes) == 5
    state = db_session.get(UserOrgState, uuid.UUID(created.get_json()["id"]))
    assert state is not None and state.tenant_id == tenant.id
    assert state.primary_org_pk is None and state.primary_org_conflict is False and state.role
    assert state.user_fields["user_name"] == FULL_USER["userName"]


def _stored(db_session: Any, tenant_id: uuid.UUID, user_ids: list[uuid.UUID], prefix: str) -> list[Any]:
    """Return what is stored about *user_ids*, in order, with the prefix and ids taken out."""
    db_session.rollback()  # a fresh snapshot (SQLite keeps the one of the session's read transaction)
    users = {u.id: u for u in db_session.scalars(select(User).where(User.id.in_(user_ids)))}
    states = {s.user_id: s for s in db_session.scalars(select(UserOrgState).where(
        UserOrgState.user_id.in_(user_ids)))}
    values = UserRepository(db_session, tenant_id).values_of(user_ids)
    skip = {"id", "user_id", "user_name", "user_name_key", "external_id", "created", "last_modified"}
    out = []
    for uid in user_ids:
        user = users[uid]
        columns = {c.key: getattr(user, c.key) for c in User.__table__.columns if c.key not in skip}
        columns["rendered"] = columns["rendered"].replace(prefix, "")  # the stored userName and externalId
        rows = [{c.key: getattr(v, c.key) for c in UserValue.__table__.columns if c.key not in skip}
                for v in values[uid]]
        fields = {k: v for k, v in (states[uid].user_fields or {}).items() if k != "user_name"}
        out.append((user.user_name.startswith(prefix), user.external_id.startswith(prefix), columns, rows,
                    states[uid].role, states[uid].primary_org_pk, states[uid].primary_org_conflict, fields))
    return out


def _events(db_session: Any, tenant_id: uuid.UUID, after: int, user_ids: list[uuid.UUID]) -> list[Any]:
    db_session.rollback()
    subjects = {f"user:{uid}": n for n, uid in enumerate(user_ids)}
    out = []
    for event in read_events(db_session, tenant_id, after):
        if event["subject"] in subjects:
            payload = {k: v for k, v in (event["after"] or {}).items() if k != "user_name"}
            out.append((subjects[event["subject"]], event["type"], event["before"], payload,
                        event["request_id"] is not None))
    return out


def _audit(db_session: Any, tenant_id: uuid.UUID, user_ids: list[uuid.UUID]) -> list[Any]:
    records = audit.query(db_session, audit.AuditFilter(tenant_id, action="user.create"), limit=1000)
    position = {str(uid): n for n, uid in enumerate(user_ids)}
    return sorted((position[r.resource_id], r.action, r.outcome, r.resource_type, r.status, r.detail,
                   r.client.startswith("token:")) for r in records if r.resource_id in position)


def _cursor(db_session: Any, tenant_id: uuid.UUID) -> int:
    db_session.rollback()
    events = read_events(db_session, tenant_id, 0, 100_000)
    return int(events[-1]["cursor"]) if events else 0


def test_bulk_batches_store_rows_events_and_audit_records_like_single_creates(scim, tenant, db_session):
    count = 130  # more than one batch (a batch is at most 100 operations)
    start = _cursor(db_session, tenant.id)
    single = [uuid.UUID(scim.post("/Users", body_of("single", i)).get_json()["id"]) for i in range(count)]
    middle = _cursor(db_session, tenant.id)
    results = bulk_create(scim, [body_of("bulk", i) for i in range(count)])
    assert {r["status"] for r in results} == {"201"}
    batched = [id_of(r) for r in results]
    assert _stored(db_session, tenant.id, batched, "bulk") == _stored(db_session, tenant.id, single, "single")
    single_events = _events(db_session, tenant.id, start, single)
    batched_events = _events(db_session, tenant.id, middle, batched)
    assert batched_events == single_events and len(batched_events) == count
    # The cursor follows the order of the operations, as it does for one request after another.
    assert [n for n, *_ in batched_events] == list(range(count))
    assert _audit(db_session, tenant.id, batched) == _audit(db_session, tenant.id, single)
    assert [r["version"] for r in results] == ['W/"1"'] * count
    for result, uid in zip(results[:3], batched[:3], strict=True):
        assert scim.get(f"/Users/{uid}").get_json()["meta"]["location"] == result["location"]


def test_bulk_batch_checks_uniqueness_against_the_database_and_itself(scim):
    scim.create_user("taken@example.com", externalId="taken-ext")
    bodies = [body_of("ok", i) for i in range(6)]
    bodies[1]["userName"] = "TAKEN@example.com"
    bodies[2]["externalId"] = "taken-ext"
    bodies[4]["userName"] = bodies[3]["userName"].upper()
    bodies[5]["externalId"] = bodies[0]["externalId"]
    results = bulk_create(scim, bodies)
    assert [r["status"] for r in results] == ["201", "409", "409", "201", "409", "409"]
    assert all(r["response"]["scimType"] == "uniqueness" for r in results if r["status"] == "409")


def test_bulk_batch_losing_a_uniqueness_race_runs_its_operations_one_by_one(scim, tenant, db_session,
                                                                            monkeypatch):
    """A value taken after the batch's check fails the batch's flush; each operation then gets its own outcome."""
    scim.create_user("raced@example.com")
    # The batch's up-front check sees nobody, as if the holder had committed just after it ran.
    monkeypatch.setattr(UserRepository, "holders_of_many", lambda self, names, external_ids: [])
    bodies = [body_of("race", i) for i in range(5)]
    bodies[3]["userName"] = "raced@example.com"
    results = bulk_create(scim, bodies)
    assert [r["status"] for r in results] == ["201", "201", "201", "409", "201"]
    assert results[3]["response"]["scimType"] == "uniqueness"
    db_session.rollback()
    names = [r.user_name for r in db_session.scalars(select(User).where(User.tenant_id == tenant.id))]
    assert sorted(names) == sorted(["raced@example.com"] + [bodies[i]["userName"] for i in (0, 1, 2, 4)])
    records = audit.query(db_session, audit.AuditFilter(tenant.id, action="user.create"), limit=100)
    assert sorted(r.outcome for r in records) == ["failure"] + ["success"] * 5
    provisioned = [e for e in read_events(db_session, tenant.id) if e["type"] == "user.provisioned"]
    assert len(provisioned) == 5


def _write_lock_is_free(storage, tenant_id: uuid.UUID) -> bool:
    """Tell whether another writer could take the write locks a create holds right now, without waiting."""
    with storage.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            raw = conn.connection.dbapi_connection
            raw.execute("PRAGMA busy_timeout = 0")
            try:
                raw.execute("BEGIN IMMEDIATE")
            except Exception:  # noqa: BLE001 - "database is locked"
                return False
            raw.execute("ROLLBACK")
            return True
        # PostgreSQL: the tenant row that event writers lock (FOR NO KEY UPDATE) until they commit.
        from sqlalchemy import text
        try:
            with conn.begin():
                conn.execute(text("SET LOCAL lock_timeout = '100ms'"))
                conn.execute(text("SELECT id FROM tenants WHERE id = :id FOR NO KEY UPDATE"), {"id": tenant_id})
        except Exception:  # noqa: BLE001 - lock timeout
            return False
        return True


def test_create_checks_and_hashes_outside_the_write_transaction(scim, storage, tenant, monkeypatch):
    # Validation, the uniqueness query and password hashing happen before the write's locks are
    # taken: other writers do not wait on a slow hash (UserService.prepare_create).
    import scim_bridge.domain.users as users_module
    seen: list[bool] = []
    real_hash = users_module.hash_password

    def observed(password: str) -> str:
        seen.append(_write_lock_is_free(storage, tenant.id))
        return real_hash(password)

    monkeypatch.setattr(users_module, "hash_password", observed)
    created = scim.post("/Users", {**body_of("hashed", 1), "password": "s3cret-Passw0rd!"})
    assert created.status_code == 201, created.get_json()
    assert seen == [True]
    # A taken userName still answers 409 from the check, before any write.
    again = scim.post("/Users", {**body_of("hashed", 1), "externalId": "other"})
    assert again.status_code == 409 and again.get_json()["scimType"] == "uniqueness"


def test_a_create_binds_its_rows_before_the_write_transaction(scim, storage, tenant, monkeypatch):
    # The user's, its values' and its org state's INSERTs are bound (defaults, type processing) by
    # prepare_create; inside the write transaction they are only sent.
    from scim_bridge.storage.prepared import PreparedInsert
    bound: list[tuple[str, bool]] = []
    real_bind = PreparedInsert.bind

    def observed(self: PreparedInsert, dialect: Any, rows: Any) -> Any:
        bound.append((self.table.name, _write_lock_is_free(storage, tenant.id)))
        return real_bind(self, dialect, rows)

    monkeypatch.setattr(PreparedInsert, "bind", observed)
    created = scim.post("/Users", FULL_USER)
    assert created.status_code == 201, created.get_json()
    before = [name for name, free in bound if free]
    assert before[:3] == ["users", "user_values", "user_org_state"]
    # On SQLite, whose write lock is the transaction's, the audit record and the event are bound
    # under it; on PostgreSQL the audit record goes in before the tenant's event lock is taken, and
    # the event is bound before the statement that takes the lock and inserts it is sent.
    under_lock = [name for name, free in bound if not free]
    assert under_lock == (["audit_events", "events"] if storage.is_sqlite else [])
    if not storage.is_sqlite:
        assert before[3:] == ["audit_events", "events"]


@pytest.mark.parametrize("write", ["create", "replace", "patch", "delete"])
def test_a_writes_audit_record_goes_in_before_the_tenants_event_lock(scim, engine, write):
    # PostgreSQL serializes a tenant's event appends on a row lock held until COMMIT: the success
    # record, whose resource is known up front, is inserted before the write takes it.
    user = scim.post("/Users", body_of("early-audit", 1)).get_json()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    path = f"/Users/{user['id']}"
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        if write == "create":
            answer = scim.post("/Users", body_of("early-audit", 2))
        elif write == "replace":
            answer = scim.put(path, {**body_of("early-audit", 1), "active": False})
        elif write == "patch":
            answer = scim.patch(path, {"schemas": [PATCH_OP_SCHEMA],
                                       "Operations": [{"op": "replace", "path": "active", "value": False}]})
        else:
            answer = scim.delete(path)
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert answer.status_code in (200, 201, 204), answer.get_json()
    audit_at = next(n for n, s in enumerate(statements) if "audit_events" in inserted_tables(s))
    events_at = next(n for n, s in enumerate(statements) if "events" in inserted_tables(s))
    locks = [n for n, s in enumerate(statements) if "FOR NO KEY UPDATE" in s and "tenants" in s]
    if write == "create" and engine.dialect.name == "postgresql":
        # A create's rows go in one autocommitted statement: the lock lasts that statement only.
        tables = inserted_tables(statements[audit_at])
        assert audit_at == events_at == locks[0] and tables.index("audit_events") < tables.index("events")
        return
    assert audit_at < events_at
    if engine.dialect.name == "postgresql":
        assert locks and audit_at < locks[0]


def test_a_create_that_loses_the_uniqueness_race_after_its_check_answers_409(scim, monkeypatch):
    # Between prepare_create's check and the flush another create may take the userName: the
    # unique constraint refuses it and the answer is 409 uniqueness, with nothing written.
    from scim_bridge.domain.users import UserService
    first = scim.post("/Users", body_of("race", 1))
    assert first.status_code == 201
    monkeypatch.setattr(UserService, "_check_unique", lambda self, data, own: None)
    lost = scim.post("/Users", {**body_of("race", 1), "externalId": "race-other"})
    assert lost.status_code == 409, lost.get_json()
    assert lost.get_json()["scimType"] == "uniqueness"
    listed = scim.get('/Users?filter=externalId eq "race-other"').get_json()
    assert listed["totalResults"] == 0


def test_new_users_and_groups_get_time_ordered_ids(scim):
    # UUID version 7: rows of new resources append to the indexes that lead with the id.
    users = [uuid.UUID(scim.post("/Users", body_of("v7", n)).get_json()["id"]) for n in range(3)]
    group = uuid.UUID(scim.post("/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                            "displayName": "v7 group"}).get_json()["id"])
    assert {made.version for made in users + [group]} == {7}
    assert [made.int >> 80 for made in users] == sorted(made.int >> 80 for made in users)
    assert users[0].int >> 80 <= group.int >> 80


def test_a_creates_uniqueness_check_reads_on_the_lease_and_a_puts_in_the_write(scim, engine):
    # SQLite: the create's check runs before its write transaction, on the request's read lease
    # (a statement with no SQLAlchemy connection), so no transaction is opened only for the write
    # to commit it first. PostgreSQL: no query at all, the unique constraints of the INSERT (one
    # statement with the rest of the write) decide, with the same answers. A PUT checks inside
    # its write transaction, on the write's connection.
    user = scim.post("/Users", body_of("lease-check", 1)).get_json()
    seen: list[tuple[bool, str]] = []

    def record(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if " ".join(statement.split()).startswith("SELECT users.id, users.user_name_key, users.external_id FROM"):
            seen.append((conn is None, statement))

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        created = scim.post("/Users", body_of("lease-check", 2))
        on_lease = list(seen)
        seen.clear()
        replaced = scim.put(f"/Users/{user['id']}", {**body_of("lease-check", 1), "userName": "renamed@example.com"})
        in_write = list(seen)
        seen.clear()
        taken = scim.post("/Users", {**body_of("lease-check", 3), "userName": "renamed@example.com"})
        taken_ext = scim.post("/Users", {**body_of("lease-check", 4), "externalId": body_of("lease-check", 2)
                                         ["externalId"]})
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert created.status_code == 201 and replaced.status_code == 200
    assert [lease for lease, _ in on_lease] == ([] if engine.dialect.name == "postgresql" else [True])
    assert [lease for lease, _ in in_write] == [False]
    assert taken.status_code == 409 and taken.get_json()["scimType"] == "uniqueness"
    assert taken.get_json()["detail"] == "userName 'renamed@example.com' is already in use"
    assert taken_ext.status_code == 409 and taken_ext.get_json()["detail"] == (
        f"externalId '{body_of('lease-check', 2)['externalId']}' is already in use by another User")


def test_the_tenants_event_lock_is_held_until_commit_and_comes_after_pending_rows(storage, tenant):
    # PreparedCommand: the lock statement runs on the write transaction's own connection (the row
    # stays locked until COMMIT: another transaction cannot take it meanwhile), after the ORM's
    # pending rows are flushed, as Session.execute would have flushed them.
    from sqlalchemy import text

    from scim_bridge.storage.base import utcnow
    from scim_bridge.storage.models import Org
    from scim_bridge.storage.repositories.orgs import OrgRepository

    order: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        order.append(statement.split()[0] + (" lock" if "FOR NO KEY UPDATE" in statement else ""))

    with storage.sessionmaker() as session, session.begin():
        now = utcnow()
        session.add(Org(tenant_id=tenant.id, org_id=f"lock-{uuid.uuid4().hex[:8]}", name="Lock test", source="manual",
                        name_locked=True, orphaned=False, version=1, created=now, last_modified=now))
        sa_event.listen(storage.engine, "before_cursor_execute", record)
        try:
            OrgRepository(session, tenant.id).lock_tenant()
        finally:
            sa_event.remove(storage.engine, "before_cursor_execute", record)
        if storage.is_sqlite:
            assert order == []  # the write transaction holds SQLite's one lock already: nothing to send
        else:
            assert order == ["INSERT", "SELECT lock"]
            with storage.engine.connect() as other:
                other.execute(text("SET lock_timeout = '100ms'"))
                with pytest.raises(Exception, match="lock"):
                    other.execute(text("SELECT id FROM tenants WHERE id = :id FOR NO KEY UPDATE"),
                                  {"id": tenant.id})
                other.rollback()
    if not storage.is_sqlite:
        with storage.engine.connect() as other:
            other.execute(text("SET lock_timeout = '100ms'"))
            assert other.execute(text("SELECT id FROM tenants WHERE id = :id FOR NO KEY UPDATE"),
                                 {"id": tenant.id}).scalar_one() == tenant.id
            other.rollback()


def _event_row(subject: str) -> dict[str, Any]:
    return {"type": "user.updated", "subject": subject, "before": {"n": 1}, "after": {"n": 2}, "request_id": None}


@pytest.mark.parametrize("count", [1, 2])
def test_an_event_append_takes_the_tenants_lock_in_its_own_insert_when_it_is_one_row(storage, tenant, count):
    # lock_and_append_events: on PostgreSQL one event (most writes append one) goes in with the
    # lock in one statement (WITH … FOR NO KEY UPDATE INSERT … SELECT): a round trip fewer while
    # the lock is held; several take the lock, then one INSERT. The row stays locked until COMMIT.
    from sqlalchemy import text

    from scim_bridge.storage.models import ChangeEvent
    from scim_bridge.storage.repositories.orgs import OrgRepository

    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's transaction begins on the first statement
            sent.append(statement)

    subjects = [f"user:{uuid.uuid4()}" for _ in range(count)]
    with storage.sessionmaker() as session, session.begin():
        sa_event.listen(storage.engine, "before_cursor_execute", record)
        try:
            OrgRepository(session, tenant.id).lock_and_append_events([_event_row(s) for s in subjects])
        finally:
            sa_event.remove(storage.engine, "before_cursor_execute", record)
        shapes = [(" ".join(inserted_tables(s)) or s.split()[0]) + (" lock" if "FOR NO KEY UPDATE" in s else "")
                  for s in sent]
        if storage.is_sqlite:
            assert shapes == ["events"]  # SQLite's write transaction holds the one lock already
        else:
            assert shapes == (["events lock"] if count == 1 else ["SELECT lock", "events"])
            with storage.engine.connect() as other:
                other.execute(text("SET lock_timeout = '100ms'"))
                with pytest.raises(Exception, match="lock"):
                    other.execute(text("SELECT id FROM tenants WHERE id = :id FOR NO KEY UPDATE"), {"id": tenant.id})
                other.rollback()
    with storage.sessionmaker() as session:
        rows = session.execute(select(ChangeEvent.subject, ChangeEvent.tenant_id, ChangeEvent.before, ChangeEvent.after)
                               .where(ChangeEvent.subject.in_(subjects)).order_by(ChangeEvent.id)).all()
    assert [tuple(r) for r in rows] == [(s, tenant.id, {"n": 1}, {"n": 2}) for s in subjects]


def ids_of_a_holder_and_a_waiting_writer(storage: Any, tenant: Any, write: Any,
                                         while_waiting: Any = lambda: None) -> tuple[int, int]:
    """Hold the tenant's event lock, run ``write(subject)`` in a thread, then append the holder's event and commit.

    The writer must wait for the lock (checked, with *while_waiting* called meanwhile); return the
    event ids of the holder's event and the writer's, for the caller to compare.
    """
    import threading
    import time

    from scim_bridge.storage.models import ChangeEvent
    from scim_bridge.storage.repositories.orgs import OrgRepository

    waiting, holder, done = f"user:{uuid.uuid4()}", f"user:{uuid.uuid4()}", threading.Event()
    failure: list[BaseException] = []

    def second_writer() -> None:
        try:
            write(waiting)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failure.append(exc)
        finally:
            done.set()

    with storage.sessionmaker() as session, session.begin():
        repository = OrgRepository(session, tenant.id)
        repository.lock_tenant()  # the lock first, this transaction's event (and its id) later
        thread = threading.Thread(target=second_writer)
        thread.start()
        time.sleep(0.3)
        assert not done.is_set(), "the second writer did not wait for the tenant's lock"
        while_waiting()
        repository.append_events([_event_row(holder)])
    thread.join(timeout=30)
    assert done.is_set() and not failure, failure
    with storage.sessionmaker() as session:
        ids = dict(session.execute(select(ChangeEvent.subject, ChangeEvent.id)
                                   .where(ChangeEvent.subject.in_([holder, waiting]))).all())
    return ids[holder], ids[waiting]


@pytest.mark.xdist_group("event-lock")
def test_an_event_that_waits_for_the_tenants_lock_draws_its_id_after_the_holder_commits(storage, tenant):
    # Event ids are the change log's cursor: they must commit in id order, or a reader polling
    # "id > cursor" would skip an event that commits late. A single event's INSERT takes the lock
    # in the same statement; its id must be drawn after the lock is granted, not before.
    from scim_bridge.storage.repositories.orgs import OrgRepository

    if storage.is_sqlite:
        pytest.skip("SQLite serializes whole write transactions (BEGIN IMMEDIATE): no row lock to wait for")

    def write(subject: str) -> None:
        with storage.sessionmaker() as other, other.begin():
            OrgRepository(other, tenant.id).lock_and_append_events([_event_row(subject)])

    holder, waiting = ids_of_a_holder_and_a_waiting_writer(storage, tenant, write)
    assert holder < waiting


def test_a_single_event_for_a_tenant_that_is_gone_is_refused_not_lost(storage):
    # The INSERT … SELECT inserts nothing when the tenant row is missing (the plain INSERT's
    # foreign key would have refused it): that must be an error, never an event quietly dropped.
    from sqlalchemy.exc import IntegrityError

    from scim_bridge.storage.repositories.orgs import OrgRepository

    with storage.sessionmaker() as session, session.begin():
        expected = IntegrityError if storage.is_sqlite else LookupError
        with pytest.raises(expected):
            OrgRepository(session, uuid.uuid4()).lock_and_append_events([_event_row(f"user:{uuid.uuid4()}")])
        session.rollback()
